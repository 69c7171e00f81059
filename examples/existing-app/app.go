package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

// The invite email, in the app's words: templates/en.txt and en.html.
//
//go:embed templates
var emailTemplates embed.FS

const productName = "Teamboard"

// config is what newApp needs from main (or a test).
type config struct {
	DB      *sql.DB // the app's database, opened with the "sqlite" driver
	Mailer  referral.Mailer
	BaseURL string // where the app is served, e.g. "http://127.0.0.1:8080"
	From    string // the invite emails' sender
	Logger  *slog.Logger
}

// app is Teamboard: its own pages and sign-in, with referral invites
// mounted beside them.
type app struct {
	db        *sql.DB
	store     *sqlite.Store
	referrals *referral.Handler
	sessions  sessions
	secure    bool // cookies only over https
	log       *slog.Logger
	handler   http.Handler
}

// newApp migrates the app's tables, then opens the referral store on the
// same database, which adds its own referral_ tables beside them.
func newApp(ctx context.Context, cfg config) (*app, error) {
	if err := migrate(ctx, cfg.DB); err != nil {
		return nil, err
	}
	store, err := sqlite.New(cfg.DB)
	if err != nil {
		return nil, err
	}
	tmpl, err := mail.NewTemplatesOnly(emailTemplates, "en")
	if err != nil {
		store.Close()
		return nil, err
	}
	a := &app{
		db:       cfg.DB,
		store:    store,
		sessions: sessions{m: map[string]int64{}},
		secure:   strings.HasPrefix(cfg.BaseURL, "https://"),
		log:      cfg.Logger,
	}
	a.referrals, err = referral.New(referral.Config{
		Auth:        referral.AuthenticatorFunc(a.authenticate),
		UserIDs:     referral.OpaqueIDs, // users.id is an INTEGER
		Store:       store,
		Redemptions: store,
		Referrers:   store, // the referrer's side: list, code, resend, revoke
		// The same database keeps the suppression list; the emails' links
		// lead to the unsubscribe route mounted below.
		Recipients:     store,
		UnsubscribeURL: strings.TrimSuffix(cfg.BaseURL, "/") + referral.UnsubscribePattern,
		Mailer:         cfg.Mailer,
		From:           cfg.From,
		SignupURL:      strings.TrimSuffix(cfg.BaseURL, "/") + "/signup?ref={code}",
		Templates:      tmpl,
		ProductName:    productName,
		Logger:         cfg.Logger,
	})
	if err != nil {
		store.Close()
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, a.referrals)                            // POST: send an invite; GET: the user's invites
	mux.Handle(referral.ReferralCodePattern, a.referrals.ReferralCode()) // GET: the user's code, share link and counts
	mux.Handle(referral.InvitePattern, a.referrals.Invite())             // DELETE: revoke an invite
	mux.Handle(referral.ResendPattern, a.referrals.Resend())             // POST: send an invite again
	// No session here: the link's token is the credential. A mail
	// provider's one-click POST carries no Origin, so the cross-origin
	// check below lets it through, as it does the page's own button.
	mux.Handle(referral.UnsubscribePattern, a.referrals.Unsubscribe())
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /signup", a.signupPage)
	mux.HandleFunc("POST /signup", a.signup)
	// The session cookie rides along on requests from other sites: refuse
	// cross-origin writes on every route (the invite API and the forms).
	a.handler = http.NewCrossOriginProtection().Handler(mux)
	return a, nil
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Run sends the invites whose delivery a crash cut off, until ctx is done.
func (a *app) Run(ctx context.Context) error { return a.referrals.Run(ctx) }

// Close releases the store; the database stays open for its owner.
func (a *app) Close() error { return a.store.Close() }

// authenticate lets the signed-in user invite for themselves only, and
// names them in the email.
func (a *app) authenticate(r *http.Request, userID string) (referral.Principal, error) {
	u, ok, err := a.currentUser(r)
	if err != nil {
		return referral.Principal{}, err // a 500: the database failed
	}
	if !ok {
		return referral.Principal{}, fmt.Errorf("not signed in: %w", referral.ErrUnauthenticated)
	}
	id := strconv.FormatInt(u.ID, 10)
	if id != userID {
		return referral.Principal{}, fmt.Errorf("user %s may not invite for user %s: %w", id, userID, referral.ErrForbidden)
	}
	// One app: AppID stays empty.
	return referral.Principal{UserID: id, Name: u.Name, Method: "session"}, nil
}

const sessionCookie = "teamboard_session"

// currentUser is the user the request's session cookie signs in, with
// ok=false if it signs in no one.
func (a *app) currentUser(r *http.Request) (u user, ok bool, err error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return user{}, false, nil
	}
	id, ok := a.sessions.user(c.Value)
	if !ok {
		return user{}, false, nil
	}
	return userByID(r.Context(), a.db, id)
}

// signIn starts a session for user id.
func (a *app) signIn(w http.ResponseWriter, id int64) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    a.sessions.start(id),
		Path:     "/",
		HttpOnly: true,
		Secure:   a.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// sessions maps session ids to user ids. In memory: a restart signs
// everyone out, which a demo can live with, and they never expire; a real
// app keeps them in its store with an expiry.
type sessions struct {
	mu sync.Mutex
	m  map[string]int64
}

func (s *sessions) start(userID int64) string {
	id := rand.Text() // 128 random bits
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = userID
	return id
}

func (s *sessions) user(id string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.m[id]
	return u, ok
}
