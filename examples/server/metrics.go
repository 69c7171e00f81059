package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsPath is where the server serves its Prometheus metrics: on -addr,
// or with -metrics-addr only there.
const metricsPath = "/metrics"

// newRegistry is the server's own registry, never prometheus's global one
// (which a library linked in might fill), with Go's runtime and process
// collectors; the referral handler registers its metrics on it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister( // a fresh registry: no name is taken yet
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// metricsRoute serves reg's metrics to GET and HEAD, and answers other
// methods with a 405 in the envelope, as /healthz does.
func metricsRoute(reg *prometheus.Registry) http.Handler {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeEnvelope(w, http.StatusMethodNotAllowed, "method not allowed; use GET")
			return
		}
		metrics.ServeHTTP(w, r)
	})
}

// metricsServer serves only /metrics, on -metrics-addr: a port that can
// stay private while -addr faces the Internet.
func metricsServer(metrics http.Handler, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle(metricsPath, metrics)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
