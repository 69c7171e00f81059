package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/sqlite"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestReferrerConformance(t *testing.T) {
	storetest.RunReferrers(t, func(t *testing.T) storetest.Referrers { return openStore(t) })
}

// TestReferrersAcrossProcesses runs the concurrency cases of the
// ReferrerStore suite on two stores of one file, each with its own pool,
// which lock the file against each other as two processes do.
func TestReferrersAcrossProcesses(t *testing.T) {
	storetest.RunReferrersShared(t, func(t *testing.T) []storetest.Referrers {
		path := filepath.Join(t.TempDir(), "referral.db")
		var stores []storetest.Referrers
		for range 2 {
			db, err := sql.Open("sqlite", sqlite.DSN(path))
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			s, err := sqlite.New(db)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			stores = append(stores, s)
		}
		return stores
	})
}
