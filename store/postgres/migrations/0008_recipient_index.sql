-- The recipient limit's index, led by address_hash rather than app_id. Led
-- by app_id, it matched the per-referrer limit's query too (app_id and a
-- range of created_at), and a plan made while the table had no statistics
-- (a new database, before autovacuum's first ANALYZE) read it for that
-- limit: every invite of the app in the window, on every invite, instead of
-- the referrer's few. Its queries give both app_id and address_hash.
DROP INDEX referral_invites_by_recipient;
CREATE INDEX referral_invites_by_recipient ON referral_invites (address_hash, app_id, created_at);

-- Every file records itself, so that a host's own tool can run the files.
INSERT INTO referral_schema_migrations (version, name) VALUES (8, '0008_recipient_index.sql')
    ON CONFLICT (version) DO NOTHING;
