package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/referralkit/referralkit/referral"
)

// MaxAuthorizationBytes bounds the Authorization header an access token
// may arrive in; a longer one is refused before it is parsed.
const MaxAuthorizationBytes = 8 << 10

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// Challenges sent as WWW-Authenticate (RFC 6750, section 3).
const (
	challengeBearer  = "Bearer"
	challengeInvalid = `Bearer error="invalid_token"`
)

// TokenConfig configures [NewTokens]. Issuer and Keys are required.
type TokenConfig struct {
	// Issuer is the iss every token must carry.
	Issuer string
	// Keys verify the tokens' signatures; at least one, with distinct IDs.
	// A token names its key by kid; one without a kid is accepted only when
	// exactly one key is configured. If that only key has no ID, it is
	// used whatever kid a token names.
	Keys []VerifyKey
	// Leeway is the clock skew allowed on exp, nbf and iat: a token is
	// good while now < exp+Leeway, from nbf-Leeway on, and refused if iat
	// is after now+Leeway. Default DefaultLeeway (30s); negative: none.
	Leeway time.Duration
	// CheckApp, if set, is asked about the app a token was issued for (its
	// client id, from aud) and refuses it by returning an error matching
	// referral.ErrUnauthenticated (unknown app: 401) or referral.ErrForbidden
	// (disabled app: 403); any other error is a 500. Default: every app the
	// issuer issues tokens for is accepted. See KnownApps and ClientIDs.
	CheckApp func(ctx context.Context, appID string) error
	// AllowUser, if set, may let a token act for a user other than its
	// subject (say, a tenant admin's): it is called only when sub is not
	// userID, and true allows the request. Default: a token acts only for
	// its own subject (403 otherwise).
	AllowUser func(r *http.Request, c Claims, userID string) bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Claims are the verified claims of an access token.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ExpiresAt time.Time
	NotBefore time.Time // zero if absent
	IssuedAt  time.Time // zero if absent
	// KeyID is the kid of the key that verified the token; empty if the
	// token named none.
	KeyID string
	// Raw holds every claim as decoded JSON (numbers as float64), for
	// policies that read claims of their own.
	Raw map[string]any
}

// Tokens authenticates requests by an access token, a JWT sent as
// "Authorization: Bearer <token>". Build it with [NewTokens].
//
// A token must be signed by a configured key with the algorithm that key
// pins, and carry iss (the configured issuer), sub (the user), aud (the
// app's client id, a UUID: exactly one UUID among its values) and exp;
// exp, nbf and iat are checked with the leeway.
//
// No token: 401 with WWW-Authenticate "Bearer". A malformed, unsigned,
// wrongly signed, expired or not yet valid token, or one lacking a required
// claim: 401 with `Bearer error="invalid_token"`. A valid token whose sub
// is not the path's userId (and AllowUser does not allow it): 403.
type Tokens struct {
	keys      map[string]verifier
	only      *verifier // the only key, for tokens without kid
	parser    *jwt.Parser
	checkApp  func(ctx context.Context, appID string) error
	allowUser func(r *http.Request, c Claims, userID string) bool
}

// verifier is a configured key with the algorithm it pins.
type verifier struct {
	id  string
	alg string
	key any
}

var _ referral.Authenticator = (*Tokens)(nil)

// NewTokens checks cfg and returns a token authenticator.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth: TokenConfig.Issuer is required")
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("auth: TokenConfig.Keys is required")
	}
	t := &Tokens{
		keys:      make(map[string]verifier, len(cfg.Keys)),
		checkApp:  cfg.CheckApp,
		allowUser: cfg.AllowUser,
	}
	var algs []string
	for _, k := range cfg.Keys {
		alg, err := k.Algorithm()
		if err != nil {
			return nil, err
		}
		if _, dup := t.keys[k.ID]; dup {
			return nil, fmt.Errorf("auth: TokenConfig.Keys: two keys have the id %q", k.ID)
		}
		t.keys[k.ID] = verifier{id: k.ID, alg: alg, key: k.Key}
		if !contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	if len(cfg.Keys) == 1 {
		v := t.keys[cfg.Keys[0].ID]
		t.only = &v
	}
	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(max(leeway, 0)),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	return t, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// tokenError is a 401 carrying its WWW-Authenticate challenge.
type tokenError struct {
	challenge string
	err       error
}

func (e *tokenError) Error() string     { return e.err.Error() }
func (e *tokenError) Unwrap() error     { return e.err }
func (e *tokenError) Challenge() string { return e.challenge }

// errNoToken is the answer to a request without a bearer token.
var errNoToken = &tokenError{challengeBearer, fmt.Errorf("auth: no access token: %w", referral.ErrUnauthenticated)}

// invalidToken returns a 401 for a token that does not check out; cause,
// if any, says why (for logs) and never holds the token.
func invalidToken(why string, cause error) error {
	err := fmt.Errorf("auth: invalid access token: %s: %w", why, referral.ErrUnauthenticated)
	if cause != nil {
		err = fmt.Errorf("auth: invalid access token: %s: %w: %w", why, referral.ErrUnauthenticated, cause)
	}
	return &tokenError{challengeInvalid, err}
}

// bearerToken returns the token of an "Authorization: Bearer" header: ok
// is false if there is no such header; err is set if there is one but it
// is repeated, too long or empty.
func bearerToken(h http.Header) (token string, ok bool, err error) {
	vs := h.Values("Authorization")
	if len(vs) == 0 {
		return "", false, nil
	}
	scheme, rest, _ := strings.Cut(vs[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	switch {
	case len(vs) > 1:
		return "", true, invalidToken("more than one Authorization header", nil)
	case len(vs[0]) > MaxAuthorizationBytes:
		return "", true, invalidToken("Authorization header too long", nil)
	}
	token = strings.Trim(rest, " ")
	if token == "" {
		return "", true, invalidToken("empty bearer token", nil)
	}
	return token, true, nil
}

// Authenticate checks the access token of r. The Principal has the token's
// aud as AppID, its sub as UserID (canonical if a UUID), Method
// "access-token" and the token's kid as KeyID.
func (t *Tokens) Authenticate(r *http.Request, userID string) (referral.Principal, error) {
	if t == nil {
		return referral.Principal{}, fmt.Errorf("auth: access tokens are not accepted: %w", referral.ErrUnauthenticated)
	}
	raw, ok, err := bearerToken(r.Header)
	if err != nil {
		return referral.Principal{}, err
	}
	if !ok {
		return referral.Principal{}, errNoToken
	}
	var kid string
	mc := jwt.MapClaims{}
	_, err = t.parser.ParseWithClaims(raw, mc, func(tok *jwt.Token) (any, error) {
		v, err := t.verifier(tok)
		kid = v.id
		return v.key, err
	})
	if err != nil {
		return referral.Principal{}, invalidToken("verification failed", err)
	}
	c, err := claimsOf(mc, kid)
	if err != nil {
		return referral.Principal{}, err
	}
	appID, err := audienceApp(c.Audience)
	if err != nil {
		return referral.Principal{}, err
	}
	if t.checkApp != nil {
		if err := t.checkApp(r.Context(), appID); err != nil {
			if errors.Is(err, referral.ErrUnauthenticated) {
				return referral.Principal{}, &tokenError{challengeInvalid, fmt.Errorf("auth: access token for an unknown app: %w", err)}
			}
			return referral.Principal{}, fmt.Errorf("auth: checking the token's app: %w", err)
		}
	}
	// A subject that is the path's user as given is that user, whatever
	// the host's id rule; otherwise a UUID in another case still is.
	sub := c.Subject
	if canonical, isUUID := referral.CanonicalUUID(sub); isUUID && sub != userID {
		sub = canonical
	}
	p := referral.Principal{AppID: appID, UserID: sub, Method: "access-token", KeyID: kid}
	if sub != userID {
		if t.allowUser == nil || !t.allowUser(r, c, userID) {
			return referral.Principal{}, fmt.Errorf("auth: the access token's subject is not the user in the path: %w", referral.ErrForbidden)
		}
		// The policy lets sub act for userID: the request is userID's, and
		// so is the name its emails show (unknown to the token).
		return referral.Principal{AppID: appID, UserID: userID, Method: "access-token", KeyID: kid}, nil
	}
	// OIDC's "name" claim, for the emails the user sends.
	p.Name, _ = c.Raw["name"].(string)
	return p, nil
}

// verifier picks the key for tok by its kid and checks that tok's
// algorithm is the one that key pins.
func (t *Tokens) verifier(tok *jwt.Token) (verifier, error) {
	if _, crit := tok.Header["crit"]; crit {
		// RFC 7515 4.1.11: extensions we do not understand must be refused.
		return verifier{}, errors.New("unsupported critical header")
	}
	var v verifier
	switch kid, present := tok.Header["kid"]; {
	case t.only != nil && t.only.id == "":
		// The only key has no id to match, so the token's kid (if any)
		// cannot select another one.
		v = *t.only
	case present:
		s, isString := kid.(string)
		k, found := t.keys[s]
		if !isString || !found {
			return verifier{}, errors.New("unknown kid")
		}
		v = k
	case t.only != nil:
		v = *t.only
	default:
		return verifier{}, errors.New("no kid, and more than one key is configured")
	}
	if tok.Method == nil || tok.Method.Alg() != v.alg {
		return verifier{}, errors.New("algorithm does not match the key")
	}
	return v, nil
}

// claimsOf converts verified claims and checks that sub is present.
func claimsOf(mc jwt.MapClaims, kid string) (Claims, error) {
	c := Claims{KeyID: kid, Raw: mc}
	var err error
	c.Issuer, _ = mc.GetIssuer()
	if c.Subject, err = mc.GetSubject(); err != nil || c.Subject == "" {
		return Claims{}, invalidToken("no sub claim", err)
	}
	aud, err := mc.GetAudience()
	if err != nil {
		return Claims{}, invalidToken("malformed aud claim", err)
	}
	c.Audience = aud
	for _, f := range []struct {
		dst *time.Time
		get func() (*jwt.NumericDate, error)
	}{
		{&c.ExpiresAt, mc.GetExpirationTime},
		{&c.NotBefore, mc.GetNotBefore},
		{&c.IssuedAt, mc.GetIssuedAt},
	} {
		if d, err := f.get(); err == nil && d != nil {
			*f.dst = d.Time.UTC()
		}
	}
	return c, nil
}

// audienceApp returns the client id the token was issued for: the one UUID
// among its audiences. Other audiences (URLs some issuers add) are ignored;
// none or several UUIDs leave it unclear which app is calling.
func audienceApp(aud []string) (string, error) {
	app := ""
	for _, a := range aud {
		id, ok := referral.CanonicalUUID(a)
		if !ok || id == app {
			continue
		}
		if app != "" {
			return "", invalidToken("aud names more than one app", nil)
		}
		app = id
	}
	if app == "" {
		return "", invalidToken("aud names no app (a client id UUID)", nil)
	}
	return app, nil
}

// KnownApps returns a TokenConfig.CheckApp that accepts only apps known to
// s: an unknown app is a 401, a disabled one a 403.
func KnownApps(s KeyStore) func(ctx context.Context, appID string) error {
	return func(ctx context.Context, appID string) error {
		app, err := s.LookupApp(ctx, appID)
		switch {
		case errors.Is(err, ErrAppNotFound):
			return fmt.Errorf("auth: unknown app: %w", referral.ErrUnauthenticated)
		case err != nil:
			return fmt.Errorf("auth: looking up app: %w", err)
		case app.Disabled:
			return fmt.Errorf("auth: app is disabled: %w", referral.ErrForbidden)
		}
		return nil
	}
}

// ClientIDs returns a TokenConfig.CheckApp that accepts only the given
// client ids (UUIDs, any case); any other app is a 401.
func ClientIDs(ids ...string) func(ctx context.Context, appID string) error {
	allowed := make(map[string]bool, len(ids))
	for _, id := range ids {
		if c, ok := referral.CanonicalUUID(id); ok {
			allowed[c] = true
		}
	}
	return func(_ context.Context, appID string) error {
		if !allowed[appID] {
			return fmt.Errorf("auth: app is not among the allowed client ids: %w", referral.ErrUnauthenticated)
		}
		return nil
	}
}
