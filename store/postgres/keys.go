package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/referralkit/referralkit/auth"
)

// The store also keeps apps and API keys (migration 0002), so that one
// database serves the handler and its authenticator.

const keyColumns = `app_id, prefix, type, hash, created_at, revoked_at`

// scanKey reads one row of keyColumns. pgx copies bytea into a new slice, so
// the Hash returned is the caller's own.
func scanKey(row pgx.Row) (auth.Key, error) {
	var (
		k       auth.Key
		typ     string
		created time.Time
		revoked *time.Time
	)
	if err := row.Scan(&k.AppID, &k.Prefix, &typ, &k.Hash, &created, &revoked); err != nil {
		return auth.Key{}, err
	}
	k.Type = auth.KeyType(typ)
	k.CreatedAt, k.RevokedAt = created.UTC(), fromNull(revoked)
	return k, nil
}

// LookupKey returns the key of appID with prefix; see [auth.KeyStore].
func (s *Store) LookupKey(ctx context.Context, appID, prefix string) (auth.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx,
		`SELECT `+keyColumns+` FROM referral_api_keys WHERE app_id = $1 AND prefix = $2`, appID, prefix))
	if isNoRows(err) {
		return auth.Key{}, auth.ErrKeyNotFound
	}
	if err != nil {
		return auth.Key{}, wrap(ctx, "lookup key", err)
	}
	return k, nil
}

// LookupApp returns appID's app; see [auth.KeyStore].
func (s *Store) LookupApp(ctx context.Context, appID string) (auth.App, error) {
	var a auth.App
	err := s.pool.QueryRow(ctx, `SELECT id, disabled, created_at FROM referral_apps WHERE id = $1`, appID).
		Scan(&a.ID, &a.Disabled, &a.CreatedAt)
	if isNoRows(err) {
		return auth.App{}, auth.ErrAppNotFound
	}
	if err != nil {
		return auth.App{}, wrap(ctx, "lookup app", err)
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return a, nil
}

// CreateKey stores k, creating its app if needed; see [auth.KeyManager].
func (s *Store) CreateKey(ctx context.Context, k auth.Key) error {
	// One statement, so one transaction. If the key exists, so does its app
	// (the foreign key), and nothing is stored. Concurrent first keys of an
	// app wait for the one that inserts the app, then find it.
	tag, err := s.pool.Exec(ctx, `WITH app AS (
			INSERT INTO referral_apps (id, disabled, created_at) VALUES (@app_id, false, @created_at)
			ON CONFLICT DO NOTHING
		)
		INSERT INTO referral_api_keys (`+keyColumns+`) VALUES (@app_id, @prefix, @type, @hash, @created_at, @revoked_at)
		ON CONFLICT DO NOTHING`,
		pgx.NamedArgs{
			"app_id":     k.AppID,
			"prefix":     k.Prefix,
			"type":       string(k.Type),
			"hash":       k.Hash,
			"created_at": k.CreatedAt,
			"revoked_at": nullTime(k.RevokedAt),
		})
	if err != nil {
		return wrap(ctx, "create key", err)
	}
	if tag.RowsAffected() == 0 {
		return auth.ErrKeyExists
	}
	return nil
}

// RevokeKeys revokes appID's key with prefix, or all its keys for an
// empty prefix, at at, and returns how many; see [auth.KeyManager].
func (s *Store) RevokeKeys(ctx context.Context, appID, prefix string, at time.Time) (int, error) {
	var (
		appFound, keyFound bool
		n                  int
	)
	err := s.pool.QueryRow(ctx, `WITH revoked AS (
			UPDATE referral_api_keys SET revoked_at = @at
			WHERE app_id = @app_id AND (@prefix = '' OR prefix = @prefix) AND revoked_at IS NULL
			RETURNING 1
		)
		SELECT EXISTS (SELECT FROM referral_apps WHERE id = @app_id),
			EXISTS (SELECT FROM referral_api_keys WHERE app_id = @app_id AND prefix = @prefix),
			(SELECT count(*) FROM revoked)`,
		pgx.NamedArgs{"app_id": appID, "prefix": prefix, "at": at}).Scan(&appFound, &keyFound, &n)
	switch {
	case err != nil:
		return 0, wrap(ctx, "revoke keys", err)
	case !appFound:
		return 0, auth.ErrAppNotFound
	case prefix != "" && !keyFound:
		return 0, auth.ErrKeyNotFound
	}
	return n, nil
}

// ListKeys returns appID's keys, oldest first; see [auth.KeyManager].
func (s *Store) ListKeys(ctx context.Context, appID string) ([]auth.Key, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+keyColumns+` FROM referral_api_keys WHERE app_id = $1 ORDER BY created_at, prefix`, appID)
	if err != nil {
		return nil, wrap(ctx, "list keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.Key, error) { return scanKey(r) })
	if err != nil {
		return nil, wrap(ctx, "list keys", err)
	}
	if len(keys) == 0 {
		// No keys: tell an unknown app from one without keys.
		if _, err := s.LookupApp(ctx, appID); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// SetAppDisabled disables or enables appID; see [auth.KeyManager].
func (s *Store) SetAppDisabled(ctx context.Context, appID string, disabled bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE referral_apps SET disabled = $1 WHERE id = $2`, disabled, appID)
	if err != nil {
		return wrap(ctx, "set app disabled", err)
	}
	if tag.RowsAffected() == 0 {
		return auth.ErrAppNotFound
	}
	return nil
}
