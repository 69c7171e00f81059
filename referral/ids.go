package referral

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// IDs is the rule that user ids follow everywhere: in the routes' paths
// and bodies, in Redeem, Stats, Code and ShareLink, and so in the stores.
type IDs int

const (
	// UUIDs are userdocks' rule, the default: a UUID in any case, kept in
	// canonical lower-case form.
	UUIDs IDs = iota
	// OpaqueIDs are a host's own ids, such as "42" or "alice.smith": 1 to
	// 128 bytes of ASCII letters, digits and ".", "_", ":", "@", "-",
	// compared exactly ("Alice" and "alice" are two users).
	OpaqueIDs
)

const maxOpaqueID = 128

// Canonical returns s in the form the rule keeps, or false if s does not
// follow it: for a host that checks an id before it reaches the handler.
func (k IDs) Canonical(s string) (string, bool) {
	if k == UUIDs {
		return CanonicalUUID(s)
	}
	if s == "" || len(s) > maxOpaqueID {
		return "", false
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
// line of printable text, spaces collapsed, at most maxNameLen bytes. A
// name that looks like an address or a link is dropped ("" is unknown): in
// a From display name it would pose as another sender.
func cleanName(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == utf8.RuneError
	}), " ")
	if strings.ContainsAny(s, "@<>") || strings.Contains(s, "://") {
		return ""
	}
	if len(s) > maxNameLen {
		cut := maxNameLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}
