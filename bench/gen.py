"""Load generators for the end-to-end benchmarks: webhook bodies in the real wire formats (SPEC
sections 6 and 7), a small keep-alive HTTP/1.1 client on raw sockets (cheap enough that the
generator stays a small share of the 2 cores), an open-loop paced sender and a burst sender.

Bodies are built before the clock starts; the paced sender sends change j at t0 + j / rate
whatever happened to earlier ones (each thread owns every k-th change), and records how late
each request went out, so a generator that fell behind shows in the results."""
import itertools
import socket
import threading
import time
from datetime import datetime, timezone

import cs  # the shared harness, tests/cs/ (PYTHONPATH: bench/run.sh, bench/soak.sh)
import lib

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class NotificationIds:
    """Unique Outbound Message notification ids (prefix 04l, valid 18-character form)."""

    def __init__(self, tag):
        self.tag = tag  # 3 characters, distinct per run, so ids never repeat across runs
        self.n = itertools.count(1)
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            n = next(self.n)
        digits = ""
        for _ in range(9):
            n, r = divmod(n, 62)
            digits = _B62[r] + digits
        return cs.to18("04l" + self.tag + digits)


def soap_time(ts):
    return cs.soap_time(datetime.fromtimestamp(ts, timezone.utc))


def mkto_time(ts):
    """{{system.dateTime}} as Marketo renders it (account time zone UTC)."""
    return cs.marketo_time(datetime.fromtimestamp(ts, timezone.utc))


def om_body(notifications):
    return cs.outbound_message(notifications).encode()


def mkto_event(person, program_id, status, ts):
    """SPEC section 7's recommended template as Marketo renders it (cs.hook), with a
    hard-coded "status" (a template may carry one; without it the worker reads every status
    from Marketo, inside the Marketo call budget)."""
    return cs.hook(person, mkto_time(ts), int(program_id), status)


def mkto_body(events):
    return (events[0] if len(events) == 1 else "[" + ",".join(events) + "]").encode()


def sf_record(person, campaign_id, member_id, status, ts):
    """The notification data of person's CampaignMember member_id after a person changed it."""
    rec = {"Id": member_id, "CampaignId": campaign_id, "Status": status,
           "Email": person.email, "FirstName": person.first, "LastName": person.last,
           "CompanyOrAccount": person.company, "LastModifiedById": cs.HUMAN,
           "LastModifiedDate": soap_time(ts)}
    rec["ContactId" if person.sf_id.startswith("003") else "LeadId"] = person.sf_id
    return rec


def raw_request(path, headers, body):
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def mkto_request(body):
    return raw_request("/webhooks/marketo", cs.MK_HEADERS, body)


def sf_request(body):
    return raw_request("/webhooks/salesforce", cs.SF_HEADERS, body)


class Conn:
    """One keep-alive HTTP/1.1 connection; post() sends prepared bytes and reads the answer."""

    def __init__(self, port):
        self.port, self.sock, self.buf = port, None, b""

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def post(self, raw):
        for attempt in (0, 1):
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(raw)
                return self._read()
            except OSError:
                self.close()
                if attempt:
                    raise
        raise OSError("unreachable")

    def _read(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            self.buf += chunk
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v.strip())
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.buf = None, b""


def answer_ok(kind, status, body, n):
    if kind == "sf":
        return status == 200 and b"<Ack>true</Ack>" in body
    return status == 202 and body.startswith(b'{"accepted":%d,"duplicates":0' % n)


class Result:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = self.ok = self.bad = self.changes = 0
        self.lat, self.lag = [], []
        self.first_send = self.last_done = None
        self.sample = None
        self.sent_at = {}

    def add(self, ok, n, t_send, t_done, lag, sample=None, keys=()):
        with self.lock:
            for k in keys:  # what each change is, for matching it in the CRMs' records
                self.sent_at.setdefault(k, t_send)
            self.sent += 1
            self.changes += n if ok else 0
            if ok:
                self.ok += 1
            else:
                self.bad += 1
                self.sample = self.sample or sample
            self.lat.append(t_done - t_send)
            self.lag.append(lag)
            self.first_send = t_send if self.first_send is None else min(self.first_send, t_send)
            self.last_done = t_done if self.last_done is None else max(self.last_done, t_done)

    def summary(self):
        q = lib.quantiles([x * 1000 for x in self.lat])
        lag = lib.quantiles([x * 1000 for x in self.lag])
        return {"requests": self.sent, "ok": self.ok, "errors": self.bad,
                "changes_accepted": self.changes, "error_sample": self.sample,
                "latency_ms": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in q.items()},
                "send_lag_ms": {k: (round(v, 2) if isinstance(v, float) else v)
                                for k, v in lag.items()},
                "first_send": self.first_send, "last_done": self.last_done}


def _worker(port, items, kind, t0, res, stop):
    """items: [(offset seconds or None for as-fast-as-possible, raw bytes, changes, keys)]."""
    conn = Conn(port)
    try:
        for offset, raw, n, keys in items:
            if stop.is_set():
                break
            lag = 0.0
            if offset is not None:
                target = t0 + offset
                now = time.time()
                if target > now:
                    time.sleep(target - now)
                lag = max(0.0, time.time() - target)
            t_send = time.time()
            try:
                status, body = conn.post(raw)
                ok = answer_ok(kind, status, body, n)
                sample = None if ok else f"{status} {body[:200]!r}"
            except OSError as e:
                ok, sample = False, f"{type(e).__name__}: {e}"
            res.add(ok, n, t_send, time.time(), lag, sample, keys if ok else ())
    finally:
        conn.close()


def send(port, streams, t0=None, stop=None):
    """streams: {name: (kind "sf"|"mkto", [(offset, raw, changes, keys)], connections)}; every
    stream's items are dealt round-robin over its connections, one thread each. Returns
    ({name: Result.summary()}, {key: time sent}) once everything was sent."""
    stop = stop or threading.Event()
    t0 = t0 if t0 is not None else time.time()
    threads, results = [], {}
    for name, (kind, items, nconn) in streams.items():
        res = results[name] = Result()
        for k in range(nconn):
            t = threading.Thread(target=_worker, args=(port, items[k::nconn], kind, t0, res, stop),
                                 daemon=True)
            threads.append(t)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_at = {}
    for r in results.values():
        sent_at.update(r.sent_at)
    return {name: r.summary() for name, r in results.items()}, sent_at
