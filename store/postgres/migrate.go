package postgres

import (
	"context"
	"embed"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
// store with [Options.SkipMigrations]. It creates the tables in the first
// schema of the search_path, and fails where they exist already: it is for
// a schema without them.
//
//go:embed schema.sql
var Schema string

// createMigrationsTable makes the table that records the applied versions;
// schema.sql creates it alike.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS referral_schema_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// legacyVersions are the migrations of the builds whose tables had no
// prefix, by version, and the tables each made, parents first. Their
// schema_migrations table had the columns version, name and applied_at
// and held these names: that is how it is told from a host's table of the
// same name (golang-migrate's has version and dirty).
var legacyVersions = map[int]struct {
	name   string
	tables []string
}{
	1: {"0001_codes_invites.sql", []string{"codes", "invites"}},
	2: {"0002_keys.sql", []string{"apps", "api_keys"}},
	3: {"0003_redemptions.sql", []string{"redemptions"}},
}

// migrate applies the migrations the schema lacks, all in one transaction
// that first takes an advisory lock on the schema's name: instances starting
// at once queue there, and each finds the versions the one before it
// recorded. Versions recorded but unknown to this build (a newer one ran) are
// left alone. A schema of the builds without the table prefix has its
// tables moved to the prefixed names in that transaction first.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, lockMigrate); err != nil {
			return err
		}
		applied, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		if applied == nil {
			if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
				return err
			}
			if applied, err = upgradeLegacy(ctx, tx, ms); err != nil {
				return fmt.Errorf("moving the tables to the referral_ prefix: %w", err)
			}
		}
		for _, m := range missing(ms, applied) {
			if err := apply(ctx, tx, m, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(ctx, "migrating", err)
	}
	return nil
}

// apply runs m and records it as applied at at.
func apply(ctx context.Context, tx pgx.Tx, m migrations.Migration, at time.Time) error {
	// No arguments: pgx sends the file with the simple protocol, which
	// runs several statements.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO referral_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.Version, m.Name, at); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	return nil
}

// upgradeLegacy moves a schema of the builds without the table prefix to
// the prefixed tables, if it is one: it applies the versions the old
// schema_migrations records, copies each old table into its new one, drops
// the old tables and the old schema_migrations, and returns the versions it
// applied. Anything else (no schema_migrations, or a host's) is left alone.
func upgradeLegacy(ctx context.Context, tx pgx.Tx, ms []migrations.Migration) (map[int]bool, error) {
	schema, old, err := legacyApplied(ctx, tx)
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
		if err := apply(ctx, tx, m, at); err != nil {
			return nil, err
		}
		applied[m.Version] = true
		tables = append(tables, legacyVersions[m.Version].tables...)
	}
	for _, t := range tables {
		from := pgx.Identifier{schema, t}.Sanitize()
		to := pgx.Identifier{schema, "referral_" + t}.Sanitize()
		// The columns of the old table, all of which the new one has.
		var cols []string
		rows, err := tx.Query(ctx, `SELECT quote_ident(column_name) FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, t)
		if err == nil {
			cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return nil, fmt.Errorf("copying %s: %w", t, err)
		}
		list := strings.Join(cols, ", ")
		if _, err := tx.Exec(ctx, `INSERT INTO `+to+` (`+list+`) SELECT `+list+` FROM `+from); err != nil {
			return nil, fmt.Errorf("copying %s: %w", t, err)
		}
	}
	// Children first: api_keys refers to apps.
	for _, t := range slices.Backward(append([]string{"schema_migrations"}, tables...)) {
		if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{schema, t}.Sanitize()); err != nil {
			return nil, err
		}
	}
	return applied, nil
}

// legacyApplied returns the current schema and the versions, and when each
// was applied, that its schema_migrations table of the builds without the
// prefix records; none if there is no such table or it is not ours.
func legacyApplied(ctx context.Context, tx pgx.Tx) (string, map[int]time.Time, error) {
	var (
		schema string
		cols   []string
	)
	err := tx.QueryRow(ctx, `SELECT current_schema(), coalesce(array_agg(column_name::text ORDER BY column_name::text), '{}')
		FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`).Scan(&schema, &cols)
	if err != nil || !slices.Equal(cols, []string{"applied_at", "name", "version"}) {
		return "", nil, err
	}
	rows, err := tx.Query(ctx, `SELECT version::integer, name::text, applied_at::timestamptz FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize())
	if err != nil {
		return "", nil, err
	}
	type row struct {
		Version int
		Name    string
		At      time.Time
	}
	recorded, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return "", nil, err
	}
	old := map[int]time.Time{}
	for _, r := range recorded {
		if legacyVersions[r.Version].name != r.Name {
			return "", nil, nil // someone else's table of that shape
		}
		old[r.Version] = r.At
	}
	return schema, old, nil
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
		return fmt.Errorf("postgres: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap(ctx, "reading the schema version", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return wrap(ctx, "reading the schema version", err)
	}
	if applied == nil {
		return fmt.Errorf("postgres: %w: the table referral_schema_migrations is missing from the schema %s (apply schema.sql, or open without SkipMigrations)", ErrSchema, currentSchema(ctx, tx))
	}
	if lack := missing(ms, applied); len(lack) > 0 {
		names := make([]string, len(lack))
		for i, m := range lack {
			names[i] = m.Name
		}
		return fmt.Errorf("postgres: %w: migrations %s are not applied (apply them, or open without SkipMigrations)", ErrSchema, strings.Join(names, ", "))
	}
	return nil
}

// currentSchema names the schema the store's tables go in, for errors.
func currentSchema(ctx context.Context, tx pgx.Tx) string {
	var name *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&name); err != nil || name == nil {
		return "(none: no schema of the search_path exists)"
	}
	return *name
}

// appliedVersions returns the versions recorded in the current schema's
// referral_schema_migrations, nil if it has no such table.
func appliedVersions(ctx context.Context, tx pgx.Tx) (map[int]bool, error) {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name = 'referral_schema_migrations')`).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT version FROM referral_schema_migrations`)
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	applied := map[int]bool{}
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}
