package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

// benchGoroutines is how many callers each benchmark runs at once, whatever
// GOMAXPROCS is.
const benchGoroutines = 8

// benchReferrers spread the invites so that the default limits (50 a day)
// never refuse one: each referrer gets at most a few per run.
const benchReferrers = 10_000

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

// benchInvite is the i-th invite of a run: a distinct address, created one
// millisecond after the one before.
func benchInvite(referrers []string, i int) referral.Invite {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	return referral.Invite{
		ID:            uuid.Must(uuid.NewV7()).String(),
		AppID:         testApp,
		ReferrerID:    referrers[i%len(referrers)],
		Email:         fmt.Sprintf("invitee%d@example.com", i),
		EmailKey:      fmt.Sprintf("invitee%d@example.com", i),
		AddressHash:   fmt.Sprintf("%064x", i),
		Language:      "en",
		Code:          "A1B0C2D3E4",
		Status:        referral.StatusPending,
		Attempts:      1,
		NextAttemptAt: at,
		LeaseUntil:    at.Add(30 * time.Second),
		CreatedAt:     at,
		UpdatedAt:     at,
	}
}

func benchReferrerIDs() []string {
	ids := make([]string, benchReferrers)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}

// BenchmarkRecordInvite records invites with the handler's default limits:
// one write transaction with the idempotency, limit, cooldown and recipient
// checks and the insert, each committed with synchronous=FULL.
func BenchmarkRecordInvite(b *testing.B) {
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "referral.db"))
	require.NoError(b, err)
	defer s.Close()
	lim := referral.Limits{MaxPerReferrer: 50, Window: 24 * time.Hour, Cooldown: 15 * time.Minute,
		IdempotencyTTL: 24 * time.Hour, MaxPerRecipient: 3, RecipientWindow: 30 * 24 * time.Hour}
	referrers := benchReferrerIDs()
	runParallel(b, func(i int) error {
		_, _, err := s.RecordInvite(b.Context(), benchInvite(referrers, i), lim)
		return err
	})
}

// BenchmarkPlainInsert is the ceiling BenchmarkRecordInvite is measured
// against: one autocommit INSERT per op into the same invites table (same
// columns and indexes), through the same driver with the same pragmas, and
// no checks, no explicit transaction and no lock of the store's.
func BenchmarkPlainInsert(b *testing.B) {
	path := filepath.Join(b.TempDir(), "referral.db")
	s, err := sqlite.Open(path) // the schema
	require.NoError(b, err)
	require.NoError(b, s.Close())
	// Each connection writes, so each gets SQLite's default cache, as
	// plain inserts would have, rather than DSN's smaller one.
	db, err := sql.Open("sqlite", sqlite.DSN(path)+"&_pragma=cache_size(-2000)")
	require.NoError(b, err)
	defer db.Close()
	db.SetMaxOpenConns(16) // as Open does
	db.SetMaxIdleConns(8)
	referrers := benchReferrerIDs()
	runParallel(b, func(i int) error {
		inv := benchInvite(referrers, i)
		_, err := db.ExecContext(b.Context(), `INSERT INTO referral_invites (id, app_id, referrer_id, email, email_key, language, code,
			idempotency_key, status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			inv.ID, inv.AppID, inv.ReferrerID, inv.Email, inv.EmailKey, inv.Language, inv.Code, inv.IdempotencyKey,
			string(inv.Status), inv.Attempts, inv.LastError, inv.NextAttemptAt.UnixMilli(), inv.LeaseUntil.UnixMilli(),
			inv.CreatedAt.UnixMilli(), inv.UpdatedAt.UnixMilli())
		return err
	})
}

// BenchmarkStillDue asks whether claimed invites are still due, one invite
// a call (Round1, as the worker asked before 5d50697), a round of four
// (Round4, the default Config.Senders, as it asked until dueRounds) or four
// such rounds (Round16, as it asks now); ns/op is per call, ns/invite per
// invite asked for.
func BenchmarkStillDue(b *testing.B) {
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "referral.db"))
	require.NoError(b, err)
	defer s.Close()
	referrers := benchReferrerIDs()
	var claimed []referral.Invite
	for i := range 1024 {
		inv, _, err := s.RecordInvite(b.Context(), benchInvite(referrers, i), referral.Limits{})
		require.NoError(b, err)
		claimed = append(claimed, inv)
	}
	for _, k := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("Round%d", k), func(b *testing.B) {
			for i := 0; b.Loop(); i += k {
				start := i % len(claimed)
				due, err := s.StillDue(b.Context(), claimed[start:start+k])
				if err != nil || !due[0] {
					b.Fatal(due, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k), "ns/invite")
		})
	}
}
