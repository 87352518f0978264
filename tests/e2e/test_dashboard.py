#!/usr/bin/python3
"""The web dashboard, served by bcrm-api at /, used by a person in a real browser.

* The files are checked as text: nothing inline that the Content-Security-Policy
  forbids (scripts, styles, event handler attributes), no HTML parsing of API
  text, no browser storage, nothing loaded from another origin.
* Against the whole stack (PostgreSQL, vault, scheduler, api, sender-slack,
  slack-sim): the static answers (types, ETag and 304, security headers, HEAD,
  404s, /v1 untouched), then Debian's chromium driven by playwright-core
  (tests/e2e/dashboard/drive.mjs) signs up, connects the simulator's bot, pages
  through its users, sees the bot turn token_invalid when Slack revokes its token
  (badge, alert, a "Reconnect" form whose refusal lands next to its field) and
  reconnects it, sends a campaign to everyone now with it and watches it complete,
  pauses/resumes/cancels another, picks users for a draft, creates and revokes an
  API key, switches org, logs out and in. Field errors of the API appear next to
  their fields. No CSP violation, no script error, no request without the CSRF
  token, no browser storage.
* Then the test checks what the browser reported against the API, the simulator
  (every reachable user got exactly one message) and the database (no profile
  data stored).

Screenshots go to the stack's work dir and are copied to
$BCRM_BUILD_DIR/test-artifacts/dashboard/ for a person to look at.

playwright-core comes from npm (tests/e2e/dashboard/package-lock.json), installed
into tests/e2e/dashboard/node_modules by `npm ci` when missing; it never downloads a
browser: it drives /usr/bin/chromium (scripts/deps.sh installs it).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

SOURCE_DIR = os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..'))
sys.path.insert(0, os.path.join(SOURCE_DIR, 'scripts'))
from stack import Stack  # noqa: E402

DASHBOARD_DIR = os.path.join(SOURCE_DIR, 'services', 'api', 'dashboard')
DRIVER_DIR = os.path.join(SOURCE_DIR, 'tests', 'e2e', 'dashboard')
CHROMIUM = '/usr/bin/chromium'
USERS = 120
EMAIL = 'dash@e2e.bcrm.test'
DRIVER_TIMEOUT_S = 420


def read(name):
    with open(os.path.join(DASHBOARD_DIR, name), encoding='utf-8') as f:
        return f.read()


def raw_get(url, headers=None, method='GET'):
    """(status, headers with lower-case names, body bytes), without a cookie jar."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def is_reachable(user):
    return (user.get('kind', 'person') == 'person' and not user.get('is_bot')
            and not user.get('deleted') and user.get('id') != 'USLACKBOT')


def ensure_playwright():
    """npm ci into tests/e2e/dashboard/node_modules unless the locked version is there."""
    with open(os.path.join(DRIVER_DIR, 'package-lock.json')) as f:
        want = json.load(f)['packages']['node_modules/playwright-core']['version']
    installed = os.path.join(DRIVER_DIR, 'node_modules', 'playwright-core', 'package.json')
    if os.path.exists(installed):
        with open(installed) as f:
            if json.load(f).get('version') == want:
                return
    npm = shutil.which('npm')
    if npm is None:
        raise AssertionError('npm is missing: run scripts/deps.sh')
    res = subprocess.run([npm, 'ci', '--no-audit', '--no-fund'], cwd=DRIVER_DIR,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=300)
    if res.returncode != 0:
        raise AssertionError(f'npm ci failed:\n{res.stdout[-3000:]}')


class DashboardFiles(unittest.TestCase):
    """What the Content-Security-Policy and the privacy rules ask of the sources."""

    def test_html_has_nothing_inline(self):
        html = read('index.html')
        scripts = re.findall(r'<script\b([^>]*)>(.*?)</script>', html, re.S | re.I)
        self.assertTrue(scripts, 'no script tag')
        for attrs, body in scripts:
            self.assertIn('src=', attrs, 'an inline script')
            self.assertEqual(body.strip(), '', 'a script tag with content')
        self.assertIsNone(re.search(r'<style\b', html, re.I), 'an inline <style>')
        self.assertIsNone(re.search(r'\sstyle\s*=', html, re.I), 'a style attribute')
        self.assertIsNone(re.search(r'\son[a-z]+\s*=', html, re.I), 'an event handler attribute')
        self.assertIsNone(re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html, re.I),
                          'a resource of another origin')

    def test_script_builds_dom_safely_and_stores_nothing(self):
        js = read('app.js')
        for pattern, why in [
                (r'\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write',
                 'HTML parsing of strings (API text must stay text)'),
                (r'\beval\s*\(|new\s+Function\s*\(|setTimeout\s*\(\s*["\']',
                 'code from strings (CSP forbids unsafe-eval)'),
                (r'setAttribute\(\s*["\']style|\.style\.|cssText',
                 'inline styles (CSP forbids them; use classes)'),
                (r'(localStorage|sessionStorage|indexedDB)\s*[.\[]|document\.cookie',
                 'browser storage (nothing about users may outlive the page)'),
                (r'https?://', 'an address of another origin')]:
            self.assertIsNone(re.search(pattern, js), why)

    def test_stylesheet_loads_nothing_foreign(self):
        css = read('app.css')
        self.assertIsNone(re.search(r'@import|url\(\s*["\']?(https?:)?//', css, re.I))


class DashboardInBrowser(unittest.TestCase):
    def check_static_answers(self, s):
        base = s.api_url
        seen_types = {}
        for path, ctype in [('/', 'text/html'), ('/app.js', 'text/javascript'),
                            ('/app.css', 'text/css'), ('/favicon.svg', 'image/svg+xml')]:
            status, headers, body = raw_get(base + path)
            self.assertEqual(status, 200, path)
            self.assertTrue(headers['content-type'].startswith(ctype), (path, headers))
            csp = headers.get('content-security-policy', '')
            self.assertIn("default-src 'self'", csp)
            self.assertIn("frame-ancestors 'none'", csp)
            self.assertEqual(headers.get('x-content-type-options'), 'nosniff')
            self.assertEqual(headers.get('referrer-policy'), 'no-referrer')
            self.assertEqual(headers.get('cache-control'), 'no-cache')
            etag = headers.get('etag', '')
            self.assertRegex(etag, r'^"[0-9a-f]{24}"$')
            seen_types[path] = etag
            self.assertGreater(len(body), 0)
            # The browser revalidates: unchanged files answer 304 without a body.
            status, headers304, body304 = raw_get(base + path, {'If-None-Match': etag})
            self.assertEqual((status, body304, headers304.get('etag')), (304, b'', etag), path)
            status, _, _ = raw_get(base + path, {'If-None-Match': f'"other", W/{etag}'})
            self.assertEqual(status, 304, 'a weak or listed ETag also matches')
            status, _, _ = raw_get(base + path, {'If-None-Match': '"other"'})
            self.assertEqual(status, 200)
        self.assertEqual(len(set(seen_types.values())), 4, 'ETags differ per file')
        with open(os.path.join(DASHBOARD_DIR, 'index.html'), 'rb') as f:
            self.assertEqual(raw_get(base + '/')[2], f.read(), 'serves the built-in file')
        status, headers, body = raw_get(base + '/app.js', method='HEAD')
        self.assertEqual((status, body), (200, b''))
        # Anything else is the API's, as before.
        status, headers, body = raw_get(base + '/missing.js')
        self.assertEqual(status, 404)
        self.assertEqual(headers['content-type'], 'application/problem+json')
        status, _, _ = raw_get(base + '/app.js', method='POST')
        self.assertEqual(status, 404)
        status, headers, body = raw_get(base + '/v1/openapi.json')
        self.assertEqual(status, 200)
        self.assertIn('/v1/orgs/{org}/campaigns', json.loads(body)['paths'])
        status, _, _ = raw_get(base + '/v1/me')
        self.assertEqual(status, 401)
        # The dashboard's requests are counted apart from the API's routes.
        _, _, metrics = s.ops('api', '/metrics')
        self.assertRegex(metrics, r'bcrm_api_requests_total\{[^}]*route="dashboard",'
                                  r'code="2xx"\} [1-9]')

    def test_a_person_uses_the_dashboard(self):
        self.assertTrue(os.access(CHROMIUM, os.X_OK), f'{CHROMIUM} missing: run scripts/deps.sh')
        node = shutil.which('node')
        self.assertIsNotNone(node, 'node missing: run scripts/deps.sh')
        ensure_playwright()

        with Stack() as s:
            s.start_postgres()
            s.make_keys()
            s.start_all(sender_replicas=1, messenger_replicas=1, messenger_sim=False,
                        sim_env={'SLACK_SIM_USERS': str(USERS), 'SLACK_SIM_SEED': '4242'})
            self.check_static_answers(s)

            status, _, body = s.sim('GET', '/_sim/workspaces')
            self.assertEqual(status, 200, body)
            workspace = body['workspaces'][0]
            team_id = workspace['team_id']
            status, _, body = s.sim('GET', f'/_sim/users?team_id={team_id}')
            self.assertEqual(status, 200, body)
            population = body['users']
            reachable = {u['id']: u for u in population if is_reachable(u)}
            self.assertLess(len(reachable), len(population), 'no bot or deleted user')
            dm_to_user = {u['dm_id']: u['id'] for u in population if u.get('dm_id')}

            out = os.path.join(s.work_dir, 'screenshots')
            os.makedirs(out, exist_ok=True)
            env = dict(os.environ, DASH_URL=s.api_url, DASH_SLACK_TOKEN=workspace['token'],
                       DASH_SIM_URL=s.sim_url, DASH_TEAM_ID=team_id,
                       DASH_EXPECT_SENT=str(len(reachable)), DASH_OUT=out, DASH_EMAIL=EMAIL)
            started = time.monotonic()
            proc = subprocess.run([node, os.path.join(DRIVER_DIR, 'drive.mjs')], cwd=DRIVER_DIR,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=DRIVER_TIMEOUT_S)
            sys.stderr.write(proc.stderr[-6000:])
            lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
            result = json.loads(lines[-1]) if lines else {}
            self.copy_screenshots(out)
            self.assertEqual(proc.returncode, 0, f'the browser walk failed (see above); '
                                                 f'seen: {json.dumps(result)[:3000]}')
            sys.stderr.write(f'dashboard: browser walk took {time.monotonic() - started:.1f}s\n')

            # Errors of the API, shown next to the fields they name.
            self.assertIn('8 characters', result['password_error'])
            self.assertIn('invalid_auth', result['token_error'])
            self.assertIn('fallback_tz', result['fallback_error'])
            self.assertIn('IANA', result['fallback_error2'])
            self.assertIn('admin role', result['viewer_error'])
            self.assertIn('password', result['login_error'])
            # Live users, paged.
            self.assertEqual((result['users_page1'], result['users_page2']), (50, 50))
            # The revoked bot: shown token_invalid, reconnected from its page (the
            # campaign to everyone below went out with it).
            self.assertIn("no longer accepts this bot's token", result['bot_alert'])
            self.assertEqual(result['list_badge'], 'token_invalid')
            self.assertIn('token_revoked', result['reconnect_error'])
            self.assertIn('active again', result['reconnected_notice'])
            self.assertIn('No campaign of this bot is paused', result['reconnected_notice'])
            self.assertEqual(result['users_after_reconnect'], 50)
            # The campaign as the page showed it, as the API has it, as Slack got it.
            n = len(reachable)
            self.assertEqual(result['page_stats'],
                             {'total': n, 'pending': 0, 'sent': n, 'failed': 0, 'unknown': 0})
            self.assertIn('completed', result['statuses_seen'])
            self.assertEqual(result['csv_rows'], n)
            self.assertEqual(result['csv_filename'], f'deliveries-{result["campaign_id"]}.csv')
            self.assertEqual(result['later_status'], 'cancelled')
            self.assertEqual(result['campaigns_listed'], 3)
            self.assertEqual(result['revoked_key_status'], 401)

            status, _, body = s.api('POST', '/v1/login',
                                    {'email': EMAIL, 'password': 'correct horse battery staple'})
            self.assertEqual(status, 200, body)
            org = result['org_id']
            status, _, bot = s.api('GET', f'/v1/orgs/{org}/bots/{result["bot_id"]}')
            self.assertEqual((status, bot['status'], bot['team_id']), (200, 'active', team_id))
            promotes = s.sql(f"SELECT outcome FROM vault_audit WHERE operation = 'promote'"
                             f" AND bot_id = '{result['bot_id']}'")
            self.assertEqual(promotes, [('ok',)], 'one reconnect reached the vault')
            status, _, campaign = s.api('GET', f'/v1/orgs/{org}/campaigns/{result["campaign_id"]}')
            self.assertEqual(status, 200, campaign)
            self.assertEqual((campaign['status'], campaign['stats']['sent']), ('completed', n))
            self.assertEqual(campaign['audience'], {'filter': {'all': True}})
            status, _, draft = s.api('GET', f'/v1/orgs/{org}/campaigns/{result["draft_id"]}')
            self.assertEqual(status, 200, draft)
            self.assertEqual(draft['status'], 'cancelled')
            self.assertEqual(sorted(draft['audience']['filter']['user_ids']),
                             sorted(result['picked']))
            self.assertTrue(all(uid in reachable for uid in result['picked']),
                            'the picker offers only users a message can reach')
            self.assertEqual(draft['schedule']['fallback_tz'], 'Europe/Berlin')

            status, _, body = s.sim('GET', f'/_sim/messages?team_id={team_id}')
            self.assertEqual(status, 200, body)
            received = {}
            for msg in body['messages']:
                user = msg.get('user') or dm_to_user.get(msg.get('channel'), msg.get('channel'))
                received.setdefault(user, []).append(msg.get('text'))
            self.assertEqual(set(received), set(reachable), 'recipients differ')
            for user_id, texts in received.items():
                first = reachable[user_id].get('first_name') or \
                    (reachable[user_id].get('profile') or {}).get('first_name') or 'there'
                self.assertEqual(texts, [f'Hello {first}, from the dashboard.'], user_id)

            # The browser: nothing stored, nothing foreign, the CSRF token always
            # sent, no script error, and no CSP violation (while the detector does
            # catch an inline style put in on purpose).
            self.assertEqual(result['storage'], {'local': 0, 'session': 0, 'cookies': ''})
            self.assertEqual(result['foreign_requests'], [])
            self.assertEqual(result['without_csrf'], [])
            unexpected = [e for e in result['console_errors']
                          if not re.match(r'Failed to load resource: the server responded with '
                                          r'a status of 4\d\d', e)]
            self.assertEqual(unexpected, [], 'errors in the browser console')
            self.assertEqual(result['csp_violations'], [])
            self.assertTrue(result['csp_probe'], 'the CSP probe was not reported')
            self.assertTrue(any('Content Security Policy' in e
                                for e in result['csp_probe_console']))

            # Nothing of the users' profiles reached the database.
            markers = set()
            for user in population:
                profile = user.get('profile') or {}
                for v in (user.get('name'), user.get('real_name'), profile.get('email'),
                          profile.get('real_name')):
                    if isinstance(v, str) and len(v) >= 6:
                        markers.add(v)
            dump = s.pg_dump()
            self.assertIn(result['campaign_id'], dump)
            self.assertEqual(sorted(m for m in markers if m in dump)[:5], [])

            codes = s.stop()
            self.assertEqual({k: v for k, v in codes.items() if v != 0}, {})

    def copy_screenshots(self, out):
        """Keeps the screenshots where a person can look at them after the stack is gone."""
        build = os.environ.get('BCRM_BUILD_DIR')
        if not build:
            return
        dest = os.path.join(build, 'test-artifacts', 'dashboard')
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest, exist_ok=True)
        for name in os.listdir(out):
            if name.endswith('.png'):
                shutil.copy(os.path.join(out, name), dest)
        sys.stderr.write(f'dashboard: screenshots in {dest}/\n')


if __name__ == '__main__':
    unittest.main(verbosity=2)
