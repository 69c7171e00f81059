package referral_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// outcomes records what the OnOutcome hook reports.
type outcomes struct {
	mu   sync.Mutex
	seen []referral.Invite
}

func (o *outcomes) add(_ context.Context, inv referral.Invite) {
	o.mu.Lock()
	o.seen = append(o.seen, inv)
	o.mu.Unlock()
}

func (o *outcomes) all() []referral.Invite {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]referral.Invite(nil), o.seen...)
}

func queuedFixture(t *testing.T, hooks *outcomes) *fixture {
	return newFixture(t, func(c *referral.Config) {
		c.Delivery = referral.Queued
		c.MaxAttempts = 3
		c.RetryBackoff = time.Minute
		c.WorkerBatch = 4
		c.OnOutcome = hooks.add
	})
}

func TestWorkerDeliversQueuedInvites(t *testing.T) {
	t.Parallel()
	hooks := &outcomes{}
	f := queuedFixture(t, hooks)
	for i := range 10 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	ctx := context.Background()
	total := 0
	for {
		n, err := f.h.DeliverDue(ctx)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		assert.LessOrEqual(t, n, 4, "claims at most WorkerBatch")
		total += n
	}
	assert.Equal(t, 10, total)
	assert.Len(t, f.mailer.Messages(), 10)
	for _, inv := range f.store.Invites() {
		assert.Equal(t, referral.StatusSent, inv.Status)
		assert.Equal(t, 1, inv.Attempts)
	}
	got := hooks.all()
	require.Len(t, got, 10)
	assert.Equal(t, referral.StatusSent, got[0].Status)
}

func TestWorkerRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	hooks := &outcomes{}
	f := queuedFixture(t, hooks)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	ctx := context.Background()

	f.mailer.Fail(errors.New("451 try again later"))
	n, err := f.h.DeliverDue(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	inv := f.store.Invites()[0]
	assert.Equal(t, referral.StatusPending, inv.Status)
	assert.Equal(t, "451 try again later", inv.LastError)
	// First retry after RetryBackoff with jitter in [1/2, 1].
	wait := inv.NextAttemptAt.Sub(f.Now())
	assert.True(t, wait >= 30*time.Second && wait <= time.Minute, "next attempt in %s", wait)
	assert.Empty(t, hooks.all(), "not final yet")

	n, _ = f.h.DeliverDue(ctx)
	assert.Equal(t, 0, n, "not due before the back-off")

	f.mailer.Fail(nil)
	f.Advance(time.Minute)
	n, _ = f.h.DeliverDue(ctx)
	assert.Equal(t, 1, n)
	inv = f.store.Invites()[0]
	assert.Equal(t, referral.StatusSent, inv.Status)
	assert.Equal(t, 2, inv.Attempts)
	assert.Len(t, f.mailer.Messages(), 1, "delivered once")
	require.Len(t, hooks.all(), 1)
}

func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	hooks := &outcomes{}
	f := queuedFixture(t, hooks)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	f.mailer.Fail(errors.New("connection refused"))
	ctx := context.Background()
	var waits []time.Duration
	for range 3 {
		n, err := f.h.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		inv := f.store.Invites()[0]
		waits = append(waits, inv.NextAttemptAt.Sub(f.Now()))
		f.Advance(time.Hour)
	}
	inv := f.store.Invites()[0]
	assert.Equal(t, referral.StatusFailed, inv.Status)
	assert.Equal(t, 3, inv.Attempts)
	assert.True(t, waits[1] >= time.Minute && waits[1] <= 2*time.Minute, "back-off doubles: %v", waits)
	n, _ := f.h.DeliverDue(ctx)
	assert.Equal(t, 0, n)
	got := hooks.all()
	require.Len(t, got, 1)
	assert.Equal(t, referral.StatusFailed, got[0].Status)
}

func TestWorkerDoesNotRetryPermanentRefusals(t *testing.T) {
	t.Parallel()
	hooks := &outcomes{}
	f := queuedFixture(t, hooks)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	f.mailer.Fail(fmt.Errorf("550 no such user: %w", mail.ErrPermanent))
	_, err := f.h.DeliverDue(context.Background())
	require.NoError(t, err)
	inv := f.store.Invites()[0]
	assert.Equal(t, referral.StatusFailed, inv.Status)
	assert.Equal(t, 1, inv.Attempts)
	require.Len(t, hooks.all(), 1)
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	hooks := &outcomes{}
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery = referral.Queued
		c.PollInterval = 5 * time.Millisecond
		c.OnOutcome = hooks.add
	})
	for i := range 3 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.h.Run(ctx) }()
	require.Eventually(t, func() bool { return len(hooks.all()) == 3 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Len(t, f.mailer.Messages(), 3)
}

// blockingMailer blocks until its context ends, like a hung server.
type blockingMailer struct{ started chan struct{} }

func (b blockingMailer) Send(ctx context.Context, m mail.Message) error {
	select {
	case b.started <- struct{}{}:
	default: // another sender's send told already
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestStoppedWorkerHandsInvitesBack(t *testing.T) {
	t.Parallel()
	bm := blockingMailer{started: make(chan struct{}, 1)}
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery = referral.Queued
		c.Mailer = bm
		c.SendTimeout = time.Hour
	})
	for i := range 3 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.h.Run(ctx) }()
	<-bm.started
	cancel()
	<-done
	for _, inv := range f.store.Invites() {
		assert.Equal(t, referral.StatusPending, inv.Status)
		assert.True(t, inv.LeaseUntil.IsZero(), "lease released")
		assert.False(t, inv.NextAttemptAt.After(f.Now()), "due again at once")
	}
}

// gatedRecords is a store whose delivery records wait until every message
// of the batch has gone out, as records do behind a busy store's commits.
type gatedRecords struct {
	referral.CodeStore
	allSent <-chan struct{}
}

func (g gatedRecords) UpdateDelivery(ctx context.Context, id string, d referral.Delivery) error {
	select {
	case <-g.allSent:
		return g.CodeStore.UpdateDelivery(ctx, id, d)
	case <-time.After(10 * time.Second):
		return errors.New("the worker waited for this record before sending on")
	}
}

// countingMailer closes allSent once it has sent n messages.
type countingMailer struct {
	mailtest.Recorder
	n       int
	allSent chan struct{}
}

func (c *countingMailer) Send(ctx context.Context, m mail.Message) error {
	err := c.Recorder.Send(ctx, m)
	if len(c.Recorder.Messages()) == c.n {
		close(c.allSent)
	}
	return err
}

// TestWorkerSendsWhileRecording: a slow record does not hold up the next
// message; every outcome is recorded before DeliverDue returns.
func TestWorkerSendsWhileRecording(t *testing.T) {
	t.Parallel()
	allSent := make(chan struct{})
	cm := &countingMailer{n: 3, allSent: allSent}
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery = referral.Queued
		c.Mailer = cm
		c.Store = gatedRecords{c.Store, allSent}
	})
	for i := range 3 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	n, err := f.h.DeliverDue(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	for _, inv := range f.store.Invites() {
		assert.Equal(t, referral.StatusSent, inv.Status, "recorded before DeliverDue returned")
	}
}

// concurrentMailer counts the Sends in progress at once and holds each until
// Senders of them are (or five seconds have passed).
type concurrentMailer struct {
	mu           sync.Mutex
	now, most, n int
	full         chan struct{}
	want         int
}

func (m *concurrentMailer) Send(ctx context.Context, _ mail.Message) error {
	m.mu.Lock()
	m.now++
	m.n++
	m.most = max(m.most, m.now)
	if m.now == m.want && m.n == m.want {
		close(m.full) // the first Senders, together: the rest pass at once
	}
	m.mu.Unlock()
	select {
	case <-m.full:
	case <-time.After(5 * time.Second):
	}
	m.mu.Lock()
	m.now--
	m.mu.Unlock()
	return nil
}

// The worker sends Config.Senders messages of a batch at once, and still
// each once.
func TestWorkerSendsConcurrently(t *testing.T) {
	t.Parallel()
	m := &concurrentMailer{full: make(chan struct{}), want: 3}
	f := newFixture(t, func(c *referral.Config) {
		c.Delivery, c.Mailer, c.Senders, c.WorkerBatch = referral.Queued, m, 3, 7
	})
	for i := range 7 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	n, err := f.h.DeliverDue(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 7, n)
	assert.Equal(t, 3, m.most, "Senders at once, never more")
	assert.Equal(t, 7, m.n, "each invite once")
	for _, inv := range f.store.Invites() {
		assert.Equal(t, referral.StatusSent, inv.Status)
	}
}

// batchCounter is a DeliveryBatchStore that counts its records: each call
// of UpdateDeliveries and its size, and each UpdateDelivery.
type batchCounter struct {
	*memory.Store
	fail   bool // UpdateDeliveries fails, recording nothing
	mu     sync.Mutex
	groups []int
	single int
}

func (b *batchCounter) UpdateDeliveries(ctx context.Context, updates []referral.DeliveryUpdate) error {
	b.mu.Lock()
	b.groups = append(b.groups, len(updates))
	b.mu.Unlock()
	if b.fail {
		return errors.New("the batch failed")
	}
	return b.Store.UpdateDeliveries(ctx, updates)
}

func (b *batchCounter) UpdateDelivery(ctx context.Context, id string, d referral.Delivery) error {
	b.mu.Lock()
	b.single++
	b.mu.Unlock()
	return b.Store.UpdateDelivery(ctx, id, d)
}

// batchCounterInvites is more than three groups of two senders' outcomes.
const batchCounterInvites = 3*referral.RecordRounds*2 + 1

// deliverThroughBatchCounter delivers batchCounterInvites invites, 2
// senders at once, through a batchCounter (whose UpdateDeliveries fails
// with fail), checks that all were recorded sent before DeliverDue
// returned, and returns the fixture, the counter, and how many outcomes
// UpdateDeliveries was given.
func deliverThroughBatchCounter(t *testing.T, fail bool) (*fixture, *batchCounter, int) {
	t.Helper()
	var store *batchCounter
	f := newFixture(t, func(c *referral.Config) {
		store = &batchCounter{Store: c.Store.(*memory.Store), fail: fail}
		c.Delivery, c.Store, c.Senders, c.WorkerBatch = referral.Queued, store, 2, batchCounterInvites
	})
	for i := range batchCounterInvites {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	n, err := f.h.DeliverDue(context.Background())
	require.NoError(t, err)
	require.Equal(t, batchCounterInvites, n)
	for _, inv := range f.store.Invites() {
		assert.Equal(t, referral.StatusSent, inv.Status, "recorded before DeliverDue returned")
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	total := 0
	for _, g := range store.groups {
		assert.LessOrEqual(t, g, referral.RecordRounds*2, "a call records at most RecordRounds rounds")
		total += g
	}
	return f, store, total
}

// With a DeliveryBatchStore the worker records its outcomes through
// UpdateDeliveries, at most recordRounds rounds of Senders in a call, each
// once.
func TestWorkerRecordsAGroupInOneCall(t *testing.T) {
	t.Parallel()
	_, store, total := deliverThroughBatchCounter(t, false)
	assert.Equal(t, batchCounterInvites, total, "outcomes recorded, in %v", store.groups)
	assert.Zero(t, store.single, "UpdateDelivery calls")
}

// When UpdateDeliveries fails, each outcome of its group is recorded on its
// own: none is left to be sent again.
func TestWorkerRecordsEachWhenAGroupFails(t *testing.T) {
	t.Parallel()
	f, store, total := deliverThroughBatchCounter(t, true)
	assert.Len(t, f.mailer.Messages(), batchCounterInvites, "each invite sent once")
	assert.Equal(t, batchCounterInvites, total, "outcomes tried in groups, in %v", store.groups)
	assert.Equal(t, batchCounterInvites, store.single, "outcomes then recorded alone")
	assert.Contains(t, f.logs.String(), "recording a group of deliveries failed")
}
