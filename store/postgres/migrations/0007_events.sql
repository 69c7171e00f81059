-- The outbox (referral.EventStore): the events the store's changes record,
-- in the transaction of the change, when the store is opened with
-- Options.Outbox, for the worker to deliver to the host's webhooks. A row
-- never holds an address.

CREATE TABLE referral_events (
    id              text COLLATE "C" NOT NULL PRIMARY KEY, -- UUIDv7, the webhook-id
    type            text        NOT NULL,             -- invite.sent, ..., referral.redeemed
    at              timestamptz NOT NULL,             -- when the change was made
    app_id          text COLLATE "C" NOT NULL,
    invite_id       text COLLATE "C" NOT NULL DEFAULT '', -- '' for referral.redeemed
    referrer_id     text COLLATE "C" NOT NULL,
    status          text        NOT NULL DEFAULT '', -- the invite's new status; '' for referral.redeemed
    code            text COLLATE "C" NOT NULL DEFAULT '', -- referral.redeemed: the code redeemed
    new_user_id     text COLLATE "C" NOT NULL DEFAULT '', -- referral.redeemed: the user who signed up
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,                      -- NULL while unclaimed
    last_error      text        NOT NULL DEFAULT ''
);

-- ClaimEvents: oldest due first.
CREATE INDEX referral_events_due ON referral_events (next_attempt_at, id);

-- Every file records itself, so that a host's own tool can run the files.
INSERT INTO referral_schema_migrations (version, name) VALUES (7, '0007_events.sql')
    ON CONFLICT (version) DO NOTHING;
