package referral_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// discardMailer accepts every message and keeps nothing, so that the
// benchmark's memory does not grow with b.N on the mailer's side.
type discardMailer struct{ n atomic.Int64 }

func (d *discardMailer) Send(ctx context.Context, m mail.Message) error {
	d.n.Add(1)
	return nil
}

// benchRequests makes n distinct requests spread over 10,000 referrers, so
// that neither the limit nor the cooldown refuses any within the run.
func benchRequests(n int) []*http.Request {
	users := make([]string, 10000)
	for i := range users {
		users[i] = uuid.NewString()
	}
	reqs := make([]*http.Request, n)
	for i := range reqs {
		body := `{"email":"friend` + strconv.Itoa(i) + `@example.com","language":"de-AT"}`
		req := httptest.NewRequest(http.MethodPost, "/v1/users/"+users[i%len(users)]+"/referral-invites", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		reqs[i] = req
	}
	return reqs
}

// nopWriter is a ResponseWriter that keeps headers and drops the body.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }

func runBench(b *testing.B, h http.Handler) {
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, h)
	reqs := benchRequests(b.N)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		clear(w.h)
		mux.ServeHTTP(w, reqs[i])
		if w.code != http.StatusCreated {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkHandler measures the whole route with a memory store, a
// discarding mailer and a trivial authenticator.
func BenchmarkHandler(b *testing.B) {
	var clock atomic.Int64
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := memory.New()
	h, err := referral.New(referral.Config{
		Auth: referral.AuthenticatorFunc(func(r *http.Request, userID string) (referral.Principal, error) {
			return referral.Principal{AppID: appID, Method: "test"}, nil
		}),
		Store:          store,
		Recipients:     store,
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
		Mailer:         &discardMailer{},
		From:           "Acme <no-reply@acme.example>",
		SignupURL:      "https://acme.example/signup?ref={code}",
		Logger:         discardLogger(),
		// One second per request keeps every referrer far below the limit.
		Now: func() time.Time { return start.Add(time.Duration(clock.Add(1)) * time.Second) },
	})
	if err != nil {
		b.Fatal(err)
	}
	runBench(b, h)
}

// BenchmarkBaseline is the least a handler of this route can do: decode
// the same JSON body and write the same 201 envelope.
func BenchmarkBaseline(b *testing.B) {
	runBench(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Email    string `json:"email"`
			Language string `json:"language"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.PathValue("userId") == "" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"success":true,"message":"Invite sent.","error":null,"data":null}`))
	}))
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
