package referral

import (
	"context"
	"errors"
	"time"
)

// Reasons an address is suppressed, kept in Suppression.Reason and, for an
// invite recorded suppressed, in its LastError.
const (
	ReasonUnsubscribed   = "unsubscribed"    // the recipient used the unsubscribe link
	ReasonBounced        = "bounced"         // a mail server refused the address for good
	ReasonHost           = "host"            // the host suppressed it (Handler.Suppress)
	ReasonRecipientLimit = "recipient-limit" // only on invites: the address had its share
)

// ErrInviteNotFound: no invite of that id exists.
var ErrInviteNotFound = errors.New("referral: invite not found")

// Suppression is an address an app never emails again.
type Suppression struct {
	AppID       string
	AddressHash string // Invite.AddressHash of the address
	Reason      string // ReasonUnsubscribed, ReasonBounced or ReasonHost
	CreatedAt   time.Time
}

// Recipient is whom an invite went to, as an unsubscribe link names it:
// the app, the address's keyed hash, and the invite's language for the
// page.
type Recipient struct {
	AppID       string
	AddressHash string
	Language    string
}

// RecipientStore is the part of a store that protects the people invited:
// its suppression list, the secret that keys address hashes and signs
// unsubscribe links, and retention. The stores of this module implement it
// beside CodeStore, whose RecordInvite consults the same suppression list;
// a Handler uses the one in Config.Recipients. Implementations must be safe
// for concurrent use across processes, like CodeStore.
type RecipientStore interface {
	// Secret returns the store's secret called name, storing newSecret()
	// the first time it is asked for. Concurrent first calls, also from
	// several processes, all return the same secret.
	Secret(ctx context.Context, name string, newSecret func() []byte) ([]byte, error)

	// Suppress adds s to the suppression list and marks the app's pending
	// invites with s.AddressHash suppressed (LastError s.Reason), in one
	// transaction. An address already suppressed keeps its first reason
	// and time; that is not an error.
	Suppress(ctx context.Context, s Suppression) error

	// Unsuppress removes (appID, addressHash) from the list, if there. The
	// invites recorded suppressed stay so.
	Unsuppress(ctx context.Context, appID, addressHash string) error

	// Suppression returns the suppression of (appID, addressHash), and
	// found=false (nil error) when there is none.
	Suppression(ctx context.Context, appID, addressHash string) (s Suppression, found bool, err error)

	// InviteRecipient returns whom invite id went to; ErrInviteNotFound if
	// there is no such invite.
	InviteRecipient(ctx context.Context, id string) (Recipient, error)

	// EraseAddresses erases Email and EmailKey (to "") of up to max
	// invites created before createdBefore that are not pending and not
	// accepted (no redemption credited to their referrer has their
	// EmailKey), oldest first, and returns how many it erased. The rows,
	// their status, times and AddressHash stay.
	EraseAddresses(ctx context.Context, createdBefore time.Time, max int) (int, error)
}
