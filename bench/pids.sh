# Sourced by bench/profile.sh and bench/soak.sh: a work directory whose pid file lib.py fills
# ($BENCH_PIDFILE), and on exit a SIGTERM to each process recorded there that is still one of
# ours, then the directory removed. $1: the directory's name prefix.
workdir="$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")"
export BENCH_PIDFILE="$workdir/pids" TMPDIR="$workdir"
: >"$BENCH_PIDFILE"
cleanup() {
  while read -r pid; do
    [ -r "/proc/$pid/cmdline" ] || continue
    case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
      *redis-server*|*campaign-sync*|*salesforce_sim.py*|*marketo_sim.py*|wrk*|perf*)
        kill -TERM "$pid" 2>/dev/null ;;
    esac
  done <"$BENCH_PIDFILE"
  rm -rf "$workdir"
}
trap cleanup EXIT
