package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// roleEnv, set to "bare" in a child's environment, makes the loadtest
// binary (or its test binary) serve the bare baseline instead of running.
const roleEnv = "REFERRALKIT_LOADTEST_ROLE"

// bareBody is the referral server's 201 body in queued mode, byte for byte.
const bareBody = `{"success":true,"message":"Invite accepted; the email will be sent shortly.","error":null,"data":null}`

// bareHandler is the baseline: the same route pattern, reading the body
// and answering the referral server's 201 with its headers, and nothing
// else. The ratio of the two servers is the cost of the referral work.
func bareHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/users/{userId}/referral-invites", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 16<<10))
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, bareBody)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// serveBare is the bare child's whole life: listen on a port of 127.0.0.1,
// say where on stderr as the referral server does, serve until ctx ends.
func serveBare(ctx context.Context, stderr io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("loadtest: bare: %w", err)
	}
	// The same timeouts as the referral server, so that only the handler
	// differs.
	srv := &http.Server{
		Handler:           bareHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      45 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Fprintf(stderr, "msg=\"bare server listening\" addr=http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// startBare runs this same binary again as the bare child, in dir.
func startBare(ctx context.Context, dir string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), roleEnv+"=bare")
	return startChild(ctx, cmd, filepath.Join(dir, "bare.log"))
}
