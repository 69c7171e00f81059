package referral

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/referralkit/referralkit/mail"
)

// Pattern is the route this package serves, in net/http's pattern syntax.
// Mount the handler on it without a method so that other methods get a 405
// in the JSON envelope rather than the mux's plain-text one.
const Pattern = "/v1/users/{userId}/referral-invites"

// Sentinel errors. Authenticators and stores wrap them with %w; the handler
// maps them to statuses with errors.Is.
var (
	// ErrUnauthenticated: no usable credentials (401).
	ErrUnauthenticated = errors.New("referral: unauthenticated")
	// ErrForbidden: valid credentials without the right to this call (403).
	ErrForbidden = errors.New("referral: forbidden")
	// ErrAmbiguousCredentials: both an API key and an access token (400).
	ErrAmbiguousCredentials = errors.New("referral: both an API key and an access token were sent")
	// ErrRateLimited: a limit or cooldown refused the invite (429). Stores
	// return a *LimitError, which matches it.
	ErrRateLimited = errors.New("referral: rate limited")
	// ErrCodeNotFound: no referral code of that value exists.
	ErrCodeNotFound = errors.New("referral: code not found")
	// ErrCodeTaken: a store was asked to give a user a code that another
	// user already has. EnsureCode retries with a new code.
	ErrCodeTaken = errors.New("referral: code already taken")
	// ErrInvalidInput: an argument of Redeem or Stats is malformed. The
	// error's text says which, in words that are safe to show a client.
	ErrInvalidInput = errors.New("referral: invalid input")
)

// Is makes errors.Is(err, ErrInvalidInput) true for the package's input
// errors.
func (e inputError) Is(target error) bool { return target == ErrInvalidInput }

// LimitError is returned by [CodeStore.RecordInvite] when the per-referrer
// limit or the same-address cooldown refuses an invite.
type LimitError struct {
	// RetryAfter is how long until the same request could succeed.
	RetryAfter time.Duration
	// Cooldown is true for the same-address cooldown, false for the
	// per-referrer limit.
	Cooldown bool
}

func (e *LimitError) Error() string {
	what := "invite limit reached"
	if e.Cooldown {
		what = "address invited recently"
	}
	return fmt.Sprintf("referral: %s, retry after %s", what, e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *LimitError) Is(target error) bool { return target == ErrRateLimited }

// Principal is who made a request, as an [Authenticator] established it.
type Principal struct {
	// AppID is the app the invite belongs to: the client id (a canonical
	// UUID) for the auth package's Authenticators, an id under
	// Config.UserIDs for a host's own, or "" for a host with one app.
	// Codes, invites, limits and suppressions are kept per app.
	AppID string
	// UserID is the token's subject for access tokens; empty for API keys,
	// which act for the app as a whole.
	UserID string
	// Method says how the caller authenticated: "api-key" or "access-token".
	Method string
	// KeyID names the credential used (an API key's prefix or a token's kid),
	// for logs. It is never a secret.
	KeyID string
	// ReadOnly credentials may read (list a user's invites and code) but
	// not change anything: a read API key. The handler refuses them (403)
	// on every route that sends or changes.
	ReadOnly bool
	// Name is the user's display name when the credentials carry one (an
	// access token's OIDC "name" claim), for the emails the user sends;
	// Config.ReferrerName may supply or replace it.
	Name string
}

// Authenticator decides who is calling.
type Authenticator interface {
	// Authenticate reads the credentials of r for an invite on behalf of
	// userID (already validated and canonical), and checks that they may
	// act for that user. The handler also refuses (403) a Principal whose
	// UserID is set and is not userID. The error must match
	// ErrUnauthenticated (401), ErrForbidden (403) or
	// ErrAmbiguousCredentials (400); any other error is a 500. If the error
	// chain holds a value with a method Challenge() string, its result is
	// sent as WWW-Authenticate.
	Authenticate(r *http.Request, userID string) (Principal, error)
}

// Status is an invite's delivery status.
type Status string

const (
	StatusPending Status = "pending"
	StatusSent    Status = "sent"
	StatusFailed  Status = "failed"
	// StatusSuppressed: accepted (the referrer got the usual 201) but never
	// sent, because the address is suppressed or had its share of invites
	// (see Limits.MaxPerRecipient). LastError says which.
	StatusSuppressed Status = "suppressed"
	// StatusRevoked: the referrer took the invite back; it is never sent
	// afterwards.
	StatusRevoked Status = "revoked"
)

// Invite is one accepted request to invite an address.
type Invite struct {
	ID         string // UUIDv7, canonical form
	AppID      string
	ReferrerID string // the userId of the path
	Email      string // the address, domain lower-cased and in ASCII form
	EmailKey   string // the case-folded address, for duplicate checks
	// AddressHash is the keyed hash of EmailKey (hex), which suppression
	// and the recipient limit match on, and which stays when retention
	// erases Email and EmailKey.
	AddressHash string
	Language    string // the template language used, e.g. "de"
	Code        string // the referrer's referral code
	// ReferrerName is the referrer's display name for the email, one line
	// of at most 100 bytes (see Config.ReferrerName); empty when unknown.
	ReferrerName string
	// IdempotencyKey is the request's Idempotency-Key header, or empty.
	IdempotencyKey string

	Status    Status
	Attempts  int    // delivery attempts started
	LastError string // the cause of the last failed attempt, for operators
	// NextAttemptAt is when a pending invite is due for delivery.
	NextAttemptAt time.Time
	// LeaseUntil is when the current attempt's claim expires; a pending
	// invite is not claimed again before then. Zero when unclaimed.
	LeaseUntil time.Time
	// SentAt is when the invite's email was last delivered (zero if never).
	SentAt time.Time
	// Resends counts the resends the referrer asked for; ResentAt is the
	// last one's time (zero if none).
	Resends   int
	ResentAt  time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Limits are the abuse limits a store enforces when it records an invite.
// A zero field disables its check.
type Limits struct {
	// MaxPerReferrer invites per referrer (per app) within Window.
	MaxPerReferrer int
	Window         time.Duration
	// Cooldown refuses the same address from the same referrer again within
	// this time, unless the earlier invite failed.
	Cooldown time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL time.Duration
	// MaxPerRecipient invites of one address (by AddressHash, across the
	// app's referrers) within RecipientWindow are sent; more are recorded
	// suppressed.
	MaxPerRecipient int
	RecipientWindow time.Duration
}

// Delivery is the outcome of one delivery attempt, written by
// [CodeStore.UpdateDelivery].
type Delivery struct {
	// Attempt is the invite's Attempts value when the attempt was claimed.
	// The update applies only if the invite still has it and is pending, so
	// a worker whose lease expired cannot overwrite a newer attempt.
	Attempt int
	// Status is the new status. StatusPending means retry at NextAttemptAt.
	Status        Status
	LastError     string
	NextAttemptAt time.Time
	At            time.Time
}

// Owner is who a referral code belongs to.
type Owner struct {
	AppID  string
	UserID string
}

// CodeStore keeps referral codes and invites. Implementations must be safe
// for concurrent use, and their checks must hold across processes that share
// the store. Times come back in UTC, equal to what was stored at least to
// the millisecond. store/storetest is the suite that checks these rules.
type CodeStore interface {
	// EnsureCode returns the referral code of (appID, userID), creating it
	// with newCode if the user has none. A code made by newCode that is
	// already taken by another user is not used: newCode is called again (a
	// few times, then ErrCodeTaken). newCode returns codes in canonical form
	// (see NormalizeCode), which stores keep as given. Concurrent first calls
	// for one user all return the same code.
	EnsureCode(ctx context.Context, appID, userID string, newCode func() string) (string, error)

	// RecordInvite stores inv atomically with these checks, in this order:
	//  1. If inv.IdempotencyKey is set and an invite of the same app and
	//     referrer with that key was created within lim.IdempotencyTTL before
	//     inv.CreatedAt (the earlier invite), then:
	//     a. If inv.Attempts > 0 (the caller delivers inline and claims the
	//        invite itself), the earlier invite has inv's EmailKey and
	//        Language, and it may be tried again (it failed, or it is pending
	//        with LeaseUntil not after inv.CreatedAt: an attempt whose
	//        process died), it is claimed for the caller: Status pending,
	//        Attempts+1, LeaseUntil inv.LeaseUntil, NextAttemptAt and
	//        UpdatedAt inv.CreatedAt, LastError kept. It is returned as
	//        updated with replayed=false: the caller delivers it. No limit
	//        applies and no row is added: it is the same invite. But if the
	//        app suppresses its AddressHash (since the first attempt: an
	//        unsubscribe, a bounce), it becomes suppressed instead, as in
	//        step 4, and is returned so.
	//     b. Otherwise nothing is stored and the earlier invite is returned
	//        with replayed=true (whatever its email).
	//  2. If the referrer already has lim.MaxPerReferrer invites created or
	//     resent (ResentAt) within lim.Window, failed ones included: a
	//     *LimitError.
	//  3. If the referrer invited inv.EmailKey within lim.Cooldown and that
	//     invite has not failed nor been revoked: a *LimitError with
	//     Cooldown set.
	//  4. If inv.AddressHash is set and the app suppresses it (see
	//     RecipientStore.Suppress), or lim.MaxPerRecipient > 0 and the app
	//     has already had lim.MaxPerRecipient sends to that AddressHash
	//     within lim.RecipientWindow, of any referrer: each invite that is
	//     not suppressed, nor failed without ever being delivered (SentAt
	//     zero), counts 1 if created within the window (whatever else
	//     became of it: sent, revoked, pending), and Resends more
	//     if its ResentAt is within the window (all its resends, to err on
	//     the recipient's side):
	//     inv is stored with Status StatusSuppressed, LeaseUntil zero and
	//     LastError the suppression's reason (or ReasonRecipientLimit), and
	//     returned so with replayed=false. Suppressed invites count for the
	//     checks of steps 2 and 3 like any other (the referrer must not tell
	//     them apart), not for this one.
	// Every window is exclusive at its start: an invite created exactly
	// lim.Window (Cooldown, IdempotencyTTL, RecipientWindow) before
	// inv.CreatedAt no longer counts, so RetryAfter is exact. Otherwise inv
	// is stored as given and returned with replayed=false.
	// Concurrent calls never let more invites through than a check allows,
	// also across processes: two never both send the last invite an address
	// may get.
	RecordInvite(ctx context.Context, inv Invite, lim Limits) (stored Invite, replayed bool, err error)

	// UpdateDelivery records the outcome of an attempt on invite id. It is
	// a no-op (nil error) when the invite is no longer pending or its
	// Attempts differs from d.Attempt. Sent and failed are final (but for a
	// resend, see ReferrerStore); sent sets SentAt to d.At. The lease is
	// released. One exception: an invite revoked during the attempt (see
	// ReferrerStore.Revoke) stays revoked, but a sent outcome still sets
	// its SentAt, releases the lease and records invite.sent: the email
	// went out.
	UpdateDelivery(ctx context.Context, id string, d Delivery) error

	// ClaimDue claims up to max pending invites whose NextAttemptAt and
	// LeaseUntil are not after now, oldest due first: each gets Attempts+1
	// and LeaseUntil = now+lease, and is returned as updated. An invite is
	// never returned to two callers while its lease holds. max <= 0 claims
	// nothing.
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, max int) ([]Invite, error)

	// ResolveCode returns the owner of code, which callers give in
	// canonical form (see NormalizeCode) and stores compare exactly;
	// ErrCodeNotFound if there is none.
	ResolveCode(ctx context.Context, code string) (Owner, error)
}

// DeliveryBatchStore is a CodeStore that records several outcomes in one
// write. The queued worker uses it, when the store has it, to record the
// outcomes of several rounds of sends at once: with a store that commits
// each write, one commit for them rather than one each. If the call fails,
// the worker records each outcome with UpdateDelivery instead.
//
// A wrapper that embeds a store of this module gets its UpdateDeliveries
// too: if the wrapper changes UpdateDelivery, it must change
// UpdateDeliveries alike, or embed the store as a CodeStore to hide it.
type DeliveryBatchStore interface {
	CodeStore
	// UpdateDeliveries records each update as UpdateDelivery would, in
	// order, in one write: with a nil error all are recorded (the no-ops
	// among them included), with an error none is.
	UpdateDeliveries(ctx context.Context, updates []DeliveryUpdate) error
}

// DeliveryUpdate is the outcome of an attempt on invite InviteID, for
// [DeliveryBatchStore.UpdateDeliveries].
type DeliveryUpdate struct {
	InviteID string
	Delivery
}

// Mailer sends one message.
type Mailer interface {
	// Send delivers m or returns why not. An error matching
	// mail.ErrPermanent is a permanent refusal (an SMTP 5xx): retrying the
	// same message will not help. Any other error is transient.
	Send(ctx context.Context, m mail.Message) error
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(r *http.Request, userID string) (Principal, error)

// Authenticate calls f(r, userID).
func (f AuthenticatorFunc) Authenticate(r *http.Request, userID string) (Principal, error) {
	return f(r, userID)
}
