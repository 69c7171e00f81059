// Package referral serves POST /v1/users/{userId}/referral-invites: it sends an
// invite email to a new person, carrying a referral code linked to the user in
// the path, wire-compatible with the hosted userdocks API of the same name.
//
// A [Handler] is built by [New] from three small interfaces: an
// [Authenticator] (who is calling), a [CodeStore] (codes and invites) and a
// [Mailer] (the transport). Mount it on the route's pattern without a method,
// so that it answers 405 itself in the JSON envelope:
//
//	h, err := referral.New(referral.Config{Auth: a, Store: s, Mailer: m,
//		From: "Acme <no-reply@acme.example>", SignupURL: "https://acme.example/signup?ref={code}"})
//	mux.Handle(referral.Pattern, h)
//
// In a host app:
//   - User ids are UUIDs unless Config.UserIDs is OpaqueIDs: the host's own
//     ids ("42", "alice.smith"), one rule for the routes, Redeem, Stats,
//     Code and ShareLink. A host with one app leaves Principal.AppID empty.
//   - An Authenticator must check that the caller may act for the path's
//     user; the handler refuses (403) a Principal whose UserID is set and
//     is another user's whatever the Authenticator said. One that reads a
//     session cookie should sit behind http.CrossOriginProtection (see the
//     session-cookie example).
//   - The emails name the product (Config.ProductName) and the referrer
//     (Principal.Name or Config.ReferrerName) when known.
//   - Handler.Code and Handler.ShareLink give a user's code and link
//     without sending anything; redemption needs Config.Redemptions.
//   - With Config.Referrers, a referrer sees and manages their invites: GET
//     on Pattern lists them, and ReferralCode, Invite (DELETE revokes) and
//     Resend serve ReferralCodePattern, InvitePattern and ResendPattern;
//     Handler.Invites, Referral, ResendInvite and RevokeInvite do the same
//     in Go. A read-only Principal (a read API key) may only read.
//   - With Config.Events (a store whose outbox is on), Run delivers the
//     store's events in a lane of its own to Config.Webhooks and feeds
//     OnOutcome and OnRedeemed from them, at least once; with
//     Config.Metrics the handler reports to the host's Prometheus registry.
//
// The people invited are protected by default (Config.Recipients and
// UnsubscribeURL are required): every email carries a one-click unsubscribe
// link (List-Unsubscribe, RFC 8058, and a line in both bodies) served by
// Handler.Unsubscribe; an address that unsubscribed, bounced (a 5xx to RCPT
// or the data) or was suppressed by the host (Handler.Suppress) gets no more
// invites from the app, nor does one that had MaxPerRecipient invites within
// RecipientWindow from all referrers; and Run erases the addresses of
// invites not accepted within RetainAddresses. Such invites are answered
// 201 like any other and recorded with StatusSuppressed, so the referrer
// learns nothing from the answer. With inline delivery a suppressed invite
// is answered sooner than one that is sent (no mail server is waited for);
// a host that minds that timing uses queued delivery.
//
// Every response is JSON in the envelope {success, message, error, data}.
// Error messages are fixed, short and safe; causes are logged with the
// request id, never sent to the client.
//
// Decisions where the contract is silent:
//   - The email address must have a domain with at least one dot and no
//     address literal; quoted local parts are refused.
//   - A failed delivery does not start the same-address cooldown, so a client
//     may retry after a 500 at once; it still counts towards the daily limit.
//   - An Idempotency-Key is 1 to 255 printable ASCII characters. Reusing one
//     for a different email or language answers 400. While the first request
//     with that key is still sending (inline delivery) a repeat answers 409.
//     Only recorded invites are replayed: a request refused before it was
//     recorded (400, 429, ...) can be retried with the same key.
package referral
