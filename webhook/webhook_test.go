package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/webhook"
)

// The Standard Webhooks reference vector.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(t *testing.T, s string) webhook.Secret {
	t.Helper()
	sec, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return sec
}

func vecHeader(sig string, ts int64) http.Header {
	h := http.Header{}
	h.Set("webhook-id", vecID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestSignReferenceVector(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, vecSecret)
	if got := webhook.Sign(sec, vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("Sign = %q, want %q", got, vecSig)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, vecSecret)
	other := mustSecret(t, "whsec_"+strings.Repeat("QUFB", 8))
	now := time.Unix(vecTS, 0)
	tol := 5 * time.Minute
	tests := []struct {
		name   string
		secret webhook.Secret
		header http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"reference", sec, vecHeader(vecSig, vecTS), vecBody, now, nil},
		{"several signatures", sec, vecHeader("v1,bm90IGl0 v1a,xyz "+vecSig, vecTS), vecBody, now, nil},
		{"just inside tolerance late", sec, vecHeader(vecSig, vecTS), vecBody, now.Add(tol), nil},
		{"just inside tolerance early", sec, vecHeader(vecSig, vecTS), vecBody, now.Add(-tol), nil},
		{"too old", sec, vecHeader(vecSig, vecTS), vecBody, now.Add(tol + time.Second), webhook.ErrTimestamp},
		{"too new", sec, vecHeader(vecSig, vecTS), vecBody, now.Add(-tol - time.Second), webhook.ErrTimestamp},
		{"huge timestamp", sec, vecHeader(vecSig, 1<<62), vecBody, now, webhook.ErrTimestamp},
		{"timestamp not a number", sec, func() http.Header { h := vecHeader(vecSig, 0); h.Set("webhook-timestamp", "x"); return h }(), vecBody, now, webhook.ErrTimestamp},
		{"body changed", sec, vecHeader(vecSig, vecTS), `{"test": 2432232315}`, now, webhook.ErrSignature},
		{"other secret", other, vecHeader(vecSig, vecTS), vecBody, now, webhook.ErrSignature},
		{"zero secret", webhook.Secret{}, vecHeader(vecSig, vecTS), vecBody, now, webhook.ErrSignature},
		{"only other versions", sec, vecHeader("v1a,"+strings.TrimPrefix(vecSig, "v1,"), vecTS), vecBody, now, webhook.ErrSignature},
		{"bad base64", sec, vecHeader("v1,!!!", vecTS), vecBody, now, webhook.ErrSignature},
		{"no signature", sec, func() http.Header { h := vecHeader(vecSig, vecTS); h.Del("webhook-signature"); return h }(), vecBody, now, webhook.ErrSignature},
		{"no id", sec, func() http.Header { h := vecHeader(vecSig, vecTS); h.Del("webhook-id"); return h }(), vecBody, now, webhook.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tt.secret, tt.header, []byte(tt.body), tt.now, tol)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	b64of := func(n int) string { return strings.Repeat("A", n/3*4) }
	bad := []string{
		"",
		"whsec_",
		strings.TrimPrefix(vecSecret, "whsec_"), // no prefix
		"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"whsec_" + b64of(21),                     // too short
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", // not base64
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", // not strict
		"whsec_MfKQ9r8G-YqrTwjUPD8ILPZIo2LaLaSw",   // URL alphabet
	}
	for _, s := range bad {
		_, err := webhook.ParseSecret(s)
		if !errors.Is(err, webhook.ErrSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrSecret", s, err)
			continue
		}
		if body := strings.TrimPrefix(s, "whsec_"); len(body) > 4 && strings.Contains(err.Error(), body) {
			t.Errorf("error %q echoes the secret", err)
		}
	}
	for _, s := range []string{vecSecret, "whsec_" + b64of(24), "whsec_" + b64of(64) + "AA=="} {
		if _, err := webhook.ParseSecret(s); err != nil {
			t.Errorf("ParseSecret(%q) = %v", s, err)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, vecSecret)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", sec)
	js, err := json.Marshal(struct{ S webhook.Secret }{sec})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{sec.String(), fmt.Sprint(sec), fmt.Sprintf("%v %+v %#v %s", sec, sec, sec, sec), logged.String(), string(js)} {
		if strings.Contains(out, "MfKQ9r8G") {
			t.Errorf("secret leaked: %s", out)
		}
	}
}

// receiver is a real endpoint on 127.0.0.1 that verifies every request.
type receiver struct {
	t      *testing.T
	secret webhook.Secret
	status []int // answered in turn; the last one repeats

	mu     sync.Mutex
	bodies [][]byte
	ids    []string
	errs   []error
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err == nil {
		err = webhook.Verify(rc.secret, r.Header, body, time.Now(), time.Minute)
	}
	if err == nil && r.Header.Get("content-type") != "application/json" {
		err = fmt.Errorf("content-type %q", r.Header.Get("content-type"))
	}
	if err == nil && r.Method != http.MethodPost {
		err = fmt.Errorf("method %s", r.Method)
	}
	rc.errs = append(rc.errs, err)
	rc.bodies = append(rc.bodies, body)
	rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
	n := len(rc.bodies) - 1
	status := rc.status[min(n, len(rc.status)-1)]
	if status == http.StatusFound {
		w.Header().Set("Location", "/elsewhere")
	}
	w.WriteHeader(status)
}

func newSender(t *testing.T, h http.Handler) (*webhook.Sender, webhook.Secret) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	sec := mustSecret(t, vecSecret)
	return &webhook.Sender{URL: srv.URL + "/hooks", Secret: sec}, sec
}

func testEvent() webhook.Event {
	return webhook.Event{
		Type:      "invite.sent",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)),
		Data:      json.RawMessage(`{"invite":"inv_1","app":"app_1","referrer":"u_1","status":"sent"}`),
	}
}

func TestSendRetryThenSuccess(t *testing.T) {
	t.Parallel()
	rc := &receiver{t: t, status: []int{http.StatusInternalServerError, http.StatusOK}}
	rc.secret = mustSecret(t, vecSecret)
	s, _ := newSender(t, rc)
	ctx := context.Background()

	err := s.Send(ctx, "evt_1", testEvent())
	var de *webhook.DeliveryError
	if !errors.As(err, &de) || de.StatusCode != 500 || !webhook.Retryable(err) {
		t.Fatalf("first Send = %v, want a retryable 500", err)
	}
	if err := s.Send(ctx, "evt_1", testEvent()); err != nil {
		t.Fatalf("second Send = %v", err)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bodies) != 2 {
		t.Fatalf("%d requests, want 2", len(rc.bodies))
	}
	for i := range rc.bodies {
		if rc.errs[i] != nil {
			t.Errorf("request %d: %v", i, rc.errs[i])
		}
		if rc.ids[i] != "evt_1" {
			t.Errorf("request %d: webhook-id %q", i, rc.ids[i])
		}
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(rc.bodies[1], &got); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	if len(got) != 3 || got["type"] == nil || got["timestamp"] == nil || got["data"] == nil {
		t.Fatalf("body keys %v, want type, timestamp, data", keys)
	}
	if string(got["timestamp"]) != `"2026-01-02T02:04:05Z"` {
		t.Errorf("timestamp %s, want UTC RFC 3339", got["timestamp"])
	}
	if strings.Contains(strings.ToLower(string(rc.bodies[1])), "email") {
		t.Errorf("body mentions email: %s", rc.bodies[1])
	}
}

func TestSendEmptyData(t *testing.T) {
	t.Parallel()
	rc := &receiver{t: t, status: []int{http.StatusNoContent}}
	rc.secret = mustSecret(t, vecSecret)
	s, _ := newSender(t, rc)
	ev := testEvent()
	ev.Data = nil
	if err := s.Send(context.Background(), "evt_2", ev); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !strings.Contains(string(rc.bodies[0]), `"data":{}`) || rc.errs[0] != nil {
		t.Fatalf("body %s, err %v", rc.bodies[0], rc.errs[0])
	}
}

func TestEventHasNoEmail(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[webhook.Event]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if strings.Contains(strings.ToLower(f.Name+" "+f.Tag.Get("json")), "email") ||
			strings.Contains(strings.ToLower(f.Name+" "+f.Tag.Get("json")), "address") {
			t.Errorf("Event has field %s", f.Name)
		}
	}
}

func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	rc := &receiver{t: t, status: []int{http.StatusFound}}
	rc.secret = mustSecret(t, vecSecret)
	mux := http.NewServeMux()
	mux.Handle("/hooks", rc)
	mux.HandleFunc("/elsewhere", func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) })
	s, _ := newSender(t, mux)
	for _, client := range []*http.Client{nil, {}} { // the default, and one that would follow
		s.Client = client
		err := s.Send(context.Background(), "evt_3", testEvent())
		var de *webhook.DeliveryError
		if !errors.As(err, &de) || de.StatusCode != http.StatusFound || !webhook.Retryable(err) {
			t.Fatalf("Send = %v, want a retryable 302", err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("redirect followed %d times", n)
	}
}

// countingTransport counts the response bytes the caller reads.
type countingTransport struct {
	rt   http.RoundTripper
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestSendHugeResponse(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var written atomic.Int64
	s, _ := newSender(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 64<<10)
		for range (10 << 20) / len(chunk) {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
		// Never end the body: a Send that read to EOF would hang here.
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer close(release)
	ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	s.Client = &http.Client{Transport: ct}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a safety net, not an assertion
	defer cancel()
	if err := s.Send(ctx, "evt_4", testEvent()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if n := ct.read.Load(); n > webhook.DefaultMaxBody {
		t.Fatalf("Send read %d bytes of the response, want at most %d", n, webhook.DefaultMaxBody)
	}
}

func TestSendNoAnswer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s, _ := newSender(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Send(ctx, "evt_5", testEvent())
	if !errors.Is(err, context.DeadlineExceeded) || !webhook.Retryable(err) {
		t.Fatalf("Send = %v, want a retryable deadline error", err)
	}
}

func TestSendRefusesConnection(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s := &webhook.Sender{URL: url, Secret: mustSecret(t, vecSecret)}
	if err := s.Send(context.Background(), "evt_6", testEvent()); !webhook.Retryable(err) {
		t.Fatalf("Send = %v, want a retryable error", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, vecSecret)
	tests := []struct {
		url    string
		secret webhook.Secret
		want   error
	}{
		{"https://example.com/hooks", sec, nil},
		{"http://127.0.0.1:8080/hooks?x=1", sec, nil},
		{"ftp://example.com/hooks", sec, webhook.ErrURL},
		{"file:///etc/passwd", sec, webhook.ErrURL},
		{"/hooks", sec, webhook.ErrURL},
		{"example.com/hooks", sec, webhook.ErrURL},
		{"https://", sec, webhook.ErrURL},
		{"https://example.com/hooks#x", sec, webhook.ErrURL},
		{"https://example.com/hooks#", sec, webhook.ErrURL},
		{"", sec, webhook.ErrURL},
		{"http://exa mple.com/", sec, webhook.ErrURL},
		{"https://example.com/hooks", webhook.Secret{}, webhook.ErrSecret},
	}
	for _, tt := range tests {
		s := &webhook.Sender{URL: tt.url, Secret: tt.secret}
		err := s.Check()
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Check(%q) = %v, want %v", tt.url, err, tt.want)
		}
		if tt.want != nil {
			if err := s.Send(context.Background(), "evt", testEvent()); !errors.Is(err, tt.want) || webhook.Retryable(err) {
				t.Errorf("Send(%q) = %v, want %v, not retryable", tt.url, err, tt.want)
			}
		}
	}
}

func TestSendBadEvent(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	s, _ := newSender(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	good := testEvent()
	tests := []struct {
		name string
		id   string
		ev   webhook.Event
	}{
		{"no id", "", good},
		{"no type", "e", webhook.Event{Timestamp: good.Timestamp, Data: good.Data}},
		{"no timestamp", "e", webhook.Event{Type: good.Type, Data: good.Data}},
		{"data an array", "e", webhook.Event{Type: good.Type, Timestamp: good.Timestamp, Data: json.RawMessage(`[1]`)}},
		{"data not JSON", "e", webhook.Event{Type: good.Type, Timestamp: good.Timestamp, Data: json.RawMessage(`{x`)}},
	}
	for _, tt := range tests {
		if err := s.Send(context.Background(), tt.id, tt.ev); !errors.Is(err, webhook.ErrEvent) || webhook.Retryable(err) {
			t.Errorf("%s: Send = %v, want ErrEvent", tt.name, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d requests sent for bad events", n)
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	first := 30 * time.Second
	tests := []struct {
		attempt int
		first   time.Duration
		d       time.Duration // before jitter
	}{
		{-1, first, first},
		{0, first, first},
		{1, first, first},
		{2, first, 2 * first},
		{3, first, 4 * first},
		{6, first, 32 * first},
		{7, first, 64 * first},
		{8, first, time.Hour}, // 64 * 30s is past the cap
		{1000, first, time.Hour},
		{1 << 62, first, time.Hour},
		{1, 2 * time.Hour, time.Hour},
		{1, 0, time.Second},
		{3, -time.Minute, 4 * time.Second},
		{2, time.Nanosecond, 2 * time.Nanosecond},
	}
	for _, tt := range tests {
		for range 200 {
			got := webhook.Backoff(tt.attempt, tt.first)
			if got < tt.d/2 || got > tt.d {
				t.Fatalf("Backoff(%d, %v) = %v, want in [%v, %v]", tt.attempt, tt.first, got, tt.d/2, tt.d)
			}
		}
	}
	if webhook.RetryFor < 72*time.Hour {
		t.Fatalf("RetryFor = %v, want at least 3 days", webhook.RetryFor)
	}
}

func TestBackoffJitters(t *testing.T) {
	t.Parallel()
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[webhook.Backoff(5, time.Second)] = true
	}
	if len(seen) < 2 {
		t.Fatalf("Backoff gave one value in 100 calls: no jitter")
	}
}

// A retry schedule from the first back-off reaches RetryFor in a bounded
// number of attempts, so the worker gives up rather than retrying forever.
func TestBackoffReachesRetryFor(t *testing.T) {
	t.Parallel()
	var total time.Duration
	attempts := 0
	for total < webhook.RetryFor {
		attempts++
		total += webhook.Backoff(attempts, time.Second)
	}
	if attempts > 200 {
		t.Fatalf("%d attempts to cover RetryFor", attempts)
	}
}

// A referral event goes out with its id as webhook-id, its type and time,
// and ids only in data.
func TestSendEvent(t *testing.T) {
	t.Parallel()
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	var got struct {
		id   string
		body []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhook.Verify(secret, r.Header, body, time.Now(), 0) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got.id, got.body = r.Header.Get("webhook-id"), body
	}))
	defer srv.Close()
	s := &webhook.Sender{URL: srv.URL, Secret: secret}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, s.SendEvent(context.Background(), referral.Event{
		ID: "01890000-0000-7000-8000-000000000001", Type: referral.EventReferralRedeemed, At: at,
		AppID: "app", ReferrerID: "42", Code: "ABCDEFGHJK", NewUserID: "43",
	}))
	assert.Equal(t, "01890000-0000-7000-8000-000000000001", got.id)
	assert.JSONEq(t, `{"type":"referral.redeemed","timestamp":"2026-12-01T10:00:00Z",
		"data":{"appId":"app","referrerId":"42","code":"ABCDEFGHJK","newUserId":"43"}}`, string(got.body))
}
