#!/usr/bin/python3
"""Every request bcrm sends to Slack, checked against Slack's own description.

The real stack (PostgreSQL, vault, scheduler, api, two sender-slack replicas and
slack-sim) does what a bot owner does: connects a bot with its token, lists the
workspace's users and channels through the api, installs a second workspace with
"Add to Slack" (oauth.v2.access), previews a segment of a channel's members
(conversations.members), and runs campaigns: one to a few users with personalised
text and blocks (users.info), one to a channel, one to the segment, a personalised
one to everyone (profiles read in users.list pages), and one while Slack refuses
user ids as channels (DMs opened with conversations.open). Every method bcrm calls
must appear. slack-sim records
every Web API call as it received it (GET /_sim/requests), and each one is then
checked against the method's parameters in tests/reference/
slack_web_openapi_v2.json:

* the method exists, and the body's media type is one the method consumes;
* the token travels in the Authorization header, never as an argument;
* every required parameter is there, and no parameter is unknown except the
  documented newer ones (NEWER_PARAMS);
* each value has the parameter's type and format: integers are integers, booleans
  booleans, ids look like Slack ids, blocks are a JSON array of Block Kit objects
  (an array in a JSON body, its text in a form), metadata an event object;
* Slack answered ok: nothing bcrm sent was refused as malformed.

Run by ctest with BCRM_BUILD_DIR and BCRM_SOURCE_DIR set; free ports only.
"""
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402
from e2e_helpers import (connect_bot, get_no_redirect, signup, start_campaign,  # noqa: E402
                         wait_campaigns)

SOURCE_DIR = os.environ.get('BCRM_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..',
                                                            '..'))
SPEC_PATH = os.path.join(SOURCE_DIR, 'tests', 'reference', 'slack_web_openapi_v2.json')
CAMPAIGN_TIMEOUT_S = float(os.environ.get('BCRM_E2E_CAMPAIGN_TIMEOUT', '120'))

# Parameters Slack added after the 2020 snapshot of its document.
NEWER_PARAMS = {
    'chat.postMessage': {'metadata': 'json_object'},
    'users.list': {'team_id': 'string'},
    'conversations.list': {'team_id': 'string'},
}
# Parameters the document leaves optional that the method cannot work without.
ALSO_REQUIRED = {
    'users.info': ['user'],
    'conversations.members': ['channel'],
}
# Formats beyond the document's types, by parameter name.
ID_RE = re.compile(r'^[CDGUW][A-Z0-9]{2,}$')
USER_RE = re.compile(r'^[UW][A-Z0-9]{2,}$')
CHANNEL_TYPES = {'public_channel', 'private_channel', 'mpim', 'im'}
FORM = 'application/x-www-form-urlencoded'
JSON = 'application/json'


def media_type(content_type):
    return (content_type or '').split(';')[0].strip().lower()


class Validator:
    """Checks recorded requests against the OpenAPI document; collects problems."""

    def __init__(self):
        with open(SPEC_PATH) as f:
            self.doc = json.load(f)
        self.problems = []

    def problem(self, req, what):
        self.problems.append('#%s %s: %s' % (req.get('seq'), req.get('method'), what))

    def operation(self, method):
        ops = self.doc['paths'].get('/' + method)
        return next(iter(ops.values())) if ops else None

    def check(self, req):
        method = req['method']
        op = self.operation(method)
        if op is None or not req.get('known_method', True):
            self.problem(req, 'not a method of the Web API')
            return
        params = {p['name']: p for p in op.get('parameters', [])}
        self.check_transport(req, op, params)
        args = self.arguments(req)
        if args is None:
            return
        for name in list(params) + list(ALSO_REQUIRED.get(method, [])):
            p = params.get(name, {'required': True})
            if name != 'token' and (p.get('required') or name in ALSO_REQUIRED.get(method, [])) \
                    and args.get(name) in (None, ''):
                self.problem(req, 'required parameter %s missing' % name)
        is_json = req['body_format'] == 'json'
        for name, value in args.items():
            if name == 'token':
                self.problem(req, 'token sent as an argument')
            elif name in params:
                self.check_value(req, name, params[name]['type'], value, is_json)
            elif name in NEWER_PARAMS.get(method, {}):
                self.check_value(req, name, NEWER_PARAMS[method][name], value, is_json)
            else:
                self.problem(req, 'unknown parameter %s' % name)
        if not req['ok']:
            self.problem(req, 'Slack answered %s %s' % (req['status'], req['error']))

    def check_transport(self, req, op, params):
        if req['http_method'] not in ('GET', 'POST'):
            self.problem(req, 'HTTP method %s' % req['http_method'])
        if req['body_format'] != 'none':
            ctype = media_type(req['content_type'])
            if ctype not in op.get('consumes', [FORM]):
                self.problem(req, 'content type %s; the method consumes %s'
                             % (ctype, op.get('consumes')))
            charset = re.search(r'charset=([^;\s]+)', req['content_type'] or '', re.I)
            if charset and charset.group(1).strip('"').lower() not in ('utf-8', 'utf8'):
                self.problem(req, 'charset %s' % charset.group(1))
            if req['body_format'] == 'unreadable':
                self.problem(req, 'body cannot be read as %s' % ctype)
        if 'token' in params:
            if req['auth'] != 'bearer':
                self.problem(req, 'token by %s, not an Authorization: Bearer header'
                             % req['auth'])
        elif req['method'] == 'oauth.v2.access':
            args = self.arguments(req) or {}
            if req['auth'] != 'basic' and not (args.get('client_id') and
                                               args.get('client_secret')):
                self.problem(req, 'client credentials neither by Basic nor as arguments')

    def arguments(self, req):
        """The call's arguments: the query string's, then the body's."""
        args = dict(req['query'])
        body = req['body']
        if req['body_format'] == 'json' and not isinstance(body, dict):
            self.problem(req, 'JSON body is not an object')
            return None
        if isinstance(body, dict):
            for k, v in body.items():
                if k in args:
                    self.problem(req, 'parameter %s both in the query and the body' % k)
                args[k] = v
        return args

    def check_value(self, req, name, kind, value, is_json):
        def bad(why):
            self.problem(req, '%s=%s: %s' % (name, json.dumps(value)[:80], why))

        if kind == 'string' and name in ('blocks', 'attachments'):
            # The document types them as strings, which is what a form carries; a
            # JSON body may carry the array itself.
            if is_json and isinstance(value, list):
                return self.check_json_list(name, value, bad)
            if not isinstance(value, str):
                return bad('neither a JSON array nor its text')
            try:
                parsed = json.loads(value)
            except ValueError:
                return bad('not JSON text')
            return self.check_json_list(name, parsed, bad)
        if kind == 'string':
            if not isinstance(value, str):
                return bad('not a string')
            self.check_format(req, name, value, bad, is_json)
        elif kind == 'integer':
            if is_json and isinstance(value, bool) or not (
                    isinstance(value, int) or (isinstance(value, str)
                                               and re.fullmatch(r'-?[0-9]+', value))):
                return bad('not an integer')
            if name == 'limit' and not 1 <= int(value) <= 1000:
                bad('limit out of 1..1000')
        elif kind == 'boolean':
            ok = isinstance(value, bool) if is_json else value in ('true', 'false', '1', '0')
            if not ok:
                bad('not a boolean')
        elif kind == 'json_object':
            parsed = json.loads(value) if isinstance(value, str) and not is_json else value
            if not (isinstance(parsed, dict) and isinstance(parsed.get('event_type'), str)
                    and isinstance(parsed.get('event_payload'), dict)):
                bad('not a metadata object {event_type, event_payload}')
        else:
            bad('no rule for type %s' % kind)

    def check_format(self, req, name, value, bad, is_json):
        method = req['method']
        if name == 'channel' and not ID_RE.match(value):
            bad('not a channel, DM or user id')
        elif name in ('user', 'users') and not all(USER_RE.match(u) for u in value.split(',')):
            bad('not user ids')
        elif name == 'cursor' and not value:
            bad('empty cursor')
        elif name == 'types' and not set(value.split(',')) <= CHANNEL_TYPES:
            bad('unknown conversation types')
        elif name == 'text' and method == 'chat.postMessage' and len(value) > 40000:
            bad('text over 40000 characters')

    def check_json_list(self, name, parsed, bad):
        if not isinstance(parsed, list):
            return bad('not a JSON array')
        if name == 'blocks' and (len(parsed) > 50 or not all(
                isinstance(b, dict) and isinstance(b.get('type'), str) for b in parsed)):
            bad('not Block Kit blocks')


class ValidatorSelfTest(unittest.TestCase):
    """The validator must be able to fail: bad requests it has to catch."""

    def request(self, method, body, fmt='json', auth='bearer', query=None, ok=True):
        return {'seq': 1, 'method': method, 'known_method': True, 'http_method': 'POST',
                'content_type': JSON if fmt == 'json' else FORM, 'body_format': fmt,
                'body': body, 'query': query or {}, 'auth': auth, 'ok': ok, 'status': 200,
                'error': None if ok else 'invalid_arguments'}

    def problems(self, req):
        v = Validator()
        v.check(req)
        return v.problems

    def test_good_requests_pass(self):
        self.assertEqual(self.problems(self.request('chat.postMessage', {
            'channel': 'U0ABCDEF12', 'text': 'hi', 'blocks': [{'type': 'divider'}],
            'metadata': {'event_type': 'x', 'event_payload': {}}})), [])
        self.assertEqual(self.problems(self.request('users.list', {'limit': '200',
                                                                   'cursor': 'abc'},
                                                    fmt='form')), [])

    def test_bad_requests_are_caught(self):
        cases = [
            (self.request('chat.postMessage', {'text': 'hi'}), 'required parameter channel'),
            (self.request('chat.postMessage', {'channel': 'U0ABCDEF12', 'text': 'x',
                                               'colour': 'red'}), 'unknown parameter colour'),
            (self.request('chat.postMessage', {'channel': 'general', 'text': 'x'}),
             'not a channel'),
            (self.request('chat.postMessage', {'channel': 'U0ABCDEF12',
                                               'blocks': {'type': 'divider'}}), 'blocks'),
            (self.request('chat.postMessage', {'channel': 'U0ABCDEF12', 'blocks': '[{}]'},
                          fmt='form'), 'not Block Kit'),
            (self.request('users.list', {'limit': 'lots'}, fmt='form'), 'not an integer'),
            (self.request('users.list', {'limit': 5000}, fmt='form'), 'out of 1..1000'),
            (self.request('users.list', {'limit': 10}), 'content type'),
            (self.request('conversations.list', {'exclude_archived': 'yes'}, fmt='form'),
             'not a boolean'),
            (self.request('auth.test', None, fmt='none', auth='none',
                          query={'token': '[redacted]'}), 'token'),
            (self.request('chat.postMessage', {'channel': 'C0ABCDEF12', 'text': 'x'}, ok=False),
             'Slack answered'),
        ]
        for req, expected in cases:
            with self.subTest(expected=expected):
                found = self.problems(req)
                self.assertTrue(any(expected in p for p in found), found)


SIM_CLIENT_ID = '1111111111.2222222222'
SIM_CLIENT_SECRET = 'sim-client-secret'


class SlackRequestsTest(unittest.TestCase):
    def test_every_request_matches_the_documented_parameters(self):
        with Stack() as s:
            s.start_postgres()
            s.make_keys()
            # Two workspaces: the first connected with its token, the second
            # installed through the api's "Add to Slack" (OAuth).
            started = [s.start('slack-sim', wait=False, env={
                'SLACK_SIM_USERS': '60', 'SLACK_SIM_SEED': '4242', 'SLACK_SIM_WORKSPACES': '2'})]
            for name in ('vault', 'scheduler'):
                started.append(s.start(name, wait=False))
            started.append(s.start('api', wait=False, env={
                'BCRM_SLACK_CLIENT_ID': SIM_CLIENT_ID, 'BCRM_PUBLIC_URL': s.api_url,
                'BCRM_SLACK_OAUTH_AUTHORIZE_URL': s.sim_url + '/oauth/v2/authorize'}))
            for replica in range(2):
                started.append(s.start('sender-slack', replica=replica, wait=False, env={
                    'BCRM_SENDER_ID': f'slack-{replica}', 'BCRM_SLACK_CLIENT_ID': SIM_CLIENT_ID,
                    'BCRM_SLACK_CLIENT_SECRET': SIM_CLIENT_SECRET}))
            s.wait_ready(started)
            self.assertEqual(s.sim('DELETE', '/_sim/requests')[0], 200)
            ws, ws2 = s.sim('GET', '/_sim/workspaces')[2]['workspaces']
            team_id = ws['team_id']
            users = s.sim('GET', '/_sim/users?team_id=' + team_id)[2]['users']
            people = [u for u in users if u['kind'] == 'person' and not u['deleted']]
            channels = s.sim('GET', '/_sim/channels?team_id=' + team_id)[2]['channels']
            general = next(c for c in channels if c['name'] == 'general')
            announcements = next(c for c in channels if c['name'] == 'announcements')

            org = signup(s, 'Request Checker', 'requests@e2e.bcrm.test', 'Requests')
            bot = connect_bot(s, org, 'slack', ws['token'])
            # The bot's scopes are the token's, as auth.test's X-OAuth-Scopes gave them.
            status, _, got = s.api('GET', f'/v1/orgs/{org}/bots/{bot["id"]}')
            self.assertEqual(status, 200, got)
            self.assertEqual(set((got['scopes'] or '').split(',')), set(ws['scopes']), got)

            # Users and channels, page by page, through the api.
            listed, cursor = [], ''
            for _ in range(20):
                q = f'?limit=5&cursor={cursor}' if cursor else '?limit=5'
                status, _, page = s.api('GET', f'/v1/orgs/{org}/bots/{bot["id"]}/users' + q)
                self.assertEqual(status, 200, page)
                listed += [u['id'] for u in page['users']]
                cursor = page.get('next_cursor') or ''
                if not cursor:
                    break
            self.assertEqual(sorted(listed), sorted(u['id'] for u in users))
            status, _, body = s.api('GET', f'/v1/orgs/{org}/bots/{bot["id"]}/channels?limit=2')
            self.assertEqual(status, 200, body)

            # The second workspace through "Add to Slack": the api's start, the
            # simulator's authorize page (for that team), the callback.
            status, location, body = get_no_redirect(
                s.api_url + f'/v1/orgs/{org}/oauth/slack/start', s.cookies)
            self.assertEqual(status, 302, body)
            self.assertTrue(location.startswith(s.sim_url + '/oauth/v2/authorize'), location)
            status, callback, body = get_no_redirect(location + '&team=' + ws2['team_id'])
            self.assertIn(status, (302, 303), body)
            status, _, body = get_no_redirect(callback, s.cookies)
            self.assertEqual(status, 302, body)
            status, _, installed = s.api('GET', f'/v1/orgs/{org}/bots/{body["bot_id"]}')
            self.assertEqual((installed['status'], installed['team_id']),
                             ('active', ws2['team_id']), installed)

            # A segment of a channel's members, previewed live (conversations.members,
            # then users.list).
            status, _, seg = s.api('POST', f'/v1/orgs/{org}/segments', {
                'name': 'Announcements', 'bot_id': bot['id'],
                'filter': {'members_of': [announcements['id']]}})
            self.assertEqual(status, 201, seg)
            status, _, preview = s.api('GET', f'/v1/orgs/{org}/segments/{seg["id"]}/preview')
            self.assertEqual(status, 200, preview)
            members = [u['id'] for u in people if u['id'] in announcements['members']]
            self.assertEqual((preview['kind'], preview['count']), ('users', len(members)),
                             preview)

            # A campaign to a few users, personalised (users.info for each), with
            # blocks; one to a channel; one to the segment's members.
            chosen = [u['id'] for u in people[:3]]
            campaigns = [{
                'name': 'Few users', 'bot_id': bot['id'],
                'message': {'text': 'Hi {{first_name|there}}!', 'blocks': [
                    {'type': 'section', 'text': {'type': 'mrkdwn',
                                                 'text': '*Hello* {{first_name|there}}'}},
                    {'type': 'divider'}]},
                'audience': {'filter': {'user_ids': chosen}}, 'schedule': {'mode': 'now'}}, {
                'name': 'Channel post', 'bot_id': bot['id'],
                'message': {'text': 'News for the channel'},
                'audience': {'filter': {'channel_ids': [general['id']]}},
                'schedule': {'mode': 'now'}}, {
                'name': 'Members', 'bot_id': bot['id'],
                'message': {'text': 'For the members of #announcements'},
                'audience': {'segment_id': seg['id']}, 'schedule': {'mode': 'now'}}, {
                'name': 'Everyone, personalised', 'bot_id': bot['id'],
                'message': {'text': 'Dear {{first_name|friend}}'},
                'audience': {'filter': {'all': True}}, 'schedule': {'mode': 'now'}}]
            dm_campaign = {
                'name': 'DMs opened', 'bot_id': bot['id'], 'message': {'text': 'Via the DM'},
                'audience': {'filter': {'user_ids': [u['id'] for u in people[3:6]]}},
                'schedule': {'mode': 'now'}}

            def run(campaigns):
                paths = [start_campaign(s, org, c) for c in campaigns]
                for body in wait_campaigns(s, paths, CAMPAIGN_TIMEOUT_S):
                    self.assertEqual(body['stats']['failed'] + body['stats']['unknown'], 0,
                                     body)

            run(campaigns)
            self.assertEqual(s.sim('POST', '/_sim/faults', {'refuse_user_id_posts': True})[0],
                             200)
            run([dm_campaign])
            s.sim('POST', '/_sim/faults', {'clear': True})
            messages = s.sim('GET', '/_sim/messages?team_id=' + team_id)[2]['messages']
            everyone = [u['id'] for u in people]
            self.assertEqual(sorted(m['recipient'] for m in messages),
                             sorted(chosen + [general['id']] + members + everyone +
                                    [u['id'] for u in people[3:6]]))
            first = {m['recipient']: m['text'] for m in messages if m['text'].startswith('Hi ')}
            self.assertEqual(first, {u['id']: 'Hi %s!' % u['first_name'] for u in people[:3]})

            # Now every request, as slack-sim received it.
            log = s.sim('GET', '/_sim/requests')[2]
            self.assertEqual(log['evicted'], 0, 'the request log overflowed')
            requests = log['requests']
            seen = {r['method'] for r in requests}
            self.assertTrue({'auth.test', 'users.list', 'users.info', 'conversations.list',
                             'conversations.members', 'conversations.open',
                             'chat.postMessage', 'oauth.v2.access'} <= seen, seen)
            # The user ids Slack refused under refuse_user_id_posts: well-formed
            # requests, turned down by design.
            refused = [r for r in requests if r['method'] == 'chat.postMessage' and
                       r['error'] == 'channel_not_found' and
                       USER_RE.match((r['body'] or {}).get('channel', ''))]
            self.assertTrue(refused, 'no user id was refused: the DM path was not taken')
            requests = [r for r in requests if r not in refused]
            posts = [r for r in requests if r['method'] == 'chat.postMessage']
            self.assertEqual(len(posts), len(chosen) + 1 + len(members) + len(everyone) + 3)
            self.assertTrue(any('blocks' in (r['body'] or {}) for r in posts))
            # Profiles: users.info for people of this workspace only, and the
            # personalised campaign to everyone read its profiles in a page.
            infos = [r for r in requests if r['method'] == 'users.info']
            self.assertLessEqual({r['body']['user'] for r in infos}, set(everyone))
            self.assertTrue(any((r['body'] or {}).get('limit') == '1000' for r in requests
                                if r['method'] == 'users.list'), 'no users.list fill')
            self.assertEqual(len([r for r in requests if r['method'] == 'oauth.v2.access']), 1)
            self.assertEqual({r['team_id'] for r in requests if r['method'] != 'oauth.v2.access'}
                             - {team_id, ws2['team_id']}, set())
            if os.environ.get('BCRM_E2E_VERBOSE'):
                for req in requests:
                    print(json.dumps({k: req[k] for k in ('seq', 'method', 'http_method',
                                      'content_type', 'auth', 'query', 'body', 'error')})[:400])
            v = Validator()
            for req in requests:
                v.check(req)
            self.assertEqual(v.problems, [], '\n'.join(v.problems))
            codes = s.stop()
            self.assertEqual({k: c for k, c in codes.items() if c != 0}, {})


if __name__ == '__main__':
    unittest.main(verbosity=2)
