package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

var _ referral.RecipientStore = (*Store)(nil)

// Secret returns the secret called name, storing newSecret() the first
// time; see [referral.RecipientStore].
func (s *Store) Secret(ctx context.Context, name string, newSecret func() []byte) ([]byte, error) {
	const query = `SELECT value FROM referral_secrets WHERE name = $1`
	var value []byte
	err := s.pool.QueryRow(ctx, query, name).Scan(&value)
	if isNoRows(err) {
		// An insert that meets another's uncommitted one waits for it and
		// then does nothing; the read after it, a statement of its own,
		// sees whichever insert won.
		_, err = s.pool.Exec(ctx, `INSERT INTO referral_secrets (name, value, created_at) VALUES ($1, $2, now())
			ON CONFLICT (name) DO NOTHING`, name, newSecret())
		if err == nil {
			err = s.pool.QueryRow(ctx, query, name).Scan(&value)
		}
	}
	if err != nil {
		return nil, wrap(ctx, "secret", err)
	}
	return value, nil
}

// Suppress adds sup to the suppression list, keeping an earlier entry of
// the address, and marks the app's pending invites of the address
// suppressed, in one transaction; see [referral.RecipientStore].
func (s *Store) Suppress(ctx context.Context, sup referral.Suppression) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The address's lock, which RecordInvite takes too: an invite
		// recorded at the same time either is committed before the update
		// below, which finds it, or sees the suppression.
		if _, err := tx.Exec(ctx, lockSQL, lockRecipient, sup.AppID, sup.AddressHash); err != nil {
			return err
		}
		args := pgx.NamedArgs{"app_id": sup.AppID, "address_hash": sup.AddressHash, "reason": sup.Reason, "at": stored(sup.CreatedAt)}
		if _, err := tx.Exec(ctx, `INSERT INTO referral_suppressions (app_id, address_hash, reason, created_at)
			VALUES (@app_id, @address_hash, @reason, @at) ON CONFLICT (app_id, address_hash) DO NOTHING`, args); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE referral_invites SET status = 'suppressed', last_error = @reason, lease_until = NULL, updated_at = @at
			WHERE app_id = @app_id AND address_hash = @address_hash AND status = 'pending'
			RETURNING id, app_id, referrer_id, status`, args)
		if err != nil {
			return err
		}
		marked, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (referral.Invite, error) {
			var inv referral.Invite
			err := r.Scan(&inv.ID, &inv.AppID, &inv.ReferrerID, &inv.Status)
			return inv, err
		})
		if err != nil {
			return err
		}
		for _, inv := range marked {
			if err := s.record(ctx, tx, storeimpl.InviteEvent(referral.EventInviteSuppressed, inv, sup.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(ctx, "suppress", err)
	}
	return nil
}

// Unsuppress removes (appID, addressHash) from the suppression list; see
// [referral.RecipientStore].
func (s *Store) Unsuppress(ctx context.Context, appID, addressHash string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM referral_suppressions WHERE app_id = $1 AND address_hash = $2`, appID, addressHash)
	if err != nil {
		return wrap(ctx, "unsuppress", err)
	}
	return nil
}

// Suppression returns the suppression of (appID, addressHash), found=false
// if there is none; see [referral.RecipientStore].
func (s *Store) Suppression(ctx context.Context, appID, addressHash string) (referral.Suppression, bool, error) {
	sup := referral.Suppression{AppID: appID, AddressHash: addressHash}
	err := s.pool.QueryRow(ctx, `SELECT reason, created_at FROM referral_suppressions WHERE app_id = $1 AND address_hash = $2`,
		appID, addressHash).Scan(&sup.Reason, &sup.CreatedAt)
	if isNoRows(err) {
		return referral.Suppression{}, false, nil
	}
	if err != nil {
		return referral.Suppression{}, false, wrap(ctx, "suppression", err)
	}
	sup.CreatedAt = sup.CreatedAt.UTC()
	return sup, true, nil
}

// InviteRecipient returns the app, address hash, address key and language
// of invite id, or an error matching [referral.ErrInviteNotFound]; see
// [referral.RecipientStore].
func (s *Store) InviteRecipient(ctx context.Context, id string) (referral.Recipient, error) {
	var r referral.Recipient
	err := s.pool.QueryRow(ctx, `SELECT app_id, address_hash, email_key, language FROM referral_invites WHERE id = $1`, id).
		Scan(&r.AppID, &r.AddressHash, &r.EmailKey, &r.Language)
	if isNoRows(err) {
		return referral.Recipient{}, referral.ErrInviteNotFound
	}
	if err != nil {
		return referral.Recipient{}, wrap(ctx, "invite recipient", err)
	}
	return r, nil
}

// eraseSQL erases the addresses of up to @max invites last sent (created,
// sent or resent) before @before that are final and not accepted, oldest
// first. "email_key <> ”" skips those erased already and, with
// "created_at < @before" (the last send is never before the creation),
// matches referral_invites_retained; greatest ignores a NULL sent_at or
// resent_at. The acceptance is looked up in
// referral_redemptions_by_referrer. SKIP LOCKED: concurrent calls erase
// different invites, and a row another call has just erased is read again
// when locked, and dropped.
const eraseSQL = `UPDATE referral_invites SET email = '', email_key = ''
WHERE id IN (
	SELECT id FROM referral_invites AS inv
	WHERE email_key <> '' AND created_at < @before AND greatest(created_at, sent_at, resent_at) < @before
		AND status <> 'pending' AND NOT EXISTS (
		SELECT FROM referral_redemptions AS r
		WHERE r.app_id = inv.app_id AND r.referrer_id = inv.referrer_id AND r.email_key = inv.email_key)
	ORDER BY created_at, id
	LIMIT @max
	FOR UPDATE SKIP LOCKED)`

// EraseAddresses erases Email and EmailKey of up to max final, unaccepted
// invites last sent before sentBefore, oldest first, and returns how many;
// see [referral.RecipientStore].
func (s *Store) EraseAddresses(ctx context.Context, sentBefore time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	// Stored times are whole microseconds: one in the microsecond of
	// sentBefore but not after it is before it.
	before := stored(sentBefore)
	if before.Before(sentBefore) {
		before = before.Add(time.Microsecond)
	}
	tag, err := s.pool.Exec(ctx, eraseSQL, pgx.NamedArgs{"before": before, "max": max})
	if err != nil {
		return 0, wrap(ctx, "erase addresses", err)
	}
	return int(tag.RowsAffected()), nil
}
