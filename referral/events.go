package referral

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Event types, recorded in a store's outbox in the same transaction as the
// change each reports.
const (
	EventInviteSent       = "invite.sent"       // UpdateDelivery recorded a send (StatusSent, or StatusRevoked if revoked meanwhile)
	EventInviteFailed     = "invite.failed"     // UpdateDelivery recorded StatusFailed
	EventInviteSuppressed = "invite.suppressed" // RecordInvite, Resend or Suppress made an invite StatusSuppressed
	EventInviteRevoked    = "invite.revoked"    // Revoke revoked an invite (not when it already was)
	EventReferralRedeemed = "referral.redeemed" // Redeem stored a new redemption
)

// Event is one change a host is told of through Config.Webhooks. It never
// holds an address.
type Event struct {
	ID         string // UUIDv7, made by the store; the webhook-id receivers dedupe by
	Type       string // one of the Event* constants
	At         time.Time
	AppID      string
	InviteID   string // "" for referral.redeemed
	ReferrerID string
	Status     Status // the invite's new status; "" for referral.redeemed
	Code       string // referral.redeemed: the code redeemed
	NewUserID  string // referral.redeemed: the user who signed up

	// Delivery bookkeeping, as ClaimEvents returns it.
	Attempts      int
	NextAttemptAt time.Time
	LeaseUntil    time.Time
	LastError     string
}

// EventStore is the outbox of a store: the events its changes record, for
// the worker to deliver to Config.Webhooks. The stores of this module
// record them when opened with their outbox on (see each store's
// options); a Handler uses the one in Config.Events.
type EventStore interface {
	// Outbox reports whether the store records events. New refuses
	// Config.Webhooks over a store that does not: its events would never
	// come.
	Outbox() bool

	// ClaimEvents claims up to max events whose NextAttemptAt and
	// LeaseUntil are not after now, oldest first: each gets Attempts+1
	// and LeaseUntil now+lease and is returned as updated. An event is
	// never returned to two callers while its lease holds.
	ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, max int) ([]Event, error)

	// EventDelivered removes event id, if its Attempts is still attempt
	// (else a no-op: a newer claim has it).
	EventDelivered(ctx context.Context, id string, attempt int) error

	// EventFailed records a failed attempt on event id, if its Attempts is
	// still attempt: due again at next with lastError, lease released. With
	// giveUp it removes the event instead (the retries are spent).
	EventFailed(ctx context.Context, id string, attempt int, next time.Time, lastError string, giveUp bool) error
}

// EventSender delivers one event to the host's endpoints; webhook.Sender
// is one. An error is retried with back-off.
type EventSender interface {
	SendEvent(ctx context.Context, ev Event) error
}

// ErrNoOutbox: Config.Webhooks is set but Config.Events records no events.
var ErrNoOutbox = errors.New("referral: Config.Webhooks needs Config.Events of a store whose outbox is on")

// A claimed batch of events is sent at once, each send within
// eventTimeout.
const (
	eventBatch   = 10
	eventTimeout = 15 * time.Second
	// eventRetryFor is how long an event is retried: at least three
	// days, as DESIGN section 8 asks.
	eventRetryFor = 72 * time.Hour
)

// DeliverEvents claims one batch of due events of Config.Events, feeds
// each to Config.OnOutcome or Config.OnRedeemed and sends it to
// Config.Webhooks, and records the outcome: removed when sent, due again
// after a back-off (RetryBackoff doubled per attempt, with jitter, up to an
// hour) when not, and given up once it is three days old. It returns how
// many it claimed. Run calls it in a lane of its own whenever Config.Events
// records events, so that a slow endpoint never delays an email; a host may
// call it from its own scheduler instead.
//
// The hooks are called at least once per event: on its first attempt, and
// again only when an attempt ended before its outcome was recorded (a
// crash, a lost store); a webhook retry does not call them again.
func (h *Handler) DeliverEvents(ctx context.Context) (int, error) {
	if !h.outbox {
		return 0, nil
	}
	now := h.cfg.Now().UTC()
	// The batch's events are sent all at once, so the lease is one send's
	// worth plus slack: a worker killed mid-batch holds them that long.
	evs, err := h.cfg.Events.ClaimEvents(ctx, now, 2*eventTimeout, eventBatch)
	if err != nil {
		return 0, err
	}
	// The hooks first, for the whole batch: a slow endpoint must not
	// hold them up.
	for _, ev := range evs {
		if ev.LastError == "" { // no attempt before this one got as far as recording
			h.notify(ctx, ev)
		}
	}
	// At once, so that an endpoint that never answers costs one timeout
	// per batch, not one per event.
	var sending sync.WaitGroup
	for _, ev := range evs {
		sending.Go(func() { h.deliverEvent(ctx, ev) })
	}
	sending.Wait()
	return len(evs), nil
}

// deliverEvent sends one claimed event to Config.Webhooks, if set, and
// records the outcome.
func (h *Handler) deliverEvent(ctx context.Context, ev Event) {
	if ctx.Err() != nil {
		return // the lease runs out and it is claimed again
	}
	var sendErr error
	if h.cfg.Webhooks != nil {
		sctx, cancel := context.WithTimeout(ctx, eventTimeout)
		sendErr = h.cfg.Webhooks.SendEvent(sctx, ev)
		cancel()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	var recErr error
	if sendErr == nil {
		if h.cfg.Webhooks != nil {
			h.metrics.webhook("sent")
		}
		recErr = h.cfg.Events.EventDelivered(rctx, ev.ID, ev.Attempts)
	} else {
		at := h.cfg.Now().UTC()
		giveUp := at.Sub(ev.At) >= eventRetryFor
		attrs := []slog.Attr{slog.String("event_id", ev.ID), slog.String("type", ev.Type),
			slog.Int("attempt", ev.Attempts), slog.String("cause", sendErr.Error())}
		if giveUp {
			h.metrics.webhook("failed")
			h.cfg.Logger.LogAttrs(ctx, slog.LevelError, "referral webhook given up after three days", attrs...)
		} else {
			h.metrics.webhook("retry")
			h.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "referral webhook failed; retried later", attrs...)
		}
		cause := sendErr.Error()
		if cause == "" {
			cause = "failed" // never "": it tells the next attempt the hooks ran
		}
		recErr = h.cfg.Events.EventFailed(rctx, ev.ID, ev.Attempts, at.Add(h.backoff(ev.Attempts)), cause, giveUp)
	}
	if recErr != nil {
		// The lease runs out and the event is sent again: at least once.
		h.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "referral webhook: recording a delivery failed",
			slog.String("event_id", ev.ID), slog.String("cause", recErr.Error()))
	}
}

// notify feeds ev to the in-process hook for its type, if set: OnOutcome
// for invite.sent and invite.failed, OnRedeemed for referral.redeemed. The
// values carry what the event carries, so the same whether or not the
// store has an outbox, but for the status of an invite revoked during its
// send (see Config.OnOutcome).
func (h *Handler) notify(ctx context.Context, ev Event) {
	switch ev.Type {
	case EventInviteSent, EventInviteFailed:
		if h.cfg.OnOutcome == nil {
			return
		}
		inv := Invite{ID: ev.InviteID, AppID: ev.AppID, ReferrerID: ev.ReferrerID, Status: ev.Status, UpdatedAt: ev.At}
		if ev.Type == EventInviteSent { // also of an invite revoked during the send
			inv.SentAt = ev.At
		}
		h.cfg.OnOutcome(ctx, inv)
	case EventReferralRedeemed:
		if h.cfg.OnRedeemed != nil {
			h.cfg.OnRedeemed(ctx, Redemption{AppID: ev.AppID, ReferrerID: ev.ReferrerID, Code: ev.Code, NewUserID: ev.NewUserID, CreatedAt: ev.At})
		}
	}
}

// runEvents is Run's event lane: webhooks and the hooks fed from the outbox.
func (h *Handler) runEvents(ctx context.Context) {
	for {
		n, err := h.DeliverEvents(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			h.cfg.Logger.LogAttrs(ctx, slog.LevelError, "referral webhook: claiming events failed", slog.String("cause", err.Error()))
		}
		if n > 0 && err == nil {
			continue
		}
		t := time.NewTimer(h.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
