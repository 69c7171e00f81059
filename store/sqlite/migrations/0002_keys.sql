-- Apps and their API keys (package auth). Only a key's SHA-256 is stored,
-- never the key: the CHECK on hash's length keeps it that way. Times are
-- unix milliseconds in UTC; revoked_at is NULL while a key is active.

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

-- Every file records itself, so that a host's own tool can run the files.
INSERT OR IGNORE INTO referral_schema_migrations (version, name, applied_at)
    VALUES (2, '0002_keys.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
