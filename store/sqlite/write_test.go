package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

// holdWrites makes s's write queue busy with a write that blocks until the
// returned release is called, so that the writes queued meanwhile all go
// into one batch, in the order they were queued, with the blocking one.
// release returns the blocking write's error.
func holdWrites(t *testing.T, s *sqlite.Store) (release func() error) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	var startOnce sync.Once
	done := make(chan error, 1)
	go func() {
		done <- s.Write(context.Background(), func(*sqlite.WriteConn) error {
			startOnce.Do(func() { close(started) }) // a write may run again
			<-unblock
			return nil
		})
	}()
	<-started
	var (
		once sync.Once
		err  error
	)
	release = func() error {
		once.Do(func() {
			close(unblock)
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { release() })
	return release
}

// waitQueued waits until n writes are queued behind the held one.
func waitQueued(t *testing.T, s *sqlite.Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return s.QueuedWrites() == n }, 30*time.Second, time.Millisecond,
		"want %d queued writes", n)
}

// insertApp is a write that adds app id.
func insertApp(id string) func(c *sqlite.WriteConn) error {
	return func(c *sqlite.WriteConn) error {
		_, err := c.ExecContext(context.Background(), `INSERT INTO referral_apps (id, disabled, created_at) VALUES (?, 0, 0)`, id)
		return err
	}
}

// hasApp reports whether app id is stored.
func hasApp(t *testing.T, s *sqlite.Store, id string) bool {
	t.Helper()
	_, err := s.LookupApp(t.Context(), id)
	if err == nil {
		return true
	}
	require.ErrorContains(t, err, "not found")
	return false
}

// TestWriteBatchIsolatesFailures queues writes that fail in different ways
// into one batch with writes that succeed: each failure is its caller's
// alone, and rolls back only that caller's writes.
func TestWriteBatchIsolatesFailures(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	taken := uuid.NewString()
	require.NoError(t, s.Write(t.Context(), insertApp(taken)))
	errBoom := errors.New("boom")
	cases := []struct {
		name    string
		app     string
		fn      func(app string) func(c *sqlite.WriteConn) error
		wantErr string // "" for success
		stored  bool
	}{
		{"succeeds", uuid.NewString(), insertApp, "", true},
		{"fails after writing", uuid.NewString(), func(app string) func(c *sqlite.WriteConn) error {
			return func(c *sqlite.WriteConn) error {
				if err := insertApp(app)(c); err != nil {
					return err
				}
				return errBoom
			}
		}, "boom", false},
		{"constraint error", taken, insertApp, "UNIQUE constraint failed", true},
		{"writes twice, second fails", uuid.NewString(), func(app string) func(c *sqlite.WriteConn) error {
			return func(c *sqlite.WriteConn) error {
				if err := insertApp(app)(c); err != nil {
					return err
				}
				return insertApp(taken)(c)
			}
		}, "UNIQUE constraint failed", false},
		{"succeeds too", uuid.NewString(), insertApp, "", true},
	}
	release := holdWrites(t, s)
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { errs[i] = s.Write(t.Context(), c.fn(c.app)) })
	}

	// One more caller gives up while queued: its write never runs.
	ctx, cancel := context.WithCancel(t.Context())
	var ranCancelled atomic.Bool
	cancelled := make(chan error, 1)
	go func() {
		cancelled <- s.Write(ctx, func(*sqlite.WriteConn) error { ranCancelled.Store(true); return nil })
	}()
	waitQueued(t, s, len(cases)+1)
	cancel()
	require.ErrorIs(t, <-cancelled, context.Canceled)
	waitQueued(t, s, len(cases))

	require.NoError(t, release())
	wg.Wait()
	for i, c := range cases {
		if c.wantErr == "" {
			assert.NoError(t, errs[i], c.name)
		} else {
			assert.ErrorContains(t, errs[i], c.wantErr, c.name)
		}
		assert.Equal(t, c.stored, hasApp(t, s, c.app), c.name)
	}
	assert.ErrorIs(t, errs[1], errBoom)
	assert.False(t, ranCancelled.Load(), "a write whose caller gave up while queued ran")
}

// TestWriteBatchLimits records more invites than the limits allow, all in
// one batch: each caller's checks see the invites recorded before it in
// the same transaction, so the limits hold exactly as they do between
// transactions.
func TestWriteBatchLimits(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	const callers, limit = 40, 5
	lim := referral.Limits{MaxPerReferrer: limit, Window: time.Hour, Cooldown: time.Hour, IdempotencyTTL: time.Hour}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ref, other := uuid.NewString(), uuid.NewString()
	invite := func(ref, email, key string) referral.Invite {
		return referral.Invite{
			ID: uuid.Must(uuid.NewV7()).String(), AppID: testApp, ReferrerID: ref,
			Email: email, EmailKey: email, Language: "en", Code: "A1B0C2D3E4", IdempotencyKey: key,
			Status: referral.StatusPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
		}
	}
	type result struct {
		inv      referral.Invite
		replayed bool
		err      error
	}
	var (
		wg      sync.WaitGroup
		limited = make([]result, callers) // ref: distinct addresses, past the limit
		cooled  = make([]result, callers) // other: one address, no key
		keyed   = make([]result, callers) // other: one idempotency key, distinct addresses
	)
	release := holdWrites(t, s)
	for i := range callers {
		wg.Go(func() {
			r := &limited[i]
			r.inv, r.replayed, r.err = s.RecordInvite(t.Context(), invite(ref, uuid.NewString()+"@example.com", ""), lim)
		})
		wg.Go(func() {
			r := &cooled[i]
			r.inv, r.replayed, r.err = s.RecordInvite(t.Context(), invite(other, "same@example.com", ""), lim)
		})
		wg.Go(func() {
			r := &keyed[i]
			r.inv, r.replayed, r.err = s.RecordInvite(t.Context(), invite(other, uuid.NewString()+"@example.com", "key-1"), lim)
		})
	}
	waitQueued(t, s, 3*callers)
	require.NoError(t, release())
	wg.Wait()

	count := func(rs []result) (ok, replayed, limitErrs, cooldownErrs int) {
		for _, r := range rs {
			var le *referral.LimitError
			switch {
			case r.err == nil && r.replayed:
				replayed++
			case r.err == nil:
				ok++
			case errors.As(r.err, &le) && le.Cooldown:
				cooldownErrs++
			case errors.As(r.err, &le):
				limitErrs++
			default:
				t.Errorf("unexpected error: %v", r.err)
			}
		}
		return ok, replayed, limitErrs, cooldownErrs
	}
	ok, replayed, limitErrs, _ := count(limited)
	assert.Equal(t, limit, ok, "ref: recorded")
	assert.Zero(t, replayed)
	assert.Equal(t, callers-limit, limitErrs, "ref: refused by the limit")

	// other's two groups stay under its limit: one invite each is
	// recorded, the others wait for the cooldown or replay.
	okC, _, limitC, coolC := count(cooled)
	okK, replayedK, limitK, _ := count(keyed)
	assert.Equal(t, 1, okC, "one same-address invite is recorded")
	assert.Zero(t, limitC)
	assert.Equal(t, callers-1, coolC, "the rest wait for the cooldown")
	assert.Equal(t, 1, okK, "one keyed invite is recorded")
	assert.Equal(t, callers-1, replayedK, "the rest replay it")
	assert.Zero(t, limitK)
	var first referral.Invite
	for _, r := range keyed {
		if r.err == nil && !r.replayed {
			first = r.inv
		}
	}
	for _, r := range keyed {
		if r.replayed {
			assert.Equal(t, first.ID, r.inv.ID, "a replay returns the recorded invite")
		}
	}

	invites, err := s.Invites(t.Context())
	require.NoError(t, err)
	assert.Len(t, invites, limit+okC+okK)
}

// TestWriteBatchCommitFails makes a batch's COMMIT fail (a foreign key
// checked only at COMMIT): every caller of the batch gets the error and
// nothing of the batch is stored.
func TestWriteBatchCommitFails(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	release := holdWrites(t, s)
	apps := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	errs := make([]error, len(apps)+1)
	var wg sync.WaitGroup
	for i, app := range apps {
		wg.Go(func() { errs[i] = s.Write(t.Context(), insertApp(app)) })
	}
	wg.Go(func() {
		errs[len(apps)] = s.Write(t.Context(), func(c *sqlite.WriteConn) error {
			if _, err := c.ExecContext(t.Context(), `PRAGMA defer_foreign_keys = ON`); err != nil {
				return err
			}
			_, err := c.ExecContext(t.Context(), `INSERT INTO referral_api_keys (app_id, prefix, type, hash, created_at)
				VALUES ('no such app', 'p', 'read', zeroblob(32), 0)`)
			return err
		})
	})
	waitQueued(t, s, len(apps)+1)
	assert.ErrorContains(t, release(), "FOREIGN KEY constraint failed", "the blocking write")
	wg.Wait()
	for i, err := range errs {
		assert.ErrorContains(t, err, "FOREIGN KEY constraint failed", "caller %d", i)
	}
	for _, app := range apps {
		assert.False(t, hasApp(t, s, app), "a write of the failed batch is stored")
	}
	// The store goes on.
	app := uuid.NewString()
	require.NoError(t, s.Write(t.Context(), insertApp(app)))
	assert.True(t, hasApp(t, s, app))
}

// TestWriteBatchRerunsAfterRollback has one write end the whole
// transaction, as SQLite does by itself on some errors: that write fails,
// and the writes before and after it in the batch run again in a new
// transaction and are stored.
func TestWriteBatchRerunsAfterRollback(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	release := holdWrites(t, s)
	before, after := uuid.NewString(), uuid.NewString()
	var runsBefore atomic.Int32
	var wg sync.WaitGroup
	var errBefore, errRollback, errAfter error
	// Queued one at a time, so that the batch runs them in this order.
	wg.Go(func() {
		errBefore = s.Write(t.Context(), func(c *sqlite.WriteConn) error {
			runsBefore.Add(1)
			return insertApp(before)(c)
		})
	})
	waitQueued(t, s, 1)
	wg.Go(func() {
		errRollback = s.Write(t.Context(), func(c *sqlite.WriteConn) error {
			if _, err := c.ExecContext(t.Context(), `ROLLBACK`); err != nil {
				return err
			}
			return errors.New("rolled back")
		})
	})
	waitQueued(t, s, 2)
	wg.Go(func() { errAfter = s.Write(t.Context(), insertApp(after)) })
	waitQueued(t, s, 3)
	require.NoError(t, release())
	wg.Wait()

	require.NoError(t, errBefore)
	require.NoError(t, errAfter)
	require.EqualError(t, errRollback, "rolled back")
	assert.True(t, hasApp(t, s, before))
	assert.True(t, hasApp(t, s, after))
	assert.Equal(t, int32(2), runsBefore.Load(), "the write before ran once in the lost transaction, once in the new one")
}

// TestWriteReturnsItsConnection uses a pool of one connection: after a
// write, reads still get it, so the write queue does not keep its
// connection once nobody waits to write.
func TestWriteReturnsItsConnection(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "referral.db")))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	s, err := sqlite.New(db)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		user := uuid.NewString()
		code, err := s.EnsureCode(ctx, testApp, user, func() string { return referral.NewCode() })
		require.NoError(t, err, "round %d", i)
		owner, err := s.ResolveCode(ctx, code)
		require.NoError(t, err, "round %d", i)
		assert.Equal(t, user, owner.UserID)
	}
}

// TestWriteKeepsItsConnection: with a pool that has room for reads besides
// it (Open's), the write queue keeps its connection, statements prepared,
// between writes; with a pool of one it gives it back.
func TestWriteKeepsItsConnection(t *testing.T) {
	t.Parallel()
	for _, pool := range []int{1, 16} {
		db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "referral.db")))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		db.SetMaxOpenConns(pool)
		s, err := sqlite.New(db)
		require.NoError(t, err)
		_, err = s.EnsureCode(t.Context(), testApp, uuid.NewString(), func() string { return referral.NewCode() })
		require.NoError(t, err)
		held := 0
		if pool > 1 {
			held = 1
		}
		assert.Equal(t, held, db.Stats().InUse, "pool of %d", pool)
		require.NoError(t, s.Close())
		assert.Zero(t, db.Stats().InUse, "Close gives it back")
	}
}

// recovered calls fn and returns what it panicked with, nil if it did not.
func recovered(fn func()) (p any) {
	defer func() { p = recover() }()
	fn()
	return nil
}

// TestWritePanic has a write panic, alone and then inside a batch: the
// panic reaches that write's caller, its work is rolled back, the other
// writes of its batch are stored, and the store and the file's write lock
// stay free for the next write, this process's or another's.
func TestWritePanic(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "referral.db")
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	panicking := func(app string) func(c *sqlite.WriteConn) error {
		return func(c *sqlite.WriteConn) error {
			if err := insertApp(app)(c); err != nil {
				return err
			}
			panic("boom")
		}
	}
	checkPanic := func(p any) {
		t.Helper()
		err, ok := p.(error)
		if assert.True(t, ok, "the write panicked with %v, not an error", p) {
			assert.ErrorContains(t, err, "a write panicked: boom")
		}
	}
	// writable checks that a write of s and a write transaction of
	// another connection pool on the file, as another process has, both
	// get through.
	other := rawDB(t, path)
	writable := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		app := uuid.NewString()
		require.NoError(t, s.Write(ctx, insertApp(app)), "the next write")
		assert.True(t, hasApp(t, s, app))
		c, err := other.Conn(ctx)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.ExecContext(ctx, "PRAGMA busy_timeout = 1000")
		require.NoError(t, err)
		_, err = c.ExecContext(ctx, "BEGIN IMMEDIATE")
		require.NoError(t, err, "another process takes the write lock")
		_, err = c.ExecContext(ctx, "ROLLBACK")
		require.NoError(t, err)
	}

	lost := uuid.NewString()
	checkPanic(recovered(func() { s.Write(t.Context(), panicking(lost)) }))
	assert.False(t, hasApp(t, s, lost), "the panicking write is stored")
	writable()

	// In a batch: the held write leads it, so the panicking write's fn
	// runs in another goroutine than its caller's.
	release := holdWrites(t, s)
	before, after := uuid.NewString(), uuid.NewString()
	lost = uuid.NewString()
	var (
		wg                  sync.WaitGroup
		errBefore, errAfter error
		p                   any
	)
	wg.Go(func() { errBefore = s.Write(t.Context(), insertApp(before)) })
	waitQueued(t, s, 1)
	wg.Go(func() { p = recovered(func() { s.Write(t.Context(), panicking(lost)) }) })
	waitQueued(t, s, 2)
	wg.Go(func() { errAfter = s.Write(t.Context(), insertApp(after)) })
	waitQueued(t, s, 3)
	require.NoError(t, release())
	wg.Wait()
	checkPanic(p)
	assert.NoError(t, errBefore)
	assert.NoError(t, errAfter)
	assert.True(t, hasApp(t, s, before), "a write before the panicking one is lost")
	assert.True(t, hasApp(t, s, after), "a write after the panicking one is lost")
	assert.False(t, hasApp(t, s, lost), "the panicking write is stored")
	writable()
}
