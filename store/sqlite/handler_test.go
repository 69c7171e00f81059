package sqlite_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

// testApp is the client id every request of these tests authenticates as.
const testApp = "0190a5e4-2b7c-7e4a-9b1e-3f6d2c8a4b10"

// newHandler returns the referral route on store, authenticating every
// request as testApp and recording mail, with the configuration changes of
// opts.
func newHandler(t testing.TB, store *sqlite.Store, opts ...func(*referral.Config)) http.Handler {
	t.Helper()
	cfg := referral.Config{
		Auth: referral.AuthenticatorFunc(func(*http.Request, string) (referral.Principal, error) {
			return referral.Principal{AppID: testApp, Method: "api-key", KeyID: "test"}, nil
		}),
		Store:          store,
		Recipients:     store,
		UnsubscribeURL: "https://example.com/v1/unsubscribe/{token}",
		Mailer:         &mailtest.Recorder{},
		From:           "Referrals <no-reply@example.com>",
		SignupURL:      "https://example.com/signup?ref={code}",
		Logger:         slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	h, err := referral.New(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, h)
	return mux
}

// inviteRequest is a valid invite of email on behalf of user.
func inviteRequest(user, email string) *http.Request {
	body := `{"email": "` + email + `", "language": "en"}`
	r := httptest.NewRequest(http.MethodPost, "/v1/users/"+user+"/referral-invites", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// post sends an invite through h and returns the response, after checking
// that it is in the JSON envelope.
func post(t testing.TB, h http.Handler, user, email string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, inviteRequest(user, email))
	var env struct {
		Success bool    `json:"success"`
		Error   *string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &env), "status %d, body %q", w.Code, w.Body)
	require.Equal(t, w.Code == http.StatusCreated, env.Success, "body %q", w.Body)
	return w
}

// TestConcurrentFirstInvitesYieldOneCode: first invites of one user sent at
// once race to make the user's code in one database file; all are accepted
// and share one code.
func TestConcurrentFirstInvitesYieldOneCode(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	mailer := &mailtest.Recorder{}
	h := newHandler(t, s, func(c *referral.Config) { c.MaxInvitesPerReferrer, c.Mailer = -1, mailer })
	const n = 100
	user := uuid.NewString()
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			w := httptest.NewRecorder()
			h.ServeHTTP(w, inviteRequest(user, fmt.Sprintf("p%d@example.com", i)))
			statuses[i] = w.Code
		})
	}
	close(start)
	wg.Wait()
	for i, status := range statuses {
		assert.Equal(t, http.StatusCreated, status, "request %d", i)
	}
	invs, err := s.Invites(t.Context())
	require.NoError(t, err)
	require.Len(t, invs, n)
	codes := map[string]bool{}
	for _, inv := range invs {
		codes[inv.Code] = true
	}
	assert.Len(t, codes, 1, "one user, one code")
	assert.Len(t, mailer.Messages(), n)
}
