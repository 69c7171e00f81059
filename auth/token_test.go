package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

const (
	noToken      = "Bearer"
	invalidToken = `Bearer error="invalid_token"`
)

// newTokens returns a token authenticator over verifyKeys() at now, with
// cfg's other fields.
func newTokens(t testing.TB, cfg auth.TokenConfig) *auth.Tokens {
	t.Helper()
	cfg.Issuer = issuer
	if cfg.Keys == nil {
		cfg.Keys = verifyKeys()
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	a, err := auth.NewTokens(cfg)
	require.NoError(t, err)
	return a
}

// challenge returns the WWW-Authenticate challenge err carries, if any.
func challenge(err error) string {
	var ch interface{ Challenge() string }
	if errors.As(err, &ch) {
		return ch.Challenge()
	}
	return ""
}

func set(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
func del(k string) func(jwt.MapClaims)        { return func(c jwt.MapClaims) { delete(c, k) } }

func TestTokens(t *testing.T) {
	t.Parallel()
	k := keys()
	a := newTokens(t, auth.TokenConfig{})
	valid := rs256(t, claims())

	// alg confusion: an HS256 token whose HMAC secret is the RSA public
	// key as a verifier that trusted the token's alg would read it.
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	confused := sign(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", claims())
	unsigned := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", claims())
	unsignedNoKid := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims())
	crit := jwt.NewWithClaims(jwt.SigningMethodRS256, claims())
	crit.Header["kid"], crit.Header["crit"] = "rsa-1", []string{"exp-ext"}
	critTok, err := crit.SignedString(k.rsa)
	require.NoError(t, err)

	tests := []struct {
		name      string
		headers   []string
		want      error  // nil: success
		challenge string // WWW-Authenticate, for 401s
		kid       string // for successes
	}{
		{"RS256", bearer(valid), nil, "", "rsa-1"},
		{"ES256", bearer(sign(t, jwt.SigningMethodES256, k.ec, "ec-1", claims())), nil, "", "ec-1"},
		{"EdDSA", bearer(sign(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", claims())), nil, "", "ed-1"},
		{"scheme in lower case", []string{"Authorization", "bearer " + valid}, nil, "", "rsa-1"},
		{"sub in upper case", bearer(rs256(t, claims(set("sub", strings.ToUpper(userA))))), nil, "", "rsa-1"},
		{"aud in upper case", bearer(rs256(t, claims(set("aud", strings.ToUpper(appA))))), nil, "", "rsa-1"},
		{"aud list with a URL", bearer(rs256(t, claims(set("aud", []string{"https://api.example", appA})))), nil, "", "rsa-1"},
		{"no iat", bearer(rs256(t, claims(del("iat")))), nil, "", "rsa-1"},

		{"no Authorization", nil, referral.ErrUnauthenticated, noToken, ""},
		{"Basic scheme", []string{"Authorization", "Basic dXNlcjpwYXNz"}, referral.ErrUnauthenticated, noToken, ""},
		{"empty bearer", []string{"Authorization", "Bearer "}, referral.ErrUnauthenticated, invalidToken, ""},
		{"two Authorization headers", append(bearer(valid), bearer(valid)...), referral.ErrUnauthenticated, invalidToken, ""},
		{"too long", bearer(valid + strings.Repeat("A", auth.MaxAuthorizationBytes)), referral.ErrUnauthenticated, invalidToken, ""},
		{"garbage", bearer("not.a.token"), referral.ErrUnauthenticated, invalidToken, ""},
		{"truncated signature", bearer(valid[:len(valid)-5]), referral.ErrUnauthenticated, invalidToken, ""},
		{"alg none", bearer(unsigned), referral.ErrUnauthenticated, invalidToken, ""},
		{"alg none without kid", bearer(unsignedNoKid), referral.ErrUnauthenticated, invalidToken, ""},
		{"HS256 signed with the RSA public key", bearer(confused), referral.ErrUnauthenticated, invalidToken, ""},
		{"ES256 token naming the RSA kid", bearer(sign(t, jwt.SigningMethodES256, k.ec, "rsa-1", claims())), referral.ErrUnauthenticated, invalidToken, ""},
		{"RS256 token naming the EC kid", bearer(sign(t, jwt.SigningMethodRS256, k.rsa, "ec-1", claims())), referral.ErrUnauthenticated, invalidToken, ""},
		{"signed by an unknown key", bearer(sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa-1", claims())), referral.ErrUnauthenticated, invalidToken, ""},
		{"unknown kid", bearer(sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-9", claims())), referral.ErrUnauthenticated, invalidToken, ""},
		{"no kid with several keys", bearer(sign(t, jwt.SigningMethodRS256, k.rsa, "", claims())), referral.ErrUnauthenticated, invalidToken, ""},
		{"critical header", bearer(critTok), referral.ErrUnauthenticated, invalidToken, ""},
		{"wrong issuer", bearer(rs256(t, claims(set("iss", "https://evil.example")))), referral.ErrUnauthenticated, invalidToken, ""},
		{"no issuer", bearer(rs256(t, claims(del("iss")))), referral.ErrUnauthenticated, invalidToken, ""},
		{"no exp", bearer(rs256(t, claims(del("exp")))), referral.ErrUnauthenticated, invalidToken, ""},
		{"exp not a number", bearer(rs256(t, claims(set("exp", "tomorrow")))), referral.ErrUnauthenticated, invalidToken, ""},
		{"no sub", bearer(rs256(t, claims(del("sub")))), referral.ErrUnauthenticated, invalidToken, ""},
		{"no aud", bearer(rs256(t, claims(del("aud")))), referral.ErrUnauthenticated, invalidToken, ""},
		{"aud not a UUID", bearer(rs256(t, claims(set("aud", "my-app")))), referral.ErrUnauthenticated, invalidToken, ""},
		{"aud naming two apps", bearer(rs256(t, claims(set("aud", []string{appA, appB})))), referral.ErrUnauthenticated, invalidToken, ""},
		{"iat in the future", bearer(rs256(t, claims(set("iat", now.Add(time.Hour).Unix())))), referral.ErrUnauthenticated, invalidToken, ""},

		{"sub is another user", bearer(rs256(t, claims(set("sub", userB)))), referral.ErrForbidden, "", ""},
		{"sub not a UUID", bearer(rs256(t, claims(set("sub", "admin")))), referral.ErrForbidden, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := request(tc.headers...)
			p, err := a.Authenticate(r, userA)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, referral.Principal{AppID: appA, UserID: userA, Method: "access-token", KeyID: tc.kid}, p)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.challenge, challenge(err))
			if tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); len(tok) > 20 {
				assert.NotContains(t, err.Error(), tok[len(tok)-20:], "an error must never hold the token")
			}
		})
	}
}

func TestTokensLeeway(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	tests := []struct {
		name   string
		leeway time.Duration
		claims jwt.MapClaims
		ok     bool
	}{
		// A token is good while now < exp+leeway, and from nbf-leeway on.
		{"expired within the default leeway", 0, claims(set("exp", at(-29*time.Second))), true},
		{"expired just at the default leeway", 0, claims(set("exp", at(-30*time.Second))), false},
		{"not yet valid within the default leeway", 0, claims(set("nbf", at(30*time.Second))), true},
		{"not yet valid past the default leeway", 0, claims(set("nbf", at(31*time.Second))), false},
		{"issued in the future within the leeway", 0, claims(set("iat", at(30*time.Second))), true},
		{"issued in the future past the leeway", 0, claims(set("iat", at(31*time.Second))), false},
		{"custom leeway, inside", 2 * time.Minute, claims(set("exp", at(-119*time.Second))), true},
		{"custom leeway, outside", 2 * time.Minute, claims(set("exp", at(-120*time.Second))), false},
		{"no leeway: expiring now", -1, claims(set("exp", at(0))), false},
		{"no leeway: one second left", -1, claims(set("exp", at(time.Second))), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTokens(t, auth.TokenConfig{Leeway: tc.leeway})
			_, err := a.Authenticate(request(bearer(rs256(t, tc.claims))...), userA)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, referral.ErrUnauthenticated)
				assert.Equal(t, invalidToken, challenge(err))
			}
		})
	}
}

func TestTokensAllowUser(t *testing.T) {
	t.Parallel()
	var seen auth.Claims
	a := newTokens(t, auth.TokenConfig{
		AllowUser: func(r *http.Request, c auth.Claims, userID string) bool {
			seen = c
			return c.Raw["role"] == "tenant-admin" && userID == userB
		},
	})
	admin := rs256(t, claims(set("role", "tenant-admin")))

	p, err := a.Authenticate(request(bearer(admin)...), userB)
	require.NoError(t, err)
	// The request acts for the path's user: the handler refuses a
	// Principal of any other user.
	assert.Equal(t, userB, p.UserID)
	assert.Equal(t, appA, p.AppID)
	assert.Equal(t, userA, seen.Subject)
	assert.Equal(t, issuer, seen.Issuer)
	assert.Equal(t, []string{appA}, seen.Audience)
	assert.Equal(t, "rsa-1", seen.KeyID)
	assert.True(t, seen.ExpiresAt.Equal(now.Add(time.Hour)))

	_, err = a.Authenticate(request(bearer(rs256(t, claims()))...), userB)
	assert.ErrorIs(t, err, referral.ErrForbidden, "the policy refuses a plain user")
}

// The OIDC name claim becomes the Principal's name, for the emails; a
// host's own ids (not UUIDs) are subjects as given.
func TestTokensNameAndOpaqueSubject(t *testing.T) {
	t.Parallel()
	a := newTokens(t, auth.TokenConfig{})
	p, err := a.Authenticate(request(bearer(rs256(t, claims(set("name", "Alice Liddell"))))...), userA)
	require.NoError(t, err)
	assert.Equal(t, "Alice Liddell", p.Name)
	p, err = a.Authenticate(request(bearer(rs256(t, claims(set("name", 7))))...), userA)
	require.NoError(t, err)
	assert.Empty(t, p.Name, "a name that is not a string is none")

	p, err = a.Authenticate(request(bearer(rs256(t, claims(set("sub", "42"))))...), "42")
	require.NoError(t, err)
	assert.Equal(t, "42", p.UserID)
	_, err = a.Authenticate(request(bearer(rs256(t, claims(set("sub", "42"))))...), "43")
	assert.ErrorIs(t, err, referral.ErrForbidden)

	// A host with its own ids may have one shaped like an upper-case UUID:
	// a subject that is the path's user as given is that user.
	upper := strings.ToUpper(userA)
	p, err = a.Authenticate(request(bearer(rs256(t, claims(set("sub", upper))))...), upper)
	require.NoError(t, err)
	assert.Equal(t, upper, p.UserID)
}

func TestTokensCheckApp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := memory.NewKeys()
	_, _, err := auth.CreateKey(ctx, s, appA, auth.KeyWrite)
	require.NoError(t, err)
	_, _, err = auth.CreateKey(ctx, s, appB, auth.KeyWrite)
	require.NoError(t, err)
	require.NoError(t, s.SetAppDisabled(ctx, appB, true))
	unknownApp := "11111111-2222-4333-8444-555555555555"

	tests := []struct {
		name  string
		check func(context.Context, string) error
		aud   string
		want  error
	}{
		{"known app", auth.KnownApps(s), appA, nil},
		{"disabled app", auth.KnownApps(s), appB, referral.ErrForbidden},
		{"unknown app", auth.KnownApps(s), unknownApp, referral.ErrUnauthenticated},
		{"listed client id", auth.ClientIDs(strings.ToUpper(appA)), appA, nil},
		{"token for another app", auth.ClientIDs(appA), appB, referral.ErrUnauthenticated},
		{"failing check", func(context.Context, string) error { return errors.New("db down") }, appA, errors.New("")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTokens(t, auth.TokenConfig{CheckApp: tc.check})
			p, err := a.Authenticate(request(bearer(rs256(t, claims(set("aud", tc.aud))))...), userA)
			switch {
			case tc.want == nil:
				require.NoError(t, err)
				assert.Equal(t, tc.aud, p.AppID)
			case tc.want == referral.ErrForbidden || tc.want == referral.ErrUnauthenticated:
				require.ErrorIs(t, err, tc.want)
				if tc.want == referral.ErrUnauthenticated {
					assert.Equal(t, invalidToken, challenge(err))
				}
			default:
				require.Error(t, err)
				assert.False(t, errors.Is(err, referral.ErrUnauthenticated) || errors.Is(err, referral.ErrForbidden), "a failing check is a 500")
			}
		})
	}
}

func TestTokensHMAC(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("s3cret!!", 4))
	a := newTokens(t, auth.TokenConfig{Keys: []auth.VerifyKey{{ID: "hs", Key: secret}}})
	_, err := a.Authenticate(request(bearer(sign(t, jwt.SigningMethodHS256, secret, "hs", claims()))...), userA)
	require.NoError(t, err, "HS256 works when a secret is configured")
	_, err = a.Authenticate(request(bearer(sign(t, jwt.SigningMethodHS512, secret, "hs", claims()))...), userA)
	assert.ErrorIs(t, err, referral.ErrUnauthenticated, "only HS256 is pinned")
	_, err = a.Authenticate(request(bearer(sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), "hs", claims()))...), userA)
	assert.ErrorIs(t, err, referral.ErrUnauthenticated, "another secret")
}

func TestTokensSingleKey(t *testing.T) {
	t.Parallel()
	k := keys()
	withID := newTokens(t, auth.TokenConfig{Keys: []auth.VerifyKey{{ID: "ed-1", Key: k.ed.Public()}}})
	noID := newTokens(t, auth.TokenConfig{Keys: []auth.VerifyKey{{Key: k.ed.Public()}}})
	tests := []struct {
		name string
		a    *auth.Tokens
		kid  string
		ok   bool
	}{
		{"no kid, the only key", withID, "", true},
		{"matching kid", withID, "ed-1", true},
		{"other kid", withID, "ed-2", false},
		{"key without id, no kid", noID, "", true},
		{"key without id, any kid", noID, "whatever", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := tc.a.Authenticate(request(bearer(sign(t, jwt.SigningMethodEdDSA, k.ed, tc.kid, claims()))...), userA)
			if !tc.ok {
				assert.ErrorIs(t, err, referral.ErrUnauthenticated)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, appA, p.AppID)
		})
	}
}

func TestNewTokensErrors(t *testing.T) {
	t.Parallel()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	k := keys()
	tests := []struct {
		name string
		cfg  auth.TokenConfig
	}{
		{"no issuer", auth.TokenConfig{Keys: verifyKeys()}},
		{"no keys", auth.TokenConfig{Issuer: issuer}},
		{"duplicate ids", auth.TokenConfig{Issuer: issuer, Keys: []auth.VerifyKey{{ID: "a", Key: &k.rsa.PublicKey}, {ID: "a", Key: k.ed.Public()}}}},
		{"two keys without id", auth.TokenConfig{Issuer: issuer, Keys: []auth.VerifyKey{{Key: &k.rsa.PublicKey}, {Key: k.ed.Public()}}}},
		{"RSA 1024", auth.TokenConfig{Issuer: issuer, Keys: []auth.VerifyKey{{Key: &weak.PublicKey}}}},
		{"P-384", auth.TokenConfig{Issuer: issuer, Keys: []auth.VerifyKey{{Key: &p384.PublicKey}}}},
		{"private key", auth.TokenConfig{Issuer: issuer, Keys: []auth.VerifyKey{{Key: k.rsa}}}},
		{"short HMAC secret", auth.TokenConfig{Issuer: issuer, Keys: []auth.VerifyKey{{Key: []byte("short")}}}},
		{"nil RSA key", auth.TokenConfig{Issuer: issuer, Keys: []auth.VerifyKey{{Key: (*rsa.PublicKey)(nil)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.NewTokens(tc.cfg)
			assert.Error(t, err)
		})
	}
}

func TestTokensNil(t *testing.T) {
	t.Parallel()
	var a *auth.Tokens
	_, err := a.Authenticate(request(bearer(rs256(t, claims()))...), userA)
	assert.ErrorIs(t, err, referral.ErrUnauthenticated)
}

func TestNewTokensBrokenKeys(t *testing.T) {
	t.Parallel()
	k := keys()
	for name, key := range map[string]any{
		"EC point missing":   &ecdsa.PublicKey{Curve: elliptic.P256()},
		"EC point off curve": &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)},
		"RSA exponent 1":     &rsa.PublicKey{N: k.rsa.N, E: 1},
		"RSA exponent even":  &rsa.PublicKey{N: k.rsa.N, E: 65536},
		"Ed25519 too short":  ed25519.PublicKey(make([]byte, 16)),
		"Ed25519 private":    k.ed,
		"unsupported string": "-----BEGIN PUBLIC KEY-----",
	} {
		_, err := auth.NewTokens(auth.TokenConfig{Issuer: issuer, Keys: []auth.VerifyKey{{ID: "x", Key: key}}})
		assert.Error(t, err, name)
	}
}
