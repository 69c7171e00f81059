package sqlite

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.EventStore = (*Store)(nil)

// record adds ev to the outbox, if it is on, inside the caller's write
// transaction: the event commits with the change it reports, or neither.
func (s *Store) record(ctx context.Context, c *wconn, ev referral.Event) error {
	if !s.outbox {
		return nil
	}
	_, err := c.ExecContext(ctx, `INSERT INTO referral_events (`+storeimpl.EventColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.ID, ev.Type, millis(ev.At), ev.AppID, ev.InviteID, ev.ReferrerID, string(ev.Status), ev.Code, ev.NewUserID,
		ev.Attempts, millis(ev.NextAttemptAt), millis(ev.LeaseUntil), ev.LastError)
	return err
}

// Outbox reports whether the store records events: [Options.Outbox].
func (s *Store) Outbox() bool { return s.outbox }

// ClaimEvents leases up to max events due at now, oldest due first; see
// [referral.EventStore]. The write lock makes a claim final: no other
// claimer, of this process or another, sees the events it leased as due.
func (s *Store) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, max int) ([]referral.Event, error) {
	if max <= 0 {
		return nil, nil
	}
	var claimed []referral.Event
	err := s.write(ctx, func(c *wconn) error {
		claimed = nil // write may run this again in a new transaction
		rows, err := c.QueryContext(ctx, `UPDATE referral_events SET attempts = attempts + 1, lease_until = ?1
			WHERE id IN (
				SELECT id FROM referral_events
				WHERE next_attempt_at <= ?2 AND lease_until <= ?2
				ORDER BY next_attempt_at, id LIMIT CAST(?3 AS INTEGER))
			RETURNING `+storeimpl.EventColumns,
			millis(now.Add(lease)), millis(now), max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			ev, err := storeimpl.ScanEvent(rows, fromMillis)
			if err != nil {
				return err
			}
			claimed = append(claimed, ev)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim events: %w", err)
	}
	// RETURNING has no order of its own.
	slices.SortFunc(claimed, storeimpl.ByEventDue)
	return claimed, nil
}

// EventDelivered removes event id if attempt is still its last; see
// [referral.EventStore].
func (s *Store) EventDelivered(ctx context.Context, id string, attempt int) error {
	return s.removeEvent(ctx, "event delivered", id, attempt)
}

// removeEvent deletes event id if attempt is still its last.
func (s *Store) removeEvent(ctx context.Context, op, id string, attempt int) error {
	err := s.write(ctx, func(c *wconn) error {
		_, err := c.ExecContext(ctx, `DELETE FROM referral_events WHERE id = ? AND attempts = ?`, id, attempt)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return nil
}

// EventFailed reschedules event id at next, or removes it with giveUp, if
// attempt is still its last; see [referral.EventStore].
func (s *Store) EventFailed(ctx context.Context, id string, attempt int, next time.Time, lastError string, giveUp bool) error {
	if giveUp {
		return s.removeEvent(ctx, "event failed", id, attempt)
	}
	err := s.write(ctx, func(c *wconn) error {
		_, err := c.ExecContext(ctx, `UPDATE referral_events SET next_attempt_at = ?, lease_until = ?, last_error = ?
			WHERE id = ? AND attempts = ?`,
			millis(next), millis(time.Time{}), lastError, id, attempt)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: event failed: %w", err)
	}
	return nil
}
