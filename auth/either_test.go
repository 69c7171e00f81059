package auth_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/referral"
)

func TestEither(t *testing.T) {
	t.Parallel()
	f := newKeyFixture(t)
	keysAuth := auth.NewAPIKeys(f.store)
	tokens := newTokens(t, auth.TokenConfig{})
	key := keyHeaders(f.write, "write", appA)
	tok := bearer(rs256(t, claims()))

	tests := []struct {
		name      string
		a         referral.Authenticator
		headers   []string
		want      error  // nil: success
		method    string // for successes
		challenge string
	}{
		{"API key", auth.Either(keysAuth, tokens), key, nil, "api-key", ""},
		{"token", auth.Either(keysAuth, tokens), tok, nil, "access-token", ""},
		{"both", auth.Either(keysAuth, tokens), append(key, tok...), referral.ErrAmbiguousCredentials, "", ""},
		{"client id and a token", auth.Either(keysAuth, tokens), append([]string{auth.HeaderClientID, appA}, tok...), referral.ErrAmbiguousCredentials, "", ""},
		{"API key and an oversized token", auth.Either(keysAuth, tokens), append(key, "Authorization", "Bearer "+string(make([]byte, 9000))), referral.ErrAmbiguousCredentials, "", ""},
		{"API key and Basic auth", auth.Either(keysAuth, tokens), append(key, "Authorization", "Basic dXNlcjpwYXNz"), nil, "api-key", ""},
		{"nothing", auth.Either(keysAuth, tokens), nil, referral.ErrUnauthenticated, "", "Bearer"},
		{"nothing, keys only", auth.Either(keysAuth, nil), nil, referral.ErrUnauthenticated, "", ""},
		{"nothing, neither", auth.Either(nil, nil), nil, referral.ErrUnauthenticated, "", ""},
		{"API key, tokens only", auth.Either(nil, tokens), key, referral.ErrUnauthenticated, "", ""},
		{"token, keys only", auth.Either(keysAuth, nil), tok, referral.ErrUnauthenticated, "", ""},
		{"typed nil API keys", auth.Either((*auth.APIKeys)(nil), tokens), key, referral.ErrUnauthenticated, "", ""},
		{"read key", auth.Either(keysAuth, tokens), keyHeaders(f.read, "read", appA), nil, "api-key", ""},
		{"bad token", auth.Either(keysAuth, tokens), bearer("x"), referral.ErrUnauthenticated, "", `Bearer error="invalid_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := tc.a.Authenticate(request(tc.headers...), userA)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, tc.method, p.Method)
				assert.Equal(t, appA, p.AppID)
				return
			}
			require.ErrorIs(t, err, tc.want)
			for _, other := range []error{referral.ErrUnauthenticated, referral.ErrForbidden, referral.ErrAmbiguousCredentials} {
				if other != tc.want {
					assert.False(t, errors.Is(err, other), "matches %v too", other)
				}
			}
			assert.Equal(t, tc.challenge, challenge(err))
		})
	}
}
