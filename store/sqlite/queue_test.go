package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/sqlite"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestQueueConformance(t *testing.T) {
	storetest.RunQueue(t, func(t *testing.T) storetest.Queue { return openStore(t) })
}

// TestQueuePlan: Queue reads the pending invites through the due-queue
// index, not the whole table.
func TestQueuePlan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "referral.db")
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })

	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+sqlite.QueueSQL)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	require.Len(t, plan, 1, "plan: %q", plan)
	assert.True(t, strings.HasPrefix(plan[0], "SCAN referral_invites USING INDEX referral_invites_due"), "plan: %q", plan)
}
