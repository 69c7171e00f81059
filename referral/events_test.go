package referral_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
	"github.com/referralkit/referralkit/webhook"
)

// fakeOutbox is an EventStore holding events given to it, for the
// worker's lane alone; the stores' own outboxes have storetest.
type fakeOutbox struct {
	mu     sync.Mutex
	on     bool
	events map[string]*referral.Event
	done   []string
	gaveUp []string
}

func (o *fakeOutbox) Outbox() bool { return o.on }

func (o *fakeOutbox) add(ev referral.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.events == nil {
		o.events = map[string]*referral.Event{}
	}
	ev.NextAttemptAt = ev.At
	o.events[ev.ID] = &ev
}

func (o *fakeOutbox) ClaimEvents(_ context.Context, now time.Time, lease time.Duration, max int) ([]referral.Event, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []referral.Event
	for _, ev := range o.events {
		if len(out) < max && !ev.NextAttemptAt.After(now) && !ev.LeaseUntil.After(now) {
			ev.Attempts++
			ev.LeaseUntil = now.Add(lease)
			out = append(out, *ev)
		}
	}
	return out, nil
}

func (o *fakeOutbox) EventDelivered(_ context.Context, id string, attempt int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ev, ok := o.events[id]; ok && ev.Attempts == attempt {
		delete(o.events, id)
		o.done = append(o.done, id)
	}
	return nil
}

func (o *fakeOutbox) EventFailed(_ context.Context, id string, attempt int, next time.Time, lastError string, giveUp bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	ev, ok := o.events[id]
	if !ok || ev.Attempts != attempt {
		return nil
	}
	if giveUp {
		delete(o.events, id)
		o.gaveUp = append(o.gaveUp, id)
		return nil
	}
	ev.NextAttemptAt, ev.LeaseUntil, ev.LastError = next, time.Time{}, lastError
	return nil
}

// flakySender fails the first n sends of each event.
type flakySender struct {
	mu    sync.Mutex
	fail  int
	tries map[string]int
	sent  []string
}

func (s *flakySender) SendEvent(_ context.Context, ev referral.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tries == nil {
		s.tries = map[string]int{}
	}
	s.tries[ev.ID]++
	if s.tries[ev.ID] <= s.fail {
		return errors.New("503 from the endpoint")
	}
	s.sent = append(s.sent, ev.ID)
	return nil
}

func TestWebhookLaneRetriesThenGivesUp(t *testing.T) {
	t.Parallel()
	out := &fakeOutbox{on: true}
	sender := &flakySender{fail: 2}
	f := newFixture(t, func(c *referral.Config) { c.Webhooks, c.Events = sender, out })
	ctx := context.Background()
	out.add(referral.Event{ID: "e1", Type: referral.EventInviteSent, At: f.Now().UTC()})

	for range 2 { // two failures, each due again after a back-off
		n, err := f.h.DeliverEvents(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = f.h.DeliverEvents(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "not before its back-off")
		f.Advance(2 * time.Hour)
	}
	_, err := f.h.DeliverEvents(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"e1"}, sender.sent)
	assert.Equal(t, []string{"e1"}, out.done)

	// An endpoint that never answers 2xx: given up once the event is three
	// days old, not before.
	dead := &flakySender{fail: 1 << 30}
	g := newFixture(t, func(c *referral.Config) { c.Webhooks, c.Events = dead, out })
	out.add(referral.Event{ID: "e2", Type: referral.EventInviteFailed, At: g.Now().UTC()})
	for range 71 {
		_, err := g.h.DeliverEvents(ctx)
		require.NoError(t, err)
		g.Advance(time.Hour)
	}
	assert.Empty(t, out.gaveUp, "still retried before three days")
	g.Advance(2 * time.Hour)
	_, err = g.h.DeliverEvents(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"e2"}, out.gaveUp)
}

// Webhooks need an outbox that records events.
func TestWebhooksNeedAnOutbox(t *testing.T) {
	t.Parallel()
	for _, events := range []referral.EventStore{nil, &fakeOutbox{on: false}} {
		_, err := tryNew(func(c *referral.Config) { c.Webhooks, c.Events = &flakySender{}, events })
		assert.ErrorIs(t, err, referral.ErrNoOutbox)
	}
}

// tryNew builds a handler of the fixture's configuration, changed.
func tryNew(configure func(*referral.Config)) (*referral.Handler, error) {
	store := memory.New()
	cfg := referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: store, Recipients: store,
		Mailer: &discardMailer{}, From: "a@example.com", SignupURL: "https://example.com/?r={code}",
		UnsubscribeURL: unsubscribeBase + "{token}"}
	configure(&cfg)
	return referral.New(cfg)
}

// blockedSender never answers until its context ends.
type blockedSender struct{ calls chan struct{} }

func (s blockedSender) SendEvent(ctx context.Context, _ referral.Event) error {
	s.calls <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// A webhook endpoint that hangs does not delay an email: the lanes are
// apart.
func TestWebhookLaneDoesNotHoldUpEmails(t *testing.T) {
	t.Parallel()
	out := &fakeOutbox{on: true}
	sender := blockedSender{calls: make(chan struct{}, 16)}
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery, c.Webhooks, c.Events, c.PollInterval = referral.Queued, sender, out, 5*time.Millisecond
	})
	out.add(referral.Event{ID: "e1", Type: referral.EventInviteSent, At: f.Now().UTC()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.h.Run(ctx) }()
	<-sender.calls // the lane is stuck in a send
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	require.Eventually(t, func() bool { return len(f.mailer.Messages()) == 1 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled, "Run returns once both lanes stop")
}

// recordingSender keeps the events sent to it.
type recordingSender struct {
	mu     sync.Mutex
	events []referral.Event
}

func (s *recordingSender) SendEvent(_ context.Context, ev referral.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	return nil
}

// With a store whose outbox is on, every change reaches the webhook lane:
// a sent invite, a revoke, a redemption.
func TestEventsFromTheStore(t *testing.T) {
	t.Parallel()
	store := memory.NewWithOptions(memory.Options{Outbox: true})
	sender := &recordingSender{}
	f := newFixture(t, func(c *referral.Config) {
		c.Store, c.Recipients, c.Redemptions, c.Referrers = store, store, store, store
		c.Webhooks, c.Events = sender, store
	})
	ctx := context.Background()
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	checkEnvelope(t, f.post(invite("b@example.com", "en")), 201)
	invs := store.Invites()
	require.NoError(t, f.h.RevokeInvite(ctx, appID, userID, invs[1].ID))
	_, err := f.h.Redeem(ctx, invs[0].Code, newUser, "a@example.com")
	require.NoError(t, err)
	n, err := f.h.DeliverEvents(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	got := map[string]int{}
	for _, ev := range sender.events {
		got[ev.Type]++
		assert.NotEmpty(t, ev.ID)
		assert.Equal(t, appID, ev.AppID)
	}
	assert.Equal(t, map[string]int{referral.EventInviteSent: 2, referral.EventInviteRevoked: 1, referral.EventReferralRedeemed: 1}, got)
	n, err = f.h.DeliverEvents(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "delivered events are gone")
}

// Through a real HTTP receiver on 127.0.0.1 that checks every signature:
// the first attempt times out, the second gets a 500, the third lands, and
// all three carry one webhook-id.
func TestWebhookThroughAReceiver(t *testing.T) {
	t.Parallel()
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	var mu sync.Mutex
	var ids []string
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header, body, time.Now(), 0); err != nil {
			t.Errorf("unsigned delivery: %v", err)
		}
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		n := len(ids)
		mu.Unlock()
		switch n {
		case 1:
			<-release // hangs past the sender's timeout
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	defer close(release)
	store := memory.NewWithOptions(memory.Options{Outbox: true})
	sender := &webhook.Sender{URL: srv.URL, Secret: secret, Client: &http.Client{Timeout: 200 * time.Millisecond}}
	f := newFixture(t, func(c *referral.Config) {
		c.Store, c.Recipients, c.Redemptions, c.Referrers = store, store, store, store
		c.Webhooks, c.Events = sender, store
	})
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	for range 3 {
		_, err := f.h.DeliverEvents(context.Background())
		require.NoError(t, err)
		f.Advance(2 * time.Hour) // past any back-off
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, ids, 3)
	assert.Equal(t, ids[0], ids[1])
	assert.Equal(t, ids[0], ids[2])
	n, err := f.h.DeliverEvents(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n, "delivered on the third attempt")
}

// With an outbox the hooks are fed from it: not before DeliverEvents, at
// least once when a claim was lost (a crash after the claim), and not
// again on a webhook retry. Without webhooks the events are still
// removed once the hooks had them.
func TestHooksFromTheOutbox(t *testing.T) {
	t.Parallel()
	for _, withWebhooks := range []bool{true, false} {
		store := memory.NewWithOptions(memory.Options{Outbox: true})
		sender := &flakySender{fail: 1}
		var mu sync.Mutex
		var outcomes []referral.Invite
		var redeemed []referral.Redemption
		f := newFixture(t, func(c *referral.Config) {
			c.Store, c.Recipients, c.Redemptions, c.Referrers = store, store, store, store
			c.Events = store
			if withWebhooks {
				c.Webhooks = sender
			}
			c.OnOutcome = func(ctx context.Context, inv referral.Invite) {
				require.NotNil(t, ctx)
				mu.Lock()
				defer mu.Unlock()
				outcomes = append(outcomes, inv)
			}
			c.OnRedeemed = func(_ context.Context, r referral.Redemption) {
				mu.Lock()
				defer mu.Unlock()
				redeemed = append(redeemed, r)
			}
		})
		ctx := context.Background()
		checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
		inv := store.Invites()[0]
		_, err := f.h.Redeem(ctx, inv.Code, newUser, "a@example.com")
		require.NoError(t, err)
		assert.Empty(t, outcomes, "not before the outbox is read")
		assert.Empty(t, redeemed)

		// A worker claims both events and dies before doing anything.
		claimed, err := store.ClaimEvents(ctx, f.Now().UTC(), time.Minute, 10)
		require.NoError(t, err)
		require.Len(t, claimed, 2)
		n, err := f.h.DeliverEvents(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "leased")
		f.Advance(2 * time.Minute)

		n, err = f.h.DeliverEvents(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		f.Advance(2 * time.Hour) // past the webhooks' back-off
		n, err = f.h.DeliverEvents(ctx)
		require.NoError(t, err)
		if withWebhooks {
			assert.Equal(t, 2, n, "the webhooks failed once and are retried")
			assert.Len(t, sender.sent, 2)
		} else {
			assert.Zero(t, n, "without webhooks an event is done once the hooks had it")
		}
		n, err = f.h.DeliverEvents(ctx)
		require.NoError(t, err)
		assert.Zero(t, n)

		mu.Lock()
		require.Len(t, outcomes, 1, "once, though the event was claimed %d times", 2)
		assert.Equal(t, referral.Invite{ID: inv.ID, AppID: appID, ReferrerID: userID, Status: referral.StatusSent,
			SentAt: outcomes[0].UpdatedAt, UpdatedAt: outcomes[0].UpdatedAt}, outcomes[0])
		assert.False(t, outcomes[0].SentAt.IsZero())
		require.Len(t, redeemed, 1)
		assert.Equal(t, referral.Redemption{AppID: appID, ReferrerID: userID, Code: inv.Code, NewUserID: newUser,
			CreatedAt: redeemed[0].CreatedAt}, redeemed[0])
		mu.Unlock()
	}
}

// hookCheckingSender records, at each send, how many hook calls came
// before it.
type hookCheckingSender struct {
	hooks  *atomic.Int32
	mu     sync.Mutex
	before []int32
}

func (s *hookCheckingSender) SendEvent(context.Context, referral.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = append(s.before, s.hooks.Load())
	return errors.New("503")
}

// A batch's hooks all run before its first webhook send, so an endpoint
// that hangs does not hold them up behind it.
func TestHooksBeforeWebhooks(t *testing.T) {
	t.Parallel()
	store := memory.NewWithOptions(memory.Options{Outbox: true})
	var hooks atomic.Int32
	sender := &hookCheckingSender{hooks: &hooks}
	f := newFixture(t, func(c *referral.Config) {
		c.Store, c.Recipients, c.Redemptions, c.Referrers = store, store, store, store
		c.Webhooks, c.Events = sender, store
		c.OnOutcome = func(context.Context, referral.Invite) { hooks.Add(1) }
	})
	for i := range 3 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	n, err := f.h.DeliverEvents(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, []int32{3, 3, 3}, sender.before)
}

// concurrentSender fails every send, once want of them are in flight at
// once (or five seconds have passed), and keeps the most it saw.
type concurrentSender struct {
	mu         sync.Mutex
	now, most  int
	want, seen int
	full       chan struct{}
}

func (s *concurrentSender) SendEvent(ctx context.Context, _ referral.Event) error {
	s.mu.Lock()
	s.now++
	s.seen++
	s.most = max(s.most, s.now)
	if s.seen == s.want {
		close(s.full)
	}
	s.mu.Unlock()
	select {
	case <-s.full:
	case <-time.After(5 * time.Second):
	}
	s.mu.Lock()
	s.now--
	s.mu.Unlock()
	return errors.New("timeout")
}

// A batch's events are sent at once: an endpoint that never answers costs
// one timeout per batch, and a failure is logged.
func TestWebhooksOfABatchAtOnce(t *testing.T) {
	t.Parallel()
	store := memory.NewWithOptions(memory.Options{Outbox: true})
	sender := &concurrentSender{want: 3, full: make(chan struct{})}
	f := newFixture(t, func(c *referral.Config) {
		c.Store, c.Recipients, c.Redemptions, c.Referrers = store, store, store, store
		c.Webhooks, c.Events = sender, store
	})
	for i := range 3 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	n, err := f.h.DeliverEvents(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, 3, sender.most)
	assert.Contains(t, f.logs.String(), "referral webhook failed; retried later")
}

// An invite revoked while its email is being sent: its invite.sent event
// carries the status the store kept, revoked, and OnOutcome, fed from the
// outbox, still gets the SentAt of the email that went out.
func TestOutcomeOfASendDuringARevoke(t *testing.T) {
	t.Parallel()
	store := memory.NewWithOptions(memory.Options{Outbox: true})
	mailer := gatedMailer{started: make(chan struct{}, 1), release: make(chan struct{})}
	var mu sync.Mutex
	var outcomes []referral.Invite
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery, c.Mailer = referral.Queued, mailer
		c.Store, c.Recipients, c.Redemptions, c.Referrers, c.Events = store, store, store, store, store
		c.OnOutcome = func(_ context.Context, inv referral.Invite) {
			mu.Lock()
			defer mu.Unlock()
			outcomes = append(outcomes, inv)
		}
	})
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	done := make(chan error)
	go func() {
		_, err := f.h.DeliverDue(context.Background())
		done <- err
	}()
	<-mailer.started
	inv := store.Invites()[0]
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+inv.ID), 200)
	close(mailer.release)
	require.NoError(t, <-done)

	n, err := f.h.DeliverEvents(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "invite.revoked and invite.sent")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, outcomes, 1)
	assert.Equal(t, inv.ID, outcomes[0].ID)
	assert.Equal(t, referral.StatusRevoked, outcomes[0].Status)
	assert.False(t, outcomes[0].SentAt.IsZero(), "SentAt of the email that went out")
	assert.Equal(t, referral.StatusRevoked, store.Invites()[0].Status)
}
