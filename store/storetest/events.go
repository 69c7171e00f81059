package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// Events is a store whose changes record events in an outbox, as the
// stores of this module do when opened with it on.
type Events interface {
	referral.CodeStore
	referral.RedemptionStore
	referral.RecipientStore
	referral.ReferrerStore
	referral.EventStore
}

// EventStores makes the stores [RunEvents] tests.
type EventStores struct {
	// New returns a fresh, empty store with its outbox on or off.
	New func(t *testing.T, outbox bool) Events
	// Shared, if not nil, returns two stores of one fresh, empty
	// database, outbox on, as two processes (app instances) have them.
	Shared func(t *testing.T) [2]Events
	// Reopen, if not nil, closes s, which New made with its outbox on, and
	// returns a store on its data again, outbox on.
	Reopen func(t *testing.T, s Events) Events
}

// RunEvents runs the EventStore suite: each change records exactly the
// event of referral.Event* that reports it, in the transaction of the
// change, and nothing with the outbox off; ClaimEvents leases the due
// events oldest first; EventDelivered and EventFailed settle them. With
// stores.Shared the claims and the outbox are checked across two stores of
// one database, and with stores.Reopen the outbox's durability.
func RunEvents(t *testing.T, stores EventStores) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, s Events)
	}{
		{"Off", func(t *testing.T, _ Events) { testEventsOff(t, stores.New(t, false)) }},
		{"UpdateDelivery", testEventsDelivery},
		{"UpdateDeliveries", testEventsDeliveries},
		{"RecordInvite", testEventsRecordInvite},
		{"RecordInvite/InlineRetry", testEventsInlineRetry},
		{"RecordInvite/Refused", testEventsRecordRefused},
		{"Resend", testEventsResend},
		{"Suppress", testEventsSuppress},
		{"Revoke", testEventsRevoke},
		{"Redeem", testEventsRedeem},
		{"Claim/Lease", testEventsLease},
		{"Claim/Settle", testEventsSettle},
		{"Claim/Concurrent", func(t *testing.T, s Events) { testEventsConcurrent(t, [2]Events{s, s}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := stores.New(t, true)
			require.True(t, s.Outbox(), "Outbox reports the outbox on")
			c.test(t, s)
		})
	}
	if stores.Shared != nil {
		t.Run("Shared/Outbox", func(t *testing.T) {
			t.Parallel()
			testEventsShared(t, stores.Shared(t))
		})
		t.Run("Shared/Claim/Concurrent", func(t *testing.T) {
			t.Parallel()
			testEventsConcurrent(t, stores.Shared(t))
		})
	}
	if stores.Reopen != nil {
		t.Run("Durable", func(t *testing.T) {
			t.Parallel()
			s := stores.New(t, true)
			want := redeemEvent(t, s, t0)
			evs := claimEvents(t, stores.Reopen(t, s), t0, time.Minute)
			require.Len(t, evs, 1)
			want.Attempts, want.LeaseUntil = 1, t0.Add(time.Minute)
			assertEvent(t, want, evs[0])
		})
	}
}

// drainTime is after every time the suite passes in: every event is due.
var drainTime = t0.Add(1000 * day)

// claimEvents claims every event due at now with lease.
func claimEvents(t *testing.T, s referral.EventStore, now time.Time, lease time.Duration) []referral.Event {
	t.Helper()
	evs, err := s.ClaimEvents(t.Context(), now, lease, 10_000)
	require.NoError(t, err)
	return evs
}

// drain returns the events s holds, oldest first, and removes them.
func drain(t *testing.T, s referral.EventStore) []referral.Event {
	t.Helper()
	evs := claimEvents(t, s, drainTime, time.Minute)
	for _, ev := range evs {
		require.NoError(t, s.EventDelivered(t.Context(), ev.ID, ev.Attempts))
	}
	require.Empty(t, claimEvents(t, s, drainTime.Add(time.Hour), time.Minute), "EventDelivered removes")
	return evs
}

// inviteEvent returns the event of type typ reporting inv's change at at,
// as its store records it (the id aside).
func inviteEvent(typ string, inv referral.Invite, status referral.Status, at time.Time) referral.Event {
	return referral.Event{
		Type: typ, At: at, AppID: inv.AppID, InviteID: inv.ID, ReferrerID: inv.ReferrerID, Status: status,
		NextAttemptAt: at,
	}
}

// assertEvent checks got against want, the id aside (a UUIDv7), with
// times compared as instants and in UTC.
func assertEvent(t *testing.T, want, got referral.Event) {
	t.Helper()
	id, err := uuid.Parse(got.ID)
	if assert.NoError(t, err, "the id is a UUID") {
		assert.Equal(t, uuid.Version(7), id.Version(), "the id is a UUIDv7")
	}
	for name, tm := range map[string]time.Time{"At": got.At, "NextAttemptAt": got.NextAttemptAt, "LeaseUntil": got.LeaseUntil} {
		assert.Equal(t, time.UTC, tm.Location(), "%s is not in UTC", name)
	}
	want.ID = got.ID
	want.At, want.NextAttemptAt, want.LeaseUntil = want.At.UTC(), want.NextAttemptAt.UTC(), want.LeaseUntil.UTC()
	assert.Equal(t, want, got)
}

// assertEvents drains s and checks that it held exactly want, in order,
// each claimed once at drainTime.
func assertEvents(t *testing.T, s referral.EventStore, want ...referral.Event) {
	t.Helper()
	got := drain(t, s)
	require.Len(t, got, len(want), "events: %+v", got)
	for i := range want {
		want[i].Attempts, want[i].LeaseUntil = 1, drainTime.Add(time.Minute)
		assertEvent(t, want[i], got[i])
	}
}

// redeemEvent stores a new redemption at at and returns its event.
func redeemEvent(t *testing.T, s Events, at time.Time) referral.Event {
	t.Helper()
	r := newRedemption(uuid.NewString(), uuid.NewString(), "A1B0C2D3E4", uuid.NewString(), "ann@example.com", at)
	_, created, err := s.Redeem(t.Context(), r)
	require.NoError(t, err)
	require.True(t, created)
	return referral.Event{
		Type: referral.EventReferralRedeemed, At: at, AppID: r.AppID, ReferrerID: r.ReferrerID,
		Code: r.Code, NewUserID: r.NewUserID, NextAttemptAt: at,
	}
}

// everyChange makes one change of each kind that records an event.
func everyChange(t *testing.T, s Events) {
	t.Helper()
	ctx := t.Context()
	app := uuid.NewString()
	sent := addressed(app, uuid.NewString(), "sent@example.com", t0)
	sent = sentInvite(t, s, sent, t0.Add(time.Second))
	require.NoError(t, s.Revoke(ctx, app, sent.ReferrerID, sent.ID, t0.Add(2*time.Second)))
	pending := record(t, s, addressed(app, uuid.NewString(), "pending@example.com", t0), referral.Limits{})
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: app, AddressHash: pending.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0.Add(time.Minute)}))
	recordSuppressed(t, s, addressed(app, uuid.NewString(), "pending@example.com", t0.Add(time.Hour)), referral.Limits{}, referral.ReasonUnsubscribed)
	failed := record(t, s, addressed(app, uuid.NewString(), "failed@example.com", t0), referral.Limits{})
	deliver(t, s, failed, referral.StatusFailed, t0.Add(time.Minute))
	_, created, err := s.Redeem(ctx, newRedemption(app, sent.ReferrerID, "A1B0C2D3E4", uuid.NewString(), "x@example.com", t0))
	require.NoError(t, err)
	require.True(t, created)
}

func testEventsOff(t *testing.T, s Events) {
	assert.False(t, s.Outbox(), "the outbox is off unless asked for")
	everyChange(t, s)
	assertEvents(t, s)
}

func testEventsDelivery(t *testing.T, s Events) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	inv := record(t, s, newInvite(app, ref, "ann@example.com", t0), referral.Limits{})
	// A retry records no event; neither does an attempt a newer claim has.
	claimedInvites, err := s.ClaimDue(ctx, t0, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimedInvites, 1)
	require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: 1, Status: referral.StatusPending, NextAttemptAt: t0.Add(time.Hour), LastError: "421", At: t0.Add(time.Second)}))
	require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: 7, Status: referral.StatusSent, At: t0.Add(2 * time.Second)}))
	assertEvents(t, s)

	failedAt := t0.Add(2 * time.Hour)
	deliver(t, s, inv, referral.StatusFailed, failedAt)
	// Once final, a late outcome is a no-op, and records nothing.
	require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: 2, Status: referral.StatusSent, At: failedAt.Add(time.Second)}))
	assertEvents(t, s, inviteEvent(referral.EventInviteFailed, inv, referral.StatusFailed, failedAt))

	other := record(t, s, newInvite(app, ref, "bob@example.com", t0), referral.Limits{})
	sentAt := t0.Add(3 * time.Hour)
	deliver(t, s, other, referral.StatusSent, sentAt)
	assertEvents(t, s, inviteEvent(referral.EventInviteSent, other, referral.StatusSent, sentAt))
}

// testEventsDeliveries: a DeliveryBatchStore's UpdateDeliveries records the
// events UpdateDelivery would, in order, a send during a revoke included;
// a retry and a no-op record none.
func testEventsDeliveries(t *testing.T, s Events) {
	b, ok := s.(referral.DeliveryBatchStore)
	if !ok {
		t.Skip("not a referral.DeliveryBatchStore")
	}
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	var invs []referral.Invite
	for i := range 5 {
		invs = append(invs, record(t, s, newInvite(app, ref, fmt.Sprintf("p%d@example.com", i), t0.Add(time.Duration(i)*time.Millisecond)), referral.Limits{}))
	}
	claimedInvites, err := s.ClaimDue(ctx, t0.Add(time.Second), time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimedInvites, 5)
	at := t0.Add(time.Hour)
	require.NoError(t, s.Revoke(ctx, app, ref, invs[4].ID, at)) // while its email is being sent
	update := func(i int, d referral.Delivery) referral.DeliveryUpdate {
		return referral.DeliveryUpdate{InviteID: invs[i].ID, Delivery: d}
	}
	require.NoError(t, b.UpdateDeliveries(ctx, []referral.DeliveryUpdate{
		update(0, referral.Delivery{Attempt: 1, Status: referral.StatusSent, At: at.Add(1 * time.Second)}),
		update(1, referral.Delivery{Attempt: 1, Status: referral.StatusFailed, LastError: "550", At: at.Add(2 * time.Second)}),
		update(2, referral.Delivery{Attempt: 1, Status: referral.StatusPending, LastError: "421", NextAttemptAt: at.Add(time.Hour), At: at.Add(3 * time.Second)}),
		update(3, referral.Delivery{Attempt: 2, Status: referral.StatusSent, At: at.Add(4 * time.Second)}), // not its attempt
		update(4, referral.Delivery{Attempt: 1, Status: referral.StatusSent, At: at.Add(5 * time.Second)}),
	}))
	assertEvents(t, s,
		inviteEvent(referral.EventInviteRevoked, invs[4], referral.StatusRevoked, at),
		inviteEvent(referral.EventInviteSent, invs[0], referral.StatusSent, at.Add(1*time.Second)),
		inviteEvent(referral.EventInviteFailed, invs[1], referral.StatusFailed, at.Add(2*time.Second)),
		inviteEvent(referral.EventInviteSent, invs[4], referral.StatusRevoked, at.Add(5*time.Second)))
}

func testEventsRecordInvite(t *testing.T, s Events) {
	ctx := t.Context()
	app := uuid.NewString()
	record(t, s, addressed(app, uuid.NewString(), "ann@example.com", t0), recipientLimits)
	assertEvents(t, s)

	// Step 4: the suppression list.
	hash := hashOf("bob@example.com")
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: app, AddressHash: hash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0}))
	assertEvents(t, s) // no pending invite to mark
	listed := recordSuppressed(t, s, addressed(app, uuid.NewString(), "bob@example.com", t0.Add(time.Minute)), recipientLimits, referral.ReasonUnsubscribed)
	// Step 4: the recipient limit.
	var last referral.Invite
	for i := range recipientLimits.MaxPerRecipient + 1 {
		inv := addressed(app, uuid.NewString(), "cy@example.com", t0.Add(time.Duration(i)*time.Minute))
		if i < recipientLimits.MaxPerRecipient {
			record(t, s, inv, recipientLimits)
			continue
		}
		last = recordSuppressed(t, s, inv, recipientLimits, referral.ReasonRecipientLimit)
	}
	assertEvents(t, s,
		inviteEvent(referral.EventInviteSuppressed, listed, referral.StatusSuppressed, listed.CreatedAt),
		inviteEvent(referral.EventInviteSuppressed, last, referral.StatusSuppressed, last.CreatedAt))
}

func testEventsInlineRetry(t *testing.T, s Events) {
	ctx := t.Context()
	earlier := addressed(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	earlier.Status, earlier.Attempts, earlier.LastError = referral.StatusFailed, 1, "421 try later"
	earlier = record(t, s, earlier, retryLimits)
	// A reclaim for a retry records nothing.
	retry := inlineRetry(earlier, t0.Add(time.Minute))
	retry.AddressHash = earlier.AddressHash
	_, _, err := s.RecordInvite(ctx, retry, retryLimits)
	require.NoError(t, err)
	require.NoError(t, s.UpdateDelivery(ctx, earlier.ID, referral.Delivery{Attempt: 2, Status: referral.StatusPending, NextAttemptAt: t0.Add(time.Hour), At: t0.Add(2 * time.Minute)}))
	assertEvents(t, s)

	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: earlier.AppID, AddressHash: earlier.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0.Add(2 * time.Hour)}))
	suppressedAt := t0.Add(2 * time.Hour) // Suppress marked the pending invite
	assertEvents(t, s, inviteEvent(referral.EventInviteSuppressed, earlier, referral.StatusSuppressed, suppressedAt))

	// Step 1a: a failed invite's retry finds its address suppressed since.
	failed := addressed(uuid.NewString(), uuid.NewString(), "bob@example.com", t0)
	failed.Status, failed.Attempts, failed.LastError = referral.StatusFailed, 1, "421 try later"
	failed = record(t, s, failed, retryLimits)
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: failed.AppID, AddressHash: failed.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0.Add(time.Minute)}))
	retry = inlineRetry(failed, t0.Add(3*time.Hour))
	retry.AddressHash = failed.AddressHash
	got, _, err := s.RecordInvite(ctx, retry, retryLimits)
	require.NoError(t, err)
	require.Equal(t, referral.StatusSuppressed, got.Status)
	assertEvents(t, s, inviteEvent(referral.EventInviteSuppressed, failed, referral.StatusSuppressed, retry.CreatedAt))
}

func testEventsRecordRefused(t *testing.T, s Events) {
	app, ref := uuid.NewString(), uuid.NewString()
	hash := hashOf("ann@example.com")
	require.NoError(t, s.Suppress(t.Context(), referral.Suppression{AppID: app, AddressHash: hash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0}))
	lim := referral.Limits{MaxPerReferrer: 1, Window: day}
	first := recordSuppressed(t, s, addressed(app, ref, "ann@example.com", t0), lim, referral.ReasonUnsubscribed)
	// Refused by the limit: no invite, so no event.
	_, _, err := s.RecordInvite(t.Context(), addressed(app, ref, "ann@example.com", t0.Add(time.Minute)), lim)
	require.ErrorIs(t, err, referral.ErrRateLimited)
	// A cancelled call stores nothing, and records nothing.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err = s.RecordInvite(ctx, addressed(uuid.NewString(), ref, "ann@example.com", t0), referral.Limits{})
	require.Error(t, err)
	_, _, err = s.Redeem(ctx, newRedemption(app, ref, "A1B0C2D3E4", uuid.NewString(), "x@example.com", t0))
	require.Error(t, err)
	assertEvents(t, s, inviteEvent(referral.EventInviteSuppressed, first, referral.StatusSuppressed, first.CreatedAt))
}

func testEventsResend(t *testing.T, s Events) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	inv := sentInvite(t, s, addressed(app, ref, "ann@example.com", t0), t0.Add(time.Second))
	_, err := s.Resend(ctx, resendOf(inv, t0.Add(time.Hour)), referral.Limits{})
	require.NoError(t, err)
	assertEvents(t, s, inviteEvent(referral.EventInviteSent, inv, referral.StatusSent, t0.Add(time.Second))) // the resend itself records none
	deliver(t, s, inv, referral.StatusSent, t0.Add(2*time.Hour))
	drain(t, s)

	// Suppress marks no invite that is not pending.
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: app, AddressHash: inv.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0.Add(3 * time.Hour)}))
	assertEvents(t, s)
	at := t0.Add(4 * time.Hour)
	got, err := s.Resend(ctx, resendOf(inv, at), referral.Limits{})
	require.NoError(t, err)
	require.Equal(t, referral.StatusSuppressed, got.Status)
	assertEvents(t, s, inviteEvent(referral.EventInviteSuppressed, inv, referral.StatusSuppressed, at))
}

func testEventsSuppress(t *testing.T, s Events) {
	ctx := t.Context()
	app := uuid.NewString()
	a := record(t, s, addressed(app, uuid.NewString(), "ann@example.com", t0), referral.Limits{})
	b := record(t, s, addressed(app, uuid.NewString(), "ann@example.com", t0.Add(time.Second)), referral.Limits{})
	sent := sentInvite(t, s, addressed(app, uuid.NewString(), "ann@example.com", t0), t0.Add(time.Second))
	record(t, s, addressed(app, uuid.NewString(), "bob@example.com", t0), referral.Limits{})
	record(t, s, addressed(uuid.NewString(), uuid.NewString(), "ann@example.com", t0), referral.Limits{})
	drain(t, s)

	at := t0.Add(time.Hour)
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: app, AddressHash: a.AddressHash, Reason: referral.ReasonBounced, CreatedAt: at}))
	got := drain(t, s)
	require.Len(t, got, 2, "one event per pending invite marked, of the address in the app: %+v", got)
	if got[0].InviteID != a.ID {
		got[0], got[1] = got[1], got[0] // same time: the order of their ids
	}
	for i, inv := range []referral.Invite{a, b} {
		want := inviteEvent(referral.EventInviteSuppressed, inv, referral.StatusSuppressed, at)
		want.Attempts, want.LeaseUntil = 1, drainTime.Add(time.Minute)
		assertEvent(t, want, got[i])
	}
	assert.NotEqual(t, sent.ID, got[0].InviteID)

	// Suppressing again marks nothing.
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: app, AddressHash: a.AddressHash, Reason: referral.ReasonBounced, CreatedAt: at.Add(time.Hour)}))
	assertEvents(t, s)
}

func testEventsRevoke(t *testing.T, s Events) {
	ctx := t.Context()
	inv := record(t, s, newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0), referral.Limits{})
	at := t0.Add(time.Hour)
	require.NoError(t, s.Revoke(ctx, inv.AppID, inv.ReferrerID, inv.ID, at))
	require.NoError(t, s.Revoke(ctx, inv.AppID, inv.ReferrerID, inv.ID, at.Add(time.Hour)), "already revoked")
	require.ErrorIs(t, s.Revoke(ctx, inv.AppID, inv.ReferrerID, uuid.NewString(), at), referral.ErrInviteNotFound)
	assertEvents(t, s, inviteEvent(referral.EventInviteRevoked, inv, referral.StatusRevoked, at))

	// Revoked while its email was being sent: the send is reported too,
	// with the invite's status, revoked.
	sending := record(t, s, newInvite(uuid.NewString(), uuid.NewString(), "cat@example.com", t0), referral.Limits{})
	claimed, err := s.ClaimDue(ctx, t0, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, s.Revoke(ctx, sending.AppID, sending.ReferrerID, sending.ID, at))
	sentAt := at.Add(time.Second)
	require.NoError(t, s.UpdateDelivery(ctx, sending.ID, referral.Delivery{Attempt: claimed[0].Attempts, Status: referral.StatusSent, At: sentAt}))
	assertEvents(t, s, inviteEvent(referral.EventInviteRevoked, sending, referral.StatusRevoked, at),
		inviteEvent(referral.EventInviteSent, sending, referral.StatusRevoked, sentAt))

	// An accepted invite is not revoked, and records nothing.
	accepted := sentInvite(t, s, newInvite(uuid.NewString(), uuid.NewString(), "bob@example.com", t0), t0.Add(time.Second))
	_, _, err = s.Redeem(ctx, newRedemption(accepted.AppID, accepted.ReferrerID, accepted.Code, uuid.NewString(), accepted.EmailKey, t0.Add(time.Minute)))
	require.NoError(t, err)
	drain(t, s)
	require.ErrorIs(t, s.Revoke(ctx, accepted.AppID, accepted.ReferrerID, accepted.ID, at), referral.ErrInviteAccepted)
	assertEvents(t, s)
}

func testEventsRedeem(t *testing.T, s Events) {
	want := redeemEvent(t, s, t0)
	// The same user again: the first redemption stands, and no event.
	_, created, err := s.Redeem(t.Context(), newRedemption(want.AppID, uuid.NewString(), "B1B0C2D3E4", want.NewUserID, "bob@example.com", t0.Add(time.Hour)))
	require.NoError(t, err)
	require.False(t, created)
	assertEvents(t, s, want)
}

func testEventsLease(t *testing.T, s Events) {
	ctx := t.Context()
	var want []referral.Event
	for i := range 3 {
		want = append(want, redeemEvent(t, s, t0.Add(time.Duration(2-i)*time.Minute)))
	}
	// Oldest due first: want[2], want[1], want[0].
	none, err := s.ClaimEvents(ctx, t0.Add(-time.Millisecond), time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, none, "not due yet")
	none, err = s.ClaimEvents(ctx, drainTime, time.Minute, 0)
	require.NoError(t, err)
	assert.Empty(t, none, "max 0 claims nothing")

	now := t0.Add(time.Hour)
	first, err := s.ClaimEvents(ctx, now, time.Minute, 2)
	require.NoError(t, err)
	require.Len(t, first, 2)
	for i, w := range []referral.Event{want[2], want[1]} {
		w.Attempts, w.LeaseUntil = 1, now.Add(time.Minute)
		assertEvent(t, w, first[i])
	}
	// Under the lease they are not claimed again.
	rest := claimEvents(t, s, now.Add(time.Minute-time.Millisecond), time.Hour)
	require.Len(t, rest, 1)
	assert.Equal(t, want[0].NewUserID, rest[0].NewUserID)
	// Once it runs out, they are, with one more attempt.
	later := now.Add(time.Minute)
	again := claimEvents(t, s, later, time.Minute)
	require.Len(t, again, 2)
	for i, w := range []referral.Event{want[2], want[1]} {
		w.Attempts, w.LeaseUntil = 2, later.Add(time.Minute)
		assertEvent(t, w, again[i])
	}
	// The first claim's attempt is stale: a no-op.
	require.NoError(t, s.EventDelivered(ctx, first[0].ID, first[0].Attempts))
	require.NoError(t, s.EventFailed(ctx, first[1].ID, first[1].Attempts, now, "late", false))
	require.NoError(t, s.EventFailed(ctx, first[1].ID, first[1].Attempts, now, "late", true))
	assert.Empty(t, claimEvents(t, s, later.Add(time.Minute-time.Millisecond), time.Minute), "the leases of the newer claims hold")
	third := claimEvents(t, s, later.Add(time.Minute), time.Minute)
	require.Len(t, third, 2, "the stale calls changed nothing")
	assert.Equal(t, 3, third[0].Attempts)
	assert.Equal(t, "", third[1].LastError)
}

func testEventsSettle(t *testing.T, s Events) {
	ctx := t.Context()
	redeemEvent(t, s, t0)
	b := redeemEvent(t, s, t0.Add(time.Second))
	now := t0.Add(time.Minute)
	evs := claimEvents(t, s, now, time.Hour)
	require.Len(t, evs, 2)
	require.NoError(t, s.EventDelivered(ctx, evs[0].ID, evs[0].Attempts))
	next := now.Add(10 * time.Minute)
	require.NoError(t, s.EventFailed(ctx, evs[1].ID, evs[1].Attempts, next, "503 Service Unavailable", false))
	// The lease is released: due again at next, not before.
	assert.Empty(t, claimEvents(t, s, next.Add(-time.Millisecond), time.Minute))
	got := claimEvents(t, s, next, time.Minute)
	require.Len(t, got, 1)
	b.Attempts, b.NextAttemptAt, b.LeaseUntil, b.LastError = 2, next, next.Add(time.Minute), "503 Service Unavailable"
	assertEvent(t, b, got[0])
	// Given up: removed.
	require.NoError(t, s.EventFailed(ctx, got[0].ID, got[0].Attempts, next.Add(time.Hour), "503", true))
	assert.Empty(t, claimEvents(t, s, drainTime, time.Minute))
	// Unknown ids are no-ops.
	require.NoError(t, s.EventDelivered(ctx, uuid.NewString(), 1))
	require.NoError(t, s.EventFailed(ctx, uuid.NewString(), 1, next, "x", false))
}

// testEventsConcurrent has claimers on both stores race for the events:
// none is claimed twice while its lease holds, and all are claimed.
func testEventsConcurrent(t *testing.T, stores [2]Events) {
	const n, claimers = 60, 20
	for i := range n {
		redeemEvent(t, stores[i%2], t0.Add(time.Duration(i)*time.Millisecond))
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	now := t0.Add(time.Hour)
	for i := range claimers {
		wg.Go(func() {
			for {
				evs, err := stores[i%2].ClaimEvents(context.Background(), now, time.Hour, 3)
				if !assert.NoError(t, err) || len(evs) == 0 {
					return
				}
				mu.Lock()
				for _, ev := range evs {
					seen[ev.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Len(t, seen, n, "every event is claimed")
	for id, k := range seen {
		assert.Equal(t, 1, k, "event %s claimed %d times under one lease", id, k)
	}
}

// testEventsShared records on one store and settles on the other.
func testEventsShared(t *testing.T, stores [2]Events) {
	want := redeemEvent(t, stores[0], t0)
	evs := claimEvents(t, stores[1], t0, time.Minute)
	require.Len(t, evs, 1)
	want.Attempts, want.LeaseUntil = 1, t0.Add(time.Minute)
	assertEvent(t, want, evs[0])
	assert.Empty(t, claimEvents(t, stores[0], t0, time.Minute), "the lease holds on the other store")
	require.NoError(t, stores[0].EventDelivered(t.Context(), evs[0].ID, evs[0].Attempts))
	assert.Empty(t, claimEvents(t, stores[1], drainTime, time.Minute))
}
