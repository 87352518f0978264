#!/usr/bin/python3
"""System tests of bcrm-api against a real PostgreSQL (scripts/stack.py).

What runs: PostgreSQL and bcrm-api only (no vault identity, so connecting bots is
refused with 503 here; the bot flow is tested in test_api_bots.py with the whole
stack). Covers signup/login/logout/me, API keys, tenancy, CSRF, validation of
bodies, campaign transitions and Idempotency-Key.
"""
import json
import os
import socket
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR',
                os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                'scripts'))
from stack import Stack, http_request  # noqa: E402

STACK = None


def setUpModule():
    global STACK
    STACK = Stack()
    STACK.start_postgres()
    STACK.start('api', env={'BCRM_PASSWORD_HASH_COST': 'min', 'BCRM_IDENTITY_KEY_FILE': '',
                            'BCRM_API_MAX_BODY': '65536'})


def tearDownModule():
    codes = STACK.stop()
    assert codes.get('api') == 0, f'api did not exit cleanly: {codes}'


class Client:
    """A browser-like client: its own cookie jar, Origin and CSRF handling
    switchable, so that several accounts can act in one test."""

    def __init__(self, origin=True, csrf=True):
        self.cookie = None
        self.csrf_token = None
        self.origin = origin
        self.csrf = csrf
        self.api_key = None

    def req(self, method, path, body=None, headers=None, raw=None):
        hdrs = {'Accept': 'application/json'}
        if self.api_key:
            hdrs['Authorization'] = f'Bearer {self.api_key}'
        elif self.cookie:
            hdrs['Cookie'] = f'__Host-bcrm_session={self.cookie}'
        if method not in ('GET', 'HEAD'):
            if self.origin:
                hdrs['Origin'] = STACK.api_url
            if self.csrf and self.csrf_token:
                hdrs['X-CSRF-Token'] = self.csrf_token
        hdrs.update(headers or {})
        status, rh, parsed = http_request(STACK.api_url + path, method,
                                          raw if raw is not None else body, hdrs)
        for name, value in rh.pop('_all'):
            if name.lower() == 'set-cookie' and value.startswith('__Host-bcrm_session='):
                v = value.split(';')[0].split('=', 1)[1]
                self.cookie = v or None
                self.set_cookie_header = value
        if isinstance(parsed, dict) and isinstance(parsed.get('csrf_token'), str):
            self.csrf_token = parsed['csrf_token']
        return status, rh, parsed


def signup(client=None, password='correct horse battery'):
    client = client or Client()
    email = f'u{uuid.uuid4().hex[:10]}@example.com'
    status, _, body = client.req('POST', '/v1/signup', {
        'name': 'Test Person', 'email': email, 'password': password,
        'org_name': 'Test Org'})
    assert status == 201, (status, body)
    client.email = email
    client.password = password
    client.user = body['user']
    client.org = body['org']['id']
    return client


class AccountTests(unittest.TestCase):
    def test_signup_sets_session_cookie_and_me(self):
        c = signup()
        self.assertIn('Secure', c.set_cookie_header)
        self.assertIn('HttpOnly', c.set_cookie_header)
        self.assertIn('SameSite=Lax', c.set_cookie_header)
        self.assertIn('Path=/', c.set_cookie_header)
        status, _, me = c.req('GET', '/v1/me')
        self.assertEqual(status, 200, me)
        self.assertEqual(me['user']['email'], c.email)
        self.assertEqual(me['orgs'], [{'id': c.org, 'name': 'Test Org', 'role': 'owner'}])
        # The secret is stored hashed: the cookie value itself is nowhere in the table.
        rows = STACK.sql("SELECT count(*) FROM sessions WHERE token_hash = "
                         f"sha256(convert_to('{c.cookie}', 'UTF8'))")
        self.assertEqual(rows[0][0], '1')
        hashes = STACK.sql("SELECT password_hash FROM accounts WHERE id = "
                           f"'{c.user['id']}'")
        self.assertTrue(hashes[0][0].startswith('$argon2id$'))

    def test_duplicate_email_is_409(self):
        c = signup()
        status, _, body = Client().req('POST', '/v1/signup', {
            'name': 'X', 'email': c.email.upper(), 'password': 'another password',
            'org_name': 'Other'})
        self.assertEqual(status, 409, body)
        self.assertEqual(body['field'], 'email')

    def test_signup_validation_names_the_field(self):
        cases = [
            ({'name': 'a', 'email': 'a@b.co', 'password': 'short', 'org_name': 'o'}, 'password'),
            ({'name': 'a', 'email': 'not-an-email', 'password': 'long enough!',
              'org_name': 'o'}, 'email'),
            ({'name': 'a', 'email': 'a@b.co', 'password': 'long enough!'}, 'org_name'),
            ({'name': 5, 'email': 'a@b.co', 'password': 'long enough!', 'org_name': 'o'},
             'name'),
            ({'name': 'a', 'email': 'a@b.co', 'password': 'long enough!', 'org_name': 'o',
              'admin': True}, 'admin'),
        ]
        for body, field in cases:
            status, rh, problem = Client().req('POST', '/v1/signup', body)
            self.assertEqual(status, 422, (body, problem))
            self.assertEqual(problem['field'], field, problem)
            self.assertTrue(rh['content-type'].startswith('application/problem+json'))

    def test_login_logout(self):
        c = signup()
        fresh = Client()
        status, _, body = fresh.req('POST', '/v1/login',
                                    {'email': c.email, 'password': c.password})
        self.assertEqual(status, 200, body)
        self.assertEqual(body['user']['id'], c.user['id'])
        self.assertEqual(body['orgs'][0]['id'], c.org)
        self.assertTrue(body['csrf_token'])
        self.assertEqual(fresh.req('GET', '/v1/me')[0], 200)
        cookie = fresh.cookie
        status, _, _ = fresh.req('POST', '/v1/logout')
        self.assertEqual(status, 204)
        # The session is gone server-side: replaying the old cookie fails.
        replay = Client()
        replay.cookie = cookie
        self.assertEqual(replay.req('GET', '/v1/me')[0], 401)
        # The other session of the same account still works.
        self.assertEqual(c.req('GET', '/v1/me')[0], 200)

    def test_bad_login_is_401_with_one_message(self):
        c = signup()
        s1, _, wrong_pw = Client().req('POST', '/v1/login',
                                       {'email': c.email, 'password': 'wrong password'})
        s2, _, unknown = Client().req('POST', '/v1/login',
                                      {'email': 'nobody@example.com', 'password': 'whatever1'})
        self.assertEqual((s1, s2), (401, 401))
        self.assertEqual(wrong_pw['detail'], unknown['detail'])

    def test_unauthenticated_is_401(self):
        self.assertEqual(Client().req('GET', '/v1/me')[0], 401)
        forged = Client()
        forged.cookie = 'A' * 43
        self.assertEqual(forged.req('GET', '/v1/me')[0], 401)


class ApiKeyTests(unittest.TestCase):
    def test_create_use_list_revoke(self):
        c = signup()
        status, _, created = c.req('POST', f'/v1/orgs/{c.org}/api-keys', {'name': 'ci'})
        self.assertEqual(status, 201, created)
        key = created['key']
        self.assertTrue(key.startswith('bcrm_'))
        prog = Client()
        prog.api_key = key
        status, _, me = prog.req('GET', '/v1/me')
        self.assertEqual(status, 200, me)
        self.assertEqual(me['orgs'][0]['id'], c.org)
        # An API key needs neither Origin nor CSRF token.
        prog.origin = False
        status, _, campaigns = prog.req('GET', f'/v1/orgs/{c.org}/campaigns')
        self.assertEqual(status, 200, campaigns)
        status, _, listed = c.req('GET', f'/v1/orgs/{c.org}/api-keys')
        self.assertEqual(status, 200)
        self.assertEqual([k['id'] for k in listed['api_keys']], [created['id']])
        self.assertNotIn(key, json.dumps(listed))
        self.assertNotIn('key', listed['api_keys'][0])
        # Only the hash is stored.
        self.assertEqual(STACK.sql(f"SELECT count(*) FROM api_keys WHERE prefix = "
                                   f"'{key}'")[0][0], '0')
        status, _, _ = c.req('DELETE', f'/v1/orgs/{c.org}/api-keys/{created["id"]}')
        self.assertEqual(status, 204)
        status, _, problem = prog.req('GET', f'/v1/orgs/{c.org}/campaigns')
        self.assertEqual(status, 401, problem)
        self.assertEqual(c.req('DELETE', f'/v1/orgs/{c.org}/api-keys/{uuid.uuid4()}')[0], 404)

    def test_malformed_bearer_is_401(self):
        prog = Client()
        prog.api_key = 'bcrm_' + 'x' * 43
        self.assertEqual(prog.req('GET', '/v1/me')[0], 401)
        prog.api_key = 'nonsense'
        self.assertEqual(prog.req('GET', '/v1/me')[0], 401)


class TenancyTests(unittest.TestCase):
    def test_other_org_is_404(self):
        a, b = signup(), signup()
        status, _, key = b.req('POST', f'/v1/orgs/{b.org}/api-keys', {'name': 'b'})
        self.assertEqual(status, 201)
        b_prog = Client()
        b_prog.api_key = key['key']
        for client in (a, ):
            for method, path in [('GET', f'/v1/orgs/{b.org}/campaigns'),
                                 ('GET', f'/v1/orgs/{b.org}/bots'),
                                 ('GET', f'/v1/orgs/{b.org}/api-keys'),
                                 ('POST', f'/v1/orgs/{b.org}/api-keys'),
                                 ('DELETE', f'/v1/orgs/{b.org}/api-keys/{key["id"]}'),
                                 ('GET', f'/v1/orgs/{b.org}/bots/{uuid.uuid4()}')]:
                status, _, body = client.req(method, path, {'name': 'x'}
                                             if method == 'POST' else None)
                self.assertEqual(status, 404, (method, path, body))
                self.assertNotIn(key['id'], json.dumps(body))
        # B's key cannot reach A's org either.
        self.assertEqual(b_prog.req('GET', f'/v1/orgs/{a.org}/campaigns')[0], 404)
        # B's key still works on B (the attempts above changed nothing).
        self.assertEqual(b_prog.req('GET', f'/v1/orgs/{b.org}/campaigns')[0], 200)
        # Not an id at all: also 404.
        self.assertEqual(a.req('GET', '/v1/orgs/not-a-uuid/campaigns')[0], 404)

    def test_members_get_access_by_role(self):
        owner, other = signup(), signup()
        status, _, body = owner.req('POST', f'/v1/orgs/{owner.org}/members',
                                    {'email': other.email, 'role': 'viewer'})
        self.assertEqual(status, 201, body)
        self.assertEqual(other.req('GET', f'/v1/orgs/{owner.org}/campaigns')[0], 200)
        # A viewer reads but does not write.
        status, _, body = other.req('POST', f'/v1/orgs/{owner.org}/api-keys', {'name': 'x'})
        self.assertEqual(status, 403, body)
        status, _, body = owner.req('POST', f'/v1/orgs/{owner.org}/members',
                                    {'email': other.email, 'role': 'viewer'})
        self.assertEqual(status, 409, body)
        status, _, body = owner.req('POST', f'/v1/orgs/{owner.org}/members',
                                    {'email': 'nobody@nowhere.example', 'role': 'viewer'})
        self.assertEqual(status, 422, body)
        self.assertEqual(body['field'], 'email')
        status, _, body = owner.req('POST', f'/v1/orgs/{owner.org}/members',
                                    {'email': other.email, 'role': 'god'})
        self.assertEqual(status, 422, body)
        self.assertEqual(body['field'], 'role')


class CsrfTests(unittest.TestCase):
    def test_cookie_writes_need_origin_or_token(self):
        c = signup()
        bare = Client(origin=False, csrf=False)
        bare.cookie, bare.csrf_token = c.cookie, c.csrf_token
        path = f'/v1/orgs/{c.org}/api-keys'
        status, _, body = bare.req('POST', path, {'name': 'x'})
        self.assertEqual(status, 403, body)
        status, _, body = bare.req('POST', path, {'name': 'x'},
                                   headers={'Origin': 'https://evil.example'})
        self.assertEqual(status, 403, body)
        status, _, body = bare.req('POST', path, {'name': 'x'},
                                   headers={'X-CSRF-Token': 'wrong' * 8})
        self.assertEqual(status, 403, body)
        # Reads need neither.
        self.assertEqual(bare.req('GET', path)[0], 200)
        # The token alone is enough; so is a matching Origin alone.
        status, _, body = bare.req('POST', path, {'name': 'x'},
                                   headers={'X-CSRF-Token': c.csrf_token})
        self.assertEqual(status, 201, body)
        status, _, body = bare.req('POST', path, {'name': 'y'},
                                   headers={'Origin': STACK.api_url})
        self.assertEqual(status, 201, body)
        # Nothing was created by the refused attempts.
        self.assertEqual(len(c.req('GET', path)[2]['api_keys']), 2)


class RobustnessTests(unittest.TestCase):
    def test_malformed_json_names_position(self):
        c = signup()
        status, rh, body = c.req('POST', f'/v1/orgs/{c.org}/api-keys', raw='{"name": "x",}',
                                 headers={'Content-Type': 'application/json'})
        self.assertEqual(status, 400, body)
        self.assertIn('position', body['detail'])
        # jansson counts the bytes read, the offending '}' included.
        self.assertEqual((body['line'], body['position']), (1, 14))
        self.assertTrue(rh['content-type'].startswith('application/problem+json'))
        status, _, body = c.req('POST', f'/v1/orgs/{c.org}/api-keys', raw='[1, 2]',
                                headers={'Content-Type': 'application/json'})
        self.assertEqual(status, 422, body)

    def test_oversized_body_is_413(self):
        c = signup()
        big = json.dumps({'name': 'x' * 70000})
        status, _, body = c.req('POST', f'/v1/orgs/{c.org}/api-keys', raw=big,
                                headers={'Content-Type': 'application/json'})
        self.assertEqual(status, 413, body)

    def test_unknown_route_and_wrong_method(self):
        status, _, body = Client().req('GET', '/v1/nope')
        self.assertEqual(status, 404, body)
        status, rh, body = Client().req('GET', '/v1/signup')
        self.assertEqual(status, 405, body)
        self.assertIn('POST', rh.get('allow', ''))
        status, rh, body = Client().req('PUT', f'/v1/orgs/{uuid.uuid4()}/campaigns')
        self.assertEqual(status, 405, body)

    def test_openapi_describes_every_route(self):
        status, _, doc = Client().req('GET', '/v1/openapi.json')
        self.assertEqual(status, 200)
        self.assertEqual(doc['openapi'][:2], '3.')
        for path, method in [('/v1/signup', 'post'), ('/v1/login', 'post'),
                             ('/v1/logout', 'post'), ('/v1/me', 'get'),
                             ('/v1/orgs/{org}/api-keys', 'post'),
                             ('/v1/orgs/{org}/api-keys/{key}', 'delete'),
                             ('/v1/orgs/{org}/members', 'post'),
                             ('/v1/orgs/{org}/bots', 'post'),
                             ('/v1/orgs/{org}/bots/{bot}/users', 'get'),
                             ('/v1/orgs/{org}/campaigns', 'post'),
                             ('/v1/orgs/{org}/campaigns/{campaign}/schedule', 'post'),
                             ('/v1/orgs/{org}/campaigns/{campaign}/deliveries', 'get')]:
            self.assertIn(method, doc['paths'].get(path, {}), path)

    def test_ops_port(self):
        self.assertEqual(STACK.ops('api', '/healthz')[0], 200)
        self.assertEqual(STACK.ops('api', '/readyz')[0], 200)
        status, _, text = STACK.ops('api', '/metrics')
        self.assertEqual(status, 200)
        self.assertIn('bcrm_api_requests_total{method="POST",route="/v1/signup",code="2xx"}',
                      text)
        self.assertIn('bcrm_api_request_duration_seconds_bucket', text)

    def test_slow_client_does_not_block(self):
        # A client that sends half a request and stalls must not hold the server.
        host, port = STACK.env['BCRM_API_ADDR'].rsplit(':', 1)
        with socket.create_connection((host, int(port))) as stalled:
            stalled.sendall(b'POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{')
            self.assertEqual(Client().req('GET', '/v1/openapi.json')[0], 200)


def make_bot(org, platform='slack'):
    """An active bot row made directly in the database: connecting a real bot
    needs the vault and a sender (test_api_bots.py does that)."""
    bot_id = str(uuid.uuid4())
    STACK.sql(f"INSERT INTO bots (id, org_id, platform, status, name, team_id) VALUES "
              f"('{bot_id}', '{org}', '{platform}', 'active', 'Test bot', 'T1')")
    return bot_id


def campaign_body(bot_id, **over):
    body = {'name': 'Black Friday', 'bot_id': bot_id,
            'message': {'text': 'Hi {{first_name}}!'},
            'audience': {'filter': {'all': True}},
            'schedule': {'mode': 'now'}}
    body.update(over)
    return body


class CampaignValidationTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = signup()
        cls.slack = make_bot(cls.c.org, 'slack')
        cls.messenger = make_bot(cls.c.org, 'messenger')

    def create(self, body):
        return self.c.req('POST', f'/v1/orgs/{self.c.org}/campaigns', body)

    def assert_field(self, body, field, status=422):
        code, _, problem = self.create(body)
        self.assertEqual(code, status, (body, problem))
        self.assertEqual(problem.get('field'), field, problem)
        return problem

    def test_valid_schedules(self):
        for schedule in [
                {'mode': 'now'},
                {'mode': 'at', 'at': '2099-12-10T09:00:00Z'},
                {'mode': 'at', 'at': '2099-12-10T09:00:00.5+01:00'},
                {'mode': 'local', 'date': '2099-12-10', 'time': '09:00',
                 'fallback_tz': 'America/New_York', 'if_passed': 'next_day'},
                {'mode': 'recurring', 'rrule': 'FREQ=WEEKLY;BYDAY=MO', 'time': '09:00',
                 'local': True, 'fallback_tz': 'UTC', 'start_date': '2099-12-07',
                 'until': '2100-03-01'}]:
            status, _, body = self.create(campaign_body(self.slack, schedule=schedule))
            self.assertEqual(status, 201, (schedule, body))
            self.assertEqual(body['status'], 'draft')
            self.assertEqual(body['schedule'], schedule)
            self.assertEqual(body['stats'], {'total': 0, 'pending': 0, 'sent': 0, 'failed': 0,
                                             'unknown': 0, 'skipped': 0, 'cancelled': 0,
                                             'read': 0})
            self.assertTrue(body['created_at'].endswith('Z'))

    def test_schedule_errors(self):
        base = {'mode': 'local', 'date': '2099-12-10', 'time': '09:00',
                'fallback_tz': 'America/New_York', 'if_passed': 'skip'}
        cases = [
            (dict(base, fallback_tz='Mars/Olympus_Mons'), 'schedule.fallback_tz'),
            (dict(base, fallback_tz='../../etc/passwd'), 'schedule.fallback_tz'),
            (dict(base, date='2099-02-30'), 'schedule.date'),
            (dict(base, time='24:00'), 'schedule.time'),
            (dict(base, if_passed='later'), 'schedule.if_passed'),
            ({k: v for k, v in base.items() if k != 'fallback_tz'}, 'schedule.fallback_tz'),
            ({'mode': 'at', 'at': '10 Dec 2099'}, 'schedule.at'),
            ({'mode': 'at', 'at': '2001-01-01T00:00:00Z'}, 'schedule.at'),
            ({'mode': 'at'}, 'schedule.at'),
            ({'mode': 'recurring', 'rrule': 'FREQ=WEEKLY;BYDAY=XX', 'time': '09:00',
              'start_date': '2099-12-07'}, 'schedule.rrule'),
            ({'mode': 'recurring', 'rrule': 'FREQ=MINUTELY', 'time': '09:00',
              'start_date': '2099-12-07'}, 'schedule.rrule'),
            ({'mode': 'recurring', 'rrule': 'FREQ=DAILY', 'time': '09:00',
              'start_date': '2099-12-07', 'until': '2099-01-01'}, 'schedule.until'),
            ({'mode': 'soon'}, 'schedule.mode'),
            ({'mode': 'now', 'at': '2099-12-10T09:00:00Z'}, 'schedule.at'),
            ('now', 'schedule'),
        ]
        for schedule, field in cases:
            self.assert_field(campaign_body(self.slack, schedule=schedule), field)

    def test_body_errors(self):
        s, m = self.slack, self.messenger
        cases = [
            (campaign_body(s, message={'text': 'x' * 40001}), 'message.text'),
            (campaign_body(m, message={'text': 'x' * 2001}), 'message.text'),
            (campaign_body(s, message={}), 'message.text'),
            (campaign_body(m, message={'text': 'hi', 'blocks': [{'type': 'section'}]}),
             'message.blocks'),
            (campaign_body(s, message={'text': 'hi', 'blocks': [{}]}), 'message.blocks[0].type'),
            (campaign_body(s, audience={}), 'audience'),
            (campaign_body(s, audience={'filter': {'all': True}, 'segment_id': 'x'}),
             'audience'),
            (campaign_body(s, audience={'filter': {'planet': 'mars'}}), 'audience.filter.planet'),
            (campaign_body(s, audience={'filter': {'timezones': ['Nowhere/City']}}),
             'audience.filter.timezones[0]'),
            (campaign_body(m, audience={'filter': {'channel_ids': ['C1']}}),
             'audience.filter.channel_ids'),
            (campaign_body(s, audience={'filter': {'user_ids': []}}), 'audience.filter.user_ids'),
            (campaign_body(s, audience={'segment_id': str(uuid.uuid4())}),
             'audience.segment_id'),
            (dict(campaign_body(s), bot_id=str(uuid.uuid4())), 'bot_id'),
            (dict(campaign_body(s), bot_id='nope'), 'bot_id'),
            (campaign_body(s, name=''), 'name'),
            (campaign_body(s, throttle_per_minute='fast'), 'throttle_per_minute'),
            (campaign_body(s, throttle_per_minute=0), 'throttle_per_minute'),
            (campaign_body(s, send_window={'start': '09:00', 'end': '25:00'}), 'send_window.end'),
            (campaign_body(s, send_window={'start': '09:00', 'end': '18:00',
                                           'days': ['mon', 'funday']}), 'send_window.days[1]'),
            (campaign_body(s, max_lateness_minutes=-5), 'max_lateness_minutes'),
            (campaign_body(s, messenger={'messaging_type': 'RESPONSE'}), 'messenger'),
            (campaign_body(m, messenger={'messaging_type': 'MESSAGE_TAG'}), 'messenger.tag'),
            (campaign_body(m, messenger={'messaging_type': 'SPAM'}), 'messenger.messaging_type'),
            (campaign_body(s, colour='red'), 'colour'),
        ]
        for body, field in cases:
            self.assert_field(body, field)
        # None of the refused bodies left a row behind.
        rows = STACK.sql(f"SELECT count(*) FROM campaigns WHERE org_id = '{self.c.org}' "
                         f"AND name = 'Black Friday' AND schedule->>'mode' = 'now' "
                         f"AND created_at > now() - interval '1 minute' AND "
                         f"message->>'text' <> 'Hi {{{{first_name}}}}!'")
        self.assertEqual(rows[0][0], '0')

    def test_full_valid_body(self):
        body = campaign_body(
            self.messenger, throttle_per_minute=600, max_lateness_minutes=120,
            send_window={'start': '09:00', 'end': '18:00',
                         'days': ['mon', 'tue', 'wed', 'thu', 'fri']},
            messenger={'messaging_type': 'MESSAGE_TAG', 'tag': 'CONFIRMED_EVENT_UPDATE'},
            message={'text': 'é' * 2000})
        status, _, c = self.create(body)
        self.assertEqual(status, 201, c)
        for key in ('throttle_per_minute', 'max_lateness_minutes', 'send_window', 'messenger',
                    'message', 'audience', 'bot_id', 'name'):
            self.assertEqual(c[key], body[key], key)


class CampaignLifecycleTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = signup()
        cls.bot = make_bot(cls.c.org)

    def new_campaign(self, **over):
        status, _, body = self.c.req('POST', f'/v1/orgs/{self.c.org}/campaigns',
                                     campaign_body(self.bot, **over))
        self.assertEqual(status, 201, body)
        return body['id']

    def act(self, cid, verb, body=None):
        return self.c.req('POST', f'/v1/orgs/{self.c.org}/campaigns/{cid}/{verb}', body)

    def test_transitions(self):
        cid = self.new_campaign()
        status, _, body = self.act(cid, 'pause')
        self.assertEqual(status, 409, body)
        self.assertIn('draft', body['detail'])
        status, _, body = self.act(cid, 'schedule')
        self.assertEqual(status, 200, body)
        self.assertEqual(body['status'], 'scheduled')
        self.assertTrue(body['scheduled_at'].endswith('Z'))
        status, _, body = self.act(cid, 'schedule')
        self.assertEqual(status, 409, body)
        self.assertIn('scheduled', body['detail'])
        self.assertEqual(self.act(cid, 'pause')[2]['status'], 'paused')
        # No run yet: resume goes back to scheduled.
        self.assertEqual(self.act(cid, 'resume')[2]['status'], 'scheduled')
        # With a run and deliveries, cancel cancels the pending ones only.
        run = STACK.sql(f"INSERT INTO campaign_runs (campaign_id, occurrence, status) VALUES "
                        f"('{cid}', now(), 'loaded') RETURNING id")[0][0]
        STACK.sql(f"UPDATE campaigns SET status = 'running' WHERE id = '{cid}'")
        STACK.sql("INSERT INTO deliveries (org_id, campaign_id, run_id, recipient_id, due_at, "
                  "status) VALUES " + ', '.join(
                      f"('{self.c.org}', '{cid}', '{run}', 'U{i}', now(), '{st}')"
                      for i, st in enumerate(['pending', 'pending', 'sent', 'failed',
                                              'unknown', 'sending'])))
        status, _, body = self.c.req('GET', f'/v1/orgs/{self.c.org}/campaigns/{cid}')
        self.assertEqual(status, 200)
        self.assertEqual(body['stats'], {'total': 6, 'pending': 3, 'sent': 1, 'failed': 1,
                                         'unknown': 1, 'skipped': 0, 'cancelled': 0, 'read': 0})
        self.assertTrue(body['first_due_at'].endswith('Z'))
        self.assertEqual(self.act(cid, 'pause')[2]['status'], 'paused')
        self.assertEqual(self.act(cid, 'resume')[2]['status'], 'running')
        status, _, body = self.act(cid, 'retry', {'status': 'failed'})
        self.assertEqual(status, 200, body)
        self.assertEqual(body['stats']['failed'], 0)
        self.assertEqual(body['stats']['pending'], 4)
        self.assertEqual(self.act(cid, 'retry', {'status': 'sent'})[0], 422)
        status, _, body = self.act(cid, 'cancel')
        self.assertEqual(status, 200, body)
        self.assertEqual(body['status'], 'cancelled')
        self.assertEqual(body['stats']['cancelled'], 3)  # the pending ones
        self.assertEqual(body['stats']['pending'], 1)    # 'sending' stays with its sender
        self.assertEqual(body['stats']['sent'], 1)
        status, _, body = self.act(cid, 'cancel')
        self.assertEqual(status, 409)
        self.assertEqual(body['current_status'], 'cancelled')
        self.assertEqual(STACK.sql(f"SELECT status FROM campaign_runs WHERE id = '{run}'")[0][0],
                         'cancelled')
        # Deliveries: paging, filter, CSV.
        status, _, page = self.c.req(
            'GET', f'/v1/orgs/{self.c.org}/campaigns/{cid}/deliveries?limit=4')
        self.assertEqual(status, 200, page)
        self.assertEqual(len(page['deliveries']), 4)
        self.assertIsInstance(page['deliveries'][0]['id'], str)
        status, _, page2 = self.c.req(
            'GET', f'/v1/orgs/{self.c.org}/campaigns/{cid}/deliveries?limit=4&cursor='
            + page['next_cursor'])
        self.assertEqual(len(page2['deliveries']), 2)
        self.assertIsNone(page2['next_cursor'])
        status, _, sent = self.c.req(
            'GET', f'/v1/orgs/{self.c.org}/campaigns/{cid}/deliveries?status=sent')
        self.assertEqual([d['recipient_id'] for d in sent['deliveries']], ['U2'])
        status, rh, csv = self.c.req(
            'GET', f'/v1/orgs/{self.c.org}/campaigns/{cid}/deliveries',
            headers={'Accept': 'text/csv'})
        self.assertEqual(status, 200)
        self.assertTrue(rh['content-type'].startswith('text/csv'))
        lines = csv.strip().split('\r\n')
        self.assertEqual(lines[0].split(',')[:3], ['id', 'recipient_id', 'run_id'])
        self.assertEqual(len(lines), 7)
        self.assertEqual(self.c.req(
            'GET', f'/v1/orgs/{self.c.org}/campaigns/{cid}/deliveries?status=lost')[0], 422)

    def test_schedule_notifies_the_scheduler(self):
        # A LISTENing session sees the NOTIFY with the campaign id once committed.
        import subprocess
        cid = self.new_campaign()
        listener = subprocess.Popen(
            ['psql', '-X', '-q', '-d', STACK.env['BCRM_DATABASE_URL']],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        listener.stdin.write('LISTEN bcrm_campaigns;\nSELECT pg_sleep(1.5);\n')
        listener.stdin.flush()
        import time
        time.sleep(0.5)
        self.assertEqual(self.act(cid, 'schedule')[0], 200)
        out, _ = listener.communicate('SELECT 1;\n', timeout=20)
        self.assertIn(f'"{cid}"', out)

    def test_list_is_newest_first_and_paged(self):
        c = signup()
        bot = make_bot(c.org)
        ids = []
        for i in range(5):
            status, _, body = c.req('POST', f'/v1/orgs/{c.org}/campaigns',
                                    campaign_body(bot, name=f'c{i}'))
            ids.append(body['id'])
        seen, cursor = [], None
        while True:
            path = f'/v1/orgs/{c.org}/campaigns?limit=2' + (f'&cursor={cursor}' if cursor else '')
            status, _, page = c.req('GET', path)
            self.assertEqual(status, 200, page)
            seen += [x['id'] for x in page['campaigns']]
            cursor = page['next_cursor']
            if not cursor:
                break
        self.assertEqual(seen, list(reversed(ids)))
        self.assertEqual(c.req('GET', f'/v1/orgs/{c.org}/campaigns?cursor=garbage!')[0], 422)
        self.assertEqual(c.req('GET', f'/v1/orgs/{c.org}/campaigns?limit=0')[0], 422)

    def test_other_org_campaign_is_404(self):
        cid = self.new_campaign()
        other = signup()
        for verb in ('schedule', 'pause', 'cancel'):
            self.assertEqual(other.req(
                'POST', f'/v1/orgs/{other.org}/campaigns/{cid}/{verb}')[0], 404)
        self.assertEqual(other.req('GET', f'/v1/orgs/{other.org}/campaigns/{cid}')[0], 404)
        self.assertEqual(other.req(
            'GET', f'/v1/orgs/{other.org}/campaigns/{cid}/deliveries')[0], 404)
        # Another org's bot cannot be used in a campaign.
        status, _, body = other.req('POST', f'/v1/orgs/{other.org}/campaigns',
                                    campaign_body(self.bot))
        self.assertEqual(status, 422, body)
        self.assertEqual(body['field'], 'bot_id')
        self.assertEqual(self.c.req('GET', f'/v1/orgs/{self.c.org}/campaigns/{cid}')[2]['status'],
                         'draft')

    def test_idempotency_key(self):
        path = f'/v1/orgs/{self.c.org}/campaigns'
        key = {'Idempotency-Key': uuid.uuid4().hex}
        body = campaign_body(self.bot, name='idem')
        s1, _, first = self.c.req('POST', path, body, headers=key)
        s2, rh, second = self.c.req('POST', path, body, headers=key)
        self.assertEqual((s1, s2), (201, 201))
        self.assertEqual(first, second)
        self.assertEqual(rh.get('idempotent-replayed'), 'true')
        count = STACK.sql(f"SELECT count(*) FROM campaigns WHERE org_id = '{self.c.org}' "
                          f"AND name = 'idem'")[0][0]
        self.assertEqual(count, '1')
        s3, _, problem = self.c.req('POST', path, dict(body, name='idem2'), headers=key)
        self.assertEqual(s3, 422, problem)
        # A failed request does not burn its key.
        key2 = {'Idempotency-Key': uuid.uuid4().hex}
        self.assertEqual(self.c.req('POST', path, dict(body, name=''), headers=key2)[0], 422)
        self.assertEqual(self.c.req('POST', path, dict(body, name='idem3'), headers=key2)[0],
                         201)

    def test_idempotency_key_under_concurrency(self):
        # Eight clients race with one key: exactly one campaign is created, and every
        # answer is either that campaign or "in progress" (409).
        import threading
        path = f'/v1/orgs/{self.c.org}/campaigns'
        key = {'Idempotency-Key': uuid.uuid4().hex}
        body = campaign_body(self.bot, name='race')
        results = []

        def post():
            results.append(self.c.req('POST', path, body, headers=key))
        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        created = {r[2]['id'] for r in results if r[0] == 201}
        self.assertEqual(len(created), 1, results)
        self.assertTrue(all(r[0] in (201, 409) for r in results), results)
        self.assertEqual(STACK.sql(f"SELECT count(*) FROM campaigns WHERE org_id = "
                                   f"'{self.c.org}' AND name = 'race'")[0][0], '1')


if __name__ == '__main__':
    unittest.main(verbosity=2)
