-- Protecting the people invited (referral.RecipientStore): invites keep the
-- keyed hash of their address (address_hash, '' for the invites recorded
-- before it was kept, which suppression and the recipient limit then do not
-- match) and may be recorded 'suppressed'; the suppression list; the
-- store's secrets.

ALTER TABLE referral_invites
    ADD COLUMN address_hash text COLLATE "C" NOT NULL DEFAULT '',
    DROP CONSTRAINT referral_invites_status_check,
    ADD CONSTRAINT referral_invites_status_check CHECK (status IN ('pending', 'sent', 'failed', 'suppressed'));

-- The recipient limit: an address's invites in the app, across referrers;
-- also Suppress's update of its pending ones.
CREATE INDEX referral_invites_by_recipient ON referral_invites (app_id, address_hash, created_at);

-- Retention (EraseAddresses): the invites whose address is still kept,
-- oldest first.
CREATE INDEX referral_invites_retained ON referral_invites (created_at, id) WHERE email_key <> '';

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

-- Every file records itself, so that a host's own tool can run the files.
INSERT INTO referral_schema_migrations (version, name) VALUES (5, '0005_recipients.sql')
    ON CONFLICT (version) DO NOTHING;
