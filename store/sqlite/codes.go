package sqlite

import (
	"context"
	"fmt"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

// EnsureCode returns userID's code in appID, storing one that newCode makes
// if the user has none; see [referral.CodeStore] for the rules.
func (s *Store) EnsureCode(ctx context.Context, appID, userID string, newCode func() string) (string, error) {
	// Most calls are for users who have a code: a read, no write lock.
	var code string
	err := s.readCode.QueryRowContext(ctx, appID, userID).Scan(&code)
	if err == nil {
		return code, nil
	}
	if !isNoRows(err) {
		return "", fmt.Errorf("sqlite: ensure code: %w", err)
	}
	err = s.write(ctx, func(c *wconn) error {
		// Another caller, here or in another process, may have made the
		// code since the read above: the write lock makes this check final.
		var err error
		if code, err = codeOf(ctx, c, appID, userID); !isNoRows(err) {
			return err
		}
		for range storeimpl.MaxCodeTries {
			candidate := newCode()
			// The user has no code, so a conflict can only be on the code.
			res, err := c.ExecContext(ctx, `INSERT INTO referral_codes (code, app_id, user_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				candidate, appID, userID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				code = candidate
				return nil
			}
		}
		return referral.ErrCodeTaken
	})
	if err != nil {
		return "", fmt.Errorf("sqlite: ensure code: %w", err)
	}
	return code, nil
}

const (
	codeQuery  = `SELECT code FROM referral_codes WHERE app_id = ? AND user_id = ?`
	ownerQuery = `SELECT app_id, user_id FROM referral_codes WHERE code = ?`
)

// codeOf returns the code of (appID, userID), or sql.ErrNoRows.
func codeOf(ctx context.Context, q querier, appID, userID string) (string, error) {
	var code string
	err := q.QueryRowContext(ctx, codeQuery, appID, userID).Scan(&code)
	return code, err
}

// ResolveCode returns the owner of code, compared exactly, or an error
// matching [referral.ErrCodeNotFound]; see [referral.CodeStore].
func (s *Store) ResolveCode(ctx context.Context, code string) (referral.Owner, error) {
	var o referral.Owner
	err := s.readOwner.QueryRowContext(ctx, code).Scan(&o.AppID, &o.UserID)
	if isNoRows(err) {
		return referral.Owner{}, referral.ErrCodeNotFound
	}
	if err != nil {
		return referral.Owner{}, fmt.Errorf("sqlite: resolve code: %w", err)
	}
	return o, nil
}
