package memory

import (
	"context"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.RedemptionStore = (*Store)(nil)

// Redeem stores r unless its new user has redeemed a code in the app
// already, and returns the redemption that stands; see
// [referral.RedemptionStore].
func (s *Store) Redeem(ctx context.Context, r referral.Redemption) (referral.Redemption, bool, error) {
	if err := ctx.Err(); err != nil {
		return referral.Redemption{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := userKey{r.AppID, r.NewUserID}
	if first, ok := s.redeemed[k]; ok {
		return first, false, nil
	}
	r.CreatedAt = r.CreatedAt.UTC()
	s.redeemed[k] = r
	ref := userKey{r.AppID, r.ReferrerID}
	s.credited[ref] = append(s.credited[ref], r)
	s.record(storeimpl.RedeemedEvent(r))
	return r, true, nil
}

// Stats counts userID's invites, deliveries, accepted invites and
// redemptions in appID; see [referral.RedemptionStore].
func (s *Store) Stats(ctx context.Context, appID, userID string) (referral.Stats, error) {
	if err := ctx.Err(); err != nil {
		return referral.Stats{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := userKey{appID, userID}
	redeemed := map[string]bool{}
	for _, r := range s.credited[k] {
		redeemed[r.EmailKey] = true
	}
	st := referral.Stats{Redeemed: len(s.credited[k])}
	accepted := map[string]bool{}
	for _, inv := range s.byUser[k] {
		st.Invited++
		if inv.Status == referral.StatusSent {
			st.Sent++
		}
		if redeemed[inv.EmailKey] {
			accepted[inv.EmailKey] = true
		}
	}
	st.Accepted = len(accepted)
	return st, nil
}
