package smtp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/referralkit/referralkit/mail"
)

// TLSMode says how the connection to the server is secured.
type TLSMode int

const (
	// StartTLS connects in plaintext and upgrades with STARTTLS before
	// anything else; a server that does not offer it is an error. The
	// default.
	StartTLS TLSMode = iota
	// ImplicitTLS speaks TLS from the first byte (submissions over port
	// 465, RFC 8314).
	ImplicitTLS
	// NoTLS sends in plaintext. It is only allowed to a loopback host (a
	// local relay or a test server) and never with credentials.
	NoTLS
)

// String returns the mode's name in URLs: "starttls", "tls" or "none".
func (m TLSMode) String() string {
	switch m {
	case StartTLS:
		return "starttls"
	case ImplicitTLS:
		return "tls"
	case NoTLS:
		return "none"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// Defaults of Config.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultCommandTimeout = 30 * time.Second
	DefaultIdleTimeout    = 30 * time.Second
	DefaultMaxConns       = 4
)

// Config configures a Mailer. Host is required; every other field has a
// default.
type Config struct {
	Host string
	// Port defaults by TLS mode: 587 for StartTLS, 465 for ImplicitTLS,
	// 25 for NoTLS.
	Port int
	// Username and Password, when Username is set, are sent with AUTH
	// PLAIN (or LOGIN when the server offers only that), always over TLS.
	Username string
	Password string
	// TLS defaults to StartTLS (mandatory).
	TLS TLSMode
	// TLSConfig is used for STARTTLS and implicit TLS; nil means the
	// system's roots. It is cloned; an empty ServerName is set to Host.
	TLSConfig *tls.Config
	// HELO is the name sent with EHLO; default: this machine's host name.
	HELO string
	// DialTimeout bounds connecting (with the TLS handshake for
	// ImplicitTLS); default 10s. The greeting, EHLO, STARTTLS and AUTH that
	// follow share one CommandTimeout.
	DialTimeout time.Duration
	// CommandTimeout bounds the set-up of a connection after dialling, and
	// each message's transaction (MAIL, RCPT, DATA and its reply); default
	// 30s. A server that stops answering is given up on after it.
	CommandTimeout time.Duration
	// IdleTimeout is how long an unused connection stays open for the next
	// Send; default 30s. Negative: close the connection after every
	// message.
	IdleTimeout time.Duration
	// MaxConns caps the connections open at once, and so the messages in
	// flight; further Sends wait their turn (honouring their context).
	// Default 4.
	MaxConns int
	// DKIM, when set, signs every message sent (see mail.DKIM); default
	// nil: messages go out unsigned.
	DKIM *mail.DKIM
}

// String returns the configuration as an smtp:// URL with the password
// redacted, for logs.
func (c Config) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.port()))}
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, "xxxxx")
	}
	u.RawQuery = "tls=" + c.TLS.String()
	return u.String()
}

// ParseURL reads "smtp://user:pass@host:port?tls=starttls|tls|none" into a
// Config. The credentials are optional and percent-decoded; the port
// defaults by mode (587, 465, 25); tls defaults to starttls; any other
// query parameter, a path or a fragment is an error. Errors never contain
// the password.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included.
		return Config{}, errors.New("smtp: malformed URL (check the scheme, host, port and %-escapes)")
	}
	if u.Scheme != "smtp" {
		return Config{}, fmt.Errorf("smtp: URL scheme must be smtp, not %q", u.Scheme)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return Config{}, errors.New("smtp: URL must be smtp://[user:pass@]host[:port][?tls=...]")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, errors.New("smtp: malformed URL query")
	}
	cfg := Config{Host: u.Hostname()}
	for key, values := range q {
		if key != "tls" {
			return Config{}, fmt.Errorf("smtp: unknown URL parameter %q", key)
		}
		if len(values) != 1 {
			return Config{}, errors.New("smtp: URL parameter tls given more than once")
		}
		switch values[0] {
		case "starttls":
			cfg.TLS = StartTLS
		case "tls":
			cfg.TLS = ImplicitTLS
		case "none":
			cfg.TLS = NoTLS
		default:
			return Config{}, fmt.Errorf("smtp: tls=%q: want starttls, tls or none", values[0])
		}
	}
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return Config{}, fmt.Errorf("smtp: bad port %q", p)
		}
		cfg.Port = port
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// validate checks c; it reports field names, never values of secrets.
func (c Config) validate() error {
	switch {
	case c.Host == "":
		return errors.New("smtp: Config.Host is required")
	case strings.ContainsAny(c.Host, " \t\r\n/@"):
		return errors.New("smtp: Config.Host is not a host name")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("smtp: Config.Port %d out of range", c.Port)
	case c.TLS < StartTLS || c.TLS > NoTLS:
		return fmt.Errorf("smtp: Config.TLS: unknown %v", c.TLS)
	case c.TLS == NoTLS && !isLoopback(c.Host):
		return fmt.Errorf("smtp: tls=none is only allowed to a loopback host, not %q", c.Host)
	case c.Password != "" && c.Username == "":
		return errors.New("smtp: Config.Password without Username")
	case c.TLS == NoTLS && c.Username != "":
		return errors.New("smtp: credentials are only sent over TLS, not with tls=none")
	case strings.ContainsAny(c.HELO, " \t\r\n"):
		return errors.New("smtp: Config.HELO is not a host name")
	case c.DialTimeout < 0 || c.CommandTimeout < 0:
		return errors.New("smtp: negative timeout")
	case c.MaxConns < 0:
		return errors.New("smtp: negative Config.MaxConns")
	case c.DKIM != nil && c.DKIM.TXTRecord() == "":
		// TXTRecord is empty exactly when the DKIM cannot sign.
		return errors.New("smtp: Config.DKIM cannot sign (mail.NewDKIM says why)")
	}
	return nil
}

// withDefaults returns c with the zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.Port = c.port()
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.TLSConfig == nil {
		c.TLSConfig = &tls.Config{}
	} else {
		c.TLSConfig = c.TLSConfig.Clone()
	}
	if c.TLSConfig.ServerName == "" {
		c.TLSConfig.ServerName = c.Host
	}
	if c.TLSConfig.MinVersion == 0 {
		c.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return c
}

func (c Config) port() int {
	if c.Port != 0 {
		return c.Port
	}
	switch c.TLS {
	case ImplicitTLS:
		return 465
	case NoTLS:
		return 25
	}
	return 587
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
