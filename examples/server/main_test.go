package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tourUser = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"

// buildServer builds the server binary once per test run.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// server is the binary running in its own temporary folder.
type server struct {
	cmd     *exec.Cmd
	dir     string
	url     string
	public  string        // the default -public-url: localhost and url's port
	startup string        // the log up to "listening"
	logs    *bytes.Buffer // the rest, to be read after done
	done    chan error
}

// startServer starts bin in a fresh folder on a free port and waits until
// it listens.
func startServer(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	return startServerIn(t, bin, t.TempDir(), args...)
}

// startServerIn starts bin in dir on a free port and waits until it
// listens.
func startServerIn(t *testing.T, bin, dir string, args ...string) *server {
	t.Helper()
	s := &server{dir: dir, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	s.cmd.Dir = s.dir
	s.cmd.Env = cleanEnv()
	stderr, err := s.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() { s.cmd.Process.Kill() })
	listening := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
	sc := bufio.NewScanner(stderr)
	var startup strings.Builder
	for sc.Scan() {
		line := sc.Text()
		startup.WriteString(line + "\n")
		if m := listening.FindStringSubmatch(line); m != nil {
			s.url = m[1]
			s.public = localhostURL(s.url)
			break
		}
	}
	s.startup = startup.String()
	require.NotEmpty(t, s.url, "server did not start:\n%s", s.startup)
	go func() {
		io.Copy(s.logs, stderr) // keeps the pipe drained; read only after done
		s.done <- s.cmd.Wait()
	}()
	return s
}

// localhostURL is url with its loopback IP replaced by localhost, as the
// server derives its -public-url from its -addr.
func localhostURL(url string) string {
	return strings.Replace(url, "127.0.0.1", "localhost", 1)
}

// cleanEnv is the environment without REFERRAL_ variables, so that a
// developer's settings do not leak into the test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REFERRAL_") {
			env = append(env, kv)
		}
	}
	return env
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) string {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		require.NoError(t, err, "exit after SIGTERM:\n%s", s.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop after SIGTERM")
	}
	return s.logs.String()
}

type credentials struct {
	ClientID string `json:"clientId"`
	APIKey   string `json:"apiKey"`
	Type     string `json:"type"`
}

func createKey(t *testing.T, bin, dir string, args ...string) credentials {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"keys", "create", "-json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	require.NoError(t, err)
	var c credentials
	require.NoError(t, json.Unmarshal(out, &c))
	return c
}

// waitForMail waits for n messages in dir's Maildir (referral-mail, the
// default) and returns them parsed.
func waitForMail(t *testing.T, dir string, n int) []*netmail.Message {
	t.Helper()
	var msgs []*netmail.Message
	for _, raw := range waitForRawMail(t, dir, n) {
		m, err := netmail.ReadMessage(bytes.NewReader(raw))
		require.NoError(t, err)
		msgs = append(msgs, m)
	}
	return msgs
}

// waitForRawMail waits for n messages in dir's Maildir and returns the
// files' bytes.
func waitForRawMail(t *testing.T, dir string, n int) [][]byte {
	t.Helper()
	var files []string
	require.Eventually(t, func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "referral-mail", "new", "*"))
		return len(files) >= n
	}, 20*time.Second, 20*time.Millisecond, "waiting for %d messages", n)
	var out [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		out = append(out, raw)
	}
	return out
}

// TestNewcomerTour is the README's five-minute tour, as CI runs it: build
// the server, start it in an empty folder as the README does, create a
// key, run the README's blocks (curl, fetch, an access token, codes show,
// redemption, unsubscribing, the cooldown, the referrer's list, code,
// resend, revoke and page, then a restart with a host's own ids and
// templates, and one with DKIM) and find the messages.
func TestNewcomerTour(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	s := startServer(t, bin, serverArgs(t, readmeBlock(t, "start"))...)
	assert.Contains(t, s.startup, "next: create an API key with: go run ./examples/server keys create")
	assert.Contains(t, s.startup, filepath.Join(s.dir, "referral-mail", "new"))
	assert.Contains(t, s.startup, filepath.Join(s.dir, "referral.db"))
	assert.Contains(t, s.startup, "DEVELOPMENT key")
	assert.Contains(t, s.startup, s.public+"/signup?ref={code}", "-public-url follows the port")

	creds := createKey(t, bin, s.dir)
	assert.Equal(t, "write", creds.Type)
	tour := tourShell{bin: bin, dir: s.dir, url: s.url, env: []string{"CLIENT_ID=" + creds.ClientID, "API_KEY=" + creds.APIKey}}

	sent := 0
	assert.Contains(t, tour.run(t, readmeBlock(t, "curl")), `"success":true`)
	sent++
	t.Run("fetch", func(t *testing.T) {
		node, err := exec.LookPath("node")
		if err != nil {
			t.Skip("node is not installed: the README's fetch snippet is not run")
		}
		cmd := exec.Command(node, "--input-type=module", "-e", strings.ReplaceAll(readmeBlock(t, "fetch"), "http://127.0.0.1:8080", s.url))
		cmd.Env = append(cleanEnv(), tour.env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), `"success":true`)
		sent++
	})
	// An access token from the token command, as a browser would send it.
	assert.Contains(t, tour.run(t, readmeBlock(t, "token")), `"success":true`)
	sent++

	resp, err := http.Get(s.url + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	mails := map[string]mailParts{}
	for _, m := range waitForMail(t, s.dir, sent) {
		assert.NotEmpty(t, m.Header.Get("Message-Id"))
		mails[m.Header.Get("To")] = decode(t, m)
	}
	assert.Equal(t, "Deine Einladung zu Acme", mails["<friend@example.com>"].subject)
	assert.Equal(t, "AliceさんからAcmeへの招待が届いています", mails["<friend3@example.com>"].subject)
	assert.Equal(t, "Alice via Acme", mails["<friend3@example.com>"].from.Name)

	// codes show finds the code the emails carry; the link leads to the
	// landing page.
	out := tour.run(t, readmeBlock(t, "codes")+"\necho \"CODE=$CODE\"\n")
	m := regexp.MustCompile(`(?m)^CODE=([0-9A-Z]{10})$`).FindStringSubmatch(out)
	require.NotNil(t, m, "no code from codes show:\n%s", out)
	code := m[1]
	assert.Contains(t, out, "link: http://localhost:8080/signup?ref="+code+"\n")
	assert.Contains(t, mails["<friend@example.com>"].body, s.public+"/signup?ref="+code, "the server's own port")
	resp, err = http.Get(s.url + "/signup?ref=" + code)
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), `<strong id="code">`+code+`</strong>`)

	// The friend signs up: the README's redemption block.
	out = tour.run(t, readmeBlock(t, "redeem"), "CODE="+code)
	assert.Contains(t, out, `"data":{"valid":true}`)
	assert.Contains(t, out, `"message":"Referral recorded."`)

	// friend@ unsubscribes through the link in the email's header: the
	// page, the one-click POST, suppress check.
	out = tour.run(t, readmeBlock(t, "unsubscribe"))
	assert.Contains(t, out, "<p>Keine Einladungen von Acme mehr an diese Adresse?</p>")
	assert.Contains(t, out, "<p>Erledigt: Acme sendet keine Einladungen mehr an diese Adresse.</p>")
	assert.Regexp(t, `suppressed: unsubscribed since \d{4}-\d\d-\d\dT`, out)
	// Another referrer's invite to friend@: 201 as ever, and no email (the
	// count after the restart below finds none).
	require.Equal(t, http.StatusCreated, postInviteAs(t, s.url, creds, userID(7), "friend@example.com"))
	// friend3 again from the same referrer: the cooldown.
	out = tour.run(t, readmeBlock(t, "cooldown"))
	assert.Contains(t, out, "HTTP/1.1 429 Too Many Requests")
	assert.Regexp(t, `Retry-After: \d+`, out)
	assert.Contains(t, out, `"error":"this address was invited recently; try again later"`)

	// The referrer's side: a read key lists the invites, newest first, and
	// reads the code; friend3's resend within a day is a 429; the read key
	// may not revoke it, the write key does, and the list shows it revoked.
	out = tour.run(t, readmeBlock(t, "list")+readmeBlock(t, "revoke"))
	assert.Regexp(t, `"invites":\[\{"id":"[0-9a-f-]{36}","email":"friend3@example.com","language":"ja","status":"sent","createdAt":"\d{4}-`, out)
	assert.Regexp(t, `"nextCursor":"[A-Za-z0-9_-]+"`, out)
	assert.Regexp(t, `"data":\{"code":"`+code+`","link":"`+regexp.QuoteMeta(s.public)+`/signup\?ref=`+code+`","invited":\d,"sent":\d,"accepted":1\}`, out)
	assert.Contains(t, out, "HTTP/1.1 429 Too Many Requests")
	assert.Regexp(t, `Retry-After: 86[34]\d\d`, out)
	assert.Contains(t, out, `"error":"too many sends to this invite or from this user; try again later"`)
	assert.Contains(t, out, `"error":"these credentials may not change this user's invites"`)
	assert.Contains(t, out, `{"success":true,"message":"Invite revoked.","error":null,"data":null}`)
	assert.True(t, strings.HasSuffix(out, "\"status\":\"revoked\"\n"), "the list shows it revoked:\n%s", out)
	statuses := map[string]string{}
	for _, inv := range listInvites(t, s.url, keyHeaders(creds)) {
		statuses[*inv.Email] = string(inv.Status)
	}
	assert.Equal(t, "accepted", statuses["friend@example.com"], "redeemed with the user's code")
	assert.Equal(t, "revoked", statuses["friend3@example.com"])

	// The referrer page: the address the block prints, with a token that
	// the routes take (the browser test drives the page itself).
	assert.Contains(t, s.startup, "then open "+s.public+"/referrals#token=TOKEN")
	out = tour.run(t, readmeBlock(t, "page"))
	m = regexp.MustCompile(`(?m)^http://localhost:8080(/referrals)#token=(\S+)$`).FindStringSubmatch(out)
	require.NotNil(t, m, "no page address:\n%s", out)
	resp, err = http.Get(s.url + m[1])
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Len(t, listInvites(t, s.url, map[string]string{"Authorization": "Bearer " + m[2]}), len(statuses), "the page's token lists the user's invites")
	assert.Contains(t, s.stop(t), "stopped")

	// A host's own ids and templates, after a restart.
	mailPkg, err := filepath.Abs("../../mail")
	require.NoError(t, err)
	require.NoError(t, os.Symlink(mailPkg, filepath.Join(s.dir, "mail")), "the checkout's mail folder, which the block copies from")
	setup, start := splitStart(t, readmeBlock(t, "own"))
	tour.run(t, setup)
	assert.FileExists(t, filepath.Join(s.dir, "my-templates", "en.html"))
	s = startServerIn(t, bin, s.dir, serverArgs(t, start)...)
	tour.url = s.url
	out = tour.run(t, readmeBlock(t, "opaque"))
	assert.Contains(t, out, `"success":true`)
	assert.Regexp(t, `code: [0-9A-Z]{10}\nlink: http://localhost:8080/signup\?ref=`, out)
	assert.Len(t, waitForMail(t, s.dir, sent+1), sent+1, "one more: friend4's, none to friend@ after unsubscribing")
	assert.Contains(t, s.stop(t), "stopped")

	t.Run("dkim", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("openssl is not installed: the README's DKIM block is not run")
		}
		setup, start := splitStart(t, readmeBlock(t, "dkim"))
		tour.run(t, setup)
		s := startServerIn(t, bin, s.dir, serverArgs(t, start)...)
		assert.Contains(t, s.startup, `msg="DKIM: signing every message; publish this DNS TXT record" name=ref2026._domainkey.acme.example value="v=DKIM1; k=rsa; p=MIIBIjANBg`)
		assert.Contains(t, s.stop(t), "stopped")
	})
}

// tourShell runs README blocks with bash in the tour's folder, with the
// server's real address and the built binary for "go run ./examples/server".
type tourShell struct {
	bin, dir, url string
	env           []string
}

func (ts tourShell) run(t *testing.T, script string, env ...string) string {
	t.Helper()
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", ts.url)
	script = strings.ReplaceAll(script, "go run ./examples/server", ts.bin)
	cmd := exec.Command("bash", "-c", "set -eo pipefail\n"+script)
	cmd.Dir = ts.dir
	cmd.Env = append(append(cleanEnv(), ts.env...), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", script, out)
	return string(out)
}

// serverArgs returns the flags of a README line that starts the server.
func serverArgs(t *testing.T, line string) []string {
	t.Helper()
	line = strings.TrimSpace(line)
	rest, ok := strings.CutPrefix(line, "go run ./examples/server")
	require.True(t, ok, "not a server start: %q", line)
	return strings.Fields(rest)
}

// splitStart splits a README block into its set-up lines and its last
// line, which starts the server.
func splitStart(t *testing.T, block string) (setup, start string) {
	t.Helper()
	block = strings.TrimSpace(block)
	i := strings.LastIndexByte(block, '\n')
	require.Positive(t, i, "one line only: %q", block)
	return block[:i], block[i+1:]
}

func TestQueuedDelivery(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	s := startServer(t, bin, "-delivery", "queued")
	creds := createKey(t, bin, s.dir)
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		require.Equal(t, http.StatusCreated, postInvite(t, s.url, creds, email, "en"))
	}
	assert.Len(t, waitForMail(t, s.dir, 3), 3)
	s.stop(t)
}

// postInvite sends an invite for tourUser with an API key and returns the
// status.
func postInvite(t *testing.T, url string, creds credentials, email, lang string) int {
	t.Helper()
	status, _ := post(t, url+"/v1/users/"+tourUser+"/referral-invites", `{"email":"`+email+`","language":"`+lang+`"}`, keyHeaders(creds))
	return status
}

// readmeBlock returns the README code block that follows the marker
// <!-- tour:NAME -->.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(raw), "<!-- tour:"+name+" -->")
	require.True(t, ok, "README has no tour:%s block", name)
	_, after, _ = strings.Cut(after, "```")
	_, after, _ = strings.Cut(after, "\n") // the fence's language
	block, _, _ := strings.Cut(after, "```")
	return block
}

func TestMisconfigurationStopsWithOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown delivery", []string{"-delivery", "later"}, "-delivery must be inline or queued"},
		{"bad smtp url", []string{"-smtp", "smtp://user:hunter2@mail.example.com:587?tls=maybe"}, "-smtp"},
		{"plaintext to a remote host", []string{"-smtp", "smtp://mail.example.com:25?tls=none"}, "-smtp"},
		{"unreadable key file", []string{"-token-issuer", "https://id.example", "-token-keys", filepath.Join(dir, "missing.pem")}, "-token-keys"},
		{"keys without issuer", []string{"-token-keys", filepath.Join(dir, "missing.pem")}, "-token-issuer"},
		{"bad signup url", []string{"-signup-url", "http://x.example/no-code"}, "SignupURL"},
		{"bad origin", []string{"-cors-origins", "*"}, "-cors-origins"},
		{"bad address", []string{"-addr", "256.0.0.1:99999"}, "-addr"},
		{"metrics addr without port", []string{"-metrics-addr", "9090"}, `-metrics-addr must be HOST:PORT, like 127.0.0.1:9090, or empty for /metrics on -addr, not "9090"`},
		{"metrics addr with empty port", []string{"-metrics-addr", "localhost:"}, "-metrics-addr must be HOST:PORT"},
		{"metrics addr not listenable", []string{"-metrics-addr", "256.0.0.1:99999"}, "-metrics-addr: listen tcp"},
		{"unknown command", []string{"serve"}, "unknown command"},
		{"bad send timeout", []string{"-send-timeout", "soon"}, "-send-timeout"},
		{"negative backoff", []string{"-retry-backoff", "-1s"}, "-retry-backoff"},
		{"negative invite ttl", []string{"-invite-ttl", "-1h"}, "-invite-ttl must be a duration like 24h, or 0 for none"},
		{"bad resend-after", []string{"-resend-after", "tomorrow"}, "-resend-after must be a duration"},
		{"negative max-resends", []string{"-max-resends", "-1"}, `-max-resends must be a whole number, 0 or more, not "-1"`},
		{"max-resends not a number", []string{"-max-resends", "two"}, "-max-resends"},
		{"negative max-backlog", []string{"-max-backlog", "-5"}, `-max-backlog must be a whole number, 0 or more, not "-5"`},
		{"max-backlog not a number", []string{"-max-backlog", "1e3"}, "-max-backlog"},
		{"max-backlog with inline delivery", []string{"-max-backlog", "5", "-delivery", "inline"}, "-max-backlog 5 bounds queued delivery's backlog: it needs -delivery queued"},
		{"unknown user ids", []string{"-user-ids", "int"}, `-user-ids must be uuid or opaque, not "int"`},
		{"public url without scheme", []string{"-public-url", "localhost:8080"}, "-public-url must be an absolute http(s) URL"},
		{"public url with query", []string{"-public-url", "https://r.example.com/?x=1"}, "-public-url"},
		{"public url with fragment", []string{"-public-url", "https://r.example.com/#top"}, "-public-url"},
		{"public url not http", []string{"-public-url", "ftp://r.example.com"}, "-public-url"},
		{"missing templates folder", []string{"-templates", filepath.Join(dir, "none")}, "-templates"},
		{"broken template", []string{"-templates", brokenTemplates(t)}, "en.txt"},
		{"product name with an address", []string{"-app-name", "Acme <evil@example.com>"}, "ProductName"},
		{"dkim without key", []string{"-dkim-domain", "acme.example", "-dkim-selector", "s1"}, "-dkim-domain, -dkim-selector and -dkim-key go together"},
		{"dkim key only", []string{"-dkim-key", filepath.Join(dir, "dkim.pem")}, "go together"},
		{"missing dkim key", []string{"-dkim-domain", "acme.example", "-dkim-selector", "s1", "-dkim-key", filepath.Join(dir, "none.pem")}, "-dkim-key"},
		{"dkim key not a key", []string{"-dkim-domain", "acme.example", "-dkim-selector", "s1", "-dkim-key", notAKey(t)}, "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "r.db"), "-maildir", filepath.Join(t.TempDir(), "mail")}, tt.args...)
			// A server that starts after all is stopped, and fails the test,
			// rather than serving until the test run times out.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			code := run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
			assert.Equal(t, 2, code)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			assert.Len(t, lines, 1, "one line: %q", stderr.String())
			assert.Contains(t, lines[0], tt.want)
			assert.NotContains(t, stderr.String(), "hunter2")
		})
	}
}

// TestBadFlagsAreBadUsage: a flag the server or a subcommand does not
// know, or one without its value, exits 2 like any other
// misconfiguration; -h exits 0.
func TestBadFlagsAreBadUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-typo"},
		{"-max-backlog"},
		{"keys", "list", "-typo"},
		{"keys", "create", "-type"},
		{"apps", "disable", "-typo"},
		{"codes", "show", "-typo"},
		{"token", "-typo"},
		{"suppress", "check", "-typo"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr)
		assert.Equal(t, 2, code, "%q: %s", args, stderr.String())
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run(t.Context(), []string{"-h"}, func(string) string { return "" }, &stdout, &stderr))
}

// TestHelpPrintsNoSecretFromTheEnvironment: the defaults -h shows come
// from the environment, but not its passwords and secrets.
func TestHelpPrintsNoSecretFromTheEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"REFERRAL_DB":             "postgres://alice:hunter2@127.0.0.1:1/db",
		"REFERRAL_SMTP_URL":       "smtp://bob:hunter2@mail.example.com:587",
		"REFERRAL_WEBHOOK_URL":    "https://app.example/hooks?token=hunter2",
		"REFERRAL_WEBHOOK_SECRET": "whsec_aHVudGVyMg==hunter2",
	}
	for _, args := range [][]string{{"-h"}, {"-typo"}, {"keys", "list", "-h"}} {
		var stdout, stderr bytes.Buffer
		run(t.Context(), args, func(k string) string { return env[k] }, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		assert.NotContains(t, out, "hunter2", "%q", args)
		if args[0] == "-h" {
			assert.Contains(t, out, "postgres://alice:xxxxx@127.0.0.1:1/db", "the rest of the default is shown")
		}
	}
}

// TestDefaultPublicURL: without -public-url, links point where the server
// listens: localhost for a loopback or unspecified host, else the host;
// -public-url, when given, wins; a port 0 takes the one the system chose.
func TestDefaultPublicURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "http://localhost:8080"},
		{[]string{"-addr", "127.0.0.1:9090"}, "http://localhost:9090"},
		{[]string{"-addr", ":9090"}, "http://localhost:9090"},
		{[]string{"-addr", "0.0.0.0:9090"}, "http://localhost:9090"},
		{[]string{"-addr", "[::]:9090"}, "http://localhost:9090"},
		{[]string{"-addr", "[::1]:9090"}, "http://localhost:9090"},
		{[]string{"-addr", "localhost:9090"}, "http://localhost:9090"},
		{[]string{"-addr", "10.0.0.5:9090"}, "http://10.0.0.5:9090"},
		{[]string{"-addr", "[2001:db8::1]:9090"}, "http://[2001:db8::1]:9090"},
		{[]string{"-addr", "referrals.internal:9090"}, "http://referrals.internal:9090"},
		{[]string{"-addr", "10.0.0.5:9090", "-public-url", "https://r.example.com"}, "https://r.example.com"},
	} {
		var c config
		fs := c.newFlagSet("server", func(string) string { return "" }, io.Discard)
		require.NoError(t, fs.Parse(tt.args))
		require.NoError(t, c.checkHandler(), "%v", tt.args)
		assert.Equal(t, tt.want, c.publicURL, "%v", tt.args)
		assert.Equal(t, tt.want+"/signup?ref={code}", c.signupURL, "%v", tt.args)
	}

	var c config
	fs := c.newFlagSet("server", func(string) string { return "" }, io.Discard)
	require.NoError(t, fs.Parse([]string{"-addr", "127.0.0.1:0"}))
	ln, err := c.listen()
	require.NoError(t, err)
	defer ln.Close()
	assert.Equal(t, localhostURL("http://"+ln.Addr().String()), c.publicURL, "the port listened on")
	assert.NotContains(t, c.publicURL, ":0")

	c = config{}
	fs = c.newFlagSet("codes show", func(string) string { return "" }, io.Discard, "public-url")
	require.NoError(t, fs.Parse(nil))
	c.addr = "no-port"
	assert.ErrorContains(t, c.checkHandler(), "-addr must be HOST:PORT")
}

func TestEnvironmentFallbacks(t *testing.T) {
	t.Parallel()
	var c config
	env := map[string]string{"REFERRAL_DELIVERY": "queued", "REFERRAL_ADDR": "127.0.0.1:9999"}
	fs := c.newFlagSet("server", func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, fs.Parse([]string{"-addr", "127.0.0.1:7777"}))
	assert.Equal(t, "queued", c.delivery, "env when no flag")
	assert.Equal(t, "127.0.0.1:7777", c.addr, "the flag wins over env")
	assert.Equal(t, "referral.db", c.db, "default when neither")
	assert.Equal(t, "referral-mail", c.maildir, "not mail: in a checkout, that is the mail package")
	assert.Equal(t, "Referrals <no-reply@localhost>", c.from)
	assert.Equal(t, "uuid", c.userIDs)
	assert.Empty(t, c.appName, "the library's default product name")
	assert.Equal(t, []string{"720h", "24h", "2"}, []string{c.inviteTTL, c.resendAfter, c.maxResends}, "DESIGN.md section 6's defaults")
	require.NoError(t, c.check())
	assert.Equal(t, "http://localhost:7777", c.publicURL, "from -addr")
	assert.Equal(t, "http://localhost:7777/signup?ref={code}", c.signupURL, "the landing page")

	env = map[string]string{"REFERRAL_PUBLIC_URL": "https://referrals.example.com/base/", "REFERRAL_USER_IDS": "opaque", "REFERRAL_APP_NAME": "Acme"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "https://referrals.example.com/base/signup?ref={code}"},
		{[]string{"-signup-url", "https://app.example.com/join?r={code}"}, "https://app.example.com/join?r={code}"},
	} {
		var c config
		fs := c.newFlagSet("server", func(k string) string { return env[k] }, io.Discard)
		require.NoError(t, fs.Parse(tt.args))
		require.NoError(t, c.check())
		assert.Equal(t, "https://referrals.example.com/base", c.publicURL, "trailing slash trimmed")
		assert.Equal(t, tt.want, c.signupURL)
		assert.Equal(t, "opaque", c.userIDs)
		assert.Equal(t, "Acme", c.appName)
	}
}

func TestKeysCommands(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "r.db")
	env := func(k string) string {
		if k == "REFERRAL_DB" {
			return db
		}
		return ""
	}
	runOK := func(args ...string) string { return runOK(t, env, args...) }
	var creds credentials
	require.NoError(t, json.Unmarshal([]byte(runOK("keys", "create", "-json", "-type", "read")), &creds))
	assert.Equal(t, "read", creds.Type)
	out := runOK("keys", "create", "-app", creds.ClientID)
	assert.Contains(t, out, creds.ClientID)
	assert.Contains(t, out, "shown only this once")

	list := runOK("keys", "list", "-app", creds.ClientID)
	assert.Equal(t, 3, strings.Count(list, "\n"), "a header and two keys:\n%s", list)
	assert.NotContains(t, list, creds.APIKey[12:], "list never shows a secret")

	prefix := strings.Split(creds.APIKey, "_")[1]
	assert.Contains(t, runOK("keys", "revoke", "-app", creds.ClientID, "-key", prefix), "revoked 1 key")
	assert.Contains(t, runOK("keys", "revoke", "-app", creds.ClientID), "revoked 1 key")

	var stderr bytes.Buffer
	assert.NotEqual(t, 0, run(context.Background(), []string{"keys", "list"}, env, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "-app")
	assert.NotEqual(t, 0, run(context.Background(), []string{"token", "-app", "x", "-user", tourUser}, env, io.Discard, &stderr))
}

// TestPostgresBackend runs the server on -db postgres://..., as several
// instances of a host would.
func TestPostgresBackend(t *testing.T) {
	t.Parallel()
	url := os.Getenv("REFERRAL_TEST_POSTGRES_URL")
	if url == "" {
		if os.Getenv("REFERRAL_REQUIRE_POSTGRES") != "" {
			t.Fatal("REFERRAL_TEST_POSTGRES_URL is unset but REFERRAL_REQUIRE_POSTGRES is set")
		}
		t.Skip("REFERRAL_TEST_POSTGRES_URL is unset: no PostgreSQL server to run against (.ci/run starts one)")
	}
	bin := buildServer(t)
	s := startServer(t, bin, "-db", url)
	assert.NotContains(t, s.startup, strings.SplitN(strings.SplitN(url, "@", 2)[0], ":", 3)[2], "the password is not logged")
	creds := createKey(t, bin, s.dir, "-db", url)
	assert.Equal(t, http.StatusCreated, postInvite(t, s.url, creds, "pg-friend@example.com", "fr"))
	assert.Len(t, waitForMail(t, s.dir, 1), 1)
	resp, err := http.Get(s.url + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	s.stop(t)
}

// TestDurationFlagsOutOfRange: each duration flag refuses zero, negative
// and unparsable values, given as a flag or in the environment, with one
// line and exit code 2, before anything is opened.
func TestDurationFlagsOutOfRange(t *testing.T) {
	t.Parallel()
	flags := map[string]string{"-send-timeout": "REFERRAL_SEND_TIMEOUT", "-retry-backoff": "REFERRAL_RETRY_BACKOFF"}
	for flag, envName := range flags {
		for _, v := range []string{"0s", "0", "-1s", "abc", "15", ""} {
			for _, viaEnv := range []bool{false, true} {
				if v == "" && viaEnv {
					continue // an empty variable means unset
				}
				t.Run(flag+"="+v+map[bool]string{true: " (env)"}[viaEnv], func(t *testing.T) {
					t.Parallel()
					dir := t.TempDir()
					args := []string{"-db", filepath.Join(dir, "r.db"), "-maildir", filepath.Join(dir, "mail")}
					env := func(string) string { return "" }
					if viaEnv {
						env = func(k string) string {
							if k == envName {
								return v
							}
							return ""
						}
					} else {
						args = append(args, flag, v)
					}
					var stdout, stderr bytes.Buffer
					assert.Equal(t, 2, run(context.Background(), args, env, &stdout, &stderr))
					lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
					assert.Len(t, lines, 1, "one line: %q", stderr.String())
					assert.Contains(t, lines[0], flag+" must be a positive duration")
					assert.NoFileExists(t, filepath.Join(dir, "r.db"), "refused before opening the store")
				})
			}
		}
	}
}

// notAKey is a file that holds no PEM key.
func notAKey(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(f, []byte("not a key\n"), 0o600))
	return f
}

// brokenTemplates is a templates folder whose en.txt does not parse.
func brokenTemplates(t *testing.T) string {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "en.txt"), []byte(`{{define "subject"}}{{if}}{{end}}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "en.html"), []byte(`<p>{{.Link}}</p>`), 0o644))
	return dir
}

// runOK runs the program with args and env, requires exit 0 and returns
// what it printed on stdout.
func runOK(t *testing.T, env func(string) string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, env, &stdout, &stderr)
	require.Equal(t, 0, code, "%v: %s", args, stderr.String())
	return stdout.String()
}
