package mail

import (
	"errors"
	"net/url"
	"strings"
)

// Placeholders of link templates.
const (
	// CodePlaceholder is replaced by the referral code in a sign-up link
	// template.
	CodePlaceholder = "{code}"
	// TokenPlaceholder is replaced by the recipient's token in an
	// unsubscribe link template.
	TokenPlaceholder = "{token}"
)

// LinkTemplate builds links such as
// "https://app.example.com/signup?ref={code}".
type LinkTemplate struct {
	raw         string
	placeholder string
	inQuery     bool
}

// ParseLinkTemplate checks that s is an absolute http or https URL with
// exactly one {code}.
func ParseLinkTemplate(s string) (LinkTemplate, error) { return parseLink(s, CodePlaceholder) }

// ParseUnsubscribeTemplate checks that s is an absolute http or https URL
// with exactly one {token}, such as
// "https://app.example.com/v1/unsubscribe/{token}".
func ParseUnsubscribeTemplate(s string) (LinkTemplate, error) { return parseLink(s, TokenPlaceholder) }

func parseLink(s, placeholder string) (LinkTemplate, error) {
	if strings.Count(s, placeholder) != 1 {
		return LinkTemplate{}, errors.New("mail: link template must contain " + placeholder + " exactly once")
	}
	u, err := url.Parse(strings.Replace(s, placeholder, "X", 1))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return LinkTemplate{}, errors.New("mail: link template must be an absolute http or https URL")
	}
	q := strings.IndexByte(s, '?')
	return LinkTemplate{raw: s, placeholder: placeholder, inQuery: q >= 0 && q < strings.Index(s, placeholder)}, nil
}

// Link returns the link for v, escaped for where the placeholder stands.
func (t LinkTemplate) Link(v string) string {
	esc := url.PathEscape(v)
	if t.inQuery {
		esc = url.QueryEscape(v)
	}
	return strings.Replace(t.raw, t.placeholder, esc, 1)
}
