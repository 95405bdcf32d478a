#!/usr/bin/env bash
# Where ingest spends its time: perf profile under wrk load, and an HTTP_THREADS x appendfsync
# sweep. Not part of `make bench`. Needs perf (Debian: linux-perf) besides what run.sh needs.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v perf >/dev/null || { echo "profile: perf is missing (Debian package linux-perf)" >&2; exit 2; }
. "$here/pids.sh" cs-profile
/usr/bin/python3 "$here/profile.py"
