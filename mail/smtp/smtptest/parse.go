package smtptest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// Parsed is a received message read back with the standard library only,
// so that tests check the bytes on the wire rather than trust the library
// that wrote them.
type Parsed struct {
	Header  mail.Header
	Subject string // RFC 2047-decoded
	// Text and HTML are the text/plain and text/html parts, decoded, with
	// the CRLF line ends of MIME's canonical form turned into LF.
	Text string
	HTML string
	// Parts lists the content types of the body parts in order, e.g.
	// ["text/plain", "text/html"] for multipart/alternative.
	Parts []string
	// ContentType is the top-level media type.
	ContentType string
}

// Parse reads raw (a message as received) back into its parts.
func Parse(raw []byte) (*Parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	p := &Parsed{Header: msg.Header}
	var dec mime.WordDecoder
	if p.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return nil, fmt.Errorf("smtptest: subject: %w", err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("smtptest: content type: %w", err)
	}
	p.ContentType = mediaType
	if !strings.HasPrefix(mediaType, "multipart/") {
		body, err := decode(msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
		if err != nil {
			return nil, err
		}
		p.add(mediaType, body)
		return p, nil
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return p, nil
		}
		if err != nil {
			return nil, fmt.Errorf("smtptest: %w", err)
		}
		pt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			return nil, fmt.Errorf("smtptest: part content type: %w", err)
		}
		// multipart.Reader already decodes quoted-printable parts.
		body, err := decode(part, part.Header.Get("Content-Transfer-Encoding"))
		if err != nil {
			return nil, err
		}
		p.add(pt, body)
	}
}

func (p *Parsed) add(mediaType, body string) {
	p.Parts = append(p.Parts, mediaType)
	body = strings.ReplaceAll(body, "\r\n", "\n")
	switch mediaType {
	case "text/plain":
		p.Text = body
	case "text/html":
		p.HTML = body
	}
}

func decode(r io.Reader, cte string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("smtptest: body: %w", err)
	}
	return string(b), nil
}
