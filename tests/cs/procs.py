"""The processes a test, the chaos suite or a benchmark runs: a redis-server of its own on a
free port, the real campaign-sync binary, and the CRM simulators of tests/sim; the
environment each service process gets.

Every child process started here is remembered: stop_all() stops what is still running, and
when CS_PIDFILE names a file, each pid is appended to it, so that a shell wrapper
(bench/run.sh, bench/pids.sh) can stop by pid whatever a crashed Python left behind."""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

from .metrics import parse_metrics
from .web import ADMIN_TOKEN, ORG_ID, WEBHOOK_SECRET, request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CAMPAIGN_SYNC_BIN", os.path.join(ROOT, "build", "campaign-sync"))
SANITIZED = os.environ.get("CAMPAIGN_SYNC_SANITIZED") == "1"
DATA = os.path.join(ROOT, "tests", "data")
PYTHON = "/usr/bin/python3"

# Lines that mean a sanitizer found something in the service's stderr.
SANITIZER_RE = re.compile(r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"UndefinedBehaviorSanitizer)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data(name, mode="rb"):
    with open(os.path.join(DATA, name), mode) as f:
        return f.read()


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def make_workdir():
    return tempfile.mkdtemp(prefix="cs-it-")


# ------------------------------------------------------------------ every child, remembered

_started = []  # live children, stopped in reverse order by stop_all()


def remember(proc):
    """Keeps a child process for stop_all() and writes its pid to $CS_PIDFILE."""
    _started[:] = [p for p in _started if p.poll() is None]
    _started.append(proc)
    path = os.environ.get("CS_PIDFILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{proc.pid}\n")


def stop_all():
    """SIGTERM (SIGKILL after 10 s) to every child still running, newest first."""
    for p in reversed(_started):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(10)
            except (subprocess.TimeoutExpired, OSError):
                p.kill()
                p.wait()
    _started.clear()


# ------------------------------------------------------------------ Redis

class Redis:
    """A redis-server of our own on a free port; stop() and start() again keep the port,
    so a test can take Redis away from a running service and give it back. `timeout`: seconds
    per command (a loaded Redis of a benchmark takes longer)."""

    def __init__(self, workdir, appendonly=False, fsync="everysec", timeout=5):
        self.port = free_port()
        self.dir = os.path.join(workdir, f"redis-{self.port}")
        os.makedirs(self.dir, exist_ok=True)
        self.appendonly = appendonly
        self.fsync = fsync
        self.proc = None
        self.timeout = timeout

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", self.fsync, "--logfile", os.path.join(self.dir, "log")]
        self.proc = subprocess.Popen(args)
        remember(self.proc)
        wait_until(self.ping, 10, what="redis-server to answer")
        return self

    def ping(self):
        try:
            return self.cmd("PING") == "PONG"
        except (OSError, RuntimeError):  # not up yet, or still loading its AOF
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def cmd(self, *args):
        """One command over RESP, without a client library."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _read_resp(f)


def _read_resp(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        v = f.read(n + 2)[:-2]
        return v.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(f) for _ in range(n)]
    raise OSError(f"bad RESP line {line!r}")


# ------------------------------------------------------------------ the service's environment

# A mapping created or enabled starts a backfill job that merges both member lists
# (BACKFILL_ON_LINK, issue 19). The tests of the sync directions arrange each CRM's members and
# the service's recorded state themselves, and often send webhooks that the simulators' state
# does not reflect: a backfill would merge (or undo) what a test arranged, in a race with it.
# Every process the harness starts runs without (the benchmarks too); tests/integration/
# test_jobs.py (and any test passing BACKFILL_ON_LINK="true") has it on.
TEST_SETTINGS = {"BACKFILL_ON_LINK": "false"}


def base_env(redis_url, workdir, **extra):
    """The environment of a service process: Redis, the harness's secrets, JSON logs,
    TEST_SETTINGS; extra settings on top (None removes a default)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_URL": redis_url,
        "SF_ORG_ID": ORG_ID,
        "MARKETO_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SPOOL_DIR": os.path.join(workdir, "spool"),
        # Existing tests post to /webhooks/salesforce without a token; the tests of the
        # Salesforce webhook's authentication remove this.
        "SF_WEBHOOK_AUTH": "none",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        **TEST_SETTINGS,
    }
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)  # None removes a default
        else:
            env[k] = str(v)
    return env


# CRM credentials that point nowhere: for `serve`/`worker` processes a test runs without
# simulators (an `ingest` needs none, and then lists no CRM checks in /readyz).
NOWHERE_CRMS = {
    "SF_LOGIN_URL": "http://127.0.0.1:9", "SF_CLIENT_ID": "sim-sf-client",
    "SF_CLIENT_SECRET": "sim-sf-secret", "MARKETO_BASE_URL": "http://127.0.0.1:9",
    "MARKETO_CLIENT_ID": "sim-mkto-client", "MARKETO_CLIENT_SECRET": "sim-mkto-secret",
}
# Retries and claims of the tests: short, so that an outcome comes within a test's wait.
TEST_TIMINGS = {"RETRY_BASE_MS": "100", "RETRY_MAX_MS": "1000", "CLAIM_IDLE_MS": "3000"}
# Background jobs kept out of the way, so that what a test sees is the work of the endpoint or
# webhook it exercises (World.start(quiet=True)).
QUIET = {"SF_DELETED_POLL_INTERVAL_S": "86400", "RECONCILE_INTERVAL_S": "604800",
         "PROGRAM_POLL_INTERVAL_S": "86400"}


def crm_urls(sf, mk, **extra):
    """The two simulators' URLs and credentials; every other setting at the service's default
    (the benchmarks measure those)."""
    env = {**NOWHERE_CRMS, "SF_LOGIN_URL": sf.url, "MARKETO_BASE_URL": mk.url,
           "SF_INTEGRATION_USER_ID": "005000000000001AAA"}
    env.update({k: str(v) for k, v in extra.items()})
    return env




def crm_env(sf, mk, **extra):
    """The environment pointing the service at the two simulators, with TEST_TIMINGS."""
    return crm_urls(sf, mk, **{**TEST_TIMINGS, **extra})


# ------------------------------------------------------------------ campaign-sync

class Service:
    """The real binary as a child process, its stderr kept in a file for assertions."""

    def __init__(self, workdir, env, command="serve", name="svc"):
        self.workdir = workdir
        self.env = env
        self.command = command
        self.name = name
        self.port = int(env.setdefault("PORT", str(free_port())))
        self.stderr_path = os.path.join(workdir, f"{name}-{self.port}.stderr")
        self.proc = None
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, wait=True, timeout=15):
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([BIN, self.command], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self._err)
        remember(self.proc)
        if wait:
            wait_until(self._healthy, timeout,
                       what=f"campaign-sync {self.command} to serve /healthz")
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"campaign-sync exited with {self.proc.returncode}:\n"
                                 + self.stderr())
        try:
            return request(self.port, "GET", "/healthz", timeout=2).status == 200
        except OSError:
            return False

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def logs(self):
        out = []
        for line in self.stderr().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def req(self, method, path, body=None, headers=None, timeout=10):
        return request(self.port, method, path, body, headers, timeout)

    def metrics(self, timeout=10):
        """/metrics, parsed: [(name, {labels}, value)]."""
        return parse_metrics(self.req("GET", "/metrics", timeout=timeout).body.decode())

    def stop(self, sig=signal.SIGTERM, timeout=15, expect_rc=0, must_stop=True):
        """Sends sig and waits; checks stderr for sanitizer reports and, unless expect_rc is
        None (or sig is SIGKILL), the exit status. A process still running after `timeout` is
        killed, and that fails unless must_stop=False (then its status is returned)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if must_stop:
                    raise AssertionError(f"campaign-sync did not stop within {timeout}s")
        self.returncode = self.proc.returncode
        self.proc = None
        self._err.close()
        self.check_sanitizers()
        if expect_rc is not None and sig != signal.SIGKILL:
            assert self.returncode == expect_rc, (
                f"exit status {self.returncode}, expected {expect_rc}:\n{self.stderr()[-4000:]}")
        return self.returncode

    def check_sanitizers(self):
        m = SANITIZER_RE.search(self.stderr())
        assert not m, "sanitizer report in the service's stderr:\n" + self.stderr()[-6000:]


class Services:
    """Starts campaign-sync processes in one work directory and stops them all at the end:
    services(redis_url, command="ingest", wait=True, name="svc", **env) -> a started Service.
    `ingest` by default, so that no worker consumes what a receive-path test inspects; `serve`
    and `worker` get credentials pointing nowhere unless env gives the CRMs. `defaults`: settings
    every process gets (env overrides them)."""

    def __init__(self, workdir, **defaults):
        self.workdir = workdir
        self.defaults = defaults
        self.started = []

    def __call__(self, redis_url, command="ingest", wait=True, name="svc", timeout=15, **env):
        env = {**self.defaults, **env}
        if command in ("serve", "worker"):
            env = {**NOWHERE_CRMS, **env}
        s = Service(self.workdir, base_env(redis_url, self.workdir, **env), command, name)
        self.started.append(s)
        return s.start(wait=wait, timeout=timeout)

    def stop_all(self, timeout=15, expect_rc=0, must_stop=True):
        """Stops every process started here; returns the failure of each (Service.stop),
        every process stopped even when one fails."""
        errors = []
        for s in self.started:
            try:
                s.stop(timeout=timeout, expect_rc=expect_rc, must_stop=must_stop)
            except AssertionError as e:
                errors.append(f"{s.name} ({s.command}): {e}")
        return errors


def run_command(env, *args, timeout=30):
    """Runs the binary to completion; returns (rc, stdout, stderr)."""
    p = subprocess.run([BIN, *args], env=env, capture_output=True, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    assert not SANITIZER_RE.search(err), "sanitizer report:\n" + err
    return p.returncode, p.stdout.decode("utf-8", "replace"), err


def rss_kib(pid):
    """The resident set size of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def assert_still_serving(svc, rss_before_kib=None, max_growth_mib=8):
    """After an attack: the process is alive, /healthz answers 200 and (outside sanitizer
    builds, whose quarantine keeps freed memory on purpose) RSS grew by less than
    max_growth_mib since rss_before_kib."""
    assert svc.proc.poll() is None, "the service died:\n" + svc.stderr()[-3000:]
    assert svc.req("GET", "/healthz").status == 200
    if rss_before_kib is not None and not SANITIZED:
        grown = rss_kib(svc.proc.pid) - rss_before_kib
        assert grown < max_growth_mib * 1024, f"RSS grew by {grown} KiB"


# ------------------------------------------------------------------ CRM simulators

class Sim:
    """A CRM simulator (tests/sim/*.py) as a child process on a free port, with helpers for
    its /_sim/ control API. `timeout`: seconds per control call (a benchmark seeds 10,000
    people in one)."""

    def __init__(self, script, workdir, *args, timeout=10):
        self.script = os.path.join(ROOT, "tests", "sim", script)
        self.args = [str(a) for a in args]
        self.log = open(os.path.join(workdir, script + ".stderr"), "ab")
        self.proc = None
        self.port = None
        self.timeout = timeout

    def start(self):
        self.proc = subprocess.Popen([PYTHON, self.script, "--port", "0", *self.args],
                                     stdout=subprocess.PIPE, stderr=self.log)
        remember(self.proc)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("READY port="), f"{self.script} did not start: {line!r}"
        self.port = int(line.strip().split("=")[1])
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def ctl(self, method, path, body=None, timeout=None):
        r = request(self.port, method, "/_sim/" + path, body,
                    {"Content-Type": "application/json"} if body is not None else {},
                    timeout or self.timeout)
        assert r.status < 300, f"sim {method} {path}: {r.status} {r.body[:300]!r}"
        return r.json() if r.body else None

    def calls(self, since=0):
        return self.ctl("GET", f"calls?since={since}")["calls"]
