package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// goroutines is how many callers each concurrency case starts at once.
const goroutines = 100

// t0 is the suite's clock origin: millisecond precision and deliberately not
// UTC, so that a store that does not convert times to UTC fails.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 123_000_000, time.FixedZone("UTC+05:30", 5*3600+1800))

// Run runs the conformance suite against stores made by newStore, which must
// return a fresh, empty store for each call.
func Run(t *testing.T, newStore func(t *testing.T) referral.CodeStore) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, s referral.CodeStore)
	}{
		{"EnsureCode/CreatesOnceAndStaysStable", testEnsureCodeStable},
		{"EnsureCode/RetriesTakenCode", testEnsureCodeRetriesTaken},
		{"EnsureCode/GivesUpOnTakenCode", testEnsureCodeGivesUp},
		{"EnsureCode/ConcurrentFirstCalls", testEnsureCodeConcurrent},
		{"ResolveCode", testResolveCode},
		{"RecordInvite/StoresAsGiven", testRecordStoresAsGiven},
		{"RecordInvite/Limit", testRecordLimit},
		{"RecordInvite/LimitScope", testRecordLimitScope},
		{"RecordInvite/Cooldown", testRecordCooldown},
		{"RecordInvite/CooldownIgnoresFailed", testRecordCooldownIgnoresFailed},
		{"RecordInvite/Idempotency", testRecordIdempotency},
		{"RecordInvite/CheckOrder", testRecordCheckOrder},
		{"RecordInvite/InlineRetry", testRecordInlineRetry},
		{"RecordInvite/InlineRetryHoldsLease", testRecordInlineRetryLease},
		{"RecordInvite/ConcurrentInlineRetries", testRecordConcurrentInlineRetries},
		{"RecordInvite/InlineRetryRacesClaimDue", testRecordInlineRetryRacesClaim},
		{"RecordInvite/ConcurrentLimit", testRecordConcurrentLimit},
		{"RecordInvite/ConcurrentIdempotency", testRecordConcurrentIdempotency},
		{"UpdateDelivery/Final", testUpdateFinal},
		{"UpdateDelivery/Retry", testUpdateRetry},
		{"UpdateDelivery/NoOps", testUpdateNoOps},
		{"UpdateDeliveries/AsOneByOne", testUpdateDeliveries},
		{"ClaimDue/DueRules", testClaimDueRules},
		{"ClaimDue/Max", testClaimMax},
		{"ClaimDue/Lease", testClaimLease},
		{"ClaimDue/Concurrent", testClaimConcurrent},
		{"Isolation", testIsolation},
		{"Timestamps", testTimestamps},
		{"OpaqueIDs/Codes", testOpaqueCodes},
		{"OpaqueIDs/Invites", testOpaqueInvites},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStore(t))
		})
	}
}

// newInvite returns a pending, unclaimed invite created at at, with a unique
// idempotency key so that the test can read it back with get.
func newInvite(app, referrer, email string, at time.Time) referral.Invite {
	id := uuid.Must(uuid.NewV7()).String()
	return referral.Invite{
		ID:             id,
		AppID:          app,
		ReferrerID:     referrer,
		ReferrerName:   "Ann Example",
		Email:          email,
		EmailKey:       strings.ToLower(email),
		Language:       "en",
		Code:           "A1B0C2D3E4",
		IdempotencyKey: "key-" + id,
		Status:         referral.StatusPending,
		NextAttemptAt:  at,
		CreatedAt:      at,
		UpdatedAt:      at,
	}
}

// inUTC returns inv with every time in UTC, as a store returns it.
func inUTC(inv referral.Invite) referral.Invite {
	for _, p := range []*time.Time{&inv.NextAttemptAt, &inv.LeaseUntil, &inv.CreatedAt, &inv.UpdatedAt, &inv.SentAt, &inv.ResentAt} {
		*p = p.UTC()
	}
	return inv
}

// assertInvite checks got against want (times compared as instants) and
// that every time in got is in UTC.
func assertInvite(t *testing.T, want, got referral.Invite) {
	t.Helper()
	assert.Equal(t, inUTC(want), got)
	for name, tm := range map[string]time.Time{
		"NextAttemptAt": got.NextAttemptAt, "LeaseUntil": got.LeaseUntil,
		"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt,
		"SentAt": got.SentAt, "ResentAt": got.ResentAt,
	} {
		assert.Equal(t, time.UTC, tm.Location(), "%s is not in UTC", name)
	}
}

// record stores inv, which no check may refuse, and returns what the store
// returned.
func record(t *testing.T, s referral.CodeStore, inv referral.Invite, lim referral.Limits) referral.Invite {
	t.Helper()
	got, replayed, err := s.RecordInvite(t.Context(), inv, lim)
	require.NoError(t, err)
	require.False(t, replayed, "invite %s was replayed", inv.ID)
	assertInvite(t, inv, got)
	return got
}

// refused asserts that the store refuses inv with want.
func refused(t *testing.T, s referral.CodeStore, inv referral.Invite, lim referral.Limits, want referral.LimitError) {
	t.Helper()
	got, replayed, err := s.RecordInvite(t.Context(), inv, lim)
	var le *referral.LimitError
	require.ErrorAs(t, err, &le, "got invite %+v, replayed %v", got, replayed)
	assert.ErrorIs(t, err, referral.ErrRateLimited)
	assert.Equal(t, want, *le)
}

// get reads inv back from the store through an idempotent replay of its key,
// the one read the interface offers that returns every field.
func get(t *testing.T, s referral.CodeStore, inv referral.Invite) referral.Invite {
	t.Helper()
	require.NotEmpty(t, inv.IdempotencyKey)
	probe := newInvite(inv.AppID, inv.ReferrerID, "probe@example.com", inv.CreatedAt)
	probe.IdempotencyKey = inv.IdempotencyKey
	got, replayed, err := s.RecordInvite(t.Context(), probe, referral.Limits{IdempotencyTTL: time.Hour})
	require.NoError(t, err)
	require.True(t, replayed, "invite %s not found by its idempotency key", inv.ID)
	require.Equal(t, inv.ID, got.ID)
	return got
}

// pendingIDs claims every pending invite (at a time after all the suite's
// times) and returns their ids. It changes the store: call it last.
func pendingIDs(t *testing.T, s referral.CodeStore) []string {
	t.Helper()
	claimed, err := s.ClaimDue(t.Context(), t0.Add(1000*24*time.Hour), time.Minute, 100_000)
	require.NoError(t, err)
	ids := make([]string, 0, len(claimed))
	for _, inv := range claimed {
		ids = append(ids, inv.ID)
	}
	return ids
}

// codes returns a newCode function that yields the given codes in turn and
// then fresh random ones, and counts its calls.
func codes(cs ...string) (newCode func() string, calls func() int) {
	var mu sync.Mutex
	n := 0
	newCode = func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n <= len(cs) {
			return cs[n-1]
		}
		return referral.NewCode()
	}
	calls = func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	return newCode, calls
}

func testEnsureCodeStable(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, user := uuid.NewString(), uuid.NewString()
	first, _ := codes("A1B0C2D3E4")
	c, err := s.EnsureCode(ctx, app, user, first)
	require.NoError(t, err)
	assert.Equal(t, "A1B0C2D3E4", c)

	again, _ := codes("FFFFFFFFFF")
	c, err = s.EnsureCode(ctx, app, user, again)
	require.NoError(t, err)
	assert.Equal(t, "A1B0C2D3E4", c, "a user's code must not change")
	_, err = s.ResolveCode(ctx, "FFFFFFFFFF")
	assert.ErrorIs(t, err, referral.ErrCodeNotFound, "a code offered to a user who has one must not be stored")

	other, _ := codes("B2B2B2B2B2")
	c, err = s.EnsureCode(ctx, app, uuid.NewString(), other)
	require.NoError(t, err)
	assert.Equal(t, "B2B2B2B2B2", c, "another user gets a code of their own")
}

func testEnsureCodeRetriesTaken(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, otherApp := uuid.NewString(), uuid.NewString()
	owner, _ := codes("TAKEN00000")
	_, err := s.EnsureCode(ctx, app, uuid.NewString(), owner)
	require.NoError(t, err)

	for _, c := range []struct{ name, app, fresh string }{
		{"same app", app, "FRESH00001"},
		{"other app", otherApp, "FRESH00002"},
	} {
		user, fresh := uuid.NewString(), c.fresh
		newCode, calls := codes("TAKEN00000", fresh)
		got, err := s.EnsureCode(ctx, c.app, user, newCode)
		require.NoError(t, err, c.name)
		assert.Equal(t, fresh, got, "%s: a taken code must not be reused", c.name)
		assert.Equal(t, 2, calls(), "%s: newCode must be called again after a taken code", c.name)
		o, err := s.ResolveCode(ctx, fresh)
		require.NoError(t, err)
		assert.Equal(t, referral.Owner{AppID: c.app, UserID: user}, o)
	}
}

func testEnsureCodeGivesUp(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app := uuid.NewString()
	owner, _ := codes("TAKEN00000")
	_, err := s.EnsureCode(ctx, app, uuid.NewString(), owner)
	require.NoError(t, err)

	var calls int
	user := uuid.NewString()
	_, err = s.EnsureCode(ctx, app, user, func() string { calls++; return "TAKEN00000" })
	require.ErrorIs(t, err, referral.ErrCodeTaken)
	assert.GreaterOrEqual(t, calls, 2, "newCode must be retried before giving up")
	assert.Less(t, calls, 1000, "retries must be bounded")

	// Giving up leaves the user without a code: a later call makes one.
	newCode, _ := codes("NEXT000000")
	c, err := s.EnsureCode(ctx, app, user, newCode)
	require.NoError(t, err)
	assert.Equal(t, "NEXT000000", c)
}

func testEnsureCodeConcurrent(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, user := uuid.NewString(), uuid.NewString()
	got := make([]string, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Go(func() {
			<-start
			// Each caller offers a code of its own: a store that reads, finds
			// none and inserts, unguarded, gives callers different codes
			// or errors.
			got[i], errs[i] = s.EnsureCode(ctx, app, user, referral.NewCode)
		})
	}
	close(start)
	wg.Wait()
	for i := range goroutines {
		require.NoError(t, errs[i])
		require.Equal(t, got[0], got[i], "concurrent first calls must agree on one code")
	}
	o, err := s.ResolveCode(ctx, got[0])
	require.NoError(t, err)
	assert.Equal(t, referral.Owner{AppID: app, UserID: user}, o)
}

func testResolveCode(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, user := uuid.NewString(), uuid.NewString()
	newCode, _ := codes("A1B0C2D3E4")
	_, err := s.EnsureCode(ctx, app, user, newCode)
	require.NoError(t, err)
	owner := referral.Owner{AppID: app, UserID: user}

	for _, c := range []struct {
		in      string
		found   bool
		comment string
	}{
		{"A1B0C2D3E4", true, "canonical"},
		// Callers normalize (referral.NormalizeCode); stores compare exactly.
		{"a1b0c2d3e4", false, "lower case"},
		{"A1B0-C2D3-E4", false, "hyphens"},
		{"AIBOC2D3E4", false, "I and O for 1 and 0"},
		{"A1B0C2D3E5", false, "unknown code"},
		{"A1B0C2D3E", false, "a prefix"},
		{"", false, "empty"},
		{"A1B0C2D3E4'; DROP TABLE codes; --", false, "injection"},
	} {
		o, err := s.ResolveCode(ctx, c.in)
		if c.found {
			require.NoError(t, err, "%q (%s)", c.in, c.comment)
			assert.Equal(t, owner, o, "%q (%s)", c.in, c.comment)
		} else {
			assert.ErrorIs(t, err, referral.ErrCodeNotFound, "%q (%s)", c.in, c.comment)
		}
	}
}

func testRecordStoresAsGiven(t *testing.T, s referral.CodeStore) {
	app, ref := uuid.NewString(), uuid.NewString()
	inv := newInvite(app, ref, "Ann.Smith@example.com", t0)
	inv.Language = "de"
	inv.Attempts = 1
	inv.LastError = "earlier trouble"
	inv.LeaseUntil = t0.Add(30 * time.Second)
	inv.NextAttemptAt = t0.Add(-time.Millisecond)
	inv.UpdatedAt = t0.Add(time.Millisecond)
	inv.ReferrerName = `Zoë "Z" O'Brien-Müller`
	inv.AddressHash = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	inv.SentAt = t0.Add(-2 * time.Millisecond)
	inv.Resends = 2
	inv.ResentAt = t0.Add(-3 * time.Millisecond)
	lim := referral.Limits{MaxPerReferrer: 50, Window: 24 * time.Hour, Cooldown: 15 * time.Minute, IdempotencyTTL: 24 * time.Hour}
	record(t, s, inv, lim)
	assertInvite(t, inv, get(t, s, inv))

	unnamed := newInvite(app, ref, "bob@example.com", t0)
	unnamed.ReferrerName = ""
	record(t, s, unnamed, lim)
	assertInvite(t, unnamed, get(t, s, unnamed))
}

func testRecordLimit(t *testing.T, s referral.CodeStore) {
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerReferrer: 3, Window: time.Hour}
	at := func(d time.Duration) referral.Invite {
		return newInvite(app, ref, uuid.NewString()+"@example.com", t0.Add(d))
	}
	record(t, s, at(0), lim)
	failed := at(10 * time.Minute)
	failed.Status = referral.StatusFailed // failed invites still count
	record(t, s, failed, lim)
	record(t, s, at(20*time.Minute), lim)
	refused(t, s, at(30*time.Minute), lim, referral.LimitError{RetryAfter: 30 * time.Minute})
	refused(t, s, at(time.Hour-time.Millisecond), lim, referral.LimitError{RetryAfter: time.Millisecond})
	// Exactly RetryAfter later the oldest invite has left the window.
	record(t, s, at(time.Hour), lim)
	refused(t, s, at(time.Hour+2*time.Minute), lim, referral.LimitError{RetryAfter: 8 * time.Minute})

	unlimited := referral.Limits{}
	for range 5 {
		record(t, s, at(time.Hour+3*time.Minute), unlimited)
	}
}

func testRecordLimitScope(t *testing.T, s referral.CodeStore) {
	app, otherApp, ref := uuid.NewString(), uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerReferrer: 1, Window: time.Hour}
	record(t, s, newInvite(app, ref, "a@example.com", t0), lim)
	refused(t, s, newInvite(app, ref, "b@example.com", t0), lim, referral.LimitError{RetryAfter: time.Hour})
	record(t, s, newInvite(app, uuid.NewString(), "b@example.com", t0), lim)
	record(t, s, newInvite(otherApp, ref, "b@example.com", t0), lim)
}

func testRecordCooldown(t *testing.T, s referral.CodeStore) {
	app, otherApp, ref := uuid.NewString(), uuid.NewString(), uuid.NewString()
	lim := referral.Limits{Cooldown: 15 * time.Minute}
	record(t, s, newInvite(app, ref, "ann@example.com", t0), lim)

	again := newInvite(app, ref, "ANN@example.com", t0.Add(5*time.Minute))
	again.EmailKey = "ann@example.com" // the key decides, not the spelling
	refused(t, s, again, lim, referral.LimitError{RetryAfter: 10 * time.Minute, Cooldown: true})

	record(t, s, newInvite(app, ref, "bob@example.com", t0.Add(5*time.Minute)), lim)
	record(t, s, newInvite(app, uuid.NewString(), "ann@example.com", t0.Add(5*time.Minute)), lim)
	record(t, s, newInvite(otherApp, ref, "ann@example.com", t0.Add(5*time.Minute)), lim)

	// Exactly RetryAfter later the cooldown is over; the new invite starts
	// another one.
	record(t, s, newInvite(app, ref, "ann@example.com", t0.Add(15*time.Minute)), lim)
	refused(t, s, newInvite(app, ref, "ann@example.com", t0.Add(16*time.Minute)), lim,
		referral.LimitError{RetryAfter: 14 * time.Minute, Cooldown: true})
}

func testRecordCooldownIgnoresFailed(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{Cooldown: 15 * time.Minute}

	// Recorded as failed.
	failed := newInvite(app, ref, "ann@example.com", t0)
	failed.Status = referral.StatusFailed
	record(t, s, failed, lim)
	record(t, s, newInvite(app, ref, "ann@example.com", t0.Add(time.Minute)), lim)

	// Marked failed by its delivery.
	inv := newInvite(app, ref, "bob@example.com", t0)
	inv.Attempts = 1
	record(t, s, inv, lim)
	refused(t, s, newInvite(app, ref, "bob@example.com", t0.Add(time.Minute)), lim,
		referral.LimitError{RetryAfter: 14 * time.Minute, Cooldown: true})
	require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{
		Attempt: 1, Status: referral.StatusFailed, LastError: "550 no such user", At: t0.Add(time.Minute),
	}))
	record(t, s, newInvite(app, ref, "bob@example.com", t0.Add(2*time.Minute)), lim)
}

func testRecordIdempotency(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, otherApp, ref := uuid.NewString(), uuid.NewString(), uuid.NewString()
	lim := referral.Limits{IdempotencyTTL: 24 * time.Hour}
	withKey := func(app, ref, email string, at time.Time, key string) referral.Invite {
		inv := newInvite(app, ref, email, at)
		inv.IdempotencyKey = key
		return inv
	}
	first := record(t, s, withKey(app, ref, "ann@example.com", t0, "K"), lim)
	var stored []string
	stored = append(stored, first.ID)

	// A repeat within the TTL, whatever its email, gets the first invite.
	for _, d := range []time.Duration{0, time.Hour, 24*time.Hour - time.Millisecond} {
		got, replayed, err := s.RecordInvite(ctx, withKey(app, ref, "bob@example.com", t0.Add(d), "K"), lim)
		require.NoError(t, err)
		assert.True(t, replayed, "repeat %s later", d)
		assertInvite(t, first, got)
	}

	// The key belongs to one referrer in one app; without a key or without
	// a TTL nothing is replayed.
	for _, inv := range []referral.Invite{
		withKey(app, uuid.NewString(), "ann@example.com", t0.Add(time.Hour), "K"),
		withKey(otherApp, ref, "ann@example.com", t0.Add(time.Hour), "K"),
		withKey(app, ref, "carl@example.com", t0.Add(time.Hour), ""),
	} {
		stored = append(stored, record(t, s, inv, lim).ID)
	}
	ref2 := uuid.NewString()
	for range 2 {
		stored = append(stored, record(t, s, withKey(app, ref2, "dora@example.com", t0, "K"), referral.Limits{}).ID)
	}

	// Exactly the TTL later the key makes a new invite, which later repeats
	// get.
	second := record(t, s, withKey(app, ref, "eve@example.com", t0.Add(24*time.Hour), "K"), lim)
	stored = append(stored, second.ID)
	got, replayed, err := s.RecordInvite(ctx, withKey(app, ref, "ann@example.com", t0.Add(25*time.Hour), "K"), lim)
	require.NoError(t, err)
	assert.True(t, replayed)
	assertInvite(t, second, got)

	assert.ElementsMatch(t, stored, pendingIDs(t, s), "replays must store nothing")
}

func testRecordCheckOrder(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerReferrer: 1, Window: time.Hour, Cooldown: 15 * time.Minute, IdempotencyTTL: time.Hour}
	first := record(t, s, newInvite(app, ref, "ann@example.com", t0), lim)

	// 1 before 2 and 3: a replay is not refused by the limit or cooldown.
	repeat := newInvite(app, ref, "ann@example.com", t0.Add(time.Minute))
	repeat.IdempotencyKey = first.IdempotencyKey
	got, replayed, err := s.RecordInvite(ctx, repeat, lim)
	require.NoError(t, err)
	assert.True(t, replayed)
	assert.Equal(t, first.ID, got.ID)

	// 2 before 3: both apply, the limit answers.
	refused(t, s, newInvite(app, ref, "ann@example.com", t0.Add(time.Minute)), lim,
		referral.LimitError{RetryAfter: 59 * time.Minute})
}

// inlineRetry returns a repeat of earlier's request, made at at by a caller
// that delivers inline: it claims the invite itself, with a lease of a
// minute.
func inlineRetry(earlier referral.Invite, at time.Time) referral.Invite {
	inv := newInvite(earlier.AppID, earlier.ReferrerID, earlier.Email, at)
	inv.IdempotencyKey = earlier.IdempotencyKey
	inv.Language = earlier.Language
	inv.Attempts = 1
	inv.LeaseUntil = at.Add(time.Minute)
	return inv
}

// retried returns earlier as RecordInvite claims it again for retry.
func retried(earlier, retry referral.Invite) referral.Invite {
	earlier.Status = referral.StatusPending
	earlier.Attempts++
	earlier.LeaseUntil = retry.LeaseUntil
	earlier.NextAttemptAt = retry.CreatedAt
	earlier.UpdatedAt = retry.CreatedAt
	return earlier
}

// retryLimits are limits that the earlier invite of a retry alone uses up:
// a reclaim passes them, as it adds no invite.
var retryLimits = referral.Limits{MaxPerReferrer: 1, Window: 24 * time.Hour, Cooldown: 24 * time.Hour, IdempotencyTTL: 24 * time.Hour}

func testRecordInlineRetry(t *testing.T, s referral.CodeStore) {
	retryAt := t0.Add(time.Hour)
	for _, c := range []struct {
		name    string
		earlier func(*referral.Invite)
		retry   func(*referral.Invite)
		reclaim bool
	}{
		{"failed", func(inv *referral.Invite) { inv.Status = referral.StatusFailed }, nil, true},
		{"pending, lease held", func(inv *referral.Invite) { inv.LeaseUntil = retryAt.Add(time.Millisecond) }, nil, false},
		{"pending, lease run out", func(inv *referral.Invite) { inv.LeaseUntil = retryAt }, nil, true},
		{"pending, never claimed", func(inv *referral.Invite) { inv.Attempts, inv.LeaseUntil = 0, time.Time{} }, nil, true},
		{"sent", func(inv *referral.Invite) { inv.Status = referral.StatusSent }, nil, false},
		{"queued repeat", func(inv *referral.Invite) { inv.Status = referral.StatusFailed },
			func(inv *referral.Invite) { inv.Attempts, inv.LeaseUntil = 0, time.Time{} }, false},
		{"other address", func(inv *referral.Invite) { inv.Status = referral.StatusFailed },
			func(inv *referral.Invite) { inv.Email, inv.EmailKey = "bob@example.com", "bob@example.com" }, false},
		{"other language", func(inv *referral.Invite) { inv.Status = referral.StatusFailed },
			func(inv *referral.Invite) { inv.Language = "de" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			earlier := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
			earlier.Attempts = 1
			earlier.LastError = "421 try later"
			earlier.LeaseUntil = t0.Add(time.Minute)
			c.earlier(&earlier)
			earlier = record(t, s, earlier, retryLimits)

			retry := inlineRetry(earlier, retryAt)
			if c.retry != nil {
				c.retry(&retry)
			}
			got, replayed, err := s.RecordInvite(t.Context(), retry, retryLimits)
			require.NoError(t, err)
			want := earlier
			if c.reclaim {
				want = retried(earlier, retry)
			}
			assert.Equal(t, !c.reclaim, replayed, "replayed")
			assertInvite(t, want, got)
			assertInvite(t, want, get(t, s, earlier))
		})
	}
}

func testRecordInlineRetryLease(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	earlier := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	earlier.Status = referral.StatusFailed
	earlier.Attempts = 1
	record(t, s, earlier, retryLimits)
	retry := inlineRetry(earlier, t0.Add(time.Hour))
	got, replayed, err := s.RecordInvite(ctx, retry, retryLimits)
	require.NoError(t, err)
	require.False(t, replayed)

	// The caller holds the invite until its lease runs out.
	for _, now := range []time.Time{retry.CreatedAt, retry.LeaseUntil.Add(-time.Millisecond)} {
		claimed, err := s.ClaimDue(ctx, now, time.Minute, 10)
		require.NoError(t, err)
		assert.Empty(t, claimed, "claimed %s after the retry", now.Sub(retry.CreatedAt))
	}
	// Its outcome is the attempt's, as for any claim.
	require.NoError(t, s.UpdateDelivery(ctx, got.ID, referral.Delivery{Attempt: 2, Status: referral.StatusSent, At: retry.CreatedAt.Add(time.Second)}))
	want := got
	want.Status, want.LeaseUntil, want.UpdatedAt = referral.StatusSent, time.Time{}, retry.CreatedAt.Add(time.Second)
	want.SentAt = want.UpdatedAt
	assertInvite(t, want, get(t, s, earlier))
	assert.Empty(t, pendingIDs(t, s), "a reclaim adds no invite")
}

func testRecordConcurrentInlineRetries(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	earlier := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	earlier.Status = referral.StatusFailed
	earlier.Attempts = 1
	record(t, s, earlier, retryLimits)
	retry := inlineRetry(earlier, t0.Add(time.Hour))

	got := make([]referral.Invite, goroutines)
	replayed := make([]bool, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Go(func() {
			<-start
			inv := retry
			inv.ID = uuid.Must(uuid.NewV7()).String()
			got[i], replayed[i], errs[i] = s.RecordInvite(ctx, inv, retryLimits)
		})
	}
	close(start)
	wg.Wait()
	holders := 0
	for i := range goroutines {
		require.NoError(t, errs[i])
		assert.Equal(t, earlier.ID, got[i].ID, "every retry must get the one invite")
		if !replayed[i] {
			holders++
			assertInvite(t, retried(earlier, retry), got[i])
		}
	}
	assert.Equal(t, 1, holders, "exactly one retry may deliver")
	assertInvite(t, retried(earlier, retry), get(t, s, earlier))
}

func testRecordInlineRetryRacesClaim(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	// An inline attempt whose process died: pending, its lease run out.
	earlier := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	earlier.Attempts = 1
	earlier.LeaseUntil = t0.Add(time.Minute)
	record(t, s, earlier, retryLimits)
	retry := inlineRetry(earlier, t0.Add(time.Hour))

	held := make([]bool, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Go(func() {
			<-start
			if i%2 == 0 {
				var replayed bool
				_, replayed, errs[i] = s.RecordInvite(ctx, retry, retryLimits)
				held[i] = !replayed
				return
			}
			var claimed []referral.Invite
			claimed, errs[i] = s.ClaimDue(ctx, retry.CreatedAt, time.Minute, 10)
			held[i] = len(claimed) == 1
		})
	}
	close(start)
	wg.Wait()
	holders := 0
	for i := range goroutines {
		require.NoError(t, errs[i])
		if held[i] {
			holders++
		}
	}
	assert.Equal(t, 1, holders, "a retry and the workers must not both hold the invite")
	assert.Equal(t, 2, get(t, s, earlier).Attempts)
}

func testRecordConcurrentLimit(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	const limit = 10
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerReferrer: limit, Window: time.Hour, Cooldown: time.Hour, IdempotencyTTL: time.Hour}
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Go(func() {
			<-start
			inv := newInvite(app, ref, uuid.NewString()+"@example.com", t0.Add(time.Duration(i)*time.Millisecond))
			_, _, errs[i] = s.RecordInvite(ctx, inv, lim)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		var le *referral.LimitError
		require.ErrorAs(t, err, &le)
		assert.False(t, le.Cooldown)
	}
	assert.Equal(t, limit, ok, "exactly the limit may pass")
	assert.Len(t, pendingIDs(t, s), limit)
}

func testRecordConcurrentIdempotency(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerReferrer: 50, Window: time.Hour, Cooldown: time.Hour, IdempotencyTTL: time.Hour}
	got := make([]referral.Invite, goroutines)
	replayed := make([]bool, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Go(func() {
			<-start
			inv := newInvite(app, ref, "ann@example.com", t0)
			inv.IdempotencyKey = "same"
			got[i], replayed[i], errs[i] = s.RecordInvite(ctx, inv, lim)
		})
	}
	close(start)
	wg.Wait()
	firsts := 0
	for i := range goroutines {
		require.NoError(t, errs[i])
		if !replayed[i] {
			firsts++
		}
		assert.Equal(t, got[0].ID, got[i].ID, "every caller must see the one stored invite")
	}
	assert.Equal(t, 1, firsts, "exactly one call may store")
	assert.Len(t, pendingIDs(t, s), 1)
}

// claimed returns inv as ClaimDue at now with lease returns it.
func claimed(inv referral.Invite, now time.Time, lease time.Duration) referral.Invite {
	inv.Attempts++
	inv.LeaseUntil = now.Add(lease)
	return inv
}

func testUpdateFinal(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	for _, c := range []struct {
		status  referral.Status
		lastErr string
	}{
		{referral.StatusSent, ""},
		{referral.StatusFailed, "550 mailbox unavailable"},
	} {
		inv := newInvite(app, ref, string(c.status)+"@example.com", t0)
		inv.Attempts = 1
		inv.LeaseUntil = t0.Add(30 * time.Second)
		record(t, s, inv, referral.Limits{})
		d := referral.Delivery{Attempt: 1, Status: c.status, LastError: c.lastErr, NextAttemptAt: t0.Add(time.Hour), At: t0.Add(2 * time.Second)}
		require.NoError(t, s.UpdateDelivery(ctx, inv.ID, d))

		want := inv
		want.Status, want.LastError = c.status, c.lastErr
		want.LeaseUntil = time.Time{} // released
		want.UpdatedAt = d.At
		if c.status == referral.StatusSent {
			want.SentAt = d.At
		}
		assertInvite(t, want, get(t, s, inv))

		// Final: later updates, even of the same attempt, change nothing.
		require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: 1, Status: referral.StatusPending, NextAttemptAt: t0, At: t0.Add(3 * time.Second)}))
		require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: 1, Status: referral.StatusSent, At: t0.Add(3 * time.Second)}))
		assertInvite(t, want, get(t, s, inv))
	}
	assert.Empty(t, pendingIDs(t, s), "final invites are never claimed")
}

func testUpdateRetry(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	inv := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	record(t, s, inv, referral.Limits{})
	got, err := s.ClaimDue(ctx, t0, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, 1, got[0].Attempts)

	d := referral.Delivery{Attempt: 1, Status: referral.StatusPending, LastError: "421 try later", NextAttemptAt: t0.Add(30 * time.Second), At: t0.Add(time.Second)}
	require.NoError(t, s.UpdateDelivery(ctx, inv.ID, d))
	want := inv
	want.Attempts = 1
	want.LastError = d.LastError
	want.NextAttemptAt = d.NextAttemptAt
	want.UpdatedAt = d.At
	assertInvite(t, want, get(t, s, inv))

	// The lease was released: due again at NextAttemptAt, not before.
	got, err = s.ClaimDue(ctx, t0.Add(30*time.Second-time.Millisecond), time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = s.ClaimDue(ctx, t0.Add(30*time.Second), time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, 2, got[0].Attempts)
}

func testUpdateNoOps(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	inv := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	inv.Attempts = 2
	inv.LeaseUntil = t0.Add(time.Minute)
	record(t, s, inv, referral.Limits{})

	for _, d := range []referral.Delivery{
		{Attempt: 1, Status: referral.StatusSent, At: t0.Add(time.Second)},                                      // an older attempt
		{Attempt: 3, Status: referral.StatusFailed, LastError: "x", At: t0.Add(time.Second)},                    // a newer one
		{Attempt: 1, Status: referral.StatusPending, NextAttemptAt: t0.Add(time.Hour), At: t0.Add(time.Second)}, // stale retry
	} {
		require.NoError(t, s.UpdateDelivery(ctx, inv.ID, d))
		assertInvite(t, inv, get(t, s, inv))
	}
	require.NoError(t, s.UpdateDelivery(ctx, uuid.NewString(), referral.Delivery{Attempt: 0, Status: referral.StatusSent, At: t0}),
		"an unknown invite is a no-op")
}

// testUpdateDeliveries: a DeliveryBatchStore's UpdateDeliveries leaves
// invites as the same updates one by one through UpdateDelivery do, in
// order, no-ops included. Two twin sets of invites, in two apps, take the
// same updates, one set in one call, the other one update at a time.
func testUpdateDeliveries(t *testing.T, s referral.CodeStore) {
	b, ok := s.(referral.DeliveryBatchStore)
	if !ok {
		t.Skip("not a referral.DeliveryBatchStore")
	}
	ctx := t.Context()
	one, batch := uuid.NewString(), uuid.NewString() // the apps
	ref := uuid.NewString()
	type twins struct{ one, batch referral.Invite }
	var invites []twins
	for i := range 5 {
		inv := newInvite(one, ref, fmt.Sprintf("p%d@example.com", i), t0.Add(time.Duration(i)*time.Millisecond))
		inv.Attempts = 1
		inv.LeaseUntil = t0.Add(time.Minute)
		twin := inv
		twin.ID, twin.AppID = uuid.Must(uuid.NewV7()).String(), batch
		twin.IdempotencyKey = "key-" + twin.ID
		invites = append(invites, twins{record(t, s, inv, referral.Limits{}), record(t, s, twin, referral.Limits{})})
	}
	at := t0.Add(time.Second)
	updates := []struct {
		invite int
		d      referral.Delivery
	}{
		{0, referral.Delivery{Attempt: 1, Status: referral.StatusSent, At: at}},
		{1, referral.Delivery{Attempt: 1, Status: referral.StatusFailed, LastError: "550 no such user", At: at}},
		{2, referral.Delivery{Attempt: 1, Status: referral.StatusPending, LastError: "421 later", NextAttemptAt: at.Add(time.Hour), At: at}},
		{3, referral.Delivery{Attempt: 2, Status: referral.StatusSent, At: at}}, // not its attempt: a no-op
		// In order: a retry, then a send of the same attempt, then a stale retry.
		{4, referral.Delivery{Attempt: 1, Status: referral.StatusPending, LastError: "451", NextAttemptAt: at.Add(time.Minute), At: at}},
		{4, referral.Delivery{Attempt: 1, Status: referral.StatusSent, At: at.Add(time.Millisecond)}},
		{4, referral.Delivery{Attempt: 1, Status: referral.StatusPending, LastError: "x", NextAttemptAt: at, At: at.Add(2 * time.Millisecond)}},
	}
	var all []referral.DeliveryUpdate
	for _, u := range updates {
		require.NoError(t, s.UpdateDelivery(ctx, invites[u.invite].one.ID, u.d))
		all = append(all, referral.DeliveryUpdate{InviteID: invites[u.invite].batch.ID, Delivery: u.d})
	}
	all = append(all, referral.DeliveryUpdate{InviteID: uuid.NewString(), Delivery: referral.Delivery{Attempt: 1, Status: referral.StatusSent, At: at}})
	require.NoError(t, b.UpdateDeliveries(ctx, all))
	require.NoError(t, b.UpdateDeliveries(ctx, nil), "no updates: a no-op")

	// What the updates one by one left: the comparison below means
	// something only if they did something.
	status := []referral.Status{referral.StatusSent, referral.StatusFailed, referral.StatusPending, referral.StatusPending, referral.StatusSent}
	for i, tw := range invites {
		want := get(t, s, tw.one)
		assert.Equal(t, status[i], want.Status, "invite %d, updated one by one", i)
		assert.Equal(t, i == 3, want.UpdatedAt.Equal(tw.one.UpdatedAt), "invite %d, updated one by one: only the no-op leaves it as it was", i)
		got := get(t, s, tw.batch)
		got.ID, got.AppID, got.IdempotencyKey = want.ID, want.AppID, want.IdempotencyKey
		assertInvite(t, want, got)
	}
}

func testClaimDueRules(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	mk := func(email string, next time.Time, mod func(*referral.Invite)) referral.Invite {
		inv := newInvite(app, ref, email, t0.Add(-time.Hour))
		inv.NextAttemptAt = next
		if mod != nil {
			mod(&inv)
		}
		return record(t, s, inv, referral.Limits{})
	}
	dueNow := mk("due-now@example.com", t0, nil)
	dueEarlier := mk("due-earlier@example.com", t0.Add(-time.Millisecond), nil)
	leaseEnded := mk("lease-ended@example.com", t0.Add(-time.Minute), func(inv *referral.Invite) {
		inv.Attempts, inv.LeaseUntil = 1, t0
	})
	mk("later@example.com", t0.Add(time.Millisecond), nil)
	mk("leased@example.com", t0.Add(-time.Minute), func(inv *referral.Invite) {
		inv.Attempts, inv.LeaseUntil = 1, t0.Add(time.Millisecond)
	})
	mk("sent@example.com", t0.Add(-time.Minute), func(inv *referral.Invite) { inv.Status = referral.StatusSent })
	mk("failed@example.com", t0.Add(-time.Minute), func(inv *referral.Invite) { inv.Status = referral.StatusFailed })

	got, err := s.ClaimDue(ctx, t0, 5*time.Minute, 100)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, want := range []referral.Invite{leaseEnded, dueEarlier, dueNow} { // oldest due first
		want = claimed(want, t0, 5*time.Minute)
		want.UpdatedAt = got[i].UpdatedAt // not part of the contract
		assertInvite(t, want, got[i])
		stored := get(t, s, want)
		want.UpdatedAt = stored.UpdatedAt
		assertInvite(t, want, stored)
	}
}

func testClaimMax(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	var ids []string
	for i := range 5 {
		inv := newInvite(app, ref, uuid.NewString()+"@example.com", t0)
		inv.NextAttemptAt = t0.Add(time.Duration(i-10) * time.Millisecond)
		ids = append(ids, record(t, s, inv, referral.Limits{}).ID)
	}
	for _, max := range []int{0, -1} {
		got, err := s.ClaimDue(ctx, t0, time.Minute, max)
		require.NoError(t, err)
		assert.Empty(t, got, "max %d", max)
	}
	var order []string
	for _, want := range []int{2, 2, 1, 0} {
		got, err := s.ClaimDue(ctx, t0, time.Minute, 2)
		require.NoError(t, err)
		require.Len(t, got, want)
		for _, inv := range got {
			order = append(order, inv.ID)
		}
	}
	assert.Equal(t, ids, order, "oldest due first")
}

func testClaimLease(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	inv := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	record(t, s, inv, referral.Limits{})
	for _, c := range []struct {
		now      time.Time
		attempts int // 0: not claimed
	}{
		{t0, 1},
		{t0, 0},
		{t0.Add(time.Minute - time.Millisecond), 0},
		{t0.Add(time.Minute), 2}, // the lease has run out: reclaimed
		{t0.Add(time.Minute + time.Second), 0},
		{t0.Add(3 * time.Minute), 3},
	} {
		got, err := s.ClaimDue(ctx, c.now, time.Minute, 10)
		require.NoError(t, err)
		if c.attempts == 0 {
			assert.Empty(t, got, "at %s", c.now.Sub(t0))
			continue
		}
		require.Len(t, got, 1, "at %s", c.now.Sub(t0))
		assert.Equal(t, c.attempts, got[0].Attempts)
		assert.True(t, got[0].LeaseUntil.Equal(c.now.Add(time.Minute)))
	}
}

func testClaimConcurrent(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	const invites = 60
	app := uuid.NewString()
	for i := range invites {
		inv := newInvite(app, uuid.NewString(), "ann@example.com", t0)
		inv.NextAttemptAt = t0.Add(time.Duration(i) * time.Millisecond)
		record(t, s, inv, referral.Limits{})
	}
	got := make([][]referral.Invite, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.ClaimDue(ctx, t0.Add(time.Second), time.Minute, 2)
		})
	}
	close(start)
	wg.Wait()
	seen := map[string]bool{}
	for i := range goroutines {
		require.NoError(t, errs[i])
		for _, inv := range got[i] {
			require.False(t, seen[inv.ID], "invite %s claimed twice", inv.ID)
			seen[inv.ID] = true
			assert.Equal(t, 1, inv.Attempts)
		}
	}
	assert.Len(t, seen, invites, "every due invite is claimed once")
}

func testIsolation(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app1, app2, user := uuid.NewString(), uuid.NewString(), uuid.NewString()
	c1, err := s.EnsureCode(ctx, app1, user, referral.NewCode)
	require.NoError(t, err)
	c2, err := s.EnsureCode(ctx, app2, user, referral.NewCode)
	require.NoError(t, err)
	assert.NotEqual(t, c1, c2, "one user id in two apps is two referrers")
	for _, c := range []struct{ code, app string }{{c1, app1}, {c2, app2}} {
		o, err := s.ResolveCode(ctx, c.code)
		require.NoError(t, err)
		assert.Equal(t, referral.Owner{AppID: c.app, UserID: user}, o)
	}

	lim := referral.Limits{MaxPerReferrer: 1, Window: time.Hour, Cooldown: time.Hour, IdempotencyTTL: time.Hour}
	inv1 := newInvite(app1, user, "ann@example.com", t0)
	inv1.IdempotencyKey = "K"
	record(t, s, inv1, lim)
	inv2 := newInvite(app2, user, "ann@example.com", t0)
	inv2.IdempotencyKey = "K"
	record(t, s, inv2, lim)
}

func testTimestamps(t *testing.T, s referral.CodeStore) {
	ctx := t.Context()
	app := uuid.NewString()
	for i, at := range []time.Time{
		t0,
		t0.UTC(),
		time.Date(1999, 12, 31, 23, 59, 59, 999_000_000, time.FixedZone("west", -8*3600)),
		time.Date(2099, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
		time.Date(2020, 6, 1, 12, 0, 0, 0, time.Local),
	} {
		inv := newInvite(app, uuid.NewString(), "ann@example.com", at)
		inv.LeaseUntil = at.Add(time.Millisecond)
		inv.NextAttemptAt = at.Add(-time.Millisecond)
		inv.UpdatedAt = at.Add(2 * time.Millisecond)
		inv.SentAt = at.Add(-2 * time.Millisecond)
		inv.ResentAt = at.Add(-3 * time.Millisecond)
		record(t, s, inv, referral.Limits{})
		assertInvite(t, inv, get(t, s, inv))

		d := referral.Delivery{Attempt: 0, Status: referral.StatusPending, NextAttemptAt: at.Add(3 * time.Millisecond), At: at.Add(4 * time.Millisecond)}
		require.NoError(t, s.UpdateDelivery(ctx, inv.ID, d), "time %d", i)
		want := inv
		want.LeaseUntil = time.Time{}
		want.NextAttemptAt, want.UpdatedAt = d.NextAttemptAt, d.At
		assertInvite(t, want, get(t, s, inv))
	}
}
