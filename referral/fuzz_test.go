package referral_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/referralkit/referralkit/referral"
)

// FuzzHandler sends arbitrary methods, paths, headers and bodies through
// the handler with working fakes: it must never panic, never answer 5xx,
// and always answer in the envelope.
func FuzzHandler(f *testing.F) {
	f.Add("POST", path, "application/json", invite("a@example.com", "en"), "", "", "")
	f.Add("POST", path, "application/json; charset=utf-8", invite("Bob <b@example.com>", "DE"), "k1", "none", "r1")
	f.Add("GET", path, "", "", "", "", "")
	f.Add("POST", "/v1/users/x/referral-invites", "text/plain", "null", "", "forbidden", "")
	f.Add("POST", path, "application/json", `{"email":"a@example.com","language":"en"}{}`, "", "both", "")
	f.Add("POST", path, "application/json", "{\"email\":\"\xff\",\"language\":\"x!\"}", "\x00", "bearer", "\n")
	f.Add("POST", path, "application/json", `{"email":"joerg@bücher.example","language":"zh-Hant-TW"}`, strings.Repeat("k", 300), "", "")
	f.Fuzz(func(t *testing.T, method, target, contentType, body, idemKey, authMode, requestID string) {
		switch authMode {
		case "", "none", "bearer", "forbidden", "both":
		default: // testAuth fails with a 500 for any other mode, by design
			authMode = ""
		}
		req, err := http.NewRequest(method, "http://example.com"+target, strings.NewReader(body))
		if err != nil {
			return // not a request a server could receive
		}
		for name, v := range map[string]string{
			"Content-Type": contentType, "Idempotency-Key": idemKey, "X-Test-Auth": authMode, "X-Request-Id": requestID,
		} {
			if v != "" {
				req.Header[name] = []string{v}
			}
		}
		f := newFixture(t)
		mux := http.NewServeMux()
		mux.Handle(referral.Pattern, f.h)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code == http.StatusNotFound && !strings.HasSuffix(req.URL.Path, "/referral-invites") {
			return // the mux's own 404 for other paths
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", method, target, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusNotFound || rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusTemporaryRedirect {
			return // the mux's answer for paths it cleans or does not route
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || len(env) != 4 {
			t.Fatalf("status %d without the envelope: %q", rec.Code, rec.Body)
		}
	})
}
