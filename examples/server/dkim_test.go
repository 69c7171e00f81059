package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDKIM: with -dkim-domain, -dkim-selector and -dkim-key the built
// server logs the TXT record to publish, and the message in the Maildir
// verifies against that record; a tampered copy does not.
func TestDKIM(t *testing.T) {
	t.Parallel()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))

	bin := buildServer(t)
	s := startServer(t, bin, "-dkim-domain", "acme.example", "-dkim-selector", "ref2026", "-dkim-key", keyFile)
	m := regexp.MustCompile(`DKIM.* name=(\S+) value=("(?:[^"\\]|\\.)*")`).FindStringSubmatch(s.startup)
	require.NotNil(t, m, "no TXT record in the log:\n%s", s.startup)
	name := m[1]
	record, err := strconv.Unquote(m[2])
	require.NoError(t, err)
	assert.Equal(t, "ref2026._domainkey.acme.example", name)
	assert.Regexp(t, `^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]+=*$`, record)

	creds := createKey(t, bin, s.dir)
	require.Equal(t, http.StatusCreated, postInvite(t, s.url, creds, "friend@example.com", "en"))
	raw := waitForRawMail(t, s.dir, 1)[0]
	s.stop(t)

	verify := func(raw []byte) error {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
			LookupTXT: func(domain string) ([]string, error) {
				if domain != name {
					return nil, errors.New("no TXT record at " + domain)
				}
				return []string{record}, nil
			},
		})
		if err != nil {
			return err
		}
		require.Len(t, vs, 1)
		assert.Equal(t, "acme.example", vs[0].Domain)
		return vs[0].Err
	}
	require.NoError(t, verify(raw))
	tampered := bytes.Replace(raw, []byte("friend@example.com"), []byte("fiend@example.com"), 1)
	require.NotEqual(t, raw, tampered)
	assert.Error(t, verify(tampered), "a changed To verifies")
}
