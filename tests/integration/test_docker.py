"""docker/Dockerfile and docker/compose.yaml say what the issue asks (no Docker engine runs
on our machines: scripts/docker_build_check.py replays the build itself in CI)."""
import os
import re

import yaml

import cs

DOCKERFILE = os.path.join(cs.ROOT, "docker", "Dockerfile")
COMPOSE = os.path.join(cs.ROOT, "docker", "compose.yaml")

# SPEC section 4, every variable.
SPEC_VARS = [
    "PORT", "BIND_ADDR", "REDIS_URL", "WORKERS", "SF_LOGIN_URL", "SF_CLIENT_ID",
    "SF_CLIENT_SECRET", "SF_API_VERSION", "SF_ORG_ID", "SF_INTEGRATION_USER_ID",
    "MARKETO_BASE_URL", "MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET", "MARKETO_WEBHOOK_SECRET",
    "MARKETO_TIMEZONE", "MARKETO_CALLS_PER_20S", "MARKETO_MAX_CONCURRENT", "ADMIN_TOKEN",
    "SYNC_ENABLED", "MAX_BODY_BYTES", "MAX_ATTEMPTS", "RETRY_BASE_MS", "RETRY_MAX_MS",
    "CLAIM_IDLE_MS", "READY_STALL_S", "PROGRAM_POLL_INTERVAL_S", "SF_DELETED_POLL_INTERVAL_S",
    "RECONCILE_INTERVAL_S", "TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CLIENT_CA_FILE",
    "SF_ALLOWED_CIDRS", "MARKETO_ALLOWED_CIDRS", "TRUSTED_PROXIES", "SPOOL_DIR", "LOG_LEVEL",
    "LOG_FORMAT"]
SECRETS = ["SF_CLIENT_SECRET", "MARKETO_CLIENT_SECRET", "MARKETO_WEBHOOK_SECRET", "ADMIN_TOKEN",
           "SF_WEBHOOK_TOKEN"]


def stages():
    text = open(DOCKERFILE).read().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        if instr.upper() == "FROM":
            out.append({"from": args, "ins": []})
        else:
            out[-1]["ins"].append((instr.upper(), args.strip()))
    return out


def last(stage, instr):
    vals = [a for i, a in stage["ins"] if i == instr]
    return vals[-1] if vals else None


def test_multi_stage_bookworm_build_and_slim_runtime():
    s = stages()
    assert len(s) == 2
    assert re.match(r"debian:bookworm\s+AS\s+build", s[0]["from"], re.I)
    assert s[1]["from"] == "debian:bookworm-slim"
    build_run = " ".join(a for i, a in s[0]["ins"] if i == "RUN")
    for pkg in ("libmicrohttpd-dev", "libcurl4-openssl-dev", "libcjson-dev", "libhiredis-dev",
                "libxml2-dev", "libssl-dev"):
        assert pkg in build_run
    runtime_run = " ".join(a for i, a in s[1]["ins"] if i == "RUN")
    assert "-dev" not in runtime_run, "the runtime stage installs only runtime libraries"
    assert any(i == "COPY" and a.startswith("--from=build") for i, a in s[1]["ins"])


def test_runtime_user_healthcheck_entrypoint_signal_labels():
    rt = stages()[1]
    user = last(rt, "USER")
    assert user and user not in ("root", "0"), "runs as a non-root user"
    hc = last(rt, "HEALTHCHECK")
    assert hc and '"campaign-sync", "healthcheck"' in hc
    assert last(rt, "ENTRYPOINT") == '["campaign-sync"]'
    assert last(rt, "CMD") == '["serve"]'
    assert last(rt, "STOPSIGNAL") == "SIGTERM"
    labels = " ".join(a for i, a in rt["ins"] if i == "LABEL")
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.version",
                "org.opencontainers.image.description"):
        assert key in labels
    assert "8080" in (last(rt, "EXPOSE") or "")


def test_healthcheck_command_probes_healthz(redis, services):
    svc = services(redis.url)
    env = cs.base_env(redis.url, "/tmp", PORT=svc.port)
    rc, _, err = cs.run_command(env, "healthcheck")
    assert rc == 0, err
    env["PORT"] = str(cs.free_port())
    rc, _, err = cs.run_command(env, "healthcheck")
    assert rc == 1 and "healthz" in err


def test_compose_redis_is_durable():
    c = yaml.safe_load(open(COMPOSE))
    redis = c["services"]["redis"]
    cmd = " ".join(redis["command"])
    assert "--appendonly yes" in cmd and "--appendfsync always" in cmd
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "redis-data" in c["volumes"]


def test_compose_service_has_every_variable_and_secrets_as_files():
    c = yaml.safe_load(open(COMPOSE))
    svc = c["services"]["campaign-sync"]
    env = svc["environment"]
    for var in SPEC_VARS:
        if var in SECRETS:
            assert f"{var}_FILE" in env and var not in env, f"{var} is given as a file"
            assert env[f"{var}_FILE"].startswith("/run/secrets/")
        else:
            assert var in env, f"{var} is missing from compose.yaml"
    assert sorted(svc["secrets"]) == sorted(s.lower() for s in SECRETS)
    assert set(c["secrets"]) == set(svc["secrets"])
    spool = env["SPOOL_DIR"]
    assert any(v.endswith(":" + spool) for v in svc["volumes"]), "SPOOL_DIR is a volume"
    assert "spool" in c["volumes"]
    assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
    assert env["REDIS_URL"].startswith("redis://redis:")


def test_management_port_apart_and_probed_by_the_health_check():
    """Issue 17 finding 8: /readyz and /metrics on MANAGEMENT_PORT, not on the published port;
    the health checks (image and compose) probe it."""
    rt = stages()[1]
    envs = " ".join(a for i, a in rt["ins"] if i == "ENV")
    assert "MANAGEMENT_PORT=9090" in envs and "MANAGEMENT_BIND_ADDR=0.0.0.0" in envs
    assert "9090" in last(rt, "EXPOSE")
    c = yaml.safe_load(open(COMPOSE))
    svc = c["services"]["campaign-sync"]
    assert svc["environment"]["MANAGEMENT_PORT"] == "9090"
    assert svc["ports"] == ["8080:8080"], "the management port is not published"
    assert svc["healthcheck"]["test"] == ["CMD", "campaign-sync", "healthcheck"]
    # The Salesforce webhook is authenticated (a URL token from a secret file) and the compose
    # file sets every new setting.
    for var in ("SF_WEBHOOK_TOKEN_FILE", "TLS_CLIENT_CERT_PINS", "SF_MAX_BODY_BYTES",
                "HTTP_REQUEST_TIMEOUT_S", "SPOOL_MAX_BYTES", "MANAGEMENT_BIND_ADDR"):
        assert var in svc["environment"], var
    assert "SF_WEBHOOK_AUTH" not in svc["environment"]


def test_image_spool_dir_is_private():
    run = " ".join(a for i, a in stages()[1]["ins"] if i == "RUN")
    assert "install -d -o campaign-sync -g campaign-sync -m 0700 /var/lib/campaign-sync/spool" in run


def test_healthcheck_probes_the_management_port(redis, services):
    mport = cs.free_port()
    svc = services(redis.url, MANAGEMENT_PORT=mport, MANAGEMENT_BIND_ADDR="0.0.0.0")
    env = cs.base_env(redis.url, "/tmp", PORT=svc.port, MANAGEMENT_PORT=mport,
                      MANAGEMENT_BIND_ADDR="0.0.0.0")
    rc, _, err = cs.run_command(env, "healthcheck")
    assert rc == 0, err
    env["MANAGEMENT_PORT"] = str(cs.free_port())
    rc, _, err = cs.run_command(env, "healthcheck")
    assert rc == 1 and f"http://127.0.0.1:{env['MANAGEMENT_PORT']}/healthz" in err


def test_build_stage_copies_what_the_makefile_embeds():
    """The Makefile turns console/ and service/lua/ (the Redis scripts) into C at build time,
    each with its embed.sh: the build stage copies both, the scripts executable."""
    srcs = set()
    for instr, args in stages()[0]["ins"]:
        if instr == "COPY" and not args.startswith("--from"):
            srcs.update(s.rstrip("/") for s in args.split()[:-1])
    for need in ("console", "service/lua"):
        assert any(need == s or need.startswith(s + "/") for s in srcs), need
    for script in ("console/embed.sh", "service/lua/embed.sh"):
        assert os.access(os.path.join(cs.ROOT, script), os.X_OK), script
