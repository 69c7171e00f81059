package storetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/auth"
)

// Keys is a store of apps and API keys, as RunKeyStore tests it.
type Keys interface {
	auth.KeyStore
	auth.KeyManager
}

// RunKeyStore checks that the stores made by newStore keep every rule of
// auth.KeyStore and auth.KeyManager. Each subtest gets a fresh, empty store
// and runs in parallel.
//
// dump, if not nil, returns everything s holds in a printable form (for
// example every row of its tables); the suite checks that no plain-text key
// or secret ever appears in it.
func RunKeyStore(t *testing.T, newStore func(t *testing.T) Keys, dump func(t *testing.T, s Keys) string) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Keys)
	}{
		{"CreateAndLookup", testKeyCreateLookup},
		{"NotFound", testKeyNotFound},
		{"DuplicatePrefix", testKeyDuplicatePrefix},
		{"RevokeOne", testKeyRevokeOne},
		{"RevokeAll", testKeyRevokeAll},
		{"DisabledApp", testKeyDisabledApp},
		{"AppIsolation", testKeyAppIsolation},
		{"List", testKeyList},
		{"ConcurrentCreate", testKeyConcurrentCreate},
		{"ReturnsCopies", testKeyReturnsCopies},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
	t.Run("HashOnly", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		var plains []string
		app := uuid.NewString()
		for _, typ := range []auth.KeyType{auth.KeyWrite, auth.KeyRead} {
			plain, k := newKey(t, app, typ, keyTime(0))
			require.NoError(t, s.CreateKey(ctx, k))
			plains = append(plains, plain)

			got, err := s.LookupKey(ctx, app, k.Prefix)
			require.NoError(t, err)
			assert.Equal(t, auth.HashKey(plain), got.Hash, "the stored hash is the SHA-256 of the key")
			assert.NotContains(t, fmt.Sprintf("%+v", got), secretOf(plain))
		}
		if dump == nil {
			return
		}
		all := dump(t, s)
		require.NotEmpty(t, all, "dump returned nothing")
		for _, p := range plains {
			assert.NotContains(t, all, p, "the store holds a plain-text key")
			assert.NotContains(t, all, secretOf(p), "the store holds a key's secret")
		}
	})
}

// keyTime is a fixed test time plus n minutes, with millisecond precision
// (what every store keeps).
func keyTime(n int) time.Time {
	return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute)
}

func newKey(t *testing.T, appID string, typ auth.KeyType, at time.Time) (string, auth.Key) {
	t.Helper()
	plain, k, err := auth.NewKey(appID, typ)
	require.NoError(t, err)
	k.CreatedAt = at
	return plain, k
}

// secretOf returns the secret part of a plain-text key: everything after
// the prefix.
func secretOf(plain string) string {
	return plain[strings.LastIndexByte(plain, '_')+1:]
}

// sameKey compares keys with times compared as instants.
func sameKey(t *testing.T, want, got auth.Key) {
	t.Helper()
	assert.Equal(t, want.AppID, got.AppID, "AppID")
	assert.Equal(t, want.Prefix, got.Prefix, "Prefix")
	assert.Equal(t, want.Type, got.Type, "Type")
	assert.Equal(t, want.Hash, got.Hash, "Hash")
	assert.True(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: want %v, got %v", want.CreatedAt, got.CreatedAt)
	assert.True(t, want.RevokedAt.Equal(got.RevokedAt), "RevokedAt: want %v, got %v", want.RevokedAt, got.RevokedAt)
	assert.Equal(t, time.UTC, got.CreatedAt.Location(), "CreatedAt in UTC")
}

func testKeyCreateLookup(t *testing.T, s Keys) {
	ctx := context.Background()
	app := uuid.NewString()
	_, w := newKey(t, app, auth.KeyWrite, keyTime(0))
	_, r := newKey(t, app, auth.KeyRead, keyTime(5))
	require.NoError(t, s.CreateKey(ctx, w))
	require.NoError(t, s.CreateKey(ctx, r))

	for _, want := range []auth.Key{w, r} {
		got, err := s.LookupKey(ctx, app, want.Prefix)
		require.NoError(t, err)
		sameKey(t, want, got)
		assert.False(t, got.Revoked())
	}
	a, err := s.LookupApp(ctx, app)
	require.NoError(t, err)
	assert.Equal(t, app, a.ID)
	assert.False(t, a.Disabled, "a new app is enabled")
	assert.True(t, a.CreatedAt.Equal(keyTime(0)), "the app was created with its first key, got %v", a.CreatedAt)
}

func testKeyNotFound(t *testing.T, s Keys) {
	ctx := context.Background()
	app, other := uuid.NewString(), uuid.NewString()
	_, k := newKey(t, app, auth.KeyWrite, keyTime(0))
	require.NoError(t, s.CreateKey(ctx, k))

	_, err := s.LookupKey(ctx, other, k.Prefix)
	assert.ErrorIs(t, err, auth.ErrKeyNotFound, "unknown app")
	_, err = s.LookupKey(ctx, app, "zzzzzzzz")
	assert.ErrorIs(t, err, auth.ErrKeyNotFound, "unknown prefix")
	_, err = s.LookupApp(ctx, other)
	assert.ErrorIs(t, err, auth.ErrAppNotFound)
	_, err = s.ListKeys(ctx, other)
	assert.ErrorIs(t, err, auth.ErrAppNotFound)
	_, err = s.RevokeKeys(ctx, other, "", keyTime(1))
	assert.ErrorIs(t, err, auth.ErrAppNotFound)
	_, err = s.RevokeKeys(ctx, app, "zzzzzzzz", keyTime(1))
	assert.ErrorIs(t, err, auth.ErrKeyNotFound)
	assert.ErrorIs(t, s.SetAppDisabled(ctx, other, true), auth.ErrAppNotFound)
	_, err = s.LookupApp(ctx, other)
	assert.ErrorIs(t, err, auth.ErrAppNotFound, "failed calls must not create the app")
}

func testKeyDuplicatePrefix(t *testing.T, s Keys) {
	ctx := context.Background()
	app := uuid.NewString()
	_, k := newKey(t, app, auth.KeyWrite, keyTime(0))
	require.NoError(t, s.CreateKey(ctx, k))

	_, dup := newKey(t, app, auth.KeyRead, keyTime(1))
	dup.Prefix = k.Prefix
	require.ErrorIs(t, s.CreateKey(ctx, dup), auth.ErrKeyExists)
	got, err := s.LookupKey(ctx, app, k.Prefix)
	require.NoError(t, err)
	sameKey(t, k, got)
}

func testKeyRevokeOne(t *testing.T, s Keys) {
	ctx := context.Background()
	app := uuid.NewString()
	_, k1 := newKey(t, app, auth.KeyWrite, keyTime(0))
	_, k2 := newKey(t, app, auth.KeyWrite, keyTime(1))
	require.NoError(t, s.CreateKey(ctx, k1))
	require.NoError(t, s.CreateKey(ctx, k2))

	n, err := s.RevokeKeys(ctx, app, k1.Prefix, keyTime(10))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := s.LookupKey(ctx, app, k1.Prefix)
	require.NoError(t, err, "a revoked key is still found, marked revoked")
	assert.True(t, got.Revoked())
	assert.True(t, got.RevokedAt.Equal(keyTime(10)), "RevokedAt: %v", got.RevokedAt)

	n, err = s.RevokeKeys(ctx, app, k1.Prefix, keyTime(20))
	require.NoError(t, err)
	assert.Equal(t, 0, n, "revoking again revokes nothing")
	got, err = s.LookupKey(ctx, app, k1.Prefix)
	require.NoError(t, err)
	assert.True(t, got.RevokedAt.Equal(keyTime(10)), "the first RevokedAt stays, got %v", got.RevokedAt)

	got, err = s.LookupKey(ctx, app, k2.Prefix)
	require.NoError(t, err)
	assert.False(t, got.Revoked(), "the other key stays active")
}

func testKeyRevokeAll(t *testing.T, s Keys) {
	ctx := context.Background()
	app := uuid.NewString()
	var keys []auth.Key
	for i := range 3 {
		_, k := newKey(t, app, auth.KeyWrite, keyTime(i))
		require.NoError(t, s.CreateKey(ctx, k))
		keys = append(keys, k)
	}
	_, err := s.RevokeKeys(ctx, app, keys[0].Prefix, keyTime(5))
	require.NoError(t, err)

	n, err := s.RevokeKeys(ctx, app, "", keyTime(10))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "only the active keys are counted")
	list, err := s.ListKeys(ctx, app)
	require.NoError(t, err)
	require.Len(t, list, 3)
	assert.True(t, list[0].RevokedAt.Equal(keyTime(5)), "an earlier revocation stays, got %v", list[0].RevokedAt)
	for _, k := range list[1:] {
		assert.True(t, k.RevokedAt.Equal(keyTime(10)), "RevokedAt: %v", k.RevokedAt)
	}
}

func testKeyDisabledApp(t *testing.T, s Keys) {
	ctx := context.Background()
	app := uuid.NewString()
	_, k := newKey(t, app, auth.KeyWrite, keyTime(0))
	require.NoError(t, s.CreateKey(ctx, k))

	require.NoError(t, s.SetAppDisabled(ctx, app, true))
	a, err := s.LookupApp(ctx, app)
	require.NoError(t, err)
	assert.True(t, a.Disabled)
	_, err = s.LookupKey(ctx, app, k.Prefix)
	assert.NoError(t, err, "keys of a disabled app are still found; the authenticator refuses them")

	_, k2 := newKey(t, app, auth.KeyWrite, keyTime(1))
	require.NoError(t, s.CreateKey(ctx, k2))
	a, err = s.LookupApp(ctx, app)
	require.NoError(t, err)
	assert.True(t, a.Disabled, "a new key does not re-enable its app")

	require.NoError(t, s.SetAppDisabled(ctx, app, false))
	a, err = s.LookupApp(ctx, app)
	require.NoError(t, err)
	assert.False(t, a.Disabled)
}

func testKeyAppIsolation(t *testing.T, s Keys) {
	ctx := context.Background()
	appA, appB := uuid.NewString(), uuid.NewString()
	_, a := newKey(t, appA, auth.KeyWrite, keyTime(0))
	_, b := newKey(t, appB, auth.KeyRead, keyTime(1))
	b.Prefix = a.Prefix // prefixes are unique per app only
	require.NoError(t, s.CreateKey(ctx, a))
	require.NoError(t, s.CreateKey(ctx, b))

	got, err := s.LookupKey(ctx, appB, a.Prefix)
	require.NoError(t, err)
	sameKey(t, b, got)

	_, err = s.RevokeKeys(ctx, appA, "", keyTime(5))
	require.NoError(t, err)
	require.NoError(t, s.SetAppDisabled(ctx, appA, true))

	got, err = s.LookupKey(ctx, appB, b.Prefix)
	require.NoError(t, err)
	assert.False(t, got.Revoked(), "revoking app A's keys must not touch app B's")
	bApp, err := s.LookupApp(ctx, appB)
	require.NoError(t, err)
	assert.False(t, bApp.Disabled, "disabling app A must not touch app B")
	list, err := s.ListKeys(ctx, appB)
	require.NoError(t, err)
	require.Len(t, list, 1)
	sameKey(t, b, list[0])
}

func testKeyList(t *testing.T, s Keys) {
	ctx := context.Background()
	app := uuid.NewString()
	_, k3 := newKey(t, app, auth.KeyRead, keyTime(2))
	_, k1 := newKey(t, app, auth.KeyWrite, keyTime(0))
	_, k2a := newKey(t, app, auth.KeyWrite, keyTime(1))
	_, k2b := newKey(t, app, auth.KeyWrite, keyTime(1))
	k2a.Prefix, k2b.Prefix = "aaaaaaaa", "bbbbbbbb"
	for _, k := range []auth.Key{k3, k2b, k1, k2a} {
		require.NoError(t, s.CreateKey(ctx, k))
	}
	_, err := s.RevokeKeys(ctx, app, k1.Prefix, keyTime(9))
	require.NoError(t, err)
	k1.RevokedAt = keyTime(9)

	list, err := s.ListKeys(ctx, app)
	require.NoError(t, err)
	want := []auth.Key{k1, k2a, k2b, k3}
	require.Len(t, list, len(want))
	for i := range want {
		sameKey(t, want[i], list[i])
	}
}

func testKeyConcurrentCreate(t *testing.T, s Keys) {
	ctx := context.Background()
	app := uuid.NewString()
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, k, err := auth.NewKey(app, auth.KeyWrite)
			if err != nil {
				errs <- err
				return
			}
			k.CreatedAt = keyTime(i)
			errs <- s.CreateKey(ctx, k)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		// A prefix collision (ErrKeyExists) among 100 random 40-bit
		// prefixes has odds of about 1 in 10^8.
		require.NoError(t, err, "concurrent first keys of one app must all be stored")
	}
	list, err := s.ListKeys(ctx, app)
	require.NoError(t, err)
	assert.Len(t, list, n)
	a, err := s.LookupApp(ctx, app)
	require.NoError(t, err)
	assert.Equal(t, app, a.ID)
}

func testKeyReturnsCopies(t *testing.T, s Keys) {
	ctx := context.Background()
	app := uuid.NewString()
	_, k := newKey(t, app, auth.KeyWrite, keyTime(0))
	want := bytes.Clone(k.Hash)
	require.NoError(t, s.CreateKey(ctx, k))
	k.Hash[0] ^= 0xff // the caller's slice is its own

	got, err := s.LookupKey(ctx, app, k.Prefix)
	require.NoError(t, err)
	got.Hash[1] ^= 0xff
	again, err := s.LookupKey(ctx, app, k.Prefix)
	require.NoError(t, err)
	assert.Equal(t, want, again.Hash, "the store must not share Hash slices with callers")

}
