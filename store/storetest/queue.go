package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// Queue is a store that shows referrers their invites and tells the
// delivery queue's length, as the stores of this module do.
type Queue interface {
	Referrers
	referral.QueueStore
}

// RunQueue runs the QueueStore suite against stores made by newStore,
// which must return a fresh, empty store for each call.
func RunQueue(t *testing.T, newStore func(t *testing.T) Queue) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, s Queue)
	}{
		{"Queue/PendingOnly", testQueuePendingOnly},
		{"Queue/Resent", testQueueResent},
		{"Queue/Reclaimed", testQueueReclaimed},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStore(t))
		})
	}
}

// queueOf reads the queue and checks that its oldest time is in UTC (or
// zero).
func queueOf(t *testing.T, s Queue) (int, time.Time) {
	t.Helper()
	depth, oldest, err := s.Queue(t.Context())
	require.NoError(t, err)
	if !oldest.IsZero() {
		assert.Equal(t, time.UTC, oldest.Location(), "the oldest time is not in UTC")
	}
	return depth, oldest
}

// assertQueue checks that the queue holds depth invites, the one waiting
// longest since oldest (zero for none), equal to the millisecond.
func assertQueue(t *testing.T, s Queue, depth int, oldest time.Time, msg string) {
	t.Helper()
	gotDepth, gotOldest := queueOf(t, s)
	assert.Equal(t, depth, gotDepth, "depth: %s", msg)
	assert.Equal(t, oldest.UTC(), gotOldest, "oldest: %s", msg)
}

func testQueuePendingOnly(t *testing.T, s Queue) {
	ctx := t.Context()
	assertQueue(t, s, 0, time.Time{}, "an empty store")

	appA, appB, ref := uuid.NewString(), uuid.NewString(), uuid.NewString()
	ms := time.Millisecond

	// Invites that are not pending, older than every pending one: none
	// counts, none is the oldest.
	sentInvite(t, s, addressed(appA, ref, "sent@example.com", t0), t0)
	failed := addressed(appB, ref, "failed@example.com", t0)
	failed.Status, failed.LastError = referral.StatusFailed, "550"
	record(t, s, failed, referral.Limits{})
	suppressed := addressed(appB, ref, "suppressed@example.com", t0)
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: appB, AddressHash: suppressed.AddressHash, Reason: referral.ReasonHost, CreatedAt: t0}))
	recordSuppressed(t, s, suppressed, referral.Limits{}, referral.ReasonHost)
	revoked := record(t, s, addressed(appA, ref, "revoked@example.com", t0), referral.Limits{})
	require.NoError(t, s.Revoke(ctx, appA, ref, revoked.ID, t0))
	assertQueue(t, s, 0, time.Time{}, "no invite is pending")

	// Pending invites of two apps; b1 is the oldest, to the millisecond.
	b1 := record(t, s, addressed(appB, ref, "b1@example.com", t0.Add(30*time.Minute+456*ms)), referral.Limits{})
	a1 := record(t, s, addressed(appA, ref, "a1@example.com", t0.Add(time.Hour+1*ms)), referral.Limits{})
	a2 := record(t, s, addressed(appA, ref, "a2@example.com", t0.Add(2*time.Hour+2*ms)), referral.Limits{})
	b2 := record(t, s, addressed(appB, ref, "b2@example.com", t0.Add(3*time.Hour+3*ms)), referral.Limits{})
	a3 := record(t, s, addressed(appA, ref, "a3@example.com", t0.Add(4*time.Hour+4*ms)), referral.Limits{})
	assertQueue(t, s, 5, b1.CreatedAt, "five pending invites of two apps")

	// Claimed: still pending, under a lease.
	claimed, err := s.ClaimDue(ctx, b1.CreatedAt, time.Hour, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, b1.ID, claimed[0].ID)
	assertQueue(t, s, 5, b1.CreatedAt, "a claimed invite")

	// Sent.
	require.NoError(t, s.UpdateDelivery(ctx, b1.ID, referral.Delivery{Attempt: claimed[0].Attempts, Status: referral.StatusSent, At: b1.CreatedAt.Add(time.Second)}))
	assertQueue(t, s, 4, a1.CreatedAt, "after the oldest was sent")

	// Failed. deliver claims every due invite, so a2, b2 and a3 are held
	// under leases now, and still count.
	at := t0.Add(5 * time.Hour)
	assert.Equal(t, referral.StatusFailed, deliver(t, s, a1, referral.StatusFailed, at).Status)
	assertQueue(t, s, 3, a2.CreatedAt, "after the oldest failed, the others claimed")

	// Revoked while claimed.
	require.NoError(t, s.Revoke(ctx, appA, ref, a2.ID, at))
	assertQueue(t, s, 2, b2.CreatedAt, "after the oldest was revoked")

	// Suppressed while claimed.
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: appB, AddressHash: b2.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: at}))
	assert.Equal(t, referral.StatusSuppressed, getInvite(t, s, b2).Status)
	assertQueue(t, s, 1, a3.CreatedAt, "after the oldest was suppressed")

	require.NoError(t, s.Revoke(ctx, appA, ref, a3.ID, at))
	assertQueue(t, s, 0, time.Time{}, "after the last was revoked")
}

// testQueueResent: a resent invite is in the queue since its resend, not
// since it was created: resent 25 hours after it was sent, it has waited
// a moment, not 25 hours.
func testQueueResent(t *testing.T, s Queue) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	ms := time.Millisecond

	inv := record(t, s, addressed(app, ref, "ann@example.com", t0), referral.Limits{})
	assert.Equal(t, referral.StatusSent, deliver(t, s, inv, referral.StatusSent, t0.Add(time.Second)).Status)
	other := record(t, s, addressed(app, ref, "bob@example.com", t0.Add(10*time.Hour+7*ms)), referral.Limits{})
	assertQueue(t, s, 1, other.CreatedAt, "one invite sent, one pending")

	resentAt := t0.Add(25*time.Hour + 5*ms)
	_, err := s.Resend(ctx, resendOf(inv, resentAt), referral.Limits{})
	require.NoError(t, err)
	assertQueue(t, s, 2, other.CreatedAt, "the other has waited longer than the resend")

	require.NoError(t, s.Revoke(ctx, app, ref, other.ID, resentAt))
	assertQueue(t, s, 1, resentAt, "the resend waits since it was asked for")

	// Claimed, then retried: still in the queue since the resend.
	claimed, err := s.ClaimDue(ctx, resentAt, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	assertQueue(t, s, 1, resentAt, "the resend claimed")
	require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: claimed[0].Attempts, Status: referral.StatusPending,
		LastError: "421 try later", NextAttemptAt: resentAt.Add(time.Hour), At: resentAt.Add(time.Second)}))
	assertQueue(t, s, 1, resentAt, "the resend to be retried")
}

// testQueueReclaimed: a failed invite that RecordInvite reclaims for an
// inline retry is in the queue since the reclaim, even once that attempt
// asks for a retry; a stranded pending one it reclaims never left the
// queue, and waits since it was created.
func testQueueReclaimed(t *testing.T, s Queue) {
	ctx := t.Context()
	lim := referral.Limits{IdempotencyTTL: day}
	ms := time.Millisecond

	failed := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	failed.Attempts, failed.LeaseUntil = 1, t0.Add(time.Minute)
	failed = record(t, s, failed, lim)
	require.NoError(t, s.UpdateDelivery(ctx, failed.ID, referral.Delivery{Attempt: 1, Status: referral.StatusFailed, LastError: "550", At: t0.Add(time.Second)}))
	assertQueue(t, s, 0, time.Time{}, "the invite failed")

	reclaimAt := t0.Add(20*time.Hour + 3*ms)
	got, replayed, err := s.RecordInvite(ctx, inlineRetry(failed, reclaimAt), lim)
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, referral.StatusPending, got.Status)
	assertQueue(t, s, 1, reclaimAt, "the failed invite reclaimed")

	require.NoError(t, s.UpdateDelivery(ctx, failed.ID, referral.Delivery{Attempt: got.Attempts, Status: referral.StatusPending,
		LastError: "421 try later", NextAttemptAt: reclaimAt.Add(time.Hour), At: reclaimAt.Add(time.Second)}))
	assertQueue(t, s, 1, reclaimAt, "the reclaimed invite to be retried")

	// A stranded invite: pending, its inline lease run out.
	strandedAt := t0.Add(21 * time.Hour)
	stranded := newInvite(uuid.NewString(), uuid.NewString(), "bob@example.com", strandedAt)
	stranded.Attempts, stranded.LeaseUntil = 1, strandedAt.Add(time.Minute)
	stranded = record(t, s, stranded, lim)
	require.NoError(t, s.UpdateDelivery(ctx, failed.ID, referral.Delivery{Attempt: got.Attempts, Status: referral.StatusSent, At: strandedAt}))
	assertQueue(t, s, 1, strandedAt, "the stranded invite")
	got, replayed, err = s.RecordInvite(ctx, inlineRetry(stranded, strandedAt.Add(time.Hour)), lim)
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, 2, got.Attempts)
	assertQueue(t, s, 1, strandedAt, "the stranded invite reclaimed")
}
