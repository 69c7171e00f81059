package referral

import (
	"net/http"
	"strconv"
	"unicode/utf8"
)

var (
	contentTypeJSON = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	nosniff         = []string{"nosniff"}
)

// writeEnvelope writes the response envelope with null data: on success
// text is the message, otherwise the error.
func writeEnvelope(w http.ResponseWriter, status int, text string) {
	writeEnvelopeData(w, status, text, nil)
}

// writeEnvelopeData writes the envelope with data, a JSON value (nil for
// null).
func writeEnvelopeData(w http.ResponseWriter, status int, text string, data []byte) {
	ok := status < 400
	b := make([]byte, 0, 64+len(text)+len(data))
	b = append(b, `{"success":`...)
	b = strconv.AppendBool(b, ok)
	if ok {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, text)
		b = append(b, `,"error":null`...)
	} else {
		b = append(b, `,"message":null,"error":`...)
		b = appendJSONString(b, text)
	}
	if data == nil {
		data = []byte("null")
	}
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, '}')
	h := w.Header()
	// Canonical keys set directly: Header.Set would canonicalize and
	// allocate a slice for each. The shared slices are never written to.
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (including <, > and & for HTML safety). Invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
