package referral_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/mail/smtp/smtptest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
	"github.com/referralkit/referralkit/store/sqlite"
)

// End-to-end delivery: the handler and its worker against a real SMTP
// server (smtptest, over loopback), the real SMTP mailer and, where more
// than one worker or process is involved, the SQLite store.

const (
	e2eUser      = "mailer"
	e2ePass      = "p@ss word" // needs percent-encoding in the URL
	e2eFrom      = "Acme <no-reply@acme.example>"
	e2eSignupURL = "https://acme.example/signup?ref={code}"
	// e2eWait bounds every wait for the worker; it is never reached when
	// the code works.
	e2eWait = 20 * time.Second
)

// e2eMessageID is the Message-ID an invite's email must carry: its id at
// the domain of e2eFrom.
func e2eMessageID(inviteID string) string { return "<" + inviteID + "@acme.example>" }

// e2eServer starts an SMTP server that offers STARTTLS and requires AUTH.
func e2eServer(t testing.TB) *smtptest.Server {
	t.Helper()
	return smtptest.New(t, smtptest.Options{Username: e2eUser, Password: e2ePass})
}

// e2eMailer returns a Mailer for srv built the way an operator would, from
// an smtp:// URL, trusting srv's certificate; tweak, if set, changes the
// configuration first.
func e2eMailer(t testing.TB, srv *smtptest.Server, tweak func(*smtp.Config)) *smtp.Mailer {
	t.Helper()
	u := url.URL{Scheme: "smtp", User: url.UserPassword(e2eUser, e2ePass), Host: srv.Addr(), RawQuery: "tls=starttls"}
	cfg, err := smtp.ParseURL(u.String())
	require.NoError(t, err)
	cfg.TLSConfig = &tls.Config{RootCAs: srv.RootCAs()}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := smtp.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// e2ePlainMailer returns a Mailer for a NoTLS server at addr: what a child
// process uses, as it cannot trust the parent's runtime certificate.
func e2ePlainMailer(addr string) (*smtp.Mailer, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	return smtp.New(smtp.Config{Host: host, Port: p, TLS: smtp.NoTLS})
}

// e2eConfig is the handler configuration shared by these tests, queued
// by default; configure changes it.
func e2eConfig(store referral.CodeStore, m referral.Mailer, logs io.Writer, configure ...func(*referral.Config)) referral.Config {
	cfg := referral.Config{
		Auth:      referral.AuthenticatorFunc(testAuth),
		Store:     store,
		Mailer:    m,
		From:      e2eFrom,
		SignupURL: e2eSignupURL,
		Delivery:  referral.Queued,
		// The stores of these tests are RecipientStores too.
		Recipients:     store.(referral.RecipientStore),
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
		SendTimeout:    5 * time.Second,
		PollInterval:   5 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, c := range configure {
		c(&cfg)
	}
	return cfg
}

func e2eHandler(t testing.TB, store referral.CodeStore, m referral.Mailer, configure ...func(*referral.Config)) *referral.Handler {
	t.Helper()
	h, err := referral.New(e2eConfig(store, m, t.Output(), configure...))
	require.NoError(t, err)
	return h
}

// e2eSQLite opens (creating) the store file at path, closed at cleanup.
func e2eSQLite(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// e2eInvites lists the invites of a memory or SQLite store. It reports a
// failure with Errorf so that it may run inside require.Eventually.
func e2eInvites(t testing.TB, s referral.CodeStore) []referral.Invite {
	switch s := s.(type) {
	case *memory.Store:
		return s.Invites()
	case *sqlite.Store:
		invs, err := s.Invites(context.Background())
		if err != nil {
			t.Errorf("listing invites: %v", err)
		}
		return invs
	}
	t.Errorf("e2eInvites: unknown store %T", s)
	return nil
}

// e2eAllFinal reports whether the store holds n invites and none is
// pending.
func e2eAllFinal(t testing.TB, s referral.CodeStore, n int) bool {
	invs := e2eInvites(t, s)
	for _, inv := range invs {
		if inv.Status == referral.StatusPending {
			return false
		}
	}
	return len(invs) == n
}

// e2ePost sends one invite request through a ServeMux, as mounted in
// production.
func e2ePost(h http.Handler, email, lang string) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, newRequest(http.MethodPost, path, invite(email, lang)))
	return rec
}

// e2ePostN posts n invites to distinct addresses and checks each is
// accepted.
func e2ePostN(t *testing.T, h http.Handler, n int) {
	t.Helper()
	for i := range n {
		checkEnvelope(t, e2ePost(h, fmt.Sprintf("friend%d@example.com", i), "en"), http.StatusCreated)
	}
}

// e2eDrain calls DeliverDue until it claims nothing and returns how many
// it claimed in all.
func e2eDrain(t testing.TB, h *referral.Handler) int {
	t.Helper()
	total := 0
	for range 1000 {
		n, err := h.DeliverDue(context.Background())
		require.NoError(t, err)
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("DeliverDue still claims invites after 1000 rounds")
	return total
}

// e2eRun runs h's worker until the returned stop is called (at the latest
// at cleanup), and checks that it stopped as Run promises.
func e2eRun(t testing.TB, h *referral.Handler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			assert.ErrorIs(t, <-done, context.Canceled)
		})
	}
	t.Cleanup(stop)
	return stop
}

// e2eReceived parses every message srv accepted and counts them by
// Message-ID.
func e2eReceived(t testing.TB, srv *smtptest.Server) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, m := range srv.Messages() {
		p, err := smtptest.Parse(m.Data)
		require.NoError(t, err)
		counts[p.Header.Get("Message-ID")]++
	}
	return counts
}

// e2eCheckOnceEach checks that every invite in invs was received exactly
// once and nothing else was.
func e2eCheckOnceEach(t *testing.T, srv *smtptest.Server, invs []referral.Invite) {
	t.Helper()
	want := map[string]int{}
	for _, inv := range invs {
		want[e2eMessageID(inv.ID)] = 1
	}
	assert.Equal(t, want, e2eReceived(t, srv))
}

// e2eCountingMailer counts the Sends handed to the real mailer.
type e2eCountingMailer struct {
	next  referral.Mailer
	sends atomic.Int64
}

func (c *e2eCountingMailer) Send(ctx context.Context, m mail.Message) error {
	c.sends.Add(1)
	return c.next.Send(ctx, m)
}

// TestE2EQueuedDelivery is the main path: invites accepted over HTTP are
// delivered by Run over STARTTLS with AUTH, and what arrives parses back,
// with the standard library, into exactly what was rendered.
func TestE2EQueuedDelivery(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name string
		open func(t *testing.T) referral.CodeStore
	}{
		{"memory", func(*testing.T) referral.CodeStore { return memory.New() }},
		{"sqlite", func(t *testing.T) referral.CodeStore {
			return e2eSQLite(t, filepath.Join(t.TempDir(), "referral.db"))
		}},
	}
	invites := []struct {
		email, language string
		wantLang        string
		wantSubject     string // "" to compare with the rendering only
	}{
		{"anna@example.de", "de", "de", "Deine Einladung zu Acme"},
		{"haruto@example.jp", "JP", "ja", "Acmeへの招待が届いています"},
		{"yui@example.jp", "ja", "ja", "Acmeへの招待が届いています"},
		{"sepp@example.at", "de-AT", "de", "Deine Einladung zu Acme"},
		{"bob@example.com", "en", "en", ""},
		{"marie@example.fr", "fr", "fr", ""},
		{"luz@example.es", "ES", "es", ""},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			srv := e2eServer(t)
			store := st.open(t)
			hooks := &outcomes{}
			h := e2eHandler(t, store, e2eMailer(t, srv, nil), func(c *referral.Config) {
				c.WorkerBatch = 3
				c.OnOutcome = hooks.add
			})
			for _, in := range invites {
				env := checkEnvelope(t, e2ePost(h, in.email, in.language), http.StatusCreated)
				assert.Equal(t, "Invite accepted; the email will be sent shortly.", *env.Message)
			}
			e2eRun(t, h)
			require.Eventually(t, func() bool { return e2eAllFinal(t, store, len(invites)) }, e2eWait, 5*time.Millisecond)

			invs := e2eInvites(t, store)
			byID := map[string]referral.Invite{}
			for _, inv := range invs {
				assert.Equal(t, referral.StatusSent, inv.Status, inv.Email)
				assert.Equal(t, 1, inv.Attempts, inv.Email)
				assert.Empty(t, inv.LastError, inv.Email)
				byID[e2eMessageID(inv.ID)] = inv
			}
			assert.Len(t, hooks.all(), len(invites), "OnOutcome once per invite")

			msgs := srv.Messages()
			require.Len(t, msgs, len(invites))
			for _, m := range msgs {
				assert.True(t, m.TLS, "sent over STARTTLS")
				assert.Equal(t, e2eUser, m.User, "sent after AUTH")
				assert.Equal(t, "no-reply@acme.example", m.From)

				p, err := smtptest.Parse(m.Data)
				require.NoError(t, err)
				inv, ok := byID[p.Header.Get("Message-ID")]
				require.True(t, ok, "Message-ID %q is no invite's", p.Header.Get("Message-ID"))
				assert.Equal(t, []string{inv.Email}, m.To)
				to, err := p.Header.AddressList("To")
				require.NoError(t, err)
				require.Len(t, to, 1)
				assert.Equal(t, inv.Email, to[0].Address)

				want, err := h.Message(inv)
				require.NoError(t, err)
				assert.Equal(t, want.Subject, p.Subject, inv.Email)
				assert.Equal(t, want.Text, p.Text, inv.Email)
				assert.Equal(t, want.HTML, p.HTML, inv.Email)
				assert.Equal(t, "multipart/alternative", p.ContentType)
				assert.Equal(t, []string{"text/plain", "text/html"}, p.Parts)

				// The header section is 7-bit: a non-ASCII subject travels
				// RFC 2047-encoded.
				head, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
				for i := range len(head) {
					if head[i] >= 0x80 {
						t.Fatalf("raw header of %s has a non-ASCII byte at %d:\n%s", inv.Email, i, head)
					}
				}

				link := "https://acme.example/signup?ref=" + inv.Code
				assert.Contains(t, p.Text, inv.Code)
				assert.Contains(t, p.Text, link)
				assert.Contains(t, p.HTML, inv.Code)
				assert.Contains(t, p.HTML, `href="`+link+`"`)
				assert.Equal(t, want.Language, p.Header.Get("Content-Language"))

				for _, in := range invites {
					if in.email != inv.Email {
						continue
					}
					assert.Equal(t, in.wantLang, inv.Language)
					assert.Equal(t, in.wantLang, p.Header.Get("Content-Language"))
					if in.wantSubject != "" {
						assert.Equal(t, in.wantSubject, p.Subject)
					}
				}
			}
		})
	}
}

// e2eStages are the commands a scripted reply can answer.
var e2eStages = []struct {
	name string
	at   smtptest.Stage
}{
	{"MAIL", smtptest.AtMail},
	{"RCPT", smtptest.AtRcpt},
	{"DATA", smtptest.AtData},
}

// TestE2ETransientReplyIsRetried: a 451 keeps the invite pending until its
// back-off has passed, and the retry delivers it once.
func TestE2ETransientReplyIsRetried(t *testing.T) {
	t.Parallel()
	for _, st := range e2eStages {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			srv := e2eServer(t)
			store := memory.New()
			clock := newTestClock()
			hooks := &outcomes{}
			h := e2eHandler(t, store, e2eMailer(t, srv, nil), func(c *referral.Config) {
				c.Now = clock.Now
				c.RetryBackoff = time.Minute
				c.OnOutcome = hooks.add
			})
			checkEnvelope(t, e2ePost(h, "bob@example.com", "en"), http.StatusCreated)

			srv.SetFault(smtptest.Fault{At: st.at, Code: 451, Times: 1})
			assert.Equal(t, 1, e2eDrain(t, h))
			inv := e2eInvites(t, store)[0]
			assert.Equal(t, referral.StatusPending, inv.Status)
			assert.Equal(t, 1, inv.Attempts)
			assert.Contains(t, inv.LastError, "451")
			assert.True(t, inv.NextAttemptAt.After(clock.Now()), "retry waits for the back-off")
			assert.Empty(t, srv.Messages())
			assert.Empty(t, hooks.all(), "not final yet")

			clock.Advance(time.Minute) // the longest the jittered back-off can be
			assert.Equal(t, 1, e2eDrain(t, h))
			inv = e2eInvites(t, store)[0]
			assert.Equal(t, referral.StatusSent, inv.Status)
			assert.Equal(t, 2, inv.Attempts)
			e2eCheckOnceEach(t, srv, []referral.Invite{inv})
			got := hooks.all()
			require.Len(t, got, 1)
			assert.Equal(t, referral.StatusSent, got[0].Status)
		})
	}
}

// TestE2EPermanentRefusalFailsAtOnce: a 550 fails the invite on its first
// attempt and it is never tried again.
func TestE2EPermanentRefusalFailsAtOnce(t *testing.T) {
	t.Parallel()
	for _, st := range e2eStages {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			srv := e2eServer(t)
			store := memory.New()
			clock := newTestClock()
			hooks := &outcomes{}
			counting := &e2eCountingMailer{next: e2eMailer(t, srv, nil)}
			h := e2eHandler(t, store, counting, func(c *referral.Config) {
				c.Now = clock.Now
				c.RetryBackoff = time.Minute
				c.OnOutcome = hooks.add
			})
			checkEnvelope(t, e2ePost(h, "bob@example.com", "en"), http.StatusCreated)

			// Every message is refused, so a retry would be refused too and
			// be seen below rather than succeed.
			srv.SetFault(smtptest.Fault{At: st.at, Code: 550, Times: -1})
			assert.Equal(t, 1, e2eDrain(t, h))
			clock.Advance(24 * time.Hour)
			assert.Equal(t, 0, e2eDrain(t, h), "a failed invite is not claimed again")

			inv := e2eInvites(t, store)[0]
			assert.Equal(t, referral.StatusFailed, inv.Status)
			assert.Equal(t, 1, inv.Attempts)
			assert.Contains(t, inv.LastError, "550")
			assert.EqualValues(t, 1, counting.sends.Load(), "one send")
			// The mailer drops a connection after a failed transaction, so a
			// second attempt would have needed a second connection.
			assert.Equal(t, 1, srv.Connections(), "the server saw one attempt")
			assert.Empty(t, srv.Messages())
			got := hooks.all()
			require.Len(t, got, 1)
			assert.Equal(t, referral.StatusFailed, got[0].Status)
			assert.Equal(t, inv.ID, got[0].ID)
			assert.Empty(t, got[0].Email, "the hook gets what the event carries, never the address")
		})
	}
}

// TestE2EHungServerTimesOut: a server that stops answering costs one
// SendTimeout; the invite stays pending and goes out on the retry.
func TestE2EHungServerTimesOut(t *testing.T) {
	t.Parallel()
	for _, st := range []struct {
		name string
		at   smtptest.Stage
	}{
		{"MAIL", smtptest.AtMail},
		// The server has the whole message but never confirms it.
		{"DATA", smtptest.AtData},
	} {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			srv := e2eServer(t)
			store := memory.New()
			clock := newTestClock()
			h := e2eHandler(t, store, e2eMailer(t, srv, nil), func(c *referral.Config) {
				c.Now = clock.Now
				c.RetryBackoff = time.Minute
				// Short, so that the test is; long enough for a STARTTLS
				// and AUTH set-up on a loaded machine.
				c.SendTimeout = time.Second
			})
			checkEnvelope(t, e2ePost(h, "bob@example.com", "en"), http.StatusCreated)

			srv.SetFault(smtptest.Fault{At: st.at, Hang: true, Times: -1})
			assert.Equal(t, 1, e2eDrain(t, h))
			inv := e2eInvites(t, store)[0]
			assert.Equal(t, referral.StatusPending, inv.Status)
			assert.Equal(t, 1, inv.Attempts)
			assert.Contains(t, inv.LastError, "deadline exceeded")
			assert.True(t, inv.LeaseUntil.IsZero(), "lease released")
			assert.Empty(t, srv.Messages())

			srv.SetFault(smtptest.Fault{})
			clock.Advance(time.Minute)
			assert.Equal(t, 1, e2eDrain(t, h))
			inv = e2eInvites(t, store)[0]
			assert.Equal(t, referral.StatusSent, inv.Status)
			assert.Equal(t, 2, inv.Attempts)
			e2eCheckOnceEach(t, srv, []referral.Invite{inv})
		})
	}
}

// TestE2ECancelledWorkerHandsInviteBack: a worker stopped while the
// server hangs gives its invite back as it was, due at once and without a
// failure recorded, and the next worker delivers it.
func TestE2ECancelledWorkerHandsInviteBack(t *testing.T) {
	t.Parallel()
	srv := e2eServer(t)
	store := memory.New()
	h := e2eHandler(t, store, e2eMailer(t, srv, nil), func(c *referral.Config) {
		c.SendTimeout = time.Minute // the cancel, not a timeout, ends the attempt
	})
	checkEnvelope(t, e2ePost(h, "bob@example.com", "en"), http.StatusCreated)
	srv.SetFault(smtptest.Fault{At: smtptest.AtMail, Hang: true, Times: -1})
	stop := e2eRun(t, h)
	require.Eventually(t, func() bool { return e2eInvites(t, store)[0].Attempts == 1 }, e2eWait, 5*time.Millisecond)
	stop()

	inv := e2eInvites(t, store)[0]
	assert.Equal(t, referral.StatusPending, inv.Status)
	assert.Equal(t, 1, inv.Attempts)
	assert.True(t, inv.LeaseUntil.IsZero(), "lease released")
	assert.Empty(t, inv.LastError, "a stop is no delivery failure")
	assert.False(t, inv.NextAttemptAt.After(time.Now()), "due again at once")

	srv.SetFault(smtptest.Fault{})
	assert.Equal(t, 1, e2eDrain(t, h))
	inv = e2eInvites(t, store)[0]
	assert.Equal(t, referral.StatusSent, inv.Status)
	assert.Equal(t, 2, inv.Attempts)
	e2eCheckOnceEach(t, srv, []referral.Invite{inv})
}

// TestE2EExpiredLeaseLosesToNewerAttempt: a worker whose lease ran out
// while its server hung cannot overwrite the outcome of the worker that
// claimed the invite after it.
func TestE2EExpiredLeaseLosesToNewerAttempt(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name string
		open func(t *testing.T) referral.CodeStore
	}{
		{"memory", func(*testing.T) referral.CodeStore { return memory.New() }},
		{"sqlite", func(t *testing.T) referral.CodeStore {
			return e2eSQLite(t, filepath.Join(t.TempDir(), "referral.db"))
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			store := st.open(t)
			// The old worker's server hangs; the new worker's answers.
			hung, healthy := e2eServer(t), e2eServer(t)
			hung.SetFault(smtptest.Fault{At: smtptest.AtMail, Hang: true, Times: -1})
			old := e2eHandler(t, store, e2eMailer(t, hung, nil), func(c *referral.Config) {
				c.SendTimeout = time.Minute
			})
			checkEnvelope(t, e2ePost(old, "bob@example.com", "en"), http.StatusCreated)
			oldDone := make(chan error, 1)
			go func() {
				_, err := old.DeliverDue(context.Background())
				oldDone <- err
			}()
			// Claimed, and connected: DropConnections below will end it.
			require.Eventually(t, func() bool {
				return e2eInvites(t, store)[0].Attempts == 1 && hung.Connections() == 1
			}, e2eWait, 5*time.Millisecond)

			// The new worker's clock is past the old worker's lease.
			fresh := e2eHandler(t, store, e2eMailer(t, healthy, nil), func(c *referral.Config) {
				c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
			})
			assert.Equal(t, 1, e2eDrain(t, fresh))
			// Now the old attempt fails and tries to record a retry.
			hung.DropConnections()
			select {
			case err := <-oldDone:
				require.NoError(t, err)
			case <-time.After(e2eWait):
				t.Fatal("the old worker did not return")
			}

			inv := e2eInvites(t, store)[0]
			assert.Equal(t, referral.StatusSent, inv.Status)
			assert.Equal(t, 2, inv.Attempts)
			assert.Empty(t, inv.LastError, "the old attempt's failure was not recorded")
			assert.Empty(t, hung.Messages())
			e2eCheckOnceEach(t, healthy, []referral.Invite{inv})
		})
	}
}

// TestE2EServerDownThenUp: while the server refuses connections every
// invite stays pending; once it is back, Run delivers each exactly once.
func TestE2EServerDownThenUp(t *testing.T) {
	t.Parallel()
	const n = 8
	srv := e2eServer(t)
	store := memory.New()
	h := e2eHandler(t, store, e2eMailer(t, srv, nil), func(c *referral.Config) {
		c.RetryBackoff = 20 * time.Millisecond
		c.MaxAttempts = 1000 // the outage must not use them up
		c.WorkerBatch = 3
	})
	srv.Stop()
	e2ePostN(t, h, n)
	stop := e2eRun(t, h)

	// Every invite has failed at least once against the stopped server.
	require.Eventually(t, func() bool {
		invs := e2eInvites(t, store)
		for _, inv := range invs {
			if inv.Status != referral.StatusPending || inv.LastError == "" {
				return false
			}
		}
		return len(invs) == n
	}, e2eWait, 5*time.Millisecond)
	assert.Empty(t, srv.Messages())
	for _, inv := range e2eInvites(t, store) {
		assert.Contains(t, inv.LastError, "connect")
	}

	srv.Start()
	require.Eventually(t, func() bool { return e2eAllFinal(t, store, n) }, e2eWait, 5*time.Millisecond)
	stop()
	invs := e2eInvites(t, store)
	for _, inv := range invs {
		assert.Equal(t, referral.StatusSent, inv.Status)
		assert.GreaterOrEqual(t, inv.Attempts, 2)
	}
	e2eCheckOnceEach(t, srv, invs)
}

// TestE2ETwoWorkersOneDatabase: two workers, each with its own connection
// pool on one SQLite file (as two processes would have), deliver every
// invite exactly once while invites keep arriving.
func TestE2ETwoWorkersOneDatabase(t *testing.T) {
	t.Parallel()
	const n = 30
	srv := e2eServer(t)
	dbPath := filepath.Join(t.TempDir(), "referral.db")
	var delivered [2]atomic.Int64
	handlers := make([]*referral.Handler, 2)
	stores := make([]*sqlite.Store, 2)
	for i := range handlers {
		stores[i] = e2eSQLite(t, dbPath)
		handlers[i] = e2eHandler(t, stores[i], e2eMailer(t, srv, nil), func(c *referral.Config) {
			c.WorkerBatch = 2 // small, so that the workers interleave
			c.OnOutcome = func(context.Context, referral.Invite) { delivered[i].Add(1) }
		})
	}
	stops := []func(){e2eRun(t, handlers[0]), e2eRun(t, handlers[1])}
	for i := range n {
		h := handlers[i%2]
		checkEnvelope(t, e2ePost(h, fmt.Sprintf("friend%d@example.com", i), "en"), http.StatusCreated)
	}
	require.Eventually(t, func() bool { return e2eAllFinal(t, stores[0], n) }, e2eWait, 5*time.Millisecond)
	for _, stop := range stops {
		stop()
	}
	invs := e2eInvites(t, stores[1])
	for _, inv := range invs {
		assert.Equal(t, referral.StatusSent, inv.Status)
		assert.Equal(t, 1, inv.Attempts, "claimed once")
	}
	e2eCheckOnceEach(t, srv, invs)
	assert.EqualValues(t, n, delivered[0].Load()+delivered[1].Load())
	t.Logf("worker 1 delivered %d, worker 2 delivered %d", delivered[0].Load(), delivered[1].Load())
}

// TestE2EInline: inline delivery answers 201 only for a message the server
// accepted; otherwise a generic 500, with the invite recorded as failed
// and the cause kept for operators.
func TestE2EInline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		breakIt   func(*smtptest.Server)
		status    int
		wantError string // in LastError
	}{
		{"accepted", func(*smtptest.Server) {}, http.StatusCreated, ""},
		{"550 to RCPT", func(s *smtptest.Server) {
			s.SetFault(smtptest.Fault{At: smtptest.AtRcpt, Code: 550, Times: -1})
		}, http.StatusInternalServerError, "550"},
		{"550 to DATA", func(s *smtptest.Server) {
			s.SetFault(smtptest.Fault{At: smtptest.AtData, Code: 550, Times: -1})
		}, http.StatusInternalServerError, "550"},
		// Inline delivery has no later attempt: a transient failure fails
		// the invite too, and the client may post it again.
		{"451 to MAIL", func(s *smtptest.Server) {
			s.SetFault(smtptest.Fault{At: smtptest.AtMail, Code: 451, Times: -1})
		}, http.StatusInternalServerError, "451"},
		{"server down", (*smtptest.Server).Stop, http.StatusInternalServerError, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := e2eServer(t)
			store := memory.New()
			h := e2eHandler(t, store, e2eMailer(t, srv, nil), func(c *referral.Config) {
				c.Delivery = referral.Inline
			})
			tt.breakIt(srv)
			rec := e2ePost(h, "bob@example.com", "de")
			env := checkEnvelope(t, rec, tt.status)

			invs := e2eInvites(t, store)
			require.Len(t, invs, 1)
			inv := invs[0]
			assert.Equal(t, 1, inv.Attempts)
			assert.True(t, inv.LeaseUntil.IsZero(), "lease released")
			if tt.status == http.StatusCreated {
				assert.Equal(t, "Invite sent.", *env.Message)
				assert.Equal(t, referral.StatusSent, inv.Status)
				assert.Empty(t, inv.LastError)
				e2eCheckOnceEach(t, srv, invs)
				return
			}
			assert.Equal(t, "internal error; quote the X-Request-Id header when reporting it", *env.Error)
			for _, leak := range []string{tt.wantError, "127.0.0.1", "smtp", "bob@"} {
				assert.NotContains(t, rec.Body.String(), leak)
			}
			assert.Equal(t, referral.StatusFailed, inv.Status)
			assert.Contains(t, inv.LastError, tt.wantError)
			assert.Empty(t, srv.Messages())
		})
	}
}

// Environment of the child process of TestE2EWorkerKilledMidBatch.
const (
	e2eEnvDB    = "REFERRAL_E2E_CHILD_DB"
	e2eEnvSMTP  = "REFERRAL_E2E_CHILD_SMTP"
	e2eEnvMode  = "REFERRAL_E2E_CHILD_MODE"
	e2eEnvAfter = "REFERRAL_E2E_CHILD_AFTER"
)

// Modes of the child's mailer after its e2eEnvAfter-th delivered message.
const (
	// e2eStallAfterSend stalls between the server's acceptance and the
	// worker's record of it, where a crash leaves a sent invite pending.
	e2eStallAfterSend = "stall-after-send"
	// e2eHangNext waits for a line on stdin (the parent's signal that the
	// server now hangs), then carries on into the hanging server.
	e2eHangNext = "hang-next"
)

// e2eChildMailer reports each send on stdout, as "e2e-sending ID" and
// "e2e-sent ID", so that the parent can kill the child at a known point.
type e2eChildMailer struct {
	next  referral.Mailer
	out   io.Writer
	in    *bufio.Reader
	mode  string
	after int
	sent  int
}

func (c *e2eChildMailer) Send(ctx context.Context, m mail.Message) error {
	fmt.Fprintf(c.out, "e2e-sending %s\n", m.ID)
	if err := c.next.Send(ctx, m); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "e2e-sent %s\n", m.ID)
	if c.sent++; c.sent == c.after {
		// Both modes block on stdin; in stall mode nothing ever comes.
		_, _ = c.in.ReadString('\n')
		if c.mode == e2eStallAfterSend {
			select {}
		}
	}
	return nil
}

// TestHelperProcessE2EWorker is the child process of
// TestE2EWorkerKilledMidBatch: a queued worker on the parent's SQLite file
// and SMTP server, which the parent SIGKILLs mid-batch.
func TestHelperProcessE2EWorker(t *testing.T) {
	dbPath := os.Getenv(e2eEnvDB)
	if dbPath == "" {
		t.Skip("child process of TestE2EWorkerKilledMidBatch")
	}
	store, err := sqlite.Open(dbPath)
	require.NoError(t, err)
	mailer, err := e2ePlainMailer(os.Getenv(e2eEnvSMTP))
	require.NoError(t, err)
	after, err := strconv.Atoi(os.Getenv(e2eEnvAfter))
	require.NoError(t, err)
	child := &e2eChildMailer{next: mailer, out: os.Stdout, in: bufio.NewReader(os.Stdin), mode: os.Getenv(e2eEnvMode), after: after}
	h, err := referral.New(e2eConfig(store, child, os.Stderr, func(c *referral.Config) {
		c.WorkerBatch = 50 // the whole queue in one claim
		// One at a time, so that the parent knows which message is the
		// one in flight when it kills the child (with more, each sender's
		// may be).
		c.Senders = 1
		// Long: the parent, not a timeout, ends the hanging attempt. It
		// makes the lease (51 minutes) outlast the test.
		c.SendTimeout = time.Minute
	}))
	require.NoError(t, err)
	_ = h.Run(context.Background())
}

// TestE2EWorkerKilledMidBatch: a worker process killed with SIGKILL while
// it holds a claimed batch loses no invite. After the lease, a fresh worker
// on the same file delivers the rest; an invite the server accepted but
// the dead worker had not recorded goes out twice (at-least-once), which
// the Message-ID lets the recipient's side recognise.
func TestE2EWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	const (
		n     = 8
		after = 3 // messages the child delivers before it is stopped
	)
	tests := []struct {
		mode string
		// wantDup is how many invites the server accepted that the child
		// had not recorded when it died: they go out twice.
		wantDup int
	}{
		{e2eStallAfterSend, 1},
		{e2eHangNext, 0},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{NoTLS: true})
			dbPath := filepath.Join(t.TempDir(), "referral.db")
			store := e2eSQLite(t, dbPath)
			poster := e2eHandler(t, store, &mailtest.Recorder{}) // records only; the child delivers
			e2ePostN(t, poster, n)

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessE2EWorker$", "-test.timeout=2m")
			cmd.Env = append(os.Environ(),
				e2eEnvDB+"="+dbPath,
				e2eEnvSMTP+"="+srv.Addr(),
				e2eEnvMode+"="+tt.mode,
				e2eEnvAfter+"="+strconv.Itoa(after))
			stderr := &syncBuffer{}
			cmd.Stderr = stderr
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			killed := false
			kill := func() {
				if !killed {
					killed = true
					_ = cmd.Process.Kill() // SIGKILL: no deferred code runs
					_ = cmd.Wait()
				}
			}
			t.Cleanup(kill)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("child stderr:\n%s", stderr)
				}
			})
			lines := make(chan string)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			// next returns the ID of the next line with the prefix.
			next := func(prefix string) string {
				t.Helper()
				timeout := time.After(e2eWait)
				for {
					select {
					case line, ok := <-lines:
						require.True(t, ok, "child exited early; stderr:\n%s", stderr)
						if id, found := strings.CutPrefix(line, prefix+" "); found {
							return id
						}
					case <-timeout:
						t.Fatalf("no %q line from the child", prefix)
					}
				}
			}

			var lastSent string
			for range after {
				lastSent = next("e2e-sent")
			}
			if tt.mode == e2eHangNext {
				srv.SetFault(smtptest.Fault{At: smtptest.AtData, Hang: true, Times: -1})
				_, err := io.WriteString(stdin, "go\n")
				require.NoError(t, err)
				hung := next("e2e-sending")
				assert.NotEqual(t, lastSent, hung)
			}
			// The worker records outcomes while the next message goes out:
			// wait until the records that can finish have, so that the
			// duplicates are exactly the messages it never got to record.
			require.Eventually(t, func() bool {
				sent := 0
				for _, inv := range e2eInvites(t, store) {
					if inv.Status == referral.StatusSent {
						sent++
					}
				}
				return sent == after-tt.wantDup
			}, e2eWait, 10*time.Millisecond, "the child's records of what it sent")
			kill()
			assert.Len(t, srv.Messages(), after, "the child delivered this many before it died")

			// The kill left a claimed batch: invites pending under a lease.
			leased := 0
			for _, inv := range e2eInvites(t, store) {
				if inv.Status == referral.StatusPending && !inv.LeaseUntil.IsZero() {
					leased++
				}
			}
			assert.Equal(t, n-after+tt.wantDup, leased, "pending under the dead worker's lease")

			// A fresh worker whose clock is past the lease.
			srv.SetFault(smtptest.Fault{})
			mailer, err := e2ePlainMailer(srv.Addr())
			require.NoError(t, err)
			t.Cleanup(func() { _ = mailer.Close() })
			h := e2eHandler(t, store, mailer, func(c *referral.Config) {
				c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
			})
			e2eDrain(t, h)

			invs := e2eInvites(t, store)
			require.Len(t, invs, n)
			received := e2eReceived(t, srv)
			dups := 0
			for _, inv := range invs {
				assert.Equal(t, referral.StatusSent, inv.Status, "none left pending")
				got := received[e2eMessageID(inv.ID)]
				assert.GreaterOrEqual(t, got, 1, "invite %s arrived", inv.ID)
				dups += max(got-1, 0)
			}
			assert.Len(t, received, n, "nothing but the invites arrived")
			t.Logf("%s: %d invites, %d delivered before the kill, %d duplicate(s)", tt.mode, n, after, dups)
			assert.Equal(t, tt.wantDup, dups)
			if tt.wantDup > 0 {
				assert.Equal(t, 2, received[e2eMessageID(lastSent)], "the accepted but unrecorded invite went out again")
			}
		})
	}
}
