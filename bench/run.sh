#!/usr/bin/env bash
# campaign-sync benchmarks (issue 8): `make bench` builds, then runs this.
# Prints a table and writes bench/results.json. Under 10 minutes on 2 cores.
#
#   bench/run.sh [--quick] [--only ingest,paced,burst,scaling] [--out FILE]
#
# Needs: redis-server and redis-benchmark (redis-server, redis-tools), wrk, /usr/bin/python3.
# Everything it starts (Redis, the service, the simulators, wrk) is stopped on exit, by pid.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
bin="${CAMPAIGN_SYNC_BIN:-$root/build/campaign-sync}"

missing=()
for tool in redis-server redis-benchmark wrk /usr/bin/python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]} (Debian packages: redis-server redis-tools wrk python3)" >&2
  exit 2
fi
if [ ! -x "$bin" ]; then
  echo "bench: $bin is missing; run make first (make bench does)" >&2
  exit 2
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/cs-bench-XXXXXX")"
# The shared harness (tests/cs/) is imported as `cs`; it writes every pid it starts here.
export PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}"
export CS_PIDFILE="$workdir/pids"
: >"$CS_PIDFILE"
py_pid=""

ours() {  # pid is alive and one of the programs this benchmark starts
  local cmd
  [ -r "/proc/$1/cmdline" ] || return 1
  cmd="$( { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
  case "$cmd" in
    *redis-server*|*campaign-sync*|*salesforce_sim.py*|*marketo_sim.py*|wrk*|*redis-benchmark*) return 0 ;;
  esac
  return 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$py_pid" ] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$py_pid" 2>/dev/null
  fi
  # Whatever the Python side left running: every pid it started is in the pid file (checked
  # against its command line, so that a pid the system has reused since is left alone).
  if [ -s "$CS_PIDFILE" ]; then
    local left=()
    while read -r pid; do
      [ -n "$pid" ] && ours "$pid" && left+=("$pid")
    done <"$CS_PIDFILE"
    if [ ${#left[@]} -gt 0 ]; then
      kill -TERM "${left[@]}" 2>/dev/null
      sleep 1
      for pid in "${left[@]}"; do ours "$pid" && kill -KILL "$pid" 2>/dev/null; done
    fi
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "bench: work directory kept: $workdir" >&2
  else
    rm -rf "$workdir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the Python run's progress as it goes; its exit status is the script's.
CAMPAIGN_SYNC_BIN="$bin" /usr/bin/python3 "$here/bench.py" --workdir "$workdir" "$@" &
py_pid=$!
wait "$py_pid"
rc=$?
py_pid=""
exit "$rc"
