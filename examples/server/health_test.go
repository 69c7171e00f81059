package main

import (
	"context"
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

// faultyStore is a real SQLite store whose Ping fails when told to.
type faultyStore struct {
	backend
	pingErr error
}

func (s faultyStore) Ping(ctx context.Context) error {
	if s.pingErr != nil {
		return s.pingErr
	}
	return s.backend.Ping(ctx)
}

// TestHealthz: 200 in the envelope while the store answers, 503 in the
// envelope when it does not.
func TestHealthz(t *testing.T) {
	t.Parallel()
	real, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"))
	require.NoError(t, err)
	t.Cleanup(func() { real.Close() })
	down := errors.New("disk on fire")

	tests := []struct {
		name    string
		store   backend
		status  int
		success bool
	}{
		{"store answers", real, http.StatusOK, true},
		{"store does not answer", faultyStore{backend: real, pingErr: down}, http.StatusServiceUnavailable, false},
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
