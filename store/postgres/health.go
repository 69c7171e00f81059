package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// probeQuery rewrites the newest schema_migrations row as it is: a real
// write, logged and flushed at COMMIT like any other, that changes
// nothing.
const probeQuery = `UPDATE referral_schema_migrations SET applied_at = applied_at
	WHERE version = (SELECT max(version) FROM referral_schema_migrations)`

// CheckWrite reports whether the store can write, for a health check that
// should pass only while requests can be served (the server's /healthz).
// [Store.Ping] is not enough: a standby, or a session with
// default_transaction_read_only on, answers reads.
//
// It commits a write that changes nothing, in a transaction of its own,
// so it fails when other writes would: a read-only server or session, a
// disk the server cannot write, a server or pool that is gone. Several
// instances' checks take the same row lock, each for a moment.
func (s *Store) CheckWrite(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, probeQuery)
		return err
	})
	if err != nil {
		return wrap(ctx, "write check", err)
	}
	return nil
}
