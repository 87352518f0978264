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
vault does not know are RETRY with bot_token_invalid (never failed), and a
refused token holds the bot's other sends (one refused request, not one per
recipient) until BCRM_SENDER_TOKEN_INVALID_TTL, a query finds it accepted, or the
vault has the token stored again (a reconnect); DMs
through conversations.open where Slack refuses user ids; a personalised send to
a whole workspace within Slack's tier limits (users.list pages, not users.info
per person); the live queries (VerifyBot, ListUsers paged to the end,
ListChannels); metrics; and SIGTERM drains in-flight sends and exits 0.

sender-messenger runs against the real messenger-sim: the Send API's outcomes
(sent, person unavailable, outside the 24 h window both as judged by Meta and as
refused before sending, tags, rate limits, temporary errors, a dropped answer),
personalisation, the page queries with cursor paging, and the token cache.

Also here, for Slack: conversations.members (ListChannelMembers), the scopes of
VerifyBot from X-OAuth-Scopes, a query rate limit remembered instead of hammering
the platform, the OAuth code exchange answering a token sealed to the vault, and
the token's and the profiles' lifetime in the sender's memory, read from
/proc/<pid>/mem.
"""

import http.client
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
# slack-sim's OAuth app (sim/README.md).
SIM_CLIENT_ID = '1111111111.2222222222'
SIM_CLIENT_SECRET = 'sim-client-secret'
# Larger mappings are skipped when reading a process's memory: ASan's shadow memory
# spans terabytes of untouched pages; tokens live in the heap, stacks and
# sodium_malloc's small mappings.
MAX_MAPPING = 1 << 30


def memory_holds(pid, needle):
    """Whether needle occurs in any readable mapping of process pid (as root;
    /proc/<pid>/mem of a non-dumpable process is readable by root only)."""
    with open(f'/proc/{pid}/maps') as f:
        maps = f.read().splitlines()
    with open(f'/proc/{pid}/mem', 'rb', 0) as mem:
        for line in maps:
            fields = line.split()
            if 'r' not in fields[1] or (len(fields) > 5 and fields[5] in ('[vvar]',
                                                                           '[vsyscall]')):
                continue
            start, end = (int(x, 16) for x in fields[0].split('-'))
            if end - start > MAX_MAPPING:
                continue
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            if needle in data:
                return True
    return False


STACK = None


def setUpModule():
    global STACK
    STACK = Stack()
    try:
        STACK.start_postgres()
        STACK.make_keys()
        STACK.start('slack-sim', env={'SLACK_SIM_WORKSPACES': '2'})  # one for a rotated token
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
            STACK.start('sender-slack', replica=replica, env=cls.sender_env(replica))

    @staticmethod
    def sender_env(replica):
        return {'BCRM_SENDER_ID': f'slack-{replica}', 'BCRM_SLACK_CLIENT_ID': SIM_CLIENT_ID,
                'BCRM_SLACK_CLIENT_SECRET': SIM_CLIENT_SECRET}

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
        """A refused token is RETRY with bot_token_invalid (nothing was posted: the
        recipient goes back to pending, never failed), and so is a query's answer."""
        bot = str(uuid.uuid4())  # a bot of its own: the refusal holds its sends back
        self.vault_store(self.org, bot, self.token)
        self.faults(revoke_token=self.team)
        try:
            r = self.send_one(self.job(self.people[0]['id'], 'after revocation', bot=bot))
            self.assertEqual((r['outcome'], r['error']), ('OUTCOME_RETRY', 'token_revoked'))
            self.assertTrue(r['bot_token_invalid'])
            q = self.query('verify', self.org, bot)
            self.assertEqual(q['status'], 'QUERY_TOKEN_INVALID')
        finally:
            self.faults(restore_token=self.team)
        self.assertEqual(self.sim_messages(), [])

    def sim_requests(self, method):
        _, _, log = self.s.sim('GET', f'/_sim/requests?method={method}&limit=100000')
        self.assertEqual(log.get('evicted', 0), 0)
        return log['requests']

    def run_driver(self, env, jobs, batch=10, timeout_ms=30000):
        """Runs the driver against the bus addresses in env; {delivery_id: result}."""
        fd, path = tempfile.mkstemp(suffix='.json', dir=STACK.work_dir)
        with os.fdopen(fd, 'w') as f:
            json.dump(jobs, f)
        res = subprocess.run([self.tool('sender_driver'), 'send', path, '1', str(timeout_ms),
                              str(batch)], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        results = {r['delivery_id']: r for r in map(json.loads, res.stdout.splitlines())}
        self.assertEqual(set(results), {j['delivery_id'] for j in jobs})
        return results

    def test_revoked_token_holds_the_bot(self):
        """The first refusal of a token holds the bot's other sends: they come back
        RETRY token_revoked with bot_token_invalid, without Slack, so Slack sees one
        refused request, not one per recipient; the vault is asked again once after
        the refusal (has the token been stored again meanwhile?), and at most once
        more per batch that came in later, never once per job. The hold
        ends after BCRM_SENDER_TOKEN_INVALID_TTL (the next send asks the vault and
        tries the token with one request), or at once when a query finds the token
        accepted again (a reconnected bot's VerifyBot)."""
        proc, env = self.own_sender(5, {'BCRM_SENDER_ID': 'slack-revoked',
                                        'BCRM_SENDER_TOKEN_INVALID_TTL': '4s'})
        bot = str(uuid.uuid4())
        self.vault_store(self.org, bot, self.token)
        people = self.people[:40]
        try:
            self.s.sim('DELETE', '/_sim/requests')
            self.faults(revoke_token=self.team)
            jobs = [self.job(u['id'], f'held {i}', bot=bot) for i, u in enumerate(people)]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual((r['outcome'], r['error'], r['bot_token_invalid']),
                                 ('OUTCOME_RETRY', 'token_revoked', True), r)
            # One request tried the fresh token; the other 39 waited for its answer.
            refused = self.sim_requests('chat.postMessage')
            self.assertEqual(len(refused), 1, refused)
            self.assertEqual(refused[0]['error'], 'token_revoked')
            releases = release_count(bot)
            self.assertGreaterEqual(releases, 2, 'the refusal was not checked with the vault')
            self.assertLessEqual(releases, 1 + len(jobs) // 10, 'the vault was asked per job')

            # Restored on Slack's side, but the hold stands: no request at all.
            self.faults(restore_token=self.team)
            jobs = [self.job(u['id'], f'still held {i}', bot=bot)
                    for i, u in enumerate(people[:5])]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual((r['outcome'], r['error']), ('OUTCOME_RETRY', 'token_revoked'))
            self.assertEqual(len(self.sim_requests('chat.postMessage')), 1)
            # A query that finds the token accepted ends the hold at once.
            res = subprocess.run([self.tool('sender_driver'), 'query', 'verify', self.org, bot],
                                 env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(json.loads(res.stdout)['status'], 'QUERY_OK', res.stdout)
            jobs = [self.job(u['id'], f'sent {i}', bot=bot) for i, u in enumerate(people[:5])]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual(r['outcome'], 'OUTCOME_SENT', r)

            # Revoked again: held again; then the hold's own time ends it.
            self.faults(revoke_token=self.team)
            r = self.run_driver(env, [self.job(people[6]['id'], 'again', bot=bot)])
            self.assertEqual(next(iter(r.values()))['outcome'], 'OUTCOME_RETRY')
            self.faults(restore_token=self.team)
            time.sleep(4.5)
            jobs = [self.job(u['id'], f'after the hold {i}', bot=bot)
                    for i, u in enumerate(people[10:15])]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual(r['outcome'], 'OUTCOME_SENT', r)
            texts = sorted(m['text'] for m in self.sim_messages())
            self.assertEqual(texts, sorted([f'sent {i}' for i in range(5)] +
                                           [f'after the hold {i}' for i in range(5)]))
        finally:
            self.faults(restore_token=self.team)
            self.s.kill('sender-slack', 5, signal.SIGTERM)

    def test_token_rotated_while_sending(self):
        """The owner rotates the bot's token while a sender still has the old one
        cached (revoked on Slack's side, a new one stored in the vault): the send
        refused with the old token starts over with the new one and is sent. The
        bot is not reported token_invalid, so its campaigns are not paused."""
        proc, env = self.own_sender(9, {'BCRM_SENDER_ID': 'slack-rotated',
                                        'BCRM_SENDER_TOKEN_TTL': '5m',
                                        'BCRM_SENDER_TOKEN_INVALID_TTL': '60s'})
        _, _, body = self.s.sim('GET', '/_sim/workspaces')
        other = next(w for w in body['workspaces'] if w['team_id'] != self.team)
        _, _, body = self.s.sim('GET', f'/_sim/users?team_id={other["team_id"]}')
        others = [u for u in body['users'] if u['kind'] == 'person' and not u['deleted']]
        bot = str(uuid.uuid4())
        self.vault_store(self.org, bot, self.token)
        try:
            r = self.run_driver(env, [self.job(self.people[0]['id'], 'before', bot=bot)])
            self.assertEqual(next(iter(r.values()))['outcome'], 'OUTCOME_SENT', r)
            # Rotated: Slack refuses the old token, the vault holds the new one; the
            # sender still has the old one cached (for 5 minutes).
            self.s.sim('DELETE', '/_sim/requests')
            self.faults(revoke_token=self.team)
            self.vault_store(self.org, bot, other['token'])
            r = next(iter(self.run_driver(env, [self.job(others[0]['id'], 'after',
                                                         bot=bot)]).values()))
            self.assertEqual((r['outcome'], r['bot_token_invalid']), ('OUTCOME_SENT', False), r)
            posts = self.sim_requests('chat.postMessage')
            self.assertEqual([p.get('error') for p in posts], ['token_revoked', None], posts)
        finally:
            self.faults(restore_token=self.team)
            self.s.kill('sender-slack', 9, signal.SIGTERM)

    def test_token_stored_again_ends_the_hold(self):
        """A reconnect stores the bot's token again (a new copy in the vault, even of
        the same token): the next sends that meet the hold find that out from the
        vault and go at once, however soon after the reconnect, long before
        BCRM_SENDER_TOKEN_INVALID_TTL, with no query on this replica. Until then the
        refused copy keeps the hold: every batch that meets it asks the vault again,
        and Slack sees no request from a recheck."""
        proc, env = self.own_sender(7, {'BCRM_SENDER_ID': 'slack-restored',
                                        'BCRM_SENDER_TOKEN_INVALID_TTL': '60s'})
        bot = str(uuid.uuid4())
        self.vault_store(self.org, bot, self.token)
        people = self.people[200:230]
        try:
            self.s.sim('DELETE', '/_sim/requests')
            self.faults(revoke_token=self.team)
            jobs = [self.job(u['id'], f'refused {i}', bot=bot) for i, u in enumerate(people[:10])]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual((r['outcome'], r['error'], r['bot_token_invalid']),
                                 ('OUTCOME_RETRY', 'token_revoked', True), r)
            self.assertEqual(len(self.sim_requests('chat.postMessage')), 1)
            # Slack takes the token again, but the vault holds the refused copy: the
            # hold stands (rechecks ask the vault, never Slack).
            self.faults(restore_token=self.team)
            jobs = [self.job(u['id'], f'held {i}', bot=bot) for i, u in enumerate(people[10:15])]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual((r['outcome'], r['error']), ('OUTCOME_RETRY', 'token_revoked'))
            self.assertEqual(len(self.sim_requests('chat.postMessage')), 1)
            releases = release_count(bot)
            self.assertGreaterEqual(releases, 2, 'the held batch did not ask the vault again')

            # Reconnected: the same token stored again. The very next batch is
            # sent, within the 60 s hold.
            self.vault_store(self.org, bot, self.token)
            started = time.monotonic()
            jobs = [self.job(u['id'], f'sent {i}', bot=bot) for i, u in enumerate(people[15:30])]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual(r['outcome'], 'OUTCOME_SENT', r)
            self.assertLess(time.monotonic() - started, 30)
            self.assertEqual(sorted(m['text'] for m in self.sim_messages()),
                             sorted(f'sent {i}' for i in range(15)))
            # One request tried the token stored again, then the rest: no refusal.
            posts = self.sim_requests('chat.postMessage')
            self.assertEqual(len(posts), 16, posts)
            self.assertEqual([p['error'] for p in posts if p.get('error')], ['token_revoked'])
            self.assertLessEqual(release_count(bot), releases + 2)
        finally:
            self.faults(restore_token=self.team)
            self.s.kill('sender-slack', 7, signal.SIGTERM)

    def test_bot_without_token(self):
        r = self.send_one(self.job(self.people[0]['id'], 'nobody', bot=str(uuid.uuid4())))
        self.assertEqual((r['outcome'], r['error']), ('OUTCOME_RETRY', 'no_token'))
        self.assertTrue(r['bot_token_invalid'])
        q = self.query('users', self.org, str(uuid.uuid4()))
        self.assertEqual(q['status'], 'QUERY_TOKEN_INVALID')

    def test_dm_when_user_ids_are_refused(self):
        """Where Slack refuses a user id as the channel, the DM is opened with
        conversations.open and the message posted to its D... id, once. The D... id
        is remembered (no second open for that person), and the bot opens DMs first
        from then on (no refused post per recipient)."""
        proc, env = self.own_sender(4, {'BCRM_SENDER_ID': 'slack-dm'})
        bot = str(uuid.uuid4())
        self.vault_store(self.org, bot, self.token)
        first, later = self.people[100:110], self.people[110:115]
        try:
            self.s.sim('DELETE', '/_sim/requests')
            self.faults(refuse_user_id_posts=True)
            jobs = [self.job(u['id'], f'dm {i}', bot=bot) for i, u in enumerate(first)]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual(r['outcome'], 'OUTCOME_SENT', r)
            opens = self.sim_requests('conversations.open')
            self.assertEqual(sorted(o['body']['users'] for o in opens),
                             sorted(u['id'] for u in first))
            posts = self.sim_requests('chat.postMessage')
            refused = [p for p in posts if p['error'] == 'channel_not_found']
            self.assertTrue(refused, 'Slack never refused a user id: the fault is off')
            self.assertTrue(all(p['body']['channel'].startswith('U') for p in refused))
            self.assertEqual(sorted(p['body']['channel'] for p in posts if p['ok']),
                             sorted(u['dm_id'] for u in first))

            # The same people again: straight to their DMs, nothing opened or refused.
            self.s.sim('DELETE', '/_sim/requests')
            jobs = [self.job(u['id'], f'dm again {i}', bot=bot) for i, u in enumerate(first)]
            for r in self.run_driver(env, jobs).values():
                self.assertEqual(r['outcome'], 'OUTCOME_SENT', r)
            self.assertEqual(self.sim_requests('conversations.open'), [])
            self.assertEqual(sorted(p['body']['channel'] for p in
                                    self.sim_requests('chat.postMessage')),
                             sorted(u['dm_id'] for u in first))
            # Other people of that bot: opened first, never posted to as user ids.
            self.s.sim('DELETE', '/_sim/requests')
            jobs = [self.job(u['id'], f'dm later {i}', bot=bot) for i, u in enumerate(later)]
            jobs.append(self.job('U0NOBODY00', 'to nobody', bot=bot))
            results = self.run_driver(env, jobs)
            nobody = results[jobs[-1]['delivery_id']]
            self.assertEqual((nobody['outcome'], nobody['error']),
                             ('OUTCOME_FAILED', 'user_not_found'))
            self.assertTrue(all(r['outcome'] == 'OUTCOME_SENT' for r in results.values()
                                if r is not nobody), results)
            self.assertEqual(len(self.sim_requests('conversations.open')), len(later) + 1)
            self.assertTrue(all(p['body']['channel'].startswith('D')
                                for p in self.sim_requests('chat.postMessage')))
            # Each person got each message once, in their DM.
            by_text = {m['text']: m for m in self.sim_messages()}
            for i, u in enumerate(first):
                for text in (f'dm {i}', f'dm again {i}'):
                    self.assertEqual((by_text[text]['channel'], by_text[text]['count']),
                                     (u['dm_id'], 1))
        finally:
            self.faults(refuse_user_id_posts=False)
            self.s.kill('sender-slack', 4, signal.SIGTERM)

    def test_personalised_within_tier_limits(self):
        """A personalised message to every person of the workspace, with Slack's
        limits on (users.info tier 4: 100 a minute; users.list tier 2: 20 a minute):
        the first misses are looked up alone, then users.list pages of 1000 fill
        the cache, so no read is rate limited and every message carries its
        person's name. (One users.info a recipient would meet 429s past 100.)"""
        proc, env = self.own_sender(3, {'BCRM_SENDER_ID': 'slack-fill'})
        bot = str(uuid.uuid4())
        self.vault_store(self.org, bot, self.token)
        try:
            self.s.sim('DELETE', '/_sim/requests')
            self.faults(limits=True, post_per_minute=100000, channel_burst=10)
            jobs = [self.job(u['id'], 'Dear {{first_name|friend}}, hello', bot=bot)
                    for u in self.people]
            self.assertGreater(len(jobs), 150)
            results = self.run_driver(env, jobs, batch=50, timeout_ms=60000)
            self.assertEqual({r['outcome'] for r in results.values()}, {'OUTCOME_SENT'},
                             [r for r in results.values() if r['outcome'] != 'OUTCOME_SENT'][:5])
            info = self.sim_requests('users.info')
            pages = self.sim_requests('users.list')
            self.assertLessEqual(len(info), 20, 'looked up one by one past the first misses')
            self.assertEqual(len(pages), 1, pages)  # 300 people: one page of 1000
            self.assertEqual(pages[0]['body'].get('limit'), '1000')
            limited = [r for r in info + pages if r['status'] == 429]
            self.assertEqual(limited, [])
            by_ts = {m['ts']: m for m in self.sim_messages()}
            for j in jobs:
                u = next(p for p in self.people if p['id'] == j['recipient_id'])
                first = u['first_name'] or (u['real_name'] or '').split(' ')[0] or 'friend'
                m = by_ts[results[j['delivery_id']]['platform_message_id']]
                self.assertEqual(m['text'], f'Dear {first}, hello')
        finally:
            self.faults(limits=False)
            self.s.kill('sender-slack', 3, signal.SIGTERM)

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

    def test_list_channel_members(self):
        _, _, body = self.s.sim('GET', f'/_sim/channels?team_id={self.team}')
        channel = next(c for c in body['channels'] if c['bot_member'] and not c['is_archived'])
        _, _, sim_members = self.s.sim('GET', f'/_sim/channels?team_id={self.team}')
        ids, cursor = [], ''
        for _ in range(100):
            q = self.query('members', self.org, self.bot, cursor, '50', channel['id'])
            self.assertEqual(q['status'], 'QUERY_OK', q)
            ids += q['member_ids']
            cursor = q['next_cursor'] or ''
            if not cursor:
                break
        self.assertEqual(len(ids), len(set(ids)))
        self.assertGreater(len(ids), 0)
        self.assertTrue(all(i.startswith(('U', 'W')) for i in ids))
        if 'members' in channel:
            self.assertEqual(sorted(ids), sorted(channel['members']))
        elif 'num_members' in channel:
            self.assertEqual(len(ids), channel['num_members'])
        q = self.query('members', self.org, self.bot, '', '50', 'C0NOTACHANNEL')
        self.assertEqual((q['status'], q['error']), ('QUERY_BAD_REQUEST', 'channel_not_found'))

    def test_query_rate_limit_is_remembered(self):
        """A 429 is answered QUERY_RATE_LIMITED with retry_after_ms, and the same
        query for the same bot is not sent to the platform again until then."""
        bot = str(uuid.uuid4())
        self.vault_store(self.org, bot, self.token)
        self.s.sim('DELETE', '/_sim/requests')
        self.faults(ratelimit_storm_seconds=20)
        try:
            first = self.query('users', self.org, bot, '', '10')
            self.assertEqual(first['status'], 'QUERY_RATE_LIMITED', first)
            self.assertGreater(first['retry_after_ms'], 0)
            for _ in range(8):
                again = self.query('users', self.org, bot, '', '10')
                self.assertEqual(again['status'], 'QUERY_RATE_LIMITED', again)
                self.assertGreater(again['retry_after_ms'], 0)
            # Each replica remembers its own 429s: at most one request per replica.
            _, _, log = self.s.sim('GET', '/_sim/requests?method=users.list')
            self.assertLessEqual(len(log['requests']), REPLICAS, 'the platform was hammered')
        finally:
            self.faults(ratelimit_storm_seconds=0)

    def test_oauth_exchange_seals_the_token(self):
        conn = http.client.HTTPConnection(*self.s.sim_addrs['slack-sim'].rsplit(':', 1),
                                          timeout=30)
        conn.request('GET', '/oauth/v2/authorize?client_id=' + SIM_CLIENT_ID +
                     '&redirect_uri=http%3A%2F%2Fcrm.test%2Fcb&state=s1&scope=chat%3Awrite')
        resp = conn.getresponse()
        resp.read()
        location = resp.getheader('Location') or ''
        conn.close()
        self.assertIn(resp.status, (302, 303), location)
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))['code']
        q = self.query('oauth', self.org, str(uuid.uuid4()), code, '0', 'http://crm.test/cb')
        self.assertEqual(q['status'], 'QUERY_OK', q)
        self.assertEqual(q['identity']['team_id'], self.team)
        self.assertEqual(q['identity']['bot_user_id'], self.bot_user_id)
        self.assertIn('chat:write', q['identity']['scopes'])
        # crypto_box_seal: 48 bytes of overhead around the token, which is not in it.
        sealed = bytes.fromhex(q['sealed_token_hex'])
        self.assertEqual(len(sealed), 48 + len(self.token))
        self.assertNotIn(self.token.encode(), sealed)
        self.assertNotIn(self.token, json.dumps(q))
        # A code is good once.
        q = self.query('oauth', self.org, str(uuid.uuid4()), code, '0', 'http://crm.test/cb')
        self.assertEqual((q['status'], q['error']), ('QUERY_BAD_REQUEST', 'invalid_code'))
        self.assertNotIn('sealed_token_hex', q)
        # The exchange released no token from the vault.
        self.assertFalse(any(SIM_CLIENT_SECRET in self.s.log('sender-slack', r)
                             for r in range(REPLICAS)))

    def own_sender(self, replica, env):
        """A sender-slack replica on bus addresses of its own, so that the jobs of a
        test reach it alone. Returns (process, the driver's environment)."""
        urls = {var: f'tcp://127.0.0.1:{self.s.free_port()}' for var in (
            'BCRM_SCHEDULER_WORK_SLACK_URL', 'BCRM_SCHEDULER_RESULTS_URL',
            'BCRM_SCHEDULER_QUERY_SLACK_URL', 'BCRM_API_QUERY_SLACK_URL')}
        proc = self.s.start('sender-slack', replica=replica, env=urls | env)
        return proc, self.env() | urls

    def test_slow_vault_holds_up_only_uncached_bots(self):
        """Token releases run off the send loop: while the vault does not answer,
        the bots whose token is cached keep sending."""
        proc, env = self.own_sender(6, {'BCRM_SENDER_ID': 'slack-vault'})
        vault = self.s.procs['vault'].popen.pid
        try:
            cached, cold = str(uuid.uuid4()), str(uuid.uuid4())
            self.vault_store(self.org, cached, self.token)
            self.vault_store(self.org, cold, self.token)
            jobs = [self.job(self.people[0]['id'], 'warm', bot=cached)]
            fd, path = tempfile.mkstemp(suffix='.json', dir=STACK.work_dir)
            with os.fdopen(fd, 'w') as f:
                json.dump(jobs, f)
            res = subprocess.run([self.tool('sender_driver'), 'send', path, '1', '30000'],
                                 env=env, capture_output=True, text=True, timeout=60)
            self.assertIn('OUTCOME_SENT', res.stdout, res.stderr)
            os.kill(vault, signal.SIGSTOP)
            jobs = []
            for i in range(5):
                jobs.append(self.job(self.people[i + 1]['id'], f'cold {i}', bot=cold))
                jobs.append(self.job(self.people[i + 1]['id'], f'cached {i}', bot=cached))
            with open(path, 'w') as f:
                json.dump(jobs, f)
            driver = subprocess.Popen([self.tool('sender_driver'), 'send', path, '1', '60000'],
                                      env=env, stdout=subprocess.PIPE, text=True)
            lines = []
            reader = threading.Thread(target=lambda: lines.extend(driver.stdout))
            reader.start()
            deadline = time.monotonic() + 10
            cached_ids = {j['delivery_id'] for j in jobs if j['bot_id'] == cached}
            while time.monotonic() < deadline:
                got = {json.loads(x)['delivery_id'] for x in list(lines)}
                if cached_ids <= got:
                    break
                time.sleep(0.1)
            got = [json.loads(x) for x in list(lines)]
            self.assertEqual({r['delivery_id'] for r in got}, cached_ids,
                             'the cached bot waited for the vault, or the cold one did not')
            self.assertTrue(all(r['outcome'] == 'OUTCOME_SENT' for r in got), got)
        finally:
            os.kill(vault, signal.SIGCONT)
        driver.wait(timeout=90)
        reader.join()
        results = [json.loads(x) for x in lines]
        self.assertEqual(len(results), len(jobs))
        for r in results:
            self.assertIn((r['outcome'], r['error']), {('OUTCOME_SENT', ''),
                                                      ('OUTCOME_RETRY', 'vault_unavailable')}, r)
        self.s.kill('sender-slack', 6, signal.SIGTERM)

    def test_token_ttl_is_capped(self):
        """A TTL over 5 minutes is refused at start (exit status 2, one clear line)."""
        env = self.s.process_env('sender-slack', 8, {'BCRM_SENDER_TOKEN_TTL': '10m'})
        res = subprocess.run([self.s.binary('sender-slack')], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn('BCRM_SENDER_TOKEN_TTL', res.stderr)
        self.assertIn('5m', res.stderr)

    def test_token_leaves_memory_after_ttl(self):
        """The sender holds a token no longer than BCRM_SENDER_TOKEN_TTL, and a
        person's profile no longer than BCRM_SENDER_PROFILE_TTL: after the TTLs
        and a sweep, no readable byte of the process holds the token or the
        markers of the names it read (slack-sim puts an 8-character marker in
        every person's name and email); while cached, they are there (so this
        test can fail)."""
        replica = 7  # a sender of its own, on its own bus addresses
        urls = {var: f'tcp://127.0.0.1:{self.s.free_port()}' for var in (
            'BCRM_SCHEDULER_WORK_SLACK_URL', 'BCRM_SCHEDULER_RESULTS_URL',
            'BCRM_SCHEDULER_QUERY_SLACK_URL', 'BCRM_API_QUERY_SLACK_URL')}
        proc = self.s.start('sender-slack', replica=replica,
                            env=urls | {'BCRM_SENDER_TOKEN_TTL': '3s',
                                        'BCRM_SENDER_PROFILE_TTL': '3s',
                                        'BCRM_SENDER_ID': 'slack-memory'})
        try:
            org, bot = str(uuid.uuid4()), str(uuid.uuid4())
            self.vault_store(org, bot, self.token)
            pid = proc.popen.pid
            needle = self.token.encode()
            personal = self.people[5:8]
            markers = [u['marker'].encode() for u in personal]
            self.assertTrue(all(len(m) == 8 for m in markers), markers)
            self.assertFalse(memory_holds(pid, needle), 'token in memory before any send')
            self.assertFalse(any(memory_holds(pid, m) for m in markers),
                             'a marker in memory before any send')
            env = self.env() | urls
            jobs = [self.job(u['id'], f'memory {i}', bot=bot) | {'org_id': org}
                    for i, u in enumerate(self.people[:5])]
            # {{first_name}} only: the marker is in the name and real name the
            # profile cache keeps, not in the message.
            jobs += [self.job(u['id'], 'Hi {{first_name}}', bot=bot) | {'org_id': org}
                     for u in personal]
            fd, path = tempfile.mkstemp(suffix='.json', dir=STACK.work_dir)
            with os.fdopen(fd, 'w') as f:
                json.dump(jobs, f)
            res = subprocess.run([self.tool('sender_driver'), 'send', path, '1', '30000', '10'],
                                 env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertTrue(all(json.loads(line)['outcome'] == 'OUTCOME_SENT'
                                for line in res.stdout.splitlines()), res.stdout)
            res = subprocess.run([self.tool('sender_driver'), 'query', 'verify', org, bot],
                                 env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(json.loads(res.stdout)['status'], 'QUERY_OK', res.stdout)
            self.assertTrue(memory_holds(pid, needle), 'the cached token is not in memory: '
                                                       'this test cannot see it')
            self.assertTrue(all(memory_holds(pid, m) for m in markers),
                            'the cached profiles are not in memory: this test cannot see them')
            time.sleep(3 + 1 + 1.5)  # TTL, the sweep's period, a margin
            self.assertFalse(memory_holds(pid, needle), 'token still in memory after its TTL')
            held = [m for m in markers if memory_holds(pid, m)]
            self.assertEqual(held, [], 'profile data still in memory after its TTL')
        finally:
            self.s.kill('sender-slack', replica, signal.SIGTERM)

    def test_invalid_ttl_is_capped(self):
        """BCRM_SENDER_TOKEN_INVALID_TTL over 5 minutes stops the sender at start."""
        env = self.s.process_env('sender-slack', 8, {'BCRM_SENDER_TOKEN_INVALID_TTL': '10m'})
        res = subprocess.run([self.s.binary('sender-slack')], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn('BCRM_SENDER_TOKEN_INVALID_TTL', res.stderr)

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
        self.s.start('sender-slack', replica=busy, env=self.sender_env(busy))


class MessengerSenderTest(DriverMixin, unittest.TestCase):
    """sender-messenger against the real messenger-sim (sim/README.md)."""

    platform = 'messenger'

    @classmethod
    def setUpClass(cls):
        STACK.start('messenger-sim')
        page = STACK.msim('GET', '/_sim/pages')[2]['pages'][0]
        cls.page_id, cls.page_token = page['page_id'], page['token']
        cls.org, cls.bot = str(uuid.uuid4()), str(uuid.uuid4())
        cls.vault_store(cls.org, cls.bot, cls.page_token)
        # A short token lifetime, to see a cached token expire while idle.
        STACK.start('sender-messenger', env={'BCRM_SENDER_ID': 'messenger-0',
                                             'BCRM_SENDER_TOKEN_TTL': '1s'})

    def setUp(self):
        STACK.msim('POST', '/_sim/reset', {})

    def people(self):
        users = STACK.msim('GET', f'/_sim/users?page_id={self.page_id}')[2]['users']
        return [u for u in users if not u['unavailable']], users

    def sim_messages(self):
        return STACK.msim('GET', '/_sim/messages')[2]['messages']

    def test_outcomes(self):
        reachable, users = self.people()
        day = [u for u in reachable if u['in_window']]
        old = [u for u in reachable if not u['human_agent_window']]
        gone = [u for u in users if u['unavailable']][0]
        now_ms = int(time.time() * 1000)
        jobs = {
            'plain': self.job(day[0]['psid'], 'Hello page fans'),
            'personal': self.job(day[1]['psid'], 'Hi {{first_name|there}}'),
            'gone': self.job(gone['psid'], 'x'),
            # The simulator's own clock says the window closed; the sender was
            # not told, so the Send API refuses.
            'window': self.job(old[0]['psid'], 'x'),
            'unknown_psid': self.job('999999', 'x'),
            # Told: refused before anything leaves the sender.
            'stale': self.job(old[1]['psid'], 'too late',
                              last_message_at_ms=now_ms - 25 * 3600 * 1000),
            'tagged': self.job(old[2]['psid'], 'event moved',
                               last_message_at_ms=now_ms - 25 * 3600 * 1000,
                               messaging_type='MESSAGE_TAG', tag='CONFIRMED_EVENT_UPDATE'),
        }
        results = self.send(list(jobs.values()))
        r = {name: results[j['delivery_id']] for name, j in jobs.items()}
        self.assertEqual(r['plain']['outcome'], 'OUTCOME_SENT', r['plain'])
        self.assertTrue(r['plain']['platform_message_id'].startswith('m_'))
        self.assertEqual(r['personal']['outcome'], 'OUTCOME_SENT', r['personal'])
        self.assertEqual((r['gone']['outcome'], r['gone']['error']),
                         ('OUTCOME_FAILED', 'person_unavailable'))
        self.assertEqual((r['window']['outcome'], r['window']['error']),
                         ('OUTCOME_FAILED', 'outside_24h_window'))
        self.assertEqual(r['unknown_psid']['outcome'], 'OUTCOME_FAILED')
        self.assertEqual((r['stale']['outcome'], r['stale']['error']),
                         ('OUTCOME_FAILED', 'outside_24h_window'))
        self.assertEqual(r['tagged']['outcome'], 'OUTCOME_SENT', r['tagged'])
        self.assertEqual(r['tagged']['sender_id'], 'messenger-0')

        texts = {m['text']: m for m in self.sim_messages()}
        self.assertIn(f"Hi {day[1]['first_name']}", texts)
        self.assertEqual(texts['Hello page fans']['messaging_type'], 'UPDATE')
        self.assertEqual(texts['event moved']['messaging_type'], 'MESSAGE_TAG')
        self.assertNotIn('too late', texts)
        self.assertEqual(len(texts), 3)

    def test_faults(self):
        day = [u for u in self.people()[0] if u['in_window']]
        STACK.msim('POST', '/_sim/faults', {'ratelimit_storm_seconds': 30,
                                            'ratelimit_code': 613})
        try:
            r = self.send_one(self.job(day[0]['psid'], 'too fast'))
            self.assertEqual(r['outcome'], 'OUTCOME_RETRY')
            self.assertTrue(r['rate_limited'])
        finally:
            STACK.msim('POST', '/_sim/faults', {'clear': True})
        STACK.msim('POST', '/_sim/faults', {'error_rate': 1.0, 'error_code': 1200})
        try:
            r = self.send_one(self.job(day[0]['psid'], 'temporary'))
            self.assertEqual((r['outcome'], r['error']), ('OUTCOME_RETRY', 'temporary_send_error'))
        finally:
            STACK.msim('POST', '/_sim/faults', {'clear': True})
        STACK.msim('POST', '/_sim/faults', {'drop_rate': 1.0})
        try:
            r = self.send_one(self.job(day[1]['psid'], 'dropped'))
            self.assertEqual(r['outcome'], 'OUTCOME_UNKNOWN', r)
        finally:
            STACK.msim('POST', '/_sim/faults', {'clear': True})
        self.assertEqual([m['text'] for m in self.sim_messages()], ['dropped'])

    def test_page_queries(self):
        q = self.query('verify', self.org, self.bot)
        self.assertEqual(q['status'], 'QUERY_OK', q)
        self.assertEqual(q['identity']['page_id'], self.page_id)
        ids, cursor = [], ''
        for _ in range(200):
            q = self.query('users', self.org, self.bot, cursor, '100')
            self.assertEqual(q['status'], 'QUERY_OK', q)
            ids += [u['id'] for u in q['users']]
            cursor = q['next_cursor'] or ''
            if not cursor:
                break
        self.assertEqual(sorted(ids), sorted(u['psid'] for u in self.people()[1]))
        q = self.query('channels', self.org, self.bot)
        self.assertEqual(q['status'], 'QUERY_BAD_REQUEST')

    def test_token_cache_expires(self):
        org, bot = str(uuid.uuid4()), str(uuid.uuid4())
        self.vault_store(org, bot, self.page_token)
        day = [u for u in self.people()[0] if u['in_window']]
        results = self.send([self.job(day[i]['psid'], f'cached {i}', bot=bot) | {'org_id': org}
                             for i in range(5)])
        self.assertTrue(all(r['outcome'] == 'OUTCOME_SENT' for r in results.values()), results)
        self.assertEqual(release_count(bot), 1)
        time.sleep(2.5)  # past BCRM_SENDER_TOKEN_TTL: wiped, so asked again
        self.assertEqual(self.send_one(self.job(day[5]['psid'], 'again', bot=bot)
                                       | {'org_id': org})['outcome'], 'OUTCOME_SENT')
        self.assertEqual(release_count(bot), 2)

    def test_wrong_token_is_token_invalid(self):
        org, bot = str(uuid.uuid4()), str(uuid.uuid4())
        self.vault_store(org, bot, 'EAAG-not-the-page-token')
        day = [u for u in self.people()[0] if u['in_window']]
        r = self.send_one(self.job(day[0]['psid'], 'x', bot=bot) | {'org_id': org})
        self.assertEqual((r['outcome'], r['error']), ('OUTCOME_RETRY', 'invalid_token'))
        self.assertTrue(r['bot_token_invalid'])
        self.assertEqual(self.query('verify', org, bot)['status'], 'QUERY_TOKEN_INVALID')


if __name__ == '__main__':
    unittest.main(verbosity=2)
