package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserCORS has a real browser (headless Chromium, when installed)
// load a page from one origin that calls the server on another with an
// access token and a JSON body: the preflight must pass for a listed
// origin and the call must be blocked for any other.
func TestBrowserCORS(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("REFERRAL_REQUIRE_BROWSER") != "" {
			t.Fatal("chromium is not installed but REFERRAL_REQUIRE_BROWSER is set")
		}
		t.Skip("chromium is not installed (apt-get install chromium): the browser CORS check does not run")
	}
	allowed := listenPage(t)
	other := listenPage(t)
	bin := buildServer(t)
	s := startServer(t, bin, "-cors-origins", "http://"+allowed.Addr().String())
	creds := createKey(t, bin, s.dir)
	cmd := exec.Command(bin, "token", "-app", creds.ClientID, "-user", tourUser)
	cmd.Dir = s.dir
	tok, err := cmd.Output()
	require.NoError(t, err)

	page := fmt.Sprintf(`<!DOCTYPE html><html><body><pre id="out">pending</pre><script>
fetch(%q, {method: 'POST', headers: {'Authorization': 'Bearer %s', 'Content-Type': 'application/json'},
  body: JSON.stringify({email: 'browser-' + location.port + '@example.com', language: 'en'})})
  .then(r => r.text().then(b => { document.getElementById('out').textContent = 'status ' + r.status + ' ' + b; }))
  .catch(e => { document.getElementById('out').textContent = 'blocked ' + e; });
</script></body></html>`, s.url+"/v1/users/"+tourUser+"/referral-invites", strings.TrimSpace(string(tok)))
	for _, ln := range []net.Listener{allowed, other} {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(page))
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}

	dom := func(ln net.Listener) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
			"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
			"--disable-sync", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000",
			"--dump-dom", "http://"+ln.Addr().String()+"/").Output()
		require.NoError(t, err)
		return string(out)
	}
	assert.Contains(t, dom(allowed), `status 201 {"success":true`)
	assert.Contains(t, dom(other), "blocked")
	s.stop(t)
}

func listenPage(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}
