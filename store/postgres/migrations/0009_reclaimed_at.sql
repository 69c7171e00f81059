-- When RecordInvite last reclaimed a failed invite for an inline retry
-- (step 1a of its contract), NULL if never. A pending invite last entered
-- the queue at the latest of created_at, resent_at and reclaimed_at, which
-- is what Queue measures its oldest age from.
ALTER TABLE referral_invites ADD COLUMN reclaimed_at timestamptz;

-- Every file records itself, so that a host's own tool can run the files.
INSERT INTO referral_schema_migrations (version, name) VALUES (9, '0009_reclaimed_at.sql')
    ON CONFLICT (version) DO NOTHING;
