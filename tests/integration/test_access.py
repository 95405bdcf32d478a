"""Access: who may call the webhooks (issue 17). The Salesforce webhook needs a token in its
URL, pinned client certificates or a source allowlist, or the service does not start (unless
SF_WEBHOOK_AUTH=none); source allowlists per webhook (with trusted proxies and every
X-Forwarded-For line); HTTPS on the listener with client-certificate pinning (Salesforce's
mutual TLS); secrets of at least 32 bytes that never reach logs or metrics; failed
authentications counted and logged."""
import http.client
import json
import os
import ssl
import subprocess
import time

import pytest

import cs

SF_TOKEN = "sf-webhook-token-0123456789abcdef0123456789abcdef"

SF_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}
MK_HEADERS = {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET}
EVENT = ('{"type":"member_status_changed","programId":1001,"leadId":7,'
         '"email":"ann@example.com","occurredAt":"2026-11-29 10:00:00"}')


def messages(stderr):
    """The msg of every JSON log line, one per line."""
    return "\n".join(json.loads(l)["msg"] for l in stderr.splitlines() if l.startswith("{"))


def fault(text):
    return ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            '<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>'
            f'{text}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>').encode()


def test_allowlists_per_webhook(redis, services):
    # SF_ALLOWED_CIDRS alone is enough Salesforce authentication to start.
    svc = services(redis.url, SF_WEBHOOK_AUTH=None, SF_ALLOWED_CIDRS="10.0.0.0/8",
                   MARKETO_ALLOWED_CIDRS="127.0.0.0/8, ::1/128")
    r = svc.req("POST", "/webhooks/salesforce", cs.data("salesforce/cm_1.xml"), SF_HEADERS)
    assert r.status == 403
    assert r.header("Content-Type") == "text/xml; charset=utf-8"
    assert b"<faultstring>source address 127.0.0.1 is not in SF_ALLOWED_CIDRS</faultstring>" in r.body
    r = svc.req("POST", "/webhooks/marketo", EVENT, MK_HEADERS)
    assert r.status == 202
    assert len(cs.stream_events(redis)) == 1
    # Health and metrics are not restricted.
    assert svc.req("GET", "/healthz").status == 200


def test_forwarded_for_is_believed_only_from_trusted_proxies(redis, services):
    svc = services(redis.url, MARKETO_ALLOWED_CIDRS="203.0.113.0/24")
    hdr = {**MK_HEADERS, "X-Forwarded-For": "203.0.113.5"}
    # Without TRUSTED_PROXIES the header means nothing: the peer is 127.0.0.1.
    r = svc.req("POST", "/webhooks/marketo", EVENT, hdr)
    assert r.status == 403
    assert r.json() == {"error": "forbidden",
                        "message": "source address 127.0.0.1 is not in MARKETO_ALLOWED_CIDRS"}
    svc.stop()
    svc = services(redis.url, name="proxied", MARKETO_ALLOWED_CIDRS="203.0.113.0/24",
                   TRUSTED_PROXIES="127.0.0.1")
    assert svc.req("POST", "/webhooks/marketo", EVENT, hdr).status == 202
    # A client prepending an allowed address to its own does not get in.
    r = svc.req("POST", "/webhooks/marketo", EVENT,
                {**MK_HEADERS, "X-Forwarded-For": "203.0.113.5, 198.51.100.1"})
    assert r.status == 403 and "198.51.100.1" in r.json()["message"]


def test_bad_cidr_stops_start_up(workdir, redis):
    env = cs.base_env(redis.url, workdir, SF_ALLOWED_CIDRS="10.0.0.0/33",
                      TRUSTED_PROXIES="proxy.local")
    rc, _, err = cs.run_command(env, "ingest")
    assert rc == 2
    assert "SF_ALLOWED_CIDRS: must be a comma-separated list of CIDR ranges" in err
    assert "TRUSTED_PROXIES: must be a comma-separated list" in err


# ---------------------------------------------------------------- TLS

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(workdir):
    """A CA, a server certificate for 127.0.0.1 and two client certificates (Salesforce's and
    a stranger's), all from it, and a second CA that signed nothing of ours."""
    d = os.path.join(workdir, "pki")
    os.makedirs(d)
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}", cwd=d)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    for name, subj in (("server", "/CN=127.0.0.1"), ("client", "/CN=salesforce-client"),
                       ("stranger", "/CN=someone-else-of-the-same-ca")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                *(["-extfile", "san.cnf"] if name == "server" else []), cwd=d)
    return d


def https(port, path, ctx, method="GET", body=None, headers=None):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_https_listener(redis, services, pki):
    # services: stopped after the test even when an assertion fails (pki is in its workdir).
    svc = services(redis.url, "ingest", wait=False, name="tls",
                   TLS_CERT_FILE=f"{pki}/server.pem", TLS_KEY_FILE=f"{pki}/server.key")
    ctx = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    cs.wait_until(lambda: _answers(svc.port, ctx), 15, what="HTTPS listener")
    status, body = https(svc.port, "/healthz", ctx)
    assert (status, body) == (200, b'{"status":"ok"}')
    status, _ = https(svc.port, "/webhooks/marketo", ctx, "POST", EVENT, MK_HEADERS)
    assert status == 202
    # Plain HTTP on the TLS port gets no HTTP answer.
    with pytest.raises((http.client.HTTPException, OSError)):
        cs.request(svc.port, "GET", "/healthz", timeout=3)
    # The container's health check follows the scheme: HTTPS on the public port (no
    # MANAGEMENT_PORT), so a TLS-only deployment is not reported unhealthy.
    rc, _, err = cs.run_command(svc.env, "healthcheck")
    assert rc == 0, err
    svc.stop()
    rc, _, err = cs.run_command(svc.env, "healthcheck")
    assert rc == 1 and f"https://127.0.0.1:{svc.port}/healthz" in err, err


def _answers(port, ctx, cert=None):
    try:
        return https(port, "/healthz", ctx)[0] in (200, 403)
    except (OSError, ssl.SSLError):
        return False


def _mtls_service(services, redis, pki, name, **env):
    """An ingest with mutual TLS, from the services factory: stopped after the test even when
    an assertion fails (pki is in the factory's workdir)."""
    svc = services(redis.url, "ingest", wait=False, name=name,
                   TLS_CERT_FILE=f"{pki}/server.pem", TLS_KEY_FILE=f"{pki}/server.key",
                   TLS_CLIENT_CA_FILE=f"{pki}/ca.pem", **env)
    anonymous = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    cs.wait_until(lambda: _answers(svc.port, anonymous), 15, what="HTTPS listener")
    return svc, anonymous


def _client(pki, name):
    ctx = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    ctx.load_cert_chain(f"{pki}/{name}.pem", f"{pki}/{name}.key")
    return ctx


def test_mutual_tls_requires_a_client_certificate_from_the_ca(redis, services, pki):
    svc, anonymous = _mtls_service(services, redis, pki, "mtls")
    # Without a client certificate: refused, in the route's own error format.
    status, body = https(svc.port, "/webhooks/salesforce", anonymous, "POST",
                         cs.data("salesforce/cm_1.xml"), SF_HEADERS)
    assert (status, body) == (403, fault("a client certificate is required"))
    # With one from the CA: accepted.
    status, body = https(svc.port, "/webhooks/salesforce", _client(pki, "client"), "POST",
                         cs.data("salesforce/cm_1.xml"), SF_HEADERS)
    assert status == 200, body
    # With a certificate from another CA: refused.
    try:
        status, body = https(svc.port, "/webhooks/salesforce", _client(pki, "other-ca"), "POST",
                             cs.data("salesforce/cm_1.xml"), SF_HEADERS)
        assert (status, body) == (403, fault(
            "the client certificate is not signed by TLS_CLIENT_CA_FILE's CA")), body
    except (ssl.SSLError, OSError):
        pass  # refused during the handshake: also a refusal
    # Marketo sends no client certificate: its webhook does not ask for one; nor do the health
    # checks and the admin API (issue 21: client certificates on the Salesforce route only).
    status, body = https(svc.port, "/webhooks/marketo", anonymous, "POST", EVENT, MK_HEADERS)
    assert status == 202, body
    assert len(cs.stream_events(redis)) == 2
    assert https(svc.port, "/healthz", anonymous) == (200, b'{"status":"ok"}')
    status, body = https(svc.port, "/v1/sync", anonymous, headers=cs.admin_headers())
    assert (status, json.loads(body)) == (200, {"enabled": True}), body
    svc.stop()


def fingerprint(pem):
    """The certificate's SHA-256 fingerprint as openssl prints it."""
    return subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", pem],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_salesforce_client_certificate_must_be_pinned(redis, services, pki):
    """Finding 5: any certificate chaining to TLS_CLIENT_CA_FILE was accepted; for a public CA
    that is anyone's. With TLS_CLIENT_CERT_PINS only the pinned certificates get in."""
    pin = fingerprint(f"{pki}/client.pem")  # "sha256 Fingerprint=AB:CD:..."
    assert "Fingerprint=" in pin and pin.count(":") == 31
    svc, anonymous = _mtls_service(services, redis, pki, "pinned", SF_WEBHOOK_AUTH=None,
                                   TLS_CLIENT_CERT_PINS=pin)
    rss = cs.rss_kib(svc.proc.pid)
    xml = cs.data("salesforce/cm_1.xml")
    # The attack: a certificate from the same CA, not pinned.
    status, body = https(svc.port, "/webhooks/salesforce", _client(pki, "stranger"), "POST", xml,
                         SF_HEADERS)
    assert (status, body) == (403, fault("the client certificate is not one of "
                                         "TLS_CLIENT_CERT_PINS"))
    status, body = https(svc.port, "/webhooks/salesforce", anonymous, "POST", xml, SF_HEADERS)
    assert (status, body) == (403, fault("a client certificate is required"))
    assert cs.stream_events(redis) == []
    # The pinned certificate gets in.
    status, body = https(svc.port, "/webhooks/salesforce", _client(pki, "client"), "POST", xml,
                         SF_HEADERS)
    assert status == 200, body
    assert len(cs.stream_events(redis)) == 1
    status, _ = https(svc.port, "/healthz", anonymous)
    assert status == 200
    assert svc.proc.poll() is None
    if not cs.SANITIZED:
        assert cs.rss_kib(svc.proc.pid) - rss < 8 * 1024
    svc.stop()
    # Colons and case are optional; a pin without TLS_CLIENT_CA_FILE, or not a fingerprint,
    # stops start-up naming the variable.
    bare = pin.split("=", 1)[1].replace(":", "").lower()
    wd = os.path.dirname(pki)
    env = cs.base_env(redis.url, wd, TLS_CERT_FILE=f"{pki}/server.pem",
                      TLS_KEY_FILE=f"{pki}/server.key", SF_WEBHOOK_AUTH=None,
                      TLS_CLIENT_CERT_PINS=bare)
    rc, _, err = cs.run_command(env, "ingest", timeout=10)
    assert rc == 2 and "TLS_CLIENT_CERT_PINS: needs TLS_CLIENT_CA_FILE" in err
    env.update(TLS_CLIENT_CA_FILE=f"{pki}/ca.pem", TLS_CLIENT_CERT_PINS=bare[:-2])
    rc, _, err = cs.run_command(env, "ingest", timeout=10)
    assert rc == 2 and "TLS_CLIENT_CERT_PINS: " in err and "is not a SHA-256 fingerprint" in err


def test_missing_certificate_file_stops_start_up(workdir, redis):
    env = cs.base_env(redis.url, workdir, TLS_CERT_FILE=f"{workdir}/nope.pem",
                      TLS_KEY_FILE=f"{workdir}/nope.key")
    rc, _, err = cs.run_command(env, "ingest")
    assert rc == 2 and "TLS_CERT_FILE: cannot read" in err


# ---------------------------------------------------------------- secrets

def test_secrets_never_reach_logs_or_metrics(redis, services, workdir):
    secrets = {"MARKETO_WEBHOOK_SECRET": "mk-hook-S3CR3T-0123456789abcdef0123456789",
               "ADMIN_TOKEN": "adm-T0KEN-xyz-0123456789abcdef0123456789ab",
               "SF_WEBHOOK_TOKEN": "sf-hook-T0KEN-0123456789abcdef0123456789",
               "SF_CLIENT_SECRET": "sf-S3CR3T-abc", "MARKETO_CLIENT_SECRET": "mk-S3CR3T-def"}
    svc = services(redis.url, LOG_LEVEL="debug", **{**cs.NOWHERE_CRMS, **secrets})
    # Failed attempts present wrong values; the right ones are used too.
    svc.req("POST", "/webhooks/marketo", EVENT,
            {"Content-Type": "application/json", "X-Webhook-Secret": "wrong-guess-123"})
    svc.req("POST", "/webhooks/marketo", EVENT,
            {"Content-Type": "application/json", "X-Webhook-Secret": secrets["MARKETO_WEBHOOK_SECRET"]})
    svc.req("GET", "/v1/sync", headers={"Authorization": "Bearer " + secrets["ADMIN_TOKEN"]})
    svc.req("GET", "/v1/sync", headers={"Authorization": "Bearer wrong-token-456"})
    metrics = svc.req("GET", "/metrics").body.decode()
    svc.stop()
    logs = svc.stderr()
    for value in [*secrets.values(), "wrong-guess-123", "wrong-token-456"]:
        assert value not in logs, f"{value} appeared in the log"
        assert value not in metrics, f"{value} appeared in /metrics"
    assert '"ADMIN_TOKEN":"[redacted]"' in logs


# ---------------------------------------------------------------- Salesforce authentication

def test_no_salesforce_authentication_stops_start_up(workdir, redis):
    """Finding 1: the org id is no secret, so a service that checks nothing else does not
    start (exit 2, one line naming the settings); SF_WEBHOOK_AUTH=none accepts the risk."""
    for command in ("serve", "ingest"):
        env = cs.base_env(redis.url, workdir, SF_WEBHOOK_AUTH=None, **cs.NOWHERE_CRMS)
        rc, _, err = cs.run_command(env, command, timeout=10)
        assert rc == 2, err
        lines = [l for l in err.splitlines() if "SF_WEBHOOK_TOKEN" in l]
        assert len(lines) == 1, err
        assert ("SF_WEBHOOK_AUTH: /webhooks/salesforce would take a message from anyone who "
                "knows the org id: set SF_WEBHOOK_TOKEN (a secret in the endpoint URL), "
                "TLS_CLIENT_CERT_PINS (Salesforce's client certificate) or SF_ALLOWED_CIDRS, or "
                "SF_WEBHOOK_AUTH=none to accept the risk") in lines[0]
    # Only "none" is a value; a worker takes no webhooks and needs none of it.
    env = cs.base_env(redis.url, workdir, SF_WEBHOOK_AUTH="off")
    rc, _, err = cs.run_command(env, "ingest", timeout=10)
    assert rc == 2 and 'SF_WEBHOOK_AUTH: the only value is "none" (got "off")' in messages(err)


def test_salesforce_url_token(redis, services):
    """Finding 1: a forged Outbound Message with the right org id was acknowledged and queued.
    With SF_WEBHOOK_TOKEN only /webhooks/salesforce/<token> takes messages; the token is
    compared in constant time and appears in no log line or metric."""
    svc = services(redis.url, SF_WEBHOOK_AUTH=None, SF_WEBHOOK_TOKEN=SF_TOKEN, LOG_LEVEL="debug")
    rss = cs.rss_kib(svc.proc.pid)
    xml = cs.data("salesforce/cm_1.xml")
    refused = fault("missing or wrong token in the endpoint URL; set the Outbound Message's "
                    "endpoint URL to https://&lt;host&gt;/webhooks/salesforce/"
                    "&lt;SF_WEBHOOK_TOKEN&gt;")
    # The attack: the right org id, without the token or with a wrong one.
    for path in ("/webhooks/salesforce", "/webhooks/salesforce/" + "x" * len(SF_TOKEN),
                 "/webhooks/salesforce/" + SF_TOKEN[:-1], "/webhooks/salesforce/" + SF_TOKEN + "0"):
        r = svc.req("POST", path, xml, SF_HEADERS)
        assert (r.status, r.body) == (401, refused), path
        assert r.header("Content-Type") == "text/xml; charset=utf-8"
    assert cs.stream_events(redis) == []
    # Salesforce, with the endpoint URL the README shows.
    r = svc.req("POST", "/webhooks/salesforce/" + SF_TOKEN, xml, SF_HEADERS)
    assert r.status == 200 and b"<Ack>true</Ack>" in r.body
    assert len(cs.stream_events(redis)) == 1
    metrics = svc.req("GET", "/metrics").body.decode()
    assert cs.metric_value(metrics, "campaign_sync_auth_failures_total",
                           route="/webhooks/salesforce") == 1
    assert cs.metric_value(metrics, "campaign_sync_auth_failures_total",
                           route="/webhooks/salesforce/{token}") == 3
    assert cs.metric_value(metrics, "campaign_sync_http_requests_total",
                           route="/webhooks/salesforce/{token}", code="200") == 1
    cs.assert_still_serving(svc, rss)
    svc.stop()
    logs = svc.stderr()
    assert SF_TOKEN not in logs and SF_TOKEN[:-1] not in logs and SF_TOKEN not in metrics
    failed = [l for l in svc.logs() if l.get("msg") == "http: authentication failed"]
    assert len(failed) == 4 and all(l["client"] == "127.0.0.1" for l in failed)
    assert {l["route"] for l in failed} == {"/webhooks/salesforce", "/webhooks/salesforce/{token}"}
    assert '"SF_WEBHOOK_TOKEN":"[redacted]"' in logs


def test_salesforce_token_path_without_a_configured_token(redis, services):
    svc = services(redis.url)  # SF_WEBHOOK_AUTH=none, no token: the bare path takes messages
    r = svc.req("POST", "/webhooks/salesforce/" + SF_TOKEN, cs.data("salesforce/cm_1.xml"),
                SF_HEADERS)
    assert (r.status, r.body) == (401, fault(
        "this service has no SF_WEBHOOK_TOKEN; set the Outbound Message's endpoint URL to "
        "https://&lt;host&gt;/webhooks/salesforce"))
    assert svc.req("POST", "/webhooks/salesforce", cs.data("salesforce/cm_1.xml"),
                   SF_HEADERS).status == 200


# ---------------------------------------------------------------- X-Forwarded-For

def test_forwarded_for_every_line_any_length_fail_closed(redis, services):
    """Finding 2: behind TRUSTED_PROXIES, X-Forwarded-For was cut at 1,023 bytes (keeping the
    attacker's left part) and only its first line was read, so an allowlist could be passed
    by prepending an allowed address."""
    svc = services(redis.url, MARKETO_ALLOWED_CIDRS="203.0.113.0/24, 2001:db8::/32",
                   TRUSTED_PROXIES="127.0.0.1")
    rss = cs.rss_kib(svc.proc.pid)

    def post(*lines):
        # http.client sends each putheader call as a line of its own.
        conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
        try:
            conn.putrequest("POST", "/webhooks/marketo")
            for k, v in MK_HEADERS.items():
                conn.putheader(k, v)
            for line in lines:
                conn.putheader("X-Forwarded-For", line)
            conn.putheader("Content-Length", str(len(EVENT)))
            conn.endheaders(EVENT.encode())
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    # 1. The attacker's own header line, with an allowed address, comes first; our proxy
    # added the real client in a second line.
    status, body = post("203.0.113.5", "198.51.100.1")
    assert (status, body) == (403, b'{"error":"forbidden","message":"source address '
                                   b'198.51.100.1 is not in MARKETO_ALLOWED_CIDRS"}')
    # 2. Allowed addresses for 1,023 bytes, then the real client (cut off before).
    entry = "2001:0db8:0000:0000:0000:0000:0000:0005"
    padded = entry + "," + " " * 42 + entry + (", " + entry) * 22  # spaces inside the value
    assert len(padded) == 1023
    status, body = post(padded + ", 198.51.100.1")
    assert status == 403 and b"198.51.100.1 is not in MARKETO_ALLOWED_CIDRS" in body
    # ... and the same list with an allowed client at its end is read to its end.
    assert post(padded + ", 203.0.113.9")[0] == 202
    # 3. What cannot be read is refused, not guessed at: junk, an empty entry, too many.
    status, body = post("garbage, 203.0.113.5")
    assert (status, body) == (403, b'{"error":"forbidden","message":"X-Forwarded-For holds '
                                   b'\\"garbage\\", which is not an address; the request is '
                                   b'refused"}')
    assert post("203.0.113.5,")[0] == 403
    assert post(", ".join(["203.0.113.5"] * 65))[0] == 403
    assert post(*(["203.0.113.5"] * 65))[0] == 403
    assert len(cs.stream_events(redis)) == 1
    # Our proxy's ordinary header still works.
    assert post("203.0.113.7")[0] == 202
    cs.assert_still_serving(svc, rss)


# ---------------------------------------------------------------- secrets and failures

def test_short_secrets_stop_start_up(workdir, redis):
    """Finding 9: no minimum length for the shared secrets."""
    short = "x" * 31
    for var in ("ADMIN_TOKEN", "MARKETO_WEBHOOK_SECRET", "SF_WEBHOOK_TOKEN"):
        env = cs.base_env(redis.url, workdir, **{var: short})
        rc, _, err = cs.run_command(env, "ingest", timeout=10)
        assert rc == 2, f"{var}: {err}"
        assert f"{var}: must be at least 32 bytes long" in err, err
        assert short not in err  # a secret is never echoed, not even a wrong one
    env = cs.base_env(redis.url, workdir, SF_WEBHOOK_TOKEN="a/b" + "c" * 40)
    rc, _, err = cs.run_command(env, "ingest", timeout=10)
    assert rc == 2 and "SF_WEBHOOK_TOKEN: must be 32 to 255 letters, digits" in err


def test_failed_authentications_are_counted_and_logged(redis, services):
    """Finding 9: failed admin logins were neither logged nor counted."""
    svc = services(redis.url)
    rss = cs.rss_kib(svc.proc.pid)
    for i in range(30):
        r = svc.req("GET", "/v1/sync", headers={"Authorization": f"Bearer wrong-token-{i}"})
        assert r.status == 401 and r.header("WWW-Authenticate") == "Bearer"
    for _ in range(3):
        r = svc.req("POST", "/webhooks/marketo", EVENT,
                    {"Content-Type": "application/json", "X-Webhook-Secret": "wrong"})
        assert r.status == 401
    assert svc.req("GET", "/v1/sync", headers=cs.admin_headers()).status == 200
    text = svc.req("GET", "/metrics").body.decode()
    assert cs.metric_value(text, "campaign_sync_auth_failures_total", route="/v1/sync") == 30
    assert cs.metric_value(text, "campaign_sync_auth_failures_total",
                           route="/webhooks/marketo") == 3
    assert cs.metric_value(text, "campaign_sync_auth_failures_total",
                           route="/webhooks/salesforce") == 0
    assert cs.promtool_check(text) == ""
    # Logged with the client's address, at most 10 a second per kind; the next line says how
    # many were held back.
    time.sleep(1.1)
    svc.req("GET", "/v1/sync", headers={"Authorization": "Bearer wrong-again"})
    cs.assert_still_serving(svc, rss)
    svc.stop()
    lines = [l for l in svc.logs() if l.get("msg") == "http: authentication failed"]
    assert all(l["client"] == "127.0.0.1" for l in lines)
    assert 10 <= len(lines) <= 21, len(lines)
    assert int(lines[-1].get("suppressed", "0")) > 0, lines[-1]
    assert sum(int(l.get("suppressed", "0")) for l in lines) + len(lines) == 34
