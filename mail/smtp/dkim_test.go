package smtp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rkmail "github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/mail/smtp/smtptest"
)

func newDKIM(t *testing.T) *rkmail.DKIM {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	d, err := rkmail.NewDKIM("example.com", "s1", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)
	return d
}

// verifyDKIM checks raw's one signature with a stub resolver that knows
// only d's record.
func verifyDKIM(t *testing.T, raw []byte, d *rkmail.DKIM) *dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != d.TXTName() {
				return nil, errors.New("no such record: " + name)
			}
			return []string{d.TXTRecord()}, nil
		},
	})
	require.NoError(t, err)
	require.Len(t, vs, 1)
	require.NoError(t, vs[0].Err)
	return vs[0]
}

func TestSendSignsWithDKIM(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	d := newDKIM(t)
	m := newMailer(t, srv, func(c *smtp.Config) { c.DKIM = d })
	// Two messages, the second over the reused connection: each is signed.
	for _, id := range []string{"0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192", "0195f3a4-7c1e-7d2a-9b3c-4d5e6f708193"} {
		msg := message(id, "Einladung: Grüße für dich")
		msg.UnsubscribeURL = "https://app.example.com/v1/unsubscribe/tok-" + id
		require.NoError(t, m.Send(context.Background(), msg))
	}
	got := srv.Messages()
	require.Len(t, got, 2)
	for _, g := range got {
		v := verifyDKIM(t, g.Data, d)
		assert.Equal(t, "example.com", v.Domain)
		assert.Contains(t, v.HeaderKeys, "List-Unsubscribe")
		assert.Contains(t, v.HeaderKeys, "List-Unsubscribe-Post")
		p, err := smtptest.Parse(g.Data)
		require.NoError(t, err)
		assert.NotEmpty(t, p.Header.Get("List-Unsubscribe"))
	}
	assert.Equal(t, 1, srv.Connections())
}

func TestSendWithoutDKIMIsUnsigned(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, srv, nil)
	require.NoError(t, m.Send(context.Background(), message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192", "Hi")))
	p, err := smtptest.Parse(srv.Messages()[0].Data)
	require.NoError(t, err)
	assert.Empty(t, p.Header.Get("DKIM-Signature"))
}

func TestNewRefusesUnusableDKIM(t *testing.T) {
	t.Parallel()
	_, err := smtp.New(smtp.Config{Host: "localhost", TLS: smtp.NoTLS, DKIM: &rkmail.DKIM{Domain: "example.com", Selector: "s1"}})
	assert.ErrorContains(t, err, "Config.DKIM")
}
