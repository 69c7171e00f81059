package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.RedemptionStore = (*Store)(nil)

// redemptionColumns are the columns scanRedemption reads, in its order.
const redemptionColumns = `app_id, referrer_id, code, new_user_id, email, email_key, created_at`

// scanRedemption reads one row of redemptionColumns, then whether the row
// is the one the statement inserted.
func scanRedemption(row pgx.Row) (r referral.Redemption, created bool, err error) {
	var at time.Time
	err = row.Scan(&r.AppID, &r.ReferrerID, &r.Code, &r.NewUserID, &r.Email, &r.EmailKey, &at, &created)
	r.CreatedAt = at.UTC()
	return r, created, err
}

// redeemSQL inserts the redemption unless the new user has one, and returns
// the inserted row or the one already there. The second half reads the
// statement's snapshot, which misses a row committed by a concurrent insert
// that this one waited for: then it returns no row, and Redeem reads again.
const redeemSQL = `WITH inserted AS (
	INSERT INTO referral_redemptions (` + redemptionColumns + `)
	VALUES (@app_id, @referrer_id, @code, @new_user_id, @email, @email_key, @created_at)
	ON CONFLICT (app_id, new_user_id) DO NOTHING
	RETURNING ` + redemptionColumns + `
)
SELECT ` + redemptionColumns + `, true FROM inserted
UNION ALL
SELECT ` + redemptionColumns + `, false FROM referral_redemptions
WHERE app_id = @app_id AND new_user_id = @new_user_id AND NOT EXISTS (SELECT FROM inserted)`

// Redeem stores r unless its new user has redeemed a code in the app
// already, and returns the redemption that stands; see
// [referral.RedemptionStore].
func (s *Store) Redeem(ctx context.Context, r referral.Redemption) (referral.Redemption, bool, error) {
	r.CreatedAt = stored(r.CreatedAt)
	var (
		got     referral.Redemption
		created bool
	)
	err := s.change(ctx, func(q querier) error {
		var err error
		got, created, err = scanRedemption(q.QueryRow(ctx, redeemSQL, pgx.NamedArgs{
			"app_id":      r.AppID,
			"referrer_id": r.ReferrerID,
			"code":        r.Code,
			"new_user_id": r.NewUserID,
			"email":       r.Email,
			"email_key":   r.EmailKey,
			"created_at":  r.CreatedAt,
		}))
		if err == nil && created {
			err = s.record(ctx, q, storeimpl.RedeemedEvent(got))
		}
		return err
	})
	if isNoRows(err) {
		// A concurrent call stored the first redemption; it has committed
		// (the insert waited for it), so a new statement sees it. Rows are
		// never deleted, so this read finds it.
		got, created, err = scanRedemption(s.pool.QueryRow(ctx, `SELECT `+redemptionColumns+`, false FROM referral_redemptions
			WHERE app_id = $1 AND new_user_id = $2`, r.AppID, r.NewUserID))
	}
	if err != nil {
		return referral.Redemption{}, false, wrap(ctx, "redeem", err)
	}
	return got, created, nil
}

// statsSQL counts in one statement, so from one snapshot. Accepted starts
// from the referrer's redemptions, usually fewer than their invites, and
// looks each address up in referral_invites_by_address.
const statsSQL = `SELECT counts.invited, counts.sent,
	(SELECT count(*) FROM (
		SELECT DISTINCT email_key FROM referral_redemptions WHERE app_id = @app_id AND referrer_id = @referrer_id
	) AS r WHERE EXISTS (
		SELECT FROM referral_invites AS inv WHERE inv.app_id = @app_id AND inv.referrer_id = @referrer_id AND inv.email_key = r.email_key
	)),
	(SELECT count(*) FROM referral_redemptions WHERE app_id = @app_id AND referrer_id = @referrer_id)
FROM (
	SELECT count(*) AS invited, count(*) FILTER (WHERE status = 'sent') AS sent
	FROM referral_invites WHERE app_id = @app_id AND referrer_id = @referrer_id
) AS counts`

// Stats counts userID's invites, deliveries, accepted invites and
// redemptions in appID; see [referral.RedemptionStore].
func (s *Store) Stats(ctx context.Context, appID, userID string) (referral.Stats, error) {
	var st referral.Stats
	err := s.pool.QueryRow(ctx, statsSQL, pgx.NamedArgs{"app_id": appID, "referrer_id": userID}).
		Scan(&st.Invited, &st.Sent, &st.Accepted, &st.Redeemed)
	if err != nil {
		return referral.Stats{}, wrap(ctx, "stats", err)
	}
	return st, nil
}
