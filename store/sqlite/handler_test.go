package sqlite_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
)

// testApp is the client id every request of these tests authenticates as.
const testApp = "0190a5e4-2b7c-7e4a-9b1e-3f6d2c8a4b10"

// newHandler returns the referral route on store, authenticating every
// request as testApp and recording mail.
func newHandler(t testing.TB, store referral.CodeStore) http.Handler {
	t.Helper()
	h, err := referral.New(referral.Config{
		Auth: referral.AuthenticatorFunc(func(*http.Request, string) (referral.Principal, error) {
			return referral.Principal{AppID: testApp, Method: "api-key", KeyID: "test"}, nil
		}),
		Store:     store,
		Mailer:    &mailtest.Recorder{},
		From:      "Referrals <no-reply@example.com>",
		SignupURL: "https://example.com/signup?ref={code}",
		Logger:    slog.New(slog.DiscardHandler),
	})
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
