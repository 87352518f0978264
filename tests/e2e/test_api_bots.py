#!/usr/bin/python3
"""System test of connecting bots through the whole chain (docs/architecture.md,
"Connecting a Slack bot"): bcrm-api -> vault (StoreToken) -> sender-slack
(VerifyBot, auth.test on slack-sim), and the live reads of users and channels.

Real processes only: PostgreSQL, slack-sim, vault, sender-slack, api.
"""
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR',
                os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                'scripts'))
from stack import Stack  # noqa: E402
import e2e_helpers as e2e  # noqa: E402

S = None


def setUpModule():
    global S
    S = Stack()
    S.start_postgres()
    S.make_keys()
    S.start('slack-sim', wait=False)
    S.start('vault', wait=False)
    S.start('sender-slack', wait=False)
    S.start('api', env={'BCRM_PASSWORD_HASH_COST': 'min', 'BCRM_API_QUERY_TIMEOUT': '5s'},
            wait=False)
    S.wait_ready([S.procs[k] for k in ('slack-sim', 'vault', 'sender-slack', 'api')])


def tearDownModule():
    codes = S.stop()
    assert codes.get('api') == 0, f'api did not exit cleanly: {codes}'


def workspaces():
    _, _, ws = S.sim('GET', '/_sim/workspaces')
    return ws.get('workspaces', ws) if isinstance(ws, dict) else ws


class BotTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        email = f'bots{uuid.uuid4().hex[:8]}@example.com'
        status, _, body = S.api('POST', '/v1/signup', {
            'name': 'Bot Owner', 'email': email, 'password': 'long enough password',
            'org_name': 'Bots Inc'})
        assert status == 201, body
        cls.org = body['org']['id']
        cls.ws = workspaces()[0]
        cls.token = cls.ws.get('bot_token') or cls.ws.get('token')
        cls.team_id = cls.ws.get('team_id') or cls.ws.get('id')

    def setUp(self):
        S.sim('POST', '/_sim/reset', {})

    def connect(self):
        status, _, bot = S.api('POST', f'/v1/orgs/{self.org}/bots',
                               {'platform': 'slack', 'token': self.token})
        self.assertEqual(status, 201, bot)
        return bot

    def test_connect_list_users_and_delete(self):
        bot = self.connect()
        self.assertEqual(bot['status'], 'active')
        self.assertEqual(bot['team_id'], self.team_id)
        self.assertTrue(bot['bot_user_id'])
        self.assertNotIn(self.token, str(bot))
        status, _, listed = S.api('GET', f'/v1/orgs/{self.org}/bots')
        self.assertIn(bot['id'], [b['id'] for b in listed['bots']])
        self.assertEqual(S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}')[2]['id'],
                         bot['id'])
        # The token is encrypted by the vault: nowhere in the database or the api's log.
        self.assertNotIn(self.token, S.pg_dump())
        self.assertNotIn(self.token, S.log('api'))
        self.assertEqual(S.sql(f"SELECT count(*) FROM bot_tokens WHERE bot_id = "
                               f"'{bot['id']}'")[0][0], '1')

        # Users, live and paged, with no profile stored.
        status, _, page = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}/users?limit=5')
        self.assertEqual(status, 200, page)
        self.assertTrue(0 < len(page['users']) <= 5)
        user = page['users'][0]
        for field in ('id', 'name', 'real_name', 'first_name', 'tz', 'tz_offset', 'is_admin',
                      'is_owner', 'is_bot', 'deleted', 'email', 'avatar'):
            self.assertIn(field, user)
        seen = {u['id'] for u in page['users']}
        cursor, pages = page['next_cursor'], 1
        while cursor and pages < 200:
            status, _, page = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}/users'
                                    f'?limit=200&cursor={cursor}')
            self.assertEqual(status, 200, page)
            seen |= {u['id'] for u in page['users']}
            cursor, pages = page['next_cursor'], pages + 1
        _, _, population = S.sim('GET', f'/_sim/users?team_id={self.team_id}')
        members = population.get('users', population.get('members', population)) \
            if isinstance(population, dict) else population
        self.assertEqual(seen, {m['id'] for m in members})
        dump = S.pg_dump()
        for m in members[:20]:
            email = m.get('email') or (m.get('profile') or {}).get('email')
            if email:
                self.assertNotIn(email, dump)

        status, _, channels = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}/channels')
        self.assertEqual(status, 200, channels)
        self.assertIn('channels', channels)

        status, _, _ = S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')
        self.assertEqual(status, 204)
        self.assertEqual(S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}')[0], 404)
        self.assertEqual(S.sql(f"SELECT count(*) FROM bot_tokens WHERE bot_id = "
                               f"'{bot['id']}'")[0][0], '0')

    def test_invalid_token_leaves_nothing(self):
        before = S.sql(f"SELECT count(*) FROM bots WHERE org_id = '{self.org}'")[0][0]
        tokens_before = S.sql("SELECT count(*) FROM bot_tokens")[0][0]
        status, _, problem = S.api('POST', f'/v1/orgs/{self.org}/bots',
                                   {'platform': 'slack', 'token': 'xoxb-not-a-real-token'})
        self.assertEqual(status, 422, problem)
        self.assertEqual(problem['platform_error'], 'invalid_auth')
        self.assertIn('invalid_auth', problem['detail'])
        self.assertEqual(S.sql(f"SELECT count(*) FROM bots WHERE org_id = '{self.org}'")[0][0],
                         before)
        self.assertEqual(S.sql("SELECT count(*) FROM bot_tokens")[0][0], tokens_before)
        self.assertNotIn('xoxb-not-a-real-token', S.log('api'))

    def test_body_validation(self):
        for body, field in [({'platform': 'slack'}, 'token'),
                            ({'platform': 'telegram', 'token': 'x'}, 'platform'),
                            ({'platform': 'slack', 'token': 'abc'}, 'token'),
                            ({'platform': 'messenger', 'token': 'x'}, 'token')]:
            status, _, problem = S.api('POST', f'/v1/orgs/{self.org}/bots', body)
            self.assertEqual(status, 422, (body, problem))
            self.assertEqual(problem['field'], field, problem)

    def test_revoked_token_is_502_and_marks_the_bot(self):
        """A live read that finds the token refused marks the bot token_invalid and
        pauses its scheduled campaigns, as a send that finds out does: they would
        only fail until the bot is reconnected. Another bot's campaign goes on."""
        bot = self.connect()
        other = self.connect()
        at = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() + 3600))
        paths = []
        for b in (bot, other):
            path, _ = e2e.create_campaign(S, self.org, {
                'name': 'later', 'bot_id': b['id'], 'message': {'text': 'Hi'},
                'audience': {'filter': {'all': True}},
                'schedule': {'mode': 'at', 'at': at}})
            self.assertEqual(e2e.schedule_campaign(S, path)['status'], 'scheduled')
            paths.append(path)
        S.sim('POST', '/_sim/faults', {'revoke_token': self.team_id})
        try:
            status, _, problem = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}/users')
            self.assertEqual(status, 502, problem)
            self.assertEqual(problem['platform'], 'slack')
            self.assertEqual(S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}')[2]['status'],
                             'token_invalid')
            self.assertEqual(e2e.get_campaign(S, paths[0])['status'], 'paused')
            self.assertEqual(e2e.get_campaign(S, paths[1])['status'], 'scheduled')
            self.assertEqual(S.api('GET', f'/v1/orgs/{self.org}/bots/{other["id"]}')[2]['status'],
                             'active')
        finally:
            S.sim('POST', '/_sim/faults', {'restore_token': self.team_id})
            for path in paths:
                S.api('POST', path + '/cancel')
            S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')
            S.api('DELETE', f'/v1/orgs/{self.org}/bots/{other["id"]}')

    def test_rate_limit_is_429_with_retry_after(self):
        bot = self.connect()
        S.sim('POST', '/_sim/faults', {'ratelimit_storm_seconds': 30})
        try:
            status, headers, problem = S.api(
                'GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}/users')
            self.assertEqual(status, 429, problem)
            self.assertEqual(problem['platform_error'], 'ratelimited')
            self.assertTrue(int(headers['retry-after']) >= 1)
        finally:
            S.sim('POST', '/_sim/faults', {'clear': True})
            S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')

    def test_no_sender_is_503_and_leaves_nothing(self):
        before = S.sql(f"SELECT count(*) FROM bots WHERE org_id = '{self.org}'")[0][0]
        tokens_before = S.sql("SELECT count(*) FROM bot_tokens")[0][0]
        S.kill('sender-slack')
        try:
            t0 = time.monotonic()
            status, _, problem = S.api('POST', f'/v1/orgs/{self.org}/bots',
                                       {'platform': 'slack', 'token': self.token})
            self.assertEqual(status, 503, problem)
            self.assertLess(time.monotonic() - t0, 30)
        finally:
            S.start('sender-slack')
        self.assertEqual(S.sql(f"SELECT count(*) FROM bots WHERE org_id = '{self.org}'")[0][0],
                         before)
        self.assertEqual(S.sql("SELECT count(*) FROM bot_tokens")[0][0], tokens_before)

    def test_z_sigterm_drains_in_flight_requests(self):
        # A connect that is waiting on the platform when SIGTERM arrives still gets
        # its answer, and the api exits 0.
        import signal
        import threading
        S.sim('POST', '/_sim/faults', {'latency_ms': 1500})
        result = []
        t = threading.Thread(target=lambda: result.append(S.api(
            'POST', f'/v1/orgs/{self.org}/bots', {'platform': 'slack', 'token': self.token})))
        try:
            t.start()
            time.sleep(0.5)
            self.assertEqual(S.kill('api', sig=signal.SIGTERM), 0)
            t.join(30)
            self.assertEqual(result[0][0], 201, result)
        finally:
            S.sim('POST', '/_sim/faults', {'clear': True})
            S.start('api', env={'BCRM_PASSWORD_HASH_COST': 'min'})


if __name__ == '__main__':
    unittest.main(verbosity=2)
