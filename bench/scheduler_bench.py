#!/usr/bin/python3
"""bench/scheduler_bench.py: bcrm end to end, scheduler first (bench/README.md, "Scheduler").

Run by bench/scheduler.sh. Every case starts the whole system with scripts/stack.py
(throwaway PostgreSQL, vault, api, scheduler, sender-slack replicas, slack-sim) on free
ports, connects the simulator's bot through the api and schedules real campaigns:

  throughput  N recipients (100,000) all due at one instant, limits off: messages per
              second from the due instant to the last send (sent_at of the last
              delivery), and CPU seconds per 1,000 messages of each bcrm process
              (total: bcrm's own; PostgreSQL and slack-sim shown apart).
  lateness    a spread workload below capacity: deliveries of one campaign due one
              after another at RATE per second for SPREAD seconds; lateness is sent_at
              minus due_at, p50 and p99.
  million     a 1,000,000-recipient campaign: seconds to read the audience and write
              every delivery, then MILLION_SEND_S (60) seconds of its sends; peak RSS
              (VmHWM) of every service over all of it.
  slack       the simulator's Slack limits on (600/min per workspace), the scheduler's
              pacing at its defaults: the steady send rate against the allowed rate,
              and the share of chat.postMessage calls answered 429.

Each case prints JSON lines; the summary at the end gives the medians over RUNS runs.
USERS and MILLION are recipients: the simulator generates enough users for that many
reachable people (about 6% of its users are bots, deleted or Slackbot), and each case
reports the deliveries it actually had.

Environment: RUNS (3), USERS (100000), MILLION (1000000; 0 skips the case), RATE (2000),
SPREAD (10), SLACK_USERS (600), SENDERS (2), CASES (all: throughput,lateness,million,slack).
"""
import datetime
import json
import os
import re
import statistics
import sys
import time

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SOURCE_DIR, 'scripts'))
from stack import Stack  # noqa: E402

RUNS = int(os.environ.get('RUNS', '3'))
USERS = int(os.environ.get('USERS', '100000'))
MILLION = int(os.environ.get('MILLION', '1000000'))
MILLION_SEND_S = int(os.environ.get('MILLION_SEND_S', '60'))
RATE = int(os.environ.get('RATE', '2000'))
SPREAD = int(os.environ.get('SPREAD', '10'))
SLACK_USERS = int(os.environ.get('SLACK_USERS', '600'))
SENDERS = int(os.environ.get('SENDERS', '2'))
CASES = os.environ.get('CASES', 'throughput,lateness,million,slack').split(',')
TICK = os.sysconf('SC_CLK_TCK')
SERVICES = ['scheduler', 'api', 'vault', 'sender-messenger'] + [
    f'sender-slack#{r}' if r else 'sender-slack' for r in range(SENDERS)]

# Limits off, batches as large as the bus allows.
FAST = {'BCRM_SLACK_RATE_PER_MINUTE': '0', 'BCRM_SCHEDULER_PAGE_SIZE': '1000',
        'BCRM_SCHEDULER_BATCH': '2000', 'BCRM_SCHEDULER_MAX_IN_FLIGHT': '20000',
        'BCRM_SCHEDULER_BOT_IN_FLIGHT': '500ms', 'BCRM_LOG_LEVEL': 'warn'}
SENDER = {'BCRM_SENDER_MAX_IN_FLIGHT': '256', 'BCRM_LOG_LEVEL': 'warn',
          'BCRM_SENDER_RESULT_BATCH': '256'}


# Of slack-sim's generated users (seed 7), the share that are people an {"all": true}
# audience reaches; the rest are bots, deleted users and Slackbot.
REACHABLE_SHARE = 0.9416


def population_for(recipients):
    """Generated users enough for at least that many recipients."""
    return int(recipients / REACHABLE_SHARE) + 50


def emit(obj):
    print(json.dumps(obj), flush=True)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(dt):
    return dt.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'


def proc_stat(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return 0.0


class System:
    def __init__(self, users, scheduler_env=None, sim_env=None):
        self.s = s = Stack()
        s.start_postgres()
        s.make_keys()
        started = [s.start('slack-sim', env=dict({'SLACK_SIM_USERS': str(users),
                                                  'SLACK_SIM_SEED': '7',
                                                  'SLACK_SIM_THREADS': '16'}, **(sim_env or {})),
                           wait=False),
                   s.start('vault', env={'BCRM_LOG_LEVEL': 'warn'}, wait=False),
                   s.start('scheduler', env=dict(FAST, **(scheduler_env or {})), wait=False),
                   s.start('api', env={'BCRM_LOG_LEVEL': 'warn'}, wait=False)]
        started += [s.start('sender-slack', r, env=SENDER, wait=False) for r in range(SENDERS)]
        # Idle here (no Messenger campaign), but one of the five services all the same.
        started.append(s.start('sender-messenger', env=SENDER, wait=False))
        s.wait_ready(started, timeout=300)
        status, _, body = s.sim('GET', '/_sim/workspaces')
        ws = body['workspaces'][0] if isinstance(body, dict) else body[0]
        self.team_id = ws.get('team_id') or ws.get('id')
        status, _, body = s.api('POST', '/v1/signup', {
            'name': 'Bench', 'email': 'bench@bench.bcrm.test',
            'password': 'correct horse battery staple', 'org_name': 'Bench'})
        assert status == 201, body
        self.org = body['org']['id']
        status, _, bot = s.api('POST', f'/v1/orgs/{self.org}/bots',
                               {'platform': 'slack', 'token': ws.get('bot_token') or ws['token']})
        assert status == 201, bot
        self.bot = bot['id']

    def pids(self):
        return {k: p.popen.pid for k, p in self.s.procs.items() if k in SERVICES}

    def postgres_pids(self):
        """The postmaster and its children (backends, walwriter, checkpointer...)."""
        try:
            with open(os.path.join(self.s.pg.data_dir, 'postmaster.pid')) as f:
                master = int(f.readline())
        except (OSError, ValueError, AttributeError):
            return []
        pids = [master]
        for entry in os.listdir('/proc'):
            if entry.isdigit():
                try:
                    with open(f'/proc/{entry}/stat') as f:
                        if int(f.read().rsplit(')', 1)[1].split()[1]) == master:
                            pids.append(int(entry))
                except (OSError, ValueError):
                    pass
        return pids

    def cpu(self):
        """CPU seconds so far of each bcrm process, plus PostgreSQL's and slack-sim's
        (not bcrm's own, shown apart)."""
        out = {k: proc_stat(pid) for k, pid in self.pids().items()}
        total = 0.0
        for pid in self.postgres_pids():
            try:
                total += proc_stat(pid)
            except OSError:
                pass
        out['(postgres)'] = total
        out['(slack-sim)'] = proc_stat(self.s.procs['slack-sim'].popen.pid)
        return out

    def campaign(self, schedule, audience=None, **extra):
        body = {'name': 'bench', 'bot_id': self.bot, 'message': {'text': 'Hello from bcrm'},
                'audience': audience or {'filter': {'all': True}}, 'schedule': schedule}
        body.update(extra)
        status, _, c = self.s.api('POST', f'/v1/orgs/{self.org}/campaigns', body)
        assert status == 201, c
        cid = c['id']
        status, _, body = self.s.api('POST', f'/v1/orgs/{self.org}/campaigns/{cid}/schedule')
        assert status in (200, 202), body
        return cid

    def status(self, cid):
        return self.s.sql(f"SELECT status FROM campaigns WHERE id = '{cid}'")[0][0]

    def wait_status(self, cid, statuses, timeout):
        deadline = time.monotonic() + timeout
        while self.status(cid) not in statuses:
            if time.monotonic() > deadline:
                raise RuntimeError(f'campaign {cid} not {statuses} after {timeout}s')
            time.sleep(0.2)

    def stop(self):
        self.s.stop()


def case_throughput(results):
    sysm = System(population_for(USERS))
    try:
        for run in range(RUNS):
            sysm.s.sim('POST', '/_sim/reset', {})
            due = utc_now() + datetime.timedelta(seconds=25 + USERS / 5000)
            cid = sysm.campaign({'mode': 'at', 'at': rfc3339(due)})
            sysm.wait_status(cid, ('running',), 300)
            while utc_now() < due - datetime.timedelta(seconds=0.5):
                time.sleep(0.1)
            cpu0 = sysm.cpu()
            sysm.wait_status(cid, ('completed',), 600)
            cpu1 = sysm.cpu()
            row = sysm.s.sql("SELECT count(*) FILTER (WHERE status = 'sent'), count(*),"
                             " extract(epoch FROM max(sent_at) - min(due_at)),"
                             " extract(epoch FROM min(sent_at) - min(due_at))"
                             f" FROM deliveries WHERE campaign_id = '{cid}'")[0]
            sent, total, span = int(row[0]), int(row[1]), float(row[2])
            cpu = {k: round((cpu1[k] - cpu0[k]) * 1000.0 / max(sent, 1), 4) for k in cpu1}
            r = {'case': 'throughput', 'run': run, 'recipients': total, 'sent': sent,
                 'seconds': round(span, 3), 'msgs_per_s': round(sent / span, 1),
                 'first_send_after_due_s': round(float(row[3]), 4),
                 'cpu_s_per_1000': cpu,
                 'cpu_s_per_1000_total': round(sum(v for k, v in cpu.items()
                                                   if not k.startswith('(')), 4)}
            emit(r)
            results.setdefault('throughput', []).append(r)
    finally:
        sysm.stop()


def case_lateness(results):
    n = RATE * SPREAD
    sysm = System(max(n + 100, 1000))
    try:
        for run in range(RUNS):
            sysm.s.sim('POST', '/_sim/reset', {})
            far = utc_now() + datetime.timedelta(hours=2)
            cid = sysm.campaign({'mode': 'at', 'at': rfc3339(far)})
            sysm.wait_status(cid, ('running',), 300)
            # Spread the loaded deliveries: one every 1/RATE s from 3 s on; the rest of
            # the audience is cancelled.
            sysm.s.sql(
                "WITH d AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM deliveries"
                f" WHERE campaign_id = '{cid}')"
                " UPDATE deliveries x SET"
                "  due_at = CASE WHEN d.i < " + str(n) + " THEN now() + interval '3 s'"
                f"    + d.i * interval '1 s' / {RATE} ELSE x.due_at END,"
                "  status = CASE WHEN d.i < " + str(n) + " THEN 'pending' ELSE 'cancelled' END"
                " FROM d WHERE x.id = d.id")
            time.sleep(3 + SPREAD)
            sysm.wait_status(cid, ('completed',), 300)
            row = sysm.s.sql(
                "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY l),"
                " percentile_cont(0.99) WITHIN GROUP (ORDER BY l), max(l) FROM ("
                " SELECT extract(epoch FROM sent_at - due_at) * 1000 AS l FROM deliveries"
                f" WHERE campaign_id = '{cid}' AND status = 'sent') x")[0]
            r = {'case': 'lateness', 'run': run, 'rate_per_s': RATE, 'seconds': SPREAD,
                 'sent': int(row[0]), 'p50_ms': round(float(row[1]), 2),
                 'p99_ms': round(float(row[2]), 2), 'max_ms': round(float(row[3]), 2)}
            emit(r)
            results.setdefault('lateness', []).append(r)
    finally:
        sysm.stop()


def log_time(line):
    return datetime.datetime.fromisoformat(json.loads(line)['ts'].replace('Z', '+00:00'))


def case_million(results):
    if MILLION <= 0:
        return
    for run in range(RUNS):
        million_run(results, run)


def million_run(results, run):
    """One fresh system each run: a second million in the same table would measure
    a table twice the size."""
    sysm = System(population_for(MILLION), scheduler_env={'BCRM_LOG_LEVEL': 'info'})
    try:
        due = utc_now() + datetime.timedelta(seconds=90)
        cid = sysm.campaign({'mode': 'at', 'at': rfc3339(due)})
        sysm.wait_status(cid, ('running',), 600)
        log = sysm.s.log('scheduler')
        started = [log_time(line) for line in log.splitlines() if 'audience pass started' in line]
        loaded = [log_time(line) for line in log.splitlines() if '"run loaded"' in line]
        written = int(sysm.s.sql(f"SELECT count(*) FROM deliveries WHERE campaign_id = '{cid}'")[0][0])
        load_s = (loaded[0] - started[0]).total_seconds()
        emit({'case': 'million', 'run': run, 'phase': 'load', 'deliveries': written,
              'seconds': round(load_s, 2), 'rows_per_s': round(written / load_s)})
        # Then MILLION_SEND_S seconds of sending (the whole million would take minutes at
        # this machine's rate, and RSS is flat by then), and the campaign is cancelled.
        while utc_now() < due:
            time.sleep(0.2)
        time.sleep(MILLION_SEND_S)
        row = sysm.s.sql("SELECT count(*) FILTER (WHERE status = 'sent'),"
                         " extract(epoch FROM max(sent_at) - min(due_at))"
                         f" FROM deliveries WHERE campaign_id = '{cid}'")[0]
        rss = {k: round(peak_rss_mb(pid), 1) for k, pid in sysm.pids().items()}
        sysm.s.api('POST', f'/v1/orgs/{sysm.org}/campaigns/{cid}/cancel')
        r = {'case': 'million', 'run': run, 'deliveries': written,
             'load_seconds': round(load_s, 2), 'sent': int(row[0]),
             'send_seconds': round(float(row[1]), 2),
             'msgs_per_s': round(int(row[0]) / float(row[1]), 1), 'peak_rss_mb': rss,
             'peak_rss_mb_max': max(rss.values())}
        emit(r)
        results.setdefault('million', []).append(r)
    finally:
        sysm.stop()


def case_slack(results):
    sysm = System(SLACK_USERS, scheduler_env={'BCRM_SLACK_RATE_PER_MINUTE': '600',
                                              'BCRM_SCHEDULER_BATCH': '500'},
                  sim_env={'SLACK_SIM_LIMITS': 'on'})
    try:
        for run in range(RUNS):
            # A reset also refills the simulator's workspace bucket (600 a minute).
            sysm.s.sim('POST', '/_sim/reset', {})
            cid = sysm.campaign({'mode': 'now'})
            sysm.wait_status(cid, ('completed',), 600)
            status, _, body = sysm.s.sim('GET', f'/_sim/messages?team_id={sysm.team_id}')
            arrivals = sorted(m['arrival_ms'] for m in body['messages'])
            steady = arrivals[10:]  # after the scheduler's own burst of 10
            rate = (len(steady) - 1) / ((steady[-1] - steady[0]) / 1000.0)
            status, _, stats = sysm.s.sim('GET', '/_sim/stats')
            posts = stats['by_method'].get('chat.postMessage', 0)
            r = {'case': 'slack', 'run': run, 'messages': len(arrivals),
                 'steady_per_s': round(rate, 3), 'allowed_per_s': 10.0,
                 'share_of_allowed': round(rate / 10.0, 4),
                 'posts': posts, 'ratelimited': stats['ratelimited'],
                 'ratelimited_share': round(stats['ratelimited'] / max(posts, 1), 5)}
            emit(r)
            results.setdefault('slack', []).append(r)
    finally:
        sysm.stop()


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    results = {}
    for name in CASES:
        {'throughput': case_throughput, 'lateness': case_lateness,
         'million': case_million, 'slack': case_slack}[name](results)
    summary = {}
    if 'throughput' in results:
        rows = results['throughput']
        summary['throughput_msgs_per_s'] = median(rows, 'msgs_per_s')
        summary['cpu_s_per_1000_total'] = median(rows, 'cpu_s_per_1000_total')
        summary['cpu_s_per_1000'] = {k: statistics.median(r['cpu_s_per_1000'][k] for r in rows)
                                     for k in rows[0]['cpu_s_per_1000']}
    if 'lateness' in results:
        summary['lateness_p50_ms'] = median(results['lateness'], 'p50_ms')
        summary['lateness_p99_ms'] = median(results['lateness'], 'p99_ms')
    if 'million' in results:
        rows = results['million']
        summary['million_load_seconds'] = median(rows, 'load_seconds')
        summary['million_msgs_per_s'] = median(rows, 'msgs_per_s')
        summary['million_peak_rss_mb_max'] = max(r['peak_rss_mb_max'] for r in rows)
        summary['million_peak_rss_mb'] = {k: max(r['peak_rss_mb'][k] for r in rows)
                                          for k in rows[0]['peak_rss_mb']}
    if 'slack' in results:
        summary['slack_share_of_allowed'] = median(results['slack'], 'share_of_allowed')
        summary['slack_ratelimited_share'] = median(results['slack'], 'ratelimited_share')
    emit({'summary': summary, 'runs': RUNS})


if __name__ == '__main__':
    main()
