// Command existing-app shows referralkit adopted by an app that was there
// first: Teamboard, a small web app with its own users, its own team
// invitations and its own migrations, all in one SQLite file.
//
//	go run ./examples/existing-app                  # http://127.0.0.1:8080
//	go run ./examples/existing-app -smtp 'smtp://user:pass@mail.example.com:587'
//
// What it shows:
//   - The app's ids come first: users have INTEGER ids, so the handler runs
//     with referral.OpaqueIDs, and with an empty app id (one app).
//   - Its database comes first: the referral store opens on the app's own
//     *sql.DB (sqlite.New), after the app's own migration step, and its
//     tables (all named referral_...) sit beside the app's users, invites
//     and golang-migrate-style schema_migrations, which it leaves alone.
//   - Its sign-in comes first: users sign in with a form and a session
//     cookie; the Authenticator reads that cookie, allows a user to invite
//     only for themselves and names them in the email. Every route sits
//     behind http.CrossOriginProtection, as cookie-authenticated routes
//     must.
//   - Its look comes first: the invite email is the app's own template
//     (templates/, English only) that greets the invitee with the
//     referrer's name and the product's.
//   - The host API: the home page shows the user's share link
//     (Handler.ShareLink) and counts (Handler.Stats); sign-up reads the
//     link's ref parameter, creates the user and credits the referrer
//     (Handler.Redeem), keeping the referrer's id in users.referred_by.
//   - The people invited: every email carries a one-click unsubscribe link
//     to the route mounted beside the app's own (Handler.Unsubscribe), and
//     the suppression list lives in the same database.
//   - The referrer's side: Config.Referrers is the same store, and the
//     referrer's routes are mounted beside the invite route (the list on
//     GET, the code, revoke, resend), for a front end of the app's own.
//
// Mail goes to the SMTP server of -smtp, or by default into a Maildir
// folder (-maildir). Sign up at /signup, then invite from the home page.
package main
