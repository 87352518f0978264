#!/usr/bin/env bash
# bench/scheduler.sh BUILD_DIR: bcrm end to end, scheduler first (bench/scheduler_bench.py;
# what it measures and the latest figures: bench/README.md, "Scheduler").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build_dir=$(cd "${1:-$here/../build}" && pwd)
BCRM_BUILD_DIR="$build_dir" BCRM_SOURCE_DIR="$(dirname "$here")" \
    exec /usr/bin/python3 "$here/scheduler_bench.py"
