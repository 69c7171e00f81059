package referral

import (
	"context"
	"errors"
	"time"
)

// Errors of the referrer's routes.
var (
	// ErrNotResendable: only a sent, failed or expired invite is resent.
	ErrNotResendable = errors.New("referral: the invite cannot be resent in its state")
	// ErrInviteAccepted: an accepted invite cannot be revoked.
	ErrInviteAccepted = errors.New("referral: the invite was accepted")
)

// InviteCursor is where a page of ListInvites starts: after the invite
// with this CreatedAt and ID, in newest-first order. The zero cursor is
// the first page.
type InviteCursor struct {
	CreatedAt time.Time
	ID        string
}

// ListedInvite is an invite as its referrer's listing has it: the stored
// invite and when its address was accepted (zero if not).
type ListedInvite struct {
	Invite
	AcceptedAt time.Time
}

// Resend asks for invite ID of referrer (AppID, ReferrerID) to be
// delivered again at At; see ReferrerStore.Resend.
type Resend struct {
	AppID, ReferrerID, ID string
	At                    time.Time
	// MaxResends bounds Invite.Resends; ResendAfter is the least time
	// since the invite's last send (SentAt, or CreatedAt if never sent).
	MaxResends  int
	ResendAfter time.Duration
	// LeaseUntil, if not zero, claims the resend for a caller that
	// delivers it at once (inline): Attempts+1 and this lease, as
	// RecordInvite's step 1a does. Zero leaves it for the worker.
	LeaseUntil time.Time
}

// ReferrerStore is the part of a store that shows referrers their invites
// and lets them resend and revoke: the routes of DESIGN section 6. The
// stores of this module implement it beside CodeStore; a Handler uses the
// one in Config.Referrers. Implementations must be safe for concurrent use
// across processes, like CodeStore.
type ReferrerStore interface {
	// ListInvites returns up to limit invites of referrer (appID, userID),
	// newest first (CreatedAt descending, then ID descending), only those
	// after the cursor when it is not zero. Invites recorded meanwhile
	// never make a page repeat or skip an invite older than its cursor.
	ListInvites(ctx context.Context, appID, userID string, after InviteCursor, limit int) ([]ListedInvite, error)

	// GetInvite returns invite id if it is referrer (appID, userID)'s;
	// ErrInviteNotFound otherwise (another referrer's included).
	GetInvite(ctx context.Context, appID, userID, id string) (ListedInvite, error)

	// Resend makes r's invite due for delivery again, atomically with
	// these checks, in order: the invite is r's referrer's
	// (ErrInviteNotFound); its status is sent or failed
	// (ErrNotResendable); Resends < r.MaxResends and its last send is at
	// least r.ResendAfter before r.At (a *LimitError, RetryAfter until the
	// resend would be allowed, zero if never); the referrer limit of lim,
	// counting invites created and invites resent (ResentAt) within
	// lim.Window (a *LimitError). Then, as RecordInvite's step 4, if the
	// address is suppressed or has its lim.MaxPerRecipient sends within
	// lim.RecipientWindow (created or resent, pending or sent, any
	// referrer), the invite becomes suppressed with the reason in
	// LastError; otherwise pending, due at r.At, LastError kept. Either
	// way Resends+1, ResentAt r.At, UpdatedAt r.At, and a lease as
	// r.LeaseUntil says. The invite is returned as updated.
	Resend(ctx context.Context, r Resend, lim Limits) (Invite, error)

	// Revoke marks invite id of referrer (appID, userID) revoked at at,
	// whatever its status, unless its address was accepted
	// (ErrInviteAccepted); ErrInviteNotFound if it is not the referrer's.
	// Revoking a revoked invite is not an error.
	Revoke(ctx context.Context, appID, userID, id string, at time.Time) error

	// StillDue reports whether invite id is still pending with Attempts
	// attempt: a worker asks right before it sends a claimed invite, so
	// that one revoked or suppressed since the claim is not sent.
	StillDue(ctx context.Context, id string, attempt int) (bool, error)
}
