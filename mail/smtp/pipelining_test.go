package smtp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rkmail "github.com/referralkit/referralkit/mail"
)

// go-smtp, behind smtptest, always offers PIPELINING and cannot show how
// commands arrived: these tests play rawServer.

func TestSendPipelinesTheEnvelope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		pipelining bool
		want       []command
	}{
		// MAIL, RCPT and DATA in one write: two round trips per message.
		{"offered", true, []command{{"EHLO", false}, {"MAIL", true}, {"RCPT", true}, {"DATA", false}, {"QUIT", false}}},
		// Each command waits for its reply.
		{"not offered", false, []command{{"EHLO", false}, {"MAIL", false}, {"RCPT", false}, {"DATA", false}, {"QUIT", false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t)
			srv.pipelining = tc.pipelining
			srv.start()
			m := rawMailer(t, srv, nil)
			require.NoError(t, m.Send(context.Background(), message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192", "Einladung")))
			require.NoError(t, m.Close()) // QUIT was read before it was answered
			assert.Equal(t, tc.want, srv.seen())
			srv.mu.Lock()
			defer srv.mu.Unlock()
			assert.Contains(t, srv.data, "Subject: Einladung\r\n")
			assert.Contains(t, srv.data, "Dein Code: "+code)
		})
	}
}

func TestPipelinedRefusalReportsTheFirstReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		replies         map[string]string
		step            string
		permanent, rcpt bool
	}{
		// A refused MAIL leaves no transaction: the server refuses RCPT
		// and DATA too, but MAIL's reply is the one that counts.
		{"MAIL 550", map[string]string{"MAIL": "550 5.7.1 sender refused", "RCPT": "503 5.5.1 MAIL first", "DATA": "503 5.5.1 MAIL first"}, "MAIL", true, false},
		{"MAIL 451", map[string]string{"MAIL": "451 4.3.0 try later", "RCPT": "503 5.5.1 MAIL first", "DATA": "503 5.5.1 MAIL first"}, "MAIL", false, false},
		{"RCPT 550", map[string]string{"RCPT": "550 5.1.1 no such user", "DATA": "554 5.5.1 no valid recipients"}, "RCPT", true, true},
		{"RCPT 452", map[string]string{"RCPT": "452 4.2.2 mailbox full", "DATA": "554 5.5.1 no valid recipients"}, "RCPT", false, false},
		{"DATA 554", map[string]string{"DATA": "554 5.7.0 not now, not ever"}, "DATA", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t)
			srv.pipelining, srv.replies = true, tc.replies
			srv.start()
			m := rawMailer(t, srv, nil)
			err := m.Send(context.Background(), message("0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192", "Einladung"))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "smtp: "+tc.step+": "), "error %q names the step", err)
			assert.Equal(t, tc.permanent, errors.Is(err, rkmail.ErrPermanent), "permanent: %v", err)
			assert.Equal(t, tc.rcpt, errors.Is(err, rkmail.ErrRecipientRefused), "recipient refused: %v", err)
			// Every reply was read, so the server had read every command;
			// the connection was then closed, with no message sent.
			assert.Equal(t, []command{{"EHLO", false}, {"MAIL", true}, {"RCPT", true}, {"DATA", false}}, srv.seen())
			assert.Zero(t, srv.delivered.Load())
		})
	}
}
