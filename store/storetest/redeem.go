package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// Redemptions is a store that records both invites and redemptions, as
// the stores of this module do.
type Redemptions interface {
	referral.CodeStore
	referral.RedemptionStore
}

// RunRedemptions runs the RedemptionStore suite against stores made by
// newStore, which must return a fresh, empty store for each call.
func RunRedemptions(t *testing.T, newStore func(t *testing.T) Redemptions) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, s Redemptions)
	}{
		{"Redeem/FirstWins", testRedeemFirstWins},
		{"Redeem/Isolation", testRedeemIsolation},
		{"Redeem/Concurrent", testRedeemConcurrent},
		{"Stats", testStats},
		{"Stats/Empty", testStatsEmpty},
		{"OpaqueIDs/Redemptions", testOpaqueRedemptions},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStore(t))
		})
	}
}

func newRedemption(app, referrer, code, newUser, email string, at time.Time) referral.Redemption {
	return referral.Redemption{
		AppID: app, ReferrerID: referrer, Code: code, NewUserID: newUser,
		Email: email, EmailKey: email, CreatedAt: at,
	}
}

func redeem(t *testing.T, s Redemptions, r referral.Redemption) (referral.Redemption, bool) {
	t.Helper()
	got, created, err := s.Redeem(context.Background(), r)
	require.NoError(t, err)
	return got, created
}

func testRedeemFirstWins(t *testing.T, s Redemptions) {
	app, ref1, ref2, newUser := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	first := newRedemption(app, ref1, "AAAAAAAAAA", newUser, "new@example.com", t0)
	got, created := redeem(t, s, first)
	assert.True(t, created)
	want := first
	want.CreatedAt = first.CreatedAt.UTC()
	assert.Equal(t, want, got)
	assert.Equal(t, time.UTC, got.CreatedAt.Location())

	again, created := redeem(t, s, newRedemption(app, ref1, "AAAAAAAAAA", newUser, "new@example.com", t0.Add(time.Hour)))
	assert.False(t, created, "the same redemption again stores nothing")
	assert.Equal(t, want, again)

	steal, created := redeem(t, s, newRedemption(app, ref2, "BBBBBBBBBB", newUser, "other@example.com", t0.Add(2*time.Hour)))
	assert.False(t, created, "another code does not steal the credit")
	assert.Equal(t, want, steal)

	st, err := s.Stats(context.Background(), app, ref2)
	require.NoError(t, err)
	assert.Equal(t, referral.Stats{}, st)
}

func testRedeemIsolation(t *testing.T, s Redemptions) {
	app1, app2, ref, newUser := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	_, created := redeem(t, s, newRedemption(app1, ref, "AAAAAAAAAA", newUser, "n@example.com", t0))
	assert.True(t, created)
	_, created = redeem(t, s, newRedemption(app2, ref, "CCCCCCCCCC", newUser, "n@example.com", t0))
	assert.True(t, created, "a user id of another app is another user")
}

func testRedeemConcurrent(t *testing.T, s Redemptions) {
	app, newUser := uuid.NewString(), uuid.NewString()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		winners = map[string]bool{}
	)
	start := make(chan struct{})
	for range goroutines {
		wg.Go(func() {
			<-start
			got, ok, err := s.Redeem(context.Background(), newRedemption(app, uuid.NewString(), "DDDDDDDDDD", newUser, "n@example.com", t0))
			assert.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				created++
			}
			winners[got.ReferrerID] = true
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, 1, created, "exactly one redemption wins")
	assert.Len(t, winners, 1, "every caller sees the winner")
}

func testStats(t *testing.T, s Redemptions) {
	ctx := context.Background()
	app, ref, other := uuid.NewString(), uuid.NewString(), uuid.NewString()
	lim := referral.Limits{}
	var sent referral.Invite
	for i, email := range []string{"a@example.com", "b@example.com", "a@example.com", "c@example.com"} {
		inv := record(t, s, newInvite(app, ref, email, t0.Add(time.Duration(i)*time.Hour)), lim)
		if i == 1 {
			sent = inv
		}
	}
	record(t, s, newInvite(app, other, "a@example.com", t0), lim)
	record(t, s, newInvite(uuid.NewString(), ref, "a@example.com", t0), lim) // another app

	// Deliver b.
	claimedInvites, err := s.ClaimDue(ctx, t0.Add(24*time.Hour), time.Minute, 100)
	require.NoError(t, err)
	for _, inv := range claimedInvites {
		if inv.ID == sent.ID {
			require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: inv.Attempts, Status: referral.StatusSent, At: t0.Add(24 * time.Hour)}))
		}
	}

	// a signs up with ref's code; so does d, whom nobody invited.
	redeem(t, s, newRedemption(app, ref, "EEEEEEEEEE", uuid.NewString(), "a@example.com", t0.Add(48*time.Hour)))
	redeem(t, s, newRedemption(app, ref, "EEEEEEEEEE", uuid.NewString(), "d@example.com", t0.Add(49*time.Hour)))

	st, err := s.Stats(ctx, app, ref)
	require.NoError(t, err)
	assert.Equal(t, referral.Stats{Invited: 4, Sent: 1, Accepted: 1, Redeemed: 2}, st)

	st, err = s.Stats(ctx, app, other)
	require.NoError(t, err)
	assert.Equal(t, referral.Stats{Invited: 1}, st, "a's sign-up is credited to ref, not to other")
}

func testStatsEmpty(t *testing.T, s Redemptions) {
	st, err := s.Stats(context.Background(), uuid.NewString(), uuid.NewString())
	require.NoError(t, err)
	assert.Equal(t, referral.Stats{}, st)
}
