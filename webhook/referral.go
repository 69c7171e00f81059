package webhook

import (
	"context"
	"encoding/json"

	"github.com/referralkit/referralkit/referral"
)

var _ referral.EventSender = (*Sender)(nil)

// eventData is the data of a delivered event: ids and a status, never an
// address.
type eventData struct {
	InviteID   string `json:"inviteId,omitempty"`
	AppID      string `json:"appId"`
	ReferrerID string `json:"referrerId"`
	Status     string `json:"status,omitempty"`
	Code       string `json:"code,omitempty"`
	NewUserID  string `json:"newUserId,omitempty"`
}

// SendEvent sends ev, an event of a referral store's outbox, with its id
// as the webhook-id: a referral.EventSender for Config.Webhooks.
func (s *Sender) SendEvent(ctx context.Context, ev referral.Event) error {
	data, err := json.Marshal(eventData{
		InviteID: ev.InviteID, AppID: ev.AppID, ReferrerID: ev.ReferrerID,
		Status: string(ev.Status), Code: ev.Code, NewUserID: ev.NewUserID,
	})
	if err != nil {
		return err
	}
	return s.Send(ctx, ev.ID, Event{Type: ev.Type, Timestamp: ev.At, Data: data})
}
