#!/usr/bin/python3
"""campaign-sync benchmarks (issue 8): ingest with its ceilings, end to end (paced stream and
burst), cost, and worker scaling. Writes bench/results.json and prints a table (report.py).

Each section runs on its own: a failure is recorded under "errors" and the next one runs.
A time budget (BENCH_BUDGET_S, default 480 s) caps the drain waits so that the whole run stays
under 10 minutes on 2 cores even when the queue does not drain.

    PYTHONPATH=tests /usr/bin/python3 bench/bench.py [--out bench/results.json] [--workdir DIR]
        [--quick]   (bench/run.sh sets PYTHONPATH: the shared harness tests/cs/ is `cs`)

The backfill section (issue 19) runs only when named (`--only backfill`): at 100,000 members a
side it takes about 45 minutes, beyond the 10-minute budget. BACKFILL_MEMBERS sets its size
(default 100,000; 20,000 with --quick), BACKFILL_TIMEOUT_S its wait for the job (3,600 s).
"""
import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import backfill
import cs
import e2e
import ingest
import lib
import report

T_START = time.time()


def log(msg):
    print(f"[{time.time() - T_START:6.1f}s] {msg}", flush=True)


def machine():
    info = {"nproc": os.cpu_count(), "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo") as f:
            models = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        info["cpu_model"] = models[0] if models else None
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for l in f:
                if l.startswith("MemTotal:"):
                    info["mem_total_mib"] = int(l.split()[1]) // 1024
    except OSError:
        pass

    def out(*cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout or p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None
    info["campaign_sync"] = out(lib.BIN, "--version")
    info["git_commit"] = out("git", "-C", lib.ROOT, "rev-parse", "--short", "HEAD")
    info["git_dirty"] = bool(out("git", "-C", lib.ROOT, "status", "--porcelain", "--untracked-files=no"))
    info["redis"] = out("redis-server", "--version")
    info["wrk"] = out("wrk", "--version")
    info["python"] = platform.python_version()
    return info


class Budget:
    def __init__(self, total):
        self.total = total

    def left(self):
        return self.total - (time.time() - T_START)

    def cap(self, want, reserve, overhead=15):
        """A drain timeout of at most `want`, keeping `reserve` seconds for what follows and
        `overhead` for this run's own reading of results and stopping of processes."""
        return max(5.0, min(want, self.left() - reserve - overhead))


def section(results, name, fn):
    log(f"== {name}")
    t = time.time()
    try:
        results[name] = fn()
    except Exception as e:  # noqa: BLE001 - report and go on with the next section
        results.setdefault("errors", []).append({"section": name, "error": f"{type(e).__name__}: {e}",
                                                 "trace": traceback.format_exc()[-3000:]})
        log(f"   {name} FAILED: {type(e).__name__}: {e}")
    finally:
        cs.stop_all()
    log(f"   {name} took {time.time() - t:.0f}s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(lib.ROOT, "bench", "results.json"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--quick", action="store_true", help="short runs, for trying the harness")
    ap.add_argument("--only", default="", help="comma-separated sections")
    a = ap.parse_args()
    workdir = a.workdir or tempfile.mkdtemp(prefix="cs-bench-")
    budget = Budget(float(os.environ.get("BENCH_BUDGET_S", "480")))
    q = a.quick
    only = set(filter(None, a.only.split(",")))

    def want(name):
        return not only or name in only

    def stop(signum, frame):
        cs.stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
               "workdir": workdir, "quick": q}
    results["parameters"] = {
        "ingest": {"tool": "wrk", "threads": 2, "connections": 64, "seconds": 3 if q else 10},
        "paced": {"rate_per_side": 500, "seconds": 5 if q else 30, "people": 10_000,
                  "changes_per_request": 1, "connections_per_side": 8},
        "burst": {"changes_per_side": 2000 if q else 10_000, "marketo_events_per_request": 1000,
                  "notifications_per_outbound_message": 100, "connections_per_side": 4},
        "one_side": {"changes": 2000 if q else 10_000, "as": "burst, from one side at a time"},
        "scaling": {"changes_per_side": 1000 if q else 5000,
                    "layouts": [[1], [2], [4], [2, 2]]},
        "service": {"MARKETO_CALLS_PER_20S": e2e.MARKETO_CALLS_PER_20S,
                    "MARKETO_MAX_CONCURRENT": e2e.MARKETO_MAX_CONCURRENT, "HTTP_THREADS": 32,
                    "other": "defaults"},
        "simulators": {"latency_ms": 0, "marketo_calls_per_20s": e2e.SIM_CALLS_PER_20S,
                       "marketo_max_concurrent": e2e.SIM_MAX_CONCURRENT,
                       "echo": "off (Salesforce outboundUrl null, Marketo webhookUrl empty)"},
        "backfill": {"members_per_side": int(os.environ.get("BACKFILL_MEMBERS",
                                                            "20000" if q else "100000")),
                     "timeout_s": float(os.environ.get("BACKFILL_TIMEOUT_S", "3600")),
                     "paced_rate_per_side": int(os.environ.get("BACKFILL_PACED_RATE", "500")),
                     "paced_window_s": int(os.environ.get("BACKFILL_PACED_S", "30"))},
    }
    P = results["parameters"]

    if want("ingest"):
        section(results, "ingest", lambda: ingest.run(workdir, seconds=P["ingest"]["seconds"],
                                                      log=log))
    if want("paced"):
        pp = P["paced"]
        section(results, "paced", lambda: e2e.run_load(
            workdir, "paced", [2], pp["people"],
            e2e.paced_build(pp["rate_per_side"], pp["seconds"], pp["people"], "Pc1"),
            budget.cap(30, reserve=300 if not q else 60), log))
    if want("burst"):
        n = P["burst"]["changes_per_side"]
        section(results, "burst", lambda: e2e.run_load(
            workdir, "burst", [2], max(n, 1000), e2e.burst_build(n, "Bu1"),
            budget.cap(45, reserve=250 if not q else 60), log))
    if want("one_side"):
        # The same burst from one side at a time: each direction's own drain time, without the
        # other direction's work in the same worker batches.
        n = P["burst"]["changes_per_side"]
        runs = {}
        results["burst_one_side"] = runs
        for side, name in (("mkto", "toward_salesforce"), ("sf", "toward_marketo")):
            section(runs, name, lambda side=side, name=name: e2e.run_load(
                workdir, "one-side-" + name, [2], max(n, 1000),
                e2e.burst_build(n, "O" + side[0] + "1", sides=(side,)),
                budget.cap(30, reserve=(190 if side == "mkto" else 160) if not q else 30), log))
        if "errors" in runs:
            results.setdefault("errors", []).extend(runs.pop("errors"))
    if want("scaling"):
        n = P["scaling"]["changes_per_side"]
        runs = {}
        results["scaling"] = runs
        for layout in P["scaling"]["layouts"]:
            name = "workers_" + "+".join(str(x) for x in layout)
            left = len(P["scaling"]["layouts"]) - len(runs) - 1
            if budget.left() < 30:
                runs[name] = {"skipped": "time budget spent"}
                continue

            def one(layout=layout, name=name, left=left):
                return e2e.run_load(workdir, "scale-" + name, layout, max(n, 1000),
                                    e2e.burst_build(n, "S" + str(len(runs)) + "x"),
                                    budget.cap(30, reserve=left * 40 + 10), log)
            section(runs, name, one)
        if "errors" in runs:
            results.setdefault("errors", []).extend(runs.pop("errors"))

    if "backfill" in only:  # never part of a plain `make bench` (see the module's text)
        bp = P["backfill"]
        section(results, "backfill", lambda: backfill.run(
            workdir, bp["members_per_side"], bp["paced_rate_per_side"], bp["paced_window_s"],
            bp["timeout_s"], log))

    results["elapsed_s"] = round(time.time() - T_START, 1)
    if only == {"backfill"} and os.path.exists(a.out):
        # The backfill alone: its figures join the last full run's file rather than replace it.
        with open(a.out) as f:
            merged = json.load(f)
        merged["backfill"] = results.get("backfill")
        merged["backfill_run"] = {k: results.get(k) for k in ("started", "machine", "elapsed_s",
                                                              "quick", "errors")}
        merged.setdefault("parameters", {})["backfill"] = P["backfill"]
        merged["errors"] = [e for e in merged.get("errors") or [] if e.get("section") != "backfill"] \
            + (results.get("errors") or [])
        results = merged
    results["targets"] = report.targets(results)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1, default=str)
    report.print_table(results)
    log(f"results written to {a.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cs.stop_all()
