package sqlite

import (
	"context"
	"fmt"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.RedemptionStore = (*Store)(nil)

// redemptionColumns are the columns scanRedemption reads, in its order.
const redemptionColumns = `app_id, referrer_id, code, new_user_id, email, email_key, created_at`

// scanRedemption reads one row of redemptionColumns.
func scanRedemption(row interface{ Scan(...any) error }) (referral.Redemption, error) {
	var (
		r  referral.Redemption
		at int64
	)
	if err := row.Scan(&r.AppID, &r.ReferrerID, &r.Code, &r.NewUserID, &r.Email, &r.EmailKey, &at); err != nil {
		return referral.Redemption{}, err
	}
	r.CreatedAt = fromMillis(at)
	return r, nil
}

// redemptionOf returns the redemption of newUserID in appID, or
// sql.ErrNoRows.
func redemptionOf(ctx context.Context, q querier, appID, newUserID string) (referral.Redemption, error) {
	return scanRedemption(q.QueryRowContext(ctx, `SELECT `+redemptionColumns+` FROM referral_redemptions
		WHERE app_id = ? AND new_user_id = ?`, appID, newUserID))
}

// Redeem stores r unless its new user has redeemed a code in the app
// already, and returns the redemption that stands; see
// [referral.RedemptionStore].
func (s *Store) Redeem(ctx context.Context, r referral.Redemption) (referral.Redemption, bool, error) {
	r.CreatedAt = stored(r.CreatedAt)
	// A user redeeming again (a retried sign-up) needs only a read, no
	// write lock.
	first, err := redemptionOf(ctx, s.db, r.AppID, r.NewUserID)
	if err == nil {
		return first, false, nil
	}
	if !isNoRows(err) {
		return referral.Redemption{}, false, fmt.Errorf("sqlite: redeem: %w", err)
	}
	var created bool
	err = s.write(ctx, func(c *wconn) error {
		// Set afresh: write may run this again in a new transaction.
		first, created = referral.Redemption{}, false
		res, err := c.ExecContext(ctx, `INSERT INTO referral_redemptions (`+redemptionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_id, new_user_id) DO NOTHING`,
			r.AppID, r.ReferrerID, r.Code, r.NewUserID, r.Email, r.EmailKey, millis(r.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			first, created = r, true
			return s.record(ctx, c, storeimpl.RedeemedEvent(r))
		}
		// Another call stored the user's redemption since the read above;
		// under the write lock it is the first for good.
		first, err = redemptionOf(ctx, c, r.AppID, r.NewUserID)
		return err
	})
	if err != nil {
		return referral.Redemption{}, false, fmt.Errorf("sqlite: redeem: %w", err)
	}
	return first, created, nil
}

// statsSQL counts in one statement, so from one snapshot. Accepted starts
// from the referrer's redemptions, usually fewer than their invites, and
// looks each address up in referral_invites_by_address. The invites are counted
// through referral_invites_by_referrer, which SQLite does not choose by itself: in
// created_at order the rows it reads for their status come in the order
// they were written, where referral_invites_by_address jumps across the file
// (BenchmarkStats measures it).
const statsSQL = `SELECT counts.invited, counts.sent,
	(SELECT count(*) FROM (
		SELECT DISTINCT email_key FROM referral_redemptions WHERE app_id = ?1 AND referrer_id = ?2
	) AS r WHERE EXISTS (
		SELECT 1 FROM referral_invites AS inv WHERE inv.app_id = ?1 AND inv.referrer_id = ?2 AND inv.email_key = r.email_key
	)),
	(SELECT count(*) FROM referral_redemptions WHERE app_id = ?1 AND referrer_id = ?2)
FROM (
	SELECT count(*) AS invited, coalesce(sum(status = 'sent'), 0) AS sent
	FROM referral_invites INDEXED BY referral_invites_by_referrer WHERE app_id = ?1 AND referrer_id = ?2
) AS counts`

// Stats counts userID's invites, deliveries, accepted invites and
// redemptions in appID; see [referral.RedemptionStore].
func (s *Store) Stats(ctx context.Context, appID, userID string) (referral.Stats, error) {
	var st referral.Stats
	err := s.db.QueryRowContext(ctx, statsSQL, appID, userID).Scan(&st.Invited, &st.Sent, &st.Accepted, &st.Redeemed)
	if err != nil {
		return referral.Stats{}, fmt.Errorf("sqlite: stats: %w", err)
	}
	return st, nil
}
