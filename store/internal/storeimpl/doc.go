// Package storeimpl holds what the stores do alike, so that each piece
// exists once: how often EnsureCode tries a new code, the order ClaimDue
// returns, which earlier invite an inline retry of an Idempotency-Key
// claims again, what an invite RecordInvite suppresses looks like, and how
// the SQL stores name and read the columns of an invite.
package storeimpl
