#!/usr/bin/env bash
# pg.sh: a throwaway PostgreSQL cluster for manual work and ad-hoc tests.
#
#   eval "$(scripts/pg.sh start /tmp/mypg)"   # starts it, exports BCRM_DATABASE_URL
#   scripts/pg.sh stop /tmp/mypg
#
# The same private cluster as scripts/stack.py makes: Unix socket only, in a
# mode-0700 directory; owned by postgres when run as root. Data is not fsynced.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
start | stop)
    [[ $# -eq 2 ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
    exec /usr/bin/python3 "$here/stack.py" "pg-$1" "$2"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
