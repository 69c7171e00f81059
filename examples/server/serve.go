package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"

	"github.com/referralkit/referralkit/auth"
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
  server token -app UUID -user UUID [-ttl 1h]         a development access token
All of them take -db. Flags of the server:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unknown command %q: use keys, token or no command to serve", fs.Arg(0))}
	}
	if err := c.check(); err != nil {
		return usageError{err}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	store, err := openBackend(ctx, &c)
	if err != nil {
		return usageError{fmt.Errorf("-db %s: %w", c.db, err)}
	}
	defer store.Close()

	mailer, where, err := openMailer(&c)
	if err != nil {
		return usageError{err}
	}
	defer mailer.Close()

	tokens, tokenNote, err := openTokens(&c, store)
	if err != nil {
		return usageError{err}
	}
	delivery := referral.Inline
	if c.delivery == "queued" {
		delivery = referral.Queued
	}
	apiKeys := auth.NewAPIKeys(store)
	h, err := referral.New(referral.Config{
		Auth:         auth.Either(apiKeys, tokens),
		Store:        store,
		Mailer:       mailer,
		From:         c.from,
		SignupURL:    c.signupURL,
		Delivery:     delivery,
		SendTimeout:  duration(c.sendTimeout),
		RetryBackoff: duration(c.retryBackoff),
		Logger:       log,
	})
	if err != nil {
		return usageError{err}
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return usageError{fmt.Errorf("-addr: %w", err)}
	}
	srv := &http.Server{
		Handler:           routes(h, apiKeys, store, c.origins()),
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
	log.Info(tokenNote)
	log.Info("next: create an API key with: " + keysCreateCommand(&c))
	log.Info("referral server listening", "addr", "http://"+ln.Addr().String(), "route", "POST "+referral.Pattern, "delivery", c.delivery)

	var workers sync.WaitGroup
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	if delivery == referral.Queued {
		workers.Go(func() { h.Run(workerCtx) })
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		err = srv.Shutdown(sctx)
		cancel()
	}
	stopWorker()
	workers.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	log.Info("stopped")
	return err
}

// routes is the server's mux: the invite route, the referral-code routes
// (redemptions take API keys only: they are the host's server-side call),
// /healthz, and CORS for the origins given.
func routes(h *referral.Handler, apiKeys referral.Authenticator, store backend, origins []string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, h)
	mux.Handle(referral.CodePattern, h.CodeLookup())
	mux.Handle(referral.RedemptionPattern, h.Redemptions(apiKeys))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Cache-Control", "no-store")
		if err := store.Ping(ctx); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if len(origins) == 0 {
		return mux
	}
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"},
		ExposedHeaders: []string{"X-Request-Id", "Retry-After"},
		MaxAge:         600,
	}).Handler(mux)
}

// closingMailer is a referral.Mailer the server closes when it stops.
type closingMailer interface {
	referral.Mailer
	Close() error
}

// openMailer returns the SMTP transport if -smtp is set, else the Maildir,
// and a description of where mail goes for the start-up log.
func openMailer(c *config) (closingMailer, string, error) {
	if c.smtpURL == "" {
		md, err := maildir.New(c.maildir)
		if err != nil {
			return nil, "", fmt.Errorf("-maildir: %w", err)
		}
		abs, _ := filepath.Abs(c.maildir)
		return nopCloser{md}, "Maildir " + filepath.Join(abs, "new") + " (set -smtp to send real mail)", nil
	}
	cfg, err := smtp.ParseURL(c.smtpURL)
	if err != nil {
		return nil, "", fmt.Errorf("-smtp: %w", err)
	}
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

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndexByte(s, '@'); at > i {
			if colon := strings.IndexByte(s[i+3:at], ':'); colon >= 0 {
				return s[:i+3+colon+1] + "***" + s[at:]
			}
		}
	}
	return s
}
