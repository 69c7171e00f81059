package referral

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"unicode/utf8"
)

// referenceParse is the rule parseFields implements, written the
// slow, obvious way with encoding/json's token API: the fuzz target below
// checks that the two agree.
func referenceParse(body []byte) ([2]string, bool) {
	var req [2]string
	if !utf8.Valid(body) {
		return req, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return req, false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, false
		}
		name, _ := tok.(string)
		if (name != "email" && name != "language") || seen[name] {
			return req, false
		}
		seen[name] = true
		tok, err = dec.Token()
		s, ok := tok.(string)
		if err != nil || !ok {
			return req, false
		}
		if name == "email" {
			req[0] = s
		} else {
			req[1] = s
		}
	}
	if _, err := dec.Token(); err != nil {
		return req, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, false
	}
	return req, seen["email"] && seen["language"]
}

func FuzzParseFields(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@example.com","language":"en"}`,
		` { "language" : "de-AT" , "email" : "b\u0040example.com" } `,
		`{"em\u0061il":"a","language":"x"}`,
		`{"email":"a\"b\\c","language":"\ud83d\ude00"}`,
		`{"email":"a","email":"b","language":"c"}`,
		`{"email":1,"language":"c"}`,
		`{"email":"a","language":"c"}{}`,
		`{"Email":"a","language":"c"}`,
		`[]`, `null`, `"x"`, `{`, `{"email":"a",}`, "{\"email\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseFields(body, [2]string{"email", "language"})
		want, ok := referenceParse(body)
		if ok != (err == nil) {
			t.Fatalf("%q: parse error %v, reference ok=%v", body, err, ok)
		}
		if ok && got != want {
			t.Fatalf("%q: got %+v, want %+v", body, got, want)
		}
	})
}
