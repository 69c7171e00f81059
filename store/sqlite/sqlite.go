package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	sqlite3 "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/referralkit/referralkit/referral"
)

// Pool sizes for a database opened by Open. Writers use one connection at a
// time; the rest serve reads (EnsureCode's lookup, ResolveCode). Idle
// connections are kept so that a burst does not reopen the file and rerun
// the pragmas for each request.
const (
	maxOpenConns = 16
	maxIdleConns = 8
)

// busyTimeout is how long a writer waits for another process's write
// transaction before giving up with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a referral.CodeStore, referral.RedemptionStore,
// referral.RecipientStore, referral.ReferrerStore, referral.QueueStore,
// referral.EventStore, auth.KeyStore and auth.KeyManager in a SQLite
// database. It is safe for concurrent use. Build it with [Open] or [New].
type Store struct {
	db *sql.DB
	// owned: Close closes db (Open opened it).
	owned bool
	// outbox: the writes record events; see Options.Outbox.
	outbox bool
	// writes batches the store's write transactions; see write.
	writes writeQueue
	// The hot read paths' statements, prepared once: parsing SQL is a
	// large part of a query's cost in the pure-Go driver (a quarter of the
	// request path's CPU, by the profile).
	readCode, readOwner, readKey, readApp, readDue *sql.Stmt
}

// prepareReads prepares the statements of the hot read paths.
func (s *Store) prepareReads(ctx context.Context) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.readCode, codeQuery},
		{&s.readOwner, ownerQuery},
		{&s.readKey, keyQuery},
		{&s.readApp, appQuery},
		{&s.readDue, dueQuery},
	} {
		stmt, err := s.db.PrepareContext(ctx, p.query)
		if err != nil {
			s.closeReads()
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = stmt
	}
	return nil
}

func (s *Store) closeReads() {
	for _, stmt := range []*sql.Stmt{s.readCode, s.readOwner, s.readKey, s.readApp, s.readDue} {
		if stmt != nil {
			stmt.Close()
		}
	}
}

var _ referral.DeliveryBatchStore = (*Store)(nil)

// Page cache sizes, in KiB. In WAL mode a connection empties its page
// cache when it starts reading after another connection wrote, which under
// load is at every read: a reading connection's cache serves one
// transaction, and SQLite's default of 2 MiB for each of up to 16 pooled
// connections only made resident memory grow under load (BENCHMARKS.md,
// issue 17 target 5). The write connection's cache survives its own
// commits, which the write queue keeps: it gets more, but with SQLite's
// 2 MiB it filled as the database grew, and resident memory with it
// (pages it misses come from the operating system's cache).
const (
	readCacheKiB  = 256
	writeCacheKiB = 512
)

// DSN returns the data source name Open uses for the file at path: the
// "sqlite" driver with WAL, synchronous=FULL, busy_timeout, foreign keys on
// and a small page cache (the write connection's is set larger), set by
// _pragma parameters so that every pooled connection gets them.
// Callers of New can start from it and append parameters of their own.
func DSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", readCacheKiB))
	// A file: URI, so that the path is percent-encoded and a '?' or '#' in
	// it cannot be read as the start of the parameters.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating if needed) the SQLite file at path with the pragmas
// of [DSN] and applies the schema. Close the store to close the file.
//
// A file Open creates is readable and writable by its owner only (0600),
// whatever the umask: it holds the API keys' hashes and the invitees'
// addresses. SQLite gives the -wal and -shm files it makes beside it the
// same mode. The mode of a file that exists already is left as it is.
//
// A file the process may read but not write opens read-only, as long as
// its directory lets SQLite create the -wal and -shm files there (a WAL
// database needs them even to be read): reads work, every write fails
// with an error, and [Store.CheckWrite] reports it. If the directory is
// read-only too, Open fails and says so.
func Open(path string) (*Store, error) { return OpenWithOptions(path, Options{}) }

// OpenWithOptions is [Open] with the choices of [NewWithOptions].
func OpenWithOptions(path string, o Options) (*Store, error) {
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxIdleConns)
	s, err := NewWithOptions(db, o)
	if err != nil {
		db.Close()
		if e := (*sqlite3.Error)(nil); errors.As(err, &e) && e.Code() == sqlite3lib.SQLITE_READONLY_DIRECTORY {
			return nil, fmt.Errorf("sqlite: open %s: the directory is read-only, and SQLite must create the -shm file there even to read a WAL database: %w", path, err)
		}
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.owned = true
	return s, nil
}

// createPrivate creates an empty file at path, mode 0600, unless there is
// a file there. SQLite takes an empty file for a new database, and would
// itself create one 0644 less the umask.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// New returns a store on db, which must have been opened with the "sqlite"
// driver, and applies the schema. The caller keeps ownership of db: Close
// does not close it. Without busy_timeout in db's DSN, writes from other
// processes make this one's fail at once with SQLITE_BUSY; see [DSN].
// It is NewWithOptions with the zero Options.
func New(db *sql.DB) (*Store, error) {
	return NewWithOptions(db, Options{})
}

// Options are the choices of [NewWithOptions]. The zero value is [New]'s.
type Options struct {
	// SkipMigrations, for hosts that apply the schema with their own tool,
	// makes the store change no table: it checks that
	// referral_schema_migrations records every migration of this build and
	// fails with an error matching [ErrSchema], naming what is missing, if
	// not. The host's tool applies schema.sql ([Schema]) to a database
	// without the store's tables, and the files of [Migrations] that a
	// database lacks, in order, to upgrade it: each file records itself in
	// referral_schema_migrations. A database of the builds without the
	// referral_ prefix is opened once without SkipMigrations first, which
	// moves its tables. Default false: the store applies the migrations the
	// database lacks.
	SkipMigrations bool

	// Outbox makes the store record the events of its changes in
	// referral_events (see [referral.EventStore]), each in the transaction
	// of the change it reports, for a Handler's Config.Webhooks. Every
	// store of one database that writes should have it alike: one without
	// it makes changes no event reports. Default false: no events are
	// recorded, and Outbox reports false.
	Outbox bool
}

// ErrSchema is returned, wrapped, by NewWithOptions with SkipMigrations
// when the database lacks the store's tables or some of its migrations, or
// has the tables of the builds without the referral_ prefix instead; and
// by New and NewWithOptions when the database has rows in those old tables
// besides the referral_ ones, which the store would not read (see the
// package documentation).
var ErrSchema = errors.New("the schema is missing or out of date")

// NewWithOptions is [New] with the choices of o.
func NewWithOptions(db *sql.DB, o Options) (*Store, error) {
	s := &Store{db: db, outbox: o.Outbox}
	prepare := s.migrate
	if o.SkipMigrations {
		prepare = s.checkSchema
	}
	if err := prepare(context.Background()); err != nil {
		return nil, err
	}
	if err := s.prepareReads(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// Ping reports whether the database answers, for health checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the database if Open opened it. Either way the store stops
// keeping a connection for its writes between batches.
func (s *Store) Close() error {
	s.writes.close()
	s.closeReads()
	if !s.owned {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// isNoRows reports whether err is sql.ErrNoRows.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// isBusy reports whether err is SQLite's SQLITE_BUSY, or one of its
// extended codes.
func isBusy(err error) bool {
	var e *sqlite3.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3lib.SQLITE_BUSY
}

// millis and fromMillis convert between times and the stored form, unix
// milliseconds in UTC. The zero time round-trips.
func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// stored returns t as the store keeps it: UTC, whole milliseconds.
func stored(t time.Time) time.Time { return fromMillis(millis(t)) }
