package postgres

import (
	"context"
	"time"

	"github.com/referralkit/referralkit/referral"
)

var _ referral.QueueStore = (*Store)(nil)

// queueSQL counts the pending invites of every app and finds when the one
// waiting longest entered the queue (NULL when there is none): the latest
// of its created_at, resent_at and reclaimed_at (greatest skips the NULLs
// of those it has not). The literal
// "status = 'pending'" matches the WHERE of referral_invites_due, the
// partial index of ClaimDue, so the planner can read the pending rows
// through it and no other row: a cost that grows with the queue, not with
// the table.
const queueSQL = `SELECT count(*), min(greatest(created_at, resent_at, reclaimed_at)) FROM referral_invites WHERE status = 'pending'`

// Queue returns how many invites of every app are pending delivery, those
// a worker holds under a lease included, and when the one waiting longest
// last entered the queue (UTC), zero when there is none; see
// [referral.QueueStore].
// It takes no lock.
func (s *Store) Queue(ctx context.Context) (int, time.Time, error) {
	var (
		depth  int
		oldest *time.Time
	)
	if err := s.pool.QueryRow(ctx, queueSQL).Scan(&depth, &oldest); err != nil {
		return 0, time.Time{}, wrap(ctx, "queue", err)
	}
	return depth, fromNull(oldest), nil
}
