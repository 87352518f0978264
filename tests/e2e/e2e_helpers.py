"""What the system tests do again and again on a running Stack (scripts/stack.py):
sign up an owner, connect a bot, create and schedule a campaign, wait for it to
end, and wait for anything else that comes in its own time.

Each helper asserts what it needs (the status of every api answer it relies on)
and raises AssertionError, which unittest reports as a failure, naming what went
wrong and the answer that did. Not a test file: ctest runs tests/e2e/test_*.py
only.
"""
import http.client
import json
import time
import urllib.parse

PASSWORD = 'correct horse battery staple'


def expect(what, answer, *ok):
    """The body of an answer (status, headers, body) whose status is one of ok."""
    status, _, body = answer
    if status not in ok:
        raise AssertionError(f'{what}: HTTP {status} (want {" or ".join(map(str, ok))}): '
                             f'{body}')
    return body


def signup(s, name, email, org_name, password=PASSWORD):
    """Signs up an owner with their org (POST /v1/signup, 201); returns the org id.
    The stack's cookie jar then holds the owner's session."""
    body = expect('signup', s.api('POST', '/v1/signup', {
        'name': name, 'email': email, 'password': password, 'org_name': org_name}), 201)
    return body['org']['id']


def connect_bot(s, org, platform, token):
    """Connects a bot (POST .../bots, 201) with a Slack bot token or a Messenger page
    token; returns the bot as the api answered it."""
    key = 'token' if platform == 'slack' else 'page_token'
    return expect(f'connect a {platform} bot',
                  s.api('POST', f'/v1/orgs/{org}/bots', {'platform': platform, key: token}), 201)


def create_campaign(s, org, campaign):
    """Creates a campaign (201); returns (its path, the campaign as created)."""
    created = expect('create a campaign', s.api('POST', f'/v1/orgs/{org}/campaigns', campaign),
                     201)
    return f'/v1/orgs/{org}/campaigns/{created["id"]}', created


def schedule_campaign(s, path):
    """POST {path}/schedule (200 or 202); returns the campaign it answers."""
    return expect('schedule a campaign', s.api('POST', path + '/schedule'), 200, 202)


def start_campaign(s, org, campaign):
    """Creates and schedules a campaign; returns its path."""
    path, _ = create_campaign(s, org, campaign)
    schedule_campaign(s, path)
    return path


def wait_until(what, probe, ok, timeout, step=0.2):
    """Calls probe() every step seconds until ok(its value) holds, and returns that
    value; fails naming what and the last value (its first 2000 characters) after
    timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            shown = str(value)
            if len(shown) > 2000:
                shown = shown[:2000] + '...'
            raise AssertionError(f'{what}: not after {timeout:g}s: {shown}')
        time.sleep(step)


def get_campaign(s, path):
    """GET path (200); returns the campaign."""
    return expect('get a campaign', s.api('GET', path), 200)


def wait_campaign(s, path, timeout, statuses=('completed',)):
    """Waits until the campaign at path has one of statuses; returns it."""
    return wait_until(f'campaign {path} {"/".join(statuses)}', lambda: get_campaign(s, path),
                      lambda c: c['status'] in statuses, timeout)


def wait_campaigns(s, paths, timeout, statuses=('completed',)):
    """Waits until every campaign of paths has one of statuses, all of them within
    timeout; returns them in the order of paths."""
    deadline = time.monotonic() + timeout
    return [wait_campaign(s, path, max(0.0, deadline - time.monotonic()), statuses)
            for path in paths]


def get_no_redirect(url, cookies=None):
    """A GET that does not follow redirects, sending cookies ({name: value}) when
    given: (status, Location, parsed body)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {'Cookie': '; '.join(f'{k}={v}' for k, v in cookies.items())} if cookies else {}
    conn.request('GET', parts.path + ('?' + parts.query if parts.query else ''), headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors='replace')
    return resp.status, resp.getheader('Location'), body
