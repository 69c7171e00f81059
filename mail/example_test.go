package mail_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing/fstest"

	"github.com/referralkit/referralkit/mail"
)

func ExampleNewTemplates() {
	// A host adds Italian beside the embedded languages. A real host would
	// pass an embed.FS from "//go:embed templates" instead of a MapFS.
	overrides := fstest.MapFS{
		"it.txt": {Data: []byte(`{{define "subject"}}{{if .ReferrerName}}{{.ReferrerName}} ti invita su {{.ProductName}}{{else}}Un invito per {{.ProductName}}{{end}}{{end}}
{{define "text"}}Il tuo codice: {{.Code}}
{{.Link}}
{{end}}`)},
		"it.html": {Data: []byte(`<p>Il tuo codice: <strong>{{.Code}}</strong></p><p><a href="{{.Link}}">{{.Link}}</a></p>`)},
	}
	tmpl, err := mail.NewTemplates(overrides)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tmpl.Languages(), tmpl.Default())

	tag, _ := mail.ParseLanguage("it-CH")
	link, _ := mail.ParseLinkTemplate("https://acme.example/signup?ref={code}")
	r, _ := mail.NewRenderer(tmpl, link)
	c, err := r.Render(tmpl.Match(tag), mail.Data{Code: "K7M2Q9", ReferrerName: "Alice", ProductName: "Acme"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Language, c.Subject)
	fmt.Print(c.Text)

	// A template that fails with the sample data is refused when loaded.
	_, err = mail.NewTemplates(fstest.MapFS{"nl.txt": {Data: []byte(`{{define "subject"}}{{.Referrer}}{{end}}{{define "text"}}x{{end}}`)}, "nl.html": {Data: []byte(`x`)}})
	fmt.Println(err)
	// Output:
	// [en de es fr it ja] en
	// it Alice ti invita su Acme
	// Il tuo codice: K7M2Q9
	// https://acme.example/signup?ref=K7M2Q9
	// mail: template nl.txt: template: nl.txt:1:22: executing "subject" at <.Referrer>: can't evaluate field Referrer in type mail.Data
}

func ExampleNewDKIM() {
	// A real host reads the PEM file it generated once, e.g. with
	// "openssl genpkey -algorithm ed25519"; a fixed seed keeps this
	// example's output stable.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		fmt.Println(err)
		return
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	d, err := mail.NewDKIM("example.com", "invite2025", keyPEM)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Publish this TXT record, then pass d to smtp.Config.DKIM.
	fmt.Println(d.TXTName())
	fmt.Println(d.TXTRecord())
	// Output:
	// invite2025._domainkey.example.com
	// v=DKIM1; k=ed25519; p=6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=
}
