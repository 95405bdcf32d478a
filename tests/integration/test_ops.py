"""Operations, end to end (issue 6; SPEC F9-F12, sections 5 and 9): the status check of a
mapping (refused with 409, forced, passed, pending, skipped) and its validation report,
`campaign-sync check` passing and failing for each cause with its hint, the CRM checks of
/readyz, the synced members of a campaign, reconciliation of drift that no webhook reported,
its metric, and the audit log.

Real Redis, both CRM simulators and the real binary: one `ingest` process (the HTTP
interface) and one or two `worker` processes. Changes reach the service the way they do in
production: a person changing a member in the Marketo simulator fires its "Program Status is
Changed" webhook at the ingest process, and a person changing a CampaignMember in the
Salesforce simulator fires a real Outbound Message. Drift is made by switching those off
first, so only reconciliation can find it. Outcomes are read where a user would see them:
the records in both simulators, the admin API, /readyz, /metrics and the output of
`campaign-sync check`."""
import json
import os
import re
import time

import pytest

import cs
from cs import no_dead_letters

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)
# A campaign that calls Marketo's "No Show" "Did Not Attend" and lacks "Attended On-demand".
ODD = ["Invited", "Registered", "Attended", "Did Not Attend"]
CRM_VARS = ["SF_LOGIN_URL", "SF_CLIENT_ID", "SF_CLIENT_SECRET", "MARKETO_BASE_URL",
            "MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET"]
MEMBER_FIELDS = {"email", "marketoLeadId", "salesforceId", "status", "programStatus",
                 "updatedAt", "source"}
AUDIT_FIELDS = {"at", "eventId", "source", "target", "programId", "campaignId", "email",
                "action", "result"}
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# The set-up of these tests (World.defaults): one ingest and two worker processes, background
# jobs that would heal drift by themselves kept out of the way (cs.QUIET), so that what a test
# sees is the work of the endpoint it calls, and both CRMs calling the service (Outbound
# Message, Marketo webhook).
SETUP = {"quiet": True, "hooks": True}


def next_second():
    """Sleeps until the wall clock is past the next whole second."""
    time.sleep(1.0 - time.time() % 1.0 + 0.05)


def id15(sfid):
    return sfid[:15] if sfid else sfid


@pytest.fixture
def world(world):
    return world.defaults(**SETUP)


def people(w, n, prefix):
    """n people, each a Lead in Salesforce and a lead in Marketo with the same email."""
    return w.sf_people(n, prefix, company="Acme Corp", marketo_company=True)


# ------------------------------------------------------------------ 1. status check of a mapping

def unmatched_of(answer):
    return {(u["side"], u["status"]): u["fix"] for u in answer["unmatched"]}


def test_incompatible_mapping_is_refused_then_forced_then_fixed(world):
    w = world
    cid, pid = w.campaign(statuses=ODD), w.program()
    w.start(workers=0, hooks=False)

    # Refused: 409 naming each status without a counterpart; nothing stored.
    r = w.put_mapping(pid, cid, expect=(409,), enabled=True)
    body = r.json()
    assert body["error"] == "incompatible_statuses", body
    for s in ("No Show", "Attended On-demand", "Did Not Attend"):
        assert f'"{s}"' in body["message"], f"{s!r} not named: {body['message']}"
    assert "force" in body["message"]
    un = unmatched_of(body)
    assert set(un) == {("marketo", "No Show"), ("marketo", "Attended On-demand"),
                       ("salesforce", "Did Not Attend")}, body
    assert w.admin("GET", f"/v1/mappings/{pid}").status == 404, "a refused mapping is not stored"
    # Without "enabled" the mapping is enabled (the default): refused the same way.
    assert w.put_mapping(pid, cid, expect=(409,)).json()["error"] == "incompatible_statuses"

    # Forced: stored, and the answer still lists what does not match.
    r = w.put_mapping(pid, cid, expect=(201,), enabled=True, force=True)
    forced = r.json()
    assert forced["statusCheck"] == "forced" and forced["enabled"] is True, forced
    assert unmatched_of(forced) == un
    stored = w.admin("GET", f"/v1/mappings/{pid}", expect=200).json()
    assert stored == {k: v for k, v in forced.items() if k not in ("statusCheck", "unmatched")}

    # A disabled mapping is not compared (nothing is synced through it).
    r = w.put_mapping(pid, cid, expect=(200,), enabled=False)
    assert r.json()["statusCheck"] == "skipped" and "unmatched" not in r.json(), r.json()
    # ... but enabling it again without force is refused, and the stored mapping stays off.
    assert w.put_mapping(pid, cid, expect=(409,), enabled=True).json()["error"] == "incompatible_statuses"
    assert w.admin("GET", f"/v1/mappings/{pid}", expect=200).json()["enabled"] is False

    # Fixed on both sides: a statusMap entry, and the missing status added in Salesforce.
    w.sf.ctl("POST", "statuses", {"CampaignId": cid, "Label": "Attended On-demand",
                                  "HasResponded": True})
    r = w.put_mapping(pid, cid, expect=(200,), enabled=True, statusMap={"No Show": "Did Not Attend"})
    passed = r.json()
    assert passed["statusCheck"] == "passed", passed
    assert "unmatched" not in passed and "statusCheckMessage" not in passed, passed
    assert w.admin("GET", f"/v1/mappings/{pid}", expect=200).json()["enabled"] is True


def test_compatible_mapping_passes(world):
    w = world
    cid, pid = w.campaign(), w.program()
    w.start(workers=0, hooks=False)
    r = w.put_mapping(pid, cid, expect=(201,), enabled=True)
    assert r.json()["statusCheck"] == "passed", r.json()
    assert "unmatched" not in r.json()
    # An explicit entry to a status the campaign has also passes.
    cid2, pid2 = w.campaign("Renamed", statuses=["Sent", "Registered", "No Show", "Attended",
                                                 "Attended On-demand"]), w.program("Other")
    r = w.put_mapping(pid2, cid2, expect=(201,), statusMap={"Invited": "Sent"})
    assert r.json()["statusCheck"] == "passed", r.json()


def test_status_check_pending_when_a_crm_cannot_answer(world):
    w = world
    cid = w.campaign()
    w.start(workers=0, hooks=False)
    # A program Marketo does not have: the comparison cannot be made; stored, said pending.
    r = w.put_mapping(424242, cid, expect=(201,), enabled=True)
    a = r.json()
    assert a["statusCheck"] == "pending", a
    assert "424242" in a["statusCheckMessage"], a
    assert w.admin("GET", "/v1/mappings/424242", expect=200).json()["enabled"] is True
    r = w.admin("GET", "/v1/mappings/424242/validation")
    assert r.status == 503 and r.json()["error"] == "crm_unavailable", r.body
    assert "424242" in r.json()["message"]


def reconcile(w, pid, state="done"):
    """POST /v1/mappings/{pid}/reconcile (202 at once) and the job, once it is in `state`."""
    r = w.admin("POST", f"/v1/mappings/{pid}/reconcile", expect=202)
    assert r.header("Content-Type") == "application/json"
    assert r.json() == {"id": r.json()["id"], "state": "queued"}, r.json()
    jid = r.json()["id"]

    def ended():
        j = w.admin("GET", f"/v1/jobs/{jid}", expect=200).json()
        return j if j["state"] in ("done", "failed", "cancelled") else None
    j = cs.wait_until(ended, T, interval=0.1, what=f"reconciliation {jid} to end")
    assert j["state"] == state, j
    return j


def job_details(w, jid):
    return w.admin("GET", f"/v1/jobs/{jid}/details?limit=1000", expect=200).json()["items"]


def test_reconcile_of_a_program_marketo_lacks_says_why(world):
    w = world
    cid = w.campaign()
    w.start(workers=1, hooks=False)
    # Pending: Marketo has no such program (its backfill fails the same way).
    w.put_mapping(424242, cid, expect=(201,), enabled=True)
    j = reconcile(w, 424242, state="failed")
    msg = j["error"]
    assert "424242" in msg and re.search(r"not found|no program", msg), msg


def test_validation_report(world):
    w = world
    cid, pid = w.campaign(statuses=ODD), w.program()
    w.start(workers=0, hooks=False)
    w.put_mapping(pid, cid, expect=(201,), enabled=False)

    r = w.admin("GET", f"/v1/mappings/{pid}/validation", expect=200)
    rep = r.json()
    assert r.header("Content-Type") == "application/json"
    assert set(rep) == {"programId", "campaignId", "compatible", "matched", "unmatched"}
    assert (rep["programId"], rep["campaignId"], rep["compatible"]) == (str(pid), cid, False)
    assert rep["matched"] == [{"marketo": s, "salesforce": s}
                              for s in ("Invited", "Registered", "Attended")], rep
    un = {(u["side"], u["status"]): u for u in rep["unmatched"]}
    assert set(un) == {("marketo", "No Show"), ("marketo", "Attended On-demand"),
                       ("salesforce", "Did Not Attend")}, rep
    for u in rep["unmatched"]:
        assert set(u) == {"side", "status", "fix"}
        assert f'"{u["status"]}"' in u["fix"], u
        assert "\n" not in u["fix"] and "statusMap" in u["fix"], u
    # The fix says where to add the status: the campaign in Salesforce, the program in Marketo.
    assert cid in un[("marketo", "No Show")]["fix"]
    assert str(pid) in un[("salesforce", "Did Not Attend")]["fix"]

    # With a statusMap entry the pair matches through it; Marketo's "Not in Program" never
    # appears (it is the absence of membership).
    w.put_mapping(pid, cid, expect=(200,), enabled=False, statusMap={"No Show": "Did Not Attend"})
    rep = w.admin("GET", f"/v1/mappings/{pid}/validation", expect=200).json()
    assert {"marketo": "No Show", "salesforce": "Did Not Attend"} in rep["matched"]
    assert [(u["side"], u["status"]) for u in rep["unmatched"]] == [
        ("marketo", "Attended On-demand")]
    assert "Not in Program" not in json.dumps(rep)
    w.sf.ctl("POST", "statuses", {"CampaignId": cid, "Label": "Attended On-demand",
                                  "HasResponded": True})
    rep = w.admin("GET", f"/v1/mappings/{pid}/validation", expect=200).json()
    assert rep["compatible"] is True and rep["unmatched"] == [] and len(rep["matched"]) == 5

    # Unknown mapping.
    r = w.admin("GET", "/v1/mappings/999999/validation")
    assert r.status == 404 and r.json() == {"error": "not_found",
                                            "message": "no mapping for program 999999"}


def test_without_crm_credentials_status_check_is_pending(redis, services):
    svc = services(redis.url)  # a plain ingest: no CRM credentials
    h = cs.admin_headers()
    cid = "7015g000000CampAAA"
    r = svc.req("PUT", "/v1/mappings/1001", {"campaignId": cid, "enabled": True}, h)
    assert r.status == 201, r.body
    a = r.json()
    assert a["statusCheck"] == "pending", a
    for var in CRM_VARS:
        assert var in a["statusCheckMessage"], a
    assert "unmatched" not in a
    assert svc.req("GET", "/v1/mappings/1001", None, h).json()["enabled"] is True
    # Disabled: nothing to compare.
    r = svc.req("PUT", "/v1/mappings/1001", {"campaignId": cid, "enabled": False}, h)
    assert r.status == 200 and r.json()["statusCheck"] == "skipped", r.body
    assert "statusCheckMessage" not in r.json()

    # The validation report needs the CRMs: 503 naming the variables.
    r = svc.req("GET", "/v1/mappings/1001/validation", None, h)
    assert r.status == 503 and r.json()["error"] == "crm_not_configured", r.body
    for var in CRM_VARS:
        assert var in r.json()["message"], r.body
    # A reconciliation is a job, run by the worker processes (which have the credentials):
    # queued here.
    r = svc.req("POST", "/v1/mappings/1001/reconcile", None, h)
    assert r.status == 202 and r.json()["state"] == "queued", r.body
    # An unknown mapping is 404.
    for method, path in (("GET", "/v1/mappings/1002/validation"),
                         ("POST", "/v1/mappings/1002/reconcile")):
        r = svc.req(method, path, None, h)
        assert r.status == 404 and r.json()["message"] == "no mapping for program 1002"
    # /readyz lists no CRM checks for a process without credentials.
    r = svc.req("GET", "/readyz")
    assert r.status == 200 and r.json() == {"status": "ready", "checks": {"redis": "ok"}}


# ------------------------------------------------------------------ 2. campaign-sync check

def check_lines(out):
    """[(level, text)] of the check lines (the summary line left out)."""
    got = []
    for line in out.splitlines():
        m = re.match(r"^(ok|WARN|FAIL)\s+(\S.*)$", line)
        if m:
            got.append((m.group(1), m.group(2)))
    return got


def line_of(out, what):
    """The (level, text) lines whose check name starts the text."""
    return [(lvl, text) for lvl, text in check_lines(out) if text.startswith(what + " ")]


def run_check(env):
    rc, out, err = cs.run_command(env, "check")
    return rc, out, f"--- stdout\n{out}\n--- stderr\n{err}"


@pytest.fixture
def aof_redis(workdir):
    r = cs.Redis(workdir, appendonly=True, fsync="always").start()
    yield r
    r.stop()


@pytest.fixture
def fine(aof_redis, services, sf_sim, mkto_sim):
    """A world where every check passes: Redis with AOF (appendfsync always), working
    credentials with full rights, one compatible mapping, sync enabled."""
    w = cs.World(aof_redis, services, sf_sim, mkto_sim).defaults(**SETUP)
    w.cid, w.pid = w.campaign(), w.program()
    w.start(workers=0, hooks=False)
    w.put_mapping(w.pid, w.cid, expect=(201,), enabled=True)
    return w


EVERY_CHECK = ["config", "redis", "salesforce token", "salesforce Campaign",
               "salesforce CampaignMember", "salesforce Lead", "salesforce Contact",
               "marketo token", "marketo channels", "marketo leads", "marketo program members",
               "mapping {pid}", "sync"]


def test_check_passes_when_everything_is_fine(fine):
    w = fine
    rc, out, why = run_check(w.check_env())
    assert rc == 0, why
    lines = check_lines(out)
    assert all(lvl == "ok" for lvl, _ in lines), why
    for what in EVERY_CHECK:
        assert len(line_of(out, what.format(pid=w.pid))) == 1, f"no line for {what!r}\n{why}"
    assert len(lines) == len(EVERY_CHECK), why
    assert out.rstrip().splitlines()[-1] == "0 FAIL, 0 WARN", why
    assert "appendfsync always" in line_of(out, "redis")[0][1]
    assert "read, create and edit" in line_of(out, "salesforce CampaignMember")[0][1]
    mline = line_of(out, f"mapping {w.pid}")[0][1]
    assert w.cid in mline and "5 statuses match" in mline, mline


def _fail(out, what, why):
    lines = line_of(out, what)
    assert lines and all(lvl == "FAIL" for lvl, _ in lines), f"no FAIL for {what!r}\n{why}"
    return lines[0][1]


def test_check_fails_when_redis_is_unreachable(fine):
    rc, out, why = run_check(fine.check_env(REDIS_URL=f"redis://127.0.0.1:{cs.free_port()}/0"))
    assert rc == 1, why
    text = _fail(out, "redis", why)
    assert "start Redis or fix REDIS_URL" in text, why


def test_check_fails_on_a_wrong_salesforce_secret(fine):
    rc, out, why = run_check(fine.check_env(SF_CLIENT_SECRET="not-the-secret"))
    assert rc == 1, why
    text = _fail(out, "salesforce token", why)
    assert "SF_CLIENT_SECRET" in text and "SF_LOGIN_URL" in text, why
    # The other side is still checked.
    assert line_of(out, "marketo token")[0][0] == "ok", why
    assert "not-the-secret" not in out, "a secret is never printed"


def test_check_fails_without_create_rights_on_campaign_member(fine):
    fine.sf.ctl("POST", "config", {"permissions": {"CampaignMember": {"createable": False}}})
    rc, out, why = run_check(fine.check_env())
    assert rc == 1, why
    text = _fail(out, "salesforce CampaignMember", why)
    assert "create" in text and "CampaignMember" in text and "Marketing User" in text, why
    # Only that check fails.
    assert [t for lvl, t in check_lines(out) if lvl == "FAIL"] == [text], why
    assert line_of(out, "salesforce Campaign")[0][0] == "ok", why


def test_check_fails_on_a_wrong_marketo_secret(fine):
    rc, out, why = run_check(fine.check_env(MARKETO_CLIENT_SECRET="not-the-secret"))
    assert rc == 1, why
    text = _fail(out, "marketo token", why)
    assert "MARKETO_CLIENT_SECRET" in text and "MARKETO_BASE_URL" in text, why
    assert line_of(out, "salesforce token")[0][0] == "ok", why
    assert "not-the-secret" not in out


def test_check_fails_on_a_mapping_whose_statuses_do_not_match(fine):
    w = fine
    cid2, pid2 = w.campaign("Odd", statuses=ODD), w.program("Odd program")
    w.put_mapping(pid2, cid2, expect=(201,), enabled=True, force=True)
    rc, out, why = run_check(w.check_env())
    assert rc == 1, why
    text = _fail(out, f"mapping {pid2}", why)
    assert "3 status(es)" in text, why
    assert '"No Show"' in text and cid2 in text, f"the fix names the status and campaign: {text}"
    assert line_of(out, f"mapping {w.pid}")[0][0] == "ok", why


def test_check_warns_when_aof_is_off(redis, services, sf_sim, mkto_sim):
    w = cs.World(redis, services, sf_sim, mkto_sim).defaults(**SETUP)  # the default redis: no AOF
    cid, pid = w.campaign(), w.program()
    w.start(workers=0, hooks=False)
    w.put_mapping(pid, cid, expect=(201,), enabled=True)
    rc, out, why = run_check(w.check_env())
    assert rc == 0, why
    (lvl, text), = line_of(out, "redis")
    assert lvl == "WARN" and "AOF is off" in text and "appendonly yes" in text, why
    assert out.rstrip().splitlines()[-1] == "0 FAIL, 1 WARN", why


def test_check_warns_when_sync_is_disabled(fine):
    w = fine
    w.admin("PUT", "/v1/sync", {"enabled": False}, expect=200)
    rc, out, why = run_check(w.check_env())
    assert rc == 0, why
    (lvl, text), = line_of(out, "sync")
    assert lvl == "WARN" and "disabled" in text and "/v1/sync" in text, why


def test_check_fails_on_a_missing_variable(redis, workdir):
    env = cs.base_env(redis.url, workdir, **{**cs.NOWHERE_CRMS, "SF_CLIENT_ID": None})
    rc, out, why = run_check(env)
    assert rc != 0, why
    assert "SF_CLIENT_ID" in why, "the missing variable is named"
    (lvl, _), = line_of(out, "config")
    assert lvl == "FAIL", why


def test_check_warns_when_marketo_native_sync_links_a_mapped_program(fine):
    w = fine
    w.mk.ctl("POST", f"programs/{w.pid}", {"sfdcId": w.cid, "sfdcName": "Webinar"})
    rc, out, why = run_check(w.check_env())
    assert rc == 0, why
    lines = line_of(out, f"mapping {w.pid}")
    assert ("ok" in [l for l, _ in lines]) and ("WARN" in [l for l, _ in lines]), why
    text = [t for l, t in lines if l == "WARN"][0]
    assert "native" in text and w.cid in text, why
    assert out.rstrip().splitlines()[-1] == "0 FAIL, 1 WARN", why


# ------------------------------------------------------------------ 3. /readyz

def test_readyz_lists_crm_checks_and_stays_ready_when_a_crm_is_down(world, services, workdir):
    w = world
    w.start(workers=0, hooks=False)
    r = cs.wait_until(lambda: (lambda r: r if r.json()["checks"].get("salesforce") == "ok"
                               and r.json()["checks"].get("marketo") == "ok" else None)(
        w.ingest.req("GET", "/readyz")), 10, what="the CRM checks to be ok")
    assert r.status == 200
    assert r.json() == {"status": "ready",
                        "checks": {"redis": "ok", "salesforce": "ok", "marketo": "ok",
                                   "salesforce_quota": "ok", "marketo_quota": "ok",
                                   "marketo_timezone": "ok"}}

    # Salesforce unreachable and Marketo refusing the credentials: listed, never failing.
    down = services(w.redis.url, name="down", SPOOL_DIR=os.path.join(workdir, "spool-down"),
                    **cs.crm_env(
        w.sf, w.mk, SF_LOGIN_URL=f"http://127.0.0.1:{cs.free_port()}",
        MARKETO_CLIENT_SECRET="not-the-secret"))

    def both_checked():
        r = down.req("GET", "/readyz")
        c = r.json()["checks"]
        return r if all(c.get(k) not in (None, "not checked yet") for k in ("salesforce",
                                                                            "marketo")) else None
    r = cs.wait_until(both_checked, 15, what="the CRM checks to run")
    assert r.status == 200, r.body
    body = r.json()
    assert body["status"] == "ready" and body["checks"]["redis"] == "ok", body
    assert body["checks"]["salesforce"] != "ok" and body["checks"]["marketo"] != "ok", body
    assert "error" not in body and "message" not in body
    assert "not-the-secret" not in r.body.decode()


# ------------------------------------------------------------------ 4. members and audit

def walk(w, path, limit):
    pages, cursor = [], None
    while True:
        q = ("&" if "?" in path else "?") + f"limit={limit}" + (
            f"&cursor={cursor}" if cursor else "")
        page = w.admin("GET", path + q, expect=200).json()
        assert set(page) == {"items", "next"}
        pages.append(page)
        cursor = page["next"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "paging does not end"


def test_members_and_audit_after_syncs_both_ways(world):
    w = world
    cid, pid = w.campaign(), w.program()
    ann, bob, cy, dee = people(w, 4, "mem")
    w.start(workers=1, threads=2)
    w.put_mapping(pid, cid, expect=(201,), enabled=True)
    # Marketo's trigger does not fire for the service's own API writes here, so that what is
    # recorded is the people's changes only (the echoes: test_echo_of_own_marketo_write_...).
    w.mk.ctl("POST", "config", {"fireOnApi": False})

    # Marketo -> Salesforce (a person in Marketo, the webhook), and Salesforce -> Marketo (a
    # person in Salesforce, the Outbound Message).
    w.mk_human(pid, ann, "Registered")
    w.mk_human(pid, cy, "Invited")
    w.sf_human(cid, bob, "Attended")
    w.sf_human(cid, dee, "Registered")
    w.wait_both(pid, cid, {ann: "Registered", cy: "Invited", bob: "Attended", dee: "Registered"})
    # The recommended webhook template carries no status and {{system.dateTime}} only to the
    # second, so a second change of the same lead within the same second renders the same
    # body and is de-duplicated as a resend: let the clock pass to the next second.
    next_second()
    w.mk_human(pid, ann, "Attended")                      # a status change
    w.mk_human(pid, cy, "Not in Program")                 # a removal
    w.wait_both(pid, cid, {ann: "Attended", bob: "Attended", dee: "Registered"})
    w.wait_settled()
    no_dead_letters(w)

    r = w.admin("GET", f"/v1/campaigns/{cid}/members", expect=200)
    assert r.header("Content-Type") == "application/json"
    page = r.json()
    assert page["next"] is None
    items = {m["email"]: m for m in page["items"]}
    # cy left: a former member is not listed.
    assert set(items) == {ann.email, bob.email, dee.email}, page
    for p, status, source in ((ann, "Attended", "marketo"), (bob, "Attended", "salesforce"),
                              (dee, "Registered", "salesforce")):
        m = items[p.email]
        assert set(m) == MEMBER_FIELDS, m
        assert m["marketoLeadId"] == str(p.lead), m
        assert id15(m["salesforceId"]) == id15(p.sf_id), m
        assert (m["status"], m["programStatus"], m["source"]) == (status, status, source), m
        assert ISO_MS.match(m["updatedAt"]), m
    # The 15- and 18-character forms of the campaign id answer the same.
    assert w.admin("GET", f"/v1/campaigns/{cid[:15]}/members", expect=200).json() == page
    # Paging.
    for limit in (1, 2):
        pages = walk(w, f"/v1/campaigns/{cid}/members", limit)
        emails = [m["email"] for pg in pages for m in pg["items"]]
        assert sorted(emails) == sorted(items), (limit, pages)
        assert all(len(pg["items"]) <= limit for pg in pages)
    # A campaign nobody synced, and bad parameters.
    assert w.admin("GET", "/v1/campaigns/7015g000000NoneAAA/members", expect=200).json() == {
        "items": [], "next": None}
    for q in ("?limit=0", "?limit=1001", "?cursor=abc"):
        r = w.admin("GET", f"/v1/campaigns/{cid}/members{q}")
        assert r.status == 400 and r.json()["error"] == "invalid_parameter", (q, r.body)

    # Audit: every applied change, newest first, for the program and for the campaign.
    log = w.audit(f"?programId={pid}")
    assert log["next"] is None
    entries = log["items"]
    for e in entries:
        assert AUDIT_FIELDS <= set(e), e
        assert (e["programId"], id15(e["campaignId"])) == (str(pid), id15(cid)), e
        assert ISO_MS.match(e["at"]), e
    ats = [e["at"] for e in entries]
    assert ats == sorted(ats, reverse=True), f"not newest first: {ats}"

    def find(email, target, action, status=None):
        return [e for e in entries if e["email"].lower() == email and e["target"] == target
                and e["action"] == action and e.get("status") == status]
    assert find(ann.email, "salesforce", "upsert_member", "Registered"), entries
    assert find(ann.email, "salesforce", "upsert_member", "Attended"), entries
    assert find(cy.email, "salesforce", "remove_member"), entries
    assert find(bob.email, "marketo", "set_status", "Attended"), entries
    assert find(dee.email, "marketo", "set_status", "Registered"), entries
    for e in find(ann.email, "salesforce", "upsert_member", "Attended"):
        assert e["source"] == "marketo" and e["result"] == "applied", e
    for e in find(bob.email, "marketo", "set_status", "Attended"):
        assert e["source"] == "salesforce" and e["result"] == "applied", e
    # Newest first: ann's change to Attended came after her registration.
    i_att = entries.index(find(ann.email, "salesforce", "upsert_member", "Attended")[0])
    i_reg = entries.index(find(ann.email, "salesforce", "upsert_member", "Registered")[0])
    assert i_att < i_reg
    # The same entries by campaign id (either form), paged; another program has none.
    assert w.audit(f"?campaignId={cid}")["items"] == entries
    assert w.audit(f"?campaignId={cid[:15]}")["items"] == entries
    assert w.audit(f"?programId={pid}&campaignId={cid}")["items"] == entries
    pages = walk(w, f"/v1/audit?programId={pid}", 2)
    assert [e for pg in pages for e in pg["items"]] == entries
    assert w.audit("?programId=999999") == {"items": [], "next": None}
    r = w.admin("GET", "/v1/audit?cursor=x")
    assert r.status == 400 and r.json()["error"] == "invalid_parameter"


def test_echo_of_own_marketo_write_is_never_applied_back(world):
    """Our Marketo write's echo (the trigger fires on API changes too) arriving before the
    Salesforce change it came from is recorded: it must wait for that member's lock, then be
    dropped as an echo. (A Salesforce change of a member not recorded yet used to lock only
    its Salesforce person, so the echo was planned as a first sight and applied back.)"""
    w = world
    cid, pid = w.campaign(), w.program()
    bob, dee = people(w, 2, "echo")
    w.start(workers=1, threads=2)
    w.put_mapping(pid, cid, expect=(201,), enabled=True)
    w.wait_settled()
    # Both changes reach the service in one Outbound Message (one worker batch); each of the
    # batch's two Marketo status writes takes a second, so the echo of the first write (the
    # trigger fires on API changes too) arrives while the batch is still writing.
    w.sf.ctl("POST", "config", {"outboundBatchMs": 500})
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "delay", "delay_ms": 1000, "method": "POST",
                                            "path": r"/members/status\.json$", "count": 2}]})
    echo0 = w.process_metric("campaign_sync_events_dropped_total", svc=w.workers[0], reason="echo")
    applied0 = w.process_metric("campaign_sync_events_applied_total", svc=w.workers[0],
                        target="salesforce")
    sf_seq = w.sf.ctl("GET", "calls")["next"]
    w.sf_human(cid, bob, "Attended")
    w.sf_human(cid, dee, "Registered")
    w.wait_both(pid, cid, {bob: "Attended", dee: "Registered"})
    cs.wait_until(lambda: len(w.mk.ctl("GET", "webhooks")["webhooks"]) >= 2, T,
                  what="Marketo's two webhooks")
    w.wait_settled()
    no_dead_letters(w)
    # Each echo is dropped and counted; nothing is applied back to Salesforce.
    applied_back = [e for e in w.audit(f"?programId={pid}")["items"] if e["target"] == "salesforce"]
    assert applied_back == [], applied_back
    assert w.process_metric("campaign_sync_events_applied_total", svc=w.workers[0],
                    target="salesforce") == applied0
    assert w.process_metric("campaign_sync_events_dropped_total", svc=w.workers[0],
                    reason="echo") == echo0 + 2
    reads = [c for c in w.sf.calls(sf_seq) if c["path"].endswith("/query")]
    assert reads == [], f"Salesforce was asked about an echo: {reads}"
    sources = {m["email"]: m["source"] for m in
               w.admin("GET", f"/v1/campaigns/{cid}/members", expect=200).json()["items"]}
    assert sources == {bob.email: "salesforce", dee.email: "salesforce"}, sources


def test_member_pages_are_full_until_the_last(world):
    w = world
    cid, pid = w.campaign(), w.program()
    ann, bob, cy = people(w, 3, "pg")
    w.start(workers=1, threads=2)
    w.put_mapping(pid, cid, expect=(201,), enabled=True)
    for p in (ann, bob, cy):
        w.mk_human(pid, p, "Registered")
    w.wait_both(pid, cid, {ann: "Registered", bob: "Registered", cy: "Registered"})
    next_second()  # see test_members_and_audit_after_syncs_both_ways
    w.mk_human(pid, bob, "Not in Program")  # bob is now the most recently changed record
    w.wait_both(pid, cid, {ann: "Registered", cy: "Registered"})
    w.wait_settled()
    for limit in (1, 2):
        pages = walk(w, f"/v1/campaigns/{cid}/members", limit)
        assert sorted(m["email"] for pg in pages for m in pg["items"]) == [ann.email, cy.email]
        # As every other list of the admin API: full pages, and no empty page.
        assert [len(pg["items"]) for pg in pages] == ([1, 1] if limit == 1 else [2]), pages


# ------------------------------------------------------------------ 5. reconciliation

def test_reconcile_heals_drift_made_directly_in_each_crm(world):
    w = world
    cid, pid = w.campaign(), w.program()
    ann, bob, cy, dee, eve = people(w, 5, "rec")
    w.start(workers=2, threads=1)
    w.put_mapping(pid, cid, expect=(201,), enabled=True)

    # In sync first, through the webhooks.
    w.mk_human(pid, ann, "Registered")
    w.mk_human(pid, bob, "Registered")
    w.sf_human(cid, cy, "Attended")
    w.sf_human(cid, eve, "Invited")
    w.wait_both(pid, cid, {ann: "Registered", bob: "Registered", cy: "Attended",
                           eve: "Invited"})
    w.wait_settled()
    j = reconcile(w, pid)
    assert (j["kind"], j["trigger"], j["programId"], j["campaignId"]) == (
        "reconcile", "request", str(pid), cid)
    c = j["counts"]
    assert (c["compared"], sum(c["differences"].values()), c["queued"]) == (4, 0, 0), j
    assert job_details(w, j["id"]) == []
    diffs0 = {k: w.worker_metric("campaign_sync_reconcile_differences_total", kind=k)
              for k in ("missing_in_marketo", "missing_in_salesforce", "status_differs")}
    audit0 = len(w.audit(f"?programId={pid}&limit=1000")["items"])

    # Drift no webhook reports: Salesforce's Outbound Message and Marketo's webhook are off.
    w.hooks(False)
    w.sf_human(cid, dee, "Registered")            # added in Salesforce
    w.mk_human(pid, ann, "Attended")              # status changed in Marketo
    w.mk_human(pid, bob, "Not in Program")        # removed in Marketo
    w.sf_human_delete(cid, cy)                    # removed in Salesforce
    assert w.sf.ctl("GET", "outbound")["pending"] == 0
    assert w.mk.ctl("GET", "webhooks")["pending"] == 0
    w.wait_settled()
    assert cs.queue_len(w.redis) == 0, "no event reached the service"

    j = reconcile(w, pid)
    c = j["counts"]
    assert (c["compared"], sum(c["differences"].values()), c["queued"]) == (5, 4, 4), j
    assert (c["applied"], c["skipped"], c["deadLettered"]) == (4, 0, 0), j
    rep = job_details(w, j["id"])
    details = {d["email"]: d for d in rep}
    assert set(details) == {ann.email, bob.email, cy.email, dee.email}, rep
    for d in rep:
        assert set(d) == {"email", "marketo", "salesforce", "kind", "action"}, d
    assert (details[ann.email]["marketo"], details[ann.email]["salesforce"]) == (
        "Attended", "Registered")
    assert (details[bob.email]["marketo"], details[bob.email]["salesforce"]) == (
        None, "Registered")
    assert (details[cy.email]["marketo"], details[cy.email]["salesforce"]) == ("Attended", None)
    assert (details[dee.email]["marketo"], details[dee.email]["salesforce"]) == (
        None, "Registered")
    # The side that changed since the recorded state wins.
    assert {e: d["action"] for e, d in details.items()} == {
        ann.email: 'Salesforce set to Marketo\'s "Attended"',
        bob.email: "removed from Salesforce",
        cy.email: "removed from Marketo",
        dee.email: 'Marketo set to Salesforce\'s "Registered"'}, rep

    # The workers apply the corrections: both sides agree.
    w.wait_both(pid, cid, {ann: "Attended", dee: "Registered", eve: "Invited"})
    w.wait_settled()
    no_dead_letters(w)
    assert w.sf_member(cid, ann)["LastModifiedById"] == "005000000000001AAA"

    # Counted by kind, in the worker process that ran the job, as in the job.
    assert {e: d["kind"] for e, d in details.items()} == {
        ann.email: "status_differs", bob.email: "missing_in_marketo",
        cy.email: "missing_in_salesforce", dee.email: "missing_in_marketo"}
    want = {"missing_in_marketo": 2, "missing_in_salesforce": 1, "status_differs": 1}
    assert c["differences"] == want, j
    for kind, n in want.items():
        assert w.worker_metric("campaign_sync_reconcile_differences_total", kind=kind) == \
            diffs0[kind] + n, kind

    # Nothing left to do: a second run finds no difference and queues nothing.
    c = reconcile(w, pid)["counts"]
    assert (c["compared"], sum(c["differences"].values()), c["queued"]) == (3, 0, 0), c

    # The corrections are in the audit log, newest first, before the earlier changes.
    entries = w.audit(f"?programId={pid}&limit=1000")["items"]
    new = entries[:len(entries) - audit0]
    got = {(e["email"].lower(), e["target"], e["action"], e.get("status")) for e in new}
    assert {(ann.email, "salesforce", "upsert_member", "Attended"),
            (bob.email, "salesforce", "remove_member", None),
            (cy.email, "marketo", "remove_member", None),
            (dee.email, "marketo", "set_status", "Registered")} <= got, new
    assert all(e["result"] == "applied" for e in new), new
    assert w.audit(f"?campaignId={cid}&limit=1000")["items"] == entries

    # Members as recorded now.
    members = {m["email"]: m for m in
               w.admin("GET", f"/v1/campaigns/{cid}/members", expect=200).json()["items"]}
    assert set(members) == {ann.email, dee.email, eve.email}, members
    assert (members[ann.email]["status"], members[ann.email]["programStatus"]) == (
        "Attended", "Attended")
    assert (members[dee.email]["status"], members[dee.email]["programStatus"]) == (
        "Registered", "Registered")

    # Unknown mapping.
    r = w.admin("POST", "/v1/mappings/999999/reconcile")
    assert r.status == 404 and r.json()["message"] == "no mapping for program 999999"
    # The job of a reconciliation: kind, trigger, times.
    assert j["kind"] == "reconcile" and j["startedAt"] and j["endedAt"], j
