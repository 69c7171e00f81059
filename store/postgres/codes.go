package postgres

import (
	"context"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

// EnsureCode returns userID's code in appID, storing one that newCode makes
// if the user has none; see [referral.CodeStore] for the rules.
func (s *Store) EnsureCode(ctx context.Context, appID, userID string, newCode func() string) (string, error) {
	// Most calls are for users who have a code: one read.
	code, err := s.codeOf(ctx, appID, userID)
	if err == nil {
		return code, nil
	}
	if !isNoRows(err) {
		return "", wrap(ctx, "ensure code", err)
	}
	for range storeimpl.MaxCodeTries {
		candidate := newCode()
		// A conflict on either unique key stores nothing. On the user's key
		// a concurrent first call won (the insert waits for it to commit),
		// and its code is the user's; on the code, the code is taken.
		err := s.pool.QueryRow(ctx, `INSERT INTO referral_codes (app_id, user_id, code) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING RETURNING code`, appID, userID, candidate).Scan(&code)
		if err == nil {
			return code, nil
		}
		if !isNoRows(err) {
			return "", wrap(ctx, "ensure code", err)
		}
		code, err = s.codeOf(ctx, appID, userID)
		if err == nil {
			return code, nil
		}
		if !isNoRows(err) {
			return "", wrap(ctx, "ensure code", err)
		}
	}
	return "", wrap(ctx, "ensure code", referral.ErrCodeTaken)
}

// codeOf returns the code of (appID, userID), or pgx.ErrNoRows.
func (s *Store) codeOf(ctx context.Context, appID, userID string) (string, error) {
	var code string
	err := s.pool.QueryRow(ctx, `SELECT code FROM referral_codes WHERE app_id = $1 AND user_id = $2`, appID, userID).Scan(&code)
	return code, err
}

// ResolveCode returns the owner of code, compared exactly, or an error
// matching [referral.ErrCodeNotFound]; see [referral.CodeStore].
func (s *Store) ResolveCode(ctx context.Context, code string) (referral.Owner, error) {
	var o referral.Owner
	err := s.pool.QueryRow(ctx, `SELECT app_id, user_id FROM referral_codes WHERE code = $1`, code).Scan(&o.AppID, &o.UserID)
	if isNoRows(err) {
		return referral.Owner{}, referral.ErrCodeNotFound
	}
	if err != nil {
		return referral.Owner{}, wrap(ctx, "resolve code", err)
	}
	return o, nil
}
