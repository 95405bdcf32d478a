"""End-to-end benchmarks: both CRM simulators at latency 0, a real Redis (AOF, fsync always),
one `campaign-sync ingest` and one or more `campaign-sync worker` processes.

Every run starts a fresh world: simulators seeded with the same people in both CRMs (half
Salesforce Contacts, half Leads, all Marketo leads, so nobody is created), two Webinar programs
and two campaigns with the same status labels, one mapping per direction:
    program A <-> campaign A   receives the Marketo webhooks   (changes toward Salesforce)
    program B <-> campaign B   receives the Outbound Messages  (changes toward Marketo)
Campaign B holds every person as a member ("Invited") beforehand, so Outbound Messages carry
real CampaignMember ids. Neither simulator echoes our writes back (Outbound Messages off,
Marketo webhook off)."""
import os
import threading
import time
from datetime import datetime, timezone

import cs  # the shared harness, tests/cs/ (PYTHONPATH: bench/run.sh, bench/soak.sh)
import gen
import lib
from cs import DELETE_CALL, MEMBERS_READ, STATUS_CALL, WEBINAR, is_cm_write

RESPONDED = {"Attended", "Attended On-demand"}
SIM_CALLS_PER_20S = 100   # a real Marketo instance: 100 calls / 20 s, 10 concurrent
SIM_MAX_CONCURRENT = 10
MARKETO_CALLS_PER_20S = 50  # the service's defaults (README), left as they are
MARKETO_MAX_CONCURRENT = 5


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


# ---------------------------------------------------------------- set-up

def new_world(workdir, name):
    """A cs.World of its own in workdir/name: Redis with AOF and appendfsync always, both
    simulators (control calls may take minutes: seeding 10,000 people), and service
    processes with the service's own retry and claim settings (not the tests' short ones)."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    return cs.World.own(d, redis_timeout=30, sim_timeout=300, test_timings=False,
                        **lib.SERVICE_ENV)


def seed(w, n_people):
    """Both simulators at latency 0 and seeded; sets on the world what the loads use:
    campaign_a/b, program_a/b, people (cs.Person, `member` its CampaignMember of campaign B)
    and setup_s."""
    t = time.time()
    w.sf.ctl("POST", "config", {"latencyMs": 0, "outboundUrl": None, "apiLimit": 100_000_000})
    w.mk.ctl("POST", "config", {"latencyMs": 0, "webhookUrl": "",
                                "callsPer20s": SIM_CALLS_PER_20S,
                                "maxConcurrent": SIM_MAX_CONCURRENT, "dailyQuota": 1_000_000})
    statuses = [{"Label": s, "IsDefault": s == "Invited", "HasResponded": s in RESPONDED}
                for s in WEBINAR]
    camps = w.sf.ctl("POST", "seed", {"campaigns": [
        {"Name": "Bench A", "IsActive": True, "statuses": statuses},
        {"Name": "Bench B", "IsActive": True, "statuses": statuses}]})["campaigns"]
    w.campaign_a, w.campaign_b = camps[0]["Id"], camps[1]["Id"]
    progs = w.mk.ctl("POST", "seed", {"programs": [
        {"name": "Bench A", "channel": "Webinar"},
        {"name": "Bench B", "channel": "Webinar"}]})["programs"]
    w.program_a, w.program_b = str(progs[0]["id"]), str(progs[1]["id"])
    people = [cs.Person(f"bench{i}@example.com", f"First{i}", f"Last{i}", "Acme & Sons")
              for i in range(n_people)]
    leads = []  # in chunks: the simulator reads at most 1 MB of body, as Marketo does
    for i in range(0, n_people, 2000):
        leads += w.mk.ctl("POST", "seed", {"leads": [
            {"email": p.email, "firstName": p.first, "lastName": p.last, "company": p.company}
            for p in people[i:i + 2000]]})["leads"]
    if len(leads) != n_people:
        raise RuntimeError(f"Marketo simulator seeded {len(leads)} of {n_people} leads")
    half = n_people // 2
    contacts = w.sf.ctl("POST", "seed", {"contacts": [
        {"FirstName": p.first, "LastName": p.last, "Email": p.email}
        for p in people[:half]]})["contacts"]
    sf_leads = w.sf.ctl("POST", "seed", {"leads": [
        {"FirstName": p.first, "LastName": p.last, "Company": p.company, "Email": p.email}
        for p in people[half:]]})["leads"]
    for p, l, r in zip(people, leads, contacts + sf_leads):
        p.lead, p.sf_id = l["id"], r["Id"]
    members = w.seed_members(w.campaign_b, people, "Invited")
    for p, m in zip(people, members):
        p.member = m["Id"]
    w.people = people
    w.setup_s = time.time() - t
    return w


def start_service(w, worker_threads):
    """One `ingest` (without CRM credentials) and a `worker` process per entry of
    worker_threads (its WORKERS), the two mappings, and the Marketo budget's window clear."""
    w.start(workers=0, ingest_crm=False)
    for i, n in enumerate(worker_threads):
        w.add_worker(threads=n, name=f"worker{i + 1}")
    for pid, cid in ((w.program_a, w.campaign_a), (w.program_b, w.campaign_b)):
        w.map(pid, cid, enabled=True)
    # The program poller copies channel and costs at once when a mapping is created: let
    # those few calls pass before the clock starts.
    time.sleep(1.5)
    # Creating the mappings took Marketo calls (programs, channels, statuses). A user
    # creates mappings once, long before the changes flow: start with the budget's window
    # (21 s) clear of them, so the load meets the budget as it stands in steady operation.
    w.setup_marketo_calls = w.redis.cmd("ZCARD", "cs:mkto:calls")
    t_clear = time.time()
    while True:
        last = w.redis.cmd("ZRANGE", "cs:mkto:calls", -1, -1, "WITHSCORES")
        sec, usec = w.redis.cmd("TIME")
        now_ms = int(sec) * 1000 + int(usec) // 1000
        if not last or now_ms - float(last[1]) > 21_500:
            break
        time.sleep(0.5)
    w.budget_clear_wait_s = round(time.time() - t_clear, 1)
    w.sf_seq0 = w.sf.ctl("GET", "calls?since=0")["next"]
    w.mk_seq0 = w.mk.ctl("GET", "calls?since=0")["next"]
    return w


def link_people(w):
    """The service's person links of every person (cs:link:*, as store_link_put_many
    writes them), as a service that has synced these people before holds them: a change
    toward Marketo then needs no lead lookup."""
    for i in range(0, len(w.people), 1000):
        kv = []
        for p in w.people[i:i + 1000]:
            kv += [f"cs:link:mkto:{p.lead}", p.sf_id, f"cs:link:sf:{p.sf_id[:15]}", p.lead]
        w.redis.cmd("MSET", *kv)


def all_procs(w):
    return dict(w.pids(), redis=w.redis.pid, sf_sim=w.sf.pid, mkto_sim=w.mk.pid,
                generator=os.getpid())


def stop(w):
    """Stops everything of the world; what failed, as text."""
    return w.close(timeout=20, expect_rc=0, must_stop=False)


# ---------------------------------------------------------------- readings

def counters(w):
    c = {"applied_sf": 0.0, "applied_mk": 0.0, "dropped": 0.0, "dead": 0.0, "retries": 0.0}
    for wk in w.workers:
        s = lib.metrics(wk)
        c["applied_sf"] += cs.metric_sum(s, "campaign_sync_events_applied_total",
                                         target="salesforce")
        c["applied_mk"] += cs.metric_sum(s, "campaign_sync_events_applied_total",
                                         target="marketo")
        c["dropped"] += cs.metric_sum(s, "campaign_sync_events_dropped_total")
        c["dead"] += cs.metric_sum(s, "campaign_sync_dead_letters_total")
        c["retries"] += cs.metric_sum(s, "campaign_sync_retries_total")
    s = lib.metrics(w.ingest)
    # The total: the series without `queue` (the per-direction ones add up to it again).
    c["depth"] = sum(v for n, l, v in s if n == "campaign_sync_queue_depth" and "queue" not in l)
    c["received"] = cs.metric_sum(s, "campaign_sync_events_received_total", outcome="accepted")
    return c


def latency_histogram(w, **match):
    total = {}
    for wk in w.workers:
        h = lib.histogram(lib.metrics(wk), "campaign_sync_apply_latency_seconds", **match)
        for le, c in h.items():
            total[le] = total.get(le, 0) + c
    return total


def audit_since(w, since_ts):
    """Audit entries received at or after since_ts, newest first, via GET /v1/audit."""
    out, cursor = [], None
    while True:
        path = "/v1/audit?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        r = w.ingest.req("GET", path, headers=cs.admin_headers(), timeout=60)
        if r.status != 200:
            raise RuntimeError(f"GET /v1/audit: {r.status} {r.body[:200]!r}")
        page = r.json()
        stop = False
        for e in page["items"]:
            if parse_time(e["receivedAt"]) < since_ts - 1:
                stop = True
                break
            out.append(e)
        cursor = page.get("next")
        if stop or not cursor:
            return out


# -------------------------------------------------------------------- analysis helpers

def sf_call_summary(calls, seq0=0):
    writes = [c for c in calls if is_cm_write(c)]
    sizes, distinct = [], set()
    for c in writes:
        if c["method"] == "DELETE":
            ids = (c["query"].get("ids") or "").split(",")
            sizes.append(len(ids))
            distinct.update(("delete", i) for i in ids)
        else:
            sizes.append(len(c["body"]["records"]))
            distinct.update((r.get("Id") or r.get("ContactId") or r.get("LeadId"), r.get("Status"))
                            for r in c["body"]["records"])
    kinds = {}
    for c in calls:
        p = c["path"]
        k = ("campaign_member_write" if is_cm_write(c) else
             "soql" if "/query" in p else
             "lead_create" if c["method"] == "POST" and p.endswith("/composite/sobjects") else
             "token" if "oauth2" in p else
             "other")
        kinds[k] = kinds.get(k, 0) + 1
    # The simulator keeps its last 10,000 calls only.
    truncated = bool(calls) and calls[0].get("seq", seq0 + 1) > seq0 + 1
    return {"calls": len(calls), "by_kind": kinds, "cm_write_calls": len(writes),
            "records_written": sum(sizes), "distinct_changes_written": len(distinct),
            "changes_per_write_call": round(len(distinct) / len(writes), 1) if writes else None,
            "records_per_write_call": round(sum(sizes) / len(writes), 1) if writes else None,
            "max_records_per_call": max(sizes) if sizes else None,
            "errors": sum(1 for c in calls if (c.get("status") or 200) >= 400),
            "log_truncated": truncated}


def mk_call_summary(calls):
    sizes, kinds, t_rest, distinct = [], {}, [], set()
    for c in calls:
        p, m = c["path"], c["method"]
        q = c.get("query") or {}
        if m == "POST" and STATUS_CALL.match(p):
            k = "member_status_write"
            body = c["body"] if isinstance(c["body"], dict) else {}
            sizes.append(len(body.get("input", [])))
            for item in body.get("input", []):
                distinct.add((STATUS_CALL.match(p).group(1), item.get("leadId"), body.get("statusName")))
        elif m == "POST" and DELETE_CALL.match(p):
            k = "member_delete"
        elif MEMBERS_READ.match(p):
            k = "member_status_read"
        elif p == "/rest/v1/leads.json" and m == "POST" and q.get("_method") != "GET":
            k = "lead_upsert"
        elif p == "/rest/v1/leads.json":
            k = "lead_lookup"
        elif p.startswith("/identity"):
            k = "token"
        else:
            k = "other"
        kinds[k] = kinds.get(k, 0) + 1
        if not p.startswith("/identity"):
            t_rest.append(c["t_start"])
    t_rest.sort()
    max20, j = 0, 0
    for i, t in enumerate(t_rest):
        while t_rest[j] <= t - 20:
            j += 1
        max20 = max(max20, i - j + 1)
    return {"calls": len(calls), "by_kind": kinds, "status_write_calls": len(sizes),
            "leads_sent": sum(sizes), "distinct_changes_sent": len(distinct),
            # distinct (program, lead, status) per call: a lead sent again is not a new change
            "changes_per_write_call": round(len(distinct) / len(sizes), 1) if sizes else None,
            "leads_per_write_call": round(sum(sizes) / len(sizes), 1) if sizes else None,
            "max_leads_per_call": max(sizes) if sizes else None,
            "rate_limited_606": sum(1 for c in calls if c.get("code") == "606"),
            "concurrency_615": sum(1 for c in calls if c.get("code") == "615"),
            "max_calls_in_20s": max20}


def crm_side_latency(w, sent_at, mk_calls, expect_sf, expect_mk, t_end):
    """When each change was in the CRM, from the simulators' own records, whatever the service
    recorded: Salesforce, the CampaignMember's LastModifiedDate (ms) in campaign A (one sample
    per person: its latest write); Marketo, the end of the first members/status.json call
    that carried the lead with that status. Latency = that time - when the change was sent.
    Only writes up to t_end (the end of the measured wait) count; later ones (a worker
    finishing its batch while it stops) are counted apart."""
    out = {}
    by_sf = {p.sf_id[:15]: i for i, p in enumerate(w.people)}
    by_lead = {p.lead: i for i, p in enumerate(w.people)}
    lat, late = [], 0
    if expect_sf:
        for m in w.sf.ctl("GET", f"members?campaignId={w.campaign_a}")["members"]:
            who = (m.get("ContactId") or m.get("LeadId") or "")[:15]
            k = ("salesforce", by_sf.get(who), m.get("Status"))
            if k in sent_at and m.get("LastModifiedDate"):
                t = datetime.strptime(m["LastModifiedDate"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
                if t > t_end:
                    late += 1
                    continue
                lat.append((t - sent_at[k]) * 1000)
        q = lib.quantiles(lat)
        out["salesforce"] = {"changes_in_crm": len(lat), "p50_ms": q["p50"], "p99_ms": q["p99"],
                             "max_ms": q["max"], "written_after_the_wait": late,
                             "note": "latest write per person only"}
    if expect_mk:
        first = {}
        for c in mk_calls:
            if c["method"] == "POST" and STATUS_CALL.match(c["path"]) and not c.get("code") \
                    and isinstance(c.get("body"), dict):
                for item in c["body"].get("input", []):
                    k = ("marketo", by_lead.get(item.get("leadId")), c["body"].get("statusName"))
                    if k in sent_at:
                        first[k] = min(first.get(k, c["t_end"]), c["t_end"])
        lat = [(t - sent_at[k]) * 1000 for k, t in first.items() if t <= t_end]
        q = lib.quantiles(lat)
        out["marketo"] = {"changes_in_crm": len(lat), "p50_ms": q["p50"], "p99_ms": q["p99"],
                          "max_ms": q["max"],
                          "written_after_the_wait": sum(1 for t in first.values() if t > t_end)}
    return out


def audit_latency(entries, t_end):
    """Per target: received -> applied (audit `at` - `receivedAt`) in ms, and the last `at`;
    entries applied after t_end (the end of the measured wait: a worker finishing its batch
    while it stops) are counted apart."""
    out = {}
    for target in ("salesforce", "marketo"):
        all_es = [e for e in entries if e.get("target") == target]
        es = [e for e in all_es if parse_time(e["at"]) <= t_end]
        lat = [(parse_time(e["at"]) - parse_time(e["receivedAt"])) * 1000 for e in es]
        q = lib.quantiles(lat)
        out[target] = {"n": len(es), "p50_ms": q["p50"], "p99_ms": q["p99"], "max_ms": q["max"],
                       "applied_after_the_wait": len(all_es) - len(es),
                       "last_applied": max((parse_time(e["at"]) for e in es), default=None),
                       "results": _count(e.get("result") for e in es)}
    return out


def _count(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def hist_summary(h):
    if not h:
        return None
    total = h[max(h)]
    return {"count": total,
            "p50_s": _r(lib.histogram_quantile(h, 0.5)), "p99_s": _r(lib.histogram_quantile(h, 0.99)),
            "max_bucket_le_s": lib.histogram_max_bucket(h),
            "share_le_250ms": round(h.get(0.25, 0) / total, 4) if total else None,
            "buckets": {("+Inf" if le == float("inf") else str(le)): c for le, c in h.items()}}


def _r(x, n=4):
    return None if x is None else round(x, n)


class Monitor(threading.Thread):
    """Samples the queue depth and applied counters every `every` seconds."""

    def __init__(self, world, every=0.5):
        super().__init__(daemon=True)
        self.world, self.every = world, every
        self.samples, self.stop_ev = [], threading.Event()

    def run(self):
        t0 = time.time()
        while not self.stop_ev.is_set():
            try:
                c = counters(self.world)
                self.samples.append([round(time.time() - t0, 2), int(c["depth"]),
                                     int(c["applied_sf"]), int(c["applied_mk"])])
            except Exception:  # noqa: BLE001 - a missed sample is not a failure
                pass
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.join(5)
        return self.samples


def wait_drained(world, expect_sf, expect_mk, timeout):
    """Until campaign_sync_queue_depth is 0 and every change is applied (or handled otherwise:
    dropped or dead-lettered), or timeout. Returns (drained, counters, time.time() then)."""
    deadline = time.time() + timeout
    c = None
    while time.time() < deadline:
        try:
            c = counters(world)
        except OSError:
            time.sleep(0.2)
            continue
        applied = c["applied_sf"] >= expect_sf and c["applied_mk"] >= expect_mk
        handled = c["applied_sf"] + c["applied_mk"] + c["dropped"] + c["dead"] >= expect_sf + expect_mk
        if c["depth"] == 0 and (applied or handled):
            return applied, c, time.time()
        time.sleep(0.1)
    return False, c, time.time()


def saturation(cpu):
    """Processes that used >= 90% of a core (the Python simulators can use one at most)."""
    return [k for k, v in cpu["procs"].items() if v.get("cores") is not None and v["cores"] >= 0.9]


# -------------------------------------------------------------------- runs

def run_load(workdir, name, worker_threads, n_people, build, drain_timeout, log):
    """One world, one load: build(world, t0) -> streams for gen.send. Returns a result dict."""
    w = None
    res = {"layout": {"ingest": 1, "worker_processes": len(worker_threads),
                      "worker_threads": worker_threads}}
    try:
        w = seed(new_world(workdir, name), n_people)
        start_service(w, worker_threads)
        res["setup_s"] = round(w.setup_s, 2)
        res["setup_marketo_calls"] = w.setup_marketo_calls
        res["budget_clear_wait_s"] = w.budget_clear_wait_s
        streams, expect_sf, expect_mk, t0 = build(w)
        res["changes_sent"] = {"toward_salesforce": expect_sf, "toward_marketo": expect_mk}
        svc = w.pids()
        for pid in svc.values():
            lib.reset_peak_rss(pid)
        cpu = lib.CpuMeter(all_procs(w)).start()
        mon = Monitor(w)
        mon.start()
        sent, sent_at = gen.send(w.ingest.port, streams, t0=t0)
        t_sent = time.time()
        log(f"  {name}: sent in {t_sent - t0:.1f}s; waiting for the queue to drain")
        drained, c, t_drained = wait_drained(w, expect_sf, expect_mk, drain_timeout)
        samples = mon.stop()
        res["cpu"] = cpu.stop()
        res["sent"] = sent
        first_send = min(s["first_send"] for s in sent.values() if s["first_send"])
        res["drained"] = drained
        res["counters_at_end"] = c
        res["peak_rss_mib"] = {k: lib.proc_status(p, "VmHWM") for k, p in svc.items()}
        res["peak_rss_mib"]["redis"] = lib.proc_status(w.redis.pid, "VmHWM")
        h = latency_histogram(w)
        res["histogram"] = hist_summary(h)
        res["histogram_by_target"] = {t: hist_summary(latency_histogram(w, target=t))
                                      for t in ("salesforce", "marketo")}
        # Everything below reads what was recorded: stop the workers first, so that a queue
        # still draining does not keep the simulators busy while they are asked.
        res["worker_stop_s"] = {}
        for wk in w.workers:
            t = time.time()
            rc = lib.stop(wk)  # SIGTERM; killed after 20 s
            res["worker_stop_s"][wk.name] = round(time.time() - t, 2)
            if rc not in (0, None):
                res.setdefault("worker_exit", []).append(f"{wk.name}: {rc}")
        audit = audit_since(w, first_send)
        al = audit_latency(audit, t_drained)
        res["audit"] = al
        last = max([v["last_applied"] for v in al.values() if v["last_applied"]] or [t_drained])
        res["drain_s"] = {"until_all_applied_audit": round(last - first_send, 3),
                          "until_poll_saw_depth_0": round(t_drained - first_send, 3),
                          "ingest_s": round(max(s["last_done"] for s in sent.values()
                                                if s["last_done"]) - first_send, 3)}
        res["throughput_by_target"] = {}
        for target, v in al.items():
            if v["last_applied"]:
                res["drain_s"][f"toward_{target}"] = round(v["last_applied"] - first_send, 3)
                if v["last_applied"] > first_send:
                    res["throughput_by_target"][target] = round(
                        v["n"] / (v["last_applied"] - first_send), 1)
        applied = c["applied_sf"] + c["applied_mk"] if c else 0
        res["throughput_changes_per_s"] = round(applied / (last - first_send), 1) if last > first_send else None
        svc_cpu = sum(v["cpu_s"] for k, v in res["cpu"]["procs"].items() if k in svc)
        res["service_cpu_s"] = round(svc_cpu, 3)
        res["cpu_s_per_1000_changes"] = round(svc_cpu / (expect_sf + expect_mk) * 1000, 4)
        res["saturated"] = saturation(res["cpu"])
        sf_calls, mk_calls = w.sf_calls(w.sf_seq0), w.mk_calls(w.mk_seq0)
        res["sf_calls"] = sf_call_summary(sf_calls, w.sf_seq0)
        res["mk_calls"] = mk_call_summary(mk_calls)
        res["crm_side"] = crm_side_latency(w, sent_at, mk_calls, expect_sf, expect_mk, t_drained)
        res["queue_samples"] = samples  # [t, depth, applied toward SF, applied toward Marketo]
        dl = w.ingest.req("GET", "/v1/deadletters?limit=5", headers=cs.admin_headers(), timeout=30)
        res["dead_letter_sample"] = [d.get("error") for d in dl.json().get("items", [])][:5] \
            if dl.status == 200 else None
    finally:
        res["stop_errors"] = stop(w) if w else []
    return res


def paced_build(rate, seconds, n_people, tag, linked=True):
    """`rate` changes/s from each side for `seconds`, one change per request. Each person's
    first change is Registered, a second one (after n_people / rate s) Attended (forward, so
    Marketo applies it too). linked: the service knows every person already (World.link_people);
    else a person's change toward Marketo finds the link only when the same person's change
    toward Salesforce, sent at the same moment, was applied first, or looks the lead up."""
    total = int(rate * seconds)

    def build(w):
        if linked:
            link_people(w)
        ids = gen.NotificationIds(tag)
        t0 = time.time() + 1.5
        mk_items, sf_items = [], []
        for j in range(total):
            p = w.people[j % n_people]
            status = "Registered" if j < n_people else "Attended"
            off = j / rate
            ev = gen.mkto_event(p, w.program_a, status, t0 + off)
            mk_items.append((off, gen.mkto_request(gen.mkto_body([ev])), 1,
                             [("salesforce", j % n_people, status)]))
            rec = gen.sf_record(p, w.campaign_b, p.member, status, t0 + off)
            sf_items.append((off, gen.sf_request(gen.om_body([(ids.next(), rec)])), 1,
                             [("marketo", j % n_people, status)]))
        return ({"marketo_webhooks": ("mkto", mk_items, 8),
                 "salesforce_outbound": ("sf", sf_items, 8)}, total, total, t0)
    return build


def burst_build(n, tag, mk_per_request=1000, sf_per_request=100, conns=4, sides=("mkto", "sf")):
    """n changes from each side (or from one: sides), as fast as possible: Marketo arrays of
    1000 events, Outbound Messages of 100 notifications."""

    def build(w):
        ids = gen.NotificationIds(tag)
        now = time.time()
        mk_items, sf_items = [], []
        if "mkto" in sides:
            for i in range(0, n, mk_per_request):
                evs = [gen.mkto_event(p, w.program_a, "Registered", now)
                       for p in w.people[i:i + mk_per_request]]
                mk_items.append((None, gen.mkto_request(gen.mkto_body(evs)), len(evs),
                                 [("salesforce", k, "Registered") for k in range(i, i + len(evs))]))
        if "sf" in sides:
            for i in range(0, n, sf_per_request):
                recs = [(ids.next(), gen.sf_record(p, w.campaign_b, p.member, "Registered", now))
                        for p in w.people[i:i + sf_per_request]]
                sf_items.append((None, gen.sf_request(gen.om_body(recs)), len(recs),
                                 [("marketo", k, "Registered") for k in range(i, i + len(recs))]))
        streams = {}
        if mk_items:
            streams["marketo_webhooks"] = ("mkto", mk_items, conns)
        if sf_items:
            streams["salesforce_outbound"] = ("sf", sf_items, conns)
        return (streams, n if "mkto" in sides else 0, n if "sf" in sides else 0, time.time())
    return build
