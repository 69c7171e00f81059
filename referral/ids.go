package referral

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// IDs is the rule that user ids follow everywhere: in the routes' paths
// and bodies, in Redeem, Stats, Code and ShareLink, and so in the stores.
type IDs int

const (
	// UUIDs are userdocks' rule, the default: a UUID in any case, kept in
	// canonical lower-case form.
	UUIDs IDs = iota
	// OpaqueIDs are a host's own ids, such as "42" or "alice.smith": 1 to
	// 128 bytes of ASCII letters, digits and ".", "_", ":", "@", "-", not
	// only dots, compared exactly ("Alice" and "alice" are two users).
	OpaqueIDs
)

const maxOpaqueID = 128

// Canonical returns s in the form the rule keeps, or false if s does not
// follow it: for a host that checks an id before it reaches the handler.
func (k IDs) Canonical(s string) (string, bool) {
	if k == UUIDs {
		return CanonicalUUID(s)
	}
	if s == "" || len(s) > maxOpaqueID || strings.Trim(s, ".") == "" {
		return "", false // "." and ".." cannot be in a path: a mux cleans them away
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:@-", c) >= 0) {
			return "", false
		}
	}
	return s, true
}

// userText is the 400's text for a user id that breaks the rule.
func (k IDs) userText(field string) string {
	if k == UUIDs {
		return field + " must be a UUID"
	}
	return field + ` must be 1 to 128 letters, digits or ".", "_", ":", "@", "-"`
}

// checkApp checks an app id that an Authenticator or a caller gave: empty
// (a host with one app) or in the rule's canonical form. UUIDs from an API
// key store always are; anything else is a bug of the code that made it.
func (k IDs) checkApp(appID string) error {
	if appID == "" {
		return nil
	}
	if c, ok := k.Canonical(appID); !ok || c != appID {
		return fmt.Errorf("referral: app id %q is not empty nor a canonical id", appID)
	}
	return nil
}

// maxNameLen bounds a referrer's display name, in bytes.
const maxNameLen = 100

// cleanName makes a display name safe for a header and a template: one
// line of printable text in NFKC form, spaces collapsed, at most
// maxNameLen bytes. Format characters (bidi controls, zero-width spaces)
// are dropped, but for the joiners that some scripts and emoji need. A
// name that looks like an address, a link, a domain or an RFC 2047 encoded
// word is dropped ("" is unknown): in a From display name or a subject it
// would pose as another sender or lead somewhere.
func cleanName(s string) string {
	s = oneLine(s)
	if strings.ContainsAny(s, "@<>/\\") || strings.Contains(s, "=?") || strings.Contains(s, ":") || domainLike.MatchString(s) {
		return ""
	}
	return s
}

// oneLine makes s one line of printable text in NFKC form (which turns
// lookalikes such as U+FF20 into '@'), spaces collapsed, format characters
// dropped but for the joiners, at most maxNameLen bytes.
func oneLine(s string) string {
	s = norm.NFKC.String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (!unicode.IsPrint(r) && r != '\u200c' && r != '\u200d') || r == utf8.RuneError
	}), " ")
	if len(s) > maxNameLen {
		cut := maxNameLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}

// domainLike matches text a mail client may turn into a link: a label, a
// dot and a top-level-domain-like run of letters ("evil.example",
// "www.bank.com").
var domainLike = regexp.MustCompile(`[\p{L}\p{N}-]\.\p{L}{2,}`)
