package main

import (
	"bytes"
	"io"
	"net/http"
	netmail "net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnsubscribe runs the built server: an invite's email carries the
// RFC 8058 headers and the same link in its body; GET on the link shows a
// page and changes nothing; the one-click POST a mail client sends
// unsubscribes; a later invite to the address from another referrer is
// answered as before but sends nothing; a forged token is a 404.
func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	s := startServer(t, bin)
	creds := createKey(t, bin, s.dir)
	invite := func(user string) string {
		t.Helper()
		status, body := post(t, s.url+"/v1/users/"+user+"/referral-invites", `{"email":"Friend@Example.com","language":"en"}`, keyHeaders(creds))
		require.Equal(t, http.StatusCreated, status, body)
		return body
	}
	first := invite(tourUser)

	raw := waitForRawMail(t, s.dir, 1)[0]
	assert.Contains(t, string(raw), "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	header := m.Header.Get("List-Unsubscribe")
	found := regexp.MustCompile(`^<(` + regexp.QuoteMeta(s.public) + `/v1/unsubscribe/([A-Za-z0-9_-]{43}))>$`).FindStringSubmatch(header)
	require.NotNil(t, found, "List-Unsubscribe: %q", header)
	link, token := found[1], found[2]
	assert.Contains(t, decode(t, m).body, link, "the body links to the same URL")
	// The server listens on 127.0.0.1 only: localhost may be ::1 first.
	target := s.url + strings.TrimPrefix(link, s.public)

	// GET: the confirmation page, and nothing changes (mail scanners
	// follow links): another referrer's invite is still sent.
	status, page := request(t, http.MethodGet, target, "", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, page, `<form method="post">`)
	assert.Equal(t, first, invite("0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"))
	waitForRawMail(t, s.dir, 2)

	// What a mail client sends for one click; idempotent.
	for range 2 {
		status, page = request(t, http.MethodPost, target, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
		assert.Equal(t, http.StatusOK, status)
		assert.Contains(t, page, "will send no more invitations to this address")
	}

	// A third referrer: the same answer, and no email (inline delivery has
	// sent what it sends before the 201).
	assert.Equal(t, first, invite("1d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6"))
	assert.Contains(t, s.stop(t), "stopped")
	files, err := filepath.Glob(filepath.Join(s.dir, "referral-mail", "new", "*"))
	require.NoError(t, err)
	assert.Len(t, files, 2, "no email after unsubscribing")

	// A forged token, and one of no invite: 404, also with the server
	// restarted on the same database.
	s = startServerIn(t, bin, s.dir)
	forged := token[:20] + map[bool]string{true: "B", false: "A"}[token[20] == 'A'] + token[21:]
	for _, tok := range []string{forged, strings.Repeat("A", 43), "nope"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			status, _ := request(t, method, s.url+"/v1/unsubscribe/"+tok, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
			assert.Equal(t, http.StatusNotFound, status, "%s %s", method, tok)
		}
	}
	status, _ = request(t, http.MethodPost, s.url+"/v1/unsubscribe/"+token, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
	assert.Equal(t, http.StatusOK, status, "the real token still works after a restart")
	s.stop(t)
}

// request sends body (if any) with its content type and returns the
// status and the response body.
func request(t *testing.T, method, url, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
