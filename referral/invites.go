package referral

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Errors of the referrer's routes.
var (
	// ErrNotResendable: only a sent, failed or expired invite is resent.
	ErrNotResendable = errors.New("referral: the invite cannot be resent in its state")
	// ErrInviteAccepted: an accepted invite cannot be revoked.
	ErrInviteAccepted = errors.New("referral: the invite was accepted")
	// ErrResendsUsed: the invite was resent Config.MaxResends times.
	ErrResendsUsed = errors.New("referral: the invite was resent the most times allowed")
)

// InviteCursor is where a page of ListInvites starts: after the invite
// with this CreatedAt and ID, in newest-first order. The zero cursor is
// the first page.
type InviteCursor struct {
	CreatedAt time.Time
	ID        string
}

// ListedInvite is an invite as its referrer's listing has it: the stored
// invite and when its address was accepted (zero if not).
type ListedInvite struct {
	Invite
	AcceptedAt time.Time
}

// Resend asks for invite ID of referrer (AppID, ReferrerID) to be
// delivered again at At; see ReferrerStore.Resend.
type Resend struct {
	AppID, ReferrerID, ID string
	At                    time.Time
	// MaxResends bounds Invite.Resends; ResendAfter is the least time
	// since the invite's last send (Invite.LastSend).
	MaxResends  int
	ResendAfter time.Duration
	// LeaseUntil, if not zero, claims the resend for a caller that
	// delivers it at once (inline): Attempts+1 and this lease, as
	// RecordInvite's step 1a does. Zero leaves it for the worker.
	LeaseUntil time.Time
}

// ReferrerStore is the part of a store that shows referrers their invites
// and lets them resend and revoke: the routes of DESIGN section 6. The
// stores of this module implement it beside CodeStore; a Handler uses the
// one in Config.Referrers. Implementations must be safe for concurrent use
// across processes, like CodeStore.
type ReferrerStore interface {
	// ListInvites returns up to limit invites of referrer (appID, userID),
	// newest first (CreatedAt descending, then ID descending), only those
	// after the cursor when it is not zero. Invites recorded meanwhile
	// never make a page repeat or skip an invite older than its cursor.
	ListInvites(ctx context.Context, appID, userID string, after InviteCursor, limit int) ([]ListedInvite, error)

	// GetInvite returns invite id if it is referrer (appID, userID)'s;
	// ErrInviteNotFound otherwise (another referrer's included).
	GetInvite(ctx context.Context, appID, userID, id string) (ListedInvite, error)

	// Resend makes r's invite due for delivery again, atomically with
	// these checks, in order: the invite is r's referrer's
	// (ErrInviteNotFound); its address was not accepted
	// (ErrInviteAccepted); its status is sent or failed and its Email was
	// not erased (ErrNotResendable); Resends < r.MaxResends and its last send is at
	// least r.ResendAfter before r.At (a *LimitError, RetryAfter until the
	// resend would be allowed, zero if never); the referrer limit of lim,
	// counting invites created and invites resent (ResentAt) within
	// lim.Window (a *LimitError). Then, as RecordInvite's step 4, if the
	// address is suppressed or has had its lim.MaxPerRecipient sends
	// within lim.RecipientWindow (counted as step 4 counts them, this
	// invite included), the invite becomes suppressed with the reason in
	// LastError; otherwise pending, due at r.At, LastError kept. Either way Resends+1, ResentAt r.At, UpdatedAt r.At, and a lease as
	// r.LeaseUntil says. The invite is returned as updated.
	Resend(ctx context.Context, r Resend, lim Limits) (Invite, error)

	// Revoke marks invite id of referrer (appID, userID) revoked at at,
	// whatever its status, unless its address was accepted
	// (ErrInviteAccepted); ErrInviteNotFound if it is not the referrer's.
	// Revoking a revoked invite is not an error.
	Revoke(ctx context.Context, appID, userID, id string, at time.Time) error

	// StillDue reports, for each of the claimed invites (by ID and
	// Attempts), whether it is still pending with that Attempts: due[i] is
	// claimed[i]'s answer, false for an id it does not know. A worker asks
	// right before it sends them, so that one revoked or suppressed since
	// the claim is not sent; it asks for the invites it is about to send at
	// once, Config.Senders of them, in one call.
	StillDue(ctx context.Context, claimed []Invite) (due []bool, err error)
}

// Patterns of the referrer's routes, besides GET on Pattern (the list).
// Mount them without a method, like Pattern.
const (
	ReferralCodePattern = "/v1/users/{userId}/referral-code"
	InvitePattern       = "/v1/users/{userId}/referral-invites/{inviteId}"
	ResendPattern       = "/v1/users/{userId}/referral-invites/{inviteId}/resend"
)

// Statuses a referrer sees besides the stored ones; never stored.
const (
	// StatusAccepted: the address signed up with the referrer's code.
	StatusAccepted Status = "accepted"
	// StatusExpired: sent, and not accepted within Config.InviteTTL of its
	// last send.
	StatusExpired Status = "expired"
)

// InviteView is an invite as its referrer sees it.
type InviteView struct {
	ID         string     `json:"id"`
	Email      *string    `json:"email"` // nil once erased (RetainAddresses)
	Language   string     `json:"language"`
	Status     Status     `json:"status"`
	CreatedAt  time.Time  `json:"createdAt"`
	SentAt     *time.Time `json:"sentAt"`
	AcceptedAt *time.Time `json:"acceptedAt"`
}

// InvitePage is one page of a referrer's invites, newest first.
// NextCursor fetches the next page; "" when this is the last.
type InvitePage struct {
	Invites    []InviteView `json:"invites"`
	NextCursor *string      `json:"nextCursor"`
}

// ReferralInfo is what a referrer's page shows first: their code, the
// link the emails carry, and counts (see Stats).
type ReferralInfo struct {
	Code     string `json:"code"`
	Link     string `json:"link"`
	Invited  int    `json:"invited"`
	Sent     int    `json:"sent"`
	Accepted int    `json:"accepted"`
}

// Page sizes of Invites.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// view is the one place an invite's visible status is derived.
func (h *Handler) view(li ListedInvite, now time.Time) InviteView {
	v := InviteView{ID: li.ID, Language: li.Language, Status: li.Status, CreatedAt: li.CreatedAt}
	if li.Email != "" {
		v.Email = &li.Email
	}
	if !li.SentAt.IsZero() {
		v.SentAt = &li.SentAt
	}
	switch {
	case !li.AcceptedAt.IsZero():
		v.Status, v.AcceptedAt = StatusAccepted, &li.AcceptedAt
	case li.Status == StatusSent && h.cfg.InviteTTL > 0 && !now.Before(li.LastSend().Add(h.cfg.InviteTTL)):
		v.Status = StatusExpired
	}
	return v
}

// LastSend is when the invite was last sent or asked to be (created, sent
// or resent, whichever is latest): what expiry (Config.InviteTTL) and
// ResendAfter count from.
func (inv Invite) LastSend() time.Time {
	t := inv.CreatedAt
	if inv.SentAt.After(t) {
		t = inv.SentAt
	}
	if inv.ResentAt.After(t) {
		t = inv.ResentAt
	}
	return t
}

// Invites returns a page of the invites of user userID in app appID ("" for
// a host with one app), newest first: limit of them (0 for
// DefaultPageSize, at most MaxPageSize), after cursor ("" for the first
// page, else an InvitePage.NextCursor of the same user). A bad limit or
// cursor is an error matching ErrInvalidInput. It needs Config.Referrers.
func (h *Handler) Invites(ctx context.Context, appID, userID, cursor string, limit int) (InvitePage, error) {
	app, user, err := h.ids(appID, userID)
	if err != nil {
		return InvitePage{}, err
	}
	if h.cfg.Referrers == nil {
		return InvitePage{}, ErrReferrersUnsupported
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		return InvitePage{}, inputError("limit must be 1 to 100")
	}
	after, ok := h.parseCursor(app, user, cursor)
	if !ok {
		return InvitePage{}, inputError("cursor is not one this server gave")
	}
	// One more than asked: whether there is a next page.
	invs, err := h.cfg.Referrers.ListInvites(ctx, app, user, after, limit+1)
	if err != nil {
		return InvitePage{}, err
	}
	page := InvitePage{Invites: make([]InviteView, 0, min(len(invs), limit))}
	now := h.cfg.Now().UTC()
	for i, li := range invs {
		if i == limit {
			next := h.cursor(app, user, invs[i-1].Invite)
			page.NextCursor = &next
			break
		}
		page.Invites = append(page.Invites, h.view(li, now))
	}
	return page, nil
}

// ErrReferrersUnsupported: Config.Referrers is not set.
var ErrReferrersUnsupported = errors.New("referral: Config.Referrers is not set")

// Referral returns user userID's code (made now if they have none, also
// for read-only credentials: a code is not a change a user can see),
// share link and counts. It needs Config.Redemptions for the counts.
func (h *Handler) Referral(ctx context.Context, appID, userID string) (ReferralInfo, error) {
	code, err := h.Code(ctx, appID, userID)
	if err != nil {
		return ReferralInfo{}, err
	}
	st, err := h.Stats(ctx, appID, userID)
	if err != nil {
		return ReferralInfo{}, err
	}
	return ReferralInfo{Code: code, Link: h.link.Link(code), Invited: st.Invited, Sent: st.Sent, Accepted: st.Accepted}, nil
}

// ResendInvite delivers invite inviteID of user userID again, inline or
// queued as configured: only a sent, failed or expired one whose address
// is kept (ErrNotResendable; an accepted one ErrInviteAccepted), at most Config.MaxResends times and not within
// Config.ResendAfter of its last send (a *LimitError), within the
// referrer's and the recipient's limits. An unknown invite, or another
// user's, is ErrInviteNotFound. With inline delivery a failed send is
// returned as an error, the invite recorded failed.
func (h *Handler) ResendInvite(ctx context.Context, appID, userID, inviteID string) (Invite, error) {
	return h.resend(ctx, "", appID, userID, inviteID)
}

func (h *Handler) resend(ctx context.Context, requestID, appID, userID, inviteID string) (Invite, error) {
	app, user, err := h.ids(appID, userID)
	if err != nil {
		return Invite{}, err
	}
	if h.cfg.Referrers == nil {
		return Invite{}, ErrReferrersUnsupported
	}
	id, ok := CanonicalUUID(inviteID)
	if !ok {
		return Invite{}, ErrInviteNotFound
	}
	if h.cfg.MaxResends < 0 {
		return Invite{}, ErrResendsUsed
	}
	now := h.cfg.Now().UTC()
	r := Resend{AppID: app, ReferrerID: user, ID: id, At: now, MaxResends: h.cfg.MaxResends, ResendAfter: max(h.cfg.ResendAfter, 0)}
	if h.cfg.Delivery == Inline {
		r.LeaseUntil = now.Add(2 * h.cfg.SendTimeout)
	}
	inv, err := h.cfg.Referrers.Resend(ctx, r, h.limits)
	var le *LimitError
	switch {
	case errors.As(err, &le) && le.RetryAfter <= 0:
		return Invite{}, ErrResendsUsed
	case err != nil:
		return Invite{}, err
	case inv.Status == StatusSuppressed || h.cfg.Delivery == Queued:
		return inv, nil
	}
	if err := h.deliver(context.WithoutCancel(ctx), requestID, inv); err != nil {
		return inv, errors.New(scrub(err.Error(), inv.Email))
	}
	inv.Status = StatusSent
	return inv, nil
}

// RevokeInvite takes invite inviteID of user userID back: it is never
// sent afterwards, a queued one included, and no longer holds the
// cooldown. An accepted invite is ErrInviteAccepted; an unknown one, or
// another user's, ErrInviteNotFound. (The worker asks whether an invite is
// still due right before sending it, an answer serving for up to a tenth
// of a second: a message already going out then, or about to, still goes,
// and the invite stays revoked with its SentAt.)
func (h *Handler) RevokeInvite(ctx context.Context, appID, userID, inviteID string) error {
	app, user, err := h.ids(appID, userID)
	if err != nil {
		return err
	}
	if h.cfg.Referrers == nil {
		return ErrReferrersUnsupported
	}
	id, ok := CanonicalUUID(inviteID)
	if !ok {
		return ErrInviteNotFound
	}
	return h.cfg.Referrers.Revoke(ctx, app, user, id, h.cfg.Now().UTC())
}

// A cursor is the last invite of a page (its CreatedAt in Unix
// nanoseconds and its id) and a MAC of it with the app and user, in
// unpadded base64url: opaque, and refused when forged or another user's.
const cursorLen = 8 + 16 + 12

func (h *Handler) cursorMAC(app, user string, payload []byte) []byte {
	m := hmac.New(sha256.New, h.keys.cursor)
	m.Write([]byte(app))
	m.Write([]byte{0})
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)[:12]
}

func (h *Handler) cursor(app, user string, last Invite) string {
	u, err := uuid.Parse(last.ID)
	if err != nil {
		return "" // invite ids are UUIDs
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, cursorLen), uint64(last.CreatedAt.UnixNano()))
	b = append(b, u[:]...)
	return tokenEncoding.EncodeToString(append(b, h.cursorMAC(app, user, b)...))
}

func (h *Handler) parseCursor(app, user, s string) (InviteCursor, bool) {
	if s == "" {
		return InviteCursor{}, true
	}
	b, err := tokenEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen || !hmac.Equal(b[24:], h.cursorMAC(app, user, b[:24])) {
		return InviteCursor{}, false
	}
	u, err := uuid.FromBytes(b[8:24])
	if err != nil {
		return InviteCursor{}, false
	}
	return InviteCursor{CreatedAt: time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))).UTC(), ID: u.String()}, true
}

// The routes.

// ReferralCode returns the handler of GET ReferralCodePattern: the user's
// code, share link and counts (Handler.Referral). A read key may call it.
func (h *Handler) ReferralCode() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := h.newRequest(w, r, "referral code", "read this user's referrals")
		if !q.allow(http.MethodGet) {
			return
		}
		p, user, ok := q.referrer(false)
		if !ok {
			return
		}
		info, err := h.Referral(r.Context(), p.AppID, user)
		if err != nil {
			q.failWith(q.badInput(err))
			return
		}
		q.data(http.StatusOK, "Referral code.", info)
	})
}

// Invite returns the handler of InvitePattern: DELETE revokes the invite
// (Handler.RevokeInvite): 200, 409 if it was accepted, 404 if it is not
// the user's.
func (h *Handler) Invite() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := h.newRequest(w, r, "referral invite revoke", "change this user's invites")
		if !q.allow(http.MethodDelete) {
			return
		}
		p, user, ok := q.referrer(true)
		if !ok {
			return
		}
		err := h.RevokeInvite(r.Context(), p.AppID, user, h.cfg.PathValue(r, "inviteId"))
		if q.refused(err) {
			return
		}
		writeEnvelope(w, http.StatusOK, "Invite revoked.")
	})
}

// Resend returns the handler of POST ResendPattern (Handler.ResendInvite):
// 201 as the invite route, 409 if the invite is not in a state to resend
// or was resent the most times allowed, 429 with Retry-After within
// ResendAfter or a limit, 404 if it is not the user's.
func (h *Handler) Resend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := h.newRequest(w, r, "referral invite resend", "send invites for this user")
		if !q.allow(http.MethodPost) {
			return
		}
		p, user, ok := q.referrer(true)
		if !ok {
			return
		}
		_, err := h.resend(r.Context(), q.id, p.AppID, user, h.cfg.PathValue(r, "inviteId"))
		if q.refused(err) {
			return
		}
		writeEnvelope(w, http.StatusCreated, h.acceptedText())
	})
}

// list answers GET Pattern: a page of the user's invites.
func (q *request) list() {
	h, r := q.h, q.r
	p, user, ok := q.referrer(false)
	if !ok {
		return
	}
	query := r.URL.Query()
	limit := 0
	if vs, ok := query["limit"]; ok {
		n, err := strconv.Atoi(vs[0])
		if len(vs) != 1 || err != nil || n < 1 || n > MaxPageSize || vs[0] != strconv.Itoa(n) {
			q.fail(http.StatusBadRequest, "limit must be 1 to 100", nil)
			return
		}
		limit = n
	}
	if vs := query["cursor"]; len(vs) > 1 {
		q.fail(http.StatusBadRequest, "cursor is not one this server gave", nil)
		return
	}
	page, err := h.Invites(r.Context(), p.AppID, user, query.Get("cursor"), limit)
	if q.refused(err) {
		return
	}
	q.data(http.StatusOK, "Invites.", page)
}

// referrer reads the path's user and authenticates the caller for them;
// changes says whether the route changes something (read keys may not).
func (q *request) referrer(changes bool) (Principal, string, bool) {
	h := q.h
	user, ok := h.cfg.UserIDs.Canonical(h.cfg.PathValue(q.r, "userId"))
	if !ok {
		q.fail(http.StatusBadRequest, h.cfg.UserIDs.userText("userId"), nil)
		return Principal{}, "", false
	}
	p, ok := q.authenticate(h.cfg.Auth, user, changes)
	return p, user, ok
}

// refused answers err, if any, with its status and reports whether it did.
func (q *request) refused(err error) bool {
	var le *LimitError
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrInviteNotFound):
		q.fail(http.StatusNotFound, "invite not found", nil)
	case errors.Is(err, ErrNotResendable):
		q.fail(http.StatusConflict, "only a sent, failed or expired invite can be resent", nil)
	case errors.Is(err, ErrInviteAccepted):
		q.fail(http.StatusConflict, "this invite was accepted: it can be neither resent nor revoked", nil)
	case errors.Is(err, ErrResendsUsed):
		q.fail(http.StatusConflict, "this invite was already resent the most times allowed", nil)
	case errors.As(err, &le):
		q.w.Header().Set("Retry-After", retryAfter(le.RetryAfter))
		q.fail(http.StatusTooManyRequests, "too many sends to this invite or from this user; try again later", nil)
	case errors.Is(err, ErrInvalidInput):
		q.failWith(q.badInput(err))
	default:
		q.fail(http.StatusInternalServerError, errInternal, err)
	}
	return true
}

// data writes a success envelope with v as data.
func (q *request) data(status int, text string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		q.fail(http.StatusInternalServerError, errInternal, err)
		return
	}
	writeEnvelopeData(q.w, status, text, b)
}
