"""What the benchmarks measure with, besides the shared harness (tests/cs/, imported as `cs`:
Redis, the real binary, the CRM simulators, HTTP, metrics, cs.World): /proc readings (CPU
seconds, peak RSS), Prometheus histograms and quantiles, and the benchmarks' settings of
Redis and of the service. Standard library only (Debian's /usr/bin/python3).

Every process cs starts is written to $CS_PIDFILE (one pid a line), so that bench/run.sh's
trap can stop whatever a crashed Python left behind, by pid; cs.stop_all() stops the rest."""
import os
import time

import cs  # the shared harness, tests/cs/ (bench/run.sh, soak.sh and profile.sh set PYTHONPATH)

ROOT, BIN = cs.ROOT, cs.BIN
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Every service process of a benchmark: warnings only in its log, loopback only.
SERVICE_ENV = {"LOG_LEVEL": "warn", "BIND_ADDR": "127.0.0.1"}


def redis(workdir, fsync="always"):
    """A Redis of a benchmark: AOF, appendfsync always by default; its commands may take long
    (a loaded Redis)."""
    return cs.Redis(workdir, appendonly=True, fsync=fsync, timeout=30)


def ingest_service(workdir, redis_url, **env):
    """One started `ingest` process with the benchmarks' settings (and env)."""
    svc = cs.Service(workdir, cs.base_env(redis_url, workdir, **{**SERVICE_ENV, **env}),
                     "ingest", "ingest")
    return svc.start(timeout=20)


def stop(svc):
    """SIGTERM (SIGKILL after 20 s); the exit status, whatever it is."""
    return svc.stop(timeout=20, expect_rc=None, must_stop=False)


def metrics(svc):
    """A process's /metrics, parsed (cs.parse_metrics); 30 s for a loaded process."""
    return svc.metrics(timeout=30)


# ------------------------------------------------------------------ /proc

def proc_cpu(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid, key):
    """A kB value of /proc/<pid>/status (VmHWM, VmRSS), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return None


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux: 5 > clear_refs), so that the next reading is
    the peak of the load that follows."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class CpuMeter:
    """CPU seconds of a set of named processes between start() and stop()."""

    def __init__(self, procs):
        self.procs = {k: p for k, p in procs.items() if p is not None}
        self.t0 = self.c0 = None

    def start(self):
        self.t0 = time.monotonic()
        self.c0 = {k: _safe_cpu(p) for k, p in self.procs.items()}
        return self

    def stop(self):
        wall = time.monotonic() - self.t0
        out = {}
        for k, p in self.procs.items():
            c1 = _safe_cpu(p)
            if c1 is not None and self.c0.get(k) is not None:
                out[k] = {"cpu_s": round(c1 - self.c0[k], 3),
                          "cores": round((c1 - self.c0[k]) / wall, 3) if wall > 0 else None}
        return {"wall_s": round(wall, 3), "procs": out}


def _safe_cpu(pid):
    try:
        return proc_cpu(pid)
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------ Prometheus histograms

def histogram(samples, name, **match):
    """{le: cumulative count} of a histogram, summed over the samples (and label sets) given,
    or only over those whose labels match."""
    buckets = {}
    for n, l, v in samples:
        if n == name + "_bucket" and all(l.get(k) == x for k, x in match.items()):
            le = float("inf") if l["le"] == "+Inf" else float(l["le"])
            buckets[le] = buckets.get(le, 0) + v
    return dict(sorted(buckets.items()))


def histogram_delta(after, before):
    return {le: after[le] - before.get(le, 0) for le in after}


def histogram_quantile(buckets, q):
    """Prometheus' histogram_quantile: linear interpolation inside the bucket that holds the
    q-th observation (the answer is only as fine as the buckets)."""
    if not buckets:
        return None
    total = buckets[max(buckets)]
    if total <= 0:
        return None
    rank, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in buckets.items():
        if c >= rank:
            if le == float("inf"):
                return prev_le  # beyond the last finite bucket: its bound is all we know
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 1)
        prev_le, prev_c = le, c
    return prev_le


def histogram_max_bucket(buckets):
    """The upper bound of the highest non-empty bucket ("max is at most ...")."""
    prev = 0
    top = None
    for le, c in buckets.items():
        if c > prev:
            top = le
        prev = c
    return top


def quantiles(values, qs=(0.5, 0.99)):
    if not values:
        return {f"p{int(q * 100)}": None for q in qs} | {"max": None, "n": 0}
    v = sorted(values)
    out = {f"p{int(q * 100)}": v[min(len(v) - 1, int(q * len(v)))] for q in qs}
    out["max"] = v[-1]
    out["n"] = len(v)
    return out
