package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/store/memory"
)

// An API-key authenticator over a key store. The key is shown once, when it
// is made; the store keeps only its hash.
func ExampleNewAPIKeys() {
	ctx := context.Background()
	keys := memory.NewKeys()
	apiKey, k, err := auth.CreateKey(ctx, keys, "6f1c2a7e-5b1d-4c3e-9a7b-1d2e3f4a5b6c", auth.KeyWrite)
	if err != nil {
		fmt.Println(err)
		return
	}
	a := auth.NewAPIKeys(keys)

	// What a server-side client sends.
	r := httptest.NewRequest("POST", "/v1/users/3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e/referral-invites", nil)
	r.Header.Set("X-API-KEY", apiKey)
	r.Header.Set("X-API-KEY-TYPE", "write")
	r.Header.Set("X-CLIENT-ID", "6F1C2A7E-5B1D-4C3E-9A7B-1D2E3F4A5B6C")

	p, err := a.Authenticate(r, "3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e")
	fmt.Println(p.AppID, p.Method, p.KeyID == k.Prefix, err)
	// Output: 6f1c2a7e-5b1d-4c3e-9a7b-1d2e3f4a5b6c api-key true <nil>
}

// A token authenticator trusting one Ed25519 key of the issuer. Keys can
// also be read with ParsePublicKeysPEM or ParseJWKS.
func ExampleNewTokens() {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := auth.NewTokens(auth.TokenConfig{
		Issuer: "https://login.example.com",
		Keys:   []auth.VerifyKey{{ID: "2025-06", Key: pub}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// What the issuer hands the browser: sub is the user, aud the app.
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "https://login.example.com",
		"sub": "3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e",
		"aud": "6f1c2a7e-5b1d-4c3e-9a7b-1d2e3f4a5b6c",
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "2025-06"
	signed, err := tok.SignedString(priv)
	if err != nil {
		fmt.Println(err)
		return
	}

	r := httptest.NewRequest("POST", "/v1/users/3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e/referral-invites", nil)
	r.Header.Set("Authorization", "Bearer "+signed)
	p, err := a.Authenticate(r, "3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e")
	fmt.Println(p.AppID, p.UserID, p.Method, p.KeyID, err)
	// Output: 6f1c2a7e-5b1d-4c3e-9a7b-1d2e3f4a5b6c 3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e access-token 2025-06 <nil>
}

// Either accepts both kinds of credentials and refuses a request that
// sends both.
func ExampleEither() {
	keys := memory.NewKeys()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tokens, err := auth.NewTokens(auth.TokenConfig{
		Issuer: "https://login.example.com",
		Keys:   []auth.VerifyKey{{ID: "k1", Key: priv.Public()}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	a := auth.Either(auth.NewAPIKeys(keys), tokens)

	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("X-API-KEY", "rk_...")
	r.Header.Set("Authorization", "Bearer ...")
	_, err = a.Authenticate(r, "3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e")
	fmt.Println(err)
	// Output: auth: referral: both an API key and an access token were sent
}
