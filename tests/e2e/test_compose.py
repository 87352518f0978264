#!/usr/bin/python3
"""docker-compose.yml is valid for docker-compose and describes the whole system.

docker-compose is installed by scripts/deps.sh, so its absence is a failure, not a
skip. No Docker daemon is needed: `config` only reads and resolves the file.
"""
import os
import shutil
import subprocess
import unittest

SOURCE_DIR = os.environ.get('BCRM_SOURCE_DIR',
                            os.path.dirname(os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__)))))
COMPOSE_FILE = os.path.join(SOURCE_DIR, 'docker-compose.yml')
SERVICES = {'postgres', 'key-init', 'vault', 'scheduler', 'api', 'sender-slack',
            'sender-messenger', 'slack-sim', 'messenger-sim'}


def compose(*args):
    exe = shutil.which('docker-compose')
    if exe is None:
        raise AssertionError('docker-compose not found: run scripts/deps.sh')
    env = dict(os.environ)
    env.pop('POSTGRES_PASSWORD', None)
    return subprocess.run([exe, '-f', COMPOSE_FILE, '--project-directory', SOURCE_DIR]
                          + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=120)


class ComposeTest(unittest.TestCase):
    def test_config_is_valid(self):
        res = compose('config', '-q')
        self.assertEqual(res.returncode, 0, res.stderr)

    def test_every_service_is_there(self):
        res = compose('config', '--services')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(set(res.stdout.split()), SERVICES)

    def test_services_have_readiness_checks_and_senders_scale(self):
        res = compose('config')
        self.assertEqual(res.returncode, 0, res.stderr)
        text = res.stdout
        for port in (9180, 9181, 9182, 9183, 9184):
            self.assertIn(f'http://127.0.0.1:{port}/readyz', text)
        self.assertGreaterEqual(text.count('replicas: 2'), 2)
        # Listeners bind every interface inside their container; dialers use names.
        self.assertIn('BCRM_VAULT_URL: tcp://0.0.0.0:7100', text)
        self.assertIn('BCRM_VAULT_URL: tcp://vault:7100', text)


if __name__ == '__main__':
    unittest.main(verbosity=2)
