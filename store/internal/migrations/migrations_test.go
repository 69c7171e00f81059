package migrations_test

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/internal/migrations"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	ms, err := migrations.Load(fstest.MapFS{
		"m/0010_later.sql": {Data: []byte("B")},
		"m/0002_first.sql": {Data: []byte("A")},
		"m/README.md":      {Data: []byte("not a migration")},
	}, "m")
	require.NoError(t, err)
	assert.Equal(t, []migrations.Migration{{2, "0002_first.sql", "A"}, {10, "0010_later.sql", "B"}}, ms)

	for name, fsys := range map[string]fstest.MapFS{
		"no number":  {"m/first.sql": {}},
		"zero":       {"m/0000_x.sql": {}},
		"no _":       {"m/0001.sql": {}},
		"duplicates": {"m/0001_a.sql": {}, "m/001_b.sql": {}},
	} {
		_, err := migrations.Load(fsys, "m")
		assert.Error(t, err, name)
	}
}
