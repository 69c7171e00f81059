package postgres

// QueueSQL is the statement behind Queue, for its plan.
const QueueSQL = queueSQL
