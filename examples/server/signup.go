package main

import (
	"bytes"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/referralkit/referralkit/referral"
)

// signupPath is the landing page the default sign-up links point at, so
// that a link in a development email leads somewhere.
const signupPath = "/signup"

//go:embed signup.html
var signupHTML string

var signupTemplate = template.Must(template.New("signup.html").Parse(signupHTML))

// signupCSP lets the page load nothing, run nothing and be framed by no one:
// it is plain HTML showing a value from its URL.
const signupCSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// signupPage shows the code of ?ref= and what a host app would do with it.
// It does not say whether the code is valid: the page takes no
// credentials and is not rate limited, so it would let anyone test codes
// faster than the code lookup's LookupsPerMinute allows.
func signupPage(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := struct{ Code string }{Code: r.URL.Query().Get("ref")}
		// The canonical form, valid or not; what is not a code stays as given.
		if code, ok := referral.NormalizeCode(page.Code); ok {
			page.Code = code
		}
		var body bytes.Buffer
		if err := signupTemplate.Execute(&body, page); err != nil {
			log.LogAttrs(r.Context(), slog.LevelError, "sign-up page", slog.Any("err", err))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		hd := w.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Content-Security-Policy", signupCSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer") // the URL carries the code
		w.WriteHeader(http.StatusOK)
		w.Write(body.Bytes())
	})
}
