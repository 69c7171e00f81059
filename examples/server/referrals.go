package main

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
)

// The referrer page (DESIGN.md section 6): one HTML file and its script,
// which call the JSON routes of this origin with the access token that
// arrives in the page's URL fragment (/referrals#token=...).
const (
	referrerPath       = "/referrals"
	referrerScriptPath = "/referrals.js"
)

var (
	//go:embed referrals.html
	referrerHTML []byte
	//go:embed referrals.js
	referrerJS []byte
)

// referrerCSP lets the page run only this server's script (no inline
// script, no inline event handlers), apply only its own inline style (by
// hash), call only this origin, and be framed by no one; Trusted Types
// keep strings out of the DOM's HTML sinks.
var referrerCSP = "default-src 'none'; script-src 'self'; style-src '" + styleHash(referrerHTML) +
	"'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'"

// styleHash is the CSP source of the one <style> element of page.
func styleHash(page []byte) string {
	_, rest, ok := bytes.Cut(page, []byte("<style>"))
	css, _, ok2 := bytes.Cut(rest, []byte("</style>"))
	if !ok || !ok2 {
		panic("referrals.html has no <style> element") // the embedded file is the build's
	}
	sum := sha256.Sum256(css)
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

func referrerPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Content-Security-Policy", referrerCSP)
		pageHeaders(hd)
		w.Write(referrerHTML)
	})
}

func referrerScript() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Type", "text/javascript; charset=utf-8")
		pageHeaders(hd)
		w.Write(referrerJS)
	})
}

// pageHeaders are the referrer page's other headers: never cached (the
// page and its script change together), no Referer to anyone, no sniffing.
func pageHeaders(hd http.Header) {
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
}
