package referral

import (
	"context"
	"errors"
	"time"
)

// Event types, recorded in a store's outbox in the same transaction as the
// change each reports.
const (
	EventInviteSent       = "invite.sent"       // UpdateDelivery recorded StatusSent
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
