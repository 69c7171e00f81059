package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/store/sqlite"
)

// faultyStore is a real SQLite store whose write check fails when told to.
type faultyStore struct {
	backend
	writeErr error
}

func (s faultyStore) CheckWrite(ctx context.Context) error {
	if s.writeErr != nil {
		return s.writeErr
	}
	return s.backend.CheckWrite(ctx)
}

// TestHealthz: 200 in the envelope while the store can write, 503 in the
// envelope when it cannot, also while it still answers reads.
func TestHealthz(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "r.db")
	real, err := sqlite.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { real.Close() })
	down := errors.New("disk on fire")
	// The same file opened read-only: it answers every read, and every
	// write fails.
	db, err := sql.Open("sqlite", sqlite.DSN(path)+"&mode=ro")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	readOnly, err := sqlite.New(db)
	require.NoError(t, err)
	require.NoError(t, readOnly.Ping(context.Background()))

	tests := []struct {
		name    string
		store   backend
		status  int
		success bool
	}{
		{"store answers", real, http.StatusOK, true},
		{"store reads but cannot write", readOnly, http.StatusServiceUnavailable, false},
		{"store fails writes", faultyStore{backend: real, writeErr: down}, http.StatusServiceUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			routes(newTestHandler(t), nil, tt.store, nil, nil, discard).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			var env struct {
				Success bool
				Message *string
				Error   *string
				Data    any
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), "body: %s", rec.Body)
			assert.Equal(t, tt.success, env.Success)
			assert.Equal(t, tt.success, env.Message != nil, "message set on success only")
			assert.Equal(t, !tt.success, env.Error != nil, "error set on failure only")
			assert.NotContains(t, rec.Body.String(), "disk on fire", "the cause is not shown")
			assert.Nil(t, env.Data)
		})
	}
}

// countingStore counts write checks.
type countingStore struct {
	backend
	n *atomic.Int64
}

func (s countingStore) CheckWrite(ctx context.Context) error {
	s.n.Add(1)
	return s.backend.CheckWrite(ctx)
}

// TestHealthzFloodIsNotAWriteFlood: /healthz needs no credentials, so a
// flood of probes shares one write check a second; other methods get a
// 405 in the envelope.
func TestHealthzFloodIsNotAWriteFlood(t *testing.T) {
	t.Parallel()
	real, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"))
	require.NoError(t, err)
	t.Cleanup(func() { real.Close() })
	var n atomic.Int64
	h := routes(newTestHandler(t), nil, countingStore{real, &n}, nil, nil, discard)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			assert.Equal(t, http.StatusOK, rec.Code)
		})
	}
	wg.Wait()
	// One check per second that the 50 probes took: a handful even on a
	// machine that stalls, never one each.
	assert.Less(t, n.Load(), int64(10))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/healthz", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
}
