#!/usr/bin/python3
"""System test of sender-slack against the real slack-sim, vault and PostgreSQL.

No scheduler runs: tests/integration/sender_driver plays its side of the bus
(PUSH jobs, PULL results, REQ queries), so each outcome of the worker framework
and the Slack module can be provoked on its own through the simulator's faults.

Covers: N jobs give N SENT results with distinct ts, the simulator saw each
message once, and two replicas share the work; personalisation from the live
profile; an unknown channel is FAILED channel_not_found; injected 5xx is RETRY;
a response dropped after the message was recorded is UNKNOWN and never resent; a
429 storm is RETRY rate_limited with Retry-After; a revoked token and a bot the
vault does not know are FAILED with bot_token_invalid; the live queries
(VerifyBot, ListUsers paged to the end, ListChannels); metrics; and SIGTERM
drains in-flight sends and exits 0.

There is no Messenger simulator yet, so sender-messenger is run against a small
stand-in for the Graph API written here (FakeGraph): enough to check the module's
requests (token in the query string, the JSON body, the profile lookup), its
classification of Graph errors, the 24 h window refused before sending, and the
page queries with cursor paging.
"""

import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR',
                                               os.path.dirname(os.path.dirname(
                                                   os.path.dirname(os.path.abspath(__file__))))),
                                'scripts'))
from stack import Stack  # noqa: E402

REPLICAS = 2


STACK = None


def setUpModule():
    global STACK
    STACK = Stack()
    try:
        STACK.start_postgres()
        STACK.make_keys()
        STACK.start('slack-sim')
        STACK.start('vault')
    except Exception:
        STACK.stop()
        raise


def tearDownModule():
    # The senders first, one by one, to read each exit status with its whole log
    # (a sanitizer report comes at exit); stop() then removes the work dir.
    failures = []
    try:
        for key, proc in list(STACK.procs.items()):
            if not key.startswith('sender-') or not proc.alive():
                continue
            name, _, replica = key.partition('#')
            code = STACK.kill(name, int(replica or 0), signal.SIGTERM)
            if code != 0:
                with open(proc.log_path, errors='replace') as f:
                    failures.append(f'{key} exited {code}; its log ends:\n{f.read()[-4000:]}')
    finally:
        STACK.stop()
    assert not failures, '\n'.join(failures)


def release_count(bot):
    rows = STACK.sql(f"SELECT count(*) FROM vault_audit WHERE bot_id = '{bot}' "
                     f"AND operation = 'release' AND outcome = 'ok'")
    return int(rows[0][0])


class DriverMixin:
    """Runs tests/integration/sender_driver and the vault client against STACK."""

    platform = 'slack'
    next_id = 1000

    @classmethod
    def env(cls):
        env = dict(os.environ)
        env.update(STACK.env)
        env['BCRM_DRIVER_PLATFORM'] = cls.platform
        return env

    @classmethod
    def tool(cls, name):
        return os.path.join(STACK.build_dir, 'tests', name)

    @classmethod
    def vault_store(cls, org, bot, token):
        res = subprocess.run([cls.tool('vault_smoke'), STACK._key_path('api'), 'store', org, bot,
                              cls.platform, token], env=cls.env(), capture_output=True,
                             text=True, timeout=60)
        assert res.stdout.startswith('code ok'), res.stdout + res.stderr

    def job(self, recipient, text, bot=None, **extra):
        DriverMixin.next_id += 1
        j = {'delivery_id': DriverMixin.next_id, 'org_id': self.org, 'bot_id': bot or self.bot,
             'recipient_id': recipient, 'text': text}
        j.update(extra)
        return j

    def start_driver(self, jobs, peers=1, timeout_ms=30000, batch=10):
        fd, path = tempfile.mkstemp(suffix='.json', dir=STACK.work_dir)
        with os.fdopen(fd, 'w') as f:
            json.dump(jobs, f)
        return subprocess.Popen([self.tool('sender_driver'), 'send', path, str(peers),
                                 str(timeout_ms), str(batch)], env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish_driver(self, proc, jobs):
        out, err = proc.communicate(timeout=120)
        results = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(proc.returncode, 0, f'driver: {err}\n{out}')
        by_id = {r['delivery_id']: r for r in results}
        self.assertEqual(len(results), len(jobs), 'one result per job, no more')
        self.assertEqual(set(by_id), {j['delivery_id'] for j in jobs})
        return by_id

    def send(self, jobs, **kw):
        return self.finish_driver(self.start_driver(jobs, **kw), jobs)

    def send_one(self, job):
        return self.send([job])[job['delivery_id']]

    def query(self, *args):
        res = subprocess.run([self.tool('sender_driver'), 'query', *args], env=self.env(),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        return json.loads(res.stdout)


class SenderTest(DriverMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = STACK
        _, _, body = STACK.sim('GET', '/_sim/workspaces')
        ws = body['workspaces'][0]
        cls.team, cls.token = ws['team_id'], ws['token']
        cls.bot_user_id = ws['bot_user_id']
        cls.org, cls.bot = str(uuid.uuid4()), str(uuid.uuid4())
        cls.vault_store(cls.org, cls.bot, cls.token)
        _, _, body = STACK.sim('GET', f'/_sim/users?team_id={cls.team}')
        cls.users = body['users']
        cls.people = [u for u in cls.users if u['kind'] == 'person' and not u['deleted']]
        for replica in range(REPLICAS):
            STACK.start('sender-slack', replica=replica,
                        env={'BCRM_SENDER_ID': f'slack-{replica}'})

    def setUp(self):
        self.s.sim('POST', '/_sim/reset', {})

    # ---- helpers -------------------------------------------------------------

    def faults(self, **faults):
        status, _, body = self.s.sim('POST', '/_sim/faults', faults)
        self.assertEqual(status, 200, body)

    def sim_messages(self):
        _, _, body = self.s.sim('GET', f'/_sim/messages?team_id={self.team}')
        return body['messages']

    def metrics(self, replica=0):
        status, _, text = self.s.ops('sender-slack', '/metrics', replica)
        self.assertEqual(status, 200)
        return text if isinstance(text, str) else text.decode()

    # ---- sends ---------------------------------------------------------------

    def test_sends_once_and_shares_work(self):
        marker = uuid.uuid4().hex[:8]
        people = self.people[:60]
        bot = str(uuid.uuid4())  # a bot of its own, to count its token releases
        self.vault_store(self.org, bot, self.token)
        jobs = [self.job(u['id'], f'{marker} plain {i}', bot=bot)
                for i, u in enumerate(people[:40])]
        jobs += [self.job(u['id'], f'{marker} Hi {{{{first_name|there}}}}!', bot=bot)
                 for u in people[40:]]
        results = self.send(jobs, peers=REPLICAS, batch=5)
        for r in results.values():
            self.assertEqual(r['outcome'], 'OUTCOME_SENT', r)
            self.assertTrue(r['platform_message_id'])
            self.assertTrue(r['lease_id'])
        ts = [r['platform_message_id'] for r in results.values()]
        self.assertEqual(len(set(ts)), len(ts), 'every message has its own ts')
        # Both replicas took part: the scheduler's PUSH spreads batches over them.
        senders = {r['sender_id'] for r in results.values()}
        self.assertEqual(senders, {f'slack-{i}' for i in range(REPLICAS)})

        messages = [m for m in self.sim_messages() if m['text'].startswith(marker)]
        self.assertEqual(len(messages), len(jobs), 'the simulator saw each message once')
        self.assertTrue(all(m['count'] == 1 or 'plain' not in m['text'] for m in messages))
        by_ts = {m['ts']: m for m in messages}
        for j in jobs:
            m = by_ts[results[j['delivery_id']]['platform_message_id']]
            self.assertEqual(m['recipient'], j['recipient_id'])
            meta = json.loads(m['metadata'])
            self.assertEqual(meta['event_type'], 'bcrm_delivery')
            self.assertEqual(meta['event_payload']['delivery_id'], str(j['delivery_id']))
        # Personalised from the live profile.
        for u in people[40:]:
            j = next(j for j in jobs if j['recipient_id'] == u['id'] and 'Hi' in j['text'])
            m = by_ts[results[j['delivery_id']]['platform_message_id']]
            first = u['first_name'] or (u['real_name'] or '').split(' ')[0] or 'there'
            self.assertEqual(m['text'], f'{marker} Hi {first}!')
        self.assertIn('bcrm_sender_sends_total{outcome="sent"}', self.metrics())
        # The token cache: one release per replica for 60 sends, not one per send.
        releases = release_count(bot)
        self.assertGreaterEqual(releases, 1)
        self.assertLessEqual(releases, REPLICAS)

    def test_unknown_channel_fails(self):
        r = self.send_one(self.job('C0NOTACHANNEL', 'hello'))
        self.assertEqual(r['outcome'], 'OUTCOME_FAILED')
        self.assertEqual(r['error'], 'channel_not_found')
        self.assertFalse(r['bot_token_invalid'])

    def test_server_error_is_retry(self):
        self.faults(error_rate=1.0, error_status=503)
        r = self.send_one(self.job(self.people[0]['id'], 'during an outage'))
        self.assertEqual(r['outcome'], 'OUTCOME_RETRY')
        self.assertEqual(r['error'], 'http_503')
        self.assertEqual(self.sim_messages(), [])

    def test_dropped_answer_is_unknown_and_not_resent(self):
        # Warm the connections first: libcurl would silently resend a request whose
        # reused connection died, which is exactly the duplicate this guards against.
        self.send([self.job(u['id'], 'warm-up') for u in self.people[:4]], peers=REPLICAS)
        self.s.sim('POST', '/_sim/reset', {})
        self.faults(drop_rate=1.0)
        jobs = [self.job(u['id'], f'dropped {i}') for i, u in enumerate(self.people[:4])]
        results = self.send(jobs, peers=REPLICAS)
        for r in results.values():
            self.assertEqual(r['outcome'], 'OUTCOME_UNKNOWN', r)
        time.sleep(0.5)
        messages = self.sim_messages()
        self.assertEqual(sorted(m['text'] for m in messages), sorted(j['text'] for j in jobs),
                         'each dropped message was recorded exactly once')

    def test_rate_limit_storm_is_retry_with_retry_after(self):
        self.faults(ratelimit_storm_seconds=30)
        r = self.send_one(self.job(self.people[0]['id'], 'too fast'))
        self.assertEqual(r['outcome'], 'OUTCOME_RETRY')
        self.assertTrue(r['rate_limited'])
        self.assertGreater(r['retry_after_ms'], 0)

    def test_revoked_token_marks_bot(self):
        self.faults(revoke_token=self.team)
        try:
            r = self.send_one(self.job(self.people[0]['id'], 'after revocation'))
            self.assertEqual(r['outcome'], 'OUTCOME_FAILED')
            self.assertTrue(r['bot_token_invalid'])
            q = self.query('verify', self.org, self.bot)
            self.assertEqual(q['status'], 'QUERY_TOKEN_INVALID')
        finally:
            self.faults(restore_token=self.team)

    def test_bot_without_token(self):
        r = self.send_one(self.job(self.people[0]['id'], 'nobody', bot=str(uuid.uuid4())))
        self.assertEqual(r['outcome'], 'OUTCOME_FAILED')
        self.assertEqual(r['error'], 'no_token')
        self.assertTrue(r['bot_token_invalid'])
        q = self.query('users', self.org, str(uuid.uuid4()))
        self.assertEqual(q['status'], 'QUERY_TOKEN_INVALID')

    # ---- queries -------------------------------------------------------------

    def test_verify_bot(self):
        q = self.query('verify', self.org, self.bot)
        self.assertEqual(q['status'], 'QUERY_OK')
        self.assertEqual(q['identity']['team_id'], self.team)
        self.assertEqual(q['identity']['bot_user_id'], self.bot_user_id)

    def test_list_users_to_the_end(self):
        seen, cursor, pages = [], '', 0
        while True:
            q = self.query('users', self.org, self.bot, cursor, '50')
            self.assertEqual(q['status'], 'QUERY_OK', q)
            seen += q['users']
            pages += 1
            cursor = q['next_cursor'] or ''
            if not cursor:
                break
            self.assertLess(pages, 100)
        self.assertEqual(sorted(u['id'] for u in seen), sorted(u['id'] for u in self.users))
        by_id = {u['id']: u for u in seen}
        for u in self.users:
            got = by_id[u['id']]
            self.assertEqual(got['deleted'], u['deleted'])
            self.assertEqual(got['is_admin'], u['is_admin'])
            if u['kind'] == 'person' and u['tz_field'] == 'zone':
                self.assertEqual(got['tz'], u['tz'])
                self.assertTrue(got['has_tz'])
        self.assertTrue(any(u['is_bot'] for u in seen))

    def test_list_channels_member_only(self):
        q = self.query('channels', self.org, self.bot, '', '1000')
        self.assertEqual(q['status'], 'QUERY_OK', q)
        _, _, body = self.s.sim('GET', f'/_sim/channels?team_id={self.team}')
        expected = {c['id'] for c in body['channels'] if c['bot_member'] and not c['is_archived']}
        got = {c['id'] for c in q['channels']}
        cursor = q['next_cursor']
        while cursor:
            q = self.query('channels', self.org, self.bot, cursor, '1000')
            got |= {c['id'] for c in q['channels']}
            cursor = q['next_cursor']
        self.assertEqual(got, expected)

    # ---- shutdown ------------------------------------------------------------

    def test_z_sigterm_drains_in_flight(self):
        """Runs last (by name): it stops a replica and starts it again."""
        self.faults(latency_ms=3000)
        jobs = [self.job(u['id'], f'slow {i}') for i, u in enumerate(self.people[:10])]
        proc = self.start_driver(jobs, peers=1, batch=10)
        try:
            # Stop the replica that got the batch once its requests are in flight.
            busy, deadline = None, time.monotonic() + 20
            while busy is None and time.monotonic() < deadline:
                for replica in range(REPLICAS):
                    line = next(line for line in self.metrics(replica).splitlines()
                                if line.startswith('bcrm_sender_in_flight'))
                    if float(line.split()[-1]) > 0:
                        busy = replica
                time.sleep(0.05)
            self.assertIsNotNone(busy, 'no replica had a request in flight')
        except Exception:
            proc.kill()
            proc.communicate()
            raise
        code = self.s.kill('sender-slack', busy, signal.SIGTERM)
        self.assertEqual(code, 0, self.s.log('sender-slack', busy)[-2000:])
        results = self.finish_driver(proc, jobs)
        for r in results.values():
            self.assertEqual(r['outcome'], 'OUTCOME_SENT', r)
        self.s.start('sender-slack', replica=busy, env={'BCRM_SENDER_ID': f'slack-{busy}'})


class FakeGraph(http.server.ThreadingHTTPServer):
    """A stand-in for the Graph API of one page (PAGE1) with three subscribers.
    Recipients named P_<CODE> answer that Graph error code."""

    daemon_threads = True
    page_token = 'EAAG-page-token+/='

    def __init__(self):
        super().__init__(('127.0.0.1', 0), FakeGraphHandler)
        self.sent = []
        self.requests = []
        self.lock = threading.Lock()

    @property
    def url(self):
        return f'http://127.0.0.1:{self.server_address[1]}/v19.0'


class FakeGraphHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, subcode=None):
        err = {'message': 'x', 'type': 'OAuthException', 'code': code, 'fbtrace_id': 'F'}
        if subcode:
            err['error_subcode'] = subcode
        self.answer(400, {'error': err})

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get('Content-Length') or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        with self.server.lock:
            self.server.requests.append((method, url.path, q))
        if q.get('access_token') != self.server.page_token:
            return self.error(190)
        path = url.path[len('/v19.0'):]
        if method == 'POST' and path == '/me/messages':
            recipient = body['recipient']['id']
            if recipient.startswith('P_'):
                code, _, sub = recipient[2:].partition('_')
                return self.error(int(code), int(sub) if sub else None)
            with self.server.lock:
                self.server.sent.append(body)
                mid = f'm_{len(self.server.sent)}'
            return self.answer(200, {'recipient_id': recipient, 'message_id': mid})
        if method == 'GET' and path == '/me':
            return self.answer(200, {'id': 'PAGE1', 'name': 'Test Page'})
        if method == 'GET' and path == '/me/conversations':
            page = {'data': [], 'paging': {'cursors': {'before': 'b', 'after': 'c2'}}}
            people = ['P1', 'P2'] if q.get('after') != 'c2' else ['P3']
            for p in people:
                page['data'].append({'id': f't_{p}', 'updated_time': '2026-01-01T00:00:00+0000',
                                     'participants': {'data': [
                                         {'id': p, 'name': f'Person {p}'},
                                         {'id': 'PAGE1', 'name': 'Test Page'}]}})
            if q.get('after') != 'c2':
                page['paging']['next'] = 'https://graph.example/next'
            return self.answer(200, page)
        if method == 'GET' and path == '/P1':
            return self.answer(200, {'id': 'P1', 'first_name': 'Lin', 'last_name': 'Ma'})
        return self.answer(404, {'error': {'message': 'unknown path', 'code': 803}})

    def do_GET(self):
        self.route('GET')

    def do_POST(self):
        self.route('POST')


class MessengerSenderTest(DriverMixin, unittest.TestCase):
    platform = 'messenger'

    @classmethod
    def setUpClass(cls):
        cls.graph = FakeGraph()
        threading.Thread(target=cls.graph.serve_forever, daemon=True).start()
        cls.org, cls.bot = str(uuid.uuid4()), str(uuid.uuid4())
        cls.vault_store(cls.org, cls.bot, FakeGraph.page_token)
        # A short token lifetime, to see a cached token expire while idle.
        STACK.start('sender-messenger', env={'BCRM_GRAPH_API_URL': cls.graph.url,
                                             'BCRM_SENDER_ID': 'messenger-0',
                                             'BCRM_SENDER_TOKEN_TTL': '1s'})

    @classmethod
    def tearDownClass(cls):
        cls.graph.shutdown()

    def test_outcomes(self):
        now_ms = int(time.time() * 1000)
        jobs = {
            'plain': self.job('P1', 'Hello page fans'),
            'personal': self.job('P1', 'Hi {{first_name|there}}'),
            'gone': self.job('P_551', 'x'),
            'window': self.job('P_10_2018278', 'x'),
            'limit': self.job('P_613', 'x'),
            'stale': self.job('P2', 'too late', last_message_at_ms=now_ms - 25 * 3600 * 1000),
            'tagged': self.job('P2', 'event moved', last_message_at_ms=now_ms - 25 * 3600 * 1000,
                               messaging_type='MESSAGE_TAG', tag='CONFIRMED_EVENT_UPDATE'),
        }
        results = self.send(list(jobs.values()))
        r = {name: results[j['delivery_id']] for name, j in jobs.items()}
        self.assertEqual(r['plain']['outcome'], 'OUTCOME_SENT')
        self.assertTrue(r['plain']['platform_message_id'].startswith('m_'))
        self.assertEqual(r['personal']['outcome'], 'OUTCOME_SENT')
        self.assertEqual((r['gone']['outcome'], r['gone']['error']),
                         ('OUTCOME_FAILED', 'person_unavailable'))
        self.assertEqual((r['window']['outcome'], r['window']['error']),
                         ('OUTCOME_FAILED', 'outside_24h_window'))
        self.assertEqual(r['limit']['outcome'], 'OUTCOME_RETRY')
        self.assertTrue(r['limit']['rate_limited'])
        self.assertEqual((r['stale']['outcome'], r['stale']['error']),
                         ('OUTCOME_FAILED', 'outside_24h_window'))
        self.assertEqual(r['tagged']['outcome'], 'OUTCOME_SENT')
        self.assertEqual(r['tagged']['sender_id'], 'messenger-0')

        texts = {b['message']['text']: b for b in self.graph.sent}
        self.assertIn('Hi Lin', texts)
        self.assertEqual(texts['Hello page fans']['messaging_type'], 'UPDATE')
        self.assertEqual(texts['event moved']['tag'], 'CONFIRMED_EVENT_UPDATE')
        self.assertEqual(texts['event moved']['messaging_type'], 'MESSAGE_TAG')
        # The stale job was refused before anything left the sender.
        self.assertNotIn('too late', texts)

    def test_page_queries(self):
        q = self.query('verify', self.org, self.bot)
        self.assertEqual(q['status'], 'QUERY_OK', q)
        self.assertEqual(q['identity']['page_id'], 'PAGE1')
        self.assertEqual(q['identity']['name'], 'Test Page')
        ids, cursor = [], ''
        for _ in range(5):
            q = self.query('users', self.org, self.bot, cursor, '2')
            self.assertEqual(q['status'], 'QUERY_OK', q)
            ids += [u['id'] for u in q['users']]
            cursor = q['next_cursor'] or ''
            if not cursor:
                break
        self.assertEqual(ids, ['P1', 'P2', 'P3'])
        q = self.query('channels', self.org, self.bot)
        self.assertEqual(q['status'], 'QUERY_BAD_REQUEST')

    def test_token_cache_expires(self):
        org, bot = str(uuid.uuid4()), str(uuid.uuid4())
        self.vault_store(org, bot, FakeGraph.page_token)
        results = self.send([self.job('P1', f'cached {i}', bot=bot) | {'org_id': org}
                             for i in range(5)])
        self.assertTrue(all(r['outcome'] == 'OUTCOME_SENT' for r in results.values()))
        self.assertEqual(release_count(bot), 1)
        time.sleep(2.5)  # past BCRM_SENDER_TOKEN_TTL: wiped, so asked again
        self.assertEqual(self.send_one(self.job('P1', 'again', bot=bot) | {'org_id': org})
                         ['outcome'], 'OUTCOME_SENT')
        self.assertEqual(release_count(bot), 2)

    def test_wrong_token_is_token_invalid(self):
        org, bot = str(uuid.uuid4()), str(uuid.uuid4())
        self.vault_store(org, bot, 'EAAG-not-the-page-token')
        r = self.send_one(self.job('P1', 'x', bot=bot) | {'org_id': org})
        self.assertEqual(r['outcome'], 'OUTCOME_FAILED')
        self.assertTrue(r['bot_token_invalid'])
        self.assertEqual(self.query('verify', org, bot)['status'], 'QUERY_TOKEN_INVALID')


if __name__ == '__main__':
    unittest.main(verbosity=2)
