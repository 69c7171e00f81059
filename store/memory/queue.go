package memory

import (
	"context"
	"time"

	"github.com/referralkit/referralkit/referral"
)

var _ referral.QueueStore = (*Store)(nil)

// Queue returns how many invites of every app are pending delivery, those
// a worker holds under a lease included, and the CreatedAt (UTC) of the
// oldest of them, zero when there is none; see [referral.QueueStore]. It
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
		if depth == 0 || inv.CreatedAt.Before(oldest) {
			oldest = inv.CreatedAt
		}
		depth++
	}
	return depth, oldest, nil
}
