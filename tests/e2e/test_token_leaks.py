#!/usr/bin/python3
"""1,000 bot tokens through the whole system, and not one of them anywhere it must
not be.

Every service runs (the api, the vault, the scheduler, two sender-slack replicas,
sender-messenger) with both simulators: 800 Slack workspaces and 200 Messenger
pages, each with its own token. Every token goes the way a user's token goes: it
is pasted into `POST /v1/orgs/{org}/bots` (the api hands it to the vault and
forgets it; a sender gets it back from the vault to verify it with the platform);
some bots then have their users listed live, run a campaign (the senders fetch
the token again and send with it) and are deleted (the vault destroys it). PostgreSQL
logs every statement with its parameters.

Then no token appears, in any of the forms in which bytes leak (raw; its unique
random part alone; hex in either case; base64 and base64url at every alignment, so
a token inside a larger encoded blob is found too; URL-encoded), in:

* a pg_dump of the database,
* the PostgreSQL server log,
* the log of any bcrm process,
* any answer of the api seen on the way.

The simulators are left out: they play the platforms, which hold the tokens.
"""
import base64
import os
import re
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402

SLACK_BOTS = 800
MESSENGER_BOTS = 200
CONNECT_THREADS = 4
CAMPAIGN_BOTS = 20  # of each platform
DELETED_BOTS = 10


def leak_forms(token, marker):
    """The strings whose presence would mean that token leaked."""
    forms = set()
    for secret in (token, marker):
        raw = secret.encode()
        forms |= {secret, raw.hex(), raw.hex().upper(), urllib.parse.quote(secret, safe=''),
                  urllib.parse.quote_plus(secret)}
        for shift in range(3):
            # The secret after `shift` bytes of something else: drop the characters
            # that the neighbours also decide (the first one or two, and the last
            # incomplete group).
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                text = enc(b'\0' * shift + raw).decode().rstrip('=')
                skip = {0: 0, 1: 2, 2: 3}[shift]
                body = text[skip:]
                keep = (len(body) // 4) * 4 if len(body) > 8 else len(body)
                if keep >= 8:
                    forms.add(body[:keep])
    return {f for f in forms if len(f) >= 8}


# Every leak form is made of these characters (raw tokens, hex, base64 of both
# alphabets, percent-encoding), so it lies within one run of them in a text.
WORD = re.compile(r'[A-Za-z0-9+/=_%.~-]{8,}')


class LeakFinder:
    """Finds which of many strings occur in large texts, in time linear in the
    distinct words of the text rather than in strings x text."""

    def __init__(self, forms):
        self.by_prefix = {}
        for form, owner in forms.items():
            self.by_prefix.setdefault(form[:8], []).append((form, owner))

    def owners_in(self, text):
        found = set()
        for word in set(WORD.findall(text)):
            for i in range(len(word) - 7):
                for form, owner in self.by_prefix.get(word[i:i + 8], ()):
                    if word.startswith(form, i):
                        found.add(owner)
        return found


class TokensLeaveNoTrace(unittest.TestCase):
    def test_thousand_tokens_through_the_system(self):
        with Stack() as s:
            s.start_postgres()
            s.make_keys()
            s._migrate()
            # Every statement of every later session is logged with its parameters.
            s.sql("ALTER DATABASE bcrm SET log_statement = 'all'")
            s.start_all(sender_replicas=2, messenger_replicas=1,
                        sim_env={'SLACK_SIM_WORKSPACES': str(SLACK_BOTS), 'SLACK_SIM_USERS': '3'},
                        msim_env={'MESSENGER_SIM_PAGES': str(MESSENGER_BOTS),
                                  'MESSENGER_SIM_USERS': '3'})

            _, _, body = s.sim('GET', '/_sim/workspaces')
            slack = [(w['token'], 'slack') for w in body['workspaces']]
            _, _, body = s.msim('GET', '/_sim/pages')
            messenger = [(p['token'], 'messenger') for p in body['pages']]
            self.assertEqual((len(slack), len(messenger)), (SLACK_BOTS, MESSENGER_BOTS))
            tokens = slack + messenger

            status, _, body = s.api('POST', '/v1/signup', {
                'name': 'Leak Hunter', 'email': 'hunter@leaks.bcrm.test',
                'password': 'correct horse battery staple', 'org_name': 'Leaks'})
            self.assertEqual(status, 201, body)
            org = body['org']['id']
            status, _, body = s.api('POST', f'/v1/orgs/{org}/api-keys', {'name': 'leaks'})
            self.assertEqual(status, 201, body)
            auth = {'Authorization': f'Bearer {body["key"]}'}
            answers = []  # every api answer body, to be searched too

            bots = {}  # token -> bot
            failures = []
            lock = threading.Lock()
            queue = list(enumerate(tokens))

            def connect():
                while True:
                    with lock:
                        if not queue:
                            return
                        _, (token, platform) = queue.pop()
                    field = 'token' if platform == 'slack' else 'page_token'
                    status, _, bot = s.api('POST', f'/v1/orgs/{org}/bots',
                                           {'platform': platform, field: token}, headers=auth)
                    with lock:
                        answers.append(str(bot))
                        if status == 201:
                            bots[token] = dict(bot, platform=platform)
                        else:
                            failures.append((status, bot))

            threads = [threading.Thread(target=connect) for _ in range(CONNECT_THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(failures[:3], [])
            self.assertEqual(len(bots), len(tokens))

            # Live reads, campaigns and deletions: the token's other paths.
            chosen = [b for b in bots.values() if b['platform'] == 'slack'][:CAMPAIGN_BOTS] + \
                     [b for b in bots.values() if b['platform'] == 'messenger'][:CAMPAIGN_BOTS]
            campaigns = []
            for bot in chosen:
                status, _, body = s.api('GET', f'/v1/orgs/{org}/bots/{bot["id"]}/users',
                                        headers=auth)
                self.assertEqual(status, 200, body)
                answers.append(str(body))
                spec = {'name': f'leak {bot["id"]}', 'bot_id': bot['id'],
                        'message': {'text': 'Hello {{first_name|there}}'},
                        'audience': {'filter': {'all': True}}, 'schedule': {'mode': 'now'}}
                if bot['platform'] == 'messenger':
                    spec['messenger'] = {'messaging_type': 'MESSAGE_TAG',
                                         'tag': 'ACCOUNT_UPDATE'}
                status, _, c = s.api('POST', f'/v1/orgs/{org}/campaigns', spec, headers=auth)
                self.assertEqual(status, 201, c)
                path = f'/v1/orgs/{org}/campaigns/{c["id"]}'
                status, _, body = s.api('POST', path + '/schedule', headers=auth)
                self.assertIn(status, (200, 202), body)
                campaigns.append(path)
            deadline = time.monotonic() + 180
            for path in campaigns:
                while True:
                    status, _, c = s.api('GET', path, headers=auth)
                    answers.append(str(c))
                    if c.get('status') == 'completed':
                        break
                    self.assertLess(time.monotonic(), deadline, f'{path}: {c}')
                    time.sleep(0.3)
                self.assertGreater(c['stats']['sent'], 0, c)
            _, _, slack_stats = s.sim('GET', '/_sim/stats')
            self.assertGreaterEqual(slack_stats.get('messages', 0), CAMPAIGN_BOTS, slack_stats)
            for bot in list(bots.values())[-DELETED_BOTS:]:
                status, _, body = s.api('DELETE', f'/v1/orgs/{org}/bots/{bot["id"]}',
                                        headers=auth)
                self.assertEqual(status, 204, body)
            left = int(s.sql('SELECT count(*) FROM bot_tokens')[0][0])
            self.assertEqual(left, len(tokens) - DELETED_BOTS)

            dump = s.pg_dump()
            # Stopped (logs flushed, PostgreSQL's too) but not yet removed.
            keep, s.keep = s.keep, True
            codes = s.stop()
            s.keep = keep
            if not keep:
                self.addCleanup(s.cleanup)
            self.assertEqual({k: v for k, v in codes.items() if v != 0}, {})

            with open(s.pg.log_file, errors='replace') as f:
                pg_log = f.read()
            places = {'pg_dump': dump, 'PostgreSQL log': pg_log, 'api answers': '\n'.join(answers)}
            for key, proc in s.procs.items():
                if not proc.name.endswith('-sim'):
                    places[f'{key} log'] = s.log(proc.name, proc.replica)
            # The places are real: the dump has the rows, the server log the
            # statements with their parameters, the logs the work.
            some = next(iter(bots.values()))
            self.assertIn(some['id'], dump)
            self.assertIn('INSERT INTO bot_tokens', pg_log)
            self.assertRegex(pg_log, r'parameters: \$1 = ')
            self.assertIn('"msg":"request"', places['api log'])

            forms = {}
            for token, _ in tokens:
                # The random part: Slack's after the last '-', Graph's after "EAAG".
                marker = token.rsplit('-', 1)[-1] if token.startswith('xox') else token[4:]
                self.assertGreaterEqual(len(marker), 16, token)
                for form in leak_forms(token, marker):
                    forms[form] = token
            self.assertGreater(len(forms), 10 * len(tokens))
            finder = LeakFinder(forms)
            # The finder finds what is there: a token planted in a copy of the
            # server log, hex-encoded inside a longer blob, is found.
            planted = pg_log + '\\x00ff' + tokens[0][0].encode().hex() + 'ab'
            self.assertEqual(finder.owners_in(planted), {tokens[0][0]})
            for name, text in places.items():
                leaked = sorted(finder.owners_in(text))
                self.assertEqual(leaked[:3], [], f'{len(leaked)} tokens leaked into the {name}')


if __name__ == '__main__':
    unittest.main(verbosity=2)
