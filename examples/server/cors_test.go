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
	h := routes(newTestHandler(t), nil, okStore{}, []string{"https://app.example.com"}, discard)

	tests := []struct {
		name, origin, headers string
		allowed               bool
	}{
		{"listed origin", "https://app.example.com", "authorization,content-type", true},
		{"with idempotency key", "https://app.example.com", "authorization,content-type,idempotency-key", true},
		{"other origin", "https://evil.example", "authorization,content-type", false},
		{"header not allowed", "https://app.example.com", "authorization,x-api-key", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodOptions, "/v1/users/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/referral-invites", nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", tt.headers)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tt.allowed {
				assert.Equal(t, tt.origin, rec.Header().Get("Access-Control-Allow-Origin"))
				assert.Contains(t, rec.Header().Get("Access-Control-Allow-Methods"), "POST")
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
