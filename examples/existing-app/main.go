package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/referralkit/referralkit/mail/maildir"
	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "existing-app:", err)
		os.Exit(1)
	}
}

// run serves the app until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("existing-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	dbPath := fs.String("db", "teamboard.db", "the app's SQLite database")
	baseURL := fs.String("base-url", "", "the app's public URL, for the links in emails (default http://ADDR)")
	smtpURL := fs.String("smtp", "", "send mail to this server, smtp://[user:pass@]host[:port][?tls=starttls|tls|none] (default: write it into -maildir)")
	maildirPath := fs.String("maildir", "teamboard-mail", "Maildir folder for mail when -smtp is empty")
	from := fs.String("from", "Teamboard <no-reply@teamboard.example>", "sender of the invite emails")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *baseURL == "" {
		*baseURL = "http://" + *addr
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	db, err := sql.Open("sqlite", sqlite.DSN(*dbPath))
	if err != nil {
		return err
	}
	defer db.Close()
	mailer, closeMailer, err := newMailer(*smtpURL, *maildirPath)
	if err != nil {
		return err
	}
	defer closeMailer()
	a, err := newApp(ctx, config{DB: db, Mailer: mailer, BaseURL: *baseURL, From: *from, Logger: logger})
	if err != nil {
		return err
	}
	defer a.Close()
	workerCtx, stopWorker := context.WithCancel(ctx)
	worker := make(chan struct{})
	go func() {
		a.Run(workerCtx)
		close(worker)
	}()
	defer func() { stopWorker(); <-worker }() // before a.Close: the worker uses the store

	srv := &http.Server{Addr: *addr, Handler: a, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	logger.Info("Teamboard is listening", "url", *baseURL)
	select {
	case err := <-served:
		return err // could not listen
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// newMailer sends to the SMTP server of smtpURL or, if that is empty, into
// the Maildir folder dir.
func newMailer(smtpURL, dir string) (referral.Mailer, func() error, error) {
	if smtpURL == "" {
		m, err := maildir.New(dir)
		return m, func() error { return nil }, err
	}
	cfg, err := smtp.ParseURL(smtpURL)
	if err != nil {
		return nil, nil, err
	}
	m, err := smtp.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return m, m.Close, nil
}
