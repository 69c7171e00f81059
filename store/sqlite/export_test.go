package sqlite

import "context"

// WriteConn and Write let the tests of package sqlite_test put writes of
// their own through the store's write queue.
type WriteConn = wconn

func (s *Store) Write(ctx context.Context, fn func(c *WriteConn) error) error {
	return s.write(ctx, fn)
}

// QueuedWrites is how many writes wait for a batch to take them.
func (s *Store) QueuedWrites() int {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	return len(s.writes.queue)
}

// QueueSQL is the statement behind Queue, for its plan.
const QueueSQL = queueSQL
