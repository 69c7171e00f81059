package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/referralkit/referralkit/webhook"
)

// Sign a message and check it as a receiver would, with the Standard
// Webhooks reference vector.
func ExampleSign() {
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		fmt.Println(err)
		return
	}
	id := "msg_p5jXN8AQM9LWM0D4loKWxJek"
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)

	sig := webhook.Sign(secret, id, ts, body)
	fmt.Println(sig)

	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	fmt.Println(webhook.Verify(secret, h, body, ts.Add(time.Minute), 5*time.Minute))
	fmt.Println(webhook.Verify(secret, h, []byte(`{"test": 1}`), ts, 5*time.Minute))
	fmt.Println(secret)
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// <nil>
	// webhook: invalid signature: no v1 signature matches
	// whsec_REDACTED
}

// Deliver one event to a receiver that verifies it.
func ExampleSender_Send() {
	secret, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := webhook.Verify(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Println("received", r.Header.Get("webhook-id"))
	}))
	defer srv.Close()

	s := &webhook.Sender{URL: srv.URL, Secret: secret}
	err := s.Send(context.Background(), "evt_1", webhook.Event{
		Type:      "invite.sent",
		Timestamp: time.Now(),
		Data:      json.RawMessage(`{"invite":"inv_1","status":"sent"}`),
	})
	fmt.Println(err, webhook.Retryable(err))
	// Output:
	// received evt_1
	// <nil> false
}
