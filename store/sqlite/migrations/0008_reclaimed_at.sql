-- When RecordInvite last reclaimed a failed invite for an inline retry
-- (step 1a of its contract), zero if never. A pending invite last entered
-- the queue at the latest of created_at, resent_at and reclaimed_at, which
-- is what Queue measures its oldest age from. A zero time is
-- -62135596800000, as elsewhere.
ALTER TABLE referral_invites ADD COLUMN reclaimed_at INTEGER NOT NULL DEFAULT -62135596800000;

-- Every file records itself, so that a host's own tool can run the files.
INSERT OR IGNORE INTO referral_schema_migrations (version, name, applied_at)
    VALUES (8, '0008_reclaimed_at.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
