//go:build unix

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDevKeyModeUnderPermissiveUmask: the development signing key is
// readable by its owner only, whatever the umask. Not parallel: the umask
// is per process.
func TestDevKeyModeUnderPermissiveUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	c := config{db: filepath.Join(t.TempDir(), "r.db")}
	_, err := loadDevKey(devKeyPath(&c), true)
	require.NoError(t, err)
	fi, err := os.Stat(devKeyPath(&c))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode())
}
