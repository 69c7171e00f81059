package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/referralkit/referralkit/referral"
	"github.com/referralkit/referralkit/store/internal/storeimpl"
)

// scanInvite reads one row of storeimpl.InviteColumns.
func scanInvite(row pgx.Row) (referral.Invite, error) {
	return storeimpl.ScanInvite(row, fromNull)
}

// lockSQL serializes RecordInvite per referrer (namespace lockReferrer,
// the app and referrer) and per address (lockRecipient, the app and
// AddressHash, which Suppress takes too), across every connection and
// process, until the end of the transaction. RecordInvite takes the
// referrer's first and Suppress takes only the address's, so no two
// transactions wait for each other in a circle.
//
// An advisory lock rather than a row lock (say, SELECT ... FOR UPDATE on a
// per-referrer row): the referrer of a first invite has no row to lock yet,
// so a row lock would need an upsert first, which writes (and leaves a dead
// tuple) on every invite; the advisory lock writes nothing, needs no table,
// and is released by the commit or rollback. Two referrers whose keys hash
// alike merely queue behind each other.
const lockSQL = `SELECT pg_advisory_xact_lock($1, hashtext($2::text || '/' || $3::text))`

// replayWhere finds the invites an Idempotency-Key repeats (step 1 of
// RecordInvite); the newest of them is the earlier invite.
const replayWhere = `app_id = @app_id AND referrer_id = @referrer_id
	AND idempotency_key = @idempotency_key AND idempotency_key <> '' AND created_at > @replay_since`

// reclaimSQL claims the earlier invite for a caller that delivers inline, if
// it may be tried again (step 1a of RecordInvite; storeimpl.Retryable states
// the same rule for the other stores), and returns it as updated; if the
// app suppresses its address since, it suppresses it instead
// (storeimpl.Reclaimed). Under READ COMMITTED an UPDATE that waits for a
// row checks its WHERE again on the row it then sees, so a ClaimDue that
// takes a stranded invite first wins it.
var reclaimSQL = `WITH earlier AS (
	SELECT e.id, (SELECT s.reason FROM referral_suppressions AS s
		WHERE s.app_id = e.app_id AND s.address_hash = e.address_hash AND e.address_hash <> '') AS reason
	FROM referral_invites AS e WHERE ` + replayWhere + ` ORDER BY created_at DESC LIMIT 1
)
UPDATE referral_invites AS i
SET status = CASE WHEN earlier.reason IS NULL THEN 'pending' ELSE 'suppressed' END,
	attempts = CASE WHEN earlier.reason IS NULL THEN i.attempts + 1 ELSE i.attempts END,
	last_error = coalesce(earlier.reason, i.last_error),
	lease_until = CASE WHEN earlier.reason IS NULL THEN @lease_until::timestamptz END,
	next_attempt_at = CASE WHEN earlier.reason IS NULL THEN @created_at::timestamptz ELSE i.next_attempt_at END,
	updated_at = @created_at::timestamptz,
	reclaimed_at = CASE WHEN earlier.reason IS NULL AND i.status = 'failed' THEN @created_at::timestamptz ELSE i.reclaimed_at END
FROM earlier
WHERE i.id = earlier.id AND i.email_key = @email_key AND i.language = @language
	AND (i.status = 'failed' OR (i.status = 'pending' AND (i.lease_until IS NULL OR i.lease_until <= @created_at)))
RETURNING ` + prefixed("i.", storeimpl.InviteColumns)

// recordSQL does RecordInvite's checks and, if the first three pass, the
// insert, suppressed if the fourth says so. It returns the id of the
// invite to replay, the created_at of the invite whose leaving the window
// ends the limit, that of the invite that started the cooldown (each NULL
// when its check passes or is off), the reason the invite was suppressed
// (NULL for none), and whether it inserted. Every window is exclusive at
// its start: an invite created exactly Window ago no longer counts, so
// retrying RetryAfter later succeeds.
const recordSQL = `WITH
replay AS (` + replaySQL + `),
window_full AS (` + windowFullSQL + `),
cooling AS (` + coolingSQL + `),
recipient AS (
	SELECT ` + recipientReasonSQL + ` AS reason
	WHERE @address_hash::text <> ''
),
inserted AS (
	INSERT INTO referral_invites (` + storeimpl.InviteColumns + `)
	SELECT @id::text, @app_id::text, @referrer_id::text, @email::text, @email_key::text, @language::text,
		@code::text, @idempotency_key::text, CASE WHEN v.reason IS NULL THEN @status::text ELSE 'suppressed' END,
		@attempts::integer, coalesce(v.reason, @last_error::text), @next_attempt_at::timestamptz,
		CASE WHEN v.reason IS NULL THEN @lease_until::timestamptz END, @created_at::timestamptz, @updated_at::timestamptz,
		@referrer_name::text, @address_hash::text, @sent_at::timestamptz, @resends::integer, @resent_at::timestamptz
	FROM (SELECT (SELECT reason FROM recipient) AS reason) AS v
	WHERE NOT EXISTS (SELECT FROM replay) AND NOT EXISTS (SELECT FROM window_full) AND NOT EXISTS (SELECT FROM cooling)
	RETURNING 1
)
SELECT (SELECT id FROM replay), (SELECT created_at FROM window_full), (SELECT created_at FROM cooling),
	(SELECT reason FROM recipient), EXISTS (SELECT FROM inserted)`

// replaySQL is step 1 of RecordInvite: the invite an Idempotency-Key
// repeats, if any.
const replaySQL = `SELECT id FROM referral_invites
	WHERE @replay_on::boolean AND ` + replayWhere + `
	ORDER BY created_at DESC LIMIT 1`

// coolingSQL is step 3 of RecordInvite: the referrer's newest invite of
// the address within the cooldown that has not failed nor been revoked.
const coolingSQL = `SELECT created_at FROM referral_invites
	WHERE @cooldown_on::boolean AND app_id = @app_id AND referrer_id = @referrer_id
		AND email_key = @email_key AND status NOT IN ('failed', 'revoked') AND created_at > @cooldown_since
	ORDER BY created_at DESC LIMIT 1`

// windowFullSQL is the per-referrer limit (step 2 of RecordInvite, and
// Resend's): of the referrer's invites created, and those resent, after
// @window_since, the MaxPerReferrer-th newest of those times, if there is
// one, is the one that has to leave the window first. No row: the limit is
// not reached (or off). "resends > 0" matches referral_invites_resent.
const windowFullSQL = `SELECT t AS created_at FROM (
		SELECT created_at AS t FROM referral_invites
		WHERE @max_per_referrer::integer > 0 AND app_id = @app_id AND referrer_id = @referrer_id
			AND created_at > @window_since
		UNION ALL
		SELECT resent_at FROM referral_invites
		WHERE @max_per_referrer::integer > 0 AND app_id = @app_id AND referrer_id = @referrer_id
			AND resends > 0 AND resent_at > @window_since
	) AS e
	ORDER BY t DESC LIMIT 1 OFFSET greatest(@max_per_referrer::integer - 1, 0)`

// recipientReasonSQL is step 4 of RecordInvite, and Resend's: the
// suppression's reason, else the recipient limit's, else NULL. The limit
// counts sends after @recipient_since: each invite of the address not
// suppressed counts 1 if created after it, whatever became of it, and its
// resends if it was last resent after it. Each invite it reads counts at
// least 1, so MaxPerRecipient of them settle it; they are read through
// referral_invites_by_recipient.
const recipientReasonSQL = `coalesce(
		(SELECT reason FROM referral_suppressions WHERE app_id = @app_id AND address_hash = @address_hash),
		(SELECT text '` + referral.ReasonRecipientLimit + `'
			WHERE @max_per_recipient::integer > 0 AND @max_per_recipient::integer <= (
				SELECT coalesce(sum((created_at > @recipient_since)::integer
					+ CASE WHEN resent_at > @recipient_since THEN resends ELSE 0 END), 0)
				FROM (SELECT created_at, resent_at, resends FROM referral_invites
					WHERE app_id = @app_id AND address_hash = @address_hash AND status <> 'suppressed'
						AND NOT (status = 'failed' AND sent_at IS NULL)
						AND (created_at > @recipient_since OR (resends > 0 AND resent_at > @recipient_since))
					LIMIT @max_per_recipient::integer) AS sends)))`

// RecordInvite stores inv after the idempotency, limit, cooldown and
// recipient checks of [referral.CodeStore], atomically with them, and
// returns the invite stored (suppressed, maybe) or replayed. A lone call
// records its invite in a transaction of its own (recordOne); concurrent
// calls share one (see inviteQueue).
func (s *Store) RecordInvite(ctx context.Context, inv referral.Invite, lim referral.Limits) (referral.Invite, bool, error) {
	inv.NextAttemptAt, inv.LeaseUntil = stored(inv.NextAttemptAt), stored(inv.LeaseUntil)
	inv.CreatedAt, inv.UpdatedAt = stored(inv.CreatedAt), stored(inv.UpdatedAt)
	inv.SentAt, inv.ResentAt = stored(inv.SentAt), stored(inv.ResentAt)
	return s.recordQueued(ctx, inv, lim)
}

// recordOne is RecordInvite in a transaction of its own, for inv with its
// times as stored.
func (s *Store) recordOne(ctx context.Context, inv referral.Invite, lim referral.Limits) (referral.Invite, bool, error) {
	now := inv.CreatedAt

	// The locks, the checks and the insert go in one transaction, sent in
	// one round trip, and the commit in a second: a caller that gives up
	// before the commit is sent leaves nothing behind, whatever its pool's
	// way of cancelling. The check-and-insert is a statement of its own
	// because under READ COMMITTED each statement reads a snapshot taken
	// when it starts: after the locks, it sees every invite of the referrer
	// and of the address, and every suppression of the address, that an
	// earlier holder committed. An invite without an AddressHash takes no
	// address lock: step 4 does not apply to it. A reclaim goes before the
	// checks, which then find the reclaimed invite to replay and store
	// nothing.
	replayOn := inv.IdempotencyKey != "" && lim.IdempotencyTTL > 0
	reclaim := replayOn && inv.Attempts > 0
	args := pgx.NamedArgs{
		"replay_on":         replayOn,
		"replay_since":      now.Add(-lim.IdempotencyTTL),
		"max_per_referrer":  max(lim.MaxPerReferrer, 0),
		"window_since":      now.Add(-lim.Window),
		"cooldown_on":       lim.Cooldown > 0,
		"cooldown_since":    now.Add(-lim.Cooldown),
		"id":                inv.ID,
		"app_id":            inv.AppID,
		"referrer_id":       inv.ReferrerID,
		"email":             inv.Email,
		"email_key":         inv.EmailKey,
		"language":          inv.Language,
		"code":              inv.Code,
		"idempotency_key":   inv.IdempotencyKey,
		"status":            string(inv.Status),
		"attempts":          inv.Attempts,
		"last_error":        inv.LastError,
		"next_attempt_at":   inv.NextAttemptAt,
		"lease_until":       nullTime(inv.LeaseUntil),
		"created_at":        inv.CreatedAt,
		"updated_at":        inv.UpdatedAt,
		"referrer_name":     inv.ReferrerName,
		"address_hash":      inv.AddressHash,
		"sent_at":           nullTime(inv.SentAt),
		"resends":           inv.Resends,
		"resent_at":         nullTime(inv.ResentAt),
		"max_per_recipient": max(lim.MaxPerRecipient, 0),
		"recipient_since":   now.Add(-lim.RecipientWindow),
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(lockSQL, lockReferrer, inv.AppID, inv.ReferrerID)
	lockAddress := inv.AddressHash != ""
	if lockAddress {
		b.Queue(lockSQL, lockRecipient, inv.AppID, inv.AddressHash)
	}
	if reclaim {
		b.Queue(reclaimSQL, args)
	}
	b.Queue(recordSQL, args)
	var (
		reclaimed           referral.Invite
		reclaimedOne        bool
		replayID            *string
		windowFull, cooling *time.Time
		suppressed          *string
		inserted            bool
	)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	// A no-op once committed. Not ctx: it may have ended.
	defer tx.Rollback(context.WithoutCancel(ctx))
	_, err := br.Exec() // BEGIN
	if err == nil {
		_, err = br.Exec() // the referrer's lock
	}
	if err == nil && lockAddress {
		_, err = br.Exec() // the address's lock
	}
	if err == nil && reclaim {
		reclaimed, err = scanInvite(br.QueryRow())
		reclaimedOne = err == nil
		if isNoRows(err) {
			err = nil
		}
	}
	if err == nil {
		err = br.QueryRow().Scan(&replayID, &windowFull, &cooling, &suppressed, &inserted)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	// The event of an invite suppressed, in the same transaction: a third
	// round trip, only with the outbox on and for a suppression.
	switch {
	case err != nil:
	case reclaimedOne && reclaimed.Status == referral.StatusSuppressed:
		err = s.record(ctx, tx, storeimpl.InviteEvent(referral.EventInviteSuppressed, reclaimed, now))
	case !reclaimedOne && inserted && suppressed != nil:
		err = s.record(ctx, tx, storeimpl.InviteEvent(referral.EventInviteSuppressed, storeimpl.Suppressed(inv, *suppressed), now))
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	switch {
	case err != nil:
		return referral.Invite{}, false, wrap(ctx, "record invite", err)
	case reclaimedOne:
		return reclaimed, false, nil
	case replayID != nil:
		first, err := scanInvite(s.pool.QueryRow(ctx, `SELECT `+storeimpl.InviteColumns+` FROM referral_invites WHERE id = $1`, *replayID))
		if err != nil {
			return referral.Invite{}, false, wrap(ctx, "record invite: reading the replayed invite", err)
		}
		return first, true, nil
	case windowFull != nil:
		return referral.Invite{}, false, &referral.LimitError{RetryAfter: windowFull.Add(lim.Window).Sub(now)}
	case cooling != nil:
		return referral.Invite{}, false, &referral.LimitError{RetryAfter: cooling.Add(lim.Cooldown).Sub(now), Cooldown: true}
	case !inserted:
		return referral.Invite{}, false, errors.New("postgres: record invite: no check refused the invite, yet none was stored")
	case suppressed != nil:
		return storeimpl.Suppressed(inv, *suppressed), false, nil
	}
	return inv, false, nil
}

// UpdateDelivery records the outcome of a delivery attempt; see
// [referral.CodeStore].
func (s *Store) UpdateDelivery(ctx context.Context, id string, d referral.Delivery) error {
	err := s.change(ctx, func(q querier) error {
		// next_attempt_at changes only for a retry, sent_at for a send; an
		// invite revoked during the attempt only gets its send recorded.
		var inv referral.Invite
		err := q.QueryRow(ctx, `UPDATE referral_invites
			SET status = CASE WHEN status = 'revoked' THEN status ELSE @status END,
				last_error = CASE WHEN status = 'revoked' THEN last_error ELSE @last_error END,
				next_attempt_at = CASE WHEN @status = 'pending' THEN @next_attempt_at ELSE next_attempt_at END,
				sent_at = CASE WHEN @status = 'sent' THEN @at ELSE sent_at END,
				lease_until = NULL, updated_at = @at
			WHERE id = @id AND attempts = @attempt AND (status = 'pending' OR (status = 'revoked' AND @status = 'sent'))
			RETURNING id, app_id, referrer_id, status`,
			pgx.NamedArgs{
				"status":          string(d.Status),
				"last_error":      d.LastError,
				"next_attempt_at": d.NextAttemptAt,
				"at":              d.At,
				"id":              id,
				"attempt":         d.Attempt,
			}).Scan(&inv.ID, &inv.AppID, &inv.ReferrerID, &inv.Status)
		if isNoRows(err) {
			return nil // not pending, or a newer attempt has it: a no-op
		}
		if err != nil {
			return err
		}
		if typ, ok := storeimpl.DeliveryEvent(d.Status); ok {
			return s.record(ctx, q, storeimpl.InviteEvent(typ, inv, d.At))
		}
		return nil
	})
	if err != nil {
		return wrap(ctx, "update delivery", err)
	}
	return nil
}

// ClaimDue leases up to max pending invites that are due at now, oldest
// due first; see [referral.CodeStore].
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, max int) ([]referral.Invite, error) {
	if max <= 0 {
		return nil, nil
	}
	now = stored(now)
	// SKIP LOCKED: concurrent claimers take the next due invites instead of
	// queueing behind each other. A row another claimer has just committed
	// is read again when locked, and dropped as no longer due.
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT id FROM referral_invites
			WHERE status = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until <= @now)
			ORDER BY next_attempt_at, id
			LIMIT @max
			FOR UPDATE SKIP LOCKED
		)
		UPDATE referral_invites AS i SET attempts = i.attempts + 1, lease_until = @lease_until, updated_at = @now
		FROM due WHERE i.id = due.id
		RETURNING `+prefixed("i.", storeimpl.InviteColumns),
		pgx.NamedArgs{"now": now, "lease_until": now.Add(lease), "max": max})
	if err != nil {
		return nil, wrap(ctx, "claim due", err)
	}
	claimed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (referral.Invite, error) { return scanInvite(r) })
	if err != nil {
		return nil, wrap(ctx, "claim due", err)
	}
	// RETURNING has no order of its own.
	slices.SortFunc(claimed, storeimpl.ByDue)
	return claimed, nil
}

// prefixed qualifies each of the comma-separated columns with p.
func prefixed(p, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
