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
