// Command mount-chi shows referralkit on a third-party router,
// github.com/go-chi/chi/v5. Config.PathValue reads path parameters the
// router's own way: recent chi versions also fill in r.PathValue, but
// routers that do not (and older chi) need the hook. Access tokens are
// verified with the issuer's public keys (a JWKS file here).
//
//	go run ./examples/mount-chi -jwks issuer-keys.json -issuer https://id.acme.example
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/mail/maildir"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

func main() {
	jwks := flag.String("jwks", "issuer-keys.json", "the token issuer's public keys (JWKS)")
	issuer := flag.String("issuer", "https://id.acme.example", "the tokens' iss")
	flag.Parse()

	data, err := os.ReadFile(*jwks)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := auth.ParseJWKS(data)
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlite.Open("app.db")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	tokens, err := auth.NewTokens(auth.TokenConfig{Issuer: *issuer, Keys: keys, CheckApp: auth.KnownApps(store)})
	if err != nil {
		log.Fatal(err)
	}
	mailer, err := maildir.New("app-mail")
	if err != nil {
		log.Fatal(err)
	}
	invites, err := referral.New(referral.Config{
		Auth:  auth.Either(auth.NewAPIKeys(store), tokens),
		Store: store,
		// The same store keeps the suppression list; the unsubscribe links
		// lead to the route mounted below.
		Recipients:     store,
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
		Referrers:      store, // the referrer's side: list, code, resend, revoke
		Mailer:         mailer,
		From:           "Acme <no-reply@acme.example>",
		SignupURL:      "https://acme.example/signup?ref={code}",
		// chi keeps path parameters in its own route context: userId,
		// inviteId and the unsubscribe route's token.
		PathValue: func(r *http.Request, name string) string { return chi.URLParam(r, name) },
	})
	if err != nil {
		log.Fatal(err)
	}
	// The delivery worker, in inline mode too: it sends the invites whose
	// process died between recording and sending them.
	go invites.Run(context.Background())

	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.Recoverer)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("Acme home\n")) })
	// Handle, not Post: the handler answers other methods itself with a 405
	// in its JSON envelope.
	// chi's patterns are net/http's here: no method, one segment each.
	r.Handle(referral.Pattern, invites)                            // POST: send an invite; GET: the user's invites
	r.Handle(referral.ReferralCodePattern, invites.ReferralCode()) // GET: the user's code, share link and counts
	r.Handle(referral.InvitePattern, invites.Invite())             // DELETE: revoke an invite
	r.Handle(referral.ResendPattern, invites.Resend())             // POST: send an invite again
	// The emails' one-click unsubscribe links (GET a page, POST to
	// unsubscribe): no credentials, the token in the path is one.
	r.Handle(referral.UnsubscribePattern, invites.Unsubscribe())

	srv := &http.Server{Addr: "127.0.0.1:8082", Handler: r, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 45 * time.Second}
	log.Printf("listening on http://%s", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
