package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

var discard = slog.New(slog.DiscardHandler)

// TestSignupPage: the landing page the default sign-up links point at
// shows the link's code, escapes what it shows, and explains what a host
// app does with the code. It never tells a valid code from an unknown one:
// it is not rate limited, the code lookup is, and the page points there.
func TestSignupPage(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t)
	code, err := h.Code(context.Background(), "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e", tourUser)
	require.NoError(t, err)
	srv := routes(h, nil, okStore{}, nil, nil, discard)
	get := func(ref string) string {
		t.Helper()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/signup?ref="+url.QueryEscape(ref), nil))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
		assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		assert.Equal(t, signupCSP, rec.Header().Get("Content-Security-Policy"))
		assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'")
		body := rec.Body.String()
		assert.NotContains(t, body, "<script")
		assert.Contains(t, body, "POST /v1/referral-codes/{code}/redemptions", "says what the host does with the code")
		assert.Contains(t, body, "h.Redeem(ctx, code, newUserID, email)")
		return body
	}

	unknown := referral.NewCode()
	tests := []struct {
		name, ref string
		want      []string
	}{
		{"valid code", code, []string{`<strong id="code">` + code + `</strong>`, "GET /v1/referral-codes/" + code}},
		{"valid code as typed", strings.ToLower(code), []string{`<strong id="code">` + code + `</strong>`}},
		{"unknown code", unknown, []string{`<strong id="code">` + unknown + `</strong>`, "does not check the code"}},
		{"markup", `<script>alert(1)</script>`, []string{"&lt;script&gt;alert(1)&lt;/script&gt;"}},
		{"no code", "", []string{"carries no referral code"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := get(tt.ref)
			for _, w := range tt.want {
				assert.Contains(t, body, w)
			}
		})
	}
	// Valid or not, the same page but for the code.
	assert.Equal(t, strings.ReplaceAll(get(code), code, "CODE"), strings.ReplaceAll(get(unknown), unknown, "CODE"))

	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/signup?ref="+code, nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}
