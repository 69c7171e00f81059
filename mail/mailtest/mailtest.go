package mailtest

import (
	"context"
	"sync"

	"github.com/referralkit/referralkit/mail"
)

// Recorder records the messages it is asked to send. The zero value is
// ready to use and safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	sent []mail.Message
	err  error
}

// Send records m and returns nil, or returns the error set with Fail
// without recording anything.
func (r *Recorder) Send(ctx context.Context, m mail.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.sent = append(r.sent, m)
	return nil
}

// Fail makes every later Send return err; Fail(nil) makes it succeed again.
// Wrap mail.ErrPermanent to simulate a permanent refusal.
func (r *Recorder) Fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// Messages returns a copy of the messages sent so far, in order.
func (r *Recorder) Messages() []mail.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mail.Message(nil), r.sent...)
}
