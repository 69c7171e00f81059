// Package storetest holds the conformance suites every store must pass:
// [Run] for a referral.CodeStore, [RunRedemptions] for a
// referral.RedemptionStore, [RunRecipients] for a referral.RecipientStore
// with the recipient check of RecordInvite, [RunReferrers] for a
// referral.ReferrerStore, [RunQueue] for a referral.QueueStore, [RunEvents]
// for a referral.EventStore (the outbox) with the changes that record
// events, and
// [RunKeyStore] for an
// auth.KeyStore with its auth.KeyManager. [RunRecipientsShared] runs the
// recipient suite's concurrency cases on several stores of one database,
// as several processes would have them, and [RunReferrersShared] those of
// the referrer suite. A store's own tests call them with a function
// that makes a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) referral.CodeStore { return memory.New() })
//	}
//
// The suite checks each rule stated in the CodeStore doc comments, including
// the concurrency guarantees (at least 100 goroutines per case), with an
// explicit clock: every time it passes in is chosen by the test, never read
// from the wall clock, and it never sleeps.
//
// Rules the suite pins down where the contract is terse:
//   - Window, cooldown and idempotency boundaries are exclusive: an invite
//     created exactly Window (Cooldown, IdempotencyTTL) before another no
//     longer counts, so retrying exactly RetryAfter later succeeds.
//   - Failed invites count towards the per-referrer limit but not the
//     cooldown.
//   - Times come back in UTC, equal to what was stored for any time with
//     millisecond precision; a zero time comes back zero.
//   - ClaimDue with max <= 0 claims nothing.
//   - ResolveCode compares exactly: callers normalize (referral.NormalizeCode),
//     so a lower-case or hyphenated spelling of a code is not found.
//   - Every field of an invite comes back as stored, ReferrerName and
//     AddressHash included.
//   - User and app ids are opaque and compared byte by byte: "42", "user:7",
//     "Alice" and "alice" are four users, and an empty app id is an app.
//   - An inline retry of an Idempotency-Key (inv.Attempts > 0) that reclaims
//     the earlier invite holds it under its own lease: ClaimDue does not
//     take it before then, and of concurrent retries and claims exactly one
//     gets it.
//   - An invite RecordInvite suppresses keeps the rest of what it was given
//     (Attempts included); Suppress also releases the lease of the pending
//     invites it marks. Invites without an AddressHash are never
//     suppressed or counted for the recipient limit.
//   - Revoked invites hold no cooldown; the referrer limit counts invites
//     created and invites resent (ResentAt) within Window. The recipient
//     limit counts sends within RecipientWindow, in RecordInvite and in
//     Resend alike: every invite not suppressed (failed and revoked ones
//     too) counts 1 if created within it and its Resends if its ResentAt
//     is, the invite being resent included.
//   - An inline retry (step 1a) of an invite whose address was suppressed
//     since is not claimed: it becomes suppressed with the suppression's
//     reason and no lease, Attempts and NextAttemptAt kept and UpdatedAt
//     the retry's CreatedAt, and is answered with replayed=false.
//   - Resend refuses an accepted invite (ErrInviteAccepted) whatever its
//     status, and one whose address was erased (ErrNotResendable).
//   - Resend's ResendAfter counts from the invite's last send: the latest
//     of CreatedAt, SentAt and ResentAt. A resend the recipient check
//     suppresses keeps Attempts as the lease made them and has no lease.
//   - Revoke of a revoked invite succeeds even if its address was
//     accepted since; a listed invite is accepted (AcceptedAt) only while
//     its EmailKey is kept.
//   - EraseAddresses erases an address once: invites erased already are
//     not counted again, so a caller can repeat it until it returns less
//     than max. max <= 0 erases nothing. Its window counts from the last
//     send: an invite created long ago but sent or resent at or after
//     sentBefore is kept.
//   - Queue counts the pending invites of every app, those claimed under
//     a lease included, and no sent, failed, revoked or suppressed one;
//     its oldest time is when the pending invite waiting longest last
//     entered the queue, in UTC, zero when none is pending: the latest of
//     its CreatedAt, its ResentAt and, if RecordInvite reclaimed it failed
//     for an inline retry, that reclaim's time (a stranded pending invite
//     it reclaims never left the queue). Claims and retries do not move
//     it.
//
// Subtests run in parallel, so newStore must be safe to call from several
// goroutines.
package storetest
