package smtp

import (
	"errors"
	"fmt"
	"net/textproto"
	"slices"
	"strings"

	gomail "github.com/wneessen/go-mail"
	gmsmtp "github.com/wneessen/go-mail/smtp"
)

// A step of a mail transaction, as named in its errors.
const (
	stepMail    = "MAIL"
	stepRcpt    = "RCPT"
	stepData    = "DATA"
	stepDataEnd = "end of DATA"
)

// txError is a failed step of a mail transaction.
type txError struct {
	step string
	code int // the server's reply code; 0 when it gave none
	err  error
}

func (e *txError) Error() string { return e.step + ": " + e.err.Error() }
func (e *txError) Unwrap() error { return e.err }

// permanent reports a 5xx reply.
func (e *txError) permanent() bool { return e.code >= 500 && e.code < 600 }

// recipientRefused reports a 5xx reply that concerns the recipient or
// the message rather than the sender: to RCPT, DATA or the end of DATA.
func (e *txError) recipientRefused() bool { return e.permanent() && e.step != stepMail }

// transact sends g over sc in one mail transaction, leaving the session
// ready for the next when it returns nil. After an error the session's
// state is unknown and the connection must be closed.
//
// When the server offers PIPELINING (RFC 2920), as common relays do, MAIL,
// every RCPT and DATA go out in one write and their replies are read
// together, and the message and its end go in a second: two round trips per
// message, against four when each command waits for its reply, as go-mail's
// own send does. That is a system call and a wake-up each way fewer per
// command, most of what a message costs the worker on a fast relay. go-mail
// still does everything else: the connection, EHLO, STARTTLS, AUTH, QUIT and
// the message itself.
func transact(sc *gmsmtp.Client, g *gomail.Msg) error {
	from, err := g.GetSender(false)
	if err != nil {
		return &txError{step: stepMail, err: err}
	}
	rcpts, err := g.GetRecipients()
	if err != nil {
		return &txError{step: stepRcpt, err: err}
	}
	// go-mail parsed them as addresses; a line break here would be a
	// command of its own.
	if strings.ContainsAny(from, "\r\n") || slices.ContainsFunc(rcpts, func(r string) bool { return strings.ContainsAny(r, "\r\n") }) {
		return &txError{step: stepMail, err: errors.New("an address holds a line break")}
	}
	mailCmd := "MAIL FROM:" + from
	if ok, _ := sc.Extension("8BITMIME"); ok {
		mailCmd += " BODY=8BITMIME"
	}
	if ok, _ := sc.Extension("SMTPUTF8"); ok {
		mailCmd += " SMTPUTF8"
	}
	pipelining, _ := sc.Extension("PIPELINING")

	t := sc.Text
	type command struct {
		step, line string
		code       int // the reply code expected; 25 is any 25x
	}
	cmds := make([]command, 0, len(rcpts)+2)
	cmds = append(cmds, command{stepMail, mailCmd, 250})
	for _, r := range rcpts {
		cmds = append(cmds, command{stepRcpt, "RCPT TO:" + r, 25})
	}
	cmds = append(cmds, command{stepData, "DATA", 354})
	for sent := 0; sent < len(cmds); {
		// Without PIPELINING one command per write, each answered first.
		end := sent + 1
		if pipelining {
			end = len(cmds)
		}
		for _, c := range cmds[sent:end] {
			if _, err := t.W.WriteString(c.line + "\r\n"); err != nil {
				return &txError{step: cmds[sent].step, err: err}
			}
		}
		if err := t.W.Flush(); err != nil {
			return &txError{step: cmds[sent].step, err: err}
		}
		// Every reply is read, so that the first failure is the one
		// reported: after a refused MAIL the server also refuses RCPT
		// and DATA, for want of a transaction.
		var first *txError
		for _, c := range cmds[sent:end] {
			code, _, err := t.ReadResponse(c.code)
			if err == nil {
				continue
			}
			if first == nil {
				first = &txError{step: c.step, code: code, err: err}
			}
			var te *textproto.Error
			if !errors.As(err, &te) {
				return first // no reply: the rest will not come either
			}
		}
		if first != nil {
			return first
		}
		sent = end
	}

	dw := t.DotWriter()
	if _, err := g.WriteTo(dw); err != nil {
		return &txError{step: stepDataEnd, err: fmt.Errorf("writing the message: %w", err)}
	}
	if err := dw.Close(); err != nil {
		return &txError{step: stepDataEnd, err: err}
	}
	if code, _, err := t.ReadResponse(250); err != nil {
		return &txError{step: stepDataEnd, code: code, err: err}
	}
	return nil
}
