package referral

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes is the largest request body accepted (413 beyond).
const MaxBodyBytes = 16 << 10

var errTooLarge = errors.New("referral: body too large")

// jsonContentType reports whether v is application/json with, at most, a
// UTF-8 charset parameter.
func jsonContentType(v string) bool {
	if v == "application/json" || v == "application/json; charset=utf-8" {
		return true // what nearly every client sends, without parsing
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, p := range params {
		if k != "charset" || !strings.EqualFold(p, "utf-8") {
			return false
		}
	}
	return true
}

// readBody reads at most MaxBodyBytes of r's body into buf.
func readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	if r.ContentLength > MaxBodyBytes {
		return errTooLarge
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errTooLarge
	}
	return err
}

// parseFields decodes exactly one JSON object with exactly the two string
// fields named (matched case-sensitively, each once) and nothing after it,
// and returns their values. Errors are inputErrors.
//
// json.Valid checks the syntax without allocating; the walk that follows
// relies on it and only has to find keys and string values. The
// Decoder's token API, used before, cost a quarter of the handler's CPU.
func parseFields(body []byte, names [2]string) (values [2]string, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return values, inputError("request body is empty; send a JSON object with " + names[0] + " and " + names[1])
	}
	if !utf8.Valid(body) {
		return values, inputError("request body is not valid UTF-8")
	}
	if !json.Valid(body) {
		// Tell trailing data from broken JSON; only on this error path.
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(new(json.RawMessage)); err == nil {
			return values, inputError("unexpected data after the JSON object")
		}
		return values, inputError("request body is not valid JSON")
	}
	w := jsonWalk{b: body}
	if w.next() != '{' {
		return values, inputError("request body must be a JSON object")
	}
	w.i++
	var seen [2]bool
	for c := w.next(); c != '}'; c = w.next() {
		if c == ',' {
			w.i++
			w.next()
		}
		name := w.str()
		w.next() // the colon
		w.i++
		i := 0
		switch name {
		case names[0]:
		case names[1]:
			i = 1
		default:
			return values, inputError("unknown field " + quoteField(name) + "; only " + names[0] + " and " + names[1] + " are allowed")
		}
		if seen[i] {
			return values, inputError("field " + name + " appears twice")
		}
		seen[i] = true
		if w.next() != '"' {
			return values, inputError(name + " must be a string")
		}
		values[i] = w.str()
	}
	for i, ok := range seen {
		if !ok {
			return values, inputError(names[i] + " is required")
		}
	}
	return values, nil
}

// jsonWalk reads keys and string values of a document json.Valid accepted.
type jsonWalk struct {
	b []byte
	i int
}

// next skips white space and returns the byte there.
func (w *jsonWalk) next() byte {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return w.b[w.i]
		}
	}
	return 0
}

// str reads the string that starts at w.i.
func (w *jsonWalk) str() string {
	start, escaped := w.i, false
	for w.i++; w.b[w.i] != '"'; w.i++ {
		if w.b[w.i] == '\\' {
			escaped = true
			w.i++
		}
	}
	w.i++
	raw := w.b[start:w.i]
	if !escaped {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s) // cannot fail: the document is valid
	return s
}

// quoteField quotes a client-sent field name for an error message, cut to a
// sane length.
func quoteField(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
