"""Building blocks of the benchmarks: a redis-server of our own, the real campaign-sync binary,
the CRM simulators of tests/sim, keep-alive HTTP, /proc readings (CPU seconds, peak RSS) and
Prometheus text parsing. Standard library only (Debian's /usr/bin/python3).

Every process started here is written to $BENCH_PIDFILE (one pid a line) so that bench/run.sh's
trap can stop whatever a crashed Python left behind, by pid."""
import http.client
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import cs  # noqa: E402  the integration tests' helpers: HTTP requests, simulator processes
BIN = os.environ.get("CAMPAIGN_SYNC_BIN", os.path.join(ROOT, "build", "campaign-sync"))
PY = "/usr/bin/python3"
CLK_TCK = os.sysconf("SC_CLK_TCK")

ORG_ID = "00D000000000001AAA"
# At least 32 bytes: the service refuses shorter secrets.
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123"
INTEGRATION_USER = "005000000000001AAA"
HUMAN_USER = "005000000000002AAA"

_started = []  # every live child we started, stopped in reverse order by stop_all()


def _remember(proc):
    _started.append(proc)
    path = os.environ.get("BENCH_PIDFILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{proc.pid}\n")


def stop_all():
    for p in reversed(_started):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(10)
            except (subprocess.TimeoutExpired, OSError):
                p.kill()
                p.wait()
    _started.clear()


free_port = cs.free_port


def wait_until(pred, timeout, interval=0.05, what="condition"):
    return cs.wait_until(pred, timeout, interval, what)


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


# ------------------------------------------------------------------ HTTP

Response = cs.Response


def request(port, method, path, body=None, headers=None, timeout=30):
    return cs.request(port, method, path, body, headers, timeout)


def admin_headers():
    return {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}


MK_HEADERS = {"Content-Type": "application/json", "X-Webhook-Secret": WEBHOOK_SECRET}
SF_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}


# ------------------------------------------------------------------ Prometheus text

_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {labels}, value)] of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            v = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), dict(_LABEL.findall(m.group(3) or "")), v))
    return out


def metric_sum(samples, name, **labels):
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == str(x) for k, x in labels.items()))


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


# ------------------------------------------------------------------ processes

class _Remembered:
    """A child process (cs.Redis, cs.Sim) whose pid bench/run.sh stops on exit."""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        super().start()
        _remember(self.proc)
        return self


class Redis(_Remembered, cs.Redis):
    """cs.Redis with AOF and fsync always by default, remembered for bench/run.sh's clean-up;
    its commands may take long (a loaded Redis)."""

    def __init__(self, workdir, appendonly=True, fsync="always"):
        super().__init__(workdir, appendonly, fsync)
        self.timeout = 30


class Service:
    """campaign-sync serve|ingest|worker as a child process; stderr kept in a file."""

    def __init__(self, workdir, command, redis_url, name, **env):
        self.command, self.name = command, name
        self.port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDIS_URL": redis_url,
            "PORT": str(self.port), "BIND_ADDR": "127.0.0.1", "SF_ORG_ID": ORG_ID,
            "MARKETO_WEBHOOK_SECRET": WEBHOOK_SECRET, "ADMIN_TOKEN": ADMIN_TOKEN,
            "SPOOL_DIR": os.path.join(workdir, f"spool-{name}-{self.port}"),
            # The load posts to /webhooks/salesforce on loopback, as the benchmarks always did.
            "SF_WEBHOOK_AUTH": "none",
            "LOG_FORMAT": "json", "LOG_LEVEL": "warn",
        }
        self.env.update({k: str(v) for k, v in env.items() if v is not None})
        self.stderr_path = os.path.join(workdir, f"{name}-{self.port}.stderr")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([BIN, self.command], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self._err)
        _remember(self.proc)
        wait_until(self._healthy, 20, what=f"campaign-sync {self.command} /healthz")
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"campaign-sync {self.command} exited with "
                               f"{self.proc.returncode}: {self.stderr_tail()}")
        try:
            return request(self.port, "GET", "/healthz", timeout=2).status == 200
        except OSError:
            return False

    def stderr_tail(self, n=1500):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def req(self, method, path, body=None, headers=None, timeout=30):
        return request(self.port, method, path, body, headers, timeout)

    def metrics(self):
        return parse_metrics(self.req("GET", "/metrics").body.decode())

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self._err.close()
        return rc


class Sim(_Remembered, cs.Sim):
    """tests/sim/<script> on a free port (cs.Sim), remembered for bench/run.sh's clean-up; its
    control calls may take long (seeding 10,000 people)."""

    def ctl(self, method, path, body=None, timeout=300):
        return super().ctl(method, path, body, timeout)


def crm_env(sf, mk, **extra):
    """Environment pointing serve/worker processes at the two simulators."""
    env = {**cs.NOWHERE_CRMS, "SF_LOGIN_URL": sf.url, "MARKETO_BASE_URL": mk.url,
           "SF_INTEGRATION_USER_ID": INTEGRATION_USER}
    env.update({k: str(v) for k, v in extra.items()})
    return env
