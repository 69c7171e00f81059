package referral

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	netmail "net/mail"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/referralkit/referralkit/mail"
)

// Fixed, safe texts for the error envelope.
const (
	msgSent           = "Invite sent."
	msgQueued         = "Invite accepted; the email will be sent shortly."
	errContentType    = "Content-Type must be application/json: send the header Content-Type: application/json with the JSON body"
	errTooLargeText   = "request body is larger than 16 KiB"
	errBadLanguage    = `language must be a BCP 47 tag such as "en" or "de-AT", or a country code such as "DE"`
	errBadIdemKey     = "Idempotency-Key must be 1 to 255 printable ASCII characters"
	errIdemMismatch   = "Idempotency-Key was already used for a different invite"
	errIdemInProgress = "a request with this Idempotency-Key is still being processed"
	errUnauth         = "missing or invalid credentials"
	errAmbiguous      = "send either an API key or an access token, not both"
	errLimit          = "too many invites from this user; try again later"
	errCooldown       = "this address was invited recently; try again later"
	errInternal       = "internal error; quote the X-Request-Id header when reporting it"
)

// ServeHTTP handles POST /v1/users/{userId}/referral-invites.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.newRequest(w, r, "referral invite", "send invites for this user").serve()
}

// newRequest starts a request of the route that does what: it takes a
// sane incoming X-Request-Id or makes one, and echoes it.
func (h *Handler) newRequest(w http.ResponseWriter, r *http.Request, what, action string) *request {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	w.Header()["X-Request-Id"] = []string{id}
	return &request{h: h, w: w, r: r, id: id, what: what, action: action}
}

// allow answers 405 with Allow unless the request's method is method.
func (q *request) allow(method string) bool {
	if q.r.Method == method {
		return true
	}
	q.w.Header().Set("Allow", method)
	q.fail(http.StatusMethodNotAllowed, "method not allowed; use "+method, nil)
	return false
}

// problem is an answer that a request cannot go on from: its status, the
// text the client sees and the cause the log gets.
type problem struct {
	status int
	text   string
	cause  error
}

// readJSON reads a JSON body with the two string fields named. When it
// cannot, it says why as a 415, 413 or 400 problem, for the caller to send
// once it knows that the client may learn it.
func (q *request) readJSON(names [2]string) ([2]string, *problem) {
	if !jsonContentType(q.r.Header.Get("Content-Type")) {
		return [2]string{}, &problem{http.StatusUnsupportedMediaType, errContentType, nil}
	}
	body, err := readBody(q.w, q.r)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return [2]string{}, &problem{http.StatusRequestEntityTooLarge, errTooLargeText, nil}
		}
		return [2]string{}, &problem{http.StatusBadRequest, "request body could not be read", err}
	}
	fields, err := parseFields(body, names)
	if err != nil {
		return [2]string{}, q.badInput(err)
	}
	return fields, nil
}

// badInput is the 400 of an input error, whose text is safe to show; any
// other error is a 500 whose text stays in the log.
func (q *request) badInput(err error) *problem {
	var in inputError
	if errors.As(err, &in) {
		return &problem{http.StatusBadRequest, in.Error(), nil}
	}
	return &problem{http.StatusInternalServerError, errInternal, err}
}

// request is one request in flight.
type request struct {
	h  *Handler
	w  http.ResponseWriter
	r  *http.Request
	id string
	// what the route does, for logs ("referral invite") and for the 403
	// ("may not send invites").
	what, action string
	// invite: the request is an invite, which Config.Metrics counts.
	invite bool
}

func (q *request) serve() {
	h, r := q.h, q.r
	if r.Method == http.MethodGet && h.cfg.Referrers != nil {
		q.what, q.action = "referral invite list", "read this user's referrals"
		q.list()
		return
	}
	q.invite = true
	if r.Method != http.MethodPost {
		allow := "POST"
		if h.cfg.Referrers != nil {
			allow = "GET, POST"
		}
		q.w.Header().Set("Allow", allow)
		q.fail(http.StatusMethodNotAllowed, "method not allowed; use "+allow, nil)
		return
	}
	userID, ok := h.cfg.UserIDs.Canonical(h.cfg.PathValue(r, "userId"))
	if !ok {
		q.fail(http.StatusBadRequest, h.cfg.UserIDs.userText("userId"), nil)
		return
	}
	p, ok := q.authenticate(h.cfg.Auth, userID, true)
	if !ok {
		return
	}
	idemKey := ""
	if h.limits.IdempotencyTTL > 0 {
		if vs := r.Header.Values("Idempotency-Key"); len(vs) > 0 {
			if idemKey = vs[0]; len(vs) > 1 || !validIdempotencyKey(idemKey) {
				q.fail(http.StatusBadRequest, errBadIdemKey, nil)
				return
			}
		}
	}
	fields, bad := q.readJSON([2]string{"email", "language"})
	if bad != nil {
		q.failWith(bad)
		return
	}
	email, emailKey, err := normalizeEmail(fields[0])
	if err != nil {
		q.failWith(q.badInput(err))
		return
	}
	lang, err := h.language(fields[1])
	if err != nil {
		q.fail(http.StatusBadRequest, errBadLanguage, nil)
		return
	}

	ctx := r.Context()
	code, err := h.cfg.Store.EnsureCode(ctx, p.AppID, userID, NewCode)
	if err != nil {
		q.fail(http.StatusInternalServerError, errInternal, err)
		return
	}
	now := h.cfg.Now().UTC()
	invID, err := uuid.NewV7()
	if err != nil {
		q.fail(http.StatusInternalServerError, errInternal, err)
		return
	}
	inv := Invite{
		ID:             invID.String(),
		AppID:          p.AppID,
		ReferrerID:     userID,
		Email:          email,
		EmailKey:       emailKey,
		Language:       lang,
		Code:           code,
		ReferrerName:   cleanName(p.Name),
		AddressHash:    h.addressHash(emailKey),
		IdempotencyKey: idemKey,
		Status:         StatusPending,
		NextAttemptAt:  now,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	if h.cfg.ReferrerName != nil {
		inv.ReferrerName = cleanName(h.cfg.ReferrerName(ctx, inv))
	}
	if h.cfg.Delivery == Inline {
		// Claimed by this request from the start: a queued worker sharing
		// the store leaves it alone unless this process dies mid-send.
		inv.Attempts = 1
		inv.LeaseUntil = now.Add(2 * h.cfg.SendTimeout)
	}
	stored, replayed, err := h.recordInvite(ctx, inv)
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) {
			q.w.Header().Set("Retry-After", retryAfter(le.RetryAfter))
			text := errLimit
			if le.Cooldown {
				text = errCooldown
			}
			q.fail(http.StatusTooManyRequests, text, nil)
			return
		}
		q.fail(http.StatusInternalServerError, errInternal, err)
		return
	}
	if replayed {
		q.replay(stored, inv)
		return
	}
	// stored is inv, or an earlier invite of the same Idempotency-Key that
	// failed and is ours to try again.
	inv = stored
	if inv.Status == StatusSuppressed {
		// Answered as any other invite: the referrer must not learn that
		// the address is suppressed (or had its share of invites).
		h.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "referral invite recorded suppressed, not sent",
			slog.String("request_id", q.id),
			slog.String("invite_id", inv.ID),
			slog.String("reason", inv.LastError))
		h.metrics.invite(resultSuppressed, 0)
		writeEnvelope(q.w, http.StatusCreated, h.acceptedText())
		return
	}
	if h.cfg.Logger.Enabled(ctx, slog.LevelInfo) {
		h.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "referral invite recorded",
			slog.String("request_id", q.id),
			slog.String("invite_id", inv.ID),
			slog.Int("attempt", inv.Attempts),
			slog.String("app_id", inv.AppID),
			slog.String("referrer_id", inv.ReferrerID),
			slog.Any("to", redactedEmail(inv.Email)),
			slog.String("auth", p.Method))
	}
	if h.cfg.Delivery == Queued {
		h.metrics.invite(resultQueued, 0)
		writeEnvelope(q.w, http.StatusCreated, msgQueued)
		return
	}
	// The send and its record must not be cut short by a client that hangs
	// up: the invite is already ours to finish.
	ctx = context.WithoutCancel(ctx)
	if err := h.deliver(ctx, q.id, inv); err != nil {
		q.fail(http.StatusInternalServerError, errInternal, errors.New(scrub(err.Error(), inv.Email)))
		return
	}
	h.metrics.invite(resultSent, 0)
	writeEnvelope(q.w, http.StatusCreated, msgSent)
}

// acceptedText is the message of a 201: the invite was sent (inline) or
// queued.
func (h *Handler) acceptedText() string {
	if h.cfg.Delivery == Queued {
		return msgQueued
	}
	return msgSent
}

// recordInvite stores inv with RecordInvite, within Config.MaxBacklog: a
// slot it took is given back unless the invite was queued, whatever
// happens, a panic of the store's included.
func (h *Handler) recordInvite(ctx context.Context, inv Invite) (stored Invite, replayed bool, err error) {
	if h.backlog.enter(ctx) {
		defer func() {
			if err != nil || replayed || stored.Status != StatusPending {
				h.backlog.leave(1)
			}
		}()
	}
	return h.cfg.Store.RecordInvite(ctx, inv, h.limits)
}

// replay answers a repeated Idempotency-Key with the first response. A
// failed or stranded inline attempt never gets here: the store hands it
// back to be tried again (see CodeStore.RecordInvite).
func (q *request) replay(first, req Invite) {
	switch {
	case first.EmailKey != req.EmailKey || first.Language != req.Language:
		q.fail(http.StatusBadRequest, errIdemMismatch, nil)
	case q.h.cfg.Delivery == Queued || first.Status == StatusSent || first.Status == StatusSuppressed:
		result := resultSent
		switch {
		case first.Status == StatusSuppressed:
			result = resultSuppressed
		case q.h.cfg.Delivery == Queued:
			result = resultQueued
		}
		q.h.metrics.invite(result, 0)
		writeEnvelope(q.w, http.StatusCreated, q.h.acceptedText())
	default:
		q.fail(http.StatusConflict, errIdemInProgress, nil)
	}
}

// deliver sends inv (whose attempt this process holds) with the send
// timeout and records the outcome. It returns the send error, if any: once
// the mail is out, a record that keeps failing until the lease ends is
// logged, not returned, as the invite was delivered.
func (h *Handler) deliver(ctx context.Context, requestID string, inv Invite) error {
	sendErr := h.send(ctx, inv)
	d := Delivery{Attempt: inv.Attempts, Status: StatusSent, At: h.cfg.Now().UTC()}
	if sendErr != nil {
		d.Status, d.LastError = StatusFailed, sendErr.Error()
	}
	h.metrics.delivery(string(d.Status))
	err := h.updateWithinLease(ctx, inv, d)
	// After the record: suppressing marks the address's pending invites,
	// which would take this one's outcome.
	h.bounced(ctx, inv, sendErr)
	switch {
	case err == nil:
		h.outcome(ctx, inv, d)
		return sendErr
	case sendErr != nil:
		return errors.Join(sendErr, err)
	}
	h.cfg.Logger.LogAttrs(ctx, slog.LevelError, "referral invite sent but its delivery was not recorded; it may be sent again",
		slog.String("request_id", requestID),
		slog.String("invite_id", inv.ID),
		slog.String("cause", err.Error()))
	return nil
}

// updateWithinLease records d on the claimed inv, trying again while the
// lease holds: a record dropped before then would have the invite sent
// again, and a record after it could lose to a newer attempt anyway.
func (h *Handler) updateWithinLease(ctx context.Context, inv Invite, d Delivery) error {
	// The record must outlive a cancelled ctx: the attempt was made.
	ctx = context.WithoutCancel(ctx)
	// On the wall clock: Config.Now may be a clock that stands still.
	end := time.Now().Add(inv.LeaseUntil.Sub(h.cfg.Now()))
	wait := 10 * time.Millisecond
	for {
		left := time.Until(end)
		uctx, cancel := context.WithTimeout(ctx, max(left, h.cfg.SendTimeout))
		err := h.cfg.Store.UpdateDelivery(uctx, inv.ID, d)
		cancel()
		if err == nil || left <= wait {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// send renders inv and hands it to the mailer within the send timeout.
func (h *Handler) send(ctx context.Context, inv Invite) error {
	m, err := h.message(inv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	err = h.cfg.Mailer.Send(ctx, m)
	h.metrics.sendTook(time.Since(start))
	return err
}

// message renders the email for inv.
func (h *Handler) message(inv Invite) (mail.Message, error) {
	unsubscribe := h.unsubscribeLink(inv.ID)
	c, err := h.renderer.Render(inv.Language, mail.Data{
		Code:            inv.Code,
		ReferrerName:    inv.ReferrerName,
		ProductName:     h.cfg.ProductName,
		UnsubscribeLink: unsubscribe,
	})
	if err != nil {
		return mail.Message{}, err
	}
	id := inv.ID
	if inv.Resends > 0 {
		id = fmt.Sprintf("%s.r%d", inv.ID, inv.Resends) // a new Message-ID
	}
	return mail.Message{
		ID:             id,
		UnsubscribeURL: unsubscribe,
		From:           h.from(inv.ReferrerName),
		To:             inv.Email,
		Date:           h.cfg.Now(),
		Subject:        c.Subject,
		Text:           c.Text,
		HTML:           c.HTML,
		Language:       c.Language,
	}, nil
}

// from is the From header of an email of referrer name: Config.From, or
// with FromReferrer "name via product" and From's address.
func (h *Handler) from(name string) string {
	if !h.cfg.FromReferrer || name == "" {
		return h.cfg.From
	}
	// String quotes or RFC 2047-encodes the name as it needs: header-safe.
	return (&netmail.Address{Name: name + " via " + h.cfg.ProductName, Address: h.fromAddr}).String()
}

// authenticate asks a who is calling on behalf of userID, answering the
// request itself when the answer is no. A Principal of another user is
// refused whatever a said: an Authenticator that forgot to compare the
// user must not let one user act for another. An app id that breaks
// Config.UserIDs is the Authenticator's bug: a 500. A ReadOnly Principal
// is refused (403) where the route changes something.
func (q *request) authenticate(a Authenticator, userID string, changes bool) (Principal, bool) {
	p, err := a.Authenticate(q.r, userID)
	if err == nil && changes && p.ReadOnly {
		err = fmt.Errorf("referral: read-only credentials: %w", ErrForbidden)
	}
	if c, ok := q.h.cfg.UserIDs.Canonical(p.UserID); ok {
		p.UserID = c // an upper-case UUID is the same user
	}
	if err == nil && p.UserID != "" && p.UserID != userID {
		err = fmt.Errorf("referral: the credentials are for user %q: %w", p.UserID, ErrForbidden)
	}
	if err == nil {
		err = q.h.cfg.UserIDs.checkApp(p.AppID)
	}
	if err != nil {
		q.authFailed(err)
		return Principal{}, false
	}
	return p, true
}

func (q *request) authFailed(err error) {
	var ch interface{ Challenge() string }
	if errors.As(err, &ch) {
		q.w.Header().Set("WWW-Authenticate", ch.Challenge())
	}
	switch {
	case errors.Is(err, ErrAmbiguousCredentials):
		q.fail(http.StatusBadRequest, errAmbiguous, err)
	case errors.Is(err, ErrUnauthenticated):
		q.fail(http.StatusUnauthorized, errUnauth, err)
	case errors.Is(err, ErrForbidden):
		q.fail(http.StatusForbidden, "these credentials may not "+q.action, err)
	default:
		q.fail(http.StatusInternalServerError, errInternal, err)
	}
}

// fail writes an error envelope and logs the cause: 5xx at error level,
// the rest at debug level, as they are the client's to fix.
func (q *request) fail(status int, text string, cause error) {
	if q.invite {
		q.h.metrics.invite("", status)
	}
	q.logFailure(status, text, cause)
	writeEnvelope(q.w, status, text)
}

// logFailure logs a failed request: 5xx at error level, the rest at debug
// level.
func (q *request) logFailure(status int, text string, cause error) {
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	if !q.h.cfg.Logger.Enabled(q.r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", q.id),
		slog.Int("status", status),
		slog.String("error", text),
	}
	if cause != nil {
		attrs = append(attrs, slog.String("cause", cause.Error()))
	}
	outcome := " refused"
	if status >= 500 {
		outcome = " failed"
	}
	q.h.cfg.Logger.LogAttrs(q.r.Context(), level, q.what+outcome, attrs...)
}

// failWith sends p.
func (q *request) failWith(p *problem) { q.fail(p.status, p.text, p.cause) }

// language resolves a request's language field to a template language.
func (h *Handler) language(s string) (string, error) {
	tag, err := mail.ParseLanguage(s)
	if err != nil {
		return "", err
	}
	return h.cfg.Templates.Match(tag), nil
}

// retryAfter renders d as whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}
