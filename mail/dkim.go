package mail

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	gomail "github.com/wneessen/go-mail"
)

// minRSABits is the smallest RSA key DKIM signs with: RFC 8301 requires
// verifiers to accept 1024 bits, but providers treat those as weak.
const minRSABits = 2048

// DKIM signs messages for one domain with one key (RFC 6376): relaxed
// header and body canonicalization, rsa-sha256 or ed25519-sha256 (RFC
// 8463). The smtp and maildir transports sign every message with it when
// their DKIM field is set. A DKIM is safe for concurrent use; do not change
// its fields once it is in use.
type DKIM struct {
	Domain   string // the signing domain (d=), e.g. "example.com"
	Selector string // the selector (s=); the key is published at TXTName
	// Signer is the private key: *rsa.PrivateKey of at least 2048 bits or
	// ed25519.PrivateKey, or a crypto.Signer (a key in an HSM, say) whose
	// public key is one of those.
	Signer crypto.Signer
}

// NewDKIM returns a DKIM for domain and selector with the private key in
// keyPEM: a PEM block "RSA PRIVATE KEY" (PKCS #1) or "PRIVATE KEY" (PKCS
// #8, RSA or Ed25519), unencrypted. RSA keys under 2048 bits are refused.
func NewDKIM(domain, selector string, keyPEM []byte) (*DKIM, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("mail: dkim: no PEM block in the key")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("mail: dkim: PEM block %q: want \"RSA PRIVATE KEY\" or \"PRIVATE KEY\"", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("mail: dkim: reading the key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("mail: dkim: a %T cannot sign", key)
	}
	d := &DKIM{Domain: domain, Selector: selector, Signer: signer}
	if _, err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

// TXTName returns the DNS name to publish TXTRecord at,
// "selector._domainkey.domain".
func (d *DKIM) TXTName() string {
	return d.Selector + "._domainkey." + d.Domain
}

// TXTRecord returns the DNS TXT record that publishes the public key,
// "v=DKIM1; k=rsa; p=..." or "v=DKIM1; k=ed25519; p=...", or "" if the
// key is not one DKIM signs with. An RSA record is longer than the 255
// octets of one DNS string: publish it as one record of several strings,
// which zone tools do when given the whole value.
func (d *DKIM) TXTRecord() string {
	k, err := d.check()
	if err != nil {
		return ""
	}
	var p []byte
	switch pub := d.Signer.Public().(type) {
	case *rsa.PublicKey:
		p, _ = x509.MarshalPKIXPublicKey(pub) // cannot fail for an RSA key
	case ed25519.PublicKey:
		p = pub // RFC 8463: the raw 32 octets
	}
	return "v=DKIM1; k=" + k + "; p=" + base64.StdEncoding.EncodeToString(p)
}

// Sign returns raw, a complete message with CRLF line ends, with a
// DKIM-Signature header field prepended.
//
// h= lists From, To, Subject, Date, Message-ID, MIME-Version,
// Content-Type, List-Unsubscribe and List-Unsubscribe-Post, each twice,
// and always all of them: RFC 6376 section 5.4 lets a signer list a header
// once more than the message has, and a verifier then fails the signature
// if one is added. So no one on the way can put a second From, Subject or
// unsubscribe link of theirs above the signed one (which many clients
// show), nor slip one into a message that had none.
func (d *DKIM) Sign(raw []byte) ([]byte, error) {
	if _, err := d.check(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(raw) + 512)
	err := dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{
		Domain:                 d.Domain,
		Selector:               d.Selector,
		Signer:                 d.Signer,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             oversigned,
	})
	if err != nil {
		return nil, fmt.Errorf("mail: dkim: signing: %w", err)
	}
	return out.Bytes(), nil
}

// oversigned is h=: every header twice (see Sign).
var oversigned = func() []string {
	var keys []string
	for _, k := range []string{
		"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
		string(headerListUnsubscribe), string(headerListUnsubscribePost),
	} {
		keys = append(keys, k, k)
	}
	return keys
}()

// SignMsg signs g, a message from [Build], in place: it adds the
// DKIM-Signature header that [DKIM.Sign] computes over g's bytes, so that
// what g.WriteTo writes afterwards is those same bytes, signed. That holds
// because go-mail renders a message the same way every time: Build sets
// the Date and Message-ID, go-mail keeps the MIME boundaries of the first
// rendering, and DKIM-Signature is not itself a signed header. The smtp and
// maildir transports call it; the tests there verify what they deliver.
func (d *DKIM) SignMsg(g *gomail.Msg) error {
	var raw bytes.Buffer
	if _, err := g.WriteTo(&raw); err != nil {
		return fmt.Errorf("mail: dkim: rendering: %w", err)
	}
	n := raw.Len()
	signed, err := d.Sign(raw.Bytes())
	if err != nil {
		return err
	}
	name, value, _ := strings.Cut(string(signed[:len(signed)-n]), ":")
	// go-mail writes "name: value\r\n"; value keeps go-msgauth's folding.
	g.SetGenHeaderPreformatted(gomail.Header(name), strings.TrimSpace(value))
	return nil
}

// check returns the key type, "rsa" or "ed25519", or why d cannot sign.
func (d *DKIM) check() (string, error) {
	switch {
	case !isDNSName(d.Domain):
		return "", fmt.Errorf("mail: dkim: Domain %q is not a domain name", d.Domain)
	case !isDNSName(d.Selector):
		return "", fmt.Errorf("mail: dkim: Selector %q is not a DNS label", d.Selector)
	case d.Signer == nil:
		return "", errors.New("mail: dkim: no Signer")
	}
	switch pub := d.Signer.Public().(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < minRSABits {
			return "", fmt.Errorf("mail: dkim: RSA key of %d bits: want at least %d", bits, minRSABits)
		}
		return "rsa", nil
	case ed25519.PublicKey:
		return "ed25519", nil
	default:
		return "", fmt.Errorf("mail: dkim: a %T key: want RSA or Ed25519", pub)
	}
}

// isDNSName accepts dot-separated labels of letters, digits, '-' and '_'
// (selectors and _domainkey use underscores), each 1 to 63 octets.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
