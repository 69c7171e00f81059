package storeimpl

import (
	"cmp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/referralkit/referralkit/referral"
)

// EventColumns are the columns of the events table that ScanEvent reads,
// in its order. Both SQL stores name them alike.
const EventColumns = `id, type, at, app_id, invite_id, referrer_id, status, code, new_user_id,
	attempts, next_attempt_at, lease_until, last_error`

// InviteEvent returns a new event of type typ reporting inv's change to
// its status inv.Status at at: due at once, never attempted.
func InviteEvent(typ string, inv referral.Invite, at time.Time) referral.Event {
	at = at.UTC()
	return referral.Event{
		ID: newEventID(), Type: typ, At: at,
		AppID: inv.AppID, InviteID: inv.ID, ReferrerID: inv.ReferrerID, Status: inv.Status,
		NextAttemptAt: at,
	}
}

// RedeemedEvent returns a new referral.redeemed event reporting r.
func RedeemedEvent(r referral.Redemption) referral.Event {
	at := r.CreatedAt.UTC()
	return referral.Event{
		ID: newEventID(), Type: referral.EventReferralRedeemed, At: at,
		AppID: r.AppID, ReferrerID: r.ReferrerID, Code: r.Code, NewUserID: r.NewUserID,
		NextAttemptAt: at,
	}
}

// DeliveryEvent returns the type of the event UpdateDelivery records for
// an attempt that left its invite in status, and false for a retry.
func DeliveryEvent(status referral.Status) (string, bool) {
	switch status {
	case referral.StatusSent:
		return referral.EventInviteSent, true
	case referral.StatusFailed:
		return referral.EventInviteFailed, true
	}
	return "", false
}

// newEventID returns a UUIDv7: ids made later sort later, so that
// ClaimEvents' ties come in the order the events were made.
func newEventID() string { return uuid.Must(uuid.NewV7()).String() }

// ByEventDue orders events oldest due first, ties by id, as ClaimEvents
// returns them.
func ByEventDue(a, b referral.Event) int {
	return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
}

// ScanEvent reads one row of EventColumns. T is the type the store's
// driver reads a time column into, and toTime turns one into a time in
// UTC, the zero time for none.
func ScanEvent[T any](row Row, toTime func(T) time.Time) (referral.Event, error) {
	var (
		ev              referral.Event
		status          string
		at, next, lease T
	)
	err := row.Scan(&ev.ID, &ev.Type, &at, &ev.AppID, &ev.InviteID, &ev.ReferrerID, &status, &ev.Code, &ev.NewUserID,
		&ev.Attempts, &next, &lease, &ev.LastError)
	if err != nil {
		return referral.Event{}, err
	}
	ev.Status = referral.Status(status)
	ev.At, ev.NextAttemptAt, ev.LeaseUntil = toTime(at), toTime(next), toTime(lease)
	return ev, nil
}
