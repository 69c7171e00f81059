package referral_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

const unsubscribeBase = "https://acme.example/v1/unsubscribe/"

var tokenInLink = regexp.MustCompile(regexp.QuoteMeta(unsubscribeBase) + `([A-Za-z0-9_-]+)`)

// unsubscribeToken returns the token of the last email f sent, checking
// that the headers and both bodies carry the same link.
func unsubscribeToken(t *testing.T, f *fixture) string {
	t.Helper()
	msgs := f.mailer.Messages()
	require.NotEmpty(t, msgs)
	m := msgs[len(msgs)-1]
	match := tokenInLink.FindStringSubmatch(m.UnsubscribeURL)
	require.NotNil(t, match, "UnsubscribeURL %q", m.UnsubscribeURL)
	assert.Contains(t, m.Text, m.UnsubscribeURL)
	assert.Contains(t, m.HTML, m.UnsubscribeURL)
	assert.Len(t, match[1], 43, "32 bytes in unpadded base64url")
	local, _, _ := strings.Cut(m.To, "@")
	assert.NotContains(t, strings.ToLower(match[1]), strings.ToLower(local), "the token shows no address")
	return match[1]
}

func (f *fixture) unsubscribe(method, token, body string, headers ...string) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	mux.Handle(referral.UnsubscribePattern, f.h.Unsubscribe())
	r := httptest.NewRequest(method, "/v1/unsubscribe/"+token, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

const oneClick = "List-Unsubscribe=One-Click" // RFC 8058's body

func TestUnsubscribeOneClick(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("Bob@example.com", "de")), 201)
	token := unsubscribeToken(t, f)

	// A GET, as a mail scanner makes, shows the page and changes nothing.
	page := f.unsubscribe(http.MethodGet, token, "")
	require.Equal(t, 200, page.Code)
	assert.Equal(t, "text/html; charset=utf-8", page.Header().Get("Content-Type"))
	assert.Equal(t, "no-referrer", page.Header().Get("Referrer-Policy"))
	assert.Contains(t, page.Header().Get("Content-Security-Policy"), "default-src 'none'")
	assert.Contains(t, page.Body.String(), `lang="de"`)
	assert.Contains(t, page.Body.String(), `<form method="post">`)
	assert.Contains(t, page.Body.String(), `name="List-Unsubscribe" value="One-Click"`)
	_, found, err := f.h.Suppressed(context.Background(), appID, "bob@example.com")
	require.NoError(t, err)
	assert.False(t, found, "a GET never unsubscribes")
	f.Advance(8 * 24 * time.Hour)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	require.Len(t, f.mailer.Messages(), 2)

	// The mail client's one-click POST.
	done := f.unsubscribe(http.MethodPost, token, oneClick)
	require.Equal(t, 200, done.Code, done.Body.String())
	assert.Contains(t, done.Body.String(), "Acme")
	s, found, err := f.h.Suppressed(context.Background(), appID, "BOB@example.com")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, referral.ReasonUnsubscribed, s.Reason)
	assert.Equal(t, 200, f.unsubscribe(http.MethodPost, token, oneClick).Code, "idempotent")

	// Later invites are answered as any other, recorded suppressed, and
	// never sent.
	f.Advance(8 * 24 * time.Hour)
	before := f.post(invite("carol@example.com", "en"))
	after := f.post(invite("bob@example.com", "en"))
	checkEnvelope(t, after, 201)
	assert.Equal(t, before.Body.String(), after.Body.String(), "the referrer learns nothing")
	assert.Len(t, f.mailer.Messages(), 3, "carol's only")
	invs := f.store.Invites()
	last := invs[len(invs)-1]
	assert.Equal(t, referral.StatusSuppressed, last.Status)
	assert.Equal(t, referral.ReasonUnsubscribed, last.LastError)

	// Another app's invites to the address go out.
	other := newFixture(t, func(c *referral.Config) {
		c.Store, c.Recipients = f.store, f.store
		c.Auth = referral.AuthenticatorFunc(func(r *http.Request, user string) (referral.Principal, error) {
			return referral.Principal{AppID: "1c1d1e1f-2a2b-4c3d-8e4f-5a6b7c8d9e0f"}, nil
		})
	})
	checkEnvelope(t, other.post(invite("bob@example.com", "en")), 201)
	assert.Len(t, other.mailer.Messages(), 1)
}

func TestUnsubscribeRefusesBadTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	token := unsubscribeToken(t, f)
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	// A token of an invite that is not in this store.
	stranger := newFixture(t)
	checkEnvelope(t, stranger.post(invite("stranger.danger@example.com", "en")), 201)
	for _, bad := range []string{
		"", "x", token[:42], token + "A", token + token, strings.Repeat("A", 43),
		flip(token, 0), flip(token, 20), flip(token, 42), strings.ToUpper(token),
		url.PathEscape(token + "="), unsubscribeToken(t, stranger),
		strings.Repeat("A", 5000),
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			rec := f.unsubscribe(method, bad, oneClick)
			assert.Equal(t, 404, rec.Code, "%s %q", method, bad)
		}
	}
	assert.Equal(t, 400, f.unsubscribe(http.MethodPost, token, "").Code, "RFC 8058 asks for the form body")
	assert.Equal(t, 400, f.unsubscribe(http.MethodPost, token, "List-Unsubscribe=Yes").Code)
	rec := f.unsubscribe(http.MethodDelete, token, "")
	assert.Equal(t, 405, rec.Code)
	assert.Equal(t, "GET, HEAD, POST", rec.Header().Get("Allow"))
	_, found, err := f.h.Suppressed(context.Background(), appID, "bob@example.com")
	require.NoError(t, err)
	assert.False(t, found, "nothing changed")
}

func TestUnsubscribeJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	token := unsubscribeToken(t, f)
	checkEnvelope(t, f.unsubscribe(http.MethodGet, token, "", "Accept", "application/json"), 200)
	env := checkEnvelope(t, f.unsubscribe(http.MethodPost, token, oneClick, "Accept", "application/json"), 200)
	assert.Equal(t, "Unsubscribed.", *env.Message)
	env = checkEnvelope(t, f.unsubscribe(http.MethodGet, "nope", "", "Accept", "application/json"), 404)
	assert.Equal(t, "unsubscribe link not found", *env.Error)
}

// Two handlers on one store (two instances of an app) share the store's
// secret: a link one sent works on the other, and suppression holds on
// both.
func TestUnsubscribeAcrossInstances(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	g := newFixture(t, func(c *referral.Config) { c.Store, c.Recipients = f.store, f.store })
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	require.Equal(t, 200, g.unsubscribe(http.MethodPost, unsubscribeToken(t, f), oneClick).Code)
	f.Advance(8 * 24 * time.Hour)
	g.Advance(8 * 24 * time.Hour)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	assert.Len(t, f.mailer.Messages(), 1)

	// A handler with its own secret does not accept the store's links.
	h := newFixture(t, func(c *referral.Config) {
		c.Store, c.Recipients, c.Secret = f.store, f.store, []byte(strings.Repeat("k", 32))
	})
	assert.Equal(t, 404, h.unsubscribe(http.MethodGet, unsubscribeToken(t, f), "").Code)
}

func TestRecipientLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.Auth = referral.AuthenticatorFunc(func(r *http.Request, user string) (referral.Principal, error) {
			return referral.Principal{AppID: appID, UserID: user}, nil
		})
	})
	send := func(referrer int) *httptest.ResponseRecorder {
		user := fmt.Sprintf("00000000-0000-4000-8000-%012d", referrer)
		return f.serve(newRequest(http.MethodPost, "/v1/users/"+user+"/referral-invites", invite("popular@example.com", "en")))
	}
	for i := range 3 {
		checkEnvelope(t, send(i), 201)
	}
	fourth := send(3)
	checkEnvelope(t, fourth, 201)
	assert.Equal(t, send(4).Body.String(), fourth.Body.String())
	assert.Len(t, f.mailer.Messages(), 3, "three from three referrers, then no more")
	invs := f.store.Invites()
	assert.Equal(t, referral.StatusSuppressed, invs[3].Status)
	assert.Equal(t, referral.ReasonRecipientLimit, invs[3].LastError)

	f.Advance(30 * 24 * time.Hour)
	checkEnvelope(t, send(5), 201)
	assert.Len(t, f.mailer.Messages(), 4, "the window has passed")
}

func TestBounceSuppresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		suppress bool
	}{
		{"recipient refused", fmt.Errorf("550 no such user (%w, %w)", mail.ErrRecipientRefused, mail.ErrPermanent), true},
		{"sender refused", fmt.Errorf("550 relay denied (%w)", mail.ErrPermanent), false},
		{"transient", errors.New("421 try later"), false},
	}
	for _, tc := range tests {
		for _, mode := range []referral.DeliveryMode{referral.Inline, referral.Queued} {
			f := newFixture(t, func(c *referral.Config) { c.Delivery = mode })
			f.mailer.Fail(tc.err)
			f.post(invite("gone@example.com", "en"))
			if mode == referral.Queued {
				_, err := f.h.DeliverDue(context.Background())
				require.NoError(t, err)
			}
			s, found, err := f.h.Suppressed(context.Background(), appID, "gone@example.com")
			require.NoError(t, err)
			assert.Equal(t, tc.suppress, found, "%s, mode %d", tc.name, mode)
			if found {
				assert.Equal(t, referral.ReasonBounced, s.Reason)
			}
		}
	}
}

func TestHostSuppression(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Delivery = referral.Queued })
	ctx := context.Background()
	checkEnvelope(t, f.post(invite("pending@example.com", "en")), 201)
	require.NoError(t, f.h.Suppress(ctx, appID, "Pending@Example.com"))
	require.NoError(t, f.h.Suppress(ctx, appID, "later@example.com"))
	n, err := f.h.DeliverDue(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a pending invite of a suppressed address is not sent")
	checkEnvelope(t, f.post(invite("later@example.com", "en")), 201)
	_, err = f.h.DeliverDue(ctx)
	require.NoError(t, err)
	assert.Empty(t, f.mailer.Messages())
	s, found, err := f.h.Suppressed(ctx, appID, "later@example.com")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, referral.ReasonHost, s.Reason)

	require.NoError(t, f.h.Unsuppress(ctx, appID, "later@example.com"))
	_, found, err = f.h.Suppressed(ctx, appID, "later@example.com")
	require.NoError(t, err)
	assert.False(t, found)
	f.Advance(8 * 24 * time.Hour)
	checkEnvelope(t, f.post(invite("later@example.com", "en")), 201)
	_, err = f.h.DeliverDue(ctx)
	require.NoError(t, err)
	assert.Len(t, f.mailer.Messages(), 1)

	assert.ErrorIs(t, f.h.Suppress(ctx, appID, "not an address"), referral.ErrInvalidInput)
	assert.ErrorIs(t, f.h.Suppress(ctx, "bad app", "a@example.com"), referral.ErrInvalidInput)
}

func TestRetentionErasesAddresses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	checkEnvelope(t, f.post(invite("ignored@example.com", "en")), 201)
	checkEnvelope(t, f.post(invite("friend@example.com", "en")), 201)
	_, err := f.h.Redeem(ctx, f.store.Invites()[1].Code, newUser, "friend@example.com")
	require.NoError(t, err)

	n, err := f.h.EraseExpiredAddresses(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is 180 days old")
	f.Advance(180*24*time.Hour + time.Second)
	n, err = f.h.EraseExpiredAddresses(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	invs := f.store.Invites()
	assert.Empty(t, invs[0].Email)
	assert.Empty(t, invs[0].EmailKey)
	assert.NotEmpty(t, invs[0].AddressHash, "the hash stays")
	assert.Equal(t, "friend@example.com", invs[1].Email, "an accepted invite keeps its address")

	// The hash still holds suppression.
	require.NoError(t, f.h.Suppress(ctx, appID, "ignored@example.com"))
	checkEnvelope(t, f.post(invite("ignored@example.com", "en")), 201)
	assert.Len(t, f.mailer.Messages(), 2)
}

func TestRecipientConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(*referral.Config)
		err  string
	}{
		{"short secret", func(c *referral.Config) { c.Secret = []byte("short") }, "Config.Secret must be at least 32 bytes"},
		{"no token", func(c *referral.Config) { c.UnsubscribeURL = "https://acme.example/unsubscribe" }, "Config.UnsubscribeURL"},
		{"no url", func(c *referral.Config) { c.UnsubscribeURL = "" }, "Config.UnsubscribeURL is required"},
		{"relative", func(c *referral.Config) { c.UnsubscribeURL = "/u/{token}" }, "Config.UnsubscribeURL"},
		{"window", func(c *referral.Config) { c.RecipientWindow = -1 }, "Config.RecipientWindow"},
	} {
		cfg := referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: memory.New(), Mailer: nil,
			From: "a@example.com", SignupURL: "https://example.com/?r={code}", UnsubscribeURL: unsubscribeBase + "{token}"}
		cfg.Recipients = cfg.Store.(*memory.Store)
		cfg.Mailer = &discardMailer{}
		tc.set(&cfg)
		_, err := referral.New(cfg)
		assert.ErrorContains(t, err, tc.err, tc.name)
	}
}

// Every bundled language shows the unsubscribe link in both bodies, the
// same link as the List-Unsubscribe header.
func TestEveryLanguageCarriesUnsubscribe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tmpl, err := mail.NewTemplates(nil)
	require.NoError(t, err)
	for _, lang := range tmpl.Languages() {
		m, err := f.h.Message(referral.Invite{ID: "01890000-0000-7000-8000-000000000001", AppID: appID, Email: "a@example.com", Language: lang, Code: "ABCDEFGHJK"})
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(m.UnsubscribeURL, unsubscribeBase), lang)
		assert.Contains(t, m.Text, m.UnsubscribeURL, lang)
		assert.Contains(t, m.HTML, m.UnsubscribeURL, lang)
	}
}

// An invite recorded before address hashes existed (AddressHash "") is
// still unsubscribed by its link: the hash is made from its EmailKey.
func TestUnsubscribeInviteWithoutHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Delivery = referral.Queued })
	now := f.Now().UTC()
	old := referral.Invite{ID: "01890000-0000-7000-8000-0000000000aa", AppID: appID, ReferrerID: userID,
		Email: "legacy@example.com", EmailKey: "legacy@example.com", Language: "en", Code: "ABCDEFGHJK",
		Status: referral.StatusPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
	_, _, err := f.store.RecordInvite(context.Background(), old, referral.Limits{})
	require.NoError(t, err)
	_, err = f.h.DeliverDue(context.Background())
	require.NoError(t, err)
	token := unsubscribeToken(t, f)
	require.Equal(t, 200, f.unsubscribe(http.MethodPost, token, oneClick).Code)
	s, found, err := f.h.Suppressed(context.Background(), appID, "legacy@example.com")
	require.NoError(t, err)
	require.True(t, found, "suppressed by the hash of its address")
	assert.Equal(t, referral.ReasonUnsubscribed, s.Reason)
}
