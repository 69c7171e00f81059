package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReferrerPageHeaders: the page and its script are served with a
// strict CSP (the script only from this origin, the one inline style by
// its hash), never cached, no Referer, no sniffing; the HTML has no inline
// script and no inline event handlers for the CSP to refuse.
func TestReferrerPageHeaders(t *testing.T) {
	t.Parallel()
	h := routes(newTestHandler(t), nil, okStore{}, nil, nil, discard)
	for _, tt := range []struct{ path, contentType string }{
		{"/referrals", "text/html; charset=utf-8"},
		{"/referrals.js", "text/javascript; charset=utf-8"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		assert.Equal(t, http.StatusOK, rec.Code, tt.path)
		assert.Equal(t, tt.contentType, rec.Header().Get("Content-Type"), tt.path)
		assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"), tt.path)
		assert.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"), tt.path)
		assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), tt.path)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/referrals", nil))
	page := rec.Body.String()
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		assert.Contains(t, csp, want)
	}
	assert.NotContains(t, csp, "unsafe")
	style := between(t, page, "<style>", "</style>")
	sum := sha256.Sum256([]byte(style))
	assert.Contains(t, csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'", "the hash of the page's style")
	assert.Equal(t, 1, strings.Count(page, "<style>"), "one inline style, the one the hash allows")
	assert.Equal(t, 1, strings.Count(page, "<script"))
	assert.Contains(t, page, `<script src="referrals.js" defer></script>`)
	assert.NotRegexp(t, `(?i)\son[a-z]+\s*=`, page, "no inline event handlers")
	assert.NotRegexp(t, `(?i)(src|href)="(https?:)?//`, page, "no external resources")
	assert.Contains(t, page, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
	for _, lang := range []string{"en", "de", "fr", "es", "ja"} {
		assert.Contains(t, page, `<option value="`+lang+`"`, "a bundled language")
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/referrals", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// TestReferrerPageInBrowser opens the referrer page in headless Chromium
// (driven by chromedp) as a signed-in user would, on a phone-sized screen: the share link shows
// and the token leaves the address bar; an invite typed into the form and
// sent with Enter appears as sent; Resend within 24 h shows the server's
// 429 text; Revoke (a mouse click) makes it revoked and takes its buttons
// away; "Load more" follows nextCursor; nothing overflows 360 px, and the
// console stays free of errors.
func TestReferrerPageInBrowser(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t, "the referrer page check")
	bin := buildServer(t)
	s := startServer(t, bin, "-app-name", "Acme")
	assert.Contains(t, s.startup, "then open "+s.public+"/referrals#token=TOKEN")
	creds := createKey(t, bin, s.dir)
	cmd := exec.Command(bin, "token", "-app", creds.ClientID, "-user", tourUser, "-name", "Alice")
	cmd.Dir = s.dir
	out, err := cmd.Output()
	require.NoError(t, err)
	token := strings.TrimSpace(string(out))

	tab := newTab(t, chromium)
	// A phone: mobile, so that the viewport meta tag applies.
	tab.Do(chromedp.EmulateViewport(360, 640, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	tab.Navigate(s.url + "/referrals#token=" + token)
	tab.WaitFor(`document.getElementById("link").value !== ""`)
	assert.Regexp(t, `^`+regexp.QuoteMeta(s.public)+`/signup\?ref=[0-9A-Z]{10}$`, tab.String(`document.getElementById("link").value`))
	href := tab.String("location.href")
	assert.Equal(t, s.url+"/referrals", href, "the token is gone from the address bar")
	assert.NotContains(t, href, token)
	assert.Equal(t, "No invites yet.", tab.String(`document.getElementById("none").hidden ? "" : document.getElementById("none").textContent`))
	assert.True(t, evaluate[bool](tab, `[...document.querySelectorAll("input, select")].every(el => el.labels.length > 0)`), "every input has a label")

	tab.Click(`document.getElementById("copy")`)
	tab.WaitFor(`document.getElementById("status").textContent !== ""`)
	assert.Contains(t, []string{"Link copied.", "The link is selected: copy it with your device\u2019s copy command."},
		tab.String(`document.getElementById("status").textContent`))

	// The keyboard: type the address, choose a language, press Enter.
	const friend = "a-rather-long-address-for-a-small-screen@example.com"
	tab.Do(
		chromedp.SetValue(chromedp.ID("language"), "de"),
		chromedp.SendKeys(chromedp.ID("email"), friend),
		chromedp.SendKeys(chromedp.ID("email"), kb.Enter),
	)
	row := `[...document.querySelectorAll("#invites li")].find(li => li.querySelector(".email").textContent === ` + jsString(friend) + `)`
	tab.WaitFor(row + `?.dataset.status === "sent"`)
	assert.Equal(t, "Sent", tab.String(row+`.querySelector(".status").textContent`))
	assert.Equal(t, friend+": Invite sent.", tab.String(`document.getElementById("status").textContent`))
	assert.Empty(t, tab.String(`document.getElementById("email").value`), "the form is cleared")
	msgs := waitForMail(t, s.dir, 1)
	assert.Equal(t, "Alice lädt dich zu Acme ein", decode(t, msgs[0]).subject)

	// Resend within a day of the send: the server's 429, in the live region.
	tab.Click(row + `.querySelector('[data-action="resend"]')`)
	tab.WaitFor(`document.getElementById("status").className === "error"`)
	assert.Regexp(t, `^Too many sends to this invite or from this user; try again later \(in about 24 hours\)$`,
		tab.String(`document.getElementById("status").textContent`))

	tab.Click(row + `.querySelector('[data-action="revoke"]')`)
	tab.WaitFor(row + `?.dataset.status === "revoked"`)
	assert.Equal(t, "Revoked", tab.String(row+`.querySelector(".status").textContent`))
	assert.True(t, evaluate[bool](tab, row+`.querySelector('[data-action="revoke"]').hidden && `+row+`.querySelector('[data-action="resend"]').hidden`),
		"a revoked invite can be neither revoked nor resent")
	assert.Equal(t, friend+": Invite revoked.", tab.String(`document.getElementById("status").textContent`))
	assert.Equal(t, "invites-heading", tab.String(`document.activeElement.id`), "the focus stays in the list, not lost to the body")

	assert.LessOrEqual(t, evaluate[int](tab, `document.documentElement.scrollWidth`), 360, "no horizontal scrolling on a 360 px screen")

	// More than a page: 20 more invites, then the page again (the token
	// comes in the fragment each time).
	for i := range 20 {
		require.Equal(t, http.StatusCreated, postInvite(t, s.url, creds, fmt.Sprintf("more%d@example.com", i), "en"))
	}
	tab.Navigate("about:blank")
	tab.Navigate(s.url + "/referrals#token=" + token)
	tab.WaitFor(`document.querySelectorAll("#invites li").length === 20`)
	assert.Equal(t, "more19@example.com", tab.String(`document.querySelector("#invites li .email").textContent`), "newest first")
	tab.Click(`document.getElementById("more")`)
	tab.WaitFor(`document.querySelectorAll("#invites li").length === 21`)
	tab.WaitFor(`document.getElementById("more").hidden`)
	assert.Equal(t, friend, tab.String(`document.querySelector("#invites li:last-child .email").textContent`))
	assert.Equal(t, "Invited 21, sent 20, accepted 0.", tab.String(`document.getElementById("counts").textContent`), "the revoked invite is not counted sent")

	// A token the server does not take: its 401 text, and what to do.
	forged := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+tourUser+`"}`)) + ".x"
	tab.Navigate("about:blank")
	tab.Navigate(s.url + "/referrals#token=" + forged)
	tab.WaitFor(`document.getElementById("status").className === "error"`)
	assert.Equal(t, "Missing or invalid credentials. Open this page again from your app.", tab.String(`document.getElementById("status").textContent`))

	// Without a token the page says what it needs and calls nothing.
	tab.Navigate(s.url + "/referrals")
	assert.True(t, regexp.MustCompile(`needs a sign-in link`).MatchString(tab.String(`document.body.innerText`)))

	assert.Empty(t, tab.Problems(), "console errors, exceptions or CSP violations")
	s.stop(t)
}

// jsString quotes s for JavaScript source.
func jsString(s string) string {
	b, _ := json.Marshal(s) // escapes U+2028 and U+2029 too
	return string(b)
}
