package mail_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail"
	"github.com/referralkit/referralkit/mail/smtp/smtptest"
)

const unsubscribeURL = "https://app.example.com/v1/unsubscribe/2b7f9c4e1d0a8b6c5e3f7a9d1c2b4e6f"

func invite(unsubscribe string) mail.Message {
	return mail.Message{
		ID:             "0195f3a4-7c1e-7d2a-9b3c-4d5e6f708192",
		From:           "Referrals <no-reply@example.com>",
		To:             "friend@example.org",
		Date:           time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC),
		Subject:        "Your invitation",
		Text:           "Your code: K7M2-QX9P\nUnsubscribe: " + unsubscribe + "\n",
		HTML:           `<p>Your code: <b>K7M2-QX9P</b></p>`,
		Language:       "en",
		UnsubscribeURL: unsubscribe,
	}
}

// render builds m and returns its bytes as the transports send them.
func render(t *testing.T, m mail.Message) []byte {
	t.Helper()
	g, err := mail.Build(m)
	require.NoError(t, err)
	var b bytes.Buffer
	_, err = g.WriteTo(&b)
	require.NoError(t, err)
	return b.Bytes()
}

func TestBuildUnsubscribeHeaders(t *testing.T) {
	t.Parallel()
	raw := render(t, invite(unsubscribeURL))
	// On the wire: RFC 8058 needs the POST header's value verbatim, and
	// the URL in angle brackets, unencoded; go-mail may fold the line
	// before the "<" (RFC 5322 folding), never inside it.
	assert.Regexp(t, `\r\nList-Unsubscribe:(\r\n)? <`+regexp.QuoteMeta(unsubscribeURL)+`>\r\n`, string(raw))
	assert.Contains(t, string(raw), "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
	p, err := smtptest.Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, []string{"<" + unsubscribeURL + ">"}, p.Header["List-Unsubscribe"])
	assert.Equal(t, []string{"List-Unsubscribe=One-Click"}, p.Header["List-Unsubscribe-Post"])
}

func TestBuildWithoutUnsubscribeURL(t *testing.T) {
	t.Parallel()
	p, err := smtptest.Parse(render(t, invite("")))
	require.NoError(t, err)
	assert.NotContains(t, p.Header, "List-Unsubscribe")
	assert.NotContains(t, p.Header, "List-Unsubscribe-Post")
}

func TestBuildLongUnsubscribeURL(t *testing.T) {
	t.Parallel()
	long := "https://app.example.com/v1/unsubscribe/" + strings.Repeat("a", 200)
	p, err := smtptest.Parse(render(t, invite(long)))
	require.NoError(t, err)
	// go-mail may fold before the URL but never inside it.
	assert.Equal(t, "<"+long+">", p.Header.Get("List-Unsubscribe"))
}

func TestBuildRefusesBadUnsubscribeURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"https://app.example.com/u\r\nBcc: victim@example.net",
		"https://app.example.com/u\nX: y",
		"https://app.example.com/a b",
		"https://app.example.com/a\tb",
		"https://app.example.com/<a>",
		"https://app.example.com/a>, <https://evil.example/",
		"https://app.example.com/ü",
		"https://app.example.com/\x00",
		"ftp://app.example.com/u",
		"mailto:unsubscribe@example.com",
		"javascript:alert(1)",
		"/v1/unsubscribe/abc",
		"//app.example.com/u",
		"https:///u",
		"https:opaque",
		"https://app.example.com/%zz",
		"https://app.example.com/" + strings.Repeat("a", 1000),
	} {
		_, err := mail.Build(invite(u))
		assert.ErrorIs(t, err, mail.ErrBadMessage, "%q", u)
	}
	_, err := mail.Build(invite("http://localhost:8080/v1/unsubscribe/abc"))
	assert.NoError(t, err, "plain http is allowed (the server's default public URL)")
}
