package mail

import (
	"errors"
	"strings"
	"time"
)

// ErrPermanent marks a permanent delivery refusal, such as an SMTP 5xx
// reply: sending the same message again will not help. Transports wrap it;
// callers test with errors.Is.
var ErrPermanent = errors.New("mail: permanent failure")

// ErrRecipientRefused marks a permanent refusal of the recipient or of the
// message sent to it (an SMTP 5xx reply to RCPT or to the data): the
// address should not be mailed again. Errors that match it match
// ErrPermanent too; a 5xx to MAIL (the sender) or a message the transport
// could not build is permanent but says nothing about the recipient.
var ErrRecipientRefused = errors.New("mail: recipient refused")

// Message is one rendered invite email.
type Message struct {
	// ID is the invite's id; transports derive the Message-ID from it so
	// that a message sent twice can be recognised.
	ID      string
	From    string // RFC 5322 address, e.g. "Referrals <no-reply@example.com>"
	To      string // bare address
	Date    time.Time
	Subject string // one line, UTF-8
	Text    string
	HTML    string
	// Language is the template language the message was rendered in.
	Language string
	// UnsubscribeURL is the recipient's one-click unsubscribe URL (RFC
	// 8058), absolute http or https; empty: the message has none.
	UnsubscribeURL string
}

// MessageID returns the Message-ID header value, "<ID@domain>", with the
// domain of From (or "referralkit.invalid" if it has none).
func (m Message) MessageID() string {
	domain := "referralkit.invalid"
	from := strings.TrimRight(m.From, "> ")
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	return "<" + m.ID + "@" + domain + ">"
}
