package mail_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/mail"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rkmail "github.com/referralkit/referralkit/mail"
)

// signedHeaders is the h= every signature must carry: each header twice,
// so that a copy added above the signed one breaks the signature.
var signedHeaders = []string{
	"From", "From", "To", "To", "Subject", "Subject", "Date", "Date", "Message-ID", "Message-ID",
	"MIME-Version", "MIME-Version", "Content-Type", "Content-Type",
	"List-Unsubscribe", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Unsubscribe-Post",
}

// rsaKey is made once: a 2048-bit key takes a while under -race.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func pemBlock(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pemBlock(t, "PRIVATE KEY", der)
}

// keyPEMs returns one PEM of each accepted kind.
func keyPEMs(t *testing.T) map[string][]byte {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return map[string][]byte{
		"rsa-pkcs1":     pemBlock(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey())),
		"rsa-pkcs8":     pkcs8(t, rsaKey()),
		"ed25519-pkcs8": pkcs8(t, ed),
	}
}

// verify checks raw's one DKIM signature against d's published record,
// looked up by a stub resolver that knows only d.TXTName().
func verify(t *testing.T, raw []byte, d *rkmail.DKIM) (*dkim.Verification, error) {
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
	require.Len(t, vs, 1, "one DKIM-Signature")
	return vs[0], vs[0].Err
}

// signed builds m, signs it as the transports do and returns the bytes
// they would deliver.
func signed(t *testing.T, d *rkmail.DKIM, m rkmail.Message) []byte {
	t.Helper()
	g, err := rkmail.Build(m)
	require.NoError(t, err)
	require.NoError(t, d.SignMsg(g))
	var b bytes.Buffer
	_, err = g.WriteTo(&b)
	require.NoError(t, err)
	return b.Bytes()
}

// tags returns the DKIM-Signature's tags, whitespace removed.
func tags(t *testing.T, raw []byte) map[string]string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	sig := msg.Header.Get("DKIM-Signature")
	require.NotEmpty(t, sig)
	out := map[string]string{}
	for _, tag := range strings.Split(sig, ";") {
		k, v, _ := strings.Cut(strings.Join(strings.Fields(tag), ""), "=")
		if k != "" {
			out[k] = v
		}
	}
	return out
}

func TestDKIMSignVerifies(t *testing.T) {
	t.Parallel()
	for name, keyPEM := range keyPEMs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := rkmail.NewDKIM("example.com", "invite2025", keyPEM)
			require.NoError(t, err)
			for _, unsub := range []string{unsubscribeURL, ""} {
				raw := signed(t, d, invite(unsub))
				v, err := verify(t, raw, d)
				require.NoError(t, err, "unsubscribe URL %q", unsub)
				assert.Equal(t, "example.com", v.Domain)
				// Always all nine, also without the List-Unsubscribe headers.
				assert.Equal(t, signedHeaders, v.HeaderKeys)

				tg := tags(t, raw)
				assert.Equal(t, "relaxed/relaxed", tg["c"])
				assert.Equal(t, "invite2025", tg["s"])
				want := "rsa-sha256"
				if strings.HasPrefix(name, "ed25519") {
					want = "ed25519-sha256"
				}
				assert.Equal(t, want, tg["a"])
			}
		})
	}
}

func TestDKIMSignBytes(t *testing.T) {
	t.Parallel()
	d, err := rkmail.NewDKIM("example.com", "s1", keyPEMs(t)["ed25519-pkcs8"])
	require.NoError(t, err)
	raw := render(t, invite(unsubscribeURL))
	out, err := d.Sign(raw)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(out, []byte("DKIM-Signature: ")), "the field is prepended")
	assert.True(t, bytes.HasSuffix(out, raw), "the message follows unchanged")
	_, err = verify(t, out, d)
	require.NoError(t, err)
}

func TestDKIMTamperedMessageFails(t *testing.T) {
	t.Parallel()
	for name, keyPEM := range keyPEMs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := rkmail.NewDKIM("example.com", "s1", keyPEM)
			require.NoError(t, err)
			with := signed(t, d, invite(unsubscribeURL))
			without := signed(t, d, invite(""))
			tests := []struct {
				name      string
				raw       []byte
				old, new  string
				wantValid bool
			}{
				{"subject changed", with, "Subject: Your invitation", "Subject: Your invitatioN", false},
				{"body changed", with, "K7M2-QX9P", "K7M2-QX9Q", false},
				{"unsubscribe URL changed", with, "/v1/unsubscribe/2b7f", "/v1/unsubscribe/2b7e", false},
				{"recipient changed", with, "To: <friend@example.org>", "To: <foe@example.org>", false},
				{"unsubscribe added", without, "Subject:", "List-Unsubscribe: <https://evil.example/u>\r\nSubject:", false},
				// A second copy above the signed one, which many clients show.
				{"second From", with, "From:", "From: Security <security@example.com>\r\nFrom:", false},
				{"second Subject", with, "Subject:", "Subject: Your account is locked\r\nSubject:", false},
				{"second unsubscribe", with, "List-Unsubscribe:", "List-Unsubscribe: <https://evil.example/u>\r\nList-Unsubscribe:", false},
				// Relaxed canonicalization: whitespace changes on the way are harmless.
				{"header whitespace", with, "Subject: Your invitation", "Subject:   Your \t invitation", true},
				{"nothing changed", with, "", "", true},
			}
			for _, tt := range tests {
				raw := tt.raw
				if tt.old != "" {
					require.Contains(t, string(raw), tt.old, tt.name)
					raw = bytes.Replace(raw, []byte(tt.old), []byte(tt.new), 1)
				}
				_, err := verify(t, raw, d)
				if tt.wantValid {
					assert.NoError(t, err, tt.name)
				} else {
					assert.Error(t, err, tt.name)
				}
			}
		})
	}
}

func TestNewDKIMRefuses(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	good := keyPEMs(t)["ed25519-pkcs8"]
	tests := []struct {
		name             string
		domain, selector string
		keyPEM           []byte
	}{
		{"1024-bit RSA, PKCS #1", "example.com", "s1", pemBlock(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))},
		{"1024-bit RSA, PKCS #8", "example.com", "s1", pkcs8(t, small)},
		{"ECDSA", "example.com", "s1", pkcs8(t, ec)},
		{"not PEM", "example.com", "s1", []byte("-----BEGIN nonsense")},
		{"empty", "example.com", "s1", nil},
		{"wrong block", "example.com", "s1", pemBlock(t, "CERTIFICATE", []byte{1, 2, 3})},
		{"garbage in block", "example.com", "s1", pemBlock(t, "PRIVATE KEY", []byte{1, 2, 3})},
		{"public key", "example.com", "s1", pemBlock(t, "PUBLIC KEY", []byte{1, 2, 3})},
		{"no domain", "", "s1", good},
		{"no selector", "example.com", "", good},
		{"domain with space", "example .com", "s1", good},
		{"selector with semicolon", "example.com", "s1; p=x", good},
		{"empty label", "example..com", "s1", good},
	}
	for _, tt := range tests {
		_, err := rkmail.NewDKIM(tt.domain, tt.selector, tt.keyPEM)
		assert.Error(t, err, tt.name)
	}

	// A DKIM built by hand gets the same checks when it signs.
	d := &rkmail.DKIM{Domain: "example.com", Selector: "s1", Signer: small}
	_, err = d.Sign(render(t, invite("")))
	assert.Error(t, err, "1024-bit key")
	assert.Empty(t, d.TXTRecord())
}

func TestDKIMTXTRecord(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	d, err := rkmail.NewDKIM("mail.example.com", "s2025", pkcs8(t, priv))
	require.NoError(t, err)
	assert.Equal(t, "s2025._domainkey.mail.example.com", d.TXTName())
	assert.Equal(t, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub), d.TXTRecord())

	d, err = rkmail.NewDKIM("example.com", "s1", pkcs8(t, rsaKey()))
	require.NoError(t, err)
	rec, ok := strings.CutPrefix(d.TXTRecord(), "v=DKIM1; k=rsa; p=")
	require.True(t, ok, d.TXTRecord())
	der, err := base64.StdEncoding.DecodeString(rec)
	require.NoError(t, err)
	got, err := x509.ParsePKIXPublicKey(der)
	require.NoError(t, err)
	assert.True(t, rsaKey().PublicKey.Equal(got))
}
