package postgres_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
	"github.com/referralkit/referralkit/store/storetest"
)

// Environment of the tests: the server they use, and whether its absence
// fails them (CI) rather than skipping them.
const (
	envURL     = "REFERRAL_TEST_POSTGRES_URL"
	envRequire = "REFERRAL_REQUIRE_POSTGRES"
)

// serverURL returns the test server's URL, or skips the test when there is
// none (fails it when REFERRAL_REQUIRE_POSTGRES=1).
func serverURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(envURL)
	if url != "" {
		return url
	}
	if os.Getenv(envRequire) == "1" {
		t.Fatal(envURL + " is not set, and " + envRequire + "=1 requires the PostgreSQL tests to run")
	}
	t.Skip(envURL + " is not set: skipping the PostgreSQL tests (run them with .ci/with-postgres go test ./store/postgres/)")
	return ""
}

// newSchema creates an empty schema of its own for the test, dropped when
// it ends, and returns a pool configuration whose connections use it: tests
// in parallel never see each other's rows.
func newSchema(t testing.TB) *pgxpool.Config {
	t.Helper()
	url := serverURL(t)
	name := "test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	exec(t, url, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() { exec(t, url, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE") })
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = name
	return cfg
}

// exec runs one statement on a connection of its own.
func exec(t testing.TB, url, sql string) {
	t.Helper()
	// Not t.Context(): cleanups run after it is cancelled.
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	require.NoError(t, err)
}

// newPool opens a pool on cfg that the test closes.
func newPool(t testing.TB, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// newStore returns a store on a fresh schema of its own.
func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.New(context.Background(), newPool(t, newSchema(t)))
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	serverURL(t)
	storetest.Run(t, func(t *testing.T) referral.CodeStore { return newStore(t) })
}
