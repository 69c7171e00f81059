package referral_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// sessions stands for a host app's own sign-in: session id -> user.
var sessions = map[string]struct{ id, name string }{
	"s3cr3t-session": {"42", "Alice Liddell"},
}

// An Authenticator for a host app whose users sign in with a session
// cookie and have integer ids (hence OpaqueIDs). It must check that the
// signed-in user is the path's user; the handler refuses a Principal of
// another user anyway. A cookie rides along on cross-site requests, so the
// route is wrapped in http.CrossOriginProtection against CSRF (the JSON
// Content-Type alone already keeps plain HTML forms out).
func Example_sessionCookie() {
	auth := referral.AuthenticatorFunc(func(r *http.Request, userID string) (referral.Principal, error) {
		c, err := r.Cookie("session")
		if err != nil {
			return referral.Principal{}, fmt.Errorf("no session: %w", referral.ErrUnauthenticated)
		}
		u, ok := sessions[c.Value]
		if !ok {
			return referral.Principal{}, fmt.Errorf("unknown session: %w", referral.ErrUnauthenticated)
		}
		if u.id != userID {
			return referral.Principal{}, fmt.Errorf("user %s may not invite for %s: %w", u.id, userID, referral.ErrForbidden)
		}
		// One app: no app id to invent.
		return referral.Principal{UserID: u.id, Name: u.name, Method: "session"}, nil
	})
	mailer := &mailtest.Recorder{}
	store := memory.New()
	h, err := referral.New(referral.Config{
		Auth:           auth,
		UserIDs:        referral.OpaqueIDs,
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
	mux.Handle(referral.Pattern, http.NewCrossOriginProtection().Handler(h))

	post := func(user, session, fetchSite string) int {
		r := httptest.NewRequest("POST", "/v1/users/"+user+"/referral-invites",
			strings.NewReader(`{"email":"friend@example.com","language":"en"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Sec-Fetch-Site", fetchSite)
		if session != "" {
			r.AddCookie(&http.Cookie{Name: "session", Value: session})
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	fmt.Println(post("42", "s3cr3t-session", "same-origin"))
	fmt.Println(post("42", "", "same-origin"))
	fmt.Println(post("43", "s3cr3t-session", "same-origin"))
	fmt.Println(post("42", "s3cr3t-session", "cross-site"))
	fmt.Println(mailer.Messages()[0].Subject)
	// Output:
	// 201
	// 401
	// 403
	// 403
	// Alice Liddell invited you to Acme
}

// newExampleHandler is a handler of one app whose user "42" invited
// friend@example.com.
func newExampleHandler() *referral.Handler {
	store := memory.New()
	h, err := referral.New(referral.Config{
		Auth: referral.AuthenticatorFunc(func(r *http.Request, userID string) (referral.Principal, error) {
			return referral.Principal{UserID: userID}, nil
		}),
		UserIDs:        referral.OpaqueIDs,
		Store:          store,
		Redemptions:    store,
		Recipients:     store,
		UnsubscribeURL: "https://acme.example/v1/unsubscribe/{token}",
		Mailer:         &mailtest.Recorder{},
		From:           "Acme <no-reply@acme.example>",
		SignupURL:      "https://acme.example/signup?ref={code}",
		OnRedeemed: func(_ context.Context, r referral.Redemption) {
			fmt.Printf("credit user %s for user %s\n", r.ReferrerID, r.NewUserID)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/v1/users/42/referral-invites", strings.NewReader(`{"email":"friend@example.com","language":"en"}`))
	r.Header.Set("Content-Type", "application/json")
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, h)
	mux.ServeHTTP(httptest.NewRecorder(), r)
	return h
}

// A page of the host shows the user their link to share, without sending
// any email.
func ExampleHandler_ShareLink() {
	h := newExampleHandler()
	link, err := h.ShareLink(context.Background(), "", "42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(link, "https://acme.example/signup?ref="))
	// Output: true
}

// The host's sign-up handler credits the referrer when the new user came
// with a code (the ref parameter of the link).
func ExampleHandler_Redeem() {
	h := newExampleHandler()
	ctx := context.Background()
	code, _ := h.Code(ctx, "", "42")
	// ... the new user signs up as user 77 with ?ref=code ...
	if _, err := h.Redeem(ctx, strings.ToLower(code), "77", "Friend@example.com"); err != nil {
		log.Fatal(err)
	}
	// The same sign-up again is no second credit.
	_, err := h.Redeem(ctx, code, "77", "friend@example.com")
	fmt.Println(err)
	// Output:
	// credit user 42 for user 77
	// <nil>
}

// Stats counts what a referrer did, for their page.
func ExampleHandler_Stats() {
	h := newExampleHandler()
	ctx := context.Background()
	code, _ := h.Code(ctx, "", "42")
	if _, err := h.Redeem(ctx, code, "77", "friend@example.com"); err != nil {
		log.Fatal(err)
	}
	st, err := h.Stats(ctx, "", "42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("invited %d, sent %d, accepted %d, redeemed %d\n", st.Invited, st.Sent, st.Accepted, st.Redeemed)
	// Output:
	// credit user 42 for user 77
	// invited 1, sent 1, accepted 1, redeemed 1
}
