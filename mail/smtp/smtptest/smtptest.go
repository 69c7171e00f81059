package smtptest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Options configure a Server. The zero value offers STARTTLS and no AUTH.
type Options struct {
	// ImplicitTLS makes the server speak TLS from the first byte (as on
	// port 465) instead of offering STARTTLS.
	ImplicitTLS bool
	// NoTLS makes the server plaintext only: no STARTTLS, no TLS.
	NoTLS bool
	// Username and Password, when Username is set, make the server offer
	// AUTH (over TLS only) and require it before MAIL.
	Username, Password string
	// AuthMechanisms lists the mechanisms offered, from "PLAIN" and
	// "LOGIN". Default: both, PLAIN first.
	AuthMechanisms []string
}

// Message is one accepted message.
type Message struct {
	From string   // MAIL FROM address
	To   []string // RCPT TO addresses
	Data []byte   // the message as received, CRLF line ends
	TLS  bool     // whether the connection was encrypted
	User string   // the authenticated user, or ""
}

// Stage names the command a Fault answers.
type Stage int

// Stages of a mail transaction.
const (
	AtMail Stage = iota // the MAIL FROM command
	AtRcpt              // the RCPT TO command
	AtData              // the end of the message data
)

// Fault scripts a failure for the next messages.
type Fault struct {
	At   Stage // which command gets the answer; default AtMail
	Code int   // SMTP reply code, e.g. 451 or 550
	// Hang withholds any answer until the server shuts down; Code is
	// then ignored.
	Hang bool
	// Times is how many messages the fault applies to; negative: every
	// message until the fault is replaced.
	Times int
}

// Server is a running test SMTP server. Its methods are safe for concurrent
// use.
type Server struct {
	t     testing.TB
	opts  Options
	srv   *gosmtp.Server
	tls   *tls.Config
	roots *x509.CertPool
	addr  string

	incoming chan net.Conn
	closed   chan struct{} // closed at shutdown: stops accept loops
	release  chan struct{} // closed at shutdown: ends hanging commands
	wg       sync.WaitGroup

	mu       sync.Mutex
	ln       net.Listener // nil while stopped
	conns    map[net.Conn]struct{}
	accepted int
	msgs     []Message
	fault    Fault
	dropRate float64

	verbs verbCounter
}

// New starts a server on 127.0.0.1 and stops it in t.Cleanup.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if len(opts.AuthMechanisms) == 0 {
		opts.AuthMechanisms = []string{sasl.Plain, sasl.Login}
	}
	cert, roots, err := certificate()
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	s := &Server{
		t:        t,
		opts:     opts,
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		roots:    roots,
		addr:     ln.Addr().String(),
		incoming: make(chan net.Conn),
		closed:   make(chan struct{}),
		release:  make(chan struct{}),
		conns:    map[net.Conn]struct{}{},
	}
	s.srv = gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	s.srv.Domain = "smtptest.localhost"
	s.srv.ErrorLog = logger{t}
	s.srv.ReadTimeout = time.Minute // never reached in a test; bounds a leak
	s.srv.Debug = &s.verbs
	if !opts.NoTLS && !opts.ImplicitTLS {
		s.srv.TLSConfig = s.tls
	}
	s.mu.Lock()
	s.listen(ln)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(&switchListener{s: s})
	}()
	t.Cleanup(s.shutdown)
	return s
}

// Addr returns the server's address, "127.0.0.1:port"; it stays the same
// across Stop and Start.
func (s *Server) Addr() string { return s.addr }

// Host returns "127.0.0.1".
func (s *Server) Host() string {
	host, _, _ := net.SplitHostPort(s.addr)
	return host
}

// Port returns the server's port.
func (s *Server) Port() int {
	_, port, _ := net.SplitHostPort(s.addr)
	p, _ := strconv.Atoi(port)
	return p
}

// RootCAs returns a pool trusting the server's certificate.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// Messages returns a copy of the accepted messages, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Connections returns how many connections the server has accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Commands returns how many times clients have sent the SMTP command verb
// ("RSET", "MAIL", ...), on every connection so far, message data aside.
// It reads the session's text as it passes, so it suits a test that sends
// one message at a time.
func (s *Server) Commands(verb string) int {
	return s.verbs.count(verb)
}

// OpenConnections returns how many connections are open now.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// SetFault scripts f for the next messages, replacing any earlier fault;
// SetFault(Fault{}) clears it.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// SetDropRate makes the server close the connection instead of answering
// a MAIL command with probability p (0 to 1).
func (s *Server) SetDropRate(p float64) {
	s.mu.Lock()
	s.dropRate = p
	s.mu.Unlock()
}

// DropConnections closes every open connection at once.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Stop stops listening, so that new connections are refused; open ones
// carry on.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		_ = s.ln.Close()
		s.ln = nil
	}
}

// Start listens again on the same address after Stop.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("smtptest: listen again: %v", err)
	}
	s.listen(ln)
}

// listen accepts on ln until it is closed. s.mu is held.
func (s *Server) listen(ln net.Listener) {
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			c := s.track(raw)
			if c == nil {
				continue
			}
			if s.opts.ImplicitTLS {
				c = tls.Server(c, s.tls)
			}
			select {
			case s.incoming <- c:
			case <-s.closed:
				_ = c.Close()
				return
			}
		}
	}()
}

// track counts and remembers raw, or closes it and returns nil during
// shutdown.
func (s *Server) track(raw net.Conn) net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		_ = raw.Close()
		return nil
	default:
	}
	s.accepted++
	c := &trackedConn{Conn: raw, s: s}
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) shutdown() {
	s.mu.Lock()
	close(s.release)
	close(s.closed)
	if s.ln != nil {
		_ = s.ln.Close()
		s.ln = nil
	}
	s.mu.Unlock()
	s.DropConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.t.Errorf("smtptest: shutdown: %v", err)
	}
	s.wg.Wait()
}

// fire returns the fault for this stage of a message, if any, counting it.
func (s *Server) fire(at Stage) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f.Times == 0 || f.At != at {
		return Fault{}, false
	}
	if f.Times > 0 {
		s.fault.Times--
	}
	return f, true
}

func (s *Server) fail(at Stage) error {
	f, ok := s.fire(at)
	if !ok {
		return nil
	}
	if f.Hang {
		<-s.release
		return &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCodeNotSet, Message: "shutting down"}
	}
	return &gosmtp.SMTPError{Code: f.Code, EnhancedCode: gosmtp.EnhancedCodeNotSet, Message: "scripted failure"}
}

func (s *Server) drop() bool {
	s.mu.Lock()
	p := s.dropRate
	s.mu.Unlock()
	return p > 0 && mathrand.Float64() < p
}

func (s *Server) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	return &session{s: s, conn: c}, nil
}

type session struct {
	s    *Server
	conn *gosmtp.Conn
	user string
	from string
	to   []string
}

var _ gosmtp.AuthSession = (*session)(nil)

func (se *session) AuthMechanisms() []string {
	if se.s.opts.Username == "" {
		return nil
	}
	return se.s.opts.AuthMechanisms
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != se.s.opts.Username || pass != se.s.opts.Password {
			return gosmtp.ErrAuthFailed
		}
		se.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (se *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if se.s.opts.Username != "" && se.user == "" {
		return gosmtp.ErrAuthRequired
	}
	if se.s.drop() {
		_ = se.conn.Conn().Close()
		return errors.New("dropped")
	}
	if err := se.s.fail(AtMail); err != nil {
		return err
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if err := se.s.fail(AtRcpt); err != nil {
		return err
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := se.s.fail(AtData); err != nil {
		return err
	}
	_, isTLS := se.conn.TLSConnectionState()
	m := Message{From: se.from, To: se.to, Data: data, TLS: isTLS, User: se.user}
	se.s.mu.Lock()
	se.s.msgs = append(se.s.msgs, m)
	se.s.mu.Unlock()
	return nil
}

func (se *session) Reset() { se.from, se.to = "", nil }

func (se *session) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// only implements as a client.
type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user = string(resp)
		l.step = 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// switchListener hands go-smtp the connections accepted by whichever real
// listener is current, so that Stop and Start do not restart the server.
type switchListener struct {
	s    *Server
	once sync.Once
}

func (l *switchListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.s.incoming:
		return c, nil
	case <-l.s.closed:
		return nil, net.ErrClosed
	}
}

func (l *switchListener) Close() error { return nil } // shutdown closes s.closed

func (l *switchListener) Addr() net.Addr {
	addr, _ := net.ResolveTCPAddr("tcp", l.s.addr)
	return addr
}

// trackedConn forgets itself when closed.
type trackedConn struct {
	net.Conn
	s *Server
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// certificate makes a self-signed certificate for the loopback names.
func certificate() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots, nil
}

// logger sends go-smtp's log to the test log.
type logger struct{ t testing.TB }

func (l logger) Printf(format string, v ...any) { l.t.Logf("smtptest: "+format, v...) }
func (l logger) Println(v ...any)               { l.t.Log(append([]any{"smtptest:"}, v...)...) }

// verbCounter counts the first word of each line of the server's
// transcript (go-smtp's Debug: both directions, after TLS), for Commands,
// skipping message data: from the server's 354 to the client's ".".
type verbCounter struct {
	mu      sync.Mutex
	partial []byte // the current line so far, at most maxVerbLine bytes
	inData  bool
	counts  map[string]int
}

const maxVerbLine = 64 // enough for any command's verb

func (v *verbCounter) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			if len(v.partial) < maxVerbLine {
				v.partial = append(v.partial, b)
			}
			continue
		}
		line := strings.TrimRight(string(v.partial), "\r")
		v.partial = v.partial[:0]
		switch {
		case v.inData:
			v.inData = line != "."
			continue
		case strings.HasPrefix(line, "354"):
			v.inData = true
		}
		verb, _, _ := strings.Cut(line, " ")
		if v.counts == nil {
			v.counts = map[string]int{}
		}
		v.counts[strings.ToUpper(verb)]++
	}
	return len(p), nil
}

func (v *verbCounter) count(verb string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.counts[strings.ToUpper(verb)]
}
