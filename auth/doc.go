// Package auth holds the default referral.Authenticators: API keys for
// servers and access tokens (JWTs) for browsers and apps, accepted the way
// userdocks clients send them. [Either] combines the two.
//
// # API keys
//
// A server sends three headers, all of them, once each:
//
//	X-API-KEY:      rk_<prefix>_<secret>
//	X-API-KEY-TYPE: write
//	X-CLIENT-ID:    <the app's client id, a UUID in any case>
//
// A key is made by [NewKey] or [CreateKey]: 40 random bits of public prefix
// (its id in key lists, and how a store finds it) and 256 random bits of
// secret, shown once. Stores keep only its SHA-256 ([HashKey]); the
// authenticator compares hashes in constant time. A key is typed read or
// write, the declared X-API-KEY-TYPE must be its own type, and this route
// needs write. Keys can be revoked and apps disabled ([KeyManager]).
//
// Outcomes of [APIKeys]: missing or partial headers, a malformed or unknown
// client id, a wrong, malformed or revoked key, or a declared type that is
// not the key's: 401, with one error text for all. A valid read key, or any
// valid key of a disabled app: 403. The Principal carries the client id as
// AppID, Method "api-key" and the key's prefix as KeyID. An API key acts for
// its app, so it may send invites for any user of that app.
//
// # Access tokens
//
// A browser or app sends "Authorization: Bearer <JWT>" (at most
// [MaxAuthorizationBytes]). [Tokens] verifies it with
// github.com/golang-jwt/jwt/v5. A token must carry:
//
//	header  alg  the algorithm its key pins: RS256 for RSA keys, ES256 for
//	             P-256 keys, EdDSA for Ed25519 keys; HS256 only if the host
//	             configured an HMAC secret; never "none"
//	        kid  the id of the key that signed it; may be left out when
//	             exactly one key is configured
//	claims  iss  the configured issuer
//	        sub  the user: it must be the userId of the path (compared as
//	             UUIDs), unless the host's TokenConfig.AllowUser allows it
//	        aud  the app's client id (a UUID); other, non-UUID audiences
//	             are ignored, and exactly one UUID must be present
//	        exp  required; the token is good while now < exp + leeway
//	             (30 s by default); nbf and iat, if present, are checked
//	             with the same leeway
//
// Keys come from PEM ([ParsePublicKeysPEM]) or a JWKS document
// ([ParseJWKS]), or are built from an *rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey as a [VerifyKey]. The aud of a token becomes the
// Principal's AppID: the issuer is trusted to name the app it issued the
// token for. To accept only known, enabled apps, set TokenConfig.CheckApp
// to [KnownApps] or [ClientIDs].
//
// Outcomes of [Tokens]: no bearer token: 401 with WWW-Authenticate
// "Bearer"; a malformed, unsigned, wrongly signed, expired or not yet valid
// token, or one missing a required claim: 401 with
// `Bearer error="invalid_token"`; a valid token for another user: 403. The
// Principal carries aud as AppID, sub as UserID, Method "access-token" and
// the kid as KeyID.
//
// No error of this package contains a key or a token.
package auth
