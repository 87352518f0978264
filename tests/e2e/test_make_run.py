#!/usr/bin/python3
"""`make run`, as a user meets it: scripts/stack.py run, started twice on one state
directory.

The first start must bring up PostgreSQL, the five services and both simulators,
create the demo account, connect the sandbox bot and page, deliver the demo
campaign and print where everything is. The test then checks what was printed
against the system itself:

* the printed login works against the printed API URL, and the dashboard is served;
* the demo campaign is `completed`, and the simulator received exactly one message
  for each reachable user of the workspace, as many as the printed line says;
* the sandbox's webhooks are wired: a person writing to the demo page (messenger-sim
  `/_sim/inbound`) and a Slack event (slack-sim `/_sim/events`) reach the api,
  signed with secrets the api accepts;
* Ctrl-C (SIGINT) stops everything, each service exits 0, the launcher exits 0.

The second start on the same directory reuses the data: same password, same org and
bot, and a second demo campaign delivered.

`make run` itself also installs packages and builds; here the build is ctest's
(BCRM_BUILD_DIR) and the packages are CI's.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

SOURCE_DIR = os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..'))
STACK = os.path.join(SOURCE_DIR, 'scripts', 'stack.py')
START_TIMEOUT_S = 300  # two sanitizer builds' worth of start-up on 2 busy cores
STOP_TIMEOUT_S = 90


def http(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status, hdrs = resp.status, resp.headers
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, e.headers
    try:
        return status, hdrs, json.loads(raw) if raw else None
    except ValueError:
        return status, hdrs, raw.decode(errors='replace')


class Launcher:
    """One `stack.py run --var-dir DIR`, its output read line by line."""

    def __init__(self, var_dir):
        env = dict(os.environ)
        # Argon2id at its interactive cost is slow under ASan; the launcher passes
        # BCRM_* variables through to the services, as it would a user's.
        env['BCRM_PASSWORD_HASH_COST'] = 'min'
        self.proc = subprocess.Popen([sys.executable, STACK, 'run', '--var-dir', var_dir],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, start_new_session=True)
        self.lines = []

    def wait_running(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line == '':
                raise AssertionError('make run ended before it was running:\n' +
                                     ''.join(self.lines))
            self.lines.append(line)
            if line.strip() == 'Press Ctrl-C to stop.':
                return ''.join(self.lines)
        raise AssertionError('make run not running in time:\n' + ''.join(self.lines))

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)
        rest, _ = self.proc.communicate(timeout=STOP_TIMEOUT_S)
        self.lines.append(rest)
        return self.proc.returncode, rest

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def printed(output, pattern):
    m = re.search(pattern, output, re.M)
    if m is None:
        raise AssertionError(f'make run did not print {pattern!r}:\n{output}')
    return m.group(1)


def reachable(user):
    return (not user.get('is_bot') and not user.get('deleted') and user.get('id') != 'USLACKBOT'
            and user.get('kind', 'person') == 'person')


class MakeRun(unittest.TestCase):
    def setUp(self):
        self.var_dir = tempfile.mkdtemp(prefix='bcrm-make-run-')
        os.chmod(self.var_dir, 0o711)
        self.launchers = []

    def tearDown(self):
        for launcher in self.launchers:
            launcher.kill()
        if self.var_dir and not os.environ.get('BCRM_KEEP_STACK'):
            shutil.rmtree(self.var_dir, ignore_errors=True)

    def start(self):
        launcher = Launcher(self.var_dir)
        self.launchers.append(launcher)
        return launcher, launcher.wait_running()

    def check_running_system(self, out):
        api = printed(out, r'^  API +(http://\S+)')
        password = printed(out, r'^  login +demo@bcrm\.local / (\S+)')
        org = printed(out, r'^  org +(\S+)')
        sim = printed(out, r'^  Slack sim +(http://\S+)')
        msim = printed(out, r'^  Messenger sim +(http://\S+)')
        campaign = printed(out, r'^  demo campaign +(\S+): completed \((\d+ sent)\)')
        sent = int(printed(out, r'^  demo campaign +\S+: completed \((\d+) sent\)'))

        # The printed login works; the dashboard is served at the printed place.
        status, headers, body = http('POST', f'{api}/v1/login',
                                     {'email': 'demo@bcrm.local', 'password': password})
        self.assertEqual(status, 200, body)
        self.assertEqual([o['id'] for o in body['orgs']], [org])
        status, headers, page = http('GET', printed(out, r'^  dashboard +(http://\S+)'))
        self.assertEqual(status, 200)
        self.assertIn('text/html', headers.get('Content-Type', ''))

        # The demo campaign reached every reachable user of the workspace once.
        key_path = os.path.join(self.var_dir, 'demo-api-key')
        self.assertEqual(os.stat(key_path).st_mode & 0o077, 0, 'demo-api-key readable by others')
        with open(key_path) as f:
            auth = {'Authorization': f'Bearer {f.read().strip()}'}
        status, _, body = http('GET', f'{api}/v1/orgs/{org}/campaigns/{campaign}', headers=auth)
        self.assertEqual(status, 200, body)
        self.assertEqual(body['status'], 'completed', body)
        self.assertEqual(body['stats']['sent'], sent, body['stats'])
        status, _, body = http('GET', f'{sim}/_sim/workspaces')
        team_id = body['workspaces'][0]['team_id']
        status, _, body = http('GET', f'{sim}/_sim/users?team_id={team_id}')
        people = {u['id'] for u in body['users'] if reachable(u)}
        dm_to_user = {u['dm_id']: u['id'] for u in body['users'] if u.get('dm_id')}
        self.assertEqual(sent, len(people), 'the demo campaign missed someone')

        # The sandbox's webhooks reach the api with signatures it accepts.
        status, _, body = http('GET', f'{msim}/_sim/pages')
        page_id = body['pages'][0]['page_id']
        status, _, body = http('GET', f'{msim}/_sim/users?page_id={page_id}')
        psid = body['users'][0]['psid']
        status, _, body = http('POST', f'{msim}/_sim/inbound', {'psid': psid})
        self.assertEqual(status, 200, body)
        self.assertEqual(body['webhook']['status'], 200, body)
        status, _, body = http('POST', f'{sim}/_sim/events', {'type': 'url_verification'})
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get('status'), 200, body)
        self.assertTrue(body.get('challenge_echoed'), body)
        return {'api': api, 'password': password, 'org': org, 'sim': sim, 'team_id': team_id,
                'people': people, 'bot': printed(out, r'^  demo bot +(\S+)'),
                'campaign': campaign, 'dm_to_user': dm_to_user}

    def test_run_twice_on_one_state(self):
        first, out = self.start()
        one = self.check_running_system(out)
        code, rest = first.interrupt()
        self.assertEqual(code, 0, ''.join(first.lines))
        self.assertIn('bcrm: stopped', rest)
        self.assertNotIn('non-zero exits', rest)

        second, out = self.start()
        two = self.check_running_system(out)
        self.assertEqual((two['password'], two['org'], two['bot']),
                         (one['password'], one['org'], one['bot']), 'state not reused')
        self.assertNotEqual(two['campaign'], one['campaign'])
        # The simulator starts anew each time: this run's messages are its own.
        status, _, body = http('GET', f'{two["sim"]}/_sim/recipients')
        self.assertEqual(status, 200, body)
        got = {}
        for r in body['recipients']:
            user = two['dm_to_user'].get(r['recipient'], r['recipient'])
            got[user] = got.get(user, 0) + r['count']
        self.assertEqual(set(got), two['people'])
        self.assertEqual(set(got.values()), {1}, 'someone got the demo twice')
        code, rest = second.interrupt()
        self.assertEqual(code, 0, ''.join(second.lines))
        self.assertIn('bcrm: stopped', rest)


if __name__ == '__main__':
    unittest.main(verbosity=2)
