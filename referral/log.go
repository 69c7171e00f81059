package referral

import (
	"log/slog"
	"regexp"
	"strings"
)

// redactedEmail logs an address as its domain only: enough to spot a
// misbehaving mail provider, not enough to identify the invitee.
type redactedEmail string

func (e redactedEmail) LogValue() slog.Value {
	s := string(e)
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return slog.StringValue("***" + s[i:])
	}
	return slog.StringValue("***")
}

// addressLike matches anything in a text that could be an address: a
// quoted or unquoted local part (any run of characters that are not space,
// control characters or RFC 5322 specials, so non-ASCII too), '@', and a
// domain name or address literal.
var addressLike = regexp.MustCompile(`(?:"(?:[^"\\]|\\.)*"|[^\x00-\x20\x7f<>()\[\]\\,;:@"]+)@(?:\[[^\]]*\]|[^\x00-\x20\x7f<>()\[\]\\,;:@"]+)`)

// scrub redacts every address in an error text to ***@domain before it is
// logged. SMTP replies often quote the recipient, and not always as it was
// sent (another case, another quoting), so matching addr alone would not
// do; addr, the invite's address, is replaced first in case its own form
// escapes the pattern.
func scrub(text, addr string) string {
	if addr != "" {
		text = strings.ReplaceAll(text, addr, redactedEmail(addr).LogValue().String())
	}
	text = addressLike.ReplaceAllStringFunc(text, func(a string) string {
		return redactedEmail(a).LogValue().String()
	})
	// Some servers quote the local part alone ("550 5.1.1 jane.doe...
	// User unknown"). Local parts shorter than three bytes are left:
	// replacing every "a" would leave nothing to read, and tell little.
	if at := strings.LastIndexByte(addr, '@'); at >= 3 {
		local := regexp.MustCompile("(?i)" + regexp.QuoteMeta(addr[:at]))
		text = local.ReplaceAllLiteralString(text, "***")
	}
	return text
}
