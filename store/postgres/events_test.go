package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/postgres"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestEventConformance(t *testing.T) {
	t.Parallel()
	serverURL(t)
	open := func(t *testing.T, pool *pgxpool.Config, outbox bool) *postgres.Store {
		s, err := postgres.NewWithOptions(t.Context(), newPool(t, pool.Copy()), postgres.Options{Outbox: outbox})
		require.NoError(t, err)
		return s
	}
	storetest.RunEvents(t, storetest.EventStores{
		New: func(t *testing.T, outbox bool) storetest.Events { return open(t, newSchema(t), outbox) },
		// Two instances, each with its own pool, share the outbox.
		Shared: func(t *testing.T) [2]storetest.Events {
			cfg := newSchema(t)
			return [2]storetest.Events{open(t, cfg, true), open(t, cfg, true)}
		},
	})
}
