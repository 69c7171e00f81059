package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

// dirEnv is the environment of a server kept in dir: its database and its
// Maildir (referral-mail, where waitForMail looks).
func dirEnv(dir string) func(string) string {
	return func(k string) string {
		switch k {
		case "REFERRAL_DB":
			return filepath.Join(dir, "referral.db")
		case "REFERRAL_MAILDIR":
			return filepath.Join(dir, "referral-mail")
		}
		return ""
	}
}

// newKey runs "keys create -json" in env's database.
func newKey(t *testing.T, env func(string) string) credentials {
	t.Helper()
	var creds credentials
	require.NoError(t, json.Unmarshal([]byte(runOK(t, env, "keys", "create", "-json")), &creds))
	return creds
}

// post sends body to url with the headers and returns the status and the
// response body.
func post(t *testing.T, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func keyHeaders(c credentials) map[string]string {
	return map[string]string{"X-API-KEY": c.APIKey, "X-API-KEY-TYPE": "write", "X-CLIENT-ID": c.ClientID}
}

// mailParts are the parts of a message a test looks at, decoded.
type mailParts struct {
	subject string
	from    *netmail.Address
	body    string // both alternatives, quoted-printable decoded
}

func decode(t *testing.T, m *netmail.Message) mailParts {
	t.Helper()
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	from, err := m.Header.AddressList("From")
	require.NoError(t, err)
	require.Len(t, from, 1)
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	require.NoError(t, err)
	return mailParts{subject, from[0], string(body)}
}

// TestOpaqueUserIDs: with -user-ids opaque, a host's own ids ("42") work
// through the invite route, codes show, redemption and the store's stats;
// with the default, uuid, the same invite is a 400.
func TestOpaqueUserIDs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := dirEnv(dir)
	creds := newKey(t, env)
	url := serveInProcess(t, env, "-user-ids", "opaque")

	status, body := post(t, url+"/v1/users/42/referral-invites", `{"email":"friend@example.com","language":"en"}`, keyHeaders(creds))
	require.Equal(t, http.StatusCreated, status, body)
	shown := runOK(t, env, "codes", "show", "-user-ids", "opaque", "-app", creds.ClientID, "-user", "42")
	m := regexp.MustCompile(`code: ([0-9A-Z]{10})\n`).FindStringSubmatch(shown)
	require.NotNil(t, m, shown)
	code := m[1]
	for _, m := range waitForMail(t, dir, 1) {
		assert.Contains(t, decode(t, m).body, "ref="+code, "the invite carries the code codes show prints")
	}

	token := strings.TrimSpace(runOK(t, env, "token", "-user-ids", "opaque", "-app", creds.ClientID, "-user", "42"))
	status, body = post(t, url+"/v1/users/42/referral-invites", `{"email":"friend2@example.com","language":"en"}`,
		map[string]string{"Authorization": "Bearer " + token})
	require.Equal(t, http.StatusCreated, status, "an access token for user 42: %s", body)

	status, body = post(t, url+"/v1/referral-codes/"+code+"/redemptions", `{"userId":"new_user-7","email":"friend@example.com"}`, keyHeaders(creds))
	require.Equal(t, http.StatusCreated, status, body)
	status, body = post(t, url+"/v1/referral-codes/"+code+"/redemptions", `{"userId":"42","email":"me@example.com"}`, keyHeaders(creds))
	assert.Equal(t, http.StatusBadRequest, status, "own code: %s", body)

	store, err := sqlite.Open(filepath.Join(dir, "referral.db"))
	require.NoError(t, err)
	defer store.Close()
	stats, err := store.Stats(context.Background(), creds.ClientID, "42")
	require.NoError(t, err)
	assert.Equal(t, referral.Stats{Invited: 2, Sent: 2, Accepted: 1, Redeemed: 1}, stats)

	// The default rule: user ids are UUIDs.
	dir2 := t.TempDir()
	env2 := dirEnv(dir2)
	creds2 := newKey(t, env2)
	url2 := serveInProcess(t, env2)
	status, body = post(t, url2+"/v1/users/42/referral-invites", `{"email":"friend@example.com","language":"en"}`, keyHeaders(creds2))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "must be a UUID")
}

// TestReferrerAndProductInEmail: a token's name claim (token -name) and
// -app-name make the email say who invites to what, in the subject and
// in the From display name; -public-url makes the sign-up link.
func TestReferrerAndProductInEmail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := dirEnv(dir)
	creds := newKey(t, env)
	token := strings.TrimSpace(runOK(t, env, "token", "-app", creds.ClientID, "-user", tourUser, "-name", "Alice"))
	url := serveInProcess(t, env, "-app-name", "Acme", "-public-url", "https://referrals.acme.example/")

	status, body := post(t, url+"/v1/users/"+tourUser+"/referral-invites", `{"email":"bob@example.com","language":"en"}`,
		map[string]string{"Authorization": "Bearer " + token})
	require.Equal(t, http.StatusCreated, status, body)
	msg := decode(t, waitForMail(t, dir, 1)[0])
	assert.Equal(t, "Alice invited you to Acme", msg.subject)
	assert.Equal(t, "Alice via Acme", msg.from.Name)
	assert.Equal(t, "no-reply@localhost", msg.from.Address, "the address stays -from's")
	assert.Regexp(t, `https://referrals\.acme\.example/signup\?ref=[0-9A-Z]{10}`, msg.body)
}

// TestTemplatesOverride: -templates replaces a bundled language with the
// folder's templates.
func TestTemplatesOverride(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "templates")
	require.NoError(t, os.Mkdir(tmpl, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tmpl, "en.txt"), []byte(
		`{{define "subject"}}Come and try {{.ProductName}}{{end}}{{define "text"}}Custom text: {{.Link}}{{end}}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(tmpl, "en.html"), []byte(`<p>Custom HTML: <a href="{{.Link}}">join</a></p>`), 0o644))
	env := dirEnv(dir)
	creds := newKey(t, env)
	url := serveInProcess(t, env, "-templates", tmpl, "-app-name", "Acme")

	status, body := post(t, url+"/v1/users/"+tourUser+"/referral-invites", `{"email":"bob@example.com","language":"en-GB"}`, keyHeaders(creds))
	require.Equal(t, http.StatusCreated, status, body)
	msg := decode(t, waitForMail(t, dir, 1)[0])
	assert.Equal(t, "Come and try Acme", msg.subject)
	assert.Contains(t, msg.body, "Custom text: "+localhostURL(url)+"/signup?ref=")
	assert.Contains(t, msg.body, "Custom HTML:")
}

// TestCodesShow: codes show prints a user's code and share link, the same
// code each time, and refuses ids that break the rule and unknown apps.
func TestCodesShow(t *testing.T) {
	t.Parallel()
	env := dirEnv(t.TempDir())
	creds := newKey(t, env)
	first := runOK(t, env, "codes", "show", "-app", strings.ToUpper(creds.ClientID), "-user", strings.ToUpper(tourUser))
	m := regexp.MustCompile(`^code: ([0-9A-Z]{10})\nlink: (.*)\n$`).FindStringSubmatch(first)
	require.NotNil(t, m, first)
	assert.Equal(t, "http://localhost:8080/signup?ref="+m[1], m[2])
	assert.Equal(t, first, runOK(t, env, "codes", "show", "-app", creds.ClientID, "-user", tourUser), "the same code again")
	other := runOK(t, env, "codes", "show", "-app", creds.ClientID, "-user", tourUser, "-public-url", "https://r.example.com")
	assert.Equal(t, "code: "+m[1]+"\nlink: https://r.example.com/signup?ref="+m[1]+"\n", other)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"codes"}, "usage: codes show"},
		{[]string{"codes", "show", "-app", creds.ClientID}, "needs -user"},
		// A code for no app would look valid at the code lookup, but no
		// key or token redeems it: it would credit nobody.
		{[]string{"codes", "show", "-user", tourUser}, "codes show needs -app: the clientId that keys create printed"},
		{[]string{"codes", "show", "-app", creds.ClientID, "-user", "42"}, "userId must be a UUID"},
		{[]string{"codes", "show", "-user", tourUser, "-app", "nope"}, "-app must be a UUID"},
		{[]string{"codes", "show", "-user", tourUser, "-app", "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e"}, "no app"},
		{[]string{"codes", "show", "-user", tourUser, "-user-ids", "int"}, "-user-ids must be uuid or opaque"},
	} {
		var stderr bytes.Buffer
		assert.Equal(t, 1, run(context.Background(), tt.args, env, io.Discard, &stderr), "%v", tt.args)
		assert.Contains(t, stderr.String(), tt.want, "%v", tt.args)
	}
}

// TestTokenUserIDs: token -user takes a UUID, or with -user-ids opaque a
// host's own id, and refuses up front an id that breaks the rule.
func TestTokenUserIDs(t *testing.T) {
	t.Parallel()
	env := dirEnv(t.TempDir())
	app := "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e"
	assert.NotEmpty(t, runOK(t, env, "token", "-app", app, "-user", "42", "-user-ids", "opaque"))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-user", "42"}, "-user must be a UUID"},
		{[]string{"-user", "alice smith", "-user-ids", "opaque"}, "-user must be 1 to 128 letters"},
		{[]string{"-user", strings.Repeat("a", 129), "-user-ids", "opaque"}, "-user must be 1 to 128 letters"},
	} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 1, run(context.Background(), append([]string{"token", "-app", app}, tt.args...), env, &stdout, &stderr), "%v", tt.args)
		assert.Contains(t, stderr.String(), tt.want, "%v", tt.args)
		assert.Empty(t, stdout.String(), "no token for an id the routes refuse")
	}
}

// TestUsageAndReadmeListEveryFlag: -h lists the flags and subcommands, and
// the README's server table has a row for every flag with its variable.
func TestUsageAndReadmeListEveryFlag(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	assert.Equal(t, 0, run(context.Background(), []string{"-h"}, func(string) string { return "" }, io.Discard, &stderr))
	usage := stderr.String()
	for _, want := range []string{"codes show -app UUID -user ID", "token -app UUID -user ID [-name N]", "take -user-ids", "suppress add|remove|check -app UUID EMAIL", "default http://localhost:PORT of -addr"} {
		assert.Contains(t, usage, want)
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var c config
	for _, o := range c.options() {
		assert.Contains(t, usage, "-"+o.flag+" string")
		assert.Contains(t, usage, "(env "+o.env+")")
		assert.Contains(t, string(readme), "| `-"+o.flag+"` | `"+o.env+"` |", "README's flag table")
	}
}
