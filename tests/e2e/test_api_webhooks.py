#!/usr/bin/python3
"""System test of the api's webhooks (spec/api.md, "Webhooks and operations"):

* POST /v1/webhooks/slack/events: Slack's v0 signature and 300 s window, the
  url_verification challenge, and app_uninstalled / tokens_revoked destroying the
  bot's token in the vault, marking the bot token_invalid and pausing its campaigns;
  repeated deliveries change nothing more.
* the same events as slack-sim signs and delivers them (its /_sim/events), so that
  our reading of Slack's scheme and the simulator's agree;
* GET and POST /v1/webhooks/messenger: the hub.challenge check, X-Hub-Signature-256,
  subscribers recorded from messages, read watermarks marking deliveries read.

Signatures are computed here with Python's hmac, independently of the C code.
Real processes: PostgreSQL, slack-sim, vault, sender-slack, api. Messenger bots and
their deliveries are rows made directly in the database (the webhook is what is
under test, not the connection of a page).
"""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR',
                os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                'scripts'))
from stack import Stack, http_request  # noqa: E402

SLACK_SECRET = 'slack-signing-secret-' + uuid.uuid4().hex
META_SECRET = 'meta-app-secret-' + uuid.uuid4().hex
VERIFY_TOKEN = 'verify-' + uuid.uuid4().hex
API_ENV = {'BCRM_PASSWORD_HASH_COST': 'min', 'BCRM_API_QUERY_TIMEOUT': '5s',
           'BCRM_SLACK_SIGNING_SECRET': SLACK_SECRET, 'BCRM_MESSENGER_APP_SECRET': META_SECRET,
           'BCRM_MESSENGER_VERIFY_TOKEN': VERIFY_TOKEN}
S = None


def setUpModule():
    global S
    S = Stack()
    S.start_postgres()
    S.make_keys()
    # Two workspaces: the simulator's own deliveries (SimulatorDeliveryTests) revoke
    # the second one's token in the simulator.
    S.start('slack-sim', wait=False, env={
        'SLACK_SIM_WORKSPACES': '2', 'SLACK_SIM_SIGNING_SECRET': SLACK_SECRET,
        'SLACK_SIM_EVENTS_URL': S.api_url + '/v1/webhooks/slack/events'})
    S.start('vault', wait=False)
    S.start('sender-slack', wait=False)
    S.start('api', env=API_ENV, wait=False)
    S.wait_ready([S.procs[k] for k in ('slack-sim', 'vault', 'sender-slack', 'api')])


def tearDownModule():
    codes = S.stop()
    assert codes.get('api') == 0, f'api did not exit cleanly: {codes}'


def slack_signature(body, timestamp, secret=SLACK_SECRET):
    base = b'v0:' + str(timestamp).encode() + b':' + body
    return 'v0=' + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def post_slack(event, timestamp=None, secret=SLACK_SECRET, headers=None, raw=None):
    body = raw if raw is not None else json.dumps(event).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    hdrs = {'Content-Type': 'application/json', 'X-Slack-Request-Timestamp': str(ts),
            'X-Slack-Signature': slack_signature(body, ts, secret)}
    hdrs.update(headers or {})
    hdrs = {k: v for k, v in hdrs.items() if v is not None}
    return http_request(S.api_url + '/v1/webhooks/slack/events', 'POST', body, hdrs)


def post_messenger(payload, secret=META_SECRET, signature=None):
    body = json.dumps(payload).encode()
    sig = signature if signature is not None else \
        'sha256=' + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    hdrs = {'Content-Type': 'application/json'}
    if sig:
        hdrs['X-Hub-Signature-256'] = sig
    return http_request(S.api_url + '/v1/webhooks/messenger', 'POST', body, hdrs)


def one(query):
    rows = S.sql(query)
    return rows[0][0] if rows else None


def signup(org_name):
    email = f'wh{uuid.uuid4().hex[:10]}@example.com'
    status, _, body = S.api('POST', '/v1/signup', {
        'name': 'Webhook Owner', 'email': email, 'password': 'long enough password',
        'org_name': org_name})
    assert status == 201, body
    return body['org']['id']


class SlackSignatureTests(unittest.TestCase):
    def test_url_verification_echoes_the_challenge(self):
        challenge = 'challenge-' + uuid.uuid4().hex
        status, _, body = post_slack({'token': 'legacy', 'challenge': challenge,
                                      'type': 'url_verification'})
        self.assertEqual(status, 200, body)
        self.assertEqual(body['challenge'], challenge)

    def test_forged_missing_and_stale_signatures_are_401(self):
        event = {'type': 'url_verification', 'challenge': 'c'}
        body = json.dumps(event).encode()
        now = int(time.time())
        cases = [
            ('another secret', dict(secret='not-the-secret'), 'does not match'),
            ('tampered body', dict(raw=body + b' '), None),
            ('no signature', dict(headers={'X-Slack-Signature': None}), 'missing'),
            ('no timestamp', dict(headers={'X-Slack-Request-Timestamp': None}), 'missing'),
            ('stale', dict(timestamp=now - 301), '300 s'),
            ('future', dict(timestamp=now + 400), '300 s'),
            ('malformed', dict(headers={'X-Slack-Signature': 'v0=abc'}), 'malformed'),
        ]
        for name, kw, reason in cases:
            with self.subTest(name):
                if name == 'tampered body':
                    # Signed over the original body, sent with one more byte.
                    sig = slack_signature(body, now)
                    status, headers, problem = http_request(
                        S.api_url + '/v1/webhooks/slack/events', 'POST', body + b' ',
                        {'X-Slack-Request-Timestamp': str(now), 'X-Slack-Signature': sig,
                         'Content-Type': 'application/json'})
                else:
                    status, headers, problem = post_slack(event, **kw)
                self.assertEqual(status, 401, problem)
                self.assertIn('problem+json', headers['content-type'])
                if reason:
                    self.assertIn(reason, problem['detail'])
                # The answer never carries the signature we expected.
                expected = slack_signature(body, kw.get('timestamp', now))
                self.assertNotIn(expected[3:], json.dumps(problem))
        # A genuine delivery still works after all of that.
        self.assertEqual(post_slack(event)[0], 200)

    def test_unknown_event_types_are_acknowledged(self):
        status, _, body = post_slack({'type': 'event_callback', 'team_id': 'TNOBODY',
                                      'api_app_id': 'A1', 'event_id': 'Ev1',
                                      'event': {'type': 'message', 'text': 'hi'}})
        self.assertEqual(status, 200, body)

    def test_secret_never_logged(self):
        post_slack({'type': 'url_verification', 'challenge': 'x'})
        post_slack({'type': 'url_verification', 'challenge': 'x'}, secret='wrong')
        log = S.log('api')
        for secret in (SLACK_SECRET, META_SECRET, VERIFY_TOKEN):
            self.assertNotIn(secret, log)


class SlackRevocationTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.org = signup('Slack Webhooks Inc')
        _, _, ws = S.sim('GET', '/_sim/workspaces')
        workspaces = ws.get('workspaces', ws) if isinstance(ws, dict) else ws
        cls.ws = workspaces[0]
        cls.token = cls.ws.get('bot_token') or cls.ws.get('token')
        cls.team_id = cls.ws.get('team_id') or cls.ws.get('id')

    def setUp(self):
        S.sim('POST', '/_sim/reset', {})

    def connect(self):
        status, _, bot = S.api('POST', f'/v1/orgs/{self.org}/bots',
                               {'platform': 'slack', 'token': self.token})
        self.assertEqual(status, 201, bot)
        return bot

    def campaign(self, bot, schedule=True):
        status, _, c = S.api('POST', f'/v1/orgs/{self.org}/campaigns', {
            'name': 'Webhook campaign', 'bot_id': bot['id'], 'message': {'text': 'hi'},
            'audience': {'filter': {'all': True}},
            'schedule': {'mode': 'at', 'at': '2099-01-01T00:00:00Z'}})
        self.assertEqual(status, 201, c)
        if schedule:
            status, _, c = S.api('POST', f'/v1/orgs/{self.org}/campaigns/{c["id"]}/schedule')
            self.assertEqual(status, 200, c)
        return c

    def bot_status(self, bot):
        return one(f"SELECT status FROM bots WHERE id = '{bot['id']}'")

    def tokens(self, bot):
        return one(f"SELECT count(*) FROM bot_tokens WHERE bot_id = '{bot['id']}'")

    def campaign_status(self, c):
        return one(f"SELECT status FROM campaigns WHERE id = '{c['id']}'")

    def test_app_uninstalled_destroys_token_and_pauses_campaigns(self):
        bot = self.connect()
        scheduled = self.campaign(bot)
        running = self.campaign(bot)
        S.sql(f"UPDATE campaigns SET status = 'running' WHERE id = '{running['id']}'")
        draft = self.campaign(bot, schedule=False)
        self.assertEqual(self.tokens(bot), '1')

        # Another workspace's uninstall touches nothing of ours.
        other = {'type': 'event_callback', 'team_id': 'TSOMEONEELSE', 'api_app_id': 'A0',
                 'event_id': 'Ev0', 'event': {'type': 'app_uninstalled'}}
        self.assertEqual(post_slack(other)[0], 200)
        self.assertEqual(self.bot_status(bot), 'active')

        # Slack tells of the uninstall once the token has stopped working.
        S.sim('POST', '/_sim/faults', {'revoke_token': self.team_id})
        event = {'type': 'event_callback', 'team_id': self.team_id, 'api_app_id': 'A123',
                 'event_id': 'Ev' + uuid.uuid4().hex[:8], 'event_time': int(time.time()),
                 'event': {'type': 'app_uninstalled'}}
        status, _, body = post_slack(event)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.tokens(bot), '0')
        self.assertEqual(self.bot_status(bot), 'token_invalid')
        self.assertEqual(self.campaign_status(scheduled), 'paused')
        self.assertEqual(self.campaign_status(running), 'paused')
        self.assertEqual(self.campaign_status(draft), 'draft')
        # The vault recorded the destruction.
        self.assertGreaterEqual(int(one(
            f"SELECT count(*) FROM vault_audit WHERE bot_id = '{bot['id']}'"
            " AND operation ILIKE '%destroy%'")), 1)
        # The bot cannot be resumed into sending.
        status, _, problem = S.api('POST',
                                   f'/v1/orgs/{self.org}/campaigns/{scheduled["id"]}/resume')
        self.assertEqual(status, 409, problem)

        # Slack delivers the same event again: harmless.
        status, _, body = post_slack(event, headers={'X-Slack-Retry-Num': '1',
                                                     'X-Slack-Retry-Reason': 'http_timeout'})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.bot_status(bot), 'token_invalid')
        self.assertEqual(self.campaign_status(scheduled), 'paused')
        # The bot is still listed, for its owner to see and delete.
        status, _, listed = S.api('GET', f'/v1/orgs/{self.org}/bots/{bot["id"]}')
        self.assertEqual(listed['status'], 'token_invalid')
        self.assertEqual(S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')[0], 204)

    def test_tokens_revoked_only_for_bot_tokens(self):
        bot = self.connect()
        c = self.campaign(bot)
        base = {'type': 'event_callback', 'team_id': self.team_id, 'api_app_id': 'A123'}
        # Only user tokens revoked: the bot's token lives on.
        status, _, _ = post_slack(dict(base, event_id='EvU', event={
            'type': 'tokens_revoked', 'tokens': {'oauth': ['UHUMAN1']}}))
        self.assertEqual(status, 200)
        self.assertEqual(self.bot_status(bot), 'active')
        # Another bot user's token: not ours.
        post_slack(dict(base, event_id='EvO', event={
            'type': 'tokens_revoked', 'tokens': {'bot': ['UOTHERBOT']}}))
        self.assertEqual(self.bot_status(bot), 'active')
        self.assertEqual(self.tokens(bot), '1')
        # Our bot user's token, revoked.
        S.sim('POST', '/_sim/faults', {'revoke_token': self.team_id})
        status, _, body = post_slack(dict(base, event_id='EvB', event={
            'type': 'tokens_revoked', 'tokens': {'oauth': [], 'bot': [bot['bot_user_id']]}}))
        self.assertEqual(status, 200, body)
        self.assertEqual(self.bot_status(bot), 'token_invalid')
        self.assertEqual(self.tokens(bot), '0')
        self.assertEqual(self.campaign_status(c), 'paused')
        S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')

    def test_late_event_for_a_reconnected_bot_keeps_its_token(self):
        """An app_uninstalled or tokens_revoked that names a bot whose token works
        (a delivery late or repeated after the bot was reconnected with a new token)
        is acknowledged and ends nothing: the api asks the platform (auth.test,
        through a sender) about the token the vault holds now."""
        bot = self.connect()
        c = self.campaign(bot)
        base = {'type': 'event_callback', 'team_id': self.team_id, 'api_app_id': 'A123'}
        for event in ({'type': 'tokens_revoked', 'tokens': {'bot': [bot['bot_user_id']]}},
                      {'type': 'app_uninstalled'}):
            status, _, body = post_slack(dict(base, event_id='Ev' + uuid.uuid4().hex[:8],
                                              event=event))
            self.assertEqual(status, 200, body)
            self.assertEqual(self.bot_status(bot), 'active', event)
            self.assertEqual(self.tokens(bot), '1', event)
            self.assertEqual(self.campaign_status(c), 'scheduled', event)
        self.assertIn('kept (reconnected since)', S.log('api'))
        S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')

    def test_stored_app_id_must_match(self):
        bot = self.connect()
        S.sql(f"UPDATE bots SET app_id = 'AOURS' WHERE id = '{bot['id']}'")
        post_slack({'type': 'event_callback', 'team_id': self.team_id, 'api_app_id': 'ATHEIRS',
                    'event_id': 'EvX', 'event': {'type': 'app_uninstalled'}})
        self.assertEqual(self.bot_status(bot), 'active')
        S.sim('POST', '/_sim/faults', {'revoke_token': self.team_id})
        post_slack({'type': 'event_callback', 'team_id': self.team_id, 'api_app_id': 'AOURS',
                    'event_id': 'EvY', 'event': {'type': 'app_uninstalled'}})
        self.assertEqual(self.bot_status(bot), 'token_invalid')
        self.assertEqual(self.tokens(bot), '0')
        S.api('DELETE', f'/v1/orgs/{self.org}/bots/{bot["id"]}')


class MessengerTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.org = signup('Messenger Webhooks Inc')
        cls.page_id = str(100000000 + int(uuid.uuid4().int % 100000000))
        cls.bot_id = one(
            "INSERT INTO bots (org_id, platform, status, name, page_id) VALUES "
            f"('{cls.org}', 'messenger', 'active', 'Test Page', '{cls.page_id}') RETURNING id")
        cls.campaign_id = one(
            "INSERT INTO campaigns (org_id, bot_id, name, status, message, audience, schedule)"
            f" VALUES ('{cls.org}', '{cls.bot_id}', 'M', 'running', '{{\"text\":\"hi\"}}',"
            " '{\"filter\":{\"all\":true}}', '{\"mode\":\"now\"}') RETURNING id")
        # Two runs (as of a recurring campaign), so one person has two deliveries.
        cls.run_ids = [one(f"INSERT INTO campaign_runs (campaign_id, occurrence, status) VALUES "
                           f"('{cls.campaign_id}', now() - interval '{d} days', 'loaded')"
                           " RETURNING id") for d in (1, 2)]

    def delivery(self, psid, status, sent_at_ms, run=0):
        return one(
            "INSERT INTO deliveries (org_id, campaign_id, run_id, recipient_id, due_at, status,"
            f" sent_at) VALUES ('{self.org}', '{self.campaign_id}', '{self.run_ids[run]}',"
            f" '{psid}', now(), '{status}', to_timestamp({sent_at_ms} / 1000.0)) RETURNING id")

    def test_subscription_check(self):
        url = S.api_url + '/v1/webhooks/messenger'
        status, headers, body = http_request(
            f'{url}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=12345')
        self.assertEqual(status, 200, body)
        self.assertEqual(body, '12345')
        self.assertTrue(headers['content-type'].startswith('text/plain'))
        for query in (f'hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1',
                      f'hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1',
                      'hub.challenge=1'):
            with self.subTest(query):
                status, _, problem = http_request(f'{url}?{query}')
                self.assertEqual(status, 403, problem)
                self.assertNotIn(VERIFY_TOKEN, json.dumps(problem))

    def test_signature_is_required(self):
        payload = {'object': 'page', 'entry': []}
        self.assertEqual(post_messenger(payload)[0], 200)
        status, _, problem = post_messenger(payload, secret='not-the-app-secret')
        self.assertEqual(status, 401, problem)
        self.assertIn('does not match', problem['detail'])
        status, _, problem = post_messenger(payload, signature='')
        self.assertEqual(status, 401, problem)
        self.assertIn('missing', problem['detail'])
        status, _, problem = post_messenger(payload, signature='sha1=' + '0' * 40)
        self.assertEqual(status, 401, problem)

    def test_messages_record_subscribers(self):
        psid = 'PSID' + uuid.uuid4().hex[:10]
        t1 = int(time.time() * 1000) - 3600 * 1000
        payload = {'object': 'page', 'entry': [{'id': self.page_id, 'time': t1, 'messaging': [
            {'sender': {'id': psid}, 'recipient': {'id': self.page_id}, 'timestamp': t1,
             'message': {'mid': 'm1', 'text': 'hello'}}]}]}
        status, _, body = post_messenger(payload)
        self.assertEqual(status, 200, body)
        q = (f"SELECT (extract(epoch FROM last_message_at) * 1000)::bigint FROM "
             f"messenger_subscribers WHERE bot_id = '{self.bot_id}' AND psid = '{psid}'")
        self.assertEqual(int(one(q)), t1)
        # The same delivery again, and an older message: the latest time stays.
        post_messenger(payload)
        older = json.loads(json.dumps(payload))
        older['entry'][0]['messaging'][0]['timestamp'] = t1 - 60000
        post_messenger(older)
        self.assertEqual(int(one(q)), t1)
        newer = json.loads(json.dumps(payload))
        newer['entry'][0]['messaging'][0]['timestamp'] = t1 + 60000
        post_messenger(newer)
        self.assertEqual(int(one(q)), t1 + 60000)
        # The page's own echo is not a person writing.
        echo_psid = 'PSID' + uuid.uuid4().hex[:10]
        post_messenger({'object': 'page', 'entry': [{'id': self.page_id, 'messaging': [
            {'sender': {'id': echo_psid}, 'recipient': {'id': 'X'}, 'timestamp': t1,
             'message': {'mid': 'm2', 'text': 'from the page', 'is_echo': True}}]}]})
        self.assertEqual(one(f"SELECT count(*) FROM messenger_subscribers WHERE psid = "
                             f"'{echo_psid}'"), '0')
        # An unknown page records nothing, and is still acknowledged.
        stray = 'PSID' + uuid.uuid4().hex[:10]
        status, _, _ = post_messenger({'object': 'page', 'entry': [{'id': '999', 'messaging': [
            {'sender': {'id': stray}, 'recipient': {'id': '999'}, 'timestamp': t1,
             'message': {'mid': 'm3', 'text': 'hi'}}]}]})
        self.assertEqual(status, 200)
        self.assertEqual(one(f"SELECT count(*) FROM messenger_subscribers WHERE psid = "
                             f"'{stray}'"), '0')
        # Nothing of the message's content is stored.
        self.assertNotIn('hello', S.pg_dump().split('COPY public.messenger_subscribers')[1]
                         .split('\\.')[0])

    def test_read_watermark_marks_sent_deliveries(self):
        psid = 'PSID' + uuid.uuid4().hex[:10]
        other = 'PSID' + uuid.uuid4().hex[:10]
        t0 = int(time.time() * 1000) - 600 * 1000
        before = self.delivery(psid, 'sent', t0)
        after = self.delivery(psid, 'sent', t0 + 10000, run=1)
        failed = self.delivery(psid + 'F', 'failed', t0)
        someone_else = self.delivery(other, 'sent', t0)
        read_at = t0 + 20000
        payload = {'object': 'page', 'entry': [{'id': self.page_id, 'messaging': [
            {'sender': {'id': psid}, 'recipient': {'id': self.page_id}, 'timestamp': read_at,
             'read': {'watermark': t0 + 5000}}]}]}
        status, _, body = post_messenger(payload)
        self.assertEqual(status, 200, body)
        self.assertEqual(body['read'], 1)

        def state(d):
            return S.sql(f"SELECT status, (extract(epoch FROM read_at) * 1000)::bigint "
                         f"FROM deliveries WHERE id = {d}")[0]
        self.assertEqual(state(before)[0], 'read')
        self.assertEqual(int(state(before)[1]), read_at)
        self.assertEqual(state(after)[0], 'sent')
        self.assertEqual(state(failed)[0], 'failed')
        self.assertEqual(state(someone_else)[0], 'sent')
        # Again: nothing more changes; a later watermark reads the second one.
        self.assertEqual(post_messenger(payload)[2]['read'], 0)
        payload['entry'][0]['messaging'][0]['read']['watermark'] = t0 + 15000
        self.assertEqual(post_messenger(payload)[2]['read'], 1)
        self.assertEqual(state(after)[0], 'read')
        status, _, c = S.api('GET', f'/v1/orgs/{self.org}/campaigns/{self.campaign_id}')
        self.assertEqual(status, 200, c)
        self.assertEqual(c['stats']['read'], 2)

    def test_delivery_receipts_and_junk_are_acknowledged(self):
        payload = {'object': 'page', 'entry': [{'id': self.page_id, 'messaging': [
            {'sender': {'id': 'P1'}, 'recipient': {'id': self.page_id},
             'timestamp': int(time.time() * 1000), 'delivery': {'mids': ['m'],
                                                                 'watermark': 1}},
            {'sender': {}, 'timestamp': 'soon'}, 'not an object']}]}
        status, _, body = post_messenger(payload)
        self.assertEqual(status, 200, body)
        self.assertEqual(post_messenger({'object': 'instagram'})[0], 200)


class SimulatorDeliveryTests(unittest.TestCase):
    """slack-sim signs with the same secret and posts to our endpoint itself."""

    def test_slack_sim_events(self):
        org = signup('Simulated Slack Inc')
        _, _, ws = S.sim('GET', '/_sim/workspaces')
        workspaces = ws.get('workspaces', ws) if isinstance(ws, dict) else ws
        self.assertGreaterEqual(len(workspaces), 2)
        w = workspaces[1]
        team = w.get('team_id') or w.get('id')
        status, _, bot = S.api('POST', f'/v1/orgs/{org}/bots',
                               {'platform': 'slack', 'token': w.get('bot_token') or w['token']})
        self.assertEqual(status, 201, bot)

        _, _, answer = S.sim('POST', '/_sim/events', {'type': 'url_verification',
                                                      'team_id': team})
        self.assertEqual(answer['status'], 200, answer)
        self.assertTrue(answer['challenge_echoed'], answer)
        # Forged and stale deliveries are refused and change nothing.
        _, _, answer = S.sim('POST', '/_sim/events', {'type': 'app_uninstalled', 'team_id': team,
                                                      'bad_signature': True})
        self.assertEqual(answer['status'], 401, answer)
        _, _, answer = S.sim('POST', '/_sim/events', {'type': 'app_uninstalled', 'team_id': team,
                                                      'timestamp_skew_s': -400})
        self.assertEqual(answer['status'], 401, answer)
        self.assertEqual(one(f"SELECT status FROM bots WHERE id = '{bot['id']}'"), 'active')

        _, _, answer = S.sim('POST', '/_sim/events', {'type': 'app_uninstalled', 'team_id': team})
        self.assertEqual(answer['status'], 200, answer)
        self.assertEqual(one(f"SELECT status FROM bots WHERE id = '{bot['id']}'"),
                         'token_invalid')
        self.assertEqual(one(f"SELECT count(*) FROM bot_tokens WHERE bot_id = '{bot['id']}'"),
                         '0')
        _, _, answer = S.sim('POST', '/_sim/events', {'type': 'app_uninstalled', 'team_id': team,
                                                      'retry_num': 1})
        self.assertEqual(answer['status'], 200, answer)


class SecretConfigTests(unittest.TestCase):
    """BCRM_SLACK_SIGNING_SECRET_FILE, and refusing to start on ambiguous secrets."""

    def other_api_env(self, extra):
        env = {'BCRM_API_ADDR': f'127.0.0.1:{S.free_port()}',
               'BCRM_API_QUERY_SLACK_URL': f'tcp://127.0.0.1:{S.free_port()}',
               'BCRM_API_QUERY_MESSENGER_URL': f'tcp://127.0.0.1:{S.free_port()}'}
        env.update(API_ENV)
        env.update(extra)
        return env

    def test_secret_from_file(self):
        path = os.path.join(S.work_dir, 'slack-signing-secret')
        with open(path, 'w') as f:
            f.write('file-secret-' + 'x' * 20 + '\n')
        os.chmod(path, 0o600)
        env = self.other_api_env({'BCRM_SLACK_SIGNING_SECRET': '',
                                  'BCRM_SLACK_SIGNING_SECRET_FILE': path})
        proc = S.start('api', replica=1, env=env)
        try:
            url = f'http://{env["BCRM_API_ADDR"]}/v1/webhooks/slack/events'
            body = b'{"type":"url_verification","challenge":"from-file"}'
            ts = int(time.time())
            for secret, expect in (('file-secret-' + 'x' * 20, 200), (SLACK_SECRET, 401)):
                status, _, answer = http_request(url, 'POST', body, {
                    'X-Slack-Request-Timestamp': str(ts),
                    'X-Slack-Signature': slack_signature(body, ts, secret)})
                self.assertEqual(status, expect, answer)
        finally:
            self.assertEqual(S.kill('api', replica=1, sig=15), 0)
        del proc

    def test_both_or_open_file_refuse_to_start(self):
        path = os.path.join(S.work_dir, 'open-secret')
        with open(path, 'w') as f:
            f.write('secret')
        for name, extra in (
                ('both', {'BCRM_SLACK_SIGNING_SECRET_FILE': path}),
                ('world-readable', {'BCRM_SLACK_SIGNING_SECRET': '',
                                    'BCRM_SLACK_SIGNING_SECRET_FILE': path})):
            with self.subTest(name):
                os.chmod(path, 0o600 if name == 'both' else 0o644)
                env = S.process_env('api', 2, self.other_api_env(extra))
                res = subprocess.run([S.binary('api')], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, timeout=60)
                self.assertEqual(res.returncode, 2, res.stderr[-2000:])
                self.assertIn('BCRM_SLACK_SIGNING_SECRET', res.stderr)
                self.assertNotIn(SLACK_SECRET, res.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
