package sqlite

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPageCacheSizes: pooled connections read with a small page cache,
// which WAL empties after every write by another connection anyway; the
// write connection, whose cache lasts, has a larger one.
func TestPageCacheSizes(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := t.Context()
	_, err := s.EnsureCode(ctx, "app", "user", func() string { return "A1B0C2D3E4" }) // a write
	require.NoError(t, err)

	var read int
	require.NoError(t, s.db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&read))
	assert.Equal(t, -readCacheKiB, read, "a pooled connection's")

	w, err := newWconn(s.db)
	require.NoError(t, err)
	defer w.close()
	var write int
	require.NoError(t, w.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&write))
	assert.Equal(t, -writeCacheKiB, write, "the write connection's")
}
