package referral

import (
	"net/mail"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/net/idna"
)

const (
	maxEmailLen = 254 // RFC 5321 path limit less the angle brackets
	maxLocalLen = 64  // RFC 5321 local-part limit
	maxIdemKey  = 255
)

// CanonicalUUID returns s in canonical lower-case form if it is a UUID in
// the usual 36-character form (any version, any case): the form user, app
// and invite ids take everywhere in this module.
func CanonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// inputError is a 400 whose text is safe to send to the client.
type inputError string

func (e inputError) Error() string { return string(e) }

// normalizeEmail checks that s is one bare address and returns it with the
// domain lower-cased in ASCII (IDNA) form, and its case-folded key.
func normalizeEmail(s string) (email, key string, err error) {
	if s == "" {
		return "", "", inputError("email is required")
	}
	if len(s) > maxEmailLen {
		return "", "", inputError("email is longer than 254 bytes")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", "", inputError("email must not contain control characters")
	}
	a, perr := mail.ParseAddress(s)
	if perr != nil || a.Name != "" || a.Address != s {
		return "", "", inputError("email must be a bare address like name@example.com, without a display name or comments")
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if len(local) > maxLocalLen {
		return "", "", inputError("email local part is longer than 64 bytes")
	}
	if strings.HasPrefix(domain, "[") {
		return "", "", inputError("email domain must be a name, not an address literal")
	}
	ascii, derr := idna.Lookup.ToASCII(domain)
	if derr != nil || !strings.Contains(ascii, ".") || strings.HasSuffix(ascii, ".") {
		return "", "", inputError("email domain is not a valid domain name")
	}
	email = local + "@" + ascii
	if len(email) > maxEmailLen {
		return "", "", inputError("email is longer than 254 bytes")
	}
	return email, strings.ToLower(local) + "@" + ascii, nil
}

// validIdempotencyKey reports whether k is 1 to 255 printable ASCII
// characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdemKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// validRequestID reports whether an incoming X-Request-Id is safe to echo
// and log: 1 to 128 characters of letters, digits, '-', '_', '.' and ':'.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
