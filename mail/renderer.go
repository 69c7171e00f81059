package mail

// Renderer renders invites for one sign-up link template. It is safe for
// concurrent use.
type Renderer struct {
	t    *Templates
	link LinkTemplate
}

// NewRenderer returns a Renderer of t's languages with links from link.
func NewRenderer(t *Templates, link LinkTemplate) (*Renderer, error) {
	return &Renderer{t: t, link: link}, nil
}

// Render renders the invite with code in lang, a name from Templates.Match.
func (r *Renderer) Render(lang, code string) (Content, error) {
	return r.t.Render(lang, Data{Code: code, Link: r.link.Link(code)})
}
