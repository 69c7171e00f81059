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

// DefaultLanguage is the fallback of [NewTemplates] when no template matches
// the requested language.
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
	txtFile, htmlFile string // as named in their file system, for errors
	text              *texttemplate.Template
	html              *htmltemplate.Template
}

// samples are the data every template is rendered with when it is loaded,
// so that a broken template is an error at start-up rather than at the
// first invite: one with every field set, one with the optional ones empty.
var samples = []Data{
	{Code: "ABCDEFGHJK", Link: "https://app.example.com/signup?ref=ABCDEFGHJK", ReferrerName: "Alice Example",
		ProductName: "Acme", UnsubscribeLink: "https://app.example.com/unsubscribe?t=sample"},
	{Code: "ABCDEFGHJK", Link: "https://app.example.com/signup?ref=ABCDEFGHJK", ProductName: "Acme"},
}

// NewTemplates returns the embedded templates with the languages in
// overrides added or replacing the embedded ones; DefaultLanguage is the
// fallback. overrides may be nil; when it is not, it must hold at least one
// language. See the package documentation for the layout and the checks.
func NewTemplates(overrides fs.FS) (*Templates, error) {
	sub, err := fs.Sub(embedded, "templates")
	if err != nil {
		return nil, err
	}
	langs, err := load(sub)
	if err != nil {
		return nil, err
	}
	if overrides != nil {
		more, err := load(overrides)
		if err != nil {
			return nil, err
		}
		maps.Copy(langs, more)
	}
	return newTemplates(langs, DefaultLanguage)
}

// NewTemplatesOnly returns the templates in fsys alone, for a host that
// serves only its own languages: the embedded ones are left out. Requests
// that match none of them get defaultLanguage, which must be one of fsys's
// languages. fsys is checked as NewTemplates checks its overrides.
func NewTemplatesOnly(fsys fs.FS, defaultLanguage string) (*Templates, error) {
	if fsys == nil {
		return nil, errors.New("mail: NewTemplatesOnly: nil file system")
	}
	langs, err := load(fsys)
	if err != nil {
		return nil, err
	}
	tag, err := language.Parse(defaultLanguage)
	if err != nil {
		return nil, fmt.Errorf("mail: default language %q is not a language tag", defaultLanguage)
	}
	return newTemplates(langs, tag.String())
}

func newTemplates(langs map[string]templateSet, def string) (*Templates, error) {
	if _, ok := langs[def]; !ok {
		return nil, fmt.Errorf("mail: no templates for the default language %q", def)
	}
	// The matcher breaks ties by order: sorted, so that a tag matches the
	// same template in every process.
	others := slices.Sorted(maps.Keys(langs))
	others = slices.DeleteFunc(others, func(name string) bool { return name == def })
	t := &Templates{langs: langs, names: append([]string{def}, others...)}
	tags := make([]language.Tag, len(t.names))
	for i, name := range t.names {
		tags[i] = language.MustParse(name)
	}
	t.matcher = language.NewMatcher(tags)
	return t, nil
}

// load reads and checks the languages of fsys, which holds them at its root
// or, laid out the //go:embed way, in its only entry, a templates folder.
func load(fsys fs.FS) (map[string]templateSet, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("mail: templates: %w", err)
	}
	if len(entries) == 1 && entries[0].IsDir() && entries[0].Name() == "templates" {
		if fsys, err = fs.Sub(fsys, "templates"); err != nil {
			return nil, fmt.Errorf("mail: templates: %w", err)
		}
		if entries, err = fs.ReadDir(fsys, "."); err != nil {
			return nil, fmt.Errorf("mail: templates: %w", err)
		}
	}
	files := map[string]bool{}
	for _, e := range entries {
		if ext := path.Ext(e.Name()); !e.IsDir() && (ext == ".txt" || ext == ".html") {
			files[e.Name()] = true
		}
	}
	langs := map[string]templateSet{}
	for _, f := range slices.Sorted(maps.Keys(files)) {
		name, ext := strings.TrimSuffix(f, path.Ext(f)), path.Ext(f)
		twin := name + ".html"
		if ext == ".html" {
			twin = name + ".txt"
		}
		if !files[twin] {
			return nil, fmt.Errorf("mail: template %s has no %s beside it", f, twin)
		}
		if ext == ".html" {
			continue // loaded with its .txt
		}
		tag, err := language.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("mail: template %s: %q is not a language tag", f, name)
		}
		if other, ok := langs[tag.String()]; ok {
			return nil, fmt.Errorf("mail: templates %s and %s are both language %s", other.txtFile, f, tag)
		}
		set, err := parse(fsys, f, twin)
		if err != nil {
			return nil, err
		}
		langs[tag.String()] = set
	}
	if len(langs) == 0 {
		return nil, errors.New("mail: templates: no language found (want NAME.txt and NAME.html at the root or in templates/)")
	}
	return langs, nil
}

// parse parses one language and renders it with every sample.
func parse(fsys fs.FS, txtFile, htmlFile string) (templateSet, error) {
	set := templateSet{txtFile: txtFile, htmlFile: htmlFile}
	var err error
	if set.text, err = texttemplate.ParseFS(fsys, txtFile); err != nil {
		return set, fmt.Errorf("mail: template %s: %w", txtFile, err)
	}
	for _, part := range []string{"subject", "text"} {
		if set.text.Lookup(part) == nil {
			return set, fmt.Errorf("mail: template %s defines no %q", txtFile, part)
		}
	}
	if set.html, err = htmltemplate.ParseFS(fsys, htmlFile); err != nil {
		return set, fmt.Errorf("mail: template %s: %w", htmlFile, err)
	}
	for _, d := range samples {
		if _, err := set.render(d); err != nil {
			return set, err
		}
	}
	return set, nil
}

// Languages lists the template languages, the default first.
func (t *Templates) Languages() []string { return append([]string(nil), t.names...) }

// Default returns the language served when no template matches:
// DefaultLanguage for NewTemplates, the one given to NewTemplatesOnly.
func (t *Templates) Default() string { return t.names[0] }

// Match returns the template language that best serves tag: "de-AT" and
// "gsw" get "de", a tag with no close template gets t.Default().
func (t *Templates) Match(tag language.Tag) string {
	_, i, conf := t.matcher.Match(tag)
	if conf == language.No {
		return t.Default()
	}
	return t.names[i]
}

// Render renders the templates of lang, a name from Match.
func (t *Templates) Render(lang string, d Data) (Content, error) {
	set, ok := t.langs[lang]
	if !ok {
		return Content{}, fmt.Errorf("mail: no templates for %q", lang)
	}
	c, err := set.render(d)
	if err != nil {
		return Content{}, err
	}
	c.Language = lang
	return c, nil
}

func (set templateSet) render(d Data) (Content, error) {
	var b bytes.Buffer
	var c Content
	if err := set.text.ExecuteTemplate(&b, "subject", d); err != nil {
		return Content{}, fmt.Errorf("mail: template %s: %w", set.txtFile, err)
	}
	// A subject is one header line: fold any line breaks a template or a
	// name made.
	c.Subject = strings.Join(strings.Fields(b.String()), " ")
	if c.Subject == "" {
		return Content{}, fmt.Errorf("mail: template %s: empty subject", set.txtFile)
	}
	b.Reset()
	if err := set.text.ExecuteTemplate(&b, "text", d); err != nil {
		return Content{}, fmt.Errorf("mail: template %s: %w", set.txtFile, err)
	}
	c.Text = strings.TrimLeft(b.String(), "\n")
	b.Reset()
	if err := set.html.Execute(&b, d); err != nil {
		return Content{}, fmt.Errorf("mail: template %s: %w", set.htmlFile, err)
	}
	c.HTML = b.String()
	return c, nil
}
