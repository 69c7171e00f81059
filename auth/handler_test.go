package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// TestThroughHandler checks the statuses and headers the referral handler
// makes of this package's answers.
func TestThroughHandler(t *testing.T) {
	t.Parallel()
	f := newKeyFixture(t)
	rec := &mailtest.Recorder{}
	store := memory.New()
	h, err := referral.New(referral.Config{
		Auth:           auth.Either(auth.NewAPIKeys(f.store), newTokens(t, auth.TokenConfig{})),
		Store:          store,
		Recipients:     store,
		UnsubscribeURL: "https://app.example.com/v1/unsubscribe/{token}",
		Mailer:         rec,
		From:           "Referrals <no-reply@example.com>",
		SignupURL:      "https://app.example.com/signup?ref={code}",
		Now:            func() time.Time { return now },
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	key := keyHeaders(f.write, "write", strings.ToUpper(appA))
	tests := []struct {
		name      string
		user      string
		headers   []string
		status    int
		challenge string
	}{
		{"API key", userA, key, http.StatusCreated, ""},
		{"access token", userA, bearer(rs256(t, claims())), http.StatusCreated, ""},
		{"both", userA, append(key, bearer(rs256(t, claims()))...), http.StatusBadRequest, ""},
		{"nothing", userA, nil, http.StatusUnauthorized, "Bearer"},
		{"wrong key", userA, keyHeaders(f.otherApp, "write", appA), http.StatusUnauthorized, ""},
		{"expired token", userA, bearer(rs256(t, claims(set("exp", now.Add(-time.Hour).Unix())))), http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"alg none", userA, bearer(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", claims())), http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"read key", userA, keyHeaders(f.read, "read", appA), http.StatusForbidden, ""},
		{"disabled app", userA, keyHeaders(f.disabled, "write", f.disabledApp), http.StatusForbidden, ""},
		{"token for another user", userB, bearer(rs256(t, claims())), http.StatusForbidden, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A distinct address per case keeps the cooldown out of the way.
			body := `{"email":"` + strings.ReplaceAll(tc.name, " ", "-") + `@example.com","language":"en"}`
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/users/"+tc.user+"/referral-invites", strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Add(tc.headers[i], tc.headers[i+1])
			}
			res, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)

			assert.Equal(t, tc.status, res.StatusCode, "body: %s", b)
			assert.Equal(t, tc.challenge, res.Header.Get("WWW-Authenticate"))
			var env struct {
				Success bool    `json:"success"`
				Error   *string `json:"error"`
			}
			require.NoError(t, json.Unmarshal(b, &env))
			assert.Equal(t, tc.status == http.StatusCreated, env.Success)
			if tc.status != http.StatusCreated {
				require.NotNil(t, env.Error)
				assert.NotContains(t, string(b), f.write[12:], "the response must not echo a key")
			}
		})
	}
	t.Cleanup(func() {
		// After the parallel cases: one email per 201, none otherwise.
		assert.Len(t, rec.Messages(), 2)
	})
}
