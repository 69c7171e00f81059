-- The referrer's side (referral.ReferrerStore): invites keep when their
-- email was last sent (sent_at, NULL if never; for those sent before it was
-- kept, when they were recorded sent, their last update), how often the
-- referrer had them resent and when last (resends, resent_at), and may be
-- 'revoked'. The per-referrer index gains the id, so that it gives the
-- referrer's listing its order (newest first, ties by id); the referrer
-- limit counts resends through referral_invites_resent.

ALTER TABLE referral_invites
    ADD COLUMN sent_at timestamptz,
    ADD COLUMN resends integer NOT NULL DEFAULT 0,
    ADD COLUMN resent_at timestamptz,
    DROP CONSTRAINT referral_invites_status_check,
    ADD CONSTRAINT referral_invites_status_check CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'revoked'));

UPDATE referral_invites SET sent_at = updated_at WHERE status = 'sent';

DROP INDEX referral_invites_by_referrer;

-- The per-referrer limit, and the referrer's listing: newest first, ties
-- by id.
CREATE INDEX referral_invites_by_referrer ON referral_invites (app_id, referrer_id, created_at, id);

-- The per-referrer limit's resends; most invites are never resent.
CREATE INDEX referral_invites_resent ON referral_invites (app_id, referrer_id, resent_at) WHERE resends > 0;

-- Every file records itself, so that a host's own tool can run the files.
INSERT INTO referral_schema_migrations (version, name) VALUES (6, '0006_referrers.sql')
    ON CONFLICT (version) DO NOTHING;
