package referral_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

const (
	appID   = "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e"
	userID  = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	otherID = "7a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d"
	path    = "/v1/users/" + userID + "/referral-invites"
)

// testAuth is an Authenticator driven by the X-Test-Auth header, so that
// each row can ask for the outcome it needs.
func testAuth(r *http.Request, userID string) (referral.Principal, error) {
	switch r.Header.Get("X-Test-Auth") {
	case "":
		return referral.Principal{AppID: appID, Method: "test"}, nil
	case "none":
		return referral.Principal{}, fmt.Errorf("test: %w", referral.ErrUnauthenticated)
	case "bearer":
		return referral.Principal{}, challengeErr{}
	case "forbidden":
		return referral.Principal{}, fmt.Errorf("test: %w", referral.ErrForbidden)
	case "both":
		return referral.Principal{}, fmt.Errorf("test: %w", referral.ErrAmbiguousCredentials)
	case "careless":
		// An Authenticator that forgot to compare the token's user with
		// the path's.
		return referral.Principal{AppID: appID, UserID: otherID, Method: "access-token"}, nil
	case "token":
		return referral.Principal{AppID: appID, UserID: userID, Method: "access-token"}, nil
	case "read":
		return referral.Principal{AppID: appID, Method: "api-key", ReadOnly: true}, nil
	default:
		return referral.Principal{}, errors.New("test: key store down, secret=hunter2")
	}
}

type challengeErr struct{}

func (challengeErr) Error() string     { return "test: bad token" }
func (challengeErr) Unwrap() error     { return referral.ErrUnauthenticated }
func (challengeErr) Challenge() string { return `Bearer error="invalid_token"` }

type fixture struct {
	h      *referral.Handler
	store  *memory.Store
	mailer *mailtest.Recorder
	logs   *syncBuffer
	*testClock
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T, configure ...func(*referral.Config)) *fixture {
	t.Helper()
	f := &fixture{
		store:     memory.New(),
		mailer:    &mailtest.Recorder{},
		logs:      &syncBuffer{},
		testClock: newTestClock(),
	}
	cfg := referral.Config{
		Auth:           referral.AuthenticatorFunc(testAuth),
		Store:          f.store,
		Redemptions:    f.store,
		Recipients:     f.store,
		Referrers:      f.store,
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
		Mailer:         f.mailer,
		From:           "Acme <no-reply@acme.example>",
		SignupURL:      "https://acme.example/signup?ref={code}",
		Logger:         slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:            f.Now,
	}
	for _, c := range configure {
		c(&cfg)
	}
	h, err := referral.New(cfg)
	require.NoError(t, err)
	f.h = h
	return f
}

// testClock is a settable clock: tests drive limits, cooldowns and
// back-off by moving it instead of waiting.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// serve sends one request through a ServeMux, mounted as the README says.
func (f *fixture) serve(req *http.Request) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, f.h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) post(body string, headers ...string) *httptest.ResponseRecorder {
	return f.serve(newRequest(http.MethodPost, path, body, headers...))
}

func newRequest(method, target, body string, headers ...string) *http.Request {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return req
}

func invite(email, lang string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "language": lang})
	return string(b)
}

// envelope decodes a response body, checking that exactly the four keys
// are present.
type envelope struct {
	Success bool    `json:"success"`
	Message *string `json:"message"`
	Error   *string `json:"error"`
	Data    any     `json:"data"`
}

func checkEnvelope(t *testing.T, rec *httptest.ResponseRecorder, status int) envelope {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body)
	assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	assert.NotEmpty(t, rec.Header().Get("X-Request-Id"))
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw), "body: %s", rec.Body)
	assert.Len(t, raw, 4, "body: %s", rec.Body)
	for _, k := range []string{"success", "message", "error", "data"} {
		assert.Contains(t, raw, k)
	}
	if status != http.StatusOK { // only a code lookup carries data
		assert.Equal(t, "null", string(raw["data"]))
	}
	var env envelope
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env))
	if status < 400 {
		assert.True(t, env.Success)
		assert.NotNil(t, env.Message)
		assert.Equal(t, "null", string(raw["error"]))
	} else {
		assert.False(t, env.Success)
		assert.Equal(t, "null", string(raw["message"]))
		require.NotNil(t, env.Error)
		assert.NotEmpty(t, *env.Error)
	}
	return env
}

func TestContract(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("b", 57) + ".com" // 254 bytes
	tests := []struct {
		name    string
		method  string
		target  string
		body    string
		headers []string
		status  int
		errText string // a substring of the error, if the row checks it
		header  [2]string
	}{
		{name: "created", body: invite("new@example.com", "en"), status: 201},
		{name: "charset parameter is fine", body: invite("new@example.com", "en"), headers: []string{"Content-Type", "application/json; charset=UTF-8"}, status: 201},
		{name: "upper-case uuid", target: "/v1/users/" + strings.ToUpper(userID) + "/referral-invites", body: invite("new@example.com", "en"), status: 201},
		{name: "254-byte address", body: invite(long, "en"), status: 201},
		{name: "IDN domain", body: invite("joerg@bücher.example", "de"), status: 201},
		{name: "upper-case address", body: invite("New.Person@Example.COM", "en"), status: 201},

		{name: "GET lists", method: http.MethodGet, status: 200},
		{name: "PUT", method: http.MethodPut, body: invite("new@example.com", "en"), status: 405, header: [2]string{"Allow", "GET, POST"}},
		{name: "DELETE", method: http.MethodDelete, status: 405, header: [2]string{"Allow", "GET, POST"}},
		{name: "userId not a uuid", target: "/v1/users/42/referral-invites", body: invite("new@example.com", "en"), status: 400, errText: "userId"},
		{name: "userId braced uuid", target: "/v1/users/%7B" + userID[:34] + "%7D/referral-invites", body: invite("new@example.com", "en"), status: 400, errText: "userId"},
		{name: "userId 32 hex", target: "/v1/users/" + strings.ReplaceAll(userID, "-", "") + "/referral-invites", body: invite("new@example.com", "en"), status: 400, errText: "userId"},

		{name: "no credentials", body: invite("new@example.com", "en"), headers: []string{"X-Test-Auth", "none"}, status: 401, errText: "credentials"},
		{name: "bad token", body: invite("new@example.com", "en"), headers: []string{"X-Test-Auth", "bearer"}, status: 401, header: [2]string{"WWW-Authenticate", `Bearer error="invalid_token"`}},
		{name: "forbidden", body: invite("new@example.com", "en"), headers: []string{"X-Test-Auth", "forbidden"}, status: 403},
		{name: "both credential kinds", body: invite("new@example.com", "en"), headers: []string{"X-Test-Auth", "both"}, status: 400, errText: "not both"},
		{name: "authenticator failure", body: invite("new@example.com", "en"), headers: []string{"X-Test-Auth", "boom"}, status: 500},

		{name: "no content type", body: invite("new@example.com", "en"), headers: []string{"Content-Type", ""}, status: 415},
		{name: "text/plain", body: invite("new@example.com", "en"), headers: []string{"Content-Type", "text/plain"}, status: 415},
		{name: "form", body: "email=a", headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415},
		{name: "latin1 charset", body: invite("new@example.com", "en"), headers: []string{"Content-Type", "application/json; charset=latin1"}, status: 415},
		{name: "16 KiB + 1", body: `{"email":"a@example.com","language":"en"}` + strings.Repeat(" ", referral.MaxBodyBytes+1-41), status: 413},

		{name: "empty body", body: "", status: 400, errText: "empty"},
		{name: "null", body: "null", status: 400, errText: "JSON object"},
		{name: "array", body: `[{"email":"a@example.com","language":"en"}]`, status: 400, errText: "JSON object"},
		{name: "string", body: `"a@example.com"`, status: 400, errText: "JSON object"},
		{name: "not JSON", body: `{email: a}`, status: 400, errText: "not valid JSON"},
		{name: "truncated", body: `{"email":"a@example.com","language":"en"`, status: 400, errText: "not valid JSON"},
		{name: "unknown field", body: `{"email":"a@example.com","language":"en","name":"Bob"}`, status: 400, errText: `unknown field "name"`},
		{name: "field in other case", body: `{"Email":"a@example.com","language":"en"}`, status: 400, errText: `unknown field "Email"`},
		{name: "duplicate field", body: `{"email":"a@example.com","email":"b@example.com","language":"en"}`, status: 400, errText: "twice"},
		{name: "trailing data", body: invite("a@example.com", "en") + `{}`, status: 400, errText: "after the JSON object"},
		{name: "trailing garbage", body: invite("a@example.com", "en") + `x`, status: 400},
		{name: "invalid UTF-8", body: "{\"email\":\"a\xff@example.com\",\"language\":\"en\"}", status: 400, errText: "UTF-8"},
		{name: "missing email", body: `{"language":"en"}`, status: 400, errText: "email is required"},
		{name: "missing language", body: `{"email":"a@example.com"}`, status: 400, errText: "language is required"},
		{name: "email a number", body: `{"email":42,"language":"en"}`, status: 400, errText: "email must be a string"},
		{name: "email null", body: `{"email":null,"language":"en"}`, status: 400, errText: "email must be a string"},

		{name: "email with display name", body: invite("Bob <bob@example.com>", "en"), status: 400, errText: "display name"},
		{name: "email in angle brackets", body: invite("<bob@example.com>", "en"), status: 400},
		{name: "email with comment", body: invite("bob@example.com (Bob)", "en"), status: 400},
		{name: "email with CRLF", body: invite("bob@example.com\r\nBcc: eve@example.com", "en"), status: 400},
		{name: "email with LF", body: invite("bob@example.com\n", "en"), status: 400},
		{name: "email 255 bytes", body: invite("a"+long, "en"), status: 400, errText: "254"},
		{name: "local part 65 bytes", body: invite(strings.Repeat("a", 65)+"@example.com", "en"), status: 400, errText: "64"},
		{name: "two addresses", body: invite("a@example.com, b@example.com", "en"), status: 400},
		{name: "no domain", body: invite("bob", "en"), status: 400},
		{name: "dotless domain", body: invite("bob@localhost", "en"), status: 400, errText: "domain"},
		{name: "address literal", body: invite("bob@[127.0.0.1]", "en"), status: 400, errText: "domain"},
		{name: "empty email", body: invite("", "en"), status: 400, errText: "email is required"},

		{name: "language de-AT", body: invite("new@example.com", "de-AT"), status: 201},
		{name: "language DE", body: invite("new@example.com", "DE"), status: 201},
		{name: "language US", body: invite("new@example.com", "US"), status: 201},
		{name: "language tlh", body: invite("new@example.com", "tlh"), status: 201},
		{name: "language x!", body: invite("new@example.com", "x!"), status: 400, errText: "language"},
		{name: "language empty", body: invite("new@example.com", ""), status: 400, errText: "language"},
		{name: "language underscore", body: invite("new@example.com", "de_AT"), status: 400, errText: "language"},
		{name: "language too long", body: invite("new@example.com", strings.Repeat("a", 65)), status: 400, errText: "language"},

		{name: "idempotency key too long", body: invite("new@example.com", "en"), headers: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 400, errText: "Idempotency-Key"},
		{name: "idempotency key control char", body: invite("new@example.com", "en"), headers: []string{"Idempotency-Key", "a\tb"}, status: 400, errText: "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			method, target := tt.method, tt.target
			if method == "" {
				method = http.MethodPost
			}
			if target == "" {
				target = path
			}
			rec := f.serve(newRequest(method, target, tt.body, tt.headers...))
			env := checkEnvelope(t, rec, tt.status)
			if tt.errText != "" {
				assert.Contains(t, *env.Error, tt.errText)
			}
			if tt.header[0] != "" {
				assert.Equal(t, tt.header[1], rec.Header().Get(tt.header[0]))
			}
			sent := f.mailer.Messages()
			if tt.status == 201 {
				assert.Len(t, sent, 1)
				assert.Len(t, f.store.Invites(), 1)
			} else {
				assert.Empty(t, sent, "a refused request sends nothing")
				assert.Empty(t, f.store.Invites(), "a refused request records nothing")
			}
			if tt.status >= 500 {
				assert.Equal(t, "internal error; quote the X-Request-Id header when reporting it", *env.Error)
				assert.NotContains(t, rec.Body.String(), "hunter2")
			}
		})
	}
}

func httptestRecorder(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func serveMux(mux *http.ServeMux, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}
