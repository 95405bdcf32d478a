"""Access: source allowlists per webhook (with trusted proxies), HTTPS on the listener with
optional client-certificate verification (Salesforce's mutual TLS), and secrets that never
reach logs or metrics."""
import http.client
import os
import ssl
import subprocess

import pytest

import cs

SF_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}
MK_HEADERS = {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET}
EVENT = ('{"type":"member_status_changed","programId":1001,"leadId":7,'
         '"email":"ann@example.com","occurredAt":"2026-11-29 10:00:00"}')


def test_allowlists_per_webhook(redis, services):
    svc = services(redis.url, SF_ALLOWED_CIDRS="10.0.0.0/8",
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
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all from it, and
    a second CA that signed nothing of ours."""
    d = os.path.join(workdir, "pki")
    os.makedirs(d)
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}", cwd=d)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    for name, subj in (("server", "/CN=127.0.0.1"), ("client", "/CN=salesforce-client")):
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
    svc = cs.Service(os.path.dirname(pki), cs.base_env(
        redis.url, os.path.dirname(pki), TLS_CERT_FILE=f"{pki}/server.pem",
        TLS_KEY_FILE=f"{pki}/server.key"), "ingest", "tls")
    svc.start(wait=False)
    ctx = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    cs.wait_until(lambda: _answers(svc.port, ctx), 15, what="HTTPS listener")
    status, body = https(svc.port, "/healthz", ctx)
    assert (status, body) == (200, b'{"status":"ok"}')
    status, _ = https(svc.port, "/webhooks/marketo", ctx, "POST", EVENT, MK_HEADERS)
    assert status == 202
    # Plain HTTP on the TLS port gets no HTTP answer.
    with pytest.raises((http.client.HTTPException, OSError)):
        cs.request(svc.port, "GET", "/healthz", timeout=3)
    svc.stop()


def _answers(port, ctx, cert=None):
    try:
        return https(port, "/healthz", ctx)[0] in (200, 403)
    except (OSError, ssl.SSLError):
        return False


def test_mutual_tls_requires_a_client_certificate_from_the_ca(redis, pki):
    wd = os.path.dirname(pki)
    svc = cs.Service(wd, cs.base_env(redis.url, wd, TLS_CERT_FILE=f"{pki}/server.pem",
                                     TLS_KEY_FILE=f"{pki}/server.key",
                                     TLS_CLIENT_CA_FILE=f"{pki}/ca.pem"), "ingest", "mtls")
    svc.start(wait=False)
    anonymous = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    cs.wait_until(lambda: _answers(svc.port, anonymous), 15, what="HTTPS listener")
    # Without a client certificate: refused, in the route's own error format.
    status, body = https(svc.port, "/webhooks/salesforce", anonymous, "POST",
                         cs.data("salesforce/cm_1.xml"), SF_HEADERS)
    assert status == 403
    assert b"<faultstring>a client certificate is required</faultstring>" in body
    # With one from the CA: accepted.
    ok = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    ok.load_cert_chain(f"{pki}/client.pem", f"{pki}/client.key")
    status, body = https(svc.port, "/webhooks/marketo", ok, "POST", EVENT, MK_HEADERS)
    assert status == 202, body
    # With a certificate from another CA: refused.
    other = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    other.load_cert_chain(f"{pki}/other-ca.pem", f"{pki}/other-ca.key")
    try:
        status, body = https(svc.port, "/webhooks/marketo", other, "POST", EVENT, MK_HEADERS)
        assert status == 403, body
    except (ssl.SSLError, OSError):
        pass  # refused during the handshake: also a refusal
    assert len(cs.stream_events(redis)) == 1
    svc.stop()


def test_missing_certificate_file_stops_start_up(workdir, redis):
    env = cs.base_env(redis.url, workdir, TLS_CERT_FILE=f"{workdir}/nope.pem",
                      TLS_KEY_FILE=f"{workdir}/nope.key")
    rc, _, err = cs.run_command(env, "ingest")
    assert rc == 2 and "TLS_CERT_FILE: cannot read" in err


# ---------------------------------------------------------------- secrets

def test_secrets_never_reach_logs_or_metrics(redis, services, workdir):
    secrets = {"MARKETO_WEBHOOK_SECRET": "mk-hook-S3CR3T", "ADMIN_TOKEN": "adm-T0KEN-xyz",
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
