-- Owned by the vault alone: its key versions. Each version's key is derived from
-- the root key (BCRM_VAULT_MASTER_KEY_FILE) with crypto_kdf, subkey id = version;
-- the table stores no key, only a keyed-hash check value that proves which root
-- key a version came from, so a vault started with another root key refuses to
-- run instead of failing every release. Exactly one version is current (new
-- tokens are sealed with it); retired versions stay readable until every row has
-- been rewrapped.
CREATE TABLE vault_keys (
    version     integer PRIMARY KEY CHECK (version > 0),
    key_check   bytea NOT NULL,
    state       text NOT NULL DEFAULT 'current' CHECK (state IN ('current', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
CREATE UNIQUE INDEX vault_keys_one_current ON vault_keys (state) WHERE state = 'current';

-- Rewrapping walks the rows of an old version.
CREATE INDEX bot_tokens_key_version_idx ON bot_tokens (key_version);
