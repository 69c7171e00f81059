package referral_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
)

// metricFixture is a fixture whose handler reports to its own registry.
func metricFixture(t *testing.T, configure ...func(*referral.Config)) (*fixture, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f := newFixture(t, append([]func(*referral.Config){func(c *referral.Config) {
		c.Metrics, c.Queue = reg, c.Store.(*memory.Store)
	}}, configure...)...)
	return f, reg
}

// value is the value of the metric name with the label result, as the
// registry reports it.
func value(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != result) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s{result=%q}", name, result)
	return 0
}

func TestMetricsCountInvites(t *testing.T) {
	t.Parallel()
	f, reg := metricFixture(t)
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 429)
	checkEnvelope(t, f.post(invite("bad", "en")), 400)
	require.NoError(t, f.h.Suppress(context.Background(), appID, "s@example.com"))
	checkEnvelope(t, f.post(invite("s@example.com", "en")), 201)
	f.mailer.Fail(fmt.Errorf("550 no (%w)", mail.ErrPermanent))
	checkEnvelope(t, f.post(invite("b@example.com", "en")), 500)

	assert.Equal(t, 1.0, value(t, reg, "referralkit_invites_total", "sent"))
	assert.Equal(t, 1.0, value(t, reg, "referralkit_invites_total", "suppressed"))
	assert.Equal(t, 2.0, value(t, reg, "referralkit_invites_total", "4xx"))
	assert.Equal(t, 1.0, value(t, reg, "referralkit_invites_total", "5xx"))
	assert.Equal(t, 0.0, value(t, reg, "referralkit_invites_total", "queued"), "every result is there from the start")
	assert.Equal(t, 1.0, value(t, reg, "referralkit_deliveries_total", "sent"))
	assert.Equal(t, 1.0, value(t, reg, "referralkit_deliveries_total", "failed"))
	assert.Equal(t, 2.0, value(t, reg, "referralkit_delivery_seconds", ""), "two sends timed")

	// The names and types a scraper sees.
	n, err := testutil.GatherAndCount(reg, "referralkit_invites_total", "referralkit_deliveries_total",
		"referralkit_delivery_seconds", "referralkit_queue_depth", "referralkit_queue_oldest_seconds")
	require.NoError(t, err)
	assert.Equal(t, 5+3+1+1+1, n)
}

func TestMetricsQueue(t *testing.T) {
	t.Parallel()
	_, empty := metricFixture(t)
	assert.Equal(t, 0.0, value(t, empty, "referralkit_queue_depth", ""))
	assert.Equal(t, 0.0, value(t, empty, "referralkit_queue_oldest_seconds", ""))

	// The gauges read the store at most once a second: this handler's are
	// first read after the invites.
	f, reg := metricFixture(t, func(c *referral.Config) { c.Delivery = referral.Queued })
	checkEnvelope(t, f.post(invite("a@example.com", "en")), 201)
	checkEnvelope(t, f.post(invite("b@example.com", "en")), 201)
	f.Advance(90 * time.Second)
	assert.Equal(t, 2.0, value(t, reg, "referralkit_queue_depth", ""))
	assert.Equal(t, 90.0, value(t, reg, "referralkit_queue_oldest_seconds", ""))
	assert.Equal(t, 2.0, value(t, reg, "referralkit_invites_total", "queued"))

	f.mailer.Fail(errors.New("421 try later"))
	_, err := f.h.DeliverDue(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2.0, value(t, reg, "referralkit_deliveries_total", "retry"))
}

// Metrics go on the registry the host passes; New refuses a second
// handler's on the same one rather than mixing two handlers' counts.
func TestMetricsOnTheHostsRegistry(t *testing.T) {
	t.Parallel()
	_, reg := metricFixture(t)
	store := memory.New()
	_, err := referral.New(referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: store, Recipients: store,
		Mailer: &discardMailer{}, From: "a@example.com", SignupURL: "https://example.com/?r={code}",
		UnsubscribeURL: unsubscribeBase + "{token}", Metrics: reg})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "referral: Config.Metrics:"), err.Error())
	_, err = referral.New(referral.Config{Auth: referral.AuthenticatorFunc(testAuth), Store: store, Recipients: store,
		Mailer: &discardMailer{}, From: "a@example.com", SignupURL: "https://example.com/?r={code}",
		UnsubscribeURL: unsubscribeBase + "{token}", Metrics: prometheus.WrapRegistererWithPrefix("second_", reg)})
	assert.NoError(t, err, "a wrapped registerer tells them apart")
}
