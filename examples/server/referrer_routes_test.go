package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// call sends a request with the headers (and a JSON body, if any) and
// returns the response, its body read.
func call(t *testing.T, method, url, body string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func readHeaders(c credentials) map[string]string {
	return map[string]string{"X-API-KEY": c.APIKey, "X-API-KEY-TYPE": "read", "X-CLIENT-ID": c.ClientID}
}

// listInvites lists tourUser's first page with the headers.
func listInvites(t *testing.T, base string, headers map[string]string) []referral.InviteView {
	t.Helper()
	resp, body := call(t, http.MethodGet, base+"/v1/users/"+tourUser+"/referral-invites", "", headers)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var env struct{ Data referral.InvitePage }
	require.NoError(t, json.Unmarshal([]byte(body), &env), body)
	return env.Data.Invites
}

// TestReferrerRoutes runs the built server's referrer routes over HTTP: a
// read key lists a user's invites and their code but cannot revoke or
// resend (403); a resend within 24 h of the send is a 429 with
// Retry-After; a revoked invite lists as revoked; another user's token
// sees nothing of them.
func TestReferrerRoutes(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	s := startServer(t, bin)
	write := createKey(t, bin, s.dir)
	read := createKey(t, bin, s.dir, "-app", write.ClientID, "-type", "read")
	require.Equal(t, "read", read.Type)
	users := s.url + "/v1/users/" + tourUser

	require.Equal(t, http.StatusCreated, postInvite(t, s.url, write, "friend@example.com", "fr"))
	invs := listInvites(t, s.url, readHeaders(read))
	require.Len(t, invs, 1)
	inv := invs[0]
	assert.Equal(t, "friend@example.com", *inv.Email)
	assert.Equal(t, "fr", inv.Language)
	assert.Equal(t, referral.StatusSent, inv.Status)
	assert.NotNil(t, inv.SentAt)
	assert.Nil(t, inv.AcceptedAt)

	resp, body := call(t, http.MethodGet, users+"/referral-code", "", readHeaders(read))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var code struct{ Data referral.ReferralInfo }
	require.NoError(t, json.Unmarshal([]byte(body), &code))
	assert.Regexp(t, `^[0-9A-Z]{10}$`, code.Data.Code)
	assert.Equal(t, s.public+"/signup?ref="+code.Data.Code, code.Data.Link)
	assert.Equal(t, referral.ReferralInfo{Code: code.Data.Code, Link: code.Data.Link, Invited: 1, Sent: 1}, code.Data)

	invite := users + "/referral-invites/" + inv.ID
	for _, tt := range []struct{ method, url string }{{http.MethodDelete, invite}, {http.MethodPost, invite + "/resend"}} {
		resp, body := call(t, tt.method, tt.url, "", readHeaders(read))
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a read key: %s %s", tt.method, body)
	}

	resp, body = call(t, http.MethodPost, invite+"/resend", "", keyHeaders(write))
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After: %q", resp.Header.Get("Retry-After"))
	assert.InDelta(t, 24*3600, retry, 60, "a day after the send")

	resp, body = call(t, http.MethodDelete, invite, "", keyHeaders(write))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.JSONEq(t, `{"success":true,"message":"Invite revoked.","error":null,"data":null}`, body)
	invs = listInvites(t, s.url, readHeaders(read))
	require.Len(t, invs, 1)
	assert.Equal(t, referral.StatusRevoked, invs[0].Status)
	resp, body = call(t, http.MethodPost, invite+"/resend", "", keyHeaders(write))
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "a revoked invite is not resent: %s", body)

	// The access token of the user lists; another user's token, and an
	// invite that is not theirs, get nothing.
	token := func(user string) map[string]string {
		cmd := exec.Command(bin, "token", "-app", write.ClientID, "-user", user)
		cmd.Dir = s.dir
		out, err := cmd.Output()
		require.NoError(t, err)
		return map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(out))}
	}
	assert.Len(t, listInvites(t, s.url, token(tourUser)), 1)
	resp, body = call(t, http.MethodGet, users+"/referral-invites", "", token(userID(2)))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = call(t, http.MethodDelete, s.url+"/v1/users/"+userID(2)+"/referral-invites/"+inv.ID, "", keyHeaders(write))
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "another user's invite: %s", body)
	resp, body = call(t, http.MethodGet, users+"/referral-invites?limit=0", "", readHeaders(read))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	s.stop(t)
}

// TestResendFlags: -resend-after 0 lets an invite be resent at once (a
// second email), -max-resends bounds the resends (then 409), and a short
// -invite-ttl shows a sent invite expired.
func TestResendFlags(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	s := startServer(t, bin, "-resend-after", "0", "-max-resends", "1", "-invite-ttl", "1ms")
	write := createKey(t, bin, s.dir)
	require.Equal(t, http.StatusCreated, postInvite(t, s.url, write, "friend@example.com", "en"))
	invs := listInvites(t, s.url, keyHeaders(write))
	require.Len(t, invs, 1)
	assert.Equal(t, referral.StatusExpired, invs[0].Status, "sent more than 1ms ago")

	resend := s.url + "/v1/users/" + tourUser + "/referral-invites/" + invs[0].ID + "/resend"
	resp, body := call(t, http.MethodPost, resend, "", keyHeaders(write))
	assert.Equal(t, http.StatusCreated, resp.StatusCode, body)
	msgs := waitForMail(t, s.dir, 2)
	assert.NotEqual(t, msgs[0].Header.Get("Message-Id"), msgs[1].Header.Get("Message-Id"), "a new message")
	resp, body = call(t, http.MethodPost, resend, "", keyHeaders(write))
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "resent once, the most allowed: %s", body)
	s.stop(t)
}
