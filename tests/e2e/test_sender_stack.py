#!/usr/bin/python3
"""The senders in the whole system: api, scheduler, vault, three sender-slack
replicas, sender-messenger, slack-sim (20,000 users) and messenger-sim, with
campaigns made through the REST API (issue 6, "honest about what happened").

* Every outcome class a simulator fault produces lands as the right delivery
  status: sent; failed (channel_not_found, a deactivated user, Messenger's 24 h
  window, a person unavailable); retry then sent under a transient 5xx rate, a
  refused connection, Meta's 1200; unknown after dropped answers, an answer
  slower than BCRM_SENDER_TIMEOUT, Slack's fatal_error and internal_error; a
  rate-limited try (Slack's 429, Meta's 613) not counted as an attempt; a
  revoked token (Slack, Meta 190) turning the bot token_invalid and pausing its
  campaign with nobody failed, one refused request a replica, and everyone sent
  once after a reconnect (POST .../bots/{bot}/token) and a resume right after it,
  well within the senders' hold on the refused token, which each replica ends by
  itself when it finds the new copy in the vault.
* Three replicas share a personalised 20,000-recipient campaign: each user gets
  exactly one message with their name, every replica sends a fair part
  (bcrm_sender_sends_total), and profiles come from users.list pages.
* kill -9 of a replica mid-campaign, five times, restarting it: no recipient is
  lost (every one is sent or unknown), duplicates are at most the requests in
  flight at the kills, a recipient the simulator saw twice is unknown, and a
  sent one was seen exactly once.
* 1% of answers dropped after the message was recorded: exactly those recipients
  are unknown, and none was sent twice.
* The Slack OAuth install end to end: start, the simulator's authorize page, the
  callback; the token reaches the vault sealed, the bot is active and works, and
  the api never held the token.
"""
import contextlib
import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402
import e2e_helpers as e2e  # noqa: E402

USERS = 20000
REPLICAS = 3
SIM_CLIENT_ID = '1111111111.2222222222'
SIM_CLIENT_SECRET = 'sim-client-secret'
CAMPAIGN_TIMEOUT_S = float(os.environ.get('BCRM_E2E_CAMPAIGN_TIMEOUT', '300'))
FINAL = ('sent', 'failed', 'unknown', 'skipped', 'cancelled', 'read')
# BCRM_SENDER_TOKEN_INVALID_TTL: how long a refused token holds its bot. Long, so
# that a campaign resumed right after a reconnect shows that the reconnect ends the
# hold (the hold's own end would come far later).
HOLD = '120s'
HOLD_S = 120


def reachable(u):
    return u['kind'] == 'person' and not u['deleted'] and u['id'] != 'USLACKBOT'


class SenderStackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        s = cls.s = Stack()
        try:
            s.start_postgres()
            s.make_keys()
            # Pacing off (the simulator's limits are off too), fast retries, short
            # leases: a killed replica's deliveries turn unknown within seconds.
            s.env.update({'BCRM_SLACK_RATE_PER_MINUTE': '10000000', 'BCRM_SLACK_BURST': '100000',
                          'BCRM_MESSENGER_RATE_PER_SECOND': '100000',
                          'BCRM_MESSENGER_BURST': '10000',
                          'BCRM_SCHEDULER_LEASE': '6s', 'BCRM_SCHEDULER_RETRY_BASE': '200ms',
                          'BCRM_SCHEDULER_RETRY_CAP': '2s', 'BCRM_SCHEDULER_MAX_ATTEMPTS': '20',
                          'BCRM_SCHEDULER_PAGE_SIZE': '1000',
                          # Short token lifetimes: a test can start with every replica
                          # holding no token, and a refused one holds its bot briefly.
                          'BCRM_SENDER_TOKEN_TTL': '3s',
                          'BCRM_SENDER_TOKEN_INVALID_TTL': HOLD})
            s.start('slack-sim', env={'SLACK_SIM_USERS': str(USERS), 'SLACK_SIM_SEED': '606',
                                      'SLACK_SIM_THREADS': '32',
                                      'SLACK_SIM_REQUEST_LOG': '100000'})
            s.start('messenger-sim')
            s.start('vault')
            s.start('scheduler')
            s.start('api', env={'BCRM_SLACK_CLIENT_ID': SIM_CLIENT_ID,
                                'BCRM_PUBLIC_URL': s.api_url,
                                'BCRM_SLACK_OAUTH_AUTHORIZE_URL': s.sim_url + '/oauth/v2/authorize'})
            for replica in range(REPLICAS):
                cls.start_sender(replica)
            s.start('sender-messenger')
            cls.org = e2e.signup(s, 'Sender Tester', 'senders@e2e.bcrm.test', 'Senders')
            ws = s.sim('GET', '/_sim/workspaces')[2]['workspaces'][0]
            cls.team, cls.token = ws['team_id'], ws['token']
            cls.users = s.sim('GET', f'/_sim/users?team_id={cls.team}')[2]['users']
            cls.people = [u for u in cls.users if reachable(u)]
            cls.dm_to_user = {u['dm_id']: u['id'] for u in cls.users if u.get('dm_id')}
            assert len(cls.people) > USERS // 2
        except Exception:
            s.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        codes = cls.s.stop()
        bad = {k: v for k, v in codes.items() if v != 0}
        assert not bad, f'processes did not exit 0 on SIGTERM: {bad}'

    @classmethod
    def start_sender(cls, replica):
        cls.s.start('sender-slack', replica=replica, env={
            'BCRM_SENDER_ID': f'slack-{replica}', 'BCRM_SLACK_CLIENT_ID': SIM_CLIENT_ID,
            'BCRM_SLACK_CLIENT_SECRET': SIM_CLIENT_SECRET})

    def setUp(self):
        self.s.sim('POST', '/_sim/reset', {})
        self.s.msim('POST', '/_sim/reset', {})

    # ---- helpers -------------------------------------------------------------

    def faults(self, **faults):
        status, _, body = self.s.sim('POST', '/_sim/faults', faults)
        self.assertEqual(status, 200, body)

    def connect_bot(self, platform='slack', token=None):
        return e2e.connect_bot(self.s, self.org, platform, token or self.token)['id']

    def campaign(self, bot, filter_, text='Hello {{first_name|there}}', wait=True, **extra):
        body = {'name': 'senders', 'bot_id': bot, 'message': {'text': text},
                'audience': {'filter': filter_}, 'schedule': {'mode': 'now'}} | extra
        path, c = e2e.create_campaign(self.s, self.org, body)
        e2e.schedule_campaign(self.s, path)
        return self.wait_done(c['id']) if wait else c['id']

    def campaign_path(self, cid):
        return f'/v1/orgs/{self.org}/campaigns/{cid}'

    def get_campaign(self, cid):
        return e2e.get_campaign(self.s, self.campaign_path(cid))

    def wait_done(self, cid, statuses=('completed',), timeout=CAMPAIGN_TIMEOUT_S):
        return e2e.wait_campaign(self.s, self.campaign_path(cid), timeout, statuses)

    def deliveries(self, cid):
        """{recipient_id: (status, attempts, last_error)} from the database."""
        rows = self.s.sql(f"SELECT recipient_id, status, attempts, last_error FROM deliveries"
                          f" WHERE campaign_id = '{cid}'")
        return {r[0]: (r[1], int(r[2]), r[3]) for r in rows}

    def received(self):
        """{user id: times the simulator received a message for them}."""
        _, _, body = self.s.sim('GET', f'/_sim/messages?team_id={self.team}')
        counts = {}
        for m in body['messages']:
            user = m.get('recipient') or self.dm_to_user.get(m.get('channel'), m.get('channel'))
            counts[user] = counts.get(user, 0) + m.get('count', 1)
        return counts

    def sim_requests(self, method):
        _, _, log = self.s.sim('GET', f'/_sim/requests?method={method}&limit=100000')
        self.assertEqual(log.get('evicted', 0), 0, 'the request log overflowed')
        return log['requests']

    def bot_status(self, bot):
        return self.s.sql(f"SELECT status FROM bots WHERE id = '{bot}'")[0][0]

    def settled(self, cid, timeout=30):
        """deliveries(cid) once none of them is out at a sender."""
        return self.wait_deliveries(cid, lambda d: all(v[0] != 'sending' for v in d.values()),
                                    'no delivery still sending', timeout)

    def wait_deliveries(self, cid, ok, what, timeout=60):
        """Waits until ok(deliveries(cid)) holds; returns those deliveries."""
        return e2e.wait_until(what, lambda: self.deliveries(cid), ok, timeout)

    def resume_reconnected(self, bot, cid, body):
        """Reconnects the bot with a valid token (POST .../bots/{bot}/token, body
        {token} or {page_token}), then resumes its campaign at once, well within the
        senders' hold on the refused token (HOLD): each replica must end its hold by
        itself, finding the new copy of the token in the vault, or the campaign's
        first jobs would be refused by the hold and pause it again."""
        started = time.monotonic()
        status, _, bot_after = self.s.api('POST', f'/v1/orgs/{self.org}/bots/{bot}/token', body)
        self.assertEqual(status, 200, bot_after)
        self.assertEqual(bot_after['status'], 'active')
        self.assertIn(cid, bot_after['paused_campaigns'])
        self.assertEqual(self.bot_status(bot), 'active')
        # The reconnect leaves the campaign paused: resuming it is the user's call.
        self.assertEqual(self.get_campaign(cid)['status'], 'paused')
        status, _, c = self.s.api('POST', f'/v1/orgs/{self.org}/campaigns/{cid}/resume')
        self.assertIn(status, (200, 202), c)
        deadline = time.monotonic() + CAMPAIGN_TIMEOUT_S
        while c['status'] != 'completed':
            self.assertNotEqual(c['status'], 'paused',
                                f'paused again after the reconnect: {c.get("stats")}')
            self.assertLess(time.monotonic(), deadline, f'campaign {cid}: {c["status"]}')
            time.sleep(0.2)
            c = self.get_campaign(cid)
        self.assertLess(time.monotonic() - started, HOLD_S, 'done only after the hold ran out')
        return c

    @contextlib.contextmanager
    def only_sender(self, env):
        """The three replicas stopped and one sender-slack with env in their place;
        the three are back afterwards."""
        for replica in range(REPLICAS):
            self.assertEqual(self.s.kill('sender-slack', replica, signal.SIGTERM), 0)
        self.s.start('sender-slack', replica=9, env={'BCRM_SENDER_ID': 'slack-special'} | env)
        try:
            yield
        finally:
            self.assertEqual(self.s.kill('sender-slack', 9, signal.SIGTERM), 0)
            for replica in range(REPLICAS):
                self.start_sender(replica)

    def sends_by_replica(self):
        out = []
        for replica in range(REPLICAS):
            _, _, text = self.s.ops('sender-slack', '/metrics', replica)
            m = re.search(r'^bcrm_sender_sends_total\{outcome="sent"\} (\S+)$', text, re.M)
            out.append(float(m.group(1)) if m else 0.0)
        return out

    # ---- outcome classes -----------------------------------------------------

    def test_outcome_classes(self):
        bot = self.connect_bot()
        people = self.people[:40]
        deactivated = [u for u in self.users if u['kind'] == 'person' and u['deleted']][0]
        # sent, and a deactivated user: failed.
        c = self.campaign(bot, {'user_ids': [u['id'] for u in people[:10]] + [deactivated['id']]})
        d = self.deliveries(c['id'])
        self.assertEqual(d.pop(deactivated['id'])[0], 'failed')
        self.assertEqual({v[0] for v in d.values()}, {'sent'}, d)
        self.assertEqual(c['stats']['sent'], 10)
        # A channel that does not exist: failed channel_not_found.
        c = self.campaign(bot, {'channel_ids': ['C0NOTACHANNEL']})
        self.assertEqual(self.deliveries(c['id']),
                         {'C0NOTACHANNEL': ('failed', 1, 'channel_not_found')})

        # A transient error rate: retried until sent, each recipient once.
        self.s.sim('POST', '/_sim/reset', {})
        self.faults(error_rate=0.4, error_status=503)
        try:
            c = self.campaign(bot, {'user_ids': [u['id'] for u in people[10:30]]})
        finally:
            self.faults(clear=True)
        d = self.deliveries(c['id'])
        self.assertEqual({v[0] for v in d.values()}, {'sent'}, d)
        self.assertTrue(any(v[1] > 1 for v in d.values()), 'no delivery needed a retry')
        counts = self.received()
        self.assertTrue(all(counts.get(u['id']) == 1 for u in people[10:30]), counts)

        # Answers dropped after the message was recorded: unknown, never resent.
        self.s.sim('POST', '/_sim/reset', {})
        self.faults(drop_rate=1.0)
        try:
            c = self.campaign(bot, {'user_ids': [u['id'] for u in people[30:35]]})
        finally:
            self.faults(clear=True)
        self.assertEqual({v[0] for v in self.deliveries(c['id']).values()}, {'unknown'})
        time.sleep(1)
        counts = self.received()
        self.assertEqual({u['id']: counts.get(u['id']) for u in people[30:35]},
                         {u['id']: 1 for u in people[30:35]})

        # A 429 storm: retried after Retry-After, not counted as an attempt.
        self.faults(ratelimit_storm_seconds=2)
        try:
            c = self.campaign(bot, {'user_ids': [u['id'] for u in people[35:40]]})
        finally:
            self.faults(clear=True)
        d = self.deliveries(c['id'])
        self.assertEqual(set(d.values()), {('sent', 1, None)}, d)

    def test_revoked_token_pauses_the_campaign(self):
        """A revoked token pauses the bot and its campaign, and fails nobody: the
        recipients go back to pending with no attempt counted. Each replica tries
        the fresh token with one request and holds the bot's other sends, so Slack
        sees at most one refused request a replica (what a replica had in flight
        then), not one per recipient. Reconnected and resumed, every recipient
        gets the message exactly once."""
        bot = self.connect_bot()
        people = self.people[:300]
        time.sleep(3.5)  # past BCRM_SENDER_TOKEN_TTL: no replica holds the token
        self.s.sim('DELETE', '/_sim/requests')
        self.faults(revoke_token=self.team)
        try:
            cid = self.campaign(bot, {'user_ids': [u['id'] for u in people]}, text='Hello',
                                wait=False)
            c = self.wait_done(cid, statuses=('paused',), timeout=60)
            self.assertEqual(self.bot_status(bot), 'token_invalid')
            d = self.settled(cid)
            self.assertEqual(set(d), {u['id'] for u in people})
            self.assertEqual({(v[0], v[1]) for v in d.values()}, {('pending', 0)}, d)
            self.assertEqual(c['stats']['sent'], 0)
            self.assertEqual(self.received(), {})
            refused = self.sim_requests('chat.postMessage')
            self.assertEqual({r['error'] for r in refused}, {'token_revoked'})
            self.assertLessEqual(len(refused), REPLICAS, 'recipients were tried one by one')
        finally:
            self.faults(restore_token=self.team)
        c = self.resume_reconnected(bot, cid, {'token': self.token})
        d = self.deliveries(cid)
        self.assertEqual({v[0] for v in d.values()}, {'sent'}, d)
        counts = self.received()
        self.assertEqual({u['id']: counts.get(u['id']) for u in people},
                         {u['id']: 1 for u in people})

    def test_transport_outcomes(self):
        """A platform answer slower than BCRM_SENDER_TIMEOUT after the request was
        sent lands as unknown (and the message was delivered once); a refused
        connection as pending again, attempt after attempt, then sent once the
        platform is back; Slack's ok:false fatal_error and internal_error as
        unknown (Slack says the call may have partly succeeded)."""
        bot = self.connect_bot()
        people = self.people[1000:1020]
        ids = [u['id'] for u in people]
        with self.only_sender({'BCRM_SENDER_TIMEOUT': '1s'}):
            self.faults(latency_ms=2500)
            try:
                c = self.campaign(bot, {'user_ids': ids[:3]}, text='a slow answer')
            finally:
                self.faults(clear=True)
        self.assertEqual(set(self.deliveries(c['id']).values()), {('unknown', 1, 'timeout')})
        time.sleep(2)  # the simulator records each after its latency
        counts = self.received()
        self.assertEqual({u: counts.get(u) for u in ids[:3]}, {u: 1 for u in ids[:3]})

        closed = self.s.free_port()
        with self.only_sender({'BCRM_SLACK_API_URL': f'http://127.0.0.1:{closed}/api'}):
            cid = self.campaign(bot, {'user_ids': ids[3:8]}, text='refused', wait=False)
            d = self.wait_deliveries(
                cid, lambda d: all(v[1] >= 2 and v[2] == 'connect_failed' for v in d.values()),
                'every recipient retried after a refused connection')
            self.assertLessEqual({v[0] for v in d.values()}, {'pending', 'sending'}, d)
        c = self.wait_done(cid)
        self.assertEqual({v[0] for v in self.deliveries(cid).values()}, {'sent'})
        counts = self.received()
        self.assertEqual({u: counts.get(u) for u in ids[3:8]}, {u: 1 for u in ids[3:8]})

        for n, code in enumerate(('fatal_error', 'internal_error')):
            self.faults(error_rate=1.0, error_status=200, error_code=code)
            try:
                c = self.campaign(bot, {'user_ids': ids[8 + 3 * n:11 + 3 * n]}, text=code)
            finally:
                self.faults(clear=True)
            self.assertEqual(set(self.deliveries(c['id']).values()), {('unknown', 1, code)})
        # Internal errors with a 5xx come before Slack does anything: retried, sent.
        self.faults(error_rate=0.5, error_status=500)
        try:
            c = self.campaign(bot, {'user_ids': ids[14:20]}, text='flaky')
        finally:
            self.faults(clear=True)
        self.assertEqual({v[0] for v in self.deliveries(c['id']).values()}, {'sent'})
        counts = self.received()
        self.assertEqual({u: counts.get(u) for u in ids[14:20]}, {u: 1 for u in ids[14:20]})

    def msim_received(self, page_id):
        _, _, body = self.s.msim('GET', f'/_sim/recipients?page_id={page_id}')
        return {r['recipient']: r['count'] for r in body['recipients']}

    def test_messenger_faults(self):
        """Meta's 613 (rate limit: retried, not counted), 1200 (temporary: retried
        until sent) and 190 (the page token: the campaign paused, nobody failed,
        all sent once after a reconnect) land as delivery rows."""
        page = self.s.msim('GET', '/_sim/pages')[2]['pages'][0]
        bot = self.connect_bot('messenger', page['token'])
        people = [p['psid'] for p in
                  self.s.msim('GET', f'/_sim/users?page_id={page["page_id"]}')[2]['users']
                  if p['in_window'] and not p['unavailable']]
        self.assertGreater(len(people), 60)

        def msim_faults(**faults):
            status, _, body = self.s.msim('POST', '/_sim/faults', faults)
            self.assertEqual(status, 200, body)

        msim_faults(ratelimit_storm_seconds=2, ratelimit_code=613)
        try:
            c = self.campaign(bot, {'user_ids': people[:5]}, text='after the storm')
        finally:
            msim_faults(clear=True)
        self.assertEqual(set(self.deliveries(c['id']).values()), {('sent', 1, None)})

        msim_faults(error_rate=1.0, error_code=1200)
        try:
            cid = self.campaign(bot, {'user_ids': people[5:10]}, text='temporary', wait=False)
            self.wait_deliveries(cid, lambda d: len(d) == 5 and all(v[1] >= 2 for v in d.values()),
                                 'every recipient retried after 1200')
        finally:
            msim_faults(clear=True)
        self.wait_done(cid)
        self.assertEqual({v[0] for v in self.deliveries(cid).values()}, {'sent'})

        audience = people[10:60]
        msim_faults(revoke_token=page['page_id'])
        try:
            cid = self.campaign(bot, {'user_ids': audience}, text='page token', wait=False)
            self.wait_done(cid, statuses=('paused',), timeout=60)
            self.assertEqual(self.bot_status(bot), 'token_invalid')
            d = self.settled(cid)
            self.assertEqual({(v[0], v[1]) for v in d.values()}, {('pending', 0)}, d)
        finally:
            msim_faults(restore_token=page['page_id'])
        self.resume_reconnected(bot, cid, {'page_token': page['token']})
        self.assertEqual({v[0] for v in self.deliveries(cid).values()}, {'sent'})
        counts = self.msim_received(page['page_id'])
        self.assertEqual({p: counts.get(p) for p in people[:60]}, {p: 1 for p in people[:60]})

    def test_messenger_outcomes(self):
        page = self.s.msim('GET', '/_sim/pages')[2]['pages'][0]
        bot = self.connect_bot('messenger', page['token'])
        people = self.s.msim('GET', f'/_sim/users?page_id={page["page_id"]}')[2]['users']
        c = self.campaign(bot, {'all': True}, text='Hi {{first_name|there}}, news!')
        d = self.deliveries(c['id'])
        by_psid = {p['psid']: p for p in people}
        self.assertEqual(set(d), set(by_psid))
        for psid, (status, _, error) in d.items():
            p = by_psid[psid]
            if p['unavailable']:
                self.assertEqual((status, error), ('failed', 'person_unavailable'), psid)
            elif p['in_window']:
                self.assertEqual(status, 'sent', (psid, error))
            else:
                self.assertEqual((status, error), ('failed', 'outside_24h_window'), psid)
        stats = self.s.msim('GET', '/_sim/stats')[2]
        self.assertEqual(stats['duplicates'], 0)
        self.assertEqual(stats['messages'], sum(1 for v in d.values() if v[0] == 'sent'))

    # ---- scale, crashes, ambiguity -------------------------------------------

    def check_everyone_once(self, cid):
        d = self.deliveries(cid)
        self.assertEqual(set(d), {u['id'] for u in self.people}, 'recipients differ')
        counts = self.received()
        return d, counts

    def test_replicas_share_20000(self):
        """Three replicas share a personalised 20,000-recipient campaign: each user
        gets exactly one message with their own first name, every replica sends a
        fair part, and the names come from users.list pages of 1000 (a few dozen
        reads), not one users.info per recipient (which Slack's tier 4 allows at
        100 a minute)."""
        bot = self.connect_bot()
        before = self.sends_by_replica()
        self.s.sim('DELETE', '/_sim/requests')
        c = self.campaign(bot, {'all': True})
        d, counts = self.check_everyone_once(c['id'])
        n = len(self.people)
        self.assertEqual((c['stats']['total'], c['stats']['sent']), (n, n), c['stats'])
        self.assertEqual({v[0] for v in d.values()}, {'sent'})
        self.assertEqual(set(counts), set(d))
        self.assertEqual({k: v for k, v in counts.items() if v != 1}, {}, 'duplicates')
        share = [a - b for a, b in zip(self.sends_by_replica(), before)]
        self.assertEqual(sum(share), n, share)
        for replica, sent in enumerate(share):
            self.assertGreater(sent, n / REPLICAS / 3, f'replica {replica} sent only {share}')
        # Personalised from the live profiles...
        _, _, body = self.s.sim('GET', f'/_sim/messages?team_id={self.team}')
        texts = {self.dm_to_user.get(m['channel'], m.get('recipient')): m['text']
                 for m in body['messages']}
        wrong = []
        for u in self.people:
            first = u['first_name'] or (u['real_name'] or '').split(' ')[0] or 'there'
            if texts.get(u['id']) != f'Hello {first}':
                wrong.append((u['id'], texts.get(u['id']), first))
        self.assertEqual(wrong[:5], [], f'{len(wrong)} messages not personalised right')
        # ...read in pages: the audience's pages, and a fill or two per replica.
        pages = len(self.sim_requests('users.list'))
        info = len(self.sim_requests('users.info'))
        page_count = (len(self.users) + 999) // 1000
        self.assertLessEqual(pages, page_count * (1 + 2 * REPLICAS) + 10, pages)
        self.assertLess(info, n // 20, f'{info} users.info calls for {n} recipients')
        print(f'20000: users.list {pages} calls, users.info {info}', file=sys.stderr)

    def in_flight(self, replica):
        _, _, text = self.s.ops('sender-slack', '/metrics', replica)
        m = re.search(r'^bcrm_sender_in_flight (\S+)$', text, re.M)
        return int(float(m.group(1))) if m else 0

    def test_kill_9_mid_campaign(self):
        """kill -9 of a replica mid-campaign, five times: no recipient is lost; the
        simulator's duplicates are at most the requests the killed replicas had in
        flight (their gauge, read just before each kill); every recipient seen
        twice, and every one whose send was cut off, is unknown (the lease expired
        while the replica held it), and a sent one was seen once, with the ts the
        delivery recorded."""
        bot = self.connect_bot()
        # Slow answers keep requests in flight when the kills come.
        self.faults(latency_ms=30, jitter_ms=30)
        in_flight_at_kills = []
        try:
            cid = self.campaign(bot, {'all': True}, text='Hello', wait=False)
            kills = 0
            while kills < 5:
                c = self.get_campaign(cid)
                if c['status'] == 'running' and c['stats']['sent'] > (kills + 1) * 1500:
                    replica = kills % REPLICAS
                    in_flight_at_kills.append(self.in_flight(replica))
                    self.s.kill('sender-slack', replica, signal.SIGKILL)
                    time.sleep(0.5)
                    self.start_sender(replica)
                    kills += 1
                elif c['status'] == 'completed':
                    break
                time.sleep(0.2)
            self.assertEqual(kills, 5, 'the campaign ended before five kills')
            c = self.wait_done(cid)
        finally:
            self.faults(clear=True)
        d, counts = self.check_everyone_once(cid)
        statuses = {v[0] for v in d.values()}
        self.assertLessEqual(statuses, {'sent', 'unknown'}, d)
        rows = self.s.sql(f"SELECT recipient_id, platform_message_id FROM deliveries"
                          f" WHERE campaign_id = '{cid}' AND status = 'sent'")
        sent_ts = dict(rows)
        _, _, body = self.s.sim('GET', f'/_sim/messages?team_id={self.team}')
        sim_ts = {}
        for m in body['messages']:
            user = self.dm_to_user.get(m.get('channel'), m.get('recipient'))
            sim_ts.setdefault(user, set()).add(m['ts'])
        for user, (status, _, error) in d.items():
            if status == 'sent':
                self.assertEqual(counts.get(user), 1, f'{user} sent, seen {counts.get(user)}')
                self.assertEqual(sim_ts.get(user), {sent_ts[user]}, user)
            else:
                self.assertEqual(error, 'lease_expired', (user, status, error))
            if counts.get(user, 0) > 1:
                self.assertEqual(status, 'unknown', user)
        duplicates = sum(v - 1 for v in counts.values() if v > 1)
        unknown = sum(1 for v in d.values() if v[0] == 'unknown')
        self.assertLessEqual(duplicates, sum(in_flight_at_kills), in_flight_at_kills)
        self.assertGreater(sum(in_flight_at_kills), 0, 'no request was in flight at any kill')
        print(f'kill -9 x5: {len(d)} recipients, {unknown} unknown, {duplicates} duplicates, '
              f'in flight at the kills {in_flight_at_kills}', file=sys.stderr)

    def test_one_percent_dropped(self):
        bot = self.connect_bot()
        self.s.sim('DELETE', '/_sim/requests')
        self.faults(drop_rate=0.01)
        try:
            c = self.campaign(bot, {'all': True})
        finally:
            self.faults(clear=True)
        d, counts = self.check_everyone_once(c['id'])
        _, _, log = self.s.sim('GET', '/_sim/requests?method=chat.postMessage&limit=100000')
        self.assertEqual(log.get('evicted', 0), 0, 'the request log overflowed')
        dropped = set()
        for r in log['requests']:
            if r.get('dropped'):
                body = r['body'] if isinstance(r['body'], dict) else json.loads(r['body'])
                dropped.add(self.dm_to_user.get(body['channel'], body['channel']))
        self.assertGreater(len(dropped), 0)
        unknown = {u for u, v in d.items() if v[0] == 'unknown'}
        self.assertEqual(unknown, dropped)
        self.assertEqual({u: counts.get(u) for u in dropped}, {u: 1 for u in dropped})
        self.assertEqual({v[0] for u, v in d.items() if u not in dropped}, {'sent'})
        self.assertEqual({k: v for k, v in counts.items() if v != 1}, {}, 'duplicates')

    # ---- OAuth ---------------------------------------------------------------

    def get(self, url, cookie=True):
        return e2e.get_no_redirect(url, self.s.cookies if cookie else None)

    def test_slack_oauth_install(self):
        status, location, body = self.get(self.s.api_url + f'/v1/orgs/{self.org}/oauth/slack/start')
        self.assertEqual(status, 302, body)
        self.assertTrue(location.startswith(self.s.sim_url + '/oauth/v2/authorize'), location)
        status, callback, body = self.get(location, cookie=False)
        self.assertIn(status, (302, 303), body)
        self.assertTrue(callback.startswith(self.s.api_url + '/v1/oauth/slack/callback'))
        status, done, body = self.get(callback)
        self.assertEqual(status, 302, body)
        bot = body['bot_id']
        status, _, got = self.s.api('GET', f'/v1/orgs/{self.org}/bots/{bot}')
        self.assertEqual(status, 200, got)
        self.assertEqual((got['status'], got['team_id']), ('active', self.team), got)
        self.assertIn('chat:write', got['scopes'] or '')
        # The vault opened the seal: the bot works.
        status, _, users = self.s.api('GET', f'/v1/orgs/{self.org}/bots/{bot}/users?limit=5')
        self.assertEqual(status, 200, users)
        rows = self.s.sql(f"SELECT operation, outcome, role FROM vault_audit WHERE bot_id = '{bot}'"
                          f" ORDER BY id")
        self.assertEqual(rows[0], ('store_sealed', 'ok', 'api'), rows)
        # The same code again: refused, and nothing half-made stays.
        status, _, body = self.get(callback)
        self.assertEqual(status, 400, body)
        count = self.s.sql(f"SELECT count(*) FROM bots WHERE org_id = '{self.org}'"
                           f" AND status = 'verifying'")
        self.assertEqual(count, [('0',)])
        # The api never held the token, nor logged it; the secret stays with the sender.
        self.assertNotIn(self.token, self.s.log('api'))
        self.assertNotIn(SIM_CLIENT_SECRET, self.s.log('api'))
        with open(f'/proc/{self.s.procs["api"].popen.pid}/environ', 'rb') as f:
            self.assertNotIn(SIM_CLIENT_SECRET.encode(), f.read())


if __name__ == '__main__':
    unittest.main(verbosity=2)
