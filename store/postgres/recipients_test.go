package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/postgres"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestRecipientConformance(t *testing.T) {
	t.Parallel()
	serverURL(t)
	storetest.RunRecipients(t, func(t *testing.T) storetest.Recipients { return newStore(t) })
}

// TestRecipientsAcrossInstances runs the concurrency cases of the
// RecipientStore suite on two stores of one schema, each with its own
// pool, as two app instances would have them.
func TestRecipientsAcrossInstances(t *testing.T) {
	t.Parallel()
	serverURL(t)
	storetest.RunRecipientsShared(t, func(t *testing.T) []storetest.Recipients {
		cfg := newSchema(t)
		var stores []storetest.Recipients
		for range 2 {
			s, err := postgres.New(t.Context(), newPool(t, cfg.Copy()))
			require.NoError(t, err)
			stores = append(stores, s)
		}
		return stores
	})
}
