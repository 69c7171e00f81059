package main

import (
	"context"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
	"github.com/referralkit/referralkit/store/sqlite"
)

// backend is everything the server keeps: codes and invites (and their
// referrers' view of them and the delivery queue's length), redemptions,
// suppressions, the outbox of webhook events, apps and keys.
type backend interface {
	referral.CodeStore
	referral.RedemptionStore
	referral.RecipientStore
	referral.ReferrerStore
	referral.QueueStore
	referral.EventStore
	auth.KeyStore
	auth.KeyManager
	Ping(ctx context.Context) error
	// CheckWrite commits a write that changes nothing; an error when
	// writes fail, also while reads still work (a read-only file, a
	// standby). /healthz answers 200 only while it succeeds.
	CheckWrite(ctx context.Context) error
	Close() error
}

var (
	_ backend = (*sqlite.Store)(nil)
	_ backend = (*postgres.Store)(nil)
)

// openBackend opens the store that -db names: a postgres:// URL for
// several instances sharing one database, else a SQLite file. With
// -webhook-url its outbox is on: every change records its event, for the
// worker to send. Its errors never show the URL's passwords.
func openBackend(ctx context.Context, c *config) (backend, error) {
	outbox := c.webhookURL != "" // every change records its event, for the worker to send
	if c.isPostgres() {
		s, err := postgres.OpenWithOptions(ctx, c.db, postgres.Options{Outbox: outbox})
		if err != nil { // not a typed nil inside a non-nil backend
			return nil, redactError(c.db, err)
		}
		return s, nil
	}
	s, err := sqlite.OpenWithOptions(c.db, sqlite.Options{Outbox: outbox})
	if err != nil {
		return nil, err
	}
	return s, nil
}
