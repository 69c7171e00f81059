package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
)

// runKeys runs "keys create|revoke|list".
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: keys create|revoke|list [flags]")
	}
	var c config
	fs := c.newFlagSet("keys "+args[0], getenv, stderr, "db")
	var app, typ, prefix string
	var asJSON bool
	switch args[0] {
	case "create":
		fs.StringVar(&app, "app", "", "client id (UUID) of the app; empty: a new app")
		fs.StringVar(&typ, "type", "write", "key type: write or read")
		fs.BoolVar(&asJSON, "json", false, `print {"clientId", "apiKey", "type"} as JSON`)
	case "revoke":
		fs.StringVar(&app, "app", "", "client id (UUID) of the app (required)")
		fs.StringVar(&prefix, "key", "", "prefix of the key to revoke; empty: every key of the app")
	case "list":
		fs.StringVar(&app, "app", "", "client id (UUID) of the app (required)")
	default:
		return fmt.Errorf("unknown keys command %q: use create, revoke or list", args[0])
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if args[0] != "create" && app == "" {
		return fmt.Errorf("keys %s needs -app", args[0])
	}
	store, err := openBackend(ctx, &c)
	if err != nil {
		return err
	}
	defer store.Close()

	switch args[0] {
	case "create":
		kt, err := auth.ParseKeyType(typ)
		if err != nil {
			return err
		}
		plain, k, err := auth.CreateKey(ctx, store, app, kt)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"clientId": k.AppID, "apiKey": plain, "type": string(k.Type)})
		}
		fmt.Fprintf(stdout, "clientId: %s\napiKey:   %s\ntype:     %s\n\nThe key is shown only this once: only its hash is stored.\n", k.AppID, plain, k.Type)
	case "revoke":
		n, err := store.RevokeKeys(ctx, app, prefix, time.Now().UTC())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d key(s)\n", n)
	case "list":
		keys, err := store.ListKeys(ctx, app)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "PREFIX\tTYPE\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.Revoked() {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.Prefix, k.Type, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return w.Flush()
	}
	return nil
}

// runToken runs "token -app UUID -user ID [-name NAME] [-ttl 1h]".
func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := c.newFlagSet("token", getenv, stderr, "db", "token-issuer", "user-ids")
	var app, user, name string
	var ttl time.Duration
	fs.StringVar(&app, "app", "", "client id (UUID) of the app: the token's aud (required)")
	fs.StringVar(&user, "user", "", "user id (a UUID, or any id with -user-ids opaque): the token's sub (required)")
	fs.StringVar(&name, "name", "", "the user's display name: the token's name claim, which the emails show as the referrer")
	fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	if err := parse(fs, args); err != nil {
		return err
	}
	if app == "" || user == "" {
		return errors.New("token needs -app and -user")
	}
	ids, err := c.ids()
	if err != nil {
		return err
	}
	id, ok := referral.CanonicalUUID(app)
	if !ok {
		return errors.New("token -app must be a UUID")
	}
	app = id
	// The handler's own rule, so that a token for an id the routes refuse
	// is never made; a UUID is made canonical, as the server keeps it.
	if user, ok = ids.Canonical(user); !ok {
		if ids == referral.UUIDs {
			return errors.New("token -user must be a UUID (or set -user-ids opaque)")
		}
		return errors.New(`token -user must be 1 to 128 letters, digits or ".", "_", ":", "@", "-" (the -user-ids opaque rule)`)
	}
	if ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	issuer := c.tokenIssuer
	if issuer == "" {
		issuer = devIssuer
	}
	k, err := loadDevKey(devKeyPath(&c), true)
	if err != nil {
		return err
	}
	tok, err := signDevToken(k, issuer, app, user, name, ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
