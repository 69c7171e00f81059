package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// sinkMode is how the sink answers new mail transactions.
type sinkMode int

const (
	modeAccept sinkMode = iota // accept every message
	modeRefuse                 // answer MAIL with 451: a temporary refusal
	modeDrop                   // close connections at random (see dropRate)
	modeHang                   // answer nothing to MAIL until the mode changes
)

func (m sinkMode) String() string {
	return [...]string{"accept", "refuse 4xx", "drop at random", "hang"}[m]
}

// dropRate is the chance, in modeDrop, that the sink closes the connection
// at MAIL, and again, separately, after it has stored a message but before
// it answers 250: the sender then cannot know the message arrived, and
// retries it, so those drops are the only fault that may duplicate mail.
const dropRate = 0.3

// received is one stored message, reduced to what the checks need.
type received struct {
	to        string // the single RCPT TO address
	messageID string // the Message-Id header
}

// sink is an SMTP server on 127.0.0.1 that stores what it accepts and can
// be switched into a faulty mode. It is the loadtest's own rather than
// mail/smtp/smtptest because smtptest needs a *testing.T and its hangs end
// only at shutdown, while a fault window here must end on schedule.
type sink struct {
	srv  *gosmtp.Server
	ln   net.Listener
	done chan struct{} // closed when Serve returns

	mu       sync.Mutex
	mode     sinkMode
	unhang   chan struct{} // closed when a hang ends
	msgs     []received
	refused  int // transactions refused or dropped by a fault
	lostAcks int // messages stored whose 250 was withheld by a drop
	byTo     map[string]int
}

// newSink starts a sink on a port of 127.0.0.1 chosen by the system.
func newSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadtest: smtp sink: %w", err)
	}
	s := &sink{ln: ln, done: make(chan struct{}), unhang: make(chan struct{}), byTo: map[string]int{}}
	close(s.unhang)
	s.srv = gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{s: s, conn: c}, nil
	}))
	s.srv.Domain = "loadtest.localhost"
	s.srv.ErrorLog = discardLogger{}
	// Bounds a connection the sender abandoned; longer than any hang.
	s.srv.ReadTimeout = 5 * time.Minute
	s.srv.WriteTimeout = time.Minute
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// addr returns "127.0.0.1:port".
func (s *sink) addr() string { return s.ln.Addr().String() }

// close stops the sink, ending any hang.
func (s *sink) close() {
	s.setMode(modeAccept)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// setMode switches the sink to m; leaving modeHang releases the
// transactions it holds, which are then refused with 421.
func (s *sink) setMode(m sinkMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == modeHang && m != modeHang {
		close(s.unhang)
	}
	if m == modeHang && s.mode != modeHang {
		s.unhang = make(chan struct{})
	}
	s.mode = m
}

// snapshot returns the stored messages and the fault counters.
func (s *sink) snapshot() (msgs []received, refused, lostAcks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...), s.refused, s.lostAcks
}

// has reports whether a message to addr was stored.
func (s *sink) has(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byTo[addr] > 0
}

// count returns how many messages were stored.
func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// fault decides the fate of a MAIL command: nil to go on, or the error to
// answer. drop reports that the connection should be closed instead.
func (s *sink) fault() (drop bool, err error) {
	s.mu.Lock()
	mode, unhang := s.mode, s.unhang
	switch {
	case mode == modeRefuse:
		s.refused++
		s.mu.Unlock()
		return false, &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "loadtest: try again later"}
	case mode == modeDrop && rand.Float64() < dropRate:
		s.refused++
		s.mu.Unlock()
		return true, nil
	case mode == modeHang:
		s.refused++
		s.mu.Unlock()
		<-unhang
		return false, &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "loadtest: was hanging"}
	}
	s.mu.Unlock()
	return false, nil
}

// store records a message and reports whether its 250 is to be withheld by
// dropping the connection.
func (s *sink) store(m received) (dropAck bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	s.byTo[m.to]++
	if s.mode == modeDrop && rand.Float64() < dropRate {
		s.lostAcks++
		return true
	}
	return false
}

type sinkSession struct {
	s    *sink
	conn *gosmtp.Conn
	to   []string
}

func (se *sinkSession) Mail(string, *gosmtp.MailOptions) error {
	drop, err := se.s.fault()
	if drop {
		_ = se.conn.Conn().Close()
		return errors.New("loadtest: dropped")
	}
	return err
}

func (se *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(se.to) != 1 {
		// Each invite goes to one address; anything else is a bug worth
		// seeing, so it is refused permanently.
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 5, 3}, Message: "loadtest: one recipient expected"}
	}
	if se.s.store(received{to: strings.ToLower(se.to[0]), messageID: messageID(data)}) {
		_ = se.conn.Conn().Close()
		return errors.New("loadtest: dropped after storing")
	}
	return nil
}

func (se *sinkSession) Reset() { se.to = nil }

func (se *sinkSession) Logout() error { return nil }

// messageID returns the Message-Id header of raw, or "" if it has none.
func messageID(raw []byte) string {
	msg, err := netmail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return ""
	}
	return msg.Header.Get("Message-Id")
}

// discardLogger drops go-smtp's log: faults make it noisy by design.
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
