package main

import (
	"crypto/tls"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/referralkit/referralkit/mail/smtp"
	"github.com/referralkit/referralkit/mail/smtp/smtptest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/sqlite"
)

// testApp is Teamboard served on 127.0.0.1 with a real SQLite file and a
// real SMTP server.
type testApp struct {
	url    string
	app    *app
	db     *sql.DB
	mail   *smtptest.Server
	alice  int64
	before []string // the host's schema and rows before referralkit came
}

const alicePassword = "down the rabbit hole"

// startApp makes the database as the app had it before it adopted
// referralkit (its tables, Alice, a team invite), then starts the app on it.
func startApp(t *testing.T) *testApp {
	t.Helper()
	ctx := t.Context()
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "teamboard.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	alice, err := createUser(ctx, db, "alice@teamboard.example", "Alice Liddell", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO invites (team, email, invited_by, created_at)
		VALUES ('Design', 'dodo@example.com', ?, '2025-05-04 03:02:01')`, alice); err != nil {
		t.Fatal(err)
	}
	before := hostTables(t, db)

	mailServer := smtptest.New(t, smtptest.Options{}) // STARTTLS, as a real submission server
	mailer, err := smtp.New(smtp.Config{
		Host:      mailServer.Host(),
		Port:      mailServer.Port(),
		TLSConfig: &tls.Config{RootCAs: mailServer.RootCAs()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mailer.Close() })

	// Listen first: the links in the emails need the address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	baseURL := "http://" + ln.Addr().String()
	a, err := newApp(ctx, config{
		DB:      db,
		Mailer:  mailer,
		BaseURL: baseURL,
		From:    "Teamboard <no-reply@teamboard.example>",
		Logger:  slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewUnstartedServer(a)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return &testApp{url: baseURL, app: a, db: db, mail: mailServer, alice: alice, before: before}
}

// signIn signs in through the login form and returns a client that keeps
// the session cookie, as a browser would.
func (ta *testApp) signIn(t *testing.T, email, password string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(ta.url+"/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /login: status %d, want 303", resp.StatusCode)
	}
	i := slices.IndexFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == sessionCookie })
	if i < 0 {
		t.Fatalf("POST /login set no %s cookie", sessionCookie)
	}
	if c := resp.Cookies()[i]; !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || len(c.Value) < 20 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax and a long random value", c)
	}
	c.CheckRedirect = nil
	return c
}

// invite posts an invite for userID as the browser's fetch in the home
// page does; fetchSite and origin are the headers the browser adds.
func (ta *testApp) invite(t *testing.T, c *http.Client, userID, email, fetchSite, origin string) int {
	t.Helper()
	req, err := http.NewRequest("POST", ta.url+"/v1/users/"+userID+"/referral-invites",
		strings.NewReader(fmt.Sprintf(`{"email":%q,"language":"en"}`, email)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", fetchSite)
	req.Header.Set("Origin", origin)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", url, resp.StatusCode)
	}
	return string(body)
}

func TestReferralFlow(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	ctx := t.Context()
	aliceID := strconv.FormatInt(ta.alice, 10)

	alice := ta.signIn(t, "alice@teamboard.example", alicePassword)
	if got := ta.invite(t, alice, aliceID, "friend@example.com", "same-origin", ta.url); got != http.StatusCreated {
		t.Fatalf("invite: status %d, want 201", got)
	}

	// Delivery is inline: the message is at the server once the 201 is.
	msgs := ta.mail.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"friend@example.com"}) {
		t.Fatalf("messages %+v, want one to friend@example.com", msgs)
	}
	msg, err := smtptest.Parse(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Alice Liddell wants you on Teamboard"; msg.Subject != want {
		t.Errorf("subject %q, want %q", msg.Subject, want)
	}
	for part, body := range map[string]string{"text": msg.Text, "html": msg.HTML} {
		if !strings.Contains(body, "Alice Liddell uses Teamboard") {
			t.Errorf("%s body does not name Alice and Teamboard:\n%s", part, body)
		}
	}
	link := regexp.MustCompile(regexp.QuoteMeta(ta.url) + `/signup\?ref=[A-Za-z0-9]+`).FindString(msg.Text)
	if link == "" {
		t.Fatalf("text body has no sign-up link to %s:\n%s", ta.url, msg.Text)
	}
	if !strings.Contains(msg.HTML, `href="`+link+`"`) {
		t.Errorf("html body does not link to %s:\n%s", link, msg.HTML)
	}
	// Alice's page offers the same link to share herself.
	if page := get(t, alice, ta.url+"/"); !strings.Contains(page, link) {
		t.Errorf("Alice's page does not show her share link %s:\n%s", link, page)
	}

	// The friend follows the link and signs up with its code.
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	code := u.Query().Get("ref")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	friend := &http.Client{Jar: jar}
	if page := get(t, friend, link); !strings.Contains(page, `name="ref" value="`+code+`"`) {
		t.Fatalf("sign-up page does not carry the code %s on:\n%s", code, page)
	}
	resp, err := friend.PostForm(ta.url+"/signup", url.Values{
		"ref": {code}, "name": {"Bill Lizard"}, "email": {"Friend@Example.com"}, "password": {"chimney sweep"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello, Bill Lizard") {
		t.Fatalf("after sign-up: status %d, want 200 and Bill's home page:\n%s", resp.StatusCode, body)
	}

	// Alice is credited, in the store and in the app's own users table.
	stats, err := ta.app.referrals.Stats(ctx, "", aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (referral.Stats{Invited: 1, Sent: 1, Accepted: 1, Redeemed: 1}); stats != want {
		t.Errorf("Alice's stats %+v, want %+v", stats, want)
	}
	var referredBy sql.NullInt64
	if err := ta.db.QueryRowContext(ctx, `SELECT referred_by FROM users WHERE email = 'friend@example.com'`).Scan(&referredBy); err != nil {
		t.Fatal(err)
	}
	if !referredBy.Valid || referredBy.Int64 != ta.alice {
		t.Errorf("Bill's referred_by = %v, want Alice's id %d", referredBy, ta.alice)
	}

	// The host's tables are as they were; the store's are all referral_.
	if after := hostTables(t, ta.db); !slices.Equal(after, ta.before) {
		t.Errorf("the host's tables changed:\nbefore %q\nafter  %q", ta.before, after)
	}
	others := dump(t, ta.db, `SELECT name FROM sqlite_schema WHERE type = 'table'
		AND name NOT IN ('users', 'invites', 'schema_migrations') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if len(others) == 0 {
		t.Error("the store made no tables")
	}
	for _, name := range others {
		if !strings.HasPrefix(name, `"referral_`) { // quoted by dump
			t.Errorf("store table %s is not prefixed referral_", name)
		}
	}
}

// TestUnsubscribe: the invite carries the one-click headers and the same
// link in both bodies; the link's page changes nothing, the POST a mail
// provider sends unsubscribes, and then another user's invite to the
// address is answered 201 but not sent.
func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	carol, err := createUser(t.Context(), ta.db, "carol@teamboard.example", "Carol", "caterpillar")
	if err != nil {
		t.Fatal(err)
	}
	alice := ta.signIn(t, "alice@teamboard.example", alicePassword)
	if got := ta.invite(t, alice, strconv.FormatInt(ta.alice, 10), "friend@example.com", "same-origin", ta.url); got != http.StatusCreated {
		t.Fatalf("invite: status %d, want 201", got)
	}
	msgs := ta.mail.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	msg, err := smtptest.Parse(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	header := msg.Header.Get("List-Unsubscribe")
	link, ok := strings.CutPrefix(strings.TrimSuffix(header, ">"), "<"+ta.url+"/v1/unsubscribe/")
	if !ok || link == "" || !strings.HasSuffix(header, ">") {
		t.Fatalf("List-Unsubscribe %q, want <%s/v1/unsubscribe/TOKEN>", header, ta.url)
	}
	link = ta.url + "/v1/unsubscribe/" + link
	if got := msg.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q, want List-Unsubscribe=One-Click", got)
	}
	if !strings.Contains(msg.Text, link) || !strings.Contains(msg.HTML, `href="`+link+`"`) {
		t.Errorf("the bodies do not link to %s:\n%s\n%s", link, msg.Text, msg.HTML)
	}

	if page := get(t, http.DefaultClient, link); !strings.Contains(page, `<form method="post">`) {
		t.Errorf("GET %s: no confirmation form:\n%s", link, page)
	}
	resp, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click POST: status %d, want 200", resp.StatusCode)
	}

	c := ta.signIn(t, "carol@teamboard.example", "caterpillar")
	if got := ta.invite(t, c, strconv.FormatInt(carol, 10), "Friend@example.com", "same-origin", ta.url); got != http.StatusCreated {
		t.Errorf("Carol's invite: status %d, want 201 as for any invite", got)
	}
	if n := len(ta.mail.Messages()); n != 1 {
		t.Errorf("%d messages, want still 1: the address unsubscribed", n)
	}
}

func TestInviteRefused(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	aliceID := strconv.FormatInt(ta.alice, 10)
	carol, err := createUser(t.Context(), ta.db, "carol@teamboard.example", "Carol", "caterpillar")
	if err != nil {
		t.Fatal(err)
	}
	alice := ta.signIn(t, "alice@teamboard.example", alicePassword)
	for _, tc := range []struct {
		name              string
		client            *http.Client
		userID            string
		fetchSite, origin string
		want              int
	}{
		{"no session cookie", http.DefaultClient, aliceID, "same-origin", ta.url, http.StatusUnauthorized},
		{"for another user", alice, strconv.FormatInt(carol, 10), "same-origin", ta.url, http.StatusForbidden},
		{"from another site", alice, aliceID, "cross-site", "https://evil.example", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ta.invite(t, tc.client, tc.userID, "friend@example.com", tc.fetchSite, tc.origin); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
	if n := len(ta.mail.Messages()); n != 0 {
		t.Errorf("%d messages sent, want none", n)
	}
}

func TestSignupWithUnknownCode(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	resp, err := http.PostForm(ta.url+"/signup", url.Values{
		"ref": {"NOSUCHCODE"}, "name": {"Dodo"}, "email": {"dodo@example.com"}, "password": {"caucus race"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var referredBy sql.NullInt64
	if err := ta.db.QueryRowContext(t.Context(), `SELECT referred_by FROM users WHERE email = 'dodo@example.com'`).Scan(&referredBy); err != nil {
		t.Fatalf("the sign-up did not stand: %v", err)
	}
	if referredBy.Valid {
		t.Errorf("referred_by = %d, want NULL", referredBy.Int64)
	}
}

// hostTables returns the schema of the app's own tables (their columns,
// indexes and triggers) and the rows of invites and schema_migrations.
func hostTables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	var out []string
	for _, table := range []string{"users", "invites", "schema_migrations"} {
		out = append(out, dump(t, db, `SELECT * FROM pragma_table_info(?)`, table)...)
	}
	out = append(out, dump(t, db, `SELECT type, name, sql FROM sqlite_schema
		WHERE tbl_name IN ('users', 'invites', 'schema_migrations') ORDER BY name`)...)
	out = append(out, dump(t, db, `SELECT * FROM invites ORDER BY id`)...)
	return append(out, dump(t, db, `SELECT * FROM schema_migrations ORDER BY version`)...)
}

// formatRow joins a row's values, strings quoted.
func formatRow(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			parts[i] = strconv.Quote(v)
		case []byte:
			parts[i] = strconv.Quote(string(v))
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	return strings.Join(parts, " | ")
}

// dump returns each row of the query's result, formatted by formatRow.
func dump(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, formatRow(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
