#!/usr/bin/env python3
"""System tests of sim/messenger-sim, the Messenger Platform (Graph API) simulator.

The simulator listens on a port the kernel picks (MESSENGER_SIM_ADDR=127.0.0.1:0).
Run by ctest with BCRM_BUILD_DIR and BCRM_SOURCE_DIR set.
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from concurrent_http import many_at_once  # noqa: E402

BUILD_DIR = os.environ.get('BCRM_BUILD_DIR', os.path.join(os.path.dirname(__file__), '..', '..',
                                                          'build'))
SIM_BIN = os.path.join(BUILD_DIR, 'sim', 'messenger-sim', 'messenger-sim')
DAY_MS = 24 * 3600 * 1000


class Hook:
    """A small HTTP server standing in for bcrm's webhook: keeps what it gets."""

    def __init__(self, status=200):
        self.received = []  # (headers, raw body, arrival time)
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def do_POST(self):
                raw = self.rfile.read(int(self.headers['Content-Length']))
                hook.received.append((dict(self.headers), raw, time.time()))
                self.send_response(status)
                self.send_header('Content-Length', '2')
                self.end_headers()
                self.wfile.write(b'ok')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = 'http://127.0.0.1:%d/v1/webhooks/messenger' % self.server.server_address[1]

    def events(self, secret=b'sim-app-secret'):
        """Every messaging item received, after checking each POST's signature."""
        out = []
        for headers, raw, at in list(self.received):
            mac = hmac.new(secret, raw, hashlib.sha256).hexdigest()
            assert headers['X-Hub-Signature-256'] == 'sha256=' + mac, headers
            body = json.loads(raw)
            assert body['object'] == 'page', body
            for entry in body['entry']:
                for item in entry['messaging']:
                    out.append((entry['id'], item, at))
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MessengerSim:
    def __init__(self, **env):
        self.log = tempfile.NamedTemporaryFile(prefix='messenger-sim-', suffix='.log',
                                               delete=False)
        full_env = dict(os.environ, MESSENGER_SIM_ADDR='127.0.0.1:0')
        full_env.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([SIM_BIN], env=full_env, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        self.port = None
        deadline = time.time() + 30
        while self.port is None and time.time() < deadline:
            with open(self.log.name) as f:
                for line in f:
                    rec = json.loads(line)
                    if rec.get('msg') == 'messenger-sim listening':
                        self.port = rec['port']
            if self.proc.poll() is not None:
                raise RuntimeError('messenger-sim exited: ' + open(self.log.name).read())
            time.sleep(0.02)
        self.pages = self.request('GET', '/_sim/pages')[2]['pages']
        self.page_id = self.pages[0]['page_id']
        self.token = self.pages[0]['token']

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=10)
        self.log.close()
        if rc != 0:
            with open(self.log.name) as f:
                sys.stderr.write('messenger-sim exited %d:\n%s\n' % (rc, f.read()[-20000:]))
        os.unlink(self.log.name)
        return rc

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = dict(headers or {}, **{'Content-Type': 'application/json'})
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            parsed = json.loads(data) if data and 'json' in resp.getheader('Content-Type', '') \
                else data.decode()
            return resp.status, dict(resp.getheaders()), parsed
        finally:
            conn.close()

    def graph(self, method, path, args=None, body=None, token=None):
        args = dict(args or {})
        token = self.token if token is None else token
        if token:
            args['access_token'] = token
        return self.request(method, '/v19.0' + path + '?' + urllib.parse.urlencode(args), body)

    def send(self, psid, text='hello', messaging_type='UPDATE', tag=None, token=None):
        body = {'recipient': {'id': psid}, 'messaging_type': messaging_type,
                'message': {'text': text}}
        if tag:
            body['tag'] = tag
        return self.graph('POST', '/me/messages', body=body, token=token)

    def users(self):
        return self.request('GET', '/_sim/users?page_id=' + self.page_id)[2]['users']

    def control(self, method, path, body=None):
        return self.request(method, '/_sim/' + path, body if body is not None else None)


class MessengerSimTest(unittest.TestCase):
    sim = None

    @classmethod
    def setUpClass(cls):
        cls.sim = MessengerSim(MESSENGER_SIM_USERS=120, MESSENGER_SIM_SEED=5)

    @classmethod
    def tearDownClass(cls):
        assert cls.sim.stop() == 0

    def setUp(self):
        self.assertEqual(self.sim.control('POST', 'reset')[0], 200)

    def graph_error(self, answer, code, subcode=None, status=400):
        got_status, _, body = answer
        self.assertEqual(got_status, status, body)
        err = body['error']
        self.assertEqual(err['code'], code, err)
        self.assertEqual(err.get('error_subcode'), subcode, err)
        self.assertTrue(err['message'])
        self.assertTrue(err['type'])
        self.assertTrue(err['fbtrace_id'])

    def person(self, window):
        """A reachable person: 'day' (within 24 h), 'week' (1-7 days), 'old'."""
        now = time.time() * 1000
        for u in self.sim.users():
            age = now - u['last_message_ms']
            if u['unavailable']:
                continue
            if (window == 'day' and age < DAY_MS - 60000) or \
               (window == 'week' and DAY_MS + 60000 < age < 7 * DAY_MS - 60000) or \
               (window == 'old' and age > 7 * DAY_MS + 60000):
                return u
        raise AssertionError('no person in window ' + window)

    def test_population(self):
        users = self.sim.users()
        self.assertEqual(len(users), 120)
        self.assertEqual(len({u['psid'] for u in users}), 120)
        self.assertTrue(any(u['timezone'] is None for u in users))
        self.assertTrue(any(u['timezone'] not in (None, int(u['timezone'])) for u in users))
        self.assertTrue(any(u['unavailable'] for u in users))
        self.assertEqual(len({u['marker'] for u in users}), 120)
        for u in users:
            self.assertIn(u['marker'], u['name'])
        for window in ('day', 'week', 'old'):
            self.person(window)

    def test_me_and_tokens(self):
        status, _, body = self.sim.graph('GET', '/me')
        self.assertEqual((status, body), (200, {'name': 'Sim Page 1', 'id': self.sim.page_id}))
        status, _, body = self.sim.request('GET', '/me', headers={
            'Authorization': 'Bearer ' + self.sim.token})
        self.assertEqual(body['id'], self.sim.page_id)
        self.assertEqual(self.sim.graph('GET', '/' + self.sim.page_id)[2]['id'], self.sim.page_id)
        self.graph_error(self.sim.graph('GET', '/me', token=''), 104)
        self.graph_error(self.sim.graph('GET', '/me', token='EAAGnope'), 190)
        self.sim.control('POST', 'faults', {'revoke_token': self.sim.page_id})
        self.graph_error(self.sim.graph('GET', '/me'), 190, 460)
        self.graph_error(self.sim.send(self.person('day')['psid']), 190, 460)
        self.sim.control('POST', 'faults', {'restore_token': self.sim.page_id})
        self.assertEqual(self.sim.graph('GET', '/me')[0], 200)
        self.graph_error(self.sim.graph('GET', '/123/nothing'), 100, 33)

    def test_send_within_window(self):
        u = self.person('day')
        for kind in ('RESPONSE', 'UPDATE'):
            status, _, body = self.sim.send(u['psid'], 'hi ' + kind, kind)
            self.assertEqual(status, 200, body)
            self.assertEqual(body['recipient_id'], u['psid'])
            self.assertTrue(body['message_id'].startswith('m_'))
        # The same call form-encoded, as some clients send it.
        form = urllib.parse.urlencode({'recipient': json.dumps({'id': u['psid']}),
                                       'messaging_type': 'RESPONSE',
                                       'message': json.dumps({'text': 'form'}),
                                       'access_token': self.sim.token})
        status, _, body = self.sim.request('POST', '/v19.0/me/messages', form.encode(),
                                           {'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual(status, 200, body)
        msgs = self.sim.control('GET', 'messages')[2]['messages']
        self.assertEqual([(m['user'], m['text'], m['messaging_type']) for m in msgs],
                         [(u['psid'], 'hi RESPONSE', 'RESPONSE'),
                          (u['psid'], 'hi UPDATE', 'UPDATE'),
                          (u['psid'], 'form', 'RESPONSE')])
        self.assertEqual(msgs[0]['page_id'], self.sim.page_id)

    def test_window_rule(self):
        week, old = self.person('week'), self.person('old')
        for u in (week, old):
            self.graph_error(self.sim.send(u['psid'], 'promo', 'UPDATE'), 10, 2018278)
            self.graph_error(self.sim.send(u['psid'], 'promo', 'RESPONSE'), 10, 2018278)
            status, _, _ = self.sim.send(u['psid'], 'your order', 'MESSAGE_TAG',
                                         'POST_PURCHASE_UPDATE')
            self.assertEqual(status, 200)
        self.assertEqual(self.sim.send(week['psid'], 'agent', 'MESSAGE_TAG', 'HUMAN_AGENT')[0], 200)
        self.graph_error(self.sim.send(old['psid'], 'agent', 'MESSAGE_TAG', 'HUMAN_AGENT'),
                         10, 2018278)
        stats = self.sim.control('GET', 'stats')[2]
        self.assertEqual((stats['messages'], stats['policy_refusals']), (3, 5))
        # The person writes to the page: the window opens again.
        status, _, body = self.sim.control('POST', 'inbound', {'psid': old['psid']})
        self.assertEqual(status, 200)
        self.assertTrue(body['user']['in_window'])
        self.assertEqual(self.sim.send(old['psid'], 'welcome back')[0], 200)
        # And closes when the last message is set back in time.
        self.sim.control('POST', 'inbound', {'psid': old['psid'],
                                             'at_ms': int(time.time() * 1000) - 2 * DAY_MS})
        self.graph_error(self.sim.send(old['psid'], 'too late'), 10, 2018278)

    def test_send_errors(self):
        u = self.person('day')
        unavailable = [x for x in self.sim.users() if x['unavailable']][0]
        self.graph_error(self.sim.send('999999', 'x'), 100, 2018001)
        self.graph_error(self.sim.send(u['psid'], ''), 100)
        self.graph_error(self.sim.send(u['psid'], 'x' * 2001), 100)
        self.assertEqual(self.sim.send(u['psid'], 'é' * 2000)[0], 200)
        self.graph_error(self.sim.send(u['psid'], 'x', messaging_type=''), 100)
        self.graph_error(self.sim.send(u['psid'], 'x', messaging_type='PROMO'), 100)
        self.graph_error(self.sim.send(u['psid'], 'x', 'MESSAGE_TAG'), 100)
        self.graph_error(self.sim.send(u['psid'], 'x', 'MESSAGE_TAG', 'NOT_A_TAG'), 100)
        self.graph_error(self.sim.graph('POST', '/me/messages', body={'message': {'text': 'x'},
                                                                      'messaging_type': 'UPDATE'}),
                         100)
        self.graph_error(self.sim.send(unavailable['psid'], 'x'), 551, 1545041)
        self.assertEqual(self.sim.control('GET', 'stats')[2]['messages'], 1)

    def test_profile(self):
        users = self.sim.users()
        with_tz = [u for u in users if u['timezone'] is not None][0]
        without_tz = [u for u in users if u['timezone'] is None][0]
        status, _, body = self.sim.graph('GET', '/' + with_tz['psid'], {
            'fields': 'first_name,last_name,profile_pic,timezone,locale'})
        self.assertEqual(status, 200)
        self.assertEqual(body, {'id': with_tz['psid'], 'first_name': with_tz['first_name'],
                                'last_name': with_tz['last_name'],
                                'profile_pic': with_tz['profile_pic'],
                                'timezone': with_tz['timezone'], 'locale': with_tz['locale']})
        body = self.sim.graph('GET', '/' + without_tz['psid'], {'fields': 'timezone,name'})[2]
        self.assertEqual(body, {'id': without_tz['psid'], 'name': without_tz['name']})
        self.graph_error(self.sim.graph('GET', '/' + with_tz['psid'], {'fields': 'email'}), 100)
        self.graph_error(self.sim.graph('GET', '/1234567890123456'), 100, 33)

    def test_conversations_paging(self):
        seen = []
        status, _, body = self.sim.graph('GET', '/me/conversations', {
            'platform': 'messenger', 'fields': 'participants,updated_time', 'limit': 7})
        pages = 0
        while True:
            self.assertEqual(status, 200, body)
            pages += 1
            for conv in body['data']:
                self.assertTrue(conv['id'].startswith('t_'))
                self.assertTrue(conv['updated_time'].endswith('+0000'))
                ids = [p['id'] for p in conv['participants']['data']]
                self.assertEqual(ids[1], self.sim.page_id)
                seen.append(ids[0])
            nxt = body.get('paging', {}).get('next')
            if not nxt:
                break
            url = urllib.parse.urlsplit(nxt)
            self.assertEqual(url.port, self.sim.port)
            status, _, body = self.sim.request('GET', url.path + '?' + url.query)
        self.assertEqual(pages, -(-120 // 7))
        self.assertEqual(sorted(seen), sorted(u['psid'] for u in self.sim.users()))
        # Most recently active first.
        by_psid = {u['psid']: u['last_message_ms'] for u in self.sim.users()}
        times = [by_psid[p] for p in seen]
        self.assertEqual(times, sorted(times, reverse=True))
        self.graph_error(self.sim.graph('GET', '/me/conversations', {'after': 'bogus'}), 100)
        self.graph_error(self.sim.graph('GET', '/me/conversations', {'fields': 'nope'}), 100)
        status, _, body = self.sim.graph('GET', '/me/conversations', {'platform': 'instagram'})
        self.assertEqual((status, body['data']), (200, []))

    def test_duplicates(self):
        u, v = self.person('day'), [x for x in self.sim.users()
                                    if x['in_window'] and not x['unavailable']][1]
        for _ in range(2):
            self.sim.send(u['psid'], 'same')
        self.sim.send(v['psid'], 'same')
        stats = self.sim.control('GET', 'stats')[2]
        self.assertEqual((stats['messages'], stats['duplicates'], stats['recipients']), (3, 1, 2))
        recipients = self.sim.control('GET', 'recipients')[2]['recipients']
        self.assertEqual({r['recipient']: r['count'] for r in recipients},
                         {u['psid']: 2, v['psid']: 1})

    def test_rate_limits(self):
        self.sim.control('POST', 'faults', {'limits': True, 'send_per_second': 2})
        u = self.person('day')
        self.assertEqual(self.sim.send(u['psid'], '1')[0], 200)
        self.assertEqual(self.sim.send(u['psid'], '2')[0], 200)
        self.graph_error(self.sim.send(u['psid'], '3'), 613)
        for _ in range(2):
            self.assertEqual(self.sim.graph('GET', '/me/conversations')[0], 200)
        self.graph_error(self.sim.graph('GET', '/me/conversations'), 613)
        time.sleep(1.1)
        self.assertEqual(self.sim.send(u['psid'], '4')[0], 200)
        self.assertEqual(self.sim.control('GET', 'stats')[2]['ratelimited'], 2)
        # Switched off at run time, the limits stop at once.
        self.sim.control('POST', 'faults', {'limits': False})
        self.assertEqual([self.sim.send(u['psid'], 'x%d' % i)[0] for i in range(5)], [200] * 5)
        self.assertEqual([self.sim.graph('GET', '/me/conversations')[0] for _ in range(4)],
                         [200] * 4)

    def test_send_rate_300_per_second_per_page(self):
        # Meta's default, as the simulator applies it with the limits on: a full
        # bucket of 300 sends, refilled at 300 a second; past it, HTTP 400 with
        # code 613 and nothing recorded.
        faults = self.sim.control('POST', 'faults', {'limits': True})[2]
        self.assertEqual(faults['send_per_second'], 300)
        now = time.time() * 1000
        people = [u for u in self.sim.users() if not u['unavailable']
                  and now - u['last_message_ms'] < DAY_MS - 600000]
        headers = {'Authorization': 'Bearer ' + self.sim.token,
                   'Content-Type': 'application/json'}
        calls = [('POST', '/v19.0/me/messages', headers, json.dumps({
            'recipient': {'id': people[i % len(people)]['psid']}, 'messaging_type': 'UPDATE',
            'message': {'text': 'burst %d' % i}}).encode()) for i in range(450)]
        started = time.monotonic()
        answers = many_at_once(self.sim.port, calls)
        took = time.monotonic() - started  # the bucket refills while the burst runs
        ok = [a for a in answers if a[0] == 200]
        refused = [a for a in answers if a[0] != 200]
        self.assertGreaterEqual(len(ok), 300)
        self.assertLessEqual(len(ok), 300 + int(took * 300) + 1)
        self.assertEqual(len(ok) + len(refused), 450)
        for status, _, raw, _ in refused:
            err = json.loads(raw)['error']
            self.assertEqual((status, err['code'], err['type']), (400, 613, 'OAuthException'))
        self.assertEqual(self.sim.control('GET', 'stats')[2]['messages'], len(ok))
        # A second later the bucket is full again.
        time.sleep(1.05)
        self.assertEqual(self.sim.send(people[0]['psid'], 'after')[0], 200)

    def test_several_pages(self):
        multi = MessengerSim(MESSENGER_SIM_USERS=30, MESSENGER_SIM_PAGES=3, MESSENGER_SIM_SEED=9)
        try:
            pages = multi.pages
            self.assertEqual(len(pages), 3)
            self.assertEqual(len({p['token'] for p in pages}), 3)
            self.assertEqual(len({p['page_id'] for p in pages}), 3)
            people = {p['page_id']: multi.request('GET', '/_sim/users?page_id=' + p['page_id'])
                      [2]['users'] for p in pages}
            psids = [{u['psid'] for u in people[p['page_id']]} for p in pages]
            self.assertEqual([len(s) for s in psids], [30, 30, 30])
            self.assertFalse(psids[0] & psids[1] or psids[1] & psids[2] or psids[0] & psids[2])
            now = time.time() * 1000
            for i, page in enumerate(pages):
                token = page['token']
                me = multi.graph('GET', '/me', token=token)[2]
                self.assertEqual((me['id'], me['name']), (page['page_id'], page['name']))
                status, _, body = multi.graph('GET', '/me/conversations', {
                    'platform': 'messenger', 'fields': 'participants', 'limit': 100},
                    token=token)
                self.assertEqual(status, 200, body)
                listed = {c['participants']['data'][0]['id'] for c in body['data']}
                self.assertEqual(listed, psids[i])
                # Another page's people are unknown to this token.
                other = people[pages[(i + 1) % 3]['page_id']]
                stranger = next(u for u in other if not u['unavailable'])
                self.graph_error(multi.send(stranger['psid'], 'x', token=token), 100, 2018001)
                self.graph_error(multi.graph('GET', '/' + stranger['psid'], token=token), 100, 33)
                self.graph_error(multi.graph('GET', '/%s/conversations' % pages[(i + 1) % 3]
                                             ['page_id'], token=token), 100, 33)
                mine = next(u for u in people[page['page_id']] if not u['unavailable']
                            and now - u['last_message_ms'] < DAY_MS - 600000)
                self.assertEqual(multi.send(mine['psid'], 'to page %d' % i, token=token)[0], 200)
            # The record keeps each page's messages apart.
            for i, page in enumerate(pages):
                msgs = multi.request('GET', '/_sim/messages?page_id=' + page['page_id'])[2]
                self.assertEqual([(m['page_id'], m['text']) for m in msgs['messages']],
                                 [(page['page_id'], 'to page %d' % i)])
            # Limits, revocations: per page.
            multi.control('POST', 'faults', {'limits': True, 'send_per_second': 1})
            first = next(u for u in people[pages[0]['page_id']] if not u['unavailable']
                         and now - u['last_message_ms'] < DAY_MS - 600000)
            second = next(u for u in people[pages[1]['page_id']] if not u['unavailable']
                          and now - u['last_message_ms'] < DAY_MS - 600000)
            self.assertEqual(multi.send(first['psid'], 'a', token=pages[0]['token'])[0], 200)
            self.graph_error(multi.send(first['psid'], 'b', token=pages[0]['token']), 613)
            self.assertEqual(multi.send(second['psid'], 'c', token=pages[1]['token'])[0], 200)
            multi.control('POST', 'faults', {'limits': False, 'revoke_token': pages[0]['page_id']})
            self.graph_error(multi.graph('GET', '/me', token=pages[0]['token']), 190, 460)
            self.assertEqual(multi.graph('GET', '/me', token=pages[1]['token'])[0], 200)
        finally:
            self.assertEqual(multi.stop(), 0)

    def test_faults(self):
        u = self.person('day')
        self.sim.control('POST', 'faults', {'error_rate': 1.0})
        self.graph_error(self.sim.send(u['psid']), 2, status=500)
        self.sim.control('POST', 'faults', {'error_rate': 0, 'ratelimit_storm_seconds': 1})
        self.graph_error(self.sim.graph('GET', '/me'), 613)
        time.sleep(1.05)
        self.sim.control('POST', 'faults', {'drop_rate': 1.0})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.sim.send(u['psid'], 'lost')
        msgs = self.sim.control('GET', 'messages')[2]['messages']
        self.assertEqual([m['text'] for m in msgs], ['lost'])
        self.sim.control('POST', 'faults', {'clear': True, 'latency_ms': 250})
        started = time.time()
        self.assertEqual(self.sim.graph('GET', '/me')[0], 200)
        self.assertGreaterEqual(time.time() - started, 0.25)
        self.assertEqual(self.sim.control('POST', 'faults', {'bogus': 1})[0], 400)
        stats = self.sim.control('GET', 'stats')[2]
        self.assertEqual((stats['injected_errors'], stats['dropped']), (1, 1))

    # populations

    def test_population_timezones_and_windows(self):
        users = self.sim.users()
        given = [u['timezone'] for u in users if u['timezone'] is not None]
        # Half- and quarter-hour offsets on both sides of UTC, and the extremes.
        for offset in (-10, -9.5, -3.5, 0, 5.5, 5.75, 8.75, 9.5, 12.75, 13, 14):
            self.assertIn(offset, given)
        self.assertGreater(len(users) - len(given), 5)
        # The profile gives timezone as a number (an integer for whole hours), or
        # leaves it out.
        for u in users[:40]:
            body = self.sim.graph('GET', '/' + u['psid'], {'fields': 'timezone'})[2]
            if u['timezone'] is None:
                self.assertNotIn('timezone', body)
            else:
                self.assertIsInstance(body['timezone'], (int, float))
                self.assertNotIsInstance(body['timezone'], bool)
                self.assertEqual(body['timezone'], u['timezone'])
                if u['timezone'] == int(u['timezone']):
                    self.assertIsInstance(body['timezone'], int)
        # Last messages inside the window, in the HUMAN_AGENT week, and older.
        now = time.time() * 1000
        ages = [now - u['last_message_ms'] for u in users]
        inside = sum(a < DAY_MS for a in ages)
        week = sum(DAY_MS < a < 7 * DAY_MS for a in ages)
        old = sum(a > 7 * DAY_MS for a in ages)
        self.assertEqual(inside + week + old, len(users))
        self.assertGreater(inside, len(users) // 2)
        self.assertGreater(week, len(users) // 10)
        self.assertGreater(old, len(users) // 10)
        for u, age in zip(users, ages):
            self.assertEqual(u['in_window'], age <= DAY_MS)

    # requests as received, and requests Graph refuses

    def requests(self, query=''):
        status, _, body = self.sim.control('GET', 'requests' + query)
        self.assertEqual(status, 200)
        return body

    def test_request_log(self):
        u = self.person('day')
        self.assertEqual(self.sim.send(u['psid'], 'logged', 'MESSAGE_TAG',
                                       'ACCOUNT_UPDATE')[0], 200)
        self.sim.request('GET', '/v19.0/me', headers={'Authorization': 'Bearer ' + self.sim.token})
        log = self.requests()
        self.assertEqual(log['count'], 2)
        send, me = log['requests']
        self.assertEqual((send['method'], send['http_method'], send['path'], send['body_format'],
                          send['auth'], send['status'], send['error_code'], send['page_id']),
                         ('messages', 'POST', '/v19.0/me/messages', 'json',
                          'access_token_argument', 200, None, self.sim.page_id))
        self.assertEqual(send['body'], {'recipient': {'id': u['psid']},
                                        'messaging_type': 'MESSAGE_TAG', 'tag': 'ACCOUNT_UPDATE',
                                        'message': {'text': 'logged'}})
        self.assertEqual(send['query'], {'access_token': '[redacted]'})
        self.assertEqual((me['method'], me['auth'], me['body_format']), ('me', 'bearer', 'none'))
        self.assertNotIn(self.sim.token, json.dumps(log))
        self.assertEqual(self.requests('?method=me')['count'], 1)
        self.assertEqual(self.sim.control('DELETE', 'requests')[0], 200)
        self.assertEqual(self.requests()['count'], 0)

    def test_bad_send_requests_get_code_100(self):
        u = self.person('day')
        bodies = [
            {'messaging_type': 'UPDATE', 'message': {'text': 'x'}},
            {'recipient': {}, 'messaging_type': 'UPDATE', 'message': {'text': 'x'}},
            {'recipient': {'id': u['psid']}, 'messaging_type': 'UPDATE'},
            {'recipient': {'id': u['psid']}, 'messaging_type': 'UPDATE', 'message': {'text': 5}},
            {'recipient': {'id': u['psid']}, 'messaging_type': 'UPDATE', 'message': {}},
            {'recipient': {'id': u['psid']}, 'message': {'text': 'x'}},
            {'recipient': {'id': u['psid']}, 'messaging_type': 'update', 'message': {'text': 'x'}},
            {'recipient': {'id': u['psid']}, 'messaging_type': 'MESSAGE_TAG',
             'message': {'text': 'x'}},
            {'recipient': {'id': u['psid']}, 'messaging_type': 'MESSAGE_TAG',
             'tag': 'ISSUE_RESOLUTION', 'message': {'text': 'x'}},
            {'recipient': {'id': u['psid']}, 'messaging_type': 'UPDATE',
             'message': {'text': 'x' * 2001}},
        ]
        for body in bodies:
            with self.subTest(body=body):
                self.graph_error(self.sim.graph('POST', '/me/messages', body=body), 100)
        status, _, _ = self.sim.request('POST', '/v19.0/me/messages?access_token=' +
                                        self.sim.token, b'{"recipient": ',
                                        {'Content-Type': 'application/json'})
        self.assertEqual(status, 400)
        self.assertEqual(self.sim.control('GET', 'stats')[2]['messages'], 0)
        codes = [r['error_code'] for r in self.requests()['requests']]
        self.assertEqual(codes, [100] * (len(bodies) + 1))

    # faults

    def test_ratelimit_storms_by_code(self):
        for code in (613, 4, 80006):
            with self.subTest(code=code):
                status, _, body = self.sim.control('POST', 'faults', {
                    'ratelimit_storm_seconds': 1, 'ratelimit_code': code})
                self.assertEqual((status, body['ratelimit_code']), (200, code))
                self.graph_error(self.sim.send(self.person('day')['psid']), code,
                                 2018373 if code == 80006 else None)
                self.graph_error(self.sim.graph('GET', '/me'), code,
                                 2018373 if code == 80006 else None)
                self.sim.control('POST', 'faults', {'ratelimit_storm_seconds': 0})
                self.assertEqual(self.sim.graph('GET', '/me')[0], 200)
        self.assertEqual(self.sim.control('POST', 'faults', {'ratelimit_code': 17})[0], 400)
        self.assertEqual(self.sim.control('GET', 'messages')[2]['messages'], [])

    def test_temporary_error_codes_and_latency(self):
        self.sim.control('POST', 'faults', {'error_rate': 1.0, 'error_code': 1200,
                                            'error_status': 503})
        status, _, body = self.sim.send(self.person('day')['psid'])
        self.assertEqual((status, body['error']['code'], body['error']['is_transient']),
                         (503, 1200, True))
        self.sim.control('POST', 'faults', {'clear': True})
        faults = self.sim.control('GET', 'faults')[2]
        self.assertEqual((faults['error_rate'], faults['error_code']), (0, 2))
        self.sim.control('POST', 'faults', {'latency_ms': 0, 'jitter_ms': 300})
        times = []
        for _ in range(10):
            started = time.time()
            self.assertEqual(self.sim.graph('GET', '/me')[0], 200)
            times.append(time.time() - started)
        self.assertTrue(all(t < 0.7 for t in times), times)
        self.assertGreater(max(times) - min(times), 0.08, times)

    def test_latency_holds_no_thread(self):
        # As in slack-sim: two threads, a thousand sends in flight, each answered
        # after its 300-400 ms, all within a few seconds.
        slow = MessengerSim(MESSENGER_SIM_USERS=1000, MESSENGER_SIM_THREADS=2,
                            MESSENGER_SIM_SEED=12)
        try:
            now = time.time() * 1000
            people = [u for u in slow.users()
                      if not u['unavailable'] and now - u['last_message_ms'] < DAY_MS - 600000]
            self.assertEqual(slow.control('POST', 'faults', {
                'latency_ms': 300, 'jitter_ms': 100})[0], 200)
            headers = {'Authorization': 'Bearer ' + slow.token,
                       'Content-Type': 'application/json'}
            calls = []
            for i in range(1000):
                u = people[i % len(people)]
                calls.append((u['psid'], 'n%d' % i, json.dumps({
                    'recipient': {'id': u['psid']}, 'messaging_type': 'UPDATE',
                    'message': {'text': 'n%d' % i}}).encode()))
            started = time.monotonic()
            answers = many_at_once(slow.port, [('POST', '/v19.0/me/messages', headers, body)
                                               for _, _, body in calls])
            self.assertLess(time.monotonic() - started, 3.0)
            self.assertEqual(sum(a is None for a in answers), 0, 'sends left unanswered')
            mids = {}
            for (psid, text, _), (status, _, raw, took) in zip(calls, answers):
                body = json.loads(raw)
                self.assertEqual(status, 200, body)
                self.assertEqual(body['recipient_id'], psid)
                self.assertGreaterEqual(took, 0.3, text)
                mids[body['message_id']] = text
            self.assertLess(max(a[3] for a in answers), 1.5)
            # Each answer names the message recorded for it.
            recorded = {m['ts']: m['text'] for m in slow.control('GET', 'messages')[2]['messages']}
            self.assertEqual(recorded, mids)
            stats = slow.control('GET', 'stats')[2]
            self.assertGreater(stats['answers_held_max'], 500)
            self.assertEqual(stats['answers_held'], 0)
        finally:
            self.assertEqual(slow.stop(), 0)

    def test_revoked_token_subcodes(self):
        for sub in (460, 463, 467):
            self.sim.control('POST', 'faults', {'revoke_token': self.sim.page_id,
                                                'revoke_subcode': sub})
            self.graph_error(self.sim.graph('GET', '/me'), 190, sub)
        self.assertEqual(self.sim.control('POST', 'faults', {
            'revoke_token': self.sim.page_id, 'revoke_subcode': 1})[0], 400)
        self.sim.control('POST', 'faults', {'restore_token': self.sim.page_id})
        self.assertEqual(self.sim.graph('GET', '/me')[0], 200)

    def walk_conversations(self, limit):
        seen, pages, empty = [], 0, 0
        status, _, body = self.sim.graph('GET', '/me/conversations', {
            'platform': 'messenger', 'fields': 'participants', 'limit': limit})
        while True:
            self.assertEqual(status, 200, body)
            pages += 1
            empty += not body['data']
            seen += [c['participants']['data'][0]['id'] for c in body['data']]
            nxt = body.get('paging', {}).get('next')
            if not nxt:
                return seen, pages, empty
            url = urllib.parse.urlsplit(nxt)
            status, _, body = self.sim.request('GET', url.path + '?' + url.query)

    def test_conversations_short_and_empty_pages(self):
        everyone = sorted(u['psid'] for u in self.sim.users())
        self.sim.control('POST', 'faults', {'short_pages': True})
        seen, pages, _ = self.walk_conversations(25)
        self.assertEqual(sorted(seen), everyone)
        self.assertGreater(pages, -(-120 // 25))
        # Eleven pages after the first, each empty with a chance of 0.6.
        self.sim.control('POST', 'faults', {'short_pages': False, 'empty_page_rate': 0.6})
        seen, pages, empty = self.walk_conversations(10)
        self.assertEqual(sorted(seen), everyone)
        self.assertGreater(empty, 0)

    def wait_receipts(self, done, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            body = self.sim.control('GET', 'receipts')[2]
            if done(body):
                return body
            time.sleep(0.05)
        self.fail('receipts not done: %s' % body)

    def test_receipts_after_sends(self):
        hook = Hook()
        try:
            body = self.sim.control('GET', 'receipts')[2]
            self.assertEqual((body['enabled'], body['waiting'], body['posts']), (False, 0, 0))
            # Nowhere to post without a URL (none configured for this simulator).
            status, _, problem = self.sim.control('POST', 'receipts', {'enabled': True})
            self.assertEqual(status, 400)
            self.assertIn('url', problem['detail'])
            for bad in ({'read_fraction': 2}, {'delivery_delay_ms': -1}, {'url': 'ftp://x'},
                        {'colour': 'red'}):
                self.assertEqual(self.sim.control('POST', 'receipts', bad)[0], 400, bad)
            status, _, body = self.sim.control('POST', 'receipts', {
                'enabled': True, 'url': hook.url, 'delivery_delay_ms': 100, 'read_delay_ms': 300,
                'read_fraction': 0.5})
            self.assertEqual((status, body['enabled'], body['read_fraction']), (200, True, 0.5))
            now = time.time() * 1000
            people = [u for u in self.sim.users() if not u['unavailable']
                      and now - u['last_message_ms'] < DAY_MS - 600000]
            readers = [u for u in people if u['reads']][:4]
            others = [u for u in people if not u['reads']][:4]
            self.assertEqual((len(readers), len(others)), (4, 4))
            sent = {}  # mid -> (psid, ms before the send)
            for i, u in enumerate(readers + others + readers[:1]):
                before = int(time.time() * 1000)
                status, _, answer = self.sim.send(u['psid'], 'receipt %d' % i)
                self.assertEqual(status, 200, answer)
                sent[answer['message_id']] = (u['psid'], before)
            self.wait_receipts(lambda b: b['mids'] == len(sent) and b['reads'] >= 4
                               and b['waiting'] == 0)
            time.sleep(0.2)  # nothing more may come
            events = hook.events()
            by_kind = {'delivery': [], 'read': []}
            for page_id, item, at in events:
                self.assertEqual(page_id, self.sim.page_id)
                self.assertEqual(item['recipient']['id'], self.sim.page_id)
                kind = 'delivery' if 'delivery' in item else 'read'
                by_kind[kind].append((item, at))
            # Every message delivered once, to its person, after it was sent.
            delivered = {}
            for item, at in by_kind['delivery']:
                for mid in item['delivery']['mids']:
                    self.assertNotIn(mid, delivered)
                    delivered[mid] = item
                    psid, before = sent[mid]
                    self.assertEqual(item['sender']['id'], psid)
                    self.assertGreaterEqual(item['delivery']['watermark'], before + 100)
                    self.assertLessEqual(item['delivery']['watermark'], time.time() * 1000)
            self.assertEqual(set(delivered), set(sent))
            # Read events for the readers only, after their deliveries.
            read_psids = {item['sender']['id'] for item, _ in by_kind['read']}
            self.assertEqual(read_psids, {u['psid'] for u in readers})
            for u in readers:
                reads = sorted(i['read']['watermark'] for i, _ in by_kind['read']
                               if i['sender']['id'] == u['psid'])
                times = [before for p, before in sent.values() if p == u['psid']]
                # Each read comes the two delays after a send; the last one covers all.
                self.assertGreaterEqual(reads[0], min(times) + 400)
                self.assertGreaterEqual(reads[-1], max(times) + 400)
                first_read = min(at for i, at in by_kind['read'] if i['sender']['id'] == u['psid'])
                first_delivery = min(at for i, at in by_kind['delivery']
                                     if i['sender']['id'] == u['psid'])
                self.assertLessEqual(first_delivery, first_read)
            stats = self.sim.control('GET', 'receipts')[2]
            self.assertEqual((stats['posts_failed'], stats['last_status']), (0, 200))
            self.assertGreaterEqual(stats['posts'], 1)

            # A dropped answer: the message arrived, so it is delivered all the same.
            hook.received.clear()
            self.sim.control('POST', 'faults', {'drop_rate': 1.0})
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
                self.sim.send(others[0]['psid'], 'lost answer')
            self.sim.control('POST', 'faults', {'drop_rate': 0})
            lost = [m['ts'] for m in self.sim.control('GET', 'messages')[2]['messages']
                    if m['text'] == 'lost answer']
            self.wait_receipts(lambda b: b['waiting'] == 0)
            time.sleep(0.3)
            self.assertEqual([i['delivery']['mids'] for _, i, _ in hook.events()], [lost])

            # Everyone reads, then nobody; off means no events at all.
            self.sim.control('POST', 'receipts', {'read_fraction': 1.0})
            self.assertTrue(all(u['reads'] for u in self.sim.users()))
            self.sim.control('POST', 'receipts', {'read_fraction': 0.0})
            self.assertFalse(any(u['reads'] for u in self.sim.users()))
            hook.received.clear()
            self.sim.control('POST', 'receipts', {'enabled': False})
            self.assertEqual(self.sim.send(readers[0]['psid'], 'quiet')[0], 200)
            time.sleep(0.5)
            self.assertEqual(hook.received, [])
            self.assertEqual(self.sim.control('GET', 'receipts')[2]['waiting'], 0)
        finally:
            hook.close()

    def test_receipts_to_a_failing_webhook(self):
        failing = Hook(status=500)
        try:
            self.sim.control('POST', 'receipts', {'enabled': True, 'url': failing.url,
                                                  'delivery_delay_ms': 0, 'read_fraction': 0})
            self.assertEqual(self.sim.send(self.person('day')['psid'], 'x')[0], 200)
            body = self.wait_receipts(lambda b: b['posts_failed'] >= 1)
            self.assertEqual((body['last_status'], body['posts'], body['mids']), (500, 0, 0))
            # A closed port: no answer at all.
            with socket.socket() as probe:
                probe.bind(('127.0.0.1', 0))
                closed = 'http://127.0.0.1:%d/hook' % probe.getsockname()[1]
            self.sim.control('POST', 'receipts', {'url': closed})
            self.assertEqual(self.sim.send(self.person('day')['psid'], 'y')[0], 200)
            body = self.wait_receipts(lambda b: b['posts_failed'] >= 2)
            self.assertEqual(body['last_status'], 0)
            self.assertTrue(body['last_error'])
            # A reset forgets it all: off again, counters at zero.
            self.sim.control('POST', 'reset')
            body = self.sim.control('GET', 'receipts')[2]
            self.assertEqual((body['enabled'], body['posts_failed'], body['url']), (False, 0, ''))
        finally:
            failing.close()

    def test_receipts_from_environment(self):
        hook = Hook()
        sim = MessengerSim(MESSENGER_SIM_USERS=20, MESSENGER_SIM_RECEIPTS='on',
                           MESSENGER_SIM_WEBHOOK_URL=hook.url, MESSENGER_SIM_APP_SECRET='s3',
                           MESSENGER_SIM_DELIVERY_DELAY='10ms', MESSENGER_SIM_READ_DELAY='20ms',
                           MESSENGER_SIM_READ_PERCENT='100')
        try:
            body = sim.control('GET', 'receipts')[2]
            self.assertEqual((body['enabled'], body['delivery_delay_ms'], body['read_delay_ms'],
                              body['read_fraction'], body['webhook_url']),
                             (True, 10, 20, 1.0, hook.url))
            now = time.time() * 1000
            u = next(u for u in sim.users() if not u['unavailable']
                     and now - u['last_message_ms'] < DAY_MS - 600000)
            mid = sim.send(u['psid'], 'env')[2]['message_id']
            deadline = time.time() + 10
            while len(hook.received) < 2 and time.time() < deadline:
                time.sleep(0.05)
            items = [i for _, i, _ in hook.events(secret=b's3')]
            self.assertEqual([i['delivery']['mids'] for i in items if 'delivery' in i], [[mid]])
            self.assertEqual([i['sender']['id'] for i in items if 'read' in i], [u['psid']])
        finally:
            self.assertEqual(sim.stop(), 0)
            hook.close()
        bad = subprocess.run([SIM_BIN], env=dict(os.environ, MESSENGER_SIM_ADDR='127.0.0.1:0',
                                                 MESSENGER_SIM_RECEIPTS='on'),
                             capture_output=True, timeout=30)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn(b'MESSENGER_SIM_WEBHOOK_URL', bad.stderr)

    def test_webhooks_are_signed(self):
        received = []

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                ok = query.get('hub.verify_token') == ['sim-verify-token']
                answer = query['hub.challenge'][0].encode() if ok else b'no'
                self.send_response(200 if ok else 403)
                self.send_header('Content-Length', str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers['Content-Length']))
                received.append((dict(self.headers), raw))
                self.send_response(200)
                self.send_header('Content-Length', '2')
                self.end_headers()
                self.wfile.write(b'ok')

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Hook)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = 'http://127.0.0.1:%d/v1/webhooks/messenger' % server.server_address[1]
        try:
            body = self.sim.control('POST', 'verify_webhook', {'url': url})[2]
            self.assertTrue(body['echoed'], body)
            old = self.person('old')
            body = self.sim.control('POST', 'inbound', {'psid': old['psid'], 'text': 'hello page',
                                                        'url': url})[2]
            self.assertEqual(body['webhook']['status'], 200)
            self.assertTrue(body['user']['in_window'])
            self.sim.control('POST', 'read', {'psid': old['psid'], 'url': url,
                                              'watermark_ms': 1234})
            self.sim.control('POST', 'delivery', {'psid': old['psid'], 'url': url,
                                                  'mids': ['m_1']})
            self.assertEqual(len(received), 3)
            events = []
            for headers, raw in received:
                mac = hmac.new(b'sim-app-secret', raw, hashlib.sha256).hexdigest()
                self.assertEqual(headers['X-Hub-Signature-256'], 'sha256=' + mac)
                body = json.loads(raw)
                self.assertEqual(body['object'], 'page')
                self.assertEqual(body['entry'][0]['id'], self.sim.page_id)
                events.append(body['entry'][0]['messaging'][0])
            self.assertEqual((events[0]['sender']['id'], events[0]['recipient']['id'],
                              events[0]['message']['text']),
                             (old['psid'], self.sim.page_id, 'hello page'))
            self.assertTrue(events[0]['message']['mid'].startswith('m_'))
            self.assertEqual(events[1]['read'], {'watermark': 1234})
            self.assertEqual(events[2]['delivery']['mids'], ['m_1'])
        finally:
            server.shutdown()
            server.server_close()


if __name__ == '__main__':
    unittest.main(verbosity=2)
