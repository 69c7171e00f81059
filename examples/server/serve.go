package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/cors"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/maildir"
	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/referral"
)

// shutdownGrace bounds how long requests in flight may take to finish
// after SIGINT or SIGTERM.
const shutdownGrace = 30 * time.Second

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var c config
	fs := c.newFlagSet("server", getenv, stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  server [flags]                                      serve the referral routes
  server keys create [-app UUID] [-type write|read] [-json]
  server keys revoke -app UUID [-key PREFIX]
  server keys list -app UUID
  server apps disable|enable -app UUID                refuse (403) or accept an app's keys and tokens again
  server token -app UUID -user ID [-name N] [-ttl 1h] a development access token
  server codes show -app UUID -user ID                a user's referral code and share link
  server suppress add|remove|check -app UUID EMAIL    stop, resume or check invites to an address (check: exit 0 suppressed, 1 not)
All of them take -db; token and codes take -user-ids. Flags of the server:
`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unknown command %q: use keys, apps, token, codes, suppress or no command to serve", fs.Arg(0))}
	}
	ln, err := c.listen() // first: -public-url may follow its port
	if err != nil {
		return usageError{err}
	}
	defer ln.Close()
	if err := c.check(); err != nil {
		return usageError{err}
	}
	mln, err := c.listenMetrics()
	if err != nil {
		return usageError{err}
	}
	if mln != nil {
		defer mln.Close()
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	store, err := openBackend(ctx, &c)
	if err != nil {
		return usageError{fmt.Errorf("-db %s: %w", redactURL(c.db), err)}
	}
	defer store.Close()

	dkim, err := openDKIM(&c)
	if err != nil {
		return usageError{err}
	}
	mailer, where, err := openMailer(&c, dkim)
	if err != nil {
		return usageError{err}
	}
	defer mailer.Close()

	tokens, tokenNote, err := openTokens(&c, store)
	if err != nil {
		return usageError{err}
	}
	apiKeys := auth.NewAPIKeys(store)
	reg := newRegistry()
	h, err := newHandler(&c, store, auth.Either(apiKeys, tokens), mailer, reg, log)
	if err != nil {
		return usageError{err}
	}
	metrics := metricsRoute(reg)
	mainMetrics, metricsURL := metrics, "http://"+ln.Addr().String()+metricsPath
	var msrv *http.Server // nil: /metrics is on -addr
	if mln != nil {
		mainMetrics, metricsURL = nil, "http://"+mln.Addr().String()+metricsPath
		msrv = metricsServer(metrics, log)
	}

	srv := &http.Server{
		Handler:           routes(h, apiKeys, store, c.origins(), mainMetrics, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// Inline delivery may take up to the send timeout.
		WriteTimeout:   duration(c.sendTimeout) + 30*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	dbWhere := c.db
	if !c.isPostgres() {
		dbWhere, _ = filepath.Abs(c.db)
	}
	log.Info("database", "db", redactURL(dbWhere))
	log.Info("mail", "to", where)
	if dkim != nil {
		log.Info("DKIM: signing every message; publish this DNS TXT record", "name", dkim.TXTName(), "value", dkim.TXTRecord())
	}
	log.Info("sign-up links", "link", c.signupURL)
	log.Info(tokenNote)
	log.Info("next: create an API key with: " + keysCreateCommand(&c))
	log.Info(referrerPageNote(&c))
	log.Info("Prometheus metrics", "url", metricsURL)
	if c.webhookURL != "" {
		log.Info("webhooks: every event is POSTed, signed, to the URL", "url", redactURL(c.webhookURL),
			"events", strings.Join(webhookEvents, ", "))
	} else {
		log.Info("webhooks: off (set -webhook-url and -webhook-secret)")
	}
	log.Info("referral server listening", "addr", "http://"+ln.Addr().String(), "route", "POST "+referral.Pattern, "delivery", c.delivery, "max_backlog", c.maxBacklog)

	var workers sync.WaitGroup
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	// The worker runs in inline mode too: an invite recorded just before a
	// crash (or whose inline send was cut off) is only ever delivered by a
	// worker claiming it once its lease has run out.
	workers.Go(func() { h.Run(workerCtx) })
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	if msrv != nil {
		go func() { served <- msrv.Serve(mln) }()
	}

	// Either server failing stops both, as a signal does.
	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight")
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	if msrv != nil {
		err = errors.Join(err, msrv.Shutdown(sctx))
	}
	err = errors.Join(err, srv.Shutdown(sctx))
	cancel()
	stopWorker()
	workers.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil // Serve only returns it once Shutdown was called
	}
	log.Info("stopped")
	return err
}

// webhookEvents are the events -webhook-url is sent (DESIGN.md section 8).
var webhookEvents = []string{referral.EventInviteSent, referral.EventInviteFailed, referral.EventInviteSuppressed,
	referral.EventInviteRevoked, referral.EventReferralRedeemed}

// newHandler builds the referral handler from a checked c: the server and
// "codes show" share it, so that a code's link is the same in both.
// Its metrics go to reg, if not nil.
func newHandler(c *config, store backend, a referral.Authenticator, m referral.Mailer, reg prometheus.Registerer, log *slog.Logger) (*referral.Handler, error) {
	ids, err := c.ids()
	if err != nil {
		return nil, err
	}
	var tmpl *mail.Templates
	if c.templates != "" {
		if _, err := os.Stat(c.templates); err != nil {
			return nil, fmt.Errorf("-templates: %w", err)
		}
		if tmpl, err = mail.NewTemplates(os.DirFS(c.templates)); err != nil {
			return nil, fmt.Errorf("-templates %s: %w", c.templates, err)
		}
	}
	maxResends, _ := strconv.Atoi(c.maxResends) // checked
	maxBacklog, _ := strconv.Atoi(c.maxBacklog) // checked
	delivery := referral.Inline
	if c.delivery == "queued" {
		delivery = referral.Queued
	}
	sender, err := c.webhooks()
	if err != nil {
		return nil, err
	}
	var webhooks referral.EventSender
	if sender != nil { // not a typed nil: New would take it for endpoints
		webhooks = sender
	}
	return referral.New(referral.Config{
		Auth:        a,
		Store:       store,
		Redemptions: store,
		Recipients:  store,
		Referrers:   store,
		InviteTTL:   orNone(duration(c.inviteTTL)),
		ResendAfter: orNone(duration(c.resendAfter)),
		MaxResends:  orNone(maxResends),
		// The pattern ends in {token}, the template's placeholder; a path
		// in -public-url is a proxy's, as for the sign-up page.
		UnsubscribeURL: c.publicURL + referral.UnsubscribePattern,
		Mailer:         m,
		From:           c.from,
		SignupURL:      c.signupURL,
		Templates:      tmpl,
		ProductName:    c.appName,
		// The referrer's name is the access token's name claim, if any.
		FromReferrer: true,
		UserIDs:      ids,
		Delivery:     delivery,
		SendTimeout:  duration(c.sendTimeout),
		RetryBackoff: duration(c.retryBackoff),
		MaxBacklog:   maxBacklog,
		Metrics:      reg,
		Queue:        store,
		// Opened with its outbox on when there are webhooks (openBackend).
		Webhooks: webhooks,
		Events:   store,
		Logger:   log,
	})
}

// routes is the server's mux: the invite route (POST invites, GET lists),
// the referrer's routes (their code, revoking and resending an invite) and
// page, the referral-code routes (redemptions take API keys only: they are
// the host's server-side call), the unsubscribe links' route, the sign-up
// landing page, /healthz (200 while the store can write), /metrics (a
// 404 in the envelope when metrics is nil: -metrics-addr serves them), and
// CORS for the origins given.
func routes(h *referral.Handler, apiKeys referral.Authenticator, store backend, origins []string, metrics http.Handler, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, h)
	mux.Handle(referral.ReferralCodePattern, h.ReferralCode())
	mux.Handle(referral.InvitePattern, h.Invite())
	mux.Handle(referral.ResendPattern, h.Resend())
	mux.Handle("GET "+referrerPath, referrerPage())
	mux.Handle("GET "+referrerScriptPath, referrerScript())
	mux.Handle(referral.CodePattern, h.CodeLookup())
	mux.Handle(referral.RedemptionPattern, h.Redemptions(apiKeys))
	// No credentials: mail clients and the recipient's browser call it,
	// and the token in the path is the credential.
	mux.Handle(referral.UnsubscribePattern, h.Unsubscribe())
	mux.Handle("GET "+signupPath, signupPage(log))
	health := &writeCheck{check: store.CheckWrite}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeEnvelope(w, http.StatusMethodNotAllowed, "method not allowed; use GET")
			return
		}
		// A write, not a ping: a store that only reads cannot take invites.
		if err := health.result(r.Context()); err != nil {
			writeEnvelope(w, http.StatusServiceUnavailable, "store cannot write")
			return
		}
		writeEnvelope(w, http.StatusOK, "ok")
	})
	if metrics == nil {
		metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeEnvelope(w, http.StatusNotFound, "not found")
		})
	}
	mux.Handle(metricsPath, metrics)
	api := v1Only(mux)
	if len(origins) == 0 {
		return api
	}
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		// DELETE revokes an invite.
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"},
		ExposedHeaders: []string{"X-Request-Id", "Retry-After"},
		MaxAge:         600,
	}).Handler(api)
}

// v1Only answers every request under /v1/ that no route takes with a 404
// in the API's envelope, instead of ServeMux's text 404 or its redirect
// to the cleaned path: API clients read JSON and should not follow a
// redirect to a path they did not ask for (//v1/..., /v1/./...).
func v1Only(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if clean := cleanPath(p); strings.HasPrefix(clean, "/v1/") || clean == "/v1" {
			if _, pattern := mux.Handler(r); clean != p || pattern == "" {
				writeEnvelope(w, http.StatusNotFound, "not found")
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// cleanPath is the path ServeMux would redirect p to (path.Clean, keeping
// a trailing slash).
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// healthEvery is how often /healthz may write to the store: the route
// needs no credentials, and a flood of probes must not become a flood of
// commits.
const healthEvery = time.Second

// writeCheck runs check at most once per healthEvery, one caller at a
// time; the others get the last result.
type writeCheck struct {
	check func(context.Context) error
	mu    sync.Mutex
	at    time.Time
	err   error
}

func (c *writeCheck) result(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < healthEvery {
		return c.err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c.err, c.at = c.check(ctx), time.Now()
	return c.err
}

// writeEnvelope answers status in the envelope of the referral handler
// (DESIGN.md section 1): a success for a 2xx status, else a failure with
// msg as its error.
func writeEnvelope(w http.ResponseWriter, status int, msg string) {
	env := struct {
		Success bool    `json:"success"`
		Message *string `json:"message"`
		Error   *string `json:"error"`
		Data    any     `json:"data"`
	}{}
	if status < 300 {
		env.Success, env.Message = true, &msg
	} else {
		env.Error = &msg
	}
	body, _ := json.Marshal(env)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// closingMailer is a referral.Mailer the server closes when it stops.
type closingMailer interface {
	referral.Mailer
	Close() error
}

// openDKIM returns the DKIM signer of -dkim-domain, -dkim-selector and
// -dkim-key, or nil when they are not set.
func openDKIM(c *config) (*mail.DKIM, error) {
	if c.dkimKey == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.dkimKey)
	if err != nil {
		return nil, fmt.Errorf("-dkim-key: %w", err)
	}
	d, err := mail.NewDKIM(c.dkimDomain, c.dkimSelector, pem)
	if err != nil {
		// The error names what is wrong: the domain, the selector or the key.
		return nil, fmt.Errorf("-dkim-domain, -dkim-selector, -dkim-key %s: %w", c.dkimKey, err)
	}
	return d, nil
}

// openMailer returns the SMTP transport if -smtp is set, else the Maildir,
// each signing with dkim if not nil, and a description of where mail goes
// for the start-up log.
func openMailer(c *config, dkim *mail.DKIM) (closingMailer, string, error) {
	if c.smtpURL == "" {
		md, err := maildir.New(c.maildir)
		if err != nil {
			return nil, "", fmt.Errorf("-maildir: %w", err)
		}
		md.DKIM = dkim
		abs, _ := filepath.Abs(c.maildir)
		return nopCloser{md}, "Maildir " + filepath.Join(abs, "new") + " (set -smtp to send real mail)", nil
	}
	cfg, err := smtp.ParseURL(c.smtpURL)
	if err != nil {
		return nil, "", fmt.Errorf("-smtp: %w", err)
	}
	cfg.DKIM = dkim
	m, err := smtp.New(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("-smtp: %w", err)
	}
	return m, "SMTP " + cfg.String(), nil
}

type nopCloser struct{ referral.Mailer }

func (nopCloser) Close() error { return nil }

// openTokens returns the access-token authenticator: the issuer's keys
// from -token-keys, or the local development key.
func openTokens(c *config, store backend) (*auth.Tokens, string, error) {
	var keys []auth.VerifyKey
	issuer := c.tokenIssuer
	note := ""
	if c.tokenKeys != "" {
		data, err := os.ReadFile(c.tokenKeys)
		if err != nil {
			return nil, "", fmt.Errorf("-token-keys: %w", err)
		}
		if strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
			keys, err = auth.ParseJWKS(data)
		} else {
			keys, err = auth.ParsePublicKeysPEM(data)
		}
		if err != nil {
			return nil, "", fmt.Errorf("-token-keys %s: %w", c.tokenKeys, err)
		}
		note = fmt.Sprintf("access tokens: %d key(s) from %s, issuer %q", len(keys), c.tokenKeys, issuer)
	} else {
		if issuer == "" {
			issuer = devIssuer
		}
		path, _ := filepath.Abs(devKeyPath(c))
		k, err := loadDevKey(path, true)
		if err != nil {
			return nil, "", err
		}
		keys = []auth.VerifyKey{devVerifyKey(k)}
		note = fmt.Sprintf("access tokens: trusting the local DEVELOPMENT key %s (issuer %q); set -token-keys in production", path, issuer)
	}
	t, err := auth.NewTokens(auth.TokenConfig{Issuer: issuer, Keys: keys, CheckApp: auth.KnownApps(store)})
	if err != nil {
		return nil, "", err
	}
	return t, note, nil
}

// keysCreateCommand is the command a newcomer runs next, with the -db
// this server uses.
func keysCreateCommand(c *config) string {
	cmd := "go run ./examples/server keys create"
	if c.db != "referral.db" {
		cmd += " -db '" + redactURL(c.db) + "'"
	}
	return cmd
}

// referrerPageNote says how to open a user's referrer page: with a
// development token when the server trusts the dev key, else with one of
// the issuer's.
func referrerPageNote(c *config) string {
	open := c.publicURL + referrerPath + "#token=TOKEN"
	if c.tokenKeys != "" {
		return "a user's referrer page: open " + open + " with an access token of " + c.tokenIssuer + " for the user"
	}
	cmd := "go run ./examples/server token"
	if c.db != "referral.db" {
		cmd += " -db '" + redactURL(c.db) + "'"
	}
	if c.userIDs != "uuid" {
		cmd += " -user-ids " + c.userIDs
	}
	return "a user's referrer page: TOKEN=$(" + cmd + " -app CLIENT_ID -user USER_ID), then open " + open
}

// redactURL hides the passwords in a database URL: the userinfo's and
// those of the password and sslpassword query parameters. A URL that does
// not parse is hidden whole but for its scheme.
func redactURL(s string) string {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return scheme + "://" + redacted
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	// Rewritten by hand rather than through url.Values, which would sort
	// the parameters and so change the URL beyond its secrets.
	params := strings.Split(u.RawQuery, "&")
	for i, p := range params {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err != nil || secretParam(key) {
			params[i] = k + "=" + redacted
		}
	}
	u.RawQuery = strings.Join(params, "&")
	return u.String()
}

// redacted stands for a secret in output.
const redacted = "xxxxx"

func secretParam(key string) bool {
	switch strings.ToLower(key) {
	case "password", "sslpassword", // PostgreSQL's
		"token", "access_token", "key", "api_key", "apikey", "secret", "sig", "signature": // a webhook URL's
		return true
	}
	return false
}

// urlSecrets returns the passwords in a database URL, as written and
// unescaped, for scrubbing them from error texts that may quote them.
func urlSecrets(s string) []string {
	var out []string
	add := func(v string) {
		if v != "" && v != redacted {
			out = append(out, v)
			if un, err := url.QueryUnescape(v); err == nil && un != v {
				out = append(out, un)
			}
		}
	}
	_, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil
	}
	// Taken apart by hand as well as parsed: a URL that does not parse may
	// still hold a password, and the driver may quote it.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
			add(pw)
		}
	}
	if _, query, ok := strings.Cut(rest, "?"); ok {
		query, _, _ = strings.Cut(query, "#")
		for _, p := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(p, "=")
			if key, err := url.QueryUnescape(k); err != nil || secretParam(key) {
				add(v)
			}
		}
	}
	if u, err := url.Parse(s); err == nil {
		if pw, ok := u.User.Password(); ok {
			add(pw)
		}
	}
	return out
}

// redactError returns err's text with the database URL db and its
// passwords hidden: drivers quote the connection string in their errors.
// The result no longer wraps err; it is for printing.
func redactError(db string, err error) error {
	msg := strings.ReplaceAll(err.Error(), db, redactURL(db))
	for _, secret := range urlSecrets(db) {
		msg = strings.ReplaceAll(msg, secret, redacted)
	}
	return errors.New(msg)
}
