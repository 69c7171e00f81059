package referral_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/memory"
	"github.com/referralkit/referralkit/webhook"
)

// TestOpenAPI checks ../openapi.yaml against what the handlers answer:
// for each operation, every status produced is documented with its
// content type, body schema and required headers, and every documented
// status is produced.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	var spec map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &spec))
	assert.Equal(t, "3.1.0", spec["openapi"])
	doc := openAPI{spec}
	assert.Len(t, spec["paths"], 7, "every route is checked below")

	t.Run("invites", func(t *testing.T) {
		example := doc.requestExample(t, referral.Pattern)
		produced := responses{}
		f := newFixture(t, func(c *referral.Config) { c.MaxInvitesPerReferrer = 1 })
		produced.add(f.post(example))
		produced.add(f.post(invite("a@example.com", "x!")))
		produced.add(f.post(invite("a@example.com", "en"), "X-Test-Auth", "bearer"))
		produced.add(f.post(invite("a@example.com", "en"), "X-Test-Auth", "forbidden"))
		produced.add(f.serve(newRequest(http.MethodPut, path, "")))
		produced.add(f.post(strings.Repeat(" ", referral.MaxBodyBytes+1)))
		produced.add(f.post(invite("a@example.com", "en"), "Content-Type", "text/plain"))
		produced.add(f.post(invite("b@example.com", "en")))
		f.mailer.Fail(errors.New("down"))
		produced.add(newFixture(t, func(c *referral.Config) { c.Mailer = f.mailer }).post(invite("a@example.com", "en")))
		produced.add(inFlightReplay(t))
		doc.check(t, referral.Pattern, "post", produced)
	})

	t.Run("lookup", func(t *testing.T) {
		rf := newRedeemFixture(t, func(c *referral.Config) { c.LookupsPerMinute = 3 })
		get := func(h http.Handler, code string) *httptest.ResponseRecorder {
			mux := http.NewServeMux()
			mux.Handle(referral.CodePattern, h)
			return serveMux(mux, newRequest(http.MethodGet, "/v1/referral-codes/"+code, ""))
		}
		produced := responses{}
		produced.add(get(rf.h.CodeLookup(), rf.code))
		produced.add(get(rf.h.CodeLookup(), "ZZZZZZZZZZ"))
		mux := http.NewServeMux()
		mux.Handle(referral.CodePattern, rf.h.CodeLookup())
		produced.add(serveMux(mux, newRequest(http.MethodPost, "/v1/referral-codes/"+rf.code, "")))
		produced.add(get(rf.h.CodeLookup(), rf.code))
		produced.add(get(rf.h.CodeLookup(), rf.code)) // the fourth within a minute
		broken := newFixture(t, func(c *referral.Config) { c.Store = brokenStore{c.Store.(*memory.Store), "ResolveCode"} })
		produced.add(get(broken.h.CodeLookup(), rf.code))
		doc.check(t, referral.CodePattern, "get", produced)
	})

	t.Run("redemptions", func(t *testing.T) {
		example := doc.requestExample(t, referral.RedemptionPattern)
		rf := newRedeemFixture(t)
		checkEnvelope(t, rf.serve(newRequest(http.MethodPost, "/v1/users/"+otherID+"/referral-invites", invite("x@example.com", "en"))), 201)
		otherCode := rf.store.Invites()[1].Code
		post := func(h *referral.Handler, code, body string, headers ...string) *httptest.ResponseRecorder {
			mux := http.NewServeMux()
			mux.Handle(referral.RedemptionPattern, h.Redemptions(referral.AuthenticatorFunc(testAuth)))
			return serveMux(mux, newRequest(http.MethodPost, "/v1/referral-codes/"+code+"/redemptions", body, headers...))
		}
		produced := responses{}
		produced.add(post(rf.h, rf.code, example))
		produced.add(post(rf.h, rf.code, example))
		produced.add(post(rf.h, otherCode, example))
		produced.add(post(rf.h, rf.code, `{"userId":"x"}`))
		produced.add(post(rf.h, rf.code, example, "X-Test-Auth", "none"))
		produced.add(post(rf.h, rf.code, example, "X-Test-Auth", "forbidden"))
		produced.add(post(rf.h, "ZZZZZZZZZZ", example))
		mux := http.NewServeMux()
		mux.Handle(referral.RedemptionPattern, rf.h.Redemptions(referral.AuthenticatorFunc(testAuth)))
		produced.add(serveMux(mux, newRequest(http.MethodGet, "/v1/referral-codes/"+rf.code+"/redemptions", "")))
		produced.add(post(rf.h, rf.code, strings.Repeat(" ", referral.MaxBodyBytes+1)))
		produced.add(post(rf.h, rf.code, example, "Content-Type", "text/plain"))
		broken := newFixture(t, func(c *referral.Config) { c.Store, c.Redemptions = rf.store, brokenStore{rf.store, "Redeem"} })
		produced.add(post(broken.h, rf.code, strings.Replace(example, "8b3c", "9b3c", 1)))
		doc.check(t, referral.RedemptionPattern, "post", produced)
	})

	t.Run("referrer", func(t *testing.T) {
		f := newFixture(t)
		checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
		inv := f.store.Invites()[0]
		broken := newFixture(t, func(c *referral.Config) {
			c.Store, c.Recipients = f.store, f.store
			c.Referrers, c.Redemptions = brokenReferrers{f.store}, brokenStore{f.store, "Stats"}
		})
		const code = "/v1/users/" + userID + "/referral-code"
		list := responses{}
		list.add(f.routes(http.MethodGet, path+"?limit=5"))
		list.add(f.routes(http.MethodGet, path+"?limit=500"))
		list.add(f.routes(http.MethodGet, path, "X-Test-Auth", "none"))
		list.add(f.routes(http.MethodGet, path, "X-Test-Auth", "forbidden"))
		list.add(broken.routes(http.MethodGet, path))
		doc.check(t, referral.Pattern, "get", list)

		info := responses{}
		info.add(f.routes(http.MethodGet, code, "X-Test-Auth", "read"))
		info.add(f.routes(http.MethodGet, "/v1/users/42/referral-code"))
		info.add(f.routes(http.MethodGet, code, "X-Test-Auth", "none"))
		info.add(f.routes(http.MethodGet, code, "X-Test-Auth", "forbidden"))
		info.add(f.routes(http.MethodPost, code))
		info.add(broken.routes(http.MethodGet, code))
		doc.check(t, referral.ReferralCodePattern, "get", info)

		one := invitesPath + inv.ID
		resend := responses{}
		resend.add(f.routes(http.MethodPost, one+"/resend")) // within 24 h of its send
		resend.add(f.routes(http.MethodPost, "/v1/users/42/referral-invites/"+inv.ID+"/resend"))
		resend.add(f.routes(http.MethodPost, one+"/resend", "X-Test-Auth", "none"))
		resend.add(f.routes(http.MethodPost, one+"/resend", "X-Test-Auth", "read"))
		resend.add(f.routes(http.MethodPost, invitesPath+"nope/resend"))
		resend.add(f.routes(http.MethodGet, one+"/resend"))
		resend.add(broken.routes(http.MethodPost, one+"/resend"))
		f.Advance(24 * time.Hour)
		resend.add(f.routes(http.MethodPost, one+"/resend"))
		checkEnvelope(t, f.post(invite("queued@example.com", "en")), 201)
		f.mailer.Fail(errors.New("down"))
		f.Advance(24 * time.Hour)
		resend.add(f.routes(http.MethodPost, one+"/resend")) // the mail server is down
		f.mailer.Fail(nil)
		checkEnvelope(t, f.routes(http.MethodDelete, invitesPath+f.store.Invites()[1].ID), 200)
		resend.add(f.routes(http.MethodPost, invitesPath+f.store.Invites()[1].ID+"/resend")) // revoked
		doc.check(t, referral.ResendPattern, "post", resend)

		revoke := responses{}
		revoke.add(f.routes(http.MethodDelete, one))
		revoke.add(f.routes(http.MethodDelete, "/v1/users/42/referral-invites/"+inv.ID))
		revoke.add(f.routes(http.MethodDelete, one, "X-Test-Auth", "none"))
		revoke.add(f.routes(http.MethodDelete, one, "X-Test-Auth", "read"))
		revoke.add(f.routes(http.MethodDelete, invitesPath+"nope"))
		revoke.add(f.routes(http.MethodPut, one))
		revoke.add(broken.routes(http.MethodDelete, one))
		checkEnvelope(t, f.post(invite("friend@example.com", "en")), 201)
		_, err := f.h.Redeem(context.Background(), inv.Code, newUser, "friend@example.com")
		require.NoError(t, err)
		revoke.add(f.routes(http.MethodDelete, invitesPath+f.store.Invites()[2].ID)) // accepted
		doc.check(t, referral.InvitePattern, "delete", revoke)
	})

	// What webhook.Sender posts for each event type fits the document's
	// webhooks and their schema.
	t.Run("webhooks", func(t *testing.T) {
		hooks, ok := spec["webhooks"].(map[string]any)
		require.True(t, ok, "the document has webhooks")
		secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
		require.NoError(t, err)
		bodies := make(chan []byte, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			bodies <- b
		}))
		defer srv.Close()
		sender := &webhook.Sender{URL: srv.URL, Secret: secret}
		at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		events := []referral.Event{
			{Type: referral.EventInviteSent, InviteID: "i", AppID: appID, ReferrerID: userID, Status: referral.StatusSent},
			{Type: referral.EventInviteFailed, InviteID: "i", AppID: appID, ReferrerID: userID, Status: referral.StatusFailed},
			{Type: referral.EventInviteSuppressed, InviteID: "i", AppID: appID, ReferrerID: userID, Status: referral.StatusSuppressed},
			{Type: referral.EventInviteRevoked, InviteID: "i", AppID: appID, ReferrerID: userID, Status: referral.StatusRevoked},
			{Type: referral.EventReferralRedeemed, AppID: appID, ReferrerID: userID, Code: "ABCDEFGHJK", NewUserID: newUser},
		}
		assert.Len(t, hooks, len(events), "every event type is documented")
		for _, ev := range events {
			ev.ID, ev.At = "01890000-0000-7000-8000-000000000001", at
			require.NoError(t, sender.SendEvent(context.Background(), ev))
			body := <-bodies
			_, ok := hooks[ev.Type]
			assert.True(t, ok, "webhook %s is documented", ev.Type)
			media := doc.at("webhooks", ev.Type, "post", "requestBody", "content", "application/json")
			var v any
			require.NoError(t, json.Unmarshal(body, &v))
			assert.NoError(t, doc.validate(media["schema"].(map[string]any), v), "%s: %s", ev.Type, body)
			assert.NotContains(t, string(body), "@")
		}
	})

	t.Run("unsubscribe", func(t *testing.T) {
		f := newFixture(t)
		checkEnvelope(t, f.post(invite("bob@example.com", "en")), 201)
		token := unsubscribeToken(t, f)
		broken := newFixture(t, func(c *referral.Config) {
			c.Store, c.Recipients = f.store, brokenRecipients{f.store}
		})
		json := []string{"Accept", "application/json"}
		get := responses{}
		get.add(f.unsubscribe(http.MethodGet, token, ""))
		get.add(f.unsubscribe(http.MethodGet, "forged", "", json...))
		get.add(f.unsubscribe(http.MethodPut, token, ""))
		get.add(broken.unsubscribe(http.MethodGet, token, ""))
		doc.check(t, referral.UnsubscribePattern, "get", get)
		post := responses{}
		post.add(f.unsubscribe(http.MethodPost, token, oneClick, json...))
		post.add(f.unsubscribe(http.MethodPost, token, "List-Unsubscribe=No"))
		post.add(f.unsubscribe(http.MethodPost, token[1:], oneClick))
		post.add(broken.unsubscribe(http.MethodPost, token, oneClick, json...))
		doc.check(t, referral.UnsubscribePattern, "post", post)
	})
}

// brokenStore fails one method as a store whose database is down would.
type brokenStore struct {
	*memory.Store
	broken string
}

func (b brokenStore) ResolveCode(ctx context.Context, code string) (referral.Owner, error) {
	if b.broken == "ResolveCode" {
		return referral.Owner{}, errors.New("database is down")
	}
	return b.Store.ResolveCode(ctx, code)
}

func (b brokenStore) Redeem(ctx context.Context, r referral.Redemption) (referral.Redemption, bool, error) {
	if b.broken == "Redeem" {
		return referral.Redemption{}, false, errors.New("database is down")
	}
	return b.Store.Redeem(ctx, r)
}

func (b brokenStore) Stats(ctx context.Context, appID, userID string) (referral.Stats, error) {
	if b.broken == "Stats" {
		return referral.Stats{}, errors.New("database is down")
	}
	return b.Store.Stats(ctx, appID, userID)
}

// brokenReferrers fails as a store whose database is down would.
type brokenReferrers struct{ *memory.Store }

func (brokenReferrers) ListInvites(context.Context, string, string, referral.InviteCursor, int) ([]referral.ListedInvite, error) {
	return nil, errors.New("database is down")
}

func (brokenReferrers) Resend(context.Context, referral.Resend, referral.Limits) (referral.Invite, error) {
	return referral.Invite{}, errors.New("database is down")
}

func (brokenReferrers) Revoke(context.Context, string, string, string, time.Time) error {
	return errors.New("database is down")
}

// brokenRecipients fails as a store whose database is down would.
type brokenRecipients struct{ *memory.Store }

func (brokenRecipients) InviteRecipient(context.Context, string) (referral.Recipient, error) {
	return referral.Recipient{}, errors.New("database is down")
}

// responses maps each status produced to one response with it.
type responses map[string]*httptest.ResponseRecorder

func (p responses) add(rec *httptest.ResponseRecorder) { p[strconv.Itoa(rec.Code)] = rec }

// requestExample returns the operation's request example as JSON, checked
// against its request schema.
func (d openAPI) requestExample(t *testing.T, route string) string {
	t.Helper()
	media := d.at("paths", route, "post", "requestBody", "content", "application/json")
	schema := d.resolve(media["schema"].(map[string]any))
	require.NoError(t, d.validate(schema, media["example"]), "the request example fits its schema")
	b, err := json.Marshal(media["example"])
	require.NoError(t, err)
	return string(b)
}

// check compares the responses produced with the operation's documented
// responses.
func (d openAPI) check(t *testing.T, route, method string, produced responses) {
	t.Helper()
	documented := d.at("paths", route, method, "responses")
	assert.ElementsMatch(t, slices.Collect(maps.Keys(documented)), slices.Collect(maps.Keys(produced)),
		"documented statuses = produced statuses")
	for status, rec := range produced {
		t.Run(status, func(t *testing.T) {
			resp, ok := documented[status].(map[string]any)
			require.True(t, ok, "status %s is not documented", status)
			resp = d.resolve(resp)
			ct := rec.Header().Get("Content-Type")
			mediaType, _, _ := strings.Cut(ct, ";")
			content := d.resolve(resp["content"].(map[string]any))
			media, ok := content[mediaType].(map[string]any)
			require.True(t, ok, "content type %q not documented", ct)
			var body any = rec.Body.String()
			if mediaType == "application/json" {
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			}
			assert.NoError(t, d.validate(d.resolve(media["schema"].(map[string]any)), body), "body %s", rec.Body)
			headers, _ := resp["headers"].(map[string]any)
			for name, h := range headers {
				h := d.resolve(h.(map[string]any))
				value := rec.Header().Get(name)
				if h["required"] == true {
					assert.NotEmpty(t, value, "required header %s", name)
				}
				if value == "" {
					continue
				}
				schema := d.resolve(h["schema"].(map[string]any))
				var v any = value
				if schema["type"] == "integer" {
					n, err := strconv.Atoi(value)
					require.NoError(t, err, "header %s: %q", name, value)
					v = n
				}
				assert.NoError(t, d.validate(schema, v), "header %s", name)
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
	if types, ok := schema["type"].([]any); ok && !slices.ContainsFunc(types, func(t any) bool { return hasType(v, t.(string)) }) {
		return fmt.Errorf("%#v is none of the types %v", v, types)
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return fmt.Errorf("%v is not one of %v", v, enum)
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
	case []any:
		items, _ := schema["items"].(map[string]any)
		for i, item := range v {
			if err := d.validate(items, item); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
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
	case "array":
		_, ok := v.([]any)
		return ok
	}
	return false
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
