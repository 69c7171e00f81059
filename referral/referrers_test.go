package referral_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
)

// routes serves every route of f's handler, as a host mounts them.
func (f *fixture) routes(method, target string, headers ...string) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, f.h)
	mux.Handle(referral.ReferralCodePattern, f.h.ReferralCode())
	mux.Handle(referral.InvitePattern, f.h.Invite())
	mux.Handle(referral.ResendPattern, f.h.Resend())
	return serveMux(mux, newRequest(method, target, "", headers...))
}

type listData struct {
	Invites []struct {
		ID         string     `json:"id"`
		Email      *string    `json:"email"`
		Language   string     `json:"language"`
		Status     string     `json:"status"`
		CreatedAt  time.Time  `json:"createdAt"`
		SentAt     *time.Time `json:"sentAt"`
		AcceptedAt *time.Time `json:"acceptedAt"`
	} `json:"invites"`
	NextCursor *string `json:"nextCursor"`
}

func (f *fixture) list(t *testing.T, query string, headers ...string) listData {
	t.Helper()
	rec := f.routes(http.MethodGet, path+query, headers...)
	checkEnvelope(t, rec, 200)
	var body struct{ Data listData }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return body.Data
}

const invitesPath = "/v1/users/" + userID + "/referral-invites/"

func TestListInvitesPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := range 5 {
		checkEnvelope(t, f.post(invite(fmt.Sprintf("p%d@example.com", i), "de")), 201)
		f.Advance(time.Second)
	}
	first := f.list(t, "?limit=2")
	require.Len(t, first.Invites, 2)
	assert.Equal(t, "p4@example.com", *first.Invites[0].Email, "newest first")
	assert.Equal(t, "de", first.Invites[0].Language)
	assert.Equal(t, "sent", first.Invites[0].Status)
	assert.NotNil(t, first.Invites[0].SentAt)
	assert.Nil(t, first.Invites[0].AcceptedAt)
	require.NotNil(t, first.NextCursor)

	// New invites meanwhile change nothing for the pages after the cursor.
	checkEnvelope(t, f.post(invite("late@example.com", "en")), 201)
	second := f.list(t, "?limit=2&cursor="+*first.NextCursor)
	require.Len(t, second.Invites, 2)
	assert.Equal(t, "p2@example.com", *second.Invites[0].Email)
	third := f.list(t, "?limit=2&cursor="+*second.NextCursor)
	require.Len(t, third.Invites, 1)
	assert.Equal(t, "p0@example.com", *third.Invites[0].Email)
	assert.Nil(t, third.NextCursor, "the last page")
	assert.Len(t, f.list(t, "").Invites, 6, "default limit 20")

	// A read key may list; another user sees none of these.
	assert.Len(t, f.list(t, "", "X-Test-Auth", "read").Invites, 6)
	other := f.routes(http.MethodGet, "/v1/users/"+otherID+"/referral-invites")
	var body struct{ Data listData }
	require.NoError(t, json.Unmarshal(other.Body.Bytes(), &body))
	assert.Empty(t, body.Data.Invites)
	// A cursor is the user's own: another user's is refused.
	checkEnvelope(t, f.routes(http.MethodGet, "/v1/users/"+otherID+"/referral-invites?cursor="+*first.NextCursor), 400)
}

func TestListInvitesRefusesBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=abc", "?limit=-1", "?limit=02", "?limit=1&limit=2",
		"?cursor=forged", "?cursor=" + strings.Repeat("A", 48), "?cursor=a&cursor=b"} {
		env := checkEnvelope(t, f.routes(http.MethodGet, path+q), 400)
		assert.NotContains(t, *env.Error, "sql", q)
	}
	checkEnvelope(t, f.routes(http.MethodGet, path, "X-Test-Auth", "none"), 401)
	checkEnvelope(t, f.routes(http.MethodGet, path, "X-Test-Auth", "careless"), 403)
	rec := f.routes(http.MethodPut, path)
	checkEnvelope(t, rec, 405)
	assert.Equal(t, "GET, POST", rec.Header().Get("Allow"))
}

func TestInviteStatuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	checkEnvelope(t, f.post(invite("expired@example.com", "en")), 201)
	f.Advance(31 * 24 * time.Hour)
	checkEnvelope(t, f.post(invite("sent@example.com", "en")), 201)
	checkEnvelope(t, f.post(invite("accepted@example.com", "en")), 201)
	checkEnvelope(t, f.post(invite("revoked@example.com", "en")), 201)
	require.NoError(t, f.h.Suppress(ctx, appID, "suppressed@example.com"))
	checkEnvelope(t, f.post(invite("suppressed@example.com", "en")), 201)
	f.mailer.Fail(fmt.Errorf("550 no (%w)", mail.ErrPermanent))
	f.post(invite("failed@example.com", "en"))
	f.mailer.Fail(nil)
	_, err := f.h.Redeem(ctx, f.store.Invites()[0].Code, newUser, "accepted@example.com")
	require.NoError(t, err)
	id := func(email string) string {
		for _, inv := range f.store.Invites() {
			if inv.Email == email {
				return inv.ID
			}
		}
		t.Fatalf("no invite of %s", email)
		return ""
	}
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+id("revoked@example.com")), 200)

	got := map[string]string{}
	for _, inv := range f.list(t, "").Invites {
		got[*inv.Email] = inv.Status
	}
	assert.Equal(t, map[string]string{
		"expired@example.com": "expired", "sent@example.com": "sent", "accepted@example.com": "accepted",
		"revoked@example.com": "revoked", "suppressed@example.com": "suppressed", "failed@example.com": "failed",
	}, got)
}

func TestReferralCodeRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := f.routes(http.MethodGet, "/v1/users/"+userID+"/referral-code", "X-Test-Auth", "read")
	checkEnvelope(t, rec, 200)
	var body struct {
		Data referral.ReferralInfo
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "https://acme.example/signup?ref="+body.Data.Code, body.Data.Link, "a link before any invite")
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	rec = f.routes(http.MethodGet, "/v1/users/"+userID+"/referral-code")
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, f.store.Invites()[0].Code, body.Data.Code, "the code the email carried")
	assert.Equal(t, 1, body.Data.Invited)
	assert.Equal(t, 1, body.Data.Sent)
	checkEnvelope(t, f.routes(http.MethodPost, "/v1/users/"+userID+"/referral-code"), 405)
	checkEnvelope(t, f.routes(http.MethodGet, "/v1/users/42/referral-code"), 400)
}

func TestResend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	inv := f.store.Invites()[0]
	resend := func(headers ...string) *httptest.ResponseRecorder {
		return f.routes(http.MethodPost, invitesPath+inv.ID+"/resend", headers...)
	}
	rec := resend()
	checkEnvelope(t, rec, 429)
	assert.Equal(t, "86400", rec.Header().Get("Retry-After"), "not within 24h of the last send")
	checkEnvelope(t, resend("X-Test-Auth", "read"), 403)
	f.Advance(24 * time.Hour)
	checkEnvelope(t, resend(), 201)
	msgs := f.mailer.Messages()
	require.Len(t, msgs, 2)
	assert.NotEqual(t, msgs[0].MessageID(), msgs[1].MessageID(), "a new Message-ID")
	assert.Equal(t, msgs[0].To, msgs[1].To)
	f.Advance(24 * time.Hour)
	checkEnvelope(t, resend(), 201)
	f.Advance(24 * time.Hour)
	env := checkEnvelope(t, resend(), 409)
	assert.Contains(t, *env.Error, "most times")
	assert.Len(t, f.mailer.Messages(), 3)

	checkEnvelope(t, f.routes(http.MethodPost, invitesPath+"0190a5e4-2b7c-7e4a-9b1e-3f6d2c8a4b10/resend"), 404)
	checkEnvelope(t, f.routes(http.MethodPost, invitesPath+"not-a-uuid/resend"), 404)
	other := newRequest(http.MethodPost, "/v1/users/"+otherID+"/referral-invites/"+inv.ID+"/resend", "")
	mux := http.NewServeMux()
	mux.Handle(referral.ResendPattern, f.h.Resend())
	checkEnvelope(t, serveMux(mux, other), 404)
}

func TestResendOnlyWhenSentOrFailed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Delivery = referral.Queued })
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	inv := f.store.Invites()[0]
	f.Advance(48 * time.Hour)
	checkEnvelope(t, f.routes(http.MethodPost, invitesPath+inv.ID+"/resend"), 409)
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Delivery = referral.Queued })
	ctx := context.Background()
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	inv := f.store.Invites()[0]
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+inv.ID, "X-Test-Auth", "read"), 403)
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+inv.ID), 200)
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+inv.ID), 200)
	n, err := f.h.DeliverDue(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Empty(t, f.mailer.Messages(), "a revoked queued invite is never sent")
	// A revoked invite does not hold the cooldown.
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+"0190a5e4-2b7c-7e4a-9b1e-3f6d2c8a4b10"), 404)
	rec := f.routes(http.MethodGet, invitesPath+inv.ID)
	checkEnvelope(t, rec, 405)
	assert.Equal(t, "DELETE", rec.Header().Get("Allow"))

	// An accepted invite stays.
	_, err = f.h.Redeem(ctx, inv.Code, newUser, "bob@example.com")
	require.NoError(t, err)
	second := f.store.Invites()[1]
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+second.ID), 409)
}

// A worker that claimed a batch before the revoke does not send the
// revoked invite once the answer it had is stale.
func TestRevokeWhileAWorkerHoldsTheBatch(t *testing.T) {
	t.Parallel()
	bm := gatedMailer{started: make(chan struct{}, 1), release: make(chan struct{})}
	var sent []string // OnOutcome runs on the worker's goroutines, done before DeliverDue returns
	var mu sync.Mutex
	f := newFixture(t, func(c *referral.Config) { c.Delivery = referral.Queued })
	checkEnvelope(t, f.post(invite("first@example.com", "en")), 201)
	checkEnvelope(t, f.post(invite("second@example.com", "en")), 201)
	g := newFixture(t, func(c *referral.Config) {
		c.Delivery, c.Mailer = referral.Queued, bm
		c.Senders = 1 // the second is sent after the first, so after the revoke
		c.Store, c.Recipients, c.Redemptions, c.Referrers = f.store, f.store, f.store, f.store
		c.Now = f.Now
		c.OnOutcome = func(_ context.Context, inv referral.Invite) {
			mu.Lock()
			defer mu.Unlock()
			if inv.Status == referral.StatusSent {
				sent = append(sent, inv.ID)
			}
		}
	})
	done := make(chan int)
	go func() {
		n, _ := g.h.DeliverDue(context.Background())
		done <- n
	}()
	<-bm.started // the batch is claimed and the first is being sent
	second := f.store.Invites()[1]
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+second.ID), 200)
	// The worker asked about the second with the first, before the
	// revoke; that answer serves for DueFresh (see RevokeInvite).
	time.Sleep(referral.DueFresh + 10*time.Millisecond)
	close(bm.release)
	assert.Equal(t, 2, <-done, "both were claimed")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{f.store.Invites()[0].ID}, sent)
	assert.Equal(t, referral.StatusRevoked, f.store.Invites()[1].Status)
}

// A host that does not set Config.Referrers keeps the invite route as it
// was: GET is a 405, and the methods say what is missing.
func TestWithoutReferrers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Referrers = nil })
	rec := f.routes(http.MethodGet, path)
	checkEnvelope(t, rec, 405)
	assert.Equal(t, "POST", rec.Header().Get("Allow"))
	_, err := f.h.Invites(context.Background(), appID, userID, "", 0)
	assert.ErrorIs(t, err, referral.ErrReferrersUnsupported)
	assert.ErrorIs(t, f.h.RevokeInvite(context.Background(), appID, userID, otherID), referral.ErrReferrersUnsupported)
	checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+otherID), 500)
}

// An invite that expired no longer holds the same-address cooldown, even
// when the cooldown is the longer of the two.
func TestExpiryFreesTheCooldown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Cooldown, c.InviteTTL = 60*24*time.Hour, 30*24*time.Hour })
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
	f.Advance(29 * 24 * time.Hour)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 429)
	f.Advance(24 * time.Hour)
	assert.Equal(t, "expired", f.list(t, "").Invites[0].Status)
	checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
}
