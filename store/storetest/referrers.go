package storetest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// Referrers is a store that records invites and redemptions, protects the
// people invited and shows referrers their invites, as the stores of this
// module do.
type Referrers interface {
	referral.CodeStore
	referral.RedemptionStore
	referral.RecipientStore
	referral.ReferrerStore
}

// RunReferrers runs the ReferrerStore suite against stores made by
// newStore, which must return a fresh, empty store for each call. It
// includes the cases of [RunReferrersShared] on one store.
func RunReferrers(t *testing.T, newStore func(t *testing.T) Referrers) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, s Referrers)
	}{
		{"ListInvites/Order", testListOrder},
		{"ListInvites/Pages", testListPages},
		{"ListInvites/InsertsWhilePaging", testListWhileInserting},
		{"ListInvites/AcceptedAt", testListAccepted},
		{"GetInvite", testGetInvite},
		{"Resend/States", testResendStates},
		{"Resend/AcceptedOrErased", testResendAcceptedOrErased},
		{"Resend/MaxResendsAndResendAfter", testResendTiming},
		{"Resend/ReferrerLimit", testResendReferrerLimit},
		{"Resend/Recipient", testResendRecipient},
		{"RecipientLimit/CountsSends", testRecipientLimitSends},
		{"Resend/Lease", testResendLease},
		{"Revoke", testRevoke},
		{"Revoke/Claimed", testRevokeClaimed},
		{"Revoke/Cooldown", testRevokeCooldown},
		{"StillDue", testStillDue},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStore(t))
		})
	}
	RunReferrersShared(t, func(t *testing.T) []Referrers { return []Referrers{newStore(t)} })
}

// RunReferrersShared runs the concurrency cases of the ReferrerStore suite
// against stores that share one database, as app instances in several
// processes do: concurrent calls alternate between them. newStores returns
// the stores, on a fresh, empty database for each call.
func RunReferrersShared(t *testing.T, newStores func(t *testing.T) []Referrers) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, stores []Referrers)
	}{
		{"Concurrent/ResendLimits", testResendConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStores(t))
		})
	}
}

// listAll lists every invite of the referrer, one page.
func listAll(t *testing.T, s Referrers, app, ref string) []referral.ListedInvite {
	t.Helper()
	got, err := s.ListInvites(t.Context(), app, ref, referral.InviteCursor{}, 10_000)
	require.NoError(t, err)
	return got
}

func idsOf(lis []referral.ListedInvite) []string {
	ids := make([]string, len(lis))
	for i, li := range lis {
		ids[i] = li.ID
	}
	return ids
}

// newestFirst returns the ids of invs in the listing's order.
func newestFirst(invs ...referral.Invite) []string {
	invs = slices.Clone(invs)
	slices.SortFunc(invs, func(a, b referral.Invite) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	ids := make([]string, len(invs))
	for i, inv := range invs {
		ids[i] = inv.ID
	}
	return ids
}

// cursorOf is the cursor after li, as the handler makes it.
func cursorOf(li referral.ListedInvite) referral.InviteCursor {
	return referral.InviteCursor{CreatedAt: li.CreatedAt, ID: li.ID}
}

// getInvite reads inv back through GetInvite.
func getInvite(t *testing.T, s Referrers, inv referral.Invite) referral.ListedInvite {
	t.Helper()
	li, err := s.GetInvite(t.Context(), inv.AppID, inv.ReferrerID, inv.ID)
	require.NoError(t, err)
	return li
}

// sentInvite records inv claimed by its caller and then delivered at at,
// and returns it as stored.
func sentInvite(t *testing.T, s Referrers, inv referral.Invite, at time.Time) referral.Invite {
	t.Helper()
	inv.Attempts, inv.LeaseUntil = 1, inv.CreatedAt.Add(time.Minute)
	record(t, s, inv, referral.Limits{})
	require.NoError(t, s.UpdateDelivery(t.Context(), inv.ID, referral.Delivery{Attempt: 1, Status: referral.StatusSent, At: at}))
	got := getInvite(t, s, inv).Invite
	require.Equal(t, referral.StatusSent, got.Status)
	return got
}

// deliver claims the pending invite inv at at and records the outcome.
func deliver(t *testing.T, s Referrers, inv referral.Invite, status referral.Status, at time.Time) referral.Invite {
	t.Helper()
	claimedInvites, err := s.ClaimDue(t.Context(), at, time.Minute, 10_000)
	require.NoError(t, err)
	for _, c := range claimedInvites {
		if c.ID == inv.ID {
			require.NoError(t, s.UpdateDelivery(t.Context(), c.ID, referral.Delivery{Attempt: c.Attempts, Status: status, LastError: "x", At: at}))
			return getInvite(t, s, inv).Invite
		}
	}
	require.Failf(t, "not claimed", "invite %s was not due at %s", inv.ID, at)
	return referral.Invite{}
}

// resendOf asks for inv to be resent at at, with no MaxResends or
// ResendAfter to speak of.
func resendOf(inv referral.Invite, at time.Time) referral.Resend {
	return referral.Resend{AppID: inv.AppID, ReferrerID: inv.ReferrerID, ID: inv.ID, At: at, MaxResends: 100}
}

// resent returns inv as a resend at at without a lease leaves it.
func resent(inv referral.Invite, at time.Time) referral.Invite {
	inv.Status, inv.NextAttemptAt, inv.LeaseUntil = referral.StatusPending, at, time.Time{}
	inv.Resends++
	inv.ResentAt, inv.UpdatedAt = at, at
	return inv
}

// limitRefused asserts that err is a *LimitError equal to want.
func limitRefused(t *testing.T, err error, want referral.LimitError) {
	t.Helper()
	var le *referral.LimitError
	require.ErrorAs(t, err, &le)
	assert.ErrorIs(t, err, referral.ErrRateLimited)
	assert.Equal(t, want, *le)
}

func testListOrder(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	var mine []referral.Invite
	for i, d := range []time.Duration{0, 3 * time.Minute, time.Minute, time.Minute, 2 * time.Minute, time.Minute} {
		inv := newInvite(app, ref, uuid.NewString()+"@example.com", t0.Add(d))
		if i == 4 {
			inv = sentInvite(t, s, inv, t0.Add(time.Hour))
		} else {
			record(t, s, inv, referral.Limits{})
		}
		mine = append(mine, inv)
	}
	// Others': another referrer of the app, the referrer in another app.
	other := record(t, s, newInvite(app, uuid.NewString(), "ann@example.com", t0.Add(time.Minute)), referral.Limits{})
	record(t, s, newInvite(uuid.NewString(), ref, "ann@example.com", t0.Add(time.Minute)), referral.Limits{})

	got := listAll(t, s, app, ref)
	require.Equal(t, newestFirst(mine...), idsOf(got), "newest first, ties by id, only the referrer's")
	byID := map[string]referral.Invite{}
	for _, inv := range mine {
		byID[inv.ID] = inv
	}
	for _, li := range got {
		assertInvite(t, byID[li.ID], li.Invite)
		assert.True(t, li.AcceptedAt.IsZero())
	}
	assert.Equal(t, []string{other.ID}, idsOf(listAll(t, s, app, other.ReferrerID)))
	assert.Empty(t, listAll(t, s, app, uuid.NewString()))

	for _, limit := range []int{0, -1} {
		none, err := s.ListInvites(ctx, app, ref, referral.InviteCursor{}, limit)
		require.NoError(t, err)
		assert.Empty(t, none, "limit %d", limit)
	}
}

func testListPages(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	var invs []referral.Invite
	for i := range 7 {
		// Two invites in each millisecond but the last: the cursor's id
		// breaks the tie.
		invs = append(invs, record(t, s, newInvite(app, ref, uuid.NewString()+"@example.com", t0.Add(time.Duration(i/2)*time.Millisecond)), referral.Limits{}))
	}
	want := newestFirst(invs...)
	var pages [][]string
	after := referral.InviteCursor{}
	for range 10 {
		page, err := s.ListInvites(ctx, app, ref, after, 3)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		pages = append(pages, idsOf(page))
		after = cursorOf(page[len(page)-1])
	}
	assert.Equal(t, [][]string{want[:3], want[3:6], want[6:]}, pages)

	// A cursor between two stored times: every invite of the earlier
	// time is older.
	between := referral.InviteCursor{CreatedAt: t0.Add(1*time.Millisecond + time.Nanosecond), ID: ""}
	page, err := s.ListInvites(ctx, app, ref, between, 10)
	require.NoError(t, err)
	assert.Equal(t, want[3:], idsOf(page))
}

func testListWhileInserting(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	var old []referral.Invite
	for i := range 40 {
		old = append(old, record(t, s, newInvite(app, ref, uuid.NewString()+"@example.com", t0.Add(time.Duration(i%13)*time.Millisecond)), referral.Limits{}))
	}
	// New invites, each newer than every old one, are recorded while the
	// referrer pages through.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _, err := s.RecordInvite(ctx, newInvite(app, ref, uuid.NewString()+"@example.com", t0.Add(time.Hour+time.Duration(i)*time.Millisecond)), referral.Limits{})
			if !assert.NoError(t, err) {
				return
			}
		}
	})
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()
	var seen []string
	after := referral.InviteCursor{}
	for pages := 0; ; pages++ {
		// A store that repeats a page would page for ever.
		require.Less(t, pages, 1000, "paging does not end")
		page, err := s.ListInvites(ctx, app, ref, after, 4)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		seen = append(seen, idsOf(page)...)
		after = cursorOf(page[len(page)-1])
	}
	close(stop)
	wg.Wait()
	stopped = true

	assert.Len(t, seen, len(uniq(seen)), "no invite is listed twice")
	oldIDs := map[string]bool{}
	for _, inv := range old {
		oldIDs[inv.ID] = true
	}
	var oldSeen []string
	for i, id := range seen {
		if oldIDs[id] {
			oldSeen = append(oldSeen, id)
		} else {
			assert.Len(t, oldSeen, 0, "a newer invite listed at %d after older ones", i)
		}
	}
	assert.Equal(t, newestFirst(old...), oldSeen, "every older invite is listed, in order")
}

func uniq(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func testListAccepted(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	ann := sentInvite(t, s, newInvite(app, ref, "ann@example.com", t0), t0)
	bob := sentInvite(t, s, newInvite(app, ref, "bob@example.com", t0.Add(time.Millisecond)), t0)
	carl := sentInvite(t, s, newInvite(app, ref, "carl@example.com", t0.Add(2*time.Millisecond)), t0)

	// Ann signed up twice (two accounts): the earliest counts. Carl signed
	// up with another referrer's code, or in another app: not accepted.
	redeem(t, s, newRedemption(app, ref, "AAAAAAAAAA", uuid.NewString(), "ann@example.com", t0.Add(3*day)))
	redeem(t, s, newRedemption(app, ref, "AAAAAAAAAA", uuid.NewString(), "ann@example.com", t0.Add(2*day)))
	redeem(t, s, newRedemption(app, uuid.NewString(), "BBBBBBBBBB", uuid.NewString(), "carl@example.com", t0.Add(day)))
	redeem(t, s, newRedemption(uuid.NewString(), ref, "CCCCCCCCCC", uuid.NewString(), "carl@example.com", t0.Add(day)))

	// Bob's address was erased before; a redemption without an address,
	// or with his, does not make his invite accepted.
	n, err := s.EraseAddresses(ctx, t0.Add(1500*time.Microsecond), 10)
	require.NoError(t, err)
	require.Equal(t, 1, n, "ann's invite is accepted, so only bob's is erased")
	redeem(t, s, newRedemption(app, ref, "AAAAAAAAAA", uuid.NewString(), "", t0.Add(day)))
	redeem(t, s, newRedemption(app, ref, "AAAAAAAAAA", uuid.NewString(), "bob@example.com", t0.Add(day)))

	want := map[string]time.Time{ann.ID: t0.Add(2 * day).UTC(), bob.ID: {}, carl.ID: {}}
	got := listAll(t, s, app, ref)
	require.Len(t, got, 3)
	for _, li := range got {
		assert.Equal(t, want[li.ID], li.AcceptedAt, "invite of %q", li.EmailKey)
		assert.Equal(t, time.UTC, li.AcceptedAt.Location())
		one := getInvite(t, s, li.Invite)
		assert.Equal(t, li, one, "GetInvite has what the listing has")
	}
	erased := getInvite(t, s, bob)
	assert.Empty(t, erased.Email)
	assert.Empty(t, erased.EmailKey)
}

func testGetInvite(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	inv := addressed(app, ref, "ann@example.com", t0)
	inv.SentAt, inv.Resends, inv.ResentAt = t0.Add(time.Second), 1, t0.Add(2*time.Second)
	record(t, s, inv, referral.Limits{})
	got := getInvite(t, s, inv)
	assertInvite(t, inv, got.Invite)
	assert.True(t, got.AcceptedAt.IsZero())

	for _, c := range []struct{ name, app, ref, id string }{
		{"another referrer's", app, uuid.NewString(), inv.ID},
		{"another app's", uuid.NewString(), ref, inv.ID},
		{"unknown", app, ref, uuid.Must(uuid.NewV7()).String()},
	} {
		_, err := s.GetInvite(ctx, c.app, c.ref, c.id)
		assert.ErrorIs(t, err, referral.ErrInviteNotFound, c.name)
	}
}

func testResendStates(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{}
	pending := record(t, s, newInvite(app, ref, "pending@example.com", t0), lim)
	suppressed := newInvite(app, ref, "suppressed@example.com", t0)
	suppressed.Status, suppressed.LastError = referral.StatusSuppressed, referral.ReasonHost
	record(t, s, suppressed, lim)
	revoked := sentInvite(t, s, newInvite(app, ref, "revoked@example.com", t0), t0)
	require.NoError(t, s.Revoke(ctx, app, ref, revoked.ID, t0.Add(time.Minute)))
	for _, inv := range []referral.Invite{pending, suppressed, revoked} {
		before := getInvite(t, s, inv)
		_, err := s.Resend(ctx, resendOf(inv, t0.Add(day)), lim)
		assert.ErrorIs(t, err, referral.ErrNotResendable, "a %s invite", before.Status)
		assert.Equal(t, before, getInvite(t, s, inv), "unchanged")
	}
	for _, r := range []referral.Resend{
		{AppID: app, ReferrerID: uuid.NewString(), ID: revoked.ID, At: t0.Add(day), MaxResends: 9},
		{AppID: uuid.NewString(), ReferrerID: ref, ID: revoked.ID, At: t0.Add(day), MaxResends: 9},
		{AppID: app, ReferrerID: ref, ID: uuid.Must(uuid.NewV7()).String(), At: t0.Add(day), MaxResends: 9},
	} {
		_, err := s.Resend(ctx, r, lim)
		assert.ErrorIs(t, err, referral.ErrInviteNotFound, "%+v", r)
	}

	sent := sentInvite(t, s, newInvite(app, ref, "sent@example.com", t0), t0.Add(time.Second))
	failed := newInvite(app, ref, "failed@example.com", t0)
	failed.Status, failed.LastError = referral.StatusFailed, "550 mailbox full"
	record(t, s, failed, lim)
	at := t0.Add(day)
	for _, inv := range []referral.Invite{sent, failed} {
		got, err := s.Resend(ctx, resendOf(inv, at), lim)
		require.NoError(t, err, "a %s invite", inv.Status)
		want := resent(inv, at) // LastError and SentAt kept
		assertInvite(t, want, got)
		assertInvite(t, want, getInvite(t, s, inv).Invite)
	}
	due, err := s.ClaimDue(ctx, at, time.Minute, 100)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{pending.ID, sent.ID, failed.ID}, idsOfInvites(due), "resent invites are due")
}

func testResendAcceptedOrErased(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	// Accepted: refused before its state is looked at, and unchanged.
	ann := sentInvite(t, s, newInvite(app, ref, "ann@example.com", t0), t0)
	bob := record(t, s, newInvite(app, ref, "bob@example.com", t0), referral.Limits{})
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		redeem(t, s, newRedemption(app, ref, "AAAAAAAAAA", uuid.NewString(), email, t0.Add(time.Hour)))
	}
	for _, inv := range []referral.Invite{ann, bob} {
		before := getInvite(t, s, inv)
		_, err := s.Resend(ctx, resendOf(inv, t0.Add(day)), referral.Limits{})
		assert.ErrorIs(t, err, referral.ErrInviteAccepted, "a %s invite", before.Status)
		assert.Equal(t, before, getInvite(t, s, inv), "unchanged")
	}
	// Accepted with another referrer's code: not this referrer's to hold
	// back.
	carl := sentInvite(t, s, newInvite(app, ref, "carl@example.com", t0), t0)
	redeem(t, s, newRedemption(app, uuid.NewString(), "BBBBBBBBBB", uuid.NewString(), "carl@example.com", t0.Add(time.Hour)))
	_, err := s.Resend(ctx, resendOf(carl, t0.Add(day)), referral.Limits{})
	require.NoError(t, err)

	// Erased by retention: nothing to send it to.
	dora := sentInvite(t, s, newInvite(app, ref, "dora@example.com", t0), t0)
	n, err := s.EraseAddresses(ctx, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only dora's address is erased")
	before := getInvite(t, s, dora)
	require.Empty(t, before.Email)
	_, err = s.Resend(ctx, resendOf(dora, t0.Add(day)), referral.Limits{})
	assert.ErrorIs(t, err, referral.ErrNotResendable)
	assert.Equal(t, before, getInvite(t, s, dora), "unchanged")
}

// testRecipientLimitSends: the recipient limit counts sends, in
// RecordInvite and in Resend: a revoked invite still went out, and each
// resend is one more.
func testRecipientLimitSends(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()

	// Invite, revoke, invite again: the revoke frees the cooldown, not the
	// recipient's share.
	lim := referral.Limits{Cooldown: time.Hour, MaxPerRecipient: 3, RecipientWindow: 30 * day}
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Minute)
		inv := record(t, s, addressed(app, ref, "ann@example.com", at), lim)
		require.NoError(t, s.Revoke(ctx, app, ref, inv.ID, at.Add(time.Second)))
	}
	recordSuppressed(t, s, addressed(app, ref, "ann@example.com", t0.Add(3*time.Minute)), lim, referral.ReasonRecipientLimit)

	// One invite resent twice is three sends; one more invite is the
	// fourth.
	lim4 := referral.Limits{MaxPerRecipient: 4, RecipientWindow: 30 * day}
	bob := sentInvite(t, s, addressed(app, uuid.NewString(), "bob@example.com", t0), t0)
	for i := 1; i <= 2; i++ {
		at := t0.Add(time.Duration(i) * day)
		got, err := s.Resend(ctx, resendOf(bob, at), lim4)
		require.NoError(t, err)
		require.Equal(t, referral.StatusPending, got.Status, "resend %d", i)
		bob = deliver(t, s, got, referral.StatusSent, at.Add(time.Minute))
	}
	record(t, s, addressed(app, uuid.NewString(), "bob@example.com", t0.Add(3*day)), lim4)
	recordSuppressed(t, s, addressed(app, uuid.NewString(), "bob@example.com", t0.Add(3*day)), lim4, referral.ReasonRecipientLimit)

	// Resend counts alike: carl's revoked invite, and the one resent.
	lim3 := referral.Limits{MaxPerRecipient: 3, RecipientWindow: 30 * day}
	ref2 := uuid.NewString()
	revoked := sentInvite(t, s, addressed(app, ref2, "carl@example.com", t0), t0)
	require.NoError(t, s.Revoke(ctx, app, ref2, revoked.ID, t0.Add(time.Minute)))
	carl := sentInvite(t, s, addressed(app, uuid.NewString(), "carl@example.com", t0.Add(time.Minute)), t0.Add(time.Minute))
	got, err := s.Resend(ctx, resendOf(carl, t0.Add(day)), lim3)
	require.NoError(t, err)
	require.Equal(t, referral.StatusPending, got.Status, "the second send")
	carl = deliver(t, s, got, referral.StatusSent, t0.Add(day+time.Minute))
	got, err = s.Resend(ctx, resendOf(carl, t0.Add(2*day)), lim3)
	require.NoError(t, err)
	want := resent(carl, t0.Add(2*day))
	want.Status, want.LastError = referral.StatusSuppressed, referral.ReasonRecipientLimit
	assertInvite(t, want, got)
}

func idsOfInvites(invs []referral.Invite) []string {
	ids := make([]string, len(invs))
	for i, inv := range invs {
		ids[i] = inv.ID
	}
	return ids
}

func testResendTiming(t *testing.T, s Referrers) {
	ctx := t.Context()
	inv := sentInvite(t, s, newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0), t0.Add(time.Minute))
	r := func(at time.Time) referral.Resend {
		rs := resendOf(inv, at)
		rs.MaxResends, rs.ResendAfter = 2, day
		return rs
	}
	// ResendAfter counts from the last send.
	_, err := s.Resend(ctx, r(t0.Add(time.Minute+day-time.Millisecond)), referral.Limits{})
	limitRefused(t, err, referral.LimitError{RetryAfter: time.Millisecond})
	first := t0.Add(time.Minute + day)
	inv, err = s.Resend(ctx, r(first), referral.Limits{})
	require.NoError(t, err)
	assert.Equal(t, 1, inv.Resends)
	assert.Equal(t, first.UTC(), inv.ResentAt)

	// The resend failed: ResendAfter counts from the resend.
	inv = deliver(t, s, inv, referral.StatusFailed, first.Add(time.Hour))
	_, err = s.Resend(ctx, r(first.Add(day-time.Millisecond)), referral.Limits{})
	limitRefused(t, err, referral.LimitError{RetryAfter: time.Millisecond})
	second := first.Add(day)
	inv, err = s.Resend(ctx, r(second), referral.Limits{})
	require.NoError(t, err)
	assert.Equal(t, 2, inv.Resends)

	// Delivered: SentAt is the last send. MaxResends used: never, however
	// late.
	sentAt := second.Add(time.Hour)
	inv = deliver(t, s, inv, referral.StatusSent, sentAt)
	assert.Equal(t, sentAt.UTC(), inv.SentAt)
	for _, at := range []time.Time{sentAt.Add(time.Hour), sentAt.Add(100 * day)} {
		_, err = s.Resend(ctx, r(at), referral.Limits{})
		limitRefused(t, err, referral.LimitError{})
	}
	assertInvite(t, inv, getInvite(t, s, inv).Invite)

	// MaxResends 0: none.
	other := sentInvite(t, s, newInvite(uuid.NewString(), uuid.NewString(), "bob@example.com", t0), t0)
	rs := resendOf(other, t0.Add(day))
	rs.MaxResends = 0
	_, err = s.Resend(ctx, rs, referral.Limits{})
	limitRefused(t, err, referral.LimitError{})
}

func testResendReferrerLimit(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerReferrer: 3, Window: time.Hour}
	old := sentInvite(t, s, newInvite(app, ref, "old@example.com", t0.Add(-2*time.Hour)), t0.Add(-2*time.Hour))
	a := sentInvite(t, s, newInvite(app, ref, "a@example.com", t0), t0)
	b := sentInvite(t, s, newInvite(app, ref, "b@example.com", t0), t0)

	// Two invites created within the window and a resend: full.
	_, err := s.Resend(ctx, resendOf(old, t0.Add(time.Minute)), lim)
	require.NoError(t, err)
	refused(t, s, newInvite(app, ref, "c@example.com", t0.Add(2*time.Minute)), lim, referral.LimitError{RetryAfter: 58 * time.Minute})
	_, err = s.Resend(ctx, resendOf(a, t0.Add(2*time.Minute)), lim)
	limitRefused(t, err, referral.LimitError{RetryAfter: 58 * time.Minute})
	// Another referrer's and another app's do not count.
	sentInvite(t, s, newInvite(app, uuid.NewString(), "x@example.com", t0), t0)
	// Exclusive at its start: at t0+1h a and b leave the window; the
	// resend stays in it until t0+1h+1m.
	_, err = s.Resend(ctx, resendOf(b, t0.Add(time.Hour)), lim)
	require.NoError(t, err)
	_, err = s.Resend(ctx, resendOf(a, t0.Add(time.Hour)), lim)
	require.NoError(t, err)
	refused(t, s, newInvite(app, ref, "d@example.com", t0.Add(time.Hour)), lim, referral.LimitError{RetryAfter: time.Minute})
	record(t, s, newInvite(app, ref, "d@example.com", t0.Add(time.Hour+time.Minute)), lim)
}

func testResendRecipient(t *testing.T, s Referrers) {
	ctx := t.Context()
	app := uuid.NewString()
	lim := referral.Limits{MaxPerRecipient: 2, RecipientWindow: 30 * day}
	ann := func(at time.Time) referral.Invite {
		return sentInvite(t, s, addressed(app, uuid.NewString(), "ann@example.com", at), at)
	}
	// Ann had two invites sent within the window, this one included: a
	// resend would be a third.
	a := ann(t0)
	ann(t0)
	at := t0.Add(day)
	got, err := s.Resend(ctx, resendOf(a, at), lim)
	require.NoError(t, err)
	want := resent(a, at)
	want.Status, want.LastError = referral.StatusSuppressed, referral.ReasonRecipientLimit
	assertInvite(t, want, got)
	assertInvite(t, want, getInvite(t, s, a).Invite)

	// An invite resent within the window counts though created before it.
	bob := sentInvite(t, s, addressed(app, uuid.NewString(), "bob@example.com", t0.Add(-40*day)), t0.Add(-40*day))
	lim1 := referral.Limits{MaxPerRecipient: 1, RecipientWindow: 30 * day}
	_, err = s.Resend(ctx, resendOf(bob, t0), lim1)
	require.NoError(t, err)
	recordSuppressed(t, s, addressed(app, uuid.NewString(), "bob@example.com", t0.Add(time.Minute)), lim1, referral.ReasonRecipientLimit)

	// A suppressed address: the resend is recorded suppressed, with the
	// reason, and never claimed.
	carl := sentInvite(t, s, addressed(app, uuid.NewString(), "carl@example.com", t0), t0)
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: app, AddressHash: carl.AddressHash, Reason: referral.ReasonUnsubscribed, CreatedAt: t0}))
	r := resendOf(carl, at)
	r.LeaseUntil = at.Add(time.Minute)
	got, err = s.Resend(ctx, r, lim)
	require.NoError(t, err)
	want = resent(carl, at)
	want.Attempts++
	want.Status, want.LastError = referral.StatusSuppressed, referral.ReasonUnsubscribed
	assertInvite(t, want, got)
	due, err := s.ClaimDue(ctx, at.Add(time.Hour), time.Minute, 100)
	require.NoError(t, err)
	assert.NotContains(t, idsOfInvites(due), carl.ID)
	assert.NotContains(t, idsOfInvites(due), a.ID)
}

func testResendLease(t *testing.T, s Referrers) {
	ctx := t.Context()
	inv := sentInvite(t, s, newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0), t0)
	at := t0.Add(day)
	r := resendOf(inv, at)
	r.LeaseUntil = at.Add(30 * time.Second)
	got, err := s.Resend(ctx, r, referral.Limits{})
	require.NoError(t, err)
	want := resent(inv, at)
	want.Attempts++
	want.LeaseUntil = r.LeaseUntil
	assertInvite(t, want, got)
	assertInvite(t, want, getInvite(t, s, inv).Invite)

	// The caller holds it until the lease runs out, and may send it.
	due, err := s.ClaimDue(ctx, r.LeaseUntil.Add(-time.Millisecond), time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, due)
	assert.True(t, stillDue(t, s, got))
	require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: got.Attempts, Status: referral.StatusSent, At: at.Add(time.Second)}))
	assert.Equal(t, at.Add(time.Second).UTC(), getInvite(t, s, inv).SentAt)
}

func testRevoke(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	at := t0.Add(time.Hour)
	pending := record(t, s, newInvite(app, ref, "pending@example.com", t0), referral.Limits{})
	sent := sentInvite(t, s, newInvite(app, ref, "sent@example.com", t0), t0)
	failed := newInvite(app, ref, "failed@example.com", t0)
	failed.Status, failed.LastError = referral.StatusFailed, "550"
	record(t, s, failed, referral.Limits{})
	for _, inv := range []referral.Invite{pending, sent, failed} {
		require.NoError(t, s.Revoke(ctx, app, ref, inv.ID, at), "a %s invite", inv.Status)
		want := inv
		want.Status, want.LeaseUntil, want.UpdatedAt = referral.StatusRevoked, time.Time{}, at
		assertInvite(t, want, getInvite(t, s, inv).Invite)
		// Twice is no error, and changes nothing.
		require.NoError(t, s.Revoke(ctx, app, ref, inv.ID, at.Add(time.Hour)))
		assertInvite(t, want, getInvite(t, s, inv).Invite)
	}

	// Accepted: refused, unchanged.
	accepted := sentInvite(t, s, newInvite(app, ref, "accepted@example.com", t0), t0)
	redeem(t, s, newRedemption(app, ref, "AAAAAAAAAA", uuid.NewString(), "accepted@example.com", t0.Add(day)))
	assert.ErrorIs(t, s.Revoke(ctx, app, ref, accepted.ID, at), referral.ErrInviteAccepted)
	assertInvite(t, accepted, getInvite(t, s, accepted).Invite)

	// Not the referrer's.
	for _, c := range []struct{ app, ref, id string }{
		{app, uuid.NewString(), sent.ID},
		{uuid.NewString(), ref, sent.ID},
		{app, ref, uuid.Must(uuid.NewV7()).String()},
	} {
		assert.ErrorIs(t, s.Revoke(ctx, c.app, c.ref, c.id, at), referral.ErrInviteNotFound)
	}
	other := record(t, s, newInvite(app, uuid.NewString(), "other@example.com", t0), referral.Limits{})
	assert.ErrorIs(t, s.Revoke(ctx, app, ref, other.ID, at), referral.ErrInviteNotFound)
	assert.Equal(t, referral.StatusPending, getInvite(t, s, other).Status)

	assert.Equal(t, []string{other.ID}, pendingIDs(t, s), "a revoked invite is never claimed")
}

func testRevokeClaimed(t *testing.T, s Referrers) {
	ctx := t.Context()
	inv := record(t, s, newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0), referral.Limits{})
	due, err := s.ClaimDue(ctx, t0, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, due, 1)
	require.True(t, stillDue(t, s, due[0]))

	require.NoError(t, s.Revoke(ctx, inv.AppID, inv.ReferrerID, inv.ID, t0.Add(time.Second)))
	assert.False(t, stillDue(t, s, due[0]), "a worker holding it does not send it")
	revoked := getInvite(t, s, inv).Invite

	// Outcomes that sent nothing, or are not of this attempt, change nothing.
	attempt := due[0].Attempts
	for _, d := range []referral.Delivery{
		{Attempt: attempt, Status: referral.StatusFailed, LastError: "550", At: t0.Add(2 * time.Second)},
		{Attempt: attempt, Status: referral.StatusPending, LastError: "421", NextAttemptAt: t0.Add(time.Hour), At: t0.Add(2 * time.Second)},
		{Attempt: attempt + 1, Status: referral.StatusSent, At: t0.Add(2 * time.Second)},
	} {
		require.NoError(t, s.UpdateDelivery(ctx, inv.ID, d))
		assertInvite(t, revoked, getInvite(t, s, inv).Invite)
	}
	// The worker's send, already under way: the email went out, so its
	// time is kept, but the revoke is not undone.
	sentAt := t0.Add(3 * time.Second)
	require.NoError(t, s.UpdateDelivery(ctx, inv.ID, referral.Delivery{Attempt: attempt, Status: referral.StatusSent, At: sentAt}))
	want := revoked
	want.SentAt, want.UpdatedAt = sentAt, sentAt
	assertInvite(t, want, getInvite(t, s, inv).Invite)
	assert.Empty(t, pendingIDs(t, s))
}

func testRevokeCooldown(t *testing.T, s Referrers) {
	ctx := t.Context()
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{Cooldown: time.Hour}
	inv := record(t, s, newInvite(app, ref, "ann@example.com", t0), lim)
	refused(t, s, newInvite(app, ref, "ann@example.com", t0.Add(time.Minute)), lim, referral.LimitError{RetryAfter: 59 * time.Minute, Cooldown: true})
	require.NoError(t, s.Revoke(ctx, app, ref, inv.ID, t0.Add(time.Minute)))
	record(t, s, newInvite(app, ref, "ann@example.com", t0.Add(time.Minute)), lim)
}

func testStillDue(t *testing.T, s Referrers) {
	ctx := t.Context()
	pending := newInvite(uuid.NewString(), uuid.NewString(), "ann@example.com", t0)
	pending.Attempts = 2
	record(t, s, pending, referral.Limits{})
	other := record(t, s, newInvite(uuid.NewString(), uuid.NewString(), "cy@example.com", t0), referral.Limits{})
	sent := sentInvite(t, s, newInvite(uuid.NewString(), uuid.NewString(), "bob@example.com", t0), t0)
	claim := func(inv referral.Invite, attempts int) referral.Invite {
		return referral.Invite{ID: inv.ID, Attempts: attempts}
	}
	cases := []struct {
		name  string
		claim referral.Invite
		want  bool
	}{
		{"pending, its attempt", claim(pending, 2), true},
		{"pending, another attempt", claim(pending, 1), false},
		{"sent", claim(sent, sent.Attempts), false},
		{"unknown", claim(referral.Invite{ID: uuid.Must(uuid.NewV7()).String()}, 0), false},
		{"another pending one, its attempt", claim(other, 0), true},
		{"the first again, another attempt", claim(pending, 3), false},
	}
	var claimed []referral.Invite
	var want []bool
	for _, c := range cases {
		claimed = append(claimed, c.claim)
		want = append(want, c.want)
	}
	// In one call, each answer in its place.
	got, err := s.StillDue(ctx, claimed)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	// And one by one, the same.
	for _, c := range cases {
		assert.Equal(t, c.want, stillDue(t, s, c.claim), c.name)
	}
	got, err = s.StillDue(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// stillDue asks s whether the claimed invite inv is still due, alone.
func stillDue(t *testing.T, s Referrers, inv referral.Invite) bool {
	t.Helper()
	due, err := s.StillDue(t.Context(), []referral.Invite{inv})
	require.NoError(t, err)
	require.Len(t, due, 1)
	return due[0]
}

// testResendConcurrent: resends and new invites of one referrer, and
// resends to one address, racing, never pass the limits.
func testResendConcurrent(t *testing.T, stores []Referrers) {
	app, ref := uuid.NewString(), uuid.NewString()
	s := stores[0]
	const limit = 7
	lim := referral.Limits{MaxPerReferrer: limit, Window: time.Hour, MaxPerRecipient: 2, RecipientWindow: 30 * day}
	// Sent before the window, each to its own address but the last ten,
	// which go to ann (who had one of them within the window).
	var sent []referral.Invite
	for i := range goroutines / 2 {
		email := uuid.NewString() + "@example.com"
		if i >= goroutines/2-10 {
			email = "ann@example.com"
		}
		sent = append(sent, sentInvite(t, s, addressed(app, ref, email, t0.Add(-2*time.Hour)), t0.Add(-2*time.Hour)))
	}
	sentInvite(t, s, addressed(app, uuid.NewString(), "ann@example.com", t0), t0)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		passed  int
		toAnn   int
		start   = make(chan struct{})
		at      = t0.Add(time.Minute)
		refusal = func(err error) {
			var le *referral.LimitError
			assert.ErrorAs(t, err, &le)
		}
	)
	for i := range goroutines {
		st := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			if i%2 == 0 {
				got, err := st.Resend(t.Context(), resendOf(sent[i/2], at), lim)
				if err != nil {
					refusal(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				passed++
				if got.EmailKey == "ann@example.com" && got.Status == referral.StatusPending {
					toAnn++
				}
				return
			}
			_, _, err := st.RecordInvite(t.Context(), addressed(app, ref, uuid.NewString()+"@example.com", at), lim)
			if err != nil {
				refusal(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			passed++
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, limit, passed, "exactly the referrer limit passes")
	assert.LessOrEqual(t, toAnn, 1, "ann gets at most her share")
}
