package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.ReferrerStore = (*Store)(nil)

// listedColumns are storeimpl.InviteColumns of the invite row named inv
// and when its address was accepted, NULL for never.
const listedColumns = storeimpl.InviteColumns + `, ` + storeimpl.AcceptedSQL

// The referrer's listing, newest first, through referral_invites_by_referrer
// read backwards: the first page, and those after a cursor ($3, $4).
const (
	listSQL = `WHERE app_id = $1 AND referrer_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3`
	pageSQL = `WHERE app_id = $1 AND referrer_id = $2 AND (created_at, id) < ($4, $5) ORDER BY created_at DESC, id DESC LIMIT $3`
)

// scanListed reads one row of listedColumns.
func scanListed(row pgx.Row) (referral.ListedInvite, error) {
	return storeimpl.ScanListed(row, fromNull)
}

// ListInvites returns up to limit of the referrer's invites after the
// cursor, newest first, each with when its address was accepted; see
// [referral.ReferrerStore].
func (s *Store) ListInvites(ctx context.Context, appID, userID string, after referral.InviteCursor, limit int) ([]referral.ListedInvite, error) {
	if limit <= 0 {
		return nil, nil
	}
	query, args := `SELECT `+listedColumns+` FROM referral_invites AS inv `+listSQL, []any{appID, userID, limit}
	if after != (referral.InviteCursor{}) {
		at, id := stored(after.CreatedAt), after.ID
		if at.Before(after.CreatedAt) {
			// Between two stored times: every invite of its microsecond
			// is older, whatever its id.
			at, id = at.Add(time.Microsecond), ""
		}
		query, args = `SELECT `+listedColumns+` FROM referral_invites AS inv `+pageSQL, append(args, at, id)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, wrap(ctx, "list invites", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (referral.ListedInvite, error) { return scanListed(r) })
	if err != nil {
		return nil, wrap(ctx, "list invites", err)
	}
	return out, nil
}

// getWhere is the referrer's ($2, $3) invite $1.
const getWhere = ` FROM referral_invites AS inv WHERE id = $1 AND app_id = $2 AND referrer_id = $3`

// GetInvite returns invite id if it is the referrer's, else
// [referral.ErrInviteNotFound]; see [referral.ReferrerStore].
func (s *Store) GetInvite(ctx context.Context, appID, userID, id string) (referral.ListedInvite, error) {
	li, err := scanListed(s.pool.QueryRow(ctx, `SELECT `+listedColumns+getWhere, id, appID, userID))
	if isNoRows(err) {
		return referral.ListedInvite{}, referral.ErrInviteNotFound
	}
	if err != nil {
		return referral.ListedInvite{}, wrap(ctx, "get invite", err)
	}
	return li, nil
}

// Resend makes r's invite due again after the state, resend, referrer and
// recipient checks of [referral.ReferrerStore], in one transaction with
// them, and returns it as updated. It takes the advisory locks
// RecordInvite takes, the referrer's and then the address's, so that the
// two count each other's invites and resends exactly; then the invite's
// row, so that the state it checks is the one it changes.
func (s *Store) Resend(ctx context.Context, r referral.Resend, lim referral.Limits) (referral.Invite, error) {
	r.At, r.LeaseUntil = stored(r.At), stored(r.LeaseUntil)
	var got referral.Invite
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var hash string
		err := tx.QueryRow(ctx, `SELECT address_hash`+getWhere, r.ID, r.AppID, r.ReferrerID).Scan(&hash)
		if isNoRows(err) {
			return referral.ErrInviteNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, lockSQL, lockReferrer, r.AppID, r.ReferrerID); err != nil {
			return err
		}
		if hash != "" {
			if _, err := tx.Exec(ctx, lockSQL, lockRecipient, r.AppID, hash); err != nil {
				return err
			}
		}
		li, err := scanListed(tx.QueryRow(ctx, `SELECT `+listedColumns+` FROM referral_invites AS inv WHERE id = $1 FOR UPDATE OF inv`, r.ID))
		if err != nil {
			return err
		}
		if err := storeimpl.Resendable(li, r); err != nil {
			return err
		}
		inv := li.Invite
		args := pgx.NamedArgs{
			"app_id":            r.AppID,
			"referrer_id":       r.ReferrerID,
			"max_per_referrer":  max(lim.MaxPerReferrer, 0),
			"window_since":      r.At.Add(-lim.Window),
			"address_hash":      hash,
			"max_per_recipient": max(lim.MaxPerRecipient, 0),
			"recipient_since":   r.At.Add(-lim.RecipientWindow),
		}
		var oldest time.Time
		err = tx.QueryRow(ctx, windowFullSQL, args).Scan(&oldest)
		if err == nil {
			return &referral.LimitError{RetryAfter: oldest.Add(lim.Window).Sub(r.At)}
		}
		if !isNoRows(err) {
			return err
		}
		var reason *string
		if hash != "" {
			if err := tx.QueryRow(ctx, `SELECT `+recipientReasonSQL, args).Scan(&reason); err != nil {
				return err
			}
		}
		inv = storeimpl.Resent(inv, r, deref(reason))
		_, err = tx.Exec(ctx, `UPDATE referral_invites
			SET status = @status, attempts = @attempts, last_error = @last_error, next_attempt_at = @next_attempt_at,
				lease_until = @lease_until, updated_at = @updated_at, resends = @resends, resent_at = @resent_at
			WHERE id = @id`,
			pgx.NamedArgs{
				"status":          string(inv.Status),
				"attempts":        inv.Attempts,
				"last_error":      inv.LastError,
				"next_attempt_at": inv.NextAttemptAt,
				"lease_until":     nullTime(inv.LeaseUntil),
				"updated_at":      inv.UpdatedAt,
				"resends":         inv.Resends,
				"resent_at":       inv.ResentAt,
				"id":              inv.ID,
			})
		if err == nil && inv.Status == referral.StatusSuppressed {
			err = s.record(ctx, tx, storeimpl.InviteEvent(referral.EventInviteSuppressed, inv, r.At))
		}
		got = inv
		return err
	})
	if err != nil {
		return referral.Invite{}, refusal(ctx, "resend", err)
	}
	return got, nil
}

// deref returns *p, "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// refusal returns the contract's errors as they are and wraps the others.
func refusal(ctx context.Context, op string, err error) error {
	var le *referral.LimitError
	if errors.As(err, &le) || errors.Is(err, referral.ErrInviteNotFound) ||
		errors.Is(err, referral.ErrNotResendable) || errors.Is(err, referral.ErrInviteAccepted) {
		return err
	}
	return wrap(ctx, op, err)
}

// revokeSQL revokes the referrer's ($2, $3) invite $1 at $4 unless it is
// revoked or its address was accepted, and returns its status and
// acceptance as they were. An update that waits for a row another
// statement changes checks the status again on the row it then sees.
const revokeSQL = `WITH target AS (
	SELECT inv.id, inv.status, ` + storeimpl.AcceptedSQL + ` IS NOT NULL AS accepted` + getWhere + `
),
revoked AS (
	UPDATE referral_invites AS i SET status = 'revoked', lease_until = NULL, updated_at = $4
	FROM target WHERE i.id = target.id AND NOT target.accepted AND i.status <> 'revoked'
	RETURNING i.id, i.app_id, i.referrer_id, i.status
)
SELECT target.status, target.accepted, revoked.id, revoked.app_id, revoked.referrer_id, revoked.status
FROM target LEFT JOIN revoked ON true`

// Revoke marks the referrer's invite id revoked unless its address was
// accepted; see [referral.ReferrerStore].
func (s *Store) Revoke(ctx context.Context, appID, userID, id string, at time.Time) error {
	var (
		status   string
		accepted bool
	)
	err := s.change(ctx, func(q querier) error {
		var (
			revoked             referral.Invite
			rid, rapp, rref, rs *string
		)
		err := q.QueryRow(ctx, revokeSQL, id, appID, userID, stored(at)).Scan(&status, &accepted, &rid, &rapp, &rref, &rs)
		if err != nil || rid == nil {
			return err
		}
		revoked.ID, revoked.AppID, revoked.ReferrerID, revoked.Status = *rid, *rapp, *rref, referral.Status(*rs)
		return s.record(ctx, q, storeimpl.InviteEvent(referral.EventInviteRevoked, revoked, at))
	})
	switch {
	case isNoRows(err):
		return referral.ErrInviteNotFound
	case err != nil:
		return wrap(ctx, "revoke", err)
	case accepted && status != string(referral.StatusRevoked):
		return referral.ErrInviteAccepted
	}
	return nil
}

// StillDue reports which of the claimed invites are still pending with
// their Attempts; see [referral.ReferrerStore].
func (s *Store) StillDue(ctx context.Context, claimed []referral.Invite) ([]bool, error) {
	ids := make([]string, len(claimed))
	for i, inv := range claimed {
		ids[i] = inv.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT id, attempts FROM referral_invites WHERE id = ANY($1) AND status = 'pending'`, ids)
	if err != nil {
		return nil, wrap(ctx, "still due", err)
	}
	pending := make(map[string]int)
	var (
		id       string
		attempts int
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &attempts}, func() error {
		pending[id] = attempts
		return nil
	})
	if err != nil {
		return nil, wrap(ctx, "still due", err)
	}
	return storeimpl.StillDue(claimed, pending), nil
}
