// Command mount shows every route of referralkit in a host app's net/http
// mux: the invite route, the referrer's routes (their invites, code,
// revoke and resend), the code lookup, the redemptions and the unsubscribe
// links, with the store doing redemptions, suppression and the referrer's
// side too. The lines between "mount:begin" and "mount:end" are the
// README's "Mounting in your app"; a test in examples/server keeps the two
// the same, so the README's code compiles.
//
//	go run ./examples/server keys create -db app.db   # an app and its write key
//	go run ./examples/mount                           # serves on 127.0.0.1:8083
package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/referralkit/referralkit/auth"
	"github.com/referralkit/referralkit/mail/maildir"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// mount:begin
	store, err := sqlite.Open("app.db") // or postgres.Open(ctx, url) for several instances
	if err != nil {
		return err
	}
	defer store.Close()
	mailer, err := maildir.New("app-mail") // or smtp.New(cfg), or your own referral.Mailer
	if err != nil {
		return err
	}
	apiKeys := auth.NewAPIKeys(store) // the app's keys, hashed in the same database
	h, err := referral.New(referral.Config{
		Auth:        apiKeys, // auth.Either(apiKeys, tokens) takes browsers' access tokens too
		Store:       store,
		Redemptions: store, // Redeem, Stats and the redemptions route need it
		Recipients:  store, // suppression list and the unsubscribe links' secret
		Referrers:   store, // the referrer's side: list, code, resend, revoke
		// Where UnsubscribePattern is mounted below, as recipients reach it.
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
		Mailer:         mailer,
		From:           "Acme <no-reply@acme.example>",
		SignupURL:      "https://acme.example/signup?ref={code}",
	})
	if err != nil {
		return err
	}
	go h.Run(ctx) // delivers queued invites, and inline ones a crash cut off

	mux := http.NewServeMux()
	// No methods in the patterns: each handler answers the others with a
	// 405 itself, the API routes in their JSON envelope.
	mux.Handle(referral.Pattern, h)                                // POST: send an invite; GET: the user's invites
	mux.Handle(referral.ReferralCodePattern, h.ReferralCode())     // GET: the user's code, share link and counts
	mux.Handle(referral.InvitePattern, h.Invite())                 // DELETE: revoke an invite
	mux.Handle(referral.ResendPattern, h.Resend())                 // POST: send an invite again
	mux.Handle(referral.CodePattern, h.CodeLookup())               // GET: is a code valid?
	mux.Handle(referral.UnsubscribePattern, h.Unsubscribe())       // the emails' links: GET a page, POST one click
	mux.Handle(referral.RedemptionPattern, h.Redemptions(apiKeys)) // POST: credit a sign-up (write key)
	// Or credit it from your own sign-up handler, once the account exists:
	// h.Redeem(r.Context(), code, newUserID, email)
	// mount:end

	srv := &http.Server{
		Addr:              "127.0.0.1:8083",
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      45 * time.Second, // inline delivery may take the send timeout
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("listening on http://%s", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}
