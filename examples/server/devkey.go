package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/referralkit/referralkit/auth"
)

const devKeyFile = "referral-dev-key.pem"

// devKeyPath is where the development key lives: next to the SQLite file,
// or in the working folder for PostgreSQL.
func devKeyPath(c *config) string {
	if c.isPostgres() {
		return devKeyFile
	}
	return filepath.Join(filepath.Dir(c.db), devKeyFile)
}

// loadDevKey reads the development signing key, making it on first use.
func loadDevKey(path string, create bool) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return makeDevKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("development key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("development key %s: no PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("development key %s: %w", path, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("development key %s: not a P-256 key", path)
	}
	return ec, nil
}

func makeDevKey(path string) (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	// O_EXCL: two first uses at once must not leave two different keys.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadDevKey(path, false)
	}
	if err != nil {
		return nil, fmt.Errorf("development key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, err
	}
	return k, f.Close()
}

// devKeyID names the key by its public key, so a new key file gets a new
// kid and tokens signed with the old one stop verifying.
func devKeyID(k *ecdsa.PrivateKey) string {
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	sum := sha256.Sum256(der)
	return "dev-" + hex.EncodeToString(sum[:6])
}

func devVerifyKey(k *ecdsa.PrivateKey) auth.VerifyKey {
	return auth.VerifyKey{ID: devKeyID(k), Key: &k.PublicKey}
}

// devClaims are an access token's claims: the registered ones and OIDC's
// name, when given.
type devClaims struct {
	jwt.RegisteredClaims
	Name string `json:"name,omitempty"`
}

// signDevToken makes an access token for user in app, as an issuer would;
// name, if not empty, is its name claim.
func signDevToken(k *ecdsa.PrivateKey, issuer, app, user, name string, ttl time.Duration, now time.Time) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, devClaims{jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   user,
		Audience:  jwt.ClaimStrings{app},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}, name})
	tok.Header["kid"] = devKeyID(k)
	return tok.SignedString(k)
}
