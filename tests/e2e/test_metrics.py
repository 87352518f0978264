#!/usr/bin/python3
"""Every process's ops port: /healthz and /readyz answer 200, and /metrics is valid
Prometheus text as `promtool check metrics` reads it (promtool comes with Debian's
prometheus package, installed by scripts/deps.sh; its absence is a failure)."""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import SERVICES, Stack  # noqa: E402


class OpsEndpoints(unittest.TestCase):
    def test_health_ready_and_metrics(self):
        promtool = shutil.which('promtool')
        self.assertIsNotNone(promtool, 'promtool not found: run scripts/deps.sh')
        with Stack() as s:
            s.start_all(sender_replicas=1, messenger_sim=False)
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


if __name__ == '__main__':
    unittest.main(verbosity=2)
