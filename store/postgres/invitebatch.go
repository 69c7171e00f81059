package postgres

import (
	"context"
	"errors"
	"math"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

// Group commit of RecordInvite. A call that finds no other recording an
// invite records its own in a transaction of its own (recordOne), as
// before: a lone call never waits for a batch to fill. A call that finds
// others queues, and the queued calls are recorded as a batch, in one
// transaction of two round trips:
//
//  1. BEGIN; the advisory locks of every referrer and every address of the
//     batch, in one statement and in one order (lockBatchSQL); then one
//     statement that checks and inserts every invite of the batch
//     (recordBatchSQL), whose snapshot is taken after the locks;
//  2. COMMIT, once the rows of the callers who gave up meanwhile are
//     deleted.
//
// A batch starts when a lone call or a batch is done with its checks (so
// that the next batch's checks overlap with the COMMIT before), while
// fewer than maxChecking batches are before their COMMIT; and also as soon
// as eagerBatch calls queue, while fewer than maxBatches run: a batch
// takes what queued meanwhile.
//
// The checks of one statement do not see the rows it inserts, so a batch
// takes only invites whose referrers and addresses differ from those of
// the others in it: each invite's checks then read exactly what they would
// read alone, after the transactions before. An invite that shares either
// with one taken waits for the next batch. All locks are taken in the
// order of (namespace, hashed key), referrers' before addresses', as
// recordOne, Resend and Suppress take theirs, so no two transactions wait
// for each other in a circle.
//
// A caller whose context ends before its batch's COMMIT is sent leaves
// nothing: it is dropped from the batch if the batch has not been sent,
// and its row is deleted before the COMMIT otherwise; when every caller of
// a batch has left, the batch's context ends, which stops it wherever it
// waits. Once the COMMIT is about to be sent a caller waits for its
// outcome, as its invite may be stored by then. If the batch fails before
// its COMMIT (a bad row fails the statement), each of its invites is
// recorded again alone, and so is an invite that repeats an earlier one
// (an Idempotency-Key within its TTL: the replay, and step 1a's reclaim,
// are recordOne's), after the batch committed without it.

// maxInviteBatch bounds how many invites one batch records, so that its
// last caller does not wait for too many others' rows.
const maxInviteBatch = 64

// maxChecking, eagerBatch and maxBatches say when a batch starts (see
// above). Measured with BenchmarkRecordInvite (16 callers) on 2 cores:
// one batch before its COMMIT at a time, and none started early, left the
// server idle between round trips; batches of a few invites each spent
// more on their round trips and plans than they saved.
const (
	maxChecking = 2
	eagerBatch  = 6
	maxBatches  = 8
)

// inviteQueue holds the calls of RecordInvite waiting for a batch. It has
// no goroutine of its own: a goroutine runs each batch.
type inviteQueue struct {
	mu       sync.Mutex
	queue    []*inviteReq
	running  int // lone calls and batches recording invites
	checking int // of them, lone calls and batches before their COMMIT
	// waiting: queued calls whose callers have not been answered.
	waiting int
}

// A queued call's state, guarded by inviteQueue.mu.
const (
	reqQueued     = iota // waiting for a batch
	reqTaken             // in a batch whose COMMIT is not sent
	reqCommitting        // its batch's COMMIT is sent or about to be
	reqLeft              // the caller's context ended before the COMMIT
	reqDone              // out is its outcome
)

// inviteReq is one queued call of RecordInvite.
type inviteReq struct {
	inv   referral.Invite
	lim   referral.Limits
	done  chan struct{} // closed once out is set
	state int           // guarded by inviteQueue.mu
	batch *inviteBatch  // once taken
	out   batchOutcome
}

// batchOutcome is what a batch found for one invite: recordSQL's results.
type batchOutcome struct {
	// alone: the invite is to be recorded again by recordOne, as the batch
	// failed before its COMMIT or the invite repeats an earlier one.
	alone               bool
	err                 error // the COMMIT failed: the outcome is unknown
	windowFull, cooling *time.Time
	reason              *string
	inserted            bool
}

// inviteBatch is the invites one transaction records.
type inviteBatch struct {
	reqs   []*inviteReq
	live   int // callers still waiting, guarded by inviteQueue.mu
	ctx    context.Context
	cancel context.CancelFunc // when live drops to 0
}

// recordQueued records inv alone if no other call is recording one, else
// in the next batch.
func (s *Store) recordQueued(ctx context.Context, inv referral.Invite, lim referral.Limits) (referral.Invite, bool, error) {
	q := &s.invites
	q.mu.Lock()
	if q.running == 0 {
		q.running++
		q.checking++
		q.mu.Unlock()
		defer s.inviteStep(true, true)
		return s.recordOne(ctx, inv, lim)
	}
	if err := ctx.Err(); err != nil {
		q.mu.Unlock()
		return referral.Invite{}, false, wrap(ctx, "record invite", err)
	}
	r := &inviteReq{inv: inv, lim: lim, done: make(chan struct{})}
	q.queue = append(q.queue, r)
	q.waiting++
	var eb *inviteBatch
	if len(q.queue) >= eagerBatch && q.running < maxBatches {
		if eb = q.take(); eb != nil {
			q.checking++
			q.running++
		}
	}
	q.mu.Unlock()
	if eb != nil {
		go s.runBatch(eb)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if q.leave(r) {
			return referral.Invite{}, false, wrap(ctx, "record invite", ctx.Err())
		}
		<-r.done
	}
	o := r.out
	now := inv.CreatedAt
	switch {
	case o.alone:
		return s.recordOne(ctx, inv, lim)
	case o.err != nil:
		return referral.Invite{}, false, wrap(ctx, "record invite", o.err)
	case o.windowFull != nil:
		return referral.Invite{}, false, &referral.LimitError{RetryAfter: o.windowFull.Add(lim.Window).Sub(now)}
	case o.cooling != nil:
		return referral.Invite{}, false, &referral.LimitError{RetryAfter: o.cooling.Add(lim.Cooldown).Sub(now), Cooldown: true}
	case !o.inserted:
		return referral.Invite{}, false, errors.New("postgres: record invite: no check refused the invite, yet none was stored")
	case o.reason != nil:
		return storeimpl.Suppressed(inv, *o.reason), false, nil
	}
	return inv, false, nil
}

// leave withdraws r, whose caller's context ended, unless its batch's
// COMMIT is sent. It reports whether it did; if not, the caller waits
// for r.done.
func (q *inviteQueue) leave(r *inviteReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch r.state {
	case reqQueued:
		for i, x := range q.queue {
			if x == r {
				q.queue = append(q.queue[:i], q.queue[i+1:]...)
				break
			}
		}
		r.state = reqLeft
		q.waiting--
		return true
	case reqTaken:
		r.state = reqLeft
		q.waiting--
		r.batch.leave()
		return true
	case reqCommitting:
		r.batch.leave()
	}
	return false
}

// leave counts a caller of b who stopped waiting; guarded by
// inviteQueue.mu.
func (b *inviteBatch) leave() {
	if b.live--; b.live == 0 {
		b.cancel()
	}
}

// inviteStep records that the lone call or batch being checked is done
// with its checks (checked) and that a lone call or batch has ended
// (ended), and makes a batch of the queued calls if none is being
// checked now: each batch's checks overlap with the COMMIT of the one
// before, and a batch takes what queued while the one before was checked.
func (s *Store) inviteStep(checked, ended bool) {
	q := &s.invites
	q.mu.Lock()
	if checked {
		q.checking--
	}
	if ended {
		q.running--
	}
	var b *inviteBatch
	if q.checking < maxChecking {
		if b = q.take(); b != nil {
			q.checking++
			q.running++
		}
	}
	q.mu.Unlock()
	if b != nil {
		go s.runBatch(b)
	}
}

// batchKey is a referrer's or an address's key in its app.
type batchKey struct{ app, id string }

// take makes a batch of the oldest queued calls whose referrers and
// addresses are distinct, or returns nil if none is queued; guarded by
// q.mu.
func (q *inviteQueue) take() *inviteBatch {
	if len(q.queue) == 0 {
		return nil
	}
	b := &inviteBatch{}
	referrers := make(map[batchKey]struct{}, len(q.queue))
	addresses := make(map[batchKey]struct{}, len(q.queue))
	keep := q.queue[:0]
	for _, r := range q.queue {
		ref := batchKey{r.inv.AppID, r.inv.ReferrerID}
		addr := batchKey{r.inv.AppID, r.inv.AddressHash}
		_, sameReferrer := referrers[ref]
		_, sameAddress := addresses[addr]
		if len(b.reqs) == maxInviteBatch || sameReferrer || (r.inv.AddressHash != "" && sameAddress) {
			keep = append(keep, r)
			continue
		}
		referrers[ref] = struct{}{}
		if r.inv.AddressHash != "" {
			addresses[addr] = struct{}{}
		}
		r.state, r.batch = reqTaken, b
		b.reqs = append(b.reqs, r)
	}
	clear(q.queue[len(keep):])
	q.queue = keep
	b.live = len(b.reqs)
	// Not any caller's context: the batch is all of theirs.
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// runBatch records the invites of b and sets each caller's outcome.
func (s *Store) runBatch(b *inviteBatch) {
	checked := false
	defer func() { s.inviteStep(!checked, true) }()
	defer b.cancel()
	q := &s.invites
	q.mu.Lock()
	var reqs []*inviteReq
	for _, r := range b.reqs {
		if r.state == reqTaken {
			reqs = append(reqs, r)
		}
	}
	q.mu.Unlock()
	if len(reqs) == 0 {
		return
	}
	outs := make([]batchOutcome, len(reqs))
	ctx := b.ctx

	pb := &pgx.Batch{}
	pb.BeginTx(pgx.TxOptions{})
	// The generic plan: a custom one, planned for each batch's arrays,
	// costs more than it saves (the plan reads the same indexes).
	pb.Queue(`SET LOCAL plan_cache_mode = force_generic_plan`)
	pb.Queue(lockBatchSQL, batchLocks(reqs)...)
	pb.Queue(recordBatchSQL, batchArgs(reqs)...)
	br := s.pool.SendBatch(ctx, pb)
	tx := br.Tx()
	// A no-op once committed.
	defer tx.Rollback(context.Background())
	_, err := br.Exec() // BEGIN
	if err == nil {
		_, err = br.Exec() // SET LOCAL
	}
	if err == nil {
		_, err = br.Exec() // the locks
	}
	if err == nil {
		err = scanBatch(br, outs)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.finishBatch(reqs, func(o *batchOutcome) { *o = batchOutcome{alone: true} })
		return
	}

	// The callers who left: their rows go. Those who wait are committed
	// from now on, suppression events included.
	var (
		gone   []string
		events []referral.Event
		stay   []*inviteReq
		kept   []batchOutcome
	)
	q.mu.Lock()
	for i, r := range reqs {
		o := outs[i]
		if r.state != reqTaken {
			if o.inserted {
				gone = append(gone, r.inv.ID)
			}
			continue
		}
		r.state = reqCommitting
		if s.outbox && o.inserted && o.reason != nil {
			events = append(events, storeimpl.InviteEvent(referral.EventInviteSuppressed,
				storeimpl.Suppressed(r.inv, *o.reason), r.inv.CreatedAt))
		}
		stay, kept = append(stay, r), append(kept, o)
	}
	q.mu.Unlock()
	if len(stay) == 0 {
		return // rolled back
	}
	checked = true
	s.inviteStep(true, false)
	for _, ev := range events {
		if err = s.record(ctx, tx, ev); err != nil {
			break
		}
	}
	if err == nil && len(gone) > 0 {
		_, err = tx.Exec(ctx, `DELETE FROM referral_invites WHERE id = ANY($1::text[])`, gone)
	}
	if err != nil {
		s.finishBatch(stay, func(o *batchOutcome) { *o = batchOutcome{alone: true} })
		return
	}
	err = tx.Commit(ctx)
	i := 0
	s.finishBatch(stay, func(o *batchOutcome) {
		*o = kept[i]
		o.err = err
		i++
	})
}

// finishBatch sets the outcome of each of reqs with set, in order, and
// wakes their callers.
func (s *Store) finishBatch(reqs []*inviteReq, set func(o *batchOutcome)) {
	q := &s.invites
	q.mu.Lock()
	for _, r := range reqs {
		set(&r.out)
		if r.state != reqLeft {
			r.state = reqDone
			q.waiting--
		}
	}
	q.mu.Unlock()
	for _, r := range reqs {
		close(r.done)
	}
}

// lockBatchSQL takes the advisory locks of lockSQL for keys $2 (the app,
// "/", the referrer or the address) in namespaces $1, each once, in the
// order of (namespace, hashed key): the subquery's order, as OFFSET 0
// keeps it from being merged into the locking query.
const lockBatchSQL = `SELECT pg_advisory_xact_lock(ns, k) FROM (
	SELECT DISTINCT ns, hashtext(key) AS k FROM unnest($1::integer[], $2::text[]) AS l(ns, key)
	ORDER BY ns, k OFFSET 0) AS l`

// batchLocks are lockBatchSQL's arguments for reqs.
func batchLocks(reqs []*inviteReq) []any {
	ns := make([]int32, 0, 2*len(reqs))
	keys := make([]string, 0, 2*len(reqs))
	for _, r := range reqs {
		ns, keys = append(ns, lockReferrer), append(keys, r.inv.AppID+"/"+r.inv.ReferrerID)
		if r.inv.AddressHash != "" {
			ns, keys = append(ns, lockRecipient), append(keys, r.inv.AppID+"/"+r.inv.AddressHash)
		}
	}
	return []any{ns, keys}
}

// perRow turns recordSQL's parameters into the columns of recordBatchSQL's
// row b, so that both check with the same SQL.
var perRow = regexp.MustCompile(`@(\w+)(::\w+)?`)

// recordBatchSQL is recordSQL for a batch: row b of the input, one per
// invite (numbered by ord), has the invite's columns and its checks'
// parameters. It returns ord, the replay's id, the window's and the
// cooldown's created_at, step 4's reason and whether the invite was
// inserted. The rows of one batch do not see each other.
var recordBatchSQL = `WITH b AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::integer[], $11::text[], $12::timestamptz[], $13::timestamptz[],
		$14::timestamptz[], $15::timestamptz[], $16::text[], $17::text[], $18::timestamptz[], $19::integer[],
		$20::timestamptz[], $21::boolean[], $22::timestamptz[], $23::integer[], $24::timestamptz[],
		$25::boolean[], $26::timestamptz[], $27::integer[], $28::timestamptz[]) WITH ORDINALITY
	AS b(id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
		status, attempts, last_error, next_attempt_at, lease_until,
		created_at, updated_at, referrer_name, address_hash, sent_at, resends,
		resent_at, replay_on, replay_since, max_per_referrer, window_since,
		cooldown_on, cooldown_since, max_per_recipient, recipient_since, ord)
),
checked AS (
	SELECT b.*,
		(` + perRow.ReplaceAllString(replaySQL, "b.$1") + `) AS replay_id,
		(` + perRow.ReplaceAllString(windowFullSQL, "b.$1") + `) AS window_full,
		(` + perRow.ReplaceAllString(coolingSQL, "b.$1") + `) AS cooling,
		CASE WHEN b.address_hash <> '' THEN ` + perRow.ReplaceAllString(recipientReasonSQL, "b.$1") + ` END AS reason
	FROM b
),
inserted AS (
	INSERT INTO referral_invites (` + storeimpl.InviteColumns + `)
	SELECT id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
		CASE WHEN reason IS NULL THEN status ELSE 'suppressed' END, attempts, coalesce(reason, last_error),
		next_attempt_at, CASE WHEN reason IS NULL THEN lease_until END, created_at, updated_at,
		referrer_name, address_hash, sent_at, resends, resent_at
	FROM checked
	WHERE replay_id IS NULL AND window_full IS NULL AND cooling IS NULL
	RETURNING id
)
SELECT ord, replay_id, window_full, cooling, reason, id IN (SELECT id FROM inserted) FROM checked`

// batchArgs are recordBatchSQL's arguments for reqs, as recordOne's.
func batchArgs(reqs []*inviteReq) []any {
	n := len(reqs)
	var (
		ids, apps, referrers, emails, emailKeys = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		languages, codes, idemKeys, statuses    = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		lastErrors, names, hashes               = make([]string, n), make([]string, n), make([]string, n)
		attempts, resends                       = make([]int32, n), make([]int32, n)
		nextAt, createdAt, updatedAt            = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		leaseUntil, sentAt, resentAt            = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		replayOn, cooldownOn                    = make([]bool, n), make([]bool, n)
		maxPerReferrer, maxPerRecipient         = make([]int32, n), make([]int32, n)
		replaySince, windowSince                = make([]time.Time, n), make([]time.Time, n)
		cooldownSince, recipientSince           = make([]time.Time, n), make([]time.Time, n)
	)
	for i, r := range reqs {
		inv, lim := r.inv, r.lim
		now := inv.CreatedAt
		ids[i], apps[i], referrers[i], emails[i], emailKeys[i] = inv.ID, inv.AppID, inv.ReferrerID, inv.Email, inv.EmailKey
		languages[i], codes[i], idemKeys[i], statuses[i] = inv.Language, inv.Code, inv.IdempotencyKey, string(inv.Status)
		lastErrors[i], names[i], hashes[i] = inv.LastError, inv.ReferrerName, inv.AddressHash
		attempts[i], resends[i] = int32Of(inv.Attempts), int32Of(inv.Resends)
		nextAt[i], createdAt[i], updatedAt[i] = inv.NextAttemptAt, inv.CreatedAt, inv.UpdatedAt
		leaseUntil[i], sentAt[i], resentAt[i] = nullTime(inv.LeaseUntil), nullTime(inv.SentAt), nullTime(inv.ResentAt)
		replayOn[i], cooldownOn[i] = inv.IdempotencyKey != "" && lim.IdempotencyTTL > 0, lim.Cooldown > 0
		maxPerReferrer[i], maxPerRecipient[i] = int32Of(max(lim.MaxPerReferrer, 0)), int32Of(max(lim.MaxPerRecipient, 0))
		replaySince[i], windowSince[i] = now.Add(-lim.IdempotencyTTL), now.Add(-lim.Window)
		cooldownSince[i], recipientSince[i] = now.Add(-lim.Cooldown), now.Add(-lim.RecipientWindow)
	}
	return []any{ids, apps, referrers, emails, emailKeys, languages, codes, idemKeys,
		statuses, attempts, lastErrors, nextAt, leaseUntil,
		createdAt, updatedAt, names, hashes, sentAt, resends,
		resentAt, replayOn, replaySince, maxPerReferrer, windowSince,
		cooldownOn, cooldownSince, maxPerRecipient, recipientSince}
}

// int32Of is n as an integer column, clamped.
func int32Of(n int) int32 { return int32(max(min(n, math.MaxInt32), math.MinInt32)) }

// scanBatch reads recordBatchSQL's rows into outs, by ord.
func scanBatch(br pgx.BatchResults, outs []batchOutcome) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var (
			ord      int64
			replayID *string
			o        batchOutcome
		)
		if err := rows.Scan(&ord, &replayID, &o.windowFull, &o.cooling, &o.reason, &o.inserted); err != nil {
			return err
		}
		if ord < 1 || int(ord) > len(outs) {
			return errors.New("postgres: record invite: the batch returned a row it was not given")
		}
		o.alone = replayID != nil
		outs[ord-1] = o
		seen++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if seen != len(outs) {
		return errors.New("postgres: record invite: the batch returned fewer rows than it was given")
	}
	return nil
}
