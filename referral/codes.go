package referral

import (
	"errors"
	"net"
	"net/http"
)

// Patterns of the referral-code routes, in net/http's pattern syntax.
// Mount their handlers without a method, like Pattern.
const (
	CodePattern       = "/v1/referral-codes/{code}"
	RedemptionPattern = "/v1/referral-codes/{code}/redemptions"
)

// CodeLookup returns the handler of GET /v1/referral-codes/{code}: 200
// with data {"valid": true} for a code that exists, 404 otherwise. It needs
// no credentials, so it tells nothing about the code's owner, and it is
// rate-limited per client address (Config.LookupsPerMinute) against
// enumeration.
func (h *Handler) CodeLookup() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.newRequest(w, r, "referral code lookup", "look up codes").lookup()
	})
}

// Redemptions returns the handler of POST
// /v1/referral-codes/{code}/redemptions, with body {"userId", "email"}: the
// new user signed up with the code (see Handler.Redeem). Callers are
// authenticated by a, asked about the new user's id; the standalone server
// passes its API-key authenticator. The code must belong to the caller's
// app. Answers: 201 recorded, 200 the same redemption again, 409 the user
// was already referred with another code, 400 a malformed body or a user
// redeeming their own code, 404 an unknown code.
func (h *Handler) Redemptions(a Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.newRequest(w, r, "referral redemption", "record redemptions").redeem(a)
	})
}

const errCodeNotFound = "referral code not found"

var validData = []byte(`{"valid":true}`)

func (q *request) lookup() {
	h := q.h
	if !q.allow(http.MethodGet) {
		return
	}
	if h.lookups != nil {
		if ok, wait := h.lookups.allow(h.cfg.ClientAddr(q.r), h.cfg.Now()); !ok {
			q.w.Header().Set("Retry-After", retryAfter(wait))
			q.fail(http.StatusTooManyRequests, "too many code lookups; try again later", nil)
			return
		}
	}
	_, err := h.Resolve(q.r.Context(), h.cfg.PathValue(q.r, "code"))
	switch {
	case errors.Is(err, ErrCodeNotFound):
		q.fail(http.StatusNotFound, errCodeNotFound, nil)
	case err != nil:
		q.fail(http.StatusInternalServerError, errInternal, err)
	default:
		writeEnvelopeData(q.w, http.StatusOK, "Referral code is valid.", validData)
	}
}

func (q *request) redeem(a Authenticator) {
	h, r := q.h, q.r
	if !q.allow(http.MethodPost) {
		return
	}
	// The credentials are checked before anything in the body is answered:
	// a caller without them learns nothing from this route. The
	// Authenticator is asked about the body's userId, or "" when the body
	// has no valid one.
	fields, bad := q.readJSON([2]string{"userId", "email"})
	user, _ := h.cfg.UserIDs.Canonical(fields[0])
	p, ok := q.authenticate(a, user, true)
	if !ok {
		return
	}
	if bad != nil {
		q.failWith(bad)
		return
	}
	_, created, err := h.redeem(r.Context(), &p.AppID, h.cfg.PathValue(r, "code"), fields[0], fields[1])
	switch {
	case errors.Is(err, ErrInvalidInput):
		q.failWith(q.badInput(err))
	case errors.Is(err, ErrCodeNotFound):
		q.fail(http.StatusNotFound, errCodeNotFound, nil)
	case errors.Is(err, ErrSelfReferral):
		q.fail(http.StatusBadRequest, "a user cannot redeem their own referral code", nil)
	case errors.Is(err, ErrAlreadyRedeemed):
		q.fail(http.StatusConflict, "this user was already referred with another code", nil)
	case err != nil:
		q.fail(http.StatusInternalServerError, errInternal, err)
	case created:
		writeEnvelope(q.w, http.StatusCreated, "Referral recorded.")
	default:
		writeEnvelope(q.w, http.StatusOK, "Referral already recorded.")
	}
}

// remoteHost is the default Config.ClientAddr: the connection's address,
// which a client cannot forge, without the port.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
