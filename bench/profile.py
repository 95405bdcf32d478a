#!/usr/bin/python3
"""Where the ingest path spends its time (not part of `make bench`; run bench/profile.sh).

1. perf record (cpu-clock, DWARF call graphs) of `campaign-sync ingest` while wrk posts
   1-notification Outbound Messages (c64, 8 s); prints the top functions, inclusive and self.
2. A sweep of HTTP_THREADS (8, 32) x appendfsync (always, everysec) with the same load: tells
   whether ingest waits on Redis round trips or burns CPU."""
import os
import subprocess
import tempfile

import cs  # the shared harness, tests/cs/ (PYTHONPATH: bench/profile.sh)
import ingest
import lib


def perf_profile(workdir, seconds=8):
    redis = lib.redis(workdir).start()
    svc = lib.ingest_service(workdir, redis.url)
    data = os.path.join(workdir, "perf.data")
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph",
                             "dwarf,16384", "-o", data, "-p", str(svc.pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cs.remember(perf)
    try:
        b, _ = ingest.run_wrk(f"http://127.0.0.1:{svc.port}", "sf_outbound.lua", ["Pf", "1"], 2, 64,
                              seconds)
        print(f"load while profiling: {b['requests'] / (b['duration_us'] / 1e6):.0f} req/s "
              f"(perf slows the process down)")
    finally:
        perf.send_signal(2)
        perf.wait(60)
        lib.stop(svc)
        redis.stop()
    for mode in ("--children", "--no-children"):
        out = subprocess.run(["perf", "report", "-i", data, mode, "--sort", "sym", "--stdio",
                              "-g", "none", "--percent-limit", "1.5"],
                             capture_output=True, text=True).stdout
        rows = [l for l in out.splitlines() if "%" in l and not l.startswith("#")
                and "[k]" not in l and "0x0000" not in l and " 0x" not in l]
        print(f"\nperf report {mode} (user-space symbols, >= 1.5% of samples):")
        print("\n".join(rows[:30]))


def sweep(workdir, seconds=5):
    print("\nHTTP_THREADS x appendfsync, wrk -t2 -c64, 1-notification Outbound Messages:")
    tags = iter(["Sa", "Sb", "Sc", "Sd"])
    for fsync in ("always", "everysec"):
        for threads in (8, 32):
            redis = lib.redis(workdir, fsync=fsync).start()
            svc = lib.ingest_service(workdir, redis.url, HTTP_THREADS=threads)
            cpu = lib.CpuMeter({"ingest": svc.pid, "redis": redis.pid}).start()
            try:
                b, wrk_cpu = ingest.run_wrk(f"http://127.0.0.1:{svc.port}", "sf_outbound.lua",
                                            [next(tags), "1"], 2, 64, seconds)
                c = cpu.stop()
                s = ingest.summarize(b, 1)
                print(f"  appendfsync {fsync:8s} HTTP_THREADS {threads:2d}: "
                      f"{s['requests_per_s']:8.0f} req/s p99 {s['p99_ms']:6.2f} ms errors {s['errors']}"
                      f"  cores: ingest {c['procs']['ingest']['cores']:.2f} redis "
                      f"{c['procs']['redis']['cores']:.2f} wrk {wrk_cpu / c['wall_s']:.2f}")
            finally:
                lib.stop(svc)
                redis.stop()


def main():
    workdir = tempfile.mkdtemp(prefix="cs-profile-")
    try:
        perf_profile(workdir)
        sweep(workdir)
    finally:
        cs.stop_all()


if __name__ == "__main__":
    main()
