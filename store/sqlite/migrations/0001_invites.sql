-- Referral codes and invites. Times are unix milliseconds in UTC, so that
-- they sort and compare as integers; a zero time.Time is -62135596800000.

-- The versions applied, one row each: every file ends by adding its own.
CREATE TABLE IF NOT EXISTS referral_schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT;

CREATE TABLE referral_codes (
    code    TEXT NOT NULL, -- canonical form, see referral.NormalizeCode
    app_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    UNIQUE (code),
    UNIQUE (app_id, user_id)
) STRICT;

CREATE TABLE referral_invites (
    id              TEXT    NOT NULL PRIMARY KEY, -- UUIDv7
    app_id          TEXT    NOT NULL,
    referrer_id     TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    email_key       TEXT    NOT NULL,
    language        TEXT    NOT NULL,
    code            TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL, -- '' when the request had none
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- The per-referrer limit: the referrer's invites newest first.
CREATE INDEX referral_invites_by_referrer ON referral_invites (app_id, referrer_id, created_at);

-- The same-address cooldown.
CREATE INDEX referral_invites_by_address ON referral_invites (app_id, referrer_id, email_key, created_at);

-- Idempotency-Key replays; most invites have no key.
CREATE INDEX referral_invites_by_idempotency_key ON referral_invites (app_id, referrer_id, idempotency_key, created_at)
    WHERE idempotency_key <> '';

-- ClaimDue: pending invites, oldest due first.
CREATE INDEX referral_invites_due ON referral_invites (next_attempt_at, id) WHERE status = 'pending';

-- Every file records itself, so that a host's own tool can run the files.
INSERT OR IGNORE INTO referral_schema_migrations (version, name, applied_at)
    VALUES (1, '0001_invites.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
