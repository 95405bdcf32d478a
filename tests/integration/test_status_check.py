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
# The campaign lacks Marketo's Webinar status "Attended On-demand" (same labels otherwise).
CAMPAIGN = ["Invited", "Registered", "No Show", "Attended"]
DEFAULT = "Invited"
MISSING = "Attended On-demand"
MODES = ["refuse", "default"]


@pytest.fixture
def world(world):
    """An ingest and one worker process, background jobs quiet."""
    return world.defaults(workers=1, quiet=True)


def start(w, mode):
    """The simulator's behaviour for an unknown status, a campaign lacking MISSING mapped
    (forced) to a Webinar program, and the processes; the campaign and program as w.cid, w.pid."""
    w.sf.ctl("POST", "config", {"unknownMemberStatus": mode})
    w.cid = w.campaign(statuses=CAMPAIGN, default=DEFAULT)
    w.pid = w.program()
    w.start()
    r = w.admin("PUT", f"/v1/mappings/{w.pid}", {"campaignId": w.cid, "enabled": True,
                                                   "force": True})
    assert r.status == 201, r.body
    return w


def people(w, n):
    return w.sf_people(n, "st", company="Acme", marketo_company=True)


def post_hook(w, p, status):
    """Marketo's "Program Status is Changed" webhook with a hard-coded status."""
    body = {"type": "member_status_changed", "programId": w.pid, "leadId": p.lead,
            "email": p.email, "firstName": p.first, "lastName": p.last, "company": "Acme",
            "status": status,
            "occurredAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
    r = w.ingest.req("POST", "/webhooks/marketo", json.dumps(body), cs.MK_HEADERS)
    assert r.status == 202, r.body


def member(w, p):
    ms = [m for m in w.members(w.cid) if m["LeadId"] == p.sf_id]
    return ms[0] if ms else None


def wait_member_status(w, p, status):
    def has():
        m = member(w, p)
        return m and m["Status"] == status
    try:
        cs.wait_until(has, T, interval=0.1, what=f"{p.email} to be {status!r} in Salesforce")
    except AssertionError:
        raise AssertionError(f"member {member(w, p)}, dead letters "
                             f"{w.dead_letters()}\n{w.worker.stderr()[-3000:]}") from None


def wait_dead(w, n):
    return cs.wait_until(lambda: len(w.dead_letters()) >= n and w.dead_letters(), T,
                         interval=0.1, what=f"{n} dead letters")


def member_writes(w, p, member_id=None):
    """The sObject Collections writes of p's CampaignMember that Salesforce received."""
    out = []
    for c in w.sf.calls():
        if not c["path"].endswith("/composite/sobjects") or c["method"] not in ("POST", "PATCH"):
            continue
        for rec in (c["body"] or {}).get("records", []):
            if (rec.get("attributes") or {}).get("type") != "CampaignMember":
                continue
            if rec.get("LeadId") == p.sf_id or (member_id and rec.get("id") == member_id):
                out.append((c["method"], rec))
    return out


def status_queries(w):
    return [c for c in w.sf.calls() if c["path"].endswith("/query")
            and "FROM CampaignMemberStatus WHERE CampaignId IN" in c["query"].get("q", "")]


def add_status(w, label):
    """An admin adds a member status to the campaign in Salesforce."""
    w.sf.ctl("POST", "statuses", {"CampaignId": w.cid, "Label": label})


def f11(w, status):
    return (f'Salesforce campaign {w.cid} has no member status "{status}" for Marketo program '
            f'{w.pid} status "{status}"')


@pytest.mark.parametrize("mode", MODES)
def test_unknown_status_is_dead_lettered_unwritten_then_applied_after_fix_and_replay(world, mode):
    w = start(world, mode)
    new, known = people(w, 2)
    # `known` is a member already; `new` is not.
    post_hook(w, known, "Registered")
    wait_member_status(w, known, "Registered")
    member_id = member(w, known)["Id"]
    writes_before = len(member_writes(w, known, member_id))

    post_hook(w, new, MISSING)
    post_hook(w, known, MISSING)
    try:
        dead = wait_dead(w, 2)
    except AssertionError:
        raise AssertionError(f"no dead letters; in Salesforce: new {member(w, new)}, known "
                             f"{member(w, known)}") from None
    # No write of the unknown status went to Salesforce: the new person is not a member, the
    # known one keeps the status they had (whatever Salesforce would have done with it).
    assert member_writes(w, new) == []
    assert len(member_writes(w, known, member_id)) == writes_before
    assert member(w, new) is None
    assert member(w, known)["Status"] == "Registered"
    assert len(dead) == 2, dead
    for d in dead:
        assert d["error"].startswith(f11(w, MISSING)), d["error"]
        assert "add the status to the campaign or a statusMap entry, then replay" in d["error"]
        assert "Invited, Registered, No Show, Attended" in d["error"], d["error"]

    # The admin adds the status to the campaign and replays: applied, without waiting for the
    # worker's cached statuses to expire.
    add_status(w, MISSING)
    for d in dead:
        r = w.admin("POST", f"/v1/deadletters/{d['id']}/replay")
        assert r.status == 202, r.body
    wait_member_status(w, new, MISSING)
    wait_member_status(w, known, MISSING)
    assert w.dead_letters() == []


@pytest.mark.parametrize("mode", MODES)
def test_a_status_added_after_it_was_cached_is_accepted_at_once(world, mode):
    w = start(world, mode)
    a, b, c = people(w, 3)
    post_hook(w, a, "Registered")
    wait_member_status(w, a, "Registered")
    assert len(status_queries(w)) == 1  # the campaign's statuses, read once and kept
    post_hook(w, c, "Attended")
    wait_member_status(w, c, "Attended")
    assert len(status_queries(w)) == 1  # known from the cache: not read again

    add_status(w, MISSING)
    post_hook(w, b, MISSING)
    wait_member_status(w, b, MISSING)  # the miss read the statuses again at once
    assert len(status_queries(w)) == 2
    assert w.dead_letters() == []
