// Package mailtest provides a recording Mailer for tests: it keeps every
// message it is given and can be told to fail.
package mailtest
