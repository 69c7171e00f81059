package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetrics: without -metrics-addr, GET /metrics on the main port counts
// an invite sent and its delivery, and has the queue gauges and Go's
// runtime and process metrics, in the text format Prometheus parses.
func TestMetrics(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	s := startServer(t, bin)
	assert.Contains(t, s.startup, "url="+s.url+"/metrics", "the start-up log says where")
	creds := createKey(t, bin, s.dir)
	require.Equal(t, http.StatusCreated, postInvite(t, s.url, creds, "friend@example.com", "en"))
	waitForMail(t, s.dir, 1)

	var mfs map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		mfs = scrape(t, s.url+"/metrics")
		v, _ := sample(mfs, "referralkit_deliveries_total", "sent")
		return v == 1
	}, 10*time.Second, 20*time.Millisecond, "referralkit_deliveries_total{result=\"sent\"}")
	for _, tt := range []struct {
		name, result string
		want         float64
	}{
		{"referralkit_invites_total", "sent", 1},
		{"referralkit_invites_total", "queued", 0},
		{"referralkit_invites_total", "4xx", 0},
		{"referralkit_deliveries_total", "sent", 1},
		{"referralkit_deliveries_total", "failed", 0},
		{"referralkit_queue_depth", "", 0},
		{"referralkit_queue_oldest_seconds", "", 0},
	} {
		v, ok := sample(mfs, tt.name, tt.result)
		if assert.True(t, ok, "%s{result=%q} is missing", tt.name, tt.result) {
			assert.Equal(t, tt.want, v, "%s{result=%q}", tt.name, tt.result)
		}
	}
	for _, name := range []string{"referralkit_delivery_seconds", "go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		assert.Contains(t, mfs, name)
	}
	assert.Equal(t, uint64(1), mfs["referralkit_delivery_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())

	// A refusal counts by its status class.
	require.Equal(t, http.StatusUnauthorized, postInvite(t, s.url, credentials{ClientID: creds.ClientID, APIKey: "rk_nope_nope"}, "other@example.com", "en"))
	v, _ := sample(scrape(t, s.url+"/metrics"), "referralkit_invites_total", "4xx")
	assert.Equal(t, 1.0, v)

	resp, err := http.Post(s.url+"/metrics", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
	s.stop(t)
}

// TestMetricsAddr: with -metrics-addr, /metrics is served only there; the
// main port answers it with a 404 in the envelope, the metrics port serves
// nothing else, and SIGTERM stops both.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	s := startServer(t, bin, "-metrics-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)/metrics`).FindStringSubmatch(s.startup)
	require.NotNil(t, m, "no metrics url in the start-up log:\n%s", s.startup)
	metricsURL := m[1]
	require.NotEqual(t, s.url, metricsURL)
	creds := createKey(t, bin, s.dir)
	require.Equal(t, http.StatusCreated, postInvite(t, s.url, creds, "friend@example.com", "en"))

	resp, err := http.Get(s.url + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	var env map[string]any
	require.NoError(t, json.Unmarshal(body, &env), "body: %s", body)
	assert.Equal(t, map[string]any{"success": false, "message": nil, "error": "not found", "data": nil}, env)

	mfs := scrape(t, metricsURL+"/metrics")
	v, ok := sample(mfs, "referralkit_invites_total", "sent")
	assert.True(t, ok)
	assert.Equal(t, 1.0, v)
	for _, name := range []string{"referralkit_deliveries_total", "referralkit_queue_depth", "go_goroutines", "process_resident_memory_bytes"} {
		assert.Contains(t, mfs, name)
	}
	for _, path := range []string{"/healthz", "/v1/users/" + tourUser + "/referral-invites", "/"} {
		resp, err := http.Get(metricsURL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s is not on the metrics port", path)
	}

	logs := s.stop(t)
	assert.Contains(t, logs, "stopped")
	_, err = http.Get(metricsURL + "/metrics")
	assert.Error(t, err, "the metrics port is closed with the main one")
}

// scrape GETs url and parses it as Prometheus does.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return mfs
}

// sample is the value of the metric name with the label result (none if
// result is empty), and whether there is one.
func sample(mfs map[string]*dto.MetricFamily, name, result string) (float64, bool) {
	for _, m := range mfs[name].GetMetric() {
		got := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" {
				got = l.GetValue()
			}
		}
		if got != result {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}
