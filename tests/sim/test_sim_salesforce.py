"""The Salesforce simulator (tests/sim/salesforce_sim.py) over real HTTP: that it speaks the
REST wire format, rejects what the real API rejects, injects faults without changing state,
and delivers Outbound Messages (with retries) like Salesforce does.

Self-contained: starts its own simulator subprocess on a free port, and a small SOAP
receiver for the Outbound Message tests."""
import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(ROOT, "tests", "sim", "salesforce_sim.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
API = "/services/data/v62.0/"
INTEGRATION_USER = "005000000000001AAA"
HUMAN_USER = "005000000000002AAA"
ORG_ID = "00D000000000001AAA"
OM_NS = "http://soap.sforce.com/2005/09/outbound"
SF_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SF_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$"
ACK = ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
       f'<notificationsResponse xmlns="{OM_NS}"><Ack>true</Ack></notificationsResponse>'
       '</soapenv:Body></soapenv:Envelope>')
NACK = ACK.replace("<Ack>true</Ack>", "<Ack>false</Ack>")


def checksum(id15):
    """Salesforce's 18-character suffix, computed independently of the simulator."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    return "".join(alphabet[sum(1 << j for j, c in enumerate(id15[i:i + 5]) if c.isupper())]
                   for i in (0, 5, 10))


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def wait_until(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Sim:
    """HTTP client for one simulator process."""

    def __init__(self, port):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._token = None

    def http(self, method, path, body=None, headers=None, raw=None):
        """(status, headers, parsed JSON or text or None) of one request."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = dict(headers or {})
        if data is not None and raw is None:
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, rh, text = resp.status, resp.headers, resp.read().decode()
        except urllib.error.HTTPError as e:
            status, rh, text = e.code, e.headers, e.read().decode()
        try:
            parsed = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = text
        return status, rh, parsed

    def token_call(self, **form):
        return self.http("POST", "/services/oauth2/token",
                         raw=urllib.parse.urlencode(form).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})

    def token(self, fresh=False):
        if fresh or self._token is None:
            status, _, body = self.token_call(grant_type="client_credentials",
                                              client_id="sim-sf-client", client_secret="sim-sf-secret")
            assert status == 200, body
            self._token = body["access_token"]
        return self._token

    def api(self, method, rel, body=None, headers=None, raw=None):
        hdrs = {"Authorization": f"Bearer {self.token()}", **(headers or {})}
        return self.http(method, API + rel, body, hdrs, raw)

    def ok(self, method, rel, body=None, expect=200):
        status, _, out = self.api(method, rel, body)
        assert status == expect, out
        return out

    def query(self, soql, resource="query"):
        return self.api("GET", f"{resource}?q={urllib.parse.quote(soql)}")

    def control(self, method, path, body=None):
        status, _, out = self.http(method, "/_sim/" + path, body)
        return status, out

    def seed(self, **lists):
        status, out = self.control("POST", "seed", lists)
        assert status == 200, out
        return out

    def configure(self, **settings):
        status, out = self.control("POST", "config", settings)
        assert status == 200, out
        return out

    def state(self):
        return self.control("GET", "state")[1]


def start_sim(*args):
    proc = subprocess.Popen([PYTHON, SIM, "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY port="):
        proc.kill()
        raise AssertionError(f"simulator did not start: {line!r} {proc.stderr.read()}")
    return proc, int(line.split("=", 1)[1])


@pytest.fixture(scope="module")
def sim_process():
    proc, port = start_sim()
    yield port
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert proc.stdout.read() == "", "nothing but the READY line may go to stdout"


@pytest.fixture
def sim(sim_process):
    s = Sim(sim_process)
    status, _ = s.control("POST", "reset", {"defaults": True})
    assert status == 200
    return s


@pytest.fixture
def world(sim):
    """One campaign (Sent default, Responded), a lead and a contact."""
    out = sim.seed(campaigns=[{"Name": "Webinar", "Type": "Webinar"}],
                   leads=[{"Email": "lea@example.com", "FirstName": "Lea", "LastName": "Lead",
                           "Company": "Acme & Co"}],
                   contacts=[{"Email": "cody@example.com", "FirstName": "Cody", "LastName": "Contact"}])
    return {"campaign": out["campaigns"][0]["Id"], "lead": out["leads"][0]["Id"],
            "contact": out["contacts"][0]["Id"]}


class Receiver:
    """A local Outbound Message listener; `answers` are used in turn, the last one repeats."""

    def __init__(self, answers):
        self.answers, self.requests = list(answers), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.requests.append((dict(self.headers), body))
                status, text = receiver.answers[min(len(receiver.requests), len(receiver.answers)) - 1]
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/salesforce"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def notifications(self, i):
        root = ET.fromstring(self.requests[i][1])
        return root.findall(f".//{{{OM_NS}}}Notification")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory(sim):
    made = []

    def make(*answers):
        r = Receiver(answers or [(200, ACK)])
        made.append(r)
        sim.configure(outboundUrl=r.url, outboundBatchMs=100, outboundRetryBaseMs=50,
                      outboundRetryMaxMs=200)
        return r

    yield make
    sim.configure(outboundUrl=None)
    for r in made:
        r.close()


# ----------------------------------------------------------------------------- process

def test_sigterm_stops_cleanly_and_options_apply():
    proc, port = start_sim("--client-id", "cid", "--client-secret", "cs", "--api-limit", "7")
    try:
        s = Sim(port)
        status, _, body = s.token_call(grant_type="client_credentials", client_id="cid", client_secret="cs")
        assert status == 200
        s._token = body["access_token"]
        _, headers, _ = s.api("GET", "limits")
        assert headers["Sforce-Limit-Info"] == "api-usage=1/7"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


# ----------------------------------------------------------------------------- OAuth and limits

def test_token_good(sim):
    status, headers, body = sim.token_call(grant_type="client_credentials",
                                           client_id="sim-sf-client", client_secret="sim-sf-secret")
    assert status == 200
    assert set(body) == {"access_token", "signature", "token_format", "instance_url", "id",
                         "token_type", "issued_at"}
    assert body["token_type"] == "Bearer" and body["token_format"] == "opaque"
    assert body["instance_url"] == sim.base
    assert body["id"] == f"{sim.base}/id/{ORG_ID}/{INTEGRATION_USER}"
    assert body["issued_at"].isdigit() and abs(int(body["issued_at"]) / 1000 - time.time()) < 60
    assert "Sforce-Limit-Info" not in headers
    assert sim.state()["apiUsage"] == 0, "token calls are not API calls"


@pytest.mark.parametrize("form,error,description", [
    ({"grant_type": "client_credentials", "client_id": "sim-sf-client", "client_secret": "wrong"},
     "invalid_client", "invalid client credentials"),
    ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "sim-sf-secret"},
     "invalid_client_id", "client identifier invalid"),
    ({"grant_type": "password", "client_id": "sim-sf-client", "client_secret": "sim-sf-secret"},
     "unsupported_grant_type", "grant type not supported"),
])
def test_token_bad(sim, form, error, description):
    status, _, body = sim.token_call(**form)
    assert (status, body) == (400, {"error": error, "error_description": description})


def test_token_as_json_is_not_a_grant(sim):
    status, _, body = sim.http("POST", "/services/oauth2/token",
                               {"grant_type": "client_credentials", "client_id": "sim-sf-client",
                                "client_secret": "sim-sf-secret"})
    assert status == 400 and body["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("auth", [None, "Bearer not-a-token", "Basic abc"])
def test_data_call_without_valid_token_is_401(sim, auth):
    status, headers, body = sim.http("GET", API + "limits", headers={"Authorization": auth} if auth else {})
    assert status == 401
    assert body == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert headers["Sforce-Limit-Info"] == "api-usage=0/15000"


def test_usage_header_counts_each_data_call(sim, world):
    seen = []
    for rel in ("limits", "sobjects/Lead/describe", "sobjects/Nope"):
        _, headers, _ = sim.api("GET", rel)
        seen.append(headers["Sforce-Limit-Info"])
    records = [{"attributes": {"type": "Lead"}, "LastName": f"L{i}", "Company": "C"} for i in range(5)]
    _, headers, _ = sim.api("POST", "composite/sobjects", {"allOrNone": False, "records": records})
    seen.append(headers["Sforce-Limit-Info"])
    assert seen == [f"api-usage={n}/15000" for n in (1, 2, 3, 4)]
    assert sim.state()["apiUsage"] == 4


def test_request_limit_exceeded(sim):
    sim.configure(apiLimit=2)
    assert [sim.api("GET", "sobjects")[0] for _ in range(2)] == [200, 200]
    status, headers, body = sim.api("GET", "sobjects")
    assert status == 403
    assert body == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert headers["Sforce-Limit-Info"] == "api-usage=3/2"
    # Whether `limits` still answers then is not documented: a switch, both ways.
    status, _, body = sim.api("GET", "limits")
    assert status == 200 and body["DailyApiRequests"] == {"Max": 2, "Remaining": 0}
    sim.configure(limitsWhenSpent="refuse")
    status, _, body = sim.api("GET", "limits")
    assert status == 403 and body[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    # Other integrations' calls age out of the rolling 24 hours.
    sim.control("POST", "api_usage", {"used": 0})
    assert sim.api("GET", "sobjects")[0] == 200


# ----------------------------------------------------------------------------- sObject rows

def test_ids_are_18_chars_with_checksum_and_15_char_forms_match(sim):
    created = sim.ok("POST", "sobjects/Lead", {"LastName": "Ng", "Company": "X"}, 201)
    assert created["success"] is True and created["errors"] == []
    lead = created["id"]
    assert len(lead) == 18 and lead.startswith("00Q") and lead[15:] == checksum(lead[:15])
    assert lead[:15] != lead[:15].lower(), "ids carry upper case, so the suffix matters"
    for form in (lead, lead[:15], lead.lower()[:15] + lead[15:]):
        assert sim.ok("GET", f"sobjects/Lead/{form}")["Id"] == lead
    assert sim.api("GET", f"sobjects/Lead/{lead[:15].lower()}")[0] == 404, "15-char ids are case-sensitive"


def test_lead_round_trip(sim):
    lead = sim.ok("POST", "sobjects/Lead", {"LastName": "Ng", "Company": "X", "Email": "ng@x.com"}, 201)["id"]
    rec = sim.ok("GET", f"sobjects/Lead/{lead}")
    assert rec["attributes"] == {"type": "Lead", "url": f"{API}sobjects/Lead/{lead}"}
    assert rec["LastModifiedById"] == INTEGRATION_USER and rec["IsDeleted"] is False
    assert re.match(SF_DATETIME, rec["CreatedDate"]) and re.match(SF_DATETIME, rec["LastModifiedDate"])
    assert sim.api("PATCH", f"sobjects/Lead/{lead}", {"Company": "Y"})[0] == 204
    assert sim.ok("GET", f"sobjects/Lead/{lead}")["Company"] == "Y"
    assert sim.api("DELETE", f"sobjects/Lead/{lead}")[0] == 204
    status, _, body = sim.api("GET", f"sobjects/Lead/{lead}")
    assert status == 404 and body[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert [d["Id"] for d in sim.state()["deleted"]] == [lead]


@pytest.mark.parametrize("body,code,message,fields", [
    ({"LastName": "Ng"}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Company]", ["Company"]),
    ({"Company": "X", "LastName": "  "}, "REQUIRED_FIELD_MISSING",
     "Required fields are missing: [LastName]", ["LastName"]),
    ({}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName, Company]",
     ["LastName", "Company"]),
    ({"LastName": "Ng", "Company": "X", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS",
     "Email: invalid email address: not-an-email", ["Email"]),
    ({"LastName": "N" * 81, "Company": "X"}, "STRING_TOO_LONG",
     f"Last Name: data value too large: {'N' * 81} (max length=80)", ["LastName"]),
    ({"LastName": "Ng", "Company": "X", "IsDeleted": True}, "INVALID_FIELD_FOR_INSERT_UPDATE",
     "Unable to create/update fields: IsDeleted. Please check the security settings of this field "
     "and verify that it is read/write for your profile or permission set.", ["IsDeleted"]),
])
def test_lead_validation(sim, body, code, message, fields):
    status, _, out = sim.api("POST", "sobjects/Lead", body)
    assert status == 400
    assert out == [{"message": message, "errorCode": code, "fields": fields}]
    assert sim.state()["leads"] == []


def test_unknown_field_and_bad_json_and_media_type(sim):
    status, _, out = sim.api("POST", "sobjects/Lead", {"LastName": "N", "Company": "C", "Foo__c": 1})
    assert status == 400
    assert out == [{"message": "No such column 'Foo__c' on sobject of type Lead", "errorCode": "INVALID_FIELD"}]
    status, _, out = sim.api("POST", "sobjects/Lead", raw=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert status == 400 and out[0]["errorCode"] == "JSON_PARSER_ERROR"
    status, _, out = sim.api("POST", "sobjects/Lead", raw=b'{"LastName":"N","Company":"C"}',
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and out[0]["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"
    assert sim.state()["leads"] == []


def test_wrong_method_unknown_paths_and_ids(sim):
    status, _, out = sim.api("PUT", "sobjects/Lead/00QSm0000000001", {"LastName": "x"})
    assert status == 405 and out[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    for rel in ("sobjects/Nope", "nope", "sobjects/Lead/00QSm0000000001", "sobjects/Lead/garbage"):
        status, _, out = sim.api("GET", rel)
        assert (status, out[0]["errorCode"]) == (404, "NOT_FOUND"), rel


def test_campaign_patch_type_and_cost(sim, world):
    c = world["campaign"]
    assert sim.api("PATCH", f"sobjects/Campaign/{c}", {"Type": "Any custom type", "ActualCost": 1234.5})[0] == 204
    rec = sim.ok("GET", f"sobjects/Campaign/{c}")
    assert (rec["Type"], rec["ActualCost"]) == ("Any custom type", 1234.5)
    status, _, out = sim.api("PATCH", f"sobjects/Campaign/{c}", {"Type": "T" * 256})
    assert status == 400 and out[0]["errorCode"] == "STRING_TOO_LONG" and out[0]["fields"] == ["Type"]
    status, _, out = sim.api("PATCH", f"sobjects/Campaign/{c}", {"ActualCost": "lots"})
    assert status == 400 and out[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert sim.ok("GET", f"sobjects/Campaign/{c}")["Type"] == "Any custom type"


# ----------------------------------------------------------------------------- campaign members

def test_member_defaults_and_derived_fields(sim, world):
    both = {"CampaignId": world["campaign"], "LeadId": world["lead"], "ContactId": world["contact"]}
    member = sim.ok("POST", "sobjects/CampaignMember", both, 201)["id"]
    rec = sim.ok("GET", f"sobjects/CampaignMember/{member}")
    assert member.startswith("00v")
    assert (rec["Status"], rec["HasResponded"]) == ("Sent", False)
    assert (rec["ContactId"], rec["LeadId"]) == (world["contact"], None), "ContactId wins"
    assert (rec["Email"], rec["FirstName"], rec["LastName"]) == ("cody@example.com", "Cody", "Contact")
    lead_member = sim.ok("POST", "sobjects/CampaignMember",
                         {"CampaignId": world["campaign"][:15], "LeadId": world["lead"], "Status": "Responded"}, 201)
    rec = sim.ok("GET", f"sobjects/CampaignMember/{lead_member['id']}")
    assert (rec["Status"], rec["HasResponded"], rec["CompanyOrAccount"]) == ("Responded", True, "Acme & Co")


def test_member_duplicate_rejected(sim, world):
    body = {"CampaignId": world["campaign"], "LeadId": world["lead"]}
    sim.ok("POST", "sobjects/CampaignMember", body, 201)
    status, _, out = sim.api("POST", "sobjects/CampaignMember",
                             {"CampaignId": world["campaign"][:15], "LeadId": world["lead"][:15], "Status": "Responded"})
    assert status == 400
    assert out == [{"message": "Already a campaign member.", "errorCode": "DUPLICATE_VALUE", "fields": []}]
    assert len(sim.state()["members"]) == 1


@pytest.mark.parametrize("status_value", ["Attended", "sent", "SENT"])
def test_member_bad_status_rejected(sim, world, status_value):
    body = {"CampaignId": world["campaign"], "LeadId": world["lead"], "Status": status_value}
    status, _, out = sim.api("POST", "sobjects/CampaignMember", body)
    assert status == 400
    assert out == [{"message": f"Status: bad value for restricted picklist field: {status_value}",
                    "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status"]}]
    assert sim.state()["members"] == []


def test_member_update_rules(sim, world):
    member = sim.ok("POST", "sobjects/CampaignMember",
                    {"CampaignId": world["campaign"], "LeadId": world["lead"]}, 201)["id"]
    status, _, out = sim.api("PATCH", f"sobjects/CampaignMember/{member}", {"CampaignId": world["campaign"]})
    assert status == 400 and out[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert out[0]["fields"] == ["CampaignId"]
    status, _, out = sim.api("PATCH", f"sobjects/CampaignMember/{member}", {"Status": "Nope"})
    assert status == 400 and out[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sim.api("PATCH", f"sobjects/CampaignMember/{member}", {"Status": "Responded"})[0] == 204
    rec = sim.ok("GET", f"sobjects/CampaignMember/{member}")
    assert (rec["Status"], rec["HasResponded"], rec["LastModifiedById"]) == ("Responded", True, INTEGRATION_USER)


def test_member_references_checked(sim, world):
    cases = [({"CampaignId": "701Sm0000000zzz", "LeadId": world["lead"]}, "INVALID_CROSS_REFERENCE_KEY"),
             ({"CampaignId": "bogus", "LeadId": world["lead"]}, "MALFORMED_ID"),
             ({"CampaignId": world["campaign"], "LeadId": world["contact"]}, "FIELD_INTEGRITY_EXCEPTION"),
             ({"LeadId": world["lead"]}, "REQUIRED_FIELD_MISSING"),
             ({"CampaignId": world["campaign"]}, "REQUIRED_FIELD_MISSING")]
    for body, code in cases:
        status, _, out = sim.api("POST", "sobjects/CampaignMember", body)
        assert (status, out[0]["errorCode"]) == (400, code), body
    assert sim.state()["members"] == []


def test_new_campaign_gets_standard_statuses_and_status_rules(sim):
    c = sim.ok("POST", "sobjects/Campaign", {"Name": "New"}, 201)["id"]
    status, _, out = sim.query(f"SELECT Label, IsDefault, HasResponded FROM CampaignMemberStatus "
                               f"WHERE CampaignId = '{c}' ORDER BY SortOrder")
    assert [(r["Label"], r["IsDefault"], r["HasResponded"]) for r in out["records"]] == [
        ("Sent", True, False), ("Responded", False, True)]
    status, _, out = sim.api("POST", "sobjects/CampaignMemberStatus", {"CampaignId": c, "Label": "sent"})
    assert status == 400 and out[0]["errorCode"] == "DUPLICATE_VALUE"
    sim.ok("POST", "sobjects/CampaignMemberStatus", {"CampaignId": c, "Label": "Attended",
                                                     "HasResponded": True, "IsDefault": True}, 201)
    status, _, out = sim.query(f"SELECT Label FROM CampaignMemberStatus WHERE CampaignId = '{c}' AND IsDefault = true")
    assert [r["Label"] for r in out["records"]] == ["Attended"], "one default per campaign"


# ----------------------------------------------------------------------------- sObject Collections

def test_collections_partial_success_in_request_order(sim, world):
    records = [{"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "LeadId": world["lead"]},
               {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "LeadId": world["lead"]},
               {"CampaignId": world["campaign"], "ContactId": world["contact"]},
               {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "ContactId": world["contact"],
                "Status": "Responded"}]
    out = sim.ok("POST", "composite/sobjects", {"allOrNone": False, "records": records})
    assert [r["success"] for r in out] == [True, False, False, True]
    assert out[1] == {"success": False, "errors": [{"statusCode": "DUPLICATE_VALUE",
                                                    "message": "Already a campaign member.", "fields": []}]}
    assert out[2]["errors"][0]["statusCode"] == "INVALID_TYPE"
    assert {m["Id"] for m in sim.state()["members"]} == {out[0]["id"], out[3]["id"]}


def test_collections_all_or_none_rolls_back(sim, world):
    before = sim.state()
    records = [{"attributes": {"type": "Lead"}, "LastName": "Ok", "Company": "C"},
               {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "LeadId": world["lead"],
                "Status": "Bogus"},
               {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "LeadId": world["lead"]}]
    out = sim.ok("POST", "composite/sobjects", {"allOrNone": True, "records": records})
    assert [r["success"] for r in out] == [False, False, False]
    assert out[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert out[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert out[2]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    after = sim.state()
    assert (after["leads"], after["members"]) == (before["leads"], before["members"])


def test_collections_update_and_delete(sim, world):
    created = sim.ok("POST", "composite/sobjects", {"records": [
        {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "LeadId": world["lead"]},
        {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "ContactId": world["contact"]}]})
    a, b = created[0]["id"], created[1]["id"]
    out = sim.ok("PATCH", "composite/sobjects", {"allOrNone": False, "records": [
        {"attributes": {"type": "CampaignMember"}, "id": a[:15], "Status": "Responded"},
        {"attributes": {"type": "CampaignMember"}, "Status": "Responded"}]})
    assert out[0] == {"id": a, "success": True, "errors": []}
    assert out[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    out = sim.ok("DELETE", f"composite/sobjects?ids={a},{b}&allOrNone=false")
    assert [r["success"] for r in out] == [True, True]
    out = sim.ok("DELETE", f"composite/sobjects?ids={a}&allOrNone=false")
    assert out == [{"id": a, "success": False, "errors": [{"statusCode": "ENTITY_IS_DELETED",
                                                           "message": "entity is deleted", "fields": []}]}]
    assert sim.state()["members"] == []


def test_collections_more_than_200_rejected(sim):
    too_many = [{"message": "record limit reached. cannot submit more than 200 records into this call",
                 "errorCode": "EXCEEDED_ID_LIMIT"}]
    records = [{"attributes": {"type": "Lead"}, "LastName": "L", "Company": "C"}] * 201
    assert sim.api("POST", "composite/sobjects", {"records": records})[::2] == (400, too_many)
    ids = ",".join(["00QSm0000000001"] * 201)
    assert sim.api("DELETE", f"composite/sobjects?ids={ids}")[::2] == (400, too_many)
    assert sim.state()["leads"] == []
    out = sim.ok("POST", "composite/sobjects", {"records": records[:200]})
    assert len(out) == 200 and all(r["success"] for r in out)


def test_collections_retrieve_by_get_and_by_post_body(sim, world):
    """sObject Collections retrieve: GET ?ids=&fields=, or POST {"ids": [...], "fields": [...]}
    for lists too long for a URL (REST guide "Get Records With a Request Body Using sObject
    Collections"; jsforce's SObject#retrieve([ids]) sends the POST). An unknown or deleted id
    gives null in its place; an unknown field is a 400."""
    created = sim.ok("POST", "composite/sobjects", {"records": [
        {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "LeadId": world["lead"]},
        {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "ContactId": world["contact"]}]})
    a, b = created[0]["id"], created[1]["id"]
    sim.ok("DELETE", f"composite/sobjects?ids={b}")
    want = [{"attributes": {"type": "CampaignMember", "url": f"{API}sobjects/CampaignMember/{a}"},
             "Id": a, "Status": "Sent"}, None, None]
    assert sim.ok("GET", f"composite/sobjects/CampaignMember?ids={a},{b},00vSm00000000ZZ&fields=Id,Status") == want
    body = {"ids": [a, b, "00vSm00000000ZZ"], "fields": ["Id", "Status"]}
    assert sim.ok("POST", "composite/sobjects/CampaignMember", body) == want
    status, _, out = sim.api("POST", "composite/sobjects/CampaignMember", {"ids": [a], "fields": ["Nope"]})
    assert (status, out[0]["errorCode"]) == (400, "INVALID_FIELD")
    status, _, out = sim.api("POST", "composite/sobjects/CampaignMember", {"ids": [a]})
    assert (status, out[0]["errorCode"]) == (400, "JSON_PARSER_ERROR")
    status, _, out = sim.api("PATCH", "composite/sobjects/CampaignMember", body)
    assert (status, out[0]["errorCode"]) == (405, "METHOD_NOT_ALLOWED")


# ----------------------------------------------------------------------------- SOQL

@pytest.fixture
def people(sim, world):
    leads = [{"Email": f"P{i}@Example.com", "LastName": f"Person{i}", "Company": "Co" if i % 2 else "Other"}
             for i in range(5)]
    out = sim.seed(leads=leads, members=[{"CampaignId": world["campaign"], "LeadId": "@leads.0", "Status": "Responded"},
                                         {"CampaignId": world["campaign"], "LeadId": "@leads.1"}])
    return dict(world, leads=[l["Id"] for l in out["leads"]], members=[m["Id"] for m in out["members"]])


def ids_of(result):
    return [r["Id"] for r in result["records"]]


def test_soql_filters(sim, people):
    leads = people["leads"]

    def q(soql):
        status, _, out = sim.query(soql)
        assert status == 200, out
        return out

    out = q("SELECT Id, Email FROM Lead WHERE Email = 'p3@EXAMPLE.COM'")
    assert out["totalSize"] == 1 and out["done"] is True
    assert out["records"][0] == {"attributes": {"type": "Lead", "url": f"{API}sobjects/Lead/{leads[3]}"},
                                 "Id": leads[3], "Email": "P3@Example.com"}
    assert ids_of(q(f"SELECT Id FROM Lead WHERE Id IN ('{leads[0][:15]}', '{leads[1]}') ORDER BY LastName")) == leads[:2]
    assert len(q("SELECT Id FROM Lead WHERE Company != 'co'")["records"]) == 4  # 3 "Other" + world's lead
    assert q("SELECT Id FROM Lead WHERE FirstName = null AND Company = 'Co'")["totalSize"] == 2
    assert ids_of(q("SELECT Id FROM Lead WHERE (Email = 'p0@example.com' OR Email = 'p4@example.com') "
                    "AND Company = 'Other' ORDER BY LastName DESC")) == [leads[4], leads[0]]
    assert ids_of(q("SELECT Id FROM Lead WHERE Email LIKE 'p_@%' ORDER BY Email LIMIT 2")) == leads[:2]
    assert q("SELECT Id FROM Lead WHERE CreatedDate > 2020-01-01T00:00:00Z")["totalSize"] == 6
    assert q("SELECT Id FROM Lead WHERE LastModifiedDate > 2999-01-01T00:00:00.000+00:00")["totalSize"] == 0
    member = q(f"SELECT Id, Status, HasResponded, Lead.Email, Campaign.Name FROM CampaignMember "
               f"WHERE CampaignId = '{people['campaign'][:15]}' AND Status = 'Responded'")["records"]
    assert len(member) == 1 and member[0]["Lead"]["Email"] == "P0@Example.com"
    assert member[0]["Campaign"]["Name"] == "Webinar" and member[0]["HasResponded"] is True


def test_soql_count_and_query_all(sim, people):
    status, _, out = sim.query("SELECT COUNT() FROM CampaignMember")
    assert (status, out) == (200, {"totalSize": 2, "done": True, "records": []})
    sim.ok("DELETE", f"sobjects/CampaignMember/{people['members'][0]}", expect=204)
    assert sim.query("SELECT Id FROM CampaignMember")[2]["totalSize"] == 1
    # Seeded in one millisecond, both may share a CreatedDate: compare as a set.
    out = sim.query("SELECT Id, IsDeleted FROM CampaignMember", "queryAll")[2]
    assert sorted((r["Id"], r["IsDeleted"]) for r in out["records"]) == sorted(
        [(people["members"][0], True), (people["members"][1], False)])


def test_soql_paging(sim, people):
    sim.configure(queryBatchSize=2)
    status, _, page = sim.query("SELECT Id FROM Lead ORDER BY LastName")
    seen, pages = ids_of(page), 1
    assert page["totalSize"] == 6 and page["done"] is False
    while not page["done"]:
        status, _, page = sim.http("GET", page["nextRecordsUrl"],
                                   headers={"Authorization": f"Bearer {sim.token()}"})
        assert status == 200
        seen += ids_of(page)
        pages += 1
    assert pages == 3 and "nextRecordsUrl" not in page and len(set(seen)) == 6
    status, _, out = sim.api("GET", "query/01gSm0000000001AAA-2")
    assert status == 400 and out[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def all_pages(sim, soql, resource="query"):
    """(status, every page of one query with its locator id masked): what a client sees."""
    status, _, page = sim.query(soql, resource)
    pages = [page]
    while status == 200 and not page["done"]:
        status, _, page = sim.http("GET", page["nextRecordsUrl"],
                                   headers={"Authorization": f"Bearer {sim.token()}"})
        pages.append(page)
    for p in pages:
        if isinstance(p, dict) and "nextRecordsUrl" in p:
            p["nextRecordsUrl"] = re.sub(r"/[A-Za-z0-9]{18}-", "/LOCATOR-", p["nextRecordsUrl"])
    return status, pages


def test_soql_index_answers_exactly_as_a_full_scan(sim):
    """Config queryIndex (on by default) lets `=`/`IN` terms on Id, CampaignMember.CampaignId and
    Lead/Contact Email take candidates from indexes kept by every write; off, every record is
    scanned. Every query below must answer the same, page by page, both ways, after writes
    that move records between index keys and within the scan order."""
    out = sim.seed(campaigns=[{"Name": "A"}, {"Name": "B"}],
                   leads=[{"Email": f"Lead{i}@Example.COM" if i % 5 else None, "LastName": f"L{i % 4}",
                           "Company": "Co"} for i in range(24)] + [
                       {"Email": "same@example.com", "LastName": "S1", "Company": "Co"},
                       {"Email": "SAME@Example.com", "LastName": "S2", "Company": "Co"}],
                   contacts=[{"Email": f"lead{i}@example.com", "LastName": f"C{i}"} for i in range(6)])
    a, b = out["campaigns"][0]["Id"], out["campaigns"][1]["Id"]
    leads, contacts = [r["Id"] for r in out["leads"]], [r["Id"] for r in out["contacts"]]
    members = sim.seed(members=[{"CampaignId": a if i % 3 else b, "LeadId": lead, "Status": "Sent"}
                                for i, lead in enumerate(leads)] +
                       [{"CampaignId": b, "ContactId": c} for c in contacts])["members"]
    member_ids = [m["Id"] for m in members]
    # Writes after insert: email changes (single and Collections), a rolled-back Collections
    # update (the undo re-inserts the record), deletes (single, Collections, cascading), a
    # member moved to another campaign (deleted, re-created), human and generated members.
    sim.ok("PATCH", f"sobjects/Lead/{leads[1]}", {"Email": "Moved@Example.com"}, expect=204)
    sim.ok("PATCH", "composite/sobjects", {"records": [
        {"attributes": {"type": "Lead"}, "id": leads[2], "Email": "SAME@example.COM"},
        {"attributes": {"type": "Contact"}, "id": contacts[0], "Email": None}]})
    out = sim.ok("PATCH", "composite/sobjects", {"allOrNone": True, "records": [
        {"attributes": {"type": "Lead"}, "id": leads[3], "Email": "rolled@back.com"},
        {"attributes": {"type": "Lead"}, "id": leads[4], "Email": "not an email"}]})
    assert [r["success"] for r in out] == [False, False]
    sim.ok("DELETE", f"sobjects/Lead/{leads[6]}", expect=204)          # cascades to its member
    sim.ok("DELETE", f"composite/sobjects?ids={member_ids[7]},{contacts[1]}")
    sim.ok("DELETE", f"sobjects/CampaignMember/{member_ids[8]}", expect=204)
    moved = sim.ok("POST", "sobjects/CampaignMember", {"CampaignId": a, "LeadId": leads[8]}, expect=201)["id"]
    sim.ok("PATCH", f"sobjects/CampaignMember/{member_ids[9]}", {"Status": "Responded"}, expect=204)
    assert sim.control("POST", "members", {"CampaignId": b, "LeadId": leads[10], "Status": "Responded"})[0] == 201
    sim.seed(generate={"campaignId": b, "count": 8, "statuses": {"Sent": 1}, "kind": "lead",
                       "emailPattern": "LEAD{n}@example.com", "start": 20})
    assert sim.query(f"SELECT Id FROM CampaignMember WHERE Id = '{moved}' AND CampaignId = '{a}'")[2]["totalSize"] == 1
    emails = ", ".join(f"'{e}'" for e in ("lead1@example.com", "MOVED@example.com", "same@EXAMPLE.com",
                                          "rolled@back.com", "lead3@example.com", "LEAD26@EXAMPLE.COM",
                                          "lead6@example.com", "nobody@example.com"))
    ids = ", ".join(f"'{i[:15]}'" for i in leads[::3] + [member_ids[7], "00Q000000000000"])
    queries = [(q, "query") for q in (
        f"SELECT Id, Status, LeadId, Lead.Email FROM CampaignMember WHERE CampaignId = '{a}'",
        f"SELECT Id, Status FROM CampaignMember WHERE CampaignId = '{b[:15]}' AND Status = 'Sent'",
        f"SELECT Id FROM CampaignMember WHERE Status != null AND (CampaignId = '{b}') ORDER BY Status DESC",
        f"SELECT Id FROM CampaignMember WHERE CampaignId IN ('{a}', '{b}') LIMIT 7",
        f"SELECT Id FROM CampaignMember WHERE CampaignId = '{a}' OR Status = 'Responded'",
        f"SELECT Id FROM CampaignMember WHERE NOT CampaignId = '{a}'",
        f"SELECT Id FROM CampaignMember WHERE CampaignId != '{a}'",
        f"SELECT Id FROM CampaignMember WHERE LeadId IN ({ids}) AND CampaignId = '{b}'",
        f"SELECT COUNT() FROM CampaignMember WHERE CampaignId = '{b}'",
        f"SELECT Id, Email FROM Lead WHERE Email IN ({emails})",
        f"SELECT Id, Email FROM Contact WHERE Email IN ({emails})",
        f"SELECT Id, Email FROM Lead WHERE Email IN ({emails}) ORDER BY LastName LIMIT 4",
        "SELECT Id, Email FROM Lead WHERE Email = 'SAME@EXAMPLE.COM'",
        "SELECT Id FROM Lead WHERE Email = null",
        "SELECT Id FROM Contact WHERE Email IN (null, 'lead2@example.com')",
        "SELECT Id FROM Lead WHERE Email NOT IN ('same@example.com')",
        f"SELECT Id, Email FROM Lead WHERE Id IN ({ids})",
        f"SELECT Id FROM Lead WHERE Id = '{leads[3]}' AND Email = 'lead3@example.com'",
        f"SELECT Id FROM Lead WHERE Id IN ({ids}) AND Email IN ({emails})",
        "SELECT Id FROM Lead WHERE Id IN ('00Qabc')",
    )] + [(f"SELECT Id, IsDeleted FROM CampaignMember WHERE CampaignId = '{b}'", "queryAll"),
          (f"SELECT Id, IsDeleted FROM Lead WHERE Id IN ({ids})", "queryAll"),
          (f"SELECT Id, IsDeleted FROM Lead WHERE Email IN ({emails})", "queryAll")]
    answers = {}
    for indexed in (True, False):
        sim.configure(queryIndex=indexed, queryBatchSize=3)
        answers[indexed] = [all_pages(sim, soql, resource) for soql, resource in queries]
    for (soql, _), got, want in zip(queries, answers[True], answers[False]):
        assert got == want, soql
    assert answers[True][0][1][0]["totalSize"] > 3 and answers[True][9][1][0]["totalSize"] == 6
    assert answers[True][-1][1][0]["totalSize"] == 7          # Lead6, deleted, found by queryAll


def test_soql_index_examines_only_the_candidates(sim):
    """/_sim/stats counts the records a WHERE was evaluated on: with the index a CampaignId
    query looks at that campaign's members only."""
    camps = sim.seed(campaigns=[{"Name": "Small"}, {"Name": "Big"}])["campaigns"]
    small, big = camps[0]["Id"], camps[1]["Id"]
    sim.seed(generate=[{"campaignId": big, "count": 40, "statuses": {"Sent": 1}},
                       {"campaignId": small, "count": 3, "statuses": {"Sent": 1}, "start": 100}])

    def examined(soql):
        before = sim.control("GET", "stats")[1]
        status, _, out = sim.query(soql)
        assert status == 200, out
        after = sim.control("GET", "stats")[1]
        return (out["totalSize"], after["queryRowsExamined"] - before["queryRowsExamined"],
                after["queryIndexHits"] - before["queryIndexHits"])

    soql = f"SELECT Id FROM CampaignMember WHERE CampaignId = '{small}' AND Status = 'Sent'"
    assert examined(soql) == (3, 3, 1)
    assert examined("SELECT Id FROM Lead WHERE Email IN ('X')") == (0, 0, 1)
    lead = sim.seed(leads=[{"Email": "Old@Example.com", "LastName": "L", "Company": "C"}])["leads"][0]["Id"]
    sim.ok("PATCH", f"sobjects/Lead/{lead}", {"Email": "New@Example.com"}, expect=204)
    assert examined("SELECT Id FROM Lead WHERE Email = 'old@example.com'") == (0, 0, 1)
    assert examined("SELECT Id FROM Lead WHERE Email = 'NEW@example.com'") == (1, 1, 1)
    assert examined("SELECT Id FROM Lead WHERE LastName != null") == (44, 44, 0)
    sim.configure(queryIndex=False)
    assert examined(soql) == (3, 43, 0)
    status, out = sim.control("POST", "config", {"queryIndex": "yes"})
    assert status == 400 and out["error"] == "bad_setting"


@pytest.mark.parametrize("soql,code,reason", [
    ("SELECT FROM Lead", "MALFORMED_QUERY", "unexpected token: FROM"),
    ("SELECT Id FROM Lead WHERE Email = 'a' AND Company = 'b' OR LastName = 'c'", "MALFORMED_QUERY",
     "unexpected token: OR"),
    ("SELECT Id FROM Lead WHERE Email = 'unterminated", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT Id FROM Leed", "INVALID_TYPE", "sObject type 'Leed' is not supported."),
    ("SELECT Id, Phone FROM Lead", "INVALID_FIELD", "No such column 'Phone' on entity 'Lead'."),
    ("SELECT Id FROM Lead WHERE CreatedDate > '2020-01-01'", "INVALID_FIELD",
     "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE CreatedDate > 2020-01-01T00:00:00+0000", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT Id FROM Lead WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
])
def test_soql_errors(sim, soql, code, reason):
    status, _, out = sim.query(soql)
    assert status == 400 and out[0]["errorCode"] == code
    assert reason in out[0]["message"] and "ERROR at Row:1:Column:" in out[0]["message"]


def test_soql_missing_query(sim):
    status, _, out = sim.api("GET", "query")
    assert (status, out[0]["errorCode"]) == (400, "MALFORMED_QUERY")


# ----------------------------------------------------------------------------- getDeleted

def deleted(sim, start, end):
    return sim.api("GET", f"sobjects/CampaignMember/deleted/?start={urllib.parse.quote(iso(start))}"
                          f"&end={urllib.parse.quote(iso(end))}")


def test_deleted_endpoint_window_rules(sim):
    now = datetime.now(timezone.utc)
    cases = [(now, now),                                              # not a minute apart
             (now - timedelta(days=16), now)]                         # older than 15 days
    for start, end in cases:
        status, _, out = deleted(sim, start, end)
        assert (status, out[0]["errorCode"]) == (400, "INVALID_REPLICATION_DATE"), (start, end)
    status, _, out = sim.api("GET", "sobjects/CampaignMember/deleted/?start=yesterday&end="
                             + urllib.parse.quote(iso(now)))
    assert (status, out[0]["errorCode"]) == (400, "INVALID_REPLICATION_DATE")
    # an unencoded '+' arrives as a space and does not parse
    status, _, out = sim.api("GET", f"sobjects/CampaignMember/deleted/?start={iso(now - timedelta(hours=1))}"
                                    f"&end={iso(now)}")
    assert (status, out[0]["errorCode"]) == (400, "INVALID_REPLICATION_DATE")
    assert deleted(sim, now - timedelta(days=14), now)[0] == 200


def test_deleted_endpoint_results(sim, people):
    gone = people["members"][0]
    sim.ok("DELETE", f"sobjects/CampaignMember/{gone}", expect=204)
    sim.ok("DELETE", f"sobjects/Lead/{people['leads'][4]}", expect=204)     # not a member
    now = datetime.now(timezone.utc)
    # A deletion of the current minute is not reported until the minute has ended.
    status, _, out = deleted(sim, now - timedelta(minutes=5), now + timedelta(minutes=5))
    assert status == 200 and out["deletedRecords"] == []
    covered = datetime.strptime(out["latestDateCovered"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert covered.second == 0 and covered.microsecond == 0 and covered <= now
    assert now - covered < timedelta(minutes=1, seconds=5)
    sim.control("POST", "age_deleted", {"seconds": 60})
    status, _, out = deleted(sim, now - timedelta(minutes=5), now + timedelta(minutes=5))
    assert [r["id"] for r in out["deletedRecords"]] == [gone]
    assert re.match(SF_DATETIME, out["deletedRecords"][0]["deletedDate"])
    status, _, out = deleted(sim, now - timedelta(minutes=20), now - timedelta(minutes=10))
    assert out["deletedRecords"] == []


def test_deleted_endpoint_seconds_are_ignored(sim, people):
    gone = people["members"][0]
    sim.ok("DELETE", f"sobjects/CampaignMember/{gone}", expect=204)
    sim.control("POST", "age_deleted", {"seconds": 120})
    at = datetime.strptime(sim.state()["deleted"][0]["deletedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
    # A start later in the deletion's own minute still reports it: seconds are ignored.
    status, _, out = deleted(sim, at.replace(second=59), datetime.now(timezone.utc))
    assert status == 200 and [r["id"] for r in out["deletedRecords"]] == [gone]


@pytest.mark.parametrize("mode", ["error", "answer"])
def test_deleted_endpoint_after_a_purge(sim, people, mode):
    gone = people["members"][0]
    sim.ok("DELETE", f"sobjects/CampaignMember/{gone}", expect=204)
    sim.control("POST", "age_deleted", {"seconds": 600})
    now = datetime.now(timezone.utc)
    sim.configure(deletedStartBeforeEarliest=mode)
    _, purge = sim.control("POST", "purge_deleted", {"before": iso(now - timedelta(minutes=3))})
    earliest = datetime.strptime(purge["earliestDateAvailable"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert earliest == (now - timedelta(minutes=3)).replace(microsecond=0)
    status, _, out = deleted(sim, now - timedelta(minutes=20), now)
    if mode == "error":
        assert (status, out[0]["errorCode"]) == (400, "INVALID_REPLICATION_DATE")
    else:
        assert status == 200 and out["deletedRecords"] == []
        assert datetime.strptime(out["earliestDateAvailable"], "%Y-%m-%dT%H:%M:%S.%f%z") == earliest
    status, _, out = deleted(sim, now - timedelta(minutes=2), now)
    assert status == 200 and out["deletedRecords"] == []


def test_deleted_endpoint_id_limit(sim, people):
    for m in people["members"][:2]:
        sim.ok("DELETE", f"sobjects/CampaignMember/{m}", expect=204)
    sim.control("POST", "age_deleted", {"seconds": 120})
    sim.configure(deletedIdLimit=1)
    now = datetime.now(timezone.utc)
    status, _, out = deleted(sim, now - timedelta(minutes=10), now)
    assert (status, out[0]["errorCode"]) == (400, "EXCEEDED_ID_LIMIT")
    sim.configure(deletedIdLimit=2)
    assert len(deleted(sim, now - timedelta(minutes=10), now)[2]["deletedRecords"]) == 2


def test_deleting_a_lead_cascades_to_its_members(sim, people):
    sim.ok("DELETE", f"sobjects/Lead/{people['leads'][1]}", expect=204)
    assert [m["Id"] for m in sim.state()["members"]] == [people["members"][0]]
    deleted = {d["Id"]: d["type"] for d in sim.state()["deleted"]}
    assert deleted == {people["leads"][1]: "Lead", people["members"][1]: "CampaignMember"}


# ----------------------------------------------------------------------------- describe / permissions

def test_describe_reflects_permissions(sim, world):
    out = sim.ok("GET", "sobjects/CampaignMember/describe")
    assert (out["name"], out["queryable"], out["createable"], out["updateable"], out["deletable"]) == \
        ("CampaignMember", True, True, True, True)
    fields = {f["name"]: f for f in out["fields"]}
    assert fields["Status"]["updateable"] and not fields["CampaignId"]["updateable"]
    assert fields["CampaignId"]["createable"] and not fields["Email"]["createable"]
    sim.configure(permissions={"CampaignMember": {"createable": False, "updateable": False},
                               "Campaign": {"queryable": False}})
    out = sim.ok("GET", "sobjects/CampaignMember/describe")
    assert (out["queryable"], out["createable"], out["updateable"], out["deletable"]) == (True, False, False, True)
    assert not any(f["createable"] or f["updateable"] for f in out["fields"])
    status, _, err = sim.api("POST", "sobjects/CampaignMember", {"CampaignId": world["campaign"], "LeadId": world["lead"]})
    assert (status, err[0]["errorCode"]) == (400, "INSUFFICIENT_ACCESS_OR_READONLY")
    status, _, err = sim.query("SELECT Id FROM Campaign")
    assert (status, err[0]["errorCode"]) == (400, "INVALID_TYPE")
    assert sim.ok("GET", "sobjects/Campaign/describe")["queryable"] is False
    assert sim.state()["members"] == []


# ----------------------------------------------------------------------------- faults

def test_fault_status_changes_nothing_and_counts_down(sim):
    sim.control("POST", "faults", {"rules": [{"method": "POST", "path": r"/sobjects/Lead$", "kind": "status",
                                              "status": 503}]})
    status, _, out = sim.api("POST", "sobjects/Lead", {"LastName": "N", "Company": "C"})
    assert (status, out) == (503, [{"message": "Service Unavailable", "errorCode": "SERVER_UNAVAILABLE"}])
    assert sim.state()["leads"] == [] and sim.state()["apiUsage"] == 0
    assert sim.api("GET", "limits")[0] == 200, "other paths are not matched"
    assert sim.api("POST", "sobjects/Lead", {"LastName": "N", "Company": "C"})[0] == 201, "count 1 is used up"


def test_fault_custom_body_headers_and_unlimited_count(sim):
    sim.control("POST", "faults", {"rules": [{"path": "/query", "kind": "status", "status": 502,
                                              "body": "<html>Bad gateway</html>",
                                              "headers": {"Retry-After": "1"}, "count": None}]})
    for _ in range(2):
        status, headers, out = sim.query("SELECT Id FROM Lead")
        assert (status, out, headers["Retry-After"]) == (502, "<html>Bad gateway</html>", "1")
    sim.control("POST", "faults", {"rules": [{"kind": "status", "status": 500, "probability": 0.0, "count": None}]})
    assert sim.query("SELECT Id FROM Lead")[0] == 200
    assert sim.control("DELETE", "faults")[0] == 204


def test_fault_expire_tokens(sim):
    sim.token()
    sim.control("POST", "faults", {"rules": [{"kind": "expire_tokens"}]})
    status, _, out = sim.api("GET", "limits")
    assert (status, out[0]["errorCode"]) == (401, "INVALID_SESSION_ID")
    assert sim.api("GET", "limits")[0] == 401, "the old token stays invalid"
    sim.token(fresh=True)
    assert sim.api("GET", "limits")[0] == 200


def test_fault_request_limit(sim):
    sim.control("POST", "faults", {"rules": [{"kind": "request_limit", "path": "composite"}]})
    status, headers, out = sim.api("POST", "composite/sobjects",
                                   {"records": [{"attributes": {"type": "Lead"}, "LastName": "L", "Company": "C"}]})
    assert (status, out[0]["errorCode"]) == (403, "REQUEST_LIMIT_EXCEEDED")
    assert headers["Sforce-Limit-Info"] == "api-usage=0/15000"
    assert sim.state()["leads"] == []


def test_fault_delay_and_latency(sim):
    sim.control("POST", "faults", {"rules": [{"kind": "delay", "delay_ms": 300}]})
    t0 = time.monotonic()
    assert sim.api("GET", "limits")[0] == 200
    assert time.monotonic() - t0 >= 0.3
    sim.configure(latencyMs=200)
    t0 = time.monotonic()
    assert sim.api("GET", "limits")[0] == 200
    assert time.monotonic() - t0 >= 0.2


def test_fault_drop_closes_connection_without_state_change(sim):
    token = sim.token()      # a POST as well: fetched before the rule exists
    sim.control("POST", "faults", {"rules": [{"kind": "drop", "method": "POST"}]})
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("POST", API + "sobjects/Lead", json.dumps({"LastName": "N", "Company": "C"}),
                 {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()
    assert sim.state()["leads"] == []
    calls = sim.control("GET", "calls")[1]["calls"]
    assert [(c["path"], c["status"]) for c in calls if c["method"] == "POST"][-1] == (API + "sobjects/Lead", None)


def test_fault_rules_are_validated(sim):
    status, out = sim.control("POST", "faults", {"rules": [{"kind": "explode"}]})
    assert status == 400 and out["error"] == "bad_faults"


# ----------------------------------------------------------------------------- control API

def test_calls_log(sim):
    sim.api("GET", "limits")
    sim.query("SELECT Id FROM Lead")
    sim.control("GET", "state")
    out = sim.control("GET", "calls")[1]
    calls = out["calls"]
    assert [c["path"] for c in calls] == ["/services/oauth2/token", API + "limits", API + "query"]
    assert calls[2]["query"] == {"q": "SELECT Id FROM Lead"} and calls[2]["status"] == 200
    assert calls[2]["response"]["totalSize"] == 0
    assert sim.control("GET", f"calls?since={out['next']}")[1] == {"calls": [], "next": out["next"]}
    assert sim.control("DELETE", "calls")[0] == 204
    assert sim.control("GET", "calls")[1]["calls"] == []


def test_seed_with_own_ids_statuses_and_atomicity(sim):
    cid = "701Sm00000000AB"
    out = sim.seed(campaigns=[{"Id": cid + checksum(cid), "Name": "Own",
                               "statuses": [{"Label": "Invited"}, {"Label": "Attended", "HasResponded": True}]}],
                   contacts=[{"Email": "x@y.com", "LastName": "X"}],
                   members=[{"CampaignId": cid, "ContactId": "@contacts.0", "Status": "Attended"}])
    campaign = out["campaigns"][0]
    assert campaign["Id"] == cid + checksum(cid)
    assert [(s["Label"], s["IsDefault"], s["HasResponded"]) for s in campaign["statuses"]] == [
        ("Invited", True, False), ("Attended", False, True)]
    assert out["members"][0]["HasResponded"] is True and out["members"][0]["LastModifiedById"] == HUMAN_USER
    before = sim.state()
    status, err = sim.control("POST", "seed", {"leads": [{"LastName": "Ok", "Company": "C"}, {"LastName": "NoCompany"}]})
    assert status == 400 and err["error"] == "REQUIRED_FIELD_MISSING" and "leads[1]" in err["message"]
    status, err = sim.control("POST", "seed", {"campaigns": [{"Id": cid + "AAA", "Name": "bad checksum"}]})
    assert status == 400
    assert sim.state()["leads"] == before["leads"] and len(sim.state()["campaigns"]) == 1


def test_human_member_writes_and_members_view(sim, world):
    status, out = sim.control("POST", "members", {"CampaignId": world["campaign"], "LeadId": world["lead"],
                                                  "Status": "Sent"})
    assert status == 201 and out["created"] is True and out["member"]["LastModifiedById"] == HUMAN_USER
    member = out["member"]["Id"]
    status, out = sim.control("POST", "members", {"CampaignId": world["campaign"], "LeadId": world["lead"],
                                                  "Status": "Responded"})
    assert (status, out["created"], out["member"]["Status"]) == (200, False, "Responded")
    status, out = sim.control("POST", "members", {"CampaignId": world["campaign"], "LeadId": world["lead"],
                                                  "Status": "Nope"})
    assert status == 400 and out["error"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert [m["Id"] for m in sim.control("GET", f"members?campaignId={world['campaign'][:15]}")[1]["members"]] == [member]
    assert sim.control("DELETE", f"members/{member}")[0] == 204
    assert sim.control("DELETE", f"members/{member}")[0] == 404
    deleted = sim.state()["deleted"]
    assert [(d["Id"], d["LastModifiedById"]) for d in deleted] == [(member, HUMAN_USER)]
    assert sim.state()["apiUsage"] == 0, "control calls are never API calls"


def test_config_validation_and_reset(sim, world):
    status, out = sim.control("POST", "config", {"apiLimit": -1})
    assert status == 400
    status, out = sim.control("POST", "config", {"noSuchKey": 1})
    assert status == 400 and out["error"] == "unknown_setting"
    sim.token()
    status, out = sim.control("POST", "reset", {"latencyMs": 0})
    assert status == 200
    state = sim.state()
    assert (state["campaigns"], state["leads"], state["contacts"], state["apiUsage"]) == ([], [], [], 0)
    assert sim.api("GET", "limits")[0] == 401, "tokens are cleared too"


# ----------------------------------------------------------------------------- Outbound Messages

def member_fields(notification):
    so = notification.find(f"{{{OM_NS}}}sObject")
    return so, {c.tag.split("}")[1]: c.text for c in so}


def test_outbound_message_format(sim, world, receiver_factory):
    rx = receiver_factory()
    out = sim.ok("POST", "composite/sobjects", {"records": [
        {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "LeadId": world["lead"]},
        {"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "ContactId": world["contact"],
         "Status": "Responded"}]})
    wait_until(lambda: sim.control("GET", "outbound")[1]["deliveries"], what="a delivery")
    assert len(rx.requests) == 1, "both changes within the batch window go in one message"
    headers, body = rx.requests[0]
    assert headers["Content-Type"] == "text/xml; charset=UTF-8" and headers["SOAPAction"] == '""'
    assert "Acme &amp; Co" in body
    root = ET.fromstring(body)
    notifications = root.find(f".//{{{OM_NS}}}notifications")
    assert [c.tag.split("}")[1] for c in notifications] == [
        "OrganizationId", "ActionId", "SessionId", "EnterpriseUrl", "PartnerUrl", "Notification", "Notification"]
    assert notifications.find(f"{{{OM_NS}}}OrganizationId").text == ORG_ID
    action = notifications.find(f"{{{OM_NS}}}ActionId").text
    assert action.startswith("04k") and len(action) == 18 and action[15:] == checksum(action[:15])
    assert notifications.find(f"{{{OM_NS}}}SessionId").get(f"{{{XSI}}}nil") == "true"
    assert notifications.find(f"{{{OM_NS}}}EnterpriseUrl").text.endswith("/services/Soap/c/62.0/" + ORG_ID[:15])
    nids = []
    for n, created in zip(rx.notifications(0), out):
        nid = n.find(f"{{{OM_NS}}}Id").text
        nids.append(nid)
        assert nid.startswith("04l") and len(nid) == 18
        so, fields = member_fields(n)
        assert so.get(f"{{{XSI}}}type") == "sf:CampaignMember" and so.tag == f"{{{OM_NS}}}sObject"
        assert list(fields)[0] == "Id" and fields["Id"] == created["id"]
        assert fields["CampaignId"] == world["campaign"] and fields["LastModifiedById"] == INTEGRATION_USER
        assert all(child.tag.startswith(f"{{{SF_NS}}}") for child in so)
    _, lead_fields = member_fields(rx.notifications(0)[0])
    assert "ContactId" not in lead_fields, "fields without a value are left out"
    assert (lead_fields["Status"], lead_fields["CompanyOrAccount"], lead_fields["Email"]) == \
        ("Sent", "Acme & Co", "lea@example.com")
    assert lead_fields["LastModifiedDate"].endswith("Z")
    _, contact_fields = member_fields(rx.notifications(0)[1])
    assert "LeadId" not in contact_fields and contact_fields["Status"] == "Responded"
    log = sim.control("GET", "outbound")[1]
    assert log["pending"] == 0
    assert [(d["notificationIds"], d["status"], d["acked"], d["attempt"]) for d in log["deliveries"]] == [
        (nids, 200, True, 1)]


def test_outbound_retries_same_notifications_until_acked(sim, world, receiver_factory):
    rx = receiver_factory((200, NACK), (200, '{"ok": true}'), (500, "boom"), (200, ACK))
    sim.ok("POST", "sobjects/CampaignMember", {"CampaignId": world["campaign"], "LeadId": world["lead"]}, 201)
    wait_until(lambda: len(rx.requests) >= 4, what="four delivery attempts")
    ids = [[n.find(f"{{{OM_NS}}}Id").text for n in rx.notifications(i)] for i in range(4)]
    assert ids[0] == ids[1] == ids[2] == ids[3] and len(ids[0]) == 1
    log = wait_until(lambda: (lambda o: o if o["pending"] == 0 else None)(sim.control("GET", "outbound")[1]),
                     what="the ack to be recorded")
    assert [(d["attempt"], d["status"], d["acked"], d["error"]) for d in log["deliveries"]] == [
        (1, 200, False, "SOAP response was a nack"),
        (2, 200, False, "org.xml.sax.SAXParseException; lineNumber: 1; columnNumber: 1; "
                        "Content is not allowed in prolog."),
        (3, 500, False, "HTTP 500"),
        (4, 200, True, None)]
    time.sleep(0.3)
    assert len(rx.requests) == 4, "nothing is sent after the ack"


def test_member_journal_orders_saves_and_reads_with_who_and_when(sim, world):
    """The journal a test reads to tell a change made between a client's read and its write:
    committed CampaignMember saves (who, status, LastModifiedDate) and the queries that
    returned the member, in order; a rolled-back save leaves nothing."""
    status, out = sim.control("POST", "members", {"CampaignId": world["campaign"],
                                                  "LeadId": world["lead"], "Status": "Sent"})
    member = out["member"]["Id"]
    status, _, body = sim.query(f"SELECT Id, Status FROM CampaignMember WHERE Id = '{member}'")
    assert status == 200 and body["totalSize"] == 1
    sim.ok("PATCH", f"sobjects/CampaignMember/{member}", {"Status": "Responded"}, 204)
    status, _, _ = sim.api("PATCH", f"sobjects/CampaignMember/{member}", {"Status": "No Such"})
    assert status == 400
    status, out = sim.control("GET", f"journal?id={member[:15]}")
    assert status == 200 and out["id"] == member
    entries = out["entries"]
    assert [(e["op"], e.get("by"), e["status"]) for e in entries] == [
        ("create", HUMAN_USER[:15], "Sent"), ("read", None, "Sent"),
        ("update", INTEGRATION_USER[:15], "Responded")]
    assert entries[0]["t"] <= entries[1]["t"] <= entries[2]["t"]
    rec = sim.ok("GET", f"sobjects/CampaignMember/{member}")
    modified = datetime.strptime(rec["LastModifiedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert round(modified.timestamp() * 1000) == entries[2]["t"]
    assert sim.control("GET", "journal")[0] == 400


def test_outbound_sends_latest_data_and_human_changes_but_not_deletes(sim, world, receiver_factory):
    rx = receiver_factory()
    sim.configure(outboundBatchMs=300)
    member = sim.ok("POST", "sobjects/CampaignMember",
                    {"CampaignId": world["campaign"], "LeadId": world["lead"]}, 201)["id"]
    sim.ok("PATCH", f"sobjects/CampaignMember/{member}", {"Status": "Responded"}, 204)
    wait_until(lambda: rx.requests, what="a delivery")
    notes = rx.notifications(0)
    assert len(notes) == 2, "one notification per change"
    assert [member_fields(n)[1]["Status"] for n in notes] == ["Responded", "Responded"], "latest data only"
    sim.configure(outboundBatchMs=50)
    sim.control("POST", "members", {"CampaignId": world["campaign"], "LeadId": world["lead"], "Status": "Sent"})
    wait_until(lambda: len(rx.requests) == 2, what="the human change")
    fields = member_fields(rx.notifications(1)[0])[1]
    assert (fields["Status"], fields["LastModifiedById"]) == ("Sent", HUMAN_USER)
    sim.ok("DELETE", f"sobjects/CampaignMember/{member}", expect=204)
    time.sleep(0.3)
    assert len(rx.requests) == 2 and sim.control("GET", "outbound")[1]["pending"] == 0


def test_outbound_batches_at_most_100_per_message(sim, world, receiver_factory):
    rx = receiver_factory()
    leads = sim.seed(leads=[{"LastName": f"L{i}", "Company": "C"} for i in range(150)])["leads"]
    records = [{"attributes": {"type": "CampaignMember"}, "CampaignId": world["campaign"], "LeadId": lead["Id"]}
               for lead in leads]
    sim.ok("POST", "composite/sobjects", {"records": records})
    wait_until(lambda: len(rx.requests) == 2, what="two messages")
    assert sorted(len(rx.notifications(i)) for i in range(2)) == [50, 100]


def test_outbound_gives_up_after_max_age(sim, world, receiver_factory):
    rx = receiver_factory((503, "down"))
    sim.configure(outboundMaxAgeMs=300)
    sim.ok("POST", "sobjects/CampaignMember", {"CampaignId": world["campaign"], "LeadId": world["lead"]}, 201)
    log = wait_until(lambda: (lambda o: o if o["pending"] == 0 and o["deliveries"] else None)(
        sim.control("GET", "outbound")[1]), what="the message to be dropped")
    assert log["deliveries"][-1]["error"].startswith("dropped")
    count = len(rx.requests)
    assert count >= 2
    time.sleep(0.3)
    assert len(rx.requests) == count


# ----------------------------------------------------------------------------- URI length, duplicate rules

def test_uri_over_16384_bytes_is_414_and_uri_with_headers_over_it_431(sim, world):
    """Salesforce Help 000386264: URI and headers together may take 16,384 bytes; a longer URI
    is answered 414 URI Too Long, longer headers 431. Neither is applied nor counted."""
    def soql_of(n):
        emails = ", ".join(f"'person.{i:05d}@example-company.com'" for i in range(n))
        return f"SELECT Id FROM Lead WHERE Email IN ({emails})"

    def uri_len(soql):
        return len(API) + len("query?q=") + len(urllib.parse.quote(soql))

    fits = max(n for n in range(1, 400) if uri_len(soql_of(n)) <= 15000)
    over = min(n for n in range(1, 400) if uri_len(soql_of(n)) > 16384)
    status, _, body = sim.query(soql_of(fits))
    assert status == 200 and body["totalSize"] == 0, body
    used = sim.state()["apiUsage"]
    status, headers, body = sim.query(soql_of(over))
    assert status == 414 and "414 URI Too Long" in body, (status, body)
    assert "Sforce-Limit-Info" not in headers
    # Within the URI limit, but the headers take the request over it: 431.
    status, _, body = sim.api("GET", "query?q=" + urllib.parse.quote(soql_of(fits)),
                              headers={"X-Padding": "x" * 2000})
    assert status == 431 and "431 Request Header Fields Too Large" in body, (status, body)
    assert sim.state()["apiUsage"] == used, "refused requests are not API calls"
    calls = sim.control("GET", "calls")[1]["calls"]
    assert [c["status"] for c in calls[-3:]] == [200, 414, 431]
    assert calls[-2]["uriBytes"] == uri_len(soql_of(over)), "the call log gives each URI's length"


def _lead(email, **more):
    return {"attributes": {"type": "Lead"}, "LastName": "New", "Company": "C", "Email": email, **more}


def test_duplicate_rule_on_lead_blocks_with_the_matched_records(sim, world):
    # Off (the default): a second Lead with a known email is created.
    out = sim.ok("POST", "composite/sobjects", {"records": [_lead("lea@example.com")]})
    assert out[0]["success"] is True
    sim.configure(duplicateRuleLead="block")
    status, out = sim.control("POST", "config", {"duplicateRuleLead": "sometimes"})
    assert status == 400 and "duplicateRuleLead" in out["message"]
    sim.seed(contacts=[{"Email": "LEA@Example.com", "LastName": "Twin"}],
             leads=[{"Email": "conv@example.com", "LastName": "C", "Company": "C"}])
    lead_ids = [l["Id"] for l in sim.state()["leads"] if l["Email"].lower() == "lea@example.com"]
    contact_id = next(c["Id"] for c in sim.state()["contacts"] if c["LastName"] == "Twin")
    before = len(sim.state()["leads"])
    out = sim.ok("POST", "composite/sobjects",
                 {"records": [_lead("Lea@EXAMPLE.com"), _lead("fresh@example.com")]})
    assert out[1]["success"] is True
    err = out[0]["errors"][0]
    assert out[0]["success"] is False and "id" not in out[0]
    assert (err["statusCode"], err["message"], err["fields"]) == \
        ("DUPLICATES_DETECTED", "Use one of these records?", [])
    dup = err["duplicateResult"]
    assert (dup["allowSave"], dup["duplicateRuleEntityType"]) == (False, "Lead")
    found = {r["entityType"]: [m["record"]["Id"] for m in r["matchRecords"]] for r in dup["matchResults"]}
    assert sorted(found) == ["Contact", "Lead"]
    assert sorted(i[:15] for i in found["Lead"]) == sorted(i[:15] for i in lead_ids)
    assert [i[:15] for i in found["Contact"]] == [contact_id[:15]]
    rec = dup["matchResults"][0]["matchRecords"][0]["record"]
    assert rec["attributes"]["url"] == f"{API}sobjects/{rec['attributes']['type']}/{rec['Id']}"
    assert all(len(i) == 18 for ids in found.values() for i in ids)
    assert len(sim.state()["leads"]) == before + 1, "only the fresh Lead was created"

    # A single-record create answers 400 with the match under "duplicateResut".
    status, _, body = sim.api("POST", "sobjects/Lead", {"LastName": "X", "Company": "C",
                                                        "Email": "cody@example.com"})
    assert status == 400 and body[0]["errorCode"] == "DUPLICATES_DETECTED", body
    assert "fields" not in body[0] and "duplicateResult" not in body[0]
    assert [m["record"]["Id"][:15] for r in body[0]["duplicateResut"]["matchResults"]
            for m in r["matchRecords"]] == [world["contact"][:15]]

    # Without details: the Collections error names nothing; the single-record answer still does.
    sim.configure(duplicateRuleLead="blockWithoutDetails")
    out = sim.ok("POST", "composite/sobjects", {"records": [_lead("cody@example.com")]})
    assert out[0]["errors"] == [{"statusCode": "DUPLICATES_DETECTED",
                                 "message": "Use one of these records?", "fields": []}]
    status, _, body = sim.api("POST", "sobjects/Lead", {"LastName": "X", "Company": "C",
                                                        "Email": "cody@example.com"})
    assert status == 400 and "duplicateResut" in body[0]
    # Seeding (like a person in the UI) bypasses the rule.
    sim.seed(leads=[{"Email": "cody@example.com", "LastName": "Seeded", "Company": "C"}])


def test_email_with_a_control_character_is_refused(sim, world):
    out = sim.ok("POST", "composite/sobjects", {"records": [_lead("bad\u0001one@example.com")]})
    assert out[0]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS", out


def test_fault_cut_sends_part_of_the_body_then_closes(sim):
    """kind "cut": the request is served (its change applied), its Content-Length announces the
    whole body, only `bytes` of it are sent before the connection closes."""
    token = sim.token()
    sim.control("POST", "faults", {"rules": [{"kind": "cut", "method": "GET", "bytes": 10}]})
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("GET", API + "limits", headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) > 10
    with pytest.raises(http.client.IncompleteRead) as e:
        resp.read()
    assert len(e.value.partial) == 10
    conn.close()
    assert sim.control("GET", "faults")[1]["rules"][0]["bytes"] == 10
    assert sim.api("GET", "limits")[0] == 200  # count 1: fired once
