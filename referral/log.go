package referral

import (
	"log/slog"
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

// scrub removes addr from an error text before it is logged; SMTP replies
// often quote the recipient.
func scrub(text, addr string) string {
	if addr == "" {
		return text
	}
	return strings.ReplaceAll(text, addr, redactedEmail(addr).LogValue().String())
}
