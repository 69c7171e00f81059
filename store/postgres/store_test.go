package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
)

func TestMigrationsRunOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	serverURL(t)
	cfg := newSchema(t)
	const instances = 4
	errs := make([]error, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range instances {
		pool := newPool(t, cfg.Copy())
		wg.Go(func() {
			<-start
			_, errs[i] = postgres.New(t.Context(), pool)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	// A later start finds everything applied.
	pool := newPool(t, cfg.Copy())
	_, err := postgres.New(t.Context(), pool)
	require.NoError(t, err)

	rows, err := pool.Query(t.Context(), `SELECT version, name FROM referral_schema_migrations ORDER BY version`)
	require.NoError(t, err)
	type applied struct {
		Version int
		Name    string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[applied])
	require.NoError(t, err)
	assert.Equal(t, []applied{{1, "0001_codes_invites.sql"}, {2, "0002_keys.sql"}, {3, "0003_redemptions.sql"}, {4, "0004_referrer_name.sql"}, {5, "0005_recipients.sql"}, {6, "0006_referrers.sql"}, {7, "0007_events.sql"}, {8, "0008_recipient_index.sql"}, {9, "0009_reclaimed_at.sql"}}, got)
}

func TestOpen(t *testing.T) {
	t.Parallel()
	base := serverURL(t)
	cfg := newSchema(t)
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", cfg.ConnConfig.RuntimeParams["search_path"])
	u.RawQuery = q.Encode()

	s, err := postgres.Open(t.Context(), u.String())
	require.NoError(t, err)
	require.NoError(t, s.Ping(t.Context()))
	code, err := s.EnsureCode(t.Context(), testApp, uuid.NewString(), referral.NewCode)
	require.NoError(t, err)
	// The store is in the schema the URL names.
	var n int
	require.NoError(t, newPool(t, cfg).QueryRow(t.Context(), `SELECT count(*) FROM referral_codes WHERE code = $1`, code).Scan(&n))
	assert.Equal(t, 1, n)

	require.NoError(t, s.Close())
	assert.Error(t, s.Ping(t.Context()), "Close closes the pool Open made")
}

func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, url string }{
		{"not a URL", "postgres://user:s3cr3t-pw@[::1"},
		{"bad port", "postgres://user:s3cr3t-pw@127.0.0.1:notaport/db"},
		{"nothing listens", "postgres://user:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := postgres.Open(t.Context(), c.url)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.NotContains(t, err.Error(), "s3cr3t-pw", "the error must not show the password")
		})
	}
}

func TestNewKeepsTheCallersPool(t *testing.T) {
	t.Parallel()
	serverURL(t)
	pool := newPool(t, newSchema(t))
	s, err := postgres.New(t.Context(), pool)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.NoError(t, pool.Ping(t.Context()), "Close must not close a pool it was given")
	assert.NoError(t, s.Ping(t.Context()))
}

// TestCancelledContext: every method gives up with the context's error.
func TestCancelledContext(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	inv := referral.Invite{ID: uuid.NewString(), AppID: testApp, ReferrerID: uuid.NewString(), Status: referral.StatusPending}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"EnsureCode", func() error { _, err := s.EnsureCode(ctx, testApp, "u", referral.NewCode); return err }},
		{"RecordInvite", func() error { _, _, err := s.RecordInvite(ctx, inv, referral.Limits{}); return err }},
		{"UpdateDelivery", func() error { return s.UpdateDelivery(ctx, inv.ID, referral.Delivery{}) }},
		{"ClaimDue", func() error { _, err := s.ClaimDue(ctx, time.Now(), time.Minute, 1); return err }},
		{"ResolveCode", func() error { _, err := s.ResolveCode(ctx, "A1B0C2D3E4"); return err }},
		{"LookupKey", func() error { _, err := s.LookupKey(ctx, testApp, "p"); return err }},
		{"LookupApp", func() error { _, err := s.LookupApp(ctx, testApp); return err }},
		{"CreateKey", func() error { return s.CreateKey(ctx, auth.Key{AppID: testApp, Prefix: "p", Type: auth.KeyRead}) }},
		{"RevokeKeys", func() error { _, err := s.RevokeKeys(ctx, testApp, "", time.Now()); return err }},
		{"ListKeys", func() error { _, err := s.ListKeys(ctx, testApp); return err }},
		{"SetAppDisabled", func() error { return s.SetAppDisabled(ctx, testApp, true) }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Secret", func() error { _, err := s.Secret(ctx, "k", func() []byte { return []byte{1} }); return err }},
		{"Suppress", func() error { return s.Suppress(ctx, referral.Suppression{AppID: testApp, AddressHash: "h"}) }},
		{"Unsuppress", func() error { return s.Unsuppress(ctx, testApp, "h") }},
		{"Suppression", func() error { _, _, err := s.Suppression(ctx, testApp, "h"); return err }},
		{"InviteRecipient", func() error { _, err := s.InviteRecipient(ctx, inv.ID); return err }},
		{"EraseAddresses", func() error { _, err := s.EraseAddresses(ctx, time.Now(), 1); return err }},
	} {
		assert.ErrorIs(t, c.call(), context.Canceled, c.name)
	}
}

// TestCancelWhileWaiting: a RecordInvite stuck behind a lock returns when its
// context ends, and stores nothing later, whether its pool cancels by
// closing the connection (pgx's default, New here) or by a cancel request
// (Open).
func TestCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	base := serverURL(t)
	for _, c := range []struct {
		name string
		open func(t *testing.T, url string) *postgres.Store
	}{
		{"Open", func(t *testing.T, url string) *postgres.Store {
			s, err := postgres.Open(t.Context(), url)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"New", func(t *testing.T, url string) *postgres.Store {
			cfg, err := pgxpool.ParseConfig(url)
			require.NoError(t, err)
			s, err := postgres.New(t.Context(), newPool(t, cfg))
			require.NoError(t, err)
			return s
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := newSchema(t)
			u, err := url.Parse(base)
			require.NoError(t, err)
			q := u.Query()
			q.Set("search_path", cfg.ConnConfig.RuntimeParams["search_path"])
			// One connection, whose statements the first call prepares:
			// the cancelled call then sends its whole batch before it
			// waits, as it usually does.
			q.Set("pool_max_conns", "1")
			u.RawQuery = q.Encode()
			s := c.open(t, u.String())
			at := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
			newInvite := func() referral.Invite {
				return referral.Invite{
					ID: uuid.NewString(), AppID: testApp, ReferrerID: uuid.NewString(), Email: "a@example.com", EmailKey: "a@example.com",
					Language: "en", Code: "A1B0C2D3E4", Status: referral.StatusPending, NextAttemptAt: at, CreatedAt: at, UpdatedAt: at,
				}
			}
			_, _, err = s.RecordInvite(t.Context(), newInvite(), referral.Limits{})
			require.NoError(t, err)

			// Another session keeps every insert into invites waiting.
			pool := newPool(t, cfg)
			tx, err := pool.Begin(t.Context())
			require.NoError(t, err)
			defer tx.Rollback(context.Background())
			_, err = tx.Exec(t.Context(), `LOCK TABLE referral_invites IN EXCLUSIVE MODE`)
			require.NoError(t, err)

			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, _, err = s.RecordInvite(ctx, newInvite(), referral.Limits{})
			require.Error(t, err)
			assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)

			require.NoError(t, tx.Commit(t.Context()))
			// A statement still waiting for the table would get it first and
			// hold it until its transaction ends: SHARE mode queues behind
			// it, then counts.
			var n int
			require.NoError(t, pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(t.Context(), `LOCK TABLE referral_invites IN SHARE MODE`); err != nil {
					return err
				}
				return tx.QueryRow(t.Context(), `SELECT count(*) FROM referral_invites`).Scan(&n)
			}))
			assert.Equal(t, 1, n, "the cancelled call must store nothing")
		})
	}
}
