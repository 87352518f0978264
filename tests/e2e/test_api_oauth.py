#!/usr/bin/python3
"""System test of the Slack OAuth install's first half (spec/api.md, "Bots"):
GET /v1/orgs/{org}/oauth/slack/start redirects to the authorize page with a state
bound to the org and the session; GET /v1/oauth/slack/callback checks that state
(known, fresh, same session, single use). Exchanging the code needs sender-slack and
the vault (docs/architecture.md, "Slack OAuth install"), which this api has not (no
identity key): past the state checks it answers 503. The whole install, with the
simulator, sender-slack and the vault, is tested in tests/e2e/test_sender_stack.py.

Real processes: PostgreSQL and the api.
"""
import hashlib
import http.client
import json
import os
import sys
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR',
                os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                'scripts'))
from stack import Stack, http_request  # noqa: E402

AUTHORIZE = 'https://slack.example.test/oauth/v2/authorize'
PUBLIC = 'https://crm.example.com/'
SCOPES = 'chat:write,users:read,users:read.email,channels:read,groups:read,im:write'
S = None


def setUpModule():
    global S
    S = Stack()
    S.start_postgres()
    S.start('api', env={'BCRM_PASSWORD_HASH_COST': 'min', 'BCRM_IDENTITY_KEY_FILE': '',
                        'BCRM_SLACK_CLIENT_ID': '1234.5678', 'BCRM_PUBLIC_URL': PUBLIC,
                        'BCRM_SLACK_OAUTH_AUTHORIZE_URL': AUTHORIZE,
                        'BCRM_SLACK_CLIENT_SECRET': 'must-not-be-read-by-the-api'})


def tearDownModule():
    codes = S.stop()
    assert codes.get('api') == 0, f'api did not exit cleanly: {codes}'


def get(path, cookie=None, headers=None):
    """A GET that does not follow redirects. (status, headers, parsed body)."""
    host, port = S.env['BCRM_API_ADDR'].rsplit(':', 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    hdrs = dict(headers or {})
    if cookie:
        hdrs['Cookie'] = f'__Host-bcrm_session={cookie}'
    conn.request('GET', path, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    out = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode()
    return resp.status, out, body


def signup():
    email = f'oauth{uuid.uuid4().hex[:10]}@example.com'
    status, headers, body = http_request(S.api_url + '/v1/signup', 'POST', {
        'name': 'Installer', 'email': email, 'password': 'long enough password',
        'org_name': 'OAuth Inc'})
    assert status == 201, body
    return email, body['org']['id'], session_of(headers)


def session_of(headers):
    for name, value in headers['_all']:
        if name.lower() == 'set-cookie' and value.startswith('__Host-bcrm_session='):
            return value.split(';')[0].split('=', 1)[1]
    raise AssertionError('no session cookie')


def login(email):
    status, headers, body = http_request(S.api_url + '/v1/login', 'POST', {
        'email': email, 'password': 'long enough password'})
    assert status == 200, body
    return session_of(headers)


class OAuthTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.email, cls.org, cls.cookie = signup()

    def start(self, cookie=None, org=None):
        status, headers, body = get(f'/v1/orgs/{org or self.org}/oauth/slack/start',
                                    cookie or self.cookie)
        self.assertEqual(status, 302, body)
        location = headers['location']
        self.assertTrue(location.startswith(AUTHORIZE + '?'), location)
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))

    def callback(self, state, cookie=None, code='code-123', extra=''):
        q = urllib.parse.urlencode({k: v for k, v in (('code', code), ('state', state))
                                    if v is not None})
        return get(f'/v1/oauth/slack/callback?{q}{extra}', cookie or self.cookie)

    def test_start_redirects_with_state(self):
        params = self.start()
        self.assertEqual(params['client_id'], '1234.5678')
        self.assertEqual(params['scope'], SCOPES)
        self.assertEqual(params['redirect_uri'], 'https://crm.example.com/v1/oauth/slack/callback')
        self.assertEqual(len(params['state']), 43)
        self.assertNotEqual(params['state'], self.start()['state'])
        # Stored hashed, bound to the org, expiring in ten minutes.
        digest = hashlib.sha256(params['state'].encode()).hexdigest()
        rows = S.sql(f"SELECT org_id, round(extract(epoch FROM expires_at - created_at))"
                     f" FROM oauth_states WHERE state_hash = '\\x{digest}'")
        self.assertEqual(rows, [(self.org, '600')])
        self.assertNotIn(params['state'], S.pg_dump())
        self.assertNotIn(params['state'], S.log('api'))

    def test_start_needs_a_session_of_an_editor(self):
        status, _, key = http_request(S.api_url + f'/v1/orgs/{self.org}/api-keys', 'POST',
                                      {'name': 'k'}, {'Cookie': f'__Host-bcrm_session='
                                                      f'{self.cookie}', 'Origin': S.api_url})
        self.assertEqual(status, 201, key)
        status, _, problem = get(f'/v1/orgs/{self.org}/oauth/slack/start',
                                 headers={'Authorization': f'Bearer {key["key"]}'})
        self.assertEqual(status, 403, problem)
        self.assertEqual(get(f'/v1/orgs/{self.org}/oauth/slack/start')[0], 401)
        _, other_org, other_cookie = signup()
        self.assertEqual(get(f'/v1/orgs/{other_org}/oauth/slack/start', self.cookie)[0], 404)
        # A viewer of the org may not install.
        viewer_email, _, _ = signup()
        status, _, _ = http_request(S.api_url + f'/v1/orgs/{self.org}/members', 'POST',
                                    {'email': viewer_email, 'role': 'viewer'},
                                    {'Authorization': f'Bearer {key["key"]}'})
        self.assertEqual(status, 201)
        status, _, problem = get(f'/v1/orgs/{self.org}/oauth/slack/start', login(viewer_email))
        self.assertEqual(status, 403, problem)

    def test_callback_checks_the_state(self):
        state = self.start()['state']
        # The right state in the right session: this api cannot reach a vault.
        status, _, problem = self.callback(state)
        self.assertEqual(status, 503, problem)
        self.assertIn('vault', problem['detail'])
        # Single use.
        status, _, problem = self.callback(state)
        self.assertEqual((status, problem.get('field')), (400, 'state'), problem)
        # An unknown state, a missing one, a missing code.
        self.assertEqual(self.callback('x' * 43)[0], 400)
        self.assertEqual(self.callback(None)[0], 400)
        status, _, problem = self.callback(self.start()['state'], code=None)
        self.assertEqual((status, problem.get('field')), (400, 'code'), problem)

    def test_callback_in_another_session_is_refused(self):
        state = self.start()['state']
        other_session = login(self.email)  # the same person, another browser
        status, _, problem = self.callback(state, cookie=other_session)
        self.assertEqual(status, 403, problem)
        # The attempt used the state up.
        self.assertEqual(self.callback(state)[0], 400)
        # Without any session.
        state = self.start()['state']
        self.assertEqual(get(f'/v1/oauth/slack/callback?code=c&state={state}')[0], 401)

    def test_expired_state_and_refused_install(self):
        state = self.start()['state']
        digest = hashlib.sha256(state.encode()).hexdigest()
        S.sql(f"UPDATE oauth_states SET expires_at = now() - interval '1 second'"
              f" WHERE state_hash = '\\x{digest}'")
        status, _, problem = self.callback(state)
        self.assertEqual(status, 400, problem)
        self.assertIn('expired', problem['detail'])
        state = self.start()['state']
        status, _, problem = self.callback(state, code=None, extra='&error=access_denied')
        self.assertEqual(status, 400, problem)
        self.assertEqual(problem['platform_error'], 'access_denied')

    def test_client_secret_not_read(self):
        self.assertNotIn('must-not-be-read-by-the-api', S.log('api'))


if __name__ == '__main__':
    unittest.main(verbosity=2)
