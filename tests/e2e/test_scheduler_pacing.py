#!/usr/bin/python3
"""System tests of the scheduler's pacing, send windows, staleness and live audiences.

Real processes against slack-sim:

* paced at Slack's published rate with the simulator's limits on: at least 95% of the
  allowed rate, no 429;
* a 429 storm pauses the bot (Retry-After honoured, few requests while it lasts, the
  429s not counted as attempts) and the campaign then finishes, once per person;
* a small campaign is not starved by a huge one of the same bot;
* send windows: a delivery due outside the recipient's window waits for its opening,
  with the expected instant computed here by zoneinfo for every recipient;
* after an outage, stale campaigns are not fired: past max_lateness_minutes, or past
  the default staleness bound when a campaign sets none;
* the audience is read live shortly before the send: people who joined after the
  campaign was scheduled are in, people who left are out; a local-time run spread
  over zones is read in passes, none earlier than the load-ahead before its recipients.
"""
import datetime
import os
import re
import signal
import sys
import time
import unittest
import zoneinfo

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_scheduler import World, as_list  # noqa: E402
from stack import Stack  # noqa: E402  (test_scheduler put scripts/ on the path)

TIMEOUT_S = float(os.environ.get('BCRM_E2E_CAMPAIGN_TIMEOUT', '120'))


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class Paced(World):
    """World with the simulator's environment open to the test."""

    def __init__(self, stack, scheduler_env=None, sim_env=None, users=150, sender_replicas=1):
        import test_scheduler
        saved = test_scheduler.USERS
        test_scheduler.USERS = users
        try:
            super().__init__(stack, scheduler_env, sender_replicas, sim_env)
        finally:
            test_scheduler.USERS = saved

    def messages(self):
        status, _, body = self.s.sim('GET', f'/_sim/messages?team_id={self.team_id}')
        assert status == 200, body
        return as_list(body, 'messages')

    def stats(self):
        status, _, body = self.s.sim('GET', '/_sim/stats')
        assert status == 200, body
        return body

    def campaign_full(self, **fields):
        body = {'name': 'pacing test', 'bot_id': self.bot, 'message': {'text': 'Hello!'},
                'audience': {'filter': {'all': True}}, 'schedule': {'mode': 'now'}}
        body.update(fields)
        status, _, c = self.s.api('POST', f'/v1/orgs/{self.org}/campaigns', body)
        assert status == 201, c
        return c['id']

    def metric(self, name_prefix, replica=0):
        status, _, text = self.s.ops('scheduler', '/metrics', replica)
        assert status == 200, text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name_prefix):
                total += float(line.split()[-1])
        return total


class PacingTest(unittest.TestCase):
    def assert_once_each(self, w, cid, allowed=('sent',)):
        deliveries = w.deliveries(cid)
        received = w.received()
        doubles = {r: n for r, n in received.items() if n > 1}
        self.assertEqual(doubles, {}, 'recipients messaged more than once')
        for recipient, (status, error) in deliveries.items():
            self.assertIn(status, allowed, (recipient, status, error))
            if status == 'sent':
                self.assertEqual(received.get(recipient), 1, recipient)
        return deliveries

    def test_paced_at_the_published_rate(self):
        """Simulator limits on (600/min per workspace, 1/s per channel with a burst of 3);
        the scheduler paces at its defaults (600/min, burst 10)."""
        with Stack() as s:
            w = Paced(s, sim_env={'SLACK_SIM_LIMITS': 'on'}, users=300)
            cid = w.campaign_full()
            w.act(cid, 'schedule')
            w.wait(cid, lambda c: c['status'] == 'completed', 'completion', timeout=180)
            self.assert_once_each(w, cid)
            msgs = w.messages()
            n = len(msgs)
            self.assertEqual(n, len(w.expected))
            arrivals = sorted(m['arrival_ms'] for m in msgs)
            # After the burst, the steady rate: (messages - burst) over the time taken.
            steady = arrivals[10:]
            rate = (len(steady) - 1) / ((steady[-1] - steady[0]) / 1000.0)
            allowed = 600 / 60.0
            print(f'\n  paced: {n} messages, steady {rate:.2f}/s of {allowed:.0f}/s allowed '
                  f'({100 * rate / allowed:.1f}%), 429s: {w.stats().get("ratelimited")}',
                  file=sys.stderr)
            self.assertGreaterEqual(rate, 0.95 * allowed)
            self.assertLessEqual(rate, 1.02 * allowed)
            self.assertEqual(w.stats().get('ratelimited'), 0)

    def test_retry_after_pauses_the_bot(self):
        with Stack() as s:
            w = Paced(s, scheduler_env={'BCRM_SLACK_RATE_PER_MINUTE': '3000',
                                        'BCRM_SLACK_BURST': '5'})
            cid = w.campaign_full()
            w.act(cid, 'schedule')
            w.wait(cid, lambda c: c['stats']['sent'] >= 20, 'first sends')
            status, _, body = s.sim('POST', '/_sim/faults', {'ratelimit_storm_seconds': 4})
            self.assertEqual(status, 200, body)
            storm_start = time.time()
            time.sleep(0.5)
            requests_before = w.stats().get('ratelimited', 0)
            time.sleep(3)
            limited_during = w.stats().get('ratelimited', 0) - requests_before
            # Paused on the first 429s: only the few already in flight were refused
            # after that, not one request per delivery.
            self.assertLessEqual(limited_during, 10, 'the bot kept sending into the storm')
            self.assertGreaterEqual(w.metric('bcrm_scheduler_bot_pauses_total'), 1)
            rows = s.sql(f"SELECT count(*) FROM scheduler_bot_pauses WHERE bot_id = '{w.bot}'")
            self.assertEqual(rows[0][0], '1')
            c = w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            deliveries = self.assert_once_each(w, cid)
            self.assertEqual(c['stats']['sent'], len(w.expected))
            # 429s are not counted as attempts.
            attempts = s.sql(f"SELECT max(attempts) FROM deliveries WHERE campaign_id = '{cid}'")
            self.assertEqual(attempts[0][0], '1')
            late = [m for m in w.messages() if storm_start + 0.2 < m['arrival_ms'] / 1000.0
                    < storm_start + 3.8]
            self.assertEqual(late, [], 'messages accepted during the storm?')
            self.assertEqual(len(deliveries), len(w.expected))

    def test_small_campaign_not_starved(self):
        with Stack() as s:
            w = Paced(s)  # paced at 10/s: the big campaign lasts ~15 s
            big = w.campaign_full()
            w.act(big, 'schedule')
            w.wait(big, lambda c: c['stats']['sent'] >= 10, 'first sends')
            few = sorted(w.expected)[:3]
            small = w.campaign_full(audience={'filter': {'user_ids': few}})
            t0 = time.monotonic()
            w.act(small, 'schedule')
            w.wait(small, lambda c: c['status'] == 'completed', 'small campaign', timeout=30)
            took = time.monotonic() - t0
            self.assertLess(took, 5, 'the small campaign waited for the big one')
            self.assertEqual(w.get(big)['status'], 'running', 'the big one should still run')
            w.wait(big, lambda c: c['status'] == 'completed', 'big campaign')

    def test_send_window_holds_until_the_opening(self):
        with Stack() as s:
            w = Paced(s, scheduler_env={'BCRM_SLACK_RATE_PER_MINUTE': '0'})
            now = utc_now()
            # A one-hour window starting 30 minutes ago in UTC wall time: open now for
            # recipients at UTC+00, closed (opening later) for most other zones.
            start = (now - datetime.timedelta(minutes=30)).replace(second=0, microsecond=0)
            end = start + datetime.timedelta(hours=1)
            window = {'start': start.strftime('%H:%M'), 'end': end.strftime('%H:%M')}
            cid = w.campaign_full(send_window=window)
            w.act(cid, 'schedule')
            w.wait(cid, lambda c: c['status'] in ('running', 'completed'), 'loaded run')
            time.sleep(3)
            rows = s.sql("SELECT recipient_id, (extract(epoch FROM due_at) * 1000)::bigint,"
                         " (extract(epoch FROM next_attempt_at))::bigint, status"
                         f" FROM deliveries WHERE campaign_id = '{cid}'")
            got = {r[0]: (int(r[1]), int(r[2]) if r[2] else None, r[3]) for r in rows}
            self.assertEqual(set(got), set(w.expected))
            inside = set()
            for uid, user in w.expected.items():
                due_ms, next_at, status = got[uid]
                tz = user.get('tz') or 'UTC'
                try:
                    zone = zoneinfo.ZoneInfo(tz)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    zone = zoneinfo.ZoneInfo('UTC')
                due = datetime.datetime.fromtimestamp(due_ms / 1000, zone)
                opening = None
                for k in range(-1, 3):
                    day = due.date() + datetime.timedelta(days=k)
                    o = datetime.datetime.combine(day, start.time(), tzinfo=zone)
                    c = o + (datetime.datetime.combine(day, end.time(), tzinfo=zone) - o) % \
                        datetime.timedelta(days=1)
                    if c.timestamp() > due.timestamp():
                        opening = o
                        break
                if opening.timestamp() <= due.timestamp():
                    inside.add(uid)
                    self.assertIsNone(next_at, (uid, tz))
                    self.assertEqual(status, 'sent', (uid, tz))
                else:
                    self.assertEqual(next_at, int(opening.timestamp()), (uid, tz))
                    self.assertEqual(status, 'pending', (uid, tz))
            self.assertGreater(len(inside), 0)
            self.assertGreater(len(w.expected) - len(inside), 0)
            self.assertEqual(set(w.received()), inside, 'sent outside the window')

    def test_stale_campaigns_not_fired_after_outage(self):
        with Stack() as s:
            w = Paced(s, scheduler_env={'BCRM_SLACK_RATE_PER_MINUTE': '0'})
            ids = sorted(w.expected)
            at = (utc_now() + datetime.timedelta(minutes=10)).strftime('%Y-%m-%dT%H:%M:%SZ')
            groups = {'stale': ids[0:3], 'too_late': ids[3:6], 'in_time': ids[6:9]}
            cids = {}
            for name, users in groups.items():
                extra = {} if name == 'stale' else {'max_lateness_minutes': 120}
                cids[name] = w.campaign_full(audience={'filter': {'user_ids': users}},
                                             schedule={'mode': 'at', 'at': at}, **extra)
                w.act(cids[name], 'schedule')
            for cid in cids.values():
                w.wait(cid, lambda c: c['status'] == 'running', 'loaded run')
            # The outage: the scheduler dies, and when it comes back the due times lie in
            # the past (two days, three hours, half an hour).
            s.kill('scheduler', 0, signal.SIGKILL)
            shifts = {'stale': '2 days', 'too_late': '3 hours', 'in_time': '30 minutes'}
            for name, cid in cids.items():
                s.sql(f"UPDATE deliveries SET due_at = now() - interval '{shifts[name]}'"
                      f" WHERE campaign_id = '{cid}'")
            s.start('scheduler', env={'BCRM_SLACK_RATE_PER_MINUTE': '0'})
            for cid in cids.values():
                w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            expect = {'stale': ('skipped', 'stale'), 'too_late': ('skipped', 'max_lateness'),
                      'in_time': ('sent', None)}
            for name, cid in cids.items():
                for recipient, state in w.deliveries(cid).items():
                    self.assertEqual(state, expect[name], (name, recipient))
            self.assertEqual(set(w.received()), set(groups['in_time']))

    def test_audience_read_live_before_the_send(self):
        with Stack() as s:
            w = Paced(s, scheduler_env={'BCRM_SCHEDULER_LOAD_AHEAD': '15s',
                                        'BCRM_SLACK_RATE_PER_MINUTE': '0'})
            ids = sorted(w.expected)
            joiner, leaver = ids[0], ids[1]
            status, _, body = s.sim('POST', '/_sim/membership', {'leave': [joiner]})
            self.assertEqual(status, 200, body)
            at_dt = utc_now() + datetime.timedelta(seconds=25)
            cid = w.campaign_full(schedule={'mode': 'at',
                                            'at': at_dt.strftime('%Y-%m-%dT%H:%M:%SZ')})
            w.act(cid, 'schedule')
            time.sleep(2)
            self.assertEqual(s.sql(f"SELECT count(*) FROM campaign_runs"
                                   f" WHERE campaign_id = '{cid}'")[0][0], '0',
                             'the audience must not be read this early')
            # After scheduling, before the read: one joins, one leaves.
            status, _, body = s.sim('POST', '/_sim/membership',
                                    {'join': [joiner], 'leave': [leaver]})
            self.assertEqual(status, 200, body)
            w.wait(cid, lambda c: c['status'] == 'completed', 'completion', timeout=90)
            deliveries = w.deliveries(cid)
            self.assertIn(joiner, deliveries)
            self.assertNotIn(leaver, deliveries)
            self.assertEqual(set(deliveries), set(w.expected) - {leaver})
            created = float(s.sql("SELECT extract(epoch FROM created_at) FROM campaign_runs"
                                  f" WHERE campaign_id = '{cid}'")[0][0])
            self.assertGreaterEqual(created, at_dt.replace(microsecond=0).timestamp() - 16)
            self.assert_once_each(w, cid)

    def test_local_run_read_in_passes(self):
        with Stack() as s:
            w = Paced(s, scheduler_env={'BCRM_SCHEDULER_LOAD_AHEAD': '60s',
                                        'BCRM_SCHEDULER_LOAD_PASS': '2s',
                                        'BCRM_SLACK_RATE_PER_MINUTE': '0'})
            now = utc_now()
            # 09:00-like wall time that UTC reaches in 30 to 90 seconds.
            target = (now + datetime.timedelta(seconds=90)).replace(second=0, microsecond=0)
            if (target - now).total_seconds() < 30:
                target += datetime.timedelta(minutes=1)
            cid = w.campaign_full(schedule={'mode': 'local', 'date': target.date().isoformat(),
                                            'time': target.strftime('%H:%M'),
                                            'fallback_tz': 'UTC', 'if_passed': 'skip'})
            w.act(cid, 'schedule')
            w.wait(cid, lambda c: c['status'] == 'running', 'first pass', timeout=60)
            time.sleep(5)
            self.assertGreaterEqual(len(re.findall('audience pass started', s.log('scheduler'))),
                                    2, 'passes every 2 s')
            run = s.sql("SELECT status, (extract(epoch FROM loaded_until))::bigint,"
                        " (extract(epoch FROM created_at))::bigint FROM campaign_runs"
                        f" WHERE campaign_id = '{cid}'")[0]
            self.assertEqual(run[0], 'loading', 'zones far west are due hours later')
            rows = s.sql("SELECT recipient_id, (extract(epoch FROM due_at))::bigint, status"
                         f" FROM deliveries WHERE campaign_id = '{cid}'")
            # Nobody read more than the load-ahead (60 s) before their due time.
            for recipient, due, status in rows:
                self.assertLessEqual(int(due), int(run[1]), recipient)
            loaded = {r[0] for r in rows}
            for uid, user in w.expected.items():
                tz = user.get('tz')
                try:
                    zone = zoneinfo.ZoneInfo(tz) if tz else datetime.timezone.utc
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    zone = datetime.timezone.utc
                due = datetime.datetime.combine(target.date(), target.time(), tzinfo=zone)
                if due.timestamp() > int(run[1]):
                    self.assertNotIn(uid, loaded, (uid, tz))
                elif due.timestamp() > int(run[2]) - 1:
                    self.assertIn(uid, loaded, (uid, tz))
            self.assertTrue(any((u.get('tz') or 'UTC') in ('UTC', 'Etc/UTC', 'Europe/London')
                                or not u.get('tz') for u in w.expected.values()))


if __name__ == '__main__':
    unittest.main(verbosity=2)
