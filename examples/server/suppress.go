package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
)

// errNotSuppressed is "suppress check"'s answer no: exit code 1.
var errNotSuppressed = errors.New("not suppressed")

// runSuppress runs "suppress add|remove|check -app UUID EMAIL": the
// app's suppression list, as the handler keeps it (only a keyed hash of
// the address). Its failures exit 2, since check answers with 0 and 1.
func runSuppress(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := suppress(ctx, args, getenv, stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.Is(err, errNotSuppressed) {
		return err
	}
	return usageError{err}
}

func suppress(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const usage = "usage: suppress add|remove|check -app UUID EMAIL"
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove" && args[0] != "check") {
		return errors.New(usage)
	}
	cmd := "suppress " + args[0]
	var c config
	fs := c.newFlagSet(cmd, getenv, stderr, "db")
	var app string
	fs.StringVar(&app, "app", "", "client id (UUID) of the app (required)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// The address, and flags after it.
	email := fs.Arg(0)
	if err := fs.Parse(fs.Args()[min(1, fs.NArg()):]); err != nil {
		return err
	}
	if email == "" || fs.NArg() > 0 {
		return errors.New(usage)
	}
	if err := c.checkHandler(); err != nil {
		return err
	}
	store, err := openBackend(ctx, &c)
	if err != nil {
		return err
	}
	defer store.Close()
	if app, err = knownApp(ctx, store, cmd, app); err != nil {
		return err
	}
	h, err := newOfflineHandler(&c, store)
	if err != nil {
		return err
	}
	switch args[0] {
	case "add":
		if err := h.Suppress(ctx, app, email); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "suppressed: no invite will be sent to", email)
	case "remove":
		if err := h.Unsuppress(ctx, app, email); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "not suppressed: invites to", email, "are sent again")
	case "check":
		s, found, err := h.Suppressed(ctx, app, email)
		if err != nil {
			return err
		}
		if !found {
			fmt.Fprintln(stdout, "not suppressed")
			return errNotSuppressed
		}
		fmt.Fprintf(stdout, "suppressed: %s since %s\n", s.Reason, s.CreatedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// knownApp returns app made canonical, after checking that the store has
// it. It refuses "": the server's apps are the UUIDs of keys create, and
// every key and token names one, so a code or suppression for no app would
// never apply: a code that looks valid but credits nobody.
func knownApp(ctx context.Context, store backend, cmd, app string) (string, error) {
	if app == "" {
		return "", fmt.Errorf("%s needs -app: the clientId that keys create printed (every key and token belongs to one app, so nothing made for no app is ever used)", cmd)
	}
	id, ok := referral.CanonicalUUID(app)
	if !ok {
		return "", fmt.Errorf("%s -app must be a UUID", cmd)
	}
	if _, err := store.LookupApp(ctx, id); errors.Is(err, auth.ErrAppNotFound) {
		return "", fmt.Errorf("%s: no app %s (make one with keys create)", cmd, id)
	} else if err != nil {
		return "", err
	}
	return id, nil
}

// newOfflineHandler is the handler of a subcommand: it lets nobody in and
// sends nothing, and reads and writes the store as the server does.
func newOfflineHandler(c *config, store backend) (*referral.Handler, error) {
	return newHandler(c, store, referral.AuthenticatorFunc(func(*http.Request, string) (referral.Principal, error) {
		return referral.Principal{}, referral.ErrUnauthenticated
	}), noMail{}, nil, slog.New(slog.DiscardHandler))
}
