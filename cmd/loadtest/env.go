package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// env is one scenario's world: a temporary folder, the SMTP sink, and the
// referral server running on a database in that folder.
type env struct {
	dir   string
	keep  bool
	sink  *sink
	setup serverSetup
	db    *sql.DB // the server's database, read for the queue's state
	tg    target

	mu  sync.Mutex
	srv *child // replaced by restarts
}

// newEnv starts the sink and the server, and makes an API key.
func newEnv(ctx context.Context, o options, name string) (_ *env, err error) {
	dir, err := os.MkdirTemp("", "loadtest-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	e := &env{dir: dir, keep: o.keep}
	defer func() {
		if err != nil {
			e.close(io.Discard)
		}
	}()
	if e.sink, err = newSink(); err != nil {
		return nil, err
	}
	e.setup = serverSetup{
		bin:          o.server,
		dir:          dir,
		smtpAddr:     e.sink.addr(),
		sendTimeout:  o.sendTimeout,
		maxBacklog:   o.maxBacklog,
		retryBackoff: o.retryBackoff,
	}
	if e.tg.clientID, e.tg.apiKey, err = e.setup.createKey(ctx); err != nil {
		return nil, err
	}
	srv, err := startServer(ctx, e.setup, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.srv = srv
	e.tg.addr = srv.addr
	if e.db, err = openQueue(e.setup.dbPath()); err != nil {
		return nil, err
	}
	return e, nil
}

// server returns the running server.
func (e *env) server() *child {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv
}

// killAndRestart kills the server with SIGKILL and starts it again on the
// same database and port. It returns how long the server was away.
func (e *env) killAndRestart(ctx context.Context) (time.Duration, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	start := time.Now()
	e.srv.kill()
	srv, err := startServer(ctx, e.setup, e.tg.addr)
	if err != nil {
		return 0, err
	}
	e.srv = srv
	return time.Since(start), nil
}

// stopServer stops the server gracefully.
func (e *env) stopServer() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.stop()
		e.srv = nil
	}
}

// close stops everything and removes the folder unless asked to keep it.
func (e *env) close(stderr io.Writer) {
	e.stopServer()
	if e.db != nil {
		e.db.Close()
	}
	if e.sink != nil {
		e.sink.close()
	}
	if e.keep {
		fmt.Fprintln(stderr, "loadtest: kept", e.dir, "(database and server.log)")
		return
	}
	os.RemoveAll(e.dir)
}

// delivery compares what the clients were promised with what the sink got.
type delivery struct {
	drained   bool          // the queue emptied within the bound
	drainTime time.Duration // from the end of the load
	queue     queueState    // at the end of the wait

	created  int // 201 answers
	received int // messages the sink stored
	// lost are 201s whose address never received a message.
	lost int
	// duplicates are extra copies of one invite (same Message-ID);
	// duplicatesByTo the same counted by address, which must agree.
	duplicates, duplicatesByTo int
	// cutOff are messages for requests that got no answer (the server was
	// killed under them): recorded before the kill, so rightly delivered.
	cutOff int
	// unexpected are messages for addresses no request answered 201 nor
	// lost its answer for; noMessageID are messages without the header.
	unexpected, noMessageID int
	// refused counts transactions the sink's faults refused or dropped;
	// lostAcks messages it stored but withheld the 250 of.
	refused, lostAcks int
}

// drain waits, at most timeout, until the server's queue has no pending
// invite, then checks delivery. created and unknown are the addresses
// answered 201 and those whose request got no answer.
func (e *env) drain(ctx context.Context, timeout time.Duration, created, unknown []string) (delivery, error) {
	var d delivery
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		q, err := readQueue(ctx, e.db)
		if err != nil {
			return d, err
		}
		d.queue = q
		if q.pending == 0 {
			d.drained = true
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		sleep(ctx, 100*time.Millisecond)
	}
	d.drainTime = time.Since(start)

	msgs, refused, lostAcks := e.sink.snapshot()
	d.received, d.refused, d.lostAcks = len(msgs), refused, lostAcks
	d.created = len(created)
	byID := map[string]int{}
	byTo := map[string]int{}
	for _, m := range msgs {
		if m.messageID == "" {
			d.noMessageID++
		} else {
			byID[m.messageID]++
		}
		byTo[m.to]++
	}
	for _, n := range byID {
		d.duplicates += n - 1
	}
	for _, n := range byTo {
		d.duplicatesByTo += n - 1
	}
	wanted := make(map[string]bool, len(created))
	for _, a := range created {
		wanted[a] = true
		if byTo[a] == 0 {
			d.lost++
		}
	}
	cut := make(map[string]bool, len(unknown))
	for _, a := range unknown {
		cut[a] = true
	}
	for a := range byTo {
		switch {
		case wanted[a]:
		case cut[a]:
			d.cutOff++
		default:
			d.unexpected++
		}
	}
	return d, nil
}

// problems lists what is wrong with d, allowing maxDuplicates.
func (d delivery) problems(maxDuplicates int, why string) []string {
	var p []string
	if !d.drained {
		p = append(p, fmt.Sprintf("the queue did not drain: %d invites still pending", d.queue.pending))
	}
	if d.lost > 0 {
		p = append(p, fmt.Sprintf("%d invites answered 201 never arrived (%d failed in the database)", d.lost, d.queue.failed))
	}
	if d.duplicates > maxDuplicates {
		p = append(p, fmt.Sprintf("%d duplicated messages, more than %d (%s)", d.duplicates, maxDuplicates, why))
	}
	if d.duplicatesByTo != d.duplicates {
		p = append(p, fmt.Sprintf("duplicates by address (%d) and by Message-ID (%d) disagree", d.duplicatesByTo, d.duplicates))
	}
	if d.unexpected > 0 {
		p = append(p, fmt.Sprintf("%d messages for addresses that were never answered 201", d.unexpected))
	}
	if d.noMessageID > 0 {
		p = append(p, fmt.Sprintf("%d messages without a Message-Id", d.noMessageID))
	}
	return p
}
