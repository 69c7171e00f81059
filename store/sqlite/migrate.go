package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/referralkit/referralkit/store/internal/migrations"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_what.sql; schema.sql is their result, for hosts that migrate with
// their own tool.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Schema is the text of schema.sql: the whole schema as the migrations
// leave it, ending with the rows of referral_schema_migrations that record
// them, for hosts that apply it with their own migration tool and open the
// store with [Options.SkipMigrations]. Applying it to a database that has
// the store's tables fails: it is for a fresh database.
//
//go:embed schema.sql
var Schema string

// createMigrationsTable makes the table that records the applied versions;
// schema.sql creates it alike.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS referral_schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`

// legacyVersions are the migrations of the builds whose tables had no
// prefix, by version, and the tables each made, parents first. Their
// schema_migrations table had the columns version, name and applied_at
// and held these names: that is how it is told from a host's table of the
// same name (golang-migrate's has version and dirty).
var legacyVersions = map[int]struct {
	name   string
	tables []string
}{
	1: {"0001_invites.sql", []string{"codes", "invites"}},
	2: {"0002_keys.sql", []string{"apps", "api_keys"}},
	3: {"0003_redemptions.sql", []string{"redemptions"}},
}

// migrate applies the migrations the database lacks. A database that has
// them all is only read, so that a read-only file can still be opened.
// Otherwise the check is repeated and the missing files applied inside one
// write transaction, which another process doing the same waits for. A
// database of the builds without the table prefix has its tables moved to
// the prefixed names in that transaction first.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	applied, err := appliedVersions(ctx, s.db)
	if err != nil {
		return fmt.Errorf("sqlite: reading the schema version: %w", err)
	}
	if len(missing(ms, applied)) == 0 {
		return nil
	}
	err = s.write(ctx, func(c *wconn) error {
		applied, err := appliedVersions(ctx, c)
		if err != nil {
			return err
		}
		if applied == nil {
			if _, err := c.ExecContext(ctx, createMigrationsTable); err != nil {
				return err
			}
			if applied, err = upgradeLegacy(ctx, c, ms); err != nil {
				return fmt.Errorf("moving the tables to the referral_ prefix: %w", err)
			}
		}
		for _, m := range missing(ms, applied) {
			if err := apply(ctx, c, m, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: migrating: %w", err)
	}
	return nil
}

// apply runs m and records it as applied at at.
func apply(ctx context.Context, c *wconn, m migrations.Migration, at time.Time) error {
	if _, err := c.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	if _, err := c.ExecContext(ctx, `INSERT INTO referral_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, millis(at)); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	return nil
}

// upgradeLegacy moves a database of the builds without the table prefix to
// the prefixed tables, if it is one: it applies the versions the old
// schema_migrations records, copies each old table into its new one, drops
// the old tables and the old schema_migrations, and returns the versions it
// applied. Anything else (no schema_migrations, or a host's) is left alone.
func upgradeLegacy(ctx context.Context, c *wconn, ms []migrations.Migration) (map[int]bool, error) {
	old, err := legacyApplied(ctx, c)
	if err != nil || len(old) == 0 {
		return map[int]bool{}, err
	}
	applied := map[int]bool{}
	var tables []string
	for _, m := range ms {
		at, ok := old[m.Version]
		if !ok {
			continue
		}
		if err := apply(ctx, c, m, fromMillis(at)); err != nil {
			return nil, err
		}
		applied[m.Version] = true
		tables = append(tables, legacyVersions[m.Version].tables...)
	}
	for _, t := range tables {
		if err := copyTable(ctx, c, t, "referral_"+t); err != nil {
			return nil, err
		}
	}
	// Children first: api_keys refers to apps.
	for _, t := range slices.Backward(tables) {
		if _, err := c.ExecContext(ctx, `DROP TABLE "`+t+`"`); err != nil {
			return nil, err
		}
	}
	if _, err := c.ExecContext(ctx, `DROP TABLE schema_migrations`); err != nil {
		return nil, err
	}
	return applied, nil
}

// legacyApplied returns the versions, and when each was applied, that the
// schema_migrations table of the builds without the prefix records; none if
// there is no such table or it is not ours.
func legacyApplied(ctx context.Context, c *wconn) (map[int]int64, error) {
	var cols string
	err := c.QueryRowContext(ctx, `SELECT coalesce(group_concat(name, ','), '') FROM
		(SELECT name FROM pragma_table_info('schema_migrations') ORDER BY name)`).Scan(&cols)
	if err != nil || cols != "applied_at,name,version" {
		return nil, err
	}
	rows, err := c.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	old := map[int]int64{}
	for rows.Next() {
		var (
			v    int
			name string
			at   int64
		)
		if err := rows.Scan(&v, &name, &at); err != nil {
			return nil, err
		}
		if legacyVersions[v].name != name {
			return nil, nil // someone else's table of that shape
		}
		old[v] = at
	}
	return old, rows.Err()
}

// copyTable copies every row of from into to, column by column by name.
func copyTable(ctx context.Context, c *wconn, from, to string) error {
	var cols string
	if err := c.QueryRowContext(ctx, `SELECT group_concat('"' || name || '"', ', ') FROM pragma_table_info(?)`, from).Scan(&cols); err != nil {
		return fmt.Errorf("copying %s: %w", from, err)
	}
	if _, err := c.ExecContext(ctx, `INSERT INTO "`+to+`" (`+cols+`) SELECT `+cols+` FROM "`+from+`"`); err != nil {
		return fmt.Errorf("copying %s: %w", from, err)
	}
	return nil
}

// missing returns the migrations of ms that are not applied.
func missing(ms []migrations.Migration, applied map[int]bool) []migrations.Migration {
	var out []migrations.Migration
	for _, m := range ms {
		if !applied[m.Version] {
			out = append(out, m)
		}
	}
	return out
}

// checkSchema is migrate for a store opened with SkipMigrations: it
// changes nothing, and fails naming what is missing.
func (s *Store) checkSchema(ctx context.Context) error {
	ms, err := migrations.Load(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	applied, err := appliedVersions(ctx, s.db)
	if err != nil {
		return fmt.Errorf("sqlite: reading the schema version: %w", err)
	}
	if applied == nil {
		return fmt.Errorf("sqlite: %w: the table referral_schema_migrations is missing (apply schema.sql, or open without SkipMigrations)", ErrSchema)
	}
	if lack := missing(ms, applied); len(lack) > 0 {
		names := make([]string, len(lack))
		for i, m := range lack {
			names[i] = m.Name
		}
		return fmt.Errorf("sqlite: %w: migrations %s are not applied (apply them, or open without SkipMigrations)", ErrSchema, strings.Join(names, ", "))
	}
	return nil
}

// querier is what *sql.DB and a write's wconn share for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// appliedVersions returns the versions recorded in
// referral_schema_migrations, nil if the table does not exist.
func appliedVersions(ctx context.Context, q querier) (map[int]bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'referral_schema_migrations'`).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT version FROM referral_schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}
