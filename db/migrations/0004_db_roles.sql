-- One database role per service (docs/vault.md, "Database roles"), so that a
-- compromised api or scheduler process cannot read even the ciphertexts of bot
-- tokens, nor the vault's keys and audit records:
--
--   bcrm_vault      bot_tokens, vault_keys, vault_policy, vault_audit (append-only)
--   bcrm_api        every other table, rows only (no DDL)
--   bcrm_scheduler  the same as bcrm_api
--
-- Migrations are applied by the database owner (`bcrmctl migrate`), never by
-- these roles. The roles log in without a password here: the test and `make run`
-- clusters admit local socket connections only (trust inside a 0700 directory).
-- In production the DBA gives each a password or a peer/cert rule in
-- pg_hba.conf; see docs/vault.md. Creating a role needs CREATEROLE (or a
-- superuser); where the owner has neither, the DBA creates the three roles first
-- and this migration only grants.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['bcrm_vault', 'bcrm_api', 'bcrm_scheduler'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
    END LOOP;
END
$$;

-- Every service checks at start that the schema is up to date.
GRANT SELECT ON schema_migrations TO bcrm_vault, bcrm_api, bcrm_scheduler;

-- The api and the scheduler: rows of every table of the application ...
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bcrm_api, bcrm_scheduler;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO bcrm_api, bcrm_scheduler;
-- ... but nothing of the vault's, and the migration record read-only.
REVOKE ALL ON bot_tokens, vault_keys, vault_policy, vault_audit FROM bcrm_api, bcrm_scheduler;
REVOKE ALL ON SEQUENCE vault_audit_id_seq FROM bcrm_api, bcrm_scheduler;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM bcrm_api, bcrm_scheduler;

-- Tables that later migrations add (run by the same owner) are the application's
-- by default. A later table of the vault must REVOKE from bcrm_api and
-- bcrm_scheduler like the ones above: tests/e2e/test_vault_roles.py checks every
-- table of the schema.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bcrm_api, bcrm_scheduler;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO bcrm_api, bcrm_scheduler;

-- The vault: its own tables and nothing else. The audit log is append-only even
-- for the vault (no UPDATE, no DELETE), so a compromised vault process cannot
-- erase its tracks.
GRANT SELECT, INSERT, UPDATE, DELETE ON bot_tokens TO bcrm_vault;
GRANT SELECT, INSERT, UPDATE ON vault_keys TO bcrm_vault;
GRANT SELECT, UPDATE ON vault_policy TO bcrm_vault;
GRANT SELECT, INSERT ON vault_audit TO bcrm_vault;
GRANT USAGE ON SEQUENCE vault_audit_id_seq TO bcrm_vault;
