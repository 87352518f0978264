#!/usr/bin/env bash
# deps.sh: installs the Debian 12 packages that bcrm needs to build, test and run.
#
# Fast when everything is present: one dpkg-query, no network. Otherwise one
# `apt-get update` and one `apt-get install` of exactly the missing packages.
# Works as root, or through sudo for a normal user.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libnng-dev libprotobuf-c-dev protobuf-c-compiler
    libpq-dev postgresql postgresql-client
    libcurl4-openssl-dev libsodium-dev libjansson-dev libmicrohttpd-dev libical-dev
    python3 python3-jsonschema
    prometheus     # promtool, which checks every service's /metrics
    docker-compose # `docker-compose config` checks docker-compose.yml
    tzdata clang-format
    chromium nodejs # the dashboard's browser test (tests/e2e/test_dashboard.py)
)
# npm drives the browser test's `npm ci` (playwright-core only; it downloads no
# browser). A Node.js from another repository (nodesource) bundles npm and
# conflicts with Debian's npm package, so ask for the package only when the
# command is missing.
if ! command -v npm >/dev/null 2>&1; then
    packages+=(npm)
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps: all ${#packages[@]} Debian packages present"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: not root and no sudo; install them as root and run again" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
echo "deps: done"
