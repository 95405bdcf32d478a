"""People (issue 21): a person's trace (GET /v1/people), resync (POST /v1/people/resync),
matching people by the CRMs' ids before their email, CREATE_MISSING_PEOPLE and the Lead
placeholders. Real Redis, both CRM simulators, one `ingest` and two `worker` processes (the
set-up of test_m2s.py), and the outcomes a user sees: the admin API's answers, the records and
calls of both simulators, the keys in Redis and their expiry."""
import json
import time

import cs
from cs import at, hook, is_lead_create

T = 30
DAY = 86400


def outcomes(items):
    """(eventId as sent, outcome, reason) of each entry; a webhook's eventId is kept as e:<id>."""
    return [(i["eventId"].removeprefix("e:"), i["outcome"], i.get("reason")) for i in items]


# ------------------------------------------------------------------ the trace

def test_trace_through_retry_apply_and_stale_drop_newest_first(world):
    w = world
    cid, pid = w.campaign(), w.program()
    ann = w.mk_person("ann", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    # The first CampaignMember write meets a 503: the change is retried, then applied.
    w.sf.ctl("POST", "faults", {"rules": [
        {"kind": "status", "status": 503, "method": "POST", "path": "/composite/sobjects$"}]})
    w.send(hook(ann, at(10), pid, "Registered", eventId="ann-1"))
    w.wait_status(cid, ann.email, "Registered")
    # An older change arriving later is stale; a newer one applies.
    w.send(hook(ann, at(0), pid, "Invited", eventId="ann-0"))
    w.wait_trace_items(3, "the stale drop in the trace", email=ann.email)
    w.send(hook(ann, at(20), pid, "Attended", eventId="ann-2"))
    w.wait_status(cid, ann.email, "Attended")
    items = w.wait_trace_items(4, "four trace entries", email=ann.email)

    assert outcomes(items) == [("ann-2", "applied", None), ("ann-0", "dropped", "stale"),
                               ("ann-1", "applied", None), ("ann-1", "retry", None)], items
    member = w.member(cid, ann.email)
    newest, stale, applied, retry = items
    assert newest["appliedTo"] == ["salesforce"]
    assert newest["salesforce"] == {"status": "Attended", "campaignMemberId": member["Id"],
                                    "personId": ann.sf_id}
    assert (newest["source"], newest["type"], newest["status"]) == \
        ("marketo", "member_status_changed", "Attended")
    assert (newest["programId"], newest["campaignId"]) == (str(pid), cid)
    assert (newest["email"], newest["marketoLeadId"], newest["salesforceId"]) == \
        (ann.email, str(ann.lead), ann.sf_id)
    assert stale["status"] == "Invited" and "appliedTo" not in stale
    assert applied["salesforce"]["status"] == "Registered"
    assert retry["attempt"] == 1, retry
    assert retry["error"] == "create campaign member: SERVER_UNAVAILABLE: Service Unavailable"
    for i in items:
        assert i["receivedAt"] <= i["at"] and i["occurredAt"], i
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    body = w.trace(email=ann.email)
    assert body["person"] == {"email": ann.email, "marketoLeadIds": [str(ann.lead)],
                              "salesforceIds": [ann.sf_id]}
    assert body["retentionDays"] == 30 and body["next"] is None
    assert w.trace_items(email=ann.email, limit=2) == items[:2]


def test_trace_by_each_id_and_any_case(world):
    w = world
    cid, pid = w.campaign(), w.program()
    bea = w.mk_person("bea", sf="lead")
    w.start()
    w.map(pid, cid, enabled=True)
    w.send(hook(bea, at(0), pid, "Registered", eventId="bea-1"))
    w.wait_status(cid, bea.email, "Registered")
    items = w.wait_trace_items(1, "bea's entry", email=bea.email)
    assert outcomes(items) == [("bea-1", "applied", None)]
    assert w.trace_items(email=bea.email.upper()) == items
    assert w.trace_items(marketoLeadId=bea.lead) == items
    assert w.trace_items(salesforceId=bea.sf_id) == items          # 18 characters
    assert w.trace_items(salesforceId=bea.sf_id[:15]) == items     # 15 characters
    by_lead = w.trace(marketoLeadId=bea.lead)["person"]
    assert by_lead == {"email": bea.email, "marketoLeadIds": [str(bea.lead)],
                       "salesforceIds": [bea.sf_id]}
    # Someone the service never saw: an empty trace, not an error.
    assert w.trace(email="nobody@example.com")["items"] == []
    assert w.trace(marketoLeadId="999999")["person"] == {
        "email": None, "marketoLeadIds": ["999999"], "salesforceIds": []}
    # Bad requests name what is wrong.
    for q, word in [("", "exactly one"), ("email=a@x.com&marketoLeadId=1", "exactly one"),
                    ("marketoLeadId=12a", "marketoLeadId"), ("salesforceId=001000000000001", "salesforceId"),
                    ("salesforceId=00Q0000", "salesforceId"), ("email=", "email"),
                    ("email=a@x.com&limit=0", "limit")]:
        r = w.admin("GET", "/v1/people?" + q)
        assert r.status == 400 and word in r.json()["message"], (q, r.body)


def test_trace_drops_unmapped_and_echo_of_own_deletion(world):
    w = world
    cid, pid, other = w.campaign(), w.program(), w.program("Unmapped")
    cy = w.mk_person("cy", sf="contact")
    w.start(SF_DELETED_POLL_INTERVAL_S=1)
    w.map(pid, cid, enabled=True)
    w.send(hook(cy, at(0), other, "Registered", eventId="cy-unmapped"))
    w.send(hook(cy, at(0), pid, "Registered", eventId="cy-add"))
    w.wait_status(cid, cy.email, "Registered")
    cm = w.member(cid, cy.email)["Id"]
    w.send(hook(cy, at(10), pid, "Not in Program", eventId="cy-remove"))
    w.wait_gone(cid, cy.email)
    # The deleted-records poll reports our own deletion once its minute has ended: an echo.
    w.sf.ctl("POST", "age_deleted", {"seconds": 60})
    items = cs.wait_until(lambda: (lambda i: any(x.get("reason") == "echo" for x in i) and i)(
        w.trace_items(email=cy.email)), T, what="the own deletion's echo")
    echo = [i for i in items if i.get("reason") == "echo"][0]
    assert (echo["source"], echo["type"], echo["outcome"], echo["campaignId"]) == \
        ("salesforce", "campaign_member_deleted", "dropped", cid)
    assert echo["programId"] == str(pid)
    assert echo["eventId"].startswith(f"del:{cm}")
    assert echo["salesforceId"] == cy.sf_id and echo["marketoLeadId"] == str(cy.lead)
    assert items[0] == echo
    # The unmapped event and the first change may share a batch (one moment): compare as sets.
    assert outcomes(items)[1] == ("cy-remove", "applied", None)
    assert sorted(outcomes(items)[2:]) == [("cy-add", "applied", None),
                                           ("cy-unmapped", "dropped", "unmapped")], items
    removed = items[1]
    assert removed["salesforce"] == {"removed": True, "personId": cy.sf_id}


def test_trace_keys_expire_and_keep_a_bounded_count(world):
    w = world
    pid = w.program("Unmapped")
    dee = w.mk_person("dee")
    w.start(TRACE_RETENTION_DAYS=2, TRACE_MAX_PER_PERSON=10)
    # An entry older than the retention, left by an earlier run: neither shown nor kept.
    key = f"cs:trace:e:{dee.email}"
    old_ms = int(time.time() * 1000) - 3 * DAY * 1000
    w.redis.cmd("ZADD", key, old_ms, json.dumps({"eventId": "ancient", "outcome": "applied"}))
    for i in range(12):  # unmapped: each is dropped at once, one trace entry each
        w.send(hook(dee, at(i), pid, "Registered", eventId=f"dee-{i:02d}"))
    cs.wait_until(lambda: w.worker_metric("campaign_sync_events_dropped_total", reason="unmapped") >= 12,
                  T, what="the twelve events dropped as unmapped")
    items = w.trace_items(email=dee.email)
    assert len(items) == 10 and len({i["eventId"] for i in items}) == 10, outcomes(items)
    assert all(i["outcome"] == "dropped" and i["reason"] == "unmapped" for i in items)
    assert w.redis.cmd("ZCARD", key) == 10
    assert "ancient" not in w.redis.cmd("ZRANGE", key, 0, -1)[0]
    assert w.trace(email=dee.email)["retentionDays"] == 2
    # Every trace key expires within the retention (2 days), renewed by each write.
    keys = w.redis.cmd("KEYS", "cs:trace:*")
    assert key in keys and f"cs:trace:id:m:{dee.lead}" in keys, keys
    for k in keys:
        ttl = w.redis.cmd("TTL", k)
        assert 2 * DAY - 120 < ttl <= 2 * DAY, (k, ttl)


# ------------------------------------------------------------------ ids before email

def seed_lead(w, email, **fields):
    """One Marketo lead (fields: firstName, lastName, company, sfdcContactId, sfdcLeadId)."""
    return w.mk.ctl("POST", "seed", {"leads": [dict(email=email, **fields)]})["leads"][0]["id"]


def seed_sf(w, kind, email, last="Doe", company="Acme"):
    rec = {"LastName": last, "Email": email}
    if kind == "leads":
        rec["Company"] = company
    return w.sf.ctl("POST", "seed", {kind: [rec]})[kind][0]["Id"]


class Who:
    """A Marketo lead as the webhook template renders it."""

    def __init__(self, lead, email):
        self.lead, self.email = lead, email
        self.first, self.last, self.company = "Jane", "Doe", "Acme"


def human(w, campaign, sf_id, status):
    """A person in Salesforce adds a member (the simulator sends the Outbound Message)."""
    key = "ContactId" if sf_id.startswith("003") else "LeadId"
    return w.sf.ctl("POST", "members", {"CampaignId": campaign, key: sf_id, "Status": status})


def test_marketo_leads_sharing_an_email_land_on_their_own_salesforce_people(world):
    """Toward Salesforce: a lead's sfdcContactId / sfdcLeadId (Marketo's own sync) comes before
    its email. Two leads share shared@example.com; A is linked to a Contact whose email differs,
    B to nobody; D is linked to a Lead of another email."""
    w = world
    cid, pid = w.campaign(), w.program()
    contact = seed_sf(w, "contacts", "jane.doe@corp.example")
    lead_l = seed_sf(w, "leads", "shared@example.com")
    lead_d = seed_sf(w, "leads", "dee.other@example.com")
    a = Who(seed_lead(w, "shared@example.com", sfdcContactId=contact), "shared@example.com")
    b = Who(seed_lead(w, "shared@example.com"), "shared@example.com")
    d = Who(seed_lead(w, "dee@example.com", sfdcLeadId=lead_d), "dee@example.com")
    w.start()
    w.map(pid, cid, enabled=True)
    w.send(hook(a, at(0), pid, "Registered"))
    cs.wait_until(lambda: any(m["ContactId"] == contact for m in w.members(cid)), T,
                  what="A's change on the Contact its sfdcContactId names")
    w.send(hook(b, at(0), pid, "Attended"))
    w.send(hook(d, at(0), pid, "No Show"))
    cs.wait_until(lambda: len(w.members(cid)) == 3, T, what="three members")
    by_person = {m["ContactId"] or m["LeadId"]: m["Status"] for m in w.members(cid)}
    assert by_person == {contact: "Registered", lead_l: "Attended", lead_d: "No Show"}, by_person
    assert not [c for c in w.sf_calls() if is_lead_create(c)], "nobody created"
    # The links recorded are the ones used.
    assert w.redis.cmd("GET", f"cs:link:mkto:{a.lead}") == contact
    assert w.redis.cmd("GET", f"cs:link:mkto:{b.lead}") == lead_l
    assert w.dead_letters() == []


def test_salesforce_people_sharing_an_email_land_on_their_own_marketo_leads(world):
    """Toward Marketo: the lead whose sfdcContactId / sfdcLeadId is the Salesforce person comes
    before the email; by email, a lead that Marketo's sync links to someone else is skipped.
    The older lead (lower id) with the shared email is linked to nobody."""
    w = world
    cid, pid = w.campaign(), w.program()
    contact = seed_sf(w, "contacts", "shared2@example.com")
    lead_l = seed_sf(w, "leads", "shared2@example.com")
    b = seed_lead(w, "shared2@example.com")                          # older, unlinked
    a = seed_lead(w, "shared2@example.com", sfdcContactId=contact)   # Marketo's sync: the Contact
    w.start()
    w.sf_outbound()
    w.map(pid, cid, enabled=True)
    human(w, cid, contact, "Registered")
    cs.wait_until(lambda: w.mk_members(pid).get(a) == "Registered", T,
                  what="the Contact's change on lead A")
    human(w, cid, lead_l, "Attended")
    cs.wait_until(lambda: w.mk_members(pid).get(b) == "Attended", T,
                  what="the Lead's change on lead B")
    assert w.mk_members(pid) == {a: "Registered", b: "Attended"}
    assert len(w.mk_leads("shared2@example.com")) == 2, "nobody created"
    assert w.dead_letters() == []


# ------------------------------------------------------------------ CREATE_MISSING_PEOPLE

def test_create_missing_people_false_dead_letters_instead_of_creating(world):
    w = world
    cid, pid = w.campaign(), w.program()
    newbie = Who(seed_lead(w, "newbie@example.com", firstName="Nia"), "newbie@example.com")
    contact = seed_sf(w, "contacts", "only.in.sf@example.com", last="Sf")
    w.start(CREATE_MISSING_PEOPLE="false")
    w.sf_outbound()
    w.map(pid, cid, enabled=True)
    w.send(hook(newbie, at(0), pid, "Registered"))
    human(w, cid, contact, "Attended")
    dead = cs.wait_until(lambda: (lambda d: len(d) == 2 and d)(w.dead_letters()), T,
                         what="two dead letters")
    errors = sorted(d["error"] for d in dead)
    assert errors[0] == (
        f"no Marketo lead is Salesforce Contact {contact} (email \"only.in.sf@example.com\"; "
        "looked up by sfdcContactId, sfdcLeadId and email) and CREATE_MISSING_PEOPLE is false: "
        "create the lead in Marketo, then replay this dead letter; or set "
        "CREATE_MISSING_PEOPLE=true to let the service create it"), errors
    assert errors[1] == (
        f"no Salesforce Contact or Lead is Marketo lead {newbie.lead} (email "
        "\"newbie@example.com\", sfdcContactId \"\", sfdcLeadId \"\") and CREATE_MISSING_PEOPLE "
        "is false: create the person in Salesforce (or link the lead to one), then replay this "
        "dead letter; or set CREATE_MISSING_PEOPLE=true to let the service create a Lead"), errors
    # Neither simulator was asked to create anyone, nor to write a member.
    assert not [c for c in w.sf_calls() if is_lead_create(c)]
    assert [m["ContactId"] for m in w.members(cid)] == [contact]  # the human's own
    assert not [c for c in w.mk.calls() if c["method"] == "POST" and
                (c["path"] == "/rest/v1/leads.json" or c["path"].endswith("/members/status.json"))]
    assert len(w.mk_leads("only.in.sf@example.com")) == 0
    # The person's trace says so too.
    [entry] = w.trace_items(email="newbie@example.com")
    assert entry["outcome"] == "dead_letter" and entry["deadLetterId"] in [d["id"] for d in dead]
    assert entry["error"] == errors[1]
    # Following the advice: create the person, then replay.
    lead = seed_sf(w, "leads", "newbie@example.com")
    [mine] = [d for d in dead if d["error"] == errors[1]]
    w.admin("POST", f"/v1/deadletters/{mine['id']}/replay", expect=202)
    cs.wait_until(lambda: any(m["LeadId"] == lead for m in w.members(cid)), T,
                  what="the replayed change on the Lead created by hand")


def test_lead_placeholders_are_configurable_and_absent_where_salesforce_allows(world):
    w = world
    cid, pid = w.campaign(), w.program()
    bare = Who(seed_lead(w, "bare@example.com"), "bare@example.com")
    bare.first = bare.last = bare.company = None  # the template renders empty tokens as null
    named = Who(seed_lead(w, "named@example.com", firstName="Ned"), "named@example.com")
    named.first, named.last, named.company = "Ned", None, None
    w.start(LEAD_PLACEHOLDER_LAST_NAME="(unknown)", LEAD_PLACEHOLDER_COMPANY="Private person")
    w.map(pid, cid, enabled=True)
    w.send(hook(bare, at(0), pid, "Registered"))
    w.send(hook(named, at(0), pid, "Registered"))
    cs.wait_until(lambda: len(w.members(cid)) == 2, T, what="both members")
    sent = {r["Email"]: r for c in w.sf_calls() if is_lead_create(c) for r in c["body"]["records"]}
    assert sent["bare@example.com"] == {"attributes": {"type": "Lead"}, "Email": "bare@example.com",
                                        "LastName": "(unknown)", "Company": "Private person"}
    assert sent["named@example.com"]["FirstName"] == "Ned"
    [lead] = w.sf_leads("bare@example.com")
    assert (lead["FirstName"], lead["LastName"], lead["Company"]) == \
        (None, "(unknown)", "Private person")


def test_lead_placeholders_must_fit_salesforce(redis, workdir):
    env = cs.base_env(redis.url, workdir, **cs.NOWHERE_CRMS, LEAD_PLACEHOLDER_COMPANY="x" * 256,
                      LEAD_PLACEHOLDER_LAST_NAME="bad\tname")
    rc, _, err = cs.run_command(env, "worker", timeout=10)
    assert rc == 2
    assert "LEAD_PLACEHOLDER_COMPANY: at most 255 characters (Salesforce's limit)" in err
    assert "LEAD_PLACEHOLDER_LAST_NAME: must not hold control characters" in err


# ------------------------------------------------------------------ resync

def test_resync_queues_the_corrections_of_both_sides(world):
    w = world
    cid, pid = w.campaign(), w.program()
    cid2, pid2 = w.campaign("Webinar B"), w.program("Webinar B")
    cid3, pid3 = w.campaign("Webinar C"), w.program("Webinar C")
    kim = w.mk_person("kim", sf="contact")
    # Drift nobody reported: Marketo has kim in program 1, Salesforce in campaign 2; in
    # mapping 3 she is on neither side.
    w.mk.ctl("POST", "seed", {"members": [{"programId": pid, "leadId": kim.lead,
                                           "statusName": "Attended"}]})
    w.sf.ctl("POST", "seed", {"members": [{"CampaignId": cid2, "ContactId": kim.sf_id,
                                           "Status": "Registered"}]})
    w.start()
    for p, c in ((pid, cid), (pid2, cid2), (pid3, cid3)):
        w.map(p, c, enabled=True)
    r = w.admin("POST", f"/v1/people/resync?email={kim.email.upper()}", expect=202).json()
    assert r["email"] == kim.email
    assert r["marketoLeadIds"] == [str(kim.lead)] and r["salesforceIds"] == [kim.sf_id]
    assert (r["compared"], r["differences"], r["queued"]) == (3, 2, 2), r
    assert sorted(r["details"], key=lambda d: d["programId"]) == sorted([
        {"programId": str(pid), "campaignId": cid, "marketo": "Attended", "salesforce": None,
         "action": "Salesforce set to Marketo's \"Attended\""},
        {"programId": str(pid2), "campaignId": cid2, "marketo": None, "salesforce": "Registered",
         "action": "Marketo set to Salesforce's \"Registered\""},
        {"programId": str(pid3), "campaignId": cid3, "marketo": None, "salesforce": None,
         "action": "none: a member on neither side"}], key=lambda d: d["programId"])
    # The corrections go through the normal rules, as ordinary events.
    w.wait_status(cid, kim.email, "Attended")
    cs.wait_until(lambda: w.mk_members(pid2).get(kim.lead) == "Registered", T,
                  what="Marketo set to Registered in program 2")
    items = w.wait_trace_items(2, "the corrections in the trace", email=kim.email)
    assert sorted((i["source"], i["outcome"], i["programId"]) for i in items) == \
        [("marketo", "applied", str(pid)), ("salesforce", "applied", str(pid2))], items
    assert all(i["eventId"].startswith("rec:") for i in items)
    # Both sides agree now: nothing more to queue.
    again = w.admin("POST", f"/v1/people/resync?email={kim.email}", expect=202).json()
    assert (again["differences"], again["queued"]) == (0, 0), again
    # Unknown, missing and malformed emails.
    r = w.admin("POST", "/v1/people/resync?email=nobody@example.com")
    assert r.status == 404 and r.json() == {
        "error": "not_found",
        "message": "neither Marketo nor Salesforce has a person with the email nobody@example.com"}
    assert w.admin("POST", "/v1/people/resync").status == 400
