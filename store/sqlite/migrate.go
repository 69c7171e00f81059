package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/referralkit/referralkit/store/internal/migrations"
)

// Migrations holds the schema, one file per version, as
// migrations/NNNN_what.sql: the files the store applies in version order,
// each once, and that a host's own migration tool can run instead (see
// [Options.SkipMigrations]). The first creates referral_schema_migrations,
// and each ends by recording itself there (INSERT OR IGNORE), so that a
// database the files were run on is known to have them. schema.sql is
// their result.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Schema is the text of schema.sql: the whole schema as the migrations
// leave it, ending with the rows of referral_schema_migrations that record
// them, for hosts that apply it with their own migration tool and open the
// store with [Options.SkipMigrations]. Applying it to a database that has
// the store's tables fails: it is for a fresh database.
//
//go:embed schema.sql
var Schema string

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
// the prefixed names in that transaction first; one that has the prefixed
// tables and rows in the old ones as well is refused (see checkNoLegacy).
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(Migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	applied, err := firstAppliedVersions(ctx, s.db)
	if err != nil {
		return fmt.Errorf("sqlite: reading the schema version: %w", err)
	}
	if applied != nil {
		if err := checkNoLegacy(ctx, s.db); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
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

// apply runs m, which records itself in referral_schema_migrations (the
// first file creates that table), and sets the time recorded to at.
func apply(ctx context.Context, c *wconn, m migrations.Migration, at time.Time) error {
	if _, err := c.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	res, err := c.ExecContext(ctx, `UPDATE referral_schema_migrations SET applied_at = ? WHERE version = ? AND name = ?`,
		millis(at), m.Version, m.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%s: the file does not record itself in referral_schema_migrations", m.Name)
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
func legacyApplied(ctx context.Context, c querier) (map[int]int64, error) {
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

// checkNoLegacy fails, with ErrSchema, if the database holds besides the
// referral_ tables rows in the tables of the builds without the prefix,
// recorded in their schema_migrations: the store would never read them.
// An older build ran on the database after the move, or schema.sql was
// applied to a database of the older builds; only a person can tell which
// rows to keep.
func checkNoLegacy(ctx context.Context, q querier) error {
	old, err := legacyApplied(ctx, q)
	if err != nil || len(old) == 0 {
		return err
	}
	var full []string
	for _, v := range slices.Sorted(maps.Keys(old)) {
		for _, t := range legacyVersions[v].tables {
			var rows bool
			err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?)`, t).Scan(&rows)
			if err == nil && rows {
				err = q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM "`+t+`")`).Scan(&rows)
			}
			if err != nil {
				return fmt.Errorf("looking for the tables without the referral_ prefix: %w", err)
			}
			if rows {
				full = append(full, t)
			}
		}
	}
	if len(full) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the database has the referral_ tables and also rows in %s, tables of an earlier build "+
		"without the prefix (recorded in schema_migrations), which the store does not read: an older build ran on it "+
		"after the move, or schema.sql was applied to it instead of opening it once without SkipMigrations; "+
		"copy the rows to keep into the referral_ tables, then drop those tables and schema_migrations",
		ErrSchema, strings.Join(full, ", "))
}

// checkSchema is migrate for a store opened with SkipMigrations: it
// changes nothing, and fails naming what is missing.
func (s *Store) checkSchema(ctx context.Context) error {
	ms, err := migrations.Load(Migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	applied, err := firstAppliedVersions(ctx, s.db)
	if err != nil {
		return fmt.Errorf("sqlite: reading the schema version: %w", err)
	}
	if applied == nil {
		old, err := legacyApplied(ctx, s.db)
		if err != nil {
			return fmt.Errorf("sqlite: reading the schema version: %w", err)
		}
		if len(old) > 0 {
			// schema.sql would make empty tables beside the old ones, and
			// a later New would leave the old rows where they are.
			return fmt.Errorf("sqlite: %w: the database has the tables of an earlier build, without the referral_ prefix: "+
				"open it once without SkipMigrations to move the old tables to the referral_ prefix (schema.sql would make empty tables beside them)", ErrSchema)
		}
		return fmt.Errorf("sqlite: %w: the table referral_schema_migrations is missing "+
			"(apply schema.sql or the files of migrations/ in order, or open without SkipMigrations)", ErrSchema)
	}
	if err := checkNoLegacy(ctx, s.db); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if lack := missing(ms, applied); len(lack) > 0 {
		names := make([]string, len(lack))
		for i, m := range lack {
			names[i] = m.Name
		}
		return fmt.Errorf("sqlite: %w: migrations %s are not applied "+
			"(run those files of migrations/ in order, each records itself, or open without SkipMigrations)", ErrSchema, strings.Join(names, ", "))
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

// firstAppliedVersions is appliedVersions for the store's first read of db,
// tried again on SQLITE_BUSY for up to busyTimeout. That read opens the
// pool's first connection, whose journal_mode(WAL) pragma (see DSN) on a
// file not in WAL mode yet, a new one say, writes the header from inside a
// read transaction. If another process holds the write lock meanwhile (it
// is switching the file to WAL too, or writing it in rollback mode),
// SQLite fails the pragma with SQLITE_BUSY at once rather than call the
// busy handler: a reader waiting to write would deadlock with a writer
// waiting for the reader to finish. Once the other commits, a new
// connection's pragma finds the file in WAL mode and only reads.
func firstAppliedVersions(ctx context.Context, db *sql.DB) (map[int]bool, error) {
	deadline := time.Now().Add(busyTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		applied, err := appliedVersions(ctx, db)
		if !isBusy(err) || time.Now().Add(wait).After(deadline) {
			return applied, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}
