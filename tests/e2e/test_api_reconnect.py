#!/usr/bin/python3
"""Reconnecting a bot: POST /v1/orgs/{org}/bots/{bot}/token (services/api/bots_reconnect.c,
docs/vault.md "Staged tokens").

Real processes only: PostgreSQL, slack-sim (two workspaces), messenger-sim (two
pages), vault, sender-slack, sender-messenger, api.

* A bot whose token Slack refused (token_invalid) takes its token again: active,
  with its name and scopes read again, the answer the bot (never the token) with
  its paused campaigns listed, which stay paused; the vault holds a new copy and
  no staged one; the live reads work again.
* The token of another workspace, of another bot user (another app), of another
  page: 409 naming the field and the identity that differs, and nothing changed
  (the bot's row and the very ciphertext the vault holds, no staged row left).
* A bot whose app was uninstalled (Slack's app_uninstalled, as slack-sim signs and
  delivers it: the token destroyed) takes the token of the reinstall.
* A token the platform refuses: 422 with the platform's error; no sender: 503;
  both leave everything as it was.
* Bad JSON, a missing token, the other platform's field or platform, a bot of
  another org or none, a viewer, a session without Origin or CSRF token: 400,
  422, 404, 403; an API key works; an Idempotency-Key replays the first answer.
"""
import hashlib
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR',
                os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                'scripts'))
from stack import Stack, http_request  # noqa: E402

S = None
SLACK_SECRET = 'slack-signing-secret-' + uuid.uuid4().hex


def setUpModule():
    global S
    S = Stack()
    try:
        S.start_postgres()
        S.make_keys()
        S.start('slack-sim', env={'SLACK_SIM_WORKSPACES': '2', 'SLACK_SIM_USERS': '40',
                                  'SLACK_SIM_SIGNING_SECRET': SLACK_SECRET,
                                  'SLACK_SIM_EVENTS_URL': S.api_url + '/v1/webhooks/slack/events'},
                wait=False)
        S.start('messenger-sim', env={'MESSENGER_SIM_PAGES': '2'}, wait=False)
        S.start('vault', wait=False)
        S.start('sender-slack', wait=False)
        S.start('sender-messenger', wait=False)
        S.start('api', env={'BCRM_PASSWORD_HASH_COST': 'min', 'BCRM_API_QUERY_TIMEOUT': '3s',
                            'BCRM_SLACK_SIGNING_SECRET': SLACK_SECRET}, wait=False)
        S.wait_ready([S.procs[k] for k in ('slack-sim', 'messenger-sim', 'vault', 'sender-slack',
                                           'sender-messenger', 'api')])
    except Exception:
        S.stop()
        raise


def tearDownModule():
    codes = S.stop()
    assert not {k: v for k, v in codes.items() if v != 0}, codes


def staging_id(bot):
    """token_staging_id() of common/include/bcrm/token_staging.h, in Python."""
    h = bytearray(hashlib.blake2b(b'bcrm.token.staging.v1\0' + bot.lower().encode(),
                                  digest_size=16).digest())
    h[6] = (h[6] & 0x0f) | 0x80
    h[8] = (h[8] & 0x3f) | 0x80
    x = h.hex()
    return f'{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}'


class ReconnectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.org = cls.signup('owner')
        _, _, ws = S.sim('GET', '/_sim/workspaces')
        cls.ws, cls.other_ws = ws['workspaces'][0], ws['workspaces'][1]
        _, _, pages = S.msim('GET', '/_sim/pages')
        cls.page, cls.other_page = pages['pages'][0], pages['pages'][1]

    @staticmethod
    def signup(who):
        status, _, body = S.api('POST', '/v1/signup', {
            'name': who, 'email': f'{who}{uuid.uuid4().hex[:8]}@example.com',
            'password': 'long enough password', 'org_name': f'{who} org'})
        assert status == 201, body
        return body['org']['id']

    def setUp(self):
        S.sim('POST', '/_sim/reset', {})
        S.msim('POST', '/_sim/reset', {})

    # ---- helpers -------------------------------------------------------------

    def connect(self, platform='slack', token=None):
        body = {'platform': platform}
        if platform == 'slack':
            body['token'] = token or self.ws['token']
        else:
            body['page_token'] = token or self.page['token']
        status, _, bot = S.api('POST', f'/v1/orgs/{self.org}/bots', body)
        self.assertEqual(status, 201, bot)
        return bot

    def reconnect(self, bot, body, headers=None, org=None):
        return S.api('POST', f'/v1/orgs/{org or self.org}/bots/{bot["id"]}/token', body,
                     headers=headers)

    def get_bot(self, bot):
        status, _, body = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}')
        self.assertEqual(status, 200, body)
        return body

    def stored(self, bot):
        """What the vault holds for the bot: (nonce of its ciphertext, key version), and
        whether a staged token waits."""
        rows = S.sql(f"SELECT encode(nonce, 'hex'), key_version FROM bot_tokens"
                     f" WHERE bot_id = '{bot['id']}'")
        staged = S.sql(f"SELECT count(*) FROM bot_tokens WHERE bot_id = '{staging_id(bot['id'])}'")
        return rows[0] if rows else None, staged[0][0] != '0'

    def revoke_slack(self, bot):
        """Slack refuses the bot's token: a live read answers 502 and marks it."""
        S.sim('POST', '/_sim/faults', {'revoke_token': self.ws['team_id']})
        status, _, problem = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}/users')
        self.assertEqual(status, 502, problem)
        self.assertEqual(self.get_bot(bot)['status'], 'token_invalid')

    def campaign(self, bot, *actions):
        status, _, c = S.api('POST', f'/v1/orgs/{self.org}/campaigns', {
            'name': 'reconnect', 'bot_id': bot['id'], 'message': {'text': 'hi'},
            'audience': {'filter': {'all': True}}, 'schedule': {'mode': 'now'}})
        self.assertEqual(status, 201, c)
        for action in actions:
            status, _, c = S.api('POST', f'/v1/orgs/{self.org}/campaigns/{c["id"]}/{action}')
            self.assertEqual(status, 200, c)
        return c

    def assert_unchanged(self, bot, before_row, before_vault):
        after = self.get_bot(bot)
        self.assertEqual({k: after[k] for k in before_row}, before_row)
        self.assertEqual(self.stored(bot), (before_vault[0], False),
                         'the vault no longer holds the same copy, or a staged one is left')

    # ---- the reconnect -------------------------------------------------------

    def test_revoked_slack_bot_is_reconnected(self):
        bot = self.connect()
        paused = self.campaign(bot, 'schedule', 'pause')
        draft = self.campaign(bot)
        before, _ = self.stored(bot)
        self.revoke_slack(bot)
        S.sim('POST', '/_sim/faults', {'restore_token': self.ws['team_id']})
        # Someone changed the bot's name and scopes on Slack's side meanwhile.
        S.sql(f"UPDATE bots SET name = 'old name', scopes = 'chat:write' WHERE id = '{bot['id']}'")

        status, _, body = self.reconnect(bot, {'token': self.ws['token']})
        self.assertEqual(status, 200, body)
        self.assertEqual(body['id'], bot['id'])
        self.assertEqual(body['status'], 'active')
        self.assertEqual((body['team_id'], body['bot_user_id']),
                         (bot['team_id'], bot['bot_user_id']))
        self.assertEqual((body['name'], body['scopes']), (bot['name'], bot['scopes']))
        self.assertGreater(body['updated_at'], bot['updated_at'])
        self.assertEqual(body['paused_campaigns'], [paused['id']])
        self.assertNotIn(self.ws['token'], str(body))
        # Campaigns stay as they were: the user resumes them.
        for c, want in ((paused, 'paused'), (draft, 'draft')):
            self.assertEqual(S.api('GET', f'/v1/orgs/{self.org}/campaigns/{c["id"]}')[2]['status'],
                             want)
        # A new copy of the token is the bot's; none waits staged.
        after, staged = self.stored(bot)
        self.assertIsNotNone(after)
        self.assertNotEqual(after[0], before[0])
        self.assertFalse(staged)
        audit = S.sql(f"SELECT role, outcome FROM vault_audit WHERE operation = 'promote'"
                      f" AND bot_id = '{bot['id']}'")
        self.assertEqual(audit, [('api', 'ok')])
        # The platform is read with it again.
        status, _, page = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}/users?limit=5')
        self.assertEqual(status, 200, page)
        # The token went to the vault only.
        self.assertNotIn(self.ws['token'], S.log('api'))
        self.assertNotIn(self.ws['token'], S.pg_dump())

    def test_uninstalled_app_is_reconnected(self):
        bot = self.connect(token=self.other_ws['token'])
        paused = self.campaign(bot, 'schedule')
        _, _, answer = S.sim('POST', '/_sim/events', {'type': 'app_uninstalled',
                                                      'team_id': self.other_ws['team_id']})
        self.assertEqual(answer['status'], 200, answer)
        self.assertEqual(self.get_bot(bot)['status'], 'token_invalid')
        self.assertEqual(self.stored(bot), (None, False), 'the token was not destroyed')
        self.assertEqual(S.api('GET', f'/v1/orgs/{self.org}/campaigns/{paused["id"]}')[2]
                         ['status'], 'paused')
        # Reinstalled: the workspace's token works again.
        S.sim('POST', '/_sim/faults', {'restore_token': self.other_ws['team_id']})
        status, _, body = self.reconnect(bot, {'token': self.other_ws['token']})
        self.assertEqual(status, 200, body)
        self.assertEqual((body['status'], body['team_id'], body['paused_campaigns']),
                         ('active', self.other_ws['team_id'], [paused['id']]))
        self.assertIsNotNone(self.stored(bot)[0])
        status, _, page = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}/users?limit=5')
        self.assertEqual(status, 200, page)

    def test_active_bot_takes_a_new_token_too(self):
        bot = self.connect()
        status, _, body = self.reconnect(bot, {'platform': 'slack', 'token': self.ws['token']})
        self.assertEqual(status, 200, body)
        self.assertEqual((body['status'], body['paused_campaigns']), ('active', []))

    def test_token_of_another_workspace_is_refused(self):
        bot = self.connect()
        self.revoke_slack(bot)
        before_row = {k: v for k, v in self.get_bot(bot).items()}
        before_vault = self.stored(bot)
        status, _, problem = self.reconnect(bot, {'token': self.other_ws['token']})
        self.assertEqual(status, 409, problem)
        self.assertEqual((problem['field'], problem['mismatch']), ('token', 'team_id'))
        self.assertEqual((problem['expected'], problem['got']),
                         (self.ws['team_id'], self.other_ws['team_id']))
        self.assertIn('another workspace', problem['detail'])
        self.assert_unchanged(bot, before_row, before_vault)

    def test_token_of_another_bot_user_is_refused(self):
        # As if the bot had been installed by another app of this workspace: its
        # bot user is not the one this token acts as.
        bot = self.connect()
        S.sql(f"UPDATE bots SET bot_user_id = 'UANOTHERAPP' WHERE id = '{bot['id']}'")
        before_row = self.get_bot(bot)
        before_vault = self.stored(bot)
        status, _, problem = self.reconnect(bot, {'token': self.ws['token']})
        self.assertEqual(status, 409, problem)
        self.assertEqual((problem['field'], problem['mismatch'], problem['expected']),
                         ('token', 'bot_user_id', 'UANOTHERAPP'))
        self.assertIn('another app', problem['detail'])
        self.assert_unchanged(bot, before_row, before_vault)

    def test_token_the_platform_refuses(self):
        bot = self.connect()
        self.revoke_slack(bot)
        before_row = self.get_bot(bot)
        before_vault = self.stored(bot)
        # Still revoked on Slack's side: the same token is refused again.
        status, _, problem = self.reconnect(bot, {'token': self.ws['token']})
        self.assertEqual(status, 422, problem)
        self.assertEqual((problem['field'], problem['platform'], problem['platform_error']),
                         ('token', 'slack', 'token_revoked'))
        self.assertIn('token_revoked', problem['detail'])
        status, _, problem = self.reconnect(bot, {'token': 'xoxb-not-a-real-token'})
        self.assertEqual(status, 422, problem)
        self.assertEqual(problem['platform_error'], 'invalid_auth')
        self.assert_unchanged(bot, before_row, before_vault)
        self.assertNotIn('xoxb-not-a-real-token', S.log('api'))
        S.sim('POST', '/_sim/faults', {'restore_token': self.ws['team_id']})

    def test_messenger_page(self):
        bot = self.connect('messenger')
        before_row = self.get_bot(bot)
        before_vault = self.stored(bot)
        status, _, problem = self.reconnect(bot, {'page_token': self.other_page['token']})
        self.assertEqual(status, 409, problem)
        self.assertEqual((problem['field'], problem['mismatch'], problem['got']),
                         ('page_token', 'page_id', self.other_page['page_id']))
        self.assertIn('another page', problem['detail'])
        self.assert_unchanged(bot, before_row, before_vault)
        status, _, problem = self.reconnect(bot, {'token': self.page['token']})
        self.assertEqual((status, problem['field']), (422, 'token'), problem)

        S.msim('POST', '/_sim/faults', {'revoke_token': self.page['page_id']})
        try:
            status, _, problem = self.reconnect(bot, {'page_token': self.page['token']})
            self.assertEqual(status, 422, problem)
            self.assertEqual(problem['platform'], 'messenger')
            self.assertEqual(problem['platform_error'], 'invalid_token')  # Graph's 190
        finally:
            S.msim('POST', '/_sim/faults', {'restore_token': self.page['page_id']})
        self.assert_unchanged(bot, before_row, before_vault)
        status, _, body = self.reconnect(bot, {'page_token': self.page['token']})
        self.assertEqual(status, 200, body)
        self.assertEqual((body['page_id'], body['status']), (self.page['page_id'], 'active'))
        self.assertNotEqual(self.stored(bot)[0][0], before_vault[0][0])

    def test_bad_requests(self):
        bot = self.connect()
        path = f'/v1/orgs/{self.org}/bots/{bot["id"]}/token'
        status, _, problem = S.api('POST', path, '{"token": ')
        self.assertEqual(status, 400, problem)
        for body, field in [({}, 'token'),
                            ({'token': ''}, 'token'),
                            ({'token': 42}, 'token'),
                            ({'token': 'abc'}, 'token'),
                            ({'page_token': 'EAAG-x'}, 'page_token'),
                            ({'platform': 'messenger', 'token': self.ws['token']}, 'platform'),
                            ({'token': self.ws['token'], 'team_id': 'T1'}, 'team_id')]:
            status, _, problem = S.api('POST', path, body)
            self.assertEqual((status, problem.get('field')), (422, field), (body, problem))
        status, _, problem = S.api('POST', path, ['not', 'an', 'object'])
        self.assertEqual(status, 422, problem)

        # Another org's bot, and no bot at all, are 404.
        other = self.signup('stranger')  # the session is now the stranger's
        status, _, problem = self.reconnect(bot, {'token': self.ws['token']}, org=other)
        self.assertEqual(status, 404, problem)
        status, _, problem = S.api('POST', f'/v1/orgs/{other}/bots/{uuid.uuid4()}/token',
                                   {'token': self.ws['token']})
        self.assertEqual(status, 404, problem)
        status, _, problem = S.api('POST', f'/v1/orgs/{other}/bots/not-a-uuid/token',
                                   {'token': self.ws['token']})
        self.assertEqual(status, 404, problem)
        # Back to the owner's session; a viewer of the org may not reconnect.
        status, _, me = S.api('POST', '/v1/login', {'email': self.owner_email(),
                                                    'password': 'long enough password'})
        self.assertEqual(status, 200, me)
        stranger_email = S.sql(f"SELECT a.email FROM accounts a JOIN memberships m"
                               f" ON m.account_id = a.id WHERE m.org_id = '{other}'")[0][0]
        status, _, _ = S.api('POST', f'/v1/orgs/{self.org}/members',
                             {'email': stranger_email, 'role': 'viewer'})
        self.assertEqual(status, 201)
        status, _, _ = S.api('POST', '/v1/login', {'email': stranger_email,
                                                   'password': 'long enough password'})
        self.assertEqual(status, 200)
        status, _, problem = self.reconnect(bot, {'token': self.ws['token']})
        self.assertEqual(status, 403, problem)
        self.assertIn('editor', problem['detail'])
        status, _, me = S.api('POST', '/v1/login', {'email': self.owner_email(),
                                                    'password': 'long enough password'})
        self.assertEqual(status, 200, me)

        # A session needs Origin or the CSRF token; an API key needs neither.
        cookie = '; '.join(f'{k}={v}' for k, v in S.cookies.items())
        status, _, problem = http_request(S.api_url + path, 'POST', {'token': self.ws['token']},
                                          {'Cookie': cookie})
        self.assertEqual(status, 403, problem)
        self.assertIn('CSRF', problem['detail'])
        status, _, key = S.api('POST', f'/v1/orgs/{self.org}/api-keys', {'name': 'reconnect'})
        self.assertEqual(status, 201, key)
        status, _, body = http_request(S.api_url + path, 'POST', {'token': self.ws['token']},
                                       {'Authorization': f'Bearer {key["key"]}'})
        self.assertEqual(status, 200, body)
        self.assertEqual(body['status'], 'active')

    @classmethod
    def owner_email(cls):
        return S.sql(f"SELECT a.email FROM accounts a JOIN memberships m ON m.account_id = a.id"
                     f" WHERE m.org_id = '{cls.org}' AND m.role = 'owner'")[0][0]

    def test_idempotency_key_replays_the_first_answer(self):
        bot = self.connect()
        key = {'Idempotency-Key': f'reconnect-{uuid.uuid4()}'}
        status, h1, first = self.reconnect(bot, {'token': self.ws['token']}, headers=key)
        self.assertEqual(status, 200, first)
        status, h2, again = self.reconnect(bot, {'token': self.ws['token']}, headers=key)
        self.assertEqual((status, again), (200, first))
        self.assertEqual(h2.get('idempotent-replayed'), 'true')
        promotes = S.sql(f"SELECT count(*) FROM vault_audit WHERE operation = 'promote'"
                         f" AND bot_id = '{bot['id']}'")
        self.assertEqual(promotes, [('1',)])
        # What the key's record keeps of the request is no digest of the token: the
        # body counts without its secret fields (here {}), so a repeat that differs
        # only in its token replays the first answer too.
        path = f'/v1/orgs/{self.org}/bots/{bot["id"]}/token'.encode()
        stored = S.sql("SELECT encode(request_hash, 'hex') FROM idempotency_keys"
                       f" WHERE key = '{key['Idempotency-Key']}'")[0][0]
        raw = json.dumps({'token': self.ws['token']}).encode()
        self.assertNotEqual(stored, hashlib.sha256(b'POST\0' + path + b'\0' + raw).hexdigest())
        self.assertEqual(stored, hashlib.sha256(b'POST\0' + path + b'\0' + b'{}').hexdigest())
        status, _, again = self.reconnect(bot, {'token': 'xoxb-' + uuid.uuid4().hex}, headers=key)
        self.assertEqual((status, again), (200, first))

    def test_bot_that_is_not_active_or_token_invalid(self):
        bot = self.connect()
        S.sql(f"UPDATE bots SET status = 'verifying' WHERE id = '{bot['id']}'")
        status, _, problem = self.reconnect(bot, {'token': self.ws['token']})
        self.assertEqual(status, 409, problem)
        self.assertEqual(problem['current_status'], 'verifying')
        self.assertFalse(self.stored(bot)[1])
        status, _, _ = S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')
        self.assertEqual(status, 204)
        status, _, problem = self.reconnect(bot, {'token': self.ws['token']})
        self.assertEqual(status, 404, problem)

    def test_no_sender_is_503_and_changes_nothing(self):
        bot = self.connect()
        before_row = self.get_bot(bot)
        before_vault = self.stored(bot)
        S.kill('sender-slack')
        try:
            started = time.monotonic()
            status, _, problem = self.reconnect(bot, {'token': self.ws['token']})
            self.assertEqual(status, 503, problem)
            self.assertLess(time.monotonic() - started, 20)
        finally:
            S.start('sender-slack')
        self.assert_unchanged(bot, before_row, before_vault)

    def test_deleting_a_bot_destroys_a_staged_token(self):
        # A reconnect that died after staging leaves one row; the bot's deletion
        # takes it too.
        bot = self.connect()
        sid = staging_id(bot['id'])
        S.kill('sender-slack')
        try:
            # No sender: the api gives up and destroys the staged token itself...
            status, _, _ = self.reconnect(bot, {'token': self.ws['token']})
            self.assertEqual(status, 503)
        finally:
            S.start('sender-slack')
        self.assertFalse(self.stored(bot)[1])
        # ...and a staged row left by one that died is destroyed with the bot.
        S.sql(f"INSERT INTO bot_tokens (bot_id, org_id, platform, key_version, nonce, ciphertext)"
              f" SELECT '{sid}', org_id, platform, key_version, nonce, ciphertext FROM bot_tokens"
              f" WHERE bot_id = '{bot['id']}'")
        self.assertTrue(self.stored(bot)[1])
        status, _, _ = S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')
        self.assertEqual(status, 204)
        self.assertEqual(self.stored(bot), (None, False))


if __name__ == '__main__':
    unittest.main(verbosity=2)
