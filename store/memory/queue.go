package memory

import (
	"context"
	"time"

	"github.com/referralkit/referralkit/referral"
)

var _ referral.QueueStore = (*Store)(nil)

// Queue returns how many invites of every app are pending delivery, those
// a worker holds under a lease included, and when the one waiting longest
// last entered the queue (UTC), zero when there is none; see
// [referral.QueueStore]. It
// reads every invite: the store is for tests and demos.
func (s *Store) Queue(ctx context.Context) (int, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		depth  int
		oldest time.Time
	)
	for _, inv := range s.invites {
		if inv.Status != referral.StatusPending {
			continue
		}
		// It last entered the queue when created, resent or reclaimed,
		// whichever was last.
		entered := inv.CreatedAt
		for _, t := range []time.Time{inv.ResentAt, s.reclaimed[inv.ID]} {
			if t.After(entered) {
				entered = t
			}
		}
		if depth == 0 || entered.Before(oldest) {
			oldest = entered
		}
		depth++
	}
	return depth, oldest, nil
}
