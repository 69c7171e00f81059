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
	// ErrRedemptionUnsupported: the store does not implement
	// RedemptionStore.
	ErrRedemptionUnsupported = errors.New("referral: the store does not record redemptions")
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
// stores of this module implement it beside CodeStore; a Handler uses it
// when its Config.Store does.
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
// to it accepted. It is idempotent: the same user redeeming the same code
// again gets the first redemption back. A user already credited to another
// code gets that redemption and ErrAlreadyRedeemed: the first code keeps
// the credit. A malformed or unknown code is ErrCodeNotFound, a user
// redeeming their own code ErrSelfReferral, and a malformed user id or
// address an error matching ErrInvalidInput, whose text is safe to show. Config.OnRedeemed is
// called once per new redemption.
func (h *Handler) Redeem(ctx context.Context, code, newUserID, email string) (Redemption, error) {
	r, _, err := h.redeem(ctx, "", code, newUserID, email)
	return r, err
}

// redeem is Redeem, also saying whether the redemption is new; appID, if
// set, is the only app whose codes are accepted.
func (h *Handler) redeem(ctx context.Context, appID, code, newUserID, email string) (Redemption, bool, error) {
	rs, ok := h.cfg.Store.(RedemptionStore)
	if !ok {
		return Redemption{}, false, ErrRedemptionUnsupported
	}
	user, ok := CanonicalUUID(newUserID)
	if !ok {
		return Redemption{}, false, inputError("userId must be a UUID")
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
	if appID != "" && owner.AppID != appID {
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
	case created && h.cfg.OnRedeemed != nil:
		h.cfg.OnRedeemed(r)
	}
	return r, created, nil
}

// Stats counts the invites and redemptions of a referrer in an app. Ids
// that are not UUIDs are an error matching ErrInvalidInput.
func (h *Handler) Stats(ctx context.Context, appID, userID string) (Stats, error) {
	rs, ok := h.cfg.Store.(RedemptionStore)
	if !ok {
		return Stats{}, ErrRedemptionUnsupported
	}
	app, ok1 := CanonicalUUID(appID)
	user, ok2 := CanonicalUUID(userID)
	if !ok1 || !ok2 {
		return Stats{}, inputError("appId and userId must be UUIDs")
	}
	return rs.Stats(ctx, app, user)
}
