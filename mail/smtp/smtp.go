package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gmsmtp "github.com/wneessen/go-mail/smtp"

	"github.com/referralkit/referralkit/mail"
)

// Mailer sends messages over SMTP. It keeps connections open between
// messages (see Config.IdleTimeout) so that a worker calling Send in a loop
// pays for one connection, not one per message. It is safe for concurrent
// use.
//
// Errors: a 5xx reply to MAIL, RCPT or DATA wraps mail.ErrPermanent, and so
// does a message Build refuses; a 5xx to RCPT or DATA also wraps
// mail.ErrRecipientRefused. Everything else is transient: 4xx replies,
// timeouts, refused or dropped connections, and also failures while setting
// up a connection even when the server answers 5xx (a failed TLS handshake,
// AUTH refused with 535, no STARTTLS offered). Those concern the server or
// its configuration, not the message, so the caller should keep the
// message and retry later rather than give it up.
type Mailer struct {
	cfg  Config
	opts []gomail.Option
	sem  chan struct{} // one token per connection in use

	mu    sync.Mutex
	idle  []*conn // open and unused, most recently used last
	epoch uint64  // bumped by Close; older connections are not kept
}

var _ interface {
	Send(context.Context, mail.Message) error
} = (*Mailer)(nil)

// conn is one open connection.
type conn struct {
	smtp  *gmsmtp.Client
	raw   net.Conn // the TCP connection: closing it aborts any exchange
	epoch uint64
	gen   uint64 // counts returns to the pool, so a stale idle timer is ignored
	timer *time.Timer
}

// New returns a Mailer for cfg, or an error naming what is wrong with cfg.
// It does not connect.
func New(cfg Config) (*Mailer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.HELO == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		cfg.HELO = host
	}
	m := &Mailer{
		cfg: cfg,
		opts: []gomail.Option{
			gomail.WithPort(cfg.Port),
			gomail.WithTimeout(cfg.CommandTimeout),
			gomail.WithTLSConfig(cfg.TLSConfig),
			gomail.WithHELO(cfg.HELO),
		},
		sem: make(chan struct{}, cfg.MaxConns),
	}
	switch cfg.TLS {
	case StartTLS:
		m.opts = append(m.opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case ImplicitTLS:
		// The dialer does the handshake; this stops go-mail trying STARTTLS.
		m.opts = append(m.opts, gomail.WithSSL())
	case NoTLS:
		m.opts = append(m.opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if _, err := m.newClient(&watch{}); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return m, nil
}

// Send delivers msg. It reuses an idle connection, and dials a new one if
// there is none or the server turns out to have closed it. Cancelling
// ctx aborts the exchange at once (the connection is then closed).
func (m *Mailer) Send(ctx context.Context, msg mail.Message) error {
	g, err := mail.Build(msg)
	if err != nil {
		return fmt.Errorf("%w (%w)", err, mail.ErrPermanent)
	}
	if m.cfg.DKIM != nil {
		// Not permanent: a key New accepted fails only when its signer
		// (an HSM, say) does, which may pass.
		if err := m.cfg.DKIM.SignMsg(g); err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
	}
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("smtp: waiting for a connection: %w", ctx.Err())
	}
	defer func() { <-m.sem }()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}

	w := &watch{}
	stop := context.AfterFunc(ctx, w.abort)
	c, reused, err := m.get(ctx, w)
	if err == nil {
		err = transact(c.smtp, g)
		if reused && stale(err) && ctx.Err() == nil {
			// The server closed the idle connection: nothing of the
			// message was taken, so it goes over a new one.
			_ = c.raw.Close()
			if c, err = m.dial(ctx, w); err == nil {
				err = transact(c.smtp, g)
			}
		}
	}
	if c == nil {
		stop()
		if ctx.Err() != nil {
			return fmt.Errorf("smtp: connecting: %w", ctx.Err())
		}
		return fmt.Errorf("smtp: connecting to %s: %w", m.addr(), err)
	}
	aborted := !stop()
	if err != nil || aborted {
		// After a failure the session state is unknown: start afresh.
		_ = c.raw.Close()
	} else {
		m.put(c)
	}
	switch {
	case err == nil:
		return nil
	case aborted:
		return fmt.Errorf("smtp: %w", ctx.Err())
	}
	var te *txError
	switch {
	case !errors.As(err, &te) || !te.permanent():
		return fmt.Errorf("smtp: %w", err)
	case te.recipientRefused():
		return fmt.Errorf("smtp: %w (%w, %w)", err, mail.ErrRecipientRefused, mail.ErrPermanent)
	}
	return fmt.Errorf("smtp: %w (%w)", err, mail.ErrPermanent)
}

// Close closes the idle connections, and those in use as their Sends end.
// The Mailer stays usable: a later Send opens a new connection. It always
// returns nil; a server that has already gone needs no goodbye.
func (m *Mailer) Close() error {
	m.mu.Lock()
	idle := m.idle
	m.idle = nil
	m.epoch++
	for _, c := range idle {
		c.timer.Stop()
	}
	m.mu.Unlock()
	var quits sync.WaitGroup
	for _, c := range idle {
		quits.Go(func() { m.quit(c) })
	}
	quits.Wait()
	return nil
}

// get returns an idle connection, reporting that it is one, or a new
// one. An idle connection is not checked: the previous message ended its
// transaction, and checking it (RSET) cost a round trip per message. If
// the server has closed it meanwhile, the next command says so (stale).
func (m *Mailer) get(ctx context.Context, w *watch) (c *conn, reused bool, err error) {
	if c := m.takeIdle(); c != nil {
		if !w.set(c.raw) {
			return nil, false, ctx.Err()
		}
		if err := c.smtp.UpdateDeadline(m.cfg.CommandTimeout); err == nil {
			return c, true, nil
		}
		_ = c.raw.Close()
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
	}
	c, err = m.dial(ctx, w)
	return c, false, err
}

// stale reports whether err, from the first message on a reused
// connection, says that the server had closed it: MAIL, the first command,
// failed without an answer, with 421 (closing the channel), or with a
// reply that answers no MAIL, such as a 221 goodbye. Nothing of the
// message was taken then.
func stale(err error) bool {
	var te *txError
	return errors.As(err, &te) && te.step == stepMail && (te.code == 421 || te.code < 400 || te.code >= 600)
}

func (m *Mailer) dial(ctx context.Context, w *watch) (*conn, error) {
	client, err := m.newClient(w)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	epoch := m.epoch
	m.mu.Unlock()
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		// go-mail leaves the connection open when EHLO, STARTTLS or AUTH fail.
		if raw := w.current(); raw != nil {
			_ = raw.Close()
		}
		return nil, err
	}
	// The transaction's deadline, as get sets it on a reused connection.
	if err := sc.UpdateDeadline(m.cfg.CommandTimeout); err != nil {
		_ = w.current().Close()
		return nil, err
	}
	return &conn{smtp: sc, raw: w.current(), epoch: epoch}, nil
}

// newClient returns a go-mail client whose dialer reports its connection
// to w.
func (m *Mailer) newClient(w *watch) (*gomail.Client, error) {
	opts := append(slices.Clip(m.opts), gomail.WithDialContextFunc(
		func(ctx context.Context, network, addr string) (net.Conn, error) {
			return m.dialConn(ctx, network, addr, w)
		}))
	if m.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&auth{user: m.cfg.Username, pass: m.cfg.Password, host: m.cfg.Host}))
	}
	return gomail.NewClient(m.cfg.Host, opts...)
}

func (m *Mailer) dialConn(ctx context.Context, network, addr string, w *watch) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if !w.set(raw) {
		return nil, net.ErrClosed
	}
	if m.cfg.TLS != ImplicitTLS {
		return raw, nil
	}
	tc := tls.Client(raw, m.cfg.TLSConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

func (m *Mailer) takeIdle() *conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.idle) == 0 {
		return nil
	}
	c := m.idle[len(m.idle)-1]
	m.idle = m.idle[:len(m.idle)-1]
	c.timer.Stop()
	return c
}

// put returns c to the pool, or closes it when it is not to be kept.
func (m *Mailer) put(c *conn) {
	m.mu.Lock()
	if m.cfg.IdleTimeout < 0 || c.epoch != m.epoch {
		m.mu.Unlock()
		m.quit(c)
		return
	}
	c.gen++
	gen := c.gen
	c.timer = time.AfterFunc(m.cfg.IdleTimeout, func() { m.expire(c, gen) })
	m.idle = append(m.idle, c)
	m.mu.Unlock()
}

// expire closes c if it has sat idle since its return number gen.
func (m *Mailer) expire(c *conn, gen uint64) {
	m.mu.Lock()
	i := slices.Index(m.idle, c)
	if i < 0 || c.gen != gen {
		m.mu.Unlock()
		return
	}
	m.idle = slices.Delete(m.idle, i, i+1)
	m.mu.Unlock()
	m.quit(c)
}

// quitTimeout bounds the goodbye to a server. QUIT is a courtesy: a
// server that does not answer it must not hold up a Close, a SIGTERM of
// the standalone server took CommandTimeout per pooled connection then.
const quitTimeout = time.Second

// quit says goodbye politely and closes c.
func (m *Mailer) quit(c *conn) {
	if c.smtp.UpdateDeadline(min(m.cfg.CommandTimeout, quitTimeout)) == nil {
		_ = c.smtp.Quit()
	}
	_ = c.raw.Close()
}

func (m *Mailer) addr() string {
	return net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port))
}

// watch lets a cancelled context close the connection a Send is using.
type watch struct {
	mu      sync.Mutex
	conn    net.Conn
	aborted bool
}

// set makes c the connection to close on abort; after an abort it closes
// c and returns false.
func (w *watch) set(c net.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.aborted {
		_ = c.Close()
		return false
	}
	w.conn = c
	return true
}

func (w *watch) current() net.Conn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conn
}

func (w *watch) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aborted = true
	if w.conn != nil {
		_ = w.conn.Close()
	}
}

// auth sends the credentials with AUTH PLAIN, or LOGIN when the server
// offers only that, and never without TLS.
type auth struct {
	user, pass, host string
	next             gmsmtp.Auth
}

func (a *auth) Start(s *gmsmtp.ServerInfo) (string, []byte, error) {
	if !s.TLS {
		return "", nil, errors.New("refusing to send credentials without TLS")
	}
	offers := func(mech string) bool {
		return slices.ContainsFunc(s.Auth, func(m string) bool { return strings.EqualFold(m, mech) })
	}
	switch {
	case offers("PLAIN"):
		a.next = gmsmtp.PlainAuth("", a.user, a.pass, a.host, false)
	case offers("LOGIN"):
		a.next = gmsmtp.LoginAuth(a.user, a.pass, a.host, false)
	default:
		return "", nil, fmt.Errorf("server offers neither AUTH PLAIN nor LOGIN (offers %q)", s.Auth)
	}
	return a.next.Start(s)
}

func (a *auth) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.next.Next(fromServer, more)
}
