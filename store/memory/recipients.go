package memory

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.RecipientStore = (*Store)(nil)

// Secret returns the secret called name, storing newSecret() the first
// time; see [referral.RecipientStore].
func (s *Store) Secret(ctx context.Context, name string, newSecret func() []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.secrets[name]
	if !ok {
		v = bytes.Clone(newSecret())
		s.secrets[name] = v
	}
	return bytes.Clone(v), nil
}

// Suppress adds sup to the suppression list, keeping an earlier entry of
// the address, and marks the app's pending invites of the address
// suppressed; see [referral.RecipientStore].
func (s *Store) Suppress(ctx context.Context, sup referral.Suppression) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ak := userKey{sup.AppID, sup.AddressHash}
	if _, ok := s.suppressed[ak]; !ok {
		sup.CreatedAt = sup.CreatedAt.UTC()
		s.suppressed[ak] = sup
	}
	for _, inv := range s.byAddress[ak] {
		if inv.Status == referral.StatusPending {
			inv.Status, inv.LastError = referral.StatusSuppressed, sup.Reason
			inv.LeaseUntil, inv.UpdatedAt = time.Time{}, sup.CreatedAt.UTC()
			s.record(storeimpl.InviteEvent(referral.EventInviteSuppressed, *inv, sup.CreatedAt))
		}
	}
	return nil
}

// Unsuppress removes (appID, addressHash) from the suppression list; see
// [referral.RecipientStore].
func (s *Store) Unsuppress(ctx context.Context, appID, addressHash string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.suppressed, userKey{appID, addressHash})
	return nil
}

// Suppression returns the suppression of (appID, addressHash), found=false
// if there is none; see [referral.RecipientStore].
func (s *Store) Suppression(ctx context.Context, appID, addressHash string) (referral.Suppression, bool, error) {
	if err := ctx.Err(); err != nil {
		return referral.Suppression{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sup, ok := s.suppressed[userKey{appID, addressHash}]
	return sup, ok, nil
}

// InviteRecipient returns the app, address hash, address key and language
// of invite id, or [referral.ErrInviteNotFound]; see
// [referral.RecipientStore].
func (s *Store) InviteRecipient(ctx context.Context, id string) (referral.Recipient, error) {
	if err := ctx.Err(); err != nil {
		return referral.Recipient{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invites[id]
	if !ok {
		return referral.Recipient{}, referral.ErrInviteNotFound
	}
	return referral.Recipient{AppID: inv.AppID, AddressHash: inv.AddressHash, EmailKey: inv.EmailKey, Language: inv.Language}, nil
}

// EraseAddresses erases Email and EmailKey of up to max final, unaccepted
// invites last sent before sentBefore, oldest first, and returns how many;
// see [referral.RecipientStore].
func (s *Store) EraseAddresses(ctx context.Context, sentBefore time.Time, max int) (int, error) {
	if err := ctx.Err(); err != nil || max <= 0 {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*referral.Invite
	for _, inv := range s.invites {
		if inv.EmailKey != "" && inv.LastSend().Before(sentBefore) && inv.Status != referral.StatusPending && s.acceptedAt(inv).IsZero() {
			due = append(due, inv)
		}
	}
	slices.SortFunc(due, func(a, b *referral.Invite) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	due = due[:min(max, len(due))]
	for _, inv := range due {
		inv.Email, inv.EmailKey = "", ""
	}
	return len(due), nil
}
