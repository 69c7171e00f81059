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

// Render renders the invite d in lang, a name from Templates.Match. d.Link
// is set from the link template and d.Code; a Link given is overwritten, so
// every email carries a link built one way.
func (r *Renderer) Render(lang string, d Data) (Content, error) {
	d.Link = r.link.Link(d.Code)
	return r.t.Render(lang, d)
}
