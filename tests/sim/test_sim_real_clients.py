"""The CRM simulators against real clients from npm: jsforce (Salesforce) and
node-marketo-rest (Marketo). A simulator that agrees with whatever our own client sends proves
nothing; one that a real client cannot talk to is wrong.

The clients are pinned in tests/sim/clients/package.json and package-lock.json and installed
once (`npm ci`, cs.clients) into build/npm-clients; later runs reuse that install while the
lock file is unchanged. The npm registry must be reachable for the first install (it is, here
and in CI): when it is not, the tests fail and say so (the `node_modules` fixture of
tests/conftest.py). Node.js and npm come from scripts/deps.sh test.

Each test seeds a simulator, runs one node script from tests/sim/clients/ against it, and checks
what the client returned step by step against the simulator's state and call log: the calls
the real client made (paths, query parameters, bodies) are themselves evidence of the wire
format."""
import re
import time
import urllib.parse
from datetime import datetime, timezone

import pytest

import cs
from cs.clients import failed, ok, run_client

SF_ID = re.compile(r"^[A-Za-z0-9]{18}$")
JSFORCE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


# ------------------------------------------------------------------ jsforce -> Salesforce

def test_jsforce_talks_to_the_salesforce_simulator(node_modules, sf_sim):
    """OAuth 2.0 client credentials (jsforce: Connection#authorize({grant_type:
    'client_credentials'})), SOQL paging, single-record and Collections DML on CampaignMember,
    Collections retrieve, getDeleted, limits, and a new token after a 401."""
    seed = sf_sim.ctl("POST", "seed", {
        "campaigns": [{"Name": "Webinar", "statuses": [{"Label": "Sent", "IsDefault": True},
                                                       {"Label": "Responded", "HasResponded": True}]}],
        "leads": [{"LastName": f"Lead{i}", "Company": "Acme", "Email": f"jsf{i}@example.com"}
                  for i in range(5)]})
    campaign, leads = seed["campaigns"][0]["Id"], [l["Id"] for l in seed["leads"]]
    emails = [f"jsf{i}@example.com" for i in range(5)]
    # getDeleted window: from this minute (not before the simulator's earliestDateAvailable,
    # its start), two minutes long.
    start = int(time.time()) // 60 * 60
    window = [datetime.fromtimestamp(t, timezone.utc).isoformat() for t in (start, start + 120)]
    sf_sim.ctl("POST", "config", {"queryBatchSize": 2})
    sf_sim.ctl("POST", "faults", {"rules": [{"kind": "expire_tokens", "path": "/limits$"}]})
    r = run_client(node_modules, "jsforce_sf.js", {
        "url": sf_sim.url, "clientId": "sim-sf-client", "clientSecret": "sim-sf-secret",
        "version": "62.0", "campaignId": campaign, "leadIds": leads, "statuses": ["Sent", "Responded"],
        "deletedStart": window[0], "deletedEnd": window[1]})
    calls = sf_sim.calls()

    auth = ok(r, "authorize")
    assert auth["user"]["organizationId"] == cs.ORG_ID and auth["user"]["id"] == "005000000000001AAA"
    assert auth["instanceUrl"] == sf_sim.url and auth["hasToken"]
    assert (calls[0]["method"], calls[0]["path"]) == ("POST", "/services/oauth2/token")
    form = urllib.parse.parse_qs(calls[0]["body"])
    assert form == {"grant_type": ["client_credentials"], "client_id": ["sim-sf-client"],
                    "client_secret": ["sim-sf-secret"]}, form

    # Paging over a batch size of 2: jsforce follows nextRecordsUrl to the end.
    assert ok(r, "queryAutoFetch") == emails
    more = ok(r, "queryMore")
    assert more["first"] == {"totalSize": 5, "done": False, "n": 2, "hasNext": True}
    assert more["second"] == {"totalSize": 5, "done": False, "emails": emails[2:4]}
    # (two next pages for autoFetch, one for queryMore, one for the queryAll below)
    pages = [c["path"] for c in calls if c["path"].startswith("/services/data/v62.0/query/")]
    assert len(pages) == 4 and all(re.fullmatch(r"/services/data/v62\.0/query/01g\w{15}-\d+", p)
                                   for p in pages), pages

    # One record at a time.
    id0 = ok(r, "createOne")["id"]
    assert SF_ID.match(id0)
    dup = failed(r, "createDuplicate")
    assert (dup["errorCode"], dup["name"]) == ("DUPLICATE_VALUE", "DUPLICATE_VALUE")
    assert ok(r, "updateOne") == {"id": id0, "success": True, "errors": []}
    assert ok(r, "retrieveOne") == {"Id": id0, "Status": "Responded", "LeadId": leads[0],
                                    "CampaignId": campaign}
    assert ok(r, "destroyOne") == {"id": id0, "success": True, "errors": []}
    assert failed(r, "retrieveDeleted")["errorCode"] == "ENTITY_IS_DELETED"

    # sObject Collections: create, create with one duplicate, update, retrieve, destroy.
    many = ok(r, "createMany")
    assert [m["success"] for m in many] == [True] * 3
    ids = [m["id"] for m in many]
    partial = ok(r, "createManyPartial")
    assert partial[0]["success"] and not partial[1]["success"]
    assert partial[1]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert ok(r, "updateMany") == [{"id": i, "success": True, "errors": []} for i in ids]
    assert ok(r, "retrieveMany") == [{"Id": ids[0], "Status": "Responded"},
                                     {"Id": ids[1], "Status": "Responded"}, None]
    assert ok(r, "retrieveManyAllFields") == [{"Id": ids[2], "Status": "Responded",
                                               "LeadId": leads[3], "Email": emails[3]}]
    retrieves = [c for c in calls if c["path"] == "/services/data/v62.0/composite/sobjects/CampaignMember"]
    assert [c["method"] for c in retrieves] == ["POST", "POST"]
    assert retrieves[0]["body"] == {"ids": [ids[0], ids[1], id0], "fields": ["Id", "Status"]}
    assert ok(r, "destroyMany") == [{"id": i, "success": True, "errors": []} for i in ids[:2]]
    deletes = [c for c in calls if c["method"] == "DELETE" and c["path"].endswith("/composite/sobjects")]
    assert [c["query"] for c in deletes] == [{"ids": f"{ids[0]},{ids[1]}"}]
    assert ok(r, "queryAfter") == [{"Id": ids[2], "LeadId": leads[3], "Status": "Responded"},
                                   {"Id": partial[0]["id"], "LeadId": leads[4], "Status": "Sent"}]
    assert sorted((m["Id"], m["Status"]) for m in sf_sim.ctl("GET", f"members?campaignId={campaign}")["members"]) \
        == sorted([(ids[2], "Responded"), (partial[0]["id"], "Sent")])

    assert ok(r, "find") == [{"LeadId": leads[4], "Status": "Sent"}, {"LeadId": leads[3], "Status": "Responded"}]
    (q,) = [c["query"]["q"] for c in calls if "LIKE" in c["query"].get("q", "")]
    assert re.search(r"LeadId IN \('\w{18}', '\w{18}'\) AND LastModifiedDate >= \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                     r"AND Lead\.Email LIKE '%@example\.com' AND Status != null ORDER BY LeadId DESC LIMIT 10$", q), q

    # queryAll over the batch size: jsforce asks for the next page as /query/<locator>.
    assert ok(r, "queryAllDeleted") == [{"Id": i, "IsDeleted": True} for i in sorted([id0, ids[0], ids[1]])]

    # getDeleted: jsforce sends UTC times with seconds and "+00:00", URL-encoded (the "+" arrives
    # as "+", not as a space).
    deleted = ok(r, "deleted")
    assert {"deletedRecords", "earliestDateAvailable", "latestDateCovered"} <= set(deleted)
    assert {d["id"] for d in deleted["deletedRecords"]} <= {id0, ids[0], ids[1]}
    (call,) = [c for c in calls if c["path"] == "/services/data/v62.0/sobjects/CampaignMember/deleted"]
    assert call["status"] == 200 and set(call["query"]) == {"start", "end"}, call
    assert all(JSFORCE_TIME.match(call["query"][k]) for k in ("start", "end")), call["query"]
    assert [datetime.fromisoformat(call["query"][k]).timestamp() for k in ("start", "end")] == \
        [start, start + 120], call["query"]

    # limits: the expired token gives a 401 INVALID_SESSION_ID; jsforce gets a new token and
    # asks again.
    limits = ok(r, "limits")
    assert limits["limits"]["DailyApiRequests"]["Max"] == 15000
    used = limits["limitInfo"]["apiUsage"]["used"]
    assert limits["limitInfo"]["apiUsage"]["limit"] == 15000
    assert limits["limits"]["DailyApiRequests"]["Remaining"] == 15000 - used
    tail = [(c["method"], c["path"].rsplit("/", 1)[-1], c["status"]) for c in calls[-3:]]
    assert tail == [("GET", "limits", 401), ("POST", "token", 200), ("GET", "limits", 200)], tail
    assert calls[-3]["response"] == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


# ------------------------------------------------------------------ node-marketo-rest -> Marketo

def test_node_marketo_rest_talks_to_the_marketo_simulator(node_modules, mkto_sim):
    """Identity, lead lookup by email (with paging), createOrUpdate, and the program-member
    calls (status, members.json paging, delete) through node-marketo-rest's own connection,
    with its token renewal on 602 and its wait on 606."""
    emails = [f"nmr{i}@example.com" for i in range(3)]
    mkto_sim.ctl("POST", "seed", {
        "programs": [{"id": 1001, "name": "Webinar", "channel": "Webinar"}],
        "leads": [{"email": e, "firstName": f"F{i}", "lastName": f"L{i}"} for i, e in enumerate(emails)]})
    mkto_sim.ctl("POST", "faults", {"rules": [
        {"kind": "expire_tokens", "path": "/members/delete\\.json$"},
        {"kind": "error", "code": "606", "path": "/channels\\.json$"}]})
    r = run_client(node_modules, "marketo_rest.js", {
        "url": mkto_sim.url, "clientId": "sim-mkto-client", "clientSecret": "sim-mkto-secret",
        "programId": 1001, "emails": emails, "newEmail": "nmr-new@example.com",
        "statuses": ["Registered", "Attended", "Attended On-demand"]})
    calls = mkto_sim.calls()

    ident = ok(r, "identity")
    assert 3590 <= ident.pop("expiresIn") <= 3600
    assert ident == {"tokenType": "bearer", "hasToken": True, "scope": "apis@sim"}
    assert (calls[0]["method"], calls[0]["path"]) == ("GET", "/identity/oauth/token")
    assert calls[0]["query"] == {"grant_type": "client_credentials", "client_id": "sim-mkto-client",
                                 "client_secret": "sim-mkto-secret"}

    found = ok(r, "findByEmail")
    assert found["success"] and found["hasRequestId"] and not found["hasNextPage"]
    assert [(l["id"], l["email"], l["firstName"]) for l in found["result"]] == \
        [(1, emails[0], "F0"), (2, emails[1], "F1"), (3, emails[2], "F2")]
    lookup = calls[1]
    assert (lookup["method"], lookup["path"]) == ("GET", "/rest/v1/leads.json")
    assert lookup["query"]["filterType"] == "email"
    assert lookup["query"]["filterValues"] == ",".join(emails + ["nmr-new@example.com"])
    paged = ok(r, "findPaged")
    assert [l["email"] for l in paged["first"]["result"]] == emails[:2]
    assert paged["first"]["moreResult"] is True and paged["first"]["hasNextPage"]
    assert [l["email"] for l in paged["second"]["result"]] == emails[2:]
    assert not paged["second"]["hasNextPage"]

    upsert = ok(r, "createOrUpdate")["result"]
    assert upsert[:2] == [{"id": 1, "status": "updated"}, {"id": 4, "status": "created"}]
    assert upsert[2]["status"] == "skipped" and upsert[2]["reasons"], upsert
    (post,) = [c for c in calls if c["method"] == "POST" and c["path"] == "/rest/v1/leads.json"]
    assert (post["body"]["action"], post["body"]["lookupField"]) == ("createOrUpdate", "email")
    assert ok(r, "leadIds") == emails + ["nmr-new@example.com"]

    # members/status.json: created, a forward move, a same-step move (applies: Adobe's
    # "Program Members" page skips only a greater step), a backward move (1037).
    assert [x["status"] for x in ok(r, "statusCreate")["result"]] == ["created"] * 4
    assert ok(r, "statusForward")["result"] == [{"seq": 0, "status": "updated", "leadId": 1},
                                                {"seq": 1, "status": "updated", "leadId": 2}]
    assert ok(r, "statusSameStep")["result"] == [{"seq": 0, "status": "updated", "leadId": 1}]
    back = ok(r, "statusBackward")["result"]
    assert back[0]["status"] == "skipped" and back[0]["reasons"][0]["code"] == "1037", back
    unknown = failed(r, "statusUnknown")
    assert unknown["name"] == "HttpError" and unknown["errors"][0]["code"] == "1025"
    pages = ok(r, "membersPaged")
    assert [len(p["result"]) for p in pages] == [2, 2] and pages[0]["hasNextPage"]
    assert {m["leadId"]: m["statusName"] for p in pages for m in p["result"]} == \
        {1: "Attended On-demand", 2: "Attended", 3: "Registered", 4: "Registered"}

    # A 602 on the delete: node-marketo-rest takes a new token and calls again.
    removed = ok(r, "membersDelete")["result"]
    assert removed[0] == {"seq": 0, "status": "deleted", "leadId": 3}
    assert removed[1]["status"] == "skipped" and removed[1]["reasons"][0]["code"] == "1037"
    seq = [(c["path"].rsplit("/", 1)[-1], c["code"]) for c in calls
           if c["path"].endswith(("delete.json", "token"))][-3:]
    assert seq == [("delete.json", "602"), ("token", None), ("delete.json", None)], seq
    assert failed(r, "unknownProgram")["name"] == "HttpError"

    assert ok(r, "program")["result"][0]["channel"] == "Webinar"
    # A 606 on channels.json: node-marketo-rest waits and asks again.
    channels = {c["name"]: c for c in ok(r, "channels")["result"]}
    steps = {s["name"]: s["step"] for s in channels["Webinar"]["progressionStatuses"]}
    assert steps["Attended"] == steps["Attended On-demand"] == 40
    assert [c["code"] for c in calls if c["path"].endswith("channels.json")] == ["606", None]

    assert {m["leadId"]: m["statusName"] for m in mkto_sim.ctl("GET", "members?programId=1001")["members"]} == \
        {1: "Attended On-demand", 2: "Attended", 4: "Registered"}
