package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
)

// benchGoroutines is how many callers each benchmark runs at once, and the
// size of its pool, whatever GOMAXPROCS is.
const benchGoroutines = 16

// benchReferrers spread the invites so that the handler's default limits
// (50 a day, set below) never refuse one: each referrer gets at most a few
// per run.
const benchReferrers = 10_000

// benchLimits are the handler's defaults: every check runs.
var benchLimits = referral.Limits{MaxPerReferrer: 50, Window: 24 * time.Hour, Cooldown: 15 * time.Minute,
	IdempotencyTTL: 24 * time.Hour, MaxPerRecipient: 3, RecipientWindow: 30 * 24 * time.Hour}

// benchStore returns a store on a fresh schema and its pool of
// benchGoroutines connections, all open already.
func benchStore(b *testing.B) (*postgres.Store, *pgxpool.Pool) {
	b.Helper()
	cfg := newSchema(b)
	cfg.MaxConns = benchGoroutines
	pool := newPool(b, cfg)
	s, err := postgres.New(context.Background(), pool)
	require.NoError(b, err)
	conns := make([]*pgxpool.Conn, benchGoroutines)
	for i := range conns {
		conns[i], err = pool.Acquire(context.Background())
		require.NoError(b, err)
	}
	for _, c := range conns {
		c.Release()
	}
	return s, pool
}

// runParallel calls op(i) for i in [0, b.N) from benchGoroutines goroutines
// and reports the throughput as ops/s.
func runParallel(b *testing.B, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range benchGoroutines {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// benchInvite is the i-th invite of a run: a distinct address (with an
// AddressHash, as the handler sets), created one millisecond after the one
// before.
func benchInvite(referrers []string, i int) referral.Invite {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	email := fmt.Sprintf("invitee%d@example.com", i)
	return referral.Invite{
		ID:             uuid.Must(uuid.NewV7()).String(),
		AppID:          testApp,
		ReferrerID:     referrers[i%len(referrers)],
		Email:          email,
		EmailKey:       email,
		Language:       "en",
		Code:           "A1B0C2D3E4",
		IdempotencyKey: fmt.Sprintf("key-%d", i),
		AddressHash:    fmt.Sprintf("%064x", i),
		Status:         referral.StatusPending,
		NextAttemptAt:  at,
		CreatedAt:      at,
		UpdatedAt:      at,
	}
}

func benchReferrerIDs() []string {
	ids := make([]string, benchReferrers)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}

// BenchmarkRecordInvite records invites with every check on, as the
// handler does: the locks, the checks and the insert, committed.
func BenchmarkRecordInvite(b *testing.B) {
	s, _ := benchStore(b)
	referrers := benchReferrerIDs()
	runParallel(b, func(i int) error {
		_, _, err := s.RecordInvite(context.Background(), benchInvite(referrers, i), benchLimits)
		return err
	})
}

// BenchmarkPlainInsert is the floor RecordInvite is measured against:
// single-row autocommit inserts of the same rows into a table shaped like
// invites (same columns and indexes), on a pool of the same size.
func BenchmarkPlainInsert(b *testing.B) {
	_, pool := benchStore(b)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `CREATE TABLE plain_invites (LIKE referral_invites INCLUDING ALL)`)
	require.NoError(b, err)
	referrers := benchReferrerIDs()
	runParallel(b, func(i int) error {
		inv := benchInvite(referrers, i)
		_, err := pool.Exec(ctx, `INSERT INTO plain_invites (id, app_id, referrer_id, email, email_key, language,
			code, idempotency_key, status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at, address_hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			inv.ID, inv.AppID, inv.ReferrerID, inv.Email, inv.EmailKey, inv.Language, inv.Code, inv.IdempotencyKey,
			string(inv.Status), inv.Attempts, inv.LastError, inv.NextAttemptAt, nil, inv.CreatedAt, inv.UpdatedAt, inv.AddressHash)
		return err
	})
}
