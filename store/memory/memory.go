package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

// Store is an in-memory referral.CodeStore, referral.RedemptionStore,
// referral.RecipientStore, referral.ReferrerStore, referral.QueueStore and
// referral.EventStore. The zero value is not ready: use New or
// NewWithOptions.
type Store struct {
	mu       sync.Mutex
	codes    map[userKey]string
	owners   map[string]referral.Owner
	invites  map[string]*referral.Invite
	byUser   map[userKey][]*referral.Invite // by CreatedAt, then ID
	idemKeys map[idemKey]*referral.Invite
	redeemed map[userKey]referral.Redemption   // by app and new user
	credited map[userKey][]referral.Redemption // by app and referrer
	// byAddress holds each address's invites by app and AddressHash (in
	// userKey's user), for the recipient limit and Suppress.
	byAddress  map[userKey][]*referral.Invite
	suppressed map[userKey]referral.Suppression // by app and AddressHash
	secrets    map[string][]byte
	// outbox: the changes record events in events, by id; see
	// Options.Outbox.
	outbox bool
	events map[string]*referral.Event
	// reclaimed holds when RecordInvite last reclaimed each invite that
	// had failed (by id), for Queue: it entered the queue again then.
	reclaimed map[string]time.Time
}

type userKey struct{ app, user string }

type idemKey struct {
	userKey
	key string
}

var _ referral.DeliveryBatchStore = (*Store)(nil)

// New returns an empty store, its outbox off. It is NewWithOptions with
// the zero Options.
func New() *Store {
	return NewWithOptions(Options{})
}

// Options are the choices of [NewWithOptions]. The zero value is [New]'s.
type Options struct {
	// Outbox makes the store record the events of its changes (see
	// [referral.EventStore]) for a Handler's Config.Webhooks, each with
	// the change it reports. Default false: no events are recorded, and
	// Outbox reports false.
	Outbox bool
}

// NewWithOptions returns an empty store with the choices of o.
func NewWithOptions(o Options) *Store {
	return &Store{
		outbox: o.Outbox,
		events: map[string]*referral.Event{},

		reclaimed: map[string]time.Time{},

		codes:    map[userKey]string{},
		owners:   map[string]referral.Owner{},
		invites:  map[string]*referral.Invite{},
		byUser:   map[userKey][]*referral.Invite{},
		idemKeys: map[idemKey]*referral.Invite{},
		redeemed: map[userKey]referral.Redemption{},
		credited: map[userKey][]referral.Redemption{},

		byAddress:  map[userKey][]*referral.Invite{},
		suppressed: map[userKey]referral.Suppression{},
		secrets:    map[string][]byte{},
	}
}

// EnsureCode returns userID's code in appID, storing one that newCode makes
// if the user has none; see [referral.CodeStore] for the rules.
func (s *Store) EnsureCode(ctx context.Context, appID, userID string, newCode func() string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := userKey{appID, userID}
	if c, ok := s.codes[k]; ok {
		return c, nil
	}
	for range storeimpl.MaxCodeTries {
		c := newCode()
		if _, taken := s.owners[c]; taken {
			continue
		}
		s.codes[k] = c
		s.owners[c] = referral.Owner{AppID: appID, UserID: userID}
		return c, nil
	}
	return "", referral.ErrCodeTaken
}

// RecordInvite stores inv after the idempotency, limit, cooldown and
// recipient checks of [referral.CodeStore], atomically with them, and
// returns the invite stored (suppressed, maybe) or replayed.
func (s *Store) RecordInvite(ctx context.Context, inv referral.Invite, lim referral.Limits) (referral.Invite, bool, error) {
	if err := ctx.Err(); err != nil {
		return referral.Invite{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	uk := userKey{inv.AppID, inv.ReferrerID}
	ik := idemKey{uk, inv.IdempotencyKey}
	if inv.IdempotencyKey != "" && lim.IdempotencyTTL > 0 {
		if first, ok := s.idemKeys[ik]; ok && first.CreatedAt.After(inv.CreatedAt.Add(-lim.IdempotencyTTL)) {
			if storeimpl.Retryable(*first, inv) {
				var reason string
				if first.AddressHash != "" {
					reason = s.suppressed[userKey{first.AppID, first.AddressHash}].Reason
				}
				if first.Status == referral.StatusFailed && reason == "" {
					s.reclaimed[first.ID] = inv.CreatedAt.UTC()
				}
				*first = storeimpl.Reclaimed(*first, inv, reason)
				if first.Status == referral.StatusSuppressed {
					s.record(storeimpl.InviteEvent(referral.EventInviteSuppressed, *first, inv.CreatedAt))
				}
				return *first, false, nil
			}
			return *first, true, nil
		}
	}
	past := s.byUser[uk]
	if wait, full := s.referrerFull(uk, inv.CreatedAt, lim); full {
		return referral.Invite{}, false, &referral.LimitError{RetryAfter: wait}
	}
	if lim.Cooldown > 0 {
		since := inv.CreatedAt.Add(-lim.Cooldown)
		for _, p := range slices.Backward(past) {
			if !p.CreatedAt.After(since) {
				break
			}
			if p.EmailKey == inv.EmailKey && p.Status != referral.StatusFailed && p.Status != referral.StatusRevoked {
				return referral.Invite{}, false, &referral.LimitError{RetryAfter: p.CreatedAt.Add(lim.Cooldown).Sub(inv.CreatedAt), Cooldown: true}
			}
		}
	}
	ak := userKey{inv.AppID, inv.AddressHash}
	if reason := s.suppressReason(ak, inv.CreatedAt, lim); reason != "" {
		inv = storeimpl.Suppressed(inv, reason)
	}
	stored := inUTC(inv)
	s.invites[inv.ID] = &stored
	s.byUser[uk] = slices.Insert(past, listedAfter(past, inv.CreatedAt, inv.ID), &stored)
	if inv.AddressHash != "" {
		s.byAddress[ak] = append(s.byAddress[ak], &stored)
	}
	if inv.IdempotencyKey != "" {
		s.idemKeys[ik] = &stored
	}
	if stored.Status == referral.StatusSuppressed {
		s.record(storeimpl.InviteEvent(referral.EventInviteSuppressed, stored, stored.CreatedAt))
	}
	return stored, false, nil
}

// referrerFull is step 2 of RecordInvite, and Resend's referrer limit, at
// now: whether the referrer uk has lim.MaxPerReferrer invites created or
// resent within lim.Window, and if so how long until one leaves it.
func (s *Store) referrerFull(uk userKey, now time.Time, lim referral.Limits) (time.Duration, bool) {
	if lim.MaxPerReferrer <= 0 {
		return 0, false
	}
	since := now.Add(-lim.Window)
	past := s.byUser[uk]
	// past is in creation order: the window starts at the first invite
	// created after since. Resends may be of older invites.
	var events []time.Time
	for _, p := range past[createdAfter(past, since):] {
		events = append(events, p.CreatedAt)
	}
	for _, p := range past {
		if p.ResentAt.After(since) {
			events = append(events, p.ResentAt)
		}
	}
	if len(events) < lim.MaxPerReferrer {
		return 0, false
	}
	slices.SortFunc(events, func(a, b time.Time) int { return b.Compare(a) })
	return events[lim.MaxPerReferrer-1].Add(lim.Window).Sub(now), true
}

// suppressReason is step 4 of RecordInvite for an invite of address ak
// created (or resent) at now: the reason to record it suppressed, "" for
// none. The recipient limit counts sends: each invite of the address not
// suppressed counts 1 if created within the window, whatever became of
// it, and its Resends if it was last resent within the window.
func (s *Store) suppressReason(ak userKey, now time.Time, lim referral.Limits) string {
	if ak.user == "" {
		return ""
	}
	if sup, ok := s.suppressed[ak]; ok {
		return sup.Reason
	}
	if lim.MaxPerRecipient <= 0 {
		return ""
	}
	since, n := now.Add(-lim.RecipientWindow), 0
	for _, p := range s.byAddress[ak] {
		if p.Status == referral.StatusSuppressed || (p.Status == referral.StatusFailed && p.SentAt.IsZero()) {
			continue // no email went out
		}
		if p.CreatedAt.After(since) {
			n++
		}
		if p.ResentAt.After(since) {
			n += p.Resends
		}
	}
	if n >= lim.MaxPerRecipient {
		return referral.ReasonRecipientLimit
	}
	return ""
}

// inUTC returns inv with every time in UTC, as the interface promises to
// return them.
func inUTC(inv referral.Invite) referral.Invite {
	inv.NextAttemptAt = inv.NextAttemptAt.UTC()
	inv.LeaseUntil = inv.LeaseUntil.UTC()
	inv.CreatedAt = inv.CreatedAt.UTC()
	inv.UpdatedAt = inv.UpdatedAt.UTC()
	inv.SentAt = inv.SentAt.UTC()
	inv.ResentAt = inv.ResentAt.UTC()
	return inv
}

// createdAfter returns the index of the first invite in past (sorted by
// CreatedAt) created after t.
func createdAfter(past []*referral.Invite, t time.Time) int {
	i, _ := slices.BinarySearchFunc(past, t, func(p *referral.Invite, t time.Time) int {
		if p.CreatedAt.After(t) {
			return 1
		}
		return -1
	})
	return i
}

// listedAfter returns the index of the first invite in past (sorted by
// CreatedAt, then ID) after (t, id) in that order.
func listedAfter(past []*referral.Invite, t time.Time, id string) int {
	i, _ := slices.BinarySearchFunc(past, t, func(p *referral.Invite, t time.Time) int {
		if c := cmp.Or(p.CreatedAt.Compare(t), strings.Compare(p.ID, id)); c > 0 {
			return 1
		}
		return -1
	})
	return i
}

// UpdateDelivery records the outcome of a delivery attempt; see
// [referral.CodeStore].
func (s *Store) UpdateDelivery(ctx context.Context, id string, d referral.Delivery) error {
	return s.UpdateDeliveries(ctx, []referral.DeliveryUpdate{{InviteID: id, Delivery: d}})
}

// UpdateDeliveries records several outcomes at once; see
// [referral.DeliveryBatchStore].
func (s *Store) UpdateDeliveries(ctx context.Context, updates []referral.DeliveryUpdate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range updates {
		s.updateDelivery(u.InviteID, u.Delivery)
	}
	return nil
}

// updateDelivery is UpdateDelivery with s.mu held.
func (s *Store) updateDelivery(id string, d referral.Delivery) {
	inv, ok := s.invites[id]
	if !ok || inv.Attempts != d.Attempt {
		return
	}
	switch {
	case inv.Status == referral.StatusPending:
		inv.Status, inv.LastError = d.Status, d.LastError
	case inv.Status == referral.StatusRevoked && d.Status == referral.StatusSent:
		// Revoked during the attempt: only its send is recorded.
	default:
		return
	}
	if d.Status == referral.StatusPending {
		inv.NextAttemptAt = d.NextAttemptAt.UTC()
	}
	if d.Status == referral.StatusSent {
		inv.SentAt = d.At.UTC()
	}
	inv.LeaseUntil = time.Time{}
	inv.UpdatedAt = d.At.UTC()
	if typ, ok := storeimpl.DeliveryEvent(d.Status); ok {
		s.record(storeimpl.InviteEvent(typ, *inv, d.At))
	}
}

// ClaimDue leases up to max pending invites that are due at now, oldest
// due first; see [referral.CodeStore].
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, max int) ([]referral.Invite, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*referral.Invite
	for _, inv := range s.invites {
		if inv.Status == referral.StatusPending && !inv.NextAttemptAt.After(now) && !inv.LeaseUntil.After(now) {
			due = append(due, inv)
		}
	}
	// ByDue breaks ties by id, so that the order does not depend on map
	// iteration.
	slices.SortFunc(due, func(a, b *referral.Invite) int { return storeimpl.ByDue(*a, *b) })
	out := make([]referral.Invite, 0, min(max, len(due)))
	for _, inv := range due[:min(max, len(due))] {
		inv.Attempts++
		inv.LeaseUntil = now.Add(lease).UTC()
		inv.UpdatedAt = now.UTC()
		out = append(out, *inv)
	}
	return out, nil
}

// ResolveCode returns the owner of code, compared exactly, or an error
// matching [referral.ErrCodeNotFound]; see [referral.CodeStore].
func (s *Store) ResolveCode(ctx context.Context, code string) (referral.Owner, error) {
	if err := ctx.Err(); err != nil {
		return referral.Owner{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.owners[code]
	if !ok {
		return referral.Owner{}, referral.ErrCodeNotFound
	}
	return o, nil
}

// Invites returns a copy of every invite, oldest first, for tests and
// inspection.
func (s *Store) Invites() []referral.Invite {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]referral.Invite, 0, len(s.invites))
	for _, inv := range s.invites {
		out = append(out, *inv)
	}
	slices.SortFunc(out, func(a, b referral.Invite) int {
		// UUIDv7 ids order invites made within one clock tick.
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}
