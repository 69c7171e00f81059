package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// keyFixture is a key store with keys of several kinds.
type keyFixture struct {
	store                                    *memory.Keys
	write, read, revoked, disabled, otherApp string // plain-text keys
	disabledApp                              string
}

func newKeyFixture(t testing.TB) keyFixture {
	t.Helper()
	ctx := context.Background()
	f := keyFixture{store: memory.NewKeys(), disabledApp: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}
	create := func(app string, typ auth.KeyType) string {
		plain, _, err := auth.CreateKey(ctx, f.store, app, typ)
		require.NoError(t, err)
		return plain
	}
	f.write = create(appA, auth.KeyWrite)
	f.read = create(appA, auth.KeyRead)
	f.revoked = create(appA, auth.KeyWrite)
	f.otherApp = create(appB, auth.KeyWrite)
	f.disabled = create(f.disabledApp, auth.KeyWrite)
	prefix, _ := auth.KeyPrefix(f.revoked)
	_, err := f.store.RevokeKeys(ctx, appA, prefix, time.Now())
	require.NoError(t, err)
	require.NoError(t, f.store.SetAppDisabled(ctx, f.disabledApp, true))
	return f
}

func keyHeaders(key, typ, client string) []string {
	return []string{auth.HeaderAPIKey, key, auth.HeaderAPIKeyType, typ, auth.HeaderClientID, client}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	f := newKeyFixture(t)
	a := auth.NewAPIKeys(f.store)
	wrongSecret := f.write[:len(f.write)-4] + "aaaa"
	if wrongSecret == f.write {
		wrongSecret = f.write[:len(f.write)-4] + "bbbb"
	}

	tests := []struct {
		name    string
		headers []string
		want    error // nil: success
	}{
		{"write key", keyHeaders(f.write, "write", appA), nil},
		{"client id in upper case", keyHeaders(f.write, "write", strings.ToUpper(appA)), nil},
		{"type in upper case", keyHeaders(f.write, "WRITE", appA), nil},
		{"no headers", nil, referral.ErrUnauthenticated},
		{"no key", keyHeaders(f.write, "write", appA)[2:], referral.ErrUnauthenticated},
		{"no type", []string{auth.HeaderAPIKey, f.write, auth.HeaderClientID, appA}, referral.ErrUnauthenticated},
		{"no client id", keyHeaders(f.write, "write", appA)[:4], referral.ErrUnauthenticated},
		{"empty key", keyHeaders("", "write", appA), referral.ErrUnauthenticated},
		{"key twice", append(keyHeaders(f.write, "write", appA), auth.HeaderAPIKey, f.write), referral.ErrUnauthenticated},
		{"malformed client id", keyHeaders(f.write, "write", "app-a"), referral.ErrUnauthenticated},
		{"client id without dashes", keyHeaders(f.write, "write", strings.ReplaceAll(appA, "-", "")), referral.ErrUnauthenticated},
		{"unknown client id", keyHeaders(f.write, "write", userB), referral.ErrUnauthenticated},
		{"key of another app", keyHeaders(f.otherApp, "write", appA), referral.ErrUnauthenticated},
		{"wrong secret", keyHeaders(wrongSecret, "write", appA), referral.ErrUnauthenticated},
		{"malformed key", keyHeaders("not-a-key", "write", appA), referral.ErrUnauthenticated},
		{"key with a trailing byte", keyHeaders(f.write+"a", "write", appA), referral.ErrUnauthenticated},
		{"upper-case key", keyHeaders(strings.ToUpper(f.write), "write", appA), referral.ErrUnauthenticated},
		{"revoked key", keyHeaders(f.revoked, "write", appA), referral.ErrUnauthenticated},
		{"write key declared read", keyHeaders(f.write, "read", appA), referral.ErrUnauthenticated},
		{"read key declared write", keyHeaders(f.read, "write", appA), referral.ErrUnauthenticated},
		{"unknown type", keyHeaders(f.write, "admin", appA), referral.ErrUnauthenticated},
		{"disabled app", keyHeaders(f.disabled, "write", f.disabledApp), referral.ErrForbidden},
	}
	var texts = map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(request(tc.headers...), userA)
			if tc.want == nil {
				require.NoError(t, err)
				prefix, _ := auth.KeyPrefix(f.write)
				assert.Equal(t, referral.Principal{AppID: appA, Method: "api-key", KeyID: prefix}, p)
				return
			}
			require.ErrorIs(t, err, tc.want)
			for _, k := range []string{f.write, f.read, f.revoked, f.otherApp, f.disabled} {
				assert.NotContains(t, err.Error(), k[12:], "an error must never hold a key")
			}
			if tc.want == referral.ErrUnauthenticated {
				texts[err.Error()] = true
				assert.False(t, errors.Is(err, referral.ErrForbidden))
			}
		})
	}
	assert.Len(t, texts, 1, "every 401 must read the same, to tell a prober nothing: %v", texts)
}

// failingKeys is a KeyStore whose lookups fail.
type failingKeys struct{ auth.KeyStore }

func (failingKeys) LookupKey(context.Context, string, string) (auth.Key, error) {
	return auth.Key{}, errors.New("disk on fire")
}

func TestAPIKeysStoreFailure(t *testing.T) {
	t.Parallel()
	f := newKeyFixture(t)
	_, err := auth.NewAPIKeys(failingKeys{f.store}).Authenticate(request(keyHeaders(f.write, "write", appA)...), userA)
	require.Error(t, err)
	assert.False(t, errors.Is(err, referral.ErrUnauthenticated) || errors.Is(err, referral.ErrForbidden),
		"a store failure is a 500, not a verdict on the credentials: %v", err)
}

func TestAPIKeysNil(t *testing.T) {
	t.Parallel()
	f := newKeyFixture(t)
	var a *auth.APIKeys
	_, err := a.Authenticate(request(keyHeaders(f.write, "write", appA)...), userA)
	assert.ErrorIs(t, err, referral.ErrUnauthenticated)
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	plain, k, err := auth.NewKey(strings.ToUpper(appA), auth.KeyWrite)
	require.NoError(t, err)
	prefix, ok := auth.KeyPrefix(plain)
	require.True(t, ok, "NewKey's key must parse: %q", plain)
	assert.Equal(t, k.Prefix, prefix)
	assert.Equal(t, appA, k.AppID, "the app id is stored canonical")
	assert.Equal(t, auth.HashKey(plain), k.Hash)
	assert.False(t, k.Revoked())
	assert.Regexp(t, `^rk_[a-z2-7]{8}_[a-z2-7]{52}$`, plain)

	plain2, _, err := auth.NewKey(appA, auth.KeyWrite)
	require.NoError(t, err)
	assert.NotEqual(t, plain, plain2)

	_, _, err = auth.NewKey("nope", auth.KeyWrite)
	assert.Error(t, err)
	_, _, err = auth.NewKey(appA, "admin")
	assert.Error(t, err)
}

func TestCreateKeyNewApp(t *testing.T) {
	t.Parallel()
	s := memory.NewKeys()
	ctx := context.Background()
	plain, k, err := auth.CreateKey(ctx, s, "", auth.KeyRead)
	require.NoError(t, err)
	app, err := s.LookupApp(ctx, k.AppID)
	require.NoError(t, err, "CreateKey with no app makes one")
	assert.False(t, app.Disabled)

	p, err := auth.NewAPIKeys(s).Authenticate(request(keyHeaders(plain, "read", k.AppID)...), userA)
	require.NoError(t, err)
	assert.True(t, p.ReadOnly, "a read key may only read")
	assert.Equal(t, k.AppID, p.AppID)
}

func TestParseKeyType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]auth.KeyType{"read": auth.KeyRead, "Write": auth.KeyWrite} {
		got, err := auth.ParseKeyType(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"", "admin", "writes"} {
		_, err := auth.ParseKeyType(in)
		assert.Error(t, err, in)
	}
}
