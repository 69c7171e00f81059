package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnknownV1PathsAnswerInTheEnvelope: under /v1/, a path no route takes
// and a path that is not clean both get a 404 in the envelope, never
// ServeMux's text 404 or a redirect to another path.
func TestUnknownV1PathsAnswerInTheEnvelope(t *testing.T) {
	t.Parallel()
	h := routes(newTestHandler(t), nil, okStore{}, nil, nil, discard)
	const user = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	for _, target := range []string{
		"/v1/nope",
		"/v1/",
		"/v1",
		"/v1/users/x",
		"/v1/users/" + user,
		"//v1/users/" + user + "/referral-invites",
		"/v1/./users/" + user + "/referral-invites",
		"/v1/users/" + user + "/../x",
		"/v1/users/" + user + "/referral-invites/",
		"/v1/referral-codes/4K1SK4W21V/redemptions/../..",
		"/v1/unsubscribe/",
		"/v1/unsubscribe/x/y",
		"/v1/users/" + user + "/referral-code/",
		"/v1/users/" + user + "/referral-invites/x/",
		"/v1/users/" + user + "/referral-invites/x/resend/",
		"/v1/users/" + user + "/referral-invites/x/y",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(method+" "+target, func(t *testing.T) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
				assert.Equal(t, http.StatusNotFound, rec.Code, "body: %s", rec.Body)
				assert.Empty(t, rec.Header().Get("Location"))
				assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
				assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
				var env map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), "body: %s", rec.Body)
				assert.Equal(t, map[string]any{"success": false, "message": nil, "error": "not found", "data": nil}, env)
			})
		}
	}

	// Routes and paths outside /v1/ are as before.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/users/"+user+"/referral-invites", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, "the invite route answers itself")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/unsubscribe/"+strings.Repeat("A", 43), nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"), "the unsubscribe route answers itself, with its page")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
}
