package sqlite_test

import (
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

var (
	sqlComment = regexp.MustCompile(`--[^\n]*`)
	sqlSpace   = regexp.MustCompile(`\s+`)
	sqlPunct   = regexp.MustCompile(` ?([(),]) ?`)
)

// schemaOf describes every table and index of db, one line each, sorted:
// type, name, table and the SQL SQLite keeps for it, without comments,
// quotes or layout. SQLite keeps the text of each CREATE (an ALTER TABLE
// ... ADD COLUMN appends the column to it), so that two databases with
// equal lines have the same columns, types, defaults, keys, checks and
// indexes.
func schemaOf(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, name, table, text string
		require.NoError(t, rows.Scan(&typ, &name, &table, &text))
		text = sqlComment.ReplaceAllString(text, "")
		text = strings.ReplaceAll(text, `"`, "")
		text = sqlSpace.ReplaceAllString(strings.TrimSpace(text), " ")
		text = sqlPunct.ReplaceAllString(text, "$1")
		out = append(out, fmt.Sprintf("%s %s on %s: %s", typ, name, table, text))
	}
	require.NoError(t, rows.Err())
	slices.Sort(out)
	return out
}

// recorded returns the versions and names in referral_schema_migrations.
func recorded(t *testing.T, db *sql.DB) []string {
	return column[string](t, db, `SELECT version || ' ' || name FROM referral_schema_migrations ORDER BY version`)
}

func migrated(t *testing.T) *sql.DB {
	t.Helper()
	db := rawDB(t, filepath.Join(t.TempDir(), "migrated.db"))
	s, err := sqlite.New(db)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	return db
}

func TestSchemaFileIsWhatTheMigrationsMake(t *testing.T) {
	t.Parallel()
	want := migrated(t)
	db := rawDB(t, filepath.Join(t.TempDir(), "host.db"))
	_, err := db.Exec(sqlite.Schema)
	require.NoError(t, err)

	assert.Equal(t, schemaOf(t, want), schemaOf(t, db))
	assert.Equal(t, recorded(t, want), recorded(t, db), "schema.sql records every migration")
	for _, name := range column[string](t, db, `SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_autoindex_%'`) {
		assert.True(t, strings.HasPrefix(name, "referral_"), "%s has no referral_ prefix", name)
	}

	file, err := os.ReadFile("schema.sql")
	require.NoError(t, err)
	assert.Equal(t, string(file), sqlite.Schema)
}

func TestSkipMigrations(t *testing.T) {
	t.Parallel()
	skip := sqlite.Options{SkipMigrations: true}

	t.Run("schema.sql applied", func(t *testing.T) {
		t.Parallel()
		db := rawDB(t, filepath.Join(t.TempDir(), "host.db"))
		_, err := db.Exec(sqlite.Schema)
		require.NoError(t, err)
		before := schemaOf(t, db)
		s, err := sqlite.NewWithOptions(db, skip)
		require.NoError(t, err)
		inv := referral.Invite{ID: "i1", AppID: "", ReferrerID: "42", ReferrerName: "Ann", Email: "a@example.com",
			EmailKey: "a@example.com", Language: "en", Code: "A1B0C2D3E4", Status: referral.StatusPending}
		_, _, err = s.RecordInvite(t.Context(), inv, referral.Limits{})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		assert.Equal(t, before, schemaOf(t, db))

		// A later open that may migrate finds nothing to do.
		applied := column[string](t, db, `SELECT version || ' ' || applied_at FROM referral_schema_migrations`)
		s, err = sqlite.New(db)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		assert.Equal(t, applied, column[string](t, db, `SELECT version || ' ' || applied_at FROM referral_schema_migrations`))
		assert.Equal(t, []string{"Ann"}, column[string](t, db, `SELECT referrer_name FROM referral_invites`))
	})

	t.Run("empty database", func(t *testing.T) {
		t.Parallel()
		db := rawDB(t, filepath.Join(t.TempDir(), "host.db"))
		_, err := sqlite.NewWithOptions(db, skip)
		require.ErrorIs(t, err, sqlite.ErrSchema)
		assert.ErrorContains(t, err, "referral_schema_migrations")
		assert.Empty(t, schemaOf(t, db), "nothing is created")
	})

	t.Run("a migration missing", func(t *testing.T) {
		t.Parallel()
		db := rawDB(t, filepath.Join(t.TempDir(), "host.db"))
		_, err := db.Exec(sqlite.Schema)
		require.NoError(t, err)
		_, err = db.Exec(`DELETE FROM referral_schema_migrations WHERE version = 4`)
		require.NoError(t, err)
		_, err = sqlite.NewWithOptions(db, skip)
		require.ErrorIs(t, err, sqlite.ErrSchema)
		assert.ErrorContains(t, err, "0004_referrer_name.sql")
		assert.Equal(t, []string{"1", "2", "3", "5", "6", "7", "8"}, column[string](t, db, `SELECT version FROM referral_schema_migrations ORDER BY version`))
	})
}

func TestMigrationFilesRunByAHost(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(sqlite.Migrations, "migrations/*.sql")
	require.NoError(t, err)
	require.Greater(t, len(names), 1)
	slices.Sort(names) // the host's tool runs them in this order
	run := func(db *sql.DB, name string) {
		t.Helper()
		text, err := fs.ReadFile(sqlite.Migrations, name)
		require.NoError(t, err)
		_, err = db.Exec(string(text))
		require.NoError(t, err, name)
	}
	skip := sqlite.Options{SkipMigrations: true}

	t.Run("every file, then SkipMigrations", func(t *testing.T) {
		t.Parallel()
		db := rawDB(t, filepath.Join(t.TempDir(), "host.db"))
		last := names[len(names)-1]
		for _, name := range names[:len(names)-1] {
			run(db, name)
		}
		_, err := sqlite.NewWithOptions(db, skip)
		require.ErrorIs(t, err, sqlite.ErrSchema)
		assert.ErrorContains(t, err, "migrations "+path.Base(last)+" are not applied")

		run(db, last) // the new release's file
		s, err := sqlite.NewWithOptions(db, skip)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		want := migrated(t)
		assert.Equal(t, schemaOf(t, want), schemaOf(t, db))
		assert.Equal(t, recorded(t, want), recorded(t, db))
	})

	t.Run("some files, then New", func(t *testing.T) {
		t.Parallel()
		db := rawDB(t, filepath.Join(t.TempDir(), "host.db"))
		run(db, names[0])
		s, err := sqlite.New(db)
		require.NoError(t, err, "New applies the rest, each recorded once")
		require.NoError(t, s.Close())
		assert.Equal(t, recorded(t, migrated(t)), recorded(t, db))
	})
}

func TestSkipMigrationsOnALegacyDatabase(t *testing.T) {
	t.Parallel()
	db := rawDB(t, legacyDB(t, 3))
	before := schemaOf(t, db)
	_, err := sqlite.NewWithOptions(db, sqlite.Options{SkipMigrations: true})
	require.ErrorIs(t, err, sqlite.ErrSchema)
	assert.ErrorContains(t, err, "open it once without SkipMigrations to move the old tables to the referral_ prefix")
	assert.NotContains(t, err.Error(), "apply schema.sql")
	assert.Equal(t, before, schemaOf(t, db), "nothing is changed")
}

func TestLegacyRowsBesideThePrefixedTables(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		make func(t *testing.T, db *sql.DB)
	}{
		// The host took SkipMigrations' old advice on a database of the
		// builds without the prefix.
		{"schema.sql applied over them", func(t *testing.T, db *sql.DB) {
			legacyTables(t, db, 3)
			_, err := db.Exec(sqlite.Schema)
			require.NoError(t, err)
		}},
		// A rollback: an older build ran on the moved database.
		{"an older build after the move", func(t *testing.T, db *sql.DB) {
			legacyTables(t, db, 3)
			s, err := sqlite.New(db)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			legacyTables(t, db, 3)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := rawDB(t, filepath.Join(t.TempDir(), "both.db"))
			c.make(t, db)
			before := schemaOf(t, db)
			for _, o := range []sqlite.Options{{}, {SkipMigrations: true}} {
				_, err := sqlite.NewWithOptions(db, o)
				require.ErrorIs(t, err, sqlite.ErrSchema, "%+v", o)
				assert.ErrorContains(t, err, "rows in codes, invites, apps, api_keys, redemptions")
			}
			assert.Equal(t, before, schemaOf(t, db), "nothing is changed")
			assert.Equal(t, []string{"Bo@example.com"}, column[string](t, db, `SELECT email FROM invites`))

			// Old tables without rows hide nothing: the store opens.
			for _, table := range []string{"api_keys", "apps", "redemptions", "invites", "codes"} {
				_, err := db.Exec(`DELETE FROM "` + table + `"`)
				require.NoError(t, err)
			}
			s, err := sqlite.New(db)
			require.NoError(t, err)
			require.NoError(t, s.Close())
		})
	}
}

// legacyDB makes a database as the builds without the table prefix left
// it after their first n migrations (the files of testdata/legacy), with a
// row in each of their tables, and returns its path.
func legacyDB(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "legacy.db")
	db := rawDB(t, path)
	legacyTables(t, db, n)
	require.NoError(t, db.Close())
	return path
}

// legacyTables does to db what the first n migrations of the builds
// without the table prefix did, and adds a row to each of their tables.
func legacyTables(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	_, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`)
	require.NoError(t, err)
	files, err := filepath.Glob("testdata/legacy/*.sql")
	require.NoError(t, err)
	rows := []string{
		`INSERT INTO codes (code, app_id, user_id) VALUES ('A1B0C2D3E4', 'app', 'Alice');
		INSERT INTO invites (id, app_id, referrer_id, email, email_key, language, code, idempotency_key, status,
			attempts, last_error, next_attempt_at, lease_until, created_at, updated_at)
			VALUES ('i1', 'app', 'Alice', 'Bo@example.com', 'bo@example.com', 'de', 'A1B0C2D3E4', 'K', 'pending',
			0, '', 1000, -62135596800000, 1000, 1000)`,
		`INSERT INTO apps (id, disabled, created_at) VALUES ('app', 0, 5);
		INSERT INTO api_keys (app_id, prefix, type, hash, created_at) VALUES ('app', 'p1', 'write', zeroblob(32), 6)`,
		`INSERT INTO redemptions (app_id, new_user_id, referrer_id, code, email, email_key, created_at)
			VALUES ('app', '42', 'Alice', 'A1B0C2D3E4', 'bo@example.com', 'bo@example.com', 7)`,
	}
	for i, f := range files[:n] {
		text, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = db.Exec(string(text))
		require.NoError(t, err)
		_, err = db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, i+1, filepath.Base(f), 100+i)
		require.NoError(t, err)
		_, err = db.Exec(rows[i])
		require.NoError(t, err)
	}
}

func TestLegacyTablesAreMovedToThePrefix(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("after %d migrations", n), func(t *testing.T) {
			t.Parallel()
			path := legacyDB(t, n)
			legacy := rawDB(t, path)
			tables := column[string](t, legacy, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name <> 'schema_migrations' ORDER BY name`)
			before := map[string]string{}
			for _, table := range tables {
				before[table] = dumpTable(t, legacy, table)
			}
			require.NoError(t, legacy.Close())

			// Processes opening at once: one moves the tables, the others
			// find them moved.
			const openers = 4
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
					s, err := sqlite.New(db)
					if err == nil {
						s.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}

			db := rawDB(t, path)
			assert.Equal(t, schemaOf(t, migrated(t)), schemaOf(t, db), "the same schema as a new database")
			for _, table := range tables {
				cols := strings.Join(column[string](t, db, `SELECT name FROM pragma_table_info('referral_`+table+`') WHERE name NOT IN ('referrer_name', 'address_hash', 'sent_at', 'resends', 'resent_at', 'reclaimed_at')`), ", ")
				assert.Equal(t, before[table], dumpTable(t, db, "(SELECT "+cols+" FROM referral_"+table+")"), "the rows of %s", table)
			}
			applied := column[string](t, db, `SELECT version || ' ' || applied_at FROM referral_schema_migrations WHERE version <= ? ORDER BY version`, n)
			assert.Equal(t, []string{"1 100", "2 101", "3 102"}[:n], applied, "when the old migrations ran is kept")

			s, err := sqlite.Open(path)
			require.NoError(t, err)
			defer s.Close()
			o, err := s.ResolveCode(t.Context(), "A1B0C2D3E4")
			require.NoError(t, err)
			assert.Equal(t, referral.Owner{AppID: "app", UserID: "Alice"}, o)
			invs, err := s.Invites(t.Context())
			require.NoError(t, err)
			require.Len(t, invs, 1)
			assert.Equal(t, "Bo@example.com", invs[0].Email)
			assert.Empty(t, invs[0].ReferrerName)
		})
	}
}

// hostTables are what a host's database may hold before the store comes:
// golang-migrate's schema_migrations, and tables named as the store's were.
var hostTables = []struct{ name, ddl, row string }{
	{"schema_migrations", `CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (20240101120000, false)`},
	{"invites", `CREATE TABLE invites (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, email TEXT NOT NULL)`,
		`INSERT INTO invites VALUES (1, 42, 'host@example.com')`},
	{"users", `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`, `INSERT INTO users VALUES (42, 'Alice')`},
	{"codes", `CREATE TABLE codes (code TEXT PRIMARY KEY)`, `INSERT INTO codes VALUES ('HOST')`},
}

func TestHostTablesAreLeftAlone(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, migrations, row string }{
		{"golang-migrate", "", ""},
		// A table of the old shape whose names are not the store's.
		{"same columns, other names",
			`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at INTEGER)`,
			`INSERT INTO schema_migrations VALUES (1, '0001_users.sql', 5)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "host.db")
			db := rawDB(t, path)
			for _, h := range hostTables {
				ddl, row := h.ddl, h.row
				if h.name == "schema_migrations" && c.migrations != "" {
					ddl, row = c.migrations, c.row
				}
				_, err := db.Exec(ddl)
				require.NoError(t, err)
				_, err = db.Exec(row)
				require.NoError(t, err)
			}
			host := func() []string {
				var out []string
				for _, h := range hostTables {
					out = append(out, column[string](t, db, `SELECT sql FROM sqlite_schema WHERE name = ?`, h.name)...)
					out = append(out, dumpTable(t, db, h.name))
				}
				return out
			}
			want := host()

			for range 2 {
				s, err := sqlite.New(db)
				require.NoError(t, err)
				_, err = s.EnsureCode(t.Context(), "", "42", referral.NewCode)
				require.NoError(t, err)
				require.NoError(t, s.Close())
				assert.Equal(t, want, host())
			}
			assert.Equal(t, recorded(t, migrated(t)), recorded(t, db))
		})
	}
}
