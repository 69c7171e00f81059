package referral_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAddressRules covers the addresses DESIGN.md section 7 refuses: each
// one a 400 with a safe message, nothing recorded and nothing sent.
func TestAddressRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, email string
		status      int
		errText     string // a substring of the error, for refusals
		stored      string // the stored address, for 201s
	}{
		{"IDN domain", "joerg@Bücher.example", 201, "", "joerg@xn--bcher-kva.example"},
		{"A-label that survives the round trip", "joerg@XN--BCHER-KVA.example", 201, "", "joerg@xn--bcher-kva.example"},
		{"ideographic full stop", "joerg@bücher\u3002example", 201, "", "joerg@xn--bcher-kva.example"},
		{"hex-looking label that is not last", "a@0x7f.example.com", 201, "", "a@0x7f.example.com"},
		{"digits in the last label", "a@example.c0m", 201, "", "a@example.c0m"},
		{"all-numeric first label", "a@2130706433.com", 201, "", "a@2130706433.com"},
		{"63-octet label", "a@" + strings.Repeat("b", 63) + ".com", 201, "", "a@" + strings.Repeat("b", 63) + ".com"},
		{"printable ASCII specials", "a!#$%&'*+/=?^_`{|}~-b@example.com", 201, "", "a!#$%&'*+/=?^_`{|}~-b@example.com"},

		{"A-label that decodes to another name", "victim@xn--gmail-.com", 400, "domain", ""},
		{"upper-case A-label that decodes to another name", "victim@XN--GMAIL-.com", 400, "domain", ""},
		{"empty A-label", "a@xn--.com", 400, "domain", ""},
		{"invalid A-label", "a@xn--gmail-ts.com", 400, "domain", ""},
		{"dotted quad", "a@127.0.0.1", 400, "not an IP address", ""},
		{"hex first part", "a@0x7f.0.0.1", 400, "not an IP address", ""},
		{"octal first part", "a@0177.0.0.1", 400, "not an IP address", ""},
		{"all-numeric last label", "a@example.2130706433", 400, "not an IP address", ""},
		{"hex last label", "a@example.0x7F", 400, "not an IP address", ""},
		{"bare 0x last label", "a@example.0x", 400, "not an IP address", ""},
		{"64-octet label", "a@" + strings.Repeat("b", 64) + ".com", 400, "domain", ""},
		{"64-octet label after ToASCII", "a@" + strings.Repeat("b", 58) + "ü.com", 400, "domain", ""},
		{"trailing dot", "a@example.com.", 400, "email", ""},
		{"non-ASCII local part", "jörg@bücher.example", 400, "printable ASCII", ""},
		{"zero-width space in local part", "ali\u200bce@example.com", 400, "printable ASCII", ""},
		{"no-break space in local part", "ali\u00a0ce@example.com", 400, "printable ASCII", ""},
		{"encoded word", "=?utf-8?q?alice?=@example.com", 400, "encoded word", ""},
		{"encoded word inside", "x=?utf-8?b?YWxpY2U=?=y@example.com", 400, "encoded word", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			rec := f.post(invite(tt.email, "en"))
			env := checkEnvelope(t, rec, tt.status)
			if tt.status != 201 {
				assert.Contains(t, *env.Error, tt.errText)
				assert.NotContains(t, *env.Error, tt.email, "the error does not echo the address")
				assert.Empty(t, f.store.Invites(), "a refused address is not recorded")
				assert.Empty(t, f.mailer.Messages(), "a refused address is not sent to")
				return
			}
			invs := f.store.Invites()
			require.Len(t, invs, 1)
			assert.Equal(t, tt.stored, invs[0].Email)
			msgs := f.mailer.Messages()
			require.Len(t, msgs, 1)
			assert.Equal(t, tt.stored, msgs[0].To)
		})
	}
}
