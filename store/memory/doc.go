// Package memory is an in-memory referral.CodeStore for tests and demos. It
// enforces every rule of the interface, but holds its data only as long as
// the process lives and cannot be shared between processes.
package memory
