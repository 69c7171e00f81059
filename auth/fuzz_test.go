package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
)

// FuzzAuthenticate feeds arbitrary header values to Either(API keys,
// tokens): it must never panic, and must only ever answer success or one of
// the three sentinel errors (never a 500).
//
//	go test -run '^$' -fuzz FuzzAuthenticate -fuzztime 30s ./auth/
func FuzzAuthenticate(f *testing.F) {
	kf := newKeyFixture(f)
	a := auth.Either(auth.NewAPIKeys(kf.store), newTokens(f, auth.TokenConfig{}))
	k := keys()
	valid := rs256(f, claims())
	seeds := [][4]string{
		{kf.write, "write", appA, ""},
		{kf.read, "read", appA, ""},
		{kf.revoked, "write", appA, ""},
		{kf.disabled, "write", kf.disabledApp, ""},
		{kf.write, "write", strings.ToUpper(appA), ""},
		{kf.write, "", "", ""},
		{"rk_aaaaaaaa_" + strings.Repeat("a", 52), "write", appA, ""},
		{"", "", "", "Bearer " + valid},
		{"", "", "", "bearer  " + valid},
		{"", "", "", "Bearer " + rs256(f, claims(set("sub", userB)))},
		{"", "", "", "Bearer " + sign(f, jwt.SigningMethodEdDSA, k.ed, "ed-1", claims(set("aud", []string{appA, "x"})))},
		{"", "", "", "Bearer " + sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", claims())},
		{"", "", "", "Bearer eyJhbGciOiJIUzI1NiJ9.e30."},
		{"", "", "", "Bearer a.b.c"},
		{"", "", "", "Basic dXNlcjpwYXNz"},
		{"", "", "", "Bearer"},
		{kf.write, "write", appA, "Bearer " + valid},
		{"", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, apiKey, keyType, clientID, authorization string) {
		var h []string
		for _, kv := range [][2]string{
			{auth.HeaderAPIKey, apiKey},
			{auth.HeaderAPIKeyType, keyType},
			{auth.HeaderClientID, clientID},
			{"Authorization", authorization},
		} {
			if kv[1] != "" {
				h = append(h, kv[0], kv[1])
			}
		}
		p, err := a.Authenticate(request(h...), userA)
		switch {
		case err == nil:
			if p.AppID == "" || p.Method == "" {
				t.Fatalf("success without a principal: %+v", p)
			}
		case errors.Is(err, referral.ErrUnauthenticated),
			errors.Is(err, referral.ErrForbidden),
			errors.Is(err, referral.ErrAmbiguousCredentials):
			if apiKey != "" && len(apiKey) > 16 && strings.Contains(err.Error(), apiKey) {
				t.Fatalf("error holds the API key: %v", err)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
