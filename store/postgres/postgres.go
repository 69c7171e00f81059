package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
)

// Store is a referral.CodeStore, referral.RedemptionStore,
// referral.RecipientStore, referral.ReferrerStore, referral.QueueStore,
// referral.EventStore, auth.KeyStore and auth.KeyManager in a
// PostgreSQL database. It is safe for concurrent use, and its checks hold
// across every process that shares the database. Build it with [Open] or
// [New].
type Store struct {
	pool *pgxpool.Pool
	// owned: Close closes pool (Open made it).
	owned bool
	// outbox: the changes record events; see Options.Outbox.
	outbox bool
	// invites queues concurrent RecordInvite calls for group commit.
	invites inviteQueue
}

var (
	_ referral.CodeStore = (*Store)(nil)
	_ auth.KeyStore      = (*Store)(nil)
	_ auth.KeyManager    = (*Store)(nil)
)

// Advisory lock namespaces: the first key of pg_advisory_xact_lock(int, int),
// so that the store's locks cannot meet those of other code sharing the
// database (which would only make both wait, but needlessly).
const (
	lockMigrate   int32 = 0x52464b30 // "RFK0"
	lockReferrer  int32 = 0x52464b31 // "RFK1"
	lockRecipient int32 = 0x52464b32 // "RFK2"
)

// cancelDeadline is how long a call whose context ended waits for the server
// to confirm the cancel request before its connection is closed; see Open.
const cancelDeadline = time.Second

// Open connects to the database at url (a postgres:// URL or a key=value
// DSN, as pgxpool.ParseConfig reads it, including pool_max_conns and
// search_path) and applies the schema. Close the store to close its pool.
//
// The pool it makes sends the server a cancel request when a call's context
// ends, so that a statement waiting for a lock stops at once rather than
// keeping a server connection busy until it gets the lock. The call returns
// when the server has confirmed, or a second later if it does not.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWithOptions(ctx, url, Options{})
}

// OpenWithOptions is [Open] with the choices of [NewWithOptions].
func OpenWithOptions(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("postgres: open: the URL is not a valid PostgreSQL connection string")
	}
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadline}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s, err := NewWithOptions(ctx, pool, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New returns a store on pool, which the caller keeps: Close does not close
// it. It applies the schema first, in the schema that pool's connections
// create tables in (the first of their search_path). Several processes may
// call New on one database at once: each migration is applied once. It is
// NewWithOptions with the zero Options.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	return NewWithOptions(ctx, pool, Options{})
}

// Options are the choices of [NewWithOptions]. The zero value is [New]'s.
type Options struct {
	// SkipMigrations, for hosts that apply the schema with their own tool,
	// makes the store change no table: it checks that
	// referral_schema_migrations, in the schema pool's connections create
	// tables in, records every migration of this build and fails with an
	// error matching [ErrSchema], naming what is missing, if not. The host's
	// tool applies schema.sql ([Schema]) to a schema without the store's
	// tables, and the files of [Migrations] that a schema lacks, in order,
	// to upgrade it: each file records itself in referral_schema_migrations.
	// A schema of the builds without the referral_ prefix is opened once
	// without SkipMigrations first, which moves its tables. Default false:
	// the store applies the migrations the schema lacks.
	SkipMigrations bool

	// Outbox makes the store record the events of its changes in
	// referral_events (see [referral.EventStore]), each in the transaction
	// of the change it reports, for a Handler's Config.Webhooks. Every
	// store of one schema that writes should have it alike: one without it
	// makes changes no event reports. Default false: no events are
	// recorded, and Outbox reports false.
	Outbox bool
}

// ErrSchema is returned, wrapped, by NewWithOptions with SkipMigrations
// when the schema lacks the store's tables or some of its migrations, or
// has the tables of the builds without the referral_ prefix instead; and
// by New and NewWithOptions when the schema has rows in those old tables
// besides the referral_ ones, which the store would not read (see the
// package documentation).
var ErrSchema = errors.New("the schema is missing or out of date")

// NewWithOptions is [New] with the choices of o.
func NewWithOptions(ctx context.Context, pool *pgxpool.Pool, o Options) (*Store, error) {
	s := &Store{pool: pool, outbox: o.Outbox}
	prepare := s.migrate
	if o.SkipMigrations {
		prepare = s.checkSchema
	}
	if err := prepare(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return wrap(ctx, "ping", err)
	}
	return nil
}

// Close closes the pool if Open made it; otherwise it does nothing. It waits
// for connections in use to be released.
func (s *Store) Close() error {
	if s.owned {
		s.pool.Close()
	}
	return nil
}

// wrap prefixes err with the package and op. When ctx has ended, the result
// also matches ctx's error: pgx may report the server's "canceling statement"
// error or a closed connection instead.
func wrap(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("postgres: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// isNoRows reports whether err is pgx.ErrNoRows.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// stored returns t as the store keeps it: UTC, whole microseconds (pgx
// truncates the rest).
func stored(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNull maps NULL to the zero time, and a time to UTC.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
