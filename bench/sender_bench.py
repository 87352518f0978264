#!/usr/bin/python3
"""bench/sender_bench.py: one sender-slack process against a slow slack-sim.

Run by bench/sender.sh (see there and bench/README.md, "Senders"). Starts a
throwaway PostgreSQL, the vault, slack-sim with latency_ms (default 200) and one
sender-slack, all on free ports (scripts/stack.py), stores the workspace's token
in the vault, and then, RUNS times: feeds JOBS chat.postMessage jobs with
tests/integration/sender_driver (no scheduler), samples the sender's
bcrm_sender_in_flight gauge every 50 ms and its CPU time from /proc/<pid>/stat,
and prints one JSON line per run plus the medians.

The steady window of a run is the time during which in-flight stays at 90% or
more of its peak; in-flight and CPU are measured over it (the ramp-up and the
tail, where fewer requests are left, are not "keeping requests in flight").
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SOURCE_DIR, 'scripts'))
from stack import Stack  # noqa: E402

RUNS = int(os.environ.get('RUNS', '5'))
JOBS = int(os.environ.get('JOBS', '20000'))
LATENCY_MS = int(os.environ.get('LATENCY_MS', '200'))
SIM_THREADS = os.environ.get('SIM_THREADS', '8')
IN_FLIGHT = os.environ.get('IN_FLIGHT')  # BCRM_SENDER_MAX_IN_FLIGHT; default: the sender's
TICK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def in_flight(s):
    _, _, text = s.ops('sender-slack', '/metrics')
    for line in text.splitlines():
        if line.startswith('bcrm_sender_in_flight'):
            return float(line.split()[-1])
    return 0.0


def one_run(s, pid, env, driver, org, bot, people, run):
    jobs = [{'delivery_id': run * 1000000 + i, 'org_id': org, 'bot_id': bot,
             'recipient_id': people[i % len(people)], 'text': f'bench {run} {i}'}
            for i in range(JOBS)]
    fd, path = tempfile.mkstemp(suffix='.json', dir=s.work_dir)
    with os.fdopen(fd, 'w') as f:
        json.dump(jobs, f)
    samples = []  # (mono, in_flight, cpu)
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append((time.monotonic(), in_flight(s), cpu_seconds(pid)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    started = time.monotonic()
    sampler.start()
    res = subprocess.run([driver, 'send', path, '1', '600000', '100'], env=env,
                         capture_output=True, text=True)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    os.unlink(path)
    if res.returncode != 0:
        raise SystemExit(f'driver failed ({res.returncode}): {res.stderr} {res.stdout[-500:]}')
    outcomes = {}
    for line in res.stdout.splitlines():
        o = json.loads(line)['outcome']
        outcomes[o] = outcomes.get(o, 0) + 1
    peak = max(x[1] for x in samples)
    steady = [x for x in samples if x[1] >= 0.9 * peak]
    first, last = steady[0], steady[-1]
    cpu = (last[2] - first[2]) / (last[0] - first[0]) if last[0] > first[0] else float('nan')
    return {'run': run, 'jobs': JOBS, 'outcomes': outcomes, 'wall_s': round(wall, 2),
            'sends_per_s': round(JOBS / wall, 1), 'peak_in_flight': peak,
            'median_in_flight': statistics.median(x[1] for x in steady),
            'steady_s': round(last[0] - first[0], 2), 'cpu_cores': round(cpu, 3)}


def main():
    s = Stack()
    try:
        s.start_postgres()
        s.make_keys()
        s.start('slack-sim', env={'SLACK_SIM_USERS': '2000', 'SLACK_SIM_THREADS': SIM_THREADS,
                                  'SLACK_SIM_REQUEST_LOG': '0'})
        s.start('vault')
        env = {'BCRM_SENDER_ID': 'bench', 'BCRM_LOG_LEVEL': 'warn'}
        if IN_FLIGHT:
            env['BCRM_SENDER_MAX_IN_FLIGHT'] = IN_FLIGHT
        proc = s.start('sender-slack', env=env)
        ws = s.sim('GET', '/_sim/workspaces')[2]['workspaces'][0]
        users = s.sim('GET', f'/_sim/users?team_id={ws["team_id"]}')[2]['users']
        people = [u['id'] for u in users if u['kind'] == 'person' and not u['deleted']]
        org, bot = str(uuid.uuid4()), str(uuid.uuid4())
        denv = dict(os.environ)
        denv.update(s.env)
        denv['BCRM_DRIVER_PLATFORM'] = 'slack'
        tests = os.path.join(s.build_dir, 'tests')
        res = subprocess.run([os.path.join(tests, 'vault_smoke'), s._key_path('api'), 'store',
                              org, bot, 'slack', ws['token']], env=denv, capture_output=True,
                             text=True)
        if not res.stdout.startswith('code ok'):
            raise SystemExit(f'vault store failed: {res.stdout}{res.stderr}')
        s.sim('POST', '/_sim/faults', {'latency_ms': LATENCY_MS})
        results = []
        for run in range(RUNS):
            s.sim('POST', '/_sim/reset', {'keep_faults': True})
            r = one_run(s, proc.popen.pid, denv, os.path.join(tests, 'sender_driver'), org, bot,
                        people, run)
            print(json.dumps(r), flush=True)
            results.append(r)
        med = {k: statistics.median(r[k] for r in results)
               for k in ('median_in_flight', 'cpu_cores', 'sends_per_s', 'peak_in_flight')}
        print(json.dumps({'medians': med, 'runs': RUNS, 'jobs': JOBS, 'latency_ms': LATENCY_MS}))
        print(f'| {LATENCY_MS} ms | {JOBS} | {med["median_in_flight"]:.0f} | '
              f'{med["peak_in_flight"]:.0f} | {med["cpu_cores"]:.3f} | {med["sends_per_s"]:.0f} |')
    finally:
        s.stop()


if __name__ == '__main__':
    main()
