// The tests are in package main because a command cannot be imported.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverBinEnv carries the server binary built by TestMain to the tests.
const serverBinEnv = "REFERRALKIT_LOADTEST_SERVER_BIN"

// loadtestEnv, set to 1, lets the tests build the server and run the
// scenarios; without it they are skipped, so that go test ./... builds no
// binary and starts no process.
const loadtestEnv = "REFERRAL_LOADTEST"

func scenariosEnabled() bool { return os.Getenv(loadtestEnv) == "1" }

// TestMain plays the bare server when the throughput scenario runs this
// test binary as its child, and otherwise builds the standalone server
// once for every test, when the scenarios are to run.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "bare" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		code := exitCode(serveBare(ctx, os.Stderr), os.Stderr)
		cancel()
		os.Exit(code)
	}
	if !scenariosEnabled() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "loadtest-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err := buildServer(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	os.Setenv(serverBinEnv, bin)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tiny is a small version of the command's options: enough to go through
// every step of a scenario in a few seconds.
func tiny(t *testing.T) options {
	t.Helper()
	return options{
		clients:      2,
		duration:     2 * time.Second,
		invites:      300,
		kills:        1,
		server:       os.Getenv(serverBinEnv),
		sendTimeout:  500 * time.Millisecond,
		retryBackoff: 200 * time.Millisecond,
		drainTimeout: time.Minute,
	}
}

func TestScenarios(t *testing.T) {
	if !scenariosEnabled() {
		t.Skip("builds the server and runs each scenario for seconds; set " + loadtestEnv + "=1 to run")
	}
	t.Parallel()
	tests := []struct {
		scenario string
		statuses []string // allowed
		// maxDuplicates is what the scenario can explain.
		maxDuplicates func(r *report) int
		check         func(t *testing.T, r *report)
		duration      time.Duration // default 2s
	}{
		{
			scenario:      "throughput",
			statuses:      []string{"201"},
			maxDuplicates: func(*report) int { return 0 },
			check: func(t *testing.T, r *report) {
				assert.Equal(t, []string{"201"}, keys(r.bare.statuses), "the bare server")
				assert.Positive(t, r.ratio)
			},
		},
		{
			scenario:      "memory",
			statuses:      []string{"201"},
			maxDuplicates: func(*report) int { return 0 },
			check: func(t *testing.T, r *report) {
				assert.Len(t, r.referral.created, 300)
				// Before the load, every tenth of the invites, after the drain.
				require.Len(t, r.samples, 12)
				for _, s := range r.samples {
					assert.Positive(t, s.rssKiB)
				}
			},
		},
		{
			scenario:      "smtp-faults",
			statuses:      []string{"201"},
			maxDuplicates: func(r *report) int { return r.delivery.lostAcks },
			check: func(t *testing.T, r *report) {
				assert.Positive(t, r.delivery.refused, "the faults refused nothing")
			},
			// Each fault window outlasts the worker's 1s poll interval, so
			// that each sees delivery attempts.
			duration: 6 * time.Second,
		},
		{
			scenario:      "kill",
			statuses:      []string{"201", transportError},
			maxDuplicates: func(r *report) int { return workerBatch * r.kills },
			check: func(t *testing.T, r *report) {
				assert.Equal(t, 1, r.kills)
			},
		},
		{
			scenario:      "sustained",
			statuses:      []string{"201"},
			maxDuplicates: func(*report) int { return 0 },
			check: func(t *testing.T, r *report) {
				sp := r.sus.split
				assert.Equal(t, len(r.referral.created), sp.accepted)
				assert.Equal(t, r.delivery.received, sp.delivered+sp.drained)
				assert.Positive(t, sp.loadCPU)
				// A sample a second, and one at the end of the load.
				require.GreaterOrEqual(t, len(r.sus.samples), 3)
				last := r.sus.samples[len(r.sus.samples)-1]
				assert.Equal(t, int64(sp.accepted), last.accepted)
				assert.Equal(t, int64(sp.delivered), last.delivered)
				for i := 1; i < len(r.sus.samples); i++ {
					assert.LessOrEqual(t, r.sus.samples[i-1].accepted, r.sus.samples[i].accepted)
				}
			},
			duration: 3 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			t.Parallel()
			o := tiny(t)
			if tt.duration > 0 {
				o.duration = tt.duration
			}
			r, err := runScenario(t.Context(), tt.scenario, o, io.Discard)
			require.NoError(t, err)
			var out bytes.Buffer
			r.print(&out)
			t.Log("\n" + out.String())

			assert.Subset(t, tt.statuses, keys(r.referral.statuses))
			assert.NotEmpty(t, r.referral.created)
			d := r.delivery
			assert.True(t, d.drained, "the queue did not drain")
			assert.Zero(t, d.lost, "invites answered 201 but never received")
			assert.Zero(t, d.unexpected, "messages nobody asked for")
			assert.Zero(t, d.noMessageID)
			assert.Equal(t, d.duplicates, d.duplicatesByTo)
			assert.LessOrEqual(t, d.duplicates, tt.maxDuplicates(r), "duplicates the scenario cannot explain")
			assert.Equal(t, d.created+d.duplicates+d.cutOff, d.received, "every message is a 201's, a duplicate, or a cut-off request's")
			assert.Empty(t, r.problems)
			tt.check(t, r)
		})
	}
}

func TestCPUSplit(t *testing.T) {
	t.Parallel()
	// 10s of CPU during the load for 4,000 invites and 1,000 deliveries at
	// 2ms each (6s over 3,000 drained): intake is (10s - 2s) / 4,000 = 2ms.
	s := cpuSplit{loadCPU: 10 * time.Second, accepted: 4000, delivered: 1000, drainCPU: 6 * time.Second, drained: 3000}
	per, ok := s.perMessage()
	assert.True(t, ok)
	assert.Equal(t, 2*time.Millisecond, per)
	intake, ok := s.intakePerAccepted()
	assert.True(t, ok)
	assert.Equal(t, 2*time.Millisecond, intake)
	ratio, ok := s.ratio()
	assert.True(t, ok)
	assert.InDelta(t, 1.0, ratio, 1e-9)

	s.delivered = 3000 // intake (10s - 6s) / 4,000 = 1ms: delivery costs twice as much
	intake, _ = s.intakePerAccepted()
	assert.Equal(t, time.Millisecond, intake)
	ratio, _ = s.ratio()
	assert.InDelta(t, 2.0, ratio, 1e-9)

	// Nothing drained: no rate per message, so no intake figure.
	_, ok = cpuSplit{loadCPU: time.Second, accepted: 10, delivered: 10}.intakePerAccepted()
	assert.False(t, ok)
	// Deliveries that would cost more than all the load's CPU: not positive.
	s.delivered = 6000
	_, ok = s.intakePerAccepted()
	assert.False(t, ok)
	_, ok = s.ratio()
	assert.False(t, ok)
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"help", []string{"-h"}, 0},
		{"unknown scenario", []string{"-scenario", "soak"}, 2},
		{"no clients", []string{"-clients", "0"}, 2},
		{"endless", []string{"-duration", "2h"}, 2},
		{"too few invites", []string{"-invites", "1"}, 2},
		{"stray argument", []string{"now"}, 2},
		{"zero back-off", []string{"-retry-backoff", "0s"}, 2},
		{"no such server", []string{"-server", "./no-such-server"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tt.code, run(t.Context(), tt.args, &stdout, &stderr), stderr.String())
			assert.Empty(t, stdout.String())
		})
	}
}

func TestSinkModes(t *testing.T) {
	t.Parallel()
	s, err := newSink()
	require.NoError(t, err)
	t.Cleanup(s.close)
	tests := []struct {
		mode    sinkMode
		refused bool
	}{
		{modeAccept, false},
		{modeRefuse, true},
	}
	for _, tt := range tests {
		s.setMode(tt.mode)
		drop, err := s.fault()
		assert.False(t, drop, tt.mode)
		assert.Equal(t, tt.refused, err != nil, tt.mode)
	}
	// A hang holds the transaction until the mode changes, then refuses.
	_, before, _ := s.snapshot()
	s.setMode(modeHang)
	got := make(chan error, 1)
	go func() {
		_, err := s.fault()
		got <- err
	}()
	// Release only once the transaction is held, so the test cannot pass
	// by the goroutine coming late.
	require.Eventually(t, func() bool { _, refused, _ := s.snapshot(); return refused == before+1 }, 10*time.Second, time.Millisecond)
	s.setMode(modeAccept)
	select {
	case err := <-got:
		assert.ErrorContains(t, err, "hanging")
	case <-time.After(10 * time.Second):
		t.Fatal("the hang did not end with the mode")
	}
}

func keys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }
