-- Protecting the people invited (referral.RecipientStore): invites keep the
-- keyed hash of their address (address_hash, '' for the invites recorded
-- before it was kept, which suppression and the recipient limit then do not
-- match) and may be recorded 'suppressed'; the suppression list; the
-- store's secrets. SQLite cannot change a CHECK, so referral_invites is
-- rebuilt with its rows and indexes.

CREATE TABLE referral_invites_new (
    id              TEXT    NOT NULL PRIMARY KEY, -- UUIDv7
    app_id          TEXT    NOT NULL,
    referrer_id     TEXT    NOT NULL,
    email           TEXT    NOT NULL, -- '' once retention erased it
    email_key       TEXT    NOT NULL, -- likewise
    language        TEXT    NOT NULL,
    code            TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL, -- '' when the request had none
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts        INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    referrer_name   TEXT    NOT NULL DEFAULT '', -- the referrer's display name, '' when unknown
    address_hash    TEXT    NOT NULL DEFAULT ''  -- keyed hash of email_key (hex), kept after erasure
) STRICT;

INSERT INTO referral_invites_new (id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
    status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at, referrer_name)
SELECT id, app_id, referrer_id, email, email_key, language, code, idempotency_key,
    status, attempts, last_error, next_attempt_at, lease_until, created_at, updated_at, referrer_name
FROM referral_invites;

DROP TABLE referral_invites;
ALTER TABLE referral_invites_new RENAME TO referral_invites;

-- The per-referrer limit: the referrer's invites newest first.
CREATE INDEX referral_invites_by_referrer ON referral_invites (app_id, referrer_id, created_at);

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

-- Addresses an app never emails again, by keyed hash: the address itself
-- is not kept. One row per address and app; the first reason stays.
CREATE TABLE referral_suppressions (
    app_id       TEXT    NOT NULL,
    address_hash TEXT    NOT NULL, -- as referral_invites.address_hash
    reason       TEXT    NOT NULL, -- referral.Reason*
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (app_id, address_hash)
) STRICT;

-- Secrets the store makes once and keeps (the key of address hashes and
-- unsubscribe links), by name.
CREATE TABLE referral_secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Every file records itself, so that a host's own tool can run the files.
INSERT OR IGNORE INTO referral_schema_migrations (version, name, applied_at)
    VALUES (5, '0005_recipients.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
