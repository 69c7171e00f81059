// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp)
// inside a test, on 127.0.0.1 with a port chosen by the system.
//
// The server records every accepted message (envelope and raw bytes),
// offers STARTTLS or implicit TLS with a certificate made at start-up for
// 127.0.0.1, ::1 and localhost (trust it through [Server.RootCAs]), and
// requires AUTH PLAIN or LOGIN when given credentials. It can be scripted
// to misbehave: answer a chosen code, or never answer, to the next messages
// ([Server.SetFault]); refuse connections ([Server.Stop], [Server.Start]);
// drop open connections ([Server.DropConnections]) or drop them at random
// ([Server.SetDropRate]). It shuts itself down in t.Cleanup.
package smtptest
