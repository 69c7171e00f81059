-- Redemptions: a new user signed up with a referral code, crediting its
-- owner. The primary key holds one redemption per new user and app: the
-- first one stored wins. An invite is accepted when a redemption credited to
-- its referrer has its email_key; that is derived when Stats reads, so
-- invites have no column for it. Times are unix milliseconds in UTC.

CREATE TABLE referral_redemptions (
    app_id      TEXT    NOT NULL,
    new_user_id TEXT    NOT NULL,
    referrer_id TEXT    NOT NULL, -- the code's owner
    code        TEXT    NOT NULL, -- canonical form
    email       TEXT    NOT NULL,
    email_key   TEXT    NOT NULL, -- as invites.email_key
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, new_user_id)
) STRICT;

-- Stats: a referrer's redemptions and their addresses, read from the index
-- alone; each address is then looked up in referral_invites_by_address.
CREATE INDEX referral_redemptions_by_referrer ON referral_redemptions (app_id, referrer_id, email_key);

-- Every file records itself, so that a host's own tool can run the files.
INSERT OR IGNORE INTO referral_schema_migrations (version, name, applied_at)
    VALUES (3, '0003_redemptions.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
