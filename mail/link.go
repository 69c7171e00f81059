package mail

import (
	"errors"
	"net/url"
	"strings"
)

// CodePlaceholder is replaced by the referral code in a link template.
const CodePlaceholder = "{code}"

// LinkTemplate builds sign-up links such as
// "https://app.example.com/signup?ref={code}".
type LinkTemplate struct {
	raw     string
	inQuery bool
}

// ParseLinkTemplate checks that s is an absolute http or https URL with
// exactly one {code}.
func ParseLinkTemplate(s string) (LinkTemplate, error) {
	if strings.Count(s, CodePlaceholder) != 1 {
		return LinkTemplate{}, errors.New("mail: link template must contain {code} exactly once")
	}
	u, err := url.Parse(strings.Replace(s, CodePlaceholder, "CODE", 1))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return LinkTemplate{}, errors.New("mail: link template must be an absolute http or https URL")
	}
	q := strings.IndexByte(s, '?')
	return LinkTemplate{raw: s, inQuery: q >= 0 && q < strings.Index(s, CodePlaceholder)}, nil
}

// Link returns the link for code, escaped for where {code} stands.
func (t LinkTemplate) Link(code string) string {
	esc := url.PathEscape(code)
	if t.inQuery {
		esc = url.QueryEscape(code)
	}
	return strings.Replace(t.raw, CodePlaceholder, esc, 1)
}
