package referral

import (
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestWindowLimiterStaysBounded: however many clients come, the limiter
// holds at most two generations of them, and clients of a window that
// passed are dropped.
func TestWindowLimiterStaysBounded(t *testing.T) {
	t.Parallel()
	l := newWindowLimiter(1, time.Minute)
	l.max = 100
	for i := range 1000 {
		l.allow("10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), t0)
		if n := len(l.cur) + len(l.prev); n > 2*l.max {
			t.Fatalf("after %d clients: %d tracked, want at most %d", i+1, n, 2*l.max)
		}
	}
	l.allow("192.0.2.1", t0.Add(time.Minute))
	l.allow("192.0.2.1", t0.Add(2*time.Minute))
	if n := len(l.cur) + len(l.prev); n != 1 {
		t.Errorf("two windows later: %d clients tracked, want 1", n)
	}
}

// TestWindowLimiterKeepsWindowsAcrossGenerations: a generation ending does
// not restart the budget of a client whose window is still running.
func TestWindowLimiterKeepsWindowsAcrossGenerations(t *testing.T) {
	t.Parallel()
	l := newWindowLimiter(2, time.Minute)
	l.allow("192.0.2.9", t0) // starts the first generation
	at := t0.Add(50 * time.Second)
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.allow("192.0.2.1", at); ok != want {
			t.Fatalf("event %d: allowed %v, want %v", i+1, ok, want)
		}
	}
	// Another client ends the first generation at t0+65s; it is dropped at
	// the next rotation, t0+125s. The client's window runs to t0+110s.
	l.allow("192.0.2.9", t0.Add(65*time.Second))
	at = t0.Add(109 * time.Second)
	if ok, wait := l.allow("192.0.2.1", at); ok || wait != time.Second {
		t.Errorf("at +109s: allowed %v, wait %v; want refused, wait 1s", ok, wait)
	}
	if ok, _ := l.allow("192.0.2.1", t0.Add(110*time.Second)); !ok {
		t.Error("at +110s: refused after the window ended")
	}
}

// BenchmarkLookupLimiterManyClients: each event of a new client, with the
// limiter full, costs what the first one did.
func BenchmarkLookupLimiterManyClients(b *testing.B) {
	l := newWindowLimiter(60, time.Minute)
	keys := make([]string, 4*maxTrackedClients)
	for i := range keys {
		keys[i] = "2001:db8:" + strconv.FormatInt(int64(i), 16) + "::1"
	}
	for _, k := range keys[:maxTrackedClients] {
		l.allow(k, t0)
	}
	i := maxTrackedClients // new clients from here on
	for b.Loop() {
		l.allow(keys[i%len(keys)], t0)
		i++
	}
}
