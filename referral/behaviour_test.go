package referral_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
)

func TestStoredInvite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		email, lang           string
		wantEmail, wantKey    string
		wantLang, wantSubject string
	}{
		{"new@example.com", "en", "new@example.com", "new@example.com", "en", "You're invited to Acme"},
		{"New.Person@Example.COM", "en", "New.Person@example.com", "new.person@example.com", "en", "You're invited to Acme"},
		{"Joerg@Bücher.example", "de", "Joerg@xn--bcher-kva.example", "joerg@xn--bcher-kva.example", "de", "Deine Einladung zu Acme"},
		{"a@example.com", "de-AT", "a@example.com", "a@example.com", "de", "Deine Einladung zu Acme"},
		{"a@example.com", "DE", "a@example.com", "a@example.com", "de", "Deine Einladung zu Acme"},
		{"a@example.com", "AT", "a@example.com", "a@example.com", "de", "Deine Einladung zu Acme"},
		{"a@example.com", "US", "a@example.com", "a@example.com", "en", "You're invited to Acme"},
		{"a@example.com", "fr-CA", "a@example.com", "a@example.com", "fr", "Invitation à rejoindre Acme"},
		{"a@example.com", "es-419", "a@example.com", "a@example.com", "es", "Tienes una invitación para unirte a Acme"},
		{"a@example.com", "JP", "a@example.com", "a@example.com", "ja", "Acmeへの招待が届いています"},
		{"a@example.com", "tlh", "a@example.com", "a@example.com", "en", "You're invited to Acme"},
		{"a@example.com", "pt-BR", "a@example.com", "a@example.com", "en", "You're invited to Acme"},
	}
	for _, tt := range tests {
		t.Run(tt.email+"/"+tt.lang, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			checkEnvelope(t, f.post(invite(tt.email, tt.lang)), 201)
			invs := f.store.Invites()
			require.Len(t, invs, 1)
			inv := invs[0]
			assert.Equal(t, tt.wantEmail, inv.Email)
			assert.Equal(t, tt.wantKey, inv.EmailKey)
			assert.Equal(t, tt.wantLang, inv.Language)
			assert.Equal(t, referral.StatusSent, inv.Status)
			assert.Equal(t, appID, inv.AppID)
			assert.Equal(t, userID, inv.ReferrerID)
			assert.Equal(t, 1, inv.Attempts)

			msgs := f.mailer.Messages()
			require.Len(t, msgs, 1)
			m := msgs[0]
			assert.Equal(t, tt.wantEmail, m.To)
			assert.Equal(t, tt.wantSubject, m.Subject)
			assert.Equal(t, inv.ID, m.ID)
			assert.Equal(t, "<"+inv.ID+"@acme.example>", m.MessageID())
			assert.Contains(t, m.Text, inv.Code)
			assert.Contains(t, m.Text, "https://acme.example/signup?ref="+inv.Code)
			assert.Contains(t, m.HTML, `href="https://acme.example/signup?ref=`+inv.Code+`"`)
		})
	}
}

func TestInviteIDIsUUIDv7(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	id := f.store.Invites()[0].ID
	require.Len(t, id, 36)
	assert.Equal(t, byte('7'), id[14], "version nibble of %s", id)
}

func TestSameCodeAcrossInvites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := range 5 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
	}
	// Another user of the same app gets a code of their own.
	other := newRequest(http.MethodPost, "/v1/users/"+otherID+"/referral-invites", invite("p0@example.com", "en"))
	checkEnvelope(t, f.serve(other), 201)

	invs := f.store.Invites()
	require.Len(t, invs, 6)
	code := invs[0].Code
	_, ok := referral.NormalizeCode(code)
	require.True(t, ok, "code %q is not a Crockford code", code)
	for _, inv := range invs[:5] {
		assert.Equal(t, code, inv.Code)
	}
	assert.NotEqual(t, code, invs[5].Code)
	owner, err := f.h.Resolve(context.Background(), strings.ToLower(code))
	require.NoError(t, err)
	assert.Equal(t, referral.Owner{AppID: appID, UserID: userID}, owner)
}

func TestPerReferrerLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.MaxInvitesPerReferrer = 3 })
	for i := range 3 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "en")), 201)
		f.Advance(time.Hour)
	}
	rec := f.post(invite("p3@example.com", "en"))
	env := checkEnvelope(t, rec, 429)
	assert.Contains(t, *env.Error, "too many invites")
	// The first invite was 3h ago: it leaves the 24h window in 21h.
	assert.Equal(t, "75600", rec.Header().Get("Retry-After"))
	assert.Len(t, f.mailer.Messages(), 3, "a refused invite sends nothing")
	assert.Len(t, f.store.Invites(), 3)

	// Another referrer is not affected.
	other := newRequest(http.MethodPost, "/v1/users/"+otherID+"/referral-invites", invite("p3@example.com", "en"))
	checkEnvelope(t, f.serve(other), 201)

	f.Advance(21 * time.Hour)
	checkEnvelope(t, f.post(invite("p3@example.com", "en")), 201)
}

func TestSameAddressCooldown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	f.Advance(7*24*time.Hour - 5*time.Minute) // the default: 7 days
	rec := f.post(invite("BOB@Example.com", "de"))
	env := checkEnvelope(t, rec, 429)
	assert.Contains(t, *env.Error, "invited recently")
	assert.Equal(t, "300", rec.Header().Get("Retry-After"))
	assert.Len(t, f.mailer.Messages(), 1)

	f.Advance(5 * time.Minute)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
}

func TestFailedDeliveryAnswers500AndKeepsARecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mailer.Fail(errors.New("dial tcp 10.0.0.1:25: connection refused for bob@example.com"))
	rec := f.post(invite("bob@example.com", "en"))
	env := checkEnvelope(t, rec, 500)
	assert.Equal(t, "internal error; quote the X-Request-Id header when reporting it", *env.Error)
	assert.NotContains(t, rec.Body.String(), "10.0.0.1")

	invs := f.store.Invites()
	require.Len(t, invs, 1)
	assert.Equal(t, referral.StatusFailed, invs[0].Status)
	assert.Contains(t, invs[0].LastError, "connection refused")

	logs := f.logs.String()
	assert.Contains(t, logs, rec.Header().Get("X-Request-Id"))
	assert.Contains(t, logs, "connection refused")
	assert.NotContains(t, logs, "bob@example.com", "addresses are redacted in logs")

	// A failed invite does not start the cooldown: the client may retry.
	f.mailer.Fail(nil)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
}

func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := []string{"Idempotency-Key", "order-7"}
	first := f.post(invite("bob@example.com", "en"), key...)
	checkEnvelope(t, first, 201)
	f.Advance(time.Hour) // within the 24h of the key
	again := f.post(invite("bob@example.com", "en"), key...)
	checkEnvelope(t, again, 201)
	assert.Equal(t, first.Body.String(), again.Body.String())
	assert.Len(t, f.mailer.Messages(), 1, "a replay sends nothing")
	assert.Len(t, f.store.Invites(), 1)

	mismatch := f.post(invite("alice@example.com", "en"), key...)
	env := checkEnvelope(t, mismatch, 400)
	assert.Contains(t, *env.Error, "Idempotency-Key")

	// The key belongs to this user: another user may use the same key.
	other := newRequest(http.MethodPost, "/v1/users/"+otherID+"/referral-invites", invite("bob@example.com", "en"), key...)
	checkEnvelope(t, f.serve(other), 201)

	f.Advance(7 * 24 * time.Hour) // the key is forgotten, the cooldown over
	checkEnvelope(t, f.post(invite("bob@example.com", "en"), key...), 201)
	assert.Len(t, f.mailer.Messages(), 3)
}

func TestRetryAfterAFailureMakesANewAttempt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := []string{"Idempotency-Key", "k1"}
	f.mailer.Fail(errors.New("smtp down"))
	checkEnvelope(t, f.post(invite("bob@example.com", "en"), key...), 500)
	f.mailer.Fail(nil)
	checkEnvelope(t, f.post(invite("bob@example.com", "en"), key...), 201)
	require.Len(t, f.mailer.Messages(), 1, "the retry sends")
	invs := f.store.Invites()
	require.Len(t, invs, 1, "the retry is the same invite")
	assert.Equal(t, referral.StatusSent, invs[0].Status)
	assert.Equal(t, 2, invs[0].Attempts)
	assert.Equal(t, invs[0].ID, strings.Trim(strings.SplitN(f.mailer.Messages()[0].ID, "@", 2)[0], "<"))
	// Now it succeeded, the key replays that.
	checkEnvelope(t, f.post(invite("bob@example.com", "en"), key...), 201)
	assert.Len(t, f.mailer.Messages(), 1)
}

// failingUpdates is a store whose delivery records fail.
type failingUpdates struct{ referral.CodeStore }

func (failingUpdates) UpdateDelivery(context.Context, string, referral.Delivery) error {
	return errors.New("disk I/O error")
}

func TestRetryOfAStrandedAttempt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A first handler on the same store whose records fail, and whose send
	// fails: the invite stays pending under its lease, as when the process
	// dies mid-send.
	cfg := referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: failingUpdates{f.store}, Mailer: f.mailer,
		Recipients: f.store, UnsubscribeURL: "https://x.example/u/{token}",
		From: "a@example.com", SignupURL: "https://x.example/?r={code}", Now: f.Now, SendTimeout: time.Second,
		Logger: slog.New(slog.DiscardHandler)}
	dying, err := referral.New(cfg)
	require.NoError(t, err)
	key := []string{"Idempotency-Key", "k1"}
	f.mailer.Fail(errors.New("connection reset"))
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, dying)
	checkEnvelope(t, serveMux(mux, newRequest(http.MethodPost, path, invite("bob@example.com", "en"), key...)), 500)
	f.mailer.Fail(nil)
	require.Equal(t, referral.StatusPending, f.store.Invites()[0].Status)

	// Within the lease the attempt may still be under way.
	checkEnvelope(t, f.post(invite("bob@example.com", "en"), key...), 409)
	f.Advance(3 * time.Second)
	checkEnvelope(t, f.post(invite("bob@example.com", "en"), key...), 201)
	invs := f.store.Invites()
	require.Len(t, invs, 1)
	assert.Equal(t, referral.StatusSent, invs[0].Status)
	assert.Len(t, f.mailer.Messages(), 1)
}

func TestSentButNotRecordedAnswers201(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.Store = failingUpdates{c.Store}
		c.SendTimeout = 50 * time.Millisecond // the record is retried for the lease, 2x this
	})
	rec := f.post(invite("bob@example.com", "en"))
	checkEnvelope(t, rec, 201)
	assert.Len(t, f.mailer.Messages(), 1)
	logs := f.logs.String()
	assert.Contains(t, logs, "sent but its delivery was not recorded")
	assert.Contains(t, logs, `"level":"ERROR"`)
	assert.Contains(t, logs, rec.Header().Get("X-Request-Id"))
}

func TestQueuedDeliveryAnswersAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Delivery = referral.Queued })
	key := []string{"Idempotency-Key", "k1"}
	env := checkEnvelope(t, f.post(invite("bob@example.com", "en"), key...), 201)
	assert.Contains(t, *env.Message, "sent shortly")
	assert.Empty(t, f.mailer.Messages())
	invs := f.store.Invites()
	require.Len(t, invs, 1)
	assert.Equal(t, referral.StatusPending, invs[0].Status)
	assert.Equal(t, 0, invs[0].Attempts)
	checkEnvelope(t, f.post(invite("bob@example.com", "en"), key...), 201)
	assert.Len(t, f.store.Invites(), 1)
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := f.post(invite("a@example.com", "en"), "X-Request-Id", "req-123.abc")
	checkEnvelope(t, rec, 201)
	assert.Equal(t, "req-123.abc", rec.Header().Get("X-Request-Id"))
	assert.Contains(t, f.logs.String(), `"request_id":"req-123.abc"`)

	for _, bad := range []string{"has space", "<script>", strings.Repeat("x", 129)} {
		rec := f.post(invite("x@example.com", "en"), "X-Request-Id", bad)
		id := rec.Header().Get("X-Request-Id")
		assert.NotEqual(t, bad, id)
		assert.Len(t, id, 36, "a fresh id replaces %q", bad)
	}
}

func TestLogsRedactAddresses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("secret.person@example.com", "en")), 201)
	logs := f.logs.String()
	assert.Contains(t, logs, "***@example.com")
	assert.NotContains(t, logs, "secret.person")
}

func TestUserIDHook(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.PathValue = func(r *http.Request, name string) string {
			if name != "userId" {
				return ""
			}
			return strings.Split(r.URL.Path, "/")[3]
		}
	})
	// Served directly, without a mux to fill in r.PathValue.
	rec := httptestRecorder(f.h, newRequest(http.MethodPost, path, invite("a@example.com", "en")))
	checkEnvelope(t, rec, 201)
	assert.Equal(t, userID, f.store.Invites()[0].ReferrerID)
}

func TestNewNamesMissingFields(t *testing.T) {
	t.Parallel()
	_, err := referral.New(referral.Config{})
	require.Error(t, err)
	for _, field := range []string{"Auth", "Store", "Mailer", "From", "SignupURL", "Recipients", "UnsubscribeURL"} {
		assert.Contains(t, err.Error(), "Config."+field)
	}
	f := newFixture(t)
	_ = f
	base := func() referral.Config {
		return referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: f.store, Mailer: f.mailer,
			From: "a@example.com", SignupURL: "https://x.example/?r={code}",
			Recipients: f.store, UnsubscribeURL: "https://x.example/u/{token}"}
	}
	for name, mod := range map[string]func(*referral.Config){
		"From":      func(c *referral.Config) { c.From = "not an address" },
		"SignupURL": func(c *referral.Config) { c.SignupURL = "https://x.example/no-placeholder" },
		"Delivery":  func(c *referral.Config) { c.Delivery = 7 },
		// Negative values that would panic or spin in a worker.
		"SendTimeout":  func(c *referral.Config) { c.SendTimeout = -time.Second },
		"LimitWindow":  func(c *referral.Config) { c.LimitWindow = -time.Hour },
		"MaxAttempts":  func(c *referral.Config) { c.MaxAttempts = -1 },
		"RetryBackoff": func(c *referral.Config) { c.RetryBackoff = -time.Second },
		"WorkerBatch":  func(c *referral.Config) { c.WorkerBatch = -1 },
		"PollInterval": func(c *referral.Config) { c.PollInterval = -time.Millisecond },
		"MaxBacklog":   func(c *referral.Config) { c.MaxBacklog = -1 },
		"BacklogWait":  func(c *referral.Config) { c.BacklogWait = -time.Second },
	} {
		cfg := base()
		mod(&cfg)
		_, err := referral.New(cfg)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "Config."+name)
	}
	_, err = referral.New(base())
	assert.NoError(t, err)
	// Negative means "disabled" where the doc says so.
	cfg := base()
	cfg.MaxInvitesPerReferrer, cfg.Cooldown, cfg.IdempotencyTTL, cfg.LookupsPerMinute = -1, -1, -1, -1
	_, err = referral.New(cfg)
	assert.NoError(t, err)
}

func TestMessageIsRendered(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.SignupURL = "https://acme.example/join/{code}?x=1" })
	m, err := f.h.Message(referral.Invite{ID: "0190-x", Email: "a@example.com", Language: "fr", Code: "ABCDEFGHJK"})
	require.NoError(t, err)
	assert.Equal(t, "fr", m.Language)
	assert.Equal(t, "Acme <no-reply@acme.example>", m.From)
	assert.Contains(t, m.Text, "https://acme.example/join/ABCDEFGHJK?x=1")
	assert.Equal(t, mail.DefaultLanguage, "en")
}

func TestPrincipalOfAnotherUserIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := checkEnvelope(t, f.post(invite("bob@example.com", "en"), "X-Test-Auth", "careless"), 403)
	assert.Equal(t, "these credentials may not send invites for this user", *env.Error)
	assert.Empty(t, f.store.Invites())
	assert.Empty(t, f.mailer.Messages())
	checkEnvelope(t, f.post(invite("bob@example.com", "en"), "X-Test-Auth", "token"), 201)
}
