#!/usr/bin/env bash
# bench/sender.sh: requests in flight and CPU of one sender-slack process against a
# 200 ms slack-sim (bench/README.md, "Senders").
#
#   bench/sender.sh [BUILD_DIR]        (default: $BCRM_BUILD_DIR, else ./build)
#
# Needs, built in BUILD_DIR (a Release build for numbers worth quoting):
# bcrm-sender-slack, bcrm-vault, bcrmctl, slack-sim, sender_driver, vault_smoke.
# Starts PostgreSQL, the vault, slack-sim and one sender on free ports
# (scripts/stack.py), feeds jobs with tests/integration/sender_driver (no
# scheduler), and prints one JSON line per run, the medians, and a Markdown row.
#
# Tunables (environment): RUNS=5 JOBS=20000 LATENCY_MS=200 SIM_THREADS=8
# IN_FLIGHT=<BCRM_SENDER_MAX_IN_FLIGHT, default the sender's own>.
set -euo pipefail
SOURCE_DIR="$(cd "$(dirname "$0")/.." && pwd)"
export BCRM_BUILD_DIR="$(cd "${1:-${BCRM_BUILD_DIR:-$SOURCE_DIR/build}}" && pwd)"
export BCRM_SOURCE_DIR="$SOURCE_DIR"
for bin in services/sender-slack/bcrm-sender-slack services/vault/bcrm-vault \
    tools/bcrmctl/bcrmctl sim/slack-sim/slack-sim tests/sender_driver tests/vault_smoke; do
    if [[ ! -x "$BCRM_BUILD_DIR/$bin" ]]; then
        echo "sender.sh: $BCRM_BUILD_DIR/$bin not built" >&2
        exit 2
    fi
done
exec python3 "$SOURCE_DIR/bench/sender_bench.py"
