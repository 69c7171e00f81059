package maildir_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/maildir"
	"github.com/referralkit/referralkit/mail/smtp/smtptest"
)

func message(id string) mail.Message {
	return mail.Message{
		ID:       id,
		From:     "Referrals <no-reply@example.com>",
		To:       "friend@example.org",
		Date:     time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC),
		Subject:  "Einladung: Grüße für dich",
		Text:     "Dein Code: K7M2-QX9P\n",
		HTML:     "<p>Dein Code: <b>K7M2-QX9P</b></p>",
		Language: "de",
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name()
	}
	return names
}

func TestNewCreatesFolders(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "mail")
	_, err := maildir.New(dir)
	require.NoError(t, err)
	for _, sub := range []string{"tmp", "new", "cur"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		require.NoError(t, err)
		assert.True(t, fi.IsDir())
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), sub)
	}
	// A second New on the same folder is fine.
	_, err = maildir.New(dir)
	require.NoError(t, err)

	_, err = maildir.New("")
	require.Error(t, err)
}

func TestSendWritesOneMessage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := maildir.New(dir)
	require.NoError(t, err)
	msg := message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192")
	require.NoError(t, d.Send(context.Background(), msg))

	assert.Empty(t, entries(t, filepath.Join(dir, "tmp")), "tmp/ is empty after delivery")
	assert.Empty(t, entries(t, filepath.Join(dir, "cur")))
	names := entries(t, filepath.Join(dir, "new"))
	require.Len(t, names, 1)

	path := filepath.Join(dir, "new", names[0])
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	p, err := smtptest.Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, msg.Subject, p.Subject)
	assert.Equal(t, msg.MessageID(), p.Header.Get("Message-ID"))
	assert.Equal(t, msg.Text, p.Text)
	assert.Equal(t, msg.HTML, p.HTML)
	assert.Equal(t, []string{"text/plain", "text/html"}, p.Parts)
}

func TestSendRefusesBadMessage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := maildir.New(dir)
	require.NoError(t, err)
	msg := message("x")
	msg.Subject = "Hi\r\nBcc: victim@example.net"
	err = d.Send(context.Background(), msg)
	require.ErrorIs(t, err, mail.ErrBadMessage)
	require.ErrorIs(t, err, mail.ErrPermanent)
	assert.Empty(t, entries(t, filepath.Join(dir, "new")))
	assert.Empty(t, entries(t, filepath.Join(dir, "tmp")))
}

func TestSendHonoursCancelledContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := maildir.New(dir)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, d.Send(ctx, message("x")), context.Canceled)
	assert.Empty(t, entries(t, filepath.Join(dir, "new")))
}

func TestConcurrentSendsMakeDistinctFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Two Maildirs on one folder stand in for two processes.
	d1, err := maildir.New(dir)
	require.NoError(t, err)
	d2, err := maildir.New(dir)
	require.NoError(t, err)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		for j, d := range []*maildir.Maildir{d1, d2} {
			wg.Go(func() { errs <- d.Send(context.Background(), message(fmt.Sprint(i, "-", j))) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	names := entries(t, filepath.Join(dir, "new"))
	assert.Len(t, names, 2*n)
	ids := map[string]bool{}
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(dir, "new", name))
		require.NoError(t, err)
		p, err := smtptest.Parse(raw)
		require.NoError(t, err)
		ids[p.Header.Get("Message-ID")] = true
	}
	assert.Len(t, ids, 2*n, "every file holds a different message")
	assert.Empty(t, entries(t, filepath.Join(dir, "tmp")))
}
