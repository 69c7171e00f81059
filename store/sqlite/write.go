package sqlite

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
)

// maxBatch bounds how many writes one transaction commits. A batch holds
// the write lock of the file for its whole length, so an unbounded one
// would starve other processes and make its last caller wait for all the
// others' SQL.
const maxBatch = 128

// A write's state, guarded by writeQueue.mu.
const (
	writeQueued    = iota // waiting for a leader to take it into a batch
	writeTaken            // in a batch, its fn not started
	writeRunning          // its fn has started: the caller waits for the batch
	writeAbandoned        // the caller's context ended before fn started
	writeDone             // err is its result
)

// writeQueue batches concurrent writes of one store into shared
// transactions (group commit). It has no goroutine of its own: the caller
// that finds no batch running leads one, and hands the lead to the oldest
// queued caller when it is done, so that no caller leads more than one
// batch.
type writeQueue struct {
	mu      sync.Mutex
	queue   []*writeReq
	leading bool // a batch is running or a queued caller has been told to lead
	// conn is kept for the next batch (see handOn); only the leader uses it.
	conn *wconn
	// closed: the store is closed, so conn is not kept; a held connection
	// would still work after its DB was closed.
	closed bool
}

// close stops q from keeping a connection between batches. A batch that
// is running finishes on its own.
func (q *writeQueue) close() {
	q.mu.Lock()
	w := q.conn
	q.conn, q.closed = nil, true
	q.mu.Unlock()
	w.close()
}

// minPoolToKeep is the least pool size (DB.SetMaxOpenConns; 0 is no
// limit) of which the write queue keeps a connection between writes: with
// fewer, a read waiting for a connection could wait for the next write.
const minPoolToKeep = 4

// writeReq is one call of Store.write.
type writeReq struct {
	ctx context.Context
	fn  func(c *wconn) error
	// wake receives once the caller should look at lead or state again:
	// when it is to lead the next batch or when its batch is over.
	wake  chan struct{}
	state int  // guarded by writeQueue.mu
	lead  bool // guarded by writeQueue.mu
	err   error
}

// write runs fn inside a write transaction and returns once that
// transaction is committed (or fn or the commit failed): when it returns
// nil, fn's writes are durable. Every write of the store goes through it;
// so do the writes of other files of this package (keys).
//
// Concurrent calls share transactions: calls queue while a batch runs, join
// it if it has not reached its COMMIT yet, and otherwise make the next
// batch; a batch runs up to maxBatch calls in one BEGIN IMMEDIATE ...
// COMMIT, so that one fsync covers the lot. That
// fsync, not the SQL, is what bounds a write transaction's rate under
// synchronous=FULL. Each fn runs alone on the batch's connection, in call
// order, inside a savepoint of its own:
//   - fn sees the writes of the fns before it in the batch, so a check in
//     fn (a limit, a uniqueness) is as final as in a transaction of its own;
//   - an fn that fails is rolled back to its savepoint and gets its error;
//     the others still commit;
//   - if the commit fails, every fn of the batch gets that error (a check
//     that failed may have counted rows that are now gone);
//   - if an fn's failure ends the whole transaction (SQLite rolls back by
//     itself on some errors: a full disk, an interrupted write), that fn
//     gets its error and the others run again in a new transaction. fn
//     must therefore set its results afresh on each run, and return the
//     first error it gets rather than carry on;
//   - if fn panics, its work is rolled back with the transaction, the
//     others run again in a new one, and write panics in fn's caller with
//     a *panicError carrying the value and fn's stack. The connection is
//     discarded, and the store goes on writing.
//
// If ctx ends before fn starts, fn never runs and write returns ctx.Err().
// Once fn has started, write waits for the commit: fn's statements see
// ctx, but once fn has succeeded its work is committed even if the caller
// stopped waiting, so a half-finished request still leaves a whole row.
func (s *Store) write(ctx context.Context, fn func(c *wconn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, fn: fn, wake: make(chan struct{}, 1)}
	q := &s.writes
	q.mu.Lock()
	q.queue = append(q.queue, r)
	first := !q.leading
	r.lead, q.leading = first, true
	q.mu.Unlock()
	if !first {
		select {
		case <-r.wake:
		case <-ctx.Done():
			if q.abandon(r) {
				return ctx.Err()
			}
			<-r.wake
		}
	}
	q.mu.Lock()
	lead := r.lead
	q.mu.Unlock()
	if lead {
		s.runBatch()
	}
	var p *panicError
	if errors.As(r.err, &p) {
		panic(p)
	}
	return r.err
}

// panicError is what a write panics with when its fn panicked: the fn ran
// in another caller's goroutine (the batch's leader), which recovered so
// that the batch and the write lock are not left half done.
type panicError struct {
	Value any    // what fn panicked with
	Stack []byte // fn's goroutine when it panicked
}

func (p *panicError) Error() string {
	return fmt.Sprintf("sqlite: a write panicked: %v\n\n%s", p.Value, p.Stack)
}

// errBatchPanicked is the error of the writes of a batch that the batch's
// own code, not a write's fn, panicked in the middle of.
var errBatchPanicked = errors.New("sqlite: the write transaction panicked and was rolled back")

// abandon withdraws r, whose caller stopped waiting, unless its fn has
// started or it is to lead the next batch. It reports whether it did.
func (q *writeQueue) abandon(r *writeReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r.lead {
		return false // the next batch needs a leader; it skips r's fn
	}
	switch r.state {
	case writeQueued:
		q.queue = slices.DeleteFunc(q.queue, func(x *writeReq) bool { return x == r })
	case writeTaken:
	default:
		return false
	}
	r.state = writeAbandoned
	return true
}

// runBatch takes the oldest queued writes into a batch, commits it, hands
// the lead to the next queued caller, if any, and then wakes the batch's
// callers.
func (s *Store) runBatch() {
	q := &s.writes
	batch := q.take(maxBatch)
	// If this code panics (or calls runtime.Goexit), the writes of the
	// batch that have no result fail, and the lead goes on: otherwise
	// leading would stay true and every later write would queue forever.
	// commitBatch has rolled back its transaction by then.
	finished := false
	defer func() {
		if finished {
			return
		}
		p := recover()
		for _, r := range batch {
			if r.err == nil {
				r.err = errBatchPanicked
			}
		}
		q.handOn(batch, nil, false)
		if p != nil {
			panic(p)
		}
	}()
	q.mu.Lock()
	w := q.conn
	q.conn = nil
	q.mu.Unlock()

	// Writes queued while the batch runs join it until it commits: with
	// callers that send their next write as soon as the last returns, a
	// batch that took only what was queued at its start would leave them
	// split in two groups, one running while the other waits.
	takeMore := func() []*writeReq {
		more := q.take(maxBatch - len(batch))
		batch = append(batch, more...)
		return more
	}
	for todo := slices.Clone(batch); len(todo) > 0; {
		w, todo = s.commitBatch(w, todo, takeMore)
	}
	finished = true
	n := s.db.Stats().MaxOpenConnections // the host may change it any time
	q.handOn(batch, w, n == 0 || n >= minPoolToKeep)
}

// handOn ends batch: it marks its writes done, hands the lead to the next
// queued caller, if any, with w (nil for a new connection), and then wakes
// the batch's callers. With keep, w is kept also when no caller queues.
func (q *writeQueue) handOn(batch []*writeReq, w *wconn, keep bool) {
	q.mu.Lock()
	var wake []*writeReq
	for _, r := range batch {
		if r.state != writeAbandoned {
			r.state = writeDone
			wake = append(wake, r)
		}
	}
	// The connection, statements prepared, serves the next batch: while
	// callers queue, and also when none does if the pool has room enough
	// besides it (Open's has) for reads, as preparing the statements again
	// for each write of a lone writer (the worker, between loads) was a
	// sixth of its CPU (pprof). A host's small pool gets it back.
	idle := w
	if !q.closed && (len(q.queue) > 0 || keep) {
		q.conn, idle = w, nil
	}
	// Hand over before waking anyone: the next batch's BEGIN then overlaps
	// with this batch's callers going on with their requests.
	if len(q.queue) > 0 {
		next := q.queue[0]
		next.lead = true
		next.wake <- struct{}{}
	} else {
		q.leading = false
	}
	q.mu.Unlock()
	for _, r := range wake {
		r.wake <- struct{}{} // buffered, and each r is woken at most twice: to lead, then done
	}
	idle.close()
}

// take moves up to max of the oldest queued writes into a batch.
func (q *writeQueue) take(max int) []*writeReq {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.queue), max)
	taken := slices.Clone(q.queue[:n])
	q.queue = slices.Delete(q.queue, 0, n) // keeps the backing array: the queue is reused
	for _, r := range taken {
		r.state = writeTaken
	}
	return taken
}

// start marks r's fn as started, unless its caller abandoned it. A write
// already started, in a transaction that was rolled back, starts again.
func (q *writeQueue) start(r *writeReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r.state == writeAbandoned {
		return false
	}
	r.state = writeRunning
	return true
}

// commitBatch runs batch's writes in one transaction on w (a new
// connection if w is nil), then those takeMore gives it until it gives
// none, and commits it, setting each write's err. It
// returns w if the connection can serve the next batch, nil if it was
// closed. If an fn's failure ended the transaction, it also returns the
// writes to run again in a new one: every other write of batch that ran
// or was still to run.
func (s *Store) commitBatch(w *wconn, batch []*writeReq, takeMore func() []*writeReq) (*wconn, []*writeReq) {
	q := &s.writes
	fail := func(err error) {
		for _, r := range batch {
			if q.start(r) {
				r.err = err
			}
		}
	}
	if w == nil {
		var err error
		if w, err = newWconn(s.db); err != nil {
			fail(err)
			return nil, nil
		}
	}
	// A panic here (a write's fn's is caught by runSavepoint) must not
	// leave the transaction open: it holds the file's write lock against
	// every other process.
	done := false
	defer func() {
		if !done {
			w.discard()
		}
	}()
	// The batch's own statements do not use any caller's context: the
	// other callers' writes must not fail because one caller went away.
	// Each fn uses its caller's.
	bg := context.Background()
	// IMMEDIATE takes the write lock now: a deferred transaction that reads
	// first could fail to upgrade when another process wrote meanwhile,
	// and busy_timeout does not help there.
	if _, err := w.ExecContext(bg, "BEGIN IMMEDIATE"); err != nil {
		w.rollback() // BEGIN may have started the transaction before failing
		w.close()
		fail(err)
		return nil, nil
	}
	var ran []*writeReq // the writes that ran in this transaction
	for i := 0; ; i++ {
		if i == len(batch) {
			more := takeMore()
			if len(more) == 0 {
				break
			}
			batch = append(batch, more...)
		}
		r := batch[i]
		if !q.start(r) {
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		ran = append(ran, r)
		var open bool
		open, r.err = runSavepoint(w, r.fn)
		if !open {
			// The transaction is gone (or, after a panic, in a state
			// nobody knows): r's error is its own; the others did nothing
			// wrong and get a new transaction.
			done = true
			if p := (*panicError)(nil); errors.As(r.err, &p) {
				w.discard()
			} else {
				w.rollback()
				w.close()
			}
			return nil, slices.Concat(ran[:len(ran)-1], batch[i+1:])
		}
	}
	done = true
	if len(ran) == 0 {
		if !w.rollback() {
			w.close()
			return nil, nil
		}
		return w, nil
	}
	if _, err := w.ExecContext(bg, "COMMIT"); err != nil {
		for _, r := range ran {
			r.err = err
		}
		w.rollback()
		w.close()
		return nil, nil
	}
	return w, nil
}

// runSavepoint runs fn inside a savepoint of w's transaction, releasing it
// if fn succeeds and rolling back to it if fn fails. It returns whether the
// transaction is still open, and fn's error: SQLite ends the transaction
// by itself on some errors, which the savepoint's being gone reveals. If
// fn panics, the error is a *panicError and the transaction is to be
// ended: fn may have left the connection in any state.
func runSavepoint(w *wconn, fn func(c *wconn) error) (open bool, err error) {
	bg := context.Background()
	if _, err := w.ExecContext(bg, "SAVEPOINT write"); err != nil {
		return false, err
	}
	if err := call(w, fn); err != nil {
		if _, ok := err.(*panicError); ok {
			return false, err
		}
		if _, rerr := w.ExecContext(bg, "ROLLBACK TO write"); rerr != nil {
			return false, err
		}
		if _, rerr := w.ExecContext(bg, "RELEASE write"); rerr != nil {
			return false, err
		}
		return true, err
	}
	if _, err := w.ExecContext(bg, "RELEASE write"); err != nil {
		return false, err
	}
	return true, nil
}

// call runs fn, turning a panic into a *panicError.
func call(w *wconn, fn func(c *wconn) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return fn(w)
}
