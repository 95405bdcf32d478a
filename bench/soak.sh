#!/usr/bin/env bash
# A long steady run that watches for growth (bench/soak.py; `make soak`). Not part of `make
# bench`. Everything it starts is stopped on exit, by pid, as bench/run.sh does.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/pids.sh" cs-soak
/usr/bin/python3 "$here/soak.py" "$@"
