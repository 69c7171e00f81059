package maildir_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/maildir"
)

func TestSendSignsWithDKIM(t *testing.T) {
	t.Parallel()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	k, err := mail.NewDKIM("example.com", "s1", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)

	dir := t.TempDir()
	d, err := maildir.New(dir)
	require.NoError(t, err)
	d.DKIM = k
	msg := message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192")
	msg.UnsubscribeURL = "https://app.example.com/v1/unsubscribe/tok"
	require.NoError(t, d.Send(context.Background(), msg))

	names := entries(t, filepath.Join(dir, "new"))
	require.Len(t, names, 1)
	raw, err := os.ReadFile(filepath.Join(dir, "new", names[0]))
	require.NoError(t, err)
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != k.TXTName() {
				return nil, errors.New("no such record: " + name)
			}
			return []string{k.TXTRecord()}, nil
		},
	})
	require.NoError(t, err)
	require.Len(t, vs, 1)
	require.NoError(t, vs[0].Err)
	assert.Contains(t, vs[0].HeaderKeys, "List-Unsubscribe")
}
