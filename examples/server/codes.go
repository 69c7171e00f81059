package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/referralkit/referralkit/mail"
)

// runCodes runs "codes show -app UUID -user ID": the user's referral code
// and share link, the code made if the user has none. It reads the code
// from the database rather than from an email, whose quoted-printable body
// shows the link as ref=3D...
func runCodes(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "show" {
		return errors.New("usage: codes show -app UUID -user ID")
	}
	var c config
	fs := c.newFlagSet("codes show", getenv, stderr, "db", "user-ids", "public-url", "signup-url")
	var app, user string
	fs.StringVar(&app, "app", "", "client id (UUID) of the app whose invites carry the code (required)")
	fs.StringVar(&user, "user", "", "user id, as the routes take it (required)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if user == "" {
		return errors.New("codes show needs -user")
	}
	if err := c.checkHandler(); err != nil {
		return err
	}
	store, err := openBackend(ctx, &c)
	if err != nil {
		return err
	}
	defer store.Close()
	if app, err = knownApp(ctx, store, "codes show", app); err != nil {
		return err
	}
	// The handler only reads and makes codes here.
	h, err := newOfflineHandler(&c, store)
	if err != nil {
		return err
	}
	code, err := h.Code(ctx, app, user)
	if err != nil {
		return err
	}
	link, err := h.ShareLink(ctx, app, user)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "code: %s\nlink: %s\n", code, link)
	return nil
}

// noMail is the Mailer of a handler that never sends.
type noMail struct{}

func (noMail) Send(context.Context, mail.Message) error {
	return errors.New("a subcommand sends no mail")
}
