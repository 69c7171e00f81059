package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
)

// These tests make concurrent RecordInvite calls share batches for sure:
// another session locks referral_invites, so that a first call (the
// blocker) waits inside its own transaction with the calls of the test
// queued behind it; once the lock goes, they are recorded in batches.

// batchAt is when the invites of these tests are created.
var batchAt = time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)

// batchInvite is a pending invite of referrer to email, with a hash of the
// address as the handler sets.
func batchInvite(referrer, email string) referral.Invite {
	return referral.Invite{
		ID: uuid.NewString(), AppID: testApp, ReferrerID: referrer, Email: email, EmailKey: email,
		Language: "en", Code: "A1B0C2D3E4", AddressHash: "hash-" + email, Status: referral.StatusPending,
		NextAttemptAt: batchAt, CreatedAt: batchAt, UpdatedAt: batchAt,
	}
}

// tableLock holds referral_invites in EXCLUSIVE mode from another session
// until release: every insert waits.
type tableLock struct {
	t    *testing.T
	pool *pgxpool.Pool
	tx   pgx.Tx
}

func lockInvites(t *testing.T, cfg *pgxpool.Config) *tableLock {
	t.Helper()
	pool := newPool(t, cfg.Copy())
	tx, err := pool.Begin(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	_, err = tx.Exec(t.Context(), `LOCK TABLE referral_invites IN EXCLUSIVE MODE`)
	require.NoError(t, err)
	return &tableLock{t: t, pool: pool, tx: tx}
}

func (l *tableLock) release() { require.NoError(l.t, l.tx.Commit(context.Background())) }

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitersOnTable is how many statements wait for l's lock; query, if
// set, is a pattern their text must match.
func (l *tableLock) waiters(query string) int {
	var n int
	require.NoError(l.t, l.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks AS l
		JOIN pg_stat_activity AS a ON a.pid = l.pid
		WHERE l.relation = 'referral_invites'::regclass AND NOT l.granted AND a.query LIKE $1`, "%"+query+"%").Scan(&n))
	return n
}

// result is what one RecordInvite returned.
type result struct {
	inv      referral.Invite
	replayed bool
	err      error
}

// call runs RecordInvite in a goroutine; its result arrives on the channel.
func call(ctx context.Context, s *postgres.Store, inv referral.Invite, lim referral.Limits) <-chan result {
	ch := make(chan result, 1)
	go func() {
		got, replayed, err := s.RecordInvite(ctx, inv, lim)
		ch <- result{got, replayed, err}
	}()
	return ch
}

// batched records invs at once, queued behind a blocker so that they
// share batches, and returns their results in order.
func batched(t *testing.T, s *postgres.Store, cfg *pgxpool.Config, invs []referral.Invite, lim referral.Limits) []result {
	t.Helper()
	l := lockInvites(t, cfg)
	blocker := call(t.Context(), s, batchInvite(uuid.NewString(), uuid.NewString()+"@example.com"), referral.Limits{})
	waitFor(t, "the blocker to wait for the table", func() bool { return l.waiters("") == 1 })
	chans := make([]<-chan result, len(invs))
	for i, inv := range invs {
		chans[i] = call(t.Context(), s, inv, lim)
	}
	waitFor(t, "the calls to queue", func() bool { return s.InvitesWaiting() == len(invs) })
	l.release()
	require.NoError(t, (<-blocker).err)
	results := make([]result, len(invs))
	for i, ch := range chans {
		results[i] = <-ch
	}
	return results
}

// storeOn returns a store on a fresh schema and the schema's pool
// configuration.
func storeOn(t *testing.T, outbox bool) (*postgres.Store, *pgxpool.Config) {
	t.Helper()
	cfg := newSchema(t)
	s, err := postgres.NewWithOptions(t.Context(), newPool(t, cfg.Copy()), postgres.Options{Outbox: outbox})
	require.NoError(t, err)
	return s, cfg
}

// count runs a count(*) query on cfg's schema.
func count(t *testing.T, cfg *pgxpool.Config, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, newPool(t, cfg.Copy()).QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// TestBatchReferrerLimit: 16 invites of one referrer at once, with room
// for 3: exactly 3 are stored, however they are batched.
func TestBatchReferrerLimit(t *testing.T) {
	t.Parallel()
	serverURL(t)
	s, cfg := storeOn(t, false)
	referrer := uuid.NewString()
	var invs []referral.Invite
	for i := range 16 {
		invs = append(invs, batchInvite(referrer, fmt.Sprintf("limit%d@example.com", i)))
	}
	lim := referral.Limits{MaxPerReferrer: 3, Window: time.Hour}
	stored := 0
	for i, r := range batched(t, s, cfg, invs, lim) {
		if r.err == nil {
			stored++
			continue
		}
		var le *referral.LimitError
		require.ErrorAs(t, r.err, &le, "invite %d", i)
		assert.False(t, le.Cooldown)
		assert.Equal(t, time.Hour, le.RetryAfter, "the invites of the window were created at once")
	}
	assert.Equal(t, 3, stored)
	assert.Equal(t, 3, count(t, cfg, `SELECT count(*) FROM referral_invites WHERE referrer_id = $1`, referrer))
}

// TestBatchSameAddress: concurrent invites of one address obey the
// cooldown (one referrer) and the recipient limit (many referrers).
func TestBatchSameAddress(t *testing.T) {
	t.Parallel()
	serverURL(t)
	s, cfg := storeOn(t, false)

	referrer := uuid.NewString()
	var invs []referral.Invite
	for range 16 {
		invs = append(invs, batchInvite(referrer, "cool@example.com"))
	}
	stored := 0
	for i, r := range batched(t, s, cfg, invs, referral.Limits{Cooldown: time.Hour}) {
		if r.err == nil {
			stored++
			continue
		}
		var le *referral.LimitError
		require.ErrorAs(t, r.err, &le, "invite %d", i)
		assert.True(t, le.Cooldown)
	}
	assert.Equal(t, 1, stored, "one invite within the cooldown")

	invs = nil
	for range 16 {
		invs = append(invs, batchInvite(uuid.NewString(), "popular@example.com"))
	}
	lim := referral.Limits{MaxPerRecipient: 2, RecipientWindow: time.Hour}
	sent, suppressed := 0, 0
	for i, r := range batched(t, s, cfg, invs, lim) {
		require.NoError(t, r.err, "invite %d", i)
		switch r.inv.Status {
		case referral.StatusPending:
			sent++
		case referral.StatusSuppressed:
			suppressed++
			assert.Equal(t, referral.ReasonRecipientLimit, r.inv.LastError)
		}
	}
	assert.Equal(t, 2, sent, "the recipient limit")
	assert.Equal(t, 14, suppressed)
	assert.Equal(t, 2, count(t, cfg, `SELECT count(*) FROM referral_invites WHERE email = 'popular@example.com' AND status = 'pending'`))
	assert.Equal(t, 14, count(t, cfg, `SELECT count(*) FROM referral_invites WHERE email = 'popular@example.com' AND status = 'suppressed'`))
}

// TestBatchMixed: one batch of invites of distinct referrers and
// addresses, each with a different check to pass or fail, gets what each
// would get alone; a suppression records its event in the batch.
func TestBatchMixed(t *testing.T) {
	t.Parallel()
	serverURL(t)
	s, cfg := storeOn(t, true)
	ctx := t.Context()
	lim := referral.Limits{MaxPerReferrer: 2, Window: time.Hour, Cooldown: time.Hour, IdempotencyTTL: time.Hour,
		MaxPerRecipient: 1, RecipientWindow: time.Hour}
	earlier := batchAt.Add(-time.Minute)
	record := func(inv referral.Invite) referral.Invite {
		inv.CreatedAt, inv.UpdatedAt, inv.NextAttemptAt = earlier, earlier, earlier
		got, _, err := s.RecordInvite(ctx, inv, lim)
		require.NoError(t, err)
		return got
	}

	full := uuid.NewString() // has its 2 invites already
	record(batchInvite(full, "full1@example.com"))
	record(batchInvite(full, "full2@example.com"))
	cooling := uuid.NewString() // invited cool@ a minute ago
	record(batchInvite(cooling, "cool@example.com"))
	replayer := uuid.NewString() // sent key-1 a minute ago
	first := batchInvite(replayer, "replay@example.com")
	first.IdempotencyKey = "key-1"
	first = record(first)
	// had its share of invites (another referrer's)
	record(batchInvite(uuid.NewString(), "shared@example.com"))
	require.NoError(t, s.Suppress(ctx, referral.Suppression{AppID: testApp, AddressHash: "hash-gone@example.com",
		Reason: referral.ReasonUnsubscribed, CreatedAt: earlier}))

	fresh := uuid.NewString()
	again := batchInvite(replayer, "other@example.com")
	again.IdempotencyKey = "key-1"
	invs := []referral.Invite{
		batchInvite(full, "full3@example.com"),   // 0: the limit
		batchInvite(cooling, "cool@example.com"), // 1: the cooldown
		again,                                    // 2: a replay
		batchInvite(uuid.NewString(), "shared@example.com"), // 3: the recipient limit
		batchInvite(uuid.NewString(), "gone@example.com"),   // 4: suppressed
		batchInvite(fresh, "new@example.com"),               // 5: stored
		batchInvite(fresh, "new2@example.com"),              // 6: stored too, in another batch
	}
	res := batched(t, s, cfg, invs, lim)

	var le *referral.LimitError
	require.ErrorAs(t, res[0].err, &le)
	assert.False(t, le.Cooldown)
	assert.Equal(t, 59*time.Minute, le.RetryAfter)
	require.ErrorAs(t, res[1].err, &le)
	assert.True(t, le.Cooldown)
	assert.Equal(t, 59*time.Minute, le.RetryAfter)
	require.NoError(t, res[2].err)
	assert.True(t, res[2].replayed)
	assert.Equal(t, first.ID, res[2].inv.ID)
	require.NoError(t, res[3].err)
	assert.Equal(t, referral.StatusSuppressed, res[3].inv.Status)
	assert.Equal(t, referral.ReasonRecipientLimit, res[3].inv.LastError)
	require.NoError(t, res[4].err)
	assert.Equal(t, referral.StatusSuppressed, res[4].inv.Status)
	assert.Equal(t, referral.ReasonUnsubscribed, res[4].inv.LastError)
	require.NoError(t, res[5].err)
	assert.Equal(t, invs[5], res[5].inv)
	require.NoError(t, res[6].err)
	assert.Equal(t, invs[6], res[6].inv)

	for i, want := range []int{0, 0, 0, 1, 1, 1, 1} {
		assert.Equal(t, want, count(t, cfg, `SELECT count(*) FROM referral_invites WHERE id = $1`, invs[i].ID), "invite %d", i)
	}
	assert.Equal(t, 2, count(t, cfg, `SELECT count(*) FROM referral_invites WHERE status = 'suppressed'`))
	// The suppressions' events.
	for _, i := range []int{3, 4} {
		assert.Equal(t, 1, count(t, cfg, `SELECT count(*) FROM referral_events WHERE type = $1 AND invite_id = $2`,
			referral.EventInviteSuppressed, invs[i].ID), "invite %d", i)
	}
}

// TestBatchBadRow: an invite that fails its batch's statement fails
// alone; the others of the batch are stored.
func TestBatchBadRow(t *testing.T) {
	t.Parallel()
	serverURL(t)
	s, cfg := storeOn(t, false)
	var invs []referral.Invite
	for i := range 5 {
		invs = append(invs, batchInvite(uuid.NewString(), fmt.Sprintf("bad%d@example.com", i)))
	}
	invs[2].Status = "bogus" // breaks the table's CHECK
	res := batched(t, s, cfg, invs, referral.Limits{})
	for i, r := range res {
		if i == 2 {
			assert.Error(t, r.err)
			assert.Equal(t, 0, count(t, cfg, `SELECT count(*) FROM referral_invites WHERE id = $1`, invs[i].ID))
			continue
		}
		require.NoError(t, r.err, "invite %d", i)
		assert.Equal(t, 1, count(t, cfg, `SELECT count(*) FROM referral_invites WHERE id = $1`, invs[i].ID), "invite %d", i)
	}
}

// TestBatchCancel: a caller that gives up while its batch waits for a lock
// gets its context's error and leaves nothing, while the others of the
// batch are stored; a batch whose callers all give up stores nothing and
// the store goes on. Both with the pool Open makes (cancel requests) and
// with pgx's default (closing the connection).
func TestBatchCancel(t *testing.T) {
	t.Parallel()
	base := serverURL(t)
	for _, c := range []struct {
		name string
		// cancels: the pool sends a cancel request when a context ends, so
		// the server stops waiting at once (pgx's default closes the
		// connection, which the server notices later).
		cancels bool
		open    func(t *testing.T, cfg *pgxpool.Config) *postgres.Store
	}{
		{"Open", true, func(t *testing.T, cfg *pgxpool.Config) *postgres.Store {
			u, err := url.Parse(base)
			require.NoError(t, err)
			q := u.Query()
			q.Set("search_path", cfg.ConnConfig.RuntimeParams["search_path"])
			u.RawQuery = q.Encode()
			s, err := postgres.Open(t.Context(), u.String())
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"New", false, func(t *testing.T, cfg *pgxpool.Config) *postgres.Store {
			s, err := postgres.New(t.Context(), newPool(t, cfg.Copy()))
			require.NoError(t, err)
			return s
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := newSchema(t)
			s := c.open(t, cfg)

			// One of four gives up.
			l := lockInvites(t, cfg)
			blockerCtx, cancelBlocker := context.WithCancel(t.Context())
			defer cancelBlocker()
			blockerInv := batchInvite(uuid.NewString(), "blocker@example.com")
			blocker := call(blockerCtx, s, blockerInv, referral.Limits{})
			waitFor(t, "the blocker to wait for the table", func() bool { return l.waiters("") == 1 })
			var (
				invs    []referral.Invite
				chans   []<-chan result
				cancels []context.CancelFunc
			)
			for i := range 4 {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				inv := batchInvite(uuid.NewString(), fmt.Sprintf("c%d@example.com", i))
				invs, cancels = append(invs, inv), append(cancels, cancel)
				chans = append(chans, call(ctx, s, inv, referral.Limits{}))
			}
			waitFor(t, "the calls to queue", func() bool { return s.InvitesWaiting() == 4 })
			// The blocker gives up: the four go in a batch, which waits for
			// the table in turn.
			cancelBlocker()
			assert.ErrorIs(t, (<-blocker).err, context.Canceled)
			waitFor(t, "the batch to wait for the table", func() bool { return l.waiters("WITH ORDINALITY") == 1 })
			cancels[1]()
			select {
			case r := <-chans[1]:
				assert.ErrorIs(t, r.err, context.Canceled)
			case <-time.After(5 * time.Second):
				t.Fatal("a caller that gave up still waits for its batch")
			}
			l.release()
			for i, ch := range chans {
				if i == 1 {
					continue
				}
				require.NoError(t, (<-ch).err, "invite %d", i)
			}
			// The blocker's statement may still be running: the SHARE lock
			// waits for its transaction, as in TestCancelWhileWaiting.
			ids := func() []string {
				var ids []string
				require.NoError(t, pgx.BeginFunc(t.Context(), newPool(t, cfg.Copy()), func(tx pgx.Tx) error {
					if _, err := tx.Exec(t.Context(), `LOCK TABLE referral_invites IN SHARE MODE`); err != nil {
						return err
					}
					rows, err := tx.Query(t.Context(), `SELECT id FROM referral_invites ORDER BY id`)
					if err != nil {
						return err
					}
					ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
					return err
				}))
				return ids
			}
			want := []string{invs[0].ID, invs[2].ID, invs[3].ID}
			assert.ElementsMatch(t, want, ids(), "the stored invites: not the blocker's nor the cancelled one")

			// All of a batch give up.
			l = lockInvites(t, cfg)
			blockerCtx, cancelBlocker = context.WithCancel(t.Context())
			defer cancelBlocker()
			blocker = call(blockerCtx, s, batchInvite(uuid.NewString(), "blocker2@example.com"), referral.Limits{})
			waitFor(t, "the blocker to wait for the table", func() bool { return l.waiters("") == 1 })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			chans = chans[:0]
			for i := range 3 {
				chans = append(chans, call(ctx, s, batchInvite(uuid.NewString(), fmt.Sprintf("d%d@example.com", i)), referral.Limits{}))
			}
			waitFor(t, "the calls to queue", func() bool { return s.InvitesWaiting() == 3 })
			cancelBlocker()
			assert.ErrorIs(t, (<-blocker).err, context.Canceled)
			waitFor(t, "the batch to wait for the table", func() bool { return l.waiters("WITH ORDINALITY") == 1 })
			cancel()
			for _, ch := range chans {
				assert.ErrorIs(t, (<-ch).err, context.Canceled)
			}
			if c.cancels {
				waitFor(t, "the batch to stop waiting", func() bool { return l.waiters("") == 0 })
			}
			l.release()
			assert.ElementsMatch(t, want, ids(), "a batch whose callers all gave up stores nothing")

			// The store goes on, alone and in batches.
			_, _, err := s.RecordInvite(t.Context(), batchInvite(uuid.NewString(), "after@example.com"), referral.Limits{})
			require.NoError(t, err)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() {
					_, _, errs[i] = s.RecordInvite(t.Context(), batchInvite(uuid.NewString(), fmt.Sprintf("e%d@example.com", i)), referral.Limits{})
				})
			}
			wg.Wait()
			assert.NoError(t, errors.Join(errs...))
			assert.Len(t, ids(), len(want)+9)
		})
	}
}
