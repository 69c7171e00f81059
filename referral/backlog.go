package referral

import (
	"context"
	"sync/atomic"
	"time"
)

// backlog bounds the invites a process queues ahead of its worker
// (Config.MaxBacklog): one slot per invite queued and not yet claimed.
type backlog struct {
	slots   chan struct{}
	wait    time.Duration
	workers atomic.Int32 // Run loops running in this process
}

// newBacklog returns cfg's backlog, nil when there is none to bound.
func newBacklog(cfg Config) *backlog {
	if cfg.MaxBacklog == 0 || cfg.Delivery != Queued {
		return nil
	}
	return &backlog{slots: make(chan struct{}, cfg.MaxBacklog), wait: cfg.BacklogWait}
}

// enter takes a slot for an invite about to be queued, waiting up to
// b.wait (or until ctx ends) while all are taken, and reports whether it
// took one, which the caller gives back (leave) unless it queued the
// invite. Without a worker running here, nobody would free a slot: it
// takes none.
func (b *backlog) enter(ctx context.Context) bool {
	if b == nil || b.workers.Load() == 0 {
		return false
	}
	select {
	case b.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(b.wait)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
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

// running counts a Run loop in, and the function it returns counts it
// out.
func (b *backlog) running() func() {
	if b == nil {
		return func() {}
	}
	b.workers.Add(1)
	return func() { b.workers.Add(-1) }
}
