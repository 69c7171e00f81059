package referral_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

// TestLogsRedactEchoedAddresses: a mail server that echoes the recipient
// back in another form still leaves only ***@domain in the logs, inline
// and queued.
func TestLogsRedactEchoedAddresses(t *testing.T) {
	t.Parallel()
	const address = "Alice.Secret@Example.com"
	replies := []string{
		"550 5.1.1 <alice.secret@example.com>: Recipient address rejected: User unknown",
		"550 alice.secret@example.com... User unknown",
		"550 5.1.1 <ALICE.SECRET@EXAMPLE.COM> mailbox unavailable",
		`550 "alice.secret"@example.com unknown`,
		"550 <alice.secret+tag@example.com>; forwarded from <Alice.Secret@example.com>",
		"550 5.1.1 alice.secret... User unknown", // sendmail quotes the local part alone
	}
	for _, mode := range []referral.DeliveryMode{referral.Inline, referral.Queued} {
		for i, reply := range replies {
			t.Run(fmt.Sprintf("%s/%d", map[referral.DeliveryMode]string{referral.Inline: "inline", referral.Queued: "queued"}[mode], i), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, func(c *referral.Config) { c.Delivery = mode })
				f.mailer.Fail(errors.New(reply))
				rec := f.post(invite(address, "en"))
				if mode == referral.Inline {
					checkEnvelope(t, rec, 500)
				} else {
					checkEnvelope(t, rec, 201)
					_, err := f.h.DeliverDue(context.Background())
					require.NoError(t, err)
				}
				logs := f.logs.String()
				assert.Contains(t, logs, "550", "the cause is logged")
				assert.Contains(t, strings.ToLower(logs), "***@example.com")
				assert.NotContains(t, strings.ToLower(logs), "alice.secret", "no form of the local part is logged")
			})
		}
	}
}
