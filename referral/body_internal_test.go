package referral

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseFields checks parseFields against encoding/json's own reading of
// the body: whatever it accepts, json.Unmarshal reads as an object of
// exactly those two string fields; whatever it refuses, it refuses with an
// inputError, whose text the client may see.
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
		if err != nil {
			var in inputError
			if !errors.As(err, &in) {
				t.Fatalf("%q: %v is not an inputError", body, err)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%q: parsed as %q, but json.Unmarshal: %v", body, got, err)
		}
		if len(m) != 2 || m["email"] != got[0] || m["language"] != got[1] {
			t.Fatalf("%q: parsed as %q, json.Unmarshal read %v", body, got, m)
		}
	})
}
