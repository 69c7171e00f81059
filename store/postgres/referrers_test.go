package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/postgres"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestReferrerConformance(t *testing.T) {
	t.Parallel()
	serverURL(t)
	storetest.RunReferrers(t, func(t *testing.T) storetest.Referrers { return newStore(t) })
}

// TestReferrersAcrossInstances runs the concurrency cases of the
// ReferrerStore suite on two stores of one schema, each with its own
// pool, as two app instances would have them.
func TestReferrersAcrossInstances(t *testing.T) {
	t.Parallel()
	serverURL(t)
	storetest.RunReferrersShared(t, func(t *testing.T) []storetest.Referrers {
		cfg := newSchema(t)
		var stores []storetest.Referrers
		for range 2 {
			s, err := postgres.New(t.Context(), newPool(t, cfg.Copy()))
			require.NoError(t, err)
			stores = append(stores, s)
		}
		return stores
	})
}
