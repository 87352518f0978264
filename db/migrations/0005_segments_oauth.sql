-- Segments: saved audience filters of a bot (spec/api.md, "Segments"). A filter
-- names platform ids and conditions, never anyone's profile. A campaign created
-- from a segment copies the filter into its own audience, so that editing or
-- deleting a segment later never changes a campaign already made.
CREATE TABLE segments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    bot_id      uuid NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    filter      jsonb NOT NULL CHECK (jsonb_typeof(filter) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX segments_org_idx ON segments (org_id, created_at DESC, id DESC);

-- Slack OAuth installs in progress: the state parameter sent to Slack's authorize
-- page, stored as its SHA-256 only, bound to the org and to the session that began
-- the install, single use, and valid for ten minutes.
CREATE TABLE oauth_states (
    state_hash    bytea PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    session_hash  bytea NOT NULL,
    account_id    uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    platform      text NOT NULL DEFAULT 'slack' CHECK (platform IN ('slack')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX oauth_states_expiry_idx ON oauth_states (expires_at);
