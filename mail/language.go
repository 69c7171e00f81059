package mail

import (
	"errors"

	"golang.org/x/text/language"
)

// maxLanguageLen bounds a language field; RFC 5646 asks implementations to
// handle tags of at least 35 characters, and real ones are far shorter.
const maxLanguageLen = 64

// ErrBadLanguage is returned by [ParseLanguage] for a malformed value.
var ErrBadLanguage = errors.New("mail: malformed language")

// ParseLanguage reads a language field as the userdocks API does: a BCP 47
// tag ("en", "de-AT", "pt-BR"), or an upper-case ISO 3166-1 alpha-2 country
// code ("DE", "US", "AT") standing for that country's main language. A tag
// that is well-formed but unknown is accepted (it will match no template and
// fall back to the default); a malformed one is ErrBadLanguage.
func ParseLanguage(s string) (language.Tag, error) {
	if s == "" || len(s) > maxLanguageLen {
		return language.Und, ErrBadLanguage
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return language.Und, ErrBadLanguage
		}
	}
	if len(s) == 2 && isUpper(s[0]) && isUpper(s[1]) {
		if region, err := language.ParseRegion(s); err == nil && region.IsCountry() {
			tag, _ := language.Compose(region)
			base, _ := tag.Base() // the country's likely language: DE -> de, US -> en
			return language.Compose(base, region)
		}
		// Not a country ("EN"): read it as a tag, which ignores case.
	}
	tag, err := language.Parse(s)
	var unknown language.ValueError
	if err != nil && !errors.As(err, &unknown) {
		return language.Und, ErrBadLanguage
	}
	// A well-formed tag with an unknown subtag ("zz") is still a language
	// the caller may name; it matches no template.
	return tag, nil
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
