#!/usr/bin/python3
"""System test of segments (spec/api.md, "Segments"): create, list, read, replace and
delete, the live preview read through sender-slack from slack-sim (counted against
the simulator's own record of its population), and campaigns whose audience names a
segment (the segment's filter is copied into the campaign).

Real processes: PostgreSQL, slack-sim, vault, sender-slack, api.
"""
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR',
                os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                'scripts'))
from stack import Stack, http_request  # noqa: E402

S = None


def setUpModule():
    global S
    S = Stack()
    S.start_postgres()
    S.make_keys()
    S.start('slack-sim', wait=False)
    S.start('vault', wait=False)
    S.start('sender-slack', wait=False)
    S.start('api', env={'BCRM_PASSWORD_HASH_COST': 'min', 'BCRM_API_QUERY_TIMEOUT': '10s'},
            wait=False)
    S.wait_ready([S.procs[k] for k in ('slack-sim', 'vault', 'sender-slack', 'api')])


def tearDownModule():
    codes = S.stop()
    assert codes.get('api') == 0, f'api did not exit cleanly: {codes}'


def signup(org_name):
    email = f'seg{uuid.uuid4().hex[:10]}@example.com'
    status, _, body = S.api('POST', '/v1/signup', {
        'name': 'Segment Owner', 'email': email, 'password': 'long enough password',
        'org_name': org_name})
    assert status == 201, body
    return body['org']['id']


def api_key(org):
    status, _, key = S.api('POST', f'/v1/orgs/{org}/api-keys', {'name': 'segments test'})
    assert status == 201, key
    return key['key']


def as_key(key, method, path, body=None):
    return http_request(S.api_url + path, method, body,
                        {'Authorization': f'Bearer {key}', 'Accept': 'application/json'})


class SegmentTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.org = signup('Segments Inc')
        cls.key = api_key(cls.org)
        _, _, ws = S.sim('GET', '/_sim/workspaces')
        workspaces = ws.get('workspaces', ws) if isinstance(ws, dict) else ws
        cls.ws = workspaces[0]
        cls.team_id = cls.ws.get('team_id') or cls.ws.get('id')
        token = cls.ws.get('bot_token') or cls.ws.get('token')
        status, _, cls.bot = cls.req('POST', f'/v1/orgs/{cls.org}/bots',
                                     {'platform': 'slack', 'token': token})
        assert status == 201, cls.bot
        status, _, cls.bot2 = cls.req('POST', f'/v1/orgs/{cls.org}/bots',
                                      {'platform': 'slack', 'token': token})
        assert status == 201, cls.bot2
        _, _, population = S.sim('GET', f'/_sim/users?team_id={cls.team_id}')
        cls.population = population['users']
        # A second org, to prove tenancy.
        cls.other_org = signup('Other Inc')
        cls.other_key = api_key(cls.other_org)

    @classmethod
    def req(cls, method, path, body=None):
        return as_key(cls.key, method, path, body)

    def setUp(self):
        S.sim('POST', '/_sim/reset', {})

    def expected(self, accept):
        """Ids the scheduler would send to: not bots, not deleted, not Slackbot or the
        bot itself, and accepted by the filter."""
        return {u['id'] for u in self.population
                if not u['is_bot'] and not u['deleted'] and u['id'] != 'USLACKBOT'
                and u['id'] != self.bot['bot_user_id'] and accept(u)}

    def create(self, filter_, name='Segment', bot=None):
        status, _, seg = self.req('POST', f'/v1/orgs/{self.org}/segments', {
            'name': name, 'bot_id': (bot or self.bot)['id'], 'filter': filter_})
        self.assertEqual(status, 201, seg)
        return seg

    def preview(self, seg, query=''):
        return self.req('GET', f'/v1/orgs/{self.org}/segments/{seg["id"]}/preview{query}')

    def test_crud_and_tenancy(self):
        seg = self.create({'timezones': ['Europe/Berlin']}, name='Berlin')
        self.assertEqual(seg['name'], 'Berlin')
        self.assertEqual(seg['bot_id'], self.bot['id'])
        self.assertEqual(seg['filter'], {'timezones': ['Europe/Berlin']})
        base = f'/v1/orgs/{self.org}/segments'
        status, _, got = self.req('GET', f'{base}/{seg["id"]}')
        self.assertEqual((status, got), (200, seg))
        other = self.create({'all': True}, name='Everyone', bot=self.bot2)
        status, _, listed = self.req('GET', base)
        self.assertEqual(status, 200, listed)
        ids = [s['id'] for s in listed['segments']]
        self.assertLess(ids.index(other['id']), ids.index(seg['id']))  # newest first
        status, _, narrowed = self.req('GET', f'{base}?bot_id={self.bot2["id"]}')
        self.assertEqual({s['bot_id'] for s in narrowed['segments']}, {self.bot2['id']})

        status, _, replaced = self.req('PUT', f'{base}/{seg["id"]}', {
            'name': 'Berlin admins', 'bot_id': self.bot['id'],
            'filter': {'timezones': ['Europe/Berlin'], 'is_admin': True}})
        self.assertEqual(status, 200, replaced)
        self.assertEqual(replaced['name'], 'Berlin admins')
        self.assertEqual(replaced['filter']['is_admin'], True)
        self.assertEqual(replaced['created_at'], seg['created_at'])

        # Another org sees none of it, and cannot use it.
        for method, path, body in (('GET', f'{base}/{seg["id"]}', None),
                                   ('PUT', f'{base}/{seg["id"]}', {'name': 'x', 'bot_id':
                                                                   self.bot['id'],
                                                                   'filter': {'all': True}}),
                                   ('DELETE', f'{base}/{seg["id"]}', None),
                                   ('GET', f'{base}/{seg["id"]}/preview', None)):
            status, _, problem = as_key(self.other_key, method, path, body)
            self.assertEqual(status, 404, (method, problem))
            status, _, problem = as_key(
                self.other_key, method,
                path.replace(self.org, self.other_org), body)
            self.assertEqual(status, 404 if method != 'PUT' else 422, (method, problem))
        status, _, listed = as_key(self.other_key, 'GET', f'/v1/orgs/{self.other_org}/segments')
        self.assertFalse({s['id'] for s in listed['segments']} & {seg['id'], other['id']})

        self.assertEqual(self.req('DELETE', f'{base}/{seg["id"]}')[0], 204)
        self.assertEqual(self.req('GET', f'{base}/{seg["id"]}')[0], 404)
        self.assertEqual(self.req('DELETE', f'{base}/{seg["id"]}')[0], 404)
        self.assertEqual(self.req('GET', f'{base}/not-a-uuid')[0], 404)

    def test_validation_names_the_field(self):
        base = f'/v1/orgs/{self.org}/segments'
        cases = [
            ({'bot_id': self.bot['id'], 'filter': {'all': True}}, 'name'),
            ({'name': 'x', 'filter': {'all': True}}, 'bot_id'),
            ({'name': 'x', 'bot_id': str(uuid.uuid4()), 'filter': {'all': True}}, 'bot_id'),
            ({'name': 'x', 'bot_id': self.bot['id']}, 'filter'),
            ({'name': 'x', 'bot_id': self.bot['id'], 'filter': {}}, 'filter'),
            ({'name': 'x', 'bot_id': self.bot['id'], 'filter': {'timezones': ['Mars/Base']}},
             'filter.timezones[0]'),
            ({'name': 'x', 'bot_id': self.bot['id'], 'filter': {'colour': 'red'}},
             'filter.colour'),
            ({'name': 'x', 'bot_id': self.bot['id'], 'filter': {'all': True}, 'extra': 1},
             'extra'),
            ({'name': '', 'bot_id': self.bot['id'], 'filter': {'all': True}}, 'name'),
        ]
        for body, field in cases:
            with self.subTest(field=field, body=body):
                status, _, problem = self.req('POST', base, body)
                self.assertEqual(status, 422, problem)
                self.assertEqual(problem['field'], field, problem)
        # Nothing half-written.
        self.assertEqual(S.sql(f"SELECT count(*) FROM segments WHERE org_id = '{self.org}'"
                               " AND name = 'x'")[0][0], '0')
        # The other org's bot is not one of ours.
        other_bot = S.sql(f"INSERT INTO bots (org_id, platform, status) VALUES "
                          f"('{self.other_org}', 'slack', 'active') RETURNING id")[0][0]
        status, _, problem = self.req('POST', base, {'name': 'x', 'bot_id': other_bot,
                                                     'filter': {'all': True}})
        self.assertEqual((status, problem['field']), (422, 'bot_id'), problem)

    def test_preview_counts_like_the_scheduler(self):
        zones = sorted({u['tz'] for u in self.population if u['tz']})[:3]
        domain = next(u['email'].split('@')[1] for u in self.population
                      if u.get('email') and not u['is_bot'])
        some = [u['id'] for u in self.population if not u['is_bot']][:5] + ['UNOBODY']
        cases = [
            ({'all': True}, lambda u: True),
            ({'timezones': zones}, lambda u: u['tz'] in zones),
            ({'is_admin': True}, lambda u: u['is_admin'] or u['is_owner']),
            ({'is_admin': False}, lambda u: not (u['is_admin'] or u['is_owner'])),
            ({'email_domain': domain}, lambda u: (u.get('email') or '').lower()
             .endswith('@' + domain.lower())),
            ({'user_ids': some}, lambda u: u['id'] in some),
            ({'all': True, 'timezones': zones, 'is_admin': False},
             lambda u: u['tz'] in zones and not (u['is_admin'] or u['is_owner'])),
        ]
        for filter_, accept in cases:
            with self.subTest(filter=filter_):
                seg = self.create(filter_)
                status, _, preview = self.preview(seg)
                self.assertEqual(status, 200, preview)
                expected = self.expected(accept)
                self.assertEqual(preview['kind'], 'users')
                self.assertEqual(preview['count'], len(expected))
                self.assertEqual(len(preview['sample']), min(10, len(expected)))
                self.assertLessEqual({u['id'] for u in preview['sample']}, expected)
                self.assertGreaterEqual(preview['pages_read'], 1)
        self.assertGreater(len(self.expected(lambda u: True)), 10)
        # Sample size, and a bad one.
        seg = self.create({'all': True})
        status, _, preview = self.preview(seg, '?sample=3')
        self.assertEqual((status, len(preview['sample'])), (200, 3), preview)
        status, _, problem = self.preview(seg, '?sample=500')
        self.assertEqual((status, problem['field']), (422, 'sample'), problem)
        # Nothing the preview read was stored.
        dump = S.pg_dump()
        for u in self.population[:30]:
            if u.get('email'):
                self.assertNotIn(u['email'], dump)
            if u.get('marker'):
                self.assertNotIn(u['marker'], dump)

    def test_preview_of_channels_and_members_of(self):
        seg = self.create({'channel_ids': ['C1', 'C2']})
        status, _, preview = self.preview(seg)
        self.assertEqual(status, 200, preview)
        self.assertEqual((preview['kind'], preview['count']), ('channels', 2))
        self.assertEqual([c['id'] for c in preview['sample']], ['C1', 'C2'])
        # members_of: the members of the channels (conversations.members, read live),
        # counted with the scheduler's code, against the simulator's own memberships.
        _, _, body = S.sim('GET', f'/_sim/channels?team_id={self.team_id}')
        channels = {c['name']: c for c in body['channels']}
        announcements, private = channels['announcements'], channels['sim-private']
        invisible = channels['secret-elsewhere']  # private, the bot is not in it
        by_id = {u['id']: u for u in self.population}
        cases = [
            ({'members_of': [announcements['id']]}, set(announcements['members'])),
            ({'members_of': [announcements['id'], private['id']], 'is_admin': False},
             {m for m in announcements['members'] + private['members']
              if not (by_id[m]['is_admin'] or by_id[m]['is_owner'])}),
            # Channels the bot cannot see have no members to give.
            ({'members_of': [invisible['id'], 'CNOSUCHCHAN']}, set()),
        ]
        for filter_, members in cases:
            with self.subTest(filter=filter_):
                # The second bot: the sender remembers the first one's rate limit from
                # test_preview_failures for 30 s (docs/architecture.md, "Live queries").
                seg = self.create(filter_, bot=self.bot2)
                status, _, preview = self.preview(seg)
                self.assertEqual(status, 200, preview)
                expected = self.expected(lambda u: u['id'] in members)
                self.assertEqual(preview['kind'], 'users')
                self.assertEqual(preview['count'], len(expected))
                self.assertLessEqual({u['id'] for u in preview['sample']}, expected)
                # A page of members per channel, then the users.
                self.assertGreater(preview['pages_read'], len(filter_['members_of']))
        self.assertGreater(len(self.expected(lambda u: u['id'] in announcements['members'])),
                           10)

    def test_preview_failures(self):
        seg = self.create({'all': True})
        S.sim('POST', '/_sim/faults', {'ratelimit_storm_seconds': 30})
        try:
            status, headers, problem = self.preview(seg)
            self.assertEqual(status, 429, problem)
            self.assertGreaterEqual(int(headers['retry-after']), 1)
        finally:
            S.sim('POST', '/_sim/faults', {'clear': True})
        # A bot that is not active cannot be previewed: Slack refuses its token (a
        # live read finds out and marks it token_invalid) until it is reconnected.
        token = self.ws.get('bot_token') or self.ws.get('token')
        seg2 = self.create({'all': True}, bot=self.bot2)
        S.sim('POST', '/_sim/faults', {'revoke_token': self.team_id})
        try:
            status, _, problem = self.req('GET', f'/v1/orgs/{self.org}/bots/{self.bot2["id"]}'
                                                 f'/users')
            self.assertEqual(status, 502, problem)
            status, _, problem = self.preview(seg2)
            self.assertEqual(status, 409, problem)
            self.assertIn('token_invalid', problem['detail'])
        finally:
            S.sim('POST', '/_sim/faults', {'restore_token': self.team_id})
            status, _, bot = self.req('POST', f'/v1/orgs/{self.org}/bots/{self.bot2["id"]}/token',
                                      {'token': token})
            self.assertEqual((status, bot.get('status')), (200, 'active'), bot)
        status, _, preview = self.preview(seg2)
        self.assertEqual(status, 200, preview)

    def campaign(self, audience, bot=None):
        return self.req('POST', f'/v1/orgs/{self.org}/campaigns', {
            'name': 'From a segment', 'bot_id': (bot or self.bot)['id'],
            'message': {'text': 'Hi {{first_name}}'}, 'audience': audience,
            'schedule': {'mode': 'now'}})

    def test_campaign_copies_the_segment_filter(self):
        filter_ = {'timezones': ['Europe/Berlin', 'Asia/Kolkata'], 'is_admin': False}
        seg = self.create(filter_, name='For a campaign')
        status, _, c = self.campaign({'segment_id': seg['id']})
        self.assertEqual(status, 201, c)
        self.assertEqual(c['audience'], {'segment_id': seg['id'], 'filter': filter_})
        stored = S.sql(f"SELECT audience->'filter' = '{{\"timezones\": [\"Europe/Berlin\","
                       f" \"Asia/Kolkata\"], \"is_admin\": false}}'::jsonb FROM campaigns"
                       f" WHERE id = '{c['id']}'")[0][0]
        self.assertEqual(stored, 't')
        # Changing or deleting the segment later leaves the campaign as it was made.
        self.req('PUT', f'/v1/orgs/{self.org}/segments/{seg["id"]}',
                 {'name': 'changed', 'bot_id': self.bot['id'], 'filter': {'all': True}})
        self.assertEqual(self.req('DELETE', f'/v1/orgs/{self.org}/segments/{seg["id"]}')[0], 204)
        status, _, again = self.req('GET', f'/v1/orgs/{self.org}/campaigns/{c["id"]}')
        self.assertEqual(again['audience']['filter'], filter_)

        # A segment of another bot, an unknown one, another org's, a malformed id.
        other_bots = self.create({'all': True}, bot=self.bot2)
        status, _, problem = self.campaign({'segment_id': other_bots['id']})
        self.assertEqual((status, problem['field']), (422, 'audience.segment_id'), problem)
        self.assertIn('not the campaign', problem['detail'])
        status, _, problem = self.campaign({'segment_id': seg['id']})  # deleted
        self.assertEqual((status, problem['field']), (422, 'audience.segment_id'), problem)
        other_bot = S.sql(f"INSERT INTO bots (org_id, platform, status) VALUES "
                          f"('{self.other_org}', 'slack', 'active') RETURNING id")[0][0]
        foreign = S.sql(f"INSERT INTO segments (org_id, bot_id, name, filter) VALUES "
                        f"('{self.other_org}', '{other_bot}', 'theirs', '{{\"all\":true}}')"
                        " RETURNING id")[0][0]
        status, _, problem = self.campaign({'segment_id': foreign})
        self.assertEqual((status, problem['field']), (422, 'audience.segment_id'), problem)
        status, _, problem = self.campaign({'segment_id': 'seg-1'})
        self.assertEqual((status, problem['field']), (422, 'audience.segment_id'), problem)
        status, _, problem = self.campaign({'segment_id': other_bots['id'],
                                            'filter': {'all': True}})
        self.assertEqual((status, problem['field']), (422, 'audience'), problem)

    def test_viewer_reads_but_cannot_write(self):
        seg = self.create({'all': True})
        # A viewer account in the org.
        email = f'viewer{uuid.uuid4().hex[:8]}@example.com'
        status, _, _ = http_request(S.api_url + '/v1/signup', 'POST', {
            'name': 'Viewer', 'email': email, 'password': 'long enough password',
            'org_name': 'Viewer Org'})
        self.assertEqual(status, 201)
        status, _, m = self.req('POST', f'/v1/orgs/{self.org}/members',
                                {'email': email, 'role': 'viewer'})
        self.assertEqual(status, 201, m)
        status, headers, login = http_request(S.api_url + '/v1/login', 'POST',
                                              {'email': email, 'password':
                                               'long enough password'})
        cookie = [v for k, v in headers['_all'] if k.lower() == 'set-cookie'][0].split(';')[0]
        hdrs = {'Cookie': cookie, 'X-CSRF-Token': login['csrf_token']}
        status, _, got = http_request(S.api_url + f'/v1/orgs/{self.org}/segments/{seg["id"]}',
                                      'GET', None, hdrs)
        self.assertEqual(status, 200, got)
        status, _, problem = http_request(S.api_url + f'/v1/orgs/{self.org}/segments', 'POST',
                                          {'name': 'v', 'bot_id': self.bot['id'],
                                           'filter': {'all': True}}, hdrs)
        self.assertEqual(status, 403, problem)


if __name__ == '__main__':
    unittest.main(verbosity=2)
