#!/usr/bin/python3
"""System tests of the scheduler's audiences: segments and members_of.

Real processes against slack-sim:

* a campaign made from a segment ({"segment_id": S}, stored with the segment's filter
  copied in) runs to completed and reaches exactly the segment's users, once each;
* a members_of campaign reads the members of its channels page by page
  (conversations.members, through the sender), combines them with the other
  conditions, and reaches exactly those of the simulator's channel members that the
  conditions take; a channel the bot cannot see adds nobody;
* a members_of audience larger than BCRM_SCHEDULER_MEMBERS_MAX is refused with an error
  naming the bound, and nothing is sent; the campaign's answer says so in "problem",
  naming the variable; after a restart with room, the same run loads and the problem
  is gone.
"""
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_scheduler import as_list  # noqa: E402
from test_scheduler_pacing import Paced  # noqa: E402
from stack import Stack  # noqa: E402  (test_scheduler put scripts/ on the path)

FAST = {'BCRM_SLACK_RATE_PER_MINUTE': '0'}


class AudienceTest(unittest.TestCase):
    def assert_reached_exactly(self, w, cid, recipients):
        """Every recipient has one 'sent' delivery and got one message; nobody else
        has a delivery or a message."""
        deliveries = w.deliveries(cid)
        self.assertEqual(set(deliveries), recipients, 'deliveries differ from the audience')
        self.assertEqual({st for st, _ in deliveries.values()}, {'sent'}, deliveries)
        received = w.received()
        self.assertEqual(set(received), recipients, 'messages differ from the audience')
        self.assertEqual(set(received.values()), {1}, 'someone got two messages')

    def test_campaign_from_a_segment(self):
        with Stack() as s:
            w = Paced(s, scheduler_env=FAST)
            zones = sorted({u['tz'] for u in w.expected.values() if u.get('tz')})[:4]
            filter_ = {'timezones': zones, 'is_admin': False}
            status, _, seg = s.api('POST', f'/v1/orgs/{w.org}/segments',
                                   {'name': 'zones', 'bot_id': w.bot, 'filter': filter_})
            self.assertEqual(status, 201, seg)
            cid = w.campaign_full(audience={'segment_id': seg['id']})
            self.assertEqual(w.get(cid)['audience'], {'segment_id': seg['id'], 'filter': filter_})
            w.act(cid, 'schedule')
            c = w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            members = {uid for uid, u in w.expected.items()
                       if u.get('tz') in zones and not (u.get('is_admin') or u.get('is_owner'))}
            self.assertGreater(len(members), 3, 'the segment is too small to show anything')
            self.assertLess(len(members), len(w.expected))
            self.assert_reached_exactly(w, cid, members)
            self.assertEqual(c['stats']['sent'], len(members))
            self.assertNotIn('cannot be loaded', s.log('scheduler'))

    def test_members_of(self):
        with Stack() as s:
            # Pages of 20: the channels' members come in several pages each. A bound of
            # 10 members first, too few for these channels.
            w = Paced(s, scheduler_env=dict(FAST, BCRM_SCHEDULER_PAGE_SIZE='20',
                                            BCRM_SCHEDULER_MEMBERS_MAX='10'))
            status, _, body = s.sim('GET', f'/_sim/channels?team_id={w.team_id}')
            self.assertEqual(status, 200, body)
            channels = {c['name']: c for c in as_list(body, 'channels')}
            announcements, private = channels['announcements'], channels['sim-private']
            invisible = channels['secret-elsewhere']  # private, the bot is not in it
            self.assertFalse(invisible['bot_member'])
            filter_ = {'members_of': [announcements['id'], private['id'], invisible['id']],
                       'is_admin': False}
            members = set(announcements['members']) | set(private['members'])
            want = {uid for uid, u in w.expected.items()
                    if uid in members and not (u.get('is_admin') or u.get('is_owner'))}
            self.assertGreater(len(want), 20)
            self.assertLess(len(want), len(w.expected))
            # The invisible channel's members count only through the others.
            self.assertTrue(set(invisible['members']) - members, 'nothing to leave out')

            s.sim('DELETE', '/_sim/requests')
            cid = w.campaign_full(audience={'filter': filter_})
            w.act(cid, 'schedule')
            log = ''
            for _ in range(100):
                log = s.log('scheduler')
                if 'the channels have more than 10 members' in log:
                    break
                time.sleep(0.1)
            self.assertIn('audience.filter.members_of: the channels have more than 10 members',
                          log)
            self.assertIn('BCRM_SCHEDULER_MEMBERS_MAX', log)
            self.assertEqual(w.deliveries(cid), {})
            # The owner sees why through the API, not only in the scheduler's log.
            c = w.wait(cid, lambda c: c.get('problem'), 'the campaign naming its problem')
            self.assertEqual(c['status'], 'scheduled')
            self.assertIn('audience.filter.members_of: the channels have more than 10 members',
                          c['problem'])
            self.assertIn('BCRM_SCHEDULER_MEMBERS_MAX', c['problem'])
            status, _, listed = s.api('GET', f'/v1/orgs/{w.org}/campaigns')
            self.assertEqual(status, 200, listed)
            self.assertEqual([x['problem'] for x in listed['campaigns'] if x['id'] == cid],
                             [c['problem']])

            # Room for them after a restart: the run loads and runs.
            s.kill('scheduler', 0, signal.SIGTERM)
            s.start('scheduler', env=dict(FAST, BCRM_SCHEDULER_PAGE_SIZE='20'))
            c = w.wait(cid, lambda c: c['status'] == 'completed', 'completion')
            self.assert_reached_exactly(w, cid, want)
            self.assertEqual(c['stats']['sent'], len(want))
            self.assertIsNone(c['problem'])
            self.assertIn('members_of channel not visible', s.log('scheduler'))

            # Members were read page by page through the sender: every page of each
            # visible channel, each one 20 at a time.
            status, _, body = s.sim('GET', '/_sim/requests?method=conversations.members'
                                           '&limit=1000')
            self.assertEqual(status, 200, body)
            calls = [r for r in as_list(body, 'requests')
                     if r.get('method') == 'conversations.members']
            by_channel = {}
            for r in calls:
                args = r.get('body') or {}
                self.assertEqual(str(args.get('limit')), '20', r)
                by_channel.setdefault(args.get('channel'), []).append(args.get('cursor'))
            for ch in (announcements, private):
                pages = by_channel.get(ch['id'], [])
                # After the restart each channel is read once, whole: a first page
                # (no cursor) and one page per 20 members after it.
                self.assertGreaterEqual(len(pages), (len(ch['members']) + 19) // 20, ch['name'])
                self.assertGreater(len([p for p in pages if p]), 0, ch['name'])
            self.assertIn(invisible['id'], by_channel)


if __name__ == '__main__':
    unittest.main(verbosity=2)
