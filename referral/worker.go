package referral

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/referralkit/referralkit/mail"
)

// maxBackoff caps the delay between two delivery attempts.
const maxBackoff = time.Hour

// eraseInterval is how often Run erases expired addresses, when idle.
const eraseInterval = time.Minute

// Run delivers queued invites until ctx is done, then returns ctx's error.
// Run it in both delivery modes: with Inline delivery it sends the invites
// whose request was cut off between recording and sending (a crash, a
// kill), once their attempt's lease has expired.
// It is safe to run in several goroutines and processes on one store: each
// invite is claimed with a lease, so two workers never send it at the same
// time. Transient failures are retried with exponential back-off and jitter
// up to Config.MaxAttempts; permanent refusals (mail.ErrPermanent) fail at
// once. A worker stopped mid-batch hands its unsent invites back. With
// Config.Webhooks it also delivers events (DeliverEvents), in a lane of its
// own. When idle, about once a minute, it also erases expired addresses
// (see EraseExpiredAddresses). While it runs, Config.MaxBacklog applies.
func (h *Handler) Run(ctx context.Context) error {
	defer h.backlog.running()()
	if h.outbox {
		// A lane of its own: a slow endpoint never delays an email.
		var lane sync.WaitGroup
		lane.Go(func() { h.runEvents(ctx) })
		defer lane.Wait()
	}
	var nextErase time.Time
	for {
		n, err := h.DeliverDue(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			h.cfg.Logger.LogAttrs(ctx, slog.LevelError, "referral worker: claiming invites failed", slog.String("cause", err.Error()))
		}
		if n > 0 && err == nil {
			continue // there may be more due right now
		}
		if now := time.Now(); !now.Before(nextErase) {
			nextErase = now.Add(eraseInterval)
			if n, err := h.EraseExpiredAddresses(ctx); err != nil && ctx.Err() == nil {
				h.cfg.Logger.LogAttrs(ctx, slog.LevelError, "referral worker: erasing expired addresses failed", slog.String("cause", err.Error()))
			} else if n > 0 {
				h.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "referral worker: erased expired addresses", slog.Int("invites", n))
			}
		}
		t := time.NewTimer(h.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-h.backlog.woken():
			t.Stop()
		}
	}
}

// DeliverDue claims one batch of due invites (at most Config.WorkerBatch),
// delivers them, Config.Senders at a time, and records each outcome. It
// returns how many it claimed, once every outcome is recorded. Run calls it
// in a loop; a host may call it from its own scheduler instead.
//
// Outcomes are recorded while the next messages are being sent: a record
// is a store write, which under load waits for a commit, and waiting for
// each in turn let a busy handler starve the worker (BENCHMARKS.md has the
// figures). A DeliveryBatchStore gets them recordRounds rounds of
// Config.Senders at a time (see outcomes).
func (h *Handler) DeliverDue(ctx context.Context) (int, error) {
	now := h.cfg.Now().UTC()
	// The lease covers the batch, each sender sending its share one by
	// one, plus one attempt's worth of slack.
	rounds := (h.cfg.WorkerBatch + h.cfg.Senders - 1) / h.cfg.Senders
	lease := time.Duration(rounds+1) * h.cfg.SendTimeout
	batch, err := h.cfg.Store.ClaimDue(ctx, now, lease, h.cfg.WorkerBatch)
	if err != nil {
		return 0, err
	}
	if len(batch) == 0 {
		h.backlog.clear()
	} else {
		h.backlog.leave(len(batch))
	}
	var next atomic.Int64 // the index of the next invite of batch to take
	var senders sync.WaitGroup
	checks := h.dueChecks(batch)
	batches, _ := h.cfg.Store.(DeliveryBatchStore)
	rec := &outcomes{size: 1, delay: recordDelay, record: func(group []outcome) { h.record(ctx, batches, group) }}
	if batches != nil {
		rec.size = recordRounds * h.cfg.Senders // other stores gain nothing from the wait
	}
	for range min(h.cfg.Senders, len(batch)) {
		senders.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(batch); i = int(next.Add(1)) - 1 {
				if sendErr, sent := h.deliverClaimed(ctx, checks, i); sent {
					rec.add(batch[i], sendErr)
				}
			}
		})
	}
	senders.Wait()
	rec.wait()
	return len(batch), nil
}

// recordDelay bounds how long an outcome waits for the rest of its group
// before it is recorded (see outcomes).
const recordDelay = 10 * time.Millisecond

// recordRounds is how many rounds of Config.Senders a DeliveryBatchStore
// records in one write (see outcomes). Against one round,
// BenchmarkWorkerDelivery/SQLite took 0.74-1.09x the CPU per message in
// nine alternating pairs (median 0.88x): a write's savepoint, and between
// loads its commit, shared by four times as many outcomes.
const recordRounds = 4

// outcomes gathers the outcomes of a batch's sends into groups, each
// recorded in a goroutine of its own: once size wait (recordRounds rounds
// of Config.Senders for a DeliveryBatchStore, which records a group in one
// write; one for other stores), or delay after the first of them.
// Recorded one by one as they came, each outcome was a commit of its own
// between loads, a seventh of the worker's CPU (pprof).
// A crash can lose the records of a group whose messages went out, and a
// later claim sends them again; a batch's worth could already be lost that
// way, since outcomes are recorded while the next messages are sent.
type outcomes struct {
	size   int           // a group's
	delay  time.Duration // recordDelay
	record func(group []outcome)

	mu      sync.Mutex
	pending []outcome
	timer   *time.Timer // flushes pending after delay; nil when none waits
	// wg counts the groups started; Add is called under mu, so that wait,
	// which takes mu first, never waits while an Add may follow.
	wg sync.WaitGroup
}

// outcome is the outcome of a send of inv: err is the send's.
type outcome struct {
	inv Invite
	err error
}

// add queues the outcome of a send of inv.
func (o *outcomes) add(inv Invite, sendErr error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending = append(o.pending, outcome{inv, sendErr})
	switch {
	case len(o.pending) >= o.size:
		o.recordLocked()
	case o.timer == nil:
		o.timer = time.AfterFunc(o.delay, o.flush)
	}
}

// flush records what waits.
func (o *outcomes) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recordLocked()
}

// recordLocked starts the record of what waits; o.mu is held.
func (o *outcomes) recordLocked() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	if len(o.pending) == 0 {
		return
	}
	group := o.pending
	o.pending = nil
	o.wg.Go(func() { o.record(group) })
}

// wait records what waits and returns once every outcome added is
// recorded. No add may follow it.
func (o *outcomes) wait() {
	o.flush()
	o.wg.Wait()
}

// deliverClaimed sends claimed invite i of a batch, reporting whether it
// tried and the outcome to record; it hands the invite back when the
// worker is stopping or the lease would run out during the attempt.
func (h *Handler) deliverClaimed(ctx context.Context, checks *dueChecks, i int) (sendErr error, sent bool) {
	inv := checks.batch[i]
	if ctx.Err() != nil || h.cfg.Now().Add(h.cfg.SendTimeout).After(inv.LeaseUntil) {
		h.release(ctx, inv)
		return nil, false
	}
	if !checks.due(ctx, i) {
		return nil, false // revoked or suppressed since the claim
	}
	sendErr = h.send(ctx, inv)
	if sendErr != nil && ctx.Err() != nil {
		// Stopped mid-send: the invite goes back to the queue as it was.
		h.release(ctx, inv)
		return nil, false
	}
	return sendErr, true
}

// dueFresh is how long the worker trusts a store's answer that an invite
// is still to be sent (see dueChecks).
const dueFresh = 100 * time.Millisecond

// dueRounds is how many rounds of Config.Senders sends one question to the
// store covers (see dueChecks).
const dueRounds = 4

// dueChecks asks whether a batch's invites are still to be sent: one
// revoked or suppressed since the claim is not. When a sender is about to
// send an invite, it asks the store for that invite and the next ones in
// one call, dueRounds rounds of Config.Senders, which it and the other
// senders are about to take; an answer is used within dueFresh of the
// question, so an invite revoked more than dueFresh before its send is
// never sent. An answer that went stale first, behind slow sends, is asked
// again. Asking for each invite alone took a tenth of the worker's CPU,
// and a round at a time 6 % (pprof).
type dueChecks struct {
	h     *Handler
	batch []Invite
	now   func() time.Time // the wall clock; tests set another

	// mu is held while the store is asked: the other senders wait for
	// the answer, which has theirs, rather than ask again.
	mu     sync.Mutex
	answer []bool
	asked  []time.Time // when answer[i] was asked; zero if it has not been
}

func (h *Handler) dueChecks(batch []Invite) *dueChecks {
	return &dueChecks{h: h, batch: batch, now: time.Now, answer: make([]bool, len(batch)), asked: make([]time.Time, len(batch))}
}

// due reports whether batch[i] is still to be sent, asking the store for
// it and the next invites unless an answer within dueFresh has it.
func (c *dueChecks) due(ctx context.Context, i int) bool {
	if c.h.cfg.Referrers == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if at := c.asked[i]; !at.IsZero() && c.now().Sub(at) <= dueFresh {
		return c.answer[i]
	}
	at := c.now()
	end := min(i+dueRounds*c.h.cfg.Senders, len(c.batch))
	copy(c.answer[i:end], c.h.stillDue(ctx, c.batch[i:end]))
	for j := i; j < end; j++ {
		c.asked[j] = at
	}
	return c.answer[i]
}

// stillDue reports which of the claimed invites are still to be sent.
// When the store cannot say, none is sent now; their leases run out and a
// later claim tries again.
func (h *Handler) stillDue(ctx context.Context, claimed []Invite) []bool {
	due, err := h.cfg.Referrers.StillDue(ctx, claimed)
	if err == nil && len(due) == len(claimed) {
		return due
	}
	if err == nil {
		err = fmt.Errorf("the store answered for %d invites, not %d", len(due), len(claimed))
	}
	for _, inv := range claimed {
		h.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "referral worker: checking an invite before sending failed",
			slog.String("invite_id", inv.ID), slog.String("cause", err.Error()))
	}
	return make([]bool, len(claimed))
}

// record stores the outcomes of attempts on claimed invites: in one write
// with batches, the store as a DeliveryBatchStore (nil if it is not one),
// otherwise (and if that write fails) each in a goroutine of its own, so
// that a store that batches concurrent writes can.
func (h *Handler) record(ctx context.Context, batches DeliveryBatchStore, group []outcome) {
	ds := make([]Delivery, len(group))
	for i, x := range group {
		ds[i] = h.delivery(x.inv, x.err)
	}
	if batches != nil {
		updates := make([]DeliveryUpdate, len(group))
		for i, x := range group {
			updates[i] = DeliveryUpdate{InviteID: x.inv.ID, Delivery: ds[i]}
		}
		// Tried once: after a failure each outcome is recorded on its own,
		// as below, so that one the store cannot take does not have the
		// whole group's messages sent again.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.SendTimeout)
		err := batches.UpdateDeliveries(uctx, updates)
		cancel()
		if err == nil {
			for i, x := range group {
				h.recorded(ctx, x.inv, ds[i], x.err, nil)
			}
			return
		}
		h.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "referral worker: recording a group of deliveries failed; recording each on its own",
			slog.Int("invites", len(group)), slog.String("cause", err.Error()))
	}
	var wg sync.WaitGroup
	for i, x := range group {
		wg.Go(func() {
			err := h.updateWithinLease(ctx, x.inv, ds[i])
			h.recorded(ctx, x.inv, ds[i], x.err, err)
		})
	}
	wg.Wait()
}

// delivery is what to record of a send of inv that returned sendErr.
func (h *Handler) delivery(inv Invite, sendErr error) Delivery {
	now := h.cfg.Now().UTC()
	d := Delivery{Attempt: inv.Attempts, Status: StatusSent, At: now}
	switch {
	case sendErr == nil:
	case errors.Is(sendErr, mail.ErrPermanent) || inv.Attempts >= h.cfg.MaxAttempts:
		d.Status, d.LastError = StatusFailed, sendErr.Error()
	default:
		d.Status, d.LastError = StatusPending, sendErr.Error()
		d.NextAttemptAt = now.Add(h.backoff(inv.Attempts))
	}
	if d.Status == StatusPending {
		h.metrics.delivery("retry")
	} else {
		h.metrics.delivery(string(d.Status))
	}
	return d
}

// recorded logs and reports outcome d of an attempt on inv, once the store
// has recorded it or, with err, failed to.
func (h *Handler) recorded(ctx context.Context, inv Invite, d Delivery, sendErr, err error) {
	h.bounced(ctx, inv, sendErr) // after the record, as in deliver
	if err != nil {
		h.cfg.Logger.LogAttrs(ctx, slog.LevelError, "referral worker: recording a delivery failed",
			slog.String("invite_id", inv.ID), slog.String("cause", err.Error()))
		return
	}
	attrs := []slog.Attr{
		slog.String("invite_id", inv.ID),
		slog.Int("attempt", inv.Attempts),
		slog.String("status", string(d.Status)),
		slog.Any("to", redactedEmail(inv.Email)),
	}
	level := slog.LevelInfo
	if sendErr != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("cause", scrub(sendErr.Error(), inv.Email)))
	}
	h.cfg.Logger.LogAttrs(ctx, level, "referral invite delivery", attrs...)
	if d.Status != StatusPending {
		h.outcome(ctx, inv, d)
	}
}

// outcome tells Config.OnOutcome of a final outcome d of inv, recorded.
// With an outbox the store recorded it as an event, which DeliverEvents
// feeds to the hook instead, at least once.
func (h *Handler) outcome(ctx context.Context, inv Invite, d Delivery) {
	if h.outbox || h.cfg.OnOutcome == nil {
		return
	}
	typ := EventInviteSent
	if d.Status == StatusFailed {
		typ = EventInviteFailed
	}
	h.notify(ctx, Event{Type: typ, At: d.At, AppID: inv.AppID, InviteID: inv.ID, ReferrerID: inv.ReferrerID, Status: d.Status})
}

// release hands a claimed invite back, due at once. The claim still counts
// towards MaxAttempts, which only matters for a worker stopped over and over.
func (h *Handler) release(ctx context.Context, inv Invite) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.SendTimeout)
	defer cancel()
	now := h.cfg.Now().UTC()
	d := Delivery{Attempt: inv.Attempts, Status: StatusPending, NextAttemptAt: now, At: now, LastError: inv.LastError}
	if err := h.cfg.Store.UpdateDelivery(ctx, inv.ID, d); err != nil {
		// Its lease will expire and another claim will pick it up.
		h.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "referral worker: releasing an invite failed",
			slog.String("invite_id", inv.ID), slog.String("cause", err.Error()))
	}
}

// backoff returns the delay after the given failed attempt: RetryBackoff
// doubled per attempt, capped, with jitter in [d/2, d] so that invites
// failed together do not retry together.
func (h *Handler) backoff(attempt int) time.Duration {
	d := h.cfg.RetryBackoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + rand.N(d/2+1)
}
