#!/usr/bin/python3
"""A long steady run (not part of `make bench`; `make soak`, bench/soak.sh): does anything grow
that should not? Leaks that LeakSanitizer cannot see (memory still reachable: caches, tables,
per-person state) show only as memory that keeps growing under a load that does not.

One world as in the end-to-end benchmarks (bench/e2e.py: both simulators at latency 0, a
Redis with AOF and fsync always, one `ingest`, two `worker` processes with WORKERS=2), and a
paced stream from each side for --minutes: person j % people gets the next status of the
Webinar cycle, so every person changes again and again (toward Marketo a cycle holds one
backward move, which Marketo refuses and the service records, as it does for a user's).
Every --sample seconds it records the RSS of each service process, Redis's used_memory and
key count, the queue depth and the counters. At the end: the queue drained, no answer refused,
no dead letter; per process the RSS after warm-up, at the end, and its growth over the second
half (least squares, MiB per hour); Redis's bytes per key added (the de-duplication keys,
which live 26 hours, are nearly all of them: README's sizing)."""
import argparse
import json
import os
import sys
import tempfile
import threading
import time

import cs  # the shared harness, tests/cs/ (PYTHONPATH: bench/soak.sh)
import e2e
import gen
import lib

SLICE_S = 10  # bodies are built a slice at a time: a 30-minute stream does not sit in memory


def slope_per_hour(points):
    """Least-squares slope of [(t seconds, value)], per hour; None under 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600


class Sampler(threading.Thread):
    def __init__(self, world, every):
        super().__init__(daemon=True)
        self.w, self.every = world, every
        self.rows, self.stop_ev = [], threading.Event()
        self.t0 = time.time()

    def sample(self):
        w = self.w
        row = {"t": round(time.time() - self.t0, 1)}
        for name, pid in w.pids().items():
            row[f"rss_{name}"] = round(lib.proc_status(pid, "VmRSS") or 0, 2)
        info = w.redis.cmd("INFO", "memory")
        info = info.decode() if isinstance(info, bytes) else info
        for line in info.splitlines():
            if line.startswith("used_memory:"):
                row["redis_used_mib"] = round(int(line.split(":")[1]) / 1048576, 2)
        row["redis_keys"] = int(w.redis.cmd("DBSIZE"))
        # The audit stream grows to its cap (100,000 entries) and then stays: counted apart,
        # so that what is left per key added is the de-duplication keys' cost.
        row["audit_len"] = int(w.redis.cmd("XLEN", "cs:audit"))
        row["audit_mib"] = round(int(w.redis.cmd("MEMORY", "USAGE", "cs:audit", "SAMPLES", "0")
                                     or 0) / 1048576, 2)
        c = e2e.counters(w)
        row.update({k: int(v) for k, v in c.items()})
        return row

    def run(self):
        while not self.stop_ev.is_set():
            try:
                self.rows.append(self.sample())
            except Exception as e:  # noqa: BLE001 - a missed sample is reported, not fatal
                self.rows.append({"t": round(time.time() - self.t0, 1), "error": str(e)})
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.join(30)
        return self.rows


def slice_streams(w, ids, rate, j0, j1, t0):
    """Changes j0..j1-1 of each side, change j sent at t0 + (j - j0) / rate."""
    n = len(w.people)
    mk_items, sf_items = [], []
    for j in range(j0, j1):
        k = j % n
        p = w.people[k]
        status = e2e.WEBINAR[(j // n + 1) % len(e2e.WEBINAR)]
        off = (j - j0) / rate
        at = t0 + off
        ev = gen.mkto_event(p, w.program_a, status, at)
        mk_items.append((off, gen.mkto_request(gen.mkto_body([ev])), 1, []))
        rec = gen.sf_record(p, w.campaign_b, p.member, status, at)
        sf_items.append((off, gen.sf_request(gen.om_body([(ids.next(), rec)])), 1, []))
    return {"marketo_webhooks": ("mkto", mk_items, 4), "salesforce_outbound": ("sf", sf_items, 4)}


def drained_within(w, timeout):
    """Nothing queued, nothing read and unacknowledged, nothing waiting for a retry."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = w.redis
        if (cs.queue_len(r) == 0 and cs.queue_pending(r) == 0
                and int(r.cmd("ZCARD", "cs:retry")) == 0):
            return True
        time.sleep(0.5)
    return False


def summarize(rows, procs, warmup_s, duration_s):
    ok = [r for r in rows if "error" not in r]
    out = {}
    for name in procs:
        key = f"rss_{name}"
        pts = [(r["t"], r[key]) for r in ok if key in r]
        after = [v for t, v in pts if t >= warmup_s]
        half = [(t, v) for t, v in pts if t >= duration_s / 2 and t <= duration_s]
        growth = slope_per_hour(half)
        out[name] = {"rss_after_warmup_mib": after[0] if after else None,
                     "rss_end_mib": pts[-1][1] if pts else None,
                     "rss_max_mib": max(v for _, v in pts) if pts else None,
                     "growth_second_half_mib_per_h": (round(growth, 2)
                                                      if growth is not None else None)}
    red = [r for r in ok if warmup_s <= r["t"] <= duration_s and r.get("redis_used_mib") is not None]
    if len(red) >= 2:
        a, b = red[0], red[-1]
        dk = b["redis_keys"] - a["redis_keys"]
        dm = (b["redis_used_mib"] - a["redis_used_mib"]) * 1048576
        da = (b["audit_mib"] - a["audit_mib"]) * 1048576
        out["redis"] = {"used_mib_after_warmup": a["redis_used_mib"],
                        "used_mib_end_of_load": b["redis_used_mib"],
                        "keys_after_warmup": a["redis_keys"], "keys_end_of_load": b["redis_keys"],
                        "audit_entries": [a["audit_len"], b["audit_len"]],
                        "audit_mib": [a["audit_mib"], b["audit_mib"]],
                        "bytes_per_key_added_besides_audit": round((dm - da) / dk, 1)
                        if dk > 0 else None}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--rate", type=float, default=100, help="changes per second from each side")
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--sample", type=float, default=10, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=120, help="seconds before growth counts")
    ap.add_argument("--out", default="build/soak.json")
    a = ap.parse_args()
    duration = a.minutes * 60
    workdir = tempfile.mkdtemp(prefix="cs-soak-", dir=os.environ.get("TMPDIR"))
    w = None
    res = {"config": vars(a), "binary": lib.BIN}
    log = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True)  # noqa: E731
    try:
        w = e2e.seed(e2e.new_world(workdir, "soak"), a.people)
        e2e.start_service(w, [2, 2])
        e2e.link_people(w)
        log(f"world ready: {a.people} people, ingest + 2 workers (WORKERS=2); "
            f"{a.rate:g} changes/s from each side for {a.minutes:g} min")
        ids = gen.NotificationIds("Sk" + "abcdefghij"[int(time.time()) % 10])
        sampler = Sampler(w, a.sample)
        sampler.start()
        per_slice = int(a.rate * SLICE_S)
        sent = {"requests": 0, "errors": 0, "error_sample": None}
        t_start = time.time()
        j = 0
        while time.time() - t_start < duration:
            t0 = t_start + (j // per_slice) * SLICE_S
            streams = slice_streams(w, ids, a.rate, j, j + per_slice, t0)
            summary, _ = gen.send(w.ingest.port, streams, t0=t0)
            for s in summary.values():
                sent["requests"] += s["requests"]
                sent["errors"] += s["errors"]
                sent["error_sample"] = sent["error_sample"] or s["error_sample"]
            j += per_slice
            if (j // per_slice) % 30 == 0:
                last = sampler.rows[-1] if sampler.rows else {}
                log(f"  {time.time() - t_start:.0f}s: sent {2 * j}, depth {last.get('depth')}, "
                    f"RSS ingest {last.get('rss_ingest')} worker1 {last.get('rss_worker1')} "
                    f"MiB, Redis {last.get('redis_used_mib')} MiB")
        t_load_end = time.time() - t_start
        log(f"load ended after {t_load_end:.0f}s; waiting for the queue to drain")
        drained = drained_within(w, 300)
        rows = sampler.stop()
        c = e2e.counters(w)
        if not drained:  # what waits, for whoever reads the result
            r = w.redis
            res["waiting"] = {k: r.cmd("XLEN", k) for k in cs.STREAMS}
            res["waiting"]["pending"] = cs.queue_pending(r)
            res["waiting"]["retry"] = r.cmd("ZCARD", "cs:retry")
            res["waiting"]["first"] = {k: r.cmd("XRANGE", k, "-", "+", "COUNT", "2")
                                       for k in cs.STREAMS}
            res["waiting"]["worker_logs"] = [x.stderr()[-3000:] for x in w.workers]
        res["sent"] = dict(sent, changes_per_side=j, load_seconds=round(t_load_end, 1))
        res["drained"] = drained
        res["counters_at_end"] = c
        dl = w.ingest.req("GET", "/v1/deadletters?limit=5", headers=cs.admin_headers(), timeout=30)
        res["dead_letters"] = len(dl.json().get("items", [])) if dl.status == 200 else None
        res["summary"] = summarize(rows, w.pids(), a.warmup, t_load_end)
        res["samples"] = rows
    finally:
        res["stop_errors"] = e2e.stop(w) if w else []
    problems = []
    if res.get("sent", {}).get("errors"):
        problems.append(f"{res['sent']['errors']} requests not acknowledged: "
                        f"{res['sent']['error_sample']}")
    if not res.get("drained"):
        problems.append("the queue did not drain within 300 s of the load's end")
    if res.get("dead_letters"):
        problems.append(f"{res['dead_letters']} dead letters")
    if res["stop_errors"]:
        problems.append(f"stop: {res['stop_errors']}")
    res["problems"] = problems
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k != "samples"}, indent=1))
    log(f"{'PASS' if not problems else 'FAIL'} ({a.out})")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
