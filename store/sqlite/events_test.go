package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/sqlite"
	"github.com/referralkit/referralkit/store/storetest"
)

// openOutbox opens a store on the file at path, with its own pool, as
// another process would.
func openOutbox(t *testing.T, path string, outbox bool) (*sqlite.Store, *sql.DB) {
	t.Helper()
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	s, err := sqlite.NewWithOptions(db, sqlite.Options{Outbox: outbox})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, db
}

func TestEventConformance(t *testing.T) {
	var (
		mu    sync.Mutex
		files = map[storetest.Events]string{}
		dbs   = map[storetest.Events]*sql.DB{}
	)
	storetest.RunEvents(t, storetest.EventStores{
		New: func(t *testing.T, outbox bool) storetest.Events {
			path := filepath.Join(t.TempDir(), "referral.db")
			s, db := openOutbox(t, path, outbox)
			mu.Lock()
			files[s], dbs[s] = path, db
			mu.Unlock()
			return s
		},
		Shared: func(t *testing.T) [2]storetest.Events {
			path := filepath.Join(t.TempDir(), "referral.db")
			a, _ := openOutbox(t, path, true)
			b, _ := openOutbox(t, path, true)
			return [2]storetest.Events{a, b}
		},
		Reopen: func(t *testing.T, s storetest.Events) storetest.Events {
			mu.Lock()
			path, db := files[s], dbs[s]
			mu.Unlock()
			require.NoError(t, s.(*sqlite.Store).Close())
			require.NoError(t, db.Close())
			again, _ := openOutbox(t, path, true)
			return again
		},
	})
}
