#!/usr/bin/env python3
"""System tests of sim/slack-sim, the Slack Web API simulator.

Every answer of the Web API is validated against the response schemas of
Slack's own OpenAPI description (tests/reference/slack_web_openapi_v2.json),
twice: as the document is written, and "strictly". The 2020 document puts lists
under "items" in places that are not arrays (objs_user, objs_conversation, tz,
bot_id...), which JSON Schema ignores, so as written those parts validate
anything; the strict pass reads each such list as the anyOf it was meant to be,
so a user or a channel object is really checked field by field.

Run by ctest with BCRM_BUILD_DIR and BCRM_SOURCE_DIR set; the simulator listens
on a port the kernel picks (SLACK_SIM_ADDR=127.0.0.1:0), never a default port.
"""
import base64
import concurrent.futures
import copy
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import jsonschema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from concurrent_http import many_at_once  # noqa: E402

BUILD_DIR = os.environ.get('BCRM_BUILD_DIR', os.path.join(os.path.dirname(__file__), '..', '..',
                                                          'build'))
SOURCE_DIR = os.environ.get('BCRM_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..', '..'))
SIM_BIN = os.path.join(BUILD_DIR, 'sim', 'slack-sim', 'slack-sim')
SPEC_PATH = os.path.join(SOURCE_DIR, 'tests', 'reference', 'slack_web_openapi_v2.json')

# Error codes Slack added after the 2020 snapshot of the document, or that it
# answers for methods whose list in the document is incomplete.
NEWER_ERRORS_ANY_METHOD = {
    # Every method can be rate limited (429) or fail inside Slack (Slack's list
    # of errors common to all methods); the document lists these for a few
    # methods only.
    'ratelimited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout',
}
NEWER_ERRORS = {
    'chat.postMessage': {'invalid_blocks', 'cannot_dm_bot', 'token_revoked', 'ratelimited',
                         'invalid_metadata_format', 'invalid_attachments', 'internal_error',
                         'invalid_arguments', 'invalid_json', 'json_not_object',
                         'missing_scope'},
    'users.list': {'token_revoked', 'ratelimited', 'internal_error', 'invalid_arguments',
                   'missing_scope'},
    'users.info': {'token_revoked', 'ratelimited', 'missing_scope'},
    'conversations.list': {'invalid_cursor', 'token_revoked', 'ratelimited', 'invalid_arguments'},
    'conversations.members': {'token_revoked', 'ratelimited', 'missing_scope'},
    'conversations.open': {'token_revoked', 'ratelimited', 'missing_scope'},
    'auth.test': {'ratelimited', 'internal_error'},
    # The 2020 document gives oauth.v2.access only its "Default error template"
    # (ok: false, anything else allowed) and no list of errors; these are the
    # ones of Slack's page for the method.
    'oauth.v2.access': {'invalid_client_id', 'bad_client_secret', 'invalid_code',
                        'bad_redirect_uri', 'invalid_grant_type', 'invalid_json',
                        'invalid_arguments', 'missing_post_type', 'invalid_post_type',
                        'invalid_form_data', 'invalid_arg_name', 'invalid_array_arg',
                        'invalid_charset', 'json_not_object'},
}


# The lists a page of these methods carries (see Schemas.response on empty pages).
PAGED_LISTS = {'users.list': ('members',), 'conversations.list': ('channels',),
               'conversations.members': ('members',)}
SCOPE_RE = r'[a-z_.]+:[a-z_.:]+|commands'
DEFAULT_SCOPES = ('chat:write', 'im:read', 'im:write', 'mpim:read', 'users:read',
                  'users:read.email', 'channels:read', 'groups:read')


def strict_schema(node):
    """Rewrites every list-valued "items" of a non-array schema as anyOf."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    items = out.get('items')
    if isinstance(items, list) and out.get('type') != 'array':
        del out['items']
        out['anyOf'] = items
    return out


class Schemas:
    def __init__(self):
        with open(SPEC_PATH) as f:
            self.doc = json.load(f)
        self.strict_doc = strict_schema(self.doc)

    def _validate(self, doc, schema, instance):
        resolver = jsonschema.RefResolver('', doc)
        jsonschema.Draft4Validator(schema, resolver=resolver,
                                   format_checker=jsonschema.FormatChecker()).validate(instance)

    def generic_error(self, doc):
        """The document's "Default error template", which 73 of its methods use."""
        ops = doc['paths']['/oauth.v2.access']
        return ops[next(iter(ops))]['responses']['default']['schema']

    def response(self, method, body):
        """Validates an answer of method against its success or error schema. Newer
        Slack explains invalid_arguments in response_metadata.messages, which the
        2020 error schemas do not allow: checked here and left out of the schema."""
        assert isinstance(body.get('ok'), bool) and (body['ok'] or isinstance(
            body.get('error'), str)), body
        if '/' + method not in self.doc['paths']:
            # A method the document does not have: no schema of its own can describe
            # Slack's answer, which must still fit the generic error template with
            # the error Slack gives (or a storm's or an outage's, which come before
            # the method is looked at).
            assert not body['ok'] and body['error'] in {'unknown_method'} | \
                NEWER_ERRORS_ANY_METHOD, body
            for doc in (self.doc, self.strict_doc):
                self._validate(doc, self.generic_error(doc), body)
            return
        if body.get('error') == 'invalid_arguments':
            body = dict(body)
            messages = body.pop('response_metadata')['messages']
            assert messages and all(m.startswith('[ERROR] ') for m in messages), messages
        if body.get('error') == 'missing_scope':
            # Slack names the scope needed and the token's: one name, and a list of
            # them. Only some 2020 error schemas have the fields (conversations.list
            # does); for the others they are checked here and left out.
            assert re.fullmatch(SCOPE_RE, body['needed']), body
            assert all(re.fullmatch(SCOPE_RE, p) for p in body['provided'].split(',')
                       if body['provided']), body
        ops = self.doc['paths']['/' + method]
        op_name = next(iter(ops))
        if body.get('ok'):
            for doc in (self.doc, self.strict_doc):
                schema = doc['paths']['/' + method][op_name]['responses']['200']['schema']
                empty = [k for k in PAGED_LISTS.get(method, ()) if body.get(k) == []]
                if empty:
                    # Slack answers empty pages before the end of a list (with a
                    # next_cursor), which the 2020 schemas' minItems 1 forbids: the
                    # document cannot describe them, so only that rule is left out.
                    schema = copy.deepcopy(schema)
                    for k in empty:
                        schema['properties'][k].pop('minItems', None)
                self._validate(doc, schema, body)
            return
        for doc in (self.doc, self.strict_doc):
            schema = copy.deepcopy(doc['paths']['/' + method][op_name]['responses']['default']
                                   ['schema'])
            error_schema = schema['properties'].get('error', {})
            enum = error_schema.get('enum', [])
            if body.get('error') not in enum:
                if body.get('error') not in NEWER_ERRORS.get(method, set()) | \
                        NEWER_ERRORS_ANY_METHOD:
                    raise AssertionError('%s: error %r is in neither the document nor the list '
                                         'of newer errors' % (method, body.get('error')))
                error_schema.pop('enum', None)
            instance = body
            if body.get('error') == 'missing_scope' and 'needed' not in schema['properties']:
                instance = {k: v for k, v in body.items() if k not in ('needed', 'provided')}
            self._validate(doc, schema, instance)

    def definition(self, name, instance):
        self._validate(self.strict_doc, {'$ref': '#/definitions/' + name}, instance)


SCHEMAS = None


class Sim:
    """One slack-sim process on a kernel-chosen port."""

    def __init__(self, **env):
        self.log = tempfile.NamedTemporaryFile(prefix='slack-sim-', suffix='.log', delete=False)
        full_env = dict(os.environ)
        full_env.update({'SLACK_SIM_ADDR': '127.0.0.1:0'})
        full_env.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([SIM_BIN], env=full_env, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        self.port = None
        self.validated = 0  # Web API answers checked against the schemas
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None:
            with open(self.log.name) as f:
                for line in f:
                    rec = json.loads(line)
                    if rec.get('msg') == 'slack-sim listening':
                        self.port = rec['port']
            if self.proc.poll() is not None:
                raise RuntimeError('slack-sim exited: ' + open(self.log.name).read())
            time.sleep(0.02)
        if self.port is None:
            raise RuntimeError('slack-sim did not start')
        ws = self.control('GET', '/_sim/workspaces')[2]['workspaces']
        self.workspaces = ws
        self.token = ws[0]['token']
        self.team_id = ws[0]['team_id']

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=10)
        self.log.close()
        if rc != 0:
            with open(self.log.name) as f:
                sys.stderr.write('slack-sim exited %d; its log:\n%s\n' % (rc, f.read()[-20000:]))
        os.unlink(self.log.name)
        return rc

    def request(self, method, path, body=None, headers=None, timeout=10):
        """One call; every answer of the Web API (/api/...) is checked against
        Slack's response schemas here, whatever the test then looks at."""
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader('Content-Type', '')
            parsed = json.loads(data) if 'json' in ctype and data else data.decode()
            if path.startswith('/api/'):
                assert ctype == 'application/json; charset=utf-8', (path, ctype)
                SCHEMAS.response(urllib.parse.urlsplit(path).path[5:], parsed)
                self.validated += 1
            return resp.status, dict(resp.getheaders()), parsed
        finally:
            conn.close()

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        return self.request(method, path, data, {'Content-Type': 'application/json'})

    def form(self, method, args=None, token=None, http_method='POST'):
        """A call with form-urlencoded arguments and the token as a Bearer header."""
        headers = {'Content-Type': 'application/x-www-form-urlencoded'}
        token = self.token if token is None else token
        if token:
            headers['Authorization'] = 'Bearer ' + token
        query = urllib.parse.urlencode(args or {})
        if http_method == 'GET':
            return self.request('GET', '/api/%s?%s' % (method, query), None, headers)
        return self.request('POST', '/api/' + method, query.encode(), headers)

    def json_call(self, method, args=None, token=None):
        """A call with a JSON body (application/json; charset=utf-8)."""
        headers = {'Content-Type': 'application/json; charset=utf-8'}
        token = self.token if token is None else token
        if token:
            headers['Authorization'] = 'Bearer ' + token
        return self.request('POST', '/api/' + method, json.dumps(args or {}).encode(), headers)

    def users(self, team_id=None):
        return self.control('GET', '/_sim/users?team_id=' + (team_id or self.team_id))[2]['users']

    def channels(self):
        return self.control('GET', '/_sim/channels?team_id=' + self.team_id)[2]['channels']

    def messages(self, query=''):
        return self.control('GET', '/_sim/messages' + query)[2]['messages']

    def stats(self):
        return self.control('GET', '/_sim/stats')[2]


class SlackSimTest(unittest.TestCase):
    sim = None

    @classmethod
    def setUpClass(cls):
        global SCHEMAS
        if SCHEMAS is None:
            SCHEMAS = Schemas()
        cls.sim = Sim(SLACK_SIM_USERS=300, SLACK_SIM_SEED=7)

    @classmethod
    def tearDownClass(cls):
        rc = cls.sim.stop()
        assert rc == 0, 'slack-sim exited %d on SIGTERM' % rc

    def setUp(self):
        status, _, body = self.sim.control('POST', '/_sim/reset')
        self.assertEqual(status, 200)

    # helpers

    # Sim.request has checked every answer of the Web API against the schemas.

    def ok(self, method, answer):
        status, headers, body = answer
        self.assertEqual(status, 200, body)
        self.assertTrue(headers['Content-Type'].startswith('application/json'))
        self.assertTrue(body['ok'], (method, body))
        return body

    def err(self, method, answer, code, status=200):
        got_status, _, body = answer
        self.assertEqual(got_status, status, body)
        self.assertEqual(body, {'ok': False, 'error': code}, method)

    def people(self):
        return [u for u in self.sim.users() if u['kind'] == 'person' and not u['deleted']]

    def test_schema_check_can_fail(self):
        bad = [('users.list', {'ok': False, 'error': 'no_such_error'}),
               ('chat.postMessage', {'ok': False, 'error': 'ratelimited', 'retry': 3}),
               ('auth.test', {'ok': True, 'url': 'x'}),
               ('no.suchMethod', {'ok': True}),
               ('no.suchMethod', {'ok': False, 'error': 'channel_not_found'}),
               ('oauth.v2.access', {'ok': False, 'error': 'because'}),
               ('users.list', {'ok': False, 'error': 'missing_scope', 'needed': 'x',
                               'provided': ''}),
               ('conversations.list', {'ok': True, 'channels': [], 'response_metadata': 7})]
        for method, body in bad:
            with self.subTest(method=method, body=body):
                with self.assertRaises((AssertionError, jsonschema.ValidationError)):
                    SCHEMAS.response(method, body)
        # Every Web API answer goes through the check, errors too.
        before = self.sim.validated
        self.sim.form('auth.test')
        self.sim.form('no.suchMethod')
        self.sim.form('users.list', {'cursor': '!!!'})
        self.assertEqual(self.sim.validated, before + 3)
        # What the storms, outages and unknown methods answer passes.
        SCHEMAS.response('no.suchMethod', {'ok': False, 'error': 'unknown_method'})
        SCHEMAS.response('conversations.members', {'ok': False, 'error': 'internal_error'})
        SCHEMAS.response('oauth.v2.access', {'ok': False, 'error': 'ratelimited'})
        SCHEMAS.response('oauth.v2.access', {'ok': False, 'error': 'bad_redirect_uri'})

    # health

    def test_health_endpoints(self):
        self.assertEqual(self.sim.request('GET', '/healthz')[0], 200)
        self.assertEqual(self.sim.request('GET', '/readyz')[0], 200)
        self.assertEqual(self.sim.request('GET', '/nowhere')[0], 404)

    # population

    def test_population_shape(self):
        users = self.sim.users()
        self.assertEqual(len(users), 302)  # 300 generated + USLACKBOT + the app's bot
        kinds = [u['kind'] for u in users]
        self.assertEqual(kinds.count('slackbot'), 1)
        self.assertEqual(kinds.count('app_bot'), 1)
        self.assertGreaterEqual(kinds.count('bot'), 3)
        self.assertGreaterEqual(sum(u['deleted'] for u in users), 3)
        self.assertGreaterEqual(sum(u['is_admin'] for u in users), 3)
        self.assertEqual(sum(u['is_primary_owner'] for u in users), 1)
        self.assertTrue(any(u['tz_field'] == 'null' for u in users))
        self.assertTrue(any(u['tz_field'] == 'absent' for u in users))
        zones = {u['tz'] for u in users if u['tz']}
        self.assertGreaterEqual(len(zones), 40)
        expected = {'Asia/Kolkata': [19800], 'Asia/Kathmandu': [20700],
                    'Pacific/Chatham': [45900, 49500], 'Pacific/Marquesas': [-34200],
                    'Australia/Lord_Howe': [37800, 39600], 'America/New_York': [-18000, -14400],
                    'Europe/London': [0, 3600], 'Europe/Berlin': [3600, 7200],
                    'Asia/Tokyo': [32400], 'Australia/Sydney': [36000, 39600],
                    'America/Santiago': [-14400, -10800], 'Pacific/Auckland': [43200, 46800]}
        offsets = {u['tz']: u['tz_offset'] for u in users if u['tz']}
        for zone, allowed in expected.items():
            self.assertIn(zone, offsets)
            self.assertIn(offsets[zone], allowed, zone)
        # Every generated person has distinctive, unique strings to search for.
        people = [u for u in users if u['kind'] in ('person', 'bot')]
        markers = [u['marker'] for u in people]
        self.assertEqual(len(set(markers)), len(markers))
        for u in people:
            for field in ('name', 'real_name', 'display_name', 'last_name'):
                self.assertIn(u['marker'], u[field])
            if u['kind'] == 'person':
                self.assertIn(u['marker'], u['email'])
        self.assertEqual(len({u['id'] for u in users}), len(users))
        self.assertEqual(len({u['dm_id'] for u in users}), len(users))

    def test_population_zones_agree_with_tzdata(self):
        import datetime
        import zoneinfo
        users = self.sim.users()
        zoned = [u for u in users if u['tz']]
        now = datetime.datetime.now(datetime.timezone.utc)
        for u in zoned:
            want = now.astimezone(zoneinfo.ZoneInfo(u['tz'])).utcoffset().total_seconds()
            self.assertEqual(u['tz_offset'], want, u['tz'])

        def offset(zone, month):
            when = datetime.datetime(now.year, month, 15, 12, tzinfo=datetime.timezone.utc)
            return when.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset().total_seconds()

        zones = {u['tz'] for u in zoned}
        northern = {z for z in zones if offset(z, 7) > offset(z, 1)}
        southern = {z for z in zones if offset(z, 1) > offset(z, 7)}
        self.assertGreaterEqual(len(northern), 10, northern)
        self.assertGreaterEqual(len(southern), 4, southern)
        odd = {offset(z, 1) % 3600 for z in zones} | {offset(z, 7) % 3600 for z in zones}
        self.assertTrue({1800, 2700} <= odd, odd)
        self.assertIn(-9.5 * 3600, {offset(z, 1) for z in zones})
        self.assertIn(12.75 * 3600, {offset(z, 7) for z in zones})
        self.assertIn(5.75 * 3600, {offset(z, 1) for z in zones})
        # Users without a zone are people (some deleted); bots always have one.
        self.assertTrue(all(u['kind'] == 'person' for u in users if not u['tz']))
        self.assertGreaterEqual(sum(1 for u in users if not u['tz'] and not u['deleted']), 10)

    def test_population_is_deterministic(self):
        same = Sim(SLACK_SIM_USERS=300, SLACK_SIM_SEED=7)
        other = Sim(SLACK_SIM_USERS=300, SLACK_SIM_SEED=8)
        try:
            mine = self.sim.users()
            self.assertEqual(same.token, self.sim.token)
            self.assertEqual(same.users(), mine)
            self.assertNotEqual(other.token, self.sim.token)
            self.assertNotEqual({u['id'] for u in other.users()}, {u['id'] for u in mine})
        finally:
            self.assertEqual(same.stop(), 0)
            self.assertEqual(other.stop(), 0)

    def test_several_workspaces(self):
        multi = Sim(SLACK_SIM_USERS=20, SLACK_SIM_WORKSPACES=3, SLACK_SIM_SEED=3)
        try:
            self.assertEqual(len(multi.workspaces), 3)
            self.assertEqual(len({w['token'] for w in multi.workspaces}), 3)
            for ws in multi.workspaces:
                self.assertTrue(ws['token'].startswith('xoxb-'))
                body = self.ok('auth.test', multi.form('auth.test', token=ws['token']))
                self.assertEqual(body['team_id'], ws['team_id'])
                self.assertEqual(body['user_id'], ws['bot_user_id'])
                members = self.ok('users.list', multi.form('users.list', {'limit': 100},
                                                           token=ws['token']))['members']
                self.assertEqual({m['id'] for m in members},
                                 {u['id'] for u in multi.users(ws['team_id'])})
                self.assertTrue(all(m['team_id'] == ws['team_id'] for m in members))
        finally:
            self.assertEqual(multi.stop(), 0)

    def test_ops_port(self):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            ops_port = probe.getsockname()[1]
        with_ops = Sim(SLACK_SIM_USERS=5, SLACK_SIM_OPS_ADDR='127.0.0.1:%d' % ops_port)
        try:
            with_ops.form('auth.test', token=with_ops.token)
            conn = http.client.HTTPConnection('127.0.0.1', ops_port, timeout=5)
            conn.request('GET', '/metrics')
            resp = conn.getresponse()
            text = resp.read().decode()
            conn.close()
            self.assertEqual(resp.status, 200)
            self.assertIn('slack_sim_requests_total 1', text)
        finally:
            self.assertEqual(with_ops.stop(), 0)

    # auth.test and the request forms

    def test_auth_test_in_every_request_form(self):
        ws = self.sim.workspaces[0]
        answers = [
            self.sim.form('auth.test'),
            self.sim.form('auth.test', http_method='GET'),
            self.sim.json_call('auth.test'),
            self.sim.request('POST', '/api/auth.test',
                             urllib.parse.urlencode({'token': self.sim.token}).encode(),
                             {'Content-Type': 'application/x-www-form-urlencoded'}),
            self.sim.request('GET', '/api/auth.test?token=' + self.sim.token),
        ]
        for answer in answers:
            body = self.ok('auth.test', answer)
            self.assertEqual(body['team_id'], ws['team_id'])
            self.assertEqual(body['user_id'], ws['bot_user_id'])
            self.assertEqual(body['bot_id'], ws['bot_id'])

    def test_auth_errors(self):
        self.err('auth.test', self.sim.form('auth.test', token=''), 'not_authed')
        self.err('auth.test', self.sim.form('auth.test', token='xoxb-1-2-nope'), 'invalid_auth')
        self.err('users.list', self.sim.json_call('users.list', token='xoxb-bad'), 'invalid_auth')
        status, _, body = self.sim.request('POST', '/api/auth.test', b'{not json',
                                           {'Content-Type': 'application/json',
                                            'Authorization': 'Bearer ' + self.sim.token})
        self.assertEqual((status, body), (200, {'ok': False, 'error': 'invalid_json'}))
        SCHEMAS.response('auth.test', body)
        status, _, body = self.sim.form('no.suchMethod')
        self.assertEqual((status, body), (200, {'ok': False, 'error': 'unknown_method'}))

    def test_revoked_token(self):
        status, _, body = self.sim.control('POST', '/_sim/faults',
                                           {'revoke_token': self.sim.team_id})
        self.assertEqual(status, 200)
        self.assertEqual(body['revoked'], [self.sim.team_id])
        self.err('auth.test', self.sim.form('auth.test'), 'token_revoked')
        self.err('chat.postMessage', self.sim.form('chat.postMessage',
                                                   {'channel': self.people()[0]['id'],
                                                    'text': 'hi'}), 'token_revoked')
        self.sim.control('POST', '/_sim/faults', {'restore_token': self.sim.team_id})
        self.ok('auth.test', self.sim.form('auth.test'))
        status, _, _ = self.sim.control('POST', '/_sim/faults', {'revoke_token': 'TNOSUCHTEAM'})
        self.assertEqual(status, 400)

    def test_oauth_install(self):
        app = self.sim.control('GET', '/_sim/app')[2]
        redirect = 'http://127.0.0.1:9/v1/oauth/slack/callback'
        query = urllib.parse.urlencode({'client_id': app['client_id'], 'scope': 'chat:write',
                                        'redirect_uri': redirect, 'state': 's t/8'})
        status, headers, _ = self.sim.request('GET', app['authorize_path'] + '?' + query)
        self.assertEqual(status, 302)
        location = urllib.parse.urlsplit(headers['Location'])
        self.assertEqual(location._replace(query='').geturl(), redirect)
        back = urllib.parse.parse_qs(location.query)
        self.assertEqual(back['state'], ['s t/8'])
        code = back['code'][0]
        basic = base64.b64encode(('%s:%s' % (app['client_id'], app['client_secret'])).encode())
        form = {'code': code, 'redirect_uri': redirect}
        headers = {'Authorization': 'Basic ' + basic.decode(),
                   'Content-Type': 'application/x-www-form-urlencoded'}
        wrong_uri = dict(form, redirect_uri='http://elsewhere/')
        status, _, body = self.sim.request('POST', '/api/oauth.v2.access',
                                           urllib.parse.urlencode(wrong_uri).encode(), headers)
        self.assertEqual(body, {'ok': False, 'error': 'bad_redirect_uri'})
        status, _, body = self.sim.request('POST', '/api/oauth.v2.access',
                                           urllib.parse.urlencode(form).encode(), headers)
        self.assertEqual(status, 200)
        SCHEMAS.response('oauth.v2.access', body)
        ws = self.sim.workspaces[0]
        self.assertEqual((body['access_token'], body['token_type'], body['bot_user_id'],
                          body['team']['id']),
                         (ws['token'], 'bot', ws['bot_user_id'], ws['team_id']))
        # A code works once.
        status, _, body = self.sim.request('POST', '/api/oauth.v2.access',
                                           urllib.parse.urlencode(form).encode(), headers)
        self.assertEqual(body, {'ok': False, 'error': 'invalid_code'})
        status, _, body = self.sim.request('POST', '/api/oauth.v2.access', urllib.parse.urlencode(
            dict(form, client_id=app['client_id'], client_secret='wrong')).encode(),
            {'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual(body, {'ok': False, 'error': 'bad_client_secret'})
        denied = self.sim.request('GET', app['authorize_path'] + '?' + query + '&deny=1')[1]
        self.assertIn('error=access_denied', denied['Location'])

    def test_events_are_signed_and_delivered(self):
        received = []

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers['Content-Length']))
                received.append((dict(self.headers), raw))
                body = json.loads(raw)
                answer = body.get('challenge', 'ok').encode()
                self.send_response(200)
                self.send_header('Content-Length', str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Hook)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = 'http://127.0.0.1:%d/v1/webhooks/slack/events' % server.server_address[1]
        try:
            status, _, body = self.sim.control('POST', '/_sim/events',
                                               {'type': 'url_verification', 'url': url})
            self.assertEqual((status, body['status'], body['challenge_echoed']), (200, 200, True))
            person = self.people()[0]
            status, _, body = self.sim.control('POST', '/_sim/events', {
                'type': 'message', 'url': url, 'user': person['id'], 'text': 'hi bot'})
            self.assertEqual(body['status'], 200)
            self.sim.control('POST', '/_sim/events', {'type': 'app_uninstalled', 'url': url,
                                                      'bad_signature': True,
                                                      'timestamp_skew_s': -600, 'retry_num': 1})
            self.assertEqual(len(received), 3)
            for i, (headers, raw) in enumerate(received):
                ts = headers['X-Slack-Request-Timestamp']
                mac = hmac.new(b'sim-signing-secret', b'v0:' + ts.encode() + b':' + raw,
                               hashlib.sha256).hexdigest()
                good = headers['X-Slack-Signature'] == 'v0=' + mac
                self.assertEqual(good, i < 2, headers)
            event = json.loads(received[1][1])
            self.assertEqual((event['type'], event['team_id'], event['event']['type'],
                              event['event']['user'], event['event']['channel'],
                              event['event']['text']),
                             ('event_callback', self.sim.team_id, 'message', person['id'],
                              person['dm_id'], 'hi bot'))
            self.assertTrue(event['event_id'].startswith('Ev'))
            self.assertLess(int(received[2][0]['X-Slack-Request-Timestamp']), time.time() - 500)
            self.assertEqual(received[2][0]['X-Slack-Retry-Num'], '1')
            # app_uninstalled: the token stopped working before the event was sent.
            self.err('auth.test', self.sim.form('auth.test'), 'token_revoked')
        finally:
            server.shutdown()
            server.server_close()

    # scopes

    def scopes(self, body, team_id=None):
        status, _, answer = self.sim.control('POST', '/_sim/scopes',
                                             dict(body, team_id=team_id or self.sim.team_id))
        self.assertEqual(status, 200, answer)
        return next(w['scopes'] for w in answer['workspaces']
                    if w['team_id'] == (team_id or self.sim.team_id))

    def missing_scope(self, method, answer, needed):
        status, headers, body = answer
        self.assertEqual((status, body['ok'], body['error'], body['needed']),
                         (200, False, 'missing_scope', needed), body)
        self.assertEqual(body['provided'], headers['X-OAuth-Scopes'])
        self.assertNotIn(needed, body['provided'].split(','))
        SCHEMAS.response(method, body)

    def test_scopes_header_names_the_grant(self):
        status, headers, body = self.sim.form('auth.test')
        self.ok('auth.test', (status, headers, body))
        self.assertEqual(set(headers['X-OAuth-Scopes'].split(',')), set(DEFAULT_SCOPES))
        self.assertNotIn('X-Accepted-OAuth-Scopes', headers)
        _, headers, _ = self.sim.form('users.list', {'limit': 1})
        self.assertEqual(headers['X-Accepted-OAuth-Scopes'], 'users:read')
        _, headers, _ = self.sim.form('chat.postMessage', {'channel': 'CNOSUCH', 'text': 'x'})
        self.assertEqual(headers['X-Accepted-OAuth-Scopes'], 'chat:write')
        self.assertIn('X-OAuth-Scopes', headers)  # errors after the token too
        # No working token, no scopes.
        self.assertNotIn('X-OAuth-Scopes', self.sim.form('auth.test', token='xoxb-nope')[1])
        self.sim.control('POST', '/_sim/faults', {'revoke_token': self.sim.team_id})
        self.assertNotIn('X-OAuth-Scopes', self.sim.form('auth.test')[1])
        self.sim.control('POST', '/_sim/faults', {'restore_token': self.sim.team_id})
        ws = self.sim.control('GET', '/_sim/workspaces')[2]['workspaces'][0]
        self.assertEqual(set(ws['scopes']), set(DEFAULT_SCOPES))
        known = self.sim.control('GET', '/_sim/scopes')[2]['known']
        self.assertTrue(set(DEFAULT_SCOPES) < set(known))

    def test_missing_scopes(self):
        people = self.people()
        chans = {c['name']: c for c in self.sim.channels()}
        # Without users:read.email: the same users, no email in their profiles.
        left = self.scopes({'remove': ['users:read.email']})
        self.assertNotIn('users:read.email', left)
        members = self.ok('users.list', self.sim.form('users.list', {'limit': 1000}))['members']
        self.assertEqual(len(members), len(self.sim.users()))
        self.assertFalse(any('email' in m['profile'] for m in members))
        for m in members[:20]:
            SCHEMAS.definition('objs_user', m)
        info = self.ok('users.info', self.sim.form('users.info', {'user': people[0]['id']}))
        self.assertNotIn('email', info['user']['profile'])
        self.assertEqual(self.sim.form('auth.test')[1]['X-OAuth-Scopes'], ','.join(left))
        # Without users:read, nothing about users.
        self.scopes({'remove': 'users:read'})
        self.missing_scope('users.list', self.sim.form('users.list', {'limit': 5}), 'users:read')
        self.missing_scope('users.info', self.sim.json_call('users.info',
                                                            {'user': people[0]['id']}),
                           'users:read')
        # Private channels need groups:read, public ones channels:read.
        self.scopes({'remove': 'groups:read'})
        self.missing_scope('conversations.list', self.sim.form('conversations.list', {
            'types': 'public_channel,private_channel'}), 'groups:read')
        self.ok('conversations.list', self.sim.form('conversations.list',
                                                    {'types': 'public_channel'}))
        self.missing_scope('conversations.members', self.sim.form(
            'conversations.members', {'channel': chans['sim-private']['id']}), 'groups:read')
        self.ok('conversations.members', self.sim.form('conversations.members',
                                                       {'channel': chans['general']['id']}))
        self.scopes({'remove': 'im:read'})
        self.missing_scope('conversations.members', self.sim.form(
            'conversations.members', {'channel': people[0]['dm_id']}), 'im:read')
        self.scopes({'remove': 'channels:read'})
        self.missing_scope('conversations.list', self.sim.form('conversations.list'),
                           'channels:read')
        self.missing_scope('conversations.members', self.sim.form(
            'conversations.members', {'channel': chans['general']['id']}), 'channels:read')
        # conversations.open needs im:write, chat.postMessage chat:write.
        self.scopes({'remove': ['im:write', 'chat:write']})
        self.missing_scope('conversations.open', self.sim.form('conversations.open',
                                                               {'users': people[1]['id']}),
                           'im:write')
        self.missing_scope('chat.postMessage', self.sim.form('chat.postMessage', {
            'channel': people[1]['id'], 'text': 'not allowed'}), 'chat:write')
        self.assertEqual(self.sim.messages(), [])
        self.assertEqual(self.sim.form('auth.test')[1]['X-OAuth-Scopes'], 'mpim:read')
        # chat:write.public: a public channel the bot is not in.
        self.scopes({'scopes': 'chat:write'})
        self.err('chat.postMessage', self.sim.form('chat.postMessage', {
            'channel': chans['random']['id'], 'text': 'x'}), 'not_in_channel')
        self.scopes({'add': 'chat:write.public'})
        self.ok('chat.postMessage', self.sim.form('chat.postMessage', {
            'channel': chans['random']['id'], 'text': 'public'}))
        self.err('chat.postMessage', self.sim.form('chat.postMessage', {
            'channel': chans['secret-elsewhere']['id'], 'text': 'x'}), 'channel_not_found')
        # Bad requests name what is wrong; a reset brings the grant back.
        for bad, word in (({'scopes': ['chat:write', 'chat:shout']}, 'chat:shout'),
                          ({'team_id': 'TNOSUCH', 'scopes': []}, 'team_id'),
                          ({'team_id': self.sim.team_id}, 'want scopes'),
                          ({'scopes': 7}, 'scopes'), ({'scope': 'x'}, 'scope')):
            status, _, problem = self.sim.control('POST', '/_sim/scopes', bad)
            self.assertEqual(status, 400, bad)
            self.assertIn(word, problem['detail'])
        self.sim.control('POST', '/_sim/reset', {'keep_faults': True})
        self.assertEqual(self.sim.form('auth.test')[1]['X-OAuth-Scopes'],
                         'chat:write,chat:write.public')
        self.sim.control('POST', '/_sim/reset')
        self.assertEqual(set(self.sim.form('auth.test')[1]['X-OAuth-Scopes'].split(',')),
                         set(DEFAULT_SCOPES))

    def test_scopes_from_environment_and_installs(self):
        narrow = Sim(SLACK_SIM_USERS=5, SLACK_SIM_WORKSPACES=2, SLACK_SIM_SCOPES='chat:write')
        try:
            for ws in narrow.workspaces:
                self.assertEqual(narrow.form('auth.test', token=ws['token'])[1]['X-OAuth-Scopes'],
                                 'chat:write')
            # One workspace changed, the other not.
            narrow.control('POST', '/_sim/scopes', {'team_id': narrow.workspaces[1]['team_id'],
                                                    'add': 'users:read'})
            self.assertEqual(narrow.form('users.list', token=narrow.workspaces[0]['token'])[2]
                             ['error'], 'missing_scope')
            self.assertTrue(narrow.form('users.list', token=narrow.workspaces[1]['token'])[2]
                            ['ok'])
            # An install adds what the app asks for to what it had.
            app = narrow.control('GET', '/_sim/app')[2]
            redirect = 'http://127.0.0.1:9/cb'
            query = urllib.parse.urlencode({'client_id': app['client_id'], 'redirect_uri': redirect,
                                            'scope': 'users:read,channels:read'})
            status, headers, _ = narrow.request('GET', app['authorize_path'] + '?' + query)
            self.assertEqual(status, 302)
            code = urllib.parse.parse_qs(urllib.parse.urlsplit(headers['Location']).query)['code']
            status, _, body = narrow.request('POST', '/api/oauth.v2.access', urllib.parse.urlencode(
                {'client_id': app['client_id'], 'client_secret': app['client_secret'],
                 'code': code[0], 'redirect_uri': redirect}).encode(),
                {'Content-Type': 'application/x-www-form-urlencoded'})
            self.assertTrue(body['ok'], body)
            self.assertEqual(body['scope'], 'channels:read,chat:write,users:read')
            self.assertEqual(narrow.form('auth.test')[1]['X-OAuth-Scopes'], body['scope'])
            # A scope Slack does not have is refused at the authorize page.
            status, _, problem = narrow.request('GET', app['authorize_path'] + '?' +
                                                urllib.parse.urlencode({
                                                    'client_id': app['client_id'],
                                                    'redirect_uri': redirect,
                                                    'scope': 'chat:write,everything'}))
            self.assertEqual(status, 400)
            self.assertIn('everything', problem['detail'])
        finally:
            self.assertEqual(narrow.stop(), 0)
        bad = subprocess.run([SIM_BIN], env=dict(os.environ, SLACK_SIM_ADDR='127.0.0.1:0',
                                                 SLACK_SIM_SCOPES='chat:write,bogus:scope'),
                             capture_output=True, timeout=30)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn(b'bogus:scope', bad.stderr)

    # users.list and users.info

    def collect_users(self, limit, call='form', extra=None):
        seen = []
        cursor = ''
        pages = 0
        while True:
            args = {'limit': limit} if limit is not None else {}
            if cursor:
                args['cursor'] = cursor
            args.update(extra or {})
            answer = (self.sim.form if call == 'form' else self.sim.json_call)('users.list', args)
            body = self.ok('users.list', answer)
            for m in body['members']:
                SCHEMAS.definition('objs_user', m)
            seen.extend(m['id'] for m in body['members'])
            pages += 1
            cursor = body['response_metadata']['next_cursor']
            if not cursor:
                return seen, pages
            self.assertLess(pages, 1000)

    def test_users_list_pages_cover_everyone_once(self):
        expected = sorted(u['id'] for u in self.sim.users())
        for limit, call in ((1, 'form'), (7, 'json'), (200, 'form'), (1000, 'json'),
                            (None, 'form'), (5000, 'form')):
            seen, pages = self.collect_users(limit, call)
            self.assertEqual(sorted(seen), expected, 'limit %s' % limit)
            if limit:
                self.assertEqual(pages, -(-len(expected) // min(limit, 1000)))

    def test_users_list_short_pages(self):
        self.sim.control('POST', '/_sim/faults', {'short_pages': True})
        seen, pages = self.collect_users(50)
        self.assertEqual(sorted(seen), sorted(u['id'] for u in self.sim.users()))
        self.assertGreater(pages, 302 // 50 + 1)

    def test_users_list_empty_pages(self):
        # Slack may answer an empty page before the end. The 2020 schema says
        # minItems 1; Schemas.response leaves out that rule for an empty page.
        self.sim.control('POST', '/_sim/faults', {'empty_page_rate': 0.5})
        seen, cursor, empty = [], '', 0
        for _ in range(2000):
            args = {'limit': 10}
            if cursor:
                args['cursor'] = cursor
            status, _, body = self.sim.form('users.list', args)
            self.assertTrue(body['ok'])
            empty += not body['members']
            seen.extend(m['id'] for m in body['members'])
            cursor = body['response_metadata']['next_cursor']
            if not cursor:
                break
        self.assertEqual(sorted(seen), sorted(u['id'] for u in self.sim.users()))
        self.assertGreater(empty, 0)

    def test_users_list_member_fields(self):
        body = self.ok('users.list', self.sim.form('users.list', {'limit': 1000,
                                                                  'include_locale': 'true'}))
        by_id = {u['id']: u for u in self.sim.users()}
        for m in body['members']:
            u = by_id[m['id']]
            self.assertEqual(m['name'], u['name'])
            self.assertEqual(m['real_name'], u['real_name'])
            self.assertEqual(m['profile'].get('email'), u['email'])
            self.assertEqual(m['profile']['first_name'], u['first_name'])
            self.assertEqual(m['profile']['last_name'], u['last_name'])
            self.assertEqual(m['profile']['display_name'], u['display_name'])
            self.assertEqual(m['deleted'], u['deleted'])
            self.assertEqual(m['is_bot'], u['is_bot'])
            self.assertEqual(m['is_admin'], u['is_admin'])
            self.assertEqual(m['locale'], 'en-US')
            if u['tz_field'] == 'zone':
                self.assertEqual((m['tz'], m['tz_offset']), (u['tz'], u['tz_offset']))
                self.assertTrue(m['tz_label'])
            elif u['tz_field'] == 'null':
                self.assertIsNone(m['tz'])
                self.assertNotIn('tz_offset', m)
            else:
                self.assertNotIn('tz', m)
        slackbot = [m for m in body['members'] if m['id'] == 'USLACKBOT'][0]
        self.assertFalse(slackbot['is_bot'])

    def test_users_list_errors(self):
        self.err('users.list', self.sim.form('users.list', {'cursor': 'bm9wZTpub3BlCg=='}),
                 'invalid_cursor')
        self.err('users.list', self.sim.form('users.list', {'cursor': '!!!'}), 'invalid_cursor')
        self.err('users.list', self.sim.json_call('users.list', {'cursor': 'dXNlcjpVTk9ORQ=='}),
                 'invalid_cursor')
        big = Sim(SLACK_SIM_USERS=1500, SLACK_SIM_SEED=2)
        try:
            self.err('users.list', big.form('users.list'), 'limit_required')
        finally:
            big.stop()

    def test_users_info(self):
        u = self.people()[3]
        for answer in (self.sim.form('users.info', {'user': u['id']}),
                       self.sim.json_call('users.info', {'user': u['id']}),
                       self.sim.form('users.info', {'user': u['id']}, http_method='GET')):
            body = self.ok('users.info', answer)
            SCHEMAS.definition('objs_user', body['user'])
            self.assertEqual(body['user']['id'], u['id'])
            self.assertEqual(body['user']['profile']['email'], u['email'])
        self.err('users.info', self.sim.form('users.info', {'user': 'UNOSUCHUSER'}),
                 'user_not_found')
        self.err('users.info', self.sim.form('users.info'), 'user_not_found')

    # conversations

    def test_conversations_open(self):
        u = self.people()[5]
        first = self.ok('conversations.open', self.sim.form('conversations.open',
                                                            {'users': u['id']}))
        again = self.ok('conversations.open', self.sim.json_call('conversations.open',
                                                                 {'users': u['id']}))
        self.assertEqual(first['channel']['id'], u['dm_id'])
        self.assertEqual(again['channel']['id'], u['dm_id'])
        self.assertFalse(first['already_open'])
        self.assertTrue(again['already_open'])
        full = self.ok('conversations.open', self.sim.form('conversations.open',
                                                           {'users': u['id'],
                                                            'return_im': 'true'}))
        self.assertEqual(full['channel']['user'], u['id'])
        self.assertTrue(full['channel']['is_im'])
        deleted = [x for x in self.sim.users() if x['deleted']][0]
        self.err('conversations.open', self.sim.form('conversations.open',
                                                     {'users': deleted['id']}), 'user_disabled')
        self.err('conversations.open', self.sim.form('conversations.open', {'users': 'UNOPE'}),
                 'user_not_found')
        self.err('conversations.open', self.sim.form('conversations.open'),
                 'users_list_not_supplied')

    def visible_channels(self):
        return [c for c in self.sim.channels() if not c['is_private'] or c['bot_member']]

    def test_conversations_list(self):
        body = self.ok('conversations.list', self.sim.form('conversations.list'))
        public = {c['id'] for c in self.sim.channels() if not c['is_private']}
        self.assertEqual({c['id'] for c in body['channels']}, public)
        for c in body['channels']:
            SCHEMAS.definition('objs_conversation', c)
        sim_by_id = {c['id']: c for c in self.sim.channels()}
        for c in body['channels']:
            self.assertEqual(c['is_member'], sim_by_id[c['id']]['bot_member'])
            self.assertEqual(c['num_members'], len(sim_by_id[c['id']]['members']))
        both = {'types': 'public_channel,private_channel'}
        body = self.ok('conversations.list', self.sim.json_call('conversations.list', both))
        self.assertEqual({c['id'] for c in body['channels']},
                         {c['id'] for c in self.visible_channels()})
        body = self.ok('conversations.list', self.sim.form('conversations.list',
                                                           dict(both, exclude_archived='true')))
        self.assertFalse(any(c['is_archived'] for c in body['channels']))
        # Paging, one channel at a time.
        seen, cursor = [], ''
        for _ in range(20):
            args = dict(both, limit=1)
            if cursor:
                args['cursor'] = cursor
            body = self.ok('conversations.list', self.sim.form('conversations.list', args))
            seen.extend(c['id'] for c in body['channels'])
            cursor = body['response_metadata']['next_cursor']
            if not cursor:
                break
        self.assertEqual(sorted(seen), sorted(c['id'] for c in self.visible_channels()))
        self.err('conversations.list', self.sim.form('conversations.list', {'cursor': 'eHh4'}),
                 'invalid_cursor')

    def test_conversations_members(self):
        general = [c for c in self.sim.channels() if c['name'] == 'general'][0]
        seen, cursor = [], ''
        for _ in range(200):
            args = {'channel': general['id'], 'limit': 37}
            if cursor:
                args['cursor'] = cursor
            body = self.ok('conversations.members', self.sim.form('conversations.members', args))
            seen.extend(body['members'])
            cursor = body['response_metadata']['next_cursor']
            if not cursor:
                break
        self.assertEqual(seen, general['members'])
        u = self.people()[0]
        body = self.ok('conversations.members', self.sim.json_call('conversations.members',
                                                                   {'channel': u['dm_id']}))
        self.assertEqual(body['members'], [u['id'], self.sim.workspaces[0]['bot_user_id']])
        hidden = [c for c in self.sim.channels() if c['is_private'] and not c['bot_member']][0]
        self.err('conversations.members', self.sim.form('conversations.members',
                                                        {'channel': hidden['id']}),
                 'channel_not_found')
        self.err('conversations.members', self.sim.form('conversations.members',
                                                        {'channel': 'CNOSUCH00'}),
                 'channel_not_found')
        self.err('conversations.members', self.sim.form('conversations.members',
                                                        {'channel': general['id'],
                                                         'cursor': 'Ym9ndXM='}),
                 'invalid_cursor')

    # chat.postMessage

    def test_post_message_targets_and_forms(self):
        people = self.people()
        general = [c for c in self.sim.channels() if c['name'] == 'general'][0]
        blocks = [{'type': 'section', 'text': {'type': 'mrkdwn', 'text': '*hello*'}}]
        metadata = {'event_type': 'bcrm_campaign', 'event_payload': {'delivery': 1}}
        cases = [
            ('form, user id', self.sim.form('chat.postMessage', {'channel': people[0]['id'],
                                                                 'text': 'to a user id'}),
             people[0]['dm_id'], people[0]['id'], 'to a user id'),
            ('json, DM id, blocks and metadata',
             self.sim.json_call('chat.postMessage', {'channel': people[1]['dm_id'],
                                                     'text': 'with blocks', 'blocks': blocks,
                                                     'metadata': metadata}),
             people[1]['dm_id'], people[1]['id'], 'with blocks'),
            ('form, blocks as a JSON string',
             self.sim.form('chat.postMessage', {'channel': people[2]['id'],
                                                'blocks': json.dumps(blocks)}),
             people[2]['dm_id'], people[2]['id'], ''),
            ('form, channel id', self.sim.form('chat.postMessage', {'channel': general['id'],
                                                                    'text': 'to everyone'}),
             general['id'], None, 'to everyone'),
            ('GET, unicode', self.sim.form('chat.postMessage', {'channel': people[3]['id'],
                                                                'text': 'héllo ✓ 𝄞'},
                                           http_method='GET'),
             people[3]['dm_id'], people[3]['id'], 'héllo ✓ 𝄞'),
        ]
        bot = self.sim.workspaces[0]
        tss = set()
        for name, answer, channel, user, text in cases:
            body = self.ok('chat.postMessage', answer)
            self.assertEqual(body['channel'], channel, name)
            self.assertEqual(body['message']['text'], text, name)
            self.assertEqual(body['message']['ts'], body['ts'], name)
            self.assertEqual(body['message']['user'], bot['bot_user_id'], name)
            self.assertEqual(body['message']['bot_id'], bot['bot_id'], name)
            SCHEMAS.definition('objs_message', body['message'])
            tss.add(body['ts'])
        self.assertEqual(len(tss), len(cases))
        self.assertEqual(self.ok('chat.postMessage', cases[1][1])['message']['blocks'], blocks)
        msgs = self.sim.messages()
        self.assertEqual(len(msgs), len(cases))
        for msg, (name, answer, channel, user, text) in zip(msgs, cases):
            self.assertEqual((msg['channel'], msg['user'], msg['text']), (channel, user, text),
                             name)
            self.assertEqual(msg['ts'], answer[2]['ts'])
            self.assertEqual(msg['team_id'], self.sim.team_id)
            self.assertEqual((msg['count'], msg['occurrence']), (1, 1))
            self.assertLessEqual(abs(msg['arrival_ms'] / 1000 - time.time()), 60)
        self.assertEqual(json.loads(msgs[1]['metadata']), metadata)
        self.assertEqual(json.loads(msgs[2]['blocks']), blocks)

    def test_post_message_errors(self):
        people = self.people()
        chans = {c['name']: c for c in self.sim.channels()}
        users = self.sim.users()
        deleted = [u for u in users if u['deleted'] and u['kind'] == 'person'][0]
        bot = [u for u in users if u['kind'] == 'bot'][0]
        u = people[0]['id']
        cases = [
            ({'channel': 'CNOSUCHCHAN', 'text': 'x'}, 'channel_not_found'),
            ({'channel': 'UNOSUCHUSER', 'text': 'x'}, 'channel_not_found'),
            ({'text': 'x'}, 'channel_not_found'),
            ({'channel': chans['secret-elsewhere']['id'], 'text': 'x'}, 'channel_not_found'),
            ({'channel': chans['random']['id'], 'text': 'x'}, 'not_in_channel'),
            ({'channel': chans['old-archived']['id'], 'text': 'x'}, 'is_archived'),
            ({'channel': deleted['id'], 'text': 'x'}, 'is_archived'),
            ({'channel': bot['id'], 'text': 'x'}, 'cannot_dm_bot'),
            ({'channel': u}, 'no_text'),
            ({'channel': u, 'text': ''}, 'no_text'),
            ({'channel': u, 'text': 'y' * 40001}, 'msg_too_long'),
            ({'channel': u, 'blocks': 'not json'}, 'invalid_blocks'),
            ({'channel': u, 'blocks': '[{"text": "no type"}]'}, 'invalid_blocks'),
            ({'channel': u, 'blocks': '{"type": "section"}'}, 'invalid_blocks'),
        ]
        for args, code in cases:
            self.err('chat.postMessage', self.sim.form('chat.postMessage', args), code)
        self.err('chat.postMessage', self.sim.json_call('chat.postMessage', {'channel': u}),
                 'no_text')
        # 40000 characters exactly is fine, counted as characters, not bytes.
        self.ok('chat.postMessage', self.sim.form('chat.postMessage',
                                                  {'channel': u, 'text': 'é' * 40000}))
        self.assertEqual(len(self.sim.messages()), 1)

    def test_duplicates_are_counted(self):
        a, b = self.people()[:2]
        for _ in range(3):
            self.ok('chat.postMessage', self.sim.form('chat.postMessage',
                                                      {'channel': a['id'], 'text': 'same'}))
        self.ok('chat.postMessage', self.sim.form('chat.postMessage',
                                                  {'channel': a['dm_id'], 'text': 'other'}))
        self.ok('chat.postMessage', self.sim.form('chat.postMessage',
                                                  {'channel': b['id'], 'text': 'same'}))
        stats = self.sim.stats()
        self.assertEqual((stats['messages'], stats['recipients'], stats['duplicates']), (5, 2, 2))
        self.assertEqual(stats['by_method']['chat.postMessage'], 5)
        msgs = self.sim.messages('?user=' + a['id'])
        self.assertEqual([(m['text'], m['count'], m['occurrence']) for m in msgs],
                         [('same', 3, 1), ('same', 3, 2), ('same', 3, 3), ('other', 1, 1)])
        recipients = self.sim.control('GET', '/_sim/recipients')[2]['recipients']
        self.assertEqual({r['recipient']: r['count'] for r in recipients}, {a['id']: 4, b['id']: 1})
        since = msgs[1]['seq']
        self.assertEqual(len(self.sim.messages('?since=%d' % since)), 3)
        # A reset forgets all of it.
        self.sim.control('POST', '/_sim/reset')
        stats = self.sim.stats()
        self.assertEqual((stats['messages'], stats['recipients'], stats['duplicates'],
                          stats['requests']), (0, 0, 0, 0))
        self.assertEqual(self.sim.messages(), [])

    def test_concurrent_posts(self):
        people = self.people()[:40]

        def worker(n):
            conn = http.client.HTTPConnection('127.0.0.1', self.sim.port, timeout=10)
            headers = {'Authorization': 'Bearer ' + self.sim.token,
                       'Content-Type': 'application/x-www-form-urlencoded'}
            tss = []
            for i in range(100):
                u = people[(n * 100 + i) % len(people)]
                body = urllib.parse.urlencode({'channel': u['id'], 'text': 'n%d i%d' % (n, i)})
                conn.request('POST', '/api/chat.postMessage', body, headers)
                answer = json.loads(conn.getresponse().read())
                assert answer['ok'], answer
                tss.append(answer['ts'])
            conn.close()
            return tss

        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            tss = [ts for part in pool.map(worker, range(8)) for ts in part]
        elapsed = time.time() - started
        self.assertEqual(len(set(tss)), 800)
        stats = self.sim.stats()
        self.assertEqual((stats['messages'], stats['duplicates'], stats['recipients']),
                         (800, 0, 40))
        self.assertEqual(len(self.sim.messages()), 800)
        self.assertLess(elapsed, 30)

    # rate limits

    def test_rate_limits_per_channel(self):
        self.sim.control('POST', '/_sim/faults', {'limits': True, 'channel_burst': 3})
        a, b = self.people()[:2]
        for i in range(3):
            self.ok('chat.postMessage', self.sim.form('chat.postMessage',
                                                      {'channel': a['id'], 'text': str(i)}))
        status, headers, body = self.sim.form('chat.postMessage', {'channel': a['dm_id'],
                                                                   'text': 'over'})
        self.assertEqual(status, 429)
        self.assertEqual(body, {'ok': False, 'error': 'ratelimited'})
        self.assertGreaterEqual(int(headers['Retry-After']), 1)
        # Another channel has its own bucket.
        self.ok('chat.postMessage', self.sim.form('chat.postMessage',
                                                  {'channel': b['id'], 'text': 'fine'}))
        time.sleep(int(headers['Retry-After']))
        self.ok('chat.postMessage', self.sim.form('chat.postMessage',
                                                  {'channel': a['id'], 'text': 'after'}))
        stats = self.sim.stats()
        self.assertEqual((stats['ratelimited'], stats['messages']), (1, 5))
        self.assertNotIn('over', [m['text'] for m in self.sim.messages()])

    def test_rate_limits_per_workspace(self):
        self.sim.control('POST', '/_sim/faults', {'limits': True, 'post_per_minute': 5})
        people = self.people()
        for u in people[:5]:
            self.ok('chat.postMessage', self.sim.form('chat.postMessage',
                                                      {'channel': u['id'], 'text': 'hi'}))
        status, headers, body = self.sim.form('chat.postMessage', {'channel': people[6]['id'],
                                                                   'text': 'hi'})
        self.assertEqual((status, body), (429, {'ok': False, 'error': 'ratelimited'}))
        self.assertGreaterEqual(int(headers['Retry-After']), 1)
        self.assertLessEqual(int(headers['Retry-After']), 12)

    def test_rate_limits_by_tier(self):
        self.sim.control('POST', '/_sim/faults', {'limits': True})
        for _ in range(20):
            self.ok('users.list', self.sim.form('users.list', {'limit': 1}))
        status, headers, body = self.sim.form('users.list', {'limit': 1})
        self.assertEqual((status, body), (429, {'ok': False, 'error': 'ratelimited'}))
        self.assertGreaterEqual(int(headers['Retry-After']), 1)
        # Other methods have their own buckets.
        self.ok('auth.test', self.sim.form('auth.test'))
        self.assertEqual(self.sim.stats()['ratelimited'], 1)
        # Switched off again, nothing is limited.
        self.sim.control('POST', '/_sim/faults', {'limits': False})
        self.ok('users.list', self.sim.form('users.list', {'limit': 1}))

    def first_refusal(self, call, most):
        """Calls until the first 429: (its index, its answer, seconds taken)."""
        started = time.monotonic()
        for i in range(most):
            answer = call(i)
            if answer[0] == 429:
                return i, answer, time.monotonic() - started
            self.assertEqual(answer[0], 200, answer)
            self.assertTrue(answer[2]['ok'], answer)
        self.fail('no 429 in %d calls' % most)

    def test_rate_limits_tier3_and_tier4(self):
        # As the simulator sets Slack's tiers: tier 3 (conversations.open) 50 a
        # minute, tier 4 (users.info, conversations.members, auth.test) 100, each
        # method its own bucket per workspace, full at first.
        faults = self.sim.control('POST', '/_sim/faults', {'limits': True})[2]
        self.assertEqual((faults['tier3_per_minute'], faults['tier4_per_minute']), (50, 100))
        people = self.people()
        general = [c for c in self.sim.channels() if c['name'] == 'general'][0]
        for method, per_minute, call in (
                ('conversations.open', 50, lambda i: self.sim.form(
                    'conversations.open', {'users': people[i % len(people)]['id']})),
                ('users.info', 100, lambda i: self.sim.form(
                    'users.info', {'user': people[i % len(people)]['id']})),
                ('conversations.members', 100, lambda i: self.sim.form(
                    'conversations.members', {'channel': general['id'], 'limit': 5}))):
            with self.subTest(method=method):
                index, (status, headers, body), took = self.first_refusal(call, 300)
                # The bucket's size, plus what it refilled while the calls ran.
                self.assertGreaterEqual(index, per_minute)
                self.assertLessEqual(index, per_minute + 1 + int(took * per_minute / 60))
                self.assertEqual(body, {'ok': False, 'error': 'ratelimited'})
                # The seconds until the next token, rounded up: a whole token's
                # time at most, less when part of one has refilled since.
                self.assertIn(int(headers['Retry-After']), range(1, -(-60 // per_minute) + 1))
        # auth.test is tier 4 too, with a bucket of its own: still full.
        index, _, _ = self.first_refusal(lambda i: self.sim.form('auth.test'), 300)
        self.assertGreaterEqual(index, 100)
        # Waiting what Retry-After said is enough.
        time.sleep(2)
        self.ok('conversations.open', self.sim.form('conversations.open',
                                                    {'users': people[0]['id']}))
        self.assertEqual(self.sim.stats()['ratelimited'], 4)
        # A lower tier 3 set at run time counts from the bucket's state.
        self.sim.control('POST', '/_sim/reset')
        self.sim.control('POST', '/_sim/faults', {'limits': True, 'tier3_per_minute': 3})
        index, _, _ = self.first_refusal(lambda i: self.sim.form(
            'conversations.open', {'users': people[i]['id']}), 20)
        self.assertEqual(index, 3)

    def test_tier_limits_are_per_workspace(self):
        multi = Sim(SLACK_SIM_USERS=10, SLACK_SIM_WORKSPACES=2, SLACK_SIM_LIMITS='on')
        try:
            multi.control('POST', '/_sim/faults', {'tier4_per_minute': 2})
            a, b = multi.workspaces
            self.assertEqual([multi.form('auth.test', token=a['token'])[0] for _ in range(3)],
                             [200, 200, 429])
            self.assertEqual(multi.form('auth.test', token=b['token'])[0], 200)
        finally:
            self.assertEqual(multi.stop(), 0)

    def test_limits_from_environment(self):
        limited = Sim(SLACK_SIM_USERS=10, SLACK_SIM_LIMITS='on', SLACK_SIM_CHANNEL_BURST=1)
        try:
            self.assertTrue(limited.control('GET', '/_sim/faults')[2]['limits'])
            user = [u for u in limited.users() if u['kind'] == 'person' and not u['deleted']][0]
            args = {'channel': user['id'], 'text': 'x'}
            self.assertEqual(limited.form('chat.postMessage', args)[0], 200)
            self.assertEqual(limited.form('chat.postMessage', args)[0], 429)
        finally:
            limited.stop()

    def test_ratelimit_storm(self):
        self.sim.control('POST', '/_sim/faults', {'ratelimit_storm_seconds': 2})
        status, headers, body = self.sim.form('auth.test')
        self.assertEqual((status, body), (429, {'ok': False, 'error': 'ratelimited'}))
        self.assertIn(int(headers['Retry-After']), (1, 2))
        time.sleep(2.1)
        self.ok('auth.test', self.sim.form('auth.test'))

    # faults

    def test_fault_latency(self):
        self.sim.control('POST', '/_sim/faults', {'latency_ms': 300, 'jitter_ms': 100})
        started = time.time()
        self.ok('auth.test', self.sim.form('auth.test'))
        elapsed = time.time() - started
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertLess(elapsed, 2)
        # Control endpoints are never slowed down.
        started = time.time()
        self.sim.stats()
        self.assertLess(time.time() - started, 0.3)

    def test_fault_error_rate(self):
        self.sim.control('POST', '/_sim/faults', {'error_rate': 1.0, 'error_status': 503})
        status, _, body = self.sim.form('chat.postMessage', {'channel': self.people()[0]['id'],
                                                             'text': 'x'})
        self.assertEqual((status, body['ok']), (503, False))
        self.assertEqual(self.sim.messages(), [])
        self.sim.control('POST', '/_sim/faults', {'error_rate': 0.5, 'error_status': 500})
        statuses = [self.sim.form('auth.test')[0] for _ in range(60)]
        self.assertGreater(statuses.count(500), 5)
        self.assertGreater(statuses.count(200), 5)
        self.assertEqual(self.sim.stats()['injected_errors'], 1 + statuses.count(500))
        status, _, _ = self.sim.control('POST', '/_sim/faults', {'error_rate': 2})
        self.assertEqual(status, 400)
        status, _, _ = self.sim.control('POST', '/_sim/faults', {'no_such_fault': 1})
        self.assertEqual(status, 400)

    def test_fault_error_code_and_user_id_posts(self):
        """error_code picks the code error_rate answers (HTTP 200 allowed, as Slack
        answers ok:false); refuse_user_id_posts makes chat.postMessage refuse a user
        id (channel_not_found) while the DM id conversations.open gives works."""
        self.sim.control('POST', '/_sim/faults', {'error_rate': 1.0, 'error_status': 200,
                                                  'error_code': 'fatal_error'})
        status, _, body = self.sim.form('chat.postMessage', {'channel': self.people()[0]['id'],
                                                             'text': 'x'})
        self.assertEqual((status, body), (200, {'ok': False, 'error': 'fatal_error'}))
        self.assertEqual(self.sim.messages(), [])
        for bad in ({'error_code': 'oops'}, {'error_status': 404}):
            status, _, body = self.sim.control('POST', '/_sim/faults', bad)
            self.assertEqual(status, 400, body)
        self.sim.control('POST', '/_sim/faults', {'clear': True, 'refuse_user_id_posts': True})
        self.assertTrue(self.sim.control('GET', '/_sim/faults')[2]['refuse_user_id_posts'])
        u = self.people()[0]
        self.err('chat.postMessage', self.sim.form('chat.postMessage', {'channel': u['id'],
                                                                        'text': 'x'}),
                 'channel_not_found')
        status, _, opened = self.sim.form('conversations.open', {'users': u['id']})
        self.assertTrue(opened['ok'], opened)
        self.ok('chat.postMessage', self.sim.form('chat.postMessage', {
            'channel': opened['channel']['id'], 'text': 'via the DM'}))
        self.assertEqual([m['text'] for m in self.sim.messages()], ['via the DM'])

    def test_fault_drop_after_recording(self):
        self.sim.control('POST', '/_sim/faults', {'drop_rate': 1.0})
        u = self.people()[0]
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.sim.form('chat.postMessage', {'channel': u['id'], 'text': 'lost answer'})
        msgs = self.sim.messages()
        self.assertEqual([(m['user'], m['text']) for m in msgs], [(u['id'], 'lost answer')])
        self.assertEqual(self.sim.stats()['dropped'], 1)
        # Other methods still answer.
        self.ok('auth.test', self.sim.form('auth.test'))

    def test_faults_reset(self):
        self.sim.control('POST', '/_sim/faults', {'latency_ms': 50, 'limits': True,
                                                  'revoke_token': self.sim.team_id})
        kept = self.sim.control('POST', '/_sim/reset', {'keep_faults': True})
        self.assertEqual(kept[0], 200)
        faults = self.sim.control('GET', '/_sim/faults')[2]
        self.assertEqual((faults['latency_ms'], faults['limits'], faults['revoked']),
                         (50, True, [self.sim.team_id]))
        self.sim.control('POST', '/_sim/reset')
        faults = self.sim.control('GET', '/_sim/faults')[2]
        self.assertEqual((faults['latency_ms'], faults['limits'], faults['revoked']),
                         (0, False, []))

    # the request log (GET /_sim/requests)

    def requests(self, query=''):
        status, _, body = self.sim.control('GET', '/_sim/requests' + query)
        self.assertEqual(status, 200)
        self.assertEqual(body['count'], len(body['requests']))
        return body

    def test_request_log_records_calls_as_received(self):
        u = self.people()[0]
        self.ok('users.list', self.sim.form('users.list', {'limit': 5, 'include_locale': 'true'}))
        self.ok('chat.postMessage', self.sim.json_call('chat.postMessage', {
            'channel': u['id'], 'text': 'hi', 'blocks': [{'type': 'divider'}],
            'metadata': {'event_type': 'e', 'event_payload': {'n': 1}}, 'unfurl_links': False}))
        # The token as an argument of a GET, and a call that fails.
        query = urllib.parse.urlencode({'token': self.sim.token, 'user': 'UNOBODY'})
        self.err('users.info', self.sim.request('GET', '/api/users.info?' + query),
                 'user_not_found')
        log = self.requests()
        self.assertEqual((log['count'], log['total'], log['evicted'], log['enabled']),
                         (3, 3, 0, True))
        listed, posted, info = log['requests']
        # Sequence numbers go on across resets, so "since" stays meaningful.
        first = listed['seq']
        self.assertEqual([r['seq'] for r in log['requests']], [first, first + 1, first + 2])
        self.assertEqual((listed['method'], listed['http_method'], listed['path'],
                          listed['content_type'], listed['body_format'], listed['auth']),
                         ('users.list', 'POST', '/api/users.list',
                          'application/x-www-form-urlencoded', 'form', 'bearer'))
        # Form values are text; a JSON body keeps its types.
        self.assertEqual(listed['body'], {'limit': '5', 'include_locale': 'true'})
        self.assertEqual((listed['status'], listed['ok'], listed['error'], listed['team_id']),
                         (200, True, None, self.sim.team_id))
        self.assertEqual((posted['body_format'], posted['content_type']),
                         ('json', 'application/json; charset=utf-8'))
        self.assertEqual(posted['body']['blocks'], [{'type': 'divider'}])
        self.assertIs(posted['body']['unfurl_links'], False)
        self.assertEqual(posted['body']['metadata']['event_payload'], {'n': 1})
        self.assertEqual((info['http_method'], info['body_format'], info['auth']),
                         ('GET', 'none', 'token_argument'))
        self.assertEqual(info['query'], {'token': '[redacted]', 'user': 'UNOBODY'})
        self.assertEqual((info['ok'], info['error']), (False, 'user_not_found'))
        # No token is ever kept.
        self.assertNotIn(self.sim.token, json.dumps(log))
        # Filters, then the resets.
        self.assertEqual([r['seq'] for r in self.requests('?since=%d' % first)['requests']],
                         [first + 1, first + 2])
        self.assertEqual([r['method'] for r in self.requests('?method=users.info')['requests']],
                         ['users.info'])
        self.assertEqual(self.requests('?limit=1')['count'], 1)
        self.assertEqual(self.sim.control('DELETE', '/_sim/requests')[0], 200)
        self.assertEqual(self.requests()['count'], 0)
        self.ok('auth.test', self.sim.form('auth.test'))
        self.assertEqual(self.requests()['requests'][0]['seq'], first + 3)
        self.sim.control('POST', '/_sim/reset')
        self.assertEqual(self.requests()['count'], 0)

    def test_request_log_is_a_bounded_switchable_ring(self):
        small = Sim(SLACK_SIM_USERS=5, SLACK_SIM_REQUEST_LOG=3)
        try:
            for _ in range(5):
                self.assertEqual(small.form('auth.test')[2]['ok'], True)
            log = small.control('GET', '/_sim/requests')[2]
            self.assertEqual((log['count'], log['total'], log['evicted'], log['capacity']),
                             (3, 5, 2, 3))
            self.assertEqual([r['seq'] for r in log['requests']], [3, 4, 5])
            status, _, body = small.control('POST', '/_sim/requests', {'enabled': False})
            self.assertEqual((status, body['enabled']), (200, False))
            small.form('auth.test')
            self.assertEqual(small.control('GET', '/_sim/requests')[2]['total'], 5)
            small.control('POST', '/_sim/requests', {'enabled': True, 'reset': True})
            small.form('auth.test')
            log = small.control('GET', '/_sim/requests')[2]
            self.assertEqual((log['count'], log['requests'][0]['seq']), (1, 6))
            self.assertEqual(small.control('POST', '/_sim/requests', {'bogus': 1})[0], 400)
        finally:
            self.assertEqual(small.stop(), 0)
        off = Sim(SLACK_SIM_USERS=5, SLACK_SIM_REQUEST_LOG=0)
        try:
            off.form('auth.test')
            log = off.control('GET', '/_sim/requests')[2]
            self.assertEqual((log['enabled'], log['count']), (False, 0))
        finally:
            self.assertEqual(off.stop(), 0)

    # malformed requests, answered as Slack answers them

    def raw(self, method, body, ctype):
        headers = {'Authorization': 'Bearer ' + self.sim.token}
        if ctype is not None:
            headers['Content-Type'] = ctype
        return self.sim.request('POST', '/api/' + method, body, headers)

    def test_malformed_requests(self):
        u = self.people()[0]
        form = 'application/x-www-form-urlencoded'
        cases = [
            (b'channel=' + u['id'].encode() + b'&text=x', None, 'missing_post_type'),
            (b'<channel/>', 'text/xml', 'invalid_post_type'),
            (b'channel=x&text=x', form + '; charset=shift_jis', 'invalid_charset'),
            (b'channel=x&text=%zz', form, 'invalid_form_data'),
            (b'channel[]=x&text=x', form, 'invalid_array_arg'),
            (b'chan-nel=x&text=x', form, 'invalid_arg_name'),
            (b'{"channel": "x", ', 'application/json', 'invalid_json'),
            (b'["channel"]', 'application/json', 'json_not_object'),
        ]
        for body, ctype, code in cases:
            with self.subTest(code=code):
                self.err('chat.postMessage', self.raw('chat.postMessage', body, ctype), code)
        # Charsets Slack reads are fine, quoted or not.
        self.ok('chat.postMessage', self.raw(
            'chat.postMessage', b'channel=' + u['id'].encode() + b'&text=ok',
            form + '; charset="UTF-8"'))
        # Arguments of the wrong type in a JSON body.
        for method, args, field in [
                ('chat.postMessage', {'channel': 12345, 'text': 'x'}, 'channel'),
                ('chat.postMessage', {'channel': u['id'], 'text': ['x']}, 'text'),
                ('chat.postMessage', {'channel': u['id'], 'text': 'x', 'mrkdwn': 'maybe'},
                 'mrkdwn'),
                ('chat.postMessage', {'channel': u['id'], 'blocks': 7}, 'blocks'),
                ('users.list', {'limit': 'lots'}, 'limit'),
                ('conversations.list', {'exclude_archived': {}}, 'exclude_archived')]:
            with self.subTest(method=method, field=field):
                status, _, body = self.sim.json_call(method, args)
                self.assertEqual((status, body['ok'], body['error']),
                                 (200, False, 'invalid_arguments'), body)
                self.assertIn('/' + field + ']', body['response_metadata']['messages'][0])
                SCHEMAS.response(method, body)
        # JSON integers and booleans where Slack takes them are fine.
        self.ok('users.list', self.sim.json_call('users.list', {'limit': 2,
                                                                'include_locale': True}))
        # A missing required argument.
        self.err('chat.postMessage', self.sim.form('chat.postMessage', {'text': 'x'}),
                 'channel_not_found')
        self.err('users.info', self.sim.form('users.info', {}), 'user_not_found')
        self.err('conversations.members', self.sim.form('conversations.members', {}),
                 'channel_not_found')
        self.assertEqual([m['text'] for m in self.sim.messages()], ['ok'])
        # Every refusal is in the request log with the error it got.
        errors = [r['error'] for r in self.requests()['requests'] if not r['ok']]
        self.assertEqual(errors[:len(cases)], [c[2] for c in cases])

    # more faults

    def test_revoked_token_answers(self):
        for how in ('token_revoked', 'invalid_auth', 'account_inactive'):
            with self.subTest(how=how):
                status, _, body = self.sim.control('POST', '/_sim/faults', {
                    'revoke_token': [self.sim.team_id], 'revoke_as': how})
                self.assertEqual((status, body['revoked'], body['revoked_as']),
                                 (200, [self.sim.team_id], {self.sim.team_id: how}))
                self.err('auth.test', self.sim.form('auth.test'), how)
                self.err('users.list', self.sim.form('users.list', {'limit': 2}), how)
                self.sim.control('POST', '/_sim/faults', {'restore_token': self.sim.team_id})
                self.ok('auth.test', self.sim.form('auth.test'))
        status, _, _ = self.sim.control('POST', '/_sim/faults', {
            'revoke_token': self.sim.team_id, 'revoke_as': 'expired'})
        self.assertEqual(status, 400)
        self.ok('auth.test', self.sim.form('auth.test'))

    def test_fault_latency_fixed_and_jittered(self):
        def timed(n):
            out = []
            for _ in range(n):
                started = time.time()
                self.ok('auth.test', self.sim.form('auth.test'))
                out.append(time.time() - started)
            return out

        self.sim.control('POST', '/_sim/faults', {'latency_ms': 120, 'jitter_ms': 0})
        fixed = timed(4)
        self.assertTrue(all(0.12 <= t < 0.5 for t in fixed), fixed)
        self.sim.control('POST', '/_sim/faults', {'latency_ms': 0, 'jitter_ms': 300})
        jittered = timed(12)
        self.assertTrue(all(t < 0.7 for t in jittered), jittered)
        # Uniform over 0-300 ms: twelve draws spread out.
        self.assertGreater(max(jittered) - min(jittered), 0.08, jittered)

    def test_latency_holds_no_thread(self):
        # Two HTTP threads, a thousand calls in flight, each answered 300-400 ms
        # after it was sent. Threads sleeping through the latency would need
        # 1000 * 0.3 s / 2 = 150 s; held answers need the latency and little more.
        slow = Sim(SLACK_SIM_USERS=1000, SLACK_SIM_THREADS=2, SLACK_SIM_SEED=11)
        try:
            users = [u for u in slow.users() if u['kind'] == 'person' and not u['deleted']]
            self.assertEqual(slow.control('POST', '/_sim/faults', {
                'latency_ms': 300, 'jitter_ms': 100})[0], 200)
            headers = {'Authorization': 'Bearer ' + slow.token,
                       'Content-Type': 'application/x-www-form-urlencoded'}
            calls = []
            for i in range(1000):
                u = users[i % len(users)]
                calls.append((u, 'n%d' % i, urllib.parse.urlencode(
                    {'channel': u['id'], 'text': 'n%d' % i}).encode()))
            started = time.monotonic()
            answers = many_at_once(slow.port, [('POST', '/api/chat.postMessage', headers, body)
                                               for _, _, body in calls])
            elapsed = time.monotonic() - started
            self.assertLess(elapsed, 3.0)
            self.assertEqual(sum(a is None for a in answers), 0, 'calls left unanswered')
            for (u, text, _), (status, _, raw, took) in zip(calls, answers):
                body = json.loads(raw)
                self.assertEqual(status, 200, body)
                self.assertTrue(body['ok'], body)
                self.assertEqual((body['channel'], body['message']['text']), (u['dm_id'], text))
                self.assertGreaterEqual(took, 0.3, text)
            for _, _, raw, _ in answers:
                SCHEMAS.response('chat.postMessage', json.loads(raw))
            self.assertLess(max(a[3] for a in answers), 1.5)
            # Jittered: spread over 300-400 ms, not all at one time.
            spread = max(a[3] for a in answers) - min(a[3] for a in answers)
            self.assertGreater(spread, 0.05)
            stats = slow.stats()
            self.assertEqual((stats['messages'], stats['requests']), (1000, 1000))
            # The simulator's own count: the answers it held at once, none left.
            self.assertGreater(stats['answers_held_max'], 500)
            self.assertEqual(stats['answers_held'], 0)
        finally:
            self.assertEqual(slow.stop(), 0)

    def test_latency_records_on_arrival(self):
        # The call is handled when it arrives and answered after the delay: the
        # record has the message while its answer is still on the way.
        self.sim.control('POST', '/_sim/faults', {'latency_ms': 1500})
        u = self.people()[0]
        done = {}

        def call():
            started = time.monotonic()
            done['answer'] = self.sim.form('chat.postMessage', {'channel': u['id'],
                                                                'text': 'early'})
            done['took'] = time.monotonic() - started

        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 1.2
        msgs = []
        while not msgs and time.monotonic() < deadline:
            time.sleep(0.05)
            msgs = self.sim.messages()
        self.assertEqual([m['text'] for m in msgs], ['early'])
        self.assertNotIn('answer', done)
        thread.join()
        self.ok('chat.postMessage', done['answer'])
        self.assertGreaterEqual(done['took'], 1.5)
        self.assertEqual(done['answer'][2]['ts'], msgs[0]['ts'])
        # Dropped after the delay: recorded at once, the connection closed later.
        self.sim.control('POST', '/_sim/faults', {'latency_ms': 500, 'drop_rate': 1.0})
        started = time.monotonic()
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.sim.form('chat.postMessage', {'channel': u['id'], 'text': 'lost late'})
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        self.assertEqual([m['text'] for m in self.sim.messages()], ['early', 'lost late'])

    def test_conversations_members_short_and_empty_pages(self):
        general = [c for c in self.sim.channels() if c['name'] == 'general'][0]

        def walk(limit):
            seen, cursor, pages, empty = [], '', 0, 0
            while pages < 2000:
                args = {'channel': general['id'], 'limit': limit}
                if cursor:
                    args['cursor'] = cursor
                body = self.ok('conversations.members',
                               self.sim.form('conversations.members', args))
                self.assertLessEqual(len(body['members']), limit)
                seen += body['members']
                pages += 1
                empty += not body['members']
                cursor = body['response_metadata']['next_cursor']
                if not cursor:
                    return seen, pages, empty
                if not body['members']:
                    self.assertTrue(cursor)  # an empty page is never the last
            self.fail('no end to the members')

        total = len(general['members'])
        self.assertGreater(total, 100)
        self.sim.control('POST', '/_sim/faults', {'short_pages': True})
        seen, pages, _ = walk(40)
        self.assertEqual(seen, general['members'])
        self.assertGreater(pages, -(-total // 40))
        self.sim.control('POST', '/_sim/faults', {'short_pages': False, 'empty_page_rate': 0.5})
        seen, pages, empty = walk(40)
        self.assertEqual(seen, general['members'])
        self.assertGreater(empty, 0)
        self.assertEqual(pages, -(-total // 40) + empty)
        # Every page empty but the cursor moves nowhere: a loop a reader must bound.
        self.sim.control('POST', '/_sim/faults', {'empty_page_rate': 1.0})
        body = self.ok('conversations.members', self.sim.form(
            'conversations.members', {'channel': general['id'], 'limit': 10}))
        again = self.ok('conversations.members', self.sim.form(
            'conversations.members', {'channel': general['id'], 'limit': 10,
                                      'cursor': body['response_metadata']['next_cursor']}))
        self.assertEqual((body['members'], again['members']), ([], []))
        self.assertEqual(again['response_metadata']['next_cursor'],
                         body['response_metadata']['next_cursor'])

    def test_conversations_list_short_and_empty_pages(self):
        visible = {c['id'] for c in self.visible_channels()}

        def walk(limit):
            seen, cursor, pages = [], '', 0
            while True:
                args = {'limit': limit, 'types': 'public_channel,private_channel'}
                if cursor:
                    args['cursor'] = cursor
                body = self.ok('conversations.list', self.sim.form('conversations.list', args))
                seen += [c['id'] for c in body['channels']]
                pages += 1
                cursor = body['response_metadata']['next_cursor']
                if not cursor:
                    return seen, pages

        self.sim.control('POST', '/_sim/faults', {'short_pages': True})
        seen, _ = walk(100)
        self.assertEqual(sorted(seen), sorted(visible))
        self.sim.control('POST', '/_sim/faults', {'short_pages': False, 'empty_page_rate': 0.5})
        seen, pages = walk(2)
        self.assertEqual(sorted(seen), sorted(visible))
        self.assertGreaterEqual(pages, (len(visible) + 1) // 2)


if __name__ == '__main__':
    unittest.main(verbosity=2)
