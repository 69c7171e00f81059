package referral

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"
)

// dueStore answers StillDue from its map of pending invites' attempts and
// keeps each call's ids; its other methods are not used.
type dueStore struct {
	ReferrerStore
	pending map[string]int
	err     error
	calls   [][]string
}

func (s *dueStore) StillDue(_ context.Context, claimed []Invite) ([]bool, error) {
	var ids []string
	due := make([]bool, len(claimed))
	for i, inv := range claimed {
		ids = append(ids, inv.ID)
		attempts, ok := s.pending[inv.ID]
		due[i] = ok && attempts == inv.Attempts
	}
	s.calls = append(s.calls, ids)
	return due, s.err
}

// TestDueChecksAskForSeveralRoundsAtOnce: the worker asks for an invite
// and the next dueRounds*Senders-1 in one call, uses that answer for them
// while it is fresh, and asks again once it is not.
func TestDueChecksAskForSeveralRoundsAtOnce(t *testing.T) {
	t.Parallel()
	const senders = 2
	ahead := dueRounds * senders // invites one question covers
	store := &dueStore{pending: map[string]int{}}
	var (
		ids     []string
		invites []Invite
	)
	for i := range ahead + 2 {
		inv := Invite{ID: "inv-" + strconv.Itoa(i), Attempts: 1}
		invites = append(invites, inv)
		ids = append(ids, inv.ID)
		store.pending[inv.ID] = 1
	}
	h := &Handler{cfg: Config{Referrers: store, Senders: senders, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	c := h.dueChecks(invites)
	now := t0
	c.now = func() time.Time { return now }

	if !c.due(t.Context(), 0) {
		t.Fatal("invite 0: not due")
	}
	delete(store.pending, "inv-2") // revoked after its question was asked
	for i := 1; i < ahead; i++ {
		if !c.due(t.Context(), i) {
			t.Errorf("invite %d: not due, though the fresh answer says it is", i)
		}
	}
	now = now.Add(dueFresh + time.Millisecond)
	stale := ahead - 1
	delete(store.pending, ids[stale])
	if c.due(t.Context(), stale) {
		t.Errorf("invite %d: due after its answer went stale and it was revoked", stale)
	}
	for i := ahead; i < len(ids); i++ {
		if !c.due(t.Context(), i) {
			t.Errorf("invite %d: not due", i)
		}
	}
	want := [][]string{ids[:ahead], ids[stale:]}
	if !slices.EqualFunc(store.calls, want, slices.Equal[[]string]) {
		t.Errorf("StillDue calls %v, want %v", store.calls, want)
	}
}

// TestDueChecksSendNothingTheStoreCannotVouchFor: an error, or an answer
// of the wrong length, leaves the round unsent.
func TestDueChecksSendNothingTheStoreCannotVouchFor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		store ReferrerStore
	}{
		{"error", &dueStore{pending: map[string]int{"a": 1, "b": 1}, err: errors.New("disk I/O error")}},
		{"short answer", shortDueStore{}},
	} {
		h := &Handler{cfg: Config{Referrers: c.store, Senders: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
		checks := h.dueChecks([]Invite{{ID: "a", Attempts: 1}, {ID: "b", Attempts: 1}})
		if checks.due(t.Context(), 0) || checks.due(t.Context(), 1) {
			t.Errorf("%s: an invite is due", c.name)
		}
	}
}

// shortDueStore answers StillDue for one invite fewer than asked, all due.
type shortDueStore struct{ ReferrerStore }

func (shortDueStore) StillDue(_ context.Context, claimed []Invite) ([]bool, error) {
	due := make([]bool, max(len(claimed)-1, 0))
	for i := range due {
		due[i] = true
	}
	return due, nil
}
