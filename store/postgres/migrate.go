package postgres

import (
	"context"
	"embed"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/referralkit/referralkit/store/internal/migrations"
)

// Migrations holds the schema, one file per version, as
// migrations/NNNN_what.sql: the files the store applies in version order,
// each once, and that a host's own migration tool can run instead (see
// [Options.SkipMigrations]). The first creates referral_schema_migrations,
// and each ends by recording itself there (ON CONFLICT DO NOTHING), so
// that a schema the files were run in is known to have them. schema.sql is
// their result.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Schema is the text of schema.sql: the whole schema as the migrations
// leave it, ending with the rows of referral_schema_migrations that record
// them, for hosts that apply it with their own migration tool and open the
// store with [Options.SkipMigrations]. It creates the tables in the first
// schema of the search_path, and fails where they exist already: it is for
// a schema without them.
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
	1: {"0001_codes_invites.sql", []string{"codes", "invites"}},
	2: {"0002_keys.sql", []string{"apps", "api_keys"}},
	3: {"0003_redemptions.sql", []string{"redemptions"}},
}

// migrate applies the migrations the schema lacks, all in one transaction
// that first takes an advisory lock on the schema's name: instances starting
// at once queue there, and each finds the versions the one before it
// recorded. Versions recorded but unknown to this build (a newer one ran) are
// left alone. A schema of the builds without the table prefix has its
// tables moved to the prefixed names in that transaction first; one that
// has the prefixed tables and rows in the old ones as well is refused (see
// checkNoLegacy).
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(Migrations, "migrations")
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
			if applied, err = upgradeLegacy(ctx, tx, ms); err != nil {
				return fmt.Errorf("moving the tables to the referral_ prefix: %w", err)
			}
		} else if err := checkNoLegacy(ctx, tx); err != nil {
			return err
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

// apply runs m, which records itself in referral_schema_migrations (the
// first file creates that table), and sets the time recorded to at.
func apply(ctx context.Context, tx pgx.Tx, m migrations.Migration, at time.Time) error {
	// No arguments: pgx sends the file with the simple protocol, which
	// runs several statements.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	tag, err := tx.Exec(ctx, `UPDATE referral_schema_migrations SET applied_at = $1 WHERE version = $2 AND name = $3`,
		at, m.Version, m.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%s: the file does not record itself in referral_schema_migrations", m.Name)
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

// checkNoLegacy fails, with ErrSchema, if the schema holds besides the
// referral_ tables rows in the tables of the builds without the prefix,
// recorded in their schema_migrations: the store would never read them.
// An older build ran on the schema after the move, or schema.sql was
// applied to a schema of the older builds; only a person can tell which
// rows to keep.
func checkNoLegacy(ctx context.Context, tx pgx.Tx) error {
	schema, old, err := legacyApplied(ctx, tx)
	if err != nil || len(old) == 0 {
		return err
	}
	var full []string
	for _, v := range slices.Sorted(maps.Keys(old)) {
		for _, t := range legacyVersions[v].tables {
			var rows bool
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2)`,
				schema, t).Scan(&rows)
			if err == nil && rows {
				err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+pgx.Identifier{schema, t}.Sanitize()+`)`).Scan(&rows)
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
	return fmt.Errorf("%w: the schema %s has the referral_ tables and also rows in %s, tables of an earlier build "+
		"without the prefix (recorded in schema_migrations), which the store does not read: an older build ran on it "+
		"after the move, or schema.sql was applied to it instead of opening it once without SkipMigrations; "+
		"copy the rows to keep into the referral_ tables, then drop those tables and schema_migrations",
		ErrSchema, schema, strings.Join(full, ", "))
}

// checkSchema is migrate for a store opened with SkipMigrations: it
// changes nothing, and fails naming what is missing.
func (s *Store) checkSchema(ctx context.Context) error {
	ms, err := migrations.Load(Migrations, "migrations")
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
		_, old, err := legacyApplied(ctx, tx)
		if err != nil {
			return wrap(ctx, "reading the schema version", err)
		}
		if len(old) > 0 {
			// schema.sql would make empty tables beside the old ones, and
			// a later New would leave the old rows where they are.
			return fmt.Errorf("postgres: %w: the schema %s has the tables of an earlier build, without the referral_ prefix: "+
				"open it once without SkipMigrations to move the old tables to the referral_ prefix (schema.sql would make empty tables beside them)",
				ErrSchema, currentSchema(ctx, tx))
		}
		return fmt.Errorf("postgres: %w: the table referral_schema_migrations is missing from the schema %s "+
			"(apply schema.sql or the files of migrations/ in order, or open without SkipMigrations)", ErrSchema, currentSchema(ctx, tx))
	}
	if err := checkNoLegacy(ctx, tx); err != nil {
		return wrap(ctx, "checking the schema", err)
	}
	if lack := missing(ms, applied); len(lack) > 0 {
		names := make([]string, len(lack))
		for i, m := range lack {
			names[i] = m.Name
		}
		return fmt.Errorf("postgres: %w: migrations %s are not applied "+
			"(run those files of migrations/ in order, each records itself, or open without SkipMigrations)", ErrSchema, strings.Join(names, ", "))
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
