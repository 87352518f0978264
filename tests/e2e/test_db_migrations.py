#!/usr/bin/python3
"""Migrations are applied once, under an advisory lock, however many processes start
together on an empty database (common/src/db.c db_migrate): six `bcrmctl migrate` at
the same instant all succeed, every migration of db/migrations is recorded exactly
once, and the schema they made is whole. A later run finds nothing to do."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402

RACERS = 6


class MigrationsOnce(unittest.TestCase):
    def test_concurrent_starts_apply_each_migration_once(self):
        files = sorted(f for f in os.listdir(os.path.join(
            os.environ.get('BCRM_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..', '..')),
            'db', 'migrations')) if f.endswith('.sql'))
        versions = sorted(int(f.split('_', 1)[0]) for f in files)
        self.assertGreater(len(versions), 3)
        with Stack() as s:
            s.start_postgres()
            env = s._base_env()
            env['BCRM_DATABASE_URL'] = s.pg.url()
            racers = [subprocess.Popen([s.bcrmctl_path(), 'migrate'], env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True) for _ in range(RACERS)]
            outputs = [(p.communicate(timeout=120)[0], p.returncode)[::-1] for p in racers]
            self.assertEqual([code for code, _ in outputs], [0] * RACERS, outputs)
            applied = sum(out.count('"migration applied"') for _, out in outputs)
            self.assertEqual(applied, len(versions), 'a migration applied twice, or not at all')

            rows = s.sql('SELECT version, count(*) FROM schema_migrations GROUP BY version '
                         'ORDER BY version')
            self.assertEqual([(int(v), int(n)) for v, n in rows], [(v, 1) for v in versions])
            # The schema is whole: the tables of the first and the last migration exist.
            tables = {r[0] for r in s.sql("SELECT tablename FROM pg_tables "
                                          "WHERE schemaname = 'public'")}
            self.assertTrue({'orgs', 'bots', 'campaigns', 'deliveries', 'bot_tokens',
                             'vault_audit'} <= tables, tables)

            again = subprocess.run([s.bcrmctl_path(), 'migrate'], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.assertEqual(again.returncode, 0, again.stdout)
            self.assertNotIn('"migration applied"', again.stdout)


if __name__ == '__main__':
    unittest.main(verbosity=2)
