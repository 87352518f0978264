#!/usr/bin/env bash
# bench/sim.sh: requests per second of the simulators' send calls on loopback,
# and how many calls they hold at once under a latency fault.
#
#   bench/sim.sh [BUILD_DIR]        (default: $BCRM_BUILD_DIR, else ./build)
#
# Starts slack-sim and messenger-sim on free ports (never the defaults), then
# drives chat.postMessage and the Send API with bench/sim_bench: RUNS runs of
# DURATION seconds each after a WARMUP, CONNECTIONS keep-alive connections,
# messages rotated over the population's people. Between runs the simulator is
# reset (/_sim/reset), so each run starts with an empty record. Prints each run's
# JSON line, then one Markdown table row per case with the medians.
#
# The latency cases then switch the simulator's latency fault on (LATENCY_MS,
# LATENCY_JITTER_MS) and drive it with LATENCY_CONNECTIONS connections: with the
# simulator far from saturated, every connection has a call waiting in it almost
# all the time, so the calls in flight stay near LATENCY_CONNECTIONS and the rate
# near LATENCY_CONNECTIONS / latency. The table shows both, and the ratio of the
# rate to that ideal.
#
# Tunables (environment): RUNS=5 DURATION=5 WARMUP=1 CONNECTIONS=32
# BENCH_THREADS=1 (client threads) SIM_THREADS=8 (simulator threads)
# REQUEST_LOG=10000 (the simulators' request-log ring; 0 switches it off)
# LATENCY_MS=200 LATENCY_JITTER_MS=0 LATENCY_CONNECTIONS=1000 (0 skips the
# latency cases).
set -euo pipefail

SOURCE_DIR="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${1:-${BCRM_BUILD_DIR:-$SOURCE_DIR/build}}"
RUNS="${RUNS:-5}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-32}"
BENCH_THREADS="${BENCH_THREADS:-1}"
SIM_THREADS="${SIM_THREADS:-8}"
REQUEST_LOG="${REQUEST_LOG:-10000}"
LATENCY_MS="${LATENCY_MS:-200}"
LATENCY_JITTER_MS="${LATENCY_JITTER_MS:-0}"
LATENCY_CONNECTIONS="${LATENCY_CONNECTIONS:-1000}"

BENCH="$BUILD_DIR/bench/sim_bench"
SLACK_SIM="$BUILD_DIR/sim/slack-sim/slack-sim"
MESSENGER_SIM="$BUILD_DIR/sim/messenger-sim/messenger-sim"
for bin in "$BENCH" "$SLACK_SIM" "$MESSENGER_SIM"; do
    if [[ ! -x "$bin" ]]; then
        echo "sim.sh: $bin not built (cmake --build $BUILD_DIR)" >&2
        exit 2
    fi
done

WORK="$(mktemp -d /tmp/bcrm-sim-bench.XXXXXX)"
PIDS=()
cleanup() {
    local rc=0
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || rc=$?
        if [[ $rc -ne 0 ]]; then
            echo "sim.sh: simulator $pid exited $rc on SIGTERM; logs in $WORK kept" >&2
            return
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# start NAME BINARY ADDR_VAR [VAR=VALUE...]: starts a simulator on port 0 and
# prints the port it logged.
start() {
    local name="$1" bin="$2" addr_var="$3"
    shift 3
    env "$addr_var=127.0.0.1:0" "$@" "$bin" 2>"$WORK/$name.log" >/dev/null &
    PIDS+=("$!")
    for _ in $(seq 1 300); do
        local port
        port="$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    rec = json.loads(line)
    if rec.get("msg", "").endswith("listening"):
        print(rec["port"])' "$WORK/$name.log" 2>/dev/null || true)"
        if [[ -n "$port" ]]; then
            echo "$port"
            return 0
        fi
        sleep 0.05
    done
    echo "sim.sh: $name did not start; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

# run_case LABEL PORT URL HEADER BODIES [CONNECTIONS LATENCY_MS JITTER_MS]: RUNS
# runs, then the medians; with a latency, the faults are set after each reset and
# the row is the latency table's.
run_case() {
    local label="$1" port="$2" url="$3" header="$4" bodies="$5"
    local connections="${6:-$CONNECTIONS}" latency="${7:-0}" jitter="${8:-0}"
    local results="$WORK/$label.jsonl"
    : >"$results"
    for run in $(seq 1 "$RUNS"); do
        curl -sf -X POST "http://127.0.0.1:$port/_sim/reset" >/dev/null
        if [[ "$latency" -gt 0 ]]; then
            curl -sf -X POST -H 'Content-Type: application/json' \
                -d "{\"latency_ms\":$latency,\"jitter_ms\":$jitter}" \
                "http://127.0.0.1:$port/_sim/faults" >/dev/null
        fi
        local line recorded
        line="$("$BENCH" --url "$url" --header "$header" --content-type application/json \
            --bodies "$bodies" --connections "$connections" --threads "$BENCH_THREADS" \
            --duration "$DURATION" --warmup "$WARMUP")"
        # The simulator must have recorded at least what was answered 2xx in the
        # measured interval (warm-up and wind-down add more).
        # answers_held_max: the most calls the simulator held at once (latency).
        recorded="$(curl -sf "http://127.0.0.1:$port/_sim/stats" | python3 -c 'import json,sys
stats = json.load(sys.stdin)
print("%d,\"sim_held_max\":%d" % (stats["messages"], stats["answers_held_max"]))')"
        line="${line%\}},\"recorded\":$recorded}"
        echo "$line" >>"$results"
        echo "$label run $run: $line" >&2
    done
    python3 - "$label" "$results" "$latency" "$jitter" <<'EOF'
import json, statistics, sys
label, path, latency, jitter = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
runs = [json.loads(line) for line in open(path)]
med = lambda k: statistics.median(r[k] for r in runs)
bad = sum(r['non_2xx'] + r['errors'] for r in runs)
short = [r for r in runs if r['recorded'] < r['ok']]
if short:
    sys.exit('%s: the simulator recorded fewer messages than it answered: %s' % (label, short))
if latency == 0:
    print('| %s | %d | %.0f | %.0f-%.0f | %.0f | %.0f | %d |' % (
        label, len(runs), med('rps'), min(r['rps'] for r in runs), max(r['rps'] for r in runs),
        med('p50_us'), med('p99_us'), bad))
else:
    connections = runs[0]['connections']
    ideal = connections / ((latency + jitter / 2) / 1000)
    print('| %s | %d | %d | %d+%d | %.0f | %.0f | %.2f | %.1f | %.1f | %.0f | %d-%d | %d | %d |' % (
        label, len(runs), connections, latency, jitter, med('rps'), ideal, med('rps') / ideal,
        med('p50_us') / 1000, med('p99_us') / 1000, med('inflight_mean'),
        min(r['inflight_min'] for r in runs), max(r['inflight_max'] for r in runs),
        max(r['sim_held_max'] for r in runs), bad))
EOF
}

SLACK_PORT="$(start slack-sim "$SLACK_SIM" SLACK_SIM_ADDR SLACK_SIM_USERS=1000 \
    SLACK_SIM_THREADS="$SIM_THREADS" SLACK_SIM_REQUEST_LOG="$REQUEST_LOG" SLACK_SIM_LIMITS=off)"
MESSENGER_PORT="$(start messenger-sim "$MESSENGER_SIM" MESSENGER_SIM_ADDR \
    MESSENGER_SIM_USERS=1000 MESSENGER_SIM_THREADS="$SIM_THREADS" \
    MESSENGER_SIM_REQUEST_LOG="$REQUEST_LOG" MESSENGER_SIM_LIMITS=off)"

# Bodies: one message per reachable person, as a campaign sends them.
curl -sf "http://127.0.0.1:$SLACK_PORT/_sim/workspaces" >"$WORK/workspaces.json"
curl -sf "http://127.0.0.1:$SLACK_PORT/_sim/users" >"$WORK/slack-users.json"
curl -sf "http://127.0.0.1:$MESSENGER_PORT/_sim/pages" >"$WORK/pages.json"
curl -sf "http://127.0.0.1:$MESSENGER_PORT/_sim/users" >"$WORK/messenger-users.json"
python3 - "$WORK" <<'EOF'
import json, os, sys
work = sys.argv[1]
load = lambda name: json.load(open(os.path.join(work, name)))
with open(os.path.join(work, 'slack.bodies'), 'w') as f:
    for u in load('slack-users.json')['users']:
        if u['kind'] == 'person' and not u['deleted']:
            f.write(json.dumps({'channel': u['id'], 'text': 'Hello %s, a bench message.'
                                % u['first_name']}) + '\n')
with open(os.path.join(work, 'messenger.bodies'), 'w') as f:
    for u in load('messenger-users.json')['users']:
        if u['in_window'] and not u['unavailable']:
            f.write(json.dumps({'recipient': {'id': u['psid']}, 'messaging_type': 'UPDATE',
                                'message': {'text': 'Hello %s, a bench message.'
                                            % u['first_name']}}) + '\n')
with open(os.path.join(work, 'slack.token'), 'w') as f:
    f.write(load('workspaces.json')['workspaces'][0]['token'])
with open(os.path.join(work, 'page.token'), 'w') as f:
    f.write(load('pages.json')['pages'][0]['token'])
EOF

echo "sim.sh: $RUNS runs of ${DURATION}s, $CONNECTIONS connections, $BENCH_THREADS client" \
    "thread(s), $SIM_THREADS simulator threads, request log $REQUEST_LOG, $(nproc) CPUs" >&2
echo "| case | runs | median req/s | range | p50 µs | p99 µs | non-2xx + errors |"
echo "|---|---|---|---|---|---|---|"
run_case slack-chat.postMessage "$SLACK_PORT" \
    "http://127.0.0.1:$SLACK_PORT/api/chat.postMessage" \
    "Authorization: Bearer $(cat "$WORK/slack.token")" "$WORK/slack.bodies"
run_case messenger-send "$MESSENGER_PORT" \
    "http://127.0.0.1:$MESSENGER_PORT/v19.0/me/messages" \
    "Authorization: Bearer $(cat "$WORK/page.token")" "$WORK/messenger.bodies"

if [[ "$LATENCY_CONNECTIONS" -gt 0 && "$LATENCY_MS" -gt 0 ]]; then
    echo
    echo "| case | runs | connections | latency ms | median req/s | ideal req/s | ratio | p50 ms | p99 ms | in flight (median of means) | in flight min-max | held by the sim (max) | non-2xx + errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    run_case slack-chat.postMessage-latency "$SLACK_PORT" \
        "http://127.0.0.1:$SLACK_PORT/api/chat.postMessage" \
        "Authorization: Bearer $(cat "$WORK/slack.token")" "$WORK/slack.bodies" \
        "$LATENCY_CONNECTIONS" "$LATENCY_MS" "$LATENCY_JITTER_MS"
    run_case messenger-send-latency "$MESSENGER_PORT" \
        "http://127.0.0.1:$MESSENGER_PORT/v19.0/me/messages" \
        "Authorization: Bearer $(cat "$WORK/page.token")" "$WORK/messenger.bodies" \
        "$LATENCY_CONNECTIONS" "$LATENCY_MS" "$LATENCY_JITTER_MS"
fi
