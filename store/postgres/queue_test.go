package postgres_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/postgres"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestQueueConformance(t *testing.T) {
	t.Parallel()
	serverURL(t)
	storetest.RunQueue(t, func(t *testing.T) storetest.Queue { return newStore(t) })
}

// TestQueuePlan: the due-queue index serves Queue's WHERE. The test's
// table is too small for the planner to prefer an index by itself, so
// sequential scans are off for the EXPLAIN.
func TestQueuePlan(t *testing.T) {
	t.Parallel()
	serverURL(t)
	cfg := newSchema(t)
	_, err := postgres.New(t.Context(), newPool(t, cfg.Copy()))
	require.NoError(t, err)
	pool := newPool(t, cfg)
	var plan []string
	require.NoError(t, pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(t.Context(), `EXPLAIN `+postgres.QueueSQL)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}))
	assert.Contains(t, strings.Join(plan, "\n"), "referral_invites_due", "plan:\n%s", strings.Join(plan, "\n"))
}
