#!/usr/bin/python3
"""The vault in the whole system: every service on its own database role, a
campaign sending while the operator rotates and rewraps, and a deleted bot whose
token is destroyed.

PostgreSQL (schema applied by `bcrmctl migrate` as the owner), the vault as
bcrm_vault, the scheduler as bcrm_scheduler, the api as bcrm_api, two
sender-slack replicas (no database credentials, tokens cached 100 ms so that they
keep asking the vault) and the Slack simulator. Then:

* the services work on their roles, and no service connects as anything else;
* a campaign to every reachable user completes with everyone sent and nothing
  failed or unknown although the operator rotated the key and rewrapped every
  token over and over while it was sending (at least twice between its first
  and its last send), and a release loop running meanwhile never failed; the
  releases used more than one key version;
* afterwards no token is sealed with an old version;
* DELETE of the bot destroys its ciphertext: a release answers not_found, the
  row is gone, the destroy is audited; so do Slack's app_uninstalled and
  tokens_revoked events, delivered signed to the api's webhook;
* the bot token is in no form in a dump, the PostgreSQL log or any log;
* SIGTERM: every process exits 0.
"""
import base64
import os
import subprocess
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402
from e2e_helpers import (connect_bot, create_campaign, schedule_campaign, signup,  # noqa: E402
                         wait_campaign)

USERS = 200
CAMPAIGN_TIMEOUT_S = float(os.environ.get('BCRM_E2E_CAMPAIGN_TIMEOUT', '180'))
DB_ROLES = {'vault': 'bcrm_vault', 'scheduler': 'bcrm_scheduler', 'api': 'bcrm_api'}


def role_url(owner_url, role):
    base, _, query = owner_url.partition('?')
    params = [(k, v) for k, v in urllib.parse.parse_qsl(query) if k != 'user']
    params.append(('user', role))
    return base + '?' + urllib.parse.urlencode(params, safe='/')


def as_list(body, key):
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return body[key]
    raise AssertionError(f'expected a list under "{key}", got {str(body)[:300]}')


class VaultInTheStack(unittest.TestCase):
    def ctl(self, s, *args):
        res = s.bcrmctl(*args)
        self.assertEqual(res.returncode, 0, f'bcrmctl {args}: {res.stdout}{res.stderr}')
        return res.stdout

    def release(self, s, org, bot_id):
        """What a release of the bot's token as sender-slack gives: 'token <value>'
        or 'code <name>'."""
        res = subprocess.run(
            [os.path.join(s.build_dir, 'tests', 'vault_smoke'), s._key_path('sender-slack'),
             'release', org, bot_id, 'slack'], env=s._base_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        lines = res.stdout.splitlines()
        return next((x for x in lines if x.startswith('token ')), lines[0] if lines else '')

    def test_rotation_during_a_campaign_and_bot_deletion(self):
        with Stack() as s:
            s.start_postgres()
            s.make_keys()
            owner_url = s.env['BCRM_DATABASE_URL']
            res = subprocess.run([s.bcrmctl_path(), 'migrate'], env=s._base_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.assertEqual(res.returncode, 0, res.stdout)
            s.sql("ALTER DATABASE bcrm SET log_statement = 'all'")
            started = [s.start('slack-sim', wait=False, env={
                'SLACK_SIM_USERS': str(USERS), 'SLACK_SIM_SEED': '20261203',
                'SLACK_SIM_WORKSPACES': '3'})]
            for name in ('vault', 'scheduler', 'api'):
                started.append(s.start(name, wait=False, env={
                    'BCRM_DATABASE_URL': role_url(owner_url, DB_ROLES[name]),
                    'BCRM_SLACK_SIGNING_SECRET': 'sim-signing-secret'}))
            for replica in range(2):
                started.append(s.start('sender-slack', replica, wait=False, env={
                    'BCRM_SENDER_TOKEN_TTL': '100ms'}))
            s.wait_ready(started)

            status, _, body = s.sim('GET', '/_sim/workspaces')
            self.assertEqual(status, 200, body)
            workspaces = as_list(body, 'workspaces')
            tokens = [w.get('bot_token') or w.get('token') for w in workspaces]
            token = tokens[0]
            self.assertTrue(token and token.startswith('xoxb-'), workspaces)

            org = signup(s, 'Vault Owner', 'owner@vault.bcrm.test', 'Vault Agency')
            bot = connect_bot(s, org, 'slack', token)

            # Someone else keeps asking for the token the whole time.
            stop_file = os.path.join(s.work_dir, 'stop-releasing')
            loop = subprocess.Popen(
                [os.path.join(s.build_dir, 'tests', 'vault_smoke'), s._key_path('sender-slack'),
                 'release-loop', '2', stop_file], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=s._base_env())
            loop.stdin.write(f'{org} {bot["id"]} slack {token}\n')
            loop.stdin.close()

            path, campaign = create_campaign(s, org, {
                'name': 'Sent across a key rotation', 'bot_id': bot['id'],
                'message': {'text': 'Hello {{first_name|there}}'},
                'audience': {'filter': {'all': True}}, 'schedule': {'mode': 'now'},
                'throttle_per_minute': 1200})
            # A little latency on every platform call spreads the sending out.
            status, _, body = s.sim('POST', '/_sim/faults', {'latency_ms': 30})
            self.assertEqual(status, 200, body)
            schedule_campaign(s, path)

            # The operator rotates and rewraps, again and again, until the campaign
            # is done; each round notes how far the sending was when it ended.
            done = threading.Event()
            rounds = []

            def operate():
                while not done.is_set():
                    rotate = s.bcrmctl('vault', 'rotate')
                    rewrap = s.bcrmctl('vault', 'rewrap', '--batch', '10')
                    sent, total = s.sql("SELECT count(*) FILTER (WHERE status = 'sent'),"
                                        " count(*) FROM deliveries")[0]
                    rounds.append((rotate.returncode, rewrap.returncode, int(sent), int(total),
                                   rotate.stderr + rewrap.stderr))

            operator = threading.Thread(target=operate)
            operator.start()
            try:
                campaign = wait_campaign(s, path, CAMPAIGN_TIMEOUT_S)
            finally:
                done.set()
                operator.join(timeout=120)
            open(stop_file, 'w').close()
            loop.wait(timeout=60)
            out = loop.stdout.read() + loop.stderr.read()
            loop.stdout.close()
            loop.stderr.close()

            self.assertEqual([r for r in rounds if r[0] != 0 or r[1] != 0], [])
            while_sending = [r for r in rounds if 0 < r[2] < r[3]]
            self.assertGreaterEqual(len(while_sending), 2,
                                    f'too few rotations while the campaign was sending: {rounds}')
            stats = campaign['stats']
            self.assertGreater(stats['total'], USERS // 2, stats)
            self.assertEqual((stats['sent'], stats['pending'], stats['failed'], stats['unknown']),
                             (stats['total'], 0, 0, 0), stats)
            self.assertIn('failures 0\n', out)
            current = int(s.sql("SELECT version FROM vault_keys WHERE state = 'current'")[0][0])
            self.assertEqual(current, 1 + len(rounds))
            self.assertEqual(s.sql(f'SELECT count(*) FROM bot_tokens'
                                   f' WHERE key_version <> {current}'), [('0',)])
            versions = s.sql("SELECT DISTINCT key_version FROM vault_audit WHERE role ="
                             " 'sender-slack' AND operation = 'release' AND outcome = 'ok'"
                             f" AND request_id IS NOT NULL AND bot_id = '{bot['id']}'")
            self.assertGreaterEqual(len(versions), 2, versions)

            # Every service on its own role, none as the owner.
            users = {r[0] for r in s.sql(
                "SELECT usename FROM pg_stat_activity WHERE datname = 'bcrm'"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'")}
            self.assertEqual(users, set(DB_ROLES.values()))

            # Deleting the bot destroys its token.
            status, _, body = s.api('DELETE', f'/v1/orgs/{org}/bots/{bot["id"]}')
            self.assertEqual(status, 204, body)
            self.assertEqual(self.release(s, org, bot['id']), 'code not_found')
            self.assertEqual(s.sql(f"SELECT count(*) FROM bot_tokens"
                                   f" WHERE bot_id = '{bot['id']}'"), [('0',)])
            self.assertIn(('api', 'destroy', 'ok'), s.sql(
                f"SELECT role, operation, outcome FROM vault_audit WHERE bot_id = '{bot['id']}'"))

            # Slack says the app was uninstalled, or its tokens revoked: the api's
            # webhook destroys the token.
            for workspace, event in zip(workspaces[1:], ('app_uninstalled', 'tokens_revoked')):
                other_token = workspace.get('bot_token') or workspace.get('token')
                status, _, other = s.api('POST', f'/v1/orgs/{org}/bots',
                                         {'platform': 'slack', 'token': other_token})
                self.assertEqual(status, 201, other)
                self.assertEqual(self.release(s, org, other['id']), f'token {other_token}')
                status, _, body = s.sim('POST', '/_sim/events', {
                    'type': event, 'team_id': workspace['team_id'],
                    'url': f'{s.api_url}/v1/webhooks/slack/events'})
                self.assertEqual((status, body.get('status')), (200, 200), body)
                self.assertEqual(self.release(s, org, other['id']), 'code not_found', event)
                self.assertIn(('api', 'destroy', 'ok'), s.sql(
                    f"SELECT role, operation, outcome FROM vault_audit"
                    f" WHERE bot_id = '{other['id']}'"))

            # The tokens, in any form, nowhere.
            forms = set()
            for t in tokens:
                raw = t.encode()
                forms |= {t, raw.hex(), base64.b64encode(raw).decode().rstrip('='),
                          base64.urlsafe_b64encode(raw).decode().rstrip('='),
                          urllib.parse.quote(t, safe='')}
            places = {'pg_dump': s.pg_dump()}
            with open(s.pg.log_file, errors='replace') as f:
                places['PostgreSQL log'] = f.read()
            self.assertIn('INSERT INTO bot_tokens', places['PostgreSQL log'])
            for key, proc in s.procs.items():
                if proc.name != 'slack-sim':
                    places[f'{key} log'] = s.log(proc.name, proc.replica)
            for name, text in places.items():
                self.assertEqual([f for f in forms if f in text], [], f'the token in the {name}')

            codes = s.stop()
            self.assertEqual({k: v for k, v in codes.items() if v != 0}, {}, codes)


if __name__ == '__main__':
    unittest.main(verbosity=2)
