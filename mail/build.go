package mail

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// ErrBadMessage is returned by [Build] (and so by the transports) for a
// message that cannot be turned into a safe RFC 5322 message, such as a
// header value with a line break. Transports also wrap ErrPermanent with
// it: the same message will never go out.
var ErrBadMessage = errors.New("mail: bad message")

// Build turns m into a go-mail message: RFC 5322 headers (Date from m.Date,
// or now if it is zero; Message-ID exactly m.MessageID(); From; To; Subject,
// RFC 2047-encoded when not ASCII; Content-Language from m.Language when
// set; List-Unsubscribe and List-Unsubscribe-Post from m.UnsubscribeURL
// when set) and a UTF-8 body, multipart/alternative with text/plain first and
// text/html second (text/plain alone when m.HTML is empty). A header value
// holding CR, LF or NUL is refused with ErrBadMessage rather than encoded,
// since it can only come from a bug or an injection attempt.
//
// It is the one place messages are built: mail/smtp sends the result and
// mail/maildir writes the same bytes with its WriteTo.
func Build(m Message) (*gomail.Msg, error) {
	msgID := m.MessageID()
	for _, h := range []struct{ name, value string }{
		{"From", m.From}, {"To", m.To}, {"Subject", m.Subject},
		{"Message-ID", msgID}, {"Content-Language", m.Language},
	} {
		if strings.ContainsAny(h.value, "\r\n\x00") {
			return nil, fmt.Errorf("%w: %s contains a line break or NUL", ErrBadMessage, h.name)
		}
	}
	id := strings.TrimSuffix(strings.TrimPrefix(msgID, "<"), ">")
	if m.ID == "" || strings.ContainsAny(id, "<> \t\"\\") {
		return nil, fmt.Errorf("%w: unusable Message-ID %q", ErrBadMessage, msgID)
	}
	if !isLanguageTag(m.Language) {
		return nil, fmt.Errorf("%w: Content-Language %q is not a language tag", ErrBadMessage, m.Language)
	}
	if err := checkUnsubscribeURL(m.UnsubscribeURL); err != nil {
		return nil, err
	}

	g := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithNoDefaultUserAgent())
	if err := g.From(m.From); err != nil {
		return nil, fmt.Errorf("%w: From: %w", ErrBadMessage, err)
	}
	if err := g.To(m.To); err != nil {
		return nil, fmt.Errorf("%w: To: %w", ErrBadMessage, err)
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	g.SetDateWithValue(date)
	g.SetMessageIDWithValue(id) // adds the angle brackets back
	g.Subject(m.Subject)
	if m.Language != "" {
		g.SetGenHeader(gomail.HeaderContentLang, m.Language)
	}
	if m.UnsubscribeURL != "" {
		// RFC 8058: the POST header tells the provider that a POST to the
		// URL unsubscribes at once, with no page to confirm.
		g.SetGenHeader(headerListUnsubscribe, "<"+m.UnsubscribeURL+">")
		g.SetGenHeader(headerListUnsubscribePost, "List-Unsubscribe=One-Click")
	}
	g.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		g.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return g, nil
}

// The one-click unsubscribe headers (RFC 2369, RFC 8058).
const (
	headerListUnsubscribe     gomail.Header = "List-Unsubscribe"
	headerListUnsubscribePost gomail.Header = "List-Unsubscribe-Post"
)

// maxUnsubscribeURL keeps the List-Unsubscribe line, which go-mail cannot
// fold inside the URL, under RFC 5322's 998 octets.
const maxUnsubscribeURL = 900

// checkUnsubscribeURL accepts "" and absolute http or https URLs made of
// printable ASCII without spaces or angle brackets, so that "<" + u + ">"
// is one safe header value that go-mail leaves unencoded.
func checkUnsubscribeURL(u string) error {
	if u == "" {
		return nil
	}
	if len(u) > maxUnsubscribeURL {
		return fmt.Errorf("%w: UnsubscribeURL longer than %d bytes", ErrBadMessage, maxUnsubscribeURL)
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("%w: UnsubscribeURL holds %q at byte %d", ErrBadMessage, c, i)
		}
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.Opaque != "" {
		return fmt.Errorf("%w: UnsubscribeURL is not an absolute http or https URL", ErrBadMessage)
	}
	return nil
}

// isLanguageTag accepts "" and strings shaped like BCP 47 tags; the tag
// itself was checked when the message was rendered.
func isLanguageTag(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
