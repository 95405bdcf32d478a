#!/usr/bin/python3
"""The table of bench/results.json and the issue's targets (met / not met).

    /usr/bin/python3 bench/report.py [bench/results.json]"""
import json
import os
import sys

MARKETO_WINDOW_S = 20.0


def _g(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _fmt(v, nd=1):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def marketo_floor_s(results):
    calls = _g(results, "parameters", "service", "MARKETO_CALLS_PER_20S") or 50
    return MARKETO_WINDOW_S / calls


def targets(r):
    """The issue's targets, each with the figure it is judged on."""
    out = []

    def add(what, figure, target, met, note=""):
        out.append({"what": what, "figure": figure, "target": target,
                    "met": met, "note": note})

    runs = _g(r, "ingest", "runs") or {}
    hz = _g(runs, "healthz", "requests_per_s")
    s1 = _g(runs, "sf_outbound_1", "requests_per_s")
    ratio = s1 / hz if s1 and hz else None
    add("ingest: 1-notification Outbound Messages vs /healthz ceiling",
        f"{_fmt(s1)} / {_fmt(hz)} req/s = {_pct(ratio)}", ">= 50%",
        None if ratio is None else ratio >= 0.5)
    m1 = _g(runs, "mkto_webhook_1", "requests_per_s")
    ratio_m = m1 / hz if m1 and hz else None
    add("ingest: single Marketo events vs /healthz ceiling (not a target of the issue)",
        f"{_fmt(m1)} / {_fmt(hz)} req/s = {_pct(ratio_m)}", "(>= 50%, by analogy)",
        None if ratio_m is None else ratio_m >= 0.5)
    s1r = _g(runs, "sf_outbound_1_refused", "requests_per_s")
    ratio_r = s1r / hz if s1r and hz else None
    add("ingest: the same messages refused (403) before the Redis write, vs /healthz (not a target)",
        f"{_fmt(s1r)} / {_fmt(hz)} req/s = {_pct(ratio_r)}", "(none)", None)
    s100 = _g(runs, "sf_outbound_100", "changes_per_s")
    x16 = _g(runs, "redis_xadd_p16", "ops_per_s")
    ratio = s100 / x16 if s100 and x16 else None
    add("ingest: notifications/s from 100-notification messages vs pipelined XADD",
        f"{_fmt(s100)} / {_fmt(x16)} /s = {_pct(ratio)}", ">= 30%",
        None if ratio is None else ratio >= 0.3)

    paced = r.get("paced") or {}
    sf = _g(paced, "audit", "salesforce", "p99_ms")
    add("paced 500/s per side: p99 received -> applied toward Salesforce",
        f"{_fmt(sf, 0)} ms (audit, n={_fmt(_g(paced, 'audit', 'salesforce', 'n'))}"
        f" of {_fmt(_g(paced, 'changes_sent', 'toward_salesforce'))})", "< 250 ms",
        None if sf is None else (sf < 250 and _complete(paced, "salesforce")),
        "" if _complete(paced, "salesforce") else "not every change was applied within the run")
    floor = marketo_floor_s(r) * 1000
    mk = _g(paced, "audit", "marketo", "p99_ms")
    add("paced 500/s per side: p99 received -> applied toward Marketo",
        f"{_fmt(mk, 0)} ms (floor {floor:.0f} ms; audit, n="
        f"{_fmt(_g(paced, 'audit', 'marketo', 'n'))} of "
        f"{_fmt(_g(paced, 'changes_sent', 'toward_marketo'))})",
        f"<= floor + 100 ms = {floor + 100:.0f} ms",
        None if mk is None else (mk <= floor + 100 and _complete(paced, "marketo")),
        "" if _complete(paced, "marketo") else "not every change was applied within the run")

    burst = r.get("burst") or {}
    sfc = _g(burst, "sf_calls", "changes_per_write_call")
    add("burst: changes per Salesforce CampaignMember write call", _fmt(sfc), ">= 150",
        None if sfc is None else sfc >= 150)
    mkc = _g(burst, "mk_calls", "changes_per_write_call")
    add("burst: changes per Marketo members/status.json call", _fmt(mkc), ">= 250",
        None if mkc is None else mkc >= 250)
    d = _g(burst, "drain_s", "until_all_applied_audit")
    n = _g(r, "parameters", "burst", "changes_per_side")
    drained = burst.get("drained")
    add(f"burst: 2 x {_fmt(n)} changes drained",
        (f"{_fmt(d)} s" if drained else
         f"not drained within the run ({_fmt(_g(burst, 'counters_at_end', 'applied_sf'))} + "
         f"{_fmt(_g(burst, 'counters_at_end', 'applied_mk'))} applied)") if burst else "—",
        "< 30 s", None if not burst or drained is None else bool(drained and d is not None and d < 30))

    peaks = []
    for name, v in runs.items():
        if isinstance(v, dict) and v.get("peak_rss_mib") is not None:
            peaks.append((v["peak_rss_mib"], f"ingest ({name})"))
    for sec in ("paced", "burst"):
        for proc, mib in (_g(r, sec, "peak_rss_mib") or {}).items():
            if proc != "redis" and mib is not None:
                peaks.append((mib, f"{proc} ({sec})"))
    for name, v in (r.get("scaling") or {}).items():
        for proc, mib in (_g(v, "peak_rss_mib") or {}).items():
            if proc != "redis" and mib is not None:
                peaks.append((mib, f"{proc} ({name})"))
    if peaks:
        top = max(peaks)
        add("peak RSS of every service process under every load", f"{top[0]:.1f} MiB ({top[1]})",
            "< 64 MiB", top[0] < 64)
    else:
        add("peak RSS of every service process under every load", "—", "< 64 MiB", None)
    backfill_targets(r, add)
    return out


def backfill_targets(r, add):
    """Issue 19's targets, judged on the backfill section (bench/backfill.py) when it ran."""
    b = r.get("backfill")
    if not isinstance(b, dict) or "after" not in b:
        return
    n = _g(b, "parameters", "members_per_side")
    mv = b.get("marketo_vs_floor") or {}
    after = b.get("after") or {}
    add(f"backfill {_fmt(n)} x {_fmt(n)}: converged (job done, both lists equal)",
        f"{b.get('job_state')} in {_fmt(b.get('converge_s'))} s; {_fmt(after.get('mismatches'))} mismatches",
        "done, 0 mismatches", b.get("job_state") == "done" and after.get("mismatches") == 0)
    ratio = mv.get("correction_ratio")
    add("backfill: Marketo calls of the corrections vs their floor",
        f"{_fmt(mv.get('correction_calls'))} / {_fmt(mv.get('correction_floor'))} = {_fmt(ratio, 2)}x",
        "<= 1.5x", None if ratio is None else ratio <= 1.5)
    add("backfill: Marketo calls of listing + corrections vs the paged listing's floor (not a target)",
        f"{_fmt(mv.get('total_calls'))} / {_fmt(mv.get('total_floor_paged'))} = "
        f"{_fmt(mv.get('total_ratio'), 2)}x", "(<= 1.5x)", None)
    peaks = [(v, k) for k, v in (b.get("peak_rss_mib") or {}).items()
             if v is not None and k not in ("redis", "sf_sim", "mkto_sim")]
    if peaks:
        top = max(peaks)
        add("backfill: peak RSS of every service process", f"{top[0]:.1f} MiB ({top[1]})",
            "< 64 MiB", top[0] < 64)
    floor = marketo_floor_s(r) * 1000
    for wname, win in (b.get("live") or {}).items():
        for target, want, limit in (("salesforce", "< 250 ms", 250), ("marketo", f"<= {floor + 100:.0f} ms",
                                                                         floor + 100)):
            v = win.get(f"toward_{target}") or {}
            total = win.get("changes_per_side")
            p99 = v.get("p99_ms")
            complete = total is not None and v.get("applied") == total
            add(f"backfill: live paced p99 toward {target.title()} ({wname.replace('_', ' ')})",
                f"{_fmt(p99, 0)} ms ({_fmt(v.get('applied'))} of {_fmt(total)} at "
                f"{_fmt(win.get('rate_per_side'))}/s)", want,
                None if p99 is None else (p99 < limit if target == "salesforce" else p99 <= limit)
                and complete, "" if complete else "not every change was applied within 10 s")


def _complete(sec, target):
    want = _g(sec, "changes_sent", f"toward_{target}")
    got = _g(sec, "audit", target, "n")
    return bool(want) and got is not None and got >= want


def _pct(x):
    return "—" if x is None else f"{x * 100:.1f}%"


def _row(cols, widths):
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(cols, widths)))


def _table(title, head, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    print(_row(head, widths))
    print(_row(["-" * w for w in widths], widths))
    for r in rows:
        print(_row(r, widths))


def print_table(r):
    m = r.get("machine", {})
    print(f"\ncampaign-sync benchmarks — {m.get('campaign_sync')} ({m.get('git_commit')}"
          f"{', dirty tree' if m.get('git_dirty') else ''}); {m.get('nproc')} x {m.get('cpu_model')}, "
          f"{_fmt(m.get('mem_total_mib'))} MiB; {r.get('elapsed_s')} s")
    runs = _g(r, "ingest", "runs") or {}
    if runs:
        rows = []
        for name in ("sf_outbound_1", "sf_outbound_100", "mkto_webhook_1", "mkto_webhook_100",
                     "sf_outbound_1_refused", "healthz"):
            v = runs.get(name) or {}
            if "error" in v:
                rows.append([name, "FAILED: " + v["error"][:60], "", "", "", "", "", "", ""])
                continue
            if not v:
                continue
            cpu = _g(v, "cpu", "procs") or {}
            rows.append([name, _fmt(v.get("requests_per_s"), 0), _fmt(v.get("changes_per_s"), 0),
                         _fmt(v.get("p50_ms"), 2), _fmt(v.get("p99_ms"), 2), _fmt(v.get("errors")),
                         _fmt(_g(cpu, "ingest", "cores"), 2) + "/" + _fmt(_g(cpu, "redis", "cores"), 2)
                         + "/" + _fmt(_g(cpu, "wrk", "cores"), 2),
                         _fmt(v.get("ingest_cpu_s_per_1000_changes"), 3),
                         _fmt(v.get("peak_rss_mib"), 1)])
        _table("INGEST  (wrk -t2 -c64, 10 s each; campaign-sync ingest; redis-server AOF fsync always)",
               ["run", "req/s", "changes/s", "p50 ms", "p99 ms", "errors",
                "cores ingest/redis/wrk", "ingest CPU s/1k", "peak RSS MiB"], rows)
        rows = []
        for key, label in (("redis_xadd", "redis-benchmark XADD, -c64"),
                           ("redis_xadd_p16", "redis-benchmark XADD, -c64 -P16")):
            v = runs.get(key) or {}
            rows.append([label, _fmt(v.get("ops_per_s"), 0), _fmt(v.get("p50_ms"), 2),
                         _fmt(v.get("p99_ms"), 2), v.get("error", "")[:60]])
        hz = runs.get("healthz") or {}
        rows.append(["GET /healthz (HTTP ceiling)", _fmt(hz.get("requests_per_s"), 0),
                     _fmt(hz.get("p50_ms"), 2), _fmt(hz.get("p99_ms"), 2), ""])
        _table("CEILINGS (same run, same Redis / same server)",
               ["ceiling", "ops/s", "p50 ms", "p99 ms", ""], rows)
        rows = []
        for name, v in (_g(r, "ingest", "ratios") or {}).items():
            rows.append([name, _pct(v.get("requests_vs_healthz")), _pct(v.get("changes_vs_xadd")),
                         _pct(v.get("changes_vs_xadd_pipelined"))])
        _table("INGEST / CEILING", ["run", "req/s ÷ healthz", "changes/s ÷ XADD",
                                    "changes/s ÷ XADD -P16"], rows)

    floor = marketo_floor_s(r)
    one = r.get("burst_one_side") or {}
    for v, title in ((r.get("paced"), "END TO END, PACED (500 changes/s from each side, 1 change per request)"),
                     (r.get("burst"), "END TO END, BURST from both sides (sent as fast as possible)"),
                     (one.get("toward_salesforce"), "END TO END, BURST from Marketo only (toward Salesforce)"),
                     (one.get("toward_marketo"), "END TO END, BURST from Salesforce only (toward Marketo)")):
        if not v:
            continue
        rows = []
        for target, label in (("salesforce", "toward Salesforce"), ("marketo", "toward Marketo")):
            if not _g(v, "changes_sent", f"toward_{target}"):
                continue
            a = _g(v, "audit", target) or {}
            calls = _g(v, "sf_calls" if target == "salesforce" else "mk_calls") or {}
            crm = _g(v, "crm_side", target) or {}
            rows.append([label, _fmt(_g(v, "changes_sent", f"toward_{target}")), _fmt(a.get("n")),
                         _fmt(a.get("p50_ms"), 0), _fmt(a.get("p99_ms"), 0), _fmt(a.get("max_ms"), 0),
                         _fmt(crm.get("changes_in_crm")), _fmt(crm.get("p50_ms"), 0),
                         _fmt(crm.get("p99_ms"), 0),
                         _fmt(_g(v, "drain_s", f"toward_{target}"), 2),
                         _fmt(calls.get("cm_write_calls", calls.get("status_write_calls"))),
                         _fmt(calls.get("changes_per_write_call")), _fmt(calls.get("calls"))])
        _table(title, ["direction", "sent", "applied (audit)", "p50 ms", "p99 ms", "max ms",
                       "in CRM", "p50 ms", "p99 ms", "last applied s", "write calls",
                       "changes/write", "all CRM calls"], rows)
        print("  (audit: `at` - `receivedAt` of GET /v1/audit; in CRM: the simulators' own records "
              "- time sent; last applied: s after the first send)")
        h = v.get("histogram") or {}
        c = v.get("counters_at_end") or {}
        cpu = _g(v, "cpu", "procs") or {}
        hists = v.get("histogram_by_target") or {"both directions": h}
        for label, ht in hists.items():
            ht = ht or {}
            print(f"  histogram campaign_sync_apply_latency_seconds ({label}): n={_fmt(ht.get('count'))}"
                  f" p50≈{_fmt(ht.get('p50_s'), 3)} s p99≈{_fmt(ht.get('p99_s'), 3)} s, "
                  + ("max > 30 s" if ht.get("max_bucket_le_s") == float("inf") else
                     f"max ≤ {_fmt(ht.get('max_bucket_le_s'))} s")
                  + f", ≤250 ms: {_pct(ht.get('share_le_250ms'))}")
        print(f"  Marketo floor (20 s ÷ MARKETO_CALLS_PER_20S): {floor * 1000:.0f} ms; "
              f"drained: {_fmt(v.get('drained'))} (queue depth {_fmt(c.get('depth'))}, applied "
              f"{_fmt(c.get('applied_sf'))}+{_fmt(c.get('applied_mk'))}, dropped {_fmt(c.get('dropped'))}, "
              f"dead {_fmt(c.get('dead'))}); time to drain: "
              + (f"{_fmt(_g(v, 'drain_s', 'until_all_applied_audit'), 2)} s" if v.get("drained")
                 else f"not drained when the wait ended ({_fmt(_g(v, 'drain_s', 'until_poll_saw_depth_0'), 1)} s after the first send)")
              + f" (sending took {_fmt(_g(v, 'drain_s', 'ingest_s'), 2)} s)")
        sent = v.get("sent") or {}
        print("  generator: " + "; ".join(
            f"{k}: {s.get('requests')} requests, {s.get('errors')} errors, p99 answer "
            f"{_fmt(_g(s, 'latency_ms', 'p99'), 2)} ms, p99 send lag {_fmt(_g(s, 'send_lag_ms', 'p99'), 2)} ms"
            for k, s in sent.items()))
        print("  cores used: " + ", ".join(f"{k} {_fmt(x.get('cores'), 2)}" for k, x in cpu.items())
              + (f"  — saturated: {', '.join(v['saturated'])}" if v.get("saturated") else ""))
        stop = v.get("worker_stop_s") or {}
        if any(x > 2 for x in stop.values()):
            print("  worker shutdown (SIGTERM -> exit) took " + ", ".join(f"{k} {x:.1f} s" for k, x in stop.items())
                  + "; writes made meanwhile are left out of 'in CRM'")
        print(f"  cost: service CPU {_fmt(v.get('service_cpu_s'), 2)} s = "
              f"{_fmt(v.get('cpu_s_per_1000_changes'), 3)} CPU s per 1,000 changes; peak RSS "
              + ", ".join(f"{k} {_fmt(x, 1)} MiB" for k, x in (v.get("peak_rss_mib") or {}).items()))
        mk = v.get("mk_calls") or {}
        print(f"  Marketo calls by kind: {mk.get('by_kind')}; max calls in 20 s: "
              f"{mk.get('max_calls_in_20s')}; 606: {mk.get('rate_limited_606')}, 615: {mk.get('concurrency_615')}")
        print(f"  Salesforce calls by kind: {_g(v, 'sf_calls', 'by_kind')}")

    sc = r.get("scaling") or {}
    if sc:
        rows = []
        for name, v in sc.items():
            if not isinstance(v, dict) or "skipped" in v:
                rows.append([name, "skipped", "", "", "", "", "", ""])
                continue
            c = v.get("counters_at_end") or {}
            cpu = _g(v, "cpu", "procs") or {}
            rows.append([name, _fmt(v.get("drained")),
                         _fmt(_g(v, "drain_s", "until_all_applied_audit"), 2) if v.get("drained")
                         else "> " + _fmt(_g(v, "drain_s", "until_poll_saw_depth_0"), 1),
                         _fmt(v.get("throughput_changes_per_s"), 0),
                         _fmt(_g(v, "throughput_by_target", "salesforce"), 0),
                         _fmt(_g(v, "throughput_by_target", "marketo"), 0),
                         f"{_fmt(c.get('applied_sf'))}+{_fmt(c.get('applied_mk'))}",
                         _fmt(v.get("cpu_s_per_1000_changes"), 3),
                         ", ".join(f"{k} {_fmt(x.get('cores'), 2)}" for k, x in cpu.items()
                                   if k != "generator")])
        n = _g(r, "parameters", "scaling", "changes_per_side")
        _table(f"SCALING (burst of {_fmt(n)} changes from each side; worker processes x WORKERS)",
               ["layout", "drained", "drain s", "changes/s", "to SF /s", "to MK /s",
                "applied", "CPU s/1k", "cores used"], rows)

    print_backfill(r)
    t = r.get("targets") or targets(r)
    rows = [[x["what"], x["figure"], x["target"],
             "met" if x["met"] else ("not met" if x["met"] is False else "n/a"), x.get("note", "")]
            for x in t]
    _table("TARGETS (issues 8 and 19)", ["target", "figure", "wanted", "", "note"], rows)
    for e in r.get("errors") or []:
        print(f"\nERROR in {e['section']}: {e['error']}")


def print_backfill(r):
    b = r.get("backfill")
    if not isinstance(b, dict) or "after" not in b:
        return
    p = b.get("parameters") or {}
    j = b.get("job") or {}
    c = j.get("counts") or {}
    ld = b.get("load") or {}
    print(f"\nBACKFILL  (link {_fmt(p.get('members_per_side'))} program members to "
          f"{_fmt(p.get('members_per_side'))} campaign members, {_fmt(p.get('overlap'))} shared, "
          f"{_fmt(p.get('conflicts'))} of them with conflicting statuses; 1 ingest, 1 worker x 2 threads; "
          f"load average {_fmt(ld.get('mean_1min'), 2)} mean, {_fmt(ld.get('max_1min'), 2)} max)")
    print(f"  job {j.get('state')} in {_fmt(b.get('converge_s'))} s after the link (phases at s: "
          f"{b.get('phases_s_after_link')}); both lists after: {b.get('after')}")
    print(f"  counts: listed {c.get('listed')}, compared {_fmt(c.get('compared'))}, differences "
          f"{c.get('differences')}, queued {_fmt(c.get('queued'))}, applied {_fmt(c.get('applied'))}, "
          f"skipped {_fmt(c.get('skipped'))}, dead-lettered {_fmt(c.get('deadLettered'))}")
    mv = b.get("marketo_vs_floor") or {}
    fl = b.get("floor") or {}
    rows = [["listing (paged members.json + leads.json)", _fmt(mv.get("listing_calls")),
             _fmt(mv.get("listing_floor_paged")), ""],
            ["corrections (status writes, lead lookups and creates)", _fmt(mv.get("correction_calls")),
             _fmt(mv.get("correction_floor")), _fmt(mv.get("correction_ratio"), 2) + "x"],
            ["both", _fmt(mv.get("total_calls")), _fmt(mv.get("total_floor_paged")),
             _fmt(mv.get("total_ratio"), 2) + "x"]]
    _table(f"  Marketo calls of the job ({_fmt(fl.get('changes_toward_marketo'))} changes toward "
           f"Marketo, {_fmt(fl.get('changes_toward_salesforce'))} toward Salesforce)",
           ["", "calls", "floor", "ratio"], rows)
    print(f"  Marketo calls by kind: {_g(b, 'mk_calls', 'by_kind')}; max in 20 s "
          f"{_g(b, 'mk_calls', 'max_calls_in_20s')}; leads per backfill status call "
          f"{_g(b, 'mk_calls', 'backfill_leads_per_status_call')}")
    print(f"  Salesforce calls by kind: {_g(b, 'sf_calls', 'by_kind')}; records per backfill "
          f"CampaignMember write {_g(b, 'sf_calls', 'backfill_records_per_cm_write')}")
    rss = b.get("rss_mib") or {}
    print("  peak RSS (VmHWM) MiB: " + ", ".join(
        f"{k} {_fmt(v, 1)} (RSS first {_fmt(_g(rss, k, 'first'), 1)}, last {_fmt(_g(rss, k, 'last'), 1)})"
        for k, v in (b.get("peak_rss_mib") or {}).items()))
    print(f"  Redis used_memory MiB: {b.get('redis_used_memory_mib')}")
    rows = []
    for wname, win in (b.get("live") or {}).items():
        for target in ("salesforce", "marketo"):
            v = win.get(f"toward_{target}") or {}
            rows.append([f"{wname} (from {_fmt(win.get('started_s_after_link'))} s, job "
                         f"{win.get('job_phase_at_start')})", f"toward {target.title()}",
                         _fmt(win.get("changes_per_side")), _fmt(v.get("applied")),
                         _fmt(v.get("p50_ms"), 0), _fmt(v.get("p99_ms"), 0), _fmt(v.get("max_ms"), 0)])
    _table(f"  Live paced load during the backfill ({_fmt(p.get('paced_rate_per_side'))}/s from each side, "
           f"{_fmt(p.get('paced_window_s'))} s windows; audit received -> applied)",
           ["window", "direction", "sent", "applied", "p50 ms", "p99 ms", "max ms"], rows)


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results.json")
    with open(path) as f:
        print_table(json.load(f))
