"""openapi/openapi.yaml against the real service: every answer the service gives is checked
against the response the description declares for its path, method, status and content type
(JSON bodies with a Draft 2020-12 validator, XML bodies against their string schemas), the
examples are the bytes the service really sends, the request examples are accepted, the
request schema agrees with the service on what it accepts, and the routed path+method pairs
are exactly the described operations. The admin API (/v1) is exercised operation by
operation: every answer it gives is checked the same way, and the examples are compared with
real answers wherever the service's answer is deterministic."""
import hashlib
import http.client
import json
import os
import re
import socket
import time

import pytest

import cs
from cs.openapi import (SPEC, check, declared, example, examples, iso, operation,
                        request_example, resolve, validator)

SF_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}
MK_HEADERS = {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# What the service routes today (service/routes_health.c, service/routes_webhooks.c and
# service/routes_admin.c). test_routed_operations_are_exactly_the_described_ones also
# derives it from the running service by probing, so a route added to the C code without
# the description fails there.
ADMIN_ROUTES = {("GET", "/v1/mappings"), ("PUT", "/v1/mappings/{programId}"),
                ("GET", "/v1/mappings/{programId}"), ("DELETE", "/v1/mappings/{programId}"),
                ("GET", "/v1/mappings/{programId}/validation"),
                ("POST", "/v1/mappings/{programId}/reconcile"),
                ("GET", "/v1/sync"), ("PUT", "/v1/sync"), ("GET", "/v1/deadletters"),
                ("POST", "/v1/deadletters/{id}/replay"), ("DELETE", "/v1/deadletters/{id}"),
                ("GET", "/v1/campaigns/{campaignId}/members"), ("GET", "/v1/audit"),
                ("PATCH", "/v1/mappings/{programId}"), ("POST", "/v1/deadletters/replay"),
                ("GET", "/v1/people"), ("POST", "/v1/people/resync"),
                ("GET", "/v1/jobs"), ("GET", "/v1/jobs/{id}"), ("DELETE", "/v1/jobs/{id}"),
                ("GET", "/v1/jobs/{id}/details"), ("GET", "/v1/overview")}
ROUTES = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
          ("POST", "/webhooks/salesforce"), ("POST", "/webhooks/salesforce/{token}"),
          ("POST", "/webhooks/marketo")} | ADMIN_ROUTES
# The operator console (service/routes_console.c).
CONSOLE_ROUTES = {("GET", "/console"), ("GET", "/console/"), ("GET", "/console/{asset}")}
ROUTES |= CONSOLE_ROUTES
# Paths that must not answer: near misses of the real paths.
NOT_ROUTED = ["/", "/v1", "/v1/", "/v1/mappings/", "/v1/mappings/1001/validation/x",
              "/v1/mappings/1001/reconcile/x", "/v1/mappings/1001/members", "/v1/campaigns",
              "/v1/campaigns/", "/v1/campaigns/7015g000000CampAAA",
              "/v1/campaigns/7015g000000CampAAA/members/x", "/v1/audit/", "/v1/audit/x",
              "/v1/deadletters/", "/v1/deadletters/x/replay/y", "/v1/sync/x",
              "/webhooks", "/healthz/", "/webhooks/salesforce/x/y", "/v1/people/",
              "/v1/people/x", "/v1/people/resync/x", "/v1/jobs/", "/v1/jobs/x/details/y",
              "/v1/jobs/x/y"]
# Sample values for the path templates, to send real requests to every operation.
SAMPLE_PARAMS = {"{programId}": "1001", "{id}": "1795946401234-0",
                 "{campaignId}": "7015g000000CampAAA",
                 "{token}": "3f9c1e0b7d2a4c6e8f1a3b5d7c9e0f2a4b6c8d0e1f3a5b7c9d1e3f5a7b9c1d3e"}
# The console's script as the build names it: console.<first 16 hex digits of SHA-256>.js.
with open(os.path.join(cs.ROOT, "console", "console.js"), "rb") as _f:
    SAMPLE_PARAMS["{asset}"] = f"console.{hashlib.sha256(_f.read()).hexdigest()[:16]}.js"


def concrete(path):
    for k, v in SAMPLE_PARAMS.items():
        path = path.replace(k, v)
    return path


def raw_headers_only(port, method, path, headers):
    """Sends only the request head (a client announcing a large body and waiting, as
    curl does with `Expect: 100-continue`) and reads the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
        r = http.client.HTTPResponse(s, method=method)
        r.begin()
        return cs.Response(r.status, r.getheaders(), r.read())


# ------------------------------------------------------------------ the description itself

def test_description_is_openapi_3_1_with_complete_operations():
    assert SPEC["openapi"].startswith("3.1.")
    assert SPEC["info"]["title"] and SPEC["info"]["version"] and SPEC["info"]["description"]
    assert [s["url"] for s in SPEC["servers"]] == ["http://localhost:8080"]
    schemes = SPEC["components"]["securitySchemes"]
    assert schemes["webhookSecret"] == {**schemes["webhookSecret"], "type": "apiKey",
                                        "in": "header", "name": "X-Webhook-Secret"}
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    tags = {t["name"] for t in SPEC["tags"]}
    for name, schema in SPEC["components"]["schemas"].items():
        validator(schema)  # each is a valid Draft 2020-12 schema
    ids = []
    for path, item in SPEC["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            ids.append(op["operationId"])
            assert op["summary"] and op["description"], f"{method} {path}"
            assert set(op["tags"]) <= tags
            for param in item.get("parameters", []) + op.get("parameters", []):
                param = resolve(param)
                assert param["description"] and "schema" in param, f"{method} {path}"
                if "example" in param:
                    validator(param["schema"]).validate(param["example"])
            for status, resp in op["responses"].items():
                resp = resolve(resp)
                assert resp["description"]
                if status == "204":
                    assert "content" not in resp, f"{method} {path} 204 has content"
                    continue
                assert resp["content"], f"{method} {path} {status} has no content"
                for ctype, media in resp["content"].items():
                    assert "schema" in media, f"{method} {path} {status} {ctype}"
                    exs = examples(media)
                    assert exs, f"{method} {path} {status} {ctype} has no example"
                    v = validator(media["schema"])
                    for name, value in exs.items():
                        v.validate(value)
            if path.startswith("/v1"):
                # The admin API: bearer token, and the answers every admin call can give.
                assert op["security"] == [{"bearerAuth": []}], f"{method} {path}"
                assert {"401", "404", "503"} <= set(op["responses"]), f"{method} {path}"
                assert op["tags"][0] in ("mappings", "sync", "deadletters", "members", "audit",
                                         "jobs")
            else:
                assert op["security"] in ([], [{"webhookSecret": []}]), f"{method} {path}"
            if "requestBody" in op:
                for ctype, media in resolve(op["requestBody"])["content"].items():
                    v = validator(media["schema"])
                    assert examples(media), f"{method} {path} request {ctype}"
                    for value in examples(media).values():
                        v.validate(value)
    assert len(ids) == len(set(ids))
    # Every admin endpoint is described, and only those.
    assert {p for p in SPEC["paths"] if p.startswith("/v1")} == {p for _, p in ADMIN_ROUTES}


def test_request_examples_are_the_fixtures():
    assert request_example("/webhooks/marketo", "template") == json.loads(
        cs.data("marketo/template.json"))
    assert request_example("/webhooks/marketo", "batch") == json.loads(
        cs.data("marketo/batch_5.json"))
    sf = request_example("/webhooks/salesforce", "campaignMember")
    assert sf.encode() == cs.data("salesforce/cm_1.xml")


# ------------------------------------------------------------------ routes

def _routed(svc, method, path):
    """A route exists when the service answers neither 404 nor 405 for method+path."""
    r = svc.req(method, path, b"" if method in ("POST", "PUT", "PATCH") else None)
    return r.status not in (404, 405)


def test_routed_operations_are_exactly_the_described_ones(service):
    described = {(m.upper(), p) for p, item in SPEC["paths"].items()
                 for m in HTTP_METHODS if m in item}
    assert described == ROUTES
    # Unauthenticated probes: an admin route answers 401, so none of them changes anything.
    candidates = {concrete(p): p for p in SPEC["paths"]}
    candidates.update({p: p for p in NOT_ROUTED})
    probed = {(m, candidates[p]) for p in candidates
              for m in ("GET", "POST", "PUT", "DELETE", "PATCH") if _routed(service, m, p)}
    assert probed == ROUTES


# ------------------------------------------------------------------ operations

def test_healthz(service):
    r = service.req("GET", "/healthz")
    assert r.status == 200
    check(r, "/healthz", "GET")
    assert r.json() == example("/healthz", "GET", 200)


def test_readyz_with_redis_up_and_down(redis, service):
    r = service.req("GET", "/readyz")
    assert r.status == 200
    check(r, "/readyz", "GET")
    assert r.json() == example("/readyz", "GET", 200, "redisOnly")

    redis.stop()
    r = service.req("GET", "/readyz")
    assert r.status == 503
    check(r, "/readyz", "GET")
    assert r.json() == example("/readyz", "GET", 503)

    redis.start()
    cs.wait_until(lambda: service.req("GET", "/readyz").status == 200, 10,
                  what="/readyz to recover")


def test_metrics(service):
    r = service.req("GET", "/metrics")
    assert r.status == 200
    check(r, "/metrics", "GET")
    text = r.body.decode()
    # Every family the example shows is exported, with the same HELP and TYPE lines.
    for line in example("/metrics", "GET", 200).splitlines():
        if line.startswith("#"):
            assert line in text.splitlines(), line
        else:
            name = line.split("{")[0].split(" ")[0]
            assert any(l.startswith(name) for l in text.splitlines()), name


# Salesforce

def sf(svc, body):
    return svc.req("POST", "/webhooks/salesforce", body, SF_HEADERS)


def test_salesforce_request_example_is_acked_with_the_example_bytes(redis, service):
    r = sf(service, request_example("/webhooks/salesforce", "campaignMember"))
    assert r.status == 200
    check(r, "/webhooks/salesforce", "POST")
    assert r.body == example("/webhooks/salesforce", "POST", 200).encode()
    assert r.body == SPEC["components"]["schemas"]["SoapAck"]["const"].encode()
    assert len(cs.stream_events(redis)) == 1


@pytest.mark.parametrize("fixture,status,name", [
    ("cm_wrong_type.xml", 400, "wrongType"),
    ("not_soap.xml", 400, "notSoap"),
    ("xxe.xml", 400, "doctype"),
    ("entity_bomb.xml", 400, "doctype"),
    ("cm_wrong_org.xml", 403, ""),
])
def test_salesforce_faults_are_the_described_examples(redis, service, fixture, status, name):
    r = sf(service, cs.data("salesforce/" + fixture))
    assert r.status == status
    check(r, "/webhooks/salesforce", "POST")
    assert r.body == example("/webhooks/salesforce", "POST", status, name).encode()


@pytest.mark.parametrize("fixture", ["cm_malformed.xml", "cm_too_many_attributes.xml",
                                     "cm_wrong_ns.xml", "cm_101.xml"])
def test_salesforce_other_400s_match_the_fault_schema(service, fixture):
    r = sf(service, cs.data("salesforce/" + fixture))
    assert r.status == 400
    check(r, "/webhooks/salesforce", "POST")


def test_salesforce_empty_body_is_a_400_fault(service):
    r = sf(service, b"")
    assert r.status == 400
    check(r, "/webhooks/salesforce", "POST")


def test_salesforce_405(service):
    r = service.req("GET", "/webhooks/salesforce")
    assert r.status == 405
    check(r, "/webhooks/salesforce", "POST")
    assert r.body == example("/webhooks/salesforce", "POST", 405).encode()


def test_salesforce_413(service):
    r = raw_headers_only(service.port, "POST", "/webhooks/salesforce",
                         {**SF_HEADERS, "Content-Length": "2097153", "Expect": "100-continue"})
    assert r.status == 413
    check(r, "/webhooks/salesforce", "POST")
    assert r.body == example("/webhooks/salesforce", "POST", 413).encode()


def test_salesforce_401s_are_the_described_examples(redis, services):
    token = SAMPLE_PARAMS["{token}"]
    svc = services(redis.url, SF_WEBHOOK_AUTH=None, SF_WEBHOOK_TOKEN=token)
    body = request_example("/webhooks/salesforce", "campaignMember")
    r = sf(svc, body)
    assert r.status == 401
    check(r, "/webhooks/salesforce", "POST")
    assert r.body == example("/webhooks/salesforce", "POST", 401).encode()
    path = "/webhooks/salesforce/{token}"
    r = svc.req("POST", "/webhooks/salesforce/" + token[::-1], body, SF_HEADERS)
    assert r.status == 401
    check(r, path, "POST")
    assert r.body == example(path, "POST", 401, "wrongToken").encode()
    r = svc.req("POST", "/webhooks/salesforce/" + token, body, SF_HEADERS)
    assert r.status == 200
    check(r, path, "POST")
    assert r.body == example(path, "POST", 200).encode()
    r = svc.req("GET", "/webhooks/salesforce/" + token)
    assert r.status == 405
    check(r, path, "POST")
    assert r.body == example(path, "POST", 405).encode()
    svc.stop()
    # Without SF_WEBHOOK_TOKEN, the token path is refused.
    r = services(redis.url, name="no-token").req(
        "POST", "/webhooks/salesforce/" + token, body, SF_HEADERS)
    assert r.status == 401
    check(r, path, "POST")
    assert r.body == example(path, "POST", 401, "noToken").encode()
    assert len(cs.stream_events(redis)) == 1


def test_salesforce_503_while_redis_is_down(redis, service):
    redis.stop()
    r = sf(service, request_example("/webhooks/salesforce", "campaignMember"))
    assert r.status == 503
    check(r, "/webhooks/salesforce", "POST")
    assert r.body == example("/webhooks/salesforce", "POST", 503).encode()


# Marketo

def mk(svc, body, headers=MK_HEADERS):
    return svc.req("POST", "/webhooks/marketo", body, headers)


def test_marketo_request_examples_are_accepted(redis, service):
    r = mk(service, request_example("/webhooks/marketo", "template"))
    assert r.status == 202
    check(r, "/webhooks/marketo", "POST")
    assert r.json() == example("/webhooks/marketo", "POST", 202, "single")
    r = mk(service, request_example("/webhooks/marketo", "template"))
    assert r.status == 202
    check(r, "/webhooks/marketo", "POST")
    assert r.json() == example("/webhooks/marketo", "POST", 202, "resent")
    r = mk(service, request_example("/webhooks/marketo", "batch"),
           {**MK_HEADERS, "Content-Type": "application/json; charset=utf-8"})
    assert r.status == 202
    check(r, "/webhooks/marketo", "POST")
    assert r.json() == {"accepted": 5, "duplicates": 0}
    assert len(cs.stream_events(redis)) == 6


def test_marketo_400s_are_the_described_examples(redis, service):
    lead = lambda n: {**request_example("/webhooks/marketo", "template"), "leadId": n}
    cases = [([lead(1), lead(2), {"type": "member_status_changed", "programId": 1001}],
              "missingField"),
             ({}, "singleObject"),
             (b"{bad", "notJson"),
             ([lead(1), 5], "notAnObject"),
             ([lead(n) for n in range(1, 1002)], "tooMany")]
    for body, name in cases:
        r = mk(service, body)
        assert r.status == 400, name
        check(r, "/webhooks/marketo", "POST")
        assert r.json() == example("/webhooks/marketo", "POST", 400, name)
    assert cs.stream_events(redis) == []


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json"},
    {"Content-Type": "application/json", "X-Webhook-Secret": "wrong"},
    {"Content-Type": "application/json", "X-Webhook-Secret": ""},
])
def test_marketo_401(redis, service, headers):
    r = mk(service, request_example("/webhooks/marketo", "template"), headers)
    assert r.status == 401
    check(r, "/webhooks/marketo", "POST")
    assert r.json() == example("/webhooks/marketo", "POST", 401)
    assert cs.stream_events(redis) == []


def test_marketo_405(service):
    r = service.req("GET", "/webhooks/marketo")
    assert r.status == 405
    check(r, "/webhooks/marketo", "POST")
    assert r.json() == example("/webhooks/marketo", "POST", 405)


def test_marketo_413(service):
    r = raw_headers_only(service.port, "POST", "/webhooks/marketo",
                         {**MK_HEADERS, "Content-Length": "2097153"})
    assert r.status == 413
    check(r, "/webhooks/marketo", "POST")
    assert r.json() == example("/webhooks/marketo", "POST", 413)


def test_marketo_415(redis, service):
    r = mk(service, request_example("/webhooks/marketo", "template"),
           {"Content-Type": "text/plain", "X-Webhook-Secret": cs.WEBHOOK_SECRET})
    assert r.status == 415
    check(r, "/webhooks/marketo", "POST")
    assert r.json() == example("/webhooks/marketo", "POST", 415)
    r = mk(service, request_example("/webhooks/marketo", "template"),
           {"X-Webhook-Secret": cs.WEBHOOK_SECRET})
    assert r.status == 415
    check(r, "/webhooks/marketo", "POST")


def test_marketo_503_when_neither_redis_nor_the_journal_can_store(redis, services, workdir):
    # A journal that cannot take the events: 1,000 of them are more than SPOOL_MAX_BYTES.
    svc = services(redis.url, SPOOL_MAX_BYTES=65536)
    redis.stop()
    batch = [{**request_example("/webhooks/marketo", "template"), "leadId": n}
             for n in range(1, 1001)]
    r = mk(svc, batch)
    assert r.status == 503
    check(r, "/webhooks/marketo", "POST")
    assert r.json() == example("/webhooks/marketo", "POST", 503)


# The request schema and the service agree on what is accepted: a body the schema allows
# is answered 202, a body it refuses is answered 400.
def _ev(**over):
    ev = {"type": "member_status_changed", "programId": 1001, "leadId": 555,
          "occurredAt": "2026-11-29 10:00:00"}
    ev.update(over)
    return {k: v for k, v in ev.items() if v is not ...}


BODY_CASES = {
    "template": _ev(),
    "ids as digit strings": _ev(programId="1001", leadId="556"),
    "nulls for optional fields": _ev(leadId=557, email=None, firstName=None, status=None,
                                     occurredAt=None, eventId=None),
    "iso timestamp with offset": _ev(leadId=558, occurredAt="2026-11-29T10:00:00+01:00"),
    "18-char campaign id": _ev(type="add_to_campaign", programId=..., leadId=559,
                               campaignId="7015g000000CampAAA", status="Sent"),
    "15-char campaign id": _ev(type="remove_from_campaign", programId=..., leadId=560,
                               campaignId="7015g000000Camp"),
    "member_removed": _ev(type="member_removed", leadId=561, eventId="evt-561"),
    "numeric eventId": _ev(leadId=562, eventId=9),
    "empty array": [],
    "1000 events": [_ev(leadId=n) for n in range(1, 1001)],
    "unknown type": _ev(type="member_added"),
    "missing type": _ev(type=...),
    "missing leadId": _ev(leadId=...),
    "leadId zero": _ev(leadId=0),
    "leadId fraction": _ev(leadId=1.5),
    "leadId with letters": _ev(leadId="12a"),
    "programId required for program-side types": _ev(programId=...),
    "programId null for program-side types": _ev(programId=None),
    "campaignId required for F7": _ev(type="add_to_campaign", programId=...),
    "campaignId of 16 chars": _ev(type="add_to_campaign", campaignId="7015g000000CampA"),
    "campaignId as a number": _ev(type="add_to_campaign", campaignId=701500000000000),
    "email as a number": _ev(email=5),
    "status as an object": _ev(status={"name": "Registered"}),
    "eventId with a space": _ev(eventId="a b"),
    "eventId empty": _ev(eventId=""),
    "status of 127 bytes": _ev(leadId=563, status="S" * 127),
    "status of 128 bytes": _ev(leadId=564, status="S" * 128),
    "array member not an object": [_ev(), 5],
    "1001 events": [_ev(leadId=n) for n in range(1, 1002)],
    "a string body": "member_status_changed",
}


@pytest.mark.parametrize("name", sorted(BODY_CASES))
def test_request_schema_agrees_with_the_service(redis, service, name):
    body = BODY_CASES[name]
    schema = operation("/webhooks/marketo", "post")["requestBody"]["content"][
        "application/json"]["schema"]
    allowed = validator(schema).is_valid(body)
    r = mk(service, json.dumps(body))
    assert r.status in (202, 400)
    check(r, "/webhooks/marketo", "POST")
    assert (r.status == 202) == allowed, (
        f"schema {'allows' if allowed else 'refuses'} it, the service answered {r.status}: "
        f"{r.body[:300]!r}")


# ------------------------------------------------------------------ admin API (/v1)

M = "/v1/mappings/{programId}"
ML = "/v1/mappings"
SYNC = "/v1/sync"
D = "/v1/deadletters"
REPLAY = "/v1/deadletters/{id}/replay"
DL = "/v1/deadletters/{id}"
VALIDATION = "/v1/mappings/{programId}/validation"
RECONCILE = "/v1/mappings/{programId}/reconcile"
MEMBERS = "/v1/campaigns/{campaignId}/members"
AUDIT = "/v1/audit"
JOBS = "/v1/jobs"
JOB = "/v1/jobs/{id}"
JOB_DETAILS = "/v1/jobs/{id}/details"
ADMIN = cs.admin_headers()
CID = "7015g000000CampAAA"
DISABLED = {"error": "not_found",
            "message": "the admin API is disabled; set ADMIN_TOKEN to enable it"}
# A valid body for each admin operation that reads one.
VALID_BODIES = {("PUT", M): {"campaignId": CID}, ("PUT", SYNC): {"enabled": True},
                ("PATCH", M): {"enabled": False}, ("POST", "/v1/deadletters/replay"): {}}
ADMIN_CALLS = sorted((m, p, VALID_BODIES.get((m, p))) for m, p in ADMIN_ROUTES)


def campaign(n):
    """Distinct campaign ids (their first 15 characters differ, as Salesforce's do)."""
    return f"7015g000000Cam{n}AAA"


def call(svc, method, template, body=None, headers=None, path=None, query=""):
    """Sends method to the operation (its template filled with the sample values unless a
    concrete path is given), with the admin token unless headers are given, and checks the
    answer against the description."""
    if isinstance(body, (dict, list)) or (body is not None and not isinstance(body, bytes)):
        body = json.dumps(body)
    r = svc.req(method, (path or concrete(template)) + query, body,
                ADMIN if headers is None else headers)
    check(r, template, method)
    return r


def now_ms():
    return int(time.time() * 1000)


def iso_ms(text):
    secs = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    return (time.mktime(secs) - time.timezone) * 1000 + int(text[20:23])


def untimed(mapping):
    """A mapping without its times (and the id of the backfill job it started), to compare an
    answer with an example."""
    return {k: v for k, v in mapping.items() if k not in ("createdAt", "updatedAt", "backfillJob")}


def stored(answer):
    """The stored mapping of a PUT answer (what GET answers)."""
    return {k: v for k, v in answer.items()
            if k not in ("statusCheck", "statusCheckMessage", "unmatched", "backfillJob")}


def disabled_example(template, method):
    exs = examples(declared(template, method, 404)["content"]["application/json"])
    return exs.get("disabled", exs.get(""))


def test_mapping_create_replace_get_delete(redis, service):
    assert call(service, "GET", ML).json() == example(ML, "GET", 200, "empty")
    t0 = now_ms()
    r = call(service, "PUT", M, request_example(M, "full", "put"))
    assert r.status == 201
    created = r.json()
    # This process has no CRM credentials: the status check is pending.
    assert untimed(created) == untimed(example(M, "PUT", 201, "pending"))
    assert created["createdAt"] == created["updatedAt"]
    assert t0 - 1 <= iso_ms(created["createdAt"]) <= now_ms() + 1
    r = call(service, "GET", M)
    assert r.status == 200 and r.json() == stored(created)
    assert untimed(example(M, "GET", 200)) == untimed(stored(created))

    time.sleep(0.01)
    r = call(service, "PUT", M, request_example(M, "minimal", "put"))
    assert r.status == 200
    replaced = r.json()
    # Fields left out take their defaults: enabled, and no explicit status entries.
    assert untimed(replaced) == untimed(example(M, "PUT", 200, "pending"))
    assert replaced["createdAt"] == created["createdAt"]
    assert iso_ms(replaced["updatedAt"]) > iso_ms(created["updatedAt"])
    assert call(service, "GET", M).json() == stored(replaced)
    assert call(service, "GET", ML).json() == {"items": [stored(replaced)], "next": None}

    r = call(service, "DELETE", M)
    assert r.status == 204
    for method in ("GET", "DELETE"):
        r = call(service, method, M)
        assert r.status == 404
        assert r.json() == example(M, method, 404, "noMapping")
    assert call(service, "GET", ML).json() == example(ML, "GET", 200, "empty")


def test_mapping_list_pages(redis, service):
    pids = ["300", "7", "1002", "20", "1001"]
    for n, pid in enumerate(pids):
        r = call(service, "PUT", M, {"campaignId": campaign(n), "enabled": n % 2 == 0},
                 path=f"/v1/mappings/{pid}")
        assert r.status == 201
    order = sorted(pids, key=int)

    def walk(limit):
        pages, cursor = [], None
        while True:
            q = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            page = call(service, "GET", ML, query=q).json()
            pages.append(page)
            assert 0 < len(page["items"]) <= limit
            cursor = page["next"]
            if cursor is None:
                return pages
            assert cursor == page["items"][-1]["programId"]

    pages = walk(2)
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    everything = [m for p in pages for m in p["items"]]
    assert [m["programId"] for m in everything] == order
    for m in everything:
        assert m == call(service, "GET", M, path=f"/v1/mappings/{m['programId']}").json()
    # The default limit (100) holds them all; so does the largest.
    assert call(service, "GET", ML).json() == {"items": everything, "next": None}
    assert call(service, "GET", ML, query="?limit=1000").json() == {"items": everything,
                                                                     "next": None}
    # A page of one with more to follow has the example's shape.
    page = call(service, "GET", ML, query="?limit=1").json()
    ex = example(ML, "GET", 200, "morePages")
    assert page["next"] == page["items"][0]["programId"] == "7"
    assert set(page) == set(ex) and set(page["items"][0]) == set(ex["items"][0])
    # When the items fill the last page exactly, no empty page follows.
    assert call(service, "DELETE", M, path="/v1/mappings/300").status == 204
    assert [len(p["items"]) for p in walk(2)] == [2, 2]
    assert [len(p["items"]) for p in walk(1)] == [1, 1, 1, 1]


def test_mapping_conflict_409(redis, service):
    assert call(service, "PUT", M, {"campaignId": CID}).status == 201
    ex = example(M, "PUT", 409, "conflict")
    # 18- and 15-character forms of the same campaign.
    for cid in (CID, CID[:15]):
        r = call(service, "PUT", M, {"campaignId": cid}, path="/v1/mappings/1002")
        assert r.status == 409
        assert r.json() == {**ex, "message": ex["message"].replace(CID, cid)}
    assert call(service, "GET", M, path="/v1/mappings/1002").status == 404
    # The program that maps the campaign may replace its own mapping.
    assert call(service, "PUT", M, {"campaignId": CID[:15]}).status == 200
    # Once that mapping is gone, the campaign is free for another program.
    assert call(service, "DELETE", M).status == 204
    assert call(service, "PUT", M, {"campaignId": CID}, path="/v1/mappings/1002").status == 201


MAPPING_400 = {
    "notOneToOne": ("1001", {"campaignId": CID,
                             "statusMap": {"Invited": "Responded", "Registered": "Responded"}}),
    "badCampaign": ("1001", {"campaignId": "0015g000000AcctAAA"}),
    "notInProgram": ("1001", {"campaignId": CID, "statusMap": {"Not in Program": "Removed"}}),
    "notAnObject": ("1001", b"{bad"),
    "badProgram": ("abc", {"campaignId": CID}),
}


@pytest.mark.parametrize("name", sorted(MAPPING_400))
def test_mapping_400s_are_the_described_examples(redis, service, name):
    pid, body = MAPPING_400[name]
    r = call(service, "PUT", M, body, path=f"/v1/mappings/{pid}")
    assert r.status == 400
    assert r.json() == example(M, "PUT", 400, name)
    assert call(service, "GET", ML).json() == example(ML, "GET", 200, "empty")


def _map(**over):
    body = {"campaignId": CID, "enabled": True, "statusMap": {"Invited": "Sent"},
            "force": False}
    body.update(over)
    return {k: v for k, v in body.items() if v is not ...}


# Cases the schema can decide. Not here: a statusMap that is not one-to-one (two keys with
# the same value) and labels over 127 bytes in fewer characters, which JSON Schema cannot
# express; the description says so and test_mapping_400s covers the first.
MAPPING_BODY_CASES = {
    "every field": _map(),
    "only the campaign": {"campaignId": CID},
    "15-char campaign id": _map(campaignId=CID[:15]),
    "disabled": _map(enabled=False),
    "force": _map(force=True),
    "statusMap null": _map(statusMap=None),
    "statusMap empty": _map(statusMap={}),
    "statusMap swapping two labels": _map(statusMap={"Sent": "Responded", "Responded": "Sent"}),
    "50 entries": _map(statusMap={f"m{i}": f"s{i}" for i in range(50)}),
    "labels of 127 bytes": _map(statusMap={"M" * 127: "S" * 127}),
    "unknown field": _map(note="ignored"),
    "51 entries": _map(statusMap={f"m{i}": f"s{i}" for i in range(51)}),
    "Marketo label of 128 bytes": _map(statusMap={"M" * 128: "S"}),
    "Salesforce label of 128 bytes": _map(statusMap={"M": "S" * 128}),
    "Not in Program as a key": _map(statusMap={"Not in Program": "Removed"}),
    "Not in Program as a value": _map(statusMap={"Removed": "Not in Program"}),
    "empty Marketo label": _map(statusMap={"": "Sent"}),
    "empty Salesforce label": _map(statusMap={"Invited": ""}),
    "label not a string": _map(statusMap={"Invited": 1}),
    "statusMap an array": _map(statusMap=[]),
    "missing campaignId": _map(campaignId=...),
    "campaignId of another object": _map(campaignId="0015g000000AcctAAA"),
    "campaignId of 16 chars": _map(campaignId=CID[:16]),
    "campaignId a number": _map(campaignId=701500000000000),
    "enabled a string": _map(enabled="true"),
    "enabled null": _map(enabled=None),
    "force a number": _map(force=1),
    "force null": _map(force=None),
    "an array": [_map()],
    "a string": CID,
}


@pytest.mark.parametrize("name", sorted(MAPPING_BODY_CASES))
def test_mapping_request_schema_agrees_with_the_service(redis, service, name):
    body = MAPPING_BODY_CASES[name]
    schema = resolve(operation(M, "put")["requestBody"])["content"]["application/json"]["schema"]
    allowed = validator(schema).is_valid(body)
    r = call(service, "PUT", M, body)
    assert r.status in (200, 201, 400)
    assert (r.status != 400) == allowed, (
        f"schema {'allows' if allowed else 'refuses'} it, the service answered {r.status}: "
        f"{r.body[:300]!r}")
    if allowed:
        m = r.json()
        assert m["enabled"] == body.get("enabled", True)
        assert m["statusMap"] == (body.get("statusMap") or {})
        assert m["campaignId"] == body["campaignId"]


def example_400(path, name):
    exs = examples(declared(path, "GET", 400)["content"]["application/json"])
    return exs.get(name, exs.get(""))


@pytest.mark.parametrize("path", [ML, D, MEMBERS, AUDIT])
def test_limit_out_of_range_is_400(redis, service, path):
    for value in ("0", "1001", "-1", "x", "", "1.5"):
        r = call(service, "GET", path, query=f"?limit={value}")
        assert r.status == 400, value
        assert r.json() == example_400(path, "limit")
    for value in ("1", "1000"):
        assert call(service, "GET", path, query=f"?limit={value}").status == 200


def test_audit_cursor_that_is_no_entry_id_is_400(redis, service):
    for value in ("-", "1-2-3", "0-0", "9" * 23):
        r = call(service, "GET", AUDIT, query=f"?cursor={value}")
        assert r.status == 400, (value, r.status, r.body)
        assert r.json() == example_400(AUDIT, "cursor")
    assert service.req("GET", "/readyz").status == 200


@pytest.mark.parametrize("path,bad,good", [
    (MEMBERS, ["x", "1a", "-1", "1-0"], ["", "0", "5"]),
    (AUDIT, ["x", "1795946401250-0a", "1" * 41, "%20"], ["", "5", "1795946401250-0"]),
])
def test_members_and_audit_cursor(redis, service, path, bad, good):
    for value in bad:
        r = call(service, "GET", path, query=f"?cursor={value}")
        assert r.status == 400, value
        assert r.json() == example_400(path, "cursor")
    for value in good:
        r = call(service, "GET", path, query=f"?cursor={value}")
        assert r.status == 200, value
        assert r.json() == {"items": [], "next": None}


BAD_AUTH = [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Bearer "},
            {"Authorization": f"Basic {cs.ADMIN_TOKEN}"}, {"Authorization": cs.ADMIN_TOKEN},
            {"Authorization": f"Bearer {cs.ADMIN_TOKEN}x"}]


def test_admin_401_without_the_right_token(redis, service):
    for method, template, body in ADMIN_CALLS:
        for headers in BAD_AUTH:
            r = call(service, method, template, body, headers=headers)
            assert r.status == 401, (method, template, headers)
            assert r.json() == example(template, method, 401)
            assert r.header("WWW-Authenticate") == "Bearer"
    # Nothing was changed.
    assert redis.cmd("KEYS", "cs:mapping*") == []
    assert call(service, "GET", SYNC).json() == {"enabled": True}


def test_admin_404_while_admin_token_is_unset(redis, services):
    svc = services(redis.url, ADMIN_TOKEN=None)
    for method, template, body in ADMIN_CALLS:
        for headers in (ADMIN, {}, {"Authorization": "Bearer wrong-token"}):
            r = call(svc, method, template, body, headers=headers)
            assert r.status == 404, (method, template, headers)
            assert r.json() == DISABLED == disabled_example(template, method)
            assert r.header("WWW-Authenticate") is None
    assert redis.cmd("KEYS", "cs:mapping*") == []


def test_admin_503_while_redis_is_down(redis, service):
    redis.stop()
    messages = []
    for method, template, body in ADMIN_CALLS:
        r = call(service, method, template, body)
        assert r.status == 503, (method, template)
        assert r.json()["error"] == "unavailable"
        assert r.json()["message"].startswith("Redis is unavailable: ")
        messages.append(r.json()["message"])
    ex = example(SYNC, "GET", 503)["message"].replace("6379", str(redis.port))
    assert ex in messages
    redis.start()
    cs.wait_until(lambda: service.req("GET", SYNC, None, ADMIN).status == 200, 10,
                  what="the admin API to recover")


@pytest.mark.parametrize("template", [M, SYNC])
def test_admin_413(service, template):
    for headers in (ADMIN, {"Content-Type": "application/json"}):  # before the token
        r = raw_headers_only(service.port, "PUT", concrete(template),
                             {**headers, "Content-Length": "2097153"})
        assert r.status == 413
        check(r, template, "PUT")
        assert r.json() == example(template, "PUT", 413)


def test_head_answers_every_admin_get(redis, service):
    assert call(service, "PUT", M, {"campaignId": CID}).status == 201
    for template in (ML, M, SYNC, D, MEMBERS, AUDIT):
        g = service.req("GET", concrete(template), None, ADMIN)
        h = service.req("HEAD", concrete(template), None, ADMIN)
        assert g.status == h.status == 200, template
        assert h.body == b""
        assert h.header("Content-Type") == g.header("Content-Type") == "application/json"
        assert int(h.header("Content-Length")) == len(g.body)


def test_sync_get_and_put(redis, service):
    r = call(service, "GET", SYNC)
    assert r.status == 200 and r.json() == example(SYNC, "GET", 200)
    r = call(service, "PUT", SYNC, request_example(SYNC, "disable", "put"))
    assert r.status == 200 and r.json() == example(SYNC, "PUT", 200)
    assert redis.cmd("GET", "cs:sync:enabled") == "0"
    assert call(service, "GET", SYNC).json() == {"enabled": False}
    r = call(service, "PUT", SYNC, request_example(SYNC, "enable", "put"))
    assert r.status == 200 and r.json() == {"enabled": True}
    assert redis.cmd("GET", "cs:sync:enabled") == "1"
    # Other fields are ignored.
    assert call(service, "PUT", SYNC, {"enabled": False, "why": "maintenance"}).json() == {
        "enabled": False}
    for body in ({"enabled": "no"}, {"enabled": None}, {"enabled": 0}, {}, [True], "true",
                 b"", b"{bad"):
        r = call(service, "PUT", SYNC, body)
        assert r.status == 400, body
        assert r.json() == example(SYNC, "PUT", 400)
    assert call(service, "GET", SYNC).json() == {"enabled": False}
    assert redis.cmd("GET", "cs:sync:enabled") == "0"


def make_dead_letter(redis, entry_id, raw_event, at_ms, attempts=1, error="gave up"):
    """Moves a queued entry to the dead letters the way service/lua/dead_letter.lua does
    (the item as store_dead_letter builds it, the raw event beside it)."""
    item = {"id": entry_id, "at": iso(at_ms), "attempts": attempts, "error": error,
            "event": json.loads(raw_event)}
    queue = next(i for i, k in enumerate(cs.STREAMS)
                 if redis.cmd("XRANGE", k, entry_id, entry_id))
    redis.cmd("XDEL", cs.STREAMS[queue], entry_id)
    redis.cmd("HSET", f"cs:dead:{entry_id}", "item", json.dumps(item, separators=(",", ":")),
              "event", raw_event, "q", queue)
    redis.cmd("ZADD", "cs:deadletters", at_ms, entry_id)
    return item


def queue_marketo_events(redis, service, n, first_lead=500):
    body = [{**request_example("/webhooks/marketo", "template"), "leadId": first_lead + i}
            for i in range(n)]
    assert mk(service, body).status == 202
    return [(i, f["event"]) for i, _, f in cs.stream_events(redis)[-n:]]


def walk_dead_letters(service, limit):
    pages, cursor = [], None
    while True:
        q = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = call(service, "GET", D, query=q)
        assert r.status == 200
        page = r.json()
        pages.append(page)
        cursor = page["next"]
        if cursor is None:
            return pages


def test_deadletters_list_replay_delete(redis, service):
    assert call(service, "GET", D).json() == example(D, "GET", 200, "empty")
    # The example's event is what the service queues for the Outbound Message example.
    assert sf(service, request_example("/webhooks/salesforce", "campaignMember")).status == 200
    (entry_id, event, fields), = cs.stream_events(redis)
    ex_page = example(D, "GET", 200, "incompatibleStatus")
    ex_item = ex_page["items"][0]
    assert event == {**ex_item["event"], "receivedAt": event["receivedAt"]}
    at = event["receivedAt"] + 2000
    make_dead_letter(redis, entry_id, fields["event"], at, ex_item["attempts"], ex_item["error"])
    r = call(service, "GET", D)
    assert r.json() == {"items": [{**ex_item, "id": entry_id, "at": iso(at), "event": event}],
                        "next": None}

    # Older and newer dead letters: newest first, across pages.
    others = queue_marketo_events(redis, service, 3)
    ats = {entry_id: at}
    for k, (oid, raw) in enumerate(others):
        ats[oid] = at + (k - 1) * 1000 + 500  # one older, two newer; all distinct ms
        make_dead_letter(redis, oid, raw, ats[oid], attempts=5,
                         error="gave up after 5 attempts: Marketo error 1003")
    newest_first = sorted(ats, key=lambda i: -ats[i])
    for limit in (1, 2, 3, 4):
        pages = walk_dead_letters(service, limit)
        assert [d["id"] for p in pages for d in p["items"]] == newest_first, limit
        assert [len(p["items"]) for p in pages] == [
            min(limit, 4 - k) for k in range(0, 4, limit)], limit
        for p in pages[:-1]:
            assert p["next"] == p["items"][-1]["id"]
    # A page of one with more to follow has the example's shape.
    page = call(service, "GET", D, query="?limit=1").json()
    assert set(page) == set(ex_page) and set(page["items"][0]) == set(ex_item)
    assert page["next"] == newest_first[0]

    # Replay: the event is queued again, unchanged, with no attempts; the dead letter goes.
    r = call(service, "POST", REPLAY, path=f"/v1/deadletters/{entry_id}/replay")
    assert r.status == 202
    assert r.json() == {**example(REPLAY, "POST", 202), "id": entry_id}
    (new_id, replayed, new_fields), = cs.stream_events(redis)
    assert new_id != entry_id
    assert new_fields == {"event": fields["event"], "attempts": "0"}
    assert replayed == event
    assert entry_id not in [d["id"] for d in call(service, "GET", D).json()["items"]]
    assert redis.cmd("EXISTS", f"cs:dead:{entry_id}") == 0
    assert redis.cmd("ZSCORE", "cs:deadletters", entry_id) is None
    ex404 = example(REPLAY, "POST", 404, "noDeadLetter")
    for method, template, path in (("POST", REPLAY, f"/v1/deadletters/{entry_id}/replay"),
                                   ("DELETE", DL, f"/v1/deadletters/{entry_id}")):
        r = call(service, method, template, path=path)
        assert r.status == 404
        assert r.json() == {**ex404, "message": ex404["message"].replace(
            SAMPLE_PARAMS["{id}"], entry_id)}

    # Delete: gone for good, nothing queued.
    gone = others[0][0]
    r = call(service, "DELETE", DL, path=f"/v1/deadletters/{gone}")
    assert r.status == 204
    assert [d["id"] for d in call(service, "GET", D).json()["items"]] == [
        i for i in newest_first if i not in (entry_id, gone)]
    assert len(cs.stream_events(redis)) == 1
    for method, template, path in (("DELETE", DL, f"/v1/deadletters/{gone}"),
                                   ("POST", REPLAY, f"/v1/deadletters/{gone}/replay")):
        r = call(service, method, template, path=path)
        assert r.status == 404
        assert r.json()["message"] == f"no dead letter {gone}"
    # Unknown ids.
    for method, template in (("POST", REPLAY), ("DELETE", DL)):
        r = call(service, method, template)
        assert r.status == 404 and r.json() == example(template, method, 404, "noDeadLetter")


def test_deadletters_of_one_millisecond_are_all_listed_across_pages(redis, service):
    at = now_ms()
    events = queue_marketo_events(redis, service, 3)
    for eid, raw in events:
        make_dead_letter(redis, eid, raw, at)
    pages = walk_dead_letters(service, 1)
    assert sorted(d["id"] for p in pages for d in p["items"]) == sorted(e for e, _ in events)


# ------------------------------------------------------------------ status check, validation,
# reconciliation, members and audit (issue 6): live answers with the CRM simulators

ODD = ["Invited", "Registered", "Attended", "Attended On-demand", "Did Not Attend"]


def seed(sf_sim, mkto_sim, statuses=ODD):
    """A campaign with the given statuses and a Webinar program (id 1001): their ids."""
    cid = sf_sim.ctl("POST", "seed", {"campaigns": [{"Name": "Webinar", "IsActive": True,
                                                     "statuses": [
        {"Label": s, "IsDefault": s == statuses[0], "HasResponded": s.startswith("Attended")}
        for s in statuses]}]})["campaigns"][0]["Id"]
    pid = mkto_sim.ctl("POST", "seed", {"programs": [{"name": "Webinar Nov",
                                                       "channel": "Webinar"}]})["programs"][0]["id"]
    assert pid == 1001
    return cid, pid


def with_campaign(value, cid):
    """An example with its campaign id replaced by the simulator's."""
    return json.loads(json.dumps(value).replace(CID, cid))


def test_readyz_lists_the_crm_checks(redis, services, sf_sim, mkto_sim, workdir):
    svc = services(redis.url, **cs.crm_env(sf_sim, mkto_sim))
    r = cs.wait_until(lambda: (lambda r: r if r.json()["checks"].get("marketo") == "ok" and
                               r.json()["checks"].get("salesforce") == "ok" else None)(
        svc.req("GET", "/readyz")), 10, what="both CRM checks to pass")
    assert r.status == 200
    check(r, "/readyz", "GET")
    assert r.json() == example("/readyz", "GET", 200, "withCrmChecks")
    down = services(redis.url, name="down", SPOOL_DIR=os.path.join(workdir, "spool-down"),
                    **cs.crm_env(sf_sim, mkto_sim, MARKETO_CLIENT_SECRET="wrong",
                                 SF_LOGIN_URL=f"http://127.0.0.1:{cs.free_port()}"))
    r = cs.wait_until(lambda: (lambda r: r if "not checked yet" not in r.body.decode() else None)(
        down.req("GET", "/readyz")), 10, what="the CRM checks to run")
    assert r.status == 200
    check(r, "/readyz", "GET")
    assert r.json() == example("/readyz", "GET", 200, "crmDown")


def test_mapping_status_check_validation_and_reconcile(redis, services, sf_sim, mkto_sim):
    svc = services(redis.url, **cs.crm_env(sf_sim, mkto_sim))
    cid, pid = seed(sf_sim, mkto_sim)
    # Incompatible statuses: refused, naming them.
    r = call(svc, "PUT", M, {"campaignId": cid})
    assert r.status == 409
    assert r.json() == with_campaign(example(M, "PUT", 409, "incompatibleStatuses"), cid)
    assert call(svc, "GET", M).status == 404
    # Forced.
    r = call(svc, "PUT", M, {"campaignId": cid, "force": True})
    assert r.status == 201
    assert untimed(r.json()) == untimed(with_campaign(example(M, "PUT", 201, "forced"), cid))
    assert call(svc, "GET", M).json() == stored(r.json())
    # The report, incompatible then compatible.
    r = call(svc, "GET", VALIDATION)
    assert r.status == 200
    assert r.json() == with_campaign(example(VALIDATION, "GET", 200, "incompatible"), cid)
    r = call(svc, "PUT", M, {"campaignId": cid, "statusMap": {"No Show": "Did Not Attend"}})
    assert r.status == 200 and r.json()["statusCheck"] == "passed"
    r = call(svc, "GET", VALIDATION)
    assert r.status == 200
    assert r.json() == with_campaign(example(VALIDATION, "GET", 200, "compatible"), cid)
    # Passed on creation, as in the example (its campaign has the labels of its statusMap).
    cid2 = sf_sim.ctl("POST", "seed", {"campaigns": [{"Name": "Other", "statuses": [
        {"Label": s, "HasResponded": True} for s in
        ("Sent", "Responded", "No Show", "Attended", "Attended On-demand")]}]}
    )["campaigns"][0]["Id"]
    pid2 = mkto_sim.ctl("POST", "seed", {"programs": [{"name": "Other", "channel": "Webinar"}]}
                        )["programs"][0]["id"]
    r = call(svc, "PUT", M, request_example(M, "full", "put") | {"campaignId": cid2},
             path=f"/v1/mappings/{pid2}")
    assert r.status == 201
    ex = with_campaign(example(M, "PUT", 201, "passed"), cid2) | {"programId": str(pid2)}
    assert untimed(r.json()) == untimed(ex)
    # Disabled: skipped.
    r = call(svc, "PUT", M, {"campaignId": cid, "enabled": False})
    assert r.status == 200
    ex = with_campaign(example(M, "PUT", 200, "skipped"), cid)
    assert untimed(r.json()) == untimed(ex)
    # Reconcile: a job, queued at once (this process runs no jobs); the second ask names it.
    r = call(svc, "POST", RECONCILE)
    assert r.status == 202
    jid = r.json()["id"]
    assert r.json() == {**example(RECONCILE, "POST", 202), "id": jid}
    r = call(svc, "POST", RECONCILE)
    ex = example(RECONCILE, "POST", 409)
    assert r.status == 409
    assert r.json() == json.loads(json.dumps(ex).replace(ex["id"], jid))
    j = call(svc, "GET", JOB, path=f"/v1/jobs/{jid}")
    assert j.status == 200 and (j.json()["state"], j.json()["kind"]) == ("queued", "reconcile")
    r = call(svc, "GET", JOBS, query=f"?programId={pid}")
    assert r.status == 200 and r.json() == {"items": [j.json()], "next": None}
    r = call(svc, "GET", JOB_DETAILS, path=f"/v1/jobs/{jid}/details")
    assert r.status == 200 and r.json() == {"items": [], "next": None}
    r = call(svc, "DELETE", JOB, path=f"/v1/jobs/{jid}")
    assert r.status == 200 and r.json()["state"] == "cancelled"
    r = call(svc, "DELETE", JOB, path=f"/v1/jobs/{jid}")
    assert r.status == 409
    ex = example(JOB, "DELETE", 409)
    assert r.json() == json.loads(json.dumps(ex).replace("jmx1o4740-4f0zq1", jid))
    # A program Marketo does not have: pending, and 503 from the CRM endpoints.
    r = call(svc, "PUT", M, {"campaignId": campaign(9)}, path="/v1/mappings/2002")
    assert r.status == 201 and r.json()["statusCheck"] == "pending"
    assert r.json()["statusCheckMessage"] == "Marketo has no program 2002"
    r = call(svc, "GET", VALIDATION, path="/v1/mappings/2002/validation")
    assert r.status == 503
    ex = example(VALIDATION, "GET", 503, "crmUnavailable")
    assert r.json() == {**ex, "message": ex["message"].replace("1001", "2002")}
    r = call(svc, "POST", RECONCILE, path="/v1/mappings/2002/reconcile")
    assert r.status == 202  # the job fails in a worker, saying why (test_jobs.py)
    # Unknown mappings.
    for method, template in (("GET", VALIDATION), ("POST", RECONCILE)):
        r = call(svc, method, template, path=concrete(template).replace("1001", "3003"))
        assert r.status == 404
        ex = example(template, method, 404, "noMapping")
        assert r.json() == {**ex, "message": ex["message"].replace("1001", "3003")}


def test_crm_endpoints_without_crm_credentials(redis, service):
    assert call(service, "PUT", M, {"campaignId": CID, "enabled": False}).json()[
        "statusCheck"] == "skipped"
    r = call(service, "GET", VALIDATION)
    assert r.status == 503
    assert r.json() == example(VALIDATION, "GET", 503, "crmNotConfigured")
    # A reconciliation is a job: queued here, run by a worker process.
    assert call(service, "POST", RECONCILE).status == 202


def test_job_answers(redis, service):
    """The jobs' 404s and 400s are the described examples."""
    r = call(service, "GET", JOB)  # the sample id is not a job id
    assert r.status == 404 and r.json() == examples(
        declared(JOB, "GET", 404)["content"]["application/json"])["notAnId"]
    r = call(service, "GET", JOB, path="/v1/jobs/jmx1o4740-4f0zq1")
    assert r.status == 404 and r.json() == examples(
        declared(JOB, "GET", 404)["content"]["application/json"])["noJob"]
    for template in (JOB_DETAILS, ):
        assert call(service, "GET", template, path="/v1/jobs/jmx1o4740-4f0zq1/details").status == 404
    assert call(service, "DELETE", JOB, path="/v1/jobs/jmx1o4740-4f0zq1").status == 404
    for q, name in (("?cursor=x", "cursor"), ("?programId=12a", "programId"),
                    ("?limit=0", "limit")):
        r = call(service, "GET", JOBS, query=q)
        assert r.status == 400 and r.json() == example_400(JOBS, name), q
    assert call(service, "GET", JOBS).json() == {"items": [], "next": None}


def test_members_and_audit(redis, services, sf_sim, mkto_sim):
    cid, pid = seed(sf_sim, mkto_sim, statuses=["Invited", "Registered", "No Show", "Attended",
                                                "Attended On-demand"])
    env = cs.crm_env(sf_sim, mkto_sim, SF_DELETED_POLL_INTERVAL_S=86400,
                     PROGRAM_POLL_INTERVAL_S=86400)
    svc = services(redis.url, **env)
    services(redis.url, command="worker", name="worker", **env)
    ann = sf_sim.ctl("POST", "seed", {"contacts": [{"LastName": "Lee", "Email": "ann@example.com"}]}
                     )["contacts"][0]["Id"]
    bob = sf_sim.ctl("POST", "seed", {"leads": [{"LastName": "Ray", "Company": "Acme",
                                                 "Email": "bob@example.com"}]})["leads"][0]["Id"]
    leads = mkto_sim.ctl("POST", "seed", {"leads": [{"email": "ann@example.com"},
                                                    {"email": "bob@example.com"}]})["leads"]
    assert call(svc, "PUT", M, {"campaignId": cid}).json()["statusCheck"] == "passed"
    sf_sim.ctl("POST", "config", {
        "outboundUrl": f"http://127.0.0.1:{svc.port}/webhooks/salesforce"})
    # ann from Marketo (a webhook), then bob from Salesforce (an Outbound Message).
    hook = {**request_example("/webhooks/marketo", "template"), "programId": pid,
            "leadId": leads[0]["id"], "email": "ann@example.com", "status": "Registered"}
    assert mk(svc, hook).status == 202
    cs.wait_until(lambda: sf_sim.ctl("GET", f"members?campaignId={cid}")["members"], 30,
                  what="ann in the campaign")
    sf_sim.ctl("POST", "members", {"CampaignId": cid, "LeadId": bob, "Status": "Attended"})
    cs.wait_until(lambda: len(call(svc, "GET", AUDIT).json()["items"]) >= 2, 30,
                  what="two audit entries")

    r = call(svc, "GET", MEMBERS, path=f"/v1/campaigns/{cid}/members")
    assert r.status == 200
    page = r.json()
    ex = example(MEMBERS, "GET", 200, "members")
    assert set(page) == set(ex) and page["next"] is None
    assert [set(m) for m in page["items"]] == [set(m) for m in ex["items"]]
    got = {m["email"]: (m["status"], m["programStatus"], m["source"], m["marketoLeadId"],
                        m["salesforceId"][:15]) for m in page["items"]}
    assert got == {"ann@example.com": ("Registered", "Registered", "marketo",
                                       str(leads[0]["id"]), ann[:15]),
                   "bob@example.com": ("Attended", "Attended", "salesforce",
                                       str(leads[1]["id"]), bob[:15])}
    r = call(svc, "GET", MEMBERS, path=f"/v1/campaigns/{cid}/members", query="?limit=1")
    ex = example(MEMBERS, "GET", 200, "morePages")
    assert set(r.json()) == set(ex) and r.json()["next"] == ex["next"]
    r = call(svc, "GET", MEMBERS, path=f"/v1/campaigns/{cid}/members",
             query=f"?limit=1&cursor={r.json()['next']}")
    assert r.status == 200 and len(r.json()["items"]) == 1

    ex = example(AUDIT, "GET", 200, "changes")
    for q in ("", f"?programId={pid}", f"?campaignId={cid}", f"?campaignId={cid[:15]}&limit=2"):
        r = call(svc, "GET", AUDIT, query=q)
        assert r.status == 200
        items = r.json()["items"]
        assert [(e["email"], e["source"], e["target"], e["action"], e["status"])
                for e in items] == [
            ("bob@example.com", "salesforce", "marketo", "set_status", "Attended"),
            ("ann@example.com", "marketo", "salesforce", "upsert_member", "Registered")], q
        assert [set(e) for e in items] == [set(e) for e in ex["items"]], q
    r = call(svc, "GET", AUDIT, query="?limit=1")
    assert r.json()["next"] is not None
    nxt = call(svc, "GET", AUDIT, query=f"?limit=1&cursor={r.json()['next']}").json()
    assert [e["email"] for e in nxt["items"]] == ["ann@example.com"]
    assert call(svc, "GET", AUDIT, query="?programId=999").json() == example(
        AUDIT, "GET", 200, "empty")


def test_members_and_audit_empty(redis, service):
    r = call(service, "GET", MEMBERS)
    assert r.status == 200 and r.json() == example(MEMBERS, "GET", 200, "empty")
    r = call(service, "GET", AUDIT)
    assert r.status == 200 and r.json() == example(AUDIT, "GET", 200, "empty")


def test_console_answers_are_described(redis, services, service, workdir):
    """The console's page, each asset, the redirect and the 404s, as described."""
    page = service.req("GET", "/console/")
    check(page, "/console/", "GET")
    names = sorted(set(re.findall(r'"((?:console|icon)\.[0-9a-f]{16}\.(?:js|css|svg))"',
                                  page.body.decode())))
    assert len(names) == 3 and SAMPLE_PARAMS["{asset}"] in names
    for name in names:
        check(service.req("GET", "/console/" + name), "/console/{asset}", "GET")
    r = service.req("GET", "/console")
    check(r, "/console", "GET")
    assert r.body.decode() == example("/console", "GET", 308)
    r = service.req("GET", "/console/console.js")
    check(r, "/console/{asset}", "GET")
    assert r.json() == example("/console/{asset}", "GET", 404, "unknown")
    off = services(redis.url, ADMIN_TOKEN=None, name="off",
                   SPOOL_DIR=os.path.join(workdir, "spool-off"))
    for path, described in (("/console/", "/console/"), ("/console", "/console"),
                            ("/console/" + names[0], "/console/{asset}")):
        r = off.req("GET", path)
        check(r, described, "GET")
    assert r.json() == example("/console/{asset}", "GET", 404, "disabled")
    assert off.req("GET", "/console/").json() == example("/console/", "GET", 404)


# ------------------------------------------------------------------ people (issue 21)

PEOPLE, RESYNC = "/v1/people", "/v1/people/resync"


def test_person_trace_answers(redis, service):
    r = call(service, "GET", PEOPLE, query="?marketoLeadId=999999")
    assert r.status == 200 and r.json() == example(PEOPLE, "GET", 200, "unknown")
    for q, name in (("", "none"), ("?email=a@example.com&salesforceId=0035g0000000001AAA", "none"),
                    ("?salesforceId=0015g0000000001AAA", "salesforceId")):
        r = call(service, "GET", PEOPLE, query=q)
        assert r.status == 400 and r.json() == example(PEOPLE, "GET", 400, name), q
    r = call(service, "GET", PEOPLE, query="?email=a@example.com&limit=1001")
    assert r.status == 400


def test_resync_answers_without_crm_credentials(redis, service):
    r = call(service, "POST", RESYNC, query="?email=kim@example.com")
    assert r.status == 503 and r.json() == example(RESYNC, "POST", 503, "crmNotConfigured")
    r = call(service, "POST", RESYNC)
    assert r.status == 400 and r.json() == example(RESYNC, "POST", 400)
