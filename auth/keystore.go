package auth

import (
	"context"
	"errors"
	"time"
)

// Errors of KeyStore and KeyManager implementations.
var (
	// ErrKeyNotFound: no key with that prefix in that app.
	ErrKeyNotFound = errors.New("auth: key not found")
	// ErrAppNotFound: no app with that client id.
	ErrAppNotFound = errors.New("auth: app not found")
	// ErrKeyExists: the app already has a key with that prefix.
	ErrKeyExists = errors.New("auth: key prefix already in use")
)

// KeyStore is what the authenticators read. Implementations must be safe
// for concurrent use. App ids are canonical (lower-case) UUIDs; stores
// compare them and prefixes exactly.
type KeyStore interface {
	// LookupKey returns the key of app appID whose prefix is prefix,
	// revoked or not (the caller checks RevokedAt); ErrKeyNotFound if
	// there is none, also when the app does not exist.
	LookupKey(ctx context.Context, appID, prefix string) (Key, error)

	// LookupApp returns app appID; ErrAppNotFound if there is none.
	LookupApp(ctx context.Context, appID string) (App, error)
}

// KeyManager is what key administration writes (the standalone server's
// "keys" commands). Stores that implement it implement KeyStore too.
type KeyManager interface {
	// CreateKey stores k as given (its Hash, never a plain-text key),
	// creating app k.AppID, enabled, with CreatedAt k.CreatedAt, if it does
	// not exist yet. ErrKeyExists if the app already has a key with
	// k.Prefix; nothing is stored then.
	CreateKey(ctx context.Context, k Key) error

	// RevokeKeys sets RevokedAt to at on the key of app appID with the
	// given prefix, or on every active key of the app if prefix is empty,
	// and returns how many keys it revoked. A key already revoked keeps its
	// first RevokedAt and is not counted. ErrAppNotFound if the app does
	// not exist; ErrKeyNotFound if prefix is set and the app has no such key.
	RevokeKeys(ctx context.Context, appID, prefix string, at time.Time) (int, error)

	// ListKeys returns every key of app appID, revoked ones included,
	// oldest first (ties by prefix). ErrAppNotFound if the app does not
	// exist.
	ListKeys(ctx context.Context, appID string) ([]Key, error)

	// SetAppDisabled disables or re-enables app appID. ErrAppNotFound if
	// the app does not exist.
	SetAppDisabled(ctx context.Context, appID string, disabled bool) error
}
