package smtp_test

// A reused connection is not checked with RSET before its next MAIL; one
// the server closed meanwhile is dialled again, once. These tests play
// odd servers against that.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rkmail "github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/mail/smtp/smtptest"
)

// rawServer speaks just enough SMTP by hand for odd behaviour, and shows
// how the commands arrived. onMail decides the answer to the n-th MAIL
// (0-based) of connection conn (0-based): a reply line, "" to close
// without answering, "hang" to never answer. onAccept runs before the
// greeting; returning false closes the connection without one.
type rawServer struct {
	ln         net.Listener
	onMail     func(conn, n int, c net.Conn) string
	onAccept   func(conn int, c net.Conn) bool
	afterMsg   func(conn, n int, c net.Conn) // after a DATA was answered 250
	hangQuit   bool                          // never answer QUIT
	pipelining bool                          // offer PIPELINING
	replies    map[string]string             // by verb: a reply instead of the usual one (and of onMail's)

	conns     atomic.Int32
	delivered atomic.Int32
	mu        sync.Mutex
	open      []net.Conn
	commands  []command // of every connection, in the order read
	data      string    // the last message accepted
	wg        sync.WaitGroup
	t         *testing.T
}

// command is a command a rawServer read, and whether more of the
// client's bytes had already arrived when it was read: true for every
// command but the last of a pipelined group.
type command struct {
	verb  string
	ahead bool
}

// seen returns the commands read so far.
func (s *rawServer) seen() []command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands)
}

// newRawServer listens; start serves, after the hooks are set (the race
// detector sees no order between a dial and its accept).
func newRawServer(t *testing.T) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &rawServer{ln: ln}
	s.t = t
	return s
}

func (s *rawServer) start() {
	t, ln := s.t, s.ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			i := int(s.conns.Add(1)) - 1
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(i, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

func (s *rawServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *rawServer) serve(conn int, c net.Conn) {
	defer c.Close()
	if s.onAccept != nil && !s.onAccept(conn, c) {
		return
	}
	r := bufio.NewReader(c)
	w := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	w("220 raw ESMTP")
	mails := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		s.mu.Lock()
		s.commands = append(s.commands, command{verb, r.Buffered() > 0})
		s.mu.Unlock()
		if reply, ok := s.replies[verb]; ok {
			w(reply)
			continue
		}
		switch verb {
		case "EHLO", "HELO":
			w("250-raw")
			if s.pipelining {
				w("250-PIPELINING")
			}
			w("250 8BITMIME")
		case "MAIL":
			reply := "250 ok"
			if s.onMail != nil {
				reply = s.onMail(conn, mails, c)
			}
			mails++
			switch reply {
			case "":
				return
			case "hang":
				_, _ = r.ReadString('\n') // until the client goes away
				return
			}
			w(reply)
		case "RCPT", "RSET", "NOOP":
			w("250 ok")
		case "DATA":
			w("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			s.mu.Lock()
			s.data = data.String()
			s.mu.Unlock()
			s.delivered.Add(1)
			w("250 queued")
			if s.afterMsg != nil {
				s.afterMsg(conn, mails-1, c)
			}
		case "QUIT":
			if s.hangQuit {
				_, _ = r.ReadString('\n') // until the client goes away
				return
			}
			w("221 bye")
			return
		default:
			w("502 what")
		}
	}
}

func rawMailer(t *testing.T, s *rawServer, change func(*smtp.Config)) *smtp.Mailer {
	t.Helper()
	cfg := smtp.Config{Host: "127.0.0.1", Port: s.port(), TLS: smtp.NoTLS, HELO: "client.test",
		CommandTimeout: 10 * time.Second, DialTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	return mailerFor(t, cfg, change)
}

// A server that closes a connection after a message, silently or with an
// unsolicited 421 (RFC 5321 4.1.1.5 allows it): the next MAIL finds out,
// and the message goes over a new connection, exactly once.
func TestReuseAfterTheServerClosed(t *testing.T) {
	t.Parallel()
	for name, goodbye := range map[string]string{"silently": "", "with 421": "421 4.4.2 idle timeout\r\n"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newRawServer(t)
			s.afterMsg = func(conn, n int, c net.Conn) {
				if conn == 0 {
					_, _ = c.Write([]byte(goodbye))
					c.Close()
				}
			}
			s.start()
			m := rawMailer(t, s, nil)
			require.NoError(t, m.Send(context.Background(), message("1", "x")))
			time.Sleep(50 * time.Millisecond)
			require.NoError(t, m.Send(context.Background(), message("2", "x")))
			assert.EqualValues(t, 2, s.delivered.Load())
			assert.EqualValues(t, 2, s.conns.Load())
		})
	}
}

// A server that is slow (not gone) on the reused connection's MAIL: the
// timeout (no answer) counts as stale and the message is redialled. The
// first connection must be closed before anything else of the message
// could go over it: one delivery.
func TestReuseTimeoutAtMailOnReuseDeliversOnce(t *testing.T) {
	t.Parallel()
	s := newRawServer(t)
	s.onMail = func(conn, n int, c net.Conn) string {
		if conn == 0 && n == 1 {
			return "hang"
		}
		return "250 ok"
	}
	s.start()
	m := rawMailer(t, s, func(c *smtp.Config) { c.CommandTimeout = 300 * time.Millisecond })
	require.NoError(t, m.Send(context.Background(), message("1", "x")))
	require.NoError(t, m.Send(context.Background(), message("2", "x")))
	assert.EqualValues(t, 2, s.delivered.Load())
	assert.EqualValues(t, 2, s.conns.Load())
}

// A server that answers 421 to MAIL on every connection: one redial, not
// a loop, and a transient error.
func TestReuse421AtMailEveryConnection(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	require.NoError(t, m.Send(context.Background(), message("1", "x")))
	srv.SetFault(smtptest.Fault{At: smtptest.AtMail, Code: 421, Times: -1})
	err := m.Send(context.Background(), message("2", "x"))
	require.Error(t, err)
	assert.NotErrorIs(t, err, rkmail.ErrPermanent)
	assert.Equal(t, 2, srv.Connections(), "one redial")
	err = m.Send(context.Background(), message("3", "x"))
	require.Error(t, err)
	assert.Equal(t, 3, srv.Connections(), "a new connection is no reused one: no second try")
	assert.Len(t, srv.Messages(), 1)
}

// 421 at RCPT or at the end of DATA on a reused connection is an answer
// about this message, not a stale connection: no redial, a transient
// error, and nothing accepted twice.
func TestReuse421AfterMailOnReuseNoRedial(t *testing.T) {
	t.Parallel()
	for name, at := range map[string]smtptest.Stage{"rcpt": smtptest.AtRcpt, "data": smtptest.AtData} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{})
			m := newMailer(t, srv, nil)
			require.NoError(t, m.Send(context.Background(), message("1", "x")))
			srv.SetFault(smtptest.Fault{At: at, Code: 421, Times: 1})
			err := m.Send(context.Background(), message("2", "x"))
			require.Error(t, err)
			assert.NotErrorIs(t, err, rkmail.ErrPermanent)
			assert.Equal(t, 1, srv.Connections(), "no redial")
			assert.Len(t, srv.Messages(), 1)
			require.NoError(t, m.Send(context.Background(), message("3", "x")))
			assert.Equal(t, 2, srv.Connections())
		})
	}
}

// The context is cancelled while the reused connection's MAIL fails (the
// server cancels, then closes without answer): no redial, a context error.
func TestReuseCancelledBeforeRedial(t *testing.T) {
	t.Parallel()
	s := newRawServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.onMail = func(conn, n int, c net.Conn) string {
		if conn == 0 && n == 1 {
			cancel()
			return ""
		}
		return "250 ok"
	}
	s.start()
	m := rawMailer(t, s, nil)
	require.NoError(t, m.Send(context.Background(), message("1", "x")))
	err := m.Send(ctx, message("2", "x"))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	time.Sleep(50 * time.Millisecond)
	assert.EqualValues(t, 1, s.conns.Load(), "no redial after cancel")
	assert.EqualValues(t, 1, s.delivered.Load())
}

// Cancelled during the redial (the new connection gets no greeting):
// Send returns at once with the context's error, and with MaxConns 1 the
// semaphore is free again afterwards.
func TestReuseCancelledDuringRedial(t *testing.T) {
	t.Parallel()
	s := newRawServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.onMail = func(conn, n int, c net.Conn) string {
		if conn == 0 && n == 1 {
			return ""
		}
		return "250 ok"
	}
	s.onAccept = func(conn int, c net.Conn) bool {
		if conn == 1 {
			cancel()
			_, _ = bufio.NewReader(c).ReadString('\n') // no greeting, until the client goes
			return false
		}
		return true
	}
	s.start()
	m := rawMailer(t, s, func(c *smtp.Config) { c.MaxConns = 1 })
	require.NoError(t, m.Send(context.Background(), message("1", "x")))
	err := m.Send(ctx, message("2", "x"))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	require.NoError(t, m.Send(ctx2, message("3", "x")), "the semaphore token was given back")
	assert.EqualValues(t, 2, s.delivered.Load())
}

// After a redial, cancelling the context must close the new connection
// (the watch follows it), so Send returns at once, not after
// CommandTimeout.
func TestReuseAbortClosesRedialledConnection(t *testing.T) {
	t.Parallel()
	s := newRawServer(t)
	var hung atomic.Bool
	s.onMail = func(conn, n int, c net.Conn) string {
		switch {
		case conn == 0 && n == 1:
			return ""
		case conn == 1:
			hung.Store(true)
			return "hang"
		}
		return "250 ok"
	}
	s.start()
	m := rawMailer(t, s, func(c *smtp.Config) { c.CommandTimeout = 30 * time.Second })
	require.NoError(t, m.Send(context.Background(), message("1", "x")))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for !hung.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	err := m.Send(ctx, message("2", "x"))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled, "aborted, not timed out")
}

// Reused connection gone and the server refusing new ones: the error is a
// transient connecting error.
func TestReuseStaleThenRefused(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	require.NoError(t, m.Send(context.Background(), message("1", "x")))
	srv.Stop()
	srv.DropConnections()
	time.Sleep(20 * time.Millisecond)
	err := m.Send(context.Background(), message("2", "x"))
	require.Error(t, err)
	assert.NotErrorIs(t, err, rkmail.ErrPermanent)
	assert.Contains(t, err.Error(), "connecting")
	srv.Start()
	require.NoError(t, m.Send(context.Background(), message("3", "x")))
}

var messageIDRe = regexp.MustCompile(`(?im)^Message-ID:\s*(<[^>]*>)`)

// Sends, Close and dropped connections racing (run with -race): no
// message is ever accepted twice, and every Send that returned nil was
// accepted.
func TestReuseCloseAndDropsRacingSends(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, func(c *smtp.Config) { c.MaxConns = 3 })
	srv.SetDropRate(0.1)
	var ok atomic.Int32
	var senders, closer sync.WaitGroup
	stop := make(chan struct{})
	for g := range 3 {
		senders.Go(func() {
			for i := range 40 {
				err := m.Send(context.Background(), message(fmt.Sprintf("g%d-%d", g, i), "x"))
				if err == nil {
					ok.Add(1)
				} else if i < 3 {
					t.Logf("send g%d-%d: %v", g, i, err)
				}
			}
		})
	}
	closer.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
				_ = m.Close()
				srv.DropConnections()
			}
		}
	})
	senders.Wait()
	close(stop)
	closer.Wait()

	seen := map[string]int{}
	for _, msg := range srv.Messages() {
		mm := messageIDRe.FindSubmatch(msg.Data)
		require.NotNil(t, mm)
		seen[string(mm[1])]++
	}
	for id, n := range seen {
		assert.Equal(t, 1, n, "message %s accepted %d times", id, n)
	}
	assert.GreaterOrEqual(t, len(seen), int(ok.Load()), "every nil Send was accepted")
	t.Logf("%d sends ok, %d distinct messages accepted", ok.Load(), len(seen))
}

// smtptest.Commands counts the first word of every line of the session,
// DATA included: a body line starting "Mail" counts as a MAIL command.
func TestReuseCommandsCountsBodyLines(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	msg := message("1", "x")
	msg.Text = "Mail me back\nRSET nothing\nNOOP either\n"
	require.NoError(t, m.Send(context.Background(), msg))
	assert.Equal(t, 1, srv.Commands("MAIL"))
	assert.Equal(t, 0, srv.Commands("RSET"))
}

// A reused TLS connection (STARTTLS or implicit) that the server dropped
// while idle is recognised as stale at MAIL: the message goes over a new
// connection, once.
func TestReuseStaleTLSConnectionRedials(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		opts smtptest.Options
		mode smtp.TLSMode
	}{
		"starttls": {smtptest.Options{}, smtp.StartTLS},
		"implicit": {smtptest.Options{ImplicitTLS: true}, smtp.ImplicitTLS},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, tc.opts)
			m := newMailer(t, srv, func(c *smtp.Config) { c.TLS = tc.mode })
			require.NoError(t, m.Send(context.Background(), message("1", "x")))
			srv.DropConnections()
			time.Sleep(20 * time.Millisecond)
			require.NoError(t, m.Send(context.Background(), message("2", "x")))
			assert.Len(t, srv.Messages(), 2)
			assert.Equal(t, 2, srv.Connections())
		})
	}
}

// A server that stops answering once its messages are sent: Close does not
// wait out CommandTimeout for the QUIT of each pooled connection, one
// after another (a SIGTERM of the standalone server took two minutes).
func TestCloseDoesNotWaitForAServerThatStoppedAnswering(t *testing.T) {
	t.Parallel()
	s := newRawServer(t)
	s.hangQuit = true
	s.start()
	m := rawMailer(t, s, func(c *smtp.Config) { c.CommandTimeout = time.Minute })
	var sends sync.WaitGroup
	for i := range 3 {
		sends.Go(func() { assert.NoError(t, m.Send(context.Background(), message(fmt.Sprint(i), "x"))) })
	}
	sends.Wait()
	closed := make(chan struct{})
	go func() {
		m.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting for QUIT answers after 10 s")
	}
	assert.EqualValues(t, 3, s.delivered.Load())
}
