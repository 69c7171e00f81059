package mail

import "strings"

// Renderer renders invites for one sign-up link template. Template
// execution is most of the cost of an invite, so for the embedded templates,
// which use the code and link only as plain values, it renders each
// language once with a stand-in code and afterwards only puts the real code
// in: a code of digits and upper-case letters needs no escaping in any
// context, and the link around it does not change with the code. Templates
// from an fs.FS may do anything with the code (cut it, test it), so they
// are rendered in full each time. It is safe for concurrent use.
type Renderer struct {
	t       *Templates
	link    LinkTemplate
	stamped map[string]Content // language -> content with standIn for the code
}

// standIn and its check twin are shaped like codes, so they escape as a
// real code would, and unlike anything a template says on its own.
const (
	standIn      = "Q7RKSTANDIN0CODE"
	standInCheck = "Q7RKSTANDIN1CODE"
)

// NewRenderer returns a Renderer of t's languages with links from link.
func NewRenderer(t *Templates, link LinkTemplate) (*Renderer, error) {
	r := &Renderer{t: t, link: link, stamped: map[string]Content{}}
	for _, lang := range t.names {
		if !t.langs[lang].embedded {
			continue
		}
		a, err := t.Render(lang, Data{Code: standIn, Link: link.Link(standIn)})
		if err != nil {
			return nil, err
		}
		b, err := t.Render(lang, Data{Code: standInCheck, Link: link.Link(standInCheck)})
		if err != nil {
			return nil, err
		}
		if stampable(a, b) {
			r.stamped[lang] = a
		}
	}
	return r, nil
}

// stampable reports whether swapping the stand-in in a yields b exactly: a
// check that the embedded templates keep their promise.
func stampable(a, b Content) bool {
	swap := func(s string) string { return strings.ReplaceAll(s, standIn, standInCheck) }
	return strings.Contains(a.Text+a.HTML, standIn) &&
		swap(a.Subject) == b.Subject && swap(a.Text) == b.Text && swap(a.HTML) == b.HTML
}

// Render renders the invite with code in lang, a name from Templates.Match.
func (r *Renderer) Render(lang, code string) (Content, error) {
	c, ok := r.stamped[lang]
	if !ok || !plainCode(code) {
		return r.t.Render(lang, Data{Code: code, Link: r.link.Link(code)})
	}
	c.Subject = strings.ReplaceAll(c.Subject, standIn, code)
	c.Text = strings.ReplaceAll(c.Text, standIn, code)
	c.HTML = strings.ReplaceAll(c.HTML, standIn, code)
	return c, nil
}

// plainCode reports whether code is non-empty digits and upper-case ASCII
// letters only.
func plainCode(code string) bool {
	for i := 0; i < len(code); i++ {
		if c := code[i]; !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return code != ""
}
