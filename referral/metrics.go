package referral

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QueueStore is the part of a store that tells the delivery queue's
// length, for the queue gauges of Config.Metrics. The stores of this
// module implement it; a Handler uses the one in Config.Queue.
type QueueStore interface {
	// Queue returns how many invites are pending delivery, those under a
	// lease included, and when the one waiting longest last entered the
	// queue (zero when there is none): the latest of its CreatedAt, its
	// ResentAt and, if CodeStore.RecordInvite reclaimed it failed for an
	// inline retry (step 1a), that reclaim's time. A claim or a retry does
	// not move it, nor does the reclaim of a pending invite whose lease ran
	// out, which never left the queue. now minus it is
	// referralkit_queue_oldest_seconds.
	Queue(ctx context.Context) (depth int, oldest time.Time, err error)
}

// Results of referralkit_invites_total.
const (
	resultSent       = "sent"
	resultQueued     = "queued"
	resultSuppressed = "suppressed"
)

// metrics are the handler's Prometheus metrics; a nil *metrics counts
// nothing.
type metrics struct {
	invites         *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	deliverySeconds prometheus.Histogram
	webhooks        *prometheus.CounterVec
}

// queueReadTimeout bounds the store read behind the queue gauges; a scrape
// must not hang on a slow store.
const queueReadTimeout = 2 * time.Second

// newMetrics registers the handler's metrics on reg, and the queue gauges
// if q is not nil. It fails if reg holds metrics of these names already:
// two handlers on one registry each need a prometheus.WrapRegistererWith
// label of their own, or one of them a prefix.
func newMetrics(reg prometheus.Registerer, q QueueStore, now func() time.Time) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "referralkit_invites_total",
			Help: "Invite requests by result: sent (inline), queued, suppressed (answered 201, not sent), or the status class of a refusal (4xx, 5xx).",
		}, []string{"result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "referralkit_deliveries_total",
			Help: "Delivery attempts by result: sent, retry (a transient failure, tried again later) or failed (for good).",
		}, []string{"result"}),
		deliverySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "referralkit_delivery_seconds",
			Help:    "Time the mail transport took for one delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12), // 10 ms to 20 s
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "referralkit_webhook_deliveries_total",
			Help: "Webhook deliveries by result: sent, retry (tried again later) or failed (given up after three days).",
		}, []string{"result"}),
	}
	cs := []prometheus.Collector{m.invites, m.deliveries, m.deliverySeconds, m.webhooks}
	if q != nil {
		g := &queueGauge{store: q, now: now}
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "referralkit_queue_depth",
				Help: "Invites pending delivery, read from the store.",
			}, func() float64 { depth, _ := g.read(); return float64(depth) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "referralkit_queue_oldest_seconds",
				Help: "Age of the oldest invite pending delivery, read from the store; 0 when none is.",
			}, func() float64 { _, age := g.read(); return age.Seconds() }),
		)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("referral: Config.Metrics: %w", err)
		}
	}
	// Every result from the start, so that a rate over them is defined.
	for _, r := range []string{resultSent, resultQueued, resultSuppressed, "4xx", "5xx"} {
		m.invites.WithLabelValues(r)
	}
	for _, r := range []string{"sent", "retry", "failed"} {
		m.deliveries.WithLabelValues(r)
		m.webhooks.WithLabelValues(r)
	}
	return m, nil
}

// invite counts an answered invite request: result, or the status class
// of a refusal.
func (m *metrics) invite(result string, status int) {
	if m == nil {
		return
	}
	if result == "" {
		result = fmt.Sprintf("%dxx", status/100)
	}
	m.invites.WithLabelValues(result).Inc()
}

// delivery counts the outcome of one delivery attempt.
func (m *metrics) delivery(result string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(result).Inc()
}

// webhook counts the outcome of one webhook delivery.
func (m *metrics) webhook(result string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(result).Inc()
}

// sendTook observes the time one Mailer.Send took.
func (m *metrics) sendTook(d time.Duration) {
	if m == nil {
		return
	}
	m.deliverySeconds.Observe(d.Seconds())
}

// queueGauge reads the queue from the store once for both gauges of a
// scrape: the two read it within a second of each other.
type queueGauge struct {
	store QueueStore
	now   func() time.Time

	mu     sync.Mutex
	at     time.Time // when depth and age were read
	depth  int
	oldest time.Time
}

func (g *queueGauge) read() (int, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.at) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), queueReadTimeout)
		depth, oldest, err := g.store.Queue(ctx)
		cancel()
		if err != nil {
			return -1, -1 // a store that cannot say: a value no queue has
		}
		g.at, g.depth, g.oldest = time.Now(), depth, oldest
	}
	if g.oldest.IsZero() {
		return g.depth, 0
	}
	return g.depth, max(g.now().Sub(g.oldest), 0)
}
