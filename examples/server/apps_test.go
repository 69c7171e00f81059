package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer that a server goroutine writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serveInProcess runs the server through run() on a free port with env's
// settings, and returns its base URL. It stops when the test ends.
func serveInProcess(t *testing.T, env func(string) string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), env, &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, 0, <-done, "exit code; log:\n%s", stderr.String())
	})
	listening := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
	var url string
	require.Eventually(t, func() bool {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "server did not start:\n%s", stderr.String())
	return url
}

// TestAppsDisableEnable: a disabled app's API key and access token are both
// refused with 403; enabling it lets them in again.
func TestAppsDisableEnable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := func(k string) string {
		switch k {
		case "REFERRAL_DB":
			return filepath.Join(dir, "r.db")
		case "REFERRAL_MAILDIR":
			return filepath.Join(dir, "mail")
		}
		return ""
	}
	runOK := func(args ...string) string { return runOK(t, env, args...) }
	var creds credentials
	require.NoError(t, json.Unmarshal([]byte(runOK("keys", "create", "-json")), &creds))
	token := strings.TrimSpace(runOK("token", "-app", creds.ClientID, "-user", tourUser))
	url := serveInProcess(t, env)

	n := 0
	invite := func(useToken bool) int {
		n++
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/users/"+tourUser+"/referral-invites",
			strings.NewReader(`{"email":"friend`+string(rune('a'+n))+`@example.com","language":"en"}`))
		req.Header.Set("Content-Type", "application/json")
		if useToken {
			req.Header.Set("Authorization", "Bearer "+token)
		} else {
			req.Header.Set("X-API-KEY", creds.APIKey)
			req.Header.Set("X-API-KEY-TYPE", "write")
			req.Header.Set("X-CLIENT-ID", creds.ClientID)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusCreated, invite(false))
	assert.Equal(t, http.StatusCreated, invite(true))

	assert.Contains(t, runOK("apps", "disable", "-app", strings.ToUpper(creds.ClientID)), "disabled")
	assert.Equal(t, http.StatusForbidden, invite(false), "API key of a disabled app")
	assert.Equal(t, http.StatusForbidden, invite(true), "access token of a disabled app")

	assert.Contains(t, runOK("apps", "enable", "-app", creds.ClientID), "enabled")
	assert.Equal(t, http.StatusCreated, invite(false))
	assert.Equal(t, http.StatusCreated, invite(true))

	for _, args := range [][]string{
		{"apps"},
		{"apps", "delete", "-app", creds.ClientID},
		{"apps", "disable"},
		{"apps", "disable", "-app", "not-a-uuid"},
		{"apps", "disable", "-app", "0b0f7c1e-6a55-4c6e-9d7e-5a1f2b3c4d5e"}, // no such app
	} {
		var stderr bytes.Buffer
		assert.NotEqual(t, 0, run(context.Background(), args, env, &bytes.Buffer{}, &stderr), "%v", args)
		assert.Contains(t, stderr.String(), "referral server:", "%v", args)
	}
}
