-- The schema of package sqlite (github.com/referralkit/referralkit/store/sqlite)
-- as its migrations leave it, for hosts that apply it with their own
-- migration tool and open the store with Options{SkipMigrations: true}.
-- Every table and index starts with referral_. The last statement records
-- the migrations this file stands for, so that a store opened later without
-- SkipMigrations applies only newer ones. A test checks that this file
-- gives the same schema as the migrations under migrations/.
--
-- Times are unix milliseconds in UTC, so that they sort and compare as
-- integers; a zero time.Time is -62135596800000.

CREATE TABLE IF NOT EXISTS referral_schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT;

-- Referral codes: one per user and app.
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
    resent_at       INTEGER NOT NULL DEFAULT -62135596800000, -- the last of them, zero if none
    reclaimed_at    INTEGER NOT NULL DEFAULT -62135596800000  -- the last reclaim of it failed for an inline retry, zero if none
) STRICT;

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

-- Apps and their API keys (package auth). Only a key's SHA-256 is stored,
-- never the key: the CHECK on hash's length keeps it that way. revoked_at
-- is NULL while a key is active.
CREATE TABLE referral_apps (
    id         TEXT    NOT NULL PRIMARY KEY, -- client id, canonical UUID
    disabled   INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE referral_api_keys (
    app_id     TEXT    NOT NULL REFERENCES referral_apps (id),
    prefix     TEXT    NOT NULL, -- the key's public id, unique per app
    type       TEXT    NOT NULL CHECK (type IN ('read', 'write')),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (app_id, prefix)
) STRICT;

-- Redemptions: a new user signed up with a referral code, crediting its
-- owner; one per new user and app, the first one stored wins.
CREATE TABLE referral_redemptions (
    app_id      TEXT    NOT NULL,
    new_user_id TEXT    NOT NULL,
    referrer_id TEXT    NOT NULL, -- the code's owner
    code        TEXT    NOT NULL, -- canonical form
    email       TEXT    NOT NULL,
    email_key   TEXT    NOT NULL, -- as referral_invites.email_key
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, new_user_id)
) STRICT;

-- Stats: a referrer's redemptions and their addresses, read from the index
-- alone; each address is then looked up in referral_invites_by_address.
CREATE INDEX referral_redemptions_by_referrer ON referral_redemptions (app_id, referrer_id, email_key);

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

-- The outbox: the events of the store's changes, for the webhooks.
CREATE TABLE referral_events (
    id              TEXT    NOT NULL PRIMARY KEY, -- UUIDv7, the webhook-id
    type            TEXT    NOT NULL,             -- invite.sent, ..., referral.redeemed
    at              INTEGER NOT NULL,             -- when the change was made
    app_id          TEXT    NOT NULL,
    invite_id       TEXT    NOT NULL DEFAULT '', -- '' for referral.redeemed
    referrer_id     TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT '', -- the invite's new status; '' for referral.redeemed
    code            TEXT    NOT NULL DEFAULT '', -- referral.redeemed: the code redeemed
    new_user_id     TEXT    NOT NULL DEFAULT '', -- referral.redeemed: the user who signed up
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT -62135596800000, -- zero while unclaimed
    last_error      TEXT    NOT NULL DEFAULT ''
) STRICT;

-- ClaimEvents: oldest due first.
CREATE INDEX referral_events_due ON referral_events (next_attempt_at, id);

INSERT INTO referral_schema_migrations (version, name, applied_at) VALUES
    (1, '0001_invites.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    (2, '0002_keys.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    (3, '0003_redemptions.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    (4, '0004_referrer_name.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    (5, '0005_recipients.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    (6, '0006_referrers.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    (7, '0007_events.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    (8, '0008_reclaimed_at.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
