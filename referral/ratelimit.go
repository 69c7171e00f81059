package referral

import (
	"sync"
	"time"
)

// maxTrackedClients bounds the limiter's memory: past it, expired windows
// are dropped, and if none are, the oldest window goes.
const maxTrackedClients = 100_000

// windowLimiter allows n events per key per window (fixed windows). It is
// per process: several instances each allow n.
type windowLimiter struct {
	n      int
	window time.Duration

	mu      sync.Mutex
	windows map[string]fixedWindow
}

type fixedWindow struct {
	start time.Time
	count int
}

func newWindowLimiter(n int, window time.Duration) *windowLimiter {
	return &windowLimiter{n: n, window: window, windows: map[string]fixedWindow{}}
}

// allow counts an event for key at now and reports whether it is within
// the limit, and if not, how long until it would be.
func (l *windowLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.windows[key]
	if !ok || now.Sub(w.start) >= l.window {
		if !ok && len(l.windows) >= maxTrackedClients {
			l.prune(now)
		}
		w = fixedWindow{start: now}
	}
	if w.count >= l.n {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.count++
	l.windows[key] = w
	return true, 0
}

// prune drops expired windows, or the oldest one if none has expired.
func (l *windowLimiter) prune(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, w := range l.windows {
		if now.Sub(w.start) >= l.window {
			delete(l.windows, k)
		} else if oldestKey == "" || w.start.Before(oldest) {
			oldestKey, oldest = k, w.start
		}
	}
	if len(l.windows) >= maxTrackedClients {
		delete(l.windows, oldestKey)
	}
}
