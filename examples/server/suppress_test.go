package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSuppressCommands: suppress add stops the invites to an address
// (answered 201, never sent) for one app only, check answers with its exit
// code and prints the reason, remove lifts it; bad input exits 2.
func TestSuppressCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := dirEnv(dir)
	creds := newKey(t, env)
	url := serveInProcess(t, env)
	check := func(app, email string) (int, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"suppress", "check", "-app", app, email}, env, &stdout, &stderr)
		assert.Empty(t, stderr.String())
		return code, stdout.String()
	}
	mails := func() int {
		files, err := filepath.Glob(filepath.Join(dir, "referral-mail", "new", "*"))
		require.NoError(t, err)
		return len(files)
	}
	invite := func(user, email string) {
		t.Helper()
		status, body := post(t, url+"/v1/users/"+user+"/referral-invites", `{"email":"`+email+`","language":"en"}`, keyHeaders(creds))
		require.Equal(t, http.StatusCreated, status, body)
	}

	code, out := check(creds.ClientID, "friend@example.com")
	assert.Equal(t, 1, code)
	assert.Equal(t, "not suppressed\n", out)

	assert.Contains(t, runOK(t, env, "suppress", "add", "-app", creds.ClientID, "Friend@Example.COM"), "suppressed")
	code, out = check(creds.ClientID, "friend@EXAMPLE.com")
	assert.Equal(t, 0, code, "the address is case-folded")
	assert.Regexp(t, `^suppressed: host since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$`, out)
	code, _ = check(newKey(t, env).ClientID, "friend@example.com")
	assert.Equal(t, 1, code, "another app's list")
	var stdout bytes.Buffer
	assert.Equal(t, 0, run(context.Background(), []string{"suppress", "check", "friend@example.com", "-app", creds.ClientID}, env, &stdout, io.Discard),
		"flags after the address")

	invite(userID(1), "friend@example.com") // inline: sent, or not, before the 201
	assert.Equal(t, 0, mails(), "a suppressed address gets no email")
	invite(userID(1), "other@example.com")
	assert.Equal(t, 1, mails())

	assert.Contains(t, runOK(t, env, "suppress", "remove", "-app", creds.ClientID, "friend@example.com"), "not suppressed")
	code, _ = check(creds.ClientID, "friend@example.com")
	assert.Equal(t, 1, code)
	invite(userID(2), "friend@example.com")
	assert.Equal(t, 2, mails(), "sent again once lifted")

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"suppress"}, "usage: suppress add|remove|check"},
		{[]string{"suppress", "list"}, "usage: suppress add|remove|check"},
		{[]string{"suppress", "check"}, "usage: suppress add|remove|check"},
		{[]string{"suppress", "check", "a@example.com", "b@example.com"}, "usage: suppress add|remove|check"},
		// A suppression for no app would stop no app's invites.
		{[]string{"suppress", "add", "a@example.com"}, "suppress add needs -app: the clientId that keys create printed"},
		{[]string{"suppress", "check", "a@example.com"}, "suppress check needs -app"},
		{[]string{"suppress", "remove", "a@example.com"}, "suppress remove needs -app"},
		{[]string{"suppress", "add", "-app", "nope", "a@example.com"}, "-app must be a UUID"},
		{[]string{"suppress", "add", "-app", "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e", "a@example.com"}, "no app"},
		{[]string{"suppress", "check", "-app", creds.ClientID, "not an address"}, "email"},
		{[]string{"suppress", "check", "-nope", "a@example.com"}, "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), tt.args, env, &stdout, &stderr), "%v", tt.args)
		assert.Contains(t, stderr.String(), tt.want, "%v", tt.args)
		assert.Empty(t, stdout.String(), "%v", tt.args)
	}
}
