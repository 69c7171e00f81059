package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// Recipients is a store that records invites and redemptions and protects
// the people invited, as the stores of this module do.
type Recipients interface {
	referral.CodeStore
	referral.RedemptionStore
	referral.RecipientStore
}

// day is the unit of the recipient window and of retention.
const day = 24 * time.Hour

// RunRecipients runs the RecipientStore suite, and the recipient check of
// RecordInvite, against stores made by newStore, which must return a
// fresh, empty store for each call. It includes the cases of
// [RunRecipientsShared] on one store.
func RunRecipients(t *testing.T, newStore func(t *testing.T) Recipients) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, s Recipients)
	}{
		{"Suppress/RecordInvite", testSuppressedInvite},
		{"Suppress/MarksPending", testSuppressMarksPending},
		{"Suppress/FirstReasonKept", testSuppressFirstReasonKept},
		{"Suppress/InlineRetry", testSuppressInlineRetry},
		{"RecipientLimit", testRecipientLimit},
		{"RecipientLimit/CountsForReferrer", testSuppressedCountForReferrer},
		{"Secret", testSecret},
		{"InviteRecipient", testInviteRecipient},
		{"EraseAddresses", testEraseAddresses},
		{"AddressHash", testAddressHash},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStore(t))
		})
	}
	RunRecipientsShared(t, func(t *testing.T) []Recipients { return []Recipients{newStore(t)} })
}

// RunRecipientsShared runs the concurrency cases of the RecipientStore
// suite against stores that share one database, as app instances in
// several processes do: concurrent calls alternate between them.
// newStores returns the stores, on a fresh, empty database for each call.
func RunRecipientsShared(t *testing.T, newStores func(t *testing.T) []Recipients) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, stores []Recipients)
	}{
		{"Concurrent/RecipientLimit", testRecipientLimitConcurrent},
		{"Concurrent/SuppressRacesRecordInvite", testSuppressRacesRecord},
		{"Concurrent/Secret", testSecretConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStores(t))
		})
	}
}

// hashOf stands for the handler's keyed hash of an address's key.
func hashOf(emailKey string) string {
	sum := sha256.Sum256([]byte(emailKey))
	return hex.EncodeToString(sum[:])
}

// addressed is newInvite with the address's hash set.
func addressed(app, referrer, email string, at time.Time) referral.Invite {
	inv := newInvite(app, referrer, email, at)
	inv.AddressHash = hashOf(inv.EmailKey)
	return inv
}

// recordSuppressed asserts that the store records inv suppressed for
// reason, and returns what it returned.
func recordSuppressed(t *testing.T, s referral.CodeStore, inv referral.Invite, lim referral.Limits, reason string) referral.Invite {
	t.Helper()
	got, replayed, err := s.RecordInvite(t.Context(), inv, lim)
	require.NoError(t, err)
	require.False(t, replayed, "invite %s was replayed", inv.ID)
	want := inv
	want.Status, want.LastError, want.LeaseUntil = referral.StatusSuppressed, reason, time.Time{}
	assertInvite(t, want, got)
	return got
}

// recipientLimits is the default recipient limit, with the other checks
// on too.
var recipientLimits = referral.Limits{
	MaxPerReferrer: 50, Window: day, Cooldown: time.Minute, IdempotencyTTL: day,
	MaxPerRecipient: 3, RecipientWindow: 30 * day,
}

func testSuppressedInvite(t *testing.T, s Recipients) {
	ctx := t.Context()
	app, otherApp := uuid.NewString(), uuid.NewString()
	inv := addressed(app, uuid.NewString(), "ann@example.com", t0)
	_, found, err := s.Suppression(ctx, app, inv.AddressHash)
	require.NoError(t, err)
	assert.False(t, found)

	sup := referral.Suppression{AppID: app, AddressHash: inv.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0.Add(-time.Hour)}
	require.NoError(t, s.Suppress(ctx, sup))
	got, found, err := s.Suppression(ctx, app, inv.AddressHash)
	require.NoError(t, err)
	require.True(t, found)
	want := sup
	want.CreatedAt = sup.CreatedAt.UTC()
	assert.Equal(t, want, got)
	assert.Equal(t, time.UTC, got.CreatedAt.Location())

	// An inline caller's invite, claimed and leased: it is stored
	// suppressed, unclaimed, and answered as stored, not replayed.
	inv.Attempts = 1
	inv.LeaseUntil = t0.Add(time.Minute)
	stored := recordSuppressed(t, s, inv, recipientLimits, referral.ReasonUnsubscribed)
	assertInvite(t, stored, get(t, s, inv))

	// The suppression is the app's: another app's invite of the address
	// goes out.
	other := record(t, s, addressed(otherApp, uuid.NewString(), "ann@example.com", t0), recipientLimits)
	_, found, err = s.Suppression(ctx, otherApp, inv.AddressHash)
	require.NoError(t, err)
	assert.False(t, found)

	// Unsuppress lifts it (twice is no error); the invite recorded
	// suppressed stays so.
	require.NoError(t, s.Unsuppress(ctx, app, inv.AddressHash))
	require.NoError(t, s.Unsuppress(ctx, app, inv.AddressHash))
	_, found, err = s.Suppression(ctx, app, inv.AddressHash)
	require.NoError(t, err)
	assert.False(t, found)
	later := record(t, s, addressed(app, uuid.NewString(), "ann@example.com", t0.Add(time.Minute)), recipientLimits)
	assertInvite(t, stored, get(t, s, inv))
	assert.ElementsMatch(t, []string{other.ID, later.ID}, pendingIDs(t, s), "suppressed invites are never claimed")
}

func testSuppressMarksPending(t *testing.T, s Recipients) {
	ctx := t.Context()
	app := uuid.NewString()
	ann := func(app string) referral.Invite { return addressed(app, uuid.NewString(), "ann@example.com", t0) }
	pending := ann(app)
	leased := ann(app)
	leased.Attempts, leased.LeaseUntil = 1, t0.Add(time.Minute)
	sent := ann(app)
	sent.Status = referral.StatusSent
	failed := ann(app)
	failed.Status, failed.LastError = referral.StatusFailed, "550 no such user"
	otherAddress := addressed(app, uuid.NewString(), "bob@example.com", t0)
	otherApp := ann(uuid.NewString())
	for _, inv := range []referral.Invite{pending, leased, sent, failed, otherAddress, otherApp} {
		record(t, s, inv, referral.Limits{})
	}

	require.NoError(t, s.Suppress(ctx, referral.Suppression{
		AppID: app, AddressHash: pending.AddressHash, Reason: referral.ReasonBounced, CreatedAt: t0.Add(time.Hour),
	}))
	for _, inv := range []referral.Invite{pending, leased} {
		got := get(t, s, inv)
		assert.Equal(t, referral.StatusSuppressed, got.Status)
		assert.Equal(t, referral.ReasonBounced, got.LastError)
		assert.True(t, got.LeaseUntil.IsZero(), "the lease is released")
	}
	for _, inv := range []referral.Invite{sent, failed} {
		assertInvite(t, inv, get(t, s, inv))
	}
	assert.ElementsMatch(t, []string{otherAddress.ID, otherApp.ID}, pendingIDs(t, s))
}

func testSuppressFirstReasonKept(t *testing.T, s Recipients) {
	ctx := t.Context()
	first := referral.Suppression{AppID: uuid.NewString(), AddressHash: hashOf("ann@example.com"), Reason: referral.ReasonUnsubscribed, CreatedAt: t0}
	require.NoError(t, s.Suppress(ctx, first))
	again := first
	again.Reason, again.CreatedAt = referral.ReasonHost, t0.Add(time.Hour)
	require.NoError(t, s.Suppress(ctx, again))
	got, found, err := s.Suppression(ctx, first.AppID, first.AddressHash)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, referral.ReasonUnsubscribed, got.Reason)
	assert.True(t, first.CreatedAt.Equal(got.CreatedAt), "created %s, want %s", got.CreatedAt, first.CreatedAt)

	// Invites then say the reason that stands.
	inv := addressed(first.AppID, uuid.NewString(), "ann@example.com", t0.Add(2*time.Hour))
	recordSuppressed(t, s, inv, recipientLimits, referral.ReasonUnsubscribed)
}

func testRecipientLimit(t *testing.T, s Recipients) {
	ctx := t.Context()
	app, otherApp := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerRecipient: 3, RecipientWindow: 30 * day}
	ann := func(app string, d time.Duration) referral.Invite {
		return addressed(app, uuid.NewString(), "ann@example.com", t0.Add(d))
	}
	for range 3 { // another app's invites of the address do not count
		record(t, s, ann(otherApp, 0), lim)
	}
	// A failed invite that was never delivered sent nothing: it does not
	// count (else a mail server down for three attempts would answer the
	// fourth invite 201 and send it nowhere).
	failed := ann(app, 0)
	failed.Status = referral.StatusFailed
	record(t, s, failed, lim)
	// Sends count, whatever became of them: pending and sent.
	record(t, s, ann(app, 0), lim)
	sent := ann(app, time.Minute)
	sent.Attempts = 1
	record(t, s, sent, lim)
	require.NoError(t, s.UpdateDelivery(ctx, sent.ID, referral.Delivery{Attempt: 1, Status: referral.StatusSent, At: t0.Add(time.Minute)}))
	record(t, s, ann(app, 2*time.Minute), lim)

	recordSuppressed(t, s, ann(app, 3*time.Minute), lim, referral.ReasonRecipientLimit)
	recordSuppressed(t, s, ann(app, 4*time.Minute), lim, referral.ReasonRecipientLimit)
	// The window is exclusive at its start: the first pending invite counts
	// until exactly RecipientWindow later; the suppressed ones never count.
	recordSuppressed(t, s, ann(app, 30*day-time.Millisecond), lim, referral.ReasonRecipientLimit)
	record(t, s, ann(app, 30*day), lim)
	recordSuppressed(t, s, ann(app, 30*day), lim, referral.ReasonRecipientLimit)

	// Other addresses, invites without an AddressHash, and no limit.
	record(t, s, addressed(app, uuid.NewString(), "bob@example.com", t0.Add(5*time.Minute)), lim)
	for range 4 {
		record(t, s, newInvite(app, uuid.NewString(), "ann@example.com", t0.Add(6*time.Minute)), lim)
	}
	record(t, s, ann(app, 6*time.Minute), referral.Limits{})
}

// testSuppressInlineRetry: an inline retry of a failed invite whose
// address was suppressed since is not claimed but suppressed, and
// answered so.
func testSuppressInlineRetry(t *testing.T, s Recipients) {
	ctx := t.Context()
	earlier := addressed(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	earlier.Status, earlier.Attempts, earlier.LastError = referral.StatusFailed, 1, "421 try later"
	earlier = record(t, s, earlier, retryLimits)
	require.NoError(t, s.Suppress(ctx, referral.Suppression{
		AppID: earlier.AppID, AddressHash: earlier.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0.Add(time.Minute),
	}))

	retry := inlineRetry(earlier, t0.Add(time.Hour))
	retry.AddressHash = earlier.AddressHash
	got, replayed, err := s.RecordInvite(ctx, retry, retryLimits)
	require.NoError(t, err)
	assert.False(t, replayed, "the caller is told, not replayed")
	want := earlier
	want.Status, want.LastError, want.LeaseUntil = referral.StatusSuppressed, referral.ReasonUnsubscribed, time.Time{}
	want.UpdatedAt = retry.CreatedAt
	assertInvite(t, want, got)
	assertInvite(t, want, get(t, s, earlier))
	assert.Empty(t, pendingIDs(t, s), "a suppressed retry is never claimed")
}

func testSuppressedCountForReferrer(t *testing.T, s Recipients) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerReferrer: 2, Window: time.Hour, Cooldown: 15 * time.Minute}
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: app, AddressHash: hashOf(email), Reason: referral.ReasonHost, CreatedAt: t0}))
	}
	recordSuppressed(t, s, addressed(app, ref, "ann@example.com", t0), lim, referral.ReasonHost)
	// The referrer must not tell a suppressed invite from one sent.
	refused(t, s, addressed(app, ref, "ann@example.com", t0.Add(5*time.Minute)), lim,
		referral.LimitError{RetryAfter: 10 * time.Minute, Cooldown: true})
	recordSuppressed(t, s, addressed(app, ref, "bob@example.com", t0.Add(time.Minute)), lim, referral.ReasonHost)
	refused(t, s, addressed(app, ref, "carl@example.com", t0.Add(2*time.Minute)), lim,
		referral.LimitError{RetryAfter: 58 * time.Minute})

	// Invites the recipient limit suppressed count alike.
	other := uuid.NewString()
	lim = referral.Limits{MaxPerReferrer: 1, Window: time.Hour, MaxPerRecipient: 1, RecipientWindow: day}
	record(t, s, addressed(app, uuid.NewString(), "dora@example.com", t0), lim)
	recordSuppressed(t, s, addressed(app, other, "dora@example.com", t0), lim, referral.ReasonRecipientLimit)
	refused(t, s, addressed(app, other, "eve@example.com", t0), lim, referral.LimitError{RetryAfter: time.Hour})
}

func testSecret(t *testing.T, s Recipients) {
	ctx := t.Context()
	calls := 0
	newSecret := func() []byte {
		calls++
		return append([]byte{0, 0xff, byte(calls)}, uuid.NewString()...)
	}
	first, err := s.Secret(ctx, "unsubscribe", newSecret)
	require.NoError(t, err)
	require.Equal(t, 1, calls)
	require.Len(t, first, 39)
	assert.Equal(t, []byte{0, 0xff, 1}, first[:3], "every byte is kept")
	want := append([]byte(nil), first...)
	first[0] = 42 // the caller's copy

	again, err := s.Secret(ctx, "unsubscribe", newSecret)
	require.NoError(t, err)
	assert.Equal(t, want, again)
	assert.Equal(t, 1, calls, "a stored secret is not made again")

	other, err := s.Secret(ctx, "other", newSecret)
	require.NoError(t, err)
	assert.NotEqual(t, want, other)
	assert.Equal(t, 2, calls)
}

func testInviteRecipient(t *testing.T, s Recipients) {
	ctx := t.Context()
	inv := addressed(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	inv.Language = "de"
	record(t, s, inv, recipientLimits)
	r, err := s.InviteRecipient(ctx, inv.ID)
	require.NoError(t, err)
	assert.Equal(t, referral.Recipient{AppID: inv.AppID, AddressHash: inv.AddressHash, EmailKey: "ann@example.com", Language: "de"}, r)

	// An invite recorded before address hashes: the key makes the hash.
	legacy := newInvite(uuid.NewString(), uuid.NewString(), "Bob@example.com", t0)
	record(t, s, legacy, referral.Limits{})
	r, err = s.InviteRecipient(ctx, legacy.ID)
	require.NoError(t, err)
	assert.Equal(t, referral.Recipient{AppID: legacy.AppID, EmailKey: "bob@example.com", Language: "en"}, r)

	_, err = s.InviteRecipient(ctx, uuid.Must(uuid.NewV7()).String())
	assert.ErrorIs(t, err, referral.ErrInviteNotFound)
}

func testEraseAddresses(t *testing.T, s Recipients) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	cutoff := t0.Add(180 * day)
	// at records an invite created d after t0, sent or resent as mod says.
	at := func(email string, d time.Duration, status referral.Status, mod ...func(*referral.Invite)) referral.Invite {
		inv := addressed(app, ref, email, t0.Add(d))
		inv.Status = status
		for _, m := range mod {
			m(&inv)
		}
		return record(t, s, inv, referral.Limits{})
	}
	// Old and final, oldest first: erased.
	sent := at("sent@example.com", 0, referral.StatusSent)
	failed := at("failed@example.com", time.Minute, referral.StatusFailed)
	suppressed := at("suppressed@example.com", 2*time.Minute, referral.StatusSuppressed)
	// Accepted, but by another referrer or in another app: not accepted.
	elsewhere := at("elsewhere@example.com", 3*time.Minute, referral.StatusSent)
	redeem(t, s, newRedemption(app, uuid.NewString(), "BBBBBBBBBB", uuid.NewString(), elsewhere.EmailKey, t0.Add(day)))
	redeem(t, s, newRedemption(uuid.NewString(), ref, "CCCCCCCCCC", uuid.NewString(), elsewhere.EmailKey, t0.Add(day)))
	// Kept: accepted, pending, and not sent before the cutoff.
	accepted := at("accepted@example.com", 4*time.Minute, referral.StatusSent)
	redeem(t, s, newRedemption(app, ref, "AAAAAAAAAA", uuid.NewString(), accepted.EmailKey, t0.Add(day)))
	pending := at("pending@example.com", 5*time.Minute, referral.StatusPending)
	recent := at("recent@example.com", 180*day, referral.StatusSent)
	// Created long ago but sent or resent since: the last send counts.
	resentLate := at("resent-late@example.com", 6*time.Minute, referral.StatusSent, func(inv *referral.Invite) {
		inv.SentAt, inv.Resends, inv.ResentAt = t0.Add(6*time.Minute), 1, cutoff
	})
	sentLate := at("sent-late@example.com", 7*time.Minute, referral.StatusSent, func(inv *referral.Invite) {
		inv.Resends, inv.ResentAt, inv.SentAt = 1, cutoff.Add(-time.Hour), cutoff.Add(time.Millisecond)
	})
	// Resent, but before the cutoff: erased.
	resentEarly := at("resent-early@example.com", 8*time.Minute, referral.StatusFailed, func(inv *referral.Invite) {
		inv.Resends, inv.ResentAt = 2, cutoff.Add(-time.Millisecond)
	})

	erased := func(inv referral.Invite) referral.Invite {
		inv.Email, inv.EmailKey = "", ""
		return inv
	}
	n, err := s.EraseAddresses(ctx, cutoff, 0)
	require.NoError(t, err)
	assert.Zero(t, n, "max 0 erases nothing")

	n, err = s.EraseAddresses(ctx, cutoff, 2)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assertInvite(t, erased(sent), get(t, s, sent))
	assertInvite(t, erased(failed), get(t, s, failed))
	assertInvite(t, suppressed, get(t, s, suppressed))

	n, err = s.EraseAddresses(ctx, cutoff, 10)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assertInvite(t, erased(suppressed), get(t, s, suppressed))
	assertInvite(t, erased(elsewhere), get(t, s, elsewhere))
	assertInvite(t, erased(resentEarly), get(t, s, resentEarly))
	n, err = s.EraseAddresses(ctx, cutoff, 10)
	require.NoError(t, err)
	assert.Zero(t, n, "erased addresses are not counted again")

	for _, inv := range []referral.Invite{accepted, pending, recent, resentLate, sentLate} {
		assertInvite(t, inv, get(t, s, inv))
	}
}

func testAddressHash(t *testing.T, s Recipients) {
	ctx := t.Context()
	inv := addressed(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	record(t, s, inv, recipientLimits)
	assertInvite(t, inv, get(t, s, inv))
	got, err := s.ClaimDue(ctx, t0, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assertInvite(t, claimed(inv, t0, time.Minute), got[0])
}

// racing runs call(i, store) for i in [0, goroutines) at once, alternating
// between stores.
func racing(stores []Recipients, call func(i int, s Recipients)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Go(func() {
			<-start
			call(i, stores[i%len(stores)])
		})
	}
	close(start)
	wg.Wait()
}

func testRecipientLimitConcurrent(t *testing.T, stores []Recipients) {
	app := uuid.NewString()
	got := make([]referral.Invite, goroutines)
	errs := make([]error, goroutines)
	racing(stores, func(i int, s Recipients) {
		inv := addressed(app, uuid.NewString(), "ann@example.com", t0.Add(time.Duration(i)*time.Millisecond))
		got[i], _, errs[i] = s.RecordInvite(t.Context(), inv, recipientLimits)
	})
	unsuppressed := 0
	for i := range goroutines {
		require.NoError(t, errs[i])
		if got[i].Status == referral.StatusSuppressed {
			assert.Equal(t, referral.ReasonRecipientLimit, got[i].LastError)
			continue
		}
		unsuppressed++
	}
	assert.Equal(t, recipientLimits.MaxPerRecipient, unsuppressed, "exactly the limit may be sent")
	assert.Len(t, pendingIDs(t, stores[0]), recipientLimits.MaxPerRecipient)
}

// testSuppressRacesRecord: invites of an address recorded while it is
// suppressed are either recorded suppressed or marked so: none is left to
// send.
func testSuppressRacesRecord(t *testing.T, stores []Recipients) {
	app := uuid.NewString()
	errs := make([]error, goroutines)
	racing(stores, func(i int, s Recipients) {
		inv := addressed(app, uuid.NewString(), "ann@example.com", t0)
		if i == goroutines/2 {
			errs[i] = s.Suppress(t.Context(), referral.Suppression{AppID: app, AddressHash: inv.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0})
			return
		}
		_, _, errs[i] = s.RecordInvite(t.Context(), inv, referral.Limits{})
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Empty(t, pendingIDs(t, stores[0]), "no invite of a suppressed address may be sent")
}

func testSecretConcurrent(t *testing.T, stores []Recipients) {
	got := make([][]byte, goroutines)
	errs := make([]error, goroutines)
	racing(stores, func(i int, s Recipients) {
		got[i], errs[i] = s.Secret(t.Context(), "unsubscribe", func() []byte { return []byte(uuid.NewString()) })
	})
	for i := range goroutines {
		require.NoError(t, errs[i])
		assert.Equal(t, got[0], got[i], "every caller gets the one secret")
	}
	assert.NotEmpty(t, got[0])
}
