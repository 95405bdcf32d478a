"""The Marketo simulator's Bulk Program Member Extract and its large-program rules, over real
HTTP: every job state, the file (whole and by byte range), the documented queue, processing,
daily-size and retention limits and their errors, the 1003 of members.json above 100,000
members, the generate form of /_sim/seed, and node-marketo-rest's connection talking to it.

Sources: AdobeDocs/marketo-developer.en help/rest-api/bulk-extract.md and
bulk-program-member-extract.md, error-codes.md, program-members.md (see tests/sim/marketo_sim.py).
One simulator per module, reset before each test."""
import hashlib
import json
import re
import time
import urllib.parse

import pytest

import cs
from cs.clients import ok, run_client

BASE = "/bulk/v1/program/members/export"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROGRAM = 1001
FAST = {"bulkQueuedMs": 0, "bulkProcessingMs": 0}


class Marketo:
    """The simulator, a token, and small helpers for the bulk API."""

    def __init__(self, sim):
        self.sim = sim
        self.token = None

    def http(self, method, path, body=None, headers=None, token=True):
        hdrs = dict(headers or {})
        if token:
            if self.token is None:
                q = urllib.parse.urlencode({"grant_type": "client_credentials",
                                            "client_id": "sim-mkto-client",
                                            "client_secret": "sim-mkto-secret"})
                self.token = cs.request(self.sim.port, "GET", f"/identity/oauth/token?{q}").json()["access_token"]
            hdrs["Authorization"] = f"Bearer {self.token}"
        if isinstance(body, (dict, list)):
            hdrs.setdefault("Content-Type", "application/json")
        return cs.request(self.sim.port, method, path, body, hdrs)

    def rest(self, method, path, body=None, **kw):
        r = self.http(method, path, body, **kw)
        assert r.status == 200 and r.header("Content-Type").startswith("application/json"), (r.status, r.body)
        return r.json()

    def ok(self, method, path, body=None, **kw):
        answer = self.rest(method, path, body, **kw)
        assert answer["success"] is True and answer["errors"] == [], answer
        return answer["result"]

    def error(self, method, path, body=None, **kw):
        """The (code, message) of a success:false answer."""
        answer = self.rest(method, path, body, **kw)
        assert answer["success"] is False and "result" not in answer and len(answer["errors"]) == 1, answer
        return answer["errors"][0]["code"], answer["errors"][0]["message"]

    def config(self, **changes):
        return self.sim.ctl("POST", "config", changes)

    def create(self, fields=("leadId", "email", "statusName"), filt=None, **extra):
        body = dict({"fields": list(fields), "filter": filt or {"programId": PROGRAM}}, **extra)
        (job,) = self.ok("POST", f"{BASE}/create.json", body)
        return job

    def status(self, export_id):
        (job,) = self.ok("GET", f"{BASE}/{export_id}/status.json")
        return job

    def enqueue(self, export_id):
        (job,) = self.ok("POST", f"{BASE}/{export_id}/enqueue.json")
        return job

    def wait_status(self, export_id, status, timeout=10):
        return cs.wait_until(lambda: (lambda j: j if j["status"] == status else None)(self.status(export_id)),
                             timeout=timeout, what=f"export {export_id} {status}")

    def export(self, fields=("leadId", "email", "statusName"), filt=None, **extra):
        """Create, enqueue, wait for Completed; returns (final status, file bytes)."""
        job = self.create(fields, filt, **extra)
        self.enqueue(job["exportId"])
        done = self.wait_status(job["exportId"], "Completed")
        r = self.http("GET", f"{BASE}/{job['exportId']}/file.json")
        assert r.status == 200, (r.status, r.body)
        return done, r.body


@pytest.fixture(scope="module")
def module_sim(tmp_path_factory):
    sim = cs.Sim("marketo_sim.py", str(tmp_path_factory.mktemp("mkbulk"))).start()
    yield sim
    sim.stop()


@pytest.fixture
def mk(module_sim):
    module_sim.ctl("POST", "reset")
    return Marketo(module_sim)


def seed_program(mk, members=(("a@example.com", "Registered"), ("b@example.com", "Attended")),
                 channel="Webinar", program_id=PROGRAM, first_lead=1):
    leads = [{"id": first_lead + i, "email": e, "firstName": f"F{i}", "lastName": None if i else "Last"}
             for i, (e, _) in enumerate(members)]
    mk.sim.ctl("POST", "seed", {"programs": [{"id": program_id, "name": f"Program {program_id}", "channel": channel}],
                                "leads": leads,
                                "members": [{"programId": program_id, "leadId": first_lead + i, "statusName": s}
                                            for i, (_, s) in enumerate(members)]})


def lines(data):
    return data.decode().split("\n")


# ------------------------------------------------------------------ the job's states

def test_export_goes_created_queued_processing_completed_and_serves_its_file(mk):
    seed_program(mk)
    mk.config(bulkQueuedMs=300, bulkProcessingMs=300)
    job = mk.create(["leadId", "firstName", "lastName", "email", "statusName", "reachedSuccess", "program"],
                    format="CSV", columnHeaderNames={"leadId": "Lead Id", "statusName": "Status"})
    assert UUID.match(job["exportId"]) and STAMP.match(job["createdAt"])
    assert job == {"exportId": job["exportId"], "format": "CSV", "status": "Created",
                   "createdAt": job["createdAt"]}
    eid = job["exportId"]
    assert mk.status(eid) == job
    queued = mk.enqueue(eid)
    assert queued["status"] == "Queued" and STAMP.match(queued["queuedAt"]) and "startedAt" not in queued
    processing = mk.wait_status(eid, "Processing")
    assert STAMP.match(processing["startedAt"]) and "numberOfRecords" not in processing
    done = mk.wait_status(eid, "Completed")
    r = mk.http("GET", f"{BASE}/{eid}/file.json")
    assert r.status == 200 and r.header("Accept-Ranges") == "bytes"
    # An empty value is written as null; booleans as true/false; the headers renamed.
    assert r.body == (b"Lead Id,firstName,lastName,email,Status,reachedSuccess,program\n"
                      b"1,F0,Last,a@example.com,Registered,false,Program 1001\n"
                      b"2,F1,null,b@example.com,Attended,true,Program 1001\n")
    assert done == dict(queued, status="Completed", startedAt=processing["startedAt"],
                        finishedAt=done["finishedAt"], numberOfRecords=2, fileSize=len(r.body),
                        fileChecksum="sha256:" + hashlib.sha256(r.body).hexdigest())
    # Every bulk call is a REST call in the call log.
    paths = [(c["method"], c["path"].replace(eid, "{id}")) for c in mk.sim.calls() if c["path"].startswith("/bulk")]
    assert paths[:3] == [("POST", f"{BASE}/create.json"), ("GET", f"{BASE}/{{id}}/status.json"),
                         ("POST", f"{BASE}/{{id}}/enqueue.json")]


def test_members_are_read_when_processing_starts(mk):
    """"Jobs return all accessible records which are members of the program at the time that
    the job begins processing.\""""
    seed_program(mk)
    mk.config(bulkQueuedMs=60000, bulkProcessingMs=60000)
    eid = mk.create()["exportId"]
    mk.enqueue(eid)
    mk.sim.ctl("POST", "members", {"programId": PROGRAM, "leadId": 1, "statusName": "Attended"})
    mk.config(bulkQueuedMs=0)
    mk.wait_status(eid, "Processing")
    mk.sim.ctl("POST", "members", {"programId": PROGRAM, "leadId": 2, "statusName": "No Show"})
    mk.config(bulkProcessingMs=0)
    mk.wait_status(eid, "Completed")
    body = mk.http("GET", f"{BASE}/{eid}/file.json").body
    assert body == b"leadId,email,statusName\n1,a@example.com,Attended\n2,b@example.com,Attended\n"


def test_failed_job_carries_its_error_and_has_no_file(mk):
    seed_program(mk)
    mk.config(bulkFailMessage="Internal error while exporting", **FAST)
    eid = mk.create()["exportId"]
    mk.enqueue(eid)
    failed = mk.wait_status(eid, "Failed")
    assert failed["errorMsg"] == "Internal error while exporting" and "fileSize" not in failed
    assert STAMP.match(failed["finishedAt"])
    r = mk.http("GET", f"{BASE}/{eid}/file.json")
    assert r.status == 404 and r.header("Content-Type").startswith("text/plain")


def test_cancel_from_created_queued_and_processing_but_not_after_the_end(mk):
    seed_program(mk)
    mk.config(bulkQueuedMs=0, bulkProcessingMs=60000, bulkMaxProcessing=1)
    processing, queued, created = (mk.create()["exportId"] for _ in range(3))
    mk.enqueue(processing)
    mk.wait_status(processing, "Processing")
    mk.enqueue(queued)
    assert mk.status(queued)["status"] == "Queued"
    for eid in (created, queued, processing):
        (job,) = mk.ok("POST", f"{BASE}/{eid}/cancel.json")
        assert job["status"] == "Cancelled" and mk.status(eid) == job
    assert "startedAt" in mk.status(processing) and "queuedAt" not in mk.status(created)
    assert mk.error("POST", f"{BASE}/{created}/cancel.json")[0] == "1003"
    assert mk.error("POST", f"{BASE}/{created}/enqueue.json") == ("1029", "Job already queued")
    assert mk.http("GET", f"{BASE}/{processing}/file.json").status == 404
    mk.config(bulkProcessingMs=0)
    time.sleep(0.1)      # the scheduler must not revive a cancelled job
    assert mk.status(processing)["status"] == "Cancelled"
    mk.config(**FAST)
    done, _ = mk.export()
    assert mk.error("POST", f"{BASE}/{done['exportId']}/cancel.json")[0] == "1003"


def test_unknown_export_ids(mk):
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path in (("GET", "status"), ("POST", "enqueue"), ("POST", "cancel")):
        code, message = mk.error(method, f"{BASE}/{missing}/{path}.json")
        assert code == "1003" and missing in message
    r = mk.http("GET", f"{BASE}/{missing}/file.json")
    assert r.status == 404 and r.header("Content-Type").startswith("text/plain") and missing.encode() in r.body


# ------------------------------------------------------------------ the file

def test_file_by_byte_range_resumes_to_the_whole_file(mk):
    seed_program(mk, [(f"m{i}@example.com", "Registered") for i in range(50)])
    mk.config(**FAST)
    done, whole = mk.export()
    eid, size = done["exportId"], len(whole)
    parts, first = [], 0
    while first < size:
        r = mk.http("GET", f"{BASE}/{eid}/file.json", headers={"Range": f"bytes={first}-{first + 99}"})
        last = min(first + 99, size - 1)
        assert r.status == 206 and r.header("Content-Range") == f"bytes {first}-{last}/{size}"
        assert r.header("Accept-Ranges") == "bytes" and int(r.header("Content-Length")) == last - first + 1
        parts.append(r.body)
        first = last + 1
    assert b"".join(parts) == whole
    tail = mk.http("GET", f"{BASE}/{eid}/file.json", headers={"Range": "bytes=-10"})
    assert tail.status == 206 and tail.body == whole[-10:]
    rest = mk.http("GET", f"{BASE}/{eid}/file.json", headers={"Range": f"bytes={size - 5}-"})
    assert rest.status == 206 and rest.body == whole[-5:]
    beyond = mk.http("GET", f"{BASE}/{eid}/file.json", headers={"Range": f"bytes={size}-{size + 10}"})
    assert beyond.status == 416 and beyond.header("Content-Range") == f"bytes */{size}"
    # A header the server does not understand (the older doc text's "bytes 724-999") is ignored.
    odd = mk.http("GET", f"{BASE}/{eid}/file.json", headers={"Range": "bytes 0-9"})
    assert odd.status == 200 and odd.body == whole


def test_file_before_completion_is_a_plaintext_404(mk):
    """Adobe: "If a job has not completed, or a bad job id is passed, file endpoints respond with
    a status of 404 Not Found, and a plaintext error message as the payload"."""
    seed_program(mk)
    mk.config(bulkQueuedMs=60000)
    eid = mk.create()["exportId"]
    created = mk.http("GET", f"{BASE}/{eid}/file.json")
    mk.enqueue(eid)
    queued = mk.http("GET", f"{BASE}/{eid}/file.json")
    for r in (created, queued):
        assert r.status == 404 and r.header("Content-Type").startswith("text/plain")
        assert r.body == f"Export job {eid} is not completed".encode()


@pytest.mark.parametrize("fmt,ssv,expected", [
    ("TSV", "space", b"leadId\temail\tcompany\n1\ta@example.com\tAcme, Inc\n"),
    ("SSV", "space", b'leadId email company\n1 a@example.com "Acme, Inc"\n'),
    ("SSV", "semicolon", b"leadId;email;company\n1;a@example.com;Acme, Inc\n"),
    ("CSV", "space", b'leadId,email,company\n1,a@example.com,"Acme, Inc"\n'),
])
def test_formats_and_quoting(mk, fmt, ssv, expected):
    """SSV is "space-separated" on the program member page and "semi-colon-separated" on the
    Bulk Extract page: bulkSsvDelimiter chooses."""
    mk.sim.ctl("POST", "seed", {"programs": [{"id": PROGRAM, "name": "P", "channel": "Webinar"}],
                                "leads": [{"id": 1, "email": "a@example.com", "company": "Acme, Inc"}],
                                "members": [{"programId": PROGRAM, "leadId": 1, "statusName": "Invited"}]})
    mk.config(bulkSsvDelimiter=ssv, **FAST)
    done, body = mk.export(["leadId", "email", "company"], format=fmt)
    assert done["format"] == fmt and body == expected


# ------------------------------------------------------------------ filters and options

def test_filters_program_ids_status_names_updated_at_and_exhausted(mk):
    seed_program(mk, [("a@example.com", "Registered"), ("b@example.com", "Attended")])
    seed_program(mk, [("c@example.com", "Influenced")], channel="Blog", program_id=1002, first_lead=3)
    mk.config(**FAST)
    # programIds: "programId" is added to the file as the first field.
    _, body = mk.export(["leadId", "statusName"], {"programIds": [1002, PROGRAM]})
    assert lines(body) == ["programId,leadId,statusName", "1001,1,Registered", "1001,2,Attended",
                           "1002,3,Influenced", ""]
    _, body = mk.export(["leadId"], {"programIds": [PROGRAM, 1002], "statusNames": ["Attended", "Influenced"]})
    assert lines(body) == ["programId,leadId", "1001,2", "1002,3", ""]
    now = time.time()
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    _, body = mk.export(["leadId"], {"programId": PROGRAM, "updatedAt": {"startAt": iso(now - 3600),
                                                                          "endAt": iso(now + 3600)}})
    assert lines(body) == ["leadId", "1", "2", ""]
    _, body = mk.export(["leadId"], {"programId": PROGRAM, "updatedAt": {"startAt": iso(now - 86400 * 3),
                                                                          "endAt": iso(now - 86400 * 2)}})
    assert lines(body) == ["leadId", ""]
    done, body = mk.export(["leadId"], {"programId": PROGRAM, "isExhausted": True})
    assert body == b"leadId\n" and done["numberOfRecords"] == 0


@pytest.mark.parametrize("body,code,message", [
    ({"filter": {"programId": PROGRAM}}, "1002", "Missing value for the required parameter 'fields'"),
    ({"fields": ["leadId"]}, "1002", "Missing value for the required parameter 'filter'"),
    ({"fields": ["leadId", "shoeSize"], "filter": {"programId": PROGRAM}}, "1006", "Field 'shoeSize' not found"),
    ({"fields": [], "filter": {"programId": PROGRAM}}, "1003", None),
    ({"fields": ["leadId"], "filter": {}}, "1003", None),
    ({"fields": ["leadId"], "filter": {"programId": PROGRAM, "programIds": [PROGRAM]}}, "1003", None),
    ({"fields": ["leadId"], "filter": {"programIds": list(range(1001, 1012))}}, "1003", None),
    ({"fields": ["leadId"], "filter": {"programId": 4242}}, "1013", None),
    ({"fields": ["leadId"], "filter": {"programId": PROGRAM}, "format": "XLS"}, "1003", None),
    ({"fields": ["leadId"], "filter": {"programId": PROGRAM}, "columnHeaderNames": {"email": "E"}}, "1003", None),
    ({"fields": ["leadId"], "filter": {"programId": PROGRAM, "statusNames": ["Attended", "Bogus"]}},
     "1003", "Invalid data"),
    ({"fields": ["leadId"], "filter": {"programId": PROGRAM, "smartListId": 3}}, "1003", None),
    ({"fields": ["leadId"], "filter": {"programId": PROGRAM, "isExhausted": "yes"}}, "1001", None),
    ({"fields": ["leadId"], "filter": {"programId": PROGRAM, "updatedAt": {
        "startAt": "2026-01-01T00:00:00Z", "endAt": "2026-02-02T00:00:00Z"}}}, "1003", None),
])
def test_create_refusals(mk, body, code, message):
    seed_program(mk)
    got = mk.error("POST", f"{BASE}/create.json", body)
    assert got[0] == code and (message is None or got[1] == message), got
    assert mk.sim.ctl("GET", "bulk")["jobs"] == []


def test_updated_at_filter_unsupported_subscription_answers_1035(mk):
    seed_program(mk)
    mk.config(bulkUpdatedAtFilter=False)
    code, message = mk.error("POST", f"{BASE}/create.json", {
        "fields": ["leadId"], "filter": {"programId": PROGRAM, "updatedAt": {
            "startAt": "2026-01-01T00:00:00Z", "endAt": "2026-01-02T00:00:00Z"}}})
    assert (code, message) == ("1035", "Unsupported filter type for target subscription")


def test_create_needs_a_json_body_but_enqueue_and_cancel_take_any(mk):
    seed_program(mk)
    r = mk.http("POST", f"{BASE}/create.json", b"fields=leadId",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json()["errors"][0]["code"] == "612"
    eid = mk.create()["exportId"]
    # node-marketo-rest sends "_method=POST" as a form, and from /rest/../bulk/...
    r = mk.http("POST", f"/rest/..{BASE}/{eid}/enqueue.json", b"_method=POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json()["result"][0]["status"] == "Queued"
    eid2 = mk.create()["exportId"]
    r = mk.http("POST", f"{BASE}/{eid2}/cancel.json")        # no body, no content type
    assert r.json()["result"][0]["status"] == "Cancelled"


# ------------------------------------------------------------------ limits

def test_ten_jobs_in_the_queue_and_two_processing_at_once(mk):
    seed_program(mk)
    mk.config(bulkQueuedMs=60000, bulkProcessingMs=60000)
    ids = [mk.create()["exportId"] for _ in range(11)]
    for eid in ids[:10]:
        assert mk.enqueue(eid)["status"] == "Queued"
    assert mk.error("POST", f"{BASE}/{ids[10]}/enqueue.json") == ("1029", "Too many jobs in queue")
    assert mk.error("POST", f"{BASE}/{ids[0]}/enqueue.json") == ("1029", "Job already queued")
    mk.config(bulkQueuedMs=0)
    mk.wait_status(ids[1], "Processing")
    time.sleep(0.2)
    states = [mk.status(eid)["status"] for eid in ids]
    assert states == ["Processing"] * 2 + ["Queued"] * 8 + ["Created"], states
    # Processing jobs still count towards the ten: the queue stays full.
    assert mk.error("POST", f"{BASE}/{ids[10]}/enqueue.json")[0] == "1029"
    # A slot frees: the oldest queued job starts, and the eleventh fits in the queue.
    mk.ok("POST", f"{BASE}/{ids[0]}/cancel.json")
    mk.wait_status(ids[2], "Processing")
    assert mk.status(ids[3])["status"] == "Queued"
    assert mk.enqueue(ids[10])["status"] == "Queued"


def test_daily_export_quota_then_the_next_day(mk):
    """Adobe: "When the quota is exceeded, you cannot Create or Enqueue another job until the
    daily quota resets ... "1029, Export daily quota exceeded"."""
    seed_program(mk)
    mk.config(bulkDailyExportBytes=100, **FAST)
    waiting = mk.create()["exportId"]
    done, body = mk.export()
    assert len(body) < 100
    assert mk.sim.ctl("GET", "bulk")["dailyExportBytesUsed"] == len(body)
    done2, body2 = mk.export()               # still under 100 bytes before this one
    assert mk.sim.ctl("GET", "bulk")["dailyExportBytesUsed"] == len(body) + len(body2) >= 100
    quota = ("1029", "Export daily quota exceeded")
    assert mk.error("POST", f"{BASE}/create.json", {"fields": ["leadId"], "filter": {"programId": PROGRAM}}) == quota
    assert mk.error("POST", f"{BASE}/{waiting}/enqueue.json") == quota
    mk.sim.ctl("POST", "bulk/age", {"seconds": 86400})      # a day later the quota is back
    assert mk.sim.ctl("GET", "bulk")["dailyExportBytesUsed"] == 0
    assert mk.enqueue(waiting)["status"] == "Queued"


def test_retention_listing_window_and_status_lifetime(mk):
    seed_program(mk)
    mk.config(**FAST)
    done, body = mk.export()
    eid = done["exportId"]
    mk.sim.ctl("POST", "bulk/age", {"seconds": 6 * 86400})
    assert mk.http("GET", f"{BASE}/{eid}/file.json").body == body
    assert [j["exportId"] for j in mk.ok("GET", f"{BASE}.json")] == [eid]
    mk.sim.ctl("POST", "bulk/age", {"seconds": 86400 + 60})
    # File retention: seven days. Get Export Jobs: jobs created in the past seven days.
    r = mk.http("GET", f"{BASE}/{eid}/file.json")
    assert r.status == 404 and b"expired" in r.body
    assert mk.ok("GET", f"{BASE}.json") == []
    assert mk.status(eid)["status"] == "Completed"
    mk.sim.ctl("POST", "bulk/age", {"seconds": 23 * 86400})
    # "Job status is available for 30 days after Completed or Failed status was reached."
    assert mk.error("GET", f"{BASE}/{eid}/status.json")[0] == "1003"


def test_retention_period_is_a_setting(mk):
    """Adobe's Bulk Extract page says both "seven days" and "held for 10 days"."""
    seed_program(mk)
    mk.config(bulkFileRetentionDays=10, **FAST)
    done, body = mk.export()
    mk.sim.ctl("POST", "bulk/age", {"seconds": 9 * 86400})
    assert mk.http("GET", f"{BASE}/{done['exportId']}/file.json").body == body
    mk.sim.ctl("POST", "bulk/age", {"seconds": 86400 + 60})
    assert mk.http("GET", f"{BASE}/{done['exportId']}/file.json").status == 404


def test_list_jobs_by_status_and_pages(mk):
    seed_program(mk)
    mk.config(bulkQueuedMs=60000)
    a, b, c = (mk.create()["exportId"] for _ in range(3))
    mk.enqueue(b)
    mk.ok("POST", f"{BASE}/{c}/cancel.json")
    assert [j["exportId"] for j in mk.ok("GET", f"{BASE}.json?status=Created")] == [a]
    assert [j["exportId"] for j in mk.ok("GET", f"{BASE}.json?status=Canceled")] == [c]
    assert [j["exportId"] for j in mk.ok("GET", f"{BASE}.json?status=queued,cancelled")] == [b, c]
    first = mk.rest("GET", f"{BASE}.json?batchSize=2")
    assert [j["exportId"] for j in first["result"]] == [a, b] and "moreResult" not in first
    second = mk.rest("GET", f"{BASE}.json?batchSize=2&nextPageToken={first['nextPageToken']}")
    assert [j["exportId"] for j in second["result"]] == [c] and "nextPageToken" not in second
    assert mk.error("GET", f"{BASE}.json?status=Sleeping")[0] == "1003"
    assert mk.error("GET", f"{BASE}.json?batchSize=301")[0] == "1003"


def test_bulk_calls_count_towards_rate_limit_and_daily_quota(mk):
    seed_program(mk)
    mk.config(callsPer20s=3)
    eid = mk.create()["exportId"]
    mk.status(eid)
    mk.status(eid)
    assert mk.error("GET", f"{BASE}/{eid}/status.json")[0] == "606"
    r = mk.http("GET", f"{BASE}/{eid}/file.json")
    assert r.json()["errors"][0]["code"] == "606"
    mk.sim.ctl("POST", "reset")
    seed_program(mk)
    mk.config(dailyQuota=2)
    eid = mk.create()["exportId"]
    mk.status(eid)
    assert mk.error("GET", f"{BASE}/{eid}/status.json")[0] == "607"
    assert mk.sim.ctl("GET", "stats")["quotaExceeded607"] == 1


def test_reset_forgets_jobs(mk):
    seed_program(mk)
    eid = mk.create()["exportId"]
    mk.sim.ctl("POST", "reset")
    assert mk.sim.ctl("GET", "bulk")["jobs"] == []
    assert mk.error("GET", f"{BASE}/{eid}/status.json")[0] == "1003"


# ------------------------------------------------------------------ members.json above 100,000

def members_query(mk, filter_type, values):
    return mk.rest("GET", f"/rest/v1/programs/{PROGRAM}/members.json?filterType={filter_type}&filterValues={values}")


def test_members_json_1003_above_the_limit_total_and_matching(mk):
    seed_program(mk, [(f"m{i}@example.com", "Registered" if i < 2 else "Attended") for i in range(4)])
    mk.config(memberQueryLimit=3)
    answer = members_query(mk, "statusName", "Registered")
    assert answer["success"] is False and answer["errors"] == [
        {"code": "1003", "message": "Total membership size: 4 exceeds the limit allowed 3 for the filter"}]
    assert [m["leadId"] for m in members_query(mk, "leadId", "1,2,3,4")["result"]] == [1, 2, 3, 4]
    mk.config(memberQueryLimitMode="matching")
    assert [m["leadId"] for m in members_query(mk, "statusName", "Registered")["result"]] == [1, 2]
    answer = members_query(mk, "statusName", "Registered,Attended")
    assert answer["errors"] == [{"code": "1003", "message":
                                 "Matching membership size: 4 exceeds the limit allowed (3) for this api"}]


def test_hundred_thousand_and_one_members_generated_refused_by_members_json_and_exported(mk):
    """The documented limit at its real size: 100,001 members. Seeding them must take seconds."""
    mk.sim.ctl("POST", "seed", {"programs": [{"id": PROGRAM, "name": "Big", "channel": "Webinar"}]})
    began = time.monotonic()
    gen = mk.sim.ctl("POST", "seed", {"generate": {"programId": PROGRAM, "count": 100_001,
                                                   "statuses": {"Registered": 3, "Attended": 1},
                                                   "emailPattern": "big{n}@example.com"}})
    seconds = time.monotonic() - began
    print(f"\ngenerate 100,001 members: {seconds:.2f} s (simulator says {gen['generated'][0]['ms']} ms), "
          f"RSS {cs.rss_kib(mk.sim.proc.pid)} KiB")
    (g,) = gen["generated"]
    assert g["members"] == 100_001 and g["leadsCreated"] == 100_001
    assert g["statuses"] == {"Registered": 75_001, "Attended": 25_000}
    answer = members_query(mk, "statusName", "Attended")
    assert answer["errors"] == [{"code": "1003", "message":
                                 "Total membership size: 100,001 exceeds the limit allowed 100,000 for the filter"}]
    one = members_query(mk, "leadId", "100001")
    assert one["result"][0]["leadId"] == 100_001
    mk.config(**FAST)
    done, body = mk.export(["leadId", "email", "statusName"])
    rows = lines(body)
    assert done["numberOfRecords"] == 100_001 and len(rows) == 100_003 and rows[-1] == ""
    assert rows[1].startswith("1,big1@example.com,") and rows[-2].startswith("100001,big100001@example.com,")
    assert sum(r.endswith(",Attended") for r in rows) == 25_000


# ------------------------------------------------------------------ /_sim/seed generate

def test_generate_exact_counts_reuses_leads_and_refuses_bad_specs(mk):
    seed_program(mk, [("p3@example.com", "Registered")], first_lead=7)
    gen = mk.sim.ctl("POST", "seed", {"generate": {
        "programId": PROGRAM, "count": 5, "statuses": {"Invited": 2, "Attended": 3}, "start": 1,
        "emailPattern": "p{n}@example.com", "firstNamePattern": "First{n}", "company": "Gen Co"}})
    (g,) = gen["generated"]
    assert (g["leadsCreated"], g["leadsReused"], g["statuses"]) == (4, 1, {"Invited": 2, "Attended": 3})
    members = mk.sim.ctl("GET", f"members?programId={PROGRAM}")["members"]
    assert len(members) == 5 and sorted(m["statusName"] for m in members) == \
        ["Attended", "Attended", "Attended", "Invited", "Invited"]
    leads = {l["email"]: l for l in mk.sim.ctl("GET", "state")["leads"]}
    assert leads["p1@example.com"]["firstName"] == "First1" and leads["p1@example.com"]["company"] == "Gen Co"
    assert leads["p3@example.com"]["id"] == 7          # an existing lead is reused
    before = mk.sim.ctl("GET", "state")
    for spec in ({"programId": PROGRAM, "count": 3, "statuses": {"Not in Program": 1}},
                 {"programId": PROGRAM, "count": 3, "statuses": {"Bogus": 1}},
                 {"programId": PROGRAM, "count": 0, "statuses": {"Invited": 1}},
                 {"programId": 4242, "count": 3, "statuses": {"Invited": 1}},
                 {"programId": PROGRAM, "count": 3, "statuses": {"Invited": 1}, "emailPattern": "x@y.z"},
                 {"programId": PROGRAM, "count": 3, "statuses": {"Invited": 1}, "shoeSize": 9}):
        r = cs.request(mk.sim.port, "POST", "/_sim/seed", {"generate": spec}, {"Content-Type": "application/json"})
        assert r.status == 400, (spec, r.status, r.body)
    r = cs.request(mk.sim.port, "POST", "/_sim/seed", {"generate": {"programId": PROGRAM, "count": 1,
                                                                    "statuses": {"Invited": 1}}, "leads": []},
                   {"Content-Type": "application/json"})
    assert r.status == 400
    after = mk.sim.ctl("GET", "state")
    assert (after["leads"], after["members"]) == (before["leads"], before["members"])


# ------------------------------------------------------------------ a real client

def test_node_marketo_rest_connection_runs_a_program_member_export(node_modules, mk):  # noqa: F811
    """node-marketo-rest 0.7.8 has bulkLeadExtract and bulkActivityExtract but no program member
    extract: the script drives the program member endpoints through its Connection the way its
    own bulk methods do (create as JSON, enqueue and status with a _method form, file as text),
    from its bulk path <endpoint>/../bulk/v1."""
    seed_program(mk, [(f"n{i}@example.com", "Registered") for i in range(3)])
    mk.config(**FAST)
    r = run_client(node_modules, "marketo_bulk.js", {
        "url": mk.sim.url, "clientId": "sim-mkto-client", "clientSecret": "sim-mkto-secret",
        "programId": PROGRAM, "fields": ["leadId", "email", "statusName"]})
    created = ok(r, "create")
    assert created["success"] and created["result"][0]["status"] == "Created"
    assert ok(r, "enqueue")["result"][0]["status"] == "Queued"
    final = ok(r, "poll")
    assert final["status"] == "Completed" and final["numberOfRecords"] == 3
    text = ok(r, "file")
    assert text == "leadId,email,statusName\n1,n0@example.com,Registered\n2,n1@example.com,Registered\n" \
                   "3,n2@example.com,Registered\n"
    assert final["fileChecksum"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    calls = [c for c in mk.sim.calls() if c["path"].startswith("/bulk")]
    enqueue = next(c for c in calls if c["path"].endswith("/enqueue.json"))
    assert enqueue["method"] == "POST" and enqueue["body"] == "_method=POST"
    assert json.dumps(ok(r, "list")).count(created["result"][0]["exportId"]) == 1
