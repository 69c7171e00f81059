package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
	"github.com/referralkit/referralkit/store/storetest"
)

// openStore opens a store on a fresh file that the test closes.
func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "referral.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) referral.CodeStore { return openStore(t) })
}
