package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

// scanInvite reads one row of storeimpl.InviteColumns.
func scanInvite(row storeimpl.Row) (referral.Invite, error) {
	return storeimpl.ScanInvite(row, fromMillis)
}

// RecordInvite stores inv after the idempotency, limit, cooldown and
// recipient checks of [referral.CodeStore], atomically with them, and
// returns the invite stored (suppressed, maybe) or replayed.
func (s *Store) RecordInvite(ctx context.Context, inv referral.Invite, lim referral.Limits) (referral.Invite, bool, error) {
	inv.NextAttemptAt, inv.LeaseUntil = stored(inv.NextAttemptAt), stored(inv.LeaseUntil)
	inv.CreatedAt, inv.UpdatedAt = stored(inv.CreatedAt), stored(inv.UpdatedAt)
	inv.SentAt, inv.ResentAt = stored(inv.SentAt), stored(inv.ResentAt)
	var (
		got      referral.Invite
		replayed bool
	)
	err := s.write(ctx, func(c *wconn) error {
		var err error
		got, replayed, err = s.recordInvite(ctx, c, inv, lim)
		return err
	})
	var le *referral.LimitError
	switch {
	case errors.As(err, &le):
		return referral.Invite{}, false, err
	case err != nil:
		return referral.Invite{}, false, fmt.Errorf("sqlite: record invite: %w", err)
	}
	return got, replayed, nil
}

// recordInvite does RecordInvite's checks, in the contract's order, and the
// insert or the reclaim, inside the caller's write transaction, and returns
// what RecordInvite returns. The write lock makes its reads final.
func (s *Store) recordInvite(ctx context.Context, c *wconn, inv referral.Invite, lim referral.Limits) (referral.Invite, bool, error) {
	now := inv.CreatedAt
	// Every window below is exclusive at its start: an invite created
	// exactly Window ago no longer counts, so retrying RetryAfter later
	// succeeds. Stored times are whole milliseconds, so "> millis(since)"
	// is exact even for a since between two of them.
	if inv.IdempotencyKey != "" && lim.IdempotencyTTL > 0 {
		// "idempotency_key <> ''" lets SQLite use the partial index.
		row := c.QueryRowContext(ctx, `SELECT `+storeimpl.InviteColumns+` FROM referral_invites
			WHERE app_id = ? AND referrer_id = ? AND idempotency_key = ? AND idempotency_key <> '' AND created_at > ?
			ORDER BY created_at DESC LIMIT 1`,
			inv.AppID, inv.ReferrerID, inv.IdempotencyKey, millis(now.Add(-lim.IdempotencyTTL)))
		first, err := scanInvite(row)
		switch {
		case err == nil && storeimpl.Retryable(first, inv):
			// The caller delivers it again: same row, one more attempt;
			// unless the address was suppressed since.
			var reason string
			err = c.QueryRowContext(ctx, `SELECT reason FROM referral_suppressions WHERE app_id = ? AND address_hash = ? AND address_hash <> ''`,
				first.AppID, first.AddressHash).Scan(&reason)
			if err != nil && !isNoRows(err) {
				return referral.Invite{}, false, err
			}
			// A failed invite enters the queue again now (reclaimed_at);
			// a stranded pending one never left it.
			requeued := first.Status == referral.StatusFailed && reason == ""
			first = storeimpl.Reclaimed(first, inv, reason)
			_, err = c.ExecContext(ctx, `UPDATE referral_invites
				SET status = ?, attempts = ?, last_error = ?, lease_until = ?, next_attempt_at = ?, updated_at = ?,
					reclaimed_at = CASE WHEN ? THEN ? ELSE reclaimed_at END
				WHERE id = ?`,
				string(first.Status), first.Attempts, first.LastError, millis(first.LeaseUntil), millis(first.NextAttemptAt),
				millis(first.UpdatedAt), requeued, millis(first.UpdatedAt), first.ID)
			if err == nil && first.Status == referral.StatusSuppressed {
				err = s.record(ctx, c, storeimpl.InviteEvent(referral.EventInviteSuppressed, first, inv.CreatedAt))
			}
			return first, false, err
		case err == nil:
			return first, true, nil
		case !isNoRows(err):
			return referral.Invite{}, false, err
		}
	}
	if wait, full, err := referrerFull(ctx, c, inv.AppID, inv.ReferrerID, now, lim); err != nil || full {
		if full {
			err = &referral.LimitError{RetryAfter: wait}
		}
		return referral.Invite{}, false, err
	}
	if lim.Cooldown > 0 {
		var last int64
		err := c.QueryRowContext(ctx, `SELECT created_at FROM referral_invites
			WHERE app_id = ? AND referrer_id = ? AND email_key = ? AND created_at > ? AND status NOT IN ('failed', 'revoked')
			ORDER BY created_at DESC LIMIT 1`,
			inv.AppID, inv.ReferrerID, inv.EmailKey, millis(now.Add(-lim.Cooldown))).Scan(&last)
		if err == nil {
			return referral.Invite{}, false, &referral.LimitError{RetryAfter: fromMillis(last).Add(lim.Cooldown).Sub(now), Cooldown: true}
		}
		if !isNoRows(err) {
			return referral.Invite{}, false, err
		}
	}
	reason, err := recipientReason(ctx, c, inv.AppID, inv.AddressHash, now, lim)
	if err != nil {
		return referral.Invite{}, false, err
	}
	if reason != "" {
		inv = storeimpl.Suppressed(inv, reason)
	}
	_, err = c.ExecContext(ctx, `INSERT INTO referral_invites (`+storeimpl.InviteColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		inv.ID, inv.AppID, inv.ReferrerID, inv.Email, inv.EmailKey, inv.Language, inv.Code, inv.IdempotencyKey,
		string(inv.Status), inv.Attempts, inv.LastError,
		millis(inv.NextAttemptAt), millis(inv.LeaseUntil), millis(inv.CreatedAt), millis(inv.UpdatedAt), inv.ReferrerName,
		inv.AddressHash, millis(inv.SentAt), inv.Resends, millis(inv.ResentAt))
	if err == nil && inv.Status == referral.StatusSuppressed {
		err = s.record(ctx, c, storeimpl.InviteEvent(referral.EventInviteSuppressed, inv, inv.CreatedAt))
	}
	return inv, false, err
}

// referrerSQL is the per-referrer limit (step 2 of RecordInvite, and
// Resend's): the referrer's invites created, and those resent, after ?3,
// newest first from offset ?4. A row is the MaxPerReferrer-th newest of
// those times, the one that has to leave the window first; none means the
// limit is not reached. "resends > 0" lets SQLite use
// referral_invites_resent.
const referrerSQL = `SELECT t FROM (
	SELECT created_at AS t FROM referral_invites WHERE app_id = ?1 AND referrer_id = ?2 AND created_at > ?3
	UNION ALL
	SELECT resent_at FROM referral_invites WHERE app_id = ?1 AND referrer_id = ?2 AND resends > 0 AND resent_at > ?3)
ORDER BY t DESC LIMIT 1 OFFSET ?4`

// referrerFull reports whether the referrer (app, referrer) has reached
// lim's limit at now, and if so how long until it has not. Every window
// is exclusive at its start: an invite created (or resent) exactly Window
// ago no longer counts, so retrying RetryAfter later succeeds.
func referrerFull(ctx context.Context, c *wconn, app, referrer string, now time.Time, lim referral.Limits) (time.Duration, bool, error) {
	if lim.MaxPerReferrer <= 0 {
		return 0, false, nil
	}
	var oldest int64
	err := c.QueryRowContext(ctx, referrerSQL, app, referrer, millis(now.Add(-lim.Window)), lim.MaxPerReferrer-1).Scan(&oldest)
	switch {
	case isNoRows(err):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return fromMillis(oldest).Add(lim.Window).Sub(now), true, nil
}

// recipientReason is step 4 of RecordInvite, and Resend's, for an invite
// of address hash in app sent at now: the reason to suppress it, "" for
// none. An invite without an AddressHash is never suppressed.
func recipientReason(ctx context.Context, c *wconn, app, hash string, now time.Time, lim referral.Limits) (string, error) {
	if hash == "" {
		return "", nil
	}
	var reason string
	err := c.QueryRowContext(ctx, recipientSQL, app, hash, max(lim.MaxPerRecipient, 0),
		millis(now.Add(-lim.RecipientWindow))).Scan(&reason)
	return reason, err
}

// recipientSQL is step 4 of RecordInvite: the reason to record the invite
// of address ?2 in app ?1 suppressed, ” for none. The suppression's reason
// comes first; then the recipient limit (?3 sends, off at 0), which counts
// the sends after ?4: each invite of the address not suppressed, and not
// failed without ever being delivered, counts 1
// if created after ?4, whatever became of it, and its resends if it was
// last resent after ?4. Each invite it reads counts at least 1, so ?3 of
// them settle it. The invites are read through
// referral_invites_by_recipient.
//
// Its LIMIT, and that of every subquery here, is a parameter cast to
// INTEGER: a bare parameter as a subquery's LIMIT makes SQLite prepare the
// whole statement again at every run (this one's did: 17 % of the
// server's CPU under load, pprof), which wconn's prepared statements are
// there to avoid; with the cast it does not (BenchmarkSubqueryLimit:
// 10–11 µs a run against 81–92 µs).
const recipientSQL = `SELECT coalesce(
	(SELECT reason FROM referral_suppressions WHERE app_id = ?1 AND address_hash = ?2),
	(SELECT '` + referral.ReasonRecipientLimit + `' WHERE ?3 > 0 AND ?3 <= (
		SELECT coalesce(sum((created_at > ?4) + CASE WHEN resent_at > ?4 THEN resends ELSE 0 END), 0) FROM (
			SELECT created_at, resent_at, resends FROM referral_invites
			WHERE app_id = ?1 AND address_hash = ?2 AND status <> 'suppressed'
				AND NOT (status = 'failed' AND sent_at = -62135596800000)
				AND (created_at > ?4 OR (resends > 0 AND resent_at > ?4))
			LIMIT CAST(?3 AS INTEGER)))),
	'')`

// UpdateDelivery records the outcome of a delivery attempt; see
// [referral.CodeStore].
func (s *Store) UpdateDelivery(ctx context.Context, id string, d referral.Delivery) error {
	return s.UpdateDeliveries(ctx, []referral.DeliveryUpdate{{InviteID: id, Delivery: d}})
}

// UpdateDeliveries records several outcomes in one write; see
// [referral.DeliveryBatchStore]. The worker's records of a round then
// share a commit: between loads, a commit for each was a seventh of the
// worker's CPU (pprof).
func (s *Store) UpdateDeliveries(ctx context.Context, updates []referral.DeliveryUpdate) error {
	err := s.write(ctx, func(c *wconn) error {
		for _, u := range updates {
			if err := s.updateDelivery(ctx, c, u.InviteID, u.Delivery); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: update delivery: %w", err)
	}
	return nil
}

// updateDelivery records one outcome, and its event, on c.
func (s *Store) updateDelivery(ctx context.Context, c *wconn, id string, d referral.Delivery) error {
	// next_attempt_at changes only for a retry, sent_at for a send; an
	// invite revoked during the attempt only gets its send recorded.
	const update = `UPDATE referral_invites
		SET status = CASE WHEN status = 'revoked' THEN status ELSE ?1 END,
			last_error = CASE WHEN status = 'revoked' THEN last_error ELSE ?2 END,
			next_attempt_at = CASE WHEN ?1 = 'pending' THEN ?3 ELSE next_attempt_at END,
			sent_at = CASE WHEN ?1 = 'sent' THEN ?5 ELSE sent_at END,
			lease_until = ?4, updated_at = ?5
		WHERE id = ?6 AND attempts = ?7 AND (status = 'pending' OR (status = 'revoked' AND ?1 = 'sent'))`
	args := []any{string(d.Status), d.LastError, millis(d.NextAttemptAt), millis(time.Time{}), millis(d.At), id, d.Attempt}
	if !s.outbox {
		// No event to record, so nothing to read back: without RETURNING
		// and its row, BenchmarkWorkerDelivery/SQLite took 0.89-1.04x the
		// CPU per message (six alternating runs, median 0.94x).
		_, err := c.ExecContext(ctx, update, args...)
		return err
	}
	var inv referral.Invite
	err := c.QueryRowContext(ctx, update+` RETURNING id, app_id, referrer_id, status`, args...).
		Scan(&inv.ID, &inv.AppID, &inv.ReferrerID, &inv.Status)
	if isNoRows(err) {
		return nil // not pending, or a newer attempt has it: a no-op
	}
	if err != nil {
		return err
	}
	if typ, ok := storeimpl.DeliveryEvent(d.Status); ok {
		return s.record(ctx, c, storeimpl.InviteEvent(typ, inv, d.At))
	}
	return nil
}

// ClaimDue leases up to max pending invites that are due at now, oldest
// due first; see [referral.CodeStore].
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, max int) ([]referral.Invite, error) {
	if max <= 0 {
		return nil, nil
	}
	var claimed []referral.Invite
	err := s.write(ctx, func(c *wconn) error {
		claimed = nil // write may run this again in a new transaction
		// "status = 'pending'" as a literal lets SQLite use referral_invites_due.
		rows, err := c.QueryContext(ctx, `UPDATE referral_invites SET attempts = attempts + 1, lease_until = ?1, updated_at = ?2
			WHERE id IN (
				SELECT id FROM referral_invites
				WHERE status = 'pending' AND next_attempt_at <= ?2 AND lease_until <= ?2
				ORDER BY next_attempt_at, id LIMIT CAST(?3 AS INTEGER))
			RETURNING `+storeimpl.InviteColumns,
			millis(now.Add(lease)), millis(now), max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			inv, err := scanInvite(rows)
			if err != nil {
				return err
			}
			claimed = append(claimed, inv)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim due: %w", err)
	}
	// RETURNING has no order of its own.
	slices.SortFunc(claimed, storeimpl.ByDue)
	return claimed, nil
}

// Invites returns every invite, oldest first, for tests and inspection. It
// reads the whole table: not for production paths.
func (s *Store) Invites(ctx context.Context) ([]referral.Invite, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+storeimpl.InviteColumns+` FROM referral_invites ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: invites: %w", err)
	}
	defer rows.Close()
	var out []referral.Invite
	for rows.Next() {
		inv, err := scanInvite(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: invites: %w", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: invites: %w", err)
	}
	return out, nil
}
