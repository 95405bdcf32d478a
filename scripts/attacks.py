#!/usr/bin/env python3
"""The attacks of issue 17 ("Nobody but Salesforce and Marketo gets in"), each against a fresh
service on loopback, with the figure that tells whether it worked, and the service's health
and RSS afterwards. RELIABILITY.md section 6 lists the figures for main's binary (before) and
for the fixed one (after):

    CAMPAIGN_SYNC_BIN=/path/to/campaign-sync PYTHONPATH=tests /usr/bin/python3 scripts/attacks.py [names...]

Each attack prints one JSON line. The service runs as the tests run it (the shared harness
tests/cs/, imported as `cs`): `ingest` with Redis on a free port; a setting a binary does not
know is simply ignored by it."""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import cs

TOKEN = "a" * 24 + "0123456789abcdef0123456789abcdef"
MK = {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET}
SF = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
EVENT = {"type": "member_status_changed", "programId": 1001, "leadId": 7,
         "occurredAt": "2026-11-29 10:00:00"}


class Target:
    """Redis and one service under attack; stop() ends both, health() reports health and RSS."""

    def __init__(self, command="ingest", start=True, **env):
        self.dir = tempfile.mkdtemp(prefix="cs-attack-")
        self.redis = cs.Redis(self.dir).start()
        self.env = cs.base_env(self.redis.url, self.dir, **env)
        self.svc = cs.Service(self.dir, self.env, command)
        if start:
            self.svc.start()
            self.rss0 = cs.rss_kib(self.svc.proc.pid)

    def health(self):
        try:
            ok = self.svc.req("GET", "/healthz", timeout=3).status == 200
        except OSError:
            ok = False
        return {"healthz_after": ok, "rss_kib_before": self.rss0,
                "rss_kib_after": cs.rss_kib(self.svc.proc.pid)}

    def stop(self):
        if self.svc.proc and self.svc.proc.poll() is None:
            self.svc.proc.kill()
            self.svc.proc.wait()
        self.redis.stop()

    def starts(self):
        """Runs the service to see whether it starts: its exit status within 3 s (None: it
        serves) and its first error line."""
        p = subprocess.Popen([cs.BIN, "ingest"], env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            _, err = p.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            return {"exit": None, "error": ""}
        lines = [json.loads(l) for l in err.decode().splitlines() if l.startswith("{")]
        errors = [l["msg"] for l in lines if l.get("level") == "error"]
        return {"exit": p.returncode, "error": errors[0] if errors else ""}


def forged_salesforce():
    """1. A forged Outbound Message with the right org id, nothing else."""
    out = {}
    w = Target(start=False, SF_WEBHOOK_AUTH=None)
    out["default_setup"] = w.starts()
    w.stop()
    w = Target(SF_WEBHOOK_AUTH=None, SF_WEBHOOK_TOKEN=TOKEN)
    r = w.svc.req("POST", "/webhooks/salesforce", cs.data("salesforce/cm_1.xml"), SF)
    out.update(status=r.status, queued=len(cs.stream_events(w.redis)), **w.health())
    w.stop()
    return out


def forwarded_for():
    """2. X-Forwarded-For behind TRUSTED_PROXIES: an allowed address in a first header line, or
    1,023 bytes of allowed addresses before the real client."""
    w = Target(MARKETO_ALLOWED_CIDRS="203.0.113.0/24, 2001:db8::/32", TRUSTED_PROXIES="127.0.0.1")
    body = json.dumps(EVENT).encode()

    def post(*lines):
        head = b"".join(b"X-Forwarded-For: %s\r\n" % l.encode() for l in lines)
        with socket.create_connection(("127.0.0.1", w.svc.port), timeout=5) as s:
            s.sendall(b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nX-Webhook-Secret: " + cs.WEBHOOK_SECRET.encode() + b"\r\n" + head
                      + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            return int(s.recv(100).split(b" ")[1])

    entry = "2001:0db8:0000:0000:0000:0000:0000:0005"
    padded = entry + "," + " " * 42 + entry + (", " + entry) * 22  # spaces inside the value
    out = {"two_lines": post("203.0.113.5", "198.51.100.1"),
           "past_1023_bytes": post(padded + ", 198.51.100.1"),
           "garbage": post("garbage, 203.0.113.5")}
    out["queued"] = len(cs.stream_events(w.redis))
    out.update(w.health())
    w.stop()
    return out


def attribute_bomb():
    """3. ~0.9 MB of XML with 90,000 attributes on one element (and a 210 KB one, under
    SF_MAX_BODY_BYTES): CPU time the service spends on it, and the answer."""
    w = Target()
    out = {}
    for name, n in (("900kb", 90000), ("210kb", 20000)):
        attrs = "".join(f' a{i}="x"' for i in range(n))
        xml = ('<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/'
               f'soap/envelope/"><soapenv:Body><x{attrs}/></soapenv:Body></soapenv:Envelope>')
        cpu0 = _cpu_s(w.svc.proc.pid)
        r = w.svc.req("POST", "/webhooks/salesforce", xml, SF, timeout=60)
        out[name] = {"bytes": len(xml), "status": r.status,
                     "cpu_s": round(_cpu_s(w.svc.proc.pid) - cpu0, 2)}
    out.update(w.health())
    w.stop()
    return out


def _cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trickle():
    """4. 24 clients at HTTP_CONNECTION_LIMIT=24 that each send a body head of 1 MB minus a few
    bytes without the secret, then one byte every 2 s (and 24 with the secret, trickling
    from the start): how long /healthz is refused, how long they are held, RSS."""
    out = {}
    for case, secret, first in (("strangers", b"wrong", 1000000 - 64), ("with_secret",
                                                                        cs.WEBHOOK_SECRET.encode(), 0)):
        w = Target(HTTP_CONNECTION_LIMIT=24, HTTP_PER_IP_CONNECTION_LIMIT=0, HTTP_TIMEOUT_S=30,
                  HTTP_REQUEST_TIMEOUT_S=4)
        head = (b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"X-Webhook-Secret: " + secret + b"\r\nContent-Length: 1000000\r\n\r\n")
        socks, closed, t0 = [], {}, time.monotonic()
        for _ in range(24):
            s = socket.create_connection(("127.0.0.1", w.svc.port), timeout=5)
            try:
                s.sendall(head + b" " * first)
            except OSError:
                pass
            socks.append(s)
        stop = threading.Event()

        def drip():
            while not stop.is_set():
                for i, s in enumerate(socks):
                    if i in closed:
                        continue
                    try:
                        s.setblocking(False)
                        try:
                            if s.recv(65536) == b"":
                                raise ConnectionResetError
                        except BlockingIOError:
                            pass
                        s.setblocking(True)
                        s.sendall(b" ")
                    except OSError:
                        closed[i] = round(time.monotonic() - t0, 1)
                stop.wait(2)
        th = threading.Thread(target=drip, daemon=True)
        th.start()
        refused_until, peak = None, 0
        while time.monotonic() - t0 < 20:
            peak = max(peak, cs.rss_kib(w.svc.proc.pid))
            try:
                ok = w.svc.req("GET", "/healthz", timeout=1).status == 200
            except OSError:
                ok = False
            if ok and refused_until is None:
                refused_until = round(time.monotonic() - t0, 1)
                if case == "strangers":
                    time.sleep(2)  # let their body heads arrive
                    peak = max(peak, cs.rss_kib(w.svc.proc.pid))
                    break
            if ok and len(closed) == len(socks):
                break
            time.sleep(0.5)
        stop.set()
        th.join()
        out[case] = {"healthz_refused_for_s": refused_until if refused_until is not None
                     else ">20", "clients_closed_by_server": len(closed),
                     "last_closed_at_s": max(closed.values()) if closed else None,
                     "rss_peak_growth_kib": peak - w.rss0}
        for s in socks:
            s.close()
        out[case].update(w.health())
        w.stop()
    return out


def _pki(d):
    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=ca")
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client", "stranger"):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={name}")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
             *(["-extfile", "san.cnf"] if name == "server" else []))
    return subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                           "client.pem"], cwd=d, check=True, capture_output=True,
                          text=True).stdout.strip()


def unpinned_certificate():
    """5. A client certificate of the same CA, not the pinned one."""
    d = tempfile.mkdtemp(prefix="cs-pki-")
    pin = _pki(d)
    w = Target(start=False, SF_WEBHOOK_AUTH=None, TLS_CERT_FILE=f"{d}/server.pem",
              TLS_KEY_FILE=f"{d}/server.key", TLS_CLIENT_CA_FILE=f"{d}/ca.pem",
              TLS_CLIENT_CERT_PINS=pin)
    w.svc.start(wait=False)
    import http.client

    def post(name):
        ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
        ctx.load_cert_chain(f"{d}/{name}.pem", f"{d}/{name}.key")
        c = http.client.HTTPSConnection("127.0.0.1", w.svc.port, context=ctx, timeout=5)
        c.request("POST", "/webhooks/salesforce", cs.data("salesforce/cm_1.xml"), SF)
        return c.getresponse().status

    cs.wait_until(lambda: _tls_up(w.svc.port), 15, what="HTTPS")
    out = {"stranger_status": post("stranger"), "pinned_status": post("client"),
           "queued": len(cs.stream_events(w.redis))}
    w.rss0 = cs.rss_kib(w.svc.proc.pid)
    out["rss_kib_after"] = w.rss0
    w.stop()
    return out


def _tls_up(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def spool():
    """6. A symbolic link in SPOOL_DIR to a victim file; a directory others may read; events
    written while Redis is down with SPOOL_MAX_BYTES=65536."""
    out = {}
    d = tempfile.mkdtemp(prefix="cs-spool-")
    victim = os.path.join(d, "victim.txt")
    with open(victim, "w") as f:
        f.write("x" * 1000)
    sp = os.path.join(d, "spool")
    os.makedirs(sp, mode=0o700)
    os.symlink(victim, os.path.join(sp, "marketo.journal"))
    w = Target(start=False, SPOOL_DIR=sp)
    out["symlink"] = {**w.starts(), "victim_bytes_after": os.path.getsize(victim)}
    w.stop()
    sp2 = os.path.join(d, "open")
    os.makedirs(sp2)
    os.chmod(sp2, 0o755)
    w = Target(start=False, SPOOL_DIR=sp2)
    out["mode_0755"] = w.starts()
    w.stop()
    w = Target(SPOOL_MAX_BYTES=65536)
    w.redis.stop()
    statuses = {}
    for i in range(100):
        batch = [{**EVENT, "leadId": i * 20 + k + 1} for k in range(20)]
        st = w.svc.req("POST", "/webhooks/marketo", batch, MK).status
        statuses[st] = statuses.get(st, 0) + 1
    out["cap"] = {"answers_to_100_batches_of_20": statuses,
                  "journal_bytes": os.path.getsize(os.path.join(w.dir, "spool", "marketo.journal"))}
    out["cap"].update(w.health())
    w.stop()
    return out


def forged_log_line():
    """7. LOG_FORMAT=text and a value with a line break: forged lines in the log."""
    w = Target(LOG_FORMAT="text")
    forged = "2026-12-07T10:00:00.000Z info mapping deleted program_id=1001"
    st = w.svc.req("POST", "/webhooks/marketo", {**EVENT, "occurredAt": "x\n" + forged}, MK).status
    out = {"status": st, **w.health()}
    w.svc.stop(expect_rc=None)
    out["forged_lines"] = sum(l.startswith(forged) for l in w.svc.stderr().splitlines())
    w.stop()
    return out


def readyz_and_metrics():
    """8. /readyz with Redis down tells where Redis is; /metrics and /readyz on the public port."""
    mport = cs.free_port()
    w = Target(MANAGEMENT_PORT=mport)
    w.redis.stop()
    r = w.svc.req("GET", "/readyz")
    readyz = r.status if r.status == 404 else r.body.decode()
    if r.status == 404:
        readyz = cs.request(mport, "GET", "/readyz").body.decode()
    out = {"readyz_body_redis_down": readyz,
           "public_metrics_status": w.svc.req("GET", "/metrics").status,
           "public_readyz_status": w.svc.req("GET", "/readyz").status}
    out.update(w.health())
    w.stop()
    return out


def weak_secrets():
    """9. A 5-byte ADMIN_TOKEN; 30 wrong admin tokens: what is counted and logged."""
    w = Target(start=False, ADMIN_TOKEN="admin")
    out = {"short_admin_token": w.starts()}
    w.stop()
    w = Target()
    for i in range(30):
        w.svc.req("GET", "/v1/sync", headers={"Authorization": f"Bearer guess-{i}"})
    text = w.svc.req("GET", "/metrics").body.decode()
    out["auth_failures_metric"] = cs.metric_value(text, "campaign_sync_auth_failures_total",
                                                  route="/v1/sync")
    out.update(w.health())
    w.svc.stop(expect_rc=None)
    out["log_lines"] = sum(l.get("msg") == "http: authentication failed" for l in w.svc.logs())
    w.stop()
    return out


ATTACKS = [forged_salesforce, forwarded_for, attribute_bomb, trickle, unpinned_certificate, spool,
           forged_log_line, readyz_and_metrics, weak_secrets]

if __name__ == "__main__":
    names = sys.argv[1:]
    for attack in ATTACKS:
        if names and attack.__name__ not in names:
            continue
        try:
            result = attack()
        except Exception as e:  # report and go on: a refusal the old binary lacks can raise
            result = {"error": f"{type(e).__name__}: {e}"[:300]}
        print(json.dumps({"attack": attack.__name__, "binary": cs.BIN, **result}), flush=True)
