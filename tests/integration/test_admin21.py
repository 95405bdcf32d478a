"""Issue 21, the admin API and ingest parts: PATCH of a mapping (JSON merge patch), dead
letters replayed by a filter, queue gauges per direction, and rotating the Marketo webhook
secret without losing an event.

Real Redis and the real binary throughout; where a CRM takes part, both simulators, and the
changes reach the service as in production (a person changing a member in the Marketo
simulator fires its webhook, one in the Salesforce simulator an Outbound Message). Outcomes
are read where a user sees them: the answers of the admin API, both simulators' members and
campaigns, the queue streams, /metrics (checked by promtool) and the log."""
import json
import os
import time

import pytest

import cs

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)
# A campaign without "No Show" and "Attended On-demand", with a status Marketo lacks.
ODD = ["Invited", "Registered", "Attended", "Did Not Attend"]
ADMIN = cs.admin_headers()
PATCH_HEADERS = {**ADMIN, "Content-Type": "application/merge-patch+json"}
CID = "7015g000000CampAAA"
OLD_SECRET = cs.WEBHOOK_SECRET
NEW_SECRET = "9b1d4f3e7a2c6e8b0d1f3a5c7e9b2d4f6a8c0e1b3d5f7a9c"


def admin(svc, method, path, body=None, headers=ADMIN, expect=None):
    r = svc.req(method, path, json.dumps(body) if body is not None else None, headers)
    if expect is not None:
        assert r.status == expect, f"{method} {path}: {r.status} {r.body[:800]!r}"
    return r


def metrics(svc):
    text = svc.req("GET", "/metrics").body.decode()
    assert cs.promtool_check(text) == "", cs.promtool_check(text)
    return text


# ------------------------------------------------------------------ a world with both CRMs

@pytest.fixture
def world(world):
    """One ingest and one worker process, background jobs quiet, both CRMs' webhooks on."""
    return world.defaults(workers=1, quiet=True, hooks=True)


def people(w, n, prefix):
    """n people, each a Lead in Salesforce and a lead in Marketo (of company Acme)."""
    return w.sf_people(n, prefix, company="Acme", marketo_company=True)


# ------------------------------------------------------------------ PATCH /v1/mappings/{id}

def test_patch_keeps_the_status_map(redis, service):
    m = "/v1/mappings/1001"
    put = admin(service, "PUT", m, {"campaignId": CID, "enabled": True,
                                    "statusMap": {"Invited": "Sent", "Registered": "Responded"}},
                expect=201).json()
    time.sleep(0.002)  # a later updatedAt
    r = admin(service, "PATCH", m, {"enabled": False}, PATCH_HEADERS, expect=200)
    got = r.json()
    assert got["enabled"] is False and got["statusCheck"] == "skipped"
    assert got["statusMap"] == {"Invited": "Sent", "Registered": "Responded"}
    assert got["campaignId"] == CID and got["createdAt"] == put["createdAt"]
    assert got["updatedAt"] > put["updatedAt"]
    stored = admin(service, "GET", m, expect=200).json()
    assert stored == {k: v for k, v in got.items() if k != "statusCheck"}

    # One entry changed, one added, one removed (null); plain JSON is accepted too.
    r = admin(service, "PATCH", m, {"statusMap": {"Invited": "Sent Invite", "Registered": None,
                                                  "No Show": "Did Not Attend"}}, expect=200)
    assert r.json()["statusMap"] == {"Invited": "Sent Invite", "No Show": "Did Not Attend"}
    assert r.json()["enabled"] is False
    # An empty patch changes nothing but updatedAt.
    before = admin(service, "GET", m, expect=200).json()
    after = admin(service, "PATCH", m, {}, PATCH_HEADERS, expect=200).json()
    assert {k: v for k, v in after.items() if k not in ("updatedAt", "statusCheck")} == \
        {k: v for k, v in before.items() if k != "updatedAt"}
    # null for the whole map: no explicit entries.
    r = admin(service, "PATCH", m, {"statusMap": None}, PATCH_HEADERS, expect=200)
    assert r.json()["statusMap"] == {}

    # PUT keeps replacing the whole mapping: fields left out take their defaults.
    admin(service, "PATCH", m, {"statusMap": {"Invited": "Sent"}}, PATCH_HEADERS, expect=200)
    r = admin(service, "PUT", m, {"campaignId": CID, "enabled": False}, expect=200)
    assert r.json()["statusMap"] == {}


def test_patch_validation_errors_leave_the_mapping_as_it_was(redis, service):
    m = "/v1/mappings/1001"
    admin(service, "PUT", m, {"campaignId": CID, "enabled": False,
                              "statusMap": {"Invited": "Sent", "Registered": "Responded"}},
          expect=201)
    admin(service, "PUT", "/v1/mappings/1002", {"campaignId": "7015g000000CmpBAAA",
                                                 "enabled": False}, expect=201)
    raw = redis.cmd("GET", "cs:mapping:1001")

    def refused(body, status, error, message, headers=PATCH_HEADERS, path=m):
        r = svc_req(path, body, headers)
        assert (r.status, r.json()) == (status, {"error": error, "message": message}), r.body
        assert redis.cmd("GET", "cs:mapping:1001") == raw
        return r

    def svc_req(path, body, headers):
        return service.req("PATCH", path, body if isinstance(body, str) else json.dumps(body),
                           headers)

    refused({"enabled": True}, 404, "not_found", "no mapping for program 1003",
            path="/v1/mappings/1003")
    r = refused({"enabled": True}, 415, "unsupported_media_type",
                'Content-Type must be application/merge-patch+json (or application/json), got '
                '"text/plain"', headers={**ADMIN, "Content-Type": "text/plain"})
    assert r.header("Accept-Patch") == "application/merge-patch+json, application/json"
    # A JSON Patch (RFC 6902) is another format.
    refused([{"op": "replace", "path": "/enabled", "value": True}], 415,
            "unsupported_media_type", 'Content-Type must be application/merge-patch+json (or '
            'application/json), got "application/json-patch+json"',
            headers={**ADMIN, "Content-Type": "application/json-patch+json"})
    refused({"enabeld": True, "statusmap": {}, "enabled": True}, 400, "invalid_patch",
            'unknown fields "enabeld", "statusmap": a mapping patch may hold campaignId, '
            'enabled, statusMap and force')
    refused({"programId": "1001"}, 400, "invalid_patch",
            "\"programId\" cannot be changed: the program is the mapping's path, and the times "
            "are kept by the service")
    refused({"enabled": None}, 400, "invalid_patch",
            "enabled cannot be removed (null): a mapping always has it; send the new value")
    refused({"campaignId": None}, 400, "invalid_patch",
            "campaignId cannot be removed (null): a mapping always has it; send the new value")
    refused("[]", 400, "invalid_patch",
            'the body must be one JSON object, a merge patch of the mapping: the fields to '
            'change, null to remove one (e.g. {"enabled": false} or {"statusMap": {"No Show": '
            'null}})')
    # The patched mapping fails PUT's own checks, with PUT's own words.
    refused({"statusMap": {"Attended": "Responded"}}, 400, "invalid_mapping",
            'statusMap is not one-to-one: "Registered" and "Attended" both map to "Responded"')
    refused({"enabled": "yes"}, 400, "invalid_mapping", "enabled must be true or false")
    refused({"campaignId": "001000000000001"}, 400, "invalid_mapping",
            "campaignId must be the 15- or 18-character Salesforce campaign id (701...)")
    refused({"statusMap": {"Not in Program": "Removed"}}, 400, "invalid_mapping",
            'statusMap: "Not in Program" is the absence of membership in Marketo and cannot be '
            'mapped')
    refused({"campaignId": "7015g000000CmpBAAA"}, 409, "conflict",
            "campaign 7015g000000CmpBAAA is already mapped to program 1002; a campaign maps to "
            "one program: delete that mapping first")
    # Without the token, nothing is read.
    r = service.req("PATCH", m, json.dumps({"enabled": True}),
                    {"Content-Type": "application/merge-patch+json"})
    assert r.status == 401 and redis.cmd("GET", "cs:mapping:1001") == raw


def test_patch_enable_with_an_incompatible_map_without_and_with_force(world):
    w = world
    cid = w.campaign(statuses=["Invited", "Registered", "Attended"])
    pid = w.program()
    (ann,) = people(w, 1, "ann")
    w.start()
    m = f"/v1/mappings/{pid}"
    admin(w.ingest, "PUT", m, {"campaignId": cid, "enabled": False,
                               "statusMap": {"Attended On-demand": "Attended"}}, expect=201)
    # Attended and Attended On-demand both reach "Attended": PUT refuses that map, so does PATCH.
    admin(w.ingest, "PATCH", m, {"statusMap": {"Attended On-demand": None}}, PATCH_HEADERS,
          expect=200)

    # A change while the mapping is disabled is parked, and counted per program.
    w.mk_human(pid, ann, "Registered")
    cs.wait_until(lambda: w.redis.cmd("LLEN", f"cs:parked:{pid}") == 1, T, what="the parked event")
    assert cs.metric_value(metrics(w.ingest), "campaign_sync_parked_events",
                           program_id=pid) == 1

    # Enabling compares both sides: "No Show" and "Attended On-demand" have no counterpart.
    r = admin(w.ingest, "PATCH", m, {"enabled": True}, PATCH_HEADERS, expect=409)
    body = r.json()
    assert body["error"] == "incompatible_statuses"
    assert body["message"] == ('statuses without a counterpart: Marketo "No Show", Marketo '
                               '"Attended On-demand"; add them on the other side or to '
                               'statusMap, or send "force": true')
    assert [(u["side"], u["status"]) for u in body["unmatched"]] == [
        ("marketo", "No Show"), ("marketo", "Attended On-demand")]
    assert admin(w.ingest, "GET", m, expect=200).json()["enabled"] is False
    assert w.redis.cmd("LLEN", f"cs:parked:{pid}") == 1
    assert w.sf_members(cid) == {}

    # With force: stored, the parked change applied, the channel copied (F2) at once.
    r = admin(w.ingest, "PATCH", m, {"enabled": True, "force": True}, PATCH_HEADERS, expect=200)
    got = r.json()
    assert (got["enabled"], got["statusCheck"], got["statusMap"]) == (True, "forced", {})
    assert [u["status"] for u in got["unmatched"]] == ["No Show", "Attended On-demand"]
    assert "force" not in admin(w.ingest, "GET", m, expect=200).json()
    cs.wait_until(lambda: w.sf_members(cid) == {ann.email: "Registered"}, T,
                  what="the parked change in Salesforce")
    assert w.redis.cmd("EXISTS", f"cs:parked:{pid}") == 0
    cs.wait_until(lambda: w.campaign_record(cid)["Type"] == "Webinar", T,
                  what="the channel copied to the campaign's Type")
    assert cs.metric_value(metrics(w.ingest), "campaign_sync_parked_events",
                           program_id=pid) is None


# ------------------------------------------------------------------ dead letters by filter

def plant_dead_letter(redis, dead_id, event, at_ms, error, attempts=1, queue=1):
    """A dead letter as service/lua/dead_letter.lua stores one: the listed item and the raw
    event in cs:dead:<id>, the id in cs:deadletters scored by its time."""
    raw = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
    item = {"id": dead_id, "at": iso(at_ms), "attempts": attempts, "error": error,
            "event": json.loads(raw)}
    redis.cmd("HSET", f"cs:dead:{dead_id}", "item", json.dumps(item, separators=(",", ":")),
              "event", raw, "q", queue)
    redis.cmd("ZADD", "cs:deadletters", at_ms, dead_id)


def fake_dead_letter(redis, entry_id, raw_event, at_ms, error, attempts=1):
    """Moves a queued entry to the dead letters as a worker would."""
    queue = next(i for i, k in enumerate(cs.STREAMS) if redis.cmd("XRANGE", k, entry_id, entry_id))
    redis.cmd("XDEL", cs.STREAMS[queue], entry_id)
    plant_dead_letter(redis, entry_id, raw_event, at_ms, error, attempts, queue)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def marketo_events(redis, service, program, leads):
    """Queues one Marketo event per lead (the recommended template) and returns
    [(entry id, raw event JSON)] in the order sent."""
    body = [{"type": "member_status_changed", "programId": program, "leadId": lead,
             "email": f"p{lead}@example.com", "status": "Registered",
             "occurredAt": "2026-11-29 10:00:00"} for lead in leads]
    r = service.req("POST", "/webhooks/marketo", json.dumps(body),
                    {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET})
    assert r.status == 202 and r.json() == {"accepted": len(leads), "duplicates": 0}, r.body
    return [(i, f["event"]) for i, _, f in cs.stream_events(redis, cs.STREAM_MKTO)[-len(leads):]]


def unusable_notification(service):
    """An Outbound Message notification without Status: a dead letter with nothing to replay."""
    rec = {"Id": "00v5g00000UnusAAA", "CampaignId": CID, "LeadId": "00Q5g0000000001AAA",
           "Email": "u@example.com", "LastName": "U", "CompanyOrAccount": "Acme",
           "LastModifiedDate": "2026-11-29T10:00:00.000Z",
           "LastModifiedById": "005000000000002AAA"}
    r = service.req("POST", "/webhooks/salesforce", cs.outbound_message([("04l5g00000Unus1AAA", rec)]),
                    {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
    assert r.status == 200, r.body


F11 = ('Marketo program {p} status "Registered" has no counterpart in Salesforce campaign '
       '7015g000000CampAAA: add a campaign member status "Registered" to the campaign or a '
       'statusMap entry to the mapping, then replay this dead letter')
GAVE_UP = "gave up after 10 attempts: salesforce: HTTP 503: Service Unavailable"
REFUSED = "Marketo lead {l} does not exist (deleted or merged?); nothing to add to campaign 701"


def replay(service, body, expect):
    r = admin(service, "POST", "/v1/deadletters/replay", body, expect=expect)
    return r.json()


def ids(items):
    return [d["id"] for d in items]


def test_replay_by_reason_time_range_and_words_with_a_dry_run(redis, service):
    now = int(time.time() * 1000)
    evs = marketo_events(redis, service, 1001, list(range(1, 10)))
    at = {}
    for k, (eid, raw) in enumerate(evs):  # one dead letter a minute, oldest first
        at[eid] = now - (len(evs) - k) * 60000
        error = (F11.format(p=1001) if k < 3 else GAVE_UP if k < 6
                 else REFUSED.format(l=k + 1))
        fake_dead_letter(redis, eid, raw, at[eid], error, attempts=10 if GAVE_UP == error else 1)
    unusable_notification(service)
    (unusable,) = [d for d in admin(service, "GET", "/v1/deadletters", expect=200).json()["items"]
                   if d["attempts"] == 0]

    # The list says each one's kind, and takes the replay's filter.
    listed = admin(service, "GET", "/v1/deadletters?limit=20", expect=200).json()["items"]
    assert [d["reason"] for d in listed] == ["unusable"] + ["refused"] * 3 + ["gave_up"] * 3 + \
        ["unknown_status"] * 3
    f11 = [e for e, _ in evs[:3]]
    q = "/v1/deadletters?reason=unknown_status"
    assert ids(admin(service, "GET", q, expect=200).json()["items"]) == f11[::-1]

    # A dry run counts, and changes nothing.
    before = redis.cmd("ZRANGE", "cs:deadletters", 0, -1)
    assert replay(service, {"reason": "unknown_status", "dryRun": True}, 200) == \
        {"queued": 3, "skipped": 0, "next": None, "dryRun": True}
    assert replay(service, {"dryRun": True}, 200) == \
        {"queued": 9, "skipped": 1, "next": None, "dryRun": True}
    assert redis.cmd("ZRANGE", "cs:deadletters", 0, -1) == before
    assert cs.queue_len(redis) == 0

    # By kind: the three F11 ones are queued again, each as the single replay does.
    assert replay(service, {"reason": "unknown_status"}, 202) == \
        {"queued": 3, "skipped": 0, "next": None, "dryRun": False}
    queued = cs.stream_events(redis, cs.STREAM_MKTO)
    assert sorted(f["event"] for _, _, f in queued) == sorted(raw for _, raw in evs[:3])
    assert all(f == {"event": f["event"], "attempts": "0"} for _, _, f in queued)
    # Past de-duplication: their keys from the webhook are still there.
    assert all(redis.cmd("EXISTS", f"cs:dedup:mkto:{json.loads(f['event'])['id']}") == 1
               for _, _, f in queued)
    for eid in f11:
        assert redis.cmd("EXISTS", f"cs:dead:{eid}") == 0
    assert ids(admin(service, "GET", q, expect=200).json()["items"]) == []

    # By time range (the dead letter's own time, both ends included): the 5th and 6th.
    rng = {"from": iso(at[evs[4][0]]), "to": iso(at[evs[5][0]])}
    listed = admin(service, "GET", f"/v1/deadletters?from={rng['from']}&to={rng['to']}",
                   expect=200).json()["items"]
    assert ids(listed) == [evs[5][0], evs[4][0]]
    assert replay(service, rng, 202)["queued"] == 2
    # By words of the error, case aside.
    assert replay(service, {"errorContains": "DOES NOT EXIST", "dryRun": True}, 200)["queued"] == 3
    # The unusable notification is skipped, and stays.
    assert replay(service, {"reason": "unusable"}, 202) == \
        {"queued": 0, "skipped": 1, "next": None, "dryRun": False}
    assert redis.cmd("ZSCORE", "cs:deadletters", unusable["id"]) is not None
    # Everything else: the rest of gave_up (one) and refused (three), the unusable skipped.
    assert replay(service, {}, 202) == {"queued": 4, "skipped": 1, "next": None, "dryRun": False}
    assert ids(admin(service, "GET", "/v1/deadletters", expect=200).json()["items"]) == \
        [unusable["id"]]
    queued = cs.stream_events(redis, cs.STREAM_MKTO)
    assert sorted(f["event"] for _, _, f in queued) == sorted(raw for _, raw in evs)


def test_replay_refuses_bad_filters_and_changes_nothing(redis, service):
    (eid, raw), = marketo_events(redis, service, 1001, [1])
    fake_dead_letter(redis, eid, raw, int(time.time() * 1000), GAVE_UP, attempts=10)
    for body, message in [
        ({"program": "1001", "dry": True}, 'unknown fields "program", "dry": the body may hold '
         'programId, campaignId, reason, errorContains, from, to, limit, dryRun and cursor'),
        ({"reason": "gave up"}, 'reason must be unknown_status, refused, gave_up or unusable '
         '(got "gave up"); to match words of the error text use errorContains'),
        ({"from": "2026-11-29 10:00:00"}, 'from must be a time with its offset, e.g. '
         '2026-11-29T10:00:00Z (got "2026-11-29 10:00:00")'),
        ({"limit": 1001}, "limit must be an integer from 1 to 1000"),
        ({"programId": 1001}, "programId must be a string"),
        ({"cursor": eid}, 'cursor must be the "next" of a previous answer, unchanged'),
    ]:
        r = admin(service, "POST", "/v1/deadletters/replay", body, expect=400)
        assert r.json() == {"error": "invalid_filter", "message": message}
    r = admin(service, "GET", "/v1/deadletters?reason=x", expect=400)
    assert r.json()["error"] == "invalid_parameter"
    r = admin(service, "GET", f"/v1/deadletters?reason=gave_up&cursor={eid}", expect=400)
    assert r.json()["message"] == ('cursor must be the "next" of a previous page of the same '
                                   'filter, unchanged')
    assert redis.cmd("ZCARD", "cs:deadletters") == 1 and cs.queue_len(redis) == 0
    # DELETE on the bulk replay's path names no dead letter.
    r = service.req("DELETE", "/v1/deadletters/replay", None, ADMIN)
    assert r.status == 405 and r.header("Allow") == "POST"
    assert redis.cmd("ZCARD", "cs:deadletters") == 1


def test_replay_walks_with_a_cursor_over_more_than_the_limit(redis, service):
    now = int(time.time() * 1000)
    evs = marketo_events(redis, service, 1001, list(range(1, 8)))
    others = marketo_events(redis, service, 2002, [50, 51])
    for k, (eid, raw) in enumerate(evs + others):
        # The 3rd and 4th newest share a millisecond: the first page ends between them.
        fake_dead_letter(redis, eid, raw, now - 1000 * (2 if k == 3 else k), GAVE_UP, 10)
    # The list walks the same way, three at a time.
    seen, cursor = [], None
    while True:
        r = admin(service, "GET", "/v1/deadletters?programId=1001&limit=3"
                  + (f"&cursor={cursor}" if cursor else ""), expect=200).json()
        seen += ids(r["items"])
        cursor = r["next"]
        if not cursor:
            break
    assert sorted(seen) == sorted(e for e, _ in evs) and len(seen) == 7

    answers, cursor = [], None
    while True:
        body = {"programId": "1001", "limit": 3, **({"cursor": cursor} if cursor else {})}
        a = replay(service, body, 202)
        answers.append(a)
        cursor = a["next"]
        if not cursor:
            break
    assert [a["queued"] for a in answers] == [3, 3, 1]
    assert all(a["next"] for a in answers[:2]) and answers[2]["next"] is None
    queued = cs.stream_events(redis, cs.STREAM_MKTO)
    assert sorted(f["event"] for _, _, f in queued) == sorted(raw for _, raw in evs)
    assert sorted(ids(admin(service, "GET", "/v1/deadletters", expect=200).json()["items"])) == \
        sorted(e for e, _ in others)


def test_replay_work_is_bounded_per_call(redis, service):
    """5000 dead letters looked at per call at most: one that matches behind 5001 that do not
    is found by the second call, through the cursor."""
    (eid, raw), = marketo_events(redis, service, 1001, [1])
    now = int(time.time() * 1000)
    fake_dead_letter(redis, eid, raw, now - 3600000, F11.format(p=1001))
    # 5001 newer ones of another program (the same item bytes, distinct ids).
    item = json.dumps({"id": "x", "at": iso(now), "attempts": 10, "error": GAVE_UP,
                       "event": {"v": 1, "source": "marketo", "programId": "2002"}})
    redis.cmd("EVAL", "for i = 1, 5001 do\n"
              "  local id = ARGV[2] .. '-' .. i\n"
              "  redis.call('HSET', 'cs:dead:' .. id, 'item', ARGV[1], 'event', '{}', 'q', '1')\n"
              "  redis.call('ZADD', 'cs:deadletters', ARGV[2] + i, id)\n"
              "end\n", 0, item, str(now - 10000))
    first = replay(service, {"programId": "1001"}, 202)
    assert first["queued"] == 0 and first["skipped"] == 0 and first["next"]
    second = replay(service, {"programId": "1001", "cursor": first["next"]}, 202)
    assert second == {"queued": 1, "skipped": 0, "next": None, "dryRun": False}
    assert [f["event"] for _, _, f in cs.stream_events(redis, cs.STREAM_MKTO)] == [raw]
    assert redis.cmd("ZCARD", "cs:deadletters") == 5001


def test_replay_of_a_mapping_after_fixing_its_map_both_directions(world):
    """Real dead letters (F11, each direction) replayed by program after a PATCH of the map;
    the Salesforce-side one is found through the program's campaign, and another mapping's
    dead letter stays."""
    w = world
    cid = w.campaign(statuses=ODD)
    pid = w.program()
    ann, bob = people(w, 2, "p")
    w.start()
    m = f"/v1/mappings/{pid}"
    admin(w.ingest, "PUT", m, {"campaignId": cid, "enabled": True, "force": True}, expect=201)
    w.mk_human(pid, ann, "No Show")        # no "No Show" in the campaign
    w.sf_human(cid, bob, "Did Not Attend")  # no "Did Not Attend" in the program's channel
    cs.wait_until(lambda: len(w.dead_letters()) == 2, T, what="two dead letters")
    # Another mapping's dead letter of the same kind, which a replay by program leaves alone.
    plant_dead_letter(w.redis, "1-0", {"v": 1, "source": "marketo", "type": "member_status_changed",
                                       "id": "e:other", "programId": "2002", "mktoLeadId": "99",
                                       "status": "No Show", "receivedAt": 1},
                      int(time.time() * 1000), F11.format(p=2002))
    assert {d["reason"] for d in w.dead_letters(f"&programId={pid}")} == {"unknown_status"}
    by_program = w.dead_letters(f"&programId={pid}&reason=unknown_status")
    assert {d["event"]["source"] for d in by_program} == {"marketo", "salesforce"}
    by_campaign = w.dead_letters(f"&campaignId={cid[:15]}")
    assert ids(by_campaign) == ids(by_program)
    assert replay(w.ingest, {"programId": str(pid), "dryRun": True}, 200)["queued"] == 2

    admin(w.ingest, "PATCH", m, {"statusMap": {"No Show": "Did Not Attend"}, "force": True},
          PATCH_HEADERS, expect=200)
    assert replay(w.ingest, {"programId": str(pid), "reason": "unknown_status"}, 202) == \
        {"queued": 2, "skipped": 0, "next": None, "dryRun": False}
    cs.wait_until(lambda: w.sf_members(cid).get(ann.email) == "Did Not Attend", T,
                  what="ann's No Show in Salesforce")
    cs.wait_until(lambda: w.mk_members(pid).get(bob.lead) == "No Show", T,
                  what="bob's Did Not Attend in Marketo")
    assert w.dead_letters(f"&programId={pid}") == []
    assert ids(w.dead_letters()) == ["1-0"]


# ------------------------------------------------------------------ queue gauges per direction

def om_records(n, first=1):
    return [(f"04l5g0000000{first + i:03d}AAA",
             {"Id": f"00v5g0000000{first + i:03d}AAA", "CampaignId": CID,
              "LeadId": f"00Q5g0000000{first + i:03d}AAA", "Email": f"s{first + i}@example.com",
              "LastName": "S", "CompanyOrAccount": "Acme", "Status": "Registered",
              "LastModifiedDate": "2026-11-29T10:00:00.000Z",
              "LastModifiedById": "005000000000002AAA"}) for i in range(n)]


def gauges(svc, text=None):
    text = text or metrics(svc)
    out = {}
    for q in ("", "salesforce", "marketo"):
        labels = {"queue": q} if q else {}
        out[q or "total"] = (cs.metric_value(text, "campaign_sync_queue_depth", **labels),
                             cs.metric_value(text, "campaign_sync_queue_oldest_age_seconds",
                                             **labels))
    return out


def test_queue_gauges_per_direction_while_sync_is_disabled(redis, services):
    svc = services(redis.url, command="serve", SYNC_ENABLED="false")
    g = gauges(svc)
    assert {k: d for k, (d, _) in g.items()} == {"total": 0, "salesforce": 0, "marketo": 0}
    # Three changes from Salesforce wait to be written to Marketo ...
    t_sf0 = time.time()
    r = svc.req("POST", "/webhooks/salesforce", cs.outbound_message(om_records(3)),
                {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
    assert r.status == 200
    t_sf1 = time.time()
    time.sleep(1.2)
    # ... and, a second later, two from Marketo to be written to Salesforce.
    t_mk0 = time.time()
    marketo_events(redis, svc, 1001, [7, 8])
    t_mk1 = time.time()
    time.sleep(0.3)
    t0 = time.time()
    text = svc.req("GET", "/metrics").body.decode()
    t1 = time.time()
    g = gauges(svc, text)
    assert {k: d for k, (d, _) in g.items()} == {"total": 5, "salesforce": 2, "marketo": 3}
    # Each direction's age is its own oldest event's; the total's is the older one's.
    assert t0 - t_sf1 - 0.002 <= g["marketo"][1] <= t1 - t_sf0 + 0.002, (g, t0, t1, t_sf0, t_sf1)
    assert t0 - t_mk1 - 0.002 <= g["salesforce"][1] <= t1 - t_mk0 + 0.002, g
    assert g["total"][1] == max(g["marketo"][1], g["salesforce"][1])
    # Nothing was applied meanwhile: sync is off.
    assert cs.queue_len(redis) == 5 and cs.queue_pending(redis) == 0
    # The help says which way the label points.
    help_line = next(l for l in metrics(svc).splitlines()
                     if l.startswith("# HELP campaign_sync_queue_depth "))
    assert 'queue="salesforce" or "marketo": the CRM they are to be written to' in help_line


# ------------------------------------------------------------------ webhook secret rotation

def test_webhook_secret_rotation_without_a_lost_event(redis, services, mkto_sim, workdir):
    """The rotation as README describes it, with Marketo's webhook (the simulator) firing all
    along: every event sent with the old secret or the new one during the rotation is accepted
    and queued; afterwards the old one is refused."""
    mk = mkto_sim
    pid = mk.ctl("POST", "seed", {"programs": [{"name": "Webinar Nov", "channel": "Webinar"}]}
                 )["programs"][0]["id"]
    leads = [l["id"] for l in mk.ctl("POST", "seed", {"leads": [
        {"email": f"r{i}@example.com", "firstName": "R", "lastName": str(i), "company": "Acme"}
        for i in range(6)]})["leads"]]
    port = cs.free_port()
    secret_file = os.path.join(workdir, "previous-secret")
    with open(secret_file, "w") as f:
        f.write(OLD_SECRET + "\n")
    sent = []

    def marketo_change(lead):
        """A person changes a member in Marketo; its webhook fires at the service."""
        since = len(mk.ctl("GET", "webhooks")["webhooks"])
        mk.ctl("POST", "members", {"programId": pid, "leadId": lead, "statusName": "Registered"})
        got = cs.wait_until(lambda: mk.ctl("GET", "webhooks")["webhooks"][since:], T,
                            what="the webhook call")
        sent.append(lead)
        return got[0]["status"]

    def direct(secret, lead):
        body = {"type": "member_status_changed", "programId": pid, "leadId": lead,
                "status": "Attended"}
        return svc.req("POST", "/webhooks/marketo", json.dumps(body),
                       {"Content-Type": "application/json", "X-Webhook-Secret": secret}).status

    def counter():
        return cs.metric_value(metrics(svc), "campaign_sync_webhook_previous_secret_total")

    # Before: the old secret only.
    svc = services(redis.url, PORT=port, name="before")
    mk.ctl("POST", "config", {"webhookUrl": f"http://127.0.0.1:{port}/webhooks/marketo",
                              "webhookSecret": OLD_SECRET})
    assert marketo_change(leads[0]) == 202
    svc.stop()

    # 1. PREVIOUS = old (from a file), SECRET = new, restart: both are accepted.
    svc = services(redis.url, PORT=port, name="rotating", MARKETO_WEBHOOK_SECRET=NEW_SECRET,
                   MARKETO_WEBHOOK_SECRET_PREVIOUS_FILE=secret_file)
    assert counter() == 0
    assert marketo_change(leads[1]) == 202   # Marketo still sends the old one
    assert direct(NEW_SECRET, leads[2]) == 202
    assert marketo_change(leads[3]) == 202
    assert counter() == 2
    # 2. The header changed in Marketo: 3. the counter stays where it was.
    mk.ctl("POST", "config", {"webhookSecret": NEW_SECRET})
    assert marketo_change(leads[4]) == 202
    assert counter() == 2
    lines = [l for l in svc.logs() if "MARKETO_WEBHOOK_SECRET_PREVIOUS" in l.get("msg", "")]
    assert len(lines) == 1 and lines[0]["level"] == "warn" and lines[0]["requests"] == "1"
    config = next(l for l in svc.logs() if l.get("msg") == "effective configuration")
    assert config["MARKETO_WEBHOOK_SECRET_PREVIOUS"] == "[redacted]"
    assert OLD_SECRET not in svc.stderr() and NEW_SECRET not in svc.stderr()
    svc.stop()

    # 4. PREVIOUS removed, restart: the old secret is refused, the new one accepted.
    svc = services(redis.url, PORT=port, name="after", MARKETO_WEBHOOK_SECRET=NEW_SECRET)
    assert direct(OLD_SECRET, leads[5]) == 401
    assert cs.metric_value(metrics(svc), "campaign_sync_auth_failures_total",
                           route="/webhooks/marketo") == 1
    assert marketo_change(leads[5]) == 202

    # Every event accepted is queued, once; the refused one is not.
    queued = [int(e["mktoLeadId"]) for _, e, _ in cs.stream_events(redis, cs.STREAM_MKTO)]
    assert queued == [leads[0], leads[1], leads[2], leads[3], leads[4], leads[5]]
    assert [w["status"] for w in mk.ctl("GET", "webhooks")["webhooks"]] == [202] * len(sent)


@pytest.mark.parametrize("env, line", [
    ({"MARKETO_WEBHOOK_SECRET_PREVIOUS": cs.WEBHOOK_SECRET},
     "MARKETO_WEBHOOK_SECRET_PREVIOUS: must differ from MARKETO_WEBHOOK_SECRET (the old secret, "
     "while Marketo still sends it)"),
    ({"MARKETO_WEBHOOK_SECRET_PREVIOUS": "short-secret"},
     "MARKETO_WEBHOOK_SECRET_PREVIOUS: must be at least 32 bytes long (a guessable secret is no "
     "secret); generate one with `openssl rand -hex 32`"),
])
def test_previous_secret_is_checked_at_start_up(redis, workdir, env, line):
    svc = cs.Service(workdir, cs.base_env(redis.url, workdir, **env), "ingest")
    svc.start(wait=False)
    try:
        assert svc.proc.wait(15) == 2
    finally:
        svc.stop(expect_rc=None)  # one that did not exit as it should is not left running
    assert line in svc.stderr()
    assert "short-secret" not in svc.stderr()


RETRY_SETS = ("local out = {}\n"
              "for i, k in ipairs(KEYS) do out[i] = redis.call('ZCARD', k) end\n"
              "return out\n")


def test_queue_gauges_count_retries_toward_the_failing_crm(world):
    """A change toward Salesforce that Salesforce keeps refusing with 503 waits in the retry
    set: the gauge toward Salesforce counts it, the one toward Marketo does not; once
    Salesforce answers, both are 0 and the per-queue retry index holds nothing."""
    w = world
    cid = w.campaign(statuses=["Invited", "Registered", "Attended"])
    pid = w.program()
    (ann,) = people(w, 1, "ret")
    w.start(MAX_ATTEMPTS="1000")
    admin(w.ingest, "PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True,
                                                    "force": True}, expect=201)
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "status", "status": 503, "method": "POST",
                                           "path": "/composite/sobjects$", "count": None}]})
    t0 = time.time()
    w.mk_human(pid, ann, "Registered")
    keys = ("cs:retry", "cs:retry:recv:mkto", "cs:retry:recv:sf")
    cs.wait_until(lambda: w.redis.cmd("EVAL", RETRY_SETS, 3, *keys) == [1, 1, 0], T,
                  what="the change in the retry set, indexed under the Marketo queue")
    time.sleep(1.0)
    g = gauges(w.ingest)
    assert (g["salesforce"][0], g["marketo"][0], g["total"][0]) == (1, 0, 1)
    assert 1.0 <= g["salesforce"][1] <= time.time() - t0 + 0.01 and g["marketo"][1] == 0
    w.sf.ctl("DELETE", "faults")
    cs.wait_until(lambda: w.sf_members(cid) == {ann.email: "Registered"}, T,
                  what="the change in Salesforce")
    cs.wait_until(lambda: gauges(w.ingest)["total"][0] == 0, T, what="an empty queue")
    assert w.redis.cmd("EVAL", RETRY_SETS, 3, *keys) == [0, 0, 0]
