package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	netmail "net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail/smtp/smtptest"
	"github.com/referralkit/referralkit/store/sqlite"
)

// TestInlineInvitesSurviveACrash: the server is killed (SIGKILL) while
// inline invites are recorded but not yet sent; after a restart, every
// invite in the database is delivered, the cut-off ones by the worker once
// their lease has run out, and none is left pending or sent twice.
func TestInlineInvitesSurviveACrash(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	smtpd := smtptest.New(t, smtptest.Options{NoTLS: true})
	dir := t.TempDir()
	smtpURL := fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", smtpd.Port())
	creds := createKey(t, bin, dir)
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(dir, "referral.db")))
	require.NoError(t, err)
	defer db.Close()
	table := invitesTable(t, db)

	// A 2s send timeout: the cut-off invites' lease (twice that) runs out
	// soon after the restart.
	s := startServerIn(t, bin, dir, "-smtp", smtpURL, "-send-timeout", "2s")
	for i := range 3 {
		require.Equal(t, http.StatusCreated, postInviteAs(t, s.url, creds, userID(i), fmt.Sprintf("before%d@example.com", i)))
	}

	// The mail server stops answering: the burst's invites are recorded
	// and then wait for it, until the server is killed. Each to its own
	// address: one address gets at most 3 invites a month.
	smtpd.SetFault(smtptest.Fault{At: smtptest.AtMail, Hang: true, Times: -1})
	const burst = 20
	var requests sync.WaitGroup
	for i := range burst {
		requests.Go(func() { postInviteAs(t, s.url, creds, userID(100+i), fmt.Sprintf("burst%d@example.com", i)) })
	}
	deadline := time.Now().Add(1500 * time.Millisecond) // within the send timeout
	for time.Now().Before(deadline) && countInvites(t, db, table, "pending") < burst {
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, s.cmd.Process.Kill())
	<-s.done
	requests.Wait()
	stranded := countInvites(t, db, table, "pending")
	require.Positive(t, stranded, "the kill left no invite between recording and sending")
	t.Logf("%d invites stranded by the kill", stranded)

	smtpd.SetFault(smtptest.Fault{})
	s = startServerIn(t, bin, dir, "-smtp", smtpURL, "-send-timeout", "1s")
	assert.Eventually(t, func() bool { return countInvites(t, db, table, "pending") == 0 },
		15*time.Second, 50*time.Millisecond, "invites left pending after the restart")
	s.stop(t)

	var total int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+table).Scan(&total))
	assert.Equal(t, total, countInvites(t, db, table, "sent"), "every invite recorded is sent")
	delivered := map[string]int{}
	for _, m := range smtpd.Messages() {
		msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
		require.NoError(t, err)
		delivered[msg.Header.Get("Message-Id")]++
	}
	rows, err := db.Query(`SELECT id FROM ` + table)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		n := 0
		for msgID, k := range delivered {
			if strings.HasPrefix(msgID, "<"+id+"@") {
				n += k
			}
		}
		assert.Equal(t, 1, n, "messages delivered for invite %s", id)
	}
	require.NoError(t, rows.Err())
}

// invitesTable is the invites table's name, before or after the referral_
// prefix of DESIGN.md section 9.
func invitesTable(t *testing.T, db *sql.DB) string {
	t.Helper()
	// Opening the store once applies the schema.
	var name string
	require.Eventually(t, func() bool {
		return db.QueryRow(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('referral_invites', 'invites') ORDER BY name DESC`).Scan(&name) == nil
	}, 5*time.Second, 10*time.Millisecond, "no invites table")
	return name
}

func countInvites(t *testing.T, db *sql.DB, table, status string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+table+` WHERE status = ?`, status).Scan(&n))
	return n
}

// userID is the i-th of distinct referrers, so that a burst stays within
// the per-referrer limit.
func userID(i int) string {
	return fmt.Sprintf("6f1c2a3b-4d5e-4f60-8a7b-%012x", i)
}

// postInviteAs sends an invite for user with an API key and returns the
// status, or 0 when the request got no answer.
func postInviteAs(t *testing.T, url string, creds credentials, user, email string) int {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/users/"+user+"/referral-invites",
		strings.NewReader(`{"email":"`+email+`","language":"en"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-KEY", creds.APIKey)
	req.Header.Set("X-API-KEY-TYPE", "write")
	req.Header.Set("X-CLIENT-ID", creds.ClientID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
