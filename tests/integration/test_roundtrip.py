"""`campaign-sync check --roundtrip PROGRAM_ID` (issue 16, "Sandbox acceptance"), end to end:
real Redis, both CRM simulators and the real binary as one `serve` process that both
simulators notify (the Salesforce simulator's Outbound Message on CampaignMember, the Marketo
simulator's "Program Status is Changed" webhook), and the command itself as a user runs it,
with the service's own environment.

The round trip makes one marked test person (campaign-sync-roundtrip+<unix time>@example.com)
a member in Marketo, waits for Salesforce, changes the campaign member's status in Salesforce
with the service's own credentials, waits for Marketo, and cleans up. What is checked is what
a user sees: the command's lines and exit status, the calls each simulator received, and that
neither simulator holds the test person afterwards."""
import re
import signal
import subprocess
import time

import pytest

import cs
from cs import WEBINAR

LINE = re.compile(r"^(ok  |WARN|FAIL)  (.{22}) +(\d+) ms  (.*)$")
TESTER = re.compile(r"^campaign-sync-roundtrip\+\d+@example\.com$")
STEPS = ["mapping", "statuses", "marketo test lead", "marketo status", "marketo -> salesforce",
         "salesforce status", "salesforce -> marketo", "cleanup program", "cleanup salesforce",
         "cleanup marketo lead"]


@pytest.fixture
def world(world):
    """Both simulators and one `serve` process they notify."""
    return world.defaults(command="serve", workers=0, hooks=True)


def pair(w, enabled=True, statuses=WEBINAR, status_map=None):
    """A program of the Webinar channel mapped to a campaign with the given statuses."""
    cid = w.campaign(statuses=statuses)
    pid = w.program()
    w.map(pid, cid, enabled=enabled, force=True, **({"statusMap": status_map} if status_map else {}))
    return pid, cid


def roundtrip(w, *args, timeout=5, **env):
    """Runs `check --roundtrip ARGS`; returns (rc, [(level, step, ms, text)], stdout)."""
    e = cs.base_env(w.redis.url, w.workdir, **{**w.env, **env})
    rc, out, err = cs.run_command(e, "check", "--roundtrip", *[str(a) for a in args],
                                  "--timeout", str(timeout), timeout=120)
    lines = []
    for text in out.splitlines()[:-1]:
        m = LINE.match(text)
        assert m, f"not a step line: {text!r}\n{out}\n{err}"
        lines.append((m.group(1).strip(), m.group(2).strip(), int(m.group(3)), m.group(4)))
    return rc, lines, out


def leftovers(w):
    """Everything of a test person either simulator still holds."""
    mk, sf = w.mk.ctl("GET", "state"), w.sf.ctl("GET", "state")
    leads = [l for l in mk["leads"] if TESTER.match(l["email"] or "")]
    ids = {l["id"] for l in leads}
    return {"marketo leads": leads,
            "marketo members": [m for m in mk["members"] if m["leadId"] in ids],
            "salesforce leads": [l for l in sf["leads"] if TESTER.match(l["Email"] or "")],
            "salesforce members": [m for m in sf["members"]
                                   if TESTER.match(m.get("Email") or "")]}


def no_leftovers(w):
    left = leftovers(w)
    assert not any(left.values()), left


def steps(lines):
    return [(level, step) for level, step, _, _ in lines]


# ------------------------------------------------------------------ the happy path

def test_roundtrip_passes_both_ways_and_leaves_nothing(world):
    w = world.start()
    pid, cid = pair(w, status_map={"Registered": "Signed Up"},
                      statuses=["Invited", "Signed Up", "No Show", "Attended", "Attended On-demand"])
    rc, lines, out = roundtrip(w, pid, timeout=30)
    assert rc == 0, out
    assert steps(lines) == [("ok", s) for s in STEPS], out
    assert out.splitlines()[-1].startswith("10 ok, 0 FAIL, 0 WARN; test person "
                                           "campaign-sync-roundtrip+"), out
    email = out.splitlines()[-1].split("test person ")[1]
    assert TESTER.match(email), email
    text = {step: t for _, step, _, t in lines}
    assert text["mapping"] == f"program {pid} <-> campaign {cid}, enabled"
    # The lowest mapped step first, then the next one up, through the statusMap entry.
    assert text["statuses"] == ('Marketo "Invited" = Salesforce "Invited" first, then '
                                'Salesforce "Signed Up" = Marketo "Registered"'), text
    assert 'with Status "Invited"' in text["marketo -> salesforce"], text
    assert '"Registered" in program' in text["salesforce -> marketo"], text
    assert text["cleanup salesforce"].startswith("the service removed the campaign member"), text

    # Marketo: the tool's status call ("Invited"), then the service's ("Registered", from
    # the tool's change in Salesforce), then the removal and the deletion of the lead.
    calls = w.mk.calls()
    status_calls = [(c["path"].split("/")[4], c["body"]["statusName"]) for c in calls
                    if c["path"].endswith("/members/status.json")]
    assert status_calls[:2] == [(str(pid), "Invited"), (str(pid), "Registered")], status_calls
    assert any(c["path"] == f"/rest/v1/programs/{pid}/members/delete.json" for c in calls)
    assert any(c["path"] == "/rest/v1/leads/delete.json" for c in calls)
    # Salesforce: the service created the Lead and the member, the tool changed its Status.
    sf_calls = w.sf.calls()
    patches = [c for c in sf_calls if c["method"] == "PATCH"
               and c["path"].endswith("/composite/sobjects")]
    assert any(r.get("Status") == "Signed Up" for c in patches for r in c["body"]["records"]), \
        patches
    no_leftovers(w)
    assert w.dead_letters() == []
    # The service lists no member of the campaign; its audit log keeps the round trip.
    r = w.ingest.req("GET", f"/v1/campaigns/{cid}/members", None, cs.admin_headers())
    assert r.json() == {"items": [], "next": None}, r.body
    r = w.ingest.req("GET", f"/v1/audit?programId={pid}", None, cs.admin_headers())
    assert {e["email"] for e in r.json()["items"]} == {email}, r.body


def sf_api(sf, method, path, body=None):
    """A Salesforce REST call with the service's own (integration user's) credentials."""
    tok = cs.request(sf.port, "POST", "/services/oauth2/token",
                     "grant_type=client_credentials&client_id=sim-sf-client&"
                     "client_secret=sim-sf-secret",
                     {"Content-Type": "application/x-www-form-urlencoded"}).json()["access_token"]
    return cs.request(sf.port, method, "/services/data/v62.0/" + path, body,
                      {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"})


def test_other_people_saved_by_the_integration_user_stay_echoes(world):
    """The exception of plan rule 1 is the marked test person's only: anyone else's member
    saved with the service's credentials (LastModifiedById = SF_INTEGRATION_USER_ID) is the
    service's own write and does not reach Marketo."""
    w = world.start()
    pid, cid = pair(w)
    mlead = w.mk.ctl("POST", "seed", {"leads": [{"email": "ann.lee@example.com"}]})["leads"][0]
    w.mk.ctl("POST", "members", {"programId": pid, "leadId": mlead["id"],
                                 "statusName": "Invited"})
    cm = cs.wait_until(lambda: w.sf.ctl("GET", f"members?campaignId={cid}")["members"], 20,
                       what="the member in Salesforce")[0]
    r = sf_api(w.sf, "PATCH", f"sobjects/CampaignMember/{cm['Id']}", {"Status": "Registered"})
    assert r.status == 204, r.body

    def echoes():
        m = w.ingest.req("GET", "/metrics").body.decode()
        return (cs.metric_value(m, "campaign_sync_events_dropped_total", reason="echo") or 0) >= 2
    # Two echoes: the Outbound Message of the service's own create, and of this save.
    cs.wait_until(echoes, 20, what="the save to be dropped as an echo")
    members = {m["leadId"]: m["statusName"] for m in
               w.mk.ctl("GET", f"members?programId={pid}")["members"]}
    assert members == {mlead["id"]: "Invited"}, members


# ------------------------------------------------------------------ failing paths

def test_marketo_webhook_not_firing_fails_with_its_hint_and_cleans_up(world):
    w = world.start()
    pid, cid = pair(w)
    # A Marketo instance whose trigger does not qualify API changes (or an inactive
    # trigger campaign): the service never hears of the test person's status.
    w.mk.ctl("POST", "config", {"fireOnApi": False})
    t0 = time.monotonic()
    rc, lines, out = roundtrip(w, pid, timeout=3)
    assert rc == 1, out
    assert steps(lines) == [("ok", "mapping"), ("ok", "statuses"), ("ok", "marketo test lead"),
                            ("ok", "marketo status"), ("FAIL", "marketo -> salesforce"),
                            ("ok", "cleanup program"), ("ok", "cleanup salesforce"),
                            ("ok", "cleanup marketo lead")], out
    level, step, ms, text = lines[4]
    assert 3000 <= ms < 10000, lines[4]
    assert text.startswith(f"after 3 s Salesforce shows no campaign member of campaign {cid} "
                           "for campaign-sync-roundtrip+"), text
    assert '@example.com (wanted Status "Invited"): the service did not hear' in text, text
    for hint in ("Program Status is Changed", "every time", "X-Webhook-Secret",
                 "MARKETO_WEBHOOK_SECRET", "/webhooks/marketo", "GET /v1/deadletters"):
        assert hint in text, (hint, text)
    assert "1 FAIL" in out.splitlines()[-1]
    assert time.monotonic() - t0 < 60
    no_leftovers(w)
    # Nothing was written to Salesforce for it.
    assert not [c for c in w.sf.calls() if c["method"] in ("POST", "PATCH")
                and "Lead" in str(c.get("body"))]


def test_wrong_webhook_secret_fails_and_marketo_logs_the_401(world):
    w = world.start()
    pid, _ = pair(w)
    w.mk.ctl("POST", "config", {"webhookSecret": "not-the-secret"})
    rc, lines, out = roundtrip(w, pid, timeout=2)
    assert rc == 1, out
    assert ("FAIL", "marketo -> salesforce") in steps(lines), out
    # The webhook was refused with 401: what Marketo's activity log shows.
    hooks = w.mk.ctl("GET", "webhooks")["webhooks"]
    assert hooks and all(h["status"] == 401 for h in hooks), hooks
    no_leftovers(w)


def test_outbound_message_not_firing_fails_and_the_service_removes_the_member(world):
    w = world.start()
    pid, cid = pair(w)
    # Marketo -> Salesforce works; then Salesforce's Outbound Message stops.
    w.sf.ctl("POST", "config", {"outboundUrl": None})
    rc, lines, out = roundtrip(w, pid, timeout=8)
    assert rc == 1, out
    assert steps(lines) == [("ok", s) for s in STEPS[:6]] + [
        ("FAIL", "salesforce -> marketo"), ("ok", "cleanup program"),
        ("ok", "cleanup salesforce"), ("ok", "cleanup marketo lead")], out
    text = lines[6][3]
    assert text.startswith("after 8 s Marketo shows lead "), text
    assert '"Invited" in program' in text and '(wanted "Registered")' in text, text
    for hint in ("Outbound Messages", "Delivery Status", "/webhooks/salesforce", "every update",
                 "SF_ORG_ID"):
        assert hint in text, (hint, text)
    # The clean-up's removal from the program reached Salesforce through the service.
    assert lines[8][3].startswith("the service removed the campaign member"), lines[8]
    no_leftovers(w)
    assert w.dead_letters() == []


def test_a_dead_letter_of_the_test_person_is_named(world):
    w = world.start()
    pid, _ = pair(w)
    # The integration user may not create Leads: the service dead-letters the change.
    w.sf.ctl("POST", "config", {"permissions": {"Lead": {"createable": False}}})
    rc, lines, out = roundtrip(w, pid, timeout=8)
    assert rc == 1, out
    assert ("FAIL", "marketo -> salesforce") in steps(lines), out
    text = [t for _, s, _, t in lines if s == "marketo -> salesforce"][0]
    dead = w.dead_letters()
    assert len(dead) == 1 and TESTER.match(dead[0]["event"]["email"]), dead
    assert f"The service dead-lettered it: {dead[0]['error']}" in text, (text, dead)
    no_leftovers(w)


def test_interrupt_ends_the_wait_and_still_cleans_up(world):
    w = world.start()
    pid, _ = pair(w)
    w.mk.ctl("POST", "config", {"fireOnApi": False})
    e = cs.base_env(w.redis.url, w.workdir, **w.env)
    p = subprocess.Popen([cs.BIN, "check", "--roundtrip", str(pid), "--timeout", "600"], env=e,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while not any(l.startswith("ok    marketo status") for l in seen):
            line = p.stdout.readline()
            assert line, f"ended early: {seen} {p.stderr.read()}"
            seen.append(line)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, (out, err)
    assert not cs.SANITIZER_RE.search(err), err
    rest = [l for l in out.splitlines()]
    assert re.match(r"^FAIL  marketo -> salesforce +\d+ ms  interrupted$", rest[0]), rest
    assert [l.split()[0:3] for l in rest[1:4]] == [["ok", "cleanup", "program"],
                                                   ["ok", "cleanup", "salesforce"],
                                                   ["ok", "cleanup", "marketo"]], rest
    no_leftovers(w)


def test_disabled_mapping_fails_at_once_and_touches_no_crm(world):
    w = world.start()
    pid, _ = pair(w, enabled=False)
    mk_before, sf_before = len(w.mk.calls()), len(w.sf.calls())
    rc, lines, out = roundtrip(w, pid)
    assert rc == 1, out
    assert lines == [("FAIL", "mapping", lines[0][2],
                      f"the mapping of program {pid} is disabled: changes would wait, not sync — "
                      f'enable it (PUT /v1/mappings/{pid} with "enabled": true)')], out
    assert out.splitlines()[-1] == "0 ok, 1 FAIL, 0 WARN"
    assert len(w.mk.calls()) == mk_before and len(w.sf.calls()) == sf_before
    no_leftovers(w)


def test_sync_switched_off_fails_at_once(world):
    w = world.start()
    pid, _ = pair(w)
    r = w.ingest.req("PUT", "/v1/sync", {"enabled": False}, cs.admin_headers())
    assert r.status == 200, r.body
    rc, lines, out = roundtrip(w, pid)
    assert rc == 1
    assert steps(lines) == [("FAIL", "mapping")], out
    assert "PUT /v1/sync" in lines[0][3]


def test_unknown_program_fails_with_the_fix(world):
    w = world.start()
    pair(w)
    rc, lines, out = roundtrip(w, 424242)
    assert rc == 1, out
    assert steps(lines) == [("FAIL", "mapping")], out
    assert lines[0][3].startswith("no mapping for program 424242 in Redis — map it first "
                                  "(PUT /v1/mappings/424242)"), lines
    no_leftovers(w)


def test_one_mapped_status_is_not_enough(world):
    w = world.start()
    pid, _ = pair(w, statuses=["Invited", "Responded"])
    rc, lines, out = roundtrip(w, pid)
    assert rc == 1, out
    assert steps(lines) == [("ok", "mapping"), ("FAIL", "statuses")], out
    assert "1 status(es) map" in lines[1][3] and f"/v1/mappings/{pid}/validation" in lines[1][3]
    no_leftovers(w)


def test_bad_arguments_are_refused_before_anything(world):
    w = world.start()
    env = cs.base_env(w.redis.url, w.workdir, **w.env)
    for args in (["--roundtrip"], ["--roundtrip", "12a"], ["--roundtrip", "1", "--timeout", "0"],
                 ["--roundtrip", "1", "--timeout", "3601"], ["--timeout", "5"], ["--bogus"]):
        rc, out, err = cs.run_command(env, "check", *args)
        assert rc == 2, (args, out, err)
        assert out == "" and err.startswith("campaign-sync check: "), (args, err)


def test_help_documents_the_round_trip():
    rc, out, _ = cs.run_command({"PATH": "/usr/bin:/bin"}, "--help")
    assert rc == 0
    assert "check --roundtrip PROGRAM_ID [--timeout SECONDS]" in out
    assert "default 120" in out


# ------------------------------------------------------------------ the simulator's lead deletion

def test_marketo_sim_deletes_leads_as_documented(mkto_sim):
    """Adobe "Leads", Delete: POST /rest/v1/leads/delete.json {"input":[{"id"}]}; the lead goes
    with its program memberships; an unknown id is skipped (1004)."""
    sim = mkto_sim
    pid = sim.ctl("POST", "seed", {"programs": [{"name": "P", "channel": "Webinar"}]})["programs"][0]["id"]
    lead = sim.ctl("POST", "seed", {"leads": [{"email": "x@example.com"}]})["leads"][0]["id"]
    sim.ctl("POST", "members", {"programId": pid, "leadId": lead, "statusName": "Invited"})
    tok = cs.request(sim.port, "GET", "/identity/oauth/token?grant_type=client_credentials&"
                     "client_id=sim-mkto-client&client_secret=sim-mkto-secret").json()["access_token"]
    r = cs.request(sim.port, "POST", "/rest/v1/leads/delete.json",
                   {"input": [{"id": lead}, {"id": 999}]},
                   {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"})
    body = r.json()
    assert body["success"] is True, body
    assert body["result"] == [{"id": lead, "status": "deleted"},
                              {"id": 999, "status": "skipped",
                               "reasons": [{"code": "1004", "message": "Lead not found"}]}], body
    state = sim.ctl("GET", "state")
    assert state["leads"] == [] and state["members"] == []
