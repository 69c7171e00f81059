package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
)

func TestParsePublicKeysPEM(t *testing.T) {
	t.Parallel()
	k := keys()
	got, err := auth.ParsePublicKeysPEM(pemOf(t, verifyKeys()...))
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, "rsa-1", got[0].ID)
	assert.True(t, k.rsa.PublicKey.Equal(got[0].Key))
	assert.True(t, k.ec.PublicKey.Equal(got[1].Key))
	assert.True(t, k.ed.Public().(ed25519.PublicKey).Equal(got[2].Key))

	// Tokens verify with keys read from PEM.
	a := newTokens(t, auth.TokenConfig{Keys: got})
	_, err = a.Authenticate(request(bearer(sign(t, jwt.SigningMethodES256, k.ec, "ec-1", claims()))...), userA)
	assert.NoError(t, err)

	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	got, err = auth.ParsePublicKeysPEM(pkcs1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Empty(t, got[0].ID)

	priv, err := x509.MarshalPKCS8PrivateKey(k.ed)
	require.NoError(t, err)
	for name, in := range map[string][]byte{
		"empty":       nil,
		"not PEM":     []byte("hello"),
		"private key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}),
		"bad DER":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
	} {
		_, err := auth.ParsePublicKeysPEM(in)
		assert.Error(t, err, name)
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	k := keys()
	got, err := auth.ParseJWKS(jwks(t, verifyKeys()...))
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, []string{"rsa-1", "ec-1", "ed-1"}, []string{got[0].ID, got[1].ID, got[2].ID})
	assert.True(t, k.rsa.PublicKey.Equal(got[0].Key.(*rsa.PublicKey)))
	assert.True(t, k.ec.PublicKey.Equal(got[1].Key.(*ecdsa.PublicKey)))
	assert.True(t, k.ed.Public().(ed25519.PublicKey).Equal(got[2].Key))

	mixed := `{"keys":[
		{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},
		{"kty":"EC","kid":"p384","crv":"P-384","x":"AA","y":"AA"},
		{"kty":"oct","kid":"sym","k":"c2VjcmV0"},
		{"kty":"OKP","kid":"x","crv":"X25519","x":"AA"}
	]}`
	_, err = auth.ParseJWKS([]byte(mixed))
	assert.Error(t, err, "a set with no usable key is an error")

	for name, in := range map[string]string{
		"not JSON":        `{`,
		"no keys":         `{"keys":[]}`,
		"bad RSA modulus": `{"keys":[{"kty":"RSA","kid":"a","n":"!!","e":"AQAB"}]}`,
		"short RSA key":   `{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`,
		"EC off curve":    `{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`,
		"short Ed25519":   `{"keys":[{"kty":"OKP","kid":"a","crv":"Ed25519","x":"AAAA"}]}`,
	} {
		_, err := auth.ParseJWKS([]byte(in))
		assert.Error(t, err, name)
	}

	// An HMAC key in a JWKS is never used: only callers configure secrets.
	withOct := `{"keys":[{"kty":"oct","kid":"rsa-1","k":"` + b64([]byte("0123456789abcdef0123456789abcdef")) + `"}]}`
	_, err = auth.ParseJWKS([]byte(withOct))
	assert.Error(t, err)
}

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	k := keys()
	before, err := auth.ParseJWKS(jwks(t,
		auth.VerifyKey{ID: "2025-01", Key: &k.rsa.PublicKey},
		auth.VerifyKey{ID: "2025-06", Key: &k.rsa2.PublicKey}))
	require.NoError(t, err)
	after, err := auth.ParseJWKS(jwks(t,
		auth.VerifyKey{ID: "2025-06", Key: &k.rsa2.PublicKey},
		auth.VerifyKey{ID: "2025-12", Key: &k.ec.PublicKey}))
	require.NoError(t, err)

	old := sign(t, jwt.SigningMethodRS256, k.rsa, "2025-01", claims())
	cur := sign(t, jwt.SigningMethodRS256, k.rsa2, "2025-06", claims())
	next := sign(t, jwt.SigningMethodES256, k.ec, "2025-12", claims())
	tests := []struct {
		name  string
		keys  []auth.VerifyKey
		token string
		ok    bool
	}{
		{"old kid before rotation", before, old, true},
		{"current kid before rotation", before, cur, true},
		{"new kid before rotation", before, next, false},
		{"old kid after rotation", after, old, false},
		{"current kid after rotation", after, cur, true},
		{"new kid after rotation", after, next, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTokens(t, auth.TokenConfig{Keys: tc.keys})
			_, err := a.Authenticate(request(bearer(tc.token)...), userA)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, referral.ErrUnauthenticated)
				assert.Equal(t, invalidToken, challenge(err))
			}
		})
	}
}
