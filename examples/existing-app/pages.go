package main

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/referralkit/referralkit/referral"
)

var pages = template.Must(template.New("").Parse(`
{{define "home"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Teamboard</title></head>
<body>
<h1>Hello, {{.User.Name}}</h1>
<p>Your link to share: <a href="{{.ShareLink}}">{{.ShareLink}}</a></p>
<p>Invited {{.Stats.Invited}}, signed up {{.Stats.Accepted}}, credited to you {{.Stats.Redeemed}}.</p>
<form id="invite"><input type="email" name="email" required placeholder="friend@example.com"> <button>Invite</button></form>
<p id="result"></p>
<script>
document.getElementById("invite").addEventListener("submit", async (e) => {
	e.preventDefault();
	const res = await fetch({{.InvitePath}}, {
		method: "POST",
		headers: {"Content-Type": "application/json"},
		body: JSON.stringify({email: e.target.email.value, language: "en"}),
	});
	document.getElementById("result").textContent = (await res.json()).message;
});
</script>
</body></html>
{{end}}

{{define "login"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to Teamboard</title></head>
<body>
{{if .}}<p>{{.}}</p>{{end}}
<form method="post" action="/login">
<input type="email" name="email" required placeholder="Email">
<input type="password" name="password" required placeholder="Password">
<button>Sign in</button>
</form>
<p>New here? <a href="/signup">Sign up</a></p>
</body></html>
{{end}}

{{define "signup"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign up for Teamboard</title></head>
<body>
{{if .Error}}<p>{{.Error}}</p>{{end}}
<form method="post" action="/signup">
<input type="hidden" name="ref" value="{{.Ref}}">
<input type="text" name="name" required placeholder="Your name">
<input type="email" name="email" required placeholder="Email">
<input type="password" name="password" required minlength="8" placeholder="Password">
<button>Sign up</button>
</form>
</body></html>
{{end}}
`))

// home shows the signed-in user their share link and counts, or the
// sign-in form.
func (a *app) home(w http.ResponseWriter, r *http.Request) {
	u, ok, err := a.currentUser(r)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !ok {
		a.render(w, r, http.StatusOK, "login", "")
		return
	}
	id := strconv.FormatInt(u.ID, 10)
	link, err := a.referrals.ShareLink(r.Context(), "", id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	stats, err := a.referrals.Stats(r.Context(), "", id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "home", map[string]any{
		"User":       u,
		"ShareLink":  link,
		"Stats":      stats,
		"InvitePath": strings.Replace(referral.Pattern, "{userId}", id, 1),
	})
}

// login checks the form's email and password and starts a session. A
// demo: a real app also rate-limits it and takes as long for an unknown
// address as for a wrong password, so that neither tells which it was.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, ok, err := checkPassword(r.Context(), a.db, r.PostForm.Get("email"), r.PostForm.Get("password"))
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !ok {
		a.render(w, r, http.StatusUnauthorized, "login", "Wrong email or password.")
		return
	}
	a.signIn(w, id)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signupPage is where the invite email's link leads: the form carries
// the link's ref parameter on.
func (a *app) signupPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "signup", map[string]string{"Ref": r.URL.Query().Get("ref")})
}

// signup creates the user, then credits the referrer of the form's ref.
func (a *app) signup(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	email, name, password, ref := r.PostForm.Get("email"), strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("password"), r.PostForm.Get("ref")
	again := func(msg string) {
		a.render(w, r, http.StatusUnprocessableEntity, "signup", map[string]string{"Ref": ref, "Error": msg})
	}
	if !strings.Contains(email, "@") || name == "" || len(password) < 8 {
		again("Give your name, your email and a password of at least 8 characters.")
		return
	}
	id, err := createUser(r.Context(), a.db, email, name, password)
	if errors.Is(err, errEmailTaken) {
		again("That email is registered already: sign in instead.")
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if ref != "" {
		a.credit(r, id, ref, email)
	}
	a.signIn(w, id)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// credit records that new user id signed up with code ref, and who
// referred them. It runs after the user's row is committed: the store
// writes on a connection of its own, and SQLite has one writer at a time.
// The sign-up stands whatever happens here; failures are logged.
func (a *app) credit(r *http.Request, id int64, ref, email string) {
	ctx := r.Context()
	red, err := a.referrals.Redeem(ctx, ref, strconv.FormatInt(id, 10), email)
	switch {
	case errors.Is(err, referral.ErrCodeNotFound):
		return // a mistyped or made-up code: no one to credit
	case err != nil:
		a.log.LogAttrs(ctx, slog.LevelError, "crediting a referral failed", slog.Int64("user", id), slog.String("cause", err.Error()))
		return
	}
	referrer, err := strconv.ParseInt(red.ReferrerID, 10, 64)
	if err == nil {
		err = setReferredBy(ctx, a.db, id, referrer)
	}
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelError, "recording the referrer failed", slog.Int64("user", id), slog.String("cause", err.Error()))
	}
}

func (a *app) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, page, data); err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelError, "rendering a page failed", slog.String("page", page), slog.String("cause", err.Error()))
	}
}

func (a *app) serverError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("path", r.URL.Path), slog.String("cause", err.Error()))
	http.Error(w, "something went wrong", http.StatusInternalServerError)
}
