#!/usr/bin/python3
"""messenger-sim's automatic receipts reach bcrm and turn deliveries read.

The real stack (PostgreSQL, vault, scheduler, api, sender-messenger and
messenger-sim) with the simulator posting its webhooks to the api's
/v1/webhooks/messenger, signed with the app secret both know. A campaign goes to
people inside the 24-hour window; with receipts on (POST /_sim/receipts), the
simulator follows each message with a delivery event naming its message id and,
for the people who read (GET /_sim/users: "reads"), a read event whose watermark
marks everything sent before it as read:

* every delivery of a reader becomes 'read', with read_at after sent_at;
* every other delivery stays 'sent';
* the simulator's deliveries were all accepted (2xx) and named exactly the
  message ids the campaign's deliveries recorded.
"""
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.environ.get('BCRM_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'scripts'))
from stack import Stack  # noqa: E402
from e2e_helpers import (connect_bot, create_campaign, schedule_campaign, signup,  # noqa: E402
                         wait_until)

TIMEOUT_S = float(os.environ.get('BCRM_E2E_CAMPAIGN_TIMEOUT', '120'))
DAY_MS = 24 * 3600 * 1000
APP_SECRET = 'meta-app-secret-' + uuid.uuid4().hex
VERIFY_TOKEN = 'verify-' + uuid.uuid4().hex


class MessengerReceiptsTest(unittest.TestCase):
    def test_read_receipts_turn_deliveries_read(self):
        with Stack() as s:
            s.start_postgres()
            s.make_keys()
            started = [s.start('messenger-sim', wait=False, env={
                'MESSENGER_SIM_USERS': '40', 'MESSENGER_SIM_SEED': '91',
                'MESSENGER_SIM_APP_SECRET': APP_SECRET,
                'MESSENGER_SIM_VERIFY_TOKEN': VERIFY_TOKEN,
                'MESSENGER_SIM_WEBHOOK_URL': s.api_url + '/v1/webhooks/messenger'})]
            for name in ('vault', 'scheduler'):
                started.append(s.start(name, wait=False))
            started.append(s.start('api', wait=False, env={
                'BCRM_PASSWORD_HASH_COST': 'min', 'BCRM_MESSENGER_APP_SECRET': APP_SECRET,
                'BCRM_MESSENGER_VERIFY_TOKEN': VERIFY_TOKEN}))
            started.append(s.start('sender-messenger', wait=False))
            s.wait_ready(started)
            # The subscription check first, as Meta does it.
            status, _, body = s.msim('POST', '/_sim/verify_webhook', {})
            self.assertEqual((status, body['echoed']), (200, True), body)

            page = s.msim('GET', '/_sim/pages')[2]['pages'][0]
            org = signup(s, 'Receipts', 'receipts@e2e.bcrm.test', 'Receipts')
            bot = connect_bot(s, org, 'messenger', page['token'])
            # A read comes well after the answer, so bcrm has recorded the send.
            status, _, receipts = s.msim('POST', '/_sim/receipts', {
                'enabled': True, 'read_fraction': 0.5, 'delivery_delay_ms': 100,
                'read_delay_ms': 1500})
            self.assertEqual(status, 200, receipts)

            people = s.msim('GET', '/_sim/users?page_id=' + page['page_id'])[2]['users']
            now = time.time() * 1000
            inside = [u for u in people if not u['unavailable']
                      and now - u['last_message_ms'] < DAY_MS - 600000]
            readers = {u['psid'] for u in inside if u['reads']}
            self.assertGreater(len(readers), 2)
            self.assertGreater(len(inside) - len(readers), 2)
            path, c = create_campaign(s, org, {
                'name': 'Read me', 'bot_id': bot['id'],
                'message': {'text': 'Hi {{first_name|there}}, news for you'},
                'audience': {'filter': {'user_ids': [u['psid'] for u in inside]}},
                'schedule': {'mode': 'now'}, 'messenger': {'messaging_type': 'UPDATE'}})
            schedule_campaign(s, path)

            def deliveries():
                rows = s.sql(f"SELECT recipient_id, status, platform_message_id,"
                             f" read_at >= sent_at FROM deliveries"
                             f" WHERE campaign_id = '{c['id']}'")
                return {r[0]: (r[1], r[2], r[3]) for r in rows}

            def all_read(d):
                read = {p for p, v in d.items() if v[0] == 'read'}
                return len(d) == len(inside) and read == readers

            wait_until(f'every delivery, read by {sorted(readers)}', deliveries, all_read,
                       TIMEOUT_S, step=0.3)
            time.sleep(2)  # the last read events have come and gone
            d = deliveries()
            self.assertEqual({p for p, v in d.items() if v[0] == 'read'}, readers)
            self.assertEqual({v[0] for p, v in d.items() if p not in readers}, {'sent'})
            self.assertTrue(all(v[2] == 't' for p, v in d.items() if p in readers), d)
            # The simulator named the ids bcrm recorded, and bcrm took every post.
            stats = s.msim('GET', '/_sim/receipts')[2]
            self.assertEqual((stats['posts_failed'], stats['last_status'], stats['mids'],
                              stats['waiting']), (0, 200, len(inside), 0), stats)
            recorded = {m['ts'] for m in s.msim('GET', '/_sim/messages')[2]['messages']}
            self.assertEqual({v[1] for v in d.values()}, recorded)
            codes = s.stop()
            self.assertEqual({k: c for k, c in codes.items() if c != 0}, {})


if __name__ == '__main__':
    unittest.main(verbosity=2)
