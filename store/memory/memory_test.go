package memory_test

import (
	"testing"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
	"github.com/referralkit/referralkit/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) referral.CodeStore { return memory.New() })
}

func TestRedemptionConformance(t *testing.T) {
	storetest.RunRedemptions(t, func(t *testing.T) storetest.Redemptions { return memory.New() })
}

func TestRecipientConformance(t *testing.T) {
	storetest.RunRecipients(t, func(t *testing.T) storetest.Recipients { return memory.New() })
}

func TestReferrerConformance(t *testing.T) {
	storetest.RunReferrers(t, func(t *testing.T) storetest.Referrers { return memory.New() })
}

func TestQueueConformance(t *testing.T) {
	storetest.RunQueue(t, func(t *testing.T) storetest.Queue { return memory.New() })
}

func TestEventConformance(t *testing.T) {
	storetest.RunEvents(t, storetest.EventStores{
		New: func(t *testing.T, outbox bool) storetest.Events {
			return memory.NewWithOptions(memory.Options{Outbox: outbox})
		},
	})
}
