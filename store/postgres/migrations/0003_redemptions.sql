-- Redemptions: a new user signed up with a referral code, crediting its
-- owner. The primary key holds one redemption per new user and app: the
-- first one stored wins. An invite is accepted when a redemption credited to
-- its referrer has its email_key; that is derived when Stats reads, so
-- invites have no column for it.

CREATE TABLE referral_redemptions (
    app_id      text COLLATE "C" NOT NULL,
    new_user_id text COLLATE "C" NOT NULL,
    referrer_id text COLLATE "C" NOT NULL, -- the code's owner
    code        text COLLATE "C" NOT NULL, -- canonical form
    email       text        NOT NULL,
    email_key   text COLLATE "C" NOT NULL, -- as invites.email_key
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, new_user_id)
);

-- Stats: a referrer's redemptions and their addresses, read from the index
-- alone; each address is then looked up in referral_invites_by_address.
CREATE INDEX referral_redemptions_by_referrer ON referral_redemptions (app_id, referrer_id, email_key);

-- Every file records itself, so that a host's own tool can run the files.
INSERT INTO referral_schema_migrations (version, name) VALUES (3, '0003_redemptions.sql')
    ON CONFLICT (version) DO NOTHING;
