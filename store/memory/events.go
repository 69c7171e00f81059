package memory

import (
	"context"
	"slices"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.EventStore = (*Store)(nil)

// record adds ev to the outbox if it is on. The caller holds s.mu and
// calls it with the change ev reports, so that both are seen together.
func (s *Store) record(ev referral.Event) {
	if s.outbox {
		s.events[ev.ID] = &ev
	}
}

// Outbox reports whether the store records events: [Options.Outbox].
func (s *Store) Outbox() bool { return s.outbox }

// ClaimEvents leases up to max events due at now, oldest due first; see
// [referral.EventStore].
func (s *Store) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, max int) ([]referral.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*referral.Event
	for _, ev := range s.events {
		if !ev.NextAttemptAt.After(now) && !ev.LeaseUntil.After(now) {
			due = append(due, ev)
		}
	}
	slices.SortFunc(due, func(a, b *referral.Event) int { return storeimpl.ByEventDue(*a, *b) })
	out := make([]referral.Event, 0, min(max, len(due)))
	for _, ev := range due[:min(max, len(due))] {
		ev.Attempts++
		ev.LeaseUntil = now.Add(lease).UTC()
		out = append(out, *ev)
	}
	return out, nil
}

// EventDelivered removes event id if attempt is still its last; see
// [referral.EventStore].
func (s *Store) EventDelivered(ctx context.Context, id string, attempt int) error {
	return s.EventFailed(ctx, id, attempt, time.Time{}, "", true)
}

// EventFailed reschedules event id at next, or removes it with giveUp, if
// attempt is still its last; see [referral.EventStore].
func (s *Store) EventFailed(ctx context.Context, id string, attempt int, next time.Time, lastError string, giveUp bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, ok := s.events[id]
	switch {
	case !ok || ev.Attempts != attempt:
	case giveUp:
		delete(s.events, id)
	default:
		ev.NextAttemptAt, ev.LeaseUntil, ev.LastError = next.UTC(), time.Time{}, lastError
	}
	return nil
}
