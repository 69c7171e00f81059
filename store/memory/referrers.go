package memory

import (
	"context"
	"slices"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.ReferrerStore = (*Store)(nil)

// ListInvites returns up to limit of the referrer's invites after the
// cursor, newest first, each with when its address was accepted; see
// [referral.ReferrerStore].
func (s *Store) ListInvites(ctx context.Context, appID, userID string, after referral.InviteCursor, limit int) ([]referral.ListedInvite, error) {
	if err := ctx.Err(); err != nil || limit <= 0 {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.byUser[userKey{appID, userID}]
	end := len(past)
	if after != (referral.InviteCursor{}) {
		// The first invite at or after the cursor ends the older ones.
		end, _ = slices.BinarySearchFunc(past, after, func(p *referral.Invite, c referral.InviteCursor) int {
			if p.CreatedAt.Before(c.CreatedAt) || (p.CreatedAt.Equal(c.CreatedAt) && p.ID < c.ID) {
				return -1
			}
			return 1
		})
	}
	out := make([]referral.ListedInvite, 0, min(limit, end))
	for _, inv := range slices.Backward(past[:end]) {
		if len(out) == limit {
			break
		}
		out = append(out, s.listed(inv))
	}
	return out, nil
}

// listed is inv as the listing has it.
func (s *Store) listed(inv *referral.Invite) referral.ListedInvite {
	return referral.ListedInvite{Invite: *inv, AcceptedAt: s.acceptedAt(inv)}
}

// GetInvite returns invite id if it is the referrer's, else
// [referral.ErrInviteNotFound]; see [referral.ReferrerStore].
func (s *Store) GetInvite(ctx context.Context, appID, userID, id string) (referral.ListedInvite, error) {
	if err := ctx.Err(); err != nil {
		return referral.ListedInvite{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.referrers(appID, userID, id)
	if !ok {
		return referral.ListedInvite{}, referral.ErrInviteNotFound
	}
	return s.listed(inv), nil
}

// referrers returns invite id if it is referrer (appID, userID)'s.
func (s *Store) referrers(appID, userID, id string) (*referral.Invite, bool) {
	inv, ok := s.invites[id]
	if !ok || inv.AppID != appID || inv.ReferrerID != userID {
		return nil, false
	}
	return inv, true
}

// Resend makes r's invite due again after the state, resend, referrer and
// recipient checks of [referral.ReferrerStore], atomically with them, and
// returns it as updated.
func (s *Store) Resend(ctx context.Context, r referral.Resend, lim referral.Limits) (referral.Invite, error) {
	if err := ctx.Err(); err != nil {
		return referral.Invite{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.referrers(r.AppID, r.ReferrerID, r.ID)
	if !ok {
		return referral.Invite{}, referral.ErrInviteNotFound
	}
	if err := storeimpl.Resendable(s.listed(inv), r); err != nil {
		return referral.Invite{}, err
	}
	if wait, full := s.referrerFull(userKey{r.AppID, r.ReferrerID}, r.At, lim); full {
		return referral.Invite{}, &referral.LimitError{RetryAfter: wait}
	}
	*inv = storeimpl.Resent(*inv, r, s.suppressReason(userKey{inv.AppID, inv.AddressHash}, r.At, lim))
	if inv.Status == referral.StatusSuppressed {
		s.record(storeimpl.InviteEvent(referral.EventInviteSuppressed, *inv, r.At))
	}
	return *inv, nil
}

// Revoke marks the referrer's invite id revoked unless its address was
// accepted; see [referral.ReferrerStore].
func (s *Store) Revoke(ctx context.Context, appID, userID, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.referrers(appID, userID, id)
	switch {
	case !ok:
		return referral.ErrInviteNotFound
	case inv.Status == referral.StatusRevoked:
		return nil
	case !s.acceptedAt(inv).IsZero():
		return referral.ErrInviteAccepted
	}
	inv.Status, inv.LeaseUntil, inv.UpdatedAt = referral.StatusRevoked, time.Time{}, at.UTC()
	s.record(storeimpl.InviteEvent(referral.EventInviteRevoked, *inv, at))
	return nil
}

// StillDue reports which of the claimed invites are still pending with
// their Attempts; see [referral.ReferrerStore].
func (s *Store) StillDue(ctx context.Context, claimed []referral.Invite) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	due := make([]bool, len(claimed))
	for i, c := range claimed {
		inv, ok := s.invites[c.ID]
		due[i] = ok && inv.Status == referral.StatusPending && inv.Attempts == c.Attempts
	}
	return due, nil
}

// acceptedAt is when inv's address was accepted: the earliest redemption
// credited to its referrer with its address; zero if none, or if the
// address was erased.
func (s *Store) acceptedAt(inv *referral.Invite) time.Time {
	var at time.Time
	if inv.EmailKey == "" {
		return at
	}
	for _, r := range s.credited[userKey{inv.AppID, inv.ReferrerID}] {
		if r.EmailKey == inv.EmailKey && (at.IsZero() || r.CreatedAt.Before(at)) {
			at = r.CreatedAt
		}
	}
	return at
}
