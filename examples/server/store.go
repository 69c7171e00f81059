package main

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

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
	outbox := c.webhookURL != ""
	if c.isPostgres() {
		if outbox {
			s, err := openPostgresOutbox(ctx, c.db)
			if err != nil {
				return nil, redactError(c.db, err)
			}
			return s, nil
		}
		s, err := postgres.Open(ctx, c.db)
		if err != nil { // not a typed nil inside a non-nil backend
			return nil, redactError(c.db, err)
		}
		return s, nil
	}
	s, err := sqlite.Open(c.db)
	if err != nil {
		return nil, err
	}
	if !outbox {
		return s, nil
	}
	// The outbox is an option of NewWithOptions, on a handle the server
	// keeps; Open, above, made the file private and applied the schema.
	if err := s.Close(); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", sqlite.DSN(c.db))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(16) // as sqlite.Open does
	db.SetMaxIdleConns(8)
	so, err := sqlite.NewWithOptions(db, sqlite.Options{Outbox: true})
	if err != nil {
		db.Close()
		return nil, err
	}
	return closingBoth{so, db.Close}, nil
}

// openPostgresOutbox is postgres.Open with the outbox on: a pool with
// Open's cancel requests, kept by the store it returns.
func openPostgresOutbox(ctx context.Context, url string) (backend, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("postgres: open: the URL is not a valid PostgreSQL connection string")
	}
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s, err := postgres.NewWithOptions(ctx, pool, postgres.Options{Outbox: true})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return closingBoth{s, func() error { pool.Close(); return nil }}, nil
}

// closingBoth is a store on a handle the server opened: Close closes the
// store, then the handle.
type closingBoth struct {
	backend
	closeHandle func() error
}

func (s closingBoth) Close() error {
	return errors.Join(s.backend.Close(), s.closeHandle())
}
