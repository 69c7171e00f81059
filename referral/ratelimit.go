package referral

import (
	"net/netip"
	"sync"
	"time"
)

// maxTrackedClients bounds the limiter's memory: a window that sees more
// new clients than this starts the next window early.
const maxTrackedClients = 100_000

// windowLimiter allows n events per client per window (fixed windows, each
// starting at the client's first event). It is per process: several
// instances each allow n.
//
// Each call costs O(1) however many clients are tracked. Clients live in two
// maps, the current generation and the previous one; when a generation is a
// window old it becomes the previous one and the previous one is dropped
// whole. A client's window ends within a window of its start, so it is
// never dropped before it ended: a client seen in the previous generation is
// moved into the current one. Only a flood of more than maxTrackedClients
// new clients within one window ends a generation early, and then some
// budgets restart early; per-client limits mean little against so many
// clients anyway, and memory stays bounded.
type windowLimiter struct {
	n      int
	window time.Duration
	max    int // clients per generation

	mu       sync.Mutex
	genStart time.Time
	cur      map[string]fixedWindow
	prev     map[string]fixedWindow
}

type fixedWindow struct {
	start time.Time
	count int
}

func newWindowLimiter(n int, window time.Duration) *windowLimiter {
	return &windowLimiter{n: n, window: window, max: maxTrackedClients, cur: map[string]fixedWindow{}}
}

// allow counts an event for the client addr at now and reports whether it
// is within the limit, and if not, how long until it would be. IPv6 clients
// are counted by /64 (see clientKey).
func (l *windowLimiter) allow(addr string, now time.Time) (bool, time.Duration) {
	key := clientKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.genStart.IsZero() {
		l.genStart = now
	}
	if now.Sub(l.genStart) >= l.window {
		l.rotate(now)
	}
	w, ok := l.cur[key]
	if !ok {
		if len(l.cur) >= l.max {
			l.rotate(now)
		}
		if w, ok = l.prev[key]; ok {
			delete(l.prev, key)
		}
	}
	if !ok || now.Sub(w.start) >= l.window {
		w = fixedWindow{start: now}
	}
	if w.count >= l.n {
		l.cur[key] = w
		return false, w.start.Add(l.window).Sub(now)
	}
	w.count++
	l.cur[key] = w
	return true, 0
}

// rotate starts a new generation at now, dropping the previous one.
func (l *windowLimiter) rotate(now time.Time) {
	l.prev, l.cur = l.cur, make(map[string]fixedWindow, len(l.cur))
	l.genStart = now
}

// clientKey is the limiter's key for a client address: an IPv4 address as
// itself (also when written IPv4-mapped, ::ffff:192.0.2.1), an IPv6 address
// by its /64, the smallest block a subscriber is usually given, so that one
// subscriber's many addresses share one budget. Anything else, such as a
// name a Config.ClientAddr hook returns, is its own key.
func clientKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}
