package referral

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// UnsubscribePattern is the route of the one-click unsubscribe links
// (Handler.Unsubscribe), in net/http's pattern syntax. Mount it without a
// method, like Pattern.
const UnsubscribePattern = "/v1/unsubscribe/{token}"

// keys are the handler's secrets, each derived from Config.Secret (or the
// store's secret) for one use, so that one never stands in for another.
type keys struct {
	address     []byte // keys Invite.AddressHash
	unsubscribe []byte // signs unsubscribe tokens
	cursor      []byte // signs the cursors of invite listings
}

func deriveKeys(secret []byte) keys {
	derive := func(use string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("referralkit " + use))
		return m.Sum(nil)
	}
	return keys{address: derive("address hash v1"), unsubscribe: derive("unsubscribe token v1"), cursor: derive("invite cursor v1")}
}

// addressHash is the keyed hash of a case-folded address (an EmailKey):
// what suppression and the recipient limit match on, and all that is left
// of an address after retention.
func (h *Handler) addressHash(emailKey string) string {
	m := hmac.New(sha256.New, h.keys.address)
	m.Write([]byte(emailKey))
	return hex.EncodeToString(m.Sum(nil))
}

// hashOf is an invite's AddressHash, or for one recorded before address
// hashes, the hash of its EmailKey ("" if that was erased too).
func (h *Handler) hashOf(hash, emailKey string) string {
	if hash == "" && emailKey != "" {
		return h.addressHash(emailKey)
	}
	return hash
}

// An unsubscribe token is the invite's id and a MAC of it, 16 bytes each,
// in unpadded base64url: 43 characters that name the invite (and so the
// app and the address) without showing either, and that cannot be forged
// without the secret. It stays good while the invite's row exists.
const tokenLen = 43

var tokenEncoding = base64.RawURLEncoding.Strict()

func (h *Handler) tokenMAC(id []byte) []byte {
	m := hmac.New(sha256.New, h.keys.unsubscribe)
	m.Write(id)
	return m.Sum(nil)[:16]
}

// unsubscribeToken returns the token of invite id (a UUID).
func (h *Handler) unsubscribeToken(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return "" // invite ids are UUIDs: only a broken store gets here
	}
	return tokenEncoding.EncodeToString(append(u[:], h.tokenMAC(u[:])...))
}

// parseToken returns the invite id of a token the handler made.
func (h *Handler) parseToken(token string) (string, bool) {
	if len(token) != tokenLen {
		return "", false
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) != 32 || !hmac.Equal(b[16:], h.tokenMAC(b[:16])) {
		return "", false
	}
	u, err := uuid.FromBytes(b[:16])
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// unsubscribeLink is the link an invite's email carries.
func (h *Handler) unsubscribeLink(inviteID string) string {
	return h.unsubscribe.Link(h.unsubscribeToken(inviteID))
}

// Unsubscribe returns the handler of UnsubscribePattern, the target of the
// List-Unsubscribe header and of the unsubscribe line of every invite. It
// needs no credentials: the token is one.
//   - GET shows a page with a button to confirm, and changes nothing: mail
//     scanners follow links.
//   - POST with the RFC 8058 form body List-Unsubscribe=One-Click (what
//     mail clients send, and the page's button) suppresses the address for
//     the invite's app: 200 and a page saying so, idempotent.
//   - A token that is forged, truncated or of no invite: 404.
//
// The pages are short HTML in the invite's language; a client that asks
// for application/json gets the envelope instead.
func (h *Handler) Unsubscribe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.newRequest(w, r, "unsubscribe", "unsubscribe").unsubscribe()
	})
}

func (q *request) unsubscribe() {
	h, r := q.h, q.r
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		q.w.Header().Set("Allow", "GET, HEAD, POST")
		q.page(http.StatusMethodNotAllowed, "", pageError, "method not allowed; use GET or POST", nil)
		return
	}
	id, ok := h.parseToken(h.cfg.PathValue(r, "token"))
	if !ok {
		q.page(http.StatusNotFound, "", pageNotFound, errUnsubscribeNotFound, nil)
		return
	}
	rcpt, err := h.cfg.Recipients.InviteRecipient(r.Context(), id)
	switch {
	case errors.Is(err, ErrInviteNotFound):
		q.page(http.StatusNotFound, "", pageNotFound, errUnsubscribeNotFound, nil)
		return
	case err != nil:
		q.page(http.StatusInternalServerError, "", pageError, errInternal, err)
		return
	}
	hash := h.hashOf(rcpt.AddressHash, rcpt.EmailKey)
	if hash == "" { // recorded before address hashes, and since erased
		q.page(http.StatusNotFound, "", pageNotFound, errUnsubscribeNotFound, nil)
		return
	}
	if r.Method != http.MethodPost {
		q.page(http.StatusOK, rcpt.Language, pageConfirm, "POST List-Unsubscribe=One-Click to this URL to unsubscribe.", nil)
		return
	}
	if !oneClickBody(q.w, r) {
		q.page(http.StatusBadRequest, rcpt.Language, pageError, "the body must be the form List-Unsubscribe=One-Click", nil)
		return
	}
	err = h.cfg.Recipients.Suppress(r.Context(), Suppression{
		AppID: rcpt.AppID, AddressHash: hash, Reason: ReasonUnsubscribed, CreatedAt: h.cfg.Now().UTC(),
	})
	if err != nil {
		q.page(http.StatusInternalServerError, rcpt.Language, pageError, errInternal, err)
		return
	}
	q.page(http.StatusOK, rcpt.Language, pageDone, "Unsubscribed.", nil)
}

const errUnsubscribeNotFound = "unsubscribe link not found"

// oneClickBody reports whether r's body is RFC 8058's form:
// List-Unsubscribe=One-Click, url-encoded or multipart, at most 16 KiB.
func oneClickBody(w http.ResponseWriter, r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/x-www-form-urlencoded" && mt != "multipart/form-data") {
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseMultipartForm(MaxBodyBytes); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return false
	}
	return r.PostForm.Get("List-Unsubscribe") == "One-Click"
}

// Kinds of unsubscribe page.
const (
	pageConfirm = iota
	pageDone
	pageNotFound
	pageError
)

// page answers with the page of kind in lang (a template language; its
// base language picks the texts, English when there are none), or, for a
// client that asks for JSON, the envelope with text.
func (q *request) page(status int, lang string, kind int, text string, cause error) {
	if status >= 400 {
		q.logFailure(status, text, cause)
	}
	if wantsJSON(q.r) {
		writeEnvelope(q.w, status, text)
		return
	}
	base, _, _ := strings.Cut(lang, "-")
	t, ok := pageTexts[base]
	if !ok {
		base, t = "en", pageTexts["en"]
	}
	data := struct {
		Lang, Title, Text, Button string
		Confirm                   bool
	}{Lang: base, Title: t.title, Confirm: kind == pageConfirm, Button: t.button}
	switch kind {
	case pageConfirm:
		data.Text = strings.ReplaceAll(t.confirm, "{product}", q.h.cfg.ProductName)
	case pageDone:
		data.Text = strings.ReplaceAll(t.done, "{product}", q.h.cfg.ProductName)
	case pageNotFound:
		data.Text = t.notFound
	default:
		data.Text = t.failed
	}
	hd := q.w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	// The token is in the URL: never hand it on.
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	q.w.WriteHeader(status)
	if q.r.Method != http.MethodHead {
		_ = unsubscribePage.Execute(q.w, data)
	}
}

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

var unsubscribePage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}button{font:inherit;padding:.5rem 1rem}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Confirm}}<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">{{.Button}}</button></form>{{end}}
</body></html>
`))

// pageTexts are the unsubscribe pages' words, by base language; {product}
// is Config.ProductName.
var pageTexts = map[string]struct{ title, confirm, button, done, notFound, failed string }{
	"en": {"Unsubscribe", "Stop invitations from {product} to this address?", "Unsubscribe",
		"Done: {product} will send no more invitations to this address.",
		"This unsubscribe link is not valid.", "Something went wrong. Please try again later."},
	"de": {"Abmelden", "Keine Einladungen von {product} mehr an diese Adresse?", "Abmelden",
		"Erledigt: {product} sendet keine Einladungen mehr an diese Adresse.",
		"Dieser Abmeldelink ist ungültig.", "Etwas ist schiefgelaufen. Bitte versuche es später noch einmal."},
	"fr": {"Se désabonner", "Ne plus recevoir d'invitations de {product} à cette adresse ?", "Se désabonner",
		"C'est fait : {product} n'enverra plus d'invitations à cette adresse.",
		"Ce lien de désabonnement n'est pas valide.", "Une erreur s'est produite. Veuillez réessayer plus tard."},
	"es": {"Darse de baja", "¿Dejar de recibir invitaciones de {product} en esta dirección?", "Darse de baja",
		"Listo: {product} no enviará más invitaciones a esta dirección.",
		"Este enlace para darse de baja no es válido.", "Algo salió mal. Inténtalo de nuevo más tarde."},
	"ja": {"配信停止", "このアドレスへの{product}からの招待メールを停止しますか？", "配信を停止する",
		"配信を停止しました。今後{product}からこのアドレスに招待メールは届きません。",
		"この配信停止リンクは無効です。", "エラーが発生しました。しばらくしてからもう一度お試しください。"},
}
