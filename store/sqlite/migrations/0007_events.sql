-- The outbox (referral.EventStore): the events the store's changes record,
-- in the transaction of the change, when the store is opened with
-- Options.Outbox, for the worker to deliver to the host's webhooks. A row
-- never holds an address. A zero time is -62135596800000, as elsewhere.

CREATE TABLE referral_events (
    id              TEXT    NOT NULL PRIMARY KEY, -- UUIDv7, the webhook-id
    type            TEXT    NOT NULL,             -- invite.sent, ..., referral.redeemed
    at              INTEGER NOT NULL,             -- when the change was made
    app_id          TEXT    NOT NULL,
    invite_id       TEXT    NOT NULL DEFAULT '', -- '' for referral.redeemed
    referrer_id     TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT '', -- the invite's new status; '' for referral.redeemed
    code            TEXT    NOT NULL DEFAULT '', -- referral.redeemed: the code redeemed
    new_user_id     TEXT    NOT NULL DEFAULT '', -- referral.redeemed: the user who signed up
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT -62135596800000, -- zero while unclaimed
    last_error      TEXT    NOT NULL DEFAULT ''
) STRICT;

-- ClaimEvents: oldest due first.
CREATE INDEX referral_events_due ON referral_events (next_attempt_at, id);

-- Every file records itself, so that a host's own tool can run the files.
INSERT OR IGNORE INTO referral_schema_migrations (version, name, applied_at)
    VALUES (7, '0007_events.sql', CAST(unixepoch('subsec') * 1000 AS INTEGER));
