package main

import (
	"context"
	"errors"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

// backend is everything the server keeps: codes and invites, apps and keys.
type backend interface {
	referral.CodeStore
	auth.KeyStore
	auth.KeyManager
	Ping(ctx context.Context) error
	Close() error
}

var (
	_ backend = (*sqlite.Store)(nil)
)

// openBackend opens the store that -db names.
func openBackend(ctx context.Context, c *config) (backend, error) {
	if c.isPostgres() {
		return nil, errors.New("-db: the PostgreSQL store is not built yet; use a SQLite file path")
	}
	return sqlite.Open(c.db)
}
