package sqlite

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/referral"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "referral.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func limitInvite(i int, hash string, at time.Time) referral.Invite {
	return referral.Invite{
		ID:            fmt.Sprintf("0190b0c0-0000-7000-8000-%012d", i),
		AppID:         "app",
		ReferrerID:    fmt.Sprintf("referrer-%d", i),
		Email:         fmt.Sprintf("x%d@example.com", i),
		EmailKey:      fmt.Sprintf("x%d@example.com", i),
		AddressHash:   hash,
		Language:      "en",
		Code:          "A1B0C2D3E4",
		Status:        referral.StatusPending,
		NextAttemptAt: at,
		CreatedAt:     at,
		UpdatedAt:     at,
	}
}

// The recipient limit, the LIMIT of its subquery a parameter: 0 and
// negative are off, huge never trips, n trips at the n+1st invite.
func TestRecipientLimitBounds(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		max        int
		suppressAt int // index of the first suppressed invite, -1 none of 6
	}{
		{0, -1}, {-1, -1}, {math.MinInt, -1}, {1, 1}, {3, 3}, {math.MaxInt32, -1}, {math.MaxInt, -1},
	} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			s := openTemp(t)
			lim := referral.Limits{MaxPerRecipient: tc.max, RecipientWindow: 30 * 24 * time.Hour}
			got := -1
			for i := range 6 {
				stored, _, err := s.RecordInvite(context.Background(), limitInvite(i, "h", t0.Add(time.Duration(i)*time.Minute)), lim)
				require.NoError(t, err)
				if stored.Status == referral.StatusSuppressed && got < 0 {
					got = i
					assert.Equal(t, referral.ReasonRecipientLimit, stored.LastError)
				}
			}
			assert.Equal(t, tc.suppressAt, got)
		})
	}
}

// Negative / zero max in ClaimDue and ClaimEvents never reach the SQL
// (LIMIT -1 would mean "no limit" to SQLite).
func TestClaimNonPositiveMax(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		_, _, err := s.RecordInvite(context.Background(), limitInvite(i, "", t0), referral.Limits{})
		require.NoError(t, err)
	}
	for _, m := range []int{0, -1, math.MinInt} {
		got, err := s.ClaimDue(context.Background(), t0.Add(time.Hour), time.Minute, m)
		require.NoError(t, err)
		assert.Empty(t, got, "max %d", m)
	}
	got, err := s.ClaimDue(context.Background(), t0.Add(time.Hour), time.Minute, math.MaxInt)
	require.NoError(t, err)
	assert.Len(t, got, 3)
}

// stmtCount is how many statements the write connection holds prepared.
func stmtCount(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	require.NoError(t, s.write(context.Background(), func(c *wconn) error {
		n = len(c.stmts)
		return nil
	}))
	return n
}

// ClaimDue's max is its caller's: were it written into the SQL text, each
// distinct max would be a statement of its own, prepared on the write
// connection and kept until the connection closes.
func TestStatementsDoNotGrowWithClaimSizes(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := s.ClaimDue(context.Background(), t0, time.Minute, 1)
	require.NoError(t, err)
	before := stmtCount(t, s)
	for m := 1; m <= 300; m++ {
		_, err := s.ClaimDue(context.Background(), t0, time.Minute, m)
		require.NoError(t, err)
	}
	after := stmtCount(t, s)
	t.Logf("prepared statements on the write connection: %d before, %d after 300 distinct ClaimDue max values", before, after)
	assert.LessOrEqual(t, after-before, 10, "statement cache grows with every distinct max")
}

// Likewise the recipient limit, Limits.MaxPerRecipient, an argument of
// RecordInvite.
func TestStatementsDoNotGrowWithRecipientLimits(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before := stmtCount(t, s)
	for i := 1; i <= 200; i++ {
		lim := referral.Limits{MaxPerRecipient: i, RecipientWindow: time.Hour}
		_, _, err := s.RecordInvite(context.Background(), limitInvite(i, "h", t0.Add(time.Duration(i)*time.Millisecond)), lim)
		require.NoError(t, err)
	}
	after := stmtCount(t, s)
	t.Logf("prepared statements: %d before, %d after 200 distinct MaxPerRecipient", before, after)
	assert.LessOrEqual(t, after-before, 20, "statement cache grows with every distinct MaxPerRecipient")
}

// BenchmarkSubqueryLimit runs the recipient check as prepared, its LIMIT a
// parameter cast to INTEGER, against the same statement with a bare
// parameter, which SQLite prepares again at every run (recipientSQL's
// comment):
//
//	go test -run '^$' -bench SubqueryLimit ./store/sqlite/
func BenchmarkSubqueryLimit(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "referral.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bare := strings.Replace(recipientSQL, "LIMIT CAST(?3 AS INTEGER)", "LIMIT ?3", 1)
	if bare == recipientSQL {
		b.Fatal("recipientSQL has no LIMIT CAST(?3 AS INTEGER)")
	}
	since := millis(time.Now().Add(-time.Hour))
	for _, bc := range []struct{ name, query string }{{"Cast", recipientSQL}, {"Bare", bare}} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := s.db.PrepareContext(context.Background(), bc.query)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			i := 0
			for b.Loop() {
				var reason string
				if err := st.QueryRow("app", fmt.Sprint(i), 3, since).Scan(&reason); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
