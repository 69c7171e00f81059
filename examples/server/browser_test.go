package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumPath returns the installed Chromium, or skips the test when
// there is none (and fails it when REFERRAL_REQUIRE_BROWSER is set, as in
// CI, which installs it).
func chromiumPath(t *testing.T, what string) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("REFERRAL_REQUIRE_BROWSER") != "" {
			t.Fatal("chromium is not installed but REFERRAL_REQUIRE_BROWSER is set")
		}
		t.Skip("chromium is not installed (apt-get install chromium): " + what + " does not run")
	}
	return chromium
}

// stepTimeout bounds each step in the browser: generous, for a loaded CI
// machine.
const stepTimeout = 30 * time.Second

// tab is one page of a headless Chromium that the test started, driven by
// chromedp; both go when the test ends. It keeps what went wrong in the
// page: console errors, exceptions, CSP violations.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

// newTab starts Chromium and opens a blank page in it.
func newTab(t *testing.T, chromium string) *tab {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.Headless, chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU, chromedp.Flag("disable-quic", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium will not start its sandbox as root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	tb := &tab{t: t, ctx: ctx}
	// Listen starts the browser, on a context without a timeout: the
	// browser lives as long as the context of its first call.
	require.NoError(t, chromedp.Listen(ctx, tb.record))
	return tb
}

// record keeps an event that shows the page misbehaving: a console error,
// an uncaught exception, a browser error such as a CSP violation. A failed
// request is not one: the page shows the API's error answers.
func (tb *tab) record(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert, runtime.ConsoleAPICalledTypeWarning:
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			p = fmt.Sprintf("console.%s %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		p = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			p += " " + ev.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
			p = fmt.Sprintf("%s error: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	}
	if p != "" {
		tb.mu.Lock()
		tb.problems = append(tb.problems, p)
		tb.mu.Unlock()
	}
}

// Problems returns what went wrong in the page so far.
func (tb *tab) Problems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Clone(tb.problems)
}

// Do runs the steps, each within stepTimeout, and fails the test at the
// first that fails.
func (tb *tab) Do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	for _, step := range steps {
		ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
		err := chromedp.Do(ctx, step)
		cancel()
		require.NoError(tb.t, err, "page problems: %v", tb.Problems())
	}
}

// Navigate opens url and waits until its document has loaded.
func (tb *tab) Navigate(url string) {
	tb.t.Helper()
	tb.Do(chromedp.Navigate(url))
}

// WaitFor waits until the JavaScript expression is true.
func (tb *tab) WaitFor(expr string) {
	tb.t.Helper()
	tb.Do(chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout)))
}

// Click clicks the element that the JavaScript expression returns with
// the mouse, as a user would (chromedp scrolls it into view first).
func (tb *tab) Click(elementExpr string) {
	tb.t.Helper()
	tb.Do(chromedp.Click(chromedp.JSPath(elementExpr)))
}

// String evaluates expr to a string.
func (tb *tab) String(expr string) string {
	tb.t.Helper()
	return evaluate[string](tb, expr)
}

// evaluate evaluates the JavaScript expression to a T.
func evaluate[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(tb.t, err, "%s; page problems: %v", expr, tb.Problems())
	return v
}

// TestBrowserCORS has a real browser (headless Chromium, when installed)
// load a page from one origin that calls the server on another with an
// access token and a JSON body: the preflight must pass for a listed
// origin and the call must be blocked for any other.
func TestBrowserCORS(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t, "the browser CORS check")
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
