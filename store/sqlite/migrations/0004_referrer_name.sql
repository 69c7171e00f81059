-- The referrer's display name for the email (referral.Invite.ReferrerName),
-- '' when unknown, as for the invites recorded before it was kept.

ALTER TABLE referral_invites ADD COLUMN referrer_name TEXT NOT NULL DEFAULT '';
