package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/webhook"
)

// testSecret is a webhook secret for the tests: whsec_ + 32 bytes.
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("referralkit-test-secret-32-bytes"))

// arrival is one request the receiver took.
type arrival struct {
	id       string // webhook-id
	typ      string
	data     map[string]any
	body     string
	verified error // webhook.Verify's verdict
	status   int   // what the receiver answered
}

// receiver is a webhook endpoint on 127.0.0.1 that verifies every request
// with webhook.Verify and records it. It answers the statuses of answers
// in turn, then ok.
type receiver struct {
	url    string
	secret webhook.Secret
	mu     sync.Mutex
	got    []arrival
	answer []int
	ok     int
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	t.Helper()
	secret, err := webhook.ParseSecret(testSecret)
	require.NoError(t, err)
	rc := &receiver{secret: secret, answer: answers, ok: http.StatusOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a := arrival{id: r.Header.Get("webhook-id"), body: string(body)}
		a.verified = webhook.Verify(rc.secret, r.Header, body, time.Now(), 0)
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			a.verified = err
		}
		a.typ, a.data = ev.Type, ev.Data
		rc.mu.Lock()
		a.status = rc.ok
		if len(rc.answer) > 0 {
			a.status, rc.answer = rc.answer[0], rc.answer[1:]
		}
		rc.got = append(rc.got, a)
		rc.mu.Unlock()
		w.WriteHeader(a.status)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/hooks"
	return rc
}

// setOK makes the receiver answer status from now on.
func (rc *receiver) setOK(status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.ok = status
}

// arrivals returns the requests of type typ so far.
func (rc *receiver) arrivals(typ string) []arrival {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []arrival
	for _, a := range rc.got {
		if a.typ == typ {
			out = append(out, a)
		}
	}
	return out
}

// waitFor waits until an arrival of typ was answered with a 2xx, and
// returns every arrival of typ.
func (rc *receiver) waitFor(t *testing.T, typ string) []arrival {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, a := range rc.arrivals(typ) {
			if a.status < 300 {
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "no %s webhook was taken", typ)
	return rc.arrivals(typ)
}

// checkArrivals: every arrival is signed, all have one webhook-id, and
// none carries an address.
func checkArrivals(t *testing.T, as []arrival) {
	t.Helper()
	require.NotEmpty(t, as)
	for _, a := range as {
		assert.NoError(t, a.verified, "webhook.Verify: %s", a.body)
		assert.Equal(t, as[0].id, a.id, "every attempt of one event has its webhook-id")
		assert.NotContains(t, a.body, "@", "no address in the body: %s", a.body)
		assert.NotContains(t, a.body, "example.com", "no address in the body: %s", a.body)
	}
	assert.NotEmpty(t, as[0].id)
}

// TestWebhooks runs the built server with -webhook-url and
// -webhook-secret against a receiver that verifies every request: an
// inline invite's invite.sent arrives after two 500s, three times with one
// webhook-id; a revoke sends invite.revoked and a redemption
// referral.redeemed with the code and the new user. No body carries an
// address, and the log never shows the secret.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	rc := newReceiver(t, http.StatusInternalServerError, http.StatusInternalServerError)
	s := startServer(t, bin, "-webhook-url", rc.url, "-webhook-secret", testSecret, "-retry-backoff", "10ms")
	assert.Contains(t, s.startup, "webhooks")
	assert.Contains(t, s.startup, rc.url)
	creds := createKey(t, bin, s.dir)
	require.Equal(t, http.StatusCreated, postInvite(t, s.url, creds, "friend@example.com", "en"))
	invs := listInvites(t, s.url, keyHeaders(creds))
	require.Len(t, invs, 1)
	inv := invs[0]

	sent := rc.waitFor(t, "invite.sent")
	checkArrivals(t, sent)
	require.Len(t, sent, 3, "two 500s, then a 200")
	assert.Equal(t, []int{500, 500, 200}, []int{sent[0].status, sent[1].status, sent[2].status})
	assert.Equal(t, map[string]any{"inviteId": inv.ID, "appId": creds.ClientID, "referrerId": tourUser, "status": "sent"}, sent[0].data)

	resp, body := call(t, http.MethodDelete, s.url+"/v1/users/"+tourUser+"/referral-invites/"+inv.ID, "", keyHeaders(creds))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	revoked := rc.waitFor(t, "invite.revoked")
	checkArrivals(t, revoked)
	assert.Equal(t, map[string]any{"inviteId": inv.ID, "appId": creds.ClientID, "referrerId": tourUser, "status": "revoked"}, revoked[0].data)
	assert.NotEqual(t, sent[0].id, revoked[0].id)

	resp, body = call(t, http.MethodGet, s.url+"/v1/users/"+tourUser+"/referral-code", "", keyHeaders(creds))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var code struct{ Data struct{ Code string } }
	require.NoError(t, json.Unmarshal([]byte(body), &code))
	const newUser = "8b3c4d5e-6f70-4a1b-9c2d-3e4f5a6b7c8d"
	resp, body = call(t, http.MethodPost, s.url+"/v1/referral-codes/"+code.Data.Code+"/redemptions",
		`{"userId":"`+newUser+`","email":"newcomer@example.com"}`, keyHeaders(creds))
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	redeemed := rc.waitFor(t, "referral.redeemed")
	checkArrivals(t, redeemed)
	assert.Equal(t, map[string]any{"appId": creds.ClientID, "referrerId": tourUser, "code": code.Data.Code, "newUserId": newUser}, redeemed[0].data)

	logs := s.stop(t)
	for _, out := range []string{s.startup, logs} {
		assert.NotContains(t, out, testSecret)
		assert.NotContains(t, out, strings.TrimPrefix(testSecret, "whsec_"))
	}
}

// TestWebhookSurvivesACrash: the server is killed (SIGKILL) after an
// invite while the receiver answers 503, so that its event waits in the
// outbox; restarted on the same database, with the receiver answering 200,
// the server delivers it, every arrival with the same webhook-id.
func TestWebhookSurvivesACrash(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	dir := t.TempDir()
	rc := newReceiver(t)
	rc.setOK(http.StatusServiceUnavailable)
	args := []string{"-webhook-url", rc.url, "-webhook-secret", testSecret, "-retry-backoff", "10ms"}
	creds := createKey(t, bin, dir)
	s := startServerIn(t, bin, dir, args...)
	require.Equal(t, http.StatusCreated, postInvite(t, s.url, creds, "friend@example.com", "en"))
	require.Eventually(t, func() bool { return len(rc.arrivals("invite.sent")) > 0 },
		15*time.Second, 10*time.Millisecond, "no invite.sent attempt")
	// Between attempts (the worker waits a poll of a second after a
	// refused one), so that the kill does not leave the event claimed.
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, s.cmd.Process.Kill())
	<-s.done
	before := rc.arrivals("invite.sent")
	for _, a := range before {
		assert.Equal(t, http.StatusServiceUnavailable, a.status)
	}

	rc.setOK(http.StatusOK)
	s = startServerIn(t, bin, dir, args...)
	all := rc.waitFor(t, "invite.sent")
	checkArrivals(t, all)
	assert.Greater(t, len(all), len(before), "delivered after the restart")
	s.stop(t)
}

// TestWebhookFlagsRefused: a webhook URL that is not absolute http(s), a
// secret that is not whsec_ + base64, or one flag without the other stops
// the server with one line and exit 2, never showing the secret.
func TestWebhookFlagsRefused(t *testing.T) {
	t.Parallel()
	bad := base64.StdEncoding.EncodeToString([]byte("hunter2-hunter2-hunter2-hunter2"))
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("hunter2"))
	for _, tt := range []struct {
		name   string
		args   []string
		secret string
		want   string
	}{
		{"ftp url", []string{"-webhook-url", "ftp://x", "-webhook-secret", testSecret}, testSecret, "-webhook-url must be an absolute http(s) URL"},
		{"relative url", []string{"-webhook-url", "/hooks", "-webhook-secret", testSecret}, testSecret, "-webhook-url must be an absolute http(s) URL"},
		{"url with a fragment", []string{"-webhook-url", "https://app.example.com/hooks#x", "-webhook-secret", testSecret}, testSecret, "no fragment"},
		{"secret without whsec_", []string{"-webhook-url", "https://app.example.com/hooks", "-webhook-secret", bad}, bad, "-webhook-secret: webhook: secret must be whsec_"},
		{"secret too short", []string{"-webhook-url", "https://app.example.com/hooks", "-webhook-secret", short}, short, "too short"},
		{"secret not base64", []string{"-webhook-url", "https://app.example.com/hooks", "-webhook-secret", "whsec_hunter2!!"}, "hunter2", "not standard base64"},
		{"url without secret", []string{"-webhook-url", "https://app.example.com/hooks"}, testSecret, "-webhook-url and -webhook-secret go together"},
		{"secret without url", []string{"-webhook-secret", testSecret}, testSecret, "-webhook-url and -webhook-secret go together"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "r.db"), "-maildir", filepath.Join(t.TempDir(), "mail")}, tt.args...)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			assert.Equal(t, 2, run(ctx, args, func(string) string { return "" }, &stdout, &stderr))
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			assert.Len(t, lines, 1, "one line: %q", stderr.String())
			assert.Contains(t, lines[0], tt.want)
			out := stdout.String() + stderr.String()
			assert.NotContains(t, out, tt.secret)
			assert.NotContains(t, out, "hunter2")
			assert.NotContains(t, out, strings.TrimPrefix(testSecret, "whsec_"))
		})
	}
}

// TestWebhookSecretFromEnvNotInUsage: -h does not show a secret taken from
// REFERRAL_WEBHOOK_SECRET as the flag's default.
func TestWebhookSecretFromEnvNotInUsage(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	env := func(k string) string {
		if k == "REFERRAL_WEBHOOK_SECRET" {
			return testSecret
		}
		return ""
	}
	assert.Equal(t, 0, run(context.Background(), []string{"-h"}, env, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "-webhook-secret string")
	assert.NotContains(t, stderr.String(), strings.TrimPrefix(testSecret, "whsec_"))
}

// TestPostgresWebhooks: on the PostgreSQL store the outbox is on with the
// webhook flags too, and an invite's invite.sent arrives signed.
func TestPostgresWebhooks(t *testing.T) {
	t.Parallel()
	url := os.Getenv("REFERRAL_TEST_POSTGRES_URL")
	if url == "" {
		if os.Getenv("REFERRAL_REQUIRE_POSTGRES") != "" {
			t.Fatal("REFERRAL_TEST_POSTGRES_URL is unset but REFERRAL_REQUIRE_POSTGRES is set")
		}
		t.Skip("REFERRAL_TEST_POSTGRES_URL is unset: no PostgreSQL server to run against (.ci/run starts one)")
	}
	bin := buildServer(t)
	rc := newReceiver(t)
	s := startServer(t, bin, "-db", url, "-webhook-url", rc.url, "-webhook-secret", testSecret, "-retry-backoff", "10ms")
	creds := createKey(t, bin, s.dir, "-db", url)
	require.Equal(t, http.StatusCreated, postInviteAs(t, s.url, creds, userID(900), "pg-webhook@example.com"))
	sent := rc.waitFor(t, "invite.sent")
	checkArrivals(t, sent)
	assert.Equal(t, creds.ClientID, sent[0].data["appId"])
	s.stop(t)
}
