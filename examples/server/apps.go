package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/referralkit/referralkit/referral"
)

// runApps runs "apps disable|enable -app UUID". A disabled app's API keys
// and access tokens are refused with 403 until it is enabled again; its
// keys, codes and invites stay as they are.
func runApps(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "disable" && args[0] != "enable") {
		return errors.New("usage: apps disable|enable -app UUID")
	}
	var c config
	fs := c.newFlagSet("apps "+args[0], getenv, stderr, "db")
	var app string
	fs.StringVar(&app, "app", "", "client id (UUID) of the app (required)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if app == "" {
		return fmt.Errorf("apps %s needs -app", args[0])
	}
	id, ok := referral.CanonicalUUID(app)
	if !ok {
		return fmt.Errorf("apps %s: -app must be a UUID", args[0])
	}
	store, err := openBackend(ctx, &c)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.SetAppDisabled(ctx, id, args[0] == "disable"); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "app %s %sd\n", id, args[0])
	return nil
}
