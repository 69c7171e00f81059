package referral_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// A host app builds the handler from its authenticator, store and mailer.
// Real apps use the auth package, store/sqlite and mail/smtp.
func ExampleNew() {
	store := memory.New()
	h, err := referral.New(referral.Config{
		Auth: referral.AuthenticatorFunc(func(r *http.Request, userID string) (referral.Principal, error) {
			return referral.Principal{AppID: "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e"}, nil
		}),
		Store:          store,
		Recipients:     store, // suppression and unsubscribe links
		Mailer:         &mailtest.Recorder{},
		From:           "Acme <no-reply@acme.example>",
		SignupURL:      "https://acme.example/signup?ref={code}",
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = h

	_, err = referral.New(referral.Config{Store: memory.New()})
	fmt.Println(err)
	// Output:
	// referral: Config.Auth is required
	// referral: Config.Mailer is required
	// referral: Config.From is required
	// referral: Config.SignupURL is required
	// referral: Config.Recipients is required
	// referral: Config.UnsubscribeURL is required
}

// Mount the handler on referral.Pattern, without a method, next to the
// app's own routes: other methods then get a 405 in the JSON envelope.
func ExampleHandler_mount() {
	mailer := &mailtest.Recorder{}
	store := memory.New()
	h, err := referral.New(referral.Config{
		Auth: referral.AuthenticatorFunc(func(r *http.Request, userID string) (referral.Principal, error) {
			return referral.Principal{AppID: "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e"}, nil
		}),
		Store:          store,
		Recipients:     store,
		Mailer:         mailer,
		From:           "Acme <no-reply@acme.example>",
		SignupURL:      "https://acme.example/signup?ref={code}",
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle(referral.Pattern, h)

	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/users/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/referral-invites",
		"application/json", strings.NewReader(`{"email":"friend@example.com","language":"de-AT"}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Println(mailer.Messages()[0].Subject)
	// Output:
	// 201 Created
	// Deine Einladung zu Acme
}
