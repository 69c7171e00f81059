package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/referralkit/referralkit/store/internal/migrations"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_what.sql.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate applies the migrations the database lacks. A database that has
// them all is only read, so that a read-only file can still be opened.
// Otherwise the check is repeated and the missing files applied inside one
// write transaction, which another process doing the same waits for.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	applied, err := appliedVersions(ctx, s.db)
	if err != nil {
		return fmt.Errorf("sqlite: reading the schema version: %w", err)
	}
	if !missing(ms, applied) {
		return nil
	}
	err = s.write(ctx, func(c *wconn) error {
		if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
			return err
		}
		applied, err := appliedVersions(ctx, c)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if applied[m.Version] {
				continue
			}
			if _, err := c.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := c.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, millis(time.Now())); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: migrating: %w", err)
	}
	return nil
}

// missing reports whether some of ms are not applied.
func missing(ms []migrations.Migration, applied map[int]bool) bool {
	for _, m := range ms {
		if !applied[m.Version] {
			return true
		}
	}
	return false
}

// querier is what *sql.DB and a write's wconn share for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// appliedVersions returns the versions recorded in schema_migrations, none
// if the table does not exist yet.
func appliedVersions(ctx context.Context, q querier) (map[int]bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, err
	}
	applied := map[int]bool{}
	if n == 0 {
		return applied, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}
