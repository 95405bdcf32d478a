"""Marketo -> Salesforce, end to end: real Redis, both CRM simulators, and the real binary as
one `ingest` process and two `worker` processes (SPEC sections 1, 5, 7, 8; issue 4).

Webhooks are rendered from SPEC section 7's recommended template exactly as Marketo renders
its tokens (strings quoted, ids as numbers, an empty token as null), plus "status" where a
test needs a hard-coded status. Outcomes are read where a user would see them: the records in
the Salesforce simulator, the calls it received, the admin API and /metrics."""
import json
import signal
import threading
import time

import pytest

import cs
from cs import WEBINAR, at, hook, is_lead_create, no_dead_letters

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)


# ------------------------------------------------------------------ 1. add, change, remove

def test_unreadable_queued_entry_is_dead_lettered_and_its_read_applied(world):
    w = world
    cid, pid = w.campaign(), w.program()
    ann = w.mk_person("ann", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    # Something other than our ingest wrote to the queue: it must not hold up the changes
    # read with it.
    w.redis.cmd("XADD", cs.STREAM_MKTO, "*", "event", "{not json", "attempts", "0")
    assert w.send(hook(ann, at(0), pid, "Registered")) == {"accepted": 1, "duplicates": 0}
    w.wait_status(cid, ann.email, "Registered")
    dead = cs.wait_until(w.dead_letters, T, what="the unreadable entry dead-lettered")
    assert len(dead) == 1 and dead[0]["error"].startswith("unreadable queued event: "), dead


def test_dead_letters_of_the_two_queues_with_one_entry_id_are_both_kept(world):
    w = world
    w.start()
    # The two queue streams make entry ids the same way, so one id can exist in both. A dead
    # letter from the other queue already holds it:
    sec, _ = w.redis.cmd("TIME")
    entry_id = f"{int(sec) * 1000 + 60_000}-0"
    raw = '{"not":"an event"}'
    w.redis.cmd("XADD", cs.STREAM_SF, entry_id, "event", raw, "attempts", "0")
    first = cs.wait_until(w.dead_letters, T, what="the first dead letter")
    assert [d["id"] for d in first] == [entry_id]
    w.redis.cmd("XADD", cs.STREAM_MKTO, entry_id, "event", raw, "attempts", "0")
    both = cs.wait_until(lambda: len(w.dead_letters()) == 2 and w.dead_letters(), T,
                         what="the second dead letter")
    ms = entry_id.split("-")[0]
    assert sorted(d["id"] for d in both) == [entry_id, f"{ms}-1"], both
    assert w.redis.cmd("HGET", f"cs:dead:{entry_id}", "q") == "0"  # from Salesforce's queue
    assert w.redis.cmd("HGET", f"cs:dead:{ms}-1", "q") == "1"      # from Marketo's
    # Each replays into the queue it came from (and is dead-lettered from there again).
    for d in both:
        assert w.admin("POST", f"/v1/deadletters/{d['id']}/replay").status == 202
    again = cs.wait_until(lambda: (lambda d: len(d) == 2 and d)(w.dead_letters()), T,
                          what="both dead-lettered again")
    assert entry_id not in [d["id"] for d in again]
    assert sorted(w.redis.cmd("HGET", f"cs:dead:{d['id']}", "q") for d in again) == ["0", "1"]


def test_add_change_remove_and_metrics(world):
    w = world
    cid, pid = w.campaign(), w.program()
    # ann exists in Salesforce as a Contact and as a Lead with the same email: the Contact wins.
    ann = w.mk_person("ann", sf="contact")
    ann_lead = w.sf.ctl("POST", "seed", {"leads": [{"LastName": "Lee", "Company": "Acme Corp",
                                                    "Email": ann.email}]})["leads"][0]["Id"]
    bob = w.mk_person("bob", sf="lead", first="Bob", last="Ray")
    w.start()
    w.map(pid, cid, enabled=True)
    applied0 = w.worker_metric("campaign_sync_events_applied_total", target="salesforce")
    latency0 = w.worker_metric("campaign_sync_apply_latency_seconds_count", target="salesforce")

    assert w.send(hook(ann, at(0), pid, "Registered")) == {"accepted": 1, "duplicates": 0}
    w.wait_status(cid, ann.email, "Registered")
    m = w.member(cid, ann.email)
    assert m["ContactId"] == ann.sf_id and m["LeadId"] is None, m
    assert m["LastModifiedById"] == "005000000000001AAA", "written by the integration user"
    assert not any(x["LeadId"] == ann_lead for x in w.members(cid))

    # Status change: the same member, updated.
    w.send(hook(ann, at(10), pid, "Attended"))
    w.wait_status(cid, ann.email, "Attended")
    assert w.member(cid, ann.email)["Id"] == m["Id"]

    # An existing Lead (no Contact) is found by email and added.
    w.send(hook(bob, at(0), pid, "Registered"))
    w.wait_status(cid, bob.email, "Registered")
    assert w.member(cid, bob.email)["LeadId"] == bob.sf_id
    assert len(w.sf_leads(bob.email)) == 1, "no second Lead for a known email"

    # Removal: "Not in Program" and member_removed.
    w.send(hook(ann, at(20), pid, "Not in Program"))
    w.wait_gone(cid, ann.email)
    w.send(hook(bob, at(20), pid, type="member_removed"))
    w.wait_gone(cid, bob.email)
    assert w.members(cid) == []
    assert any(c["method"] == "DELETE" for c in w.cm_writes()), "removals use sObject Collections"
    no_dead_letters(w)

    # 12. metrics of this path.
    cs.wait_until(lambda: w.worker_metric("campaign_sync_events_applied_total", target="salesforce")
                  >= applied0 + 5, 10, what="events_applied_total{target=salesforce} to count 5")
    assert w.worker_metric("campaign_sync_apply_latency_seconds_count", target="salesforce") >= latency0 + 5
    assert w.worker_metric("campaign_sync_apply_latency_seconds_count", target="marketo") == 0
    # A gauge per process, from the last Sforce-Limit-Info header that process saw.
    used = w.worker_metric_values("campaign_sync_salesforce_api_usage", kind="used")
    assert max(v or 0 for v in used) > 0, used
    limit = w.worker_metric_values("campaign_sync_salesforce_api_usage", kind="limit")
    assert 15000 in limit, limit


# ------------------------------------------------------------------ 2. reads from Marketo

def test_status_and_email_read_from_marketo(world):
    w = world
    cid, pid = w.campaign(), w.program()
    carl = w.mk_person("carl", sf="contact", first="Carl")
    dana = w.mk_person("dana", sf="contact", first="Dana")
    erin = w.mk_person("erin", first="Erin", last="Fox", company="Fox Ltd")  # not in Salesforce
    w.mk.ctl("POST", "seed", {"members": [{"programId": pid, "leadId": carl.lead,
                                           "statusName": "Attended"}]})
    w.start()
    w.map(pid, cid, enabled=True)

    # No "status" (the recommended set-up): the worker asks Marketo for the member's status.
    w.send(hook(carl, at(0), pid))
    w.wait_status(cid, carl.email, "Attended")
    reads = [c for c in w.mk.calls() if c["path"] == f"/rest/v1/programs/{pid}/members.json"]
    assert reads and reads[0]["method"] == "GET", w.mk.calls()
    assert reads[0]["query"].get("filterType") == "leadId"
    assert str(carl.lead) in reads[0]["query"].get("filterValues", "").split(",")

    # No "email" (left out of the template), and an empty email token (null): the worker
    # reads the lead from Marketo by id.
    w.send(hook(dana, at(0), pid, "Registered", omit=("email",)))
    w.send(hook(erin, at(0), pid, "Registered", email=None, firstName=None, lastName=None,
                company=None))
    w.wait_status(cid, dana.email, "Registered")
    assert w.member(cid, dana.email)["ContactId"] == dana.sf_id
    w.wait_status(cid, erin.email, "Registered")
    leads = w.sf_leads(erin.email)
    assert len(leads) == 1, leads
    assert (leads[0]["FirstName"], leads[0]["LastName"], leads[0]["Company"]) == \
        ("Erin", "Fox", "Fox Ltd"), "names and company come from Marketo's lead"
    assert w.member(cid, erin.email)["LeadId"] == leads[0]["Id"]
    by_id = [c for c in w.mk.calls() if c["path"] == "/rest/v1/leads.json"
             and c["query"].get("filterType") == "id"]
    assert by_id, "the lead was read by id"
    no_dead_letters(w)


# ------------------------------------------------------------------ 3. Lead creation

def test_unknown_email_creates_a_lead_with_placeholders(world):
    w = world
    cid, pid = w.campaign(), w.program()
    # Marketo knows only the email; the template renders the empty name tokens as null.
    nina = w.mk_person("nina", marketo_names=False, first="Nina", last=None, company=None)
    w.start()
    w.map(pid, cid, enabled=True)
    w.send(hook(nina, at(0), pid, "Registered"))
    w.wait_status(cid, nina.email, "Registered")
    leads = w.sf_leads(nina.email)
    assert len(leads) == 1, leads
    lead = leads[0]
    assert lead["FirstName"] == "Nina"
    assert lead["LastName"] and lead["LastName"].strip(), "LastName placeholder (required)"
    assert lead["Company"] and lead["Company"].strip(), "Company placeholder (required)"
    assert w.member(cid, nina.email)["LeadId"] == lead["Id"]
    no_dead_letters(w)


def test_same_new_email_from_two_workers_creates_one_lead(world):
    w = world
    c1, c2 = w.campaign("Webinar A"), w.campaign("Webinar B")
    p1, p2 = w.program("Webinar A"), w.program("Webinar B")
    twin = w.mk_person("twin", first="Tom", last="Win")
    # Slow answers keep the first worker busy while the second event reaches the other one.
    w.sf.ctl("POST", "config", {"latencyMs": 250})
    w.start()
    w.map(p1, c1, enabled=True)
    w.map(p2, c2, enabled=True)
    bodies = [hook(twin, at(0), p1, "Registered"), hook(twin, at(0), p2, "Attended")]
    threads = [threading.Thread(target=w.send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.wait_status(c1, twin.email, "Registered")
    w.wait_status(c2, twin.email, "Attended")
    leads = w.sf_leads(twin.email)
    assert len(leads) == 1, f"one Lead for one email, got {leads}"
    assert w.member(c1, twin.email)["LeadId"] == leads[0]["Id"]
    assert w.member(c2, twin.email)["LeadId"] == leads[0]["Id"]
    created = [r for c in w.sf_calls() if is_lead_create(c) and c["status"] == 200
               for r in c["body"]["records"] if r.get("Email", "").lower() == twin.email]
    assert len(created) == 1, created
    no_dead_letters(w)


# ------------------------------------------------------------------ 4. F7 flow actions

def test_flow_actions_on_an_unmapped_campaign(world):
    w = world
    cid = w.campaign("Newsletter", statuses=["Sent", "Responded"], default="Sent")
    pid = w.program()  # the program the smart campaign lives in; not mapped to anything
    a, b = w.mk_people(2, "flow", sf="contact")
    w.start()
    w.send(hook(a, at(0), pid, "Responded", type="add_to_campaign", campaign=cid))
    # add_to_campaign without a status: the campaign's default member status.
    w.send(hook(b, at(0), pid, type="add_to_campaign", campaign=cid))
    w.wait_status(cid, a.email, "Responded")
    w.wait_status(cid, b.email, "Sent")
    assert w.member(cid, a.email)["ContactId"] == a.sf_id
    w.send(hook(b, at(10), pid, "Responded", type="change_campaign_status", campaign=cid))
    w.wait_status(cid, b.email, "Responded")
    w.send(hook(a, at(10), pid, type="remove_from_campaign", campaign=cid))
    w.wait_gone(cid, a.email)
    assert [m["Email"] for m in w.members(cid)] == [b.email]
    # Nothing was written to Marketo: the campaign is not mapped to any program.
    assert not [c for c in w.mk.calls() if c["method"] == "POST" and "/programs/" in c["path"]]
    no_dead_letters(w)


# ------------------------------------------------------------------ 5. unmapped program

def test_unmapped_program_writes_nothing_and_is_counted(world):
    w = world
    cid, mapped, unmapped = w.campaign(), w.program("Mapped"), w.program("Unmapped")
    p = w.mk_person("u", sf="contact")
    w.start()
    w.map(mapped, cid, enabled=True)
    dropped0 = w.worker_metric("campaign_sync_events_dropped_total", reason="unmapped")
    w.send(hook(p, at(0), unmapped, "Registered"))
    cs.wait_until(lambda: w.worker_metric("campaign_sync_events_dropped_total", reason="unmapped")
                  >= dropped0 + 1, T, what="dropped{reason=unmapped}")
    cs.wait_until(w.nothing_pending, T, what="the event to be acknowledged")
    assert w.members(cid) == []
    assert w.cm_writes() == [] and not [c for c in w.sf_calls() if is_lead_create(c)]
    no_dead_letters(w)


# ------------------------------------------------------------------ 6. incompatible status

def dead_letter_for(w, p, timeout=T):
    """The dead letter of person p's event (its shape is the service's; the email is in it)."""
    return cs.wait_until(lambda: [d for d in w.dead_letters() if p.email in json.dumps(d["event"])],
                         timeout, what=f"a dead letter for {p.email}")[0]


def assert_names_program_campaign_status(err, pid, cid, status):
    assert str(pid) in err, f"program {pid} not named: {err}"
    assert cid[:15] in err, f"campaign {cid} not named: {err}"
    assert status in err, f"status {status!r} not named: {err}"


def test_incompatible_status_dead_letter_fixed_by_status_map_then_replayed(world):
    w = world
    # The campaign lacks Marketo's "No Show" and calls it "Did Not Attend" instead.
    cid = w.campaign(statuses=["Invited", "Registered", "Attended", "Attended On-demand",
                               "Did Not Attend"])
    pid = w.program()
    p = w.mk_person("ns", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True, force=True)
    w.send(hook(p, at(0), pid, "No Show"))
    d = dead_letter_for(w, p)
    assert_names_program_campaign_status(d["error"], pid, cid, "No Show")
    assert set(d) >= {"id", "at", "attempts", "error", "event"}
    assert w.member(cid, p.email) is None, "a status is never guessed"
    assert w.worker_metric("campaign_sync_dead_letters_total") >= 1

    w.map(pid, cid, enabled=True, statusMap={"No Show": "Did Not Attend"}, force=True)
    r = w.admin("POST", f"/v1/deadletters/{d['id']}/replay", expect=202)
    assert r.json()
    w.wait_status(cid, p.email, "Did Not Attend")
    assert not [x for x in w.dead_letters() if x["id"] == d["id"]], "replayed: off the list"


def test_incompatible_status_fixed_in_salesforce_then_replayed(world):
    w = world
    cid = w.campaign(statuses=["Invited", "Registered", "Attended", "Attended On-demand"])
    pid = w.program()
    p = w.mk_person("ns2", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True, force=True)
    w.send(hook(p, at(0), pid, "No Show"))
    d = dead_letter_for(w, p)
    assert_names_program_campaign_status(d["error"], pid, cid, "No Show")
    # The admin adds the missing status to the campaign in Salesforce, then replays.
    w.sf.ctl("POST", "statuses", {"CampaignId": cid, "Label": "No Show", "HasResponded": False})
    w.admin("POST", f"/v1/deadletters/{d['id']}/replay", expect=202)
    w.wait_status(cid, p.email, "No Show")
    assert not [x for x in w.dead_letters() if x["id"] == d["id"]]


# ------------------------------------------------------------------ 7. duplicates, reordering

def test_duplicate_and_out_of_order_webhooks(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p, q, r = w.mk_people(3, "dup", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)

    # The same body twice: one event, one write.
    body = hook(p, at(0), pid, "Registered")
    assert w.send(body) == {"accepted": 1, "duplicates": 0}
    assert w.send(body) == {"accepted": 0, "duplicates": 1}
    w.wait_status(cid, p.email, "Registered")
    # The same change again under another eventId gets past de-duplication at the door; the
    # worker finds it already applied.
    dup0 = w.worker_metric("campaign_sync_events_dropped_total", reason="duplicate")
    w.send(hook(p, at(0), pid, "Registered", eventId="replayed-by-hand-1"))
    cs.wait_until(lambda: w.worker_metric("campaign_sync_events_dropped_total", reason="duplicate")
                  > dup0, T, what="dropped{reason=duplicate}")
    assert len(w.cm_writes()) == 1, w.cm_writes()

    # Out of order: the newer change arrives first; the older one, arriving later, is stale.
    w.send(hook(q, at(20), pid, "Attended"))
    w.wait_status(cid, q.email, "Attended")
    seq = w.sf_seq()
    stale0 = w.worker_metric("campaign_sync_events_dropped_total", reason="stale")
    w.send(hook(q, at(10), pid, "Registered"))
    cs.wait_until(lambda: w.worker_metric("campaign_sync_events_dropped_total", reason="stale")
                  > stale0, T, what="dropped{reason=stale}")
    assert w.status_of(cid, q.email) == "Attended"
    assert w.cm_writes(seq) == []
    # An older removal is stale too: the newest state stays.
    w.send(hook(q, at(5), pid, "Not in Program"))
    cs.wait_until(lambda: w.worker_metric("campaign_sync_events_dropped_total", reason="stale")
                  > stale0 + 1, T, what="a second dropped{reason=stale}")
    assert w.status_of(cid, q.email) == "Attended" and w.cm_writes(seq) == []

    # Both in one webhook array, newer first: the same end state as in-order delivery.
    w.send(hook(r, at(30), pid, "Attended"), hook(r, at(25), pid, "Registered"))
    cs.wait_until(lambda: w.worker_metric("campaign_sync_events_dropped_total", reason="stale")
                  > stale0 + 2, T, what="a third dropped{reason=stale}")
    assert w.status_of(cid, r.email) == "Attended"
    no_dead_letters(w)


# ------------------------------------------------------------------ 8. sync switch

def test_sync_disabled_events_wait_then_apply(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p, q = w.mk_people(2, "sw", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)

    assert w.admin("PUT", "/v1/sync", {"enabled": False}, expect=200).json() == {"enabled": False}
    assert w.admin("GET", "/v1/sync", expect=200).json() == {"enabled": False}
    # Lets workers that were already waiting on the queue see the switch (whether they must
    # not need this is test_sync_disabled_takes_effect_at_once).
    time.sleep(0.7)
    w.send(hook(p, at(0), pid, "Registered"))
    time.sleep(1.0)  # showing that nothing happens
    assert w.member(cid, p.email) is None and w.cm_writes() == []
    w.admin("PUT", "/v1/sync", {"enabled": True}, expect=200)
    w.wait_status(cid, p.email, "Registered")

    # A disabled mapping parks its events; enabling it applies them.
    assert w.map(pid, cid, enabled=False)["enabled"] is False
    seq = w.sf_seq()
    w.send(hook(q, at(0), pid, "Attended"))
    w.send(hook(p, at(10), pid, "Attended"))
    time.sleep(1.0)
    assert w.member(cid, q.email) is None and w.status_of(cid, p.email) == "Registered"
    assert w.cm_writes(seq) == []
    w.map(pid, cid, enabled=True)
    w.wait_status(cid, q.email, "Attended")
    w.wait_status(cid, p.email, "Attended")
    no_dead_letters(w)


def test_sync_disabled_takes_effect_at_once(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.mk_person("now", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    assert w.admin("PUT", "/v1/sync", {"enabled": False}, expect=200).json() == {"enabled": False}
    w.send(hook(p, at(0), pid, "Registered"))
    time.sleep(1.0)  # showing that nothing happens
    assert w.member(cid, p.email) is None and w.cm_writes() == [], \
        "an event received after sync was disabled was applied"
    w.admin("PUT", "/v1/sync", {"enabled": True}, expect=200)
    w.wait_status(cid, p.email, "Registered")


# ------------------------------------------------------------------ 9. faults

def test_transient_salesforce_faults_are_retried(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.mk_person("flt", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    w.sf.ctl("POST", "faults", {"rules": [
        # the first member write: 503 (a spent API allowance, 403 REQUEST_LIMIT_EXCEEDED, is a
        # wait, not a retry: test_crm_edges.py)
        {"kind": "status", "status": 503, "method": "POST", "path": "/composite/sobjects$"},
        # the first query meets an expired session (401 INVALID_SESSION_ID)
        {"kind": "expire_tokens", "path": "/query"},
    ]})
    retries0 = w.worker_metric("campaign_sync_retries_total", target="salesforce")
    w.send(hook(p, at(0), pid, "Registered"))
    w.wait_status(cid, p.email, "Registered")
    assert [r["fired"] for r in w.sf.ctl("GET", "faults")["rules"]] == [1, 1]
    calls = w.sf_calls()
    statuses = [c["status"] for c in calls if c["path"].endswith("/composite/sobjects")]
    assert statuses[:2] == [503, 200], statuses
    assert 401 in [c["status"] for c in calls], "the expired session was met"
    assert sum(1 for c in calls if c["path"] == "/services/oauth2/token") >= 2, "token refreshed"
    assert w.worker_metric("campaign_sync_retries_total", target="salesforce") >= retries0 + 1
    assert len(w.members(cid)) == 1
    no_dead_letters(w)


def test_retry_after_is_honoured(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.mk_person("ra", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    w.sf.ctl("POST", "faults", {"rules": [
        {"kind": "status", "status": 503, "method": "POST", "path": "/composite/sobjects$",
         "headers": {"Retry-After": "2"}}]})
    t0 = time.monotonic()
    w.send(hook(p, at(0), pid, "Registered"))
    cs.wait_until(lambda: w.sf.ctl("GET", "faults")["rules"][0]["fired"] == 1, T,
                  what="the 503")
    t503 = time.monotonic()
    w.wait_status(cid, p.email, "Registered")
    assert time.monotonic() - t503 >= 1.5, "the retry waited for Retry-After: 2"
    assert time.monotonic() - t0 < T
    no_dead_letters(w)


def test_spent_marketo_budget_holds_only_marketo_bound_changes(world):
    """With the shared Marketo budget spent, changes toward Marketo wait in the queue (no call,
    no attempt spent) while changes toward Salesforce are applied at once; the Marketo-bound
    ones go out when the budget frees up."""
    w = world
    cid, pid = w.campaign(), w.program()
    ann = w.mk_person("spa", sf="contact")
    bobs = w.mk_people(2, "spb", sf="contact")
    w.start(workers=1)  # one thread: waiting for a permit would hold everything up
    w.map(pid, cid, enabled=True)
    w.sf.ctl("POST", "config", {
        "outboundUrl": f"http://127.0.0.1:{w.ingest.port}/webhooks/salesforce"})
    # The budget of every process (cs:mkto:calls, Redis's clock), spent for about 15 s more.
    sec, usec = w.redis.cmd("TIME")
    now = int(sec) * 1000 + int(usec) // 1000
    w.redis.cmd("ZADD", "cs:mkto:calls", *[x for i in range(50)
                                            for x in (str(now - 6000), f"test-spent-{i}")])
    mk_seq = w.mk.ctl("GET", "calls")["next"]
    # Two Salesforce changes (two Outbound Messages), then a Marketo one.
    for b in bobs:
        w.sf.ctl("POST", "members", {"CampaignId": cid, "ContactId": b.sf_id, "Status": "Registered"})
    cs.wait_until(lambda: (cs.metric_value(w.ingest.req("GET", "/metrics").body.decode(),
                                           "campaign_sync_events_received_total",
                                           source="salesforce", outcome="accepted") or 0) >= 2,
                  T, what="the two Outbound Messages")
    w.send(hook(ann, at(0), pid, "Registered"))
    w.wait_status(cid, ann.email, "Registered")
    # Toward Salesforce applied; toward Marketo nothing sent yet (the budget is still spent).
    rest = [c["path"] for c in w.mk.calls(mk_seq) if c["path"].startswith("/rest/")]
    assert rest == [], rest
    members = {m["leadId"] for m in w.mk.ctl("GET", f"members?programId={pid}")["members"]}
    assert not members & {b.lead for b in bobs}, members
    # Then the budget frees up and both go out, without a retry or a dead letter.
    for b in bobs:
        cs.wait_until(lambda: any(m["leadId"] == b.lead and m["statusName"] == "Registered"
                                  for m in w.mk.ctl("GET", f"members?programId={pid}")["members"]),
                      T, what=f"lead {b.lead} Registered in Marketo")
    assert w.worker_metric("campaign_sync_retries_total", target="marketo") == 0
    no_dead_letters(w)


@pytest.mark.parametrize("integration_user", ["005000000000001AAA", ""],
                         ids=["integration-user", "no-integration-user"])
def test_newer_salesforce_change_on_its_way_is_not_overwritten(world, integration_user):
    """A Marketo change waits in the queue (no worker running) while a user changes the same
    member in Salesforce, whose Outbound Message is still on its way when a worker takes the
    older Marketo change. Written, it would overwrite the newer change, and Salesforce would
    then send only the latest data (our write: an echo), so the user's change would be lost
    in both CRMs. The worker reads the member before writing, finds the newer change and
    drops the Marketo change as stale; the Outbound Message then brings the user's status to
    Marketo (newest wins on both sides). Without SF_INTEGRATION_USER_ID, a save after our
    last recorded write is someone else's."""
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.mk_person("newer", sf="contact")
    w.start(workers=1, SF_INTEGRATION_USER_ID=integration_user)
    w.map(pid, cid, enabled=True)
    w.mk.ctl("POST", "members", {"programId": pid, "leadId": p.lead, "statusName": "Invited"})
    w.send(hook(p, at(0), pid, "Invited"))
    w.wait_status(cid, p.email, "Invited")
    cs.wait_until(w.nothing_pending, T, what="the first change acknowledged")
    w.workers.pop().stop()

    # Marketo's change (at BASE + 60 s, minutes ago) waits; the user's change in Salesforce
    # (now) is held in Salesforce's Outbound Message queue.
    w.mk.ctl("POST", "members", {"programId": pid, "leadId": p.lead, "statusName": "Registered"})
    w.send(hook(p, at(60), pid, "Registered"))
    w.sf.ctl("POST", "config", {
        "outboundUrl": f"http://127.0.0.1:{w.ingest.port}/webhooks/salesforce",
        "outboundBatchMs": 600_000})
    w.sf.ctl("POST", "members", {"CampaignId": cid, "ContactId": p.sf_id, "Status": "Attended"})
    seq = w.sf_seq()
    worker = w.add_worker()
    cs.wait_until(lambda: cs.metric_value(worker.req("GET", "/metrics").body.decode(),
                                          "campaign_sync_events_dropped_total", reason="stale"),
                  T, what="dropped{reason=stale}")
    cs.wait_until(w.nothing_pending, T, what="the Marketo change acknowledged")
    assert w.status_of(cid, p.email) == "Attended"
    assert w.cm_writes(seq) == [], "nothing written over the newer change"

    # Salesforce delivers the user's change: Marketo follows it.
    w.sf.ctl("POST", "config", {"outboundBatchMs": 50})
    cs.wait_until(lambda: [m["statusName"] for m in
                           w.mk.ctl("GET", f"members?programId={pid}")["members"]
                           if m["leadId"] == p.lead] == ["Attended"],
                  T, what="Marketo to follow the user's change")
    assert w.status_of(cid, p.email) == "Attended"
    no_dead_letters(w)


def test_permanent_salesforce_error_is_dead_lettered_with_its_text(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.mk_person("perm", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    # A validation rule refuses the record: a per-record error in a 200 Collections answer.
    text = "Campaign members need a mailing country before they can register"
    w.sf.ctl("POST", "faults", {"rules": [
        {"kind": "status", "status": 200, "method": "POST", "path": "/composite/sobjects$",
         "count": None,
         "body": [{"success": False, "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                                 "message": text, "fields": []}]}]}]})
    w.send(hook(p, at(0), pid, "Registered"))
    d = dead_letter_for(w, p)
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in d["error"] and text in d["error"], d
    assert d["attempts"] == 1, "a permanent error is not retried"
    assert w.member(cid, p.email) is None
    assert len([c for c in w.sf_calls() if c["path"].endswith("/composite/sobjects")]) == 1


# ------------------------------------------------------------------ 10. worker killed

def test_sigterm_mid_call_keeps_the_answer_and_stopped_comes_last(world):
    """A worker stopped (SIGTERM) while its write is in flight waits for the answer, schedules
    the retry that answer asks for, and says "stopped" only then, as its last line: an operator
    reads "stopped" as "all done". Another worker applies the change later: nothing lost."""
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.mk_person("term", sf="contact")
    w.start(workers=1)
    w.map(pid, cid, enabled=True)
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "status", "status": 503, "method": "POST",
                                           "path": "/composite/sobjects$", "delay_ms": 1500}]})
    w.send(hook(p, at(0), pid, "Registered"))
    cs.wait_until(lambda: w.sf.ctl("GET", "faults")["rules"][0]["fired"] == 1, T,
                  what="the member write in flight")
    victim = w.workers.pop()
    assert victim.stop(signal.SIGTERM) == 0
    msgs = [l.get("msg") for l in victim.logs()]
    assert "worker: will retry" in msgs, "the 503 that came after SIGTERM was handled"
    assert msgs.count("stopped") == 1 and msgs[-1] == "stopped", msgs[-6:]
    assert w.status_of(cid, p.email) is None

    w.workers.append(w.services(w.redis.url, command="worker", name="w-after",
                                **cs.crm_env(w.sf, w.mk, WORKERS="1")))
    w.wait_status(cid, p.email, "Registered")
    writes = [c for c in w.cm_writes() if c["path"].endswith("/composite/sobjects")]
    assert [c["status"] for c in writes] == [503, 200], writes
    cs.wait_until(w.nothing_pending, T, what="the event acknowledged")
    no_dead_letters(w)


def test_worker_killed_mid_batch_other_worker_finishes(world):
    w = world
    cid, pid = w.campaign(), w.program()
    known = w.mk_people(10, "kc", sf="contact")
    new = w.mk_people(10, "kn")  # not in Salesforce: Leads are created
    w.sf.ctl("POST", "config", {"latencyMs": 300})  # keeps the batch in flight
    w.start(CLAIM_IDLE_MS="2000")
    w.map(pid, cid, enabled=True)
    everyone = known + new
    statuses = {p.email: WEBINAR[i % 4] for i, p in enumerate(everyone)}
    w.send(*[hook(p, at(0), pid, statuses[p.email]) for p in everyone])

    # Once a worker holds the events and has created the Leads (mid-batch), SIGKILL it.
    cs.wait_until(lambda: any(is_lead_create(c) for c in w.sf_calls()), T,
                  what="the batch's Lead creation")
    holders = [c[0] for c in w.redis.cmd("XPENDING", cs.STREAM_MKTO, "workers")[3] or []]
    victim = next(s for s in w.workers if any(f"-{s.proc.pid}-" in name for name in holders))
    victim.stop(sig=signal.SIGKILL)
    assert len(w.members(cid)) < len(everyone), "killed mid-batch"
    w.sf.ctl("POST", "config", {"latencyMs": 0})

    # The other worker claims them after CLAIM_IDLE_MS (2 s) and finishes them: nothing lost,
    # nothing doubled. No new worker is started.
    def all_done():
        return all(w.status_of(cid, p.email) == statuses[p.email] for p in everyone)
    try:
        cs.wait_until(all_done, 20, interval=0.2, what="every member applied")
    except AssertionError:
        raise AssertionError(f"{len(w.members(cid))} of {len(everyone)} members applied\n"
                             + w.stderr()) from None
    emails = sorted(m["Email"].lower() for m in w.members(cid))
    assert emails == sorted(p.email for p in everyone), "each person a member exactly once"
    for p in known:
        assert w.member(cid, p.email)["ContactId"] == p.sf_id
    leads = w.sf.ctl("GET", "state")["leads"]
    for p in new:
        mine = [l for l in leads if l["Email"] == p.email]
        assert len(mine) == 1, f"duplicate Leads for {p.email}: {mine}"
    cs.wait_until(w.nothing_pending, T, what="all events acknowledged")
    no_dead_letters(w)


# ------------------------------------------------------------------ 11. burst

def test_burst_of_1000_changes_in_at_most_10_member_writes(world):
    w = world
    cid, pid = w.campaign(), w.program()
    people = w.mk_people(1000, "burst", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    applied0 = w.worker_metric("campaign_sync_events_applied_total", target="salesforce")
    # Sent while the workers run, as one webhook array of 1000 events (a trigger campaign's
    # batch); the workers batch them as they come (SPEC section 8).
    w.send(*[hook(p, at(0), pid, "Registered") for p in people])
    cs.wait_until(lambda: len(w.members(cid)) >= 1000, 60, interval=0.25,
                  what="1000 members")
    ms = w.members(cid)
    assert len(ms) == 1000 and {m["Status"] for m in ms} == {"Registered"}
    assert sorted(m["ContactId"] for m in ms) == sorted(p.sf_id for p in people)
    writes = w.cm_writes()
    assert 5 <= len(writes) <= 10, f"{len(writes)} CampaignMember write calls"
    assert all(len(c["body"]["records"]) <= 200 for c in writes)
    assert not [c for c in w.sf_calls() if is_lead_create(c)]
    cs.wait_until(lambda: w.worker_metric("campaign_sync_events_applied_total", target="salesforce")
                  >= applied0 + 1000, 10, what="applied_total to count 1000")
    no_dead_letters(w)


def test_batches_toward_salesforce_spread_as_the_api_allowance_is_used(world):
    """With half of the org's API allowance used (Sforce-Limit-Info), batches toward
    Salesforce start 250 ms apart instead of 50 ms: changes arriving 40 ms apart after a first
    one are written together, in fewer calls of the allowance."""
    w = world
    cid, pid = w.campaign(), w.program()
    people = w.mk_people(6, "allowance", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    cs.wait_until(w.nothing_pending, T, what="the mapping's own work done")
    # Other integrations of the org have used 60 % of its allowance.
    limit = w.sf.ctl("GET", "config")["apiLimit"]
    used = w.sf.ctl("POST", "api_usage", {"used": limit * 6 // 10})["apiUsage"]
    # A first change, applied at once, shows the service the usage.
    w.send(hook(people[0], at(0), pid, "Registered"))
    w.wait_status(cid, people[0].email, "Registered")
    assert w.worker_metric_values("campaign_sync_salesforce_api_usage", kind="used")[0] >= used
    seq = w.sf_seq()
    for p in people[1:]:
        w.send(hook(p, at(1), pid, "Registered"))
        time.sleep(0.04)
    for p in people[1:]:
        w.wait_status(cid, p.email, "Registered")
    writes = w.cm_writes(seq)
    assert sum(len(c["body"]["records"]) for c in writes) == 5
    assert len(writes) <= 2, f"{len(writes)} CampaignMember write calls for 5 changes 40 ms apart"
    no_dead_letters(w)
