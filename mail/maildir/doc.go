// Package maildir delivers invite messages into a Maildir folder instead
// of sending them: the standalone server's default when no SMTP server is
// configured, so that a developer can read what would have been sent.
//
// Each message is the exact RFC 5322 text the smtp transport would send
// (built by mail.Build, CRLF line ends), written to tmp/, synced, renamed
// into new/ and the folder synced, so a reader never sees half a message
// and a message reported written survives a crash. File names follow the
// Maildir convention (seconds.M<µs>P<pid>Q<n>R<random>.<host>), unique
// across processes and goroutines.
//
// DKIM: set the Maildir's DKIM field (made with mail.NewDKIM) before the
// first Send, and every message is signed as the smtp transport signs it,
// so that a developer can check the signature on what would have been sent.
package maildir
