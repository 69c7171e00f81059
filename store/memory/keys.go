package memory

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/referralkit/referralkit/auth"
)

// Keys is an in-memory auth.KeyStore and auth.KeyManager: apps and the
// hashes of their API keys. The zero value is not ready: use NewKeys.
type Keys struct {
	mu   sync.Mutex
	apps map[string]keyApp // values, not pointers, so that %#v shows all
}

type keyApp struct {
	app  auth.App
	keys map[string]auth.Key // by prefix
}

var (
	_ auth.KeyStore   = (*Keys)(nil)
	_ auth.KeyManager = (*Keys)(nil)
)

// NewKeys returns an empty key store.
func NewKeys() *Keys {
	return &Keys{apps: map[string]keyApp{}}
}

// cloneKey copies k so that callers never share its Hash with the store.
func cloneKey(k auth.Key) auth.Key {
	k.Hash = bytes.Clone(k.Hash)
	return k
}

// LookupKey returns the key of appID with prefix; see [auth.KeyStore].
func (s *Keys) LookupKey(ctx context.Context, appID, prefix string) (auth.Key, error) {
	if err := ctx.Err(); err != nil {
		return auth.Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		return auth.Key{}, auth.ErrKeyNotFound
	}
	k, ok := a.keys[prefix]
	if !ok {
		return auth.Key{}, auth.ErrKeyNotFound
	}
	return cloneKey(k), nil
}

// LookupApp returns appID's app; see [auth.KeyStore].
func (s *Keys) LookupApp(ctx context.Context, appID string) (auth.App, error) {
	if err := ctx.Err(); err != nil {
		return auth.App{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		return auth.App{}, auth.ErrAppNotFound
	}
	return a.app, nil
}

// CreateKey stores k, creating its app if needed; see [auth.KeyManager].
func (s *Keys) CreateKey(ctx context.Context, k auth.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[k.AppID]
	if !ok {
		a = keyApp{app: auth.App{ID: k.AppID, CreatedAt: k.CreatedAt.UTC()}, keys: map[string]auth.Key{}}
		s.apps[k.AppID] = a
	}
	if _, taken := a.keys[k.Prefix]; taken {
		return auth.ErrKeyExists
	}
	k = cloneKey(k)
	k.CreatedAt = k.CreatedAt.UTC()
	if !k.RevokedAt.IsZero() {
		k.RevokedAt = k.RevokedAt.UTC()
	}
	a.keys[k.Prefix] = k
	return nil
}

// RevokeKeys revokes appID's key with prefix, or all its keys for an
// empty prefix, at at, and returns how many; see [auth.KeyManager].
func (s *Keys) RevokeKeys(ctx context.Context, appID, prefix string, at time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		return 0, auth.ErrAppNotFound
	}
	if prefix != "" {
		if _, ok := a.keys[prefix]; !ok {
			return 0, auth.ErrKeyNotFound
		}
	}
	n := 0
	for p, k := range a.keys {
		if (prefix == "" || p == prefix) && !k.Revoked() {
			k.RevokedAt = at.UTC()
			a.keys[p] = k
			n++
		}
	}
	return n, nil
}

// ListKeys returns appID's keys, oldest first; see [auth.KeyManager].
func (s *Keys) ListKeys(ctx context.Context, appID string) ([]auth.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		return nil, auth.ErrAppNotFound
	}
	out := make([]auth.Key, 0, len(a.keys))
	for _, k := range a.keys {
		out = append(out, cloneKey(k))
	}
	slices.SortFunc(out, func(x, y auth.Key) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.Prefix, y.Prefix))
	})
	return out, nil
}

// SetAppDisabled disables or enables appID; see [auth.KeyManager].
func (s *Keys) SetAppDisabled(ctx context.Context, appID string, disabled bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		return auth.ErrAppNotFound
	}
	a.app.Disabled = disabled
	s.apps[appID] = a
	return nil
}
