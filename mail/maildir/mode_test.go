//go:build unix

package maildir_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail/maildir"
)

// TestModesUnderPermissiveUmask: the folders are 0700 and the messages
// 0600 even when the process's umask would let others read them: invites
// carry addresses and codes. Not parallel: the umask is per process.
func TestModesUnderPermissiveUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	dir := filepath.Join(t.TempDir(), "deep", "mail")
	d, err := maildir.New(dir)
	require.NoError(t, err)
	require.NoError(t, d.Send(context.Background(), message("0195a1b2-0000-7000-8000-000000000001")))

	for _, sub := range []string{"", "tmp", "new", "cur"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		require.NoError(t, err)
		assert.Equal(t, fs.ModeDir|0o700, fi.Mode(), "folder %q", sub)
	}
	files, err := filepath.Glob(filepath.Join(dir, "new", "*"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	fi, err := os.Stat(files[0])
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode())
}
