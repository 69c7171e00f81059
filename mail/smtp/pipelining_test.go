package smtp_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rkmail "github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/smtp"
)

// command is one line a scriptedServer read, and whether more of the
// client's bytes had already arrived when it was read: true for every
// command but the last of a pipelined group.
type command struct {
	verb  string
	ahead bool
}

// scriptedServer is a plaintext SMTP server on 127.0.0.1 for one
// connection, offering PIPELINING or not, and answering MAIL, RCPT and
// DATA with the replies given (250, 250, 354 by default). go-smtp cannot
// be made to withhold PIPELINING, nor to show how commands arrived.
type scriptedServer struct {
	ln         net.Listener
	pipelining bool
	replies    map[string]string

	mu       sync.Mutex
	commands []command
	data     string // the last message received
	done     chan struct{}
}

func newScriptedServer(t *testing.T, pipelining bool, replies map[string]string) *scriptedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &scriptedServer{ln: ln, pipelining: pipelining, replies: replies, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() { _ = ln.Close(); <-s.done })
	return s
}

func (s *scriptedServer) serve() {
	defer close(s.done)
	c, err := s.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(lines ...string) {
		for _, l := range lines {
			_, _ = w.WriteString(l + "\r\n")
		}
		_ = w.Flush()
	}
	reply("220 scripted.test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		verb = strings.ToUpper(verb)
		s.mu.Lock()
		s.commands = append(s.commands, command{verb, r.Buffered() > 0})
		s.mu.Unlock()
		if custom, ok := s.replies[verb]; ok {
			reply(custom)
			continue
		}
		switch verb {
		case "EHLO":
			if s.pipelining {
				reply("250-scripted.test", "250-PIPELINING", "250 8BITMIME")
			} else {
				reply("250-scripted.test", "250 8BITMIME")
			}
		case "MAIL", "RCPT":
			reply("250 2.1.0 OK")
		case "DATA":
			reply("354 go ahead")
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
			reply("250 2.0.0 queued")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("502 5.5.2 not implemented")
		}
	}
}

// seen returns the verbs read so far, and which arrived ahead of their
// reply to the one before.
func (s *scriptedServer) seen() []command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]command(nil), s.commands...)
}

func (s *scriptedServer) mailer(t *testing.T) *smtp.Mailer {
	t.Helper()
	port := s.ln.Addr().(*net.TCPAddr).Port
	return mailerFor(t, smtp.Config{Host: "127.0.0.1", Port: port, TLS: smtp.NoTLS, HELO: "client.test"}, nil)
}

func TestSendPipelinesTheEnvelope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		pipelining bool
		want       []command
	}{
		// MAIL, RCPT and DATA in one write: two round trips per message.
		{"offered", true, []command{{"EHLO", false}, {"MAIL", true}, {"RCPT", true}, {"DATA", false}, {"QUIT", false}}},
		// Each command waits for its reply.
		{"not offered", false, []command{{"EHLO", false}, {"MAIL", false}, {"RCPT", false}, {"DATA", false}, {"QUIT", false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptedServer(t, tc.pipelining, nil)
			m := srv.mailer(t)
			require.NoError(t, m.Send(context.Background(), message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192", "Einladung")))
			require.NoError(t, m.Close())
			<-srv.done
			assert.Equal(t, tc.want, srv.seen())
			assert.Contains(t, srv.data, "Subject: Einladung\r\n")
			assert.Contains(t, srv.data, "Dein Code: "+code)
		})
	}
}

func TestPipelinedRefusalReportsTheFirstReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		replies         map[string]string
		step            string
		permanent, rcpt bool
	}{
		// A refused MAIL leaves no transaction: the server refuses RCPT
		// and DATA too, but MAIL's reply is the one that counts.
		{"MAIL 550", map[string]string{"MAIL": "550 5.7.1 sender refused", "RCPT": "503 5.5.1 MAIL first", "DATA": "503 5.5.1 MAIL first"}, "MAIL", true, false},
		{"MAIL 451", map[string]string{"MAIL": "451 4.3.0 try later", "RCPT": "503 5.5.1 MAIL first", "DATA": "503 5.5.1 MAIL first"}, "MAIL", false, false},
		{"RCPT 550", map[string]string{"RCPT": "550 5.1.1 no such user", "DATA": "554 5.5.1 no valid recipients"}, "RCPT", true, true},
		{"RCPT 452", map[string]string{"RCPT": "452 4.2.2 mailbox full", "DATA": "554 5.5.1 no valid recipients"}, "RCPT", false, false},
		{"DATA 554", map[string]string{"DATA": "554 5.7.0 not now, not ever"}, "DATA", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptedServer(t, true, tc.replies)
			m := srv.mailer(t)
			err := m.Send(context.Background(), message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192", "Einladung"))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "smtp: "+tc.step+": "), "error %q names the step", err)
			assert.Equal(t, tc.permanent, errors.Is(err, rkmail.ErrPermanent), "permanent: %v", err)
			assert.Equal(t, tc.rcpt, errors.Is(err, rkmail.ErrRecipientRefused), "recipient refused: %v", err)
			// The connection is closed after a failure, no message sent.
			<-srv.done
			assert.Equal(t, []command{{"EHLO", false}, {"MAIL", true}, {"RCPT", true}, {"DATA", false}}, srv.seen())
			assert.Empty(t, srv.data)
		})
	}
}
