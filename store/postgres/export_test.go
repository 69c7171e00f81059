package postgres

// QueueSQL is the statement behind Queue, for its plan.
const QueueSQL = queueSQL

// InvitesWaiting is how many RecordInvite calls wait in the store's queue
// or in a batch for their answer.
func (s *Store) InvitesWaiting() int {
	s.invites.mu.Lock()
	defer s.invites.mu.Unlock()
	return s.invites.waiting
}
