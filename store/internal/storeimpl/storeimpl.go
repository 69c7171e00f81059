package storeimpl

import (
	"cmp"
	"strings"
	"time"

	"github.com/referralkit/referralkit/referral"
)

// MaxCodeTries bounds EnsureCode's attempts to find an unused code. With
// 50 random bits per code a second try is already rare.
const MaxCodeTries = 8

// ByDue orders invites oldest due first, ties by id (UUIDv7: creation
// order), as ClaimDue returns them.
func ByDue(a, b referral.Invite) int {
	return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
}

// InviteColumns are the columns of the invites table that ScanInvite reads,
// in its order. Both SQL stores name them alike.
const InviteColumns = `id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
	status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at, referrer_name, address_hash,
	sent_at, resends, resent_at`

// Row is what database/sql and pgx rows have in common.
type Row interface{ Scan(dest ...any) error }

// ScanInvite reads one row of InviteColumns. T is the type the store's
// driver reads a time column into, and toTime turns one into a time in UTC,
// the zero time for none.
func ScanInvite[T any](row Row, toTime func(T) time.Time) (referral.Invite, error) {
	var (
		inv                           referral.Invite
		status                        string
		next, lease, created, updated T
		sent, resent                  T
	)
	err := row.Scan(&inv.ID, &inv.AppID, &inv.ReferrerID, &inv.Email, &inv.EmailKey, &inv.Language, &inv.Code,
		&inv.IdempotencyKey, &status, &inv.Attempts, &inv.LastError, &next, &lease, &created, &updated, &inv.ReferrerName, &inv.AddressHash,
		&sent, &inv.Resends, &resent)
	if err != nil {
		return referral.Invite{}, err
	}
	inv.Status = referral.Status(status)
	inv.NextAttemptAt, inv.LeaseUntil = toTime(next), toTime(lease)
	inv.CreatedAt, inv.UpdatedAt = toTime(created), toTime(updated)
	inv.SentAt, inv.ResentAt = toTime(sent), toTime(resent)
	return inv, nil
}

// Retryable reports whether RecordInvite hands the earlier invite of an
// Idempotency-Key to a caller that delivers inv inline (step 1a of its
// contract): same address and language, and failed or stranded, a pending
// attempt whose lease has run out by inv.CreatedAt.
func Retryable(earlier, inv referral.Invite) bool {
	if inv.Attempts <= 0 || earlier.EmailKey != inv.EmailKey || earlier.Language != inv.Language {
		return false
	}
	switch earlier.Status {
	case referral.StatusFailed:
		return true
	case referral.StatusPending:
		return !earlier.LeaseUntil.After(inv.CreatedAt)
	}
	return false
}

// Reclaimed returns earlier as RecordInvite claims it for the caller of
// inv in step 1a: pending, one more attempt, inv's lease, due and updated
// at inv.CreatedAt, its last error kept. If reason is not "" (the app
// suppresses the address since), it is not claimed but suppressed for
// reason, updated at inv.CreatedAt.
func Reclaimed(earlier, inv referral.Invite, reason string) referral.Invite {
	earlier.UpdatedAt = inv.CreatedAt.UTC()
	if reason != "" {
		return Suppressed(earlier, reason)
	}
	earlier.Status = referral.StatusPending
	earlier.Attempts++
	earlier.LeaseUntil = inv.LeaseUntil.UTC()
	earlier.NextAttemptAt = inv.CreatedAt.UTC()
	return earlier
}

// Suppressed returns inv as RecordInvite stores it in step 4 of its
// contract: suppressed for reason, unclaimed, never to be sent.
func Suppressed(inv referral.Invite, reason string) referral.Invite {
	inv.Status = referral.StatusSuppressed
	inv.LastError = reason
	inv.LeaseUntil = time.Time{}
	return inv
}

// ScanListed reads one row of InviteColumns followed by the time its
// address was accepted (see AcceptedSQL).
func ScanListed[T any](row Row, toTime func(T) time.Time) (referral.ListedInvite, error) {
	var accepted T
	inv, err := ScanInvite(extraScan{row, []any{&accepted}}, toTime)
	if err != nil {
		return referral.ListedInvite{}, err
	}
	return referral.ListedInvite{Invite: inv, AcceptedAt: toTime(accepted)}, nil
}

// extraScan scans a row whose last columns go to extra.
type extraScan struct {
	row   Row
	extra []any
}

func (e extraScan) Scan(dest ...any) error { return e.row.Scan(append(dest, e.extra...)...) }

// AcceptedSQL is the expression of the listing's AcceptedAt for the invite
// row named inv: the created_at of the earliest redemption credited to its
// referrer in its app with its address, NULL if none or if the address was
// erased. Both SQL stores use it.
const AcceptedSQL = `(SELECT min(r.created_at) FROM referral_redemptions AS r
	WHERE r.app_id = inv.app_id AND r.referrer_id = inv.referrer_id AND r.email_key = inv.email_key AND inv.email_key <> '')`

// Resendable checks the state checks of ReferrerStore.Resend on li, the
// invite as stored and listed, for r, in the contract's order:
// ErrInviteAccepted, ErrNotResendable (not sent nor failed, or its address
// erased), or a *LimitError for MaxResends (RetryAfter zero) and
// ResendAfter (RetryAfter until allowed).
func Resendable(li referral.ListedInvite, r referral.Resend) error {
	inv := li.Invite
	if !li.AcceptedAt.IsZero() {
		return referral.ErrInviteAccepted
	}
	if (inv.Status != referral.StatusSent && inv.Status != referral.StatusFailed) || inv.Email == "" {
		return referral.ErrNotResendable
	}
	if inv.Resends >= r.MaxResends {
		return &referral.LimitError{}
	}
	if wait := inv.LastSend().Add(r.ResendAfter).Sub(r.At); wait > 0 {
		return &referral.LimitError{RetryAfter: wait}
	}
	return nil
}

// Resent returns inv as Resend leaves it: pending and due at r.At, or
// suppressed for reason when it is not "", with one more resend at r.At
// and r's lease (one more attempt when it claims).
func Resent(inv referral.Invite, r referral.Resend, reason string) referral.Invite {
	inv.Status = referral.StatusPending
	inv.NextAttemptAt = r.At.UTC()
	inv.LeaseUntil = r.LeaseUntil.UTC()
	if !r.LeaseUntil.IsZero() {
		inv.Attempts++
	}
	inv.Resends++
	inv.ResentAt, inv.UpdatedAt = r.At.UTC(), r.At.UTC()
	if reason != "" {
		inv = Suppressed(inv, reason)
	}
	return inv
}

// StillDue answers referral.ReferrerStore.StillDue for claimed, given the
// attempts of those of its invites that are pending, by id.
func StillDue(claimed []referral.Invite, pending map[string]int) []bool {
	due := make([]bool, len(claimed))
	for i, inv := range claimed {
		attempts, ok := pending[inv.ID]
		due[i] = ok && attempts == inv.Attempts
	}
	return due
}
