// Command server runs the referral-invites route on its own: the same
// handler a host app mounts, configured by flags with environment
// fallbacks. With no flags it keeps its SQLite database (referral.db) and a
// Maildir folder (referral-mail/) in the working folder, so on a fresh
// machine
//
//	go run ./examples/server                 # serve on 127.0.0.1:8080
//	go run ./examples/server keys create     # an app and a write key
//
// are all it takes. Run it with -h for the flags. The invite emails link
// to a landing page the server serves (GET /signup?ref=CODE), which shows
// the code and what a host app would do with it (not whether the code is
// valid: the code lookup, which is rate limited, answers that);
// -public-url is the server's base URL as recipients reach it (by default
// http://localhost:PORT of -addr, or http://HOST:PORT for a host that is
// neither loopback nor unspecified), and
// -signup-url links to a host's own page instead. Every email carries a
// one-click unsubscribe link to the server's /v1/unsubscribe/{token}.
//
// Referrers see their side (DESIGN.md section 6): GET on the invite route
// lists a user's invites (a read key may), GET
// /v1/users/{userId}/referral-code their code and share link, DELETE on
// /v1/users/{userId}/referral-invites/{inviteId} revokes an invite and POST
// on its /resend sends it again (-resend-after, -max-resends; -invite-ttl
// is when a sent invite shows expired). GET /referrals is a page for the
// signed-in user that does all of it in the browser: open
// /referrals#token=TOKEN with an access token (token makes one); the
// fragment reaches no log, and the page takes it out of the address bar.
// With -dkim-domain, -dkim-selector and -dkim-key (all three or none) every
// message is DKIM-signed, and the start-up log shows the DNS TXT record to
// publish. GET /metrics serves the handler's Prometheus metrics with Go's
// runtime and process collectors, from a registry of the server's own; with
// -metrics-addr HOST:PORT it is served only on that listener. With
// -webhook-url and -webhook-secret (both or neither) the store's outbox is
// on and the worker POSTs every event (invite.sent, invite.failed,
// invite.suppressed, invite.revoked, referral.redeemed), signed by the
// Standard Webhooks scheme, retrying with back-off for three days.
//
// Subcommands (all take -db):
//
//	keys create [-app UUID] [-type write|read] [-json]
//	keys revoke -app UUID [-key PREFIX]
//	keys list -app UUID
//	apps disable|enable -app UUID
//	token -app UUID -user ID [-name NAME] [-ttl 1h]
//	codes show -app UUID -user ID
//	suppress add|remove|check -app UUID EMAIL
//
// token signs a development access token with a key kept next to the
// database (referral-dev-key.pem); the server trusts that key only when
// -token-keys is empty, and says so when it starts. Its -name is the
// token's name claim, which the emails show as the referrer ("Alice via
// Acme", with -app-name Acme). apps disable refuses an app's keys and
// tokens alike (403) until apps enable; keys revoke leaves its tokens
// working. codes show prints a user's referral code and share link, making
// the code if there is none. suppress keeps an app's suppression list (an
// address that unsubscribed is on it too): after add, invites to the
// address are answered as usual but never sent; check prints the reason
// and exits 0 when the address is suppressed, 1 when not, 2 when it cannot
// tell. token and codes show take -user-ids: with opaque, user ids are a
// host's own (such as 42), not UUIDs.
package main
