#!/usr/bin/python3
"""The walking skeleton's acceptance test: one campaign, end to end, real processes.

PostgreSQL, the vault, the scheduler, the api, two sender-slack replicas, one
sender-messenger (pointed at a closed port: no Messenger here) and the Slack
simulator with a generated workspace. A person signs
up, connects the workspace's bot, and sends a campaign to everyone, now. Then:

* every reachable user (not a bot, not deleted; at least 200 of them) got exactly one
  message, rendered
  for them, and nobody else got any; the simulator saw no duplicate;
* the campaign is completed with stats total = sent = N and nothing pending,
  failed or unknown;
* a dump of the database holds neither the bot token (raw, hex, base64) nor any
  user's name, real name or email (design.md: never stored); no log holds them
  either;
* SIGTERM drains every service and each exits 0.
"""
import base64
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402
from e2e_helpers import (connect_bot, create_campaign, schedule_campaign, signup,  # noqa: E402
                         wait_campaign)

# Generated users: some are bots or deleted, so 220 give more than 200 people to reach.
USERS = 220
AUDIENCE_AT_LEAST = 200
SEED = 20261210
CAMPAIGN_TIMEOUT_S = float(os.environ.get('BCRM_E2E_CAMPAIGN_TIMEOUT', '120'))
TEXT = 'Hello {{first_name|there}}, this is the e2e campaign.'


def as_list(body, key):
    """The list under key in a JSON answer, or the answer itself if it is a list."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return body[key]
    raise AssertionError(f'expected a list under "{key}", got {str(body)[:300]}')


def is_reachable(user):
    """The audience of {"all": true}: people (not bots, not Slackbot, whatever its
    is_bot says), not deleted."""
    return (user.get('kind', 'person') == 'person' and not user.get('is_bot')
            and not user.get('deleted') and user.get('id') != 'USLACKBOT')


def profile_values(user):
    """The profile data of a user that bcrm must never store: the simulator puts a
    unique marker into each of these."""
    profile = user.get('profile') or {}
    values = [user.get(k) for k in ('name', 'real_name', 'last_name', 'display_name', 'email',
                                     'marker')]
    values += [profile.get(k) for k in ('email', 'real_name', 'display_name')]
    # Short values (a one-letter display name) would match by accident.
    return {v for v in values if isinstance(v, str) and len(v) >= 6}


def first_name(user):
    profile = user.get('profile') or {}
    return user.get('first_name') or profile.get('first_name') or ''


def message_recipient(msg, dm_to_user):
    """The user a message recorded by the simulator went to."""
    for key in ('user', 'user_id', 'recipient'):
        if isinstance(msg.get(key), str) and msg[key].startswith('U'):
            return msg[key]
    channel = msg.get('channel') or msg.get('channel_id') or ''
    return dm_to_user.get(channel, channel)


class CampaignEndToEnd(unittest.TestCase):
    def test_campaign_to_everyone_now(self):
        with Stack() as s:
            s.start_postgres()
            s.make_keys()
            s.start_all(sender_replicas=2, messenger_replicas=1, sim_env={
                'SLACK_SIM_USERS': str(USERS), 'SLACK_SIM_SEED': str(SEED),
                'SLACK_SIM_WORKSPACES': '1'}, messenger_sim=False)

            # The population, as the test alone may see it.
            status, _, body = s.sim('GET', '/_sim/workspaces')
            self.assertEqual(status, 200, body)
            workspace = as_list(body, 'workspaces')[0]
            token = workspace.get('bot_token') or workspace.get('token')
            team_id = workspace.get('team_id') or workspace.get('id')
            self.assertTrue(token and token.startswith('xoxb-'), workspace)
            status, _, body = s.sim('GET', f'/_sim/users?team_id={team_id}')
            self.assertEqual(status, 200, body)
            population = as_list(body, 'users')
            expected = {u['id']: u for u in population if is_reachable(u)}
            self.assertGreaterEqual(len(expected), AUDIENCE_AT_LEAST, 'too few reachable users')
            self.assertLess(len(expected), len(population), 'no bot or deleted user')
            dm_to_user = {u['dm_id']: u['id'] for u in population if u.get('dm_id')}

            # A person signs up and connects the bot.
            org = signup(s, 'E2E Owner', 'owner@e2e.bcrm.test', 'E2E Agency')
            bot = connect_bot(s, org, 'slack', token)
            self.assertEqual(bot.get('team_id'), team_id, bot)
            self.assertNotIn(token, str(bot))

            path, campaign = create_campaign(s, org, {
                'name': 'E2E to everyone', 'bot_id': bot['id'], 'message': {'text': TEXT},
                'audience': {'filter': {'all': True}}, 'schedule': {'mode': 'now'}})
            self.assertEqual(campaign['status'], 'draft')
            schedule_campaign(s, path)
            campaign = wait_campaign(s, path, CAMPAIGN_TIMEOUT_S)

            n = len(expected)
            stats = campaign['stats']
            self.assertEqual((stats['total'], stats['sent'], stats['pending'], stats['failed'],
                              stats['unknown']), (n, n, 0, 0, 0), stats)

            # What the platform received: one message per reachable user.
            status, _, body = s.sim('GET', f'/_sim/messages?team_id={team_id}')
            self.assertEqual(status, 200, body)
            messages = as_list(body, 'messages')
            received = {}
            for msg in messages:
                received.setdefault(message_recipient(msg, dm_to_user), []).append(msg)
            self.assertEqual(set(received), set(expected),
                             'recipients differ from the reachable users')
            for user_id, msgs in received.items():
                self.assertEqual(len(msgs), 1, f'{user_id} got {len(msgs)} messages')
                want = f'Hello {first_name(expected[user_id]) or "there"}, this is the e2e ' \
                       'campaign.'
                self.assertEqual(msgs[0].get('text'), want)
            status, _, sim_stats = s.sim('GET', '/_sim/stats')
            self.assertEqual(status, 200, sim_stats)
            self.assertEqual(sim_stats.get('duplicates'), 0, sim_stats)

            # Nothing of the users' profiles, nor the token, was stored or logged.
            secrets_ = {token, token.encode().hex(), base64.b64encode(token.encode()).decode(),
                        base64.urlsafe_b64encode(token.encode()).decode().rstrip('=')}
            markers = set()
            for user in population:
                markers |= profile_values(user)
            self.assertGreater(len(markers), USERS, 'no profile data to look for')
            dump = s.pg_dump()
            self.assertIn(bot['id'], dump)  # the dump is real
            self.assertEqual([x for x in secrets_ if x in dump], [], 'token in the database')
            found = sorted(m for m in markers if m in dump)
            self.assertEqual(found[:5], [], f'{len(found)} profile values in the database')
            for key, proc in s.procs.items():
                if proc.name.endswith('-sim'):
                    continue  # the simulators hold the population by design
                log = s.log(proc.name, proc.replica)
                self.assertFalse(any(x in log for x in secrets_), f'token in the {key} log')
                found = sorted(m for m in markers if m in log)
                self.assertEqual(found[:5], [], f'profile data in the {key} log')

            codes = s.stop()
            self.assertEqual(set(codes), {'slack-sim', 'vault', 'scheduler', 'api',
                                          'sender-slack', 'sender-slack#1',
                                          'sender-messenger'})
            self.assertEqual({k: v for k, v in codes.items() if v != 0}, {},
                             'a process did not exit 0 on SIGTERM')


if __name__ == '__main__':
    unittest.main(verbosity=2)
