#!/usr/bin/python3
"""Every request bcrm sends to the Graph API, checked against the Messenger
Platform's rules (shared/spec/platforms.md).

The real stack (PostgreSQL, vault, scheduler, api, sender-messenger and
messenger-sim) connects a page, lists the people who wrote to it through the api,
and runs two campaigns: a personalised UPDATE to people inside the 24-hour
window, and an ACCOUNT_UPDATE message tag to someone outside it. messenger-sim
records every Graph call as received (GET /_sim/requests); each is checked:

* the path is a call of the Graph API under the configured version (v19.0);
* the page token travels as access_token or an Authorization: Bearer header, and
  the simulator knew it;
* Send API bodies are JSON objects with only the Send API's fields:
  recipient.id a PSID, messaging_type one of RESPONSE / UPDATE / MESSAGE_TAG, a
  tag exactly when the type is MESSAGE_TAG and then one of the allowed tags, and
  message.text a string of 1 to 2000 characters;
* reads ask only for fields that exist (profile, conversations) with sane limits;
* Graph answered without an error.
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402
from e2e_helpers import connect_bot, signup, start_campaign, wait_campaigns  # noqa: E402

CAMPAIGN_TIMEOUT_S = float(os.environ.get('BCRM_E2E_CAMPAIGN_TIMEOUT', '120'))
DAY_MS = 24 * 3600 * 1000
VERSION = 'v19.0'
PSID_RE = re.compile(r'^[0-9]{5,20}$')
MESSAGING_TYPES = {'RESPONSE', 'UPDATE', 'MESSAGE_TAG'}
TAGS = {'CONFIRMED_EVENT_UPDATE', 'POST_PURCHASE_UPDATE', 'ACCOUNT_UPDATE', 'HUMAN_AGENT'}
SEND_FIELDS = {'recipient', 'messaging_type', 'tag', 'message', 'notification_type',
               'persona_id'}
PROFILE_FIELDS = {'id', 'name', 'first_name', 'last_name', 'profile_pic', 'locale', 'timezone',
                  'gender'}
CONVERSATION_FIELDS = {'id', 'participants', 'senders', 'updated_time', 'message_count'}


class GraphValidator:
    def __init__(self):
        self.problems = []

    def problem(self, req, what):
        self.problems.append('#%s %s %s: %s' % (req.get('seq'), req.get('http_method'),
                                                req.get('path'), what))

    def check(self, req):
        version = req['path'].split('/')[1]
        if version != VERSION:
            self.problem(req, 'version %r, not %s' % (version, VERSION))
        if req['auth'] not in ('bearer', 'access_token_argument'):
            self.problem(req, 'no page token (auth %s)' % req['auth'])
        if 'appsecret_proof' in req['query'] and not re.fullmatch(
                r'[0-9a-f]{64}', req['query']['appsecret_proof']):
            self.problem(req, 'appsecret_proof is not a hex SHA-256')
        method = req['method']
        if method == 'messages':
            self.check_send(req)
        elif method == 'me':
            self.check_fields(req, {'id', 'name'})
        elif method == 'profile':
            self.check_fields(req, PROFILE_FIELDS)
        elif method == 'conversations':
            self.check_conversations(req)
        else:
            self.problem(req, 'not a Graph call the Messenger Platform offers')
        if req['error_code'] is not None or req['status'] != 200:
            self.problem(req, 'Graph answered %s with code %s' % (req['status'],
                                                                 req['error_code']))

    def check_fields(self, req, allowed):
        fields = req['query'].get('fields')
        if fields is not None and not set(fields.split(',')) <= allowed:
            self.problem(req, 'unknown fields %s' % (set(fields.split(',')) - allowed))

    def check_conversations(self, req):
        q = req['query']
        if q.get('platform') != 'messenger':
            self.problem(req, 'platform=%r, not messenger' % q.get('platform'))
        self.check_fields(req, CONVERSATION_FIELDS)
        if 'limit' in q and not (q['limit'].isdigit() and 1 <= int(q['limit']) <= 100):
            self.problem(req, 'limit %r' % q['limit'])
        if 'after' in q and not q['after']:
            self.problem(req, 'empty after cursor')

    def check_send(self, req):
        if req['http_method'] != 'POST':
            self.problem(req, 'Send API by %s' % req['http_method'])
        body = req['body']
        if req['body_format'] != 'json' or not isinstance(body, dict):
            self.problem(req, 'Send API body is not a JSON object (%s)' % req['body_format'])
            return
        extra = set(body) - SEND_FIELDS
        if extra:
            self.problem(req, 'unknown Send API fields %s' % sorted(extra))
        recipient = body.get('recipient')
        if not (isinstance(recipient, dict) and isinstance(recipient.get('id'), str)
                and PSID_RE.match(recipient['id']) and set(recipient) == {'id'}):
            self.problem(req, 'recipient %r is not {"id": PSID}' % (recipient,))
        mtype = body.get('messaging_type')
        if mtype not in MESSAGING_TYPES:
            self.problem(req, 'messaging_type %r' % (mtype,))
        tag = body.get('tag')
        if mtype == 'MESSAGE_TAG' and tag not in TAGS:
            self.problem(req, 'MESSAGE_TAG with tag %r' % (tag,))
        if mtype != 'MESSAGE_TAG' and 'tag' in body:
            self.problem(req, 'tag %r without MESSAGE_TAG' % (tag,))
        message = body.get('message')
        text = message.get('text') if isinstance(message, dict) else None
        if not isinstance(text, str) or not 1 <= len(text) <= 2000:
            self.problem(req, 'message.text is not a string of 1-2000 characters')


class ValidatorSelfTest(unittest.TestCase):
    def send(self, body, **kw):
        req = {'seq': 1, 'method': 'messages', 'http_method': 'POST',
               'path': '/v19.0/me/messages', 'auth': 'access_token_argument',
               'query': {'access_token': '[redacted]'}, 'body_format': 'json', 'body': body,
               'status': 200, 'error_code': None}
        req.update(kw)
        v = GraphValidator()
        v.check(req)
        return v.problems

    def test_catches_bad_sends(self):
        good = {'recipient': {'id': '1234567890123456'}, 'messaging_type': 'UPDATE',
                'message': {'text': 'hi'}}
        self.assertEqual(self.send(good), [])
        cases = [({**good, 'recipient': {'id': 42}}, 'recipient'),
                 ({**good, 'messaging_type': 'PROMO'}, 'messaging_type'),
                 ({**good, 'messaging_type': 'MESSAGE_TAG'}, 'MESSAGE_TAG with tag'),
                 ({**good, 'tag': 'ACCOUNT_UPDATE'}, 'without MESSAGE_TAG'),
                 ({**good, 'message': {'text': 'x' * 2001}}, 'message.text'),
                 ({**good, 'persona': 'x'}, 'unknown Send API fields')]
        for body, expected in cases:
            with self.subTest(expected=expected):
                self.assertTrue(any(expected in p for p in self.send(body)), self.send(body))
        self.assertTrue(self.send(good, path='/v2.6/me/messages'))
        self.assertTrue(self.send(good, auth='none'))
        self.assertTrue(self.send(good, error_code=100, status=400))


class MessengerRequestsTest(unittest.TestCase):
    def test_every_graph_request_follows_the_platform_rules(self):
        with Stack() as s:
            s.start_all(sender_replicas=1, slack_sim=False, msim_env={
                'MESSENGER_SIM_USERS': '30', 'MESSENGER_SIM_SEED': '77'})
            self.assertEqual(s.msim('DELETE', '/_sim/requests')[0], 200)
            page = s.msim('GET', '/_sim/pages')[2]['pages'][0]
            people = s.msim('GET', '/_sim/users?page_id=' + page['page_id'])[2]['users']
            now = time.time() * 1000
            inside = [u for u in people if not u['unavailable']
                      and now - u['last_message_ms'] < DAY_MS - 600000][:3]
            outside = [u for u in people if not u['unavailable']
                       and now - u['last_message_ms'] > 8 * DAY_MS][:1]
            self.assertEqual((len(inside), len(outside)), (3, 1))

            org = signup(s, 'Graph Checker', 'graph@e2e.bcrm.test', 'Graph')
            bot = connect_bot(s, org, 'messenger', page['token'])
            listed, cursor = [], ''
            for _ in range(20):
                q = f'?limit=10&cursor={cursor}' if cursor else '?limit=10'
                status, _, body = s.api('GET', f'/v1/orgs/{org}/bots/{bot["id"]}/users' + q)
                self.assertEqual(status, 200, body)
                listed += [u['id'] for u in body['users']]
                cursor = body.get('next_cursor') or ''
                if not cursor:
                    break
            self.assertEqual(sorted(listed), sorted(u['psid'] for u in people))

            campaigns = [
                {'name': 'Inside the window', 'bot_id': bot['id'],
                 'message': {'text': 'Hi {{first_name|there}}, news for you'},
                 'audience': {'filter': {'user_ids': [u['psid'] for u in inside]}},
                 'schedule': {'mode': 'now'}, 'messenger': {'messaging_type': 'UPDATE'}},
                {'name': 'Account update', 'bot_id': bot['id'],
                 'message': {'text': 'Your account changed'},
                 'audience': {'filter': {'user_ids': [u['psid'] for u in outside]}},
                 'schedule': {'mode': 'now'},
                 'messenger': {'messaging_type': 'MESSAGE_TAG', 'tag': 'ACCOUNT_UPDATE'}}]
            paths = [start_campaign(s, org, c) for c in campaigns]
            for body in wait_campaigns(s, paths, CAMPAIGN_TIMEOUT_S):
                self.assertEqual(body['stats']['sent'], body['stats']['total'], body)
            messages = s.msim('GET', '/_sim/messages')[2]['messages']
            self.assertEqual(sorted(m['recipient'] for m in messages),
                             sorted(u['psid'] for u in inside + outside))

            log = s.msim('GET', '/_sim/requests')[2]
            self.assertEqual(log['evicted'], 0)
            requests = log['requests']
            seen = {r['method'] for r in requests}
            self.assertTrue({'me', 'conversations', 'messages'} <= seen, seen)
            if os.environ.get('BCRM_E2E_VERBOSE'):
                for req in requests:
                    print(json.dumps({k: req[k] for k in ('seq', 'method', 'path', 'auth',
                                                          'query', 'body', 'error_code')})[:400])
            v = GraphValidator()
            for req in requests:
                v.check(req)
            self.assertEqual(v.problems, [], '\n'.join(v.problems))
            codes = s.stop()
            self.assertEqual({k: c for k, c in codes.items() if c != 0}, {})


if __name__ == '__main__':
    unittest.main(verbosity=2)
