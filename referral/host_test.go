package referral_test

import (
	"context"
	"errors"
	"net/http"
	netmail "net/mail"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// opaqueAuth lets every request act for the path's user of the app the
// X-Test-App header names ("" when absent: a host with one app).
func opaqueAuth(r *http.Request, user string) (referral.Principal, error) {
	return referral.Principal{AppID: r.Header.Get("X-Test-App"), UserID: user, Name: r.Header.Get("X-Test-Name")}, nil
}

func invitePath(user string) string { return "/v1/users/" + user + "/referral-invites" }

func TestUserIDRules(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 128)
	tests := []struct {
		user   string
		uuid   int // status under the default rule
		opaque int // status under OpaqueIDs
	}{
		{userID, 201, 201},
		{strings.ToUpper(userID), 201, 201}, // opaque: another user than userID
		{"42", 400, 201},
		{"user:7", 400, 201},
		{"alice.smith@corp", 400, 201},
		{"A_b-c.d", 400, 201},
		{long, 400, 201},
		{long + "a", 400, 400},
		{"a%20b", 400, 400},
		{"a%2Fb", 400, 400},
		{"%C3%BC", 400, 400},
		{"a+b", 400, 400},
	}
	for _, tc := range tests {
		for _, rule := range []referral.IDs{referral.UUIDs, referral.OpaqueIDs} {
			want := tc.uuid
			if rule == referral.OpaqueIDs {
				want = tc.opaque
			}
			f := newFixture(t, func(c *referral.Config) { c.UserIDs = rule; c.Auth = referral.AuthenticatorFunc(opaqueAuth) })
			env := checkEnvelope(t, f.serve(newRequest(http.MethodPost, invitePath(tc.user), invite("new@example.com", "en"))), want)
			if want == 400 {
				assert.Contains(t, *env.Error, "userId", tc.user)
			}
		}
	}
}

// With opaque ids, what the invite route writes, Stats, Code, Redeem and
// the redemption route read back under the same id: one rule everywhere.
func TestOpaqueIDsEverywhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.UserIDs = referral.OpaqueIDs
		c.Auth = referral.AuthenticatorFunc(opaqueAuth)
	})
	ctx := context.Background()
	checkEnvelope(t, f.serve(newRequest(http.MethodPost, invitePath("42"), invite("friend@example.com", "en"))), 201)
	code, err := f.h.Code(ctx, "", "42")
	require.NoError(t, err)
	assert.Equal(t, f.store.Invites()[0].Code, code, "the code the email carried")
	owner, err := f.h.Resolve(ctx, code)
	require.NoError(t, err)
	assert.Equal(t, referral.Owner{AppID: "", UserID: "42"}, owner)

	_, err = f.h.Redeem(ctx, code, "43", "friend@example.com")
	require.NoError(t, err)
	st, err := f.h.Stats(ctx, "", "42")
	require.NoError(t, err)
	assert.Equal(t, referral.Stats{Invited: 1, Sent: 1, Accepted: 1, Redeemed: 1}, st)

	_, err = f.h.Redeem(ctx, code, "4 3", "x@example.com")
	assert.ErrorIs(t, err, referral.ErrInvalidInput)
	_, err = f.h.Stats(ctx, "", "a/b")
	assert.ErrorIs(t, err, referral.ErrInvalidInput)
	_, err = f.h.Code(ctx, "", "")
	assert.ErrorIs(t, err, referral.ErrInvalidInput)

	// The default rule refuses what opaque ids accept.
	u := newFixture(t)
	_, err = u.h.Stats(ctx, appID, "42")
	assert.ErrorIs(t, err, referral.ErrInvalidInput)
	_, err = u.h.Code(ctx, "app", userID)
	assert.ErrorIs(t, err, referral.ErrInvalidInput)
}

// An app id is checked once, right after Authenticate: one that breaks
// the rule is the Authenticator's bug, a 500 that stores nothing.
func TestAppIDFromAuthenticatorIsChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		app    string
		status int
	}{
		{"", 201}, // a host with one app
		{appID, 201},
		{strings.ToUpper(appID), 500}, // not canonical
		{"acme", 500},
	} {
		f := newFixture(t, func(c *referral.Config) { c.Auth = referral.AuthenticatorFunc(opaqueAuth) })
		checkEnvelope(t, f.serve(newRequest(http.MethodPost, path, invite("new@example.com", "en"), "X-Test-App", tc.app)), tc.status)
		if tc.status == 500 {
			assert.Empty(t, f.store.Invites(), tc.app)
			assert.Contains(t, f.logs.String(), "is not empty nor a canonical id", tc.app)
		}
	}
}

func TestReferrerNameInTheEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		principal    string                            // Principal.Name
		hook         func(referral.Invite) string      // Config.ReferrerName
		fromReferrer bool                              // Config.FromReferrer
		stored       string                            // Invite.ReferrerName
		from         string                            // the From header
		subject      string                            // a substring of the subject
		check        func(*testing.T, referral.Invite) // more, if any
	}{
		{name: "unknown", stored: "", from: "Acme <no-reply@acme.example>", subject: "Acme"},
		{name: "from the credentials", principal: "Alice Liddell", stored: "Alice Liddell", from: "Acme <no-reply@acme.example>", subject: "Alice Liddell"},
		{name: "from the hook", principal: "alice", hook: func(inv referral.Invite) string {
			if inv.ReferrerName != "alice" || inv.ReferrerID != userID {
				return "wrong invite"
			}
			return "Alice L."
		}, stored: "Alice L.", from: "Acme <no-reply@acme.example>", subject: "Alice L."},
		{name: "hook says unknown", principal: "alice", hook: func(referral.Invite) string { return "" }, stored: "", from: "Acme <no-reply@acme.example>"},
		{name: "via", principal: "Alice", fromReferrer: true, stored: "Alice", from: `Alice via Acme <no-reply@acme.example>`},
		{name: "via, not ascii", principal: "Jörg \"the\" Müller", fromReferrer: true, stored: `Jörg "the" Müller`, from: `Jörg "the" Müller via Acme <no-reply@acme.example>`},
		{name: "via, unknown", fromReferrer: true, from: "Acme <no-reply@acme.example>"},
		{name: "one line", principal: "Alice\r\nBcc: victim@example.com", stored: "", from: "Acme <no-reply@acme.example>"},
		{name: "line breaks folded", principal: "Alice\r\n  Liddell\u202e\t", stored: "Alice Liddell", from: "Acme <no-reply@acme.example>"},
		{name: "looks like a link", principal: "https://evil.example", stored: ""},
		{name: "too long", principal: strings.Repeat("é", 80), stored: strings.Repeat("é", 50)},
		// Lookalikes of addresses and links, which mail readers would show
		// or link as such.
		{name: "encoded word", principal: "=?utf-8?q?security=40acme.example?=", stored: "", subject: "You're invited"},
		{name: "fullwidth at", principal: "support\uff20paypal.com", stored: ""},
		{name: "small at", principal: "support\ufe6bpaypal", stored: ""},
		{name: "domain", principal: "paypal.com", stored: ""},
		{name: "www link", principal: "www.evil.example/login", stored: ""},
		{name: "scheme", principal: "mailto:bob", stored: ""},
		{name: "angle lookalikes", principal: "Security \u2039sec\uff20acme\u203a", stored: ""},
		{name: "bidi control dropped", principal: "Ali\u202ece", stored: "Alice"},
		{name: "joiner kept", principal: "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", stored: "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"},
		{name: "initials", principal: "J. R. R. Tolkien", stored: "J. R. R. Tolkien"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *referral.Config) {
				c.Auth = referral.AuthenticatorFunc(func(r *http.Request, user string) (referral.Principal, error) {
					return referral.Principal{AppID: appID, UserID: user, Name: tc.principal}, nil
				})
				if tc.hook != nil {
					c.ReferrerName = func(_ context.Context, inv referral.Invite) string { return tc.hook(inv) }
				}
				c.FromReferrer = tc.fromReferrer
			})
			checkEnvelope(t, f.post(invite("new@example.com", "en")), 201)
			inv := f.store.Invites()[0]
			assert.Equal(t, tc.stored, inv.ReferrerName)
			m := f.mailer.Messages()[0]
			if tc.from != "" {
				// Compared decoded: a non-ASCII name is RFC 2047-encoded.
				got, err := netmail.ParseAddress(m.From)
				require.NoError(t, err, m.From)
				assert.Equal(t, tc.from, decodedAddress(got))
				assert.NotContains(t, m.From, "\n")
			}
			assert.Contains(t, m.Subject, tc.subject)
			if tc.stored != "" {
				assert.Contains(t, m.Text, tc.stored)
			}
		})
	}
}

func decodedAddress(a *netmail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.Name + " <" + a.Address + ">"
}

func TestProductName(t *testing.T) {
	t.Parallel()
	store := memory.New()
	base := referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: store, Mailer: &mailtest.Recorder{},
		SignupURL: "https://app.acme.example/signup?ref={code}", Recipients: store, UnsubscribeURL: unsubscribeBase + "{token}"}
	for _, tc := range []struct {
		from, product, want, err string
	}{
		{from: "Acme <no-reply@acme.example>", want: "Acme"},
		{from: "no-reply@acme.example", want: "app.acme.example"},
		{from: "Acme <no-reply@acme.example>", product: "Acme Cloud", want: "Acme Cloud"},
		{from: "Acme <no-reply@acme.example>", product: "Acme\nBcc: x", err: "Config.ProductName"},
		{from: "Acme <no-reply@acme.example>", product: "support@acme.example", err: "Config.ProductName"},
	} {
		cfg := base
		cfg.From, cfg.ProductName = tc.from, tc.product
		h, err := referral.New(cfg)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		m, err := h.Message(referral.Invite{ID: "01890000-0000-7000-8000-000000000000", Email: "a@example.com", Language: "en", Code: "ABCDEFGHJK"})
		require.NoError(t, err)
		assert.Contains(t, m.Subject, tc.want)
		assert.Contains(t, m.Text, tc.want)
	}
}

// Code and ShareLink give a user's code and link without sending
// anything, and they are the ones the invite emails carry.
func TestCodeAndShareLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	code, err := f.h.Code(ctx, appID, strings.ToUpper(userID))
	require.NoError(t, err)
	link, err := f.h.ShareLink(ctx, appID, userID)
	require.NoError(t, err)
	assert.Equal(t, "https://acme.example/signup?ref="+code, link)
	assert.Empty(t, f.mailer.Messages(), "nothing sent")
	assert.Empty(t, f.store.Invites(), "nothing recorded")

	checkEnvelope(t, f.post(invite("new@example.com", "en")), 201)
	assert.Equal(t, code, f.store.Invites()[0].Code)
	assert.Contains(t, f.mailer.Messages()[0].Text, link)
	again, err := f.h.Code(ctx, appID, userID)
	require.NoError(t, err)
	assert.Equal(t, code, again)
}

// New renders every language as the handler will, so a template that
// only fails with this host's data is an error from New naming its file.
func TestNewRendersEveryLanguage(t *testing.T) {
	t.Parallel()
	tmpl, err := mail.NewTemplates(fstest.MapFS{
		"nl.txt":  {Data: []byte(`{{define "subject"}}Uitnodiging{{end}}{{define "text"}}{{if eq .ProductName "Teamboard"}}{{index .Code 99}}{{end}}{{.Link}}{{end}}`)},
		"nl.html": {Data: []byte(`<p>{{.Link}}</p>`)},
	})
	require.NoError(t, err, "the samples do not hit the bug")
	store := memory.New()
	cfg := referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: store, Mailer: &mailtest.Recorder{},
		From: "Teamboard <no-reply@teamboard.example>", SignupURL: "https://teamboard.example/signup?ref={code}", Templates: tmpl,
		Recipients: store, UnsubscribeURL: unsubscribeBase + "{token}"}
	_, err = referral.New(cfg)
	assert.ErrorContains(t, err, "referral: Config.Templates: mail: template nl.txt")
	cfg.ProductName = "Acme"
	_, err = referral.New(cfg)
	assert.NoError(t, err)
}

func TestIDsCanonical(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule     referral.IDs
		in, want string
		ok       bool
	}{
		{referral.UUIDs, strings.ToUpper(userID), userID, true},
		{referral.UUIDs, "42", "", false},
		{referral.OpaqueIDs, "42", "42", true},
		{referral.OpaqueIDs, "Alice", "Alice", true},
		{referral.OpaqueIDs, "a/b", "", false},
		{referral.OpaqueIDs, "", "", false},
		{referral.OpaqueIDs, "..", "", false},
		{referral.OpaqueIDs, ".", "", false},
		{referral.OpaqueIDs, "a..b", "a..b", true},
	} {
		got, ok := tc.rule.Canonical(tc.in)
		assert.Equal(t, tc.ok, ok, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

// An Authenticator that returns the path's UUID in upper case names the
// same user: it is not refused as another user's Principal.
func TestPrincipalUUIDInAnotherCase(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.Auth = referral.AuthenticatorFunc(func(r *http.Request, user string) (referral.Principal, error) {
			return referral.Principal{AppID: appID, UserID: strings.ToUpper(user)}, nil
		})
	})
	checkEnvelope(t, f.post(invite("new@example.com", "en")), 201)
	g := newFixture(t, func(c *referral.Config) {
		c.UserIDs = referral.OpaqueIDs
		c.Auth = referral.AuthenticatorFunc(func(r *http.Request, user string) (referral.Principal, error) {
			return referral.Principal{UserID: strings.ToUpper(user)}, nil
		})
	})
	checkEnvelope(t, g.serve(newRequest(http.MethodPost, invitePath("alice"), invite("new@example.com", "en"))), 403)
}

// OnOutcome tells the host of every final outcome, inline as queued, after
// it is recorded, with a context.
func TestOnOutcomeInline(t *testing.T) {
	t.Parallel()
	type outcome struct {
		status referral.Status
		stored referral.Status
		ctx    bool
	}
	var got []outcome
	var f *fixture
	f = newFixture(t, func(c *referral.Config) {
		c.OnOutcome = func(ctx context.Context, inv referral.Invite) {
			got = append(got, outcome{inv.Status, f.store.Invites()[len(got)].Status, ctx != nil})
		}
	})
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	f.mailer.Fail(errors.New("down"))
	checkEnvelope(t, f.post(invite("b@example.com", "en")), 500)
	assert.Equal(t, []outcome{{referral.StatusSent, referral.StatusSent, true}, {referral.StatusFailed, referral.StatusFailed, true}}, got)
}
