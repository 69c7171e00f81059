// Package mail holds the invite [Message] and the localized templates that
// render it. Transports live in the subpackages: smtp (an SMTP server),
// maildir (a Maildir folder) and mailtest (a recording fake for tests).
//
// # Templates
//
// The templates are embedded in the binary (English, German, French, Spanish
// and Japanese). Each language is two files in one folder: NAME.txt defines
// the templates "subject" and "text" (text/template) and NAME.html is the
// HTML body (html/template, so every field is escaped), where NAME is a BCP
// 47 tag such as "de" or "pt-BR". Line breaks in a rendered subject are
// folded into spaces, so a subject is always one header line.
//
// The templates are given a [Data]:
//
//	.Code             the referral code
//	.Link             the sign-up link carrying the code
//	.ReferrerName     the referrer's display name; empty when unknown
//	.ProductName      the host's product, e.g. "Acme"
//	.UnsubscribeLink  the recipient's unsubscribe link; may be empty
//
// so a template tests the optional ones: {{if .ReferrerName}}...{{end}}.
//
// A host app adds or replaces languages with [NewTemplates] and an fs.FS of
// the same layout, or serves only its own with [NewTemplatesOnly], which
// leaves the embedded languages out and names the fallback language. The
// files may sit at the root of the fs.FS or, as //go:embed lays them out, in
// a templates folder that is the root's only entry:
//
//	//go:embed templates
//	var templates embed.FS // holds templates/en.txt, templates/en.html, ...
//
//	tmpl, err := mail.NewTemplates(templates)
//
// # Checks
//
// Templates are checked when they are loaded, so that a mistake is an error
// at start-up rather than a failed invite: every language is rendered with
// sample data, once with every field set and once with ReferrerName and
// UnsubscribeLink empty. The error names the file ("mail: template
// de.html: ...") when a template does not parse or fails to render, when a
// NAME.txt lacks "subject" or "text" or renders an empty subject, when a
// NAME.html has no NAME.txt beside it or the other way round, or when NAME
// is not a language tag. An fs.FS that yields no language at all (the wrong
// folder, say) is an error too.
//
// # Unsubscribe
//
// A [Message] with an UnsubscribeURL gets the RFC 8058 one-click headers
// from [Build]:
//
//	List-Unsubscribe: <https://app.example.com/v1/unsubscribe/TOKEN>
//	List-Unsubscribe-Post: List-Unsubscribe=One-Click
//
// The URL must be absolute http or https, printable ASCII without spaces
// or angle brackets; anything else is refused with [ErrBadMessage].
//
// # DKIM
//
// [NewDKIM] reads the signing key (RSA of at least 2048 bits, or Ed25519;
// PEM, PKCS #1 or PKCS #8) and names the domain and selector. Publish
// [DKIM.TXTRecord] as a TXT record at [DKIM.TXTName], then give the DKIM to
// the transport, which signs every message it delivers:
//
//	d, err := mail.NewDKIM("example.com", "invite2025", keyPEM)
//	// publish d.TXTRecord() at d.TXTName(), "invite2025._domainkey.example.com"
//	m, err := smtp.New(smtp.Config{Host: "mail.example.com", DKIM: d})
//	// or: md, err := maildir.New(dir); md.DKIM = d
//
// Signatures use relaxed/relaxed canonicalization and sign From, To,
// Subject, Date, Message-ID, MIME-Version, Content-Type, List-Unsubscribe
// and List-Unsubscribe-Post (the last two even when absent, so that they
// cannot be added). [DKIM.Sign] signs the bytes of a message for other
// transports.
package mail
