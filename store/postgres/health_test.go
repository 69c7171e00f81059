package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/postgres"
)

// TestCheckWrite turns a store's only connection read-only, as a standby
// or an operator's default_transaction_read_only would: Ping still
// answers, CheckWrite fails, and passes again once writes are allowed.
func TestCheckWrite(t *testing.T) {
	t.Parallel()
	cfg := newSchema(t)
	cfg.MaxConns = 1 // so that a SET reaches the connection CheckWrite uses
	pool := newPool(t, cfg)
	s, err := postgres.New(t.Context(), pool)
	require.NoError(t, err)
	require.NoError(t, s.CheckWrite(t.Context()), "a writable store")

	_, err = pool.Exec(t.Context(), `SET SESSION default_transaction_read_only = on`)
	require.NoError(t, err)
	require.NoError(t, s.Ping(t.Context()))
	err = s.CheckWrite(t.Context())
	require.Error(t, err, "a read-only session")
	assert.ErrorContains(t, err, "postgres: write check")
	assert.ErrorContains(t, err, "read-only transaction")

	_, err = pool.Exec(t.Context(), `SET SESSION default_transaction_read_only = off`)
	require.NoError(t, err)
	assert.NoError(t, s.CheckWrite(t.Context()), "writable again")

	require.NoError(t, s.Close())
	pool.Close()
	assert.Error(t, s.CheckWrite(t.Context()), "a closed pool")
}
