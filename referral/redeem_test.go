package referral_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

const newUser = "8b3c4d5e-6f70-4a1b-9c2d-3e4f5a6b7c8d"

// redeemFixture is a fixture whose user has a code and has invited
// friend@example.com, and which records OnRedeemed calls.
type redeemFixture struct {
	*fixture
	code     string
	mu       sync.Mutex
	redeemed []referral.Redemption
}

func newRedeemFixture(t *testing.T, configure ...func(*referral.Config)) *redeemFixture {
	rf := &redeemFixture{}
	rf.fixture = newFixture(t, append([]func(*referral.Config){func(c *referral.Config) {
		c.OnRedeemed = func(_ context.Context, r referral.Redemption) {
			rf.mu.Lock()
			rf.redeemed = append(rf.redeemed, r)
			rf.mu.Unlock()
		}
	}}, configure...)...)
	checkEnvelope(t, rf.post(invite("Friend@Example.com", "en")), 201)
	rf.code = rf.store.Invites()[0].Code
	return rf
}

func (rf *redeemFixture) hooks() []referral.Redemption {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	return append([]referral.Redemption(nil), rf.redeemed...)
}

func TestResolve(t *testing.T) {
	t.Parallel()
	rf := newRedeemFixture(t)
	ctx := context.Background()
	for _, typed := range []string{rf.code, strings.ToLower(rf.code), rf.code[:5] + "-" + rf.code[5:]} {
		owner, err := rf.h.Resolve(ctx, typed)
		require.NoError(t, err, typed)
		assert.Equal(t, referral.Owner{AppID: appID, UserID: userID}, owner)
	}
	for _, bad := range []string{"", "nope", "ZZZZZZZZZZ", rf.code + "0", "'; drop table codes; --"} {
		_, err := rf.h.Resolve(ctx, bad)
		assert.ErrorIs(t, err, referral.ErrCodeNotFound, bad)
	}
}

func TestRedeem(t *testing.T) {
	t.Parallel()
	rf := newRedeemFixture(t)
	ctx := context.Background()

	r, err := rf.h.Redeem(ctx, strings.ToLower(rf.code), strings.ToUpper(newUser), "friend@EXAMPLE.com")
	require.NoError(t, err)
	assert.Equal(t, referral.Redemption{
		AppID: appID, ReferrerID: userID, Code: rf.code, NewUserID: newUser,
		Email: "friend@example.com", EmailKey: "friend@example.com", CreatedAt: rf.Now(),
	}, r)
	require.Len(t, rf.hooks(), 1)

	again, err := rf.h.Redeem(ctx, rf.code, newUser, "friend@example.com")
	require.NoError(t, err, "the same redemption again is fine")
	assert.Equal(t, r, again)
	assert.Len(t, rf.hooks(), 1, "the hook runs once per redemption")

	// Another user's code does not steal the credit.
	other := newRequest(http.MethodPost, "/v1/users/"+otherID+"/referral-invites", invite("x@example.com", "en"))
	checkEnvelope(t, rf.serve(other), 201)
	otherCode := rf.store.Invites()[1].Code
	first, err := rf.h.Redeem(ctx, otherCode, newUser, "friend@example.com")
	assert.ErrorIs(t, err, referral.ErrAlreadyRedeemed)
	assert.Equal(t, r, first)

	_, err = rf.h.Redeem(ctx, rf.code, userID, "me@example.com")
	assert.ErrorIs(t, err, referral.ErrSelfReferral)
	_, err = rf.h.Redeem(ctx, "ZZZZZZZZZZ", otherID, "a@example.com")
	assert.ErrorIs(t, err, referral.ErrCodeNotFound)
	_, err = rf.h.Redeem(ctx, rf.code, "not-a-uuid", "a@example.com")
	assert.ErrorContains(t, err, "userId")
	_, err = rf.h.Redeem(ctx, rf.code, otherID, "Bob <b@example.com>")
	assert.ErrorContains(t, err, "email")
	assert.Len(t, rf.hooks(), 1)

	st, err := rf.h.Stats(ctx, appID, userID)
	require.NoError(t, err)
	assert.Equal(t, referral.Stats{Invited: 1, Sent: 1, Accepted: 1, Redeemed: 1}, st)
}

func TestConcurrentRedemptionsOneWinner(t *testing.T) {
	t.Parallel()
	rf := newRedeemFixture(t, func(c *referral.Config) { c.MaxInvitesPerReferrer = -1 })
	// Ten referrers with codes of their own race to be credited.
	var codes []string
	for i := range 10 {
		user := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		checkEnvelope(t, rf.serve(newRequest(http.MethodPost, "/v1/users/"+user+"/referral-invites", invite("n@example.com", "en"))), 201)
	}
	for _, inv := range rf.store.Invites()[1:] {
		codes = append(codes, inv.Code)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for _, code := range codes {
		wg.Go(func() {
			_, err := rf.h.Redeem(context.Background(), code, newUser, "n@example.com")
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				assert.ErrorIs(t, err, referral.ErrAlreadyRedeemed)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, wins)
	assert.Len(t, rf.hooks(), 1)
}

func TestCodeLookupHTTP(t *testing.T) {
	t.Parallel()
	rf := newRedeemFixture(t, func(c *referral.Config) { c.LookupsPerMinute = 3 })
	mux := http.NewServeMux()
	mux.Handle(referral.CodePattern, rf.h.CodeLookup())
	get := func(code, remote string) *httptest.ResponseRecorder {
		req := newRequest(http.MethodGet, "/v1/referral-codes/"+code, "")
		req.RemoteAddr = remote
		return serveMux(mux, req)
	}
	rec := get(strings.ToLower(rf.code), "192.0.2.1:1000")
	checkEnvelope(t, rec, 200)
	assert.JSONEq(t, `{"success":true,"message":"Referral code is valid.","error":null,"data":{"valid":true}}`, rec.Body.String())
	assert.NotContains(t, rec.Body.String(), userID, "no owner details")

	rec = get("ZZZZZZZZZZ", "192.0.2.1:1001")
	env := checkEnvelope(t, rec, 404)
	assert.Equal(t, "referral code not found", *env.Error)
	checkEnvelope(t, get("%20", "192.0.2.1:1002"), 404)

	rec = get(rf.code, "192.0.2.1:1003")
	checkEnvelope(t, rec, 429)
	assert.Equal(t, "60", rec.Header().Get("Retry-After"))
	checkEnvelope(t, get(rf.code, "192.0.2.2:1000"), 200) // another client
	rf.Advance(time.Minute)
	checkEnvelope(t, get(rf.code, "192.0.2.1:1004"), 200)

	req := newRequest(http.MethodPost, "/v1/referral-codes/"+rf.code, "")
	rec = serveMux(mux, req)
	checkEnvelope(t, rec, 405)
	assert.Equal(t, "GET", rec.Header().Get("Allow"))
}

func TestRedemptionHTTP(t *testing.T) {
	t.Parallel()
	rf := newRedeemFixture(t)
	other := newRequest(http.MethodPost, "/v1/users/"+otherID+"/referral-invites", invite("x@example.com", "en"))
	checkEnvelope(t, rf.serve(other), 201)
	otherCode := rf.store.Invites()[1].Code
	// A second app, whose user has a code of their own.
	const app2 = "1c1d1e1f-2a2b-4c3d-8e4f-5a6b7c8d9e0f"
	mux := http.NewServeMux()
	mux.Handle(referral.RedemptionPattern, rf.h.Redemptions(referral.AuthenticatorFunc(func(r *http.Request, user string) (referral.Principal, error) {
		if r.Header.Get("X-Test-App") == "2" {
			return referral.Principal{AppID: app2}, nil
		}
		return testAuth(r, user)
	})))
	post := func(code, body string, headers ...string) *httptest.ResponseRecorder {
		return serveMux(mux, newRequest(http.MethodPost, "/v1/referral-codes/"+code+"/redemptions", body, headers...))
	}
	body := func(user, email string) string {
		return fmt.Sprintf(`{"userId":%q,"email":%q}`, user, email)
	}

	tests := []struct {
		name, code, body string
		headers          []string
		status           int
		errText          string
	}{
		{"created", rf.code, body(newUser, "friend@example.com"), nil, 201, ""},
		{"again", strings.ToLower(rf.code), body(newUser, "friend@example.com"), nil, 200, ""},
		{"another code", otherCode, body(newUser, "friend@example.com"), nil, 409, "already referred"},
		{"own code", rf.code, body(userID, "me@example.com"), nil, 400, "own referral code"},
		{"unknown code", "ZZZZZZZZZZ", body(otherID, "a@example.com"), nil, 404, "not found"},
		{"another app's code", rf.code, body(otherID, "a@example.com"), []string{"X-Test-App", "2"}, 404, "not found"},
		{"bad user", rf.code, body("42", "a@example.com"), nil, 400, "userId"},
		{"bad email", rf.code, body(otherID, "a"), nil, 400, "email"},
		{"unknown field", rf.code, `{"userId":"x","email":"a@example.com","ref":"y"}`, nil, 400, "unknown field"},
		{"no credentials", rf.code, body(otherID, "a@example.com"), []string{"X-Test-Auth", "none"}, 401, ""},
		// Credentials come first: a caller without them learns nothing of
		// the body's rules.
		{"no credentials, bad user", rf.code, body("42", "a@example.com"), []string{"X-Test-Auth", "none"}, 401, "credentials"},
		{"no credentials, bad body", rf.code, `{"ref":1}`, []string{"X-Test-Auth", "none"}, 401, "credentials"},
		{"no credentials, wrong content type", rf.code, body(otherID, "a@example.com"), []string{"X-Test-Auth", "none", "Content-Type", "text/plain"}, 401, "credentials"},
		{"read key", rf.code, body(otherID, "a@example.com"), []string{"X-Test-Auth", "forbidden"}, 403, "may not record redemptions"},
		{"wrong content type", rf.code, body(otherID, "a@example.com"), []string{"Content-Type", "text/plain"}, 415, ""},
	}
	for _, tt := range tests {
		rec := post(tt.code, tt.body, tt.headers...)
		env := checkEnvelope(t, rec, tt.status)
		if tt.errText != "" {
			assert.Contains(t, *env.Error, tt.errText, tt.name)
		}
	}
	assert.Len(t, rf.hooks(), 1)
	checkEnvelope(t, serveMux(mux, newRequest(http.MethodGet, "/v1/referral-codes/"+rf.code+"/redemptions", "")), 405)

	// A 500 is logged as what it is.
	rec := post(rf.code, body(otherID, "a@example.com"), "X-Test-Auth", "broken")
	checkEnvelope(t, rec, 500)
	assert.Contains(t, rf.logs.String(), `"msg":"referral redemption failed"`)
	assert.NotContains(t, rf.logs.String(), "invite refused")
}

func TestRedeemAndStatsRefuseInvalidInput(t *testing.T) {
	t.Parallel()
	rf := newRedeemFixture(t)
	ctx := context.Background()
	for _, args := range [][2]string{{"not-a-uuid", "a@example.com"}, {otherID, "Bob <b@example.com>"}} {
		_, err := rf.h.Redeem(ctx, rf.code, args[0], args[1])
		assert.ErrorIs(t, err, referral.ErrInvalidInput, args)
	}
	_, err := rf.h.Stats(ctx, "app", userID)
	assert.ErrorIs(t, err, referral.ErrInvalidInput)
	_, err = rf.h.Redeem(ctx, "ZZZZZZZZZZ", otherID, "a@example.com")
	assert.NotErrorIs(t, err, referral.ErrInvalidInput)
}

func TestRedemptionNeedsItsStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Redemptions = nil })
	_, err := f.h.Redeem(context.Background(), "ABCDEFGHJK", newUser, "a@example.com")
	assert.ErrorIs(t, err, referral.ErrRedemptionUnsupported)
	_, err = f.h.Stats(context.Background(), appID, userID)
	assert.ErrorIs(t, err, referral.ErrRedemptionUnsupported)
	mux := http.NewServeMux()
	mux.Handle(referral.RedemptionPattern, f.h.Redemptions(referral.AuthenticatorFunc(testAuth)))
	checkEnvelope(t, serveMux(mux, newRequest(http.MethodPost, "/v1/referral-codes/ABCDEFGHJK/redemptions",
		fmt.Sprintf(`{"userId":%q,"email":"a@example.com"}`, newUser))), 500)

	store := memory.New()
	_, err = referral.New(referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: store, Mailer: &mailtest.Recorder{},
		Recipients: store, UnsubscribeURL: unsubscribeBase + "{token}",
		From: "a@example.com", SignupURL: "https://example.com/?r={code}", OnRedeemed: func(context.Context, referral.Redemption) {}})
	assert.ErrorContains(t, err, "Config.OnRedeemed needs Config.Redemptions")
}

// A store wrapped by the host (for tracing, say) keeps redemption working:
// the handler never looks for it by type assertion.
func TestRedemptionThroughAWrappedStore(t *testing.T) {
	t.Parallel()
	rf := newRedeemFixture(t, func(c *referral.Config) { c.Store = codeStoreOnly{c.Store} })
	_, err := rf.h.Redeem(context.Background(), rf.code, newUser, "friend@example.com")
	require.NoError(t, err)
	st, err := rf.h.Stats(context.Background(), appID, userID)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Redeemed)
}

// codeStoreOnly hides every method but CodeStore's.
type codeStoreOnly struct{ referral.CodeStore }
