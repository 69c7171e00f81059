package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestRedemptionConformance(t *testing.T) {
	storetest.RunRedemptions(t, func(t *testing.T) storetest.Redemptions { return openStore(t) })
}

// TestRedeemInOneBatch: redemptions of one new user that all found none
// when they read, and so all write, in one batch: the first stores its
// own, and the others return it.
func TestRedeemInOneBatch(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	release := holdWrites(t, s)
	app, newUser := uuid.NewString(), uuid.NewString()
	at := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	const callers = 3
	type result struct {
		r       referral.Redemption
		created bool
		err     error
	}
	results := make([]result, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			r := referral.Redemption{
				AppID: app, ReferrerID: uuid.NewString(), Code: "A1B0C2D3E4", NewUserID: newUser,
				Email: "n@example.com", EmailKey: "n@example.com", CreatedAt: at,
			}
			got, created, err := s.Redeem(context.Background(), r)
			results[i] = result{got, created, err}
		})
	}
	waitQueued(t, s, callers)
	require.NoError(t, release())
	wg.Wait()

	var created []referral.Redemption
	for _, res := range results {
		require.NoError(t, res.err)
		if res.created {
			created = append(created, res.r)
		}
	}
	require.Len(t, created, 1, "exactly one redemption is stored")
	for _, res := range results {
		assert.Equal(t, created[0], res.r, "every caller gets the stored one")
	}
}

// TestRedemptionCancelledContext: Redeem and Stats give up with the
// context's error.
func TestRedemptionCancelledContext(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := referral.Redemption{AppID: uuid.NewString(), ReferrerID: uuid.NewString(), Code: "A1B0C2D3E4", NewUserID: uuid.NewString()}
	_, _, err := s.Redeem(ctx, r)
	assert.ErrorIs(t, err, context.Canceled, "Redeem")
	_, err = s.Stats(ctx, r.AppID, r.ReferrerID)
	assert.ErrorIs(t, err, context.Canceled, "Stats")
}

// BenchmarkStats: the counts of a referrer with n invites to n/2 addresses
// (each twice, a fifth of them sent) and n/10 redemptions, half of them
// from invited addresses, beside 2,000 other referrers with 100 invites and
// 10 redemptions each.
func BenchmarkStats(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("invites=%d", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "referral.db")
			s, err := sqlite.Open(path)
			require.NoError(b, err)
			defer s.Close()
			// Rows straight into the file: the store would take minutes.
			db, err := sql.Open("sqlite", sqlite.DSN(path))
			require.NoError(b, err)
			defer db.Close()
			app, ref := uuid.NewString(), uuid.NewString()
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?3)
				INSERT INTO referral_invites (id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
					status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at)
				SELECT hex(randomblob(16)), ?1, ?2, 'a' || (i % (?3 / 2)) || '@example.com', 'a' || (i % (?3 / 2)) || '@example.com',
					'en', 'A1B0C2D3E4', '', CASE WHEN i % 5 = 0 THEN 'sent' ELSE 'pending' END, 1, '', i, 0, i, i
				FROM seq`, []any{app, ref, n}},
				{`WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?3 / 10)
				INSERT INTO referral_redemptions (app_id, referrer_id, code, new_user_id, email, email_key, created_at)
				SELECT ?1, ?2, 'A1B0C2D3E4', hex(randomblob(16)), e, e, 0
				FROM (SELECT CASE WHEN i % 2 = 0 THEN 'a' ELSE 'x' END || i || '@example.com' AS e FROM seq)`, []any{app, ref, n}},
				{`WITH RECURSIVE refs(r) AS (SELECT 1 UNION ALL SELECT r + 1 FROM refs WHERE r < 2000),
					seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < 99)
				INSERT INTO referral_invites (id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
					status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at)
				SELECT hex(randomblob(16)), ?1, 'other-' || r, 'a' || i || '@example.com', 'a' || i || '@example.com',
					'en', 'B1B0C2D3E4', '', 'sent', 1, '', 0, 0, 0, 0
				FROM refs, seq`, []any{app}},
				{`WITH RECURSIVE refs(r) AS (SELECT 1 UNION ALL SELECT r + 1 FROM refs WHERE r < 2000),
					seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < 9)
				INSERT INTO referral_redemptions (app_id, referrer_id, code, new_user_id, email, email_key, created_at)
				SELECT ?1, 'other-' || r, 'B1B0C2D3E4', hex(randomblob(16)), 'a' || i || '@example.com', 'a' || i || '@example.com', 0
				FROM refs, seq`, []any{app}},
			} {
				_, err := db.Exec(q.sql, q.args...)
				require.NoError(b, err)
			}

			ctx := context.Background()
			want := referral.Stats{Invited: n, Sent: n / 5, Accepted: n / 20, Redeemed: n / 10}
			for b.Loop() {
				st, err := s.Stats(ctx, app, ref)
				if err != nil {
					b.Fatal(err)
				}
				if st != want {
					b.Fatalf("Stats = %+v, want %+v", st, want)
				}
			}
		})
	}
}
