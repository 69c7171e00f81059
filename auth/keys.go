package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// minRSABits is the smallest RSA modulus accepted for token signatures.
const minRSABits = 2048

// minHMACBytes is the smallest HMAC secret accepted: 256 bits, the size
// of the HS256 output.
const minHMACBytes = 32

// VerifyKey is one key that verifies access tokens. Its type pins the
// signing algorithm: a token that names another algorithm is refused, so a
// public key can never be used as an HMAC secret.
type VerifyKey struct {
	// ID is the key id that tokens name in their "kid" header. It may be
	// empty for the only configured key.
	ID string
	// Key is one of:
	//   *rsa.PublicKey (at least 2048 bits): RS256
	//   *ecdsa.PublicKey on P-256: ES256
	//   ed25519.PublicKey: EdDSA
	//   []byte (at least 32 bytes): HS256, a shared secret. Only a caller
	//   can configure one: ParsePublicKeysPEM and ParseJWKS never return it.
	Key any
}

// Algorithm returns the JWS algorithm k verifies, or an error if k's key
// is of an unsupported type or too weak.
func (k VerifyKey) Algorithm() (string, error) {
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		if key == nil || key.N == nil || key.N.BitLen() < minRSABits {
			return "", fmt.Errorf("auth: key %q: RSA keys need at least %d bits", k.ID, minRSABits)
		}
		if key.E < 3 || key.E%2 == 0 {
			return "", fmt.Errorf("auth: key %q: RSA public exponent is invalid", k.ID)
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		if key == nil || key.Curve != elliptic.P256() {
			return "", fmt.Errorf("auth: key %q: ECDSA keys must be on P-256", k.ID)
		}
		// Verification would panic on a missing point (as Bytes does), and
		// must never run with one off the curve.
		if key.X == nil || key.Y == nil {
			return "", fmt.Errorf("auth: key %q: ECDSA key has no point", k.ID)
		}
		if _, err := key.Bytes(); err != nil {
			return "", fmt.Errorf("auth: key %q: %w", k.ID, err)
		}
		return "ES256", nil
	case ed25519.PublicKey:
		if len(key) != ed25519.PublicKeySize {
			return "", fmt.Errorf("auth: key %q: Ed25519 keys are %d bytes", k.ID, ed25519.PublicKeySize)
		}
		return "EdDSA", nil
	case []byte:
		if len(key) < minHMACBytes {
			return "", fmt.Errorf("auth: key %q: HMAC secrets need at least %d bytes", k.ID, minHMACBytes)
		}
		return "HS256", nil
	}
	return "", fmt.Errorf("auth: key %q: unsupported key type %T", k.ID, k.Key)
}

// ParsePublicKeysPEM reads one or more PEM blocks of public keys ("PUBLIC
// KEY", PKIX; or "RSA PUBLIC KEY", PKCS #1). A block's "kid" header, if
// any, becomes the key's ID; keys without one work only as the only
// configured key. Other blocks, such as private keys, are an error, so that
// a misplaced secret is noticed.
func ParsePublicKeysPEM(data []byte) ([]VerifyKey, error) {
	var keys []VerifyKey
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pub any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		default:
			err = fmt.Errorf("unexpected block type %q (want PUBLIC KEY)", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: PEM block %d: %w", n, err)
		}
		k := VerifyKey{ID: b.Headers["kid"], Key: pub}
		if _, err := k.Algorithm(); err != nil {
			return nil, fmt.Errorf("auth: PEM block %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no PEM public key found")
	}
	return keys, nil
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518, 8037) that matters
// here.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads a JSON Web Key Set ({"keys": [...]}) of public signing
// keys: RSA, EC on P-256, and OKP Ed25519. Keys meant for encryption
// ("use": "enc"), of other types or curves, or whose "alg" is not the one
// their type pins (RS256, ES256, EdDSA) are skipped, as identity providers
// publish such keys beside the ones that matter; a set with no usable key
// is an error. A malformed usable key is an error too.
func ParseJWKS(data []byte) ([]VerifyKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	var keys []VerifyKey
	for i, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		pub, alg, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS key %d (kid %q): %w", i, j.Kid, err)
		}
		if pub == nil || j.Alg != "" && j.Alg != alg {
			continue
		}
		k := VerifyKey{ID: j.Kid, Key: pub}
		if _, err := k.Algorithm(); err != nil {
			return nil, fmt.Errorf("auth: JWKS key %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: JWKS holds no usable signing key")
	}
	return keys, nil
}

// publicKey decodes j. It returns a nil key for a type or curve it does not
// support.
func (j jwk) publicKey() (any, string, error) {
	switch {
	case j.Kty == "RSA":
		n, err1 := b64Int(j.N)
		e, err2 := b64Int(j.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, "", err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, "", errors.New("RSA exponent out of range")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, "RS256", nil
	case j.Kty == "EC" && j.Crv == "P-256":
		x, err1 := b64Fixed(j.X, 32)
		y, err2 := b64Fixed(j.Y, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, "", err
		}
		// Parsing the uncompressed point checks that it lies on the curve.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, "", err
		}
		return pub, "ES256", nil
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64Fixed(j.X, ed25519.PublicKeySize)
		if err != nil {
			return nil, "", err
		}
		return ed25519.PublicKey(x), "EdDSA", nil
	}
	return nil, "", nil
}

func b64Int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("malformed base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

func b64Fixed(s string, n int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("malformed base64url value (want %d bytes)", n)
	}
	return b, nil
}
