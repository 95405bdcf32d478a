#!/usr/bin/env bash
# A long steady run that watches for growth (bench/soak.py; `make soak`). Not part of `make
# bench`. Everything it starts is stopped on exit, by pid, as bench/run.sh does.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/cs-soak-XXXXXX")"
export BENCH_PIDFILE="$workdir/pids" TMPDIR="$workdir"
: >"$BENCH_PIDFILE"
cleanup() {
  while read -r pid; do
    [ -r "/proc/$pid/cmdline" ] || continue
    case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
      *redis-server*|*campaign-sync*|*salesforce_sim.py*|*marketo_sim.py*) kill -TERM "$pid" 2>/dev/null ;;
    esac
  done <"$BENCH_PIDFILE"
  rm -rf "$workdir"
}
trap cleanup EXIT
/usr/bin/python3 "$here/soak.py" "$@"
