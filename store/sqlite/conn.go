package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// wconn is the connection batches of writes run on, with every statement
// prepared once: parsing and planning the SQL was half of the CPU time of
// a write (pprof), and a write transaction, which holds the file's write
// lock, should spend as little time as it can. The write queue keeps its
// wconn from one batch to the next (between writes only when the pool has
// room for reads besides it: see minPoolToKeep), and closes it, statements
// and all, when the store is closed or the connection fails.
//
// Its methods are those of *sql.Conn that the writes use, so that a write
// reads like plain database/sql.
type wconn struct {
	c     *sql.Conn
	stmts map[string]*sql.Stmt
}

// newWconn takes a connection from db's pool and gives it the write
// connection's page cache.
func newWconn(db *sql.DB) (*wconn, error) {
	c, err := db.Conn(context.Background())
	if err != nil {
		return nil, err
	}
	if _, err := c.ExecContext(context.Background(), fmt.Sprintf("PRAGMA cache_size = -%d", writeCacheKiB)); err != nil {
		c.Close()
		return nil, err
	}
	return &wconn{c: c, stmts: map[string]*sql.Stmt{}}, nil
}

// stmt returns query prepared on w. Preparing ignores the caller's
// context: the statement outlives the call.
func (w *wconn) stmt(query string) (*sql.Stmt, error) {
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	st, err := w.c.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = st
	return st, nil
}

func (w *wconn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (w *wconn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (w *wconn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := w.stmt(query)
	if err != nil {
		// A *sql.Row cannot be made with an error: let the unprepared
		// query fail the same way.
		return w.c.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// rollback ends w's transaction and reports whether it could. If it
// cannot (SQLite may already have rolled back by itself, e.g. on a full
// disk, or the connection is broken), w's driver connection is discarded
// rather than returned to the pool in an unknown state, and w must be
// closed.
func (w *wconn) rollback() bool {
	if _, err := w.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		w.closeStmts()
		_ = w.c.Raw(func(any) error { return driver.ErrBadConn })
		return false
	}
	return true
}

// discard ends w's transaction, if it can, and closes w without returning
// its driver connection to the pool: after a write panicked, nobody knows
// what state the connection is in (a pragma set, a savepoint left). The
// write may also have left rows open, which would make closing w wait for
// them, so it is closed in the background.
func (w *wconn) discard() {
	if w.rollback() {
		w.closeStmts()
		_ = w.c.Raw(func(any) error { return driver.ErrBadConn })
	}
	go w.c.Close()
}

// close closes w's statements and returns its connection to the pool. A
// nil w is closed already.
func (w *wconn) close() {
	if w == nil {
		return
	}
	w.closeStmts()
	w.c.Close()
}

// closeStmts closes w's statements, which must happen before the driver
// connection is closed: the driver cannot finalize a statement after.
func (w *wconn) closeStmts() {
	for _, st := range w.stmts {
		st.Close()
	}
	w.stmts = map[string]*sql.Stmt{}
}
