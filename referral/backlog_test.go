package referral_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// gateMailer holds every Send until open is closed, telling started of
// the first.
type gateMailer struct {
	mailtest.Recorder
	open, started chan struct{}
}

func newGateMailer() *gateMailer {
	return &gateMailer{open: make(chan struct{}), started: make(chan struct{}, 1)}
}

func (g *gateMailer) Send(ctx context.Context, m mail.Message) error {
	select {
	case g.started <- struct{}{}:
	default:
	}
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Recorder.Send(ctx, m)
}

// backlogFixture is a queued handler with a backlog of max, whose worker
// (running, unless idle) claims one invite at a time and blocks in its
// mailer until the gate opens.
func backlogFixture(t *testing.T, max int, wait time.Duration, run bool) (*fixture, *gateMailer) {
	t.Helper()
	gm := newGateMailer()
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery, c.Mailer = referral.Queued, gm
		c.MaxBacklog, c.BacklogWait = max, wait
		c.WorkerBatch, c.Senders = 1, 1
		c.PollInterval, c.SendTimeout = time.Millisecond, time.Hour
	})
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.h.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	return f, gm
}

// postAsync posts body and returns where its answer arrives.
func postAsync(f *fixture, body string) <-chan *httptest.ResponseRecorder {
	c := make(chan *httptest.ResponseRecorder, 1)
	go func() { c <- f.post(body) }()
	return c
}

// answer waits for an answer; a request stuck waiting fails the test
// instead of hanging it.
func answer(t *testing.T, c <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case w := <-c:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the request is still waiting")
		return nil
	}
}

// notAnswered checks that a request is still waiting a while later.
func notAnswered(t *testing.T, c <-chan *httptest.ResponseRecorder) {
	t.Helper()
	select {
	case w := <-c:
		t.Fatalf("answered %d while the backlog was full", w.Code)
	case <-time.After(100 * time.Millisecond):
	}
}

// With MaxBacklog invites queued ahead of the worker, the next request
// waits until the worker claims another, then is answered as ever.
func TestBacklogHoldsRequestsWhileTheWorkerIsBehind(t *testing.T) {
	t.Parallel()
	f, gm := backlogFixture(t, 2, time.Hour, true)
	checkEnvelope(t, f.post(invite("p0@example.com", "en")), 201)
	<-gm.started // the worker claimed p0 and is sending it
	checkEnvelope(t, answer(t, postAsync(f, invite("p1@example.com", "en"))), 201)
	checkEnvelope(t, answer(t, postAsync(f, invite("p2@example.com", "en"))), 201)
	fourth := postAsync(f, invite("p3@example.com", "en"))
	notAnswered(t, fourth)
	assert.Len(t, f.store.Invites(), 3, "the waiting request has recorded nothing yet")

	close(gm.open) // the worker sends p0 and claims p1: a slot is free
	checkEnvelope(t, answer(t, fourth), 201)
	require.Eventually(t, func() bool { return len(gm.Messages()) == 4 }, 10*time.Second, time.Millisecond)
	for _, inv := range f.store.Invites() {
		assert.Equal(t, referral.StatusSent, inv.Status)
	}
}

// A request waits at most BacklogWait, and is then recorded anyway.
func TestBacklogWaitIsBounded(t *testing.T) {
	t.Parallel()
	f, gm := backlogFixture(t, 1, 10*time.Millisecond, true)
	checkEnvelope(t, f.post(invite("p0@example.com", "en")), 201)
	<-gm.started
	for i := 1; i <= 4; i++ {
		checkEnvelope(t, answer(t, postAsync(f, invite(fmt.Sprintf("p%d@example.com", i), "en"))), 201)
	}
	assert.Len(t, f.store.Invites(), 5)
	close(gm.open)
}

// Without Run in the process nobody frees a slot: the bound does not
// apply.
func TestBacklogNeedsARunningWorker(t *testing.T) {
	t.Parallel()
	f, _ := backlogFixture(t, 1, time.Hour, false)
	for i := range 3 {
		checkEnvelope(t, answer(t, postAsync(f, invite(fmt.Sprintf("p%d@example.com", i), "en"))), 201)
	}
}

// A request that queues nothing (recorded suppressed, refused by a limit)
// gives its slot back.
func TestBacklogSlotsOfInvitesNotQueued(t *testing.T) {
	t.Parallel()
	f, gm := backlogFixture(t, 1, time.Hour, true)
	checkEnvelope(t, f.post(invite("p0@example.com", "en")), 201)
	<-gm.started
	require.NoError(t, f.h.Suppress(context.Background(), appID, "gone@example.com"))
	checkEnvelope(t, answer(t, postAsync(f, invite("gone@example.com", "en"))), 201) // recorded suppressed
	for range 2 {
		checkEnvelope(t, answer(t, postAsync(f, invite("gone@example.com", "en"))), 429) // the cooldown
	}
	checkEnvelope(t, answer(t, postAsync(f, invite("p1@example.com", "en"))), 201) // queued: the slot
	waiting := postAsync(f, invite("p2@example.com", "en"))
	notAnswered(t, waiting)
	close(gm.open)
	checkEnvelope(t, answer(t, waiting), 201)
}

// panicStore panics in RecordInvite for one address, as a store (or a
// wrapper around one) may.
type panicStore struct {
	*memory.Store
	panicFor string
}

func (p *panicStore) RecordInvite(ctx context.Context, inv referral.Invite, lim referral.Limits) (referral.Invite, bool, error) {
	if inv.EmailKey == p.panicFor {
		panic("store exploded")
	}
	return p.Store.RecordInvite(ctx, inv, lim)
}

// runner runs a handler's Run and stops it on demand.
type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func startRun(h *referral.Handler) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- h.Run(ctx) }()
	return r
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// A record that panics gives its slot back: otherwise, with the worker
// busy, the next request would wait although nothing is queued.
func TestBacklogSlotOfAPanickedRecord(t *testing.T) {
	t.Parallel()
	gm := newGateMailer()
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery, c.Mailer = referral.Queued, gm
		c.MaxBacklog, c.BacklogWait = 1, time.Hour
		c.WorkerBatch, c.Senders, c.PollInterval, c.SendTimeout = 1, 1, time.Millisecond, time.Hour
		c.Store = &panicStore{Store: c.Store.(*memory.Store), panicFor: "boom@example.com"}
	})
	r := startRun(f.h)
	defer r.stop()
	checkEnvelope(t, f.post(invite("p0@example.com", "en")), 201)
	<-gm.started // the worker claimed p0 and sends it: the backlog is empty
	assert.Panics(t, func() { f.post(invite("boom@example.com", "en")) })
	checkEnvelope(t, answer(t, postAsync(f, invite("p1@example.com", "en"))), 201)
	close(gm.open)
}

// When the last Run stops, the requests waiting for a slot go ahead:
// nobody would free one.
func TestBacklogWaitersGoWhenRunStops(t *testing.T) {
	t.Parallel()
	f, gm := backlogFixture(t, 1, time.Hour, false)
	r := startRun(f.h)
	checkEnvelope(t, f.post(invite("p0@example.com", "en")), 201)
	<-gm.started
	checkEnvelope(t, answer(t, postAsync(f, invite("p1@example.com", "en"))), 201) // the slot
	waiting := postAsync(f, invite("p2@example.com", "en"))
	notAnswered(t, waiting)
	r.stop()
	checkEnvelope(t, answer(t, waiting), 201)
}

// A request that finds every slot taken wakes an idle worker rather than
// waiting for its next poll.
func TestBacklogWakesAnIdleWorker(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery = referral.Queued
		c.MaxBacklog, c.BacklogWait = 1, time.Hour
		c.PollInterval = time.Hour
	})
	r := startRun(f.h)
	defer r.stop()
	time.Sleep(50 * time.Millisecond) // the worker polled, found nothing, sleeps
	checkEnvelope(t, answer(t, postAsync(f, invite("p0@example.com", "en"))), 201)
	checkEnvelope(t, answer(t, postAsync(f, invite("p1@example.com", "en"))), 201)
	require.Eventually(t, func() bool { return len(f.mailer.Messages()) >= 1 }, 10*time.Second, time.Millisecond)
}

// A request whose context ends while it waits records nothing and takes
// no slot: once the queue drains, requests pass at once.
func TestBacklogCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	f, gm := backlogFixture(t, 1, time.Hour, true)
	checkEnvelope(t, f.post(invite("p0@example.com", "en")), 201)
	<-gm.started
	checkEnvelope(t, f.post(invite("p1@example.com", "en")), 201) // the slot
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		w := f.serve(newRequest("POST", path, invite(fmt.Sprintf("c%d@example.com", i), "en")).WithContext(ctx))
		cancel()
		assert.NotEqual(t, 201, w.Code, "recorded after its context ended")
	}
	assert.Len(t, f.store.Invites(), 2)
	close(gm.open)
	require.Eventually(t, func() bool { return len(gm.Messages()) == 2 }, 10*time.Second, time.Millisecond)
	for i := range 3 {
		checkEnvelope(t, answer(t, postAsync(f, invite(fmt.Sprintf("q%d@example.com", i), "en"))), 201)
	}
}

// Several Run loops, stopped and restarted under concurrent requests (run
// with -race): no deadlock, and every invite is answered and sent.
func TestBacklogSeveralRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery = referral.Queued
		c.MaxBacklog, c.BacklogWait = 3, time.Hour
		c.WorkerBatch, c.Senders, c.PollInterval = 2, 2, time.Millisecond
	})
	runs := []*runner{startRun(f.h), startRun(f.h), startRun(f.h)}
	defer func() {
		for _, r := range runs {
			r.stop()
		}
	}()
	var answers []<-chan *httptest.ResponseRecorder
	for i := range 30 {
		answers = append(answers, postAsync(f, invite(fmt.Sprintf("r%d@example.com", i), "en")))
		if i%7 == 3 {
			runs[i%3].stop()
			runs[i%3] = startRun(f.h)
		}
	}
	for _, a := range answers {
		checkEnvelope(t, answer(t, a), 201)
	}
	require.Eventually(t, func() bool { return len(f.mailer.Messages()) == 30 }, 15*time.Second, time.Millisecond)
}

// Inline delivery has no backlog, Run or not.
func TestBacklogNotWithInlineDelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.MaxBacklog, c.BacklogWait = 1, time.Hour
	})
	r := startRun(f.h)
	defer r.stop()
	for i := range 3 {
		checkEnvelope(t, answer(t, postAsync(f, invite(fmt.Sprintf("i%d@example.com", i), "en"))), 201)
	}
}
