package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Errors. Those of a bad configuration or event are not worth retrying;
// those of Verify mean the request must be refused.
var (
	// ErrSecret: a secret that is not "whsec_" + standard base64 of at
	// least MinSecretBytes bytes. The error never includes the secret.
	ErrSecret = errors.New("webhook: secret must be whsec_ followed by the standard base64 of at least 24 bytes")
	// ErrURL: a Sender's URL that is not an absolute http or https URL.
	ErrURL = errors.New("webhook: URL must be an absolute http:// or https:// URL with a host and no #fragment")
	// ErrEvent: an event Send cannot deliver (no id, no type, no
	// timestamp, or data that is not a JSON object).
	ErrEvent = errors.New("webhook: invalid event")
	// ErrSignature: headers missing, or no v1 signature matches.
	ErrSignature = errors.New("webhook: invalid signature")
	// ErrTimestamp: a webhook-timestamp outside the tolerance, or not a
	// number.
	ErrTimestamp = errors.New("webhook: timestamp outside tolerance")
)

const (
	secretPrefix = "whsec_"
	// MinSecretBytes is the shortest key ParseSecret accepts, as the
	// Standard Webhooks scheme asks.
	MinSecretBytes = 24

	// DefaultTolerance is how far Verify lets a timestamp be from now when
	// it is given a tolerance of zero or less.
	DefaultTolerance = 5 * time.Minute

	// DefaultTimeout bounds one attempt of the default client.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBody is how much of a response Send reads (and discards)
	// when Sender.MaxBody is zero or less.
	DefaultMaxBody = 64 << 10

	// MaxBackoff caps Backoff.
	MaxBackoff = time.Hour
	// RetryFor is how long a failing event keeps being retried, counted
	// from its first attempt, before it is given up.
	RetryFor = 72 * time.Hour
)

// Secret is a webhook signing key. Its zero value is no secret. It prints,
// logs and marshals redacted.
type Secret struct {
	key []byte
}

// ParseSecret reads a secret written "whsec_" + the standard base64 (with
// padding) of at least MinSecretBytes bytes.
func ParseSecret(s string) (Secret, error) {
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: missing the whsec_ prefix", ErrSecret)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(enc)
	// The decoder skips newlines; only the canonical form is accepted.
	if err != nil || base64.StdEncoding.EncodeToString(key) != enc {
		// base64's own error names only an offset, but say less anyway.
		return Secret{}, fmt.Errorf("%w: not standard base64", ErrSecret)
	}
	if len(key) < MinSecretBytes {
		return Secret{}, fmt.Errorf("%w: %d bytes is too short", ErrSecret, len(key))
	}
	return Secret{key: key}, nil
}

// IsZero reports whether s is no secret.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// String redacts the secret.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return secretPrefix + "REDACTED"
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return "webhook.Secret(" + strconv.Quote(s.String()) + ")" }

// LogValue redacts the secret for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the secret, so that a config dumped as JSON or YAML
// does not leak it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Sign returns the webhook-signature header value for one message:
// "v1," + the standard base64 of HMAC-SHA256(key, id + "." + unix seconds +
// "." + body).
func Sign(secret Secret, id string, timestamp time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(secret, id, timestamp.Unix(), body))
}

func mac(secret Secret, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret.key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received message: its webhook-id, webhook-timestamp and
// webhook-signature headers against body. The timestamp must lie within
// tolerance of now (DefaultTolerance if tolerance <= 0), which bounds
// replays. The signature header may hold several space-separated
// signatures (while a secret is rotated); one matching "v1," signature is
// enough, compared in constant time, and other versions are ignored.
// Errors match ErrSignature or ErrTimestamp.
func Verify(secret Secret, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if secret.IsZero() {
		return fmt.Errorf("%w: no secret", ErrSignature)
	}
	id := header.Get("webhook-id")
	ts := header.Get("webhook-timestamp")
	sigs := header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("%w: missing webhook-id, webhook-timestamp or webhook-signature", ErrSignature)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp is not Unix seconds", ErrTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Compare in seconds, so that a huge timestamp cannot overflow a Duration.
	if d := now.Unix() - unix; d > int64(tolerance/time.Second) || -d > int64(tolerance/time.Second) {
		return ErrTimestamp
	}
	want := mac(secret, id, unix, body)
	for _, sig := range strings.Fields(sigs) {
		enc, ok := strings.CutPrefix(sig, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
}

// Event is the JSON body of a delivery. It has no field for a person's
// address, by design: Data carries ids (invite, app, referrer, code, new
// user) and a status.
type Event struct {
	// Type names the event: invite.sent, invite.failed,
	// invite.suppressed, invite.revoked or referral.redeemed.
	Type string `json:"type"`
	// Timestamp is when the event happened; it is sent in UTC, RFC 3339.
	Timestamp time.Time `json:"timestamp"`
	// Data is a JSON object; nil is sent as {}.
	Data json.RawMessage `json:"data"`
}

// Sender delivers events to one endpoint. Its fields are read, never
// written, by Send, so one Sender may serve many goroutines.
type Sender struct {
	// URL is the endpoint: an absolute http:// or https:// URL. Required.
	URL string
	// Secret signs every delivery. Required.
	Secret Secret
	// Client makes the request. Default (nil): a client with a
	// DefaultTimeout timeout on http.DefaultTransport. Whatever the
	// client, redirects are never followed: a 3xx is a failure.
	Client *http.Client
	// MaxBody is how many bytes of a response Send reads and discards
	// before closing it (so that a small response's connection can be
	// reused, and a huge one costs nothing). Default (<= 0):
	// DefaultMaxBody, 64 KiB.
	MaxBody int64
}

// Check reports whether s can send: a URL that is absolute http or https
// (ErrURL) and a secret (ErrSecret).
func (s *Sender) Check() error {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(s.URL, "#") {
		return ErrURL
	}
	if s.Secret.IsZero() {
		return fmt.Errorf("%w: Sender.Secret is not set", ErrSecret)
	}
	return nil
}

// DeliveryError is a failed attempt: a status other than 2xx (redirects
// included), a timeout or a network error. It is worth retrying with Backoff
// until RetryFor has passed.
type DeliveryError struct {
	// StatusCode is the response's status; 0 when none arrived.
	StatusCode int
	// Err is the transport's error when no response arrived.
	Err error
}

func (e *DeliveryError) Error() string {
	switch {
	case e.StatusCode >= 300 && e.StatusCode < 400:
		return fmt.Sprintf("webhook: delivery failed: status %d (redirects are not followed)", e.StatusCode)
	case e.StatusCode != 0:
		return fmt.Sprintf("webhook: delivery failed: status %d", e.StatusCode)
	default:
		return "webhook: delivery failed: " + e.Err.Error()
	}
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Retryable reports whether err is a failed delivery that a later attempt
// may fix (a *DeliveryError), rather than a bad configuration or event.
func Retryable(err error) bool {
	var d *DeliveryError
	return errors.As(err, &d)
}

// Send makes one signed POST of ev with id as its webhook-id (the same id on
// every attempt of one event). It returns nil for a 2xx, a *DeliveryError for
// anything else (see Retryable), or an error matching ErrURL, ErrSecret or
// ErrEvent for what no retry can fix. ctx bounds the attempt along with the
// client's timeout.
func (s *Sender) Send(ctx context.Context, id string, ev Event) error {
	if err := s.Check(); err != nil {
		return err
	}
	body, err := encode(id, ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return ErrURL
	}
	now := time.Now()
	req.Header.Set("content-type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", Sign(s.Secret, id, now, body))

	resp, err := s.client().Do(req)
	if err != nil {
		return &DeliveryError{Err: err}
	}
	limit := s.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	// The response's content does not matter; reading a little lets a small
	// one's connection be reused, and closing early drops a huge one.
	_, _ = io.CopyN(io.Discard, resp.Body, limit)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &DeliveryError{StatusCode: resp.StatusCode}
	}
	return nil
}

func encode(id string, ev Event) ([]byte, error) {
	switch {
	case id == "":
		return nil, fmt.Errorf("%w: no id", ErrEvent)
	case ev.Type == "":
		return nil, fmt.Errorf("%w: no type", ErrEvent)
	case ev.Timestamp.IsZero():
		return nil, fmt.Errorf("%w: no timestamp", ErrEvent)
	}
	if len(bytes.TrimSpace(ev.Data)) == 0 {
		ev.Data = json.RawMessage("{}")
	} else if bytes.TrimSpace(ev.Data)[0] != '{' {
		return nil, fmt.Errorf("%w: data is not a JSON object", ErrEvent)
	}
	ev.Timestamp = ev.Timestamp.UTC()
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvent, err)
	}
	return body, nil
}

// client returns a copy of the configured client (or the default) that
// never follows redirects; the copy leaves the caller's client untouched.
func (s *Sender) client() *http.Client {
	c := http.Client{Timeout: DefaultTimeout}
	if s.Client != nil {
		c = *s.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Backoff returns how long to wait before retry number attempt (1 for the
// first retry): first doubled attempt-1 times, capped at MaxBackoff, then
// jittered to a random duration in [d/2, d] so that many failing events do
// not retry in step. An attempt below 1 counts as 1; a first of zero or
// less counts as one second.
func Backoff(attempt int, first time.Duration) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if first <= 0 {
		first = time.Second
	}
	d := min(first, MaxBackoff)
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	return d/2 + rand.N(d-d/2+1)
}
