"""People (issue 21): a person's trace (GET /v1/people), resync (POST /v1/people/resync),
matching people by the CRMs' ids before their email, CREATE_MISSING_PEOPLE and the Lead
placeholders. Real Redis, both CRM simulators, one `ingest` and two `worker` processes (the
set-up of test_m2s.py), and the outcomes a user sees: the admin API's answers, the records and
calls of both simulators, the keys in Redis and their expiry."""
import json
import time

import pytest

import cs
from test_m2s import World as M2SWorld
from test_m2s import at, hook, is_lead_create

T = 30
DAY = 86400


class World(M2SWorld):
    """test_m2s's world, with the person API and Marketo's side at hand."""

    def trace(self, expect=200, **query):
        q = "&".join(f"{k}={v}" for k, v in query.items())
        r = self.admin("GET", f"/v1/people?{q}")
        assert r.status == expect, f"GET /v1/people?{q}: {r.status} {r.body[:500]!r}"
        return r.json()

    def items(self, **query):
        return self.trace(**query)["items"]

    def wait_items(self, n, what, **query):
        return cs.wait_until(lambda: (lambda i: len(i) >= n and i)(self.items(**query)), T,
                             what=what)

    def mk_members(self, program):
        return {m["leadId"]: m["statusName"]
                for m in self.mk.ctl("GET", f"members?programId={program}")["members"]}

    def mk_leads(self, email):
        return [l for l in self.mk.ctl("GET", "state")["leads"]
                if (l["email"] or "").lower() == email.lower()]


@pytest.fixture
def world(redis, services, sf_sim, mkto_sim):
    return World(redis, services, sf_sim, mkto_sim)


def outcomes(items):
    """(eventId as sent, outcome, reason) of each entry; a webhook's eventId is kept as e:<id>."""
    return [(i["eventId"].removeprefix("e:"), i["outcome"], i.get("reason")) for i in items]


# ------------------------------------------------------------------ the trace

def test_trace_through_retry_apply_and_stale_drop_newest_first(world):
    w = world
    cid, pid = w.campaign(), w.program()
    ann = w.person("ann", sf="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    # The first CampaignMember write meets a 503: the change is retried, then applied.
    w.sf.ctl("POST", "faults", {"rules": [
        {"kind": "status", "status": 503, "method": "POST", "path": "/composite/sobjects$"}]})
    w.send(hook(ann, at(10), pid, "Registered", eventId="ann-1"))
    w.wait_status(cid, ann.email, "Registered")
    # An older change arriving later is stale; a newer one applies.
    w.send(hook(ann, at(0), pid, "Invited", eventId="ann-0"))
    w.wait_items(3, "the stale drop in the trace", email=ann.email)
    w.send(hook(ann, at(20), pid, "Attended", eventId="ann-2"))
    w.wait_status(cid, ann.email, "Attended")
    items = w.wait_items(4, "four trace entries", email=ann.email)

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
    assert w.items(email=ann.email, limit=2) == items[:2]


def test_trace_by_each_id_and_any_case(world):
    w = world
    cid, pid = w.campaign(), w.program()
    bea = w.person("bea", sf="lead")
    w.start()
    w.map(pid, cid, enabled=True)
    w.send(hook(bea, at(0), pid, "Registered", eventId="bea-1"))
    w.wait_status(cid, bea.email, "Registered")
    items = w.wait_items(1, "bea's entry", email=bea.email)
    assert outcomes(items) == [("bea-1", "applied", None)]
    assert w.items(email=bea.email.upper()) == items
    assert w.items(marketoLeadId=bea.lead) == items
    assert w.items(salesforceId=bea.sf_id) == items          # 18 characters
    assert w.items(salesforceId=bea.sf_id[:15]) == items     # 15 characters
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
    cy = w.person("cy", sf="contact")
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
        w.items(email=cy.email)), T, what="the own deletion's echo")
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
    dee = w.person("dee")
    w.start(TRACE_RETENTION_DAYS=2, TRACE_MAX_PER_PERSON=10)
    # An entry older than the retention, left by an earlier run: neither shown nor kept.
    key = f"cs:trace:e:{dee.email}"
    old_ms = int(time.time() * 1000) - 3 * DAY * 1000
    w.redis.cmd("ZADD", key, old_ms, json.dumps({"eventId": "ancient", "outcome": "applied"}))
    for i in range(12):  # unmapped: each is dropped at once, one trace entry each
        w.send(hook(dee, at(i), pid, "Registered", eventId=f"dee-{i:02d}"))
    cs.wait_until(lambda: w.metric("campaign_sync_events_dropped_total", reason="unmapped") >= 12,
                  T, what="the twelve events dropped as unmapped")
    items = w.items(email=dee.email)
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
