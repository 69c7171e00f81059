// Package mail holds the invite [Message] and the localized templates that
// render it. Transports live in the subpackages: smtp (an SMTP server),
// maildir (a Maildir folder) and mailtest (a recording fake for tests).
//
// The templates are embedded in the binary (English, German, French, Spanish
// and Japanese). Each language is two files in one folder: NAME.txt defines
// the templates "subject" and "text" (text/template) and NAME.html is the
// HTML body (html/template, so the code and link are escaped). A host app can
// replace or add languages with [NewTemplates] and an fs.FS of the same
// layout.
package mail
