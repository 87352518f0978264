-- Key versions as an operator runs them (docs/vault.md, "Key versions"):
-- rotate adds a version, rewrap seals every token again under the newest one,
-- and min_decryption_version retires old versions.

-- The vault's settings: one row. min_decryption_version is HashiCorp Vault
-- transit's name: a token sealed with a lower version is no longer released.
CREATE TABLE vault_policy (
    singleton               boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    min_decryption_version  integer NOT NULL DEFAULT 1 CHECK (min_decryption_version > 0),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
INSERT INTO vault_policy DEFAULT VALUES;

-- 0002 called a version that is no longer current 'retired', but it still
-- decrypts; "retired" now means below min_decryption_version, which is not a
-- state of the row but of the policy. No version was ever 'retired' before
-- rotation existed; the UPDATE is there for completeness.
ALTER TABLE vault_keys DROP CONSTRAINT vault_keys_state_check;
UPDATE vault_keys SET state = 'previous' WHERE state = 'retired';
ALTER TABLE vault_keys ADD CONSTRAINT vault_keys_state_check
    CHECK (state IN ('current', 'previous'));
ALTER TABLE vault_keys RENAME COLUMN retired_at TO superseded_at;

-- What the operation was about beyond org and bot: the key version a token was
-- released, stored or rewrapped with, and a short factual note (a rotation's new
-- version, a policy change). Never a token.
ALTER TABLE vault_audit ADD COLUMN key_version integer, ADD COLUMN detail text;
CREATE INDEX vault_audit_bot_idx ON vault_audit (bot_id);
