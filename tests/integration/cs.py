"""Helpers for the integration tests: a real redis-server on a free port, the real
campaign-sync binary, and exact HTTP over loopback (http.client, so the tests see the
bytes the service sent)."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from xml.sax.saxutils import escape

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CAMPAIGN_SYNC_BIN", os.path.join(ROOT, "build", "campaign-sync"))
SANITIZED = os.environ.get("CAMPAIGN_SYNC_SANITIZED") == "1"
DATA = os.path.join(ROOT, "tests", "data")

ORG_ID = "00D000000000001AAA"
# At least 32 bytes: the service refuses shorter secrets (issue 17).
WEBHOOK_SECRET = "mkto-webhook-secret-for-the-integration-tests"
ADMIN_TOKEN = "admin-token-for-the-integration-tests-0123"

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


class Redis:
    """A redis-server of our own on a free port; stop() and start() again keep the port,
    so a test can take Redis away from a running service and give it back."""

    def __init__(self, workdir, appendonly=False, fsync="everysec"):
        self.port = free_port()
        self.dir = os.path.join(workdir, f"redis-{self.port}")
        os.makedirs(self.dir, exist_ok=True)
        self.appendonly = appendonly
        self.fsync = fsync
        self.proc = None
        self.timeout = 5  # seconds per command

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", self.fsync, "--logfile", os.path.join(self.dir, "log")]
        self.proc = subprocess.Popen(args)
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


# The two queues: events received from Salesforce (applied toward Marketo) and from Marketo.
STREAM_SF, STREAM_MKTO = "cs:events:sf", "cs:events:mkto"
STREAMS = (STREAM_SF, STREAM_MKTO)


def _entry_order(entry_id):
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def stream_events(redis, key=None):
    """The queued events, decoded, in stream order: [(id, event dict, fields dict)]; both
    queues merged by entry id (received order) unless key names one."""
    out = []
    for k in ([key] if key else STREAMS):
        for entry_id, flat in redis.cmd("XRANGE", k, "-", "+"):
            fields = dict(zip(flat[::2], flat[1::2]))
            out.append((entry_id, json.loads(fields["event"]), fields))
    return sorted(out, key=lambda e: _entry_order(e[0])) if not key else out


def queue_len(redis):
    """Entries in both queue streams (read or not)."""
    return sum(redis.cmd("XLEN", k) for k in STREAMS)


def queue_pending(redis):
    """Entries read by a worker and not yet acknowledged, in both queues."""
    total = 0
    for k in STREAMS:
        try:
            total += redis.cmd("XPENDING", k, "workers")[0]
        except Exception:  # no group yet: nothing read
            pass
    return total


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to18(id15):
    """A 15-character Salesforce id in its 18-character form (the case-safe suffix)."""
    out = ""
    for chunk in range(3):
        bits = sum(1 << j for j, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]) if "A" <= ch <= "Z")
        out += _CHECKSUM[bits]
    return id15 + out


OM_NS = "http://soap.sforce.com/2005/09/outbound"
OM_FIELDS = ["CampaignId", "CompanyOrAccount", "ContactId", "Email", "FirstName",
             "LastModifiedById", "LastModifiedDate", "LastName", "LeadId", "Status"]


def outbound_message(notifications, org_id=ORG_ID):
    """One SOAP Outbound Message on CampaignMember, as text; notifications: [(notification id,
    record dict of CampaignMember fields as the Salesforce simulator shows them)]; fields
    without a value are left out, as Salesforce does."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n'
             '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
             'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
             f'<notifications xmlns="{OM_NS}"><OrganizationId>{org_id}</OrganizationId>'
             '<ActionId>04kSm0000000Om1AAA</ActionId><SessionId xsi:nil="true"/>'
             '<EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000001'
             '</EnterpriseUrl><PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/'
             '00D000000000001</PartnerUrl>']
    for nid, rec in notifications:
        parts.append(f'<Notification><Id>{nid}</Id><sObject xsi:type="sf:CampaignMember" '
                     'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
                     f'<sf:Id>{rec["Id"]}</sf:Id>')
        for name in OM_FIELDS:
            v = rec.get(name)
            if v is not None:
                parts.append(f"<sf:{name}>{escape(str(v))}</sf:{name}>")
        parts.append("</sObject></Notification>")
    parts.append("</notifications></soapenv:Body></soapenv:Envelope>")
    return "".join(parts)


def base_env(redis_url, workdir, **extra):
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


class Service:
    """The real binary as a child process, its stderr kept in a file for assertions."""

    def __init__(self, workdir, env, command="serve", name="svc"):
        self.workdir = workdir
        self.env = env
        self.command = command
        self.port = int(env.setdefault("PORT", str(free_port())))
        self.stderr_path = os.path.join(workdir, f"{name}-{self.port}.stderr")
        self.proc = None
        self.returncode = None

    def start(self, wait=True):
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([BIN, self.command], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self._err)
        if wait:
            wait_until(self._healthy, 15, what=f"campaign-sync {self.command} to serve /healthz")
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

    def stop(self, sig=signal.SIGTERM, timeout=15, expect_rc=0):
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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


def run_command(env, *args, timeout=30):
    """Runs the binary to completion; returns (rc, stdout, stderr)."""
    p = subprocess.run([BIN, *args], env=env, capture_output=True, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    assert not SANITIZER_RE.search(err), "sanitizer report:\n" + err
    return p.returncode, p.stdout.decode("utf-8", "replace"), err


def promtool_check(text):
    """Returns promtool's complaints ('' when the exposition is clean)."""
    tool = shutil.which("promtool")
    assert tool, "promtool is missing (Debian package prometheus)"
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True)
    return (p.stdout + p.stderr).decode().strip() if p.returncode else ""


def metric_value(text, name, **labels):
    """The value of one series in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (.+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(m.group(4))
    return None


def make_workdir():
    return tempfile.mkdtemp(prefix="cs-it-")


class Sim:
    """A CRM simulator (tests/sim/*.py) as a child process on a free port, with helpers for
    its /_sim/ control API."""

    def __init__(self, script, workdir, *args):
        self.script = os.path.join(ROOT, "tests", "sim", script)
        self.args = [str(a) for a in args]
        self.log = open(os.path.join(workdir, script + ".stderr"), "ab")
        self.proc = None
        self.port = None

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", self.script, "--port", "0", *self.args],
                                     stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("READY port="), f"{self.script} did not start: {line!r}"
        self.port = int(line.strip().split("=")[1])
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def ctl(self, method, path, body=None, timeout=10):
        r = request(self.port, method, "/_sim/" + path, body,
                    {"Content-Type": "application/json"} if body is not None else {}, timeout)
        assert r.status < 300, f"sim {method} {path}: {r.status} {r.body[:300]!r}"
        return r.json() if r.body else None

    def calls(self, since=0):
        return self.ctl("GET", f"calls?since={since}")["calls"]


def admin_headers(token=None):
    return {"Authorization": f"Bearer {token or ADMIN_TOKEN}", "Content-Type": "application/json"}


def crm_env(sf, mk, **extra):
    """Environment pointing the service at the two simulators."""
    env = {**NOWHERE_CRMS, "SF_LOGIN_URL": sf.url, "MARKETO_BASE_URL": mk.url,
           "SF_INTEGRATION_USER_ID": "005000000000001AAA",
           "RETRY_BASE_MS": "100", "RETRY_MAX_MS": "1000", "CLAIM_IDLE_MS": "3000"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


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
