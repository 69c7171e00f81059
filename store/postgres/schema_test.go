package postgres_test

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
)

// schemaQuery describes every column, constraint and index of the current
// schema, one line each, with the schema's name left out.
const schemaQuery = `
SELECT format('column %s.%s %s: %s %s %s %s', table_name, ordinal_position, column_name, data_type,
	coalesce(collation_name, ''), is_nullable, coalesce(column_default, ''))
FROM information_schema.columns WHERE table_schema = current_schema()
UNION ALL
SELECT format('constraint %s on %s: %s', conname, conrelid::regclass::text, pg_get_constraintdef(oid))
FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
UNION ALL
SELECT format('index %s on %s: %s', indexname, tablename, replace(indexdef, quote_ident(schemaname) || '.', ''))
FROM pg_indexes WHERE schemaname = current_schema()
ORDER BY 1`

func lines(t *testing.T, pool *pgxpool.Pool, query string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), query, args...)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

func schemaOf(t *testing.T, pool *pgxpool.Pool) []string { return lines(t, pool, schemaQuery) }

func recorded(t *testing.T, pool *pgxpool.Pool) []string {
	return lines(t, pool, `SELECT version || ' ' || name FROM referral_schema_migrations ORDER BY version`)
}

func migratedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := newPool(t, newSchema(t))
	_, err := postgres.New(t.Context(), pool)
	require.NoError(t, err)
	return pool
}

func TestSchemaFileIsWhatTheMigrationsMake(t *testing.T) {
	t.Parallel()
	serverURL(t)
	want := migratedPool(t)
	pool := newPool(t, newSchema(t))
	_, err := pool.Exec(t.Context(), postgres.Schema)
	require.NoError(t, err)

	got := schemaOf(t, pool)
	require.NotEmpty(t, got)
	assert.Equal(t, schemaOf(t, want), got)
	assert.Equal(t, recorded(t, want), recorded(t, pool), "schema.sql records every migration")
	for _, name := range lines(t, pool, `SELECT relname::text FROM pg_class WHERE relnamespace = current_schema()::regnamespace`) {
		assert.True(t, strings.HasPrefix(name, "referral_"), "%s has no referral_ prefix", name)
	}

	file, err := os.ReadFile("schema.sql")
	require.NoError(t, err)
	assert.Equal(t, string(file), postgres.Schema)
}

func TestSkipMigrations(t *testing.T) {
	t.Parallel()
	serverURL(t)
	skip := postgres.Options{SkipMigrations: true}

	t.Run("schema.sql applied", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, newSchema(t))
		_, err := pool.Exec(t.Context(), postgres.Schema)
		require.NoError(t, err)
		before := schemaOf(t, pool)
		applied := lines(t, pool, `SELECT version || ' ' || applied_at FROM referral_schema_migrations ORDER BY version`)
		s, err := postgres.NewWithOptions(t.Context(), pool, skip)
		require.NoError(t, err)
		inv := referral.Invite{ID: "i1", AppID: "", ReferrerID: "42", ReferrerName: "Ann", Email: "a@example.com",
			EmailKey: "a@example.com", Language: "en", Code: "A1B0C2D3E4", Status: referral.StatusPending}
		_, _, err = s.RecordInvite(t.Context(), inv, referral.Limits{})
		require.NoError(t, err)
		assert.Equal(t, before, schemaOf(t, pool))

		// A later open that may migrate finds nothing to do.
		_, err = postgres.New(t.Context(), pool)
		require.NoError(t, err)
		assert.Equal(t, before, schemaOf(t, pool))
		assert.Equal(t, applied, lines(t, pool, `SELECT version || ' ' || applied_at FROM referral_schema_migrations ORDER BY version`))
		assert.Equal(t, []string{"Ann"}, lines(t, pool, `SELECT referrer_name FROM referral_invites`))
	})

	t.Run("empty schema", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, newSchema(t))
		_, err := postgres.NewWithOptions(t.Context(), pool, skip)
		require.ErrorIs(t, err, postgres.ErrSchema)
		assert.ErrorContains(t, err, "referral_schema_migrations")
		assert.Empty(t, schemaOf(t, pool), "nothing is created")
	})

	t.Run("a migration missing", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, newSchema(t))
		_, err := pool.Exec(t.Context(), postgres.Schema)
		require.NoError(t, err)
		_, err = pool.Exec(t.Context(), `DELETE FROM referral_schema_migrations WHERE version = 4`)
		require.NoError(t, err)
		_, err = postgres.NewWithOptions(t.Context(), pool, skip)
		require.ErrorIs(t, err, postgres.ErrSchema)
		assert.ErrorContains(t, err, "0004_referrer_name.sql")
		assert.Equal(t, []string{"1", "2", "3", "5", "6", "7", "8", "9"}, lines(t, pool, `SELECT version::text FROM referral_schema_migrations ORDER BY version`))
	})
}

func TestMigrationFilesRunByAHost(t *testing.T) {
	t.Parallel()
	serverURL(t)
	names, err := fs.Glob(postgres.Migrations, "migrations/*.sql")
	require.NoError(t, err)
	require.Greater(t, len(names), 1)
	slices.Sort(names) // the host's tool runs them in this order
	run := func(pool *pgxpool.Pool, name string) {
		t.Helper()
		text, err := fs.ReadFile(postgres.Migrations, name)
		require.NoError(t, err)
		_, err = pool.Exec(t.Context(), string(text))
		require.NoError(t, err, name)
	}
	skip := postgres.Options{SkipMigrations: true}

	t.Run("every file, then SkipMigrations", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, newSchema(t))
		last := names[len(names)-1]
		for _, name := range names[:len(names)-1] {
			run(pool, name)
		}
		_, err := postgres.NewWithOptions(t.Context(), pool, skip)
		require.ErrorIs(t, err, postgres.ErrSchema)
		assert.ErrorContains(t, err, "migrations "+path.Base(last)+" are not applied")

		run(pool, last) // the new release's file
		_, err = postgres.NewWithOptions(t.Context(), pool, skip)
		require.NoError(t, err)
		want := migratedPool(t)
		assert.Equal(t, schemaOf(t, want), schemaOf(t, pool))
		assert.Equal(t, recorded(t, want), recorded(t, pool))
	})

	t.Run("some files, then New", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, newSchema(t))
		run(pool, names[0])
		_, err := postgres.New(t.Context(), pool)
		require.NoError(t, err, "New applies the rest, each recorded once")
		assert.Equal(t, recorded(t, migratedPool(t)), recorded(t, pool))
	})
}

func TestSkipMigrationsOnALegacySchema(t *testing.T) {
	t.Parallel()
	serverURL(t)
	pool := newPool(t, legacySchema(t, 3))
	before := schemaOf(t, pool)
	_, err := postgres.NewWithOptions(t.Context(), pool, postgres.Options{SkipMigrations: true})
	require.ErrorIs(t, err, postgres.ErrSchema)
	assert.ErrorContains(t, err, "open it once without SkipMigrations to move the old tables to the referral_ prefix")
	assert.NotContains(t, err.Error(), "apply schema.sql")
	assert.Equal(t, before, schemaOf(t, pool), "nothing is changed")
}

func TestLegacyRowsBesideThePrefixedTables(t *testing.T) {
	t.Parallel()
	serverURL(t)
	for _, c := range []struct {
		name string
		make func(t *testing.T, pool *pgxpool.Pool)
	}{
		// The host took SkipMigrations' old advice on a schema of the
		// builds without the prefix.
		{"schema.sql applied over them", func(t *testing.T, pool *pgxpool.Pool) {
			legacyTables(t, pool, 3)
			_, err := pool.Exec(t.Context(), postgres.Schema)
			require.NoError(t, err)
		}},
		// A rollback: an older build ran on the moved schema.
		{"an older build after the move", func(t *testing.T, pool *pgxpool.Pool) {
			legacyTables(t, pool, 3)
			_, err := postgres.New(t.Context(), pool)
			require.NoError(t, err)
			legacyTables(t, pool, 3)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t, newSchema(t))
			c.make(t, pool)
			before := schemaOf(t, pool)
			for _, o := range []postgres.Options{{}, {SkipMigrations: true}} {
				_, err := postgres.NewWithOptions(t.Context(), pool, o)
				require.ErrorIs(t, err, postgres.ErrSchema, "%+v", o)
				assert.ErrorContains(t, err, "rows in codes, invites, apps, api_keys, redemptions")
			}
			assert.Equal(t, before, schemaOf(t, pool), "nothing is changed")
			assert.Equal(t, []string{"Bo@example.com"}, lines(t, pool, `SELECT email FROM invites`))

			// Old tables without rows hide nothing: the store opens.
			_, err := pool.Exec(t.Context(), `DELETE FROM api_keys; DELETE FROM apps; DELETE FROM redemptions;
				DELETE FROM invites; DELETE FROM codes`)
			require.NoError(t, err)
			_, err = postgres.New(t.Context(), pool)
			require.NoError(t, err)
		})
	}
}

// legacyRows are a row for each table of the builds without the table
// prefix, by the version that made the tables.
var legacyRows = []string{
	`INSERT INTO codes (app_id, user_id, code) VALUES ('app', 'Alice', 'A1B0C2D3E4');
	INSERT INTO invites (id, app_id, referrer_id, email, email_key, language, code, idempotency_key, status,
		attempts, last_error, next_attempt_at, lease_until, created_at, updated_at)
		VALUES ('i1', 'app', 'Alice', 'Bo@example.com', 'bo@example.com', 'de', 'A1B0C2D3E4', 'K', 'pending',
		0, '', '2030-01-01T00:00:00Z', NULL, '2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z')`,
	`INSERT INTO apps (id, disabled, created_at) VALUES ('app', false, '2030-01-01T00:00:00Z');
	INSERT INTO api_keys (app_id, prefix, type, hash, created_at)
		VALUES ('app', 'p1', 'write', decode(repeat('00', 32), 'hex'), '2030-01-01T00:00:00Z')`,
	`INSERT INTO redemptions (app_id, new_user_id, referrer_id, code, email, email_key, created_at)
		VALUES ('app', '42', 'Alice', 'A1B0C2D3E4', 'bo@example.com', 'bo@example.com', '2030-01-02T00:00:00Z')`,
}

// legacySchema makes a schema as the builds without the table prefix left
// it after their first n migrations (the files of testdata/legacy), with a
// row in each of their tables, and returns its configuration.
func legacySchema(t *testing.T, n int) *pgxpool.Config {
	t.Helper()
	cfg := newSchema(t)
	pool := newPool(t, cfg.Copy())
	legacyTables(t, pool, n)
	pool.Close()
	return cfg
}

// legacyTables does to pool's schema what the first n migrations of the
// builds without the table prefix did, and adds a row to each of their
// tables.
func legacyTables(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	_, err := pool.Exec(t.Context(), `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     NOT NULL PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`)
	require.NoError(t, err)
	files, err := filepath.Glob("testdata/legacy/*.sql")
	require.NoError(t, err)
	for i, f := range files[:n] {
		text, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = pool.Exec(t.Context(), string(text))
		require.NoError(t, err)
		_, err = pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			i+1, filepath.Base(f), fmt.Sprintf("2029-01-0%dT00:00:00Z", i+1))
		require.NoError(t, err)
		_, err = pool.Exec(t.Context(), legacyRows[i])
		require.NoError(t, err)
	}
}

// rowsOf returns the rows of table, columns cols, as text.
func rowsOf(t *testing.T, pool *pgxpool.Pool, table string, cols []string) []string {
	return lines(t, pool, `SELECT ROW(`+strings.Join(cols, ", ")+`)::text FROM `+pgx.Identifier{table}.Sanitize()+` ORDER BY 1`)
}

func TestLegacyTablesAreMovedToThePrefix(t *testing.T) {
	t.Parallel()
	serverURL(t)
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("after %d migrations", n), func(t *testing.T) {
			t.Parallel()
			cfg := legacySchema(t, n)
			legacy := newPool(t, cfg.Copy())
			tables := lines(t, legacy, `SELECT table_name::text FROM information_schema.tables
				WHERE table_schema = current_schema() AND table_name <> 'schema_migrations' ORDER BY 1`)
			cols := map[string][]string{}
			before := map[string][]string{}
			for _, table := range tables {
				cols[table] = lines(t, legacy, `SELECT column_name::text FROM information_schema.columns
					WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
				before[table] = rowsOf(t, legacy, table, cols[table])
				require.NotEmpty(t, before[table])
			}
			legacy.Close()

			// Instances starting at once: one moves the tables, the others
			// find them moved.
			const instances = 4
			errs := make([]error, instances)
			var wg sync.WaitGroup
			for i := range instances {
				pool := newPool(t, cfg.Copy())
				wg.Go(func() { _, errs[i] = postgres.New(t.Context(), pool) })
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}

			pool := newPool(t, cfg.Copy())
			assert.Equal(t, schemaOf(t, migratedPool(t)), schemaOf(t, pool), "the same schema as a new database")
			for _, table := range tables {
				assert.Equal(t, before[table], rowsOf(t, pool, "referral_"+table, cols[table]), "the rows of %s", table)
			}
			applied := lines(t, pool, `SELECT version || ' ' || to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
				FROM referral_schema_migrations WHERE version <= $1 ORDER BY version`, n)
			assert.Equal(t, []string{"1 2029-01-01", "2 2029-01-02", "3 2029-01-03"}[:n], applied, "when the old migrations ran is kept")

			s, err := postgres.New(t.Context(), pool)
			require.NoError(t, err)
			o, err := s.ResolveCode(t.Context(), "A1B0C2D3E4")
			require.NoError(t, err)
			assert.Equal(t, referral.Owner{AppID: "app", UserID: "Alice"}, o)
			assert.Equal(t, []string{""}, lines(t, pool, `SELECT referrer_name FROM referral_invites`))
		})
	}
}

// hostTables are what a host's schema may hold before the store comes:
// golang-migrate's schema_migrations, and tables named as the store's were.
var hostTables = []struct{ name, ddl, row string }{
	{"schema_migrations", `CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (20240101120000, false)`},
	{"invites", `CREATE TABLE invites (id serial PRIMARY KEY, user_id bigint NOT NULL, email text NOT NULL)`,
		`INSERT INTO invites (user_id, email) VALUES (42, 'host@example.com')`},
	{"users", `CREATE TABLE users (id bigint PRIMARY KEY, name text)`, `INSERT INTO users VALUES (42, 'Alice')`},
	{"codes", `CREATE TABLE codes (code text PRIMARY KEY)`, `INSERT INTO codes VALUES ('HOST')`},
}

func TestHostTablesAreLeftAlone(t *testing.T) {
	t.Parallel()
	serverURL(t)
	for _, c := range []struct{ name, migrations, row string }{
		{"golang-migrate", "", ""},
		// A table of the old shape whose names are not the store's.
		{"same columns, other names",
			`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text, applied_at timestamptz)`,
			`INSERT INTO schema_migrations VALUES (1, '0001_users.sql', now())`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t, newSchema(t))
			for _, h := range hostTables {
				ddl, row := h.ddl, h.row
				if h.name == "schema_migrations" && c.migrations != "" {
					ddl, row = c.migrations, c.row
				}
				_, err := pool.Exec(t.Context(), ddl)
				require.NoError(t, err)
				_, err = pool.Exec(t.Context(), row)
				require.NoError(t, err)
			}
			host := func() []string {
				var out []string
				for _, line := range schemaOf(t, pool) {
					if !strings.Contains(line, "referral_") {
						out = append(out, line)
					}
				}
				for _, h := range hostTables {
					out = append(out, lines(t, pool, `SELECT t::text FROM `+pgx.Identifier{h.name}.Sanitize()+` AS t`)...)
				}
				return out
			}
			want := host()
			require.NotEmpty(t, want)

			for range 2 {
				s, err := postgres.New(t.Context(), pool)
				require.NoError(t, err)
				_, err = s.EnsureCode(t.Context(), "", "42", referral.NewCode)
				require.NoError(t, err)
				assert.Equal(t, want, host())
			}
			assert.Equal(t, recorded(t, migratedPool(t)), recorded(t, pool))
		})
	}
}
