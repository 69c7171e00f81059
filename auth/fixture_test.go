package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/auth"
)

const (
	issuer = "https://issuer.example"
	appA   = "6f1c2a7e-5b1d-4c3e-9a7b-1d2e3f4a5b6c"
	appB   = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
	userA  = "3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e"
	userB  = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"
)

// now is the fixed clock of the token tests.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testKeys are the signing keys of the token tests, generated once per test
// binary because RSA key generation is slow under the race detector.
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var keys = sync.OnceValue(func() testKeys {
	var k testKeys
	var err error
	must := func(e error) {
		if e != nil {
			panic(e)
		}
	}
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// verifyKeys are the public halves of keys(), by kid.
func verifyKeys() []auth.VerifyKey {
	k := keys()
	return []auth.VerifyKey{
		{ID: "rsa-1", Key: &k.rsa.PublicKey},
		{ID: "ec-1", Key: &k.ec.PublicKey},
		{ID: "ed-1", Key: k.ed.Public()},
	}
}

// claims returns valid claims for userA of appA at now, changed by edits.
func claims(edits ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": issuer,
		"sub": userA,
		"aud": appA,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

// sign signs c with method and key, naming kid unless it is empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func rs256(t testing.TB, c jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodRS256, keys().rsa, "rsa-1", c)
}

// request returns a request with the given headers (name, value pairs;
// a name may repeat).
func request(headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/users/"+userA+"/referral-invites", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwks renders public keys as a JSON Web Key Set.
func jwks(t testing.TB, ks ...auth.VerifyKey) []byte {
	t.Helper()
	var out struct {
		Keys []map[string]string `json:"keys"`
	}
	for _, k := range ks {
		m := map[string]string{"kid": k.ID, "use": "sig"}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			m["kty"], m["alg"] = "RSA", "RS256"
			m["n"], m["e"] = b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
		case *ecdsa.PublicKey:
			b, err := pub.Bytes()
			require.NoError(t, err)
			m["kty"], m["crv"] = "EC", "P-256"
			m["x"], m["y"] = b64(b[1:33]), b64(b[33:])
		case ed25519.PublicKey:
			m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(pub)
		default:
			t.Fatalf("jwks: unexpected key type %T", pub)
		}
		out.Keys = append(out.Keys, m)
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return b
}

// pemOf renders public keys as PKIX PEM blocks with a kid header.
func pemOf(t testing.TB, ks ...auth.VerifyKey) []byte {
	t.Helper()
	var out []byte
	for _, k := range ks {
		der, err := x509.MarshalPKIXPublicKey(k.Key)
		require.NoError(t, err)
		b := &pem.Block{Type: "PUBLIC KEY", Bytes: der}
		if k.ID != "" {
			b.Headers = map[string]string{"kid": k.ID}
		}
		out = append(out, pem.EncodeToMemory(b)...)
	}
	return out
}
