package mail_test

import (
	"embed"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
)

// bundled is this package's own templates folder, embedded the way a host
// embeds its own.
//
//go:embed templates
var bundled embed.FS

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

const okTxt = `{{define "subject"}}Invito a {{.ProductName}}{{end}}{{define "text"}}{{.Code}} {{.Link}}{{end}}`

// Every broken override is refused by both constructors, with an error
// naming the file at fault.
func TestTemplatesAreChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string // in the error
	}{
		{"html without txt", fstest.MapFS{"it.html": file(`x`)}, "it.html"},
		{"txt without html", fstest.MapFS{"it.txt": file(okTxt)}, "it.txt"},
		{"no subject", fstest.MapFS{"it.txt": file(`{{define "text"}}x{{end}}`), "it.html": file(`x`)}, `it.txt defines no "subject"`},
		{"no text", fstest.MapFS{"it.txt": file(`{{define "subject"}}x{{end}}`), "it.html": file(`x`)}, `it.txt defines no "text"`},
		{"not a language", fstest.MapFS{"english.txt": file(okTxt), "english.html": file(`x`)}, "english.txt"},
		{"same language twice", fstest.MapFS{"de.txt": file(okTxt), "de.html": file(`x`), "DE.txt": file(okTxt), "DE.html": file(`x`)}, "DE.txt and de.txt"},
		{"txt does not parse", fstest.MapFS{"it.txt": file(`{{define "subject"}}{{.Nope`), "it.html": file(`x`)}, "it.txt"},
		{"html does not parse", fstest.MapFS{"it.txt": file(okTxt), "it.html": file(`{{.Code`)}, "it.html"},
		{"subject fails", fstest.MapFS{"it.txt": file(`{{define "subject"}}{{.Nope}}{{end}}{{define "text"}}x{{end}}`), "it.html": file(`x`)}, "it.txt"},
		{"text fails", fstest.MapFS{"it.txt": file(`{{define "subject"}}x{{end}}{{define "text"}}{{.Code.Nope}}{{end}}`), "it.html": file(`x`)}, "it.txt"},
		{"html fails", fstest.MapFS{"it.txt": file(okTxt), "it.html": file(`{{.Nope}}`)}, "it.html"},
		{"fails only with an unsubscribe link", fstest.MapFS{"it.txt": file(okTxt), "it.html": file(`{{if .UnsubscribeLink}}{{.Nope}}{{end}}`)}, "it.html"},
		{"subject empty without a referrer", fstest.MapFS{"it.txt": file(`{{define "subject"}}{{.ReferrerName}}{{end}}{{define "text"}}x{{end}}`), "it.html": file(`x`)}, "it.txt: empty subject"},
		{"no language", fstest.MapFS{}, "no language"},
		{"only other files", fstest.MapFS{"README.md": file(`x`)}, "no language"},
		{"the wrong folder", fstest.MapFS{"mail/templates/it.txt": file(okTxt), "mail/templates/it.html": file(`x`)}, "no language"},
		{"embed layout, broken", fstest.MapFS{"templates/it.txt": file(okTxt)}, "it.txt"},
	}
	for _, tt := range tests {
		_, err := mail.NewTemplates(tt.fsys)
		require.Error(t, err, tt.name)
		assert.Contains(t, err.Error(), tt.want, tt.name)
		assert.True(t, strings.HasPrefix(err.Error(), "mail: "), tt.name)
		_, err = mail.NewTemplatesOnly(tt.fsys, "it")
		require.Error(t, err, tt.name)
		assert.Contains(t, err.Error(), tt.want, tt.name)
	}
}

// A file system whose root holds only templates/, as //go:embed templates
// makes it, is read from that folder.
func TestTemplatesEmbedLayout(t *testing.T) {
	t.Parallel()
	tmpl, err := mail.NewTemplates(fstest.MapFS{"templates/it.txt": file(okTxt), "templates/it.html": file(`x`)})
	require.NoError(t, err)
	assert.Equal(t, []string{"en", "de", "es", "fr", "it", "ja"}, tmpl.Languages())

	only, err := mail.NewTemplatesOnly(bundled, "de")
	require.NoError(t, err)
	assert.Equal(t, []string{"de", "en", "es", "fr", "ja"}, only.Languages())
}

func TestNewTemplatesOnly(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"pt-br.txt": file(okTxt), "pt-br.html": file(`<p>{{.Code}}</p>`),
		"nl.txt": file(okTxt), "nl.html": file(`<p>{{.Code}}</p>`),
	}
	tmpl, err := mail.NewTemplatesOnly(fsys, "pt-BR")
	require.NoError(t, err)
	assert.Equal(t, "pt-BR", tmpl.Default())
	assert.Equal(t, []string{"pt-BR", "nl"}, tmpl.Languages(), "no embedded language")
	for in, want := range map[string]string{"nl-BE": "nl", "pt": "pt-BR", "en": "pt-BR", "de": "pt-BR", "zz": "pt-BR"} {
		tag, err := mail.ParseLanguage(in)
		require.NoError(t, err)
		assert.Equal(t, want, tmpl.Match(tag), in)
	}
	_, err = tmpl.Render("en", mail.Data{ProductName: "Acme"})
	assert.Error(t, err, "en is not served")

	full, err := mail.NewTemplates(nil)
	require.NoError(t, err)
	assert.Equal(t, "en", full.Default())

	for _, def := range []string{"en", "", "x!"} {
		_, err := mail.NewTemplatesOnly(fsys, def)
		assert.Error(t, err, "default %q", def)
	}
	_, err = mail.NewTemplatesOnly(nil, "en")
	assert.Error(t, err)
}

// The bundled emails say who invites to what, carry the code and the link,
// and add the unsubscribe line only when there is a link for it.
func TestBundledTemplatesArePersonal(t *testing.T) {
	t.Parallel()
	tmpl, err := mail.NewTemplates(nil)
	require.NoError(t, err)
	full := mail.Data{Code: "ABCDE12345", Link: "https://acme.example/s?ref=ABCDE12345",
		ReferrerName: "Alice Liddell", ProductName: "Acme Notes", UnsubscribeLink: "https://acme.example/u?t=tok"}
	anon := mail.Data{Code: full.Code, Link: full.Link, ProductName: full.ProductName}
	for _, lang := range tmpl.Languages() {
		c, err := tmpl.Render(lang, full)
		require.NoError(t, err, lang)
		for _, want := range []string{full.ReferrerName, full.ProductName} {
			assert.Contains(t, c.Subject, want, lang)
		}
		for _, want := range []string{full.ReferrerName, full.ProductName, full.Code, full.Link, full.UnsubscribeLink} {
			assert.Contains(t, c.Text, want, lang)
			assert.Contains(t, c.HTML, want, lang)
		}
		assert.Contains(t, c.HTML, `href="https://acme.example/u?t=tok"`, lang)
		assert.NotContains(t, strings.ToLower(c.Text), "click", lang)

		a, err := tmpl.Render(lang, anon)
		require.NoError(t, err, lang)
		assert.Contains(t, a.Subject, full.ProductName, lang)
		assert.NotEqual(t, c.Subject, a.Subject, lang)
		for _, want := range []string{full.ProductName, full.Code, full.Link} {
			assert.Contains(t, a.Text, want, lang)
			assert.Contains(t, a.HTML, want, lang)
		}
		// The line that carried the unsubscribe link is gone, words and all.
		var unsub string
		for line := range strings.Lines(c.Text) {
			if strings.Contains(line, full.UnsubscribeLink) {
				unsub = strings.TrimSpace(strings.Replace(line, full.UnsubscribeLink, "", 1))
			}
		}
		require.NotEmpty(t, unsub, lang)
		assert.NotContains(t, a.Text, unsub, lang)
		assert.NotContains(t, a.HTML, unsub, lang)
	}
}

// A referrer's name is the one field a stranger chooses: it must not add
// markup to the HTML nor a header line to the subject.
func TestReferrerNameIsEscaped(t *testing.T) {
	t.Parallel()
	tmpl, err := mail.NewTemplates(nil)
	require.NoError(t, err)
	for _, lang := range tmpl.Languages() {
		c, err := tmpl.Render(lang, mail.Data{Code: "C", Link: "https://x.example/?r=C", ProductName: "Acme",
			ReferrerName: `<script>x</script> & "Bob"`})
		require.NoError(t, err, lang)
		assert.NotContains(t, c.HTML, "<script>", lang)
		assert.Contains(t, c.HTML, `&lt;script&gt;x&lt;/script&gt; &amp; &#34;Bob&#34;`, lang)
		assert.Contains(t, c.Text, `<script>x</script> & "Bob"`, "%s: text is not HTML", lang)

		c, err = tmpl.Render(lang, mail.Data{Code: "C", Link: "https://x.example/?r=C", ProductName: "Acme",
			ReferrerName: "Alice\r\nBcc: victim@example.com"})
		require.NoError(t, err, lang)
		assert.NotContains(t, c.Subject, "\r", lang)
		assert.NotContains(t, c.Subject, "\n", lang)
		assert.Contains(t, c.Subject, "Alice Bcc: victim@example.com", lang)
		_, err = mail.Build(mail.Message{ID: "id1", From: "a@acme.example", To: "b@example.com", Subject: c.Subject, Text: c.Text, Language: lang})
		assert.NoError(t, err, lang)
	}
}
