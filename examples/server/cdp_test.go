package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"
)

// A small Chrome DevTools Protocol client for the browser tests: headless
// Chromium driven over its debugging WebSocket (the protocol chromedp
// speaks), with only what the tests use: navigate, evaluate, wait, click,
// type, press keys, set the viewport, and collect console errors.

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

// tab is one page of a headless Chromium that the test started.
type tab struct {
	t       *testing.T
	ws      *websocket.Conn
	session string

	mu       sync.Mutex
	nextID   int
	waiting  map[int]chan cdpReply
	problems []string // console errors, exceptions, CSP violations
	closed   chan struct{}
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// newTab starts Chromium and opens a blank page in it; both go when the
// test ends.
func newTab(t *testing.T, chromium string) *tab {
	t.Helper()
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--no-default-browser-check", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--remote-allow-origins=http://127.0.0.1", "about:blank")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		listening := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		for sc.Scan() { // keep the pipe drained
		}
	}()
	var endpoint string
	select {
	case endpoint = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not start its DevTools endpoint")
	}
	ws, err := websocket.Dial(endpoint, "", "http://127.0.0.1")
	require.NoError(t, err)
	ws.MaxPayloadBytes = 64 << 20
	tb := &tab{t: t, ws: ws, waiting: map[int]chan cdpReply{}, closed: make(chan struct{})}
	go tb.read()
	t.Cleanup(func() { ws.Close() })

	var target struct{ TargetID string }
	tb.callBrowser("Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	tb.callBrowser("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	tb.session = attached.SessionID
	for _, domain := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		tb.call(domain, nil, nil)
	}
	return tb
}

// read dispatches replies to their callers and keeps the problems that
// events report.
func (tb *tab) read() {
	defer close(tb.closed)
	for {
		var raw []byte
		if err := websocket.Message.Receive(tb.ws, &raw); err != nil {
			return
		}
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			cdpReply
		}
		if json.Unmarshal(raw, &msg) != nil {
			continue
		}
		if msg.ID != 0 {
			tb.mu.Lock()
			ch := tb.waiting[msg.ID]
			delete(tb.waiting, msg.ID)
			tb.mu.Unlock()
			if ch != nil {
				ch <- msg.cdpReply
			}
			continue
		}
		if p := problem(msg.Method, msg.Params); p != "" {
			tb.mu.Lock()
			tb.problems = append(tb.problems, p)
			tb.mu.Unlock()
		}
	}
}

// problem describes an event that shows the page misbehaving: a console
// error, an uncaught exception, a browser error such as a CSP violation.
// A failed request is not one: the page shows the API's error answers.
func problem(method string, params json.RawMessage) string {
	switch method {
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string
			Args []struct{ Value any }
		}
		json.Unmarshal(params, &p)
		if p.Type == "error" || p.Type == "assert" || p.Type == "warning" {
			return fmt.Sprintf("console.%s %v", p.Type, p.Args)
		}
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text      string
				Exception struct{ Description string }
			}
		}
		json.Unmarshal(params, &p)
		return "exception: " + p.ExceptionDetails.Text + " " + p.ExceptionDetails.Exception.Description
	case "Log.entryAdded":
		var p struct {
			Entry struct{ Source, Level, Text, URL string }
		}
		json.Unmarshal(params, &p)
		if p.Entry.Level == "error" && p.Entry.Source != "network" {
			return fmt.Sprintf("%s error: %s %s", p.Entry.Source, p.Entry.Text, p.Entry.URL)
		}
	}
	return ""
}

// Problems returns what went wrong in the page so far.
func (tb *tab) Problems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.problems...)
}

func (tb *tab) callBrowser(method string, params, result any) {
	tb.send("", method, params, result)
}

func (tb *tab) call(method string, params, result any) {
	tb.send(tb.session, method, params, result)
}

func (tb *tab) send(session, method string, params, result any) {
	tb.t.Helper()
	tb.mu.Lock()
	tb.nextID++
	id := tb.nextID
	ch := make(chan cdpReply, 1)
	tb.waiting[id] = ch
	tb.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	require.NoError(tb.t, websocket.JSON.Send(tb.ws, msg))
	select {
	case r := <-ch:
		if r.Error != nil {
			tb.t.Fatalf("%s: %s", method, r.Error.Message)
		}
		if result != nil {
			require.NoError(tb.t, json.Unmarshal(r.Result, result), "%s: %s", method, r.Result)
		}
	case <-tb.closed:
		tb.t.Fatalf("%s: the browser closed the connection", method)
	case <-time.After(30 * time.Second):
		tb.t.Fatalf("%s: no answer", method)
	}
}

// Navigate opens url and waits until its document has loaded.
func (tb *tab) Navigate(url string) {
	tb.t.Helper()
	tb.call("Page.navigate", map[string]any{"url": url}, nil)
	tb.WaitFor(`document.readyState === "complete"`)
}

// Eval evaluates a JavaScript expression (awaiting a promise) and stores
// its JSON value in result, if not nil.
func (tb *tab) Eval(expr string, result any) {
	tb.t.Helper()
	var r struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	tb.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.ExceptionDetails != nil {
		tb.t.Fatalf("%s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if result != nil {
		require.NoError(tb.t, json.Unmarshal(r.Result.Value, result), "%s: %s", expr, r.Result.Value)
	}
}

// String evaluates expr to a string.
func (tb *tab) String(expr string) string {
	tb.t.Helper()
	var s string
	tb.Eval(expr, &s)
	return s
}

// WaitFor waits until the expression is true.
func (tb *tab) WaitFor(expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		tb.Eval("Boolean("+expr+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("waited 30s for %s; page problems: %v", expr, tb.Problems())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Click clicks the middle of the element that the expression returns, with
// the mouse, as a user would (after scrolling it into view).
func (tb *tab) Click(elementExpr string) {
	tb.t.Helper()
	var at struct{ X, Y float64 }
	tb.Eval(`(() => { const el = `+elementExpr+`; el.scrollIntoView({block: "center"});
		const r = el.getBoundingClientRect(); return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()`, &at)
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		tb.call("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": at.X, "y": at.Y, "button": "left", "clickCount": 1}, nil)
	}
}

// Type focuses the element that the expression returns and types text
// into it.
func (tb *tab) Type(elementExpr, text string) {
	tb.t.Helper()
	tb.Eval(`(`+elementExpr+`).focus()`, nil)
	tb.call("Input.insertText", map[string]any{"text": text}, nil)
}

// PressEnter presses the Enter key where the focus is.
func (tb *tab) PressEnter() {
	tb.t.Helper()
	for _, typ := range []string{"keyDown", "keyUp"} {
		p := map[string]any{"type": typ, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
		if typ == "keyDown" {
			p["text"] = "\r"
		}
		tb.call("Input.dispatchKeyEvent", p, nil)
	}
}

// Viewport sets the page's size as a phone's (mobile: the viewport meta
// tag applies) or a desktop's.
func (tb *tab) Viewport(width, height int, mobile bool) {
	tb.t.Helper()
	tb.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}, nil)
}

// jsString quotes s for JavaScript source.
func jsString(s string) string {
	b, _ := json.Marshal(s) // escapes U+2028 and U+2029 too
	return string(b)
}
