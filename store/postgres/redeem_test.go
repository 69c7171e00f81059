package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestRedemptionConformance(t *testing.T) {
	t.Parallel()
	serverURL(t)
	storetest.RunRedemptions(t, func(t *testing.T) storetest.Redemptions { return newStore(t) })
}

// TestRedemptionCancelledContext: Redeem and Stats give up with the
// context's error.
func TestRedemptionCancelledContext(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := referral.Redemption{AppID: testApp, ReferrerID: uuid.NewString(), Code: "A1B0C2D3E4", NewUserID: uuid.NewString()}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Redeem", func() error { _, _, err := s.Redeem(ctx, r); return err }},
		{"Stats", func() error { _, err := s.Stats(ctx, testApp, r.ReferrerID); return err }},
	} {
		assert.ErrorIs(t, c.call(), context.Canceled, c.name)
	}
}

// TestRedeemWaitsForTheFirst: a Redeem whose insert waits for a concurrent
// one to commit returns the row that one stored, although its statement's
// snapshot predates it.
func TestRedeemWaitsForTheFirst(t *testing.T) {
	t.Parallel()
	cfg := newSchema(t)
	pool := newPool(t, cfg)
	s, err := postgres.New(t.Context(), pool)
	require.NoError(t, err)
	at := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	first := referral.Redemption{
		AppID: testApp, ReferrerID: uuid.NewString(), Code: "A1B0C2D3E4", NewUserID: uuid.NewString(),
		Email: "n@example.com", EmailKey: "n@example.com", CreatedAt: at,
	}

	// Another session inserts the first redemption and keeps it uncommitted.
	tx, err := pool.Begin(t.Context())
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	_, err = tx.Exec(t.Context(), `INSERT INTO referral_redemptions (app_id, referrer_id, code, new_user_id, email, email_key, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, first.AppID, first.ReferrerID, first.Code, first.NewUserID, first.Email, first.EmailKey, first.CreatedAt)
	require.NoError(t, err)

	type result struct {
		r       referral.Redemption
		created bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		second := first
		second.ReferrerID, second.Code, second.CreatedAt = uuid.NewString(), "B1B0C2D3E4", at.Add(time.Hour)
		r, created, err := s.Redeem(t.Context(), second)
		done <- result{r, created, err}
	}()
	// Commit once Redeem's insert waits for the first one's transaction.
	var tid string
	require.NoError(t, tx.QueryRow(t.Context(), `SELECT txid_current()::text`).Scan(&tid))
	require.Eventually(t, func() bool {
		var waiting bool
		err := pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_locks
			WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted)`, tid).Scan(&waiting)
		return err == nil && waiting
	}, time.Minute, 10*time.Millisecond)
	require.NoError(t, tx.Commit(t.Context()))

	got := <-done
	require.NoError(t, got.err)
	assert.False(t, got.created)
	assert.Equal(t, first, got.r)
}

// BenchmarkStats: the counts of a referrer with n invites to n/2 addresses
// (each twice, a fifth of them sent) and n/10 redemptions, half of them
// from invited addresses, beside 2,000 other referrers with 100 invites and
// 10 redemptions each.
func BenchmarkStats(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("invites=%d", n), func(b *testing.B) {
			s, pool := benchStore(b)
			ctx := context.Background()
			app, ref := testApp, uuid.NewString()
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`INSERT INTO referral_invites (id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
					status, attempts, last_error, next_attempt_at, created_at, updated_at)
				SELECT gen_random_uuid()::text, $1, $2, e, e, 'en', 'A1B0C2D3E4', '',
					CASE WHEN i % 5 = 0 THEN 'sent' ELSE 'pending' END, 1, '', t, t, t
				FROM generate_series(0, $3 - 1) AS i,
					LATERAL (SELECT 'a' || (i % ($3 / 2)) || '@example.com' AS e,
						timestamptz '2030-01-01' + i * interval '1 second' AS t) AS v`, []any{app, ref, n}},
				{`INSERT INTO referral_redemptions (app_id, referrer_id, code, new_user_id, email, email_key, created_at)
				SELECT $1, $2, 'A1B0C2D3E4', gen_random_uuid()::text, e, e, timestamptz '2030-02-01'
				FROM generate_series(0, $3 / 10 - 1) AS i,
					LATERAL (SELECT CASE WHEN i % 2 = 0 THEN 'a' ELSE 'x' END || i || '@example.com' AS e) AS v`, []any{app, ref, n}},
				{`INSERT INTO referral_invites (id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
					status, attempts, last_error, next_attempt_at, created_at, updated_at)
				SELECT gen_random_uuid()::text, $1, 'other-' || r, e, e, 'en', 'B1B0C2D3E4', '', 'sent', 1, '', t, t, t
				FROM generate_series(1, 2000) AS r, generate_series(0, 99) AS i,
					LATERAL (SELECT 'a' || i || '@example.com' AS e, timestamptz '2030-01-01' AS t) AS v`, []any{app}},
				{`INSERT INTO referral_redemptions (app_id, referrer_id, code, new_user_id, email, email_key, created_at)
				SELECT $1, 'other-' || r, 'B1B0C2D3E4', gen_random_uuid()::text, e, e, timestamptz '2030-02-01'
				FROM generate_series(1, 2000) AS r, generate_series(0, 9) AS i,
					LATERAL (SELECT 'a' || i || '@example.com' AS e) AS v`, []any{app}},
			} {
				_, err := pool.Exec(ctx, q.sql, q.args...)
				require.NoError(b, err)
			}
			// As autovacuum would have: fresh statistics and visibility map.
			_, err := pool.Exec(ctx, `VACUUM ANALYZE`)
			require.NoError(b, err)

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
