# Sourced by bench/profile.sh and bench/soak.sh: the shared harness (tests/cs/) on the module
# path, a work directory whose pid file the harness fills ($CS_PIDFILE), and on exit a SIGTERM
# to each process recorded there that is still one of ours, then the directory removed.
# $1: the directory's name prefix.
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests${PYTHONPATH:+:$PYTHONPATH}"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")"
export CS_PIDFILE="$workdir/pids" TMPDIR="$workdir"
: >"$CS_PIDFILE"
cleanup() {
  while read -r pid; do
    [ -r "/proc/$pid/cmdline" ] || continue
    case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
      *redis-server*|*campaign-sync*|*salesforce_sim.py*|*marketo_sim.py*|wrk*|perf*)
        kill -TERM "$pid" 2>/dev/null ;;
    esac
  done <"$CS_PIDFILE"
  rm -rf "$workdir"
}
trap cleanup EXIT
