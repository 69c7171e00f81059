package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// Host ids (DESIGN 9): opaque strings of 1-128 bytes of [A-Za-z0-9._:@-],
// compared byte by byte, and app ids that may be empty. Each pair of
// neighbours differs in a way a store must not blur: case, a prefix, a
// separator.
var (
	opaqueApps  = []string{"", "acme", "ACME"}
	opaqueUsers = []string{
		"42", "042", "user:7", "user:70", "Alice", "alice", "alice.smith", "alice.smith@example.com",
		"a-b_c.d:e@f", strings.Repeat("z", 128), strings.Repeat("z", 127),
	}
)

func testOpaqueCodes(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	owners := map[string]referral.Owner{}
	for _, app := range opaqueApps {
		for _, user := range opaqueUsers {
			c, err := s.EnsureCode(ctx, app, user, referral.NewCode)
			require.NoError(t, err, "app %q user %q", app, user)
			require.NotContains(t, owners, c, "app %q user %q got the code of %+v", app, user, owners[c])
			owners[c] = referral.Owner{AppID: app, UserID: user}
		}
	}
	for c, want := range owners {
		o, err := s.ResolveCode(ctx, c)
		require.NoError(t, err)
		assert.Equal(t, want, o)
		again, err := s.EnsureCode(ctx, want.AppID, want.UserID, referral.NewCode)
		require.NoError(t, err)
		assert.Equal(t, c, again, "app %q user %q", want.AppID, want.UserID)
	}
}

func testOpaqueInvites(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	lim := referral.Limits{MaxPerReferrer: 1, Window: time.Hour, Cooldown: time.Hour, IdempotencyTTL: time.Hour}
	var recorded []referral.Invite
	for _, app := range opaqueApps {
		for _, user := range opaqueUsers {
			// The same address and key for every referrer: none of them
			// may be taken for another's.
			inv := newInvite(app, user, "ann@example.com", t0)
			inv.IdempotencyKey = "K"
			recorded = append(recorded, record(t, s, inv, lim))
		}
	}
	for _, inv := range recorded {
		again := newInvite(inv.AppID, inv.ReferrerID, "bob@example.com", t0.Add(time.Minute))
		refused(t, s, again, lim, referral.LimitError{RetryAfter: 59 * time.Minute})
		got := get(t, s, inv)
		assertInvite(t, inv, got)
	}

	claimed, err := s.ClaimDue(ctx, t0, time.Minute, 1000)
	require.NoError(t, err)
	require.Len(t, claimed, len(recorded))
	byID := map[string]referral.Invite{}
	for _, inv := range claimed {
		byID[inv.ID] = inv
	}
	for _, inv := range recorded {
		got, ok := byID[inv.ID]
		require.True(t, ok, "invite of app %q user %q not claimed", inv.AppID, inv.ReferrerID)
		assert.Equal(t, inv.AppID, got.AppID)
		assert.Equal(t, inv.ReferrerID, got.ReferrerID)
		assert.Equal(t, inv.ReferrerName, got.ReferrerName)
	}
}

func testOpaqueRedemptions(t *testing.T, s Redemptions) {
	ctx := t.Context()
	for _, app := range opaqueApps {
		// Alice invites two addresses; one signs up as "42", and "alice"
		// (another user) redeems nothing.
		record(t, s, newInvite(app, "Alice", "a@example.com", t0), referral.Limits{})
		record(t, s, newInvite(app, "Alice", "b@example.com", t0), referral.Limits{})
		r := newRedemption(app, "Alice", "AAAAAAAAAA", "42", "a@example.com", t0.Add(time.Hour))
		got, created := redeem(t, s, r)
		assert.True(t, created, "app %q", app)
		assert.Equal(t, r.NewUserID, got.NewUserID)
		assert.Equal(t, r.AppID, got.AppID)
		for _, newUser := range []string{"042", "user:42", "user:4"} {
			_, created := redeem(t, s, newRedemption(app, "alice", "BBBBBBBBBB", newUser, newUser+"@example.com", t0.Add(time.Hour)))
			assert.True(t, created, "app %q new user %q is not 42", app, newUser)
		}
		_, created = redeem(t, s, newRedemption(app, "alice", "BBBBBBBBBB", "42", "a@example.com", t0.Add(2*time.Hour)))
		assert.False(t, created, "app %q: 42 redeemed already", app)

		st, err := s.Stats(ctx, app, "Alice")
		require.NoError(t, err)
		assert.Equal(t, referral.Stats{Invited: 2, Accepted: 1, Redeemed: 1}, st, "app %q", app)
		st, err = s.Stats(ctx, app, "alice")
		require.NoError(t, err)
		assert.Equal(t, referral.Stats{Redeemed: 3}, st, "app %q", app)
		st, err = s.Stats(ctx, app, "ALICE")
		require.NoError(t, err)
		assert.Equal(t, referral.Stats{}, st, "app %q", app)
	}
}
