package sqlite

import (
	"context"
	"fmt"
)

// probeQueries change the newest schema_migrations row and change it
// back: a real write, which SQLite logs and syncs at COMMIT like any
// other, that leaves the data as they were. (Rewriting the row as it is
// would not do: SQLite writes nothing for a cell that does not change.)
var probeQueries = []string{
	`UPDATE referral_schema_migrations SET applied_at = applied_at + 1
		WHERE version = (SELECT max(version) FROM referral_schema_migrations)`,
	`UPDATE referral_schema_migrations SET applied_at = applied_at - 1
		WHERE version = (SELECT max(version) FROM referral_schema_migrations)`,
}

// CheckWrite reports whether the store can write, for a health check that
// should pass only while requests can be served (the server's /healthz).
// [Store.Ping] is not enough: a read-only file or connection answers reads.
//
// It commits a write that changes nothing, through the same queue, write
// lock and transaction as every other write (it may share a batch with
// them), so it fails when they would: a read-only file, directory or
// connection, a disk that cannot take the transaction, a write lock
// another process holds past busy_timeout, a closed store. ctx bounds its
// wait in the queue.
func (s *Store) CheckWrite(ctx context.Context) error {
	err := s.write(ctx, func(c *wconn) error {
		for _, q := range probeQueries {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: write check: %w", err)
	}
	return nil
}
