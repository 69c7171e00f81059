package auth

import (
	"fmt"
	"net/http"

	"github.com/referralkit/referralkit/referral"
)

// Either returns an Authenticator that accepts API keys (checked by
// apiKeys) and access tokens (checked by tokens), choosing by the headers
// present: any of X-API-KEY, X-API-KEY-TYPE or X-CLIENT-ID means an API
// key; an "Authorization: Bearer" header means an access token. Both at
// once: an error matching referral.ErrAmbiguousCredentials (400). Neither:
// tokens' answer (401 with a "Bearer" challenge), or a plain 401 if tokens
// is nil. A nil side is a kind that is not accepted: its credentials get a
// 401.
func Either(apiKeys, tokens referral.Authenticator) referral.Authenticator {
	return either{apiKeys, tokens}
}

type either struct{ apiKeys, tokens referral.Authenticator }

var errAmbiguous = fmt.Errorf("auth: %w", referral.ErrAmbiguousCredentials)

func (e either) Authenticate(r *http.Request, userID string) (referral.Principal, error) {
	hasKey := len(r.Header.Values(HeaderAPIKey)) > 0 ||
		len(r.Header.Values(HeaderAPIKeyType)) > 0 ||
		len(r.Header.Values(HeaderClientID)) > 0
	_, hasToken, err := bearerToken(r.Header)
	hasToken = hasToken || err != nil
	switch {
	case hasKey && hasToken:
		return referral.Principal{}, errAmbiguous
	case hasKey && e.apiKeys != nil:
		return e.apiKeys.Authenticate(r, userID)
	case hasKey:
		return referral.Principal{}, fmt.Errorf("auth: API keys are not accepted: %w", referral.ErrUnauthenticated)
	case e.tokens != nil:
		// A bearer token, or no credentials at all: the token side
		// answers, with its challenge.
		return e.tokens.Authenticate(r, userID)
	case hasToken:
		return referral.Principal{}, fmt.Errorf("auth: access tokens are not accepted: %w", referral.ErrUnauthenticated)
	}
	return referral.Principal{}, fmt.Errorf("auth: no credentials: %w", referral.ErrUnauthenticated)
}
