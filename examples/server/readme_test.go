package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadmeMountSnippet: the README's "Mounting in your app" is the code
// of examples/mount between its mount:begin and mount:end lines (less one
// tab of indentation), which builds, and it mounts every route with
// redemptions, recipient protection and the referrer's side configured.
func TestReadmeMountSnippet(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../mount/main.go")
	require.NoError(t, err)
	code := between(t, string(src), "\t// mount:begin\n", "\t// mount:end\n")
	var dedented strings.Builder
	for _, line := range strings.SplitAfter(code, "\n") {
		dedented.WriteString(strings.TrimPrefix(line, "\t"))
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	assert.Equal(t, dedented.String(), between(t, string(readme), "<!-- mount:begin -->\n```go\n", "```\n<!-- mount:end -->"),
		"README and examples/mount/main.go differ: copy the file's lines into the README")
	for _, want := range []string{
		"mux.Handle(referral.Pattern, h)",
		"mux.Handle(referral.CodePattern, h.CodeLookup())",
		"mux.Handle(referral.RedemptionPattern, h.Redemptions(apiKeys))",
		"mux.Handle(referral.UnsubscribePattern, h.Unsubscribe())",
		"mux.Handle(referral.ReferralCodePattern, h.ReferralCode())",
		"mux.Handle(referral.InvitePattern, h.Invite())",
		"mux.Handle(referral.ResendPattern, h.Resend())",
		"Redemptions: store,",
		"Recipients:  store,",
		"Referrers:   store,",
		"UnsubscribeURL: ",
		"go h.Run(ctx)",
	} {
		assert.Contains(t, code, want)
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "mount"), "../mount").CombinedOutput()
	require.NoError(t, err, "examples/mount does not build: %s", out)
}

func between(t *testing.T, s, begin, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, begin)
	require.True(t, ok, "no %q", begin)
	inside, _, ok := strings.Cut(after, end)
	require.True(t, ok, "no %q", end)
	return inside
}

// TestJSONWithoutContentType is the README's note on userdocks' client:
// given options, it sends its headers as given, and a JSON body without
// Content-Type goes out as text/plain, which gets a 415 saying which header
// to send; with the header the same body is taken.
func TestJSONWithoutContentType(t *testing.T) {
	t.Parallel()
	env := dirEnv(t.TempDir())
	creds := newKey(t, env)
	url := serveInProcess(t, env) + "/v1/users/" + tourUser + "/referral-invites"
	body := `{"email":"friend@example.com","language":"DE"}`
	headers := keyHeaders(creds)
	headers["Content-Type"] = "text/plain;charset=UTF-8" // what fetch sends for a string body
	status, resp := post(t, url, body, headers)
	assert.Equal(t, http.StatusUnsupportedMediaType, status)
	assert.Contains(t, resp, `"error":"Content-Type must be application/json: send the header Content-Type: application/json with the JSON body"`)
	assert.NotContains(t, resp, `"errors"`, "the envelope has error, not the errors array the client reads")
	headers["Content-Type"] = "application/json"
	status, resp = post(t, url, body, headers)
	assert.Equal(t, http.StatusCreated, status, resp)
}
