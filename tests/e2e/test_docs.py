#!/usr/bin/python3
"""The configuration is documented: every BCRM_* variable that the C code reads is in
the README's tables, every SLACK_SIM_* / MESSENGER_SIM_* variable of the simulators
in sim/README.md, and every documented BCRM_* variable is still read somewhere (a
stale row misleads as much as a missing one)."""
import os
import re
import unittest

SOURCE_DIR = os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..'))
CODE_DIRS = ('common', 'services', 'tools', 'sim')
# Variables of the launcher and the tests, not of the services.
LAUNCHER_ONLY = {'BCRM_KEEP_STACK', 'BCRM_BUILD_DIR', 'BCRM_SOURCE_DIR'}


def variables_in_code(prefix_re):
    found = {}
    for top in CODE_DIRS:
        for root, _, files in os.walk(os.path.join(SOURCE_DIR, top)):
            for name in files:
                if not name.endswith(('.c', '.h')):
                    continue
                path = os.path.join(root, name)
                with open(path, errors='replace') as f:
                    for var in re.findall(r'"(' + prefix_re + r'[A-Z0-9_]+)"', f.read()):
                        found.setdefault(var, os.path.relpath(path, SOURCE_DIR))
    return found


def read(path):
    with open(os.path.join(SOURCE_DIR, path)) as f:
        return f.read()


class ConfigurationIsDocumented(unittest.TestCase):
    def test_every_bcrm_variable_is_in_the_readme(self):
        readme = read('README.md')
        documented = set(re.findall(r'\bBCRM_[A-Z0-9_]+', readme))
        code = variables_in_code('BCRM_')
        self.assertGreater(len(code), 40, 'the scan found too few variables to be working')
        missing = {v: where for v, where in code.items() if v not in documented}
        self.assertEqual(missing, {}, 'read by the code but not in README.md')
        stale = documented - set(code) - LAUNCHER_ONLY
        self.assertEqual(stale, set(), 'in README.md but read by no code')

    def test_every_simulator_variable_is_in_sim_readme(self):
        documented = set(re.findall(r'\b(?:SLACK|MESSENGER)_SIM_[A-Z0-9_]+', read('sim/README.md')))
        code = variables_in_code('(?:SLACK|MESSENGER)_SIM_')
        self.assertGreater(len(code), 10, 'the scan found too few variables to be working')
        missing = {v: where for v, where in code.items() if v not in documented}
        self.assertEqual(missing, {}, 'read by a simulator but not in sim/README.md')


if __name__ == '__main__':
    unittest.main(verbosity=2)
