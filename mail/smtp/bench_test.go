package smtp_test

import (
	"context"
	"testing"
	"time"

	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/mail/smtp/smtptest"
)

// BenchmarkSend sends to the in-process server over loopback with STARTTLS,
// keeping the connection (Reuse) against a new connection, TLS handshake
// included, per message (NoReuse).
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name string
		idle int // Config.IdleTimeout; negative closes after each message
	}{
		{"Reuse", 0},
		{"NoReuse", -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := smtptest.New(b, smtptest.Options{})
			m := newMailer(b, srv, func(c *smtp.Config) { c.IdleTimeout = time.Duration(bc.idle) })
			msg := message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192", "Einladung: Grüße für dich")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
			b.ReportMetric(float64(srv.Connections()), "conns")
		})
	}
}
