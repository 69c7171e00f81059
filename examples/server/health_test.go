package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
			routes(newTestHandler(t), nil, tt.store, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
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
