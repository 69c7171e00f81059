package referral

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors of redemption.
var (
	// ErrSelfReferral: a user tried to redeem their own code.
	ErrSelfReferral = errors.New("referral: a user cannot redeem their own code")
	// ErrAlreadyRedeemed: the new user was already credited to another
	// code; the first redemption stands.
	ErrAlreadyRedeemed = errors.New("referral: the user was already referred")
	// ErrRedemptionUnsupported: Config.Redemptions is not set.
	ErrRedemptionUnsupported = errors.New("referral: Config.Redemptions is not set")
)

// Redemption records that a new user signed up with a referral code,
// crediting the code's owner.
type Redemption struct {
	AppID      string
	ReferrerID string // the code's owner
	Code       string // canonical form
	NewUserID  string
	Email      string // the new user's address, as normalized for invites
	EmailKey   string // case-folded, matching Invite.EmailKey
	CreatedAt  time.Time
}

// Stats counts what one referrer did in one app.
type Stats struct {
	Invited  int // invites recorded
	Sent     int // invites delivered
	Accepted int // invited addresses that signed up with the referrer's code
	Redeemed int // sign-ups credited to the referrer, invited or not
}

// RedemptionStore is the part of a store that credits referrers. The
// stores of this module implement it beside CodeStore; a Handler uses the
// one in Config.Redemptions.
type RedemptionStore interface {
	// Redeem stores r unless the app already has a redemption for
	// r.NewUserID: then it stores nothing and returns that one with
	// created=false, whatever its code (the first redemption wins).
	// Concurrent calls for one new user store exactly one redemption.
	Redeem(ctx context.Context, r Redemption) (stored Redemption, created bool, err error)

	// Stats counts the invites and redemptions of referrer userID in app
	// appID. An invite is accepted when a redemption credited to its
	// referrer has its EmailKey; an address counts once however often it
	// was invited.
	Stats(ctx context.Context, appID, userID string) (Stats, error)
}

// Resolve returns the owner of a referral code as a person might type it
// (see NormalizeCode): ErrCodeNotFound if it is malformed or unknown.
func (h *Handler) Resolve(ctx context.Context, code string) (Owner, error) {
	c, ok := NormalizeCode(code)
	if !ok {
		return Owner{}, ErrCodeNotFound
	}
	return h.cfg.Store.ResolveCode(ctx, c)
}

// Redeem records that newUserID signed up with code and credits the code's
// owner; email is the new user's address, which marks the owner's invites
// to it accepted. Pass an address the new user has confirmed (redeem once
// it is): otherwise a referrer could sign up as the person they invited
// and have that invite counted accepted. It is idempotent: the same user redeeming the same code
// again gets the first redemption back. A user already credited to another
// code gets that redemption and ErrAlreadyRedeemed: the first code keeps
// the credit. A malformed or unknown code is ErrCodeNotFound, a user
// redeeming their own code ErrSelfReferral, and a user id that breaks
// Config.UserIDs or a malformed address an error matching ErrInvalidInput,
// whose text is safe to show. Config.OnRedeemed is called once per new
// redemption. Without Config.Redemptions: ErrRedemptionUnsupported.
func (h *Handler) Redeem(ctx context.Context, code, newUserID, email string) (Redemption, error) {
	r, _, err := h.redeem(ctx, nil, code, newUserID, email)
	return r, err
}

// redeem is Redeem, also saying whether the redemption is new; appID, if
// not nil, is the only app whose codes are accepted.
func (h *Handler) redeem(ctx context.Context, appID *string, code, newUserID, email string) (Redemption, bool, error) {
	rs := h.cfg.Redemptions
	if rs == nil {
		return Redemption{}, false, ErrRedemptionUnsupported
	}
	user, ok := h.cfg.UserIDs.Canonical(newUserID)
	if !ok {
		return Redemption{}, false, inputError(h.cfg.UserIDs.userText("userId"))
	}
	addr, key, err := normalizeEmail(email)
	if err != nil {
		return Redemption{}, false, err
	}
	canonical, ok := NormalizeCode(code)
	if !ok {
		return Redemption{}, false, ErrCodeNotFound
	}
	owner, err := h.cfg.Store.ResolveCode(ctx, canonical)
	if err != nil {
		return Redemption{}, false, err
	}
	if appID != nil && owner.AppID != *appID {
		return Redemption{}, false, ErrCodeNotFound // another app's code is none of the caller's business
	}
	if owner.UserID == user {
		return Redemption{}, false, ErrSelfReferral
	}
	r, created, err := rs.Redeem(ctx, Redemption{
		AppID:      owner.AppID,
		ReferrerID: owner.UserID,
		Code:       canonical,
		NewUserID:  user,
		Email:      addr,
		EmailKey:   key,
		CreatedAt:  h.cfg.Now().UTC(),
	})
	switch {
	case err != nil:
		return Redemption{}, false, fmt.Errorf("referral: redeem: %w", err)
	case !created && r.Code != canonical:
		return r, false, ErrAlreadyRedeemed
	case created && !h.outbox:
		// With an outbox the store recorded the event, which
		// DeliverEvents feeds to the hook, at least once.
		h.notify(ctx, Event{Type: EventReferralRedeemed, At: r.CreatedAt, AppID: r.AppID, ReferrerID: r.ReferrerID, Code: r.Code, NewUserID: r.NewUserID})
	}
	return r, created, nil
}

// Stats counts the invites and redemptions of a referrer in an app. Ids
// that break Config.UserIDs are an error matching ErrInvalidInput; appID
// is "" for a host with one app. Without Config.Redemptions:
// ErrRedemptionUnsupported.
func (h *Handler) Stats(ctx context.Context, appID, userID string) (Stats, error) {
	rs := h.cfg.Redemptions
	if rs == nil {
		return Stats{}, ErrRedemptionUnsupported
	}
	app, user, err := h.ids(appID, userID)
	if err != nil {
		return Stats{}, err
	}
	return rs.Stats(ctx, app, user)
}

// Code returns the referral code of user userID in app appID ("" for a
// host with one app), making it if the user has none, without sending
// anything: for a page that shows the user their code. Ids that break
// Config.UserIDs are an error matching ErrInvalidInput.
func (h *Handler) Code(ctx context.Context, appID, userID string) (string, error) {
	app, user, err := h.ids(appID, userID)
	if err != nil {
		return "", err
	}
	return h.cfg.Store.EnsureCode(ctx, app, user, NewCode)
}

// ShareLink returns the sign-up link carrying the user's code (see Code),
// the link the invite emails carry, for the user to share themselves.
func (h *Handler) ShareLink(ctx context.Context, appID, userID string) (string, error) {
	code, err := h.Code(ctx, appID, userID)
	if err != nil {
		return "", err
	}
	return h.link.Link(code), nil
}

// ids checks the app and user ids a host passed.
func (h *Handler) ids(appID, userID string) (app, user string, err error) {
	user, ok := h.cfg.UserIDs.Canonical(userID)
	if !ok {
		return "", "", inputError(h.cfg.UserIDs.userText("userId"))
	}
	if appID != "" {
		if appID, ok = h.cfg.UserIDs.Canonical(appID); !ok {
			return "", "", inputError(h.cfg.UserIDs.userText("appId"))
		}
	}
	return appID, user, nil
}
