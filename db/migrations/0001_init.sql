-- bcrm's schema. Privacy rule (design.md): no user profile data is ever stored
-- here. A delivery names its recipient by platform id only; names, emails and
-- timezones are read live from the platform.

CREATE TABLE orgs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- People who log in to bcrm (our customers, not their bots' users).
CREATE TABLE accounts (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL,
    name           text NOT NULL,
    password_hash  text NOT NULL,          -- Argon2id (crypto_pwhash_str)
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));

CREATE TABLE memberships (
    org_id      uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, account_id)
);

-- Sessions and API keys are stored as SHA-256 of the secret, never the secret.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name        text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,             -- first characters, to recognise a key
    created_by  uuid REFERENCES accounts(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE bots (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    platform     text NOT NULL CHECK (platform IN ('slack', 'messenger')),
    status       text NOT NULL DEFAULT 'verifying'
                 CHECK (status IN ('verifying', 'active', 'token_invalid', 'deleted')),
    name         text,
    team_id      text,
    app_id       text,
    bot_user_id  text,
    page_id      text,
    scopes       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bots_org_idx ON bots (org_id, created_at DESC);

-- Owned by the vault alone: ciphertexts of bot tokens (XChaCha20-Poly1305), the
-- associated data binding each to org_id, bot_id and platform.
CREATE TABLE bot_tokens (
    bot_id       uuid PRIMARY KEY,
    org_id       uuid NOT NULL,
    platform     text NOT NULL,
    key_version  integer NOT NULL,
    nonce        bytea NOT NULL,
    ciphertext   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Messenger subscribers: the PSIDs that wrote to a page and when, which delivery
-- needs (the 24-hour window). Nothing else about the person.
CREATE TABLE messenger_subscribers (
    bot_id           uuid NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    psid             text NOT NULL,
    last_message_at  timestamptz NOT NULL,
    PRIMARY KEY (bot_id, psid)
);

CREATE TABLE campaigns (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    bot_id                uuid NOT NULL REFERENCES bots(id),
    name                  text NOT NULL,
    status                text NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'scheduled', 'running', 'paused',
                                            'completed', 'cancelled')),
    message               jsonb NOT NULL,   -- {text, blocks}
    audience              jsonb NOT NULL,   -- {filter} or {segment_id}
    schedule              jsonb NOT NULL,   -- as in spec/api.md
    throttle_per_minute   integer,
    send_window           jsonb,
    max_lateness_minutes  integer,
    messenger             jsonb,
    first_due_at          timestamptz,
    last_due_at           timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    scheduled_at          timestamptz,
    completed_at          timestamptz
);
CREATE INDEX campaigns_org_idx ON campaigns (org_id, created_at DESC, id DESC);
CREATE INDEX campaigns_active_idx ON campaigns (status) WHERE status IN ('scheduled', 'running');

-- One run per occurrence of a campaign's schedule (one for now/at/local, one per
-- recurrence). The audience is read into deliveries page by page; the cursor
-- makes that resumable after a crash.
CREATE TABLE campaign_runs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id       uuid NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    occurrence        timestamptz NOT NULL, -- the run's nominal instant or local date
    status            text NOT NULL DEFAULT 'loading'
                      CHECK (status IN ('loading', 'loaded', 'done', 'cancelled')),
    audience_cursor   text,                 -- next page to read while loading
    created_at        timestamptz NOT NULL DEFAULT now(),
    loaded_at         timestamptz,
    UNIQUE (campaign_id, occurrence)
);

CREATE TABLE deliveries (
    id                   bigserial PRIMARY KEY,
    org_id               uuid NOT NULL,
    campaign_id          uuid NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    run_id               uuid NOT NULL REFERENCES campaign_runs(id) ON DELETE CASCADE,
    recipient_id         text NOT NULL,   -- platform id only
    due_at               timestamptz NOT NULL,
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown',
                                           'skipped', 'cancelled', 'read')),
    attempts             integer NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz,     -- for retries; NULL means due_at
    lease_id             uuid,            -- fences every state change while sending
    lease_expires_at     timestamptz,
    last_error           text,
    platform_message_id  text,
    sent_at              timestamptz,
    read_at              timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, recipient_id)
);
CREATE INDEX deliveries_due_idx ON deliveries (coalesce(next_attempt_at, due_at))
    WHERE status = 'pending';
CREATE INDEX deliveries_lease_idx ON deliveries (lease_expires_at) WHERE status = 'sending';
CREATE INDEX deliveries_campaign_idx ON deliveries (campaign_id, status, id);

-- The first answer to a create request with an Idempotency-Key, replayed on repeats.
CREATE TABLE idempotency_keys (
    org_id         uuid NOT NULL,
    key            text NOT NULL,
    request_hash   bytea NOT NULL,
    status         integer NOT NULL,
    body           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);

-- Append-only record of every vault operation; never holds a token.
CREATE TABLE vault_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    caller      text NOT NULL,   -- hex public key
    role        text,
    operation   text NOT NULL,
    org_id      text,
    bot_id      text,
    outcome     text NOT NULL,
    request_id  text
);
