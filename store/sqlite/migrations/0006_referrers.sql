-- The referrer's side (referral.ReferrerStore): invites keep when their
-- email was last sent (sent_at; for those sent before it was kept, when
-- they were recorded sent, their last update), how often the referrer had
-- them resent and when last (resends, resent_at), and may be 'revoked'.
-- The per-referrer index gains the id, so that it gives the referrer's
-- listing its order (newest first, ties by id) from the index alone; the
-- referrer limit counts resends through referral_invites_resent. SQLite
-- cannot change a CHECK, so referral_invites is rebuilt with its rows and
-- indexes. A zero time is -62135596800000, as elsewhere.

CREATE TABLE referral_invites_new (
    id              TEXT    NOT NULL PRIMARY KEY, -- UUIDv7
    app_id          TEXT    NOT NULL,
    referrer_id     TEXT    NOT NULL,
    email           TEXT    NOT NULL, -- '' once retention erased it
    email_key       TEXT    NOT NULL, -- likewise
    language        TEXT    NOT NULL,
    code            TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL, -- '' when the request had none
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'revoked')),
    attempts        INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    referrer_name   TEXT    NOT NULL DEFAULT '', -- the referrer's display name, '' when unknown
    address_hash    TEXT    NOT NULL DEFAULT '', -- keyed hash of email_key (hex), kept after erasure
    sent_at         INTEGER NOT NULL DEFAULT -62135596800000, -- the last delivery, zero if none
    resends         INTEGER NOT NULL DEFAULT 0,               -- resends the referrer asked for
    resent_at       INTEGER NOT NULL DEFAULT -62135596800000  -- the last of them, zero if none
) STRICT;

INSERT INTO referral_invites_new (id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
    status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at, referrer_name, address_hash,
    sent_at)
SELECT id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
    status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at, referrer_name, address_hash,
    CASE WHEN status = 'sent' THEN updated_at ELSE -62135596800000 END
FROM referral_invites;

DROP TABLE referral_invites;
ALTER TABLE referral_invites_new RENAME TO referral_invites;

-- The per-referrer limit, and the referrer's listing: newest first, ties
-- by id.
CREATE INDEX referral_invites_by_referrer ON referral_invites (app_id, referrer_id, created_at, id);

-- The per-referrer limit's resends; most invites are never resent.
CREATE INDEX referral_invites_resent ON referral_invites (app_id, referrer_id, resent_at) WHERE resends > 0;

-- The same-address cooldown.
CREATE INDEX referral_invites_by_address ON referral_invites (app_id, referrer_id, email_key, created_at);

-- Idempotency-Key replays; most invites have no key.
CREATE INDEX referral_invites_by_idempotency_key ON referral_invites (app_id, referrer_id, idempotency_key, created_at)
    WHERE idempotency_key <> '';

-- ClaimDue: pending invites, oldest due first.
CREATE INDEX referral_invites_due ON referral_invites (next_attempt_at, id) WHERE status = 'pending';

-- The recipient limit: an address's invites in the app, across referrers;
-- also Suppress's update of its pending ones.
CREATE INDEX referral_invites_by_recipient ON referral_invites (app_id, address_hash, created_at);

-- Retention (EraseAddresses): the invites whose address is still kept,
-- oldest first.
CREATE INDEX referral_invites_retained ON referral_invites (created_at, id) WHERE email_key <> '';

-- Every file records itself, so that a host's own tool can run the files.
INSERT OR IGNORE INTO referral_schema_migrations (version, name, applied_at)
    VALUES (6, '0006_referrers.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
