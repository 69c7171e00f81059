package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	texttemplate "text/template"

	"golang.org/x/text/language"
)

//go:embed templates
var embedded embed.FS

// DefaultLanguage is used when no template matches the requested language.
const DefaultLanguage = "en"

// Data is what the templates can use.
type Data struct {
	Code            string // the referral code
	Link            string // the sign-up link carrying the code
	ReferrerName    string // the referrer's display name; empty when unknown
	ProductName     string // the host's product, e.g. "Acme"; never empty when the handler renders
	UnsubscribeLink string // the recipient's one-click unsubscribe link; empty until that feature exists
}

// Content is a rendered message body in one language.
type Content struct {
	Language string
	Subject  string
	Text     string
	HTML     string
}

// Templates renders invites in the best-matching language. It is safe for
// concurrent use.
type Templates struct {
	langs   map[string]templateSet
	names   []string // in matcher order; names[0] is the default
	matcher language.Matcher
}

type templateSet struct {
	text     *texttemplate.Template
	html     *htmltemplate.Template
	embedded bool // shipped with the package, not from overrides
}

// NewTemplates returns the embedded templates with the languages in
// overrides added or replacing the embedded ones. overrides may be nil. Each
// language is NAME.txt (defining "subject" and "text") and NAME.html, where
// NAME is a BCP 47 tag such as "de" or "pt-BR".
func NewTemplates(overrides fs.FS) (*Templates, error) {
	t := &Templates{langs: map[string]templateSet{}}
	sub, err := fs.Sub(embedded, "templates")
	if err != nil {
		return nil, err
	}
	if err := t.load(sub, true); err != nil {
		return nil, err
	}
	if overrides != nil {
		if err := t.load(overrides, false); err != nil {
			return nil, err
		}
	}
	if _, ok := t.langs[DefaultLanguage]; !ok {
		return nil, fmt.Errorf("mail: no %q templates", DefaultLanguage)
	}
	// The matcher breaks ties by order: sorted, so that a tag matches the
	// same template in every process.
	others := slices.Sorted(maps.Keys(t.langs))
	others = slices.DeleteFunc(others, func(name string) bool { return name == DefaultLanguage })
	t.names = append([]string{DefaultLanguage}, others...)
	tags := make([]language.Tag, len(t.names))
	for i, name := range t.names {
		tags[i] = language.MustParse(name)
	}
	t.matcher = language.NewMatcher(tags)
	return t, nil
}

func (t *Templates) load(fsys fs.FS, embedded bool) error {
	files, err := fs.Glob(fsys, "*.txt")
	if err != nil {
		return fmt.Errorf("mail: templates: %w", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".txt")
		tag, err := language.Parse(name)
		if err != nil {
			return fmt.Errorf("mail: template %s: not a language tag", f)
		}
		set := templateSet{embedded: embedded}
		if set.text, err = texttemplate.ParseFS(fsys, f); err != nil {
			return fmt.Errorf("mail: %w", err)
		}
		for _, part := range []string{"subject", "text"} {
			if set.text.Lookup(part) == nil {
				return fmt.Errorf("mail: template %s defines no %q", f, part)
			}
		}
		htmlFile := name + ".html"
		if set.html, err = htmltemplate.ParseFS(fsys, htmlFile); err != nil {
			return fmt.Errorf("mail: %w", err)
		}
		t.langs[tag.String()] = set
	}
	return nil
}

// Languages lists the template languages, the default first.
func (t *Templates) Languages() []string { return append([]string(nil), t.names...) }

// Match returns the template language that best serves tag: "de-AT" and
// "gsw" get "de", a tag with no close template gets DefaultLanguage.
func (t *Templates) Match(tag language.Tag) string {
	_, i, conf := t.matcher.Match(tag)
	if conf == language.No {
		return DefaultLanguage
	}
	return t.names[i]
}

// Render renders the templates of lang, a name from Match.
func (t *Templates) Render(lang string, d Data) (Content, error) {
	set, ok := t.langs[lang]
	if !ok {
		return Content{}, fmt.Errorf("mail: no templates for %q", lang)
	}
	var b bytes.Buffer
	c := Content{Language: lang}
	if err := set.text.ExecuteTemplate(&b, "subject", d); err != nil {
		return Content{}, fmt.Errorf("mail: subject: %w", err)
	}
	// A subject is one header line: fold any line breaks a template made.
	c.Subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := set.text.ExecuteTemplate(&b, "text", d); err != nil {
		return Content{}, fmt.Errorf("mail: text: %w", err)
	}
	c.Text = strings.TrimLeft(b.String(), "\n")
	b.Reset()
	if err := set.html.Execute(&b, d); err != nil {
		return Content{}, fmt.Errorf("mail: html: %w", err)
	}
	c.HTML = b.String()
	if c.Subject == "" {
		return Content{}, errors.New("mail: empty subject")
	}
	return c, nil
}
