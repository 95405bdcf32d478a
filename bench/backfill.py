"""Backfill benchmark (issue 19): a program of N members linked to a campaign of N members
that share half of them, while the paced live load of section 2 runs on other people and
mappings.

World: both simulators with Marketo's real limits (100 calls / 20 s, 10 concurrent; 300 leads
per call; Salesforce 200 records per call), Redis with AOF and fsync always, one `ingest` and
one `worker` (WORKERS=2), every process with BACKFILL_ON_LINK=true and the default
BACKFILL_MARKETO_SHARE (0.5) and MARKETO_CALLS_PER_20S (50), as e2e.py configures them.

The two lists (members made by the simulators' /_sim/seed "generate", as a list import makes
them; email bf<n>@example.com, M = N / 2, K = M / 10):
    n in [1, M]           in the program only (Marketo leads that Salesforce lacks)
    n in [M+1, 2M-K]      in both, same status (the same statuses, shuffled alike on both sides)
    n in [2M-K+1, 2M-K/2] in both, Marketo newer: Attended there, Registered in Salesforce 1 h ago
    n in [2M-K/2+1, 2M]   in both, Salesforce newer: Registered there, Attended in Salesforce
    n in [2M+1, 3M]       in the campaign only (Contacts and Leads that Marketo lacks)
Statuses: the Webinar channel's on both sides, mapped to the same labels.

The live load: two mappings as in e2e.py (program A <-> campaign A receives Marketo webhooks,
program B <-> campaign B Outbound Messages), their own 20,000 people, linked. Their own
backfill jobs are cancelled before any worker runs (their lists are not the point here). Two
paced windows of PACED_S seconds at PACED_RATE changes/s from each side: one while the job
lists the program (Marketo calls of the listing), one once it has moved on (corrections).

Readings: the job (GET /v1/jobs/{id}) every 2 s; VmRSS of every process and Redis's
used_memory every 2 s; both simulators' calls (Salesforce's in pieces: it keeps its last 10,000);
at the end both simulators' member lists, compared person by person by email."""
import os
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import cs
import e2e
import gen
import lib
from cs import STATUS_CALL, WEBINAR, is_cm_write

LIVE_PEOPLE = 20_000          # two paced windows of 10,000 people each
SF_PAGE = 200                 # Salesforce records per Collections call
MK_PAGE = 300                 # Marketo leads per call (members/status.json, leads.json)
MIX = {"Invited": 0.25, "Registered": 0.40, "No Show": 0.10, "Attended": 0.25}


def exact(weights, count):
    """Integer counts in the proportions of weights adding up to count (the simulators then
    shuffle exactly these, alike on both sides for the same seed)."""
    names = list(weights)
    out = {n: int(weights[n] * count) for n in names}
    out[names[1]] += count - sum(out.values())
    return {n: c for n, c in out.items() if c > 0}


def plan(n_members):
    m = n_members // 2
    k = max(2, m // 10)
    same = m - k
    b1 = same // 2
    r = {"M": m, "K": k,
         "mk_only": (1, m),
         "same_contacts": (m + 1, b1), "same_leads": (m + 1 + b1, same - b1),
         "mk_newer": (2 * m - k + 1, k // 2), "sf_newer": (2 * m - k + 1 + k // 2, k - k // 2),
         "sf_only_contacts": (2 * m + 1, m // 2), "sf_only_leads": (2 * m + 1 + m // 2, m - m // 2)}
    return r


def email(n):
    return f"bf{n}@example.com"


def seed_lists(w, n_members, log):
    """Program C and campaign C with their members (see the module's text); returns a dict of
    what was seeded and how long it took."""
    t = time.time()
    p = plan(n_members)
    statuses = [{"Label": s, "IsDefault": s == "Invited", "HasResponded": s in e2e.RESPONDED}
                for s in WEBINAR]
    w.campaign_c = w.sf.ctl("POST", "seed", {"campaigns": [
        {"Name": "Backfill C", "IsActive": True, "statuses": statuses}]})["campaigns"][0]["Id"]
    w.program_c = str(w.mk.ctl("POST", "seed", {"programs": [
        {"name": "Backfill C", "channel": "Webinar"}]})["programs"][0]["id"])
    names = {"emailPattern": "bf{n}@example.com", "firstNamePattern": "Bf{n}",
             "lastNamePattern": "Member {n}"}

    def mk(rng, st, seed):
        start, count = rng
        return {"programId": int(w.program_c), "count": count, "start": start, "statuses": st,
                "seed": seed, "company": "Backfill Co", **names}

    def sf(rng, st, seed, kind, stamp=None):
        start, count = rng
        spec = {"campaignId": w.campaign_c, "count": count, "start": start, "statuses": st,
                "seed": seed, "kind": kind, **names}
        if kind == "lead":
            spec["company"] = "Backfill Co"
        if stamp:
            spec["lastModifiedDate"] = stamp
        return spec

    mk_specs = [mk(p["mk_only"], exact(MIX, p["M"]), 11),
                mk(p["same_contacts"], exact(MIX, p["same_contacts"][1]), 21),
                mk(p["same_leads"], exact(MIX, p["same_leads"][1]), 22),
                mk(p["mk_newer"], {"Attended": p["mk_newer"][1]}, 23),
                mk(p["sf_newer"], {"Registered": p["sf_newer"][1]}, 24)]
    out = {"plan": p, "marketo": [], "salesforce": []}
    for spec in mk_specs:  # one call each: the simulator reads 1 MB of body at most
        g = w.mk.ctl("POST", "seed", {"generate": spec}, timeout=600)["generated"][0]
        out["marketo"].append({k: g[k] for k in ("members", "leadsCreated", "ms")})
    hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    time.sleep(1.1)  # Salesforce's newer side strictly after Marketo's updatedAt (1 s grain)
    sf_specs = [sf(p["same_contacts"], exact(MIX, p["same_contacts"][1]), 21, "contact"),
                sf(p["same_leads"], exact(MIX, p["same_leads"][1]), 22, "lead"),
                sf(p["mk_newer"], {"Registered": p["mk_newer"][1]}, 23, "lead", hour_ago),
                sf(p["sf_newer"], {"Attended": p["sf_newer"][1]}, 24, "lead"),
                sf(p["sf_only_contacts"], exact(MIX, p["sf_only_contacts"][1]), 31, "contact"),
                sf(p["sf_only_leads"], exact(MIX, p["sf_only_leads"][1]), 32, "lead")]
    for spec in sf_specs:
        g = w.sf.ctl("POST", "seed", {"generate": spec}, timeout=600)["generated"][0]
        out["salesforce"].append({k: g[k] for k in ("members", "peopleCreated", "ms")})
    out["seconds"] = round(time.time() - t, 1)
    log(f"  backfill: seeded {n_members:,} + {n_members:,} members in {out['seconds']} s")
    return out


# ---------------------------------------------------------------- both sides' lists

def mk_list(w):
    """{email: status} of program C, from the simulator's own state."""
    st = w.mk.ctl("GET", "state", timeout=600)
    emails = {l["id"]: (l.get("email") or "").lower() for l in st["leads"]}
    pid = int(w.program_c)
    return {emails[m["leadId"]]: m["statusName"] for m in st["members"] if m["programId"] == pid}


def sf_list(w):
    """{email: status} of campaign C, from the simulator's own state."""
    st = w.sf.ctl("GET", "state", timeout=600)
    emails = {}
    for key in ("leads", "contacts"):
        for r in st[key]:
            emails[r["Id"][:15]] = (r.get("Email") or "").lower()
    c15 = w.campaign_c[:15]
    out = {}
    w.c_members = set()
    for m in st["members"]:
        if m["CampaignId"][:15] == c15:
            who = (m.get("ContactId") or m.get("LeadId") or "")[:15]
            out[emails.get(who, "?" + who)] = m["Status"]
            w.c_members.add(m["Id"][:15])
    return out


def compare(mk, sf):
    only_mk = [e for e in mk if e not in sf]
    only_sf = [e for e in sf if e not in mk]
    differ = [e for e in mk if e in sf and mk[e] != sf[e]]
    return {"marketo_members": len(mk), "salesforce_members": len(sf), "only_in_marketo": len(only_mk),
            "only_in_salesforce": len(only_sf), "status_differs": len(differ),
            "mismatches": len(only_mk) + len(only_sf) + len(differ),
            "sample": (only_mk[:3] + only_sf[:3] + [f"{e}: {mk[e]} / {sf[e]}" for e in differ[:3]])}


def floors(before, p):
    """The physical floor of the job's Marketo and Salesforce calls, from the lists before the
    link (see BENCHMARKS.md section 4 for the definition)."""
    mk, sf = before
    to_mk, to_sf = {}, {}
    for e, s in sf.items():
        if e not in mk:
            to_mk[s] = to_mk.get(s, 0) + 1
    for e, s in mk.items():
        if e not in sf:
            to_sf[s] = to_sf.get(s, 0) + 1
    # Conflicts: the newer side wins (the seeding knows which is which).
    n_sf_newer, n_mk_newer = p["sf_newer"][1], p["mk_newer"][1]
    to_mk["Attended"] = to_mk.get("Attended", 0) + n_sf_newer
    to_sf["Attended"] = to_sf.get("Attended", 0) + n_mk_newer
    unknown_leads = sum(1 for e in sf if e not in mk)   # none of them is a Marketo lead
    unknown_people = sum(1 for e in mk if e not in sf)  # none of them is in Salesforce
    ceil = lambda n, k: -(-n // k)  # noqa: E731
    status_calls = sum(ceil(n, MK_PAGE) for n in to_mk.values())
    lookups, creates = ceil(unknown_leads, MK_PAGE), ceil(unknown_leads, MK_PAGE)
    mk_statuses = {}
    for s in mk.values():
        mk_statuses[s] = mk_statuses.get(s, 0) + 1
    pages = sum(ceil(n, MK_PAGE) for n in mk_statuses.values())
    return {"changes_toward_marketo": sum(to_mk.values()), "changes_toward_salesforce": sum(to_sf.values()),
            "toward_marketo_by_status": to_mk, "toward_salesforce_by_status": to_sf,
            "marketo_corrections": {"status_calls": status_calls, "lead_lookups": lookups,
                                    "lead_creates": creates,
                                    "floor": status_calls + lookups + creates},
            "marketo_listing_paged": {"members_pages": pages, "lead_email_reads": pages,
                                      "floor": 2 * pages},
            "salesforce_corrections": {"cm_writes": ceil(sum(to_sf.values()), SF_PAGE),
                                       "lead_creates": ceil(unknown_people, SF_PAGE)}}


# ---------------------------------------------------------------- service

def start_service(w, log):
    """One ingest and one worker (WORKERS=2) as e2e.start_service, but the live mappings'
    backfill jobs cancelled while no worker runs; the budget's window left clear."""
    w.start(workers=0, ingest_crm=False)
    cancelled = []
    for pid, cid in ((w.program_a, w.campaign_a), (w.program_b, w.campaign_b)):
        r = w.put_mapping(pid, cid, wait_backfill=False, enabled=True)
        jid = r.json().get("backfillJob")
        if jid:
            d = w.admin("DELETE", f"/v1/jobs/{jid}")
            cancelled.append((jid, d.status))
    w.add_worker(threads=2, name="worker1")
    time.sleep(1.5)  # the program poller's channel and cost copy of the new mappings
    t_clear = time.time()
    while True:
        last = w.redis.cmd("ZRANGE", "cs:mkto:calls", -1, -1, "WITHSCORES")
        sec, usec = w.redis.cmd("TIME")
        if not last or int(sec) * 1000 + int(usec) // 1000 - float(last[1]) > 21_500:
            break
        time.sleep(0.5)
    log(f"  backfill: service up; live mappings' jobs cancelled {cancelled}; "
        f"budget clear after {time.time() - t_clear:.1f} s")
    return cancelled


def redis_used_memory(w):
    info = w.redis.cmd("INFO", "memory")
    info = info.decode() if isinstance(info, bytes) else info
    out = {}
    for line in info.splitlines():
        if line.startswith(("used_memory:", "used_memory_peak:")):
            k, v = line.split(":", 1)
            out[k] = int(v)
    return out


class Sampler(threading.Thread):
    """Every `every` s: VmRSS of every process, Redis's used_memory, the load average, the job."""

    def __init__(self, w, procs, job_id, every=2.0):
        super().__init__(daemon=True)
        self.w, self.procs, self.job_id, self.every = w, procs, job_id, every
        self.rss, self.redis_mem, self.load, self.jobs = [], [], [], []
        self.phases = {}
        self.stop_ev = threading.Event()
        self.t0 = time.time()
        self.sf_seq = w.sf_seq0
        self.sf_calls = []  # summarised as they come (the simulator keeps its last 10,000)
        self.last_sf_poll = 0

    def sample(self):
        t = round(time.time() - self.t0, 1)
        row = {"t": t}
        for k, pid in self.procs.items():
            try:
                row[k] = round(lib.proc_status(pid, "VmRSS"), 1)
            except (OSError, TypeError):
                row[k] = None
        self.rss.append(row)
        try:
            self.redis_mem.append([t, redis_used_memory(self.w).get("used_memory")])
        except Exception:  # noqa: BLE001 - a missed sample is not a failure
            pass
        self.load.append([t, round(os.getloadavg()[0], 2)])
        try:
            j = self.w.admin("GET", f"/v1/jobs/{self.job_id}").json()
            self.jobs.append([t, j.get("state"), j.get("phase"), j.get("counts")])
            key = f"{j.get('state')}/{j.get('phase')}"
            self.phases.setdefault(key, time.time())
            self.last_job = j
        except Exception:  # noqa: BLE001
            pass
        if time.time() - self.last_sf_poll > 20:
            self.poll_sf()

    def poll_sf(self):
        self.last_sf_poll = time.time()
        calls = self.w.sf_calls(self.sf_seq)
        if calls:
            self.sf_seq = calls[-1]["seq"]
            self.sf_calls.extend(slim_sf(c) for c in calls)

    def run(self):
        while not self.stop_ev.is_set():
            self.sample()
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.join(30)
        self.sample()


def slim_sf(c):
    """A Salesforce call with only what the summary needs (records' ids and statuses)."""
    body = c.get("body")
    recs = None
    if isinstance(body, dict) and isinstance(body.get("records"), list):
        recs = [{k: r.get(k) for k in ("Id", "ContactId", "LeadId", "Status", "CampaignId")}
                | {"attributes": {"type": (r.get("attributes") or {}).get("type")}}
                for r in body["records"]]
    q = c.get("query") or {}
    return {"seq": c["seq"], "method": c["method"], "path": c["path"], "status": c.get("status"),
            "query": {k: (v if k != "q" else v[:300]) for k, v in q.items()} if isinstance(q, dict) else q,
            "body": {"records": recs} if recs is not None else None}


def sf_kinds(calls, campaign_c, c_members):
    """Salesforce calls by kind; CampaignMember writes split into the backfill's (campaign C, or
    a member of it by Id) and the live load's."""
    kinds = {}
    for c in calls:
        p = c["path"]
        soql = str((c.get("query") or {}).get("q", ""))
        recs = (c.get("body") or {}).get("records") or []
        if "oauth2" in p:
            k = "token"
        elif "/query" in p:
            k = ("soql_campaign_members_listing" if "FROM CampaignMember" in soql and "CampaignId" in soql
                 and campaign_c[:15] in soql else "soql_lookup")
        elif is_cm_write(c):
            ids = {(r.get("CampaignId") or "")[:15] for r in recs} | {
                (r.get("Id") or "")[:15] for r in recs} | set(
                (c.get("query") or {}).get("ids", "").split(","))
            k = ("cm_write_backfill" if campaign_c[:15] in ids or ids & c_members
                 else "cm_write_live")
        elif c["method"] == "POST" and p.endswith("/composite/sobjects"):
            k = "lead_create" if cs.is_lead_create(c) else "sobjects_other"
        else:
            k = "other"
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


def live_keys(w):
    """Lead ids, Salesforce ids and emails of the live load's people (as text)."""
    keys = set()
    for p in w.people:
        keys.update(x.lower() for x in (str(p.lead), p.sf_id[:15], cs.to18(p.sf_id[:15]), p.email))
    return keys


def lead_values(c):
    """The filterValues of a leads.json read, or the emails of a leads.json write."""
    q = c.get("query") or {}
    body = c.get("body")
    if isinstance(body, str):
        body = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
    vals = q.get("filterValues") or (body.get("filterValues") if isinstance(body, dict) else None)
    if vals:
        return str(vals).lower().split(",")
    if isinstance(body, dict) and isinstance(body.get("input"), list):
        return [str(x.get("email", "")).lower() for x in body["input"] if isinstance(x, dict)]
    return []


def mk_kinds(calls, program_c, program_b, live=frozenset()):
    """Marketo calls by kind; lead reads and writes split into the live load's (any of its
    people's ids or emails) and the backfill's."""
    kinds = {}
    for c in calls:
        p, m = c["path"], c["method"]
        q = c.get("query") or {}
        mm = STATUS_CALL.match(p)
        if p.startswith("/identity"):
            k = "token"
        elif m == "POST" and mm:
            k = ("status_write_backfill" if mm.group(1) == program_c else
                 "status_write_live" if mm.group(1) == program_b else "status_write_other")
        elif cs.MEMBERS_READ.match(p):
            k = "members_listing" if cs.MEMBERS_READ.match(p).group(1) == program_c else "members_read_other"
        elif p == "/rest/v1/leads.json" and m == "POST" and q.get("_method") != "GET":
            k = "lead_create" + ("_live" if live & set(lead_values(c)) else "")
        elif p == "/rest/v1/leads.json":
            body = c.get("body")
            if isinstance(body, str):
                body = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
            ft = q.get("filterType") or (body.get("filterType") if isinstance(body, dict) else None)
            k = (f"lead_read_by_{ft}" if ft else "lead_read") + (
                "_live" if live & set(lead_values(c)) else "")
        else:
            k = "other"
        if c.get("code"):
            kinds[f"refused_{c['code']}"] = kinds.get(f"refused_{c['code']}", 0) + 1
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


# ---------------------------------------------------------------- the live load

def paced_window(w, offset, rate, seconds, tag):
    """rate changes/s from each side for `seconds` on people [offset, offset + 10,000):
    Registered, then (after 10,000 / rate s) Attended, as e2e.paced_build."""
    n_people = min(10_000, LIVE_PEOPLE - offset)
    total = int(rate * seconds)
    ids = gen.NotificationIds(tag)
    t0 = time.time() + 1.0
    mk_items, sf_items = [], []
    for j in range(total):
        i = offset + j % n_people
        p = w.people[i]
        status = "Registered" if j < n_people else "Attended"
        off = j / rate
        ev = gen.mkto_event(p, w.program_a, status, t0 + off)
        mk_items.append((off, gen.mkto_request(gen.mkto_body([ev])), 1, [("salesforce", i, status)]))
        rec = gen.sf_record(p, w.campaign_b, p.member, status, t0 + off)
        sf_items.append((off, gen.sf_request(gen.om_body([(ids.next(), rec)])), 1,
                         [("marketo", i, status)]))
    streams = {"marketo_webhooks": ("mkto", mk_items, 8), "salesforce_outbound": ("sf", sf_items, 8)}
    return streams, total, t0


def audit_window(w, program, t_from, t_to):
    """Audit entries of one program received in [t_from, t_to]: newest first, paged."""
    out, cursor = [], None
    while True:
        path = f"/v1/audit?limit=1000&programId={program}" + (f"&cursor={cursor}" if cursor else "")
        r = w.ingest.req("GET", path, headers=cs.admin_headers(), timeout=60)
        if r.status != 200:
            raise RuntimeError(f"GET /v1/audit: {r.status} {r.body[:200]!r}")
        page = r.json()
        done = False
        for e in page["items"]:
            rt = e2e.parse_time(e["receivedAt"])
            if rt < t_from - 1:
                done = True
                break
            if rt <= t_to + 1:
                out.append(e)
        cursor = page.get("next")
        if done or not cursor:
            return out


def crm_seconds(w):
    """{target: (seconds, calls)} of campaign_sync_crm_request_seconds over the workers."""
    out = {"salesforce": [0.0, 0], "marketo": [0.0, 0]}
    for wk in w.workers:
        m = lib.metrics(wk)
        for t in out:
            out[t][0] += cs.metric_sum(m, "campaign_sync_crm_request_seconds_sum", target=t)
            out[t][1] += cs.metric_sum(m, "campaign_sync_crm_request_seconds_count", target=t)
    return out


def p99_by_5s(entries, t0):
    """The p99 latency (ms) of the changes received in each 5 s of the window: whether a miss
    comes from the window's start (the jobs' calls still in Marketo's window) or throughout."""
    spans = {}
    for e in entries:
        rt = e2e.parse_time(e["receivedAt"])
        spans.setdefault(int((rt - t0) // 5), []).append(
            (e2e.parse_time(e["at"]) - rt) * 1000)
    return [lib.quantiles(spans[k])["p99"] for k in sorted(spans)]


def mk_calls_by_5s(w, calls, t0):
    """Marketo's calls in each 5 s of the window, as the simulator saw them: the live status
    calls (how many, their longest) and every other call (kind, start in s, duration in ms):
    what a span whose p99 is over shared the simulator with."""
    spans = {}
    for c in calls:
        k = int((c["t_start"] - t0) // 5)
        if k < 0:
            continue
        kind = [k for k in mk_kinds([c], w.program_c, w.program_b) if not k.startswith("refused_")][0]
        ms = round((c.get("t_end", c["t_start"]) - c["t_start"]) * 1000)
        span = spans.setdefault(k, {"live_status_calls": 0, "live_status_ms_max": 0, "other": []})
        if kind == "status_write_live":
            span["live_status_calls"] += 1
            span["live_status_ms_max"] = max(span["live_status_ms_max"], ms)
        elif kind != "token":
            span["other"].append([kind, round(c["t_start"] - t0, 2), ms])
    return [spans[k] for k in sorted(spans)]


def run_window(w, name, offset, rate, seconds, tag, log):
    streams, total, t0 = paced_window(w, offset, rate, seconds, tag)
    log(f"  backfill: live window {name}: {rate}/s from each side for {seconds} s")
    cpu = lib.CpuMeter(dict(w.pids(), redis=w.redis.pid, sf_sim=w.sf.pid, mkto_sim=w.mk.pid,
                            generator=os.getpid())).start()
    crm0 = crm_seconds(w)
    mk_since = w.mk.ctl("GET", "calls")["next"]
    sent, _ = gen.send(w.ingest.port, streams, t0=t0)
    t_sent = time.time()
    cores = {k: v.get("cores") for k, v in cpu.stop()["procs"].items()}
    crm1 = crm_seconds(w)
    time.sleep(10)  # applied after 10 s or counted as not applied within the window
    out = {"rate_per_side": rate, "seconds": seconds, "changes_per_side": total,
           "started_s_after_link": round(t0 - w.t_link, 1), "sent": sent, "cores": cores,
           "load_1min": os.getloadavg()[0],
           # the worker's CRM calls during the window: how many, and their mean duration
           "crm_calls": {t: {"calls": crm1[t][1] - crm0[t][1], "mean_ms": round(
               (crm1[t][0] - crm0[t][0]) / (crm1[t][1] - crm0[t][1]) * 1000, 1)
               if crm1[t][1] > crm0[t][1] else None} for t in crm0}}
    for target, program in (("salesforce", w.program_a), ("marketo", w.program_b)):
        es = [e for e in audit_window(w, program, t0, t_sent) if e.get("target") == target]
        lat = [(e2e.parse_time(e["at"]) - e2e.parse_time(e["receivedAt"])) * 1000 for e in es]
        q = lib.quantiles(lat)
        out[f"toward_{target}"] = {"applied": len(es), "p50_ms": q["p50"], "p99_ms": q["p99"],
                                   "max_ms": q["max"], "p99_ms_by_5s": p99_by_5s(es, t0)}
    out["marketo_calls_by_5s"] = mk_calls_by_5s(w, w.mk.calls(mk_since), t0)
    log(f"  backfill: window {name}: p99 toward SF {out['toward_salesforce']['p99_ms']} ms "
        f"({out['toward_salesforce']['applied']}/{total}), toward Marketo "
        f"{out['toward_marketo']['p99_ms']} ms ({out['toward_marketo']['applied']}/{total}); "
        f"p99 by 5 s: SF {[round(x) for x in out['toward_salesforce']['p99_ms_by_5s']]}, "
        f"Marketo {[round(x) for x in out['toward_marketo']['p99_ms_by_5s']]}")
    return out


# ---------------------------------------------------------------- the run

def run(workdir, n_members, rate, seconds, timeout, log):
    res = {"parameters": {"members_per_side": n_members, "overlap": n_members // 2,
                          "conflicts": plan(n_members)["K"], "paced_rate_per_side": rate,
                          "paced_window_s": seconds, "live_people": LIVE_PEOPLE,
                          "worker_processes": 1, "worker_threads": 2,
                          "BACKFILL_ON_LINK": True, "BACKFILL_MARKETO_SHARE": 0.5,
                          "MARKETO_CALLS_PER_20S": e2e.MARKETO_CALLS_PER_20S,
                          "sim_marketo_calls_per_20s": e2e.SIM_CALLS_PER_20S},
           "load_before": os.getloadavg()}
    d = os.path.join(workdir, "backfill")
    os.makedirs(d, exist_ok=True)
    w = cs.World.own(d, redis_timeout=60, sim_timeout=600, test_timings=False,
                     BACKFILL_ON_LINK="true", **lib.SERVICE_ENV)
    sampler = None
    try:
        e2e.seed(w, LIVE_PEOPLE)
        res["seed"] = seed_lists(w, n_members, log)
        p = res["seed"]["plan"]
        before = (mk_list(w), sf_list(w))
        res["before"] = compare(*before)
        res["floor"] = floors(before, p)
        del before
        res["cancelled_live_jobs"] = start_service(w, log)
        e2e.link_people(w)
        w.sf_seq0 = w.sf.ctl("GET", "calls?since=0")["next"]
        w.mk_seq0 = w.mk.ctl("GET", "calls?since=0")["next"]
        procs = dict(w.pids(), redis=w.redis.pid, sf_sim=w.sf.pid, mkto_sim=w.mk.pid)
        for pid in procs.values():
            lib.reset_peak_rss(pid)
        cpu = lib.CpuMeter(dict(procs, generator=os.getpid())).start()
        w.t_link = time.time()
        # No statusMap entry: each Webinar status maps to the campaign's status of the same label.
        r = w.put_mapping(w.program_c, w.campaign_c, wait_backfill=False, enabled=True)
        jid = r.json().get("backfillJob")
        if not jid:
            raise RuntimeError(f"no backfill job in the mapping's answer: {r.body[:300]!r}")
        res["job_id"] = jid
        log(f"  backfill: linked program {w.program_c} to campaign {w.campaign_c}: job {jid}")
        sampler = Sampler(w, procs, jid)
        sampler.start()
        windows = {}
        deadline = w.t_link + timeout

        def job():
            return getattr(sampler, "last_job", None) or {}

        # Window 1: while the job lists the program (or whatever it does 15 s after the link).
        while time.time() < w.t_link + 15:
            time.sleep(0.5)
        windows["during_listing"] = run_window(w, "1", 0, rate, seconds, "Bf1", log)
        windows["during_listing"]["job_phase_at_start"] = job().get("phase")
        # Window 2: once the job has left the Marketo listing, 20 s into its corrections.
        while time.time() < deadline and job().get("phase") in (None, "listing_marketo") \
                and job().get("state") in (None, "queued", "running"):
            time.sleep(1)
        time.sleep(20)
        windows["during_corrections"] = run_window(w, "2", 10_000, rate, seconds, "Bf2", log)
        windows["during_corrections"]["job_phase_at_start"] = job().get("phase")
        res["live"] = windows
        while time.time() < deadline and job().get("state") not in ("done", "failed", "cancelled"):
            time.sleep(2)
            if int(time.time() - w.t_link) % 60 < 2:
                c = job().get("counts") or {}
                log(f"  backfill: {time.time() - w.t_link:.0f} s: {job().get('state')}/"
                    f"{job().get('phase')} listed {c.get('listed')} queued {c.get('queued')} "
                    f"applied {c.get('applied')}")
        t_end = time.time()
        sampler.stop()
        res["cpu"] = cpu.stop()
        j = w.admin("GET", f"/v1/jobs/{jid}").json()
        res["job"] = j
        res["job_state"] = j.get("state")
        res["timed_out"] = j.get("state") not in ("done", "failed", "cancelled")
        if j.get("startedAt") and j.get("endedAt"):
            res["job_s"] = round(e2e.parse_time(j["endedAt"]) - e2e.parse_time(j["startedAt"]), 1)
            res["converge_s"] = round(e2e.parse_time(j["endedAt"]) - w.t_link, 1)
        res["wait_s"] = round(t_end - w.t_link, 1)
        res["phases_s_after_link"] = {k: round(v - w.t_link, 1) for k, v in sampler.phases.items()}
        res["peak_rss_mib"] = {k: lib.proc_status(pid, "VmHWM") for k, pid in procs.items()}
        rss = sampler.rss
        res["rss_mib"] = {k: {"first": next((x[k] for x in rss if x.get(k)), None),
                              "max": max((x[k] for x in rss if x.get(k)), default=None),
                              "last": rss[-1].get(k) if rss else None} for k in procs}
        mem = [m for _, m in sampler.redis_mem if m]
        res["redis_used_memory_mib"] = {"first": round(mem[0] / 2**20, 1) if mem else None,
                                        "max_sampled": round(max(mem) / 2**20, 1) if mem else None,
                                        "last": round(mem[-1] / 2**20, 1) if mem else None,
                                        "used_memory_peak": round(
                                            redis_used_memory(w)["used_memory_peak"] / 2**20, 1)}
        res["load"] = {"before": res.pop("load_before"),
                       "max_1min": max((x for _, x in sampler.load), default=None),
                       "mean_1min": round(sum(x for _, x in sampler.load) / max(1, len(sampler.load)), 2)}
        for wk in w.workers:
            lib.stop(wk)
        # Calls
        sampler.poll_sf()
        mk_calls = w.mk_calls(w.mk_seq0)
        res["mk_calls"] = {"by_kind": mk_kinds(mk_calls, w.program_c, w.program_b, live_keys(w)),
                           "calls": len(mk_calls),
                           "max_calls_in_20s": e2e.mk_call_summary(mk_calls)["max_calls_in_20s"]}
        bf_status = [c for c in mk_calls if c["method"] == "POST" and STATUS_CALL.match(c["path"])
                     and STATUS_CALL.match(c["path"]).group(1) == w.program_c]
        res["mk_calls"]["backfill_leads_per_status_call"] = round(
            sum(len((c.get("body") or {}).get("input", [])) for c in bf_status) / len(bf_status), 1) \
            if bf_status else None
        k = res["mk_calls"]["by_kind"]
        listing = k.get("members_listing", 0) + k.get("lead_read_by_id", 0)
        # Every lead call that is not the listing's nor the live load's: the corrections'.
        corr = k.get("status_write_backfill", 0) + sum(
            v for x, v in k.items() if x.startswith("lead_") and not x.endswith("_live")
            and x != "lead_read_by_id")
        res["marketo_vs_floor"] = {
            "listing_calls": listing, "listing_floor_paged": res["floor"]["marketo_listing_paged"]["floor"],
            "correction_calls": corr, "correction_floor": res["floor"]["marketo_corrections"]["floor"],
            "correction_ratio": round(corr / res["floor"]["marketo_corrections"]["floor"], 2)
            if res["floor"]["marketo_corrections"]["floor"] else None,
            "total_calls": listing + corr,
            "total_floor_paged": res["floor"]["marketo_listing_paged"]["floor"]
            + res["floor"]["marketo_corrections"]["floor"],
            "changes_toward_marketo": res["floor"]["changes_toward_marketo"],
            "calls_per_1000_changes_toward_marketo": round(
                corr / res["floor"]["changes_toward_marketo"] * 1000, 2)
            if res["floor"]["changes_toward_marketo"] else None}
        res["marketo_vs_floor"]["total_ratio"] = round(
            res["marketo_vs_floor"]["total_calls"] / res["marketo_vs_floor"]["total_floor_paged"], 2)
        # Both sides at the end
        t = time.time()
        res["after"] = compare(mk_list(w), sf_list(w))
        res["verify_s"] = round(time.time() - t, 1)
        res["sf_calls"] = {"by_kind": sf_kinds(sampler.sf_calls, w.campaign_c, w.c_members),
                           "calls": len(sampler.sf_calls)}
        bf_w = [c for c in sampler.sf_calls if c["method"] != "DELETE" and is_cm_write(c) and any(
            (r.get("CampaignId") or "")[:15] == w.campaign_c[:15] or (r.get("Id") or "")[:15]
            in w.c_members for r in (c.get("body") or {}).get("records") or [])]
        res["sf_calls"]["backfill_records_per_cm_write"] = round(
            sum(len(c["body"]["records"]) for c in bf_w) / len(bf_w), 1) if bf_w else None
        dl = w.admin("GET", "/v1/deadletters?limit=5")
        res["dead_letter_sample"] = [x.get("error") for x in dl.json().get("items", [])][:5] \
            if dl.status == 200 else None
        res["job_samples"] = [[t_, s, ph, (c or {}).get("applied")] for t_, s, ph, c in sampler.jobs[::5]]
        res["rss_samples"] = rss[::5]
        res["redis_samples"] = sampler.redis_mem[::5]
        log(f"  backfill: job {res['job_state']} in {res.get('converge_s')} s; mismatches "
            f"{res['after']['mismatches']}; Marketo calls {k}")
    finally:
        if sampler and sampler.is_alive():
            sampler.stop_ev.set()
        res["stop_errors"] = e2e.stop(w)
    return res
