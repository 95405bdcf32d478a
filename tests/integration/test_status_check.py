"""Unknown statuses never reach Salesforce (issue 16, F11): before a CampaignMember is
created or updated with a status, the worker checks the status against the campaign's
CampaignMemberStatus labels (kept per worker, read again at once when a status misses). A
status the campaign lacks goes to the dead-letter list with the F11 message naming the
program, the campaign and the status, and no write is sent: Salesforce may otherwise store the
campaign's default status in its place instead of refusing it. Every test runs against both
behaviours of the simulator (/_sim/config unknownMemberStatus: "refuse", the restricted
picklist error; "default", the silent default that public posts report).

Real Redis, both CRM simulators and the real binary as an `ingest` process and a `worker`
process. Marketo webhooks with a hard-coded status are sent to the ingest process as Marketo
sends them. Outcomes are read where a user would see them: the members and the calls of the
Salesforce simulator and the dead-letter list of the admin API."""
import json
from datetime import datetime, timezone

import pytest

import cs

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)
MK_HEADERS = {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET}
# The campaign lacks Marketo's Webinar status "Attended On-demand" (same labels otherwise).
CAMPAIGN = ["Invited", "Registered", "No Show", "Attended"]
DEFAULT = "Invited"
MISSING = "Attended On-demand"
QUIET = {"SF_DELETED_POLL_INTERVAL_S": "86400", "RECONCILE_INTERVAL_S": "604800",
         "PROGRAM_POLL_INTERVAL_S": "86400"}
MODES = ["refuse", "default"]


class Person:
    def __init__(self, n):
        self.email, self.first, self.last = f"st{n}@example.com", "Ann", f"Lee{n}"
        self.sf_id = self.lead = None


class World:
    def __init__(self, redis, services, sf, mk):
        self.redis, self.services, self.sf, self.mk = redis, services, sf, mk

    def start(self, mode):
        self.sf.ctl("POST", "config", {"unknownMemberStatus": mode})
        self.cid = self.sf.ctl("POST", "seed", {"campaigns": [{
            "Name": "Webinar", "IsActive": True,
            "statuses": [{"Label": s, "IsDefault": s == DEFAULT, "HasResponded": s == "Attended"}
                         for s in CAMPAIGN]}]})["campaigns"][0]["Id"]
        self.pid = self.mk.ctl("POST", "seed", {"programs": [
            {"name": "Webinar Nov", "channel": "Webinar"}]})["programs"][0]["id"]
        env = cs.crm_env(self.sf, self.mk, WORKERS=1, **QUIET)
        self.ingest = self.services(self.redis.url, command="ingest", name="ingest", **env)
        self.worker = self.services(self.redis.url, command="worker", name="worker", **env)
        r = self.admin("PUT", f"/v1/mappings/{self.pid}", {"campaignId": self.cid,
                                                           "enabled": True, "force": True})
        assert r.status == 201, r.body
        return self

    def people(self, n):
        ps = [Person(i) for i in range(n)]
        leads = self.sf.ctl("POST", "seed", {"leads": [
            {"FirstName": p.first, "LastName": p.last, "Company": "Acme", "Email": p.email}
            for p in ps]})["leads"]
        mleads = self.mk.ctl("POST", "seed", {"leads": [
            {"email": p.email, "firstName": p.first, "lastName": p.last, "company": "Acme"}
            for p in ps]})["leads"]
        for p, sl, ml in zip(ps, leads, mleads):
            p.sf_id, p.lead = sl["Id"], ml["id"]
        return ps

    def admin(self, method, path, body=None):
        return self.ingest.req(method, path, body, cs.admin_headers())

    def hook(self, p, status):
        """Marketo's "Program Status is Changed" webhook with a hard-coded status."""
        body = {"type": "member_status_changed", "programId": self.pid, "leadId": p.lead,
                "email": p.email, "firstName": p.first, "lastName": p.last, "company": "Acme",
                "status": status,
                "occurredAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        r = self.ingest.req("POST", "/webhooks/marketo", json.dumps(body), MK_HEADERS)
        assert r.status == 202, r.body

    def member(self, p):
        ms = [m for m in self.sf.ctl("GET", f"members?campaignId={self.cid}")["members"]
              if m["LeadId"] == p.sf_id]
        return ms[0] if ms else None

    def wait_status(self, p, status):
        def has():
            m = self.member(p)
            return m and m["Status"] == status
        try:
            cs.wait_until(has, T, interval=0.1, what=f"{p.email} to be {status!r} in Salesforce")
        except AssertionError:
            raise AssertionError(f"member {self.member(p)}, dead letters "
                                 f"{self.dead_letters()}\n{self.worker.stderr()[-3000:]}") from None

    def dead_letters(self):
        return self.admin("GET", "/v1/deadletters").json()["items"]

    def wait_dead(self, n):
        return cs.wait_until(lambda: len(self.dead_letters()) >= n and self.dead_letters(), T,
                             interval=0.1, what=f"{n} dead letters")

    def member_writes(self, p, member_id=None):
        """The sObject Collections writes of p's CampaignMember that Salesforce received."""
        out = []
        for c in self.sf.calls():
            if not c["path"].endswith("/composite/sobjects") or c["method"] not in ("POST",
                                                                                     "PATCH"):
                continue
            for rec in (c["body"] or {}).get("records", []):
                if (rec.get("attributes") or {}).get("type") != "CampaignMember":
                    continue
                if rec.get("LeadId") == p.sf_id or (member_id and rec.get("id") == member_id):
                    out.append((c["method"], rec))
        return out

    def status_queries(self):
        return [c for c in self.sf.calls() if c["path"].endswith("/query")
                and "FROM CampaignMemberStatus WHERE CampaignId IN" in c["query"].get("q", "")]

    def add_status(self, label):
        """An admin adds a member status to the campaign in Salesforce."""
        self.sf.ctl("POST", "statuses", {"CampaignId": self.cid, "Label": label})


@pytest.fixture
def world(redis, services, sf_sim, mkto_sim):
    return World(redis, services, sf_sim, mkto_sim)


def f11(w, status):
    return (f'Salesforce campaign {w.cid} has no member status "{status}" for Marketo program '
            f'{w.pid} status "{status}"')


@pytest.mark.parametrize("mode", MODES)
def test_unknown_status_is_dead_lettered_unwritten_then_applied_after_fix_and_replay(world, mode):
    w = world.start(mode)
    new, known = w.people(2)
    # `known` is a member already; `new` is not.
    w.hook(known, "Registered")
    w.wait_status(known, "Registered")
    member_id = w.member(known)["Id"]
    writes_before = len(w.member_writes(known, member_id))

    w.hook(new, MISSING)
    w.hook(known, MISSING)
    try:
        dead = w.wait_dead(2)
    except AssertionError:
        raise AssertionError(f"no dead letters; in Salesforce: new {w.member(new)}, known "
                             f"{w.member(known)}") from None
    # No write of the unknown status went to Salesforce: the new person is not a member, the
    # known one keeps the status they had (whatever Salesforce would have done with it).
    assert w.member_writes(new) == []
    assert len(w.member_writes(known, member_id)) == writes_before
    assert w.member(new) is None
    assert w.member(known)["Status"] == "Registered"
    assert len(dead) == 2, dead
    for d in dead:
        assert d["error"].startswith(f11(w, MISSING)), d["error"]
        assert "add the status to the campaign or a statusMap entry, then replay" in d["error"]
        assert "Invited, Registered, No Show, Attended" in d["error"], d["error"]

    # The admin adds the status to the campaign and replays: applied, without waiting for the
    # worker's cached statuses to expire.
    w.add_status(MISSING)
    for d in dead:
        r = w.admin("POST", f"/v1/deadletters/{d['id']}/replay")
        assert r.status == 202, r.body
    w.wait_status(new, MISSING)
    w.wait_status(known, MISSING)
    assert w.dead_letters() == []


@pytest.mark.parametrize("mode", MODES)
def test_a_status_added_after_it_was_cached_is_accepted_at_once(world, mode):
    w = world.start(mode)
    a, b, c = w.people(3)
    w.hook(a, "Registered")
    w.wait_status(a, "Registered")
    assert len(w.status_queries()) == 1  # the campaign's statuses, read once and kept
    w.hook(c, "Attended")
    w.wait_status(c, "Attended")
    assert len(w.status_queries()) == 1  # known from the cache: not read again

    w.add_status(MISSING)
    w.hook(b, MISSING)
    w.wait_status(b, MISSING)  # the miss read the statuses again at once
    assert len(w.status_queries()) == 2
    assert w.dead_letters() == []
