package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

type okStore struct{ backend }

// newTestHandler is a handler on in-memory parts that lets every caller in.
func newTestHandler(t *testing.T) *referral.Handler {
	store := memory.New()
	h, err := referral.New(referral.Config{
		Auth: referral.AuthenticatorFunc(func(*http.Request, string) (referral.Principal, error) {
			return referral.Principal{AppID: "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e"}, nil
		}),
		Store:          store,
		Recipients:     store,
		UnsubscribeURL: "https://app.example.com/v1/unsubscribe/{token}",
		Mailer:         &mailtest.Recorder{},
		From:           "Acme <a@example.com>",
		SignupURL:      "https://app.example.com/s?ref={code}",
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestCORSPreflight sends the preflight a browser sends before a fetch with
// an access token and a JSON body, and the request that follows.
func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	h := routes(newTestHandler(t), nil, okStore{}, []string{"https://app.example.com"}, nil, discard)

	const user = "/v1/users/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	const invite = user + "/referral-invites/0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
	tests := []struct {
		name, method, path, origin, headers string
		allowed                             bool
	}{
		{"listed origin", "POST", user + "/referral-invites", "https://app.example.com", "authorization,content-type", true},
		{"with idempotency key", "POST", user + "/referral-invites", "https://app.example.com", "authorization,content-type,idempotency-key", true},
		{"other origin", "POST", user + "/referral-invites", "https://evil.example", "authorization,content-type", false},
		{"header not allowed", "POST", user + "/referral-invites", "https://app.example.com", "authorization,x-api-key", false},
		// The referrer's routes: list, code, revoke, resend.
		{"list", "GET", user + "/referral-invites", "https://app.example.com", "authorization", true},
		{"referral code", "GET", user + "/referral-code", "https://app.example.com", "authorization", true},
		{"revoke", "DELETE", invite, "https://app.example.com", "authorization", true},
		{"resend", "POST", invite + "/resend", "https://app.example.com", "authorization", true},
		{"revoke from another origin", "DELETE", invite, "https://evil.example", "authorization", false},
		{"a method no route takes", "PUT", invite, "https://app.example.com", "authorization", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodOptions, tt.path, nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", tt.method)
			req.Header.Set("Access-Control-Request-Headers", tt.headers)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tt.allowed {
				assert.Equal(t, tt.origin, rec.Header().Get("Access-Control-Allow-Origin"))
				assert.Contains(t, rec.Header().Get("Access-Control-Allow-Methods"), tt.method)
				assert.Equal(t, tt.headers, rec.Header().Get("Access-Control-Allow-Headers"))
				assert.Less(t, rec.Code, 300)
			} else {
				assert.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
			}
		})
	}

	req := httptest.NewRequest(http.MethodPost, "/v1/users/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/referral-invites",
		strings.NewReader(`{"email":"a@example.com","language":"en"}`))
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusCreated, rec.Code)
	assert.Equal(t, "https://app.example.com", rec.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "X-Request-Id")
}
