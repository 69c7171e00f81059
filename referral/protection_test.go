package referral_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
)

// sentTo counts the emails f sent to an address.
func sentTo(f *fixture, to string) int {
	n := 0
	for _, m := range f.mailer.Messages() {
		if m.To == to {
			n++
		}
	}
	return n
}

// Ways around the recipient protections that a review found, each closed.

// Inviting, revoking and inviting again does not mail one person past
// the recipient limit: a revoked invite was still sent.
func TestRevokeLoopStaysWithinRecipientLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for range 5 {
		checkEnvelope(t, f.post(invite("victim@example.com", "en")), 201)
		invs := f.store.Invites()
		checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+invs[len(invs)-1].ID), 200)
	}
	assert.LessOrEqual(t, sentTo(f, "victim@example.com"), 3)
}

// Every resend is one more email to the recipient.
func TestResendsCountTowardsRecipientLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) {
		c.Auth = referral.AuthenticatorFunc(func(r *http.Request, user string) (referral.Principal, error) {
			return referral.Principal{AppID: appID, UserID: user}, nil
		})
	})
	ctx := context.Background()
	send := func(referrer int) {
		user := fmt.Sprintf("00000000-0000-4000-8000-%012d", referrer)
		checkEnvelope(t, f.serve(newRequest(http.MethodPost, "/v1/users/"+user+"/referral-invites", invite("pop@example.com", "en"))), 201)
	}
	send(0)
	first := f.store.Invites()[0]
	for range 2 {
		f.Advance(25 * time.Hour)
		_, err := f.h.ResendInvite(ctx, appID, first.ReferrerID, first.ID)
		require.NoError(t, err)
	}
	send(1)
	send(2)
	send(3)
	assert.LessOrEqual(t, sentTo(f, "pop@example.com"), 3)
}

// Someone who signed up is not invited again.
func TestAcceptedInviteIsNotResent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("joined@example.com", "en")), 201)
	inv := f.store.Invites()[0]
	_, err := f.h.Redeem(context.Background(), inv.Code, "8b3c4d5e-6f70-4a1b-9c2d-3e4f5a6b7c8d", "joined@example.com")
	require.NoError(t, err)
	require.Equal(t, "accepted", f.list(t, "").Invites[0].Status)
	f.Advance(25 * time.Hour)
	assert.Equal(t, 409, f.routes(http.MethodPost, invitesPath+inv.ID+"/resend").Code)
}

// An invite whose address retention erased cannot be resent.
func TestErasedInviteIsNotResent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	checkEnvelope(t, f.post(invite("old@example.com", "en")), 201)
	inv := f.store.Invites()[0]
	f.Advance(181 * 24 * time.Hour)
	n, err := f.h.EraseExpiredAddresses(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, 409, f.routes(http.MethodPost, invitesPath+inv.ID+"/resend").Code)
}

// Retrying a failed invite with its Idempotency-Key does not mail an
// address suppressed since.
func TestIdempotentRetryHonoursSuppression(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mailer.Fail(errors.New("421 try later"))
	require.Equal(t, 500, f.post(invite("x@example.com", "en"), "Idempotency-Key", "k1").Code)
	f.mailer.Fail(nil)
	require.NoError(t, f.h.Suppress(context.Background(), appID, "x@example.com"))
	f.post(invite("x@example.com", "en"), "Idempotency-Key", "k1")
	assert.Zero(t, sentTo(f, "x@example.com"))
}

// Nor one that bounced on the first attempt.
func TestIdempotentRetryAfterABounce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mailer.Fail(fmt.Errorf("550 no such user (%w, %w)", mail.ErrRecipientRefused, mail.ErrPermanent))
	require.Equal(t, 500, f.post(invite("gone@example.com", "en"), "Idempotency-Key", "k2").Code)
	_, found, _ := f.h.Suppressed(context.Background(), appID, "gone@example.com")
	require.True(t, found)
	f.mailer.Fail(nil)
	f.post(invite("gone@example.com", "en"), "Idempotency-Key", "k2")
	assert.Zero(t, sentTo(f, "gone@example.com"))
}

// Invites that failed without reaching anyone do not use up the
// recipient's share: after a mail server was down for three tries, the
// next invite is sent, not answered 201 and dropped.
func TestFailedSendsDoNotUseTheRecipientLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *referral.Config) { c.Cooldown = -1 })
	f.mailer.Fail(errors.New("dial tcp 127.0.0.1:25: connection refused"))
	for range 3 {
		checkEnvelope(t, f.post(invite("x@example.com", "en")), 500)
	}
	f.mailer.Fail(nil)
	checkEnvelope(t, f.post(invite("x@example.com", "en")), 201)
	assert.Equal(t, 1, sentTo(f, "x@example.com"))
}
