package mail_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
)

func TestParseLanguageAndMatch(t *testing.T) {
	t.Parallel()
	tmpl, err := mail.NewTemplates(nil)
	require.NoError(t, err)
	tests := []struct {
		in   string
		want string // template language; "" means ErrBadLanguage
	}{
		{"en", "en"},
		{"en-GB", "en"},
		{"de", "de"},
		{"de-AT", "de"},
		{"de-CH", "de"},
		{"gsw", "de"},
		{"DE", "de"},
		{"AT", "de"},
		{"US", "en"},
		{"FR", "fr"},
		{"ES", "es"},
		{"MX", "es"},
		{"JP", "ja"},
		{"fr-CA", "fr"},
		{"es-419", "es"},
		{"ja", "ja"},
		{"EN", "en"}, // not a country: read as a tag
		{"tlh", "en"},
		{"pt-BR", "en"},
		{"zz", "en"}, // well-formed, unknown
		{"AQ", "en"}, // a country with no main language
		{"x!", ""},   // malformed
		{"", ""},     // empty
		{"XX", "en"}, // not a country: read as a tag, well-formed, unknown
		{"e", ""},
		{"de_AT", ""}, // BCP 47 uses hyphens
		{"de-", ""},
		{"-de", ""},
		{"en us", ""},
		{strings.Repeat("a", 65), ""},
	}
	for _, tt := range tests {
		tag, err := mail.ParseLanguage(tt.in)
		if tt.want == "" {
			assert.ErrorIs(t, err, mail.ErrBadLanguage, "%q", tt.in)
			continue
		}
		require.NoError(t, err, "%q", tt.in)
		assert.Equal(t, tt.want, tmpl.Match(tag), "%q (parsed as %s)", tt.in, tag)
	}
}

func TestTemplatesRenderEveryLanguage(t *testing.T) {
	t.Parallel()
	tmpl, err := mail.NewTemplates(nil)
	require.NoError(t, err)
	langs := tmpl.Languages()
	assert.Equal(t, "en", langs[0])
	assert.Subset(t, langs, []string{"en", "de", "fr", "es", "ja"})
	for _, lang := range langs {
		c, err := tmpl.Render(lang, mail.Data{Code: "ABCDE12345", Link: "https://x.example/s?ref=ABCDE12345&a=<b>"})
		require.NoError(t, err, lang)
		assert.Equal(t, lang, c.Language)
		assert.NotEmpty(t, c.Subject)
		assert.NotContains(t, c.Subject, "\n")
		assert.Contains(t, c.Text, "ABCDE12345", lang)
		assert.Contains(t, c.Text, "https://x.example/s?ref=ABCDE12345&a=<b>", lang)
		assert.Contains(t, c.HTML, "ABCDE12345", lang)
		assert.Contains(t, c.HTML, `href="https://x.example/s?ref=ABCDE12345&amp;a=%3cb%3e"`, lang)
		assert.NotContains(t, c.HTML, "<b>", "HTML is escaped")
	}
	_, err = tmpl.Render("xx", mail.Data{})
	assert.Error(t, err)
}

func TestTemplateOverrides(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"de.txt": {Data: []byte(`{{define "subject"}}Hallo
  Welt{{end}}{{define "text"}}Code {{.Code}}{{end}}`)},
		"de.html": {Data: []byte(`<p>{{.Code}}</p>`)},
		"pt.txt":  {Data: []byte(`{{define "subject"}}Convite{{end}}{{define "text"}}Código {{.Code}}{{end}}`)},
		"pt.html": {Data: []byte(`<p>{{.Code}}</p>`)},
	}
	tmpl, err := mail.NewTemplates(fsys)
	require.NoError(t, err)
	c, err := tmpl.Render("de", mail.Data{Code: "C"})
	require.NoError(t, err)
	assert.Equal(t, "Hallo Welt", c.Subject, "line breaks in a subject are folded")
	assert.Equal(t, "Code C", c.Text)
	tag, _ := mail.ParseLanguage("pt-BR")
	assert.Equal(t, "pt", tmpl.Match(tag))
	tag, _ = mail.ParseLanguage("fr")
	assert.Equal(t, "fr", tmpl.Match(tag), "embedded languages stay")

}

func TestLinkTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct{ tmpl, code, want string }{
		{"https://app.example.com/signup?ref={code}", "ABC123", "https://app.example.com/signup?ref=ABC123"},
		{"https://app.example.com/signup?ref={code}", "A&B=C D", "https://app.example.com/signup?ref=A%26B%3DC+D"},
		{"https://app.example.com/r/{code}/start", "A/B?C", "https://app.example.com/r/A%2FB%3FC/start"},
		{"http://localhost:8080/signup?x=1&ref={code}#top", "Z9", "http://localhost:8080/signup?x=1&ref=Z9#top"},
	}
	for _, tt := range tests {
		lt, err := mail.ParseLinkTemplate(tt.tmpl)
		require.NoError(t, err, tt.tmpl)
		assert.Equal(t, tt.want, lt.Link(tt.code))
	}
	for _, bad := range []string{"", "https://x.example/", "/signup?ref={code}", "ftp://x.example/{code}", "javascript:alert({code})", "https://x.example/{code}/{code}"} {
		_, err := mail.ParseLinkTemplate(bad)
		assert.Error(t, err, bad)
	}
	u, err := mail.ParseUnsubscribeTemplate("https://app.example.com/v1/unsubscribe/{token}")
	require.NoError(t, err)
	assert.Equal(t, "https://app.example.com/v1/unsubscribe/a-b_c", u.Link("a-b_c"))
	for _, bad := range []string{"https://app.example.com/u/{code}", "https://x.example/{token}{token}", "/u/{token}"} {
		_, err := mail.ParseUnsubscribeTemplate(bad)
		assert.Error(t, err, bad)
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	for from, want := range map[string]string{
		"Acme <no-reply@acme.example>": "<id1@acme.example>",
		"no-reply@acme.example":        "<id1@acme.example>",
		"nobody":                       "<id1@referralkit.invalid>",
	} {
		assert.Equal(t, want, mail.Message{ID: "id1", From: from}.MessageID())
	}
	assert.True(t, errors.Is(errors.Join(mail.ErrPermanent), mail.ErrPermanent))
}

func TestLanguagesAreSorted(t *testing.T) {
	t.Parallel()
	// Map iteration order differs between runs; the matcher's order, which
	// breaks its ties, must not.
	for range 20 {
		tpl, err := mail.NewTemplates(nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"en", "de", "es", "fr", "ja"}, tpl.Languages())
	}
}
