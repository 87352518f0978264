#!/usr/bin/python3
"""Every process's ops port: /healthz and /readyz answer 200, and /metrics is valid
Prometheus text as `promtool check metrics` reads it (promtool comes with Debian's
prometheus package, installed by scripts/deps.sh; its absence is a failure). The
metrics are read after a campaign has run, so that the series which only appear
with traffic (per outcome, per route, per bot) are checked too.

The processes that hold tokens (the vault and the senders) run hardened: no core
file can be written (RLIMIT_CORE 0, read from /proc/<pid>/limits)."""
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import SERVICES, Stack  # noqa: E402


class OpsEndpoints(unittest.TestCase):
    def test_health_ready_and_metrics(self):
        promtool = shutil.which('promtool')
        self.assertIsNotNone(promtool, 'promtool not found: run scripts/deps.sh')
        with Stack() as s:
            s.start_all(sender_replicas=1, messenger_sim=False,
                        sim_env={'SLACK_SIM_USERS': '30'})
            self.run_campaign(s)
            for name in ('vault', 'sender-slack', 'sender-messenger'):
                with open(f'/proc/{s.procs[name].popen.pid}/limits') as f:
                    core = [line.split() for line in f if line.startswith('Max core file size')]
                self.assertEqual(core[0][4:6], ['0', '0'], f'{name} may dump core: {core}')
            for name in SERVICES:
                with self.subTest(service=name):
                    for path in ('/healthz', '/readyz'):
                        status, _, body = s.ops(name, path)
                        self.assertEqual(status, 200, f'{name} {path}: {body}')
                    status, headers, text = s.ops(name, '/metrics')
                    self.assertEqual(status, 200, f'{name} /metrics: {text}')
                    self.assertTrue(headers.get('content-type', '').startswith('text/plain'),
                                    headers.get('content-type'))
                    self.assertIn('# TYPE ', text, f'{name} exports no metric')
                    res = subprocess.run([promtool, 'check', 'metrics'], input=text,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)
                    # promtool exits 1 for errors and for lint problems (names,
                    # missing HELP): both count.
                    self.assertEqual(res.returncode, 0,
                                     f'{name}: promtool check metrics:\n{res.stdout}')
            codes = s.stop()
            self.assertEqual({k: v for k, v in codes.items() if v != 0}, {})

    def run_campaign(self, s):
        status, _, body = s.api('POST', '/v1/signup', {
            'name': 'Ops', 'email': 'ops@metrics.bcrm.test',
            'password': 'correct horse battery staple', 'org_name': 'Metrics'})
        self.assertEqual(status, 201, body)
        org = body['org']['id']
        _, _, ws = s.sim('GET', '/_sim/workspaces')
        status, _, bot = s.api('POST', f'/v1/orgs/{org}/bots', {
            'platform': 'slack', 'token': ws['workspaces'][0]['token']})
        self.assertEqual(status, 201, bot)
        status, _, campaign = s.api('POST', f'/v1/orgs/{org}/campaigns', {
            'name': 'metrics', 'bot_id': bot['id'], 'message': {'text': 'Hi {{first_name}}'},
            'audience': {'filter': {'all': True}}, 'schedule': {'mode': 'now'}})
        self.assertEqual(status, 201, campaign)
        path = f'/v1/orgs/{org}/campaigns/{campaign["id"]}'
        self.assertIn(s.api('POST', path + '/schedule')[0], (200, 202))
        deadline = time.monotonic() + 120
        while s.api('GET', path)[2].get('status') != 'completed':
            self.assertLess(time.monotonic(), deadline, 'campaign not completed')
            time.sleep(0.3)


if __name__ == '__main__':
    unittest.main(verbosity=2)
