// Command mount-servemux shows referralkit inside an existing net/http
// app: the app keeps its own routes and middleware, and mounts the invite
// handler on referral.Pattern, and the referrer's routes, next to them. It uses the SQLite store, API
// keys from the same database, and a Maildir for mail, so it runs as is:
//
//	go run ./examples/mount-servemux
package main

import (
	"context"
	"log"
	"log/slog"
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

	store, err := sqlite.Open("app.db")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	mailer, err := maildir.New("app-mail")
	if err != nil {
		log.Fatal(err)
	}
	invites, err := referral.New(referral.Config{
		Auth:  auth.NewAPIKeys(store), // the same SQLite file keeps the hashed keys
		Store: store,
		// The same store keeps the suppression list; the unsubscribe links
		// lead to the route mounted below.
		Recipients:     store,
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
		Referrers:      store, // the referrer's side: list, code, resend, revoke
		Mailer:         mailer,
		From:           "Acme <no-reply@acme.example>",
		SignupURL:      "https://acme.example/signup?ref={code}",
		Logger:         slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	// The delivery worker runs in inline mode too: it sends the invites
	// whose process died between recording and sending them.
	go invites.Run(ctx)

	mux := http.NewServeMux()
	// The app's own routes.
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Acme home\n"))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := store.Ping(r.Context()); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		}
	})
	// The invite routes, without a method in the pattern: the handlers
	// answer other methods with a 405 in their JSON envelope.
	mux.Handle(referral.Pattern, invites)                            // POST: send an invite; GET: the user's invites
	mux.Handle(referral.ReferralCodePattern, invites.ReferralCode()) // GET: the user's code, share link and counts
	mux.Handle(referral.InvitePattern, invites.Invite())             // DELETE: revoke an invite
	mux.Handle(referral.ResendPattern, invites.Resend())             // POST: send an invite again
	// The emails' one-click unsubscribe links: no credentials, the token
	// in the path is one.
	mux.Handle(referral.UnsubscribePattern, invites.Unsubscribe())

	srv := &http.Server{
		Addr:              "127.0.0.1:8081",
		Handler:           accessLog(mux), // the app's middleware wraps everything
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      45 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("listening on http://%s", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// accessLog is an example of the app's own middleware.
func accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		slog.Info("request", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
	})
}
