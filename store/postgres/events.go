package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.EventStore = (*Store)(nil)

// querier is what the pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// change runs fn, a change of one statement that may record an event, in
// a transaction when the outbox is on, so that the event commits with the
// change or neither does; on the pool otherwise, where the statement
// needs none.
func (s *Store) change(ctx context.Context, fn func(q querier) error) error {
	if !s.outbox {
		return fn(s.pool)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(tx) })
}

// record adds ev to the outbox, if it is on, with q, the transaction of
// the change ev reports.
func (s *Store) record(ctx context.Context, q querier, ev referral.Event) error {
	if !s.outbox {
		return nil
	}
	_, err := q.Exec(ctx, `INSERT INTO referral_events (`+storeimpl.EventColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		ev.ID, ev.Type, stored(ev.At), ev.AppID, ev.InviteID, ev.ReferrerID, string(ev.Status), ev.Code, ev.NewUserID,
		ev.Attempts, stored(ev.NextAttemptAt), nullTime(ev.LeaseUntil), ev.LastError)
	return err
}

// Outbox reports whether the store records events: [Options.Outbox].
func (s *Store) Outbox() bool { return s.outbox }

// ClaimEvents leases up to max events due at now, oldest due first; see
// [referral.EventStore].
func (s *Store) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, max int) ([]referral.Event, error) {
	if max <= 0 {
		return nil, nil
	}
	now = stored(now)
	// SKIP LOCKED, as in ClaimDue: concurrent claimers take the next due
	// events; a row another claimer has just committed is read again when
	// locked, and dropped as no longer due.
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT id FROM referral_events
			WHERE next_attempt_at <= @now AND (lease_until IS NULL OR lease_until <= @now)
			ORDER BY next_attempt_at, id
			LIMIT @max
			FOR UPDATE SKIP LOCKED
		)
		UPDATE referral_events AS e SET attempts = e.attempts + 1, lease_until = @lease_until
		FROM due WHERE e.id = due.id
		RETURNING `+prefixed("e.", storeimpl.EventColumns),
		pgx.NamedArgs{"now": now, "lease_until": now.Add(lease), "max": max})
	if err != nil {
		return nil, wrap(ctx, "claim events", err)
	}
	claimed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (referral.Event, error) {
		return storeimpl.ScanEvent(r, fromNull)
	})
	if err != nil {
		return nil, wrap(ctx, "claim events", err)
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
	if _, err := s.pool.Exec(ctx, `DELETE FROM referral_events WHERE id = $1 AND attempts = $2`, id, attempt); err != nil {
		return wrap(ctx, op, err)
	}
	return nil
}

// EventFailed reschedules event id at next, or removes it with giveUp, if
// attempt is still its last; see [referral.EventStore].
func (s *Store) EventFailed(ctx context.Context, id string, attempt int, next time.Time, lastError string, giveUp bool) error {
	if giveUp {
		return s.removeEvent(ctx, "event failed", id, attempt)
	}
	_, err := s.pool.Exec(ctx, `UPDATE referral_events SET next_attempt_at = $1, lease_until = NULL, last_error = $2
		WHERE id = $3 AND attempts = $4`, stored(next), lastError, id, attempt)
	if err != nil {
		return wrap(ctx, "event failed", err)
	}
	return nil
}
