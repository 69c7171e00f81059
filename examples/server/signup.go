package main

import (
	"bytes"
	_ "embed"
	"errors"
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

// signupPage shows the code of ?ref= and whether it is valid, and what a
// host app would do with it.
func signupPage(h *referral.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := struct{ Code, State string }{Code: r.URL.Query().Get("ref"), State: "missing"}
		status := http.StatusOK
		if page.Code != "" {
			_, err := h.Resolve(r.Context(), page.Code)
			switch {
			case err == nil:
				page.State = "valid"
				page.Code, _ = referral.NormalizeCode(page.Code)
			case errors.Is(err, referral.ErrCodeNotFound):
				page.State = "unknown"
			default:
				page.State, status = "error", http.StatusInternalServerError
				log.LogAttrs(r.Context(), slog.LevelError, "sign-up page: resolving a code", slog.Any("err", err))
			}
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
		w.WriteHeader(status)
		w.Write(body.Bytes())
	})
}
