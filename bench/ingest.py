"""Ingest benchmarks: `campaign-sync ingest` alone on a real redis-server (AOF, fsync always),
driven by wrk (bench/wrk/*.lua), and in the same run the ceilings of the same machine: the same
server's GET /healthz under the same wrk load, and redis-benchmark XADD (pipelined and not) on
the same Redis with an event-sized payload."""
import json
import os
import subprocess
import time

import cs  # the shared harness, tests/cs/ (PYTHONPATH: bench/run.sh)
import lib

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_DIR = os.path.join(HERE, "wrk")

OTHER_ORG_ID = "00D000000000009ZZZ"

VARIANTS = [  # name, script, changes per request, extra args, stored
    ("sf_outbound_1", "sf_outbound.lua", 1, [], True),
    ("sf_outbound_100", "sf_outbound.lua", 100, [], True),
    ("mkto_webhook_1", "mkto_webhook.lua", 1, [cs.WEBHOOK_SECRET], True),
    ("mkto_webhook_100", "mkto_webhook.lua", 100, [cs.WEBHOOK_SECRET], True),
    # Not a target: the same single messages from another org, parsed and refused (403) before
    # the store. The distance to sf_outbound_1 is what the durable Redis write costs.
    ("sf_outbound_1_refused", "sf_outbound.lua", 1, [OTHER_ORG_ID], False),
]


def run_wrk(url, script, args, threads, conns, seconds):
    """Runs wrk; returns (the BENCH summary dict, wrk's own CPU seconds)."""
    env = dict(os.environ, BENCH_WRK_DIR=WRK_DIR)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s",
           "-s", os.path.join(WRK_DIR, script), url, "--", *args]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cs.remember(p)
    # wait4 for wrk's own CPU time (its output is a few lines: the pipes cannot fill up).
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    out, err = p.stdout.read(), p.stderr.read()
    line = next((l for l in out.decode().splitlines() if l.startswith("BENCH ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({p.returncode}): {err.decode()[-500:]} {out.decode()[-500:]}")
    return json.loads(line[6:]), round(ru.ru_utime + ru.ru_stime, 3)


def summarize(b, per_request):
    secs = b["duration_us"] / 1e6
    ok_changes = b["ok"] * per_request
    errors = (b["non2xx"] + b["badbody"] + b["connect_errors"] + b["read_errors"]
              + b["write_errors"] + b["timeouts"])
    return {"requests": b["requests"], "seconds": round(secs, 3),
            "requests_per_s": round(b["requests"] / secs, 1),
            "changes_per_s": round(ok_changes / secs, 1),
            "p50_ms": round(b["p50_us"] / 1000, 3), "p90_ms": round(b["p90_us"] / 1000, 3),
            "p99_ms": round(b["p99_us"] / 1000, 3), "max_ms": round(b["max_us"] / 1000, 3),
            "ok": b["ok"], "errors": errors, "non2xx": b["non2xx"], "bad_body": b["badbody"],
            "socket_errors": {k: b[k] for k in ("connect_errors", "read_errors", "write_errors",
                                                "timeouts")},
            "error_sample": b["sample"] or None}


def redis_benchmark(port, pipeline, n, payload, clients):
    cmd = ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(n), "--csv"]
    if pipeline > 1:
        cmd += ["-P", str(pipeline)]
    cmd += ["XADD", "bench:xadd", "*", "event", payload]
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    wall = time.time() - t
    rows = [l for l in p.stdout.splitlines() if l.startswith('"XADD')]
    if p.returncode != 0 or not rows:
        raise RuntimeError(f"redis-benchmark failed: {p.stderr[-300:]} {p.stdout[-300:]}")
    # The test name (first column) holds the payload, commas and quotes included.
    cols = [c.strip('"') for c in rows[-1].rsplit(",", 7)]
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    # "p99_latency_ms","max_latency_ms"
    return {"ops_per_s": float(cols[1]), "p50_ms": float(cols[4]), "p99_ms": float(cols[6]),
            "requests": n, "clients": clients, "pipeline": pipeline, "wall_s": round(wall, 2),
            "payload_bytes": len(payload)}


HTTP_THREADS = 8  # the service's default, set explicitly so that results.json says what ran


def run(workdir, seconds=10, conns=64, threads=2, log=print):
    res = {"config": {"wrk_threads": threads, "connections": conns, "seconds": seconds,
                      "redis": "appendonly yes, appendfsync always", "http_threads": HTTP_THREADS}}
    redis = lib.redis(os.path.join(workdir, "ingest")).start()
    svc = lib.ingest_service(os.path.join(workdir, "ingest"), redis.url, HTTP_THREADS=HTTP_THREADS)
    res["runs"] = {}
    try:
        url = f"http://127.0.0.1:{svc.port}"
        for i, (name, script, per, extra, stored) in enumerate(VARIANTS):
            tag = "B" + "abcdefghijklmnopqrstuvwxyz"[i]
            args = [tag, str(per)] + extra + ([str(i + 1)] if script == "mkto_webhook.lua" else [])
            res["runs"][name] = _one(svc, redis, url, script, args, per if stored else 0, threads,
                                     conns, seconds, name, log)
        res["runs"]["healthz"] = _one(svc, redis, url + "/healthz", "healthz.lua", ["Hz", "1"], 1,
                                      threads, conns, seconds, "healthz", log)
        # The queue ceiling: XADD of an event-sized entry on the same Redis, 64 clients.
        sample = (redis.cmd("XRANGE", cs.STREAM_SF, "-", "+", "COUNT", "1")
                  or redis.cmd("XRANGE", cs.STREAM_MKTO, "-", "+", "COUNT", "1"))
        payload = sample[0][1][1] if sample else "x" * 430
        res["queue_length_after"] = cs.queue_len(redis)
        for key, pipe, n in (("redis_xadd", 1, 250_000), ("redis_xadd_p16", 16, 1_000_000)):
            try:
                cpu = lib.CpuMeter({"redis": redis.pid}).start()
                res["runs"][key] = redis_benchmark(redis.port, pipe, n, payload, conns)
                res["runs"][key]["cpu"] = cpu.stop()
                log(f"  {key}: {res['runs'][key]['ops_per_s']:.0f} XADD/s")
            except Exception as e:  # noqa: BLE001 - one failure does not stop the rest
                res["runs"][key] = {"error": str(e)}
            redis.cmd("DEL", "bench:xadd")
        res["redis_rss_mib"] = lib.proc_status(redis.pid, "VmRSS")
    finally:
        res["stop_rc"] = lib.stop(svc)
        redis.stop()
    r = res["runs"]
    hz = r.get("healthz", {}).get("requests_per_s")
    x1 = r.get("redis_xadd", {}).get("ops_per_s")
    x16 = r.get("redis_xadd_p16", {}).get("ops_per_s")
    ratios = {}
    for name, *_ in VARIANTS:
        v = r.get(name, {})
        if "requests_per_s" not in v:
            continue
        ratios[name] = {
            "requests_vs_healthz": _ratio(v["requests_per_s"], hz),
            "changes_vs_xadd": _ratio(v["changes_per_s"], x1),
            "changes_vs_xadd_pipelined": _ratio(v["changes_per_s"], x16)}
    res["ratios"] = ratios
    return res


def _ratio(a, b):
    return round(a / b, 4) if a is not None and b else None


def _settled_metrics(svc, quiet_s=0.2, cap_s=5.0):
    """The service's metrics once its event counters stop moving: the requests wrk left in
    flight when the previous run ended are still being stored, and belong to that run."""
    def counts(m):
        return [v for n, _, v in m if n == "campaign_sync_events_received_total"]
    end = time.time() + cap_s
    m = lib.metrics(svc)
    while time.time() < end:
        time.sleep(quiet_s)
        m2 = lib.metrics(svc)
        if counts(m2) == counts(m):
            return m2
        m = m2
    return m


def _one(svc, redis, url, script, args, per, threads, conns, seconds, name, log):
    lib.reset_peak_rss(svc.pid)
    before = _settled_metrics(svc)
    cpu = lib.CpuMeter({"ingest": svc.pid, "redis": redis.pid}).start()
    t = time.time()
    try:
        b, wrk_cpu = run_wrk(url, script, args, threads, conns, seconds)
    except Exception as e:  # noqa: BLE001
        log(f"  {name}: FAILED {e}")
        return {"error": str(e)}
    c = cpu.stop()
    out = summarize(b, per)
    c["procs"]["wrk"] = {"cpu_s": wrk_cpu, "cores": round(wrk_cpu / c["wall_s"], 3)}
    out["cpu"] = c
    out["peak_rss_mib"] = lib.proc_status(svc.pid, "VmHWM")
    after = _settled_metrics(svc)
    recv = {}
    for src in ("salesforce", "marketo"):
        for oc in ("accepted", "duplicate", "spooled", "rejected"):
            d = (cs.metric_sum(after, "campaign_sync_events_received_total", source=src, outcome=oc)
                 - cs.metric_sum(before, "campaign_sync_events_received_total", source=src,
                                  outcome=oc))
            if d:
                recv[f"{src}_{oc}"] = int(d)
    out["events_received"] = recv
    if name != "healthz":
        ingest_cpu = c["procs"].get("ingest", {}).get("cpu_s")
        changes = out["ok"] * per
        out["ingest_cpu_s_per_1000_changes"] = round(ingest_cpu / changes * 1000, 4) \
            if ingest_cpu is not None and changes else None
        redis_cpu = c["procs"].get("redis", {}).get("cpu_s")
        out["redis_cpu_s_per_1000_changes"] = round(redis_cpu / changes * 1000, 4) \
            if redis_cpu is not None and changes else None
    log(f"  {name}: {out['requests_per_s']:.0f} req/s, {out['changes_per_s']:.0f} changes/s, "
        f"p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, errors {out['errors']} "
        f"({time.time() - t:.0f}s)")
    return out
