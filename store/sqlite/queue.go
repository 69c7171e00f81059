package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/referralkit/referralkit/referral"
)

var _ referral.QueueStore = (*Store)(nil)

// queueSQL counts the pending invites of every app and finds when the one
// waiting longest entered the queue (NULL when there is none): the latest
// of its created_at, resent_at and reclaimed_at, each zero
// (-62135596800000) when it has none. It reads the pending rows
// through referral_invites_due, the partial index of ClaimDue, and no
// other row: a cost that grows with the queue, not with the table. The
// literal "status = 'pending'" matches the index's WHERE.
const queueSQL = `SELECT count(*), min(max(created_at, resent_at, reclaimed_at)) FROM referral_invites INDEXED BY referral_invites_due
	WHERE status = 'pending'`

// Queue returns how many invites of every app are pending delivery, those
// a worker holds under a lease included, and when the one waiting longest
// last entered the queue (UTC), zero when there is none; see
// [referral.QueueStore]. It
// reads outside the write queue, so a scrape never waits behind writes.
func (s *Store) Queue(ctx context.Context) (int, time.Time, error) {
	var (
		depth  int
		oldest sql.NullInt64
	)
	if err := s.db.QueryRowContext(ctx, queueSQL).Scan(&depth, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("sqlite: queue: %w", err)
	}
	if !oldest.Valid {
		return depth, time.Time{}, nil
	}
	return depth, fromMillis(oldest.Int64), nil
}
