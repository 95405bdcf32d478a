"""Hostile input: 10,000 malformed or truncated HTTP requests, each answered with a 4xx or a
closed connection, the service alive and its memory flat; slow-loris clients cannot take the
server down; invalid UTF-8 is refused by name. Issue 17: trickling clients are cut at the
request deadline, strangers are refused before their body is read, body caps per route, the
spool directory is private and never followed through a link and has a size cap, text logs
cannot be forged."""
import json
import os
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import cs

SECRET = cs.WEBHOOK_SECRET.encode()
MK = {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET}
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


# ---------------------------------------------------------------- issue 17

def _open_trickler(port, head):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(head)
    return s


def _trickle(socks, seconds, closed_at):
    """Sends one byte to every open socket every 2 s for `seconds`; records in closed_at when
    the server closed each one (a send or a read fails)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and len(closed_at) < len(socks):
        for i, s in enumerate(socks):
            if i in closed_at:
                continue
            try:
                s.setblocking(False)
                try:
                    if s.recv(4096) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                s.setblocking(True)
                s.sendall(b"a")
            except OSError:
                closed_at[i] = time.monotonic() - t0
        time.sleep(2)


def test_trickling_clients_are_cut_and_healthz_survives(redis, services):
    """Finding 4: a client sending one byte every 2 s kept its connection for ever (the
    timeout counted idle time only), so 24 of them took /healthz down at
    HTTP_CONNECTION_LIMIT=24, each holding a body buffer."""
    svc = services(redis.url, HTTP_CONNECTION_LIMIT=24, HTTP_PER_IP_CONNECTION_LIMIT=0,
                   HTTP_TIMEOUT_S=30, HTTP_REQUEST_TIMEOUT_S=4)
    rss = cs.rss_kib(svc.proc.pid)
    body_head = (b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nX-Webhook-Secret: " + SECRET + b"\r\nContent-Length: 1048000\r\n\r\n")
    header_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    # Twenty with the secret trickling a body, four trickling their headers: every slot.
    socks = [_open_trickler(svc.port, body_head) for _ in range(20)]
    socks += [_open_trickler(svc.port, header_head) for _ in range(4)]
    closed_at = {}
    t0 = time.monotonic()
    try:
        _trickle(socks, 14, closed_at)
        # Each was cut at the deadline (4 s, checked every 0.25 s), not at its own pace.
        assert len(closed_at) == len(socks), f"still open: {len(socks) - len(closed_at)}"
        assert max(closed_at.values()) < 9, closed_at
        # /healthz answers again as soon as they are gone.
        cs.wait_until(lambda: exchange(svc.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                      == 200, 3, what="/healthz")
        assert time.monotonic() - t0 < 14
    finally:
        for s in socks:
            s.close()
    cut = [l for l in svc.logs() if l.get("msg", "").startswith("http: connection cut")]
    assert cut and cut[0]["client"] == "127.0.0.1"
    assert cs.stream_events(redis) == []
    cs.assert_still_serving(svc, rss, max_growth_mib=4)


def test_strangers_are_refused_before_their_body(redis, services):
    """Finding 4: bodies were read in full before the secret, token or allowlist was checked.
    Now a request without them is answered from its headers alone (and its connection closed):
    24 strangers trickling bodies hold nothing, and /healthz answers throughout."""
    svc = services(redis.url, HTTP_CONNECTION_LIMIT=24, HTTP_PER_IP_CONNECTION_LIMIT=0,
                   SF_WEBHOOK_AUTH=None, SF_WEBHOOK_TOKEN="t" * 40)
    rss = cs.rss_kib(svc.proc.pid)
    heads = {
        b"POST /webhooks/marketo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Webhook-Secret: wrong\r\nContent-Length: 1000000\r\n\r\n": 401,
        b"POST /webhooks/salesforce HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
        b"Content-Length: 200000\r\n\r\n": 401,
        b"POST /webhooks/salesforce/" + b"u" * 40 + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 200000\r\n\r\n": 401,
        b"PUT /v1/mappings/1001 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
        b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n": 401,
    }
    for head, status in heads.items():
        for _ in range(6):
            with socket.create_connection(("127.0.0.1", svc.port), timeout=3) as s:
                s.sendall(head + b"{")  # headers and the first byte of a body, then nothing
                data = s.recv(4096)  # answered without waiting for the rest
                assert data.startswith(b"HTTP/1.1 %d " % status), (head[:40], data[:60])
                # and the connection is closed: the body is never read
                while data:
                    data = s.recv(4096)
        assert svc.req("GET", "/healthz").status == 200
    cs.assert_still_serving(svc, rss, max_growth_mib=4)


def test_body_caps_per_route(redis, services):
    """An Outbound Message of 100 notifications is ~110-140 KB: the Salesforce webhook takes
    SF_MAX_BODY_BYTES (256 KiB), Marketo's MAX_BODY_BYTES (1 MiB), the admin API 64 KiB."""
    svc = services(redis.url)
    big_xml = cs.data("salesforce/cm_100.xml").replace(b"</soapenv:Envelope>",
                                                       b" " * 200000 + b"</soapenv:Envelope>")
    assert 262144 < len(big_xml) < 1048576
    r = svc.req("POST", "/webhooks/salesforce", big_xml,
                {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    assert r.status == 413 and b"the request body exceeds 262144 bytes" in r.body
    assert svc.req("POST", "/webhooks/salesforce", cs.data("salesforce/cm_100.xml"),
                   {"Content-Type": "text/xml; charset=utf-8"}).status == 200
    r = svc.req("PUT", "/v1/mappings/1001", b"{" + b" " * 70000 + b"}", cs.admin_headers())
    assert r.status == 413
    assert r.json() == {"error": "payload_too_large",
                        "message": "the request body exceeds 65536 bytes"}
    events = [{"type": "member_status_changed", "programId": 1001, "leadId": i,
               "occurredAt": "2026-11-29 10:00:00", "company": "c" * 200} for i in range(1, 1001)]
    body = json.dumps(events).encode()
    assert 262144 < len(body) < 1048576
    r = svc.req("POST", "/webhooks/marketo", body,
                {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET})
    assert r.status == 202, r.body


def test_spool_dir_is_private_and_never_followed(workdir, redis):
    """Finding 6: SPOOL_DIR was used as found: a symbolic link in it was followed (a victim
    file was truncated at start-up), its owner and mode went unchecked."""
    victim = os.path.join(workdir, "victim.txt")
    with open(victim, "w") as f:
        f.write("precious data, no trailing newline")
    spool = os.path.join(workdir, "spool-link")
    os.makedirs(spool, mode=0o700)
    os.symlink(victim, os.path.join(spool, "marketo.journal"))
    env = cs.base_env(redis.url, workdir, SPOOL_DIR=spool)
    rc, _, err = cs.run_command(env, "ingest", timeout=10)
    assert rc == 2, err
    assert (f"SPOOL_DIR: cannot open {spool}/marketo.journal: Too many levels of symbolic links "
            "(it is a symbolic link; remove it)") in err
    assert open(victim).read() == "precious data, no trailing newline"
    # A directory others may reach: refused, with the command that fixes it.
    open_dir = os.path.join(workdir, "spool-open")
    os.makedirs(open_dir)
    os.chmod(open_dir, 0o755)
    rc, _, err = cs.run_command(cs.base_env(redis.url, workdir, SPOOL_DIR=open_dir), "ingest",
                                timeout=10)
    assert rc == 2 and (f"SPOOL_DIR: {open_dir} has mode 0755; only its owner may use it; fix: "
                        f"chmod 700 {open_dir}") in err
    # A FIFO (or any file that is not a regular one) in place of the journal.
    fifo_dir = os.path.join(workdir, "spool-fifo")
    os.makedirs(fifo_dir, mode=0o700)
    os.mkfifo(os.path.join(fifo_dir, "marketo.offset"))
    rc, _, err = cs.run_command(cs.base_env(redis.url, workdir, SPOOL_DIR=fifo_dir), "ingest",
                                timeout=10)
    assert rc == 2 and f"SPOOL_DIR: {fifo_dir}/marketo.offset is not a regular file" in err
    # Owned by someone else (needs root to arrange).
    if os.geteuid() == 0:
        theirs = os.path.join(workdir, "spool-theirs")
        os.makedirs(theirs, mode=0o700)
        os.chown(theirs, 65534, 65534)
        rc, _, err = cs.run_command(cs.base_env(redis.url, workdir, SPOOL_DIR=theirs), "ingest",
                                    timeout=10)
        assert rc == 2 and f"SPOOL_DIR: {theirs} is owned by uid 65534, not by uid 0" in err
        assert f"fix: chown 0 {theirs} && chmod 700 {theirs}" in err


def test_spool_size_cap_answers_marketo_503(redis, services, workdir):
    """Finding 6: no size cap while Redis is down. Past SPOOL_MAX_BYTES Marketo is answered
    503 (nothing acknowledged that was not stored), and what was acknowledged reaches Redis."""
    svc = services(redis.url, SPOOL_MAX_BYTES=65536)
    rss = cs.rss_kib(svc.proc.pid)
    redis.stop()
    accepted, statuses, lead = 0, [], 0
    while len(statuses) < 200 and 503 not in statuses:
        batch = []
        for _ in range(20):
            lead += 1
            batch.append({"type": "member_status_changed", "programId": 1001, "leadId": lead,
                          "occurredAt": "2026-11-29 10:00:00"})
        r = svc.req("POST", "/webhooks/marketo", batch, MK)
        statuses.append(r.status)
        if r.status == 202:
            accepted += r.json()["accepted"]
    assert statuses[-1] == 503 and set(statuses[:-1]) == {202}, statuses
    r = svc.req("POST", "/webhooks/marketo", batch, MK)
    assert r.status == 503
    assert r.json()["error"] == "unavailable"
    assert os.path.getsize(os.path.join(workdir, "spool", "marketo.journal")) <= 65536
    logged = [l for l in svc.logs() if l.get("msg") == "marketo: events could not be stored anywhere"]
    assert logged and "is full" in logged[0]["spool"] and "SPOOL_MAX_BYTES=65536" in logged[0]["spool"]
    cs.assert_still_serving(svc, rss)
    # Nothing lost: once Redis is back, every acknowledged event is queued.
    redis.start()
    cs.wait_until(lambda: len(cs.stream_events(redis)) == accepted, 15,
                  what="the journal moved into Redis")
    assert svc.req("POST", "/webhooks/marketo", batch, MK).status == 202


def test_text_log_lines_cannot_be_forged(redis, services):
    """Finding 7: LOG_FORMAT=text wrote outside text as it came, so a value with a line break
    forged a log line of its own."""
    svc = services(redis.url, LOG_FORMAT="text")
    forged = "2026-12-07T10:00:00.000Z info mapping deleted program_id=1001"
    r = svc.req("POST", "/webhooks/marketo",
                {"type": "member_status_changed", "programId": 1001, "leadId": 7,
                 "occurredAt": "x\n" + forged},
                MK)
    assert r.status == 400
    svc.stop()
    lines = svc.stderr().splitlines()
    assert not [l for l in lines if l.startswith(forged)], "a forged line in the log"
    refused = [l for l in lines if " warn marketo: webhook refused " in l]
    assert len(refused) == 1 and "x\\n" + forged in refused[0], refused


def test_deadline_does_not_count_the_services_own_wait(redis, services):
    """The request deadline is the client's: a message waiting for a stalled Redis longer than
    HTTP_REQUEST_TIMEOUT_S is still answered (here: stored and acknowledged), not cut."""
    import signal
    svc = services(redis.url, HTTP_REQUEST_TIMEOUT_S=1)
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(svc.req, "POST", "/webhooks/salesforce",
                              cs.data("salesforce/cm_1.xml"), {"Content-Type": "text/xml"}, 20)
            time.sleep(2.5)
            assert not fut.done(), "answered while Redis was stopped"
            redis.proc.send_signal(signal.SIGCONT)
            r = fut.result()
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert r.status == 200 and b"<Ack>true</Ack>" in r.body
    assert len(cs.stream_events(redis)) == 1


def test_deadline_does_not_count_a_slow_crm(redis, services, sf_sim, mkto_sim):
    """A handler that waits for a CRM (the admin API's status check) longer than
    HTTP_REQUEST_TIMEOUT_S still answers: the deadline counts the client's time only."""
    svc = services(redis.url, HTTP_REQUEST_TIMEOUT_S=1, **cs.crm_env(sf_sim, mkto_sim))
    mkto_sim.ctl("POST", "config", {"latencyMs": 2500})  # Marketo is asked first
    t0 = time.monotonic()
    r = svc.req("PUT", "/v1/mappings/1001", {"campaignId": "7015g000000CampAAA"},
                cs.admin_headers(), timeout=30)
    assert time.monotonic() - t0 > 2  # the handler outlived the deadline
    assert r.status == 201 and r.json()["statusCheck"] == "pending", r.body
