package referral

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/referralkit/referralkit/mail"
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
	AddressHash string // "" on invites recorded before address hashes
	EmailKey    string // for those: the hash is made from it
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
	// invites last sent before sentBefore (Invite.LastSend: created, sent
	// or resent) that are not pending and not accepted (no redemption
	// credited to their referrer has their EmailKey), oldest first, and
	// returns how many it erased. The rows, their status, times and
	// AddressHash stay.
	EraseAddresses(ctx context.Context, sentBefore time.Time, max int) (int, error)
}

// bounced suppresses inv's address when sendErr is a refusal of it by the
// recipient's mail server. A failure to record that is logged: the
// delivery's own outcome matters more.
func (h *Handler) bounced(ctx context.Context, inv Invite, sendErr error) {
	hash := h.hashOf(inv.AddressHash, inv.EmailKey)
	if hash == "" || !errors.Is(sendErr, mail.ErrRecipientRefused) {
		return
	}
	err := h.cfg.Recipients.Suppress(context.WithoutCancel(ctx), Suppression{
		AppID: inv.AppID, AddressHash: hash, Reason: ReasonBounced, CreatedAt: h.cfg.Now().UTC(),
	})
	if err != nil {
		h.cfg.Logger.LogAttrs(ctx, slog.LevelError, "referral: suppressing a bounced address failed",
			slog.String("invite_id", inv.ID), slog.String("cause", err.Error()))
	}
}

// Suppress stops every later invite of app appID ("" for a host with one
// app) to email, with reason ReasonHost: they are answered as usual but
// never sent, nor are the address's pending ones. A malformed address or
// app id is an error matching ErrInvalidInput.
func (h *Handler) Suppress(ctx context.Context, appID, email string) error {
	app, hash, err := h.suppressionKey(appID, email)
	if err != nil {
		return err
	}
	return h.cfg.Recipients.Suppress(ctx, Suppression{AppID: app, AddressHash: hash, Reason: ReasonHost, CreatedAt: h.cfg.Now().UTC()})
}

// Unsuppress lifts a suppression of email in app appID, whatever its
// reason; the invites recorded meanwhile stay unsent.
func (h *Handler) Unsuppress(ctx context.Context, appID, email string) error {
	app, hash, err := h.suppressionKey(appID, email)
	if err != nil {
		return err
	}
	return h.cfg.Recipients.Unsuppress(ctx, app, hash)
}

// Suppressed returns the suppression of email in app appID, and
// found=false when it is not suppressed.
func (h *Handler) Suppressed(ctx context.Context, appID, email string) (s Suppression, found bool, err error) {
	app, hash, err := h.suppressionKey(appID, email)
	if err != nil {
		return Suppression{}, false, err
	}
	return h.cfg.Recipients.Suppression(ctx, app, hash)
}

func (h *Handler) suppressionKey(appID, email string) (app, hash string, err error) {
	if appID != "" {
		var ok bool
		if app, ok = h.cfg.UserIDs.Canonical(appID); !ok {
			return "", "", inputError(h.cfg.UserIDs.userText("appId"))
		}
	}
	_, key, err := normalizeEmail(email)
	if err != nil {
		return "", "", err
	}
	return app, h.addressHash(key), nil
}

// eraseBatch bounds the invites one EraseAddresses call erases.
const eraseBatch = 500

// EraseExpiredAddresses erases the addresses of the invites that were not
// accepted within Config.RetainAddresses, keeping their keyed hashes, and
// returns how many it erased. Run calls it about once a minute; a host
// may call it from its own scheduler instead.
func (h *Handler) EraseExpiredAddresses(ctx context.Context) (int, error) {
	if h.cfg.RetainAddresses < 0 {
		return 0, nil
	}
	before := h.cfg.Now().UTC().Add(-h.cfg.RetainAddresses) // since the last send
	total := 0
	for {
		n, err := h.cfg.Recipients.EraseAddresses(ctx, before, eraseBatch)
		total += n
		if err != nil || n < eraseBatch {
			return total, err
		}
	}
}
