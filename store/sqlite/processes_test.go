package sqlite_test

import (
	"database/sql"
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

// TestLimitAcrossProcesses races two stores on one file, each with its own
// connection pool and write lock as two processes would have: the limit
// still lets exactly its number through, and no caller sees SQLITE_BUSY.
func TestLimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "referral.db")
	var stores [2]*sqlite.Store
	for i := range stores {
		db, err := sql.Open("sqlite", sqlite.DSN(path))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		stores[i], err = sqlite.New(db)
		require.NoError(t, err)
	}
	const callers, limit = 100, 10
	app, ref := uuid.NewString(), uuid.NewString()
	lim := referral.Limits{MaxPerReferrer: limit, Window: time.Hour, Cooldown: time.Hour, IdempotencyTTL: time.Hour}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			inv := referral.Invite{
				ID: uuid.Must(uuid.NewV7()).String(), AppID: app, ReferrerID: ref,
				Email: uuid.NewString() + "@example.com", Language: "en", Code: "A1B0C2D3E4",
				Status: referral.StatusPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
			}
			inv.EmailKey = inv.Email
			_, _, errs[i] = stores[i%2].RecordInvite(t.Context(), inv, lim)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		var le *referral.LimitError
		assert.ErrorAs(t, err, &le)
	}
	assert.Equal(t, limit, ok)
	invites, err := stores[0].Invites(t.Context())
	require.NoError(t, err)
	assert.Len(t, invites, limit)
}

// TestRecipientsAcrossProcesses runs the concurrency cases of the
// RecipientStore suite on two stores of one file, each with its own pool
// and write queue, as two processes would have them.
func TestRecipientsAcrossProcesses(t *testing.T) {
	storetest.RunRecipientsShared(t, func(t *testing.T) []storetest.Recipients {
		path := filepath.Join(t.TempDir(), "referral.db")
		var stores []storetest.Recipients
		for range 2 {
			db, err := sql.Open("sqlite", sqlite.DSN(path))
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			s, err := sqlite.New(db)
			require.NoError(t, err)
			stores = append(stores, s)
		}
		return stores
	})
}
