package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/webhook"
)

// duration returns a flag value that check has validated.
func duration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}

// orNone is a checked flag value for a referral.Config field whose zero
// takes the library's default: the flag's 0 means none, the field's
// negative value.
func orNone[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// config is the server's configuration: each field a flag with an
// environment fallback, as DESIGN.md section 5 lists them.
type config struct {
	addr        string
	db          string
	smtpURL     string
	maildir     string
	from        string
	publicURL   string
	signupURL   string
	appName     string
	templates   string
	userIDs     string
	delivery    string
	tokenIssuer string
	tokenKeys   string
	corsOrigins string
	metricsAddr string
	// Webhooks (DESIGN.md section 8): both or neither.
	webhookURL    string
	webhookSecret string
	// DKIM signing: all three or none.
	dkimDomain   string
	dkimSelector string
	dkimKey      string
	// The referrer's side (DESIGN.md section 6).
	inviteTTL   string
	resendAfter string
	maxResends  string
	// Not in DESIGN.md's table: tuning for queued delivery and load tests.
	sendTimeout  string
	retryBackoff string
	maxBacklog   string
}

const devIssuer = "referralkit-dev"

// option is one flag with its environment variable and default.
type option struct {
	dst              *string
	flag, env, value string
	usage            string
}

func (c *config) options() []option {
	return []option{
		{&c.addr, "addr", "REFERRAL_ADDR", "127.0.0.1:8080", "listen address"},
		{&c.db, "db", "REFERRAL_DB", "referral.db", "SQLite file path, or a postgres:// URL"},
		{&c.smtpURL, "smtp", "REFERRAL_SMTP_URL", "", "smtp://user:pass@host:port?tls=starttls|tls|none; empty: write to -maildir"},
		// Not "mail": run from a checkout, that is the mail package's folder.
		{&c.maildir, "maildir", "REFERRAL_MAILDIR", "referral-mail", "Maildir folder used when -smtp is empty"},
		{&c.from, "from", "REFERRAL_FROM", "Referrals <no-reply@localhost>", "sender address"},
		{&c.publicURL, "public-url", "REFERRAL_PUBLIC_URL", "", "this server's base URL as recipients reach it: absolute http(s), no query or fragment (default http://localhost:PORT of -addr, or http://HOST:PORT when -addr's host is neither loopback nor unspecified)"},
		{&c.signupURL, "signup-url", "REFERRAL_SIGNUP_URL", "", "sign-up link template with {code} (default {public-url}/signup?ref={code}, this server's landing page)"},
		{&c.appName, "app-name", "REFERRAL_APP_NAME", "", "product name in the emails (default: -from's display name)"},
		{&c.templates, "templates", "REFERRAL_TEMPLATES", "", "folder of email templates (NAME.txt and NAME.html) adding to or replacing the bundled ones"},
		{&c.userIDs, "user-ids", "REFERRAL_USER_IDS", "uuid", "user ids: uuid, or opaque (1-128 of A-Z a-z 0-9 . _ : @ -)"},
		{&c.delivery, "delivery", "REFERRAL_DELIVERY", "inline", "inline or queued (the delivery worker runs in-process either way: inline, it sends what a crash cut off)"},
		{&c.tokenIssuer, "token-issuer", "REFERRAL_TOKEN_ISSUER", "", "expected iss of access tokens (default " + devIssuer + " with the dev key)"},
		{&c.tokenKeys, "token-keys", "REFERRAL_TOKEN_KEYS", "", "file with the issuer's public keys (PEM or JWKS); empty: the local development key"},
		{&c.corsOrigins, "cors-origins", "REFERRAL_CORS_ORIGINS", "", "comma-separated browser origins allowed to call the routes with an access token"},
		{&c.metricsAddr, "metrics-addr", "REFERRAL_METRICS_ADDR", "", "HOST:PORT serving GET /metrics on its own, and only there (default: /metrics on -addr)"},
		{&c.webhookURL, "webhook-url", "REFERRAL_WEBHOOK_URL", "", "absolute http(s) URL, no fragment, the events are POSTed to, signed with -webhook-secret (Standard Webhooks); empty: no webhooks"},
		{&c.webhookSecret, "webhook-secret", "REFERRAL_WEBHOOK_SECRET", "", "whsec_ + base64 of at least 24 bytes: the key signing every webhook; with -webhook-url, never printed"},
		{&c.dkimDomain, "dkim-domain", "REFERRAL_DKIM_DOMAIN", "", "DKIM signing domain (d=), e.g. -from's; with -dkim-selector and -dkim-key"},
		{&c.dkimSelector, "dkim-selector", "REFERRAL_DKIM_SELECTOR", "", "DKIM selector (s=): the key is published at SELECTOR._domainkey.DOMAIN"},
		{&c.dkimKey, "dkim-key", "REFERRAL_DKIM_KEY", "", "PEM file with the DKIM private key (RSA of 2048 bits or more, or Ed25519); the start-up log shows the DNS TXT record"},
		{&c.inviteTTL, "invite-ttl", "REFERRAL_INVITE_TTL", "720h", "how long a sent invite waits to be accepted; then its referrer sees it expired and may resend it (0: never expires)"},
		{&c.resendAfter, "resend-after", "REFERRAL_RESEND_AFTER", "24h", "least time between an invite's last send and a resend (0: no wait)"},
		{&c.maxResends, "max-resends", "REFERRAL_MAX_RESENDS", "2", "resends allowed per invite (0: none)"},
		{&c.sendTimeout, "send-timeout", "REFERRAL_SEND_TIMEOUT", "15s", "bound on one delivery attempt"},
		{&c.retryBackoff, "retry-backoff", "REFERRAL_RETRY_BACKOFF", "30s", "first retry delay of queued delivery and of webhooks, doubling with jitter up to 1h"},
		{&c.maxBacklog, "max-backlog", "REFERRAL_MAX_BACKLOG", "0", "queued delivery: invites queued ahead of the worker before a request waits for it, up to 1s (0: no bound, answer at once)"},
	}
}

// newFlagSet returns a flag set for name with the options named (all if
// none), each defaulting to its environment variable when that is set.
// The options not named take their environment variable or default.
func (c *config) newFlagSet(name string, getenv func(string) string, stderr io.Writer, only ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, o := range c.options() {
		def := o.value
		if v := getenv(o.env); v != "" {
			def = v
		}
		if len(only) > 0 && !contains(only, o.flag) {
			*o.dst = def
			continue
		}
		fs.StringVar(o.dst, o.flag, def, o.usage+" (env "+o.env+")")
		// -h and a usage error print the defaults, which may come from the
		// environment: a secret there is not printed, nor a URL's password.
		shown := redactURL(def)
		if o.flag == "webhook-secret" {
			shown = ""
		}
		fs.Lookup(o.flag).DefValue = shown
	}
	return fs
}

// countSet is how many of vs are not empty.
func countSet(vs ...string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// check reports the first misconfiguration it finds, as one line.
func (c *config) check() error {
	switch c.delivery {
	case "inline", "queued":
	default:
		return fmt.Errorf("-delivery must be inline or queued, not %q", c.delivery)
	}
	for _, d := range []struct{ flag, v string }{{"-send-timeout", c.sendTimeout}, {"-retry-backoff", c.retryBackoff}} {
		if v, err := time.ParseDuration(d.v); err != nil || v <= 0 {
			return fmt.Errorf("%s must be a positive duration like 15s, not %q", d.flag, d.v)
		}
	}
	for _, d := range []struct{ flag, v string }{{"-invite-ttl", c.inviteTTL}, {"-resend-after", c.resendAfter}} {
		if v, err := time.ParseDuration(d.v); err != nil || v < 0 {
			return fmt.Errorf("%s must be a duration like 24h, or 0 for none, not %q", d.flag, d.v)
		}
	}
	for _, w := range []struct{ flag, v string }{{"-max-resends", c.maxResends}, {"-max-backlog", c.maxBacklog}} {
		if n, err := strconv.Atoi(w.v); err != nil || n < 0 || w.v != strconv.Itoa(n) {
			return fmt.Errorf("%s must be a whole number, 0 or more, not %q", w.flag, w.v)
		}
	}
	if c.maxBacklog != "0" && c.delivery != "queued" {
		return fmt.Errorf("-max-backlog %s bounds queued delivery's backlog: it needs -delivery queued", c.maxBacklog)
	}
	if c.addr == "" {
		return errors.New("-addr is empty")
	}
	if c.metricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.metricsAddr); err != nil || port == "" {
			return fmt.Errorf("-metrics-addr must be HOST:PORT, like 127.0.0.1:9090, or empty for /metrics on -addr, not %q", c.metricsAddr)
		}
	}
	if c.tokenKeys != "" && c.tokenIssuer == "" {
		return errors.New("-token-keys needs -token-issuer: the iss that tokens signed with those keys carry")
	}
	if n := countSet(c.dkimDomain, c.dkimSelector, c.dkimKey); n != 0 && n != 3 {
		return errors.New("-dkim-domain, -dkim-selector and -dkim-key go together: give all three, or none to send unsigned mail")
	}
	if _, err := c.webhooks(); err != nil {
		return err
	}
	for _, o := range c.origins() {
		u, err := url.Parse(o)
		if o == "*" || err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			return fmt.Errorf("-cors-origins: %q is not an origin like https://app.example.com", o)
		}
	}
	return c.checkHandler()
}

// checkHandler checks what the handler is built from, for the server and
// the subcommands that build one, derives -public-url from -addr when it
// is not given, and the sign-up link from -public-url when -signup-url is
// not given.
func (c *config) checkHandler() error {
	if _, err := c.ids(); err != nil {
		return err
	}
	if c.publicURL == "" {
		host, port, err := net.SplitHostPort(c.addr)
		if err != nil {
			return fmt.Errorf("-addr must be HOST:PORT, like 127.0.0.1:8080, not %q", c.addr)
		}
		c.publicURL = publicURLOf(host, port)
	}
	u, err := url.Parse(c.publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || strings.Contains(c.publicURL, "#") {
		return fmt.Errorf("-public-url must be an absolute http(s) URL without query or fragment, like https://referrals.example.com, not %q", c.publicURL)
	}
	c.publicURL = strings.TrimRight(c.publicURL, "/")
	if c.signupURL == "" {
		c.signupURL = c.publicURL + signupPath + "?ref={code}"
	}
	return nil
}

// publicURLOf is the default -public-url of a server listening on
// host:port: the name a browser on this machine reaches a loopback or
// unspecified (every interface) address by, else host itself.
func publicURLOf(host, port string) string {
	if ip, err := netip.ParseAddr(host); host == "" || host == "localhost" || err == nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// listen listens on -addr. When -public-url is not given, it derives from
// the port listened on: the one the system chose for a port 0.
func (c *config) listen() (net.Listener, error) {
	if c.addr == "" {
		return nil, errors.New("-addr is empty")
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("-addr: %w", err)
	}
	if c.publicURL == "" {
		host, _, _ := net.SplitHostPort(c.addr) // Listen took it
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		c.publicURL = publicURLOf(host, port)
	}
	return ln, nil
}

// listenMetrics listens on -metrics-addr, or returns nil when it is empty
// and /metrics is served on -addr.
func (c *config) listenMetrics() (net.Listener, error) {
	if c.metricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", c.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	return ln, nil
}

// webhooks is the sender of -webhook-url and -webhook-secret, or nil when
// neither is set. Its errors never show the secret.
func (c *config) webhooks() (*webhook.Sender, error) {
	switch countSet(c.webhookURL, c.webhookSecret) {
	case 0:
		return nil, nil
	case 1:
		return nil, errors.New("-webhook-url and -webhook-secret go together: give both, or neither for no webhooks")
	}
	secret, err := webhook.ParseSecret(c.webhookSecret)
	if err != nil {
		// ParseSecret's errors say what is wrong, never the secret.
		return nil, fmt.Errorf("-webhook-secret: %w", err)
	}
	s := &webhook.Sender{URL: c.webhookURL, Secret: secret}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("-webhook-url must be an absolute http(s) URL with a host and no fragment, like https://app.example.com/webhooks, not %q", redactURL(c.webhookURL))
	}
	return s, nil
}

// ids is the rule -user-ids names.
func (c *config) ids() (referral.IDs, error) {
	switch c.userIDs {
	case "uuid":
		return referral.UUIDs, nil
	case "opaque":
		return referral.OpaqueIDs, nil
	}
	return 0, fmt.Errorf("-user-ids must be uuid or opaque, not %q", c.userIDs)
}

func (c *config) origins() []string {
	var out []string
	for _, o := range strings.Split(c.corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func (c *config) isPostgres() bool {
	return strings.HasPrefix(c.db, "postgres://") || strings.HasPrefix(c.db, "postgresql://")
}
