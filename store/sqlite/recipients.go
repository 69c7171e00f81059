package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.RecipientStore = (*Store)(nil)

// Secret returns the secret called name, storing newSecret() the first
// time; see [referral.RecipientStore].
func (s *Store) Secret(ctx context.Context, name string, newSecret func() []byte) ([]byte, error) {
	const query = `SELECT value FROM referral_secrets WHERE name = ?`
	var value []byte
	err := s.db.QueryRowContext(ctx, query, name).Scan(&value)
	if isNoRows(err) {
		err = s.write(ctx, func(c *wconn) error {
			// Under the write lock the insert and the read are final: a
			// secret another process stored since the read above wins.
			_, err := c.ExecContext(ctx, `INSERT INTO referral_secrets (name, value, created_at) VALUES (?, ?, ?)
				ON CONFLICT (name) DO NOTHING`, name, newSecret(), millis(time.Now()))
			if err != nil {
				return err
			}
			return c.QueryRowContext(ctx, query, name).Scan(&value)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: secret: %w", err)
	}
	return value, nil
}

// Suppress adds sup to the suppression list, keeping an earlier entry of
// the address, and marks the app's pending invites of the address
// suppressed, in one transaction; see [referral.RecipientStore].
func (s *Store) Suppress(ctx context.Context, sup referral.Suppression) error {
	err := s.write(ctx, func(c *wconn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO referral_suppressions (app_id, address_hash, reason, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (app_id, address_hash) DO NOTHING`,
			sup.AppID, sup.AddressHash, sup.Reason, millis(sup.CreatedAt))
		if err != nil {
			return err
		}
		rows, err := c.QueryContext(ctx, `UPDATE referral_invites SET status = 'suppressed', last_error = ?, lease_until = ?, updated_at = ?
			WHERE app_id = ? AND address_hash = ? AND status = 'pending'
			RETURNING id, app_id, referrer_id, status`,
			sup.Reason, millis(time.Time{}), millis(sup.CreatedAt), sup.AppID, sup.AddressHash)
		if err != nil {
			return err
		}
		var marked []referral.Invite
		for rows.Next() {
			var inv referral.Invite
			if err := rows.Scan(&inv.ID, &inv.AppID, &inv.ReferrerID, &inv.Status); err != nil {
				rows.Close()
				return err
			}
			marked = append(marked, inv)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, inv := range marked {
			if err := s.record(ctx, c, storeimpl.InviteEvent(referral.EventInviteSuppressed, inv, sup.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: suppress: %w", err)
	}
	return nil
}

// Unsuppress removes (appID, addressHash) from the suppression list; see
// [referral.RecipientStore].
func (s *Store) Unsuppress(ctx context.Context, appID, addressHash string) error {
	err := s.write(ctx, func(c *wconn) error {
		_, err := c.ExecContext(ctx, `DELETE FROM referral_suppressions WHERE app_id = ? AND address_hash = ?`, appID, addressHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: unsuppress: %w", err)
	}
	return nil
}

// Suppression returns the suppression of (appID, addressHash), found=false
// if there is none; see [referral.RecipientStore].
func (s *Store) Suppression(ctx context.Context, appID, addressHash string) (referral.Suppression, bool, error) {
	sup := referral.Suppression{AppID: appID, AddressHash: addressHash}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT reason, created_at FROM referral_suppressions WHERE app_id = ? AND address_hash = ?`,
		appID, addressHash).Scan(&sup.Reason, &at)
	if isNoRows(err) {
		return referral.Suppression{}, false, nil
	}
	if err != nil {
		return referral.Suppression{}, false, fmt.Errorf("sqlite: suppression: %w", err)
	}
	sup.CreatedAt = fromMillis(at)
	return sup, true, nil
}

// InviteRecipient returns the app, address hash, address key and language
// of invite id, or an error matching [referral.ErrInviteNotFound]; see
// [referral.RecipientStore].
func (s *Store) InviteRecipient(ctx context.Context, id string) (referral.Recipient, error) {
	var r referral.Recipient
	err := s.db.QueryRowContext(ctx, `SELECT app_id, address_hash, email_key, language FROM referral_invites WHERE id = ?`, id).
		Scan(&r.AppID, &r.AddressHash, &r.EmailKey, &r.Language)
	if isNoRows(err) {
		return referral.Recipient{}, referral.ErrInviteNotFound
	}
	if err != nil {
		return referral.Recipient{}, fmt.Errorf("sqlite: invite recipient: %w", err)
	}
	return r, nil
}

// eraseSQL erases the addresses of up to ?2 invites last sent (created,
// sent or resent) before ?1 that are final and not accepted, oldest first.
// "email_key <> ”" skips those erased already and, with "created_at <
// ?1" (the last send is never before the creation), lets SQLite use
// referral_invites_retained; the acceptance is looked up in
// referral_redemptions_by_referrer. A zero time is the least of times.
const eraseSQL = `UPDATE referral_invites SET email = '', email_key = ''
WHERE id IN (
	SELECT id FROM referral_invites AS inv
	WHERE email_key <> '' AND created_at < ?1 AND max(created_at, sent_at, resent_at) < ?1
		AND status <> 'pending' AND NOT EXISTS (
		SELECT 1 FROM referral_redemptions AS r
		WHERE r.app_id = inv.app_id AND r.referrer_id = inv.referrer_id AND r.email_key = inv.email_key)
	ORDER BY created_at, id LIMIT CAST(?2 AS INTEGER))`

// EraseAddresses erases Email and EmailKey of up to max final, unaccepted
// invites last sent before sentBefore, oldest first, and returns how many;
// see [referral.RecipientStore].
func (s *Store) EraseAddresses(ctx context.Context, sentBefore time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	// Stored times are whole milliseconds: one in the millisecond of
	// sentBefore but not after it is before it.
	before := millis(sentBefore)
	if stored(sentBefore).Before(sentBefore) {
		before++
	}
	var n int64
	err := s.write(ctx, func(c *wconn) error {
		res, err := c.ExecContext(ctx, eraseSQL, before, max)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: erase addresses: %w", err)
	}
	return int(n), nil
}
