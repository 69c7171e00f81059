// Command server runs the referral-invites route on its own: the same
// handler a host app mounts, configured by flags with environment
// fallbacks. With no flags it keeps its SQLite database (referral.db) and a
// Maildir folder (mail/) in the working folder, so on a fresh machine
//
//	go run ./examples/server                 # serve on 127.0.0.1:8080
//	go run ./examples/server keys create     # an app and a write key
//
// are all it takes. Run it with -h for the flags.
//
// Subcommands (all take -db):
//
//	keys create [-app UUID] [-type write|read] [-json]
//	keys revoke -app UUID [-key PREFIX]
//	keys list -app UUID
//	apps disable|enable -app UUID
//	token -app UUID -user UUID [-ttl 1h]
//
// token signs a development access token with a key kept next to the
// database (referral-dev-key.pem); the server trusts that key only when
// -token-keys is empty, and says so when it starts. apps disable refuses
// an app's keys and tokens alike (403) until apps enable; keys revoke
// leaves its tokens working.
package main
