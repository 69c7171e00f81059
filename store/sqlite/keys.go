package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/referralkit/referralkit/auth"
)

// The store also keeps apps and API keys (migration 0002), so that one
// database serves the handler and its authenticator.
var (
	_ auth.KeyStore   = (*Store)(nil)
	_ auth.KeyManager = (*Store)(nil)
)

const keyColumns = `app_id, prefix, type, hash, created_at, revoked_at`

// scanKey reads one row of keyColumns.
func scanKey(row interface{ Scan(...any) error }) (auth.Key, error) {
	var (
		k       auth.Key
		typ     string
		created int64
		revoked sql.NullInt64
	)
	if err := row.Scan(&k.AppID, &k.Prefix, &typ, &k.Hash, &created, &revoked); err != nil {
		return auth.Key{}, err
	}
	k.Type = auth.KeyType(typ)
	k.CreatedAt = fromMillis(created)
	if revoked.Valid {
		k.RevokedAt = fromMillis(revoked.Int64)
	}
	return k, nil
}

// LookupKey returns the key of appID with prefix; see [auth.KeyStore].
func (s *Store) LookupKey(ctx context.Context, appID, prefix string) (auth.Key, error) {
	k, err := scanKey(s.readKey.QueryRowContext(ctx, appID, prefix))
	if isNoRows(err) {
		return auth.Key{}, auth.ErrKeyNotFound
	}
	if err != nil {
		return auth.Key{}, fmt.Errorf("sqlite: lookup key: %w", err)
	}
	return k, nil
}

// LookupApp returns appID's app; see [auth.KeyStore].
func (s *Store) LookupApp(ctx context.Context, appID string) (auth.App, error) {
	a, err := scanApp(s.readApp.QueryRowContext(ctx, appID))
	if isNoRows(err) {
		return auth.App{}, auth.ErrAppNotFound
	}
	if err != nil {
		return auth.App{}, fmt.Errorf("sqlite: lookup app: %w", err)
	}
	return a, nil
}

const (
	keyQuery = `SELECT ` + keyColumns + ` FROM referral_api_keys WHERE app_id = ? AND prefix = ?`
	appQuery = `SELECT id, disabled, created_at FROM referral_apps WHERE id = ?`
)

// appOf returns app appID, or sql.ErrNoRows.
func appOf(ctx context.Context, q querier, appID string) (auth.App, error) {
	return scanApp(q.QueryRowContext(ctx, appQuery, appID))
}

func scanApp(row interface{ Scan(...any) error }) (auth.App, error) {
	var (
		a       auth.App
		created int64
	)
	err := row.Scan(&a.ID, &a.Disabled, &created)
	a.CreatedAt = fromMillis(created)
	return a, err
}

// CreateKey stores k, creating its app if needed; see [auth.KeyManager].
func (s *Store) CreateKey(ctx context.Context, k auth.Key) error {
	var revoked sql.NullInt64
	if k.Revoked() {
		revoked = sql.NullInt64{Int64: millis(k.RevokedAt), Valid: true}
	}
	err := s.write(ctx, func(c *wconn) error {
		if _, err := c.ExecContext(ctx, `INSERT INTO referral_apps (id, disabled, created_at) VALUES (?, 0, ?) ON CONFLICT DO NOTHING`,
			k.AppID, millis(k.CreatedAt)); err != nil {
			return err
		}
		res, err := c.ExecContext(ctx, `INSERT INTO referral_api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			k.AppID, k.Prefix, string(k.Type), k.Hash, millis(k.CreatedAt), revoked)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// Returning an error rolls back the app row too: nothing is
			// stored.
			return auth.ErrKeyExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create key: %w", err)
	}
	return nil
}

// RevokeKeys revokes appID's key with prefix, or all its keys for an
// empty prefix, at at, and returns how many; see [auth.KeyManager].
func (s *Store) RevokeKeys(ctx context.Context, appID, prefix string, at time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(c *wconn) error {
		if _, err := appOf(ctx, c, appID); isNoRows(err) {
			return auth.ErrAppNotFound
		} else if err != nil {
			return err
		}
		if prefix != "" {
			var one int
			err := c.QueryRowContext(ctx, `SELECT 1 FROM referral_api_keys WHERE app_id = ? AND prefix = ?`, appID, prefix).Scan(&one)
			if isNoRows(err) {
				return auth.ErrKeyNotFound
			} else if err != nil {
				return err
			}
		}
		res, err := c.ExecContext(ctx, `UPDATE referral_api_keys SET revoked_at = ?
			WHERE app_id = ? AND (? = '' OR prefix = ?) AND revoked_at IS NULL`,
			millis(at), appID, prefix, prefix)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke keys: %w", err)
	}
	return int(n), nil
}

// ListKeys returns appID's keys, oldest first; see [auth.KeyManager].
func (s *Store) ListKeys(ctx context.Context, appID string) ([]auth.Key, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+keyColumns+` FROM referral_api_keys WHERE app_id = ? ORDER BY created_at, prefix`, appID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	var keys []auth.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	if len(keys) == 0 {
		// No keys: tell an unknown app from one whose keys are all gone.
		if _, err := s.LookupApp(ctx, appID); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// SetAppDisabled disables or enables appID; see [auth.KeyManager].
func (s *Store) SetAppDisabled(ctx context.Context, appID string, disabled bool) error {
	err := s.write(ctx, func(c *wconn) error {
		res, err := c.ExecContext(ctx, `UPDATE referral_apps SET disabled = ? WHERE id = ?`, disabled, appID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return auth.ErrAppNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set app disabled: %w", err)
	}
	return nil
}
