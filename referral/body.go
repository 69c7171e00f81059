package referral

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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

// readBody reads at most MaxBodyBytes of r's body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, errTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errTooLarge
	}
	return b, err
}

// parseFields decodes exactly one JSON object with exactly the two string
// fields named (matched case-sensitively, each once) and nothing after it,
// and returns their values. Errors are inputErrors.
//
// encoding/json's struct decoding matches names case-insensitively and
// lets a repeated field win silently, so the object is read token by
// token, once json.Valid has told broken JSON from a valid document.
func parseFields(body []byte, names [2]string) (values [2]string, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return values, inputError("request body is empty; send a JSON object with " + names[0] + " and " + names[1])
	}
	if !utf8.Valid(body) {
		return values, inputError("request body is not valid UTF-8")
	}
	if !json.Valid(body) {
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(new(json.RawMessage)); err == nil {
			return values, inputError("unexpected data after the JSON object")
		}
		return values, inputError("request body is not valid JSON")
	}
	// The document is valid, so the decoder's errors cannot happen.
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return values, inputError("request body must be a JSON object")
	}
	var seen [2]bool
	for dec.More() {
		tok, _ := dec.Token()
		name, _ := tok.(string)
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
		tok, _ = dec.Token()
		s, ok := tok.(string)
		if !ok {
			return values, inputError(name + " must be a string")
		}
		values[i] = s
	}
	for i, ok := range seen {
		if !ok {
			return values, inputError(names[i] + " is required")
		}
	}
	return values, nil
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
