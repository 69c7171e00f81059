package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/referralkit/referralkit/referral"
)

// Headers of the API-key method, as userdocks clients send them.
const (
	HeaderAPIKey     = "X-API-KEY"
	HeaderAPIKeyType = "X-API-KEY-TYPE"
	HeaderClientID   = "X-CLIENT-ID"
)

// Key format: "rk_" + 8-character public prefix + "_" + 52-character secret,
// both lower-case base32 of crypto/rand bytes (40 and 256 bits). The prefix
// lets a store find the key without the secret; it is shown in key lists.
const (
	keyTag       = "rk_"
	prefixBytes  = 5  // 8 base32 characters
	secretBytes  = 32 // 256 bits; anything from 128 bits on is unguessable
	prefixLen    = 8
	secretLen    = 52
	plaintextLen = len(keyTag) + prefixLen + 1 + secretLen
)

// b32 encodes prefixes and secrets: lower case, no padding, nothing that
// needs escaping in a header, a shell or a URL.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// KeyType says what a key may do.
type KeyType string

const (
	// KeyRead keys may only read: their Principal is ReadOnly, which the
	// handler refuses (403) on every route that sends or changes.
	KeyRead KeyType = "read"
	// KeyWrite keys may send invites.
	KeyWrite KeyType = "write"
)

// ParseKeyType returns the KeyType named by s ("read" or "write", any case).
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(s) {
	case string(KeyRead):
		return KeyRead, nil
	case string(KeyWrite):
		return KeyWrite, nil
	}
	return "", fmt.Errorf("auth: key type must be %q or %q", KeyRead, KeyWrite)
}

// Key is an API key as stored: its public prefix and the hash of the whole
// key, never the key itself.
type Key struct {
	// AppID is the client id of the app the key belongs to, a canonical
	// (lower-case) UUID.
	AppID string
	// Prefix is the key's public id: unique within its app, not a secret.
	Prefix string
	// Type is what the key may do.
	Type KeyType
	// Hash is the SHA-256 of the whole key (prefix and secret).
	Hash []byte
	// CreatedAt is when the key was made (UTC).
	CreatedAt time.Time
	// RevokedAt is when the key was revoked; zero while it is active.
	RevokedAt time.Time
}

// Revoked reports whether k has been revoked.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// App is a client application: the owner of keys, and the audience of
// access tokens.
type App struct {
	// ID is the client id, a canonical (lower-case) UUID.
	ID string
	// Disabled apps are refused (403) whatever their credentials.
	Disabled bool
	// CreatedAt is when the app was first stored (UTC).
	CreatedAt time.Time
}

// NewKey makes a random key of type typ for app appID (a UUID, any case).
// It returns the key in plain text, to be shown once and then forgotten,
// and the Key to store, which holds only its hash.
func NewKey(appID string, typ KeyType) (plaintext string, k Key, err error) {
	id, ok := referral.CanonicalUUID(appID)
	if !ok {
		return "", Key{}, errors.New("auth: app id must be a UUID")
	}
	if typ != KeyRead && typ != KeyWrite {
		return "", Key{}, fmt.Errorf("auth: key type must be %q or %q", KeyRead, KeyWrite)
	}
	var raw [prefixBytes + secretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Key{}, fmt.Errorf("auth: reading random bytes: %w", err)
	}
	prefix := b32.EncodeToString(raw[:prefixBytes])
	plaintext = keyTag + prefix + "_" + b32.EncodeToString(raw[prefixBytes:])
	return plaintext, Key{
		AppID:     id,
		Prefix:    prefix,
		Type:      typ,
		Hash:      HashKey(plaintext),
		CreatedAt: time.Now().UTC(),
	}, nil
}

// HashKey returns the SHA-256 of a plain-text key, the form in which keys
// are stored and compared. A fast hash is right here, unlike for passwords:
// a key carries 256 random bits, so a stolen hash cannot be reversed by
// guessing, and a slow KDF would only slow down every request.
func HashKey(plaintext string) []byte {
	sum := sha256.Sum256([]byte(plaintext))
	return sum[:]
}

// KeyPrefix returns the public prefix of a plain-text key, and false if s
// is not in the format NewKey makes.
func KeyPrefix(s string) (string, bool) {
	if len(s) != plaintextLen || !strings.HasPrefix(s, keyTag) || s[len(keyTag)+prefixLen] != '_' {
		return "", false
	}
	prefix := s[len(keyTag) : len(keyTag)+prefixLen]
	secret := s[len(keyTag)+prefixLen+1:]
	if !isB32(prefix) || !isB32(secret) {
		return "", false
	}
	return prefix, true
}

func isB32(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// maxKeyTries bounds CreateKey's retries on a prefix collision, which
// needs two 40-bit draws to meet within one app.
const maxKeyTries = 3

// CreateKey makes a key of type typ for app appID with NewKey and stores
// it with m, creating the app if it does not exist yet. An empty appID
// makes a new app with a random UUID. It returns the key in plain text
// (show it once) and the stored Key.
func CreateKey(ctx context.Context, m KeyManager, appID string, typ KeyType) (plaintext string, k Key, err error) {
	if appID == "" {
		appID = uuid.NewString()
	}
	for range maxKeyTries {
		plaintext, k, err = NewKey(appID, typ)
		if err != nil {
			return "", Key{}, err
		}
		err = m.CreateKey(ctx, k)
		if !errors.Is(err, ErrKeyExists) {
			break
		}
	}
	if err != nil {
		return "", Key{}, fmt.Errorf("auth: storing key: %w", err)
	}
	return plaintext, k, nil
}

// APIKeys authenticates requests by the API-key headers X-API-KEY,
// X-API-KEY-TYPE and X-CLIENT-ID, which must all be present exactly once.
// Build it with [NewAPIKeys].
//
// Missing or partial headers, a malformed or unknown client id, a wrong,
// malformed or revoked key, or a declared type that is not the key's own:
// an error matching referral.ErrUnauthenticated (401), the same text for
// each so that it tells a prober nothing. A valid key of a disabled app:
// referral.ErrForbidden (403). A valid read key: a ReadOnly Principal. A store failure: an error
// matching neither (500).
type APIKeys struct {
	store KeyStore
}

var _ referral.Authenticator = (*APIKeys)(nil)

// NewAPIKeys returns an API-key authenticator that looks keys up in s.
func NewAPIKeys(s KeyStore) *APIKeys { return &APIKeys{store: s} }

// errBadKey is the one answer to every API-key credential that does not
// check out: it names no part, and never holds the key.
var errBadKey = fmt.Errorf("auth: invalid API key credentials: %w", referral.ErrUnauthenticated)

// Authenticate checks the API-key headers of r. The Principal has the
// client id as AppID, Method "api-key" and the key's prefix as KeyID; the
// key acts for the app, so any userID is allowed.
func (a *APIKeys) Authenticate(r *http.Request, userID string) (referral.Principal, error) {
	if a == nil || a.store == nil {
		return referral.Principal{}, fmt.Errorf("auth: API keys are not accepted: %w", referral.ErrUnauthenticated)
	}
	secret, ok1 := single(r.Header, HeaderAPIKey)
	declared, ok2 := single(r.Header, HeaderAPIKeyType)
	client, ok3 := single(r.Header, HeaderClientID)
	if !ok1 || !ok2 || !ok3 {
		return referral.Principal{}, errBadKey
	}
	appID, okID := referral.CanonicalUUID(client)
	typ, typErr := ParseKeyType(declared)
	prefix, okKey := KeyPrefix(secret)
	if !okID || typErr != nil || !okKey {
		return referral.Principal{}, errBadKey
	}
	ctx := r.Context()
	k, err := a.store.LookupKey(ctx, appID, prefix)
	if errors.Is(err, ErrKeyNotFound) {
		return referral.Principal{}, errBadKey
	}
	if err != nil {
		return referral.Principal{}, fmt.Errorf("auth: looking up API key: %w", err)
	}
	// Constant time, so that the time taken tells nothing about how much
	// of the hash matched. The app and prefix are checked again in case a
	// store returned another key than the one asked for.
	match := subtle.ConstantTimeCompare(HashKey(secret), k.Hash) == 1
	if !match || k.AppID != appID || k.Prefix != prefix || k.Revoked() || k.Type != typ {
		return referral.Principal{}, errBadKey
	}
	app, err := a.store.LookupApp(ctx, appID)
	if errors.Is(err, ErrAppNotFound) {
		return referral.Principal{}, errBadKey
	}
	if err != nil {
		return referral.Principal{}, fmt.Errorf("auth: looking up app: %w", err)
	}
	if app.Disabled {
		return referral.Principal{}, fmt.Errorf("auth: app is disabled: %w", referral.ErrForbidden)
	}
	// A read key may read; the handler refuses it where a route changes
	// something.
	return referral.Principal{AppID: appID, Method: "api-key", KeyID: k.Prefix, ReadOnly: k.Type != KeyWrite}, nil
}

// single returns the one value of header name, and false if it is absent,
// empty or repeated.
func single(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) != 1 || vs[0] == "" {
		return "", false
	}
	return vs[0], true
}
