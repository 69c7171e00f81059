package referral

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// envelope is the body of every response of the handler's routes.
type envelope struct {
	Success bool            `json:"success"`
	Message *string         `json:"message"`
	Error   *string         `json:"error"`
	Data    json.RawMessage `json:"data"`
}

// writeEnvelope writes the response envelope with null data: on success
// text is the message, otherwise the error.
func writeEnvelope(w http.ResponseWriter, status int, text string) {
	writeEnvelopeData(w, status, text, nil)
}

// writeEnvelopeData writes the envelope with data, a JSON value (nil for
// null).
func writeEnvelopeData(w http.ResponseWriter, status int, text string, data []byte) {
	env := envelope{Success: status < 400, Data: data}
	if env.Success {
		env.Message = &text
	} else {
		env.Error = &text
	}
	b, err := json.Marshal(env)
	if err != nil {
		// Only data can fail, and callers pass constants.
		panic("referral: envelope data is not JSON: " + err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
