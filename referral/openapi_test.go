package referral_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
)

// TestOpenAPI checks ../openapi.yaml against what the handler answers:
// every status it produces is documented with its content type, body
// schema and required headers, and every documented status is produced.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	var spec map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &spec))
	assert.Equal(t, "3.1.0", spec["openapi"])
	doc := openAPI{spec}
	op := doc.at("paths", referral.Pattern, "post")
	responses := op["responses"].(map[string]any)

	reqSchema := doc.resolve(doc.at("paths", referral.Pattern, "post", "requestBody", "content", "application/json", "schema"))
	assert.ElementsMatch(t, []any{"email", "language"}, reqSchema["required"])
	example := doc.at("paths", referral.Pattern, "post", "requestBody", "content", "application/json")["example"]
	require.NoError(t, doc.validate(reqSchema, example), "the request example fits its schema")
	exampleBody, _ := json.Marshal(example)

	produced := map[string]*httptest.ResponseRecorder{}
	record := func(rec *httptest.ResponseRecorder) { produced[strconv.Itoa(rec.Code)] = rec }

	f := newFixture(t, func(c *referral.Config) { c.MaxInvitesPerReferrer = 1 })
	record(f.post(string(exampleBody)))
	record(f.post(invite("a@example.com", "x!")))
	record(f.post(invite("a@example.com", "en"), "X-Test-Auth", "bearer"))
	record(f.post(invite("a@example.com", "en"), "X-Test-Auth", "forbidden"))
	record(f.serve(newRequest(http.MethodGet, path, "")))
	record(f.post(strings.Repeat(" ", referral.MaxBodyBytes+1)))
	record(f.post(invite("a@example.com", "en"), "Content-Type", "text/plain"))
	record(f.post(invite("b@example.com", "en")))
	f.mailer.Fail(errors.New("down"))
	record(newFixture(t, func(c *referral.Config) { c.Mailer = f.mailer }).post(invite("a@example.com", "en")))
	record(inFlightReplay(t))

	var documented []string
	for status := range responses {
		documented = append(documented, status)
	}
	var got []string
	for status := range produced {
		got = append(got, status)
	}
	slices.Sort(documented)
	slices.Sort(got)
	assert.Equal(t, documented, got, "documented statuses = produced statuses")

	for status, rec := range produced {
		t.Run(status, func(t *testing.T) {
			resp, ok := responses[status].(map[string]any)
			require.True(t, ok, "status %s is not documented", status)
			resp = doc.resolve(resp)
			ct := rec.Header().Get("Content-Type")
			mediaType, _, _ := strings.Cut(ct, ";")
			content := doc.resolve(resp["content"].(map[string]any))
			media, ok := content[mediaType].(map[string]any)
			require.True(t, ok, "content type %q not documented", ct)
			var body any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.NoError(t, doc.validate(doc.resolve(media["schema"].(map[string]any)), body), "body %s", rec.Body)
			headers, _ := resp["headers"].(map[string]any)
			for name, h := range headers {
				h := doc.resolve(h.(map[string]any))
				value := rec.Header().Get(name)
				if h["required"] == true {
					assert.NotEmpty(t, value, "required header %s", name)
				}
				if value == "" {
					continue
				}
				var v any = value
				if s := doc.resolve(h["schema"].(map[string]any)); s["type"] == "integer" {
					n, err := strconv.Atoi(value)
					require.NoError(t, err, "header %s: %q", name, value)
					v = n
				}
				assert.NoError(t, doc.validate(doc.resolve(h["schema"].(map[string]any)), v), "header %s", name)
			}
		})
	}
}

// inFlightReplay repeats an Idempotency-Key while the first request is
// still sending, which answers 409.
func inFlightReplay(t *testing.T) *httptest.ResponseRecorder {
	bm := gatedMailer{started: make(chan struct{}, 1), release: make(chan struct{})}
	f := newFixture(t, func(c *referral.Config) { c.Mailer = bm })
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.post(invite("a@example.com", "en"), "Idempotency-Key", "k")
	}()
	<-bm.started
	rec := f.post(invite("a@example.com", "en"), "Idempotency-Key", "k")
	close(bm.release)
	<-done
	return rec
}

type gatedMailer struct{ started, release chan struct{} }

func (g gatedMailer) Send(ctx context.Context, m mail.Message) error {
	g.started <- struct{}{}
	<-g.release
	return nil
}

// openAPI is just enough of an OpenAPI 3.1 reader for this test: $ref
// within the document and the JSON Schema keywords the document uses.
type openAPI struct{ root map[string]any }

func (d openAPI) at(keys ...string) map[string]any {
	node := d.root
	for _, k := range keys {
		node = d.resolve(node[k].(map[string]any))
	}
	return node
}

func (d openAPI) resolve(node map[string]any) map[string]any {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	return d.at(strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
}

func (d openAPI) validate(schema map[string]any, v any) error {
	schema = d.resolve(schema)
	if c, ok := schema["const"]; ok && fmt.Sprint(c) != fmt.Sprint(v) {
		return fmt.Errorf("%v is not the const %v", v, c)
	}
	if typ, ok := schema["type"].(string); ok && !hasType(v, typ) {
		return fmt.Errorf("%#v is not of type %s", v, typ)
	}
	switch v := v.(type) {
	case string:
		if n, ok := schema["maxLength"].(int); ok && utf8.RuneCountInString(v) > n {
			return fmt.Errorf("%q is longer than %d", v, n)
		}
		if n, ok := schema["minLength"].(int); ok && utf8.RuneCountInString(v) < n {
			return fmt.Errorf("%q is shorter than %d", v, n)
		}
	case int:
		if n, ok := schema["minimum"].(int); ok && v < n {
			return fmt.Errorf("%d is below %d", v, n)
		}
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asSlice(schema["required"]) {
			if _, ok := v[r.(string)]; !ok {
				return fmt.Errorf("missing required %s", r)
			}
		}
		for k, val := range v {
			p, ok := props[k].(map[string]any)
			if !ok {
				if schema["additionalProperties"] == false {
					return fmt.Errorf("property %s is not allowed", k)
				}
				continue
			}
			if err := d.validate(p, val); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	return nil
}

func hasType(v any, typ string) bool {
	switch typ {
	case "null":
		return v == nil
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		switch n := v.(type) {
		case int:
			return true
		case float64:
			return n == float64(int64(n))
		}
		return false
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
