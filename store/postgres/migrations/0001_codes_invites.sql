-- Referral codes and invites. Times are timestamptz (microseconds); the store
-- reads them back in UTC. Identifiers and keys compare byte by byte
-- (COLLATE "C"), whatever the database's locale.

-- The versions applied, one row each: every file ends by adding its own.
CREATE TABLE IF NOT EXISTS referral_schema_migrations (
    version    integer     NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

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
    email           text        NOT NULL,
    email_key       text COLLATE "C" NOT NULL,
    language        text        NOT NULL,
    code            text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL, -- '' when the request had none
    status          text        NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL,
    last_error      text        NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,          -- NULL while unclaimed
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

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
INSERT INTO referral_schema_migrations (version, name) VALUES (1, '0001_codes_invites.sql')
    ON CONFLICT (version) DO NOTHING;
