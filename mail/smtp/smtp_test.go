package smtp_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rkmail "github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/mail/smtp/smtptest"
)

const (
	code = "K7M2-QX9P"
	link = "https://app.example.com/signup?ref=K7M2-QX9P"
)

func message(id, subject string) rkmail.Message {
	return rkmail.Message{
		ID:       id,
		From:     "Referrals <no-reply@example.com>",
		To:       "friend@example.org",
		Date:     time.Date(2025, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600)),
		Subject:  subject,
		Text:     "Dein Code: " + code + "\nMelde dich an: " + link + "\n",
		HTML:     `<p>Dein Code: <b>` + code + `</b></p><p><a href="` + link + `">Anmelden</a></p>`,
		Language: "de",
	}
}

// newMailer returns a Mailer for srv trusting its certificate, with
// change applied to the configuration first.
func newMailer(t testing.TB, srv *smtptest.Server, change func(*smtp.Config)) *smtp.Mailer {
	t.Helper()
	cfg := smtp.Config{
		Host:      srv.Host(),
		Port:      srv.Port(),
		TLSConfig: &tls.Config{RootCAs: srv.RootCAs()},
		HELO:      "client.test",
	}
	return mailerFor(t, cfg, change)
}

// mailerFor returns a Mailer for cfg with change applied, closed at the
// test's end.
func mailerFor(t testing.TB, cfg smtp.Config, change func(*smtp.Config)) *smtp.Mailer {
	t.Helper()
	if change != nil {
		change(&cfg)
	}
	m, err := smtp.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestSendRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, subject string }{
		{"ascii", "Your invitation"},
		{"german", "Einladung: Grüße für dich"},
		{"japanese", "ご招待のお知らせ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{})
			m := newMailer(t, srv, nil)
			msg := message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192", tt.subject)
			require.NoError(t, m.Send(context.Background(), msg))

			got := srv.Messages()
			require.Len(t, got, 1)
			assert.Equal(t, "no-reply@example.com", got[0].From)
			assert.Equal(t, []string{"friend@example.org"}, got[0].To)
			assert.True(t, got[0].TLS, "STARTTLS is the default")
			for i, b := range got[0].Data {
				require.Less(t, b, byte(0x80), "byte %d is not 7-bit: headers and bodies must be encoded", i)
			}

			p, err := smtptest.Parse(got[0].Data)
			require.NoError(t, err)
			assert.Equal(t, tt.subject, p.Subject)
			assert.Equal(t, "<0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192@example.com>", p.Header.Get("Message-ID"))
			assert.Equal(t, msg.MessageID(), p.Header.Get("Message-ID"))
			date, err := p.Header.Date()
			require.NoError(t, err)
			assert.True(t, date.Equal(msg.Date), "Date %v, want %v", date, msg.Date)
			from, err := mail.ParseAddress(p.Header.Get("From"))
			require.NoError(t, err)
			assert.Equal(t, "Referrals", from.Name)
			assert.Equal(t, "no-reply@example.com", from.Address)
			assert.Equal(t, "<friend@example.org>", p.Header.Get("To"))
			assert.Equal(t, "de", p.Header.Get("Content-Language"))
			assert.Equal(t, "1.0", p.Header.Get("MIME-Version"))
			assert.Equal(t, "multipart/alternative", p.ContentType)
			assert.Equal(t, []string{"text/plain", "text/html"}, p.Parts)
			assert.Equal(t, msg.Text, p.Text)
			assert.Equal(t, msg.HTML, p.HTML)
			assert.Contains(t, p.Text, link)
			assert.Contains(t, p.HTML, code)
		})
	}
}

func TestSendTextOnly(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	msg := message("text-only", "Einladung")
	msg.HTML = ""
	require.NoError(t, m.Send(context.Background(), msg))
	require.Len(t, srv.Messages(), 1)
	p, err := smtptest.Parse(srv.Messages()[0].Data)
	require.NoError(t, err)
	assert.Equal(t, "text/plain", p.ContentType)
	assert.Equal(t, msg.Text, p.Text)
}

func TestTLSModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		server  smtptest.Options
		change  func(*smtp.Config)
		wantTLS bool
		wantErr bool
	}{
		{name: "starttls", wantTLS: true},
		{
			name:    "implicit tls",
			server:  smtptest.Options{ImplicitTLS: true},
			change:  func(c *smtp.Config) { c.TLS = smtp.ImplicitTLS },
			wantTLS: true,
		},
		{
			name:   "none to loopback",
			server: smtptest.Options{NoTLS: true},
			change: func(c *smtp.Config) { c.TLS = smtp.NoTLS },
		},
		{
			name:    "starttls with an untrusted certificate",
			change:  func(c *smtp.Config) { c.TLSConfig = nil },
			wantErr: true,
		},
		{
			name:    "implicit tls with an untrusted certificate",
			server:  smtptest.Options{ImplicitTLS: true},
			change:  func(c *smtp.Config) { c.TLS, c.TLSConfig = smtp.ImplicitTLS, nil },
			wantErr: true,
		},
		{
			name:    "starttls is mandatory",
			server:  smtptest.Options{NoTLS: true},
			wantErr: true,
		},
		{
			name:    "certificate for another name",
			change:  func(c *smtp.Config) { c.TLSConfig.ServerName = "mail.example.com" },
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, tt.server)
			m := newMailer(t, srv, tt.change)
			err := m.Send(context.Background(), message("tls", "Einladung"))
			if tt.wantErr {
				require.Error(t, err)
				assert.NotErrorIs(t, err, rkmail.ErrPermanent, "a TLS problem is the server's, not the message's")
				assert.Empty(t, srv.Messages())
				return
			}
			require.NoError(t, err)
			require.Len(t, srv.Messages(), 1)
			assert.Equal(t, tt.wantTLS, srv.Messages()[0].TLS)
		})
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const user, pass = "mailer", "s3cret-Pa55"
	tests := []struct {
		name     string
		mechs    []string
		password string
		wantErr  bool
	}{
		{name: "plain", password: pass},
		{name: "login only", mechs: []string{"LOGIN"}, password: pass},
		{name: "wrong password", password: "not-the-password", wantErr: true},
		{name: "no password", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{Username: user, Password: pass, AuthMechanisms: tt.mechs})
			m := newMailer(t, srv, func(c *smtp.Config) { c.Username, c.Password = user, tt.password })
			err := m.Send(context.Background(), message("auth", "Einladung"))
			if tt.wantErr {
				require.Error(t, err)
				assert.NotErrorIs(t, err, rkmail.ErrPermanent, "refused AUTH is a configuration problem: keep the message")
				if tt.password != "" {
					assert.NotContains(t, err.Error(), tt.password)
				}
				assert.Empty(t, srv.Messages())
				return
			}
			require.NoError(t, err)
			require.Len(t, srv.Messages(), 1)
			assert.Equal(t, user, srv.Messages()[0].User)
		})
	}
}

func TestNewRejectsConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  smtp.Config
	}{
		{"no host", smtp.Config{}},
		{"none to a remote host", smtp.Config{Host: "mail.example.com", TLS: smtp.NoTLS}},
		{"none to a remote address", smtp.Config{Host: "192.0.2.10", TLS: smtp.NoTLS}},
		{"credentials without tls", smtp.Config{Host: "127.0.0.1", TLS: smtp.NoTLS, Username: "u", Password: "p"}},
		{"password without user", smtp.Config{Host: "mail.example.com", Password: "p"}},
		{"bad port", smtp.Config{Host: "mail.example.com", Port: 70000}},
		{"unknown tls mode", smtp.Config{Host: "mail.example.com", TLS: smtp.TLSMode(9)}},
		{"negative timeout", smtp.Config{Host: "mail.example.com", CommandTimeout: -time.Second}},
		{"helo with a space", smtp.Config{Host: "mail.example.com", HELO: "a b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := smtp.New(tt.cfg)
			require.Error(t, err)
		})
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		_, err := smtp.New(smtp.Config{Host: host, TLS: smtp.NoTLS})
		assert.NoError(t, err, "none to %s", host)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	good := []struct {
		url  string
		want smtp.Config
	}{
		{"smtp://mail.example.com", smtp.Config{Host: "mail.example.com", Port: 0, TLS: smtp.StartTLS}},
		{"smtp://u:p@mail.example.com:2525?tls=starttls", smtp.Config{Host: "mail.example.com", Port: 2525, Username: "u", Password: "p"}},
		{"smtp://u%40example.com:p%3Ass%2Fw%40rd@mail.example.com?tls=tls", smtp.Config{Host: "mail.example.com", Username: "u@example.com", Password: "p:ss/w@rd", TLS: smtp.ImplicitTLS}},
		{"smtp://127.0.0.1:1025?tls=none", smtp.Config{Host: "127.0.0.1", Port: 1025, TLS: smtp.NoTLS}},
		{"smtp://[::1]?tls=none", smtp.Config{Host: "::1", TLS: smtp.NoTLS}},
		{"smtp://mail.example.com/", smtp.Config{Host: "mail.example.com"}},
	}
	for _, tt := range good {
		got, err := smtp.ParseURL(tt.url)
		if assert.NoError(t, err, tt.url) {
			assert.Equal(t, tt.want, got, tt.url)
		}
	}

	const secret = "Sup3rSecret"
	bad := []string{
		"",
		"mail.example.com",
		"smtps://u:" + secret + "@mail.example.com",
		"smtp://u:" + secret + "@mail.example.com?tls=ssl",
		"smtp://u:" + secret + "@mail.example.com?tls=none",
		"smtp://u:" + secret + "@127.0.0.1?tls=none",
		"smtp://u:" + secret + "@mail.example.com?tls=tls&tls=none",
		"smtp://u:" + secret + "@mail.example.com?timeout=3s",
		"smtp://u:" + secret + "@mail.example.com:99999",
		"smtp://u:" + secret + "@mail.example.com:port",
		"smtp://u:" + secret + "%zz@mail.example.com",
		"smtp://u:" + secret + "@mail.example.com/path",
		"smtp://u:" + secret + "@mail.example.com#frag",
		"smtp://u:" + secret + "@",
		"smtp://:" + secret + "@mail.example.com",
		"smtp://u:" + secret + "@mail.example.com?tls=%zz",
	}
	for _, raw := range bad {
		_, err := smtp.ParseURL(raw)
		if assert.Error(t, err, raw) {
			assert.NotContains(t, err.Error(), secret, raw)
		}
	}
}

func TestConfigStringRedactsPassword(t *testing.T) {
	t.Parallel()
	cfg := smtp.Config{Host: "mail.example.com", Username: "u", Password: "Sup3rSecret"}
	assert.NotContains(t, cfg.String(), "Sup3rSecret")
	assert.NotContains(t, fmt.Sprint(cfg), "Sup3rSecret")
	assert.Equal(t, "smtp://u:xxxxx@mail.example.com:587?tls=starttls", cfg.String())
}

func TestReplyCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		fault         smtptest.Fault
		wantPermanent bool
		wantRefused   bool // the recipient's refusal, not the sender's
	}{
		{"451 to MAIL", smtptest.Fault{At: smtptest.AtMail, Code: 451, Times: 1}, false, false},
		{"452 to RCPT", smtptest.Fault{At: smtptest.AtRcpt, Code: 452, Times: 1}, false, false},
		{"451 after DATA", smtptest.Fault{At: smtptest.AtData, Code: 451, Times: 1}, false, false},
		{"550 to MAIL", smtptest.Fault{At: smtptest.AtMail, Code: 550, Times: 1}, true, false},
		{"550 to RCPT", smtptest.Fault{At: smtptest.AtRcpt, Code: 550, Times: 1}, true, true},
		{"554 after DATA", smtptest.Fault{At: smtptest.AtData, Code: 554, Times: 1}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{})
			m := newMailer(t, srv, nil)
			srv.SetFault(tt.fault)
			err := m.Send(context.Background(), message("refused", "Einladung"))
			require.Error(t, err)
			assert.Equal(t, tt.wantPermanent, errors.Is(err, rkmail.ErrPermanent), "error: %v", err)
			assert.Equal(t, tt.wantRefused, errors.Is(err, rkmail.ErrRecipientRefused), "error: %v", err)
			assert.Empty(t, srv.Messages())

			// The fault was for one message: the next goes through.
			require.NoError(t, m.Send(context.Background(), message("next", "Einladung")))
			assert.Len(t, srv.Messages(), 1)
		})
	}
}

func TestPermanentRefusalEveryTime(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	srv.SetFault(smtptest.Fault{At: smtptest.AtRcpt, Code: 550, Times: -1})
	for i := range 3 {
		err := m.Send(context.Background(), message(fmt.Sprint(i), "Einladung"))
		require.ErrorIs(t, err, rkmail.ErrPermanent)
	}
	assert.Empty(t, srv.Messages())
}

func TestServerStopsAnswering(t *testing.T) {
	t.Parallel()
	tests := []smtptest.Stage{smtptest.AtMail, smtptest.AtData}
	for _, at := range tests {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			t.Parallel()
			// Plaintext keeps TLS handshakes out of the short budget.
			srv := smtptest.New(t, smtptest.Options{NoTLS: true})
			m := newMailer(t, srv, func(c *smtp.Config) {
				c.TLS = smtp.NoTLS
				c.CommandTimeout = 300 * time.Millisecond
			})
			srv.SetFault(smtptest.Fault{At: at, Hang: true, Times: 1})
			err := m.Send(context.Background(), message("hang", "Einladung"))
			require.Error(t, err)
			assert.NotErrorIs(t, err, rkmail.ErrPermanent)

			require.NoError(t, m.Send(context.Background(), message("next", "Einladung")))
			assert.Len(t, srv.Messages(), 1)
		})
	}
}

func TestContextCancelAbortsSend(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, func(c *smtp.Config) { c.CommandTimeout = time.Minute })
	srv.SetFault(smtptest.Fault{At: smtptest.AtData, Hang: true, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := m.Send(ctx, message("cancel", "Einladung"))
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, rkmail.ErrPermanent)

	require.NoError(t, m.Send(context.Background(), message("next", "Einladung")))
	assert.Len(t, srv.Messages(), 1)
}

func TestCancelledContextSendsNothing(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := m.Send(ctx, message("cancelled", "Einladung"))
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, srv.Connections())
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	srv.Stop()
	err := m.Send(context.Background(), message("refused", "Einladung"))
	require.Error(t, err)
	assert.NotErrorIs(t, err, rkmail.ErrPermanent)

	srv.Start()
	require.NoError(t, m.Send(context.Background(), message("again", "Einladung")))
	assert.Len(t, srv.Messages(), 1)
}

func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	for i := range 20 {
		require.NoError(t, m.Send(context.Background(), message(fmt.Sprint(i), "Einladung")))
	}
	assert.Len(t, srv.Messages(), 20)
	assert.Equal(t, 1, srv.Connections())
}

// A reused connection goes straight on to the next message: no RSET or
// NOOP first, each of which cost a round trip per message.
func TestReuseSendsNoReset(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	for i := range 3 {
		require.NoError(t, m.Send(context.Background(), message(fmt.Sprint(i), "Einladung")))
	}
	assert.Equal(t, 1, srv.Connections())
	assert.Equal(t, 3, srv.Commands("MAIL"))
	assert.Zero(t, srv.Commands("RSET"))
	assert.Zero(t, srv.Commands("NOOP"))
}

// A server closing an idle connection may say so (421, or a goodbye
// such as 221 that answers nothing) only when the next command comes: the
// message then goes over a new connection, as nothing of it was taken. On
// a new connection a 421 is an answer.
func TestRedialAfter421OnReuse(t *testing.T) {
	t.Parallel()
	for _, code := range []int{421, 221} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{})
			m := newMailer(t, srv, nil)
			require.NoError(t, m.Send(context.Background(), message("1", "Einladung")))
			srv.SetFault(smtptest.Fault{At: smtptest.AtMail, Code: code, Times: 1})
			require.NoError(t, m.Send(context.Background(), message("2", "Einladung")))
			assert.Len(t, srv.Messages(), 2)
			assert.Equal(t, 2, srv.Connections())
		})
	}

	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	require.NoError(t, m.Send(context.Background(), message("1", "Einladung")))
	srv.DropConnections()
	srv.SetFault(smtptest.Fault{At: smtptest.AtMail, Code: 421, Times: 1})
	err := m.Send(context.Background(), message("2", "Einladung"))
	require.Error(t, err, "the dropped connection was dialled again, and that one said 421")
	assert.NotErrorIs(t, err, rkmail.ErrPermanent)
	assert.Len(t, srv.Messages(), 1)
}

func TestNoReuse(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, func(c *smtp.Config) { c.IdleTimeout = -1 })
	for i := range 3 {
		require.NoError(t, m.Send(context.Background(), message(fmt.Sprint(i), "Einladung")))
	}
	assert.Equal(t, 3, srv.Connections())
	require.Eventually(t, func() bool { return srv.OpenConnections() == 0 }, 10*time.Second, 10*time.Millisecond)
}

func TestRedialAfterServerDrop(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	require.NoError(t, m.Send(context.Background(), message("1", "Einladung")))
	srv.DropConnections()
	require.NoError(t, m.Send(context.Background(), message("2", "Einladung")))
	assert.Len(t, srv.Messages(), 2)
	assert.Equal(t, 2, srv.Connections())
}

func TestIdleConnectionIsClosed(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, func(c *smtp.Config) { c.IdleTimeout = 50 * time.Millisecond })
	require.NoError(t, m.Send(context.Background(), message("1", "Einladung")))
	require.Eventually(t, func() bool { return srv.OpenConnections() == 0 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, m.Send(context.Background(), message("2", "Einladung")))
	assert.Equal(t, 2, srv.Connections())
}

func TestCloseThenSend(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	require.NoError(t, m.Send(context.Background(), message("1", "Einladung")))
	require.NoError(t, m.Close())
	require.Eventually(t, func() bool { return srv.OpenConnections() == 0 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, m.Send(context.Background(), message("2", "Einladung")))
	assert.Len(t, srv.Messages(), 2)
}

func TestRandomDrops(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	srv.SetDropRate(0.3)
	sent := map[string]bool{}
	for i := range 30 {
		msg := message(fmt.Sprint(i), "Einladung")
		err := m.Send(context.Background(), msg)
		if err != nil {
			require.NotErrorIs(t, err, rkmail.ErrPermanent, "a dropped connection is transient")
			continue
		}
		sent[msg.MessageID()] = true
	}
	got := map[string]bool{}
	for _, r := range srv.Messages() {
		p, err := smtptest.Parse(r.Data)
		require.NoError(t, err)
		id := p.Header.Get("Message-ID")
		require.False(t, got[id], "%s delivered twice", id)
		got[id] = true
	}
	assert.Equal(t, sent, got, "every reported success arrived, nothing else did")
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, func(c *smtp.Config) { c.MaxConns = 2 })
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				errs <- m.Send(context.Background(), message(fmt.Sprint(g, "-", i), "Einladung"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, srv.Messages(), 40)
	assert.LessOrEqual(t, srv.Connections(), 2, "MaxConns caps the connections")
}

func TestHeaderInjectionRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*rkmail.Message)
	}{
		{"subject", func(m *rkmail.Message) { m.Subject = "Hi\r\nBcc: victim@example.net" }},
		{"subject LF", func(m *rkmail.Message) { m.Subject = "Hi\nBcc: victim@example.net" }},
		{"from", func(m *rkmail.Message) { m.From = "a@example.com\r\nBcc: victim@example.net" }},
		{"to", func(m *rkmail.Message) { m.To = "friend@example.org\nBcc: victim@example.net" }},
		{"language", func(m *rkmail.Message) { m.Language = "de\r\nX-Evil: 1" }},
		{"id", func(m *rkmail.Message) { m.ID = "x>\r\nBcc: victim@example.net" }},
		{"to not an address", func(m *rkmail.Message) { m.To = "not an address" }},
	}
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := message("inject", "Einladung")
			tt.change(&msg)
			err := m.Send(context.Background(), msg)
			require.ErrorIs(t, err, rkmail.ErrBadMessage)
			assert.ErrorIs(t, err, rkmail.ErrPermanent)
		})
	}
	assert.Zero(t, srv.Connections(), "nothing reached the server")
}
