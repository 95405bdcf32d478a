"""Foundation: health, readiness (with Redis taken away and given back), metrics format,
JSON errors, start-up errors that name the variable, secrets kept out of logs, SIGTERM."""
import os
import signal
import time

import cs


def test_healthz_exact_answer(service):
    r = service.req("GET", "/healthz")
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    assert r.body == b'{"status":"ok"}'


def test_readyz_follows_redis_in_the_same_process(redis, service):
    r = service.req("GET", "/readyz")
    assert r.status == 200
    assert r.json() == {"status": "ready", "checks": {"redis": "ok"}}

    redis.stop()
    r = service.req("GET", "/readyz")
    assert r.status == 503
    # Names and states only: where Redis lives and why it failed go to the log.
    assert r.json() == {"status": "not_ready", "error": "not_ready",
                        "message": "redis: failing (the service's log says why)",
                        "checks": {"redis": "failing"}}
    assert str(redis.port).encode() not in r.body and b"127.0.0.1" not in r.body
    cs.wait_until(lambda: [l for l in service.logs() if l.get("msg") == "readyz: check failing"
                           and l.get("check") == "redis"
                           and str(redis.port) in l.get("detail", "")], 5,
                  what="the reason in the log")
    # Liveness does not depend on Redis.
    assert service.req("GET", "/healthz").status == 200

    redis.start()
    cs.wait_until(lambda: service.req("GET", "/readyz").status == 200, 10,
                  what="/readyz to recover after Redis came back")
    assert service.proc.poll() is None


def test_metrics_pass_promtool_and_count_requests(service):
    before = cs.metric_value(service.req("GET", "/metrics").body.decode(),
                             "campaign_sync_http_requests_total", route="/healthz", code="200")
    for _ in range(3):
        service.req("GET", "/healthz")
    service.req("GET", "/no/such/path")
    r = service.req("GET", "/metrics")
    assert r.status == 200
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    text = r.body.decode()
    assert cs.promtool_check(text) == ""
    assert cs.metric_value(text, "campaign_sync_http_requests_total",
                           route="/healthz", code="200") == before + 3
    assert cs.metric_value(text, "campaign_sync_http_requests_total",
                           route="other", code="404") == 1
    assert cs.metric_value(text, "campaign_sync_http_request_seconds_count",
                           route="/healthz") == before + 3
    assert cs.metric_value(text, "campaign_sync_http_requests_total",
                           route="/metrics", code="200") >= 1
    build = [l for l in text.splitlines() if l.startswith("campaign_sync_build_info{")]
    assert len(build) == 1 and build[0].endswith(" 1")
    assert cs.metric_value(text, "campaign_sync_queue_depth") == 0


def test_unknown_path_and_wrong_method_are_json(service):
    r = service.req("GET", "/nope")
    assert r.status == 404
    assert r.header("Content-Type") == "application/json"
    assert r.json() == {"error": "not_found", "message": "no endpoint at /nope"}

    r = service.req("DELETE", "/metrics")
    assert r.status == 405
    assert r.header("Allow") == "GET"
    assert r.json()["error"] == "method_not_allowed"
    assert "DELETE" in r.json()["message"]


def test_sigterm_exits_zero_promptly(service):
    t0 = time.monotonic()
    rc = service.stop(signal.SIGTERM)
    assert rc == 0
    assert time.monotonic() - t0 < 10
    msgs = [l.get("msg") for l in service.logs()]
    assert "shutting down" in msgs and "stopped" in msgs


def test_sigint_exits_zero(service):
    assert service.stop(signal.SIGINT) == 0


def _env(workdir, redis, **over):
    env = cs.base_env(redis.url, workdir)
    for k, v in over.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def test_startup_errors_name_each_variable(workdir, redis):
    env = _env(workdir, redis, PORT="http", SF_ORG_ID=None, MARKETO_TIMEZONE="Nowhere/City",
               REDIS_URL="localhost:6379")
    rc, _, err = cs.run_command(env, "serve")
    assert rc == 2
    lines = err.splitlines()
    for name in ("PORT: must be an integer", "SF_ORG_ID: required for `campaign-sync serve`",
                 "MARKETO_TIMEZONE: must be an IANA time zone", "REDIS_URL: must be redis://"):
        assert sum(name in l for l in lines) == 1, f"{name!r} not on exactly one line:\n{err}"


def test_crm_credentials_required_for_serve(workdir, redis):
    env = _env(workdir, redis, MARKETO_CLIENT_SECRET=None)
    rc, _, err = cs.run_command(env, "serve")
    assert rc == 2
    assert "MARKETO_CLIENT_SECRET: required for `campaign-sync serve`" in err


def test_secret_file_and_redaction(workdir, redis, services):
    path = os.path.join(workdir, "webhook-secret")
    with open(path, "w") as f:
        f.write("file-held-secret-value-of-32-bytes-or-more\n")
    s = services(redis.url, MARKETO_WEBHOOK_SECRET=None, MARKETO_WEBHOOK_SECRET_FILE=path,
                 SF_CLIENT_SECRET="sf-secret-value-xyz",
                 ADMIN_TOKEN="admin-token-value-xyz-of-32-bytes-or-more",
                 REDIS_URL=f"redis://:redis-pass-xyz@127.0.0.1:{redis.port}/0")
    # The password is wrong for this Redis (it has none): readiness says so, by name only.
    r = s.req("GET", "/readyz")
    assert r.status == 503
    s.req("GET", "/metrics")
    s.stop()
    err = s.stderr()
    assert "effective configuration" in err
    assert '"MARKETO_WEBHOOK_SECRET":"[redacted]"' in err
    for secret in ("file-held-secret-value", "sf-secret-value-xyz", "admin-token-value-xyz",
                   "redis-pass-xyz", cs.WEBHOOK_SECRET):
        assert secret not in err, f"{secret} appeared in the log"


def test_redis_password_and_db_are_used(workdir, services):
    r = cs.Redis(workdir)
    r.start()
    try:
        r.cmd("CONFIG", "SET", "requirepass", "pw-123")
        s = services(f"redis://:pw-123@127.0.0.1:{r.port}/3")
        assert s.req("GET", "/readyz").status == 200
    finally:
        r.stop()


def test_version_and_help():
    import subprocess
    out = subprocess.run([cs.BIN, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("campaign-sync ")
    out = subprocess.run([cs.BIN, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "serve" in out.stdout
    out = subprocess.run([cs.BIN, "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 2 and 'unknown command "frobnicate"' in out.stderr


def test_management_port_serves_metrics_and_readyz_apart(redis, services):
    """Finding 8: /metrics and /readyz shared the public port with the webhooks. With
    MANAGEMENT_PORT they are served there (on MANAGEMENT_BIND_ADDR, loopback by default), and
    the public port answers them 404; /healthz stays on both."""
    mport = cs.free_port()
    svc = services(redis.url, MANAGEMENT_PORT=mport)
    for path in ("/metrics", "/readyz"):
        r = svc.req("GET", path)
        assert r.status == 404 and r.json() == {"error": "not_found",
                                                "message": f"no endpoint at {path}"}
    assert svc.req("GET", "/healthz").body == b'{"status":"ok"}'
    assert cs.request(mport, "GET", "/healthz").body == b'{"status":"ok"}'
    r = cs.request(mport, "GET", "/readyz")
    assert (r.status, r.json()) == (200, {"status": "ready", "checks": {"redis": "ok"}})
    r = cs.request(mport, "GET", "/metrics")
    assert r.status == 200 and "campaign_sync_build_info" in r.body.decode()
    # The webhooks are not on the management port.
    assert cs.request(mport, "POST", "/webhooks/marketo", b"[]").status == 404
    listening = [l for l in svc.logs() if l.get("msg", "").startswith("listening (management")]
    assert listening and listening[0]["addr"] == "127.0.0.1" and listening[0]["port"] == str(mport)
    # The container's health check probes the management port.
    env = cs.base_env(redis.url, "/tmp", PORT=cs.free_port(), MANAGEMENT_PORT=mport)
    rc, _, err = cs.run_command(env, "healthcheck")
    assert rc == 0, err
