"""Jobs (issue 19): linking a program to a campaign that both have members starts a backfill
job that merges the two lists both ways under the normal rules; reconciliation runs as a job
too (POST .../reconcile answers 202 at once); a job is one per mapping at a time across
processes, is taken over from its cursor when its process dies, can be cancelled, reports a
summary and paged details; its corrections wait below live changes and take at most
BACKFILL_MARKETO_SHARE of the Marketo budget.

Real Redis, the real binary, both simulators. Outcomes are read where a user sees them: the
job API, both simulators' members and calls, the audit log, /metrics, the Redis keys the
README documents."""
import concurrent.futures
import json
import re
import signal
import time

import pytest

import cs
from cs import WEBINAR, no_dead_letters

T = 60  # seconds to wait for a job (generous: the suite also runs under sanitizers)
KINDS = ("missing_in_marketo", "missing_in_salesforce", "status_differs")


@pytest.fixture
def world(world):
    """The world of these tests: a mapping created or enabled starts its backfill, as by
    default in production (the harness turns it off for the other tests, cs.TEST_SETTINGS)."""
    return world.defaults(BACKFILL_ON_LINK="true")


def next_second():
    """Sleeps until the wall clock is past the next whole second (Marketo's member times have
    whole seconds: a change after it is newer than one before)."""
    time.sleep(1.0 - time.time() % 1.0 + 0.05)


def job(w, jid):
    return w.admin("GET", f"/v1/jobs/{jid}", expect=200).json()


def wait_job(w, jid, state="done", timeout=T, **want):
    """Waits until the job is in `state` (and its fields match `want`); returns it."""
    def ready():
        j = job(w, jid)
        if j["state"] in ("done", "failed", "cancelled") and j["state"] != state:
            raise AssertionError(f"job ended {j['state']}: {j}\n{w.stderr()}")
        return j if j["state"] == state and all(j.get(k) == v for k, v in want.items()) else None
    return cs.wait_until(ready, timeout, interval=0.2, what=f"job {jid} {state} {want}")


def details(w, jid, limit=1000):
    """Every detail of the job, walking its pages."""
    out, cursor = [], None
    while True:
        q = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = w.admin("GET", f"/v1/jobs/{jid}/details{q}", expect=200).json()
        out += page["items"]
        cursor = page["next"]
        if cursor is None:
            return out


def counts(j):
    c = j["counts"]
    return (c["listed"]["marketo"], c["listed"]["salesforce"], c["compared"],
            tuple(c["differences"][k] for k in KINDS), c["queued"])


def link(w, pid, cid, **fields):
    """PUT the mapping enabled: the backfill job's id."""
    r = w.put_mapping(pid, cid, expect=(201, 200), wait_backfill=False, enabled=True, **fields)
    assert re.fullmatch(r"j[0-9a-z]+-[0-9a-z]{6}", r.json()["backfillJob"]), r.json()
    return r.json()["backfillJob"]


# ------------------------------------------------------------------ backfill on link

def test_backfill_merges_both_ways(world):
    """Linking a program and a campaign that already have members: people only in the program
    join the campaign (a Lead created for the one Salesforce lacks: F6), people only in the
    campaign join the program (a lead created in Marketo for the one it lacks), people in both
    with the same status stay as they are, and where the statuses differ the newer change wins
    on both sides, except that Marketo never moves a member back (one-way progression)."""
    w = world
    cid, pid = w.campaign(), w.program()
    # Only in Marketo: one who is also a Salesforce Lead, one Salesforce lacks.
    mk_lead, mk_new = w.mk_people(1, "mkl", sf="lead")[0], w.mk_person("mkn")
    # Only in Salesforce: one who is also a Marketo lead, one Marketo lacks.
    sf_lead = w.sf_person("sfl")
    sf_new = w.sf_person("sfn", marketo=False)
    # In both, the same status; and three whose statuses differ.
    same, mk_newer, sf_newer, sf_back = w.sf_people(4, "both")
    for p, st in ((mk_lead, "Registered"), (mk_new, "Invited"), (same, "Registered")):
        w.mk_human(pid, p, st)
    w.seed_members(cid, [sf_lead], "Attended")
    w.seed_members(cid, [sf_new], "Registered")
    w.seed_members(cid, [same], "Registered")
    # mk_newer: Salesforce first, Marketo a second later. sf_newer and sf_back: the reverse.
    w.seed_members(cid, [mk_newer], "Invited")
    w.mk_human(pid, sf_newer, "Invited")
    w.mk_human(pid, sf_back, "Attended")
    next_second()
    w.mk_human(pid, mk_newer, "Attended")
    w.seed_members(cid, [sf_newer], "Registered")
    w.seed_members(cid, [sf_back], "Registered")  # newer, but a step back for Marketo
    w.start(workers=1, threads=2)

    jid = link(w, pid, cid)
    j = wait_job(w, jid)
    assert (j["kind"], j["trigger"], j["programId"], j["campaignId"]) == (
        "backfill", "link", str(pid), cid)
    # 2 only in Marketo, 2 only in Salesforce, 4 in both (3 of them differing).
    assert counts(j) == (6, 6, 8, (2, 2, 3), 7), j
    c = j["counts"]
    # sf_back's correction meets Marketo's one-way progression: skipped, not applied.
    assert (c["applied"], c["skipped"], c["deadLettered"]) == (6, 1, 0), j
    assert j["error"] is None and j["startedAt"] and j["endedAt"] and j["phase"] == "finished"

    w.wait_settled()
    assert w.sf_members(cid) == {mk_lead.email: "Registered", mk_new.email: "Invited",
                                 sf_lead.email: "Attended", sf_new.email: "Registered",
                                 same.email: "Registered", mk_newer.email: "Attended",
                                 sf_newer.email: "Registered", sf_back.email: "Registered"}
    new_lead = w.mk_leads(sf_new.email)
    assert len(new_lead) == 1, new_lead
    assert w.mk_members(pid) == {mk_lead.lead: "Registered", mk_new.lead: "Invited",
                                 sf_lead.lead: "Attended", new_lead[0]["id"]: "Registered",
                                 same.lead: "Registered", mk_newer.lead: "Attended",
                                 sf_newer.lead: "Registered", sf_back.lead: "Attended"}
    # F6: the Lead made for the person Salesforce lacked carries Marketo's names.
    lead = w.sf_leads(mk_new.email)
    assert len(lead) == 1 and (lead[0]["FirstName"], lead[0]["LastName"]) == ("Ann", "Lee"), lead
    no_dead_letters(w)

    d = {x["email"]: x for x in details(w, jid, limit=2)}
    assert set(d) == {mk_lead.email, mk_new.email, sf_lead.email, sf_new.email,
                      mk_newer.email, sf_newer.email, sf_back.email}, d
    assert d[mk_new.email] == {"email": mk_new.email, "marketo": "Invited", "salesforce": None,
                               "kind": "missing_in_salesforce",
                               "action": 'Salesforce set to Marketo\'s "Invited"'}
    assert d[sf_new.email] == {"email": sf_new.email, "marketo": None, "salesforce": "Registered",
                               "kind": "missing_in_marketo",
                               "action": 'Marketo set to Salesforce\'s "Registered"'}
    assert d[mk_newer.email]["action"] == 'Salesforce set to Marketo\'s "Attended"'
    assert d[sf_newer.email]["action"] == 'Marketo set to Salesforce\'s "Registered"'
    assert (d[sf_back.email]["kind"], d[sf_back.email]["action"]) == (
        "status_differs", 'Marketo set to Salesforce\'s "Registered"')
    # The corrections went through the corrections' queue, ordinary events with the job's id.
    assert w.metric("campaign_sync_events_dropped_total", reason="backward_progression") >= 1

    # A reconciliation now finds only what Marketo's one-way progression keeps apart.
    r = w.admin("POST", f"/v1/mappings/{pid}/reconcile", expect=202)
    j2 = wait_job(w, r.json()["id"])
    assert counts(j2)[2:] == (8, (0, 0, 1), 0), j2


def test_backfill_dead_letters_statuses_without_counterpart(world):
    """F11: a campaign member whose status the program's channel lacks is not guessed: its
    correction goes to the dead-letter list naming the program, the campaign and the status,
    and the job counts it; the rest of the backfill is applied."""
    w = world
    cid = w.campaign(statuses=WEBINAR + ["Did Not Attend"])
    pid = w.program()
    ann, bob = w.sf_people(2, "f11")
    w.seed_members(cid, [ann], "Did Not Attend")
    w.seed_members(cid, [bob], "Registered")
    w.start(workers=1)
    jid = link(w, pid, cid, force=True)
    j = wait_job(w, jid)
    c = j["counts"]
    assert (c["queued"], c["applied"], c["skipped"], c["deadLettered"]) == (2, 1, 0, 1), j
    dl = w.dead_letters()
    assert len(dl) == 1 and "Did Not Attend" in dl[0]["error"], dl
    assert str(pid) in dl[0]["error"] and cid[:15] in dl[0]["error"], dl
    assert w.mk_members(pid) == {bob.lead: "Registered"}


def test_link_without_members_and_with_backfill_off(world):
    """Nothing on either side: the backfill finds nothing and queues nothing. With
    BACKFILL_ON_LINK=false a mapping starts no job; enabling it again (PATCH) does when on."""
    w = world
    cid, pid = w.campaign(), w.program()
    w.start(workers=1)
    jid = link(w, pid, cid)
    j = wait_job(w, jid)
    assert counts(j) == (0, 0, 0, (0, 0, 0), 0), j
    assert details(w, jid) == []
    # Replacing an enabled mapping with the same campaign is no new link: no job.
    r = w.put_mapping(pid, cid, expect=(200,), enabled=True)
    assert "backfillJob" not in r.json(), r.json()
    # Disabled, then enabled by PATCH: a new backfill.
    w.admin("PATCH", f"/v1/mappings/{pid}", {"enabled": False}, expect=200)
    r = w.admin("PATCH", f"/v1/mappings/{pid}", {"enabled": True}, expect=200)
    wait_job(w, r.json()["backfillJob"])

    cid2, pid2 = w.campaign("Other"), w.program("Other")
    ing = w.services(w.redis.url, name="ingest-off", **{**w.env, "BACKFILL_ON_LINK": "false",
                                                        "SPOOL_DIR": f"{w.workdir}/spool-off"})
    r = w.admin("PUT", f"/v1/mappings/{pid2}", {"campaignId": cid2, "enabled": True}, svc=ing)
    assert r.status == 201 and "backfillJob" not in r.json(), r.body
    items = w.admin("GET", f"/v1/jobs?programId={pid2}", expect=200).json()["items"]
    assert items == []


# ------------------------------------------------------------------ the job's life

def test_reconcile_job_lifecycle(world):
    """POST .../reconcile answers 202 {"id", "state": "queued"} at once, also with no worker
    running; a second request while that job is unfinished is 409 naming it; the job is
    listed per program, newest first, paged; cancelling a queued job is immediate (200), a
    finished one is 409; a worker runs the next job to done with its counts; unknown ids are
    404; finished jobs expire after JOB_RETENTION_S."""
    w = world
    cid, pid = w.campaign(), w.program()
    w.start(workers=0, JOB_RETENTION_S="3600")
    w.put_mapping(pid, cid, expect=(201,), enabled=False)
    r = w.admin("POST", f"/v1/mappings/{pid}/reconcile", expect=202)
    first = r.json()["id"]
    assert r.json() == {"id": first, "state": "queued"}
    assert r.header("Content-Type") == "application/json"
    r = w.admin("POST", f"/v1/mappings/{pid}/reconcile", expect=409)
    assert r.json() == {"error": "job_running", "id": first, "message":
                        f"program {pid} has a job not finished yet ({first}): follow it at "
                        f"GET /v1/jobs/{first}, or cancel it with DELETE /v1/jobs/{first}"}
    j = job(w, first)
    assert (j["state"], j["phase"], j["startedAt"], j["kind"], j["trigger"]) == (
        "queued", "waiting", None, "reconcile", "request")
    # Cancelled at once: no process works on it.
    r = w.admin("DELETE", f"/v1/jobs/{first}", expect=200)
    assert (r.json()["state"], r.json()["phase"]) == ("cancelled", "finished")
    r = w.admin("DELETE", f"/v1/jobs/{first}", expect=409)
    assert r.json() == {"error": "job_finished",
                        "message": f"job {first} has ended (cancelled): nothing to cancel"}
    assert w.redis.cmd("EXISTS", f"cs:job:active:{pid}") == 0
    ttl = w.redis.cmd("TTL", f"cs:job:{first}")
    assert 3500 < ttl <= 3600, ttl

    # A worker runs the next one.
    w.add_worker()
    second = w.admin("POST", f"/v1/mappings/{pid}/reconcile", expect=202).json()["id"]
    j = wait_job(w, second)
    assert counts(j) == (0, 0, 0, (0, 0, 0), 0) and j["takeovers"] == 0, j
    # Listed newest first, one per page.
    page1 = w.admin("GET", f"/v1/jobs?programId={pid}&limit=1", expect=200).json()
    assert [x["id"] for x in page1["items"]] == [second] and page1["next"] == "1"
    page2 = w.admin("GET", f"/v1/jobs?programId={pid}&limit=1&cursor=1", expect=200).json()
    assert [x["id"] for x in page2["items"]] == [first] and page2["next"] is None
    assert page2["items"][0] == job(w, first)
    assert [x["id"] for x in w.admin("GET", "/v1/jobs", expect=200).json()["items"]] == [
        second, first]
    # Bad input: a clear refusal.
    for q, msg in (("?programId=abc", "programId"), ("?cursor=x", "cursor"),
                   ("?limit=0", "limit")):
        r = w.admin("GET", f"/v1/jobs{q}", expect=400)
        assert msg in r.json()["message"], r.body
    for path in ("/v1/jobs/jnope-000000", "/v1/jobs/..%2f", "/v1/jobs/jnope-000000/details"):
        r = w.admin("GET", path, expect=404)
        assert r.json()["error"] == "not_found", r.body
    assert w.admin("DELETE", "/v1/jobs/jnope-000000", expect=404).json()["error"] == "not_found"
    r = w.admin("POST", "/v1/mappings/999999/reconcile", expect=404)
    assert r.json()["message"] == "no mapping for program 999999"


def test_a_job_of_a_program_marketo_lacks_fails_saying_why(world):
    w = world
    cid = w.campaign()
    w.start(workers=1)
    r = w.put_mapping(424242, cid, expect=(201,), enabled=True)  # the status check is pending
    j = wait_job(w, r.json()["backfillJob"], state="failed")
    assert "424242" in j["error"] and re.search(r"no program", j["error"]), j
    assert j["phase"] == "finished" and j["endedAt"]
    assert w.redis.cmd("EXISTS", f"cs:job:{j['id']}:mk") == 0


def seed_large(w, pid, cid, n_mk, n_sf, mk_statuses=("Invited", "Registered", "Attended")):
    """n_mk program members (split among mk_statuses) and n_sf campaign members (Leads that
    Marketo lacks), made the way a list import makes them (no webhook)."""
    per = {s: n_mk // len(mk_statuses) for s in mk_statuses}
    per[mk_statuses[0]] += n_mk - sum(per.values())
    w.mk.ctl("POST", "seed", {"generate": {"programId": pid, "count": n_mk, "statuses": per,
                                           "emailPattern": "mk{n}@example.com"}})
    if n_sf:
        w.sf.ctl("POST", "seed", {"generate": {"campaignId": cid, "count": n_sf, "kind": "lead",
                                               "statuses": {"Registered": n_sf},
                                               "emailPattern": "sf{n}@example.com"}})


def members_calls(w, since):
    return [c for c in w.mk_calls(since)
            if re.fullmatch(r"/rest/v1/programs/\d+/members\.json", c["path"])
            and c["method"] == "GET"]


def member_queries(w, since):
    return [c["query"] for c in w.sf_calls(since)
            if "FROM CampaignMember WHERE CampaignId" in json.dumps(c.get("query"))]


def test_a_job_whose_process_dies_is_taken_over_from_its_cursor(world):
    """SIGKILL of the worker running a backfill, once in the Marketo listing and once in the
    Salesforce listing: another worker takes the job over once its lock expires
    (CLAIM_IDLE_MS) and goes on from the cursor: its first Marketo members call is not the
    first page of the first status, its first Salesforce query starts after a CampaignMember
    Id. The backfill ends with every member merged."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_large(w, pid, cid, 1800, 1200)
    w.sf.ctl("POST", "config", {"queryBatchSize": 200})
    # Slow pages, so that a kill lands in the middle of a listing.
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "delay", "path": r"members\.json$",
                                           "method": "GET", "delay_ms": 300, "count": 0}]})
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "delay", "path": r"/query", "delay_ms": 300,
                                           "count": None}]})
    w.start(workers=1, threads=2)
    first_status = "Invited"
    jid = link(w, pid, cid)

    wait_job(w, jid, state="running", phase="listing_marketo")
    cs.wait_until(lambda: job(w, jid)["counts"]["listed"]["marketo"] >= 600, T,
                  what="two pages of the program's members listed")
    w.worker.stop(signal.SIGKILL)
    mk_since = w.mk_seq()
    w.restart(w.worker)
    cs.wait_until(lambda: members_calls(w, mk_since), T, what="the listing to go on")
    resumed = members_calls(w, mk_since)[0]
    assert not (first_status in resumed["query"].get("filterValues", "") and
                "nextPageToken" not in resumed["query"]), resumed

    cs.wait_until(lambda: job(w, jid)["counts"]["listed"]["salesforce"] >= 400, T,
                  what="two pages of the campaign's members listed")
    assert job(w, jid)["phase"] == "listing_salesforce"
    w.worker.stop(signal.SIGKILL)
    sf_since = w.sf_seq()
    w.restart(w.worker)
    cs.wait_until(lambda: member_queries(w, sf_since), T, what="the listing to go on")
    q = json.dumps(member_queries(w, sf_since)[0])
    assert re.search(r"AND Id > '[0-9A-Za-z]{15,18}' ORDER BY Id", q), q

    w.mk.ctl("DELETE", "faults")
    w.sf.ctl("POST", "faults", {"rules": []})
    j = wait_job(w, jid, timeout=180)
    assert j["takeovers"] == 2, j
    c = j["counts"]
    # A page recorded twice at most per takeover (the page in progress when the process died).
    assert 1800 <= c["listed"]["marketo"] <= 1800 + 2 * 300, j
    assert 1200 <= c["listed"]["salesforce"] <= 1200 + 2 * 200, j
    assert c["differences"]["missing_in_marketo"] >= 1200 and c["queued"] == 3000, j
    w.wait_settled(timeout=120)
    assert len(w.sf_members(cid)) == 3000
    assert len(w.mk_members(pid)) == 3000
    # Nothing of the job is kept but the job and its details.
    assert w.redis.cmd("EXISTS", f"cs:job:{jid}:mk", f"cs:job:{jid}:mkl",
                       f"cs:lock:job:{pid}") == 0


def test_cancel_a_running_job(world):
    """DELETE of a running job answers 202 with cancelRequested; the process stops it at its
    next page: cancelled, its kept members gone, the mapping free for a new job."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_large(w, pid, cid, 900, 0)
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "delay", "path": r"members\.json$",
                                           "method": "GET", "delay_ms": 500, "count": 0}]})
    w.start(workers=1)
    jid = link(w, pid, cid)
    cs.wait_until(lambda: job(w, jid)["counts"]["listed"]["marketo"] >= 300, T,
                  what="a page listed")
    r = w.admin("DELETE", f"/v1/jobs/{jid}", expect=202)
    assert (r.json()["state"], r.json()["cancelRequested"]) == ("running", True), r.json()
    j = wait_job(w, jid, state="cancelled")
    assert j["counts"]["listed"]["marketo"] < 900 and j["phase"] == "finished", j
    assert w.redis.cmd("EXISTS", f"cs:job:{jid}:mk", f"cs:job:{jid}:mkl") == 0
    w.mk.ctl("DELETE", "faults")
    again = w.admin("POST", f"/v1/mappings/{pid}/reconcile", expect=202).json()["id"]
    assert wait_job(w, again)["counts"]["listed"]["marketo"] == 900


def test_one_job_per_mapping_across_two_processes(world):
    """Two ingest processes asked at once for a reconciliation of one mapping: one job, the
    other answer names it. Two workers: each job runs in one process only, and two mappings'
    jobs run side by side."""
    w = world
    cid, pid = w.campaign(), w.program()
    cid2, pid2 = w.campaign("Two"), w.program("Two")
    seed_large(w, pid, cid, 600, 0)
    w.mk.ctl("POST", "seed", {"generate": {"programId": pid2, "count": 600,
                                           "statuses": {"Registered": 1},
                                           "emailPattern": "two{n}@example.com"}})
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "delay", "path": r"members\.json$",
                                           "method": "GET", "delay_ms": 300, "count": 0}]})
    w.start(workers=0, BACKFILL_ON_LINK="false")
    other = w.services(w.redis.url, name="ingest2", **{**w.env,
                                                        "SPOOL_DIR": f"{w.workdir}/spool2"})
    w.put_mapping(pid, cid, expect=(201,), enabled=True)
    w.put_mapping(pid2, cid2, expect=(201,), enabled=True)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        rs = list(ex.map(lambda svc: w.admin("POST", f"/v1/mappings/{pid}/reconcile", svc=svc),
                         [w.ingest, other]))
    assert sorted(r.status for r in rs) == [202, 409], [r.body for r in rs]
    ids = {r.json()["id"] for r in rs}
    assert len(ids) == 1, rs
    jid = ids.pop()
    jid2 = w.admin("POST", f"/v1/mappings/{pid2}/reconcile", expect=202).json()["id"]
    w.add_worker(name="w1")
    w.add_worker(name="w2")
    # Both jobs running at once, each in one process.
    cs.wait_until(lambda: job(w, jid)["state"] == job(w, jid2)["state"] == "running" and
                  job(w, jid)["phase"] == job(w, jid2)["phase"] == "listing_marketo", T,
                  what="both jobs running")
    running = w.worker_metric_values("campaign_sync_jobs_running", kind="reconcile")
    assert sorted(running) == [1.0, 1.0], running
    w.mk.ctl("DELETE", "faults")
    wait_job(w, jid)
    wait_job(w, jid2)
    started = [s.logs() for s in w.workers]
    for i in (jid, jid2):
        assert sum(sum(1 for line in logs if line.get("msg") == "jobs: job started" and
                       line.get("job_id") == i) for logs in started) == 1, i
    assert w.worker_metric("campaign_sync_jobs_running", kind="reconcile") == 0
    assert w.worker_metric("campaign_sync_job_duration_seconds_count", kind="reconcile") == 2


# ------------------------------------------------------------------ live changes first

def test_live_changes_go_before_a_backfills_corrections(world):
    """While a backfill of 2,000 members is applied (1,000 toward each CRM), a live change in
    each direction is applied before the backfill's corrections of its direction are: live
    changes are read first, corrections only when no live change waits, and the corrections
    toward Marketo take at most BACKFILL_MARKETO_SHARE of the call budget. The bound: a live
    change waits for at most the correction batch in progress in its direction (200 toward
    Salesforce, one Marketo call's worth toward Marketo), so it is applied long before the
    corrections of its direction end (BENCHMARKS.md has the measured latency)."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_large(w, pid, cid, 1000, 1000)
    live_mk, live_sf = w.sf_people(2, "live")  # Marketo leads and Salesforce Leads, linked later
    # Corrections toward Salesforce made slower (each Collections call 400 ms) so that they
    # are still being applied when the live changes arrive.
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "delay", "path": r"/composite/sobjects",
                                           "delay_ms": 400, "count": None}]})
    w.start(workers=1, threads=2, hooks=True, calls=50, concurrent=5)
    jid = link(w, pid, cid)
    wait_job(w, jid, state="running", phase="applying")
    j0 = job(w, jid)["counts"]
    assert j0["queued"] == 2000 and j0["applied"] < 2000, j0

    w.mk_human(pid, live_mk, "Registered")        # toward Salesforce
    w.sf_human(cid, live_sf, "Attended")          # toward Marketo
    w.wait_status(cid, live_mk.email, "Registered")
    w.wait_mk(pid, live_sf.lead, "Attended")
    j1 = job(w, jid)
    c = j1["counts"]
    assert j1["state"] == "running" and c["applied"] + c["skipped"] < 2000, j1
    wait_job(w, jid, timeout=180)
    w.wait_settled(timeout=60)

    # In the audit log (newest first): corrections of each direction applied after the live
    # change of that direction.
    items, cursor = [], None
    while True:  # the whole audit log of the program, newest first
        page = w.audit(f"?programId={pid}&limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    for target, email in (("salesforce", live_mk.email), ("marketo", live_sf.email)):
        mine = [i for i, e in enumerate(items) if e["target"] == target and
                e["email"].lower() == email]
        assert mine, (target, email)
        later = [e for e in items[:mine[-1]] if e["target"] == target and
                 e["eventId"].startswith("rec:")]
        assert later, f"no correction toward {target} after the live change"
    # The corrections' Marketo calls stayed within their share of 50 calls a window: 25.
    stats = w.mk_stats()
    assert stats.get("rejected606", 0) == 0 and stats.get("rejected615", 0) == 0, stats


def test_a_job_waiting_for_its_marketo_share_holds_up_no_live_change(world):
    """Jobs' corrections have threads of their own (one per direction, beside WORKERS): a
    correction batch toward Marketo that waits for the jobs' share of the budget (here 6 of 40
    calls a window, one every 3.5 s) holds up no live change, even with a single live thread
    (WORKERS=1). A live change toward Salesforce posted just after one of the job's Marketo
    calls is applied before the job's next call; when a job held the only thread, it waited
    for the job's permits (up to 15 s each)."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_large(w, pid, cid, 3, 290)  # 290 corrections toward Marketo: lookups, creates, statuses
    live = w.sf_people(2, "live")
    w.start(workers=1, threads=1, hooks=True, calls=40, concurrent=3,
            BACKFILL_MARKETO_SHARE="0.15")
    since = w.mk_seq()

    def job_calls():
        """The job's lead-database calls: those not about the live people."""
        def about_live(c):
            text = json.dumps([c.get("query"), c.get("body")])
            return "live" in text or any(re.search(rf"\b{p.lead}\b", text) for p in live)
        return sorted(c["t_start"] for c in w.mk_calls(since)
                      if c["path"].startswith("/rest/v1/") and not about_live(c))

    jid = link(w, pid, cid)
    wait_job(w, jid, state="running", phase="applying")
    for person, status in zip(live, ("Registered", "Attended")):
        n = len(job_calls())
        cs.wait_until(lambda: len(job_calls()) > n, 60, interval=0.05, what="a job call")
        posted = time.time()
        w.mk_human(pid, person, status)
        w.wait_status(cid, person.email, status)
        applied = time.time()
        between = [t for t in job_calls() if posted < t < applied]
        assert not between, (status, round(applied - posted, 2), between)
    assert job(w, jid)["state"] == "running"  # (its merge is test_backfill_merges_both_ways')
    sf = w.sf_members(cid)
    assert [sf.get(p.email) for p in live] == ["Registered", "Attended"], sf
    no_dead_letters(w)


def test_corrections_take_at_most_their_share_of_the_marketo_budget(world):
    """A backfill toward Marketo alone, BACKFILL_MARKETO_SHARE=0.25 of 40 calls: in any 20 s
    window, the job's lead-database calls (its listing's and its corrections') are at most 10
    (the asset calls of the mapping's status check and program copy are live ones: left out),
    and the job waited for the share rather than spend more."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_large(w, pid, cid, 3, 400)
    w.start(workers=1, threads=2, calls=40, concurrent=3, BACKFILL_MARKETO_SHARE="0.25")
    since = w.mk_seq()
    jid = link(w, pid, cid)
    wait_job(w, jid, timeout=180)
    calls = [c for c in w.mk_calls(since) if c["path"].startswith("/rest/v1/")]
    times = sorted(c["t_start"] for c in calls)
    assert len(times) > 10, calls
    for i, t in enumerate(times):
        in_window = [x for x in times[i:] if x - t < 20.0]
        assert len(in_window) <= 10, (len(in_window), t)
    assert times[-1] - times[0] > 20.0  # it had to wait for the share
    assert len(w.mk_members(pid)) == 403


def test_corrections_waiting_are_counted_apart_from_the_live_queues(world):
    """A backfill's corrections show in campaign_sync_corrections_waiting{queue}, by the CRM
    they are to be written to, and not in campaign_sync_queue_depth: a person paged when the
    live queue grows is not paged for a backfill; both are 0 once the job is done."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_large(w, pid, cid, 400, 0)  # 400 corrections toward Salesforce
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "delay", "path": r"/composite/sobjects",
                                           "delay_ms": 1000, "count": None}]})
    w.start(workers=1, threads=2)
    jid = link(w, pid, cid)
    wait_job(w, jid, state="running", phase="applying")
    waiting = w.process_metric("campaign_sync_corrections_waiting", queue="salesforce")
    assert waiting and 0 < waiting <= 400, waiting
    assert w.process_metric("campaign_sync_corrections_waiting", queue="marketo") == 0
    assert w.process_metric("campaign_sync_queue_depth", queue="salesforce") == 0
    assert w.process_metric("campaign_sync_queue_depth") == 0
    w.sf.ctl("POST", "faults", {"rules": []})
    wait_job(w, jid, timeout=120)
    cs.wait_until(lambda: w.process_metric("campaign_sync_corrections_waiting",
                                           queue="salesforce") == 0, T, what="no correction left")
    assert len(w.sf_members(cid)) == 400


@pytest.mark.paced
def test_a_live_stream_toward_marketo_takes_the_window_back_from_a_job(world):
    """While live changes toward Marketo arrive at the pace's light rate (50/s) or more, their
    reads are paced on the window's calls, and a job's share would halve that pace (each change
    waiting twice as long): the jobs give their share up to one call a window
    (PACE_BUSY_SHARE_CALLS) while the stream lasts, and the live pace counts on all the other
    calls at once, the job's earlier calls leaving the window as the live ones come. Program
    A's backfill (3,000 people Marketo lacks) has spent its share (20 of 40 calls) when a
    stream of 70 changes/s toward program B starts: in the stream's first 18 s the live status
    calls come a full-window pace apart (more than 24 of them: the job's share would allow
    ~15), the job makes at most one call in any 20 s, and both end merged."""
    w = world
    cid_a, pid_a = w.campaign(), w.program()
    seed_large(w, pid_a, cid_a, 3, 3000)
    cid_b, pid_b = w.campaign("Live"), w.program("Live Nov")
    people = w.sf_people(1200, "live", kind="contact")
    members = w.seed_members(cid_b, people, "Invited")
    w.start(workers=1, threads=2, calls=40, concurrent=3, outbound=False)
    w.put_mapping(pid_b, cid_b, enabled=True)  # waits for B's backfill: the people linked
    assert len(w.mk_members(pid_b)) == 1200
    b_leads = {p.lead for p in people}

    def live(c):
        """A call for program B's people: its path, their emails, their lead ids, or their
        Contact ids (A's people are Leads)."""
        body = c.get("body") if isinstance(c.get("body"), dict) else {}
        ids = {i.get("leadId", i.get("id")) for i in body.get("input", []) if isinstance(i, dict)}
        text = json.dumps([c.get("query"), body])
        return (f"/programs/{pid_b}/" in c["path"] or "live" in text or "sfdcContactId" in text
                or bool(ids and ids <= b_leads))

    def job_calls(since):
        return [c["t_start"] for c in w.mk_calls(since)
                if c["path"].startswith(("/rest/v1/", "/bulk/v1/")) and not live(c)]

    since = w.mk_seq()
    jid = link(w, pid_a, cid_a)
    cs.wait_until(lambda: len(job_calls(since)) >= 15, 90, interval=0.2,
                  what="the job spending its share")
    changes = [cs.changed(m, s) for s in ("Registered", "Attended") for m in members]
    t0 = time.time()
    for k in range(0, len(changes), 14):  # 14 every 0.2 s: 70 changes/s for 34 s
        time.sleep(max(0.0, t0 + k / 70.0 - time.time()))
        w.post_om(changes[k:k + 14])
    t1 = time.time()

    during = [t for t in job_calls(since) if t0 + 3 <= t <= t1]
    for i, t in enumerate(sorted(during)):
        assert len([x for x in sorted(during)[i:] if x - t < 20.0]) <= 1, during
    paced = [c["t_start"] for c in w.status_calls(since, program=pid_b)
             if t0 + 2 <= c["t_start"] <= t0 + 20]
    assert len(paced) > 24, [round(t - t0, 2) for t in paced]
    wait_job(w, jid, timeout=240)
    w.wait_settled()
    assert len(w.mk_members(pid_a)) == 3003
    assert w.mk_members(pid_b) == {p.lead: "Attended" for p in people}
    stats = w.mk_stats()
    assert stats.get("rejected606", 0) == 0 and stats.get("rejected615", 0) == 0, stats
    no_dead_letters(w)
