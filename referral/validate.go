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
	if err := checkLocalPart(local); err != nil {
		return "", "", err
	}
	if strings.HasPrefix(domain, "[") {
		return "", "", inputError("email domain must be a name, not an address literal")
	}
	ascii, err := domainToASCII(domain)
	if err != nil {
		return "", "", err
	}
	email = local + "@" + ascii
	if len(email) > maxEmailLen {
		return "", "", inputError("email is longer than 254 bytes")
	}
	return email, strings.ToLower(local) + "@" + ascii, nil
}

// checkLocalPart refuses local parts that mail software may show as
// something else: anything but printable ASCII (there is no SMTPUTF8 here,
// and invisible characters such as U+200B or U+00A0 would make two
// addresses look alike), and RFC 2047 encoded words, which some clients
// decode in addresses.
func checkLocalPart(local string) error {
	for i := 0; i < len(local); i++ {
		if local[i] <= ' ' || local[i] > '~' {
			return inputError("email local part must be printable ASCII")
		}
	}
	if i := strings.Index(local, "=?"); i >= 0 && strings.Contains(local[i+2:], "?=") {
		return inputError("email local part must not look like an encoded word (=?...?=)")
	}
	return nil
}

// domainToASCII returns domain in lower-case ASCII (IDNA) form, refusing
// what is not a plain host name: an A-label that the IDNA conversion would
// turn into another name (xn--gmail-.com becomes gmail.com), a label that
// is empty or over 63 octets, and a name a resolver may read as an IPv4
// address (an all-numeric or 0x-hex last label: 127.0.0.1, 0x7f.0.0.1).
func domainToASCII(domain string) (string, error) {
	const invalid = inputError("email domain is not a valid domain name")
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", invalid
	}
	in, out := strings.Split(idnaDots.Replace(domain), "."), strings.Split(ascii, ".")
	if len(in) != len(out) || len(out) < 2 {
		return "", invalid
	}
	for i, label := range out {
		if label == "" || len(label) > 63 {
			return "", invalid
		}
		if isASCII(in[i]) && label != strings.ToLower(in[i]) {
			return "", inputError("email domain is not a valid internationalized domain name")
		}
	}
	if last := out[len(out)-1]; isNumericLabel(last) {
		return "", inputError("email domain must be a name, not an IP address")
	}
	return ascii, nil
}

// idnaDots are the label separators IDNA maps to '.'.
var idnaDots = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".")

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isNumericLabel reports whether label is all decimal digits, or 0x and
// hex digits: the forms inet_aton accepts for a part of an IPv4 address.
func isNumericLabel(label string) bool {
	digits := "0123456789"
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		label, digits = label[2:], "0123456789abcdefABCDEF"
		if label == "" {
			return true
		}
	}
	return label != "" && strings.Trim(label, digits) == ""
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
