package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/sqlite"
	"github.com/referralkit/referralkit/store/storetest"
)

// fileStore is a store with the path of its file, for the dump.
type fileStore struct {
	*sqlite.Store
	path string
}

func TestKeyStoreConformance(t *testing.T) {
	t.Parallel()
	open := func(t *testing.T) storetest.Keys {
		path := filepath.Join(t.TempDir(), "referral.db")
		s, err := sqlite.Open(path)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return fileStore{s, path}
	}
	storetest.RunKeyStore(t, open, func(t *testing.T, ks storetest.Keys) string {
		path := ks.(fileStore).path
		var b strings.Builder
		// Every row of the key tables, as SQLite returns it...
		db, err := sql.Open("sqlite", sqlite.DSN(path))
		require.NoError(t, err)
		defer db.Close()
		for _, table := range []string{"referral_apps", "referral_api_keys"} {
			b.WriteString(dumpTable(t, db, table))
		}
		// ...and every byte of the database files, WAL included.
		for _, suffix := range []string{"", "-wal"} {
			raw, err := os.ReadFile(path + suffix)
			if !os.IsNotExist(err) {
				require.NoError(t, err)
			}
			b.Write(raw)
		}
		return b.String()
	})
}

// dumpTable returns every row of table, each value printed with %v (TEXT
// as itself, BLOB as bytes).
func dumpTable(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT * FROM "+table)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var b strings.Builder
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		for i, v := range vals {
			if s, ok := v.([]byte); ok {
				v = fmt.Sprintf("%x", s)
			}
			fmt.Fprintf(&b, "%s=%v ", cols[i], v)
		}
		b.WriteByte('\n')
		n++
	}
	require.NoError(t, rows.Err())
	require.NotZero(t, n, "table %s is empty", table)
	return b.String()
}
