"""Hostile input: 10,000 malformed or truncated HTTP requests, each answered with a 4xx or a
closed connection, the service alive and its memory flat; slow-loris clients cannot take the
server down; invalid UTF-8 is refused by name."""
import os
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import cs

SECRET = cs.WEBHOOK_SECRET.encode()
N_REQUESTS = int(os.environ.get("HOSTILE_REQUESTS", "10000"))


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def template_body(i):
    return (b'{"type":"member_status_changed","programId":1001,"leadId":%d,'
            b'"email":"p%d@example.com","occurredAt":"2026-11-29 10:00:00"}' % (i, i))


def cases(rng):
    """Request generators; each returns (bytes to send, whether to close the write side)."""
    def bad_method(i):
        return b"%s /webhooks/marketo HTTP/1.1\r\nHost: x\r\n\r\n" % rng.choice(
            [b"FOO", b"GET\x00", b"P\xffST", b"DELETE", b"PATCH", b"TRACE", b"CONNECT"])

    def huge_header(i):
        return (b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * rng.choice(
            [40000, 100000, 300000]) + b"\r\n\r\n")

    def many_headers(i):
        return (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % k for k in range(3000))
                + b"\r\n")

    def over_limit(i):
        n = rng.choice([70000, 200000, 5000000])
        return (b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nX-Webhook-Secret: " + SECRET + b"\r\nContent-Length: %d\r\n\r\n" % n
                + b"[" * min(n, 80000))

    def broken_chunking(i):
        return rng.choice([
            b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\nX-Webhook-Secret: " + SECRET + b"\r\n\r\n"
            b"zz\r\nabc\r\n0\r\n\r\n",
            b"POST /webhooks/salesforce HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n5\r\nabcdefghij\r\n0\r\n\r\n",
            b"POST /webhooks/salesforce HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n-5\r\nabc\r\n",
            b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 10\r\n\r\n3\r\nabc\r\n",
        ])

    def bad_utf8(i):
        body = template_body(i).replace(b"p%d@example.com" % i, b"p\xc3\x28%d@ex.com" % i)
        return (b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nX-Webhook-Secret: " + SECRET + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                + body)

    def bad_utf8_xml(i):
        body = cs.data("salesforce/cm_1.xml").replace(b"First1", b"Fi\xff\xfe")
        return (b"POST /webhooks/salesforce HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def truncated(i):
        body = template_body(i)
        return (b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nX-Webhook-Secret: " + SECRET + b"\r\nContent-Length: %d\r\n\r\n"
                % (len(body) + 50) + body)  # fewer bytes than announced, then EOF

    def absurd_length(i):
        return (b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n"
                % rng.choice([b"-1", b"99999999999999999999999", b"12abc", b"1 2"]))

    def garbage(i):
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000)))

    def other_protocols(i):
        return rng.choice([
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",                       # an HTTP/2 preface
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,  # a TLS ClientHello
            b"GET /\r\n",                                              # HTTP/0.9
            b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        ])

    def bad_json_and_xml(i):
        body = rng.choice([b"{\"type\":", b"[" * 5000, b"\"\\u0000\"", b"{}" * 1000])
        xml = rng.choice([b"<a>", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>"])
        if rng.random() < 0.5:
            return (b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\nX-Webhook-Secret: " + SECRET
                    + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        return (b"POST /webhooks/salesforce HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                % len(xml) + xml)

    return [bad_method, huge_header, many_headers, over_limit, broken_chunking, bad_utf8,
            bad_utf8_xml, truncated, absurd_length, garbage, other_protocols, bad_json_and_xml]


def exchange(port, payload, timeout=5):
    """Sends, half-closes, reads the answer: its status code, or None when closed silently."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close while we still send
        data = b""
        try:
            while len(data) < 64:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    if not data:
        return None
    assert data.startswith(b"HTTP/1."), f"not an HTTP answer: {data[:60]!r}"
    return int(data.split(b" ", 2)[1])


def test_ten_thousand_malformed_requests(redis, services):
    # A request cut short is held until the idle timeout: 1 s keeps the run short.
    svc = services(redis.url, MAX_BODY_BYTES=65536, HTTP_TIMEOUT_S=1)
    rng = random.Random(20261129)
    gens = cases(rng)
    payloads = [(gens[i % len(gens)].__name__, gens[i % len(gens)](i)) for i in range(N_REQUESTS)]
    with ThreadPoolExecutor(32) as pool:
        # Warm up with the same concurrency: each of the HTTP threads gets its own malloc arena.
        list(pool.map(lambda np: exchange(svc.port, np[1]), payloads[:2000]))
        rss_before = rss_kib(svc.proc.pid)
        codes = list(pool.map(lambda np: (np[0], exchange(svc.port, np[1])), payloads))
    statuses = {}
    for name, code in codes:
        # 505 is libmicrohttpd's own answer to an unknown HTTP version: a refusal, not a fault.
        ok = code is None or 400 <= code < 500 or (code == 505 and name == "other_protocols")
        assert ok, f"{name} answered {code}"
        statuses[code] = statuses.get(code, 0) + 1
    rss_after = rss_kib(svc.proc.pid)
    assert svc.proc.poll() is None, "the service died"
    assert svc.req("GET", "/healthz").status == 200
    assert cs.stream_events(redis) == [], "garbage was queued"
    # Flat memory: no growth beyond a few MiB of allocator noise over 10,000 requests. Under
    # AddressSanitizer RSS says nothing (its quarantine keeps up to 256 MiB of freed memory on
    # purpose: CI saw 127 -> 375 MiB); there LeakSanitizer checks the service at exit instead.
    if not cs.SANITIZED:
        assert rss_after - rss_before < 8 * 1024, (rss_before, rss_after)
    assert statuses.get(400, 0) > 0 and statuses.get(413, 0) > 0, statuses


def test_invalid_utf8_is_refused_by_name(service):
    r = service.req("POST", "/webhooks/marketo",
                    b'{"type":"member_removed","programId":1,"leadId":2,"company":"Ac\xffme"}',
                    {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET})
    assert r.status == 400
    assert r.json()["field"] == "company"
    assert r.json()["message"] == "company: is not valid UTF-8 text"


def test_slow_loris_cannot_take_the_server_down(redis, services):
    svc = services(redis.url, HTTP_TIMEOUT_S=2, HTTP_PER_IP_CONNECTION_LIMIT=40)
    slow = []
    for _ in range(30):  # slow clients: a few header bytes, then nothing
        s = socket.create_connection(("127.0.0.1", svc.port), timeout=10)
        s.sendall(b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    t0 = time.monotonic()
    assert svc.req("GET", "/healthz").status == 200
    assert time.monotonic() - t0 < 1.0
    # The server closes idle connections after HTTP_TIMEOUT_S.
    time.sleep(3.5)
    closed = 0
    for s in slow:
        s.settimeout(1)
        try:
            closed += s.recv(100) == b""
        except OSError:
            closed += 1
        s.close()
    assert closed == len(slow)


def test_per_address_connection_limit(redis, services):
    svc = services(redis.url, HTTP_PER_IP_CONNECTION_LIMIT=10, HTTP_TIMEOUT_S=30)
    # Each held connection first gets an answer on keep-alive, so the server has accepted and
    # counted all ten before the eleventh arrives (its pool threads accept concurrently: CI saw
    # the eleventh counted before the tenth). A connection the server closes at once is opened
    # again: the start-up probe's connection, closed by us, can still count until the server's
    # thread notices the close (CI saw the tenth refused that way).
    def held_connection():
        deadline = time.monotonic() + 5
        while True:
            s = socket.create_connection(("127.0.0.1", svc.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                data += chunk
            if data:
                assert data.startswith(b"HTTP/1.1 200"), data[:40]
                return s
            s.close()
            assert time.monotonic() < deadline, "the server kept refusing a connection under its limit"
            time.sleep(0.05)

    held = [held_connection() for _ in range(10)]
    try:
        # The eleventh connection from this address is closed without an answer.
        assert exchange(svc.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") is None
    finally:
        for s in held:
            s.close()
    cs.wait_until(lambda: exchange(svc.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 200,
                  5, what="connections freed")
