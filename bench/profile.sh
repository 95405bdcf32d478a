#!/usr/bin/env bash
# Where ingest spends its time: perf profile under wrk load, and an HTTP_THREADS x appendfsync
# sweep. Not part of `make bench`. Needs perf (Debian: linux-perf) besides what run.sh needs.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v perf >/dev/null || { echo "profile: perf is missing (Debian package linux-perf)" >&2; exit 2; }
workdir="$(mktemp -d "${TMPDIR:-/tmp}/cs-profile-XXXXXX")"
export BENCH_PIDFILE="$workdir/pids" TMPDIR="$workdir"
: >"$BENCH_PIDFILE"
cleanup() {
  while read -r pid; do
    [ -r "/proc/$pid/cmdline" ] || continue
    case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
      *redis-server*|*campaign-sync*|wrk*|perf*) kill -TERM "$pid" 2>/dev/null ;;
    esac
  done <"$BENCH_PIDFILE"
  rm -rf "$workdir"
}
trap cleanup EXIT
/usr/bin/python3 "$here/profile.py"
