package referral

import (
	"context"
	"sync"
	"time"
)

// backlog bounds the invites a process queues ahead of its worker
// (Config.MaxBacklog): one slot per invite queued and not yet claimed.
type backlog struct {
	slots chan struct{}
	wait  time.Duration
	wake  chan struct{} // a request found the slots taken: claim now

	mu      sync.Mutex
	workers int           // Run loops running in this process
	stopped chan struct{} // closed when the last of them stops
}

// newBacklog returns cfg's backlog, nil when there is none to bound.
func newBacklog(cfg Config) *backlog {
	if cfg.MaxBacklog == 0 || cfg.Delivery != Queued {
		return nil
	}
	return &backlog{
		slots: make(chan struct{}, cfg.MaxBacklog),
		wait:  cfg.BacklogWait,
		wake:  make(chan struct{}, 1),
	}
}

// enter takes a slot for an invite about to be queued, waiting up to
// b.wait (or until ctx ends, or the last worker stops) while all are
// taken, and reports whether it took one, which the caller gives back
// (leave) unless it queued the invite. Without a worker running here,
// nobody would free a slot: it takes none.
func (b *backlog) enter(ctx context.Context) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	running, stopped := b.workers > 0, b.stopped
	b.mu.Unlock()
	if !running {
		return false
	}
	select {
	case b.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case b.wake <- struct{}{}: // an idle worker claims at once
	default:
	}
	t := time.NewTimer(b.wait)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-stopped:
	}
	return false
}

// leave gives n slots back: the worker claimed n invites, or a request
// did not queue the one it took a slot for.
func (b *backlog) leave(n int) {
	if b == nil {
		return
	}
	for range n {
		select {
		case <-b.slots:
		default:
			return
		}
	}
}

// clear gives every slot back: the worker found nothing due, so nothing
// is queued ahead of it, whoever claimed the invites the slots stood for.
func (b *backlog) clear() {
	if b != nil {
		b.leave(cap(b.slots))
	}
}

// woken is where a request that found every slot taken wakes an idle
// worker; nil (never ready) without a backlog.
func (b *backlog) woken() <-chan struct{} {
	if b == nil {
		return nil
	}
	return b.wake
}

// running counts a Run loop in, and the function it returns counts it
// out; when the last one stops, the requests waiting go ahead.
func (b *backlog) running() func() {
	if b == nil {
		return func() {}
	}
	b.mu.Lock()
	if b.workers == 0 {
		b.stopped = make(chan struct{})
	}
	b.workers++
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.workers--; b.workers == 0 {
			close(b.stopped)
			b.clear()
		}
	}
}
