//go:build pprof

package main

// Built with -tags pprof, the server serves net/http/pprof on PPROF_ADDR
// (a HOST:PORT of loopback, say) when that is set: how the profiles in
// BENCHMARKS.md were taken. Never in a build without the tag.

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		slog.Error("pprof server stopped", "cause", http.ListenAndServe(addr, nil))
	}()
}
