-- The schema of package postgres (github.com/referralkit/referralkit/store/postgres)
-- as its migrations leave it, for hosts that apply it with their own
-- migration tool and open the store with Options{SkipMigrations: true}.
-- Tables go in the first schema of the search_path. Every table and index
-- starts with referral_. The last statement records the migrations this
-- file stands for, so that a store opened later without SkipMigrations
-- applies only newer ones. A test checks that this file gives the same
-- schema as the migrations under migrations/.
--
-- Times are timestamptz (microseconds). Identifiers and keys compare byte
-- by byte (COLLATE "C"), whatever the database's locale.

CREATE TABLE IF NOT EXISTS referral_schema_migrations (
    version    integer     NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Referral codes: one per user and app.
CREATE TABLE referral_codes (
    app_id  text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    code    text COLLATE "C" NOT NULL, -- canonical form, see referral.NormalizeCode
    PRIMARY KEY (app_id, user_id)
);

-- ResolveCode, and no code for two users.
CREATE UNIQUE INDEX referral_codes_code ON referral_codes (code);

CREATE TABLE referral_invites (
    id              text COLLATE "C" NOT NULL PRIMARY KEY, -- UUIDv7
    app_id          text COLLATE "C" NOT NULL,
    referrer_id     text COLLATE "C" NOT NULL,
    email           text        NOT NULL, -- '' once retention erased it
    email_key       text COLLATE "C" NOT NULL, -- likewise
    language        text        NOT NULL,
    code            text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL, -- '' when the request had none
    status          text        NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'revoked')),
    attempts        integer     NOT NULL,
    last_error      text        NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,          -- NULL while unclaimed
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    referrer_name   text        NOT NULL DEFAULT '', -- the referrer's display name, '' when unknown
    address_hash    text COLLATE "C" NOT NULL DEFAULT '', -- keyed hash of email_key (hex), kept after erasure
    sent_at         timestamptz,          -- the last delivery, NULL if none
    resends         integer     NOT NULL DEFAULT 0, -- resends the referrer asked for
    resent_at       timestamptz,          -- the last of them, NULL if none
    reclaimed_at    timestamptz           -- the last reclaim of it failed for an inline retry, NULL if none
);

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
-- also Suppress's update of its pending ones. Led by address_hash, so that
-- no plan reads it for the per-referrer limit.
CREATE INDEX referral_invites_by_recipient ON referral_invites (address_hash, app_id, created_at);

-- Retention (EraseAddresses): the invites whose address is still kept,
-- oldest first.
CREATE INDEX referral_invites_retained ON referral_invites (created_at, id) WHERE email_key <> '';

-- Apps and their API keys (package auth). Only a key's SHA-256 is stored,
-- never the key: the CHECK on hash's length keeps it that way. revoked_at is
-- NULL while a key is active.
CREATE TABLE referral_apps (
    id         text COLLATE "C" NOT NULL PRIMARY KEY, -- client id, canonical UUID
    disabled   boolean     NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE referral_api_keys (
    app_id     text COLLATE "C" NOT NULL REFERENCES referral_apps (id),
    prefix     text COLLATE "C" NOT NULL, -- the key's public id, unique per app
    type       text        NOT NULL CHECK (type IN ('read', 'write')),
    hash       bytea       NOT NULL CHECK (octet_length(hash) = 32),
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (app_id, prefix)
);

-- Redemptions: a new user signed up with a referral code, crediting its
-- owner; one per new user and app, the first one stored wins.
CREATE TABLE referral_redemptions (
    app_id      text COLLATE "C" NOT NULL,
    new_user_id text COLLATE "C" NOT NULL,
    referrer_id text COLLATE "C" NOT NULL, -- the code's owner
    code        text COLLATE "C" NOT NULL, -- canonical form
    email       text        NOT NULL,
    email_key   text COLLATE "C" NOT NULL, -- as referral_invites.email_key
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, new_user_id)
);

-- Stats: a referrer's redemptions and their addresses, read from the index
-- alone; each address is then looked up in referral_invites_by_address.
CREATE INDEX referral_redemptions_by_referrer ON referral_redemptions (app_id, referrer_id, email_key);

-- Addresses an app never emails again, by keyed hash: the address itself
-- is not kept. One row per address and app; the first reason stays.
CREATE TABLE referral_suppressions (
    app_id       text COLLATE "C" NOT NULL,
    address_hash text COLLATE "C" NOT NULL, -- as referral_invites.address_hash
    reason       text        NOT NULL, -- referral.Reason*
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (app_id, address_hash)
);

-- Secrets the store makes once and keeps (the key of address hashes and
-- unsubscribe links), by name.
CREATE TABLE referral_secrets (
    name       text COLLATE "C" NOT NULL PRIMARY KEY,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL
);

-- The outbox: the events of the store's changes, for the webhooks.
CREATE TABLE referral_events (
    id              text COLLATE "C" NOT NULL PRIMARY KEY, -- UUIDv7, the webhook-id
    type            text        NOT NULL,             -- invite.sent, ..., referral.redeemed
    at              timestamptz NOT NULL,             -- when the change was made
    app_id          text COLLATE "C" NOT NULL,
    invite_id       text COLLATE "C" NOT NULL DEFAULT '', -- '' for referral.redeemed
    referrer_id     text COLLATE "C" NOT NULL,
    status          text        NOT NULL DEFAULT '', -- the invite's new status; '' for referral.redeemed
    code            text COLLATE "C" NOT NULL DEFAULT '', -- referral.redeemed: the code redeemed
    new_user_id     text COLLATE "C" NOT NULL DEFAULT '', -- referral.redeemed: the user who signed up
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,                      -- NULL while unclaimed
    last_error      text        NOT NULL DEFAULT ''
);

-- ClaimEvents: oldest due first.
CREATE INDEX referral_events_due ON referral_events (next_attempt_at, id);

INSERT INTO referral_schema_migrations (version, name) VALUES
    (1, '0001_codes_invites.sql'),
    (2, '0002_keys.sql'),
    (3, '0003_redemptions.sql'),
    (4, '0004_referrer_name.sql'),
    (5, '0005_recipients.sql'),
    (6, '0006_referrers.sql'),
    (7, '0007_events.sql'),
    (8, '0008_recipient_index.sql'),
    (9, '0009_reclaimed_at.sql');
