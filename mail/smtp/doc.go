// Package smtp sends invite messages to an SMTP server (a submission
// server or a relay), built on github.com/wneessen/go-mail.
//
// Security: STARTTLS is the default and mandatory (a server that does not
// offer it is an error); implicit TLS is available; plaintext only to a
// loopback host, and credentials only over TLS. A Config can be read from
// a URL such as "smtp://user:pass@mail.example.com:587?tls=starttls" with
// [ParseURL].
//
// Connections are kept open between messages, so a delivery worker that
// calls Send in a loop uses one connection; an idle one is closed after
// Config.IdleTimeout. When the server offers PIPELINING (RFC 2920) a
// message takes two round trips: MAIL, RCPT and DATA together, then the
// message.
//
// Errors: see [Mailer]. In short, errors.Is(err, mail.ErrPermanent) holds
// for a 5xx reply to the message itself and for a message that cannot be
// built; everything else, including refused AUTH and failed TLS, is
// transient so that the caller keeps the message and retries.
//
// DKIM: set Config.DKIM (made with mail.NewDKIM) and every message is
// signed before it is sent; New refuses a DKIM that cannot sign.
//
// [mail.Build] is the one way messages are built; the maildir transport uses it
// too.
package smtp
