-- Referral codes and invites. Times are timestamptz (microseconds); the store
-- reads them back in UTC. Identifiers and keys compare byte by byte
-- (COLLATE "C"), whatever the database's locale.

CREATE TABLE codes (
    app_id  text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    code    text COLLATE "C" NOT NULL, -- canonical form, see referral.NormalizeCode
    PRIMARY KEY (app_id, user_id)
);

-- ResolveCode, and no code for two users.
CREATE UNIQUE INDEX codes_code ON codes (code);

CREATE TABLE invites (
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
CREATE INDEX invites_by_referrer ON invites (app_id, referrer_id, created_at);

-- The same-address cooldown.
CREATE INDEX invites_by_address ON invites (app_id, referrer_id, email_key, created_at);

-- Idempotency-Key replays; most invites have no key.
CREATE INDEX invites_by_idempotency_key ON invites (app_id, referrer_id, idempotency_key, created_at)
    WHERE idempotency_key <> '';

-- ClaimDue: pending invites, oldest due first.
CREATE INDEX invites_due ON invites (next_attempt_at, id) WHERE status = 'pending';
