package referral_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// BenchmarkWorkerDelivery times the queued worker delivering b.N invites to
// an in-process SMTP server over loopback, with STARTTLS and AUTH, keeping
// one connection open (Reuse, the default) or opening one per message
// (NoReuse), which adds a TCP connect, EHLO, a TLS handshake and AUTH to
// each. Recording the invites is not timed.
//
//	go test -run '^$' -bench WorkerDelivery -benchtime 2000x -count 3 ./referral/
func BenchmarkWorkerDelivery(b *testing.B) {
	for _, bc := range []struct {
		name        string
		idleTimeout time.Duration
	}{
		{"Reuse", 0},    // smtp.DefaultIdleTimeout
		{"NoReuse", -1}, // close after every message
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := e2eServer(b)
			mailer := e2eMailer(b, srv, func(c *smtp.Config) { c.IdleTimeout = bc.idleTimeout })
			store := memory.New()
			cfg := e2eConfig(store, mailer, io.Discard, func(c *referral.Config) {
				// b.N invites from one referrer, all due at once.
				c.MaxInvitesPerReferrer = -1
				c.Cooldown = -1
			})
			h, err := referral.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			for i := range b.N {
				if rec := e2ePost(h, fmt.Sprintf("friend%d@example.com", i), "de"); rec.Code != http.StatusCreated {
					b.Fatalf("invite %d: %d %s", i, rec.Code, rec.Body)
				}
			}
			ctx := context.Background()

			b.ResetTimer()
			for {
				n, err := h.DeliverDue(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			b.StopTimer()

			// Every invite went out on its first attempt: a failure would
			// have left it waiting for a back-off and is an error here.
			if got := len(srv.Messages()); got != b.N {
				b.Fatalf("server received %d messages, want %d", got, b.N)
			}
			for _, inv := range store.Invites() {
				if inv.Status != referral.StatusSent {
					b.Fatalf("invite %s is %s: %s", inv.ID, inv.Status, inv.LastError)
				}
			}
			// The knob did what it says: one connection, or one per message.
			conns := srv.Connections()
			if bc.idleTimeout < 0 && conns < b.N || bc.idleTimeout >= 0 && conns > smtp.DefaultMaxConns {
				b.Fatalf("%d connections for %d messages", conns, b.N)
			}
			b.ReportMetric(float64(conns), "conns")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
		})
	}
}
