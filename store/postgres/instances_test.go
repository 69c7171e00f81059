package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/referralkit/referralkit/mail/mailtest"
	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/postgres"
)

// testApp is the client id every request of these tests authenticates as.
const testApp = "0190a5e4-2b7c-7e4a-9b1e-3f6d2c8a4b10"

// instance is one app instance: a handler on a store with a pool of its own.
type instance struct {
	h     *referral.Handler
	route http.Handler
}

// newInstance returns an instance on store that queues invites, delivered
// through mailer by its workers (Run), and allows limit invites per referrer.
func newInstance(t *testing.T, store *postgres.Store, mailer referral.Mailer, limit int) instance {
	t.Helper()
	h, err := referral.New(referral.Config{
		Auth: referral.AuthenticatorFunc(func(*http.Request, string) (referral.Principal, error) {
			return referral.Principal{AppID: testApp, Method: "api-key", KeyID: "test"}, nil
		}),
		Store:                 store,
		Recipients:            store,
		UnsubscribeURL:        "https://example.com/v1/unsubscribe/{token}",
		Mailer:                mailer,
		From:                  "Referrals <no-reply@example.com>",
		SignupURL:             "https://example.com/signup?ref={code}",
		Delivery:              referral.Queued,
		MaxInvitesPerReferrer: limit,
		WorkerBatch:           3,
		PollInterval:          20 * time.Millisecond,
		Logger:                slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(referral.Pattern, h)
	return instance{h: h, route: mux}
}

// post sends an invite of email on behalf of user and returns the status.
func (in instance) post(user, email string) int {
	body := `{"email": "` + email + `", "language": "en"}`
	r := httptest.NewRequest(http.MethodPost, "/v1/users/"+user+"/referral-invites", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	in.route.ServeHTTP(w, r)
	return w.Code
}

// TestTwoInstances runs two handlers, each with its own store and pool, and
// two queued workers per handler on one database, as two app instances
// would: limits hold across both, and every invite is delivered once.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	serverURL(t)
	const limit = 5
	cfg := newSchema(t)

	// Both instances start at once on an empty schema: the migrations run
	// once.
	stores := make([]*postgres.Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		pool := newPool(t, cfg.Copy())
		wg.Go(func() { stores[i], errs[i] = postgres.New(t.Context(), pool) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])

	mailer := &mailtest.Recorder{}
	instances := []instance{
		newInstance(t, stores[0], mailer, limit),
		newInstance(t, stores[1], mailer, limit),
	}
	ctx, stop := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	for _, in := range instances {
		for range 2 {
			workers.Go(func() { in.h.Run(ctx) })
		}
	}
	defer func() { stop(); workers.Wait() }()

	// Each case sends its requests at once, alternating between the
	// instances, and says how many may be accepted.
	racer, repeater := uuid.NewString(), uuid.NewString()
	type request struct{ user, email string }
	var (
		reqs     []request
		expected = map[string]int{} // accepted invites per referrer
	)
	for i := range 40 { // one referrer racing the limit
		reqs = append(reqs, request{racer, fmt.Sprintf("racer%d@example.com", i)})
	}
	expected[racer] = limit
	for range 10 { // one address racing the cooldown
		reqs = append(reqs, request{repeater, "same@example.com"})
	}
	expected[repeater] = 1
	for i := range 20 { // referrers within their limits
		user := uuid.NewString()
		for j := range 3 { // each address once: the recipient limit is 3
			reqs = append(reqs, request{user, fmt.Sprintf("friend%d-%d@example.com", i, j)})
		}
		expected[user] = 3
	}

	codes := make([]int, len(reqs))
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			codes[i] = instances[i%2].post(r.user, r.email)
		})
	}
	close(start)
	wg.Wait()

	accepted := map[string]int{}
	total := 0
	for i, code := range codes {
		require.Contains(t, []int{http.StatusCreated, http.StatusTooManyRequests}, code, "request %d", i)
		if code == http.StatusCreated {
			accepted[reqs[i].user]++
			total++
		}
	}
	assert.Equal(t, expected, accepted, "201s per referrer")

	// The workers of both instances deliver every invite; wait for them,
	// generously, then stop them.
	deadline := time.Now().Add(time.Minute)
	for len(mailer.Messages()) < total && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	workers.Wait()

	sent := map[string]int{}
	for _, m := range mailer.Messages() {
		sent[m.MessageID()]++
	}
	rows, err := newPool(t, cfg.Copy()).Query(context.Background(),
		`SELECT id, referrer_id, status, attempts FROM referral_invites`)
	require.NoError(t, err)
	type row struct {
		ID, Referrer, Status string
		Attempts             int
	}
	stored, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	require.Len(t, stored, total, "one invite per 201")
	require.Len(t, sent, total, "one message per invite")
	perReferrer := map[string]int{}
	for _, inv := range stored {
		perReferrer[inv.Referrer]++
		assert.Equal(t, "sent", inv.Status, "invite %s", inv.ID)
		assert.Equal(t, 1, inv.Attempts, "invite %s was attempted more than once", inv.ID)
		assert.Equal(t, 1, sent["<"+inv.ID+"@example.com>"], "messages of invite %s", inv.ID)
	}
	assert.Equal(t, expected, perReferrer, "stored invites per referrer")
}

// TestConcurrentFirstInvitesYieldOneCode: first invites of one user sent at
// once to two instances race to make the user's code; all are accepted and
// share one code.
func TestConcurrentFirstInvitesYieldOneCode(t *testing.T) {
	t.Parallel()
	serverURL(t)
	cfg := newSchema(t)
	var instances []instance
	for range 2 {
		s, err := postgres.New(t.Context(), newPool(t, cfg.Copy()))
		require.NoError(t, err)
		instances = append(instances, newInstance(t, s, &mailtest.Recorder{}, -1))
	}
	const n = 100
	user := uuid.NewString()
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = instances[i%2].post(user, fmt.Sprintf("p%d@example.com", i))
		})
	}
	close(start)
	wg.Wait()
	for i, status := range statuses {
		assert.Equal(t, http.StatusCreated, status, "request %d", i)
	}
	var invites, codes int
	require.NoError(t, newPool(t, cfg.Copy()).QueryRow(t.Context(),
		`SELECT count(*), count(DISTINCT code) FROM referral_invites WHERE referrer_id = $1`, user).Scan(&invites, &codes))
	assert.Equal(t, n, invites)
	assert.Equal(t, 1, codes, "one user, one code")
}
