package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestRecipientConformance(t *testing.T) {
	storetest.RunRecipients(t, func(t *testing.T) storetest.Recipients { return openStore(t) })
}

// TestRecipientCancelledContext: every RecipientStore method gives up with
// the context's error.
func TestRecipientCancelledContext(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Secret", func() error { _, err := s.Secret(ctx, "k", func() []byte { return []byte{1} }); return err }},
		{"Suppress", func() error { return s.Suppress(ctx, referral.Suppression{AddressHash: "h"}) }},
		{"Unsuppress", func() error { return s.Unsuppress(ctx, "", "h") }},
		{"Suppression", func() error { _, _, err := s.Suppression(ctx, "", "h"); return err }},
		{"InviteRecipient", func() error { _, err := s.InviteRecipient(ctx, "i"); return err }},
		{"EraseAddresses", func() error { _, err := s.EraseAddresses(ctx, time.Now(), 1); return err }},
	} {
		assert.ErrorIs(t, c.call(), context.Canceled, c.name)
	}
}
