package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.ReferrerStore = (*Store)(nil)

// listedColumns are storeimpl.InviteColumns of the invite row named inv
// and when its address was accepted, the zero time for never.
var listedColumns = storeimpl.InviteColumns + `, coalesce(` + storeimpl.AcceptedSQL + `, ` + strconv.FormatInt(millis(time.Time{}), 10) + `)`

// The referrer's listing, newest first, through referral_invites_by_referrer:
// the first page, and those after a cursor (?3, ?4).
const (
	listSQL = `WHERE app_id = ?1 AND referrer_id = ?2 ORDER BY created_at DESC, id DESC LIMIT ?5`
	pageSQL = `WHERE app_id = ?1 AND referrer_id = ?2 AND (created_at, id) < (?3, ?4) ORDER BY created_at DESC, id DESC LIMIT ?5`
)

// scanListed reads one row of listedColumns.
func scanListed(row storeimpl.Row) (referral.ListedInvite, error) {
	return storeimpl.ScanListed(row, fromMillis)
}

// ListInvites returns up to limit of the referrer's invites after the
// cursor, newest first, each with when its address was accepted; see
// [referral.ReferrerStore].
func (s *Store) ListInvites(ctx context.Context, appID, userID string, after referral.InviteCursor, limit int) ([]referral.ListedInvite, error) {
	if limit <= 0 {
		return nil, nil
	}
	where := listSQL
	at, id := millis(after.CreatedAt), after.ID
	if after != (referral.InviteCursor{}) {
		where = pageSQL
		if stored(after.CreatedAt).Before(after.CreatedAt) {
			// Between two stored times: every invite of its millisecond
			// is older, whatever its id.
			at, id = at+1, ""
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+listedColumns+` FROM referral_invites AS inv `+where, appID, userID, at, id, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list invites: %w", err)
	}
	defer rows.Close()
	out := make([]referral.ListedInvite, 0, min(limit, 64))
	for rows.Next() {
		li, err := scanListed(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list invites: %w", err)
		}
		out = append(out, li)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list invites: %w", err)
	}
	return out, nil
}

// getSQL reads the referrer's (?2, ?3) invite ?1.
const getSQL = ` FROM referral_invites AS inv WHERE id = ?1 AND app_id = ?2 AND referrer_id = ?3`

// GetInvite returns invite id if it is the referrer's, else
// [referral.ErrInviteNotFound]; see [referral.ReferrerStore].
func (s *Store) GetInvite(ctx context.Context, appID, userID, id string) (referral.ListedInvite, error) {
	li, err := scanListed(s.db.QueryRowContext(ctx, `SELECT `+listedColumns+getSQL, id, appID, userID))
	if isNoRows(err) {
		return referral.ListedInvite{}, referral.ErrInviteNotFound
	}
	if err != nil {
		return referral.ListedInvite{}, fmt.Errorf("sqlite: get invite: %w", err)
	}
	return li, nil
}

// Resend makes r's invite due again after the state, resend, referrer and
// recipient checks of [referral.ReferrerStore], in one write transaction
// with them, and returns it as updated.
func (s *Store) Resend(ctx context.Context, r referral.Resend, lim referral.Limits) (referral.Invite, error) {
	r.At, r.LeaseUntil = stored(r.At), stored(r.LeaseUntil)
	var got referral.Invite
	err := s.write(ctx, func(c *wconn) error {
		li, err := scanListed(c.QueryRowContext(ctx, `SELECT `+listedColumns+getSQL, r.ID, r.AppID, r.ReferrerID))
		if isNoRows(err) {
			return referral.ErrInviteNotFound
		}
		if err != nil {
			return err
		}
		if err := storeimpl.Resendable(li, r); err != nil {
			return err
		}
		inv := li.Invite
		if wait, full, err := referrerFull(ctx, c, r.AppID, r.ReferrerID, r.At, lim); err != nil || full {
			if full {
				err = &referral.LimitError{RetryAfter: wait}
			}
			return err
		}
		reason, err := recipientReason(ctx, c, inv.AppID, inv.AddressHash, r.At, lim)
		if err != nil {
			return err
		}
		inv = storeimpl.Resent(inv, r, reason)
		_, err = c.ExecContext(ctx, `UPDATE referral_invites
			SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?, lease_until = ?, updated_at = ?,
				resends = ?, resent_at = ?
			WHERE id = ?`,
			string(inv.Status), inv.Attempts, inv.LastError, millis(inv.NextAttemptAt), millis(inv.LeaseUntil),
			millis(inv.UpdatedAt), inv.Resends, millis(inv.ResentAt), inv.ID)
		if err == nil && inv.Status == referral.StatusSuppressed {
			err = s.record(ctx, c, storeimpl.InviteEvent(referral.EventInviteSuppressed, inv, r.At))
		}
		got = inv
		return err
	})
	if err != nil {
		return referral.Invite{}, refusal("resend", err)
	}
	return got, nil
}

// refusal returns the contract's errors as they are and wraps the others.
func refusal(op string, err error) error {
	var le *referral.LimitError
	if errors.As(err, &le) || errors.Is(err, referral.ErrInviteNotFound) ||
		errors.Is(err, referral.ErrNotResendable) || errors.Is(err, referral.ErrInviteAccepted) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// Revoke marks the referrer's invite id revoked unless its address was
// accepted, in one write transaction; see [referral.ReferrerStore].
func (s *Store) Revoke(ctx context.Context, appID, userID, id string, at time.Time) error {
	err := s.write(ctx, func(c *wconn) error {
		var (
			status   string
			accepted bool
		)
		err := c.QueryRowContext(ctx, `SELECT status, `+storeimpl.AcceptedSQL+` IS NOT NULL`+getSQL, id, appID, userID).Scan(&status, &accepted)
		switch {
		case isNoRows(err):
			return referral.ErrInviteNotFound
		case err != nil:
			return err
		case status == string(referral.StatusRevoked):
			return nil
		case accepted:
			return referral.ErrInviteAccepted
		}
		var inv referral.Invite
		err = c.QueryRowContext(ctx, `UPDATE referral_invites SET status = 'revoked', lease_until = ?, updated_at = ? WHERE id = ?
			RETURNING id, app_id, referrer_id, status`,
			millis(time.Time{}), millis(at), id).Scan(&inv.ID, &inv.AppID, &inv.ReferrerID, &inv.Status)
		if err != nil {
			return err
		}
		return s.record(ctx, c, storeimpl.InviteEvent(referral.EventInviteRevoked, inv, at))
	})
	if err != nil {
		return refusal("revoke", err)
	}
	return nil
}

// dueQuery is StillDue's, which the worker asks before each round of
// messages. The ids come as one JSON array, so that one prepared statement
// serves any number of them.
const dueQuery = `SELECT id, attempts FROM referral_invites
	WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'`

// StillDue reports which of the claimed invites are still pending with
// their Attempts; see [referral.ReferrerStore].
func (s *Store) StillDue(ctx context.Context, claimed []referral.Invite) ([]bool, error) {
	ids := make([]string, len(claimed))
	for i, inv := range claimed {
		ids[i] = inv.ID
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: still due: %w", err)
	}
	rows, err := s.readDue.QueryContext(ctx, string(list))
	if err != nil {
		return nil, fmt.Errorf("sqlite: still due: %w", err)
	}
	defer rows.Close()
	pending := make(map[string]int, len(claimed))
	for rows.Next() {
		var (
			id       string
			attempts int
		)
		if err := rows.Scan(&id, &attempts); err != nil {
			return nil, fmt.Errorf("sqlite: still due: %w", err)
		}
		pending[id] = attempts
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: still due: %w", err)
	}
	return storeimpl.StillDue(claimed, pending), nil
}
