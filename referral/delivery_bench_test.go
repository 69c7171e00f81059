package referral_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
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
// each. Both use the memory store; SQLite is Reuse with a SQLite file for
// store and as Config.Referrers, as the standalone server runs it: each
// claim, due check and outcome is a real read or write. Recording the
// invites is not timed. cpu-ns/op is the process's CPU per message, the
// in-process SMTP server's included.
//
//	go test -run '^$' -bench WorkerDelivery -benchtime 2000x -count 3 ./referral/
func BenchmarkWorkerDelivery(b *testing.B) {
	for _, bc := range []struct {
		name        string
		idleTimeout time.Duration
		sqlite      bool
	}{
		{"Reuse", 0, false},    // smtp.DefaultIdleTimeout
		{"NoReuse", -1, false}, // close after every message
		{"SQLite", 0, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := e2eServer(b)
			mailer := e2eMailer(b, srv, func(c *smtp.Config) { c.IdleTimeout = bc.idleTimeout })
			var store interface {
				referral.CodeStore
				referral.RecipientStore
				referral.ReferrerStore
			} = memory.New()
			if bc.sqlite {
				store = e2eSQLite(b, filepath.Join(b.TempDir(), "referral.db"))
			}
			cfg := e2eConfig(store, mailer, io.Discard, func(c *referral.Config) {
				// b.N invites from one referrer, all due at once.
				c.MaxInvitesPerReferrer = -1
				c.Cooldown = -1
				if bc.sqlite {
					c.Referrers = store
				}
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

			cpu0, cpuKnown := processCPU()
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
			if cpu1, ok := processCPU(); ok && cpuKnown {
				// The worker's and the SMTP server's: steadier than the
				// wall time, which waits for commits.
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}

			// Every invite went out on its first attempt: a failure would
			// have left it waiting for a back-off and is an error here.
			if got := len(srv.Messages()); got != b.N {
				b.Fatalf("server received %d messages, want %d", got, b.N)
			}
			for _, inv := range e2eInvites(b, store) {
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
