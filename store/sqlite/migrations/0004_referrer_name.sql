-- The referrer's display name for the email (referral.Invite.ReferrerName),
-- '' when unknown, as for the invites recorded before it was kept.

ALTER TABLE referral_invites ADD COLUMN referrer_name TEXT NOT NULL DEFAULT '';

-- Every file records itself, so that a host's own tool can run the files.
INSERT OR IGNORE INTO referral_schema_migrations (version, name, applied_at)
    VALUES (4, '0004_referrer_name.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
