#!/usr/bin/python3
"""The vault as a real process on a throwaway PostgreSQL, called through the real
client library (tests/integration/vault_smoke.c, since Python here has no
crypto_box) and through bcrmctl.

Covers: store/release round trips per role; a sender asking for another
platform's token, the api asking for a token, an unknown key, a stale call: all
refused; release after destroy answers not_found; one audit row per call and never
a token in it; no token byte in a pg_dump; a ciphertext moved to another bot's row
does not open; a captured store replayed after a destroy does not bring the token
back; concurrent releases from one client; metrics; refusal to start on a readable
root key, a wrong root key or a bad allowlist; SIGTERM exits 0 and tokens survive a
restart. Staged tokens (a reconnect, docs/vault.md "Staged tokens"): staging leaves
the bot's token alone, promote moves exactly the staged copy that was stored (not
one staged again since) and only for the api role, destroying the bot's token
destroys its staged one."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402


def new_id():
    return str(uuid.uuid4())


class VaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Stack()
        cls.s.start_postgres()
        cls.s.make_keys()
        cls.s.start('vault')
        cls.smoke_bin = os.path.join(cls.s.build_dir, 'tests', 'vault_smoke')
        cls.unknown_key = os.path.join(cls.s.work_dir, 'unknown.key')
        res = subprocess.run([cls.s.bcrmctl_path(), 'keygen', cls.unknown_key],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert res.returncode == 0, res.stderr
        cls.unknown_public = res.stdout.strip()
        # Markers of every token stored by any test, looked for in the dump.
        cls.markers = []

    @classmethod
    def tearDownClass(cls):
        if not cls.s.stopped:
            cls.s.stop()

    # ---- helpers -------------------------------------------------------------

    def key(self, role):
        return self.unknown_key if role == 'unknown' else self.s._key_path(role)

    def smoke(self, role, *args, env=None):
        """Runs vault_smoke as role. Returns {'code': ..., 'token': ..., ...} from its
        "name value" lines, and the raw output under 'out'."""
        penv = self.s._base_env()
        penv.update(env or {})
        res = subprocess.run([self.smoke_bin, self.key(role)] + list(args), env=penv,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=60)
        out = {'out': res.stdout + res.stderr, 'rc': res.returncode}
        for line in res.stdout.splitlines():
            name, _, value = line.partition(' ')
            out.setdefault(name, value)
        return out

    def store(self, org, bot, platform, token, role='api'):
        self.markers.append(token)
        return self.smoke(role, 'store', org, bot, platform, token)

    def audit(self, bot):
        return self.s.sql(f"SELECT role, operation, outcome, caller, request_id, org_id"
                          f" FROM vault_audit WHERE bot_id = '{bot}' ORDER BY id")

    def run_vault(self, extra, timeout=60):
        """Runs a second vault process with extra environment until it exits."""
        env = self.s.process_env('vault')
        env['BCRM_OPS_ADDR'] = f'127.0.0.1:{self.s.free_port()}'
        env['BCRM_VAULT_URL'] = f'tcp://127.0.0.1:{self.s.free_port()}'
        env.update(extra)
        return subprocess.run([self.s.binary('vault')], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)

    # ---- the protocol --------------------------------------------------------

    def test_round_trip_per_platform(self):
        org, slack_bot, fb_bot = new_id(), new_id(), new_id()
        slack_token = f'xoxb-MARKERSLACK{uuid.uuid4().hex[:12]}'
        fb_token = f'EAAG-MARKERFB{uuid.uuid4().hex[:12]}'
        self.assertEqual(self.store(org, slack_bot, 'slack', slack_token)['code'], 'ok')
        self.assertEqual(self.store(org, fb_bot, 'messenger', fb_token)['code'], 'ok')

        r = self.smoke('sender-slack', 'release', org, slack_bot, 'slack')
        self.assertEqual((r['code'], r.get('token')), ('ok', slack_token), r['out'])
        r = self.smoke('sender-messenger', 'release', org, fb_bot, 'messenger')
        self.assertEqual((r['code'], r.get('token')), ('ok', fb_token), r['out'])

        # Ids are case-insensitive uuids: the vault binds their canonical form.
        r = self.smoke('sender-slack', 'release', org.upper(), slack_bot.upper(), 'slack')
        self.assertEqual((r['code'], r.get('token')), ('ok', slack_token), r['out'])

        # A store replaces the token (upsert).
        new_token = slack_token + 'v2'
        self.assertEqual(self.store(org, slack_bot, 'slack', new_token)['code'], 'ok')
        r = self.smoke('sender-slack', 'release', org, slack_bot, 'slack')
        self.assertEqual(r.get('token'), new_token, r['out'])

        # A store naming another org for the same bot changes nothing.
        r = self.store(new_id(), slack_bot, 'slack', 'xoxb-MARKERHIJACK')
        self.assertEqual(r['code'], 'bad_request', r['out'])
        r = self.smoke('sender-slack', 'release', org, slack_bot, 'slack')
        self.assertEqual(r.get('token'), new_token, r['out'])

    def test_roles_and_platforms_are_enforced(self):
        org, slack_bot, fb_bot = new_id(), new_id(), new_id()
        self.store(org, slack_bot, 'slack', 'xoxb-MARKERROLE1')
        self.store(org, fb_bot, 'messenger', 'EAAG-MARKERROLE2')

        r = self.smoke('sender-slack', 'release', org, fb_bot, 'messenger')
        self.assertEqual(r['code'], 'denied', r['out'])
        self.assertIn('may not release messenger tokens', r['message'])
        self.assertNotIn('token', r)
        r = self.smoke('sender-messenger', 'release', org, slack_bot, 'slack')
        self.assertEqual(r['code'], 'denied', r['out'])
        # Naming a Messenger bot as a Slack one finds nothing to release.
        r = self.smoke('sender-slack', 'release', org, fb_bot, 'slack')
        self.assertEqual(r['code'], 'not_found', r['out'])
        # And another org's bot is not there either.
        r = self.smoke('sender-slack', 'release', new_id(), slack_bot, 'slack')
        self.assertEqual(r['code'], 'not_found', r['out'])
        # The api stores and destroys but never reads; senders never write.
        r = self.smoke('api', 'release', org, slack_bot, 'slack')
        self.assertEqual(r['code'], 'denied', r['out'])
        r = self.smoke('sender-slack', 'store', org, slack_bot, 'slack', 'xoxb-MARKERROLE3')
        self.assertEqual(r['code'], 'denied', r['out'])
        r = self.smoke('sender-slack', 'destroy', org, slack_bot)
        self.assertEqual(r['code'], 'denied', r['out'])
        r = self.smoke('ops', 'release', org, slack_bot, 'slack')
        self.assertEqual(r['code'], 'denied', r['out'])
        # The token is still there for its own sender.
        r = self.smoke('sender-slack', 'release', org, slack_bot, 'slack')
        self.assertEqual(r.get('token'), 'xoxb-MARKERROLE1', r['out'])

        outcomes = [(role, op, outcome) for role, op, outcome, *_ in self.audit(slack_bot)]
        self.assertIn(('sender-messenger', 'release', 'denied'), outcomes)
        self.assertIn(('api', 'release', 'denied'), outcomes)
        self.assertIn(('sender-slack', 'store', 'denied'), outcomes)

    def test_bad_requests(self):
        org, bot = new_id(), new_id()
        r = self.smoke('api', 'store', 'not-a-uuid', bot, 'slack', 'xoxb-MARKERBAD')
        self.assertEqual(r['code'], 'bad_request', r['out'])
        self.assertIn('org_id', r['message'])
        r = self.smoke('api', 'store', org, bot, 'telegram', 'xoxb-MARKERBAD')
        self.assertEqual(r['code'], 'bad_request', r['out'])
        self.assertIn('platform', r['message'])
        r = self.smoke('sender-slack', 'release', org, 'x' * 500, 'slack')
        self.assertEqual(r['code'], 'bad_request', r['out'])

    def test_unknown_key_is_refused_and_audited(self):
        org, bot = new_id(), new_id()
        self.store(org, bot, 'slack', 'xoxb-MARKERUNKNOWN')
        r = self.smoke('unknown', 'release', org, bot, 'slack')
        self.assertEqual(r['code'], 'denied', r['out'])
        self.assertIn('allowlist', r['message'])
        self.assertNotIn('token', r)
        rows = [row for row in self.audit(bot) if row[3] == self.unknown_public]
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][:3], (None, 'release', 'denied'))

    def test_call_boxed_to_another_key_is_not_opened(self):
        r = self.smoke('ops', 'status', env={'BCRM_VAULT_PUBLIC_KEY': self.unknown_public})
        self.assertEqual(r['rc'], 1, r['out'])
        self.assertIn('could not open the call', r['out'])

    def test_stale_call_is_refused(self):
        org, bot = new_id(), new_id()
        self.store(org, bot, 'slack', 'xoxb-MARKERSTALE')
        r = self.smoke('sender-slack', 'stale', org, bot, 'slack')
        self.assertEqual(r.get('stale'), 'code denied', r['out'])
        self.assertIn(('sender-slack', 'release', 'stale'),
                      [row[:3] for row in self.audit(bot)])

    def test_destroy_then_release_is_not_found(self):
        org, bot = new_id(), new_id()
        self.store(org, bot, 'messenger', 'EAAG-MARKERDESTROY')
        self.assertEqual(self.smoke('api', 'destroy', org, bot)['code'], 'ok')
        r = self.smoke('sender-messenger', 'release', org, bot, 'messenger')
        self.assertEqual(r['code'], 'not_found', r['out'])
        self.assertEqual(self.s.sql(f"SELECT count(*) FROM bot_tokens WHERE bot_id = '{bot}'"),
                         [('0',)])
        # Destroy is idempotent.
        self.assertEqual(self.smoke('api', 'destroy', org, bot)['code'], 'ok')
        rows = [row[:3] for row in self.audit(bot)]
        self.assertEqual(rows, [('api', 'store', 'ok'), ('api', 'destroy', 'ok'),
                                ('sender-messenger', 'release', 'not_found'),
                                ('api', 'destroy', 'absent')])

    def test_replayed_store_does_not_resurrect(self):
        org, bot = new_id(), new_id()
        self.markers.append('xoxb-MARKERREPLAY')
        r = self.smoke('api', 'replay', org, bot, 'slack', 'xoxb-MARKERREPLAY')
        self.assertEqual(r.get('store'), 'code ok', r['out'])
        self.assertEqual(r.get('destroy'), 'code ok', r['out'])
        # The repeat gets the first answer back, and changes nothing.
        self.assertEqual(r.get('replayed-store'), 'code ok', r['out'])
        r = self.smoke('sender-slack', 'release', org, bot, 'slack')
        self.assertEqual(r['code'], 'not_found', r['out'])
        stores = [row for row in self.audit(bot) if row[1] == 'store']
        self.assertEqual(len(stores), 1, stores)

    def test_moved_ciphertext_does_not_open(self):
        org, bot_a, bot_b = new_id(), new_id(), new_id()
        self.store(org, bot_a, 'slack', 'xoxb-MARKERMOVEA')
        self.store(org, bot_b, 'slack', 'xoxb-MARKERMOVEB')
        self.s.sql(f"UPDATE bot_tokens SET (nonce, ciphertext, key_version) ="
                   f" (SELECT nonce, ciphertext, key_version FROM bot_tokens"
                   f"  WHERE bot_id = '{bot_a}') WHERE bot_id = '{bot_b}'")
        r = self.smoke('sender-slack', 'release', org, bot_b, 'slack')
        self.assertEqual(r['code'], 'internal', r['out'])
        self.assertIn('does not authenticate', r['message'])
        self.assertNotIn('token', r)
        self.assertIn(('sender-slack', 'release', 'corrupt'), [x[:3] for x in self.audit(bot_b)])
        # Bot A's own row still opens.
        r = self.smoke('sender-slack', 'release', org, bot_a, 'slack')
        self.assertEqual(r.get('token'), 'xoxb-MARKERMOVEA', r['out'])

    def test_audit_failure_refuses_the_operation(self):
        org, stored_bot, new_bot = new_id(), new_id(), new_id()
        self.store(org, stored_bot, 'slack', 'xoxb-MARKERAUDITFAIL1')
        # From here on, every audit insert for this org fails.
        self.s.sql(f"""
            CREATE FUNCTION test_audit_fail() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit disk full'; END $$;
            CREATE TRIGGER test_audit_fail BEFORE INSERT ON vault_audit
            FOR EACH ROW WHEN (NEW.org_id = '{org}') EXECUTE FUNCTION test_audit_fail();""")
        try:
            r = self.store(org, new_bot, 'slack', 'xoxb-MARKERAUDITFAIL2')
            self.assertEqual(r['code'], 'internal', r['out'])
            r = self.smoke('sender-slack', 'release', org, stored_bot, 'slack')
            self.assertEqual(r['code'], 'internal', r['out'])
            self.assertNotIn('token', r)
            r = self.smoke('api', 'destroy', org, stored_bot)
            self.assertEqual(r['code'], 'internal', r['out'])
        finally:
            self.s.sql('DROP TRIGGER test_audit_fail ON vault_audit;'
                       ' DROP FUNCTION test_audit_fail();')
        # Nothing was done: the new store left no row, the destroy deleted nothing.
        rows = self.s.sql(f"SELECT bot_id FROM bot_tokens WHERE org_id = '{org}'")
        self.assertEqual(rows, [(stored_bot,)])
        r = self.smoke('sender-slack', 'release', org, stored_bot, 'slack')
        self.assertEqual(r.get('token'), 'xoxb-MARKERAUDITFAIL1', r['out'])

    def test_concurrent_releases(self):
        org, bot = new_id(), new_id()
        self.store(org, bot, 'slack', 'xoxb-MARKERCONC')
        r = self.smoke('sender-slack', 'concurrent', '8', org, bot, 'slack')
        self.assertEqual(r.get('released'), '40 of 40', r['out'])

    def test_slow_call_does_not_block_others(self):
        org, slow_bot, bot = new_id(), new_id(), new_id()
        self.store(org, slow_bot, 'slack', 'xoxb-MARKERSLOW1')
        self.store(org, bot, 'slack', 'xoxb-MARKERSLOW2')
        # Hold slow_bot's row locked for a while: a store to it waits on the lock
        # (and NNG resends it meanwhile); calls about other bots must not wait.
        locker = subprocess.Popen(
            ['psql', '-X', '-q', '-d', self.s.env['BCRM_DATABASE_URL'], '-c',
             f"BEGIN; SELECT 1 FROM bot_tokens WHERE bot_id = '{slow_bot}' FOR UPDATE;"
             f" SELECT pg_sleep(4); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            slow = subprocess.Popen(
                [self.smoke_bin, self.key('api'), 'store', org, slow_bot, 'slack',
                 'xoxb-MARKERSLOW3'], env=self.s._base_env(), stdout=subprocess.PIPE,
                text=True)
            self.markers.append('xoxb-MARKERSLOW3')
            time.sleep(0.3)
            started = time.monotonic()
            r = self.smoke('sender-slack', 'release', org, bot, 'slack')
            elapsed = time.monotonic() - started
            self.assertEqual(r.get('token'), 'xoxb-MARKERSLOW2', r['out'])
            self.assertLess(elapsed, 2.0)
            self.assertIsNone(slow.poll(), 'the store did not wait for the row lock')
            out, _ = slow.communicate(timeout=30)
            self.assertIn('code ok', out)
        finally:
            locker.wait(timeout=30)
        # The store, resent while it waited, was applied and audited once.
        stores = [row for row in self.audit(slow_bot) if row[1] == 'store']
        self.assertEqual(len(stores), 2, stores)
        r = self.smoke('sender-slack', 'release', org, slow_bot, 'slack')
        self.assertEqual(r.get('token'), 'xoxb-MARKERSLOW3', r['out'])

    def test_staged_token_is_promoted_only_as_stored(self):
        """A token staged for a bot waits under the bot's staging id without touching
        the bot's token; promoting it moves that very copy to the bot (sealed again
        under the bot's binding, a new token_ref) and deletes the staged row, in one
        audited step. A staged copy replaced since is not promoted, nor one of
        another org or platform, and only the api may promote."""
        org, bot = new_id(), new_id()
        self.markers += ['xoxb-MARKEROLD', 'xoxb-MARKERSTAGED', 'xoxb-MARKERSTAGED2']
        self.assertEqual(self.store(org, bot, 'slack', 'xoxb-MARKEROLD')['code'], 'ok')
        old = self.smoke('sender-slack', 'release', org, bot, 'slack')
        self.assertRegex(old.get('ref', ''), r'^[0-9a-f]{48}$', old['out'])

        staged = self.smoke('api', 'stage', org, bot, 'slack', 'xoxb-MARKERSTAGED')
        self.assertEqual(staged['code'], 'ok', staged['out'])
        staging_id = staged['staging_id']
        self.assertNotEqual(staging_id, bot)
        self.assertRegex(staging_id, r'^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-')
        # The same bot always stages under the same id, whatever the case it is named in.
        again = self.smoke('api', 'stage', org, bot.upper(), 'slack', 'xoxb-MARKERSTAGED')
        self.assertEqual(again['staging_id'], staging_id, again['out'])
        self.assertNotEqual(again['ref'], staged['ref'], 'a store names a new copy')
        # The bot's own token is untouched; a sender can verify the staged one.
        r = self.smoke('sender-slack', 'release', org, bot, 'slack')
        self.assertEqual((r.get('token'), r.get('ref')), ('xoxb-MARKEROLD', old['ref']))
        r = self.smoke('sender-slack', 'release', org, staging_id, 'slack')
        self.assertEqual((r.get('token'), r.get('ref')), ('xoxb-MARKERSTAGED', again['ref']))

        # The copy named by the first stage is gone: nothing moves.
        r = self.smoke('api', 'promote', org, bot, 'slack', staged['ref'])
        self.assertEqual(r['code'], 'not_found', r['out'])
        self.assertIn('replaced since it was stored', r['message'])
        self.assertEqual(self.smoke('sender-slack', 'release', org, bot, 'slack').get('token'),
                         'xoxb-MARKEROLD')
        # Only the api promotes; another org or platform finds nothing staged.
        self.assertEqual(self.smoke('sender-slack', 'promote', org, bot, 'slack',
                                    again['ref'])['code'], 'denied')
        self.assertEqual(self.smoke('api', 'promote', new_id(), bot, 'slack',
                                    again['ref'])['code'], 'not_found')
        self.assertEqual(self.smoke('api', 'promote', org, bot, 'messenger',
                                    again['ref'])['code'], 'not_found')

        r = self.smoke('api', 'promote', org, bot, 'slack', again['ref'])
        self.assertEqual(r['code'], 'ok', r['out'])
        r = self.smoke('sender-slack', 'release', org, bot, 'slack')
        self.assertEqual(r.get('token'), 'xoxb-MARKERSTAGED', r['out'])
        self.assertNotIn(r.get('ref'), (old['ref'], again['ref']))
        self.assertEqual(self.s.sql(f"SELECT count(*) FROM bot_tokens"
                                    f" WHERE bot_id = '{staging_id}'"), [('0',)])
        self.assertEqual(self.smoke('api', 'promote', org, bot, 'slack',
                                    again['ref'])['code'], 'not_found', 'promoted twice')
        promotes = [row[:3] for row in self.audit(bot) if row[1] == 'promote']
        self.assertEqual(promotes, [('api', 'promote', 'not_found'),
                                    ('sender-slack', 'promote', 'denied'),
                                    ('api', 'promote', 'not_found'),
                                    ('api', 'promote', 'not_found'),
                                    ('api', 'promote', 'ok'), ('api', 'promote', 'not_found')])

        # Destroying the bot's token takes a staged one with it.
        self.assertEqual(self.smoke('api', 'stage', org, bot, 'slack',
                                    'xoxb-MARKERSTAGED2')['code'], 'ok')
        self.assertEqual(self.smoke('api', 'destroy', org, bot)['code'], 'ok')
        self.assertEqual(self.s.sql(f"SELECT count(*) FROM bot_tokens WHERE bot_id IN"
                                    f" ('{bot}', '{staging_id}')"), [('0',)])
        r = self.smoke('sender-slack', 'release', org, staging_id, 'slack')
        self.assertEqual(r['code'], 'not_found', r['out'])

    def test_audit_rows(self):
        org, bot = new_id(), new_id()
        self.store(org, bot, 'slack', 'xoxb-MARKERAUDIT')
        self.smoke('sender-slack', 'release', org, bot, 'slack')
        self.smoke('api', 'destroy', org, bot)
        rows = self.audit(bot)
        self.assertEqual([r[:3] for r in rows], [('api', 'store', 'ok'),
                                                 ('sender-slack', 'release', 'ok'),
                                                 ('api', 'destroy', 'ok')])
        pubs = self.s.public_keys
        self.assertEqual([r[3] for r in rows], [pubs['api'], pubs['sender-slack'], pubs['api']])
        for r in rows:
            self.assertRegex(r[4], r'^[0-9a-f]{32}$')
            self.assertEqual(r[5], org)
        self.assertEqual(len({r[4] for r in rows}), 3)

    # ---- at rest and in the ops view -----------------------------------------

    def test_y_dump_holds_no_token(self):
        org, bot = new_id(), new_id()
        self.store(org, bot, 'slack', 'xoxb-MARKERDUMP')
        dump = self.s.pg_dump()
        self.assertIn('bot_tokens', dump)
        self.assertIn(bot, dump)
        for marker in self.markers + ['MARKER']:
            self.assertNotIn(marker, dump)
            # bytea columns dump as hex: a plaintext token would show up that way.
            self.assertNotIn(marker.encode().hex(), dump)
        self.assertNotIn('MARKER'.encode().hex(), dump)
        for log in (self.s.log('vault'),):
            self.assertNotIn('MARKER', log)

    def test_metrics_and_status(self):
        self.smoke('sender-slack', 'release', new_id(), new_id(), 'slack')
        status, _, text = self.s.ops('vault', '/metrics')
        self.assertEqual(status, 200)
        m = re.search(r'^bcrm_vault_requests_total\{op="release",outcome="not_found"\} (\d+)',
                      text, re.M)
        self.assertIsNotNone(m, text)
        self.assertGreaterEqual(int(m.group(1)), 1)

        res = self.s.bcrmctl('vault', 'status')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn('vault: ok', res.stdout)
        count = int(self.s.sql('SELECT count(*) FROM bot_tokens')[0][0])
        self.assertIn(f'tokens: {count}', res.stdout)
        self.assertIn('key version: 1', res.stdout)

    # ---- bcrmctl -------------------------------------------------------------

    def test_bcrmctl(self):
        tool = self.s.bcrmctl_path()
        d = os.path.join(self.s.work_dir, 'ctl')
        os.makedirs(d)

        def run(*args, env=None):
            penv = self.s._base_env()
            penv.update(env or {})
            return subprocess.run([tool] + list(args), env=penv, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)

        res = run('keygen', f'{d}/id.key')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stdout, r'^[0-9a-f]{64}\n$')
        self.assertEqual(os.stat(f'{d}/id.key').st_mode & 0o777, 0o600)
        self.assertEqual(run('pubkey', f'{d}/id.key').stdout, res.stdout)
        res = run('keygen', f'{d}/id.key')
        self.assertEqual(res.returncode, 1)
        self.assertIn('File exists', res.stderr)

        res = run('masterkey', f'{d}/master.key')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, '')
        self.assertEqual(os.stat(f'{d}/master.key').st_mode & 0o777, 0o600)
        with open(f'{d}/master.key') as f:
            self.assertRegex(f.read(), r'^[0-9a-f]{64}\n$')
        self.assertEqual(run('masterkey', f'{d}/master.key').returncode, 1)

        os.chmod(f'{d}/id.key', 0o644)
        res = run('pubkey', f'{d}/id.key')
        self.assertEqual(res.returncode, 1)
        self.assertIn('chmod 600', res.stderr)

        for args in ((), ('frobnicate',), ('keygen',), ('vault',), ('vault', 'frobnicate'),
                     ('vault', 'rewrap', '--batch', '0'), ('vault', 'status', 'extra')):
            res = run(*args)
            self.assertEqual(res.returncode, 2, args)
            self.assertIn('usage: bcrmctl', res.stderr)
        self.assertEqual(run('--help').returncode, 0)

        res = run('vault', 'status')  # no identity in the environment
        self.assertEqual(res.returncode, 2)
        self.assertIn('BCRM_IDENTITY_KEY_FILE', res.stderr)
        res = run('vault', 'status', env={'BCRM_IDENTITY_KEY_FILE': self.s._key_path('api')})
        self.assertEqual(res.returncode, 1)
        self.assertIn('may not', res.stderr)

    # ---- start-up refusals ---------------------------------------------------

    def test_refuses_readable_master_key(self):
        path = os.path.join(self.s.work_dir, 'readable-master.key')
        shutil.copy(self.s.env['BCRM_VAULT_MASTER_KEY_FILE'], path)
        os.chmod(path, 0o640)
        res = self.run_vault({'BCRM_VAULT_MASTER_KEY_FILE': path})
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('readable by group or others', res.stdout)
        self.assertIn('BCRM_VAULT_MASTER_KEY_FILE', res.stdout)

    def test_refuses_missing_master_key(self):
        path = os.path.join(self.s.work_dir, 'no-such-master.key')
        res = self.run_vault({'BCRM_VAULT_MASTER_KEY_FILE': path})
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('BCRM_VAULT_MASTER_KEY_FILE', res.stdout)
        self.assertIn(path, res.stdout)
        res = self.run_vault({'BCRM_VAULT_MASTER_KEY_FILE': ''})
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('BCRM_VAULT_MASTER_KEY_FILE', res.stdout)

    def test_refuses_wrong_master_key(self):
        path = os.path.join(self.s.work_dir, 'other-master.key')
        subprocess.run([self.s.bcrmctl_path(), 'masterkey', path], check=True)
        res = self.run_vault({'BCRM_VAULT_MASTER_KEY_FILE': path})
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('root key does not match key version 1', res.stdout)

    def test_refuses_bad_allowlist(self):
        path = os.path.join(self.s.work_dir, 'bad-allowlist')
        with open(path, 'w') as f:
            f.write('# comment\napi ' + 'ab' * 32 + '\nroot ' + 'cd' * 32 + '\n')
        res = self.run_vault({'BCRM_VAULT_ALLOWLIST_FILE': path})
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('line 3: unknown role \\"root\\"', res.stdout)

    # ---- last: restart -------------------------------------------------------

    def test_z_sigterm_and_restart(self):
        org, bot = new_id(), new_id()
        self.store(org, bot, 'messenger', 'EAAG-MARKERRESTART')
        self.assertEqual(self.s.kill('vault', sig=signal.SIGTERM), 0)
        self.s.start('vault')
        r = self.smoke('sender-messenger', 'release', org, bot, 'messenger')
        self.assertEqual(r.get('token'), 'EAAG-MARKERRESTART', r['out'])
        codes = self.s.stop()
        self.assertEqual(codes, {'vault': 0})


if __name__ == '__main__':
    unittest.main(verbosity=2)
