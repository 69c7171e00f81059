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

// inviteRequest is the request body.
type inviteRequest struct {
	Email    string
	Language string
}

// jsonContentType reports whether v is application/json with, at most, a
// UTF-8 charset parameter.
func jsonContentType(v string) bool {
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

// parseInviteRequest decodes exactly one JSON object with exactly the
// string fields "email" and "language" (matched case-sensitively, each
// once) and nothing after it. Errors are inputErrors.
func parseInviteRequest(body []byte) (inviteRequest, error) {
	var req inviteRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, inputError("request body is empty; send a JSON object with email and language")
	}
	if !utf8.Valid(body) {
		return req, inputError("request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return req, inputError("request body is not valid JSON")
	} else if tok != json.Delim('{') {
		return req, inputError("request body must be a JSON object")
	}
	var seenEmail, seenLanguage bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, inputError("request body is not valid JSON")
		}
		name, _ := tok.(string)
		var dst *string
		var seen *bool
		switch name {
		case "email":
			dst, seen = &req.Email, &seenEmail
		case "language":
			dst, seen = &req.Language, &seenLanguage
		default:
			return req, inputError("unknown field " + quoteField(name) + "; only email and language are allowed")
		}
		if *seen {
			return req, inputError("field " + name + " appears twice")
		}
		*seen = true
		tok, err = dec.Token()
		if err != nil {
			return req, inputError("request body is not valid JSON")
		}
		s, ok := tok.(string)
		if !ok {
			return req, inputError(name + " must be a string")
		}
		*dst = s
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return req, inputError("request body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, inputError("unexpected data after the JSON object")
	}
	switch {
	case !seenEmail:
		return req, inputError("email is required")
	case !seenLanguage:
		return req, inputError("language is required")
	}
	return req, nil
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
