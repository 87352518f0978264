#!/usr/bin/python3
"""System tests of the scheduler: real processes, the Slack simulator, and crashes.

The scheduler's promise is that nothing is lost and nothing is sent twice, whatever
crashes around it. These tests break things on purpose while a campaign runs:

* a sender replica is killed (SIGKILL) mid-campaign: no recipient gets two messages,
  the campaign completes, and every delivery is 'sent' or, for the ones the dead
  replica held, 'unknown' with last_error 'lease_expired' (never resent);
* the scheduler itself is killed mid-campaign and started again: same promise;
* pause stops new sends at once and resume finishes the campaign, once per person;
* a standby scheduler takes over when the leader dies, and with senders dialing both
  schedulers it finishes a 2000-recipient campaign the leader was running: each
  recipient sent exactly once, or 'unknown' (held by the dead leader) and received at
  most once; nobody missed, nobody twice;
* the leader dies while reading the audience: the standby resumes at the saved
  cursor, and nobody is written or sent twice;
* a 10,000-recipient campaign paused and resumed three times reaches everyone once;
* a local-time campaign gives each recipient the instant Python's zoneinfo (the
  same tz database) computes for 09:00 in their own zone, or in the fallback zone.

Campaigns are slowed down (simulator latency, a small in-flight limit) so that the
faults land in the middle of them.
"""
import datetime
import os
import signal
import sys
import time
import unittest
import zoneinfo

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402
from e2e_helpers import connect_bot, create_campaign, signup, wait_until  # noqa: E402

USERS = 150
SEED = 4242
TIMEOUT_S = float(os.environ.get('BCRM_E2E_CAMPAIGN_TIMEOUT', '120'))

# Slow enough that a fault lands mid-campaign, fast enough for a test.
SLOW_SCHEDULER = {
    'BCRM_SCHEDULER_MAX_IN_FLIGHT': '8',
    'BCRM_SCHEDULER_BATCH': '4',
    'BCRM_SCHEDULER_JOBS_PER_MESSAGE': '2',
    'BCRM_SCHEDULER_LEASE': '3s',
}


def as_list(body, key):
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return body[key]
    raise AssertionError(f'expected a list under "{key}", got {str(body)[:300]}')


def is_reachable(user):
    return (user.get('kind', 'person') == 'person' and not user.get('is_bot')
            and not user.get('deleted') and user.get('id') != 'USLACKBOT')


def message_recipient(msg, dm_to_user):
    for key in ('user', 'user_id', 'recipient'):
        if isinstance(msg.get(key), str) and msg[key].startswith('U'):
            return msg[key]
    channel = msg.get('channel') or msg.get('channel_id') or ''
    return dm_to_user.get(channel, channel)


def is_leader(s, replica):
    """The value of bcrm_scheduler_is_leader on a scheduler replica's /metrics."""
    status, _, text = s.ops('scheduler', '/metrics', replica)
    assert status == 200, text
    for line in text.splitlines():
        if line.startswith('bcrm_scheduler_is_leader '):
            return int(float(line.split()[1]))
    raise AssertionError('no bcrm_scheduler_is_leader series')


class World:
    """A running stack with a signed-up owner and a connected Slack bot."""

    def __init__(self, stack, scheduler_env=None, sender_replicas=2, sim_env=None):
        self.s = s = stack
        s.start_postgres()
        s.make_keys()
        started = [s.start('slack-sim', env=dict({'SLACK_SIM_USERS': str(USERS),
                                                  'SLACK_SIM_SEED': str(SEED),
                                                  'SLACK_SIM_WORKSPACES': '1'}, **(sim_env or {})),
                           wait=False),
                   s.start('vault', wait=False),
                   s.start('scheduler', env=scheduler_env, wait=False),
                   s.start('api', wait=False)]
        started += [s.start('sender-slack', r, wait=False) for r in range(sender_replicas)]
        started.append(s.start('sender-messenger', wait=False))
        s.wait_ready(started)
        self.attach(s)

    def attach(self, s):
        """Signs up an owner and connects the simulator's bot on a running stack."""
        self.s = s
        status, _, body = s.sim('GET', '/_sim/workspaces')
        assert status == 200, body
        workspace = as_list(body, 'workspaces')[0]
        self.token = workspace.get('bot_token') or workspace.get('token')
        self.team_id = workspace.get('team_id') or workspace.get('id')
        status, _, body = s.sim('GET', f'/_sim/users?team_id={self.team_id}')
        assert status == 200, body
        self.population = as_list(body, 'users')
        self.expected = {u['id']: u for u in self.population if is_reachable(u)}
        self.dm_to_user = {u['dm_id']: u['id'] for u in self.population if u.get('dm_id')}

        self.org = signup(s, 'Scheduler Test', 'sched@e2e.bcrm.test', 'Scheduler Test')
        self.bot = connect_bot(s, self.org, 'slack', self.token)['id']

    def campaign(self, schedule=None, audience=None, text='Hi {{first_name|there}}!'):
        _, c = create_campaign(self.s, self.org, {
            'name': 'scheduler test', 'bot_id': self.bot, 'message': {'text': text},
            'audience': audience or {'filter': {'all': True}},
            'schedule': schedule or {'mode': 'now'}})
        return c['id']

    def path(self, cid):
        return f'/v1/orgs/{self.org}/campaigns/{cid}'

    def act(self, cid, action):
        status, _, body = self.s.api('POST', self.path(cid) + '/' + action)
        assert status in (200, 202), (action, status, body)
        return body

    def get(self, cid):
        status, _, body = self.s.api('GET', self.path(cid))
        assert status == 200, body
        return body

    def wait(self, cid, predicate, what, timeout=TIMEOUT_S):
        return wait_until(what, lambda: self.get(cid), predicate, timeout)

    def received(self):
        """{recipient: number of messages the platform got}."""
        status, _, body = self.s.sim('GET', f'/_sim/messages?team_id={self.team_id}')
        assert status == 200, body
        counts = {}
        for msg in as_list(body, 'messages'):
            r = message_recipient(msg, self.dm_to_user)
            counts[r] = counts.get(r, 0) + 1
        return counts

    def deliveries(self, cid):
        return {r[0]: (r[1], r[2]) for r in self.s.sql(
            f"SELECT recipient_id, status, last_error FROM deliveries"
            f" WHERE campaign_id = '{cid}'")}

    def sim_total(self):
        status, _, body = self.s.sim('GET', '/_sim/stats')
        assert status == 200, body
        return body['messages']

    def slow_down(self, latency_ms):
        status, _, body = self.s.sim('POST', '/_sim/faults', {'latency_ms': latency_ms})
        assert status == 200, body


class SchedulerSystemTest(unittest.TestCase):
    def check_once_at_most(self, w, cid):
        """The promise: nobody got two messages; every delivery settled; 'sent' ones
        were received exactly once; 'unknown' ones only from an expired lease."""
        deliveries = w.deliveries(cid)
        received = w.received()
        self.assertEqual(set(deliveries), set(w.expected), 'audience differs')
        doubles = {r: n for r, n in received.items() if n > 1}
        self.assertEqual(doubles, {}, 'recipients messaged more than once')
        self.assertTrue(set(received) <= set(w.expected), 'messages to outsiders')
        for recipient, (status, error) in deliveries.items():
            self.assertIn(status, ('sent', 'unknown'), (recipient, status, error))
            if status == 'sent':
                self.assertEqual(received.get(recipient), 1, recipient)
            else:
                self.assertEqual(error, 'lease_expired', recipient)
        return deliveries

    def test_sender_killed_mid_campaign(self):
        with Stack() as s:
            w = World(s, SLOW_SCHEDULER)
            w.slow_down(150)
            cid = w.campaign()
            w.act(cid, 'schedule')
            w.wait(cid, lambda c: c['stats']['sent'] >= 10, 'first sends')
            s.kill('sender-slack', 1, signal.SIGKILL)
            c = w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            deliveries = self.check_once_at_most(w, cid)
            unknown = [r for r, (st, _) in deliveries.items() if st == 'unknown']
            # The dead replica held at most what one scheduler hands out at once.
            self.assertLessEqual(len(unknown), int(SLOW_SCHEDULER['BCRM_SCHEDULER_MAX_IN_FLIGHT']))
            self.assertEqual(c['stats']['sent'] + c['stats']['unknown'], len(w.expected))
            self.assertGreater(c['stats']['sent'], len(w.expected) // 2)
            del s.procs['sender-slack#1']  # already dead: stop() must not wait for it
            s.order.remove('sender-slack#1')
            codes = s.stop()
            self.assertTrue(all(code == 0 for code in codes.values()), codes)

    def test_scheduler_killed_and_restarted(self):
        with Stack() as s:
            w = World(s, SLOW_SCHEDULER)
            w.slow_down(100)
            cid = w.campaign()
            w.act(cid, 'schedule')
            w.wait(cid, lambda c: c['stats']['sent'] >= 10, 'first sends')
            s.kill('scheduler', 0, signal.SIGKILL)
            time.sleep(1)
            s.start('scheduler', env=SLOW_SCHEDULER)
            w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            self.check_once_at_most(w, cid)
            self.assertIn('leadership acquired', s.log('scheduler'))
            codes = s.stop()
            self.assertTrue(all(code == 0 for code in codes.values()), codes)

    def test_pause_and_resume(self):
        with Stack() as s:
            w = World(s, SLOW_SCHEDULER)
            w.slow_down(100)
            cid = w.campaign()
            w.act(cid, 'schedule')
            w.wait(cid, lambda c: c['stats']['sent'] >= 10, 'first sends')
            w.act(cid, 'pause')
            # What was handed out before the pause finishes within a lease; then
            # nothing more is sent while paused.
            time.sleep(3.5)
            before = sum(w.received().values())
            time.sleep(2)
            c = w.get(cid)
            self.assertEqual(c['status'], 'paused')
            self.assertEqual(sum(w.received().values()), before, 'sends continued while paused')
            self.assertGreater(c['stats']['pending'], 0, 'nothing left to resume')
            self.assertEqual(s.sql(f"SELECT count(*) FROM deliveries WHERE campaign_id = '{cid}'"
                                   " AND status = 'sending'")[0][0], '0')
            w.act(cid, 'resume')
            c = w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            deliveries = self.check_once_at_most(w, cid)
            self.assertEqual([r for r, (st, _) in deliveries.items() if st != 'sent'], [])
            self.assertEqual(c['stats']['sent'], len(w.expected))

    def test_standby_takes_over(self):
        with Stack() as s:
            w = World(s, SLOW_SCHEDULER)
            # A second scheduler on its own addresses: it must stay a standby.
            standby_env = dict(SLOW_SCHEDULER)
            for var in ('BCRM_SCHEDULER_WORK_SLACK_URL', 'BCRM_SCHEDULER_WORK_MESSENGER_URL',
                        'BCRM_SCHEDULER_RESULTS_URL', 'BCRM_SCHEDULER_QUERY_SLACK_URL',
                        'BCRM_SCHEDULER_QUERY_MESSENGER_URL'):
                standby_env[var] = f'tcp://127.0.0.1:{s.free_port()}'
            s.start('scheduler', 1, env=standby_env)
            time.sleep(2)
            self.assertEqual(is_leader(s, 0), 1)
            self.assertEqual(is_leader(s, 1), 0)
            s.kill('scheduler', 0, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while is_leader(s, 1) != 1:
                self.assertLess(time.monotonic(), deadline, 'the standby did not take over')
                time.sleep(0.2)
            self.assertIn('leadership acquired', s.log('scheduler', 1))
            # A clean stop hands leadership over at once and exits 0.
            self.assertEqual(s.kill('scheduler', 1, signal.SIGTERM), 0)

    def start_two_schedulers(self, s, users, scheduler_env):
        """Two schedulers on their own addresses, the first one leading; every sender
        dials both (URL lists). Returns the World, with users people at the simulator."""
        s.start_postgres()
        s.make_keys()
        urls = {}
        for var in ('BCRM_SCHEDULER_WORK_SLACK_URL', 'BCRM_SCHEDULER_WORK_MESSENGER_URL',
                    'BCRM_SCHEDULER_RESULTS_URL', 'BCRM_SCHEDULER_QUERY_SLACK_URL',
                    'BCRM_SCHEDULER_QUERY_MESSENGER_URL'):
            urls[var] = [s.env[var], f'tcp://127.0.0.1:{s.free_port()}']
        second = dict(scheduler_env, **{v: u[1] for v, u in urls.items()})
        both = {v: ','.join(u) for v, u in urls.items()}
        started = [s.start('slack-sim', env={'SLACK_SIM_USERS': str(users),
                                             'SLACK_SIM_SEED': str(SEED),
                                             'SLACK_SIM_WORKSPACES': '1'}, wait=False),
                   s.start('vault', wait=False),
                   s.start('scheduler', 0, env=scheduler_env, wait=False),
                   s.start('api', wait=False)]
        s.wait_ready(started)
        s.start('scheduler', 1, env=second)  # after the first: the standby
        started = [s.start('sender-slack', r, env=both, wait=False) for r in range(2)]
        started.append(s.start('sender-messenger', env=both, wait=False))
        s.wait_ready(started)
        w = World.__new__(World)
        World.attach(w, s)
        self.assertEqual(is_leader(s, 0), 1)
        self.assertEqual(is_leader(s, 1), 0)
        return w

    def wait_takeover(self, s):
        killed = time.monotonic()
        while is_leader(s, 1) != 1:
            self.assertLess(time.monotonic() - killed, 10, 'the standby did not take over')
            time.sleep(0.1)
        return time.monotonic() - killed

    def check_each_once_or_unknown(self, w, cid):
        """The promise, recipient by recipient: each one of the audience has exactly one
        delivery; a 'sent' one reached the simulator exactly once; an 'unknown' one
        (in flight when its scheduler died: its lease expired) at most once, and was
        never sent again; nobody else was messaged. Returns {recipient: status}."""
        rows = w.s.sql("SELECT recipient_id, status, last_error, platform_message_id"
                       f" FROM deliveries WHERE campaign_id = '{cid}'")
        self.assertEqual(len(rows), len({r[0] for r in rows}), 'a recipient twice in a run')
        self.assertEqual({r[0] for r in rows}, set(w.expected), 'recipients missed or added')
        received = w.received()
        self.assertTrue(set(received) <= set(w.expected), 'messages to outsiders')
        self.assertEqual({r: n for r, n in received.items() if n > 1}, {},
                         'recipients messaged more than once')
        statuses = {}
        for recipient, status, error, pmid in rows:
            statuses[recipient] = status
            if status == 'sent':
                self.assertEqual(received.get(recipient), 1, (recipient, 'sent, not received'))
                self.assertTrue(pmid, recipient)
            else:
                self.assertEqual((status, error), ('unknown', 'lease_expired'), recipient)
                self.assertLessEqual(received.get(recipient, 0), 1, recipient)
        return statuses

    def test_leader_killed_standby_finishes(self):
        """Two schedulers on their own addresses; every sender dials both (a URL list).
        The leader is SIGKILLed mid-campaign (2000 recipients, a few hundred sent): the
        standby takes over within seconds and finishes the campaign; every recipient
        is sent exactly once, or, held by the dead leader's last claim, 'unknown' and
        then received at most once; nobody is missed, nobody gets two messages."""
        users = 2000
        env = dict(SLOW_SCHEDULER, BCRM_SCHEDULER_MAX_IN_FLIGHT='32', BCRM_SCHEDULER_BATCH='16',
                   BCRM_SLACK_RATE_PER_MINUTE='0')
        with Stack() as s:
            w = self.start_two_schedulers(s, users, env)
            w.slow_down(50)
            cid = w.campaign()
            w.act(cid, 'schedule')
            w.wait(cid, lambda c: c['stats']['sent'] >= 400, 'first sends')
            s.kill('scheduler', 0, signal.SIGKILL)
            sent_at_kill = int(s.sql("SELECT count(*) FROM deliveries WHERE campaign_id ="
                                     f" '{cid}' AND status = 'sent'")[0][0])
            self.assertLess(sent_at_kill, len(w.expected) - 200, 'the kill came too late')
            took_over = self.wait_takeover(s)
            c = w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            statuses = self.check_each_once_or_unknown(w, cid)
            unknown = [r for r, st in statuses.items() if st == 'unknown']
            # Only what the dead leader had out at the kill can be unknown.
            self.assertLessEqual(len(unknown), int(env['BCRM_SCHEDULER_MAX_IN_FLIGHT']))
            self.assertEqual(c['stats']['sent'] + c['stats']['unknown'], len(w.expected),
                             c['stats'])
            self.assertEqual(c['stats']['total'], len(w.expected), c['stats'])
            self.assertGreater(c['stats']['sent'], sent_at_kill, 'the standby sent nothing')
            status, _, stats = s.sim('GET', '/_sim/stats')
            self.assertEqual(stats.get('duplicates'), 0, stats)
            print(f'\n  takeover in {took_over:.2f}s; sent at the kill {sent_at_kill}; '
                  f'unknown {len(unknown)} (received: '
                  f'{sum(1 for r in unknown if r in w.received())})', file=sys.stderr)
            del s.procs['scheduler']
            s.order.remove('scheduler')

    def test_leader_killed_while_loading(self):
        """The leader is SIGKILLed while it reads a 2000-user audience page by page: the
        standby resumes at the run's saved audience_cursor (the first page is not read
        again, at most the page in flight at the kill is), writes each recipient once
        (unique (run, recipient)), and the campaign reaches everyone exactly once."""
        users = 2000
        env = dict(SLOW_SCHEDULER, BCRM_SCHEDULER_PAGE_SIZE='20', BCRM_SCHEDULER_MAX_IN_FLIGHT='64',
                   BCRM_SCHEDULER_BATCH='32', BCRM_SLACK_RATE_PER_MINUTE='0')
        with Stack() as s:
            w = self.start_two_schedulers(s, users, env)
            w.slow_down(60)  # ~100 pages of users.list, ~60 ms each
            s.sim('DELETE', '/_sim/requests')
            cid = w.campaign(text='Hello!')
            w.act(cid, 'schedule')
            deadline = time.monotonic() + 60
            while True:
                loaded = int(s.sql(f"SELECT count(*) FROM deliveries WHERE campaign_id = '{cid}'")
                             [0][0])
                if loaded >= 400:
                    break
                self.assertLess(time.monotonic(), deadline, 'the audience did not load')
                time.sleep(0.05)
            s.kill('scheduler', 0, signal.SIGKILL)
            killed_ms = time.time() * 1000
            run = s.sql("SELECT id, status, audience_cursor FROM campaign_runs"
                        f" WHERE campaign_id = '{cid}'")
            self.assertEqual(len(run), 1, run)
            run_id, run_status, cursor_at_kill = run[0]
            self.assertEqual(run_status, 'loading', 'the kill came after the last page')
            self.assertTrue(cursor_at_kill, 'no cursor saved between pages')
            loaded_at_kill = int(s.sql("SELECT count(*) FROM deliveries"
                                       f" WHERE run_id = '{run_id}'")[0][0])
            self.assertLess(loaded_at_kill, len(w.expected) - 200, 'the kill came too late')
            self.wait_takeover(s)
            w.wait(cid, lambda c: c['status'] in ('running', 'completed'), 'loaded run')
            w.slow_down(0)
            c = w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            counts = s.sql("SELECT count(*), count(DISTINCT recipient_id) FROM deliveries"
                           f" WHERE run_id = '{run_id}'")[0]
            self.assertEqual(counts, (str(len(w.expected)), str(len(w.expected))))
            statuses = self.check_each_once_or_unknown(w, cid)
            self.assertEqual(set(statuses.values()), {'sent'}, 'nothing was in flight')
            self.assertEqual(c['stats']['sent'], len(w.expected))

            # The pages as slack-sim received them: one pass, the first page read once;
            # after the kill, the standby's first page is the one at the saved cursor.
            status, _, body = s.sim('GET', '/_sim/requests?method=users.list')
            self.assertEqual(status, 200, body)
            pages = [r for r in as_list(body, 'requests') if r.get('method') == 'users.list']
            cursors = [(r.get('body') or {}).get('cursor') or (r.get('query') or {}).get('cursor')
                       for r in pages]
            self.assertEqual(sum(1 for c_ in cursors if not c_), 1, 'the audience was read again')
            after = [cur for r, cur in zip(pages, cursors) if r['at_ms'] > killed_ms]
            self.assertTrue(after, 'the standby read no page')
            self.assertEqual(after[0], cursor_at_kill, 'the standby did not resume at the cursor')
            # Only the page in flight at the kill may have been asked for twice.
            self.assertGreaterEqual(len(set(cursors)), len(pages) - 1, 'pages read again')
            self.assertGreaterEqual(len(pages), users // 20)
            del s.procs['scheduler']
            s.order.remove('scheduler')

    def test_pause_resume_three_times_10k(self):
        """A 10,000-recipient campaign paused and resumed three times while it runs:
        once the sends that were already out at each pause are answered, nothing more
        is sent until the resume, and in the end each user received exactly one
        message."""
        with Stack() as s:
            global USERS
            saved, USERS = USERS, 10000
            try:
                w = World(s, {'BCRM_SLACK_RATE_PER_MINUTE': '60000', 'BCRM_SLACK_BURST': '50',
                              'BCRM_SCHEDULER_LEASE': '20s'}, sender_replicas=2,
                          sim_env={'SLACK_SIM_THREADS': '64'})
            finally:
                USERS = saved
            w.slow_down(50)
            cid = w.campaign(text='Hello!')
            w.act(cid, 'schedule')
            for cycle in range(3):
                w.wait(cid, lambda c: c['stats']['sent'] >= 1500 * (cycle + 1), 'sends',
                       timeout=180)
                w.act(cid, 'pause')
                # What the senders already had goes out; nothing is claimed after it.
                wait_until(f'no delivery still sending after pause {cycle}',
                           lambda: s.sql("SELECT count(*) FROM deliveries"
                                         f" WHERE campaign_id = '{cid}' AND status = 'sending'"),
                           lambda rows: int(rows[0][0]) == 0, timeout=60)
                before = w.sim_total()
                time.sleep(1.5)
                self.assertEqual(w.sim_total(), before, f'sends continued while paused ({cycle})')
                self.assertEqual(w.get(cid)['status'], 'paused')
                w.act(cid, 'resume')
            c = w.wait(cid, lambda c: c['status'] == 'completed', 'completion', timeout=300)
            self.assertEqual(c['stats']['sent'], len(w.expected), c['stats'])
            received = w.received()
            self.assertEqual(set(received), set(w.expected))
            self.assertEqual({n for n in received.values()}, {1})
            status, _, stats = s.sim('GET', '/_sim/stats')
            self.assertEqual(stats.get('duplicates'), 0, stats)

    def test_local_time_due_instants(self):
        with Stack() as s:
            # Two days ahead, so no zone's 09:00 has passed (if_passed never applies).
            w = World(s, {'BCRM_SCHEDULER_LOAD_AHEAD': '72h'}, sender_replicas=1)
            day = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).date()
            fallback = 'America/New_York'
            cid = w.campaign({'mode': 'local', 'date': day.isoformat(), 'time': '09:00',
                              'fallback_tz': fallback, 'if_passed': 'skip'})
            w.act(cid, 'schedule')
            c = w.wait(cid, lambda c: c['status'] == 'running', 'loaded run', timeout=60)
            rows = s.sql("SELECT recipient_id, (extract(epoch FROM due_at))::bigint, status"
                         f" FROM deliveries WHERE campaign_id = '{cid}'")
            got = {r[0]: int(r[1]) for r in rows}
            self.assertEqual({r[2] for r in rows}, {'pending'})
            self.assertEqual(set(got), set(w.expected))
            zones_seen = set()
            for uid, user in w.expected.items():
                tz = user.get('tz') or fallback
                try:
                    zone = zoneinfo.ZoneInfo(tz)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    zone = zoneinfo.ZoneInfo(fallback)
                zones_seen.add(tz)
                want = datetime.datetime.combine(day, datetime.time(9, 0), tzinfo=zone)
                self.assertEqual(got[uid], int(want.timestamp()), (uid, tz))
            self.assertGreater(len(zones_seen), 5, 'the population has too few zones')
            first = min(got.values())
            self.assertEqual(c.get('first_due_at', '')[:19],
                             datetime.datetime.fromtimestamp(first, datetime.timezone.utc)
                             .strftime('%Y-%m-%dT%H:%M:%S'))
            # Nothing is due yet: nothing was sent.
            self.assertEqual(w.received(), {})


if __name__ == '__main__':
    unittest.main(verbosity=2)
