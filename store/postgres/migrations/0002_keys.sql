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

-- Every file records itself, so that a host's own tool can run the files.
INSERT INTO referral_schema_migrations (version, name) VALUES (2, '0002_keys.sql')
    ON CONFLICT (version) DO NOTHING;
