package mail_test

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
)

// The Renderer's output must equal a full render for every language, link
// shape and code, including templates that transform or test the code.
func TestRendererEqualsFullRender(t *testing.T) {
	t.Parallel()
	odd := fstest.MapFS{
		"it.txt":  {Data: []byte(`{{define "subject"}}Invito {{printf "%.3s" .Code}}{{end}}{{define "text"}}{{.Code}} {{.Link}}{{end}}`)},
		"it.html": {Data: []byte(`<a href="{{.Link}}">{{.Code}}</a>`)},
		"nl.txt":  {Data: []byte(`{{define "subject"}}{{if eq .Code "ABC"}}vip{{else}}uitnodiging{{end}}{{end}}{{define "text"}}{{.Code}}{{end}}`)},
		"nl.html": {Data: []byte(`<b>{{.Code}}</b>`)},
		// Replaces an embedded language.
		"en.txt":  {Data: []byte(`{{define "subject"}}Hi {{printf "%.3s" .Code}}{{end}}{{define "text"}}{{.Link}}{{end}}`)},
		"en.html": {Data: []byte(`<i>{{.Code}}</i>`)},
	}
	tmpl, err := mail.NewTemplates(odd)
	require.NoError(t, err)
	for _, linkTmpl := range []string{
		"https://acme.example/signup?ref={code}",
		"https://acme.example/r/{code}?a=1&b=<2>",
	} {
		link, err := mail.ParseLinkTemplate(linkTmpl)
		require.NoError(t, err)
		r, err := mail.NewRenderer(tmpl, link)
		require.NoError(t, err)
		for _, lang := range tmpl.Languages() {
			for _, code := range []string{"ABCDEFGHJK", "0123456789", "ABC", "a&b<c>", ""} {
				want, err := tmpl.Render(lang, mail.Data{Code: code, Link: link.Link(code)})
				require.NoError(t, err)
				got, err := r.Render(lang, mail.Data{Code: code, Link: "https://ignored.example/"})
				require.NoError(t, err)
				assert.Equal(t, want, got, "%s %s %q", linkTmpl, lang, code)
			}
		}
	}
}
