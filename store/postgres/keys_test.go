package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/postgres"
	"github.com/referralkit/referralkit/store/storetest"
)

// poolStore is a store with its pool, for the dump.
type poolStore struct {
	*postgres.Store
	pool *pgxpool.Pool
}

func TestKeyStoreConformance(t *testing.T) {
	t.Parallel()
	serverURL(t)
	open := func(t *testing.T) storetest.Keys {
		pool := newPool(t, newSchema(t))
		s, err := postgres.New(t.Context(), pool)
		require.NoError(t, err)
		return poolStore{s, pool}
	}
	storetest.RunKeyStore(t, open, func(t *testing.T, ks storetest.Keys) string {
		pool := ks.(poolStore).pool
		var b strings.Builder
		for _, table := range []string{"referral_apps", "referral_api_keys"} {
			b.WriteString(dumpTable(t, pool, table))
		}
		return b.String()
	})
}

// dumpTable returns every row of table as text, bytea in hex, as the server
// prints it.
func dumpTable(t *testing.T, pool *pgxpool.Pool, table string) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT t::text FROM "+pgx.Identifier{table}.Sanitize()+" AS t")
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, lines, "table %s is empty", table)
	return fmt.Sprintln(strings.Join(lines, "\n"))
}
