package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/sqlite"
)

// rawDB opens path with the store's pragmas, bypassing the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func column[T any](t *testing.T, db *sql.DB, query string, args ...any) []T {
	t.Helper()
	rows, err := db.Query(query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestMigrationsFromConcurrentOpens(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "referral.db")
	// Separate *sql.DB pools lock the file against each other as separate
	// processes do.
	const openers = 8
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Go(func() {
			db, err := sql.Open("sqlite", sqlite.DSN(path))
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			_, errs[i] = sqlite.New(db)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	db := rawDB(t, path)
	versions := column[int](t, db, `SELECT version FROM referral_schema_migrations ORDER BY version`)
	require.NotEmpty(t, versions)
	assert.Equal(t, 1, versions[0])
	assert.Len(t, column[int](t, db, `SELECT DISTINCT version FROM referral_schema_migrations`), len(versions), "each migration once")
	// Every statement of a file ran, not just the first.
	assert.Subset(t, column[string](t, db, `SELECT name FROM sqlite_schema WHERE type = 'index'`),
		[]string{"referral_invites_by_referrer", "referral_invites_by_address", "referral_invites_by_idempotency_key", "referral_invites_due"})

	// Opening an up-to-date file applies nothing.
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Equal(t, versions, column[int](t, db, `SELECT version FROM referral_schema_migrations ORDER BY version`))
}

// TestOpenWhileTheFileIsWritten opens a file not yet in WAL mode while
// another connection holds its write lock, as a process switching it to WAL
// (or writing it in rollback mode) does for a moment. The DSN's
// journal_mode(WAL) then gets SQLITE_BUSY at once, without the busy
// handler: Open must wait for the lock instead of failing.
func TestOpenWhileTheFileIsWritten(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "referral.db")
	other, err := sql.Open("sqlite", path) // rollback mode: no pragmas
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	c, err := other.Conn(t.Context())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ExecContext(t.Context(), `CREATE TABLE host_table (x)`)
	require.NoError(t, err)
	_, err = c.ExecContext(t.Context(), `BEGIN IMMEDIATE`)
	require.NoError(t, err)
	released := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // let Open run into the lock
		_, err := c.ExecContext(context.Background(), `ROLLBACK`)
		released <- err
	}()
	s, err := sqlite.Open(path)
	require.NoError(t, <-released)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Equal(t, []string{"wal"}, column[string](t, rawDB(t, path), `PRAGMA journal_mode`))
}

func TestNewLeavesCallersDBOpen(t *testing.T) {
	t.Parallel()
	db := rawDB(t, filepath.Join(t.TempDir(), "referral.db"))
	s, err := sqlite.New(db)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, db.Ping(), "Close must not close a database the caller owns")
}

func TestOpenPathWithURICharacters(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a dir?x=1#y%20", "referral.db")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.FileExists(t, path)
}
