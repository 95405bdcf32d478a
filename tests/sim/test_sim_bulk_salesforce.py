"""The Salesforce simulator's Bulk API 2.0 query jobs over real HTTP: every state, the results
pages and their headers, abort, delete, the job list, the errors and allocations the Bulk API
2.0 and Bulk API Developer Guide documents, the generate form of /_sim/seed at 100,000 members,
and jsforce's bulk2.query talking to it.

Sources: developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/ query_create_job,
query_get_one_job, query_get_job_results, query_abort_job, query_delete_job, query_get_all_jobs,
bulk_api_2_limits (see tests/sim/salesforce_sim.py). One simulator per module, reset before
each test."""
import base64
import re
import time

import pytest

import cs
from cs.clients import failed, ok, run_client

V = "v62.0"
JOBS = f"/services/data/{V}/jobs/query"
SF_ID = re.compile(r"^750[A-Za-z0-9]{15}$")
SF_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
FAST = {"bulkQueuedMs": 0, "bulkProcessingMs": 0}
STATUSES = [{"Label": "Sent", "IsDefault": True}, {"Label": "Responded", "HasResponded": True}]


class Salesforce:
    def __init__(self, sim):
        self.sim = sim
        self.token = None

    def http(self, method, path, body=None, headers=None):
        if self.token is None:
            self.token = cs.request(self.sim.port, "POST", "/services/oauth2/token",
                                    "grant_type=client_credentials&client_id=sim-sf-client&client_secret=sim-sf-secret",
                                    {"Content-Type": "application/x-www-form-urlencoded"}).json()["access_token"]
        hdrs = dict({"Authorization": f"Bearer {self.token}"}, **(headers or {}))
        if isinstance(body, (dict, list)):
            hdrs.setdefault("Content-Type", "application/json")
        return cs.request(self.sim.port, method, path, body, hdrs)

    def json(self, method, path, body=None, status=200):
        r = self.http(method, path, body)
        assert r.status == status, (r.status, r.body)
        return r.json()

    def config(self, **changes):
        return self.sim.ctl("POST", "config", changes)

    def create(self, soql, **extra):
        return self.json("POST", JOBS, dict({"operation": "query", "query": soql}, **extra))

    def info(self, job_id):
        return self.json("GET", f"{JOBS}/{job_id}")

    def wait_state(self, job_id, state, timeout=10):
        return cs.wait_until(lambda: (lambda j: j if j["state"] == state else None)(self.info(job_id)),
                             timeout=timeout, what=f"job {job_id} {state}")

    def results(self, job_id, query=""):
        r = self.http("GET", f"{JOBS}/{job_id}/results{query}")
        assert r.status == 200, (r.status, r.body)
        return r

    def run(self, soql, **extra):
        job = self.create(soql, **extra)
        self.wait_state(job["id"], "JobComplete")
        return job["id"]


@pytest.fixture(scope="module")
def module_sim(tmp_path_factory):
    sim = cs.Sim("salesforce_sim.py", str(tmp_path_factory.mktemp("sfbulk"))).start()
    yield sim
    sim.stop()


@pytest.fixture
def sf(module_sim):
    module_sim.ctl("POST", "reset", {"defaults": True})
    return Salesforce(module_sim)


def seed_campaign(sf, people=3, contacts=0):
    """A campaign with `people` lead members (m0@, m1@, ...) and `contacts` contact members."""
    seed = sf.sim.ctl("POST", "seed", {
        "campaigns": [{"Name": "Webinar", "statuses": STATUSES}],
        "leads": [{"LastName": f"L{i}", "Company": "Acme", "Email": f"m{i}@example.com"} for i in range(people)],
        "contacts": [{"LastName": f"C{i}", "Email": f"c{i}@example.com"} for i in range(contacts)],
        "members": [{"CampaignId": "@campaigns.0", "LeadId": f"@leads.{i}",
                     "Status": "Responded" if i == 1 else "Sent"} for i in range(people)]
        + [{"CampaignId": "@campaigns.0", "ContactId": f"@contacts.{i}"} for i in range(contacts)]})
    return seed


def member_soql(campaign_id, fields="Id, LeadId, ContactId, Status, Lead.Email, Contact.Email"):
    return f"SELECT {fields} FROM CampaignMember WHERE CampaignId = '{campaign_id}' ORDER BY Lead.Email"


# ------------------------------------------------------------------ states and results

def test_query_job_goes_uploadcomplete_inprogress_jobcomplete_and_serves_csv(sf):
    seed = seed_campaign(sf, people=2, contacts=1)
    campaign = seed["campaigns"][0]["Id"]
    sf.config(bulkQueuedMs=300, bulkProcessingMs=300)
    job = sf.create(member_soql(campaign))
    assert SF_ID.match(job["id"]) and SF_TIME.match(job["createdDate"])
    assert job == {"id": job["id"], "operation": "query", "object": "CampaignMember",
                   "createdById": "005000000000001AAA", "createdDate": job["createdDate"],
                   "systemModstamp": job["createdDate"], "state": "UploadComplete",
                   "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": 62.0,
                   "lineEnding": "LF", "columnDelimiter": "COMMA"}
    info = sf.info(job["id"])
    assert info == dict(job, jobType="V2Query", numberRecordsProcessed=0, retries=0,
                        totalProcessingTime=0, isPkChunkingSupported=True)
    running = sf.wait_state(job["id"], "InProgress")
    assert running["numberRecordsProcessed"] == 0
    done = sf.wait_state(job["id"], "JobComplete")
    assert done["numberRecordsProcessed"] == 3 and done["totalProcessingTime"] >= 300
    assert done["systemModstamp"] > job["systemModstamp"] and "errorMessage" not in done
    r = sf.results(job["id"])
    assert r.header("Content-Type") == "text/csv"
    assert (r.header("Sforce-NumberOfRecords"), r.header("Sforce-Locator")) == ("3", "null")
    members = {m["LeadId"] or m["ContactId"]: m for m in sf.sim.ctl("GET", f"members?campaignId={campaign}")["members"]}
    lead = {l["Email"]: l["Id"] for l in seed["leads"]}
    contact = seed["contacts"][0]["Id"]
    # ORDER BY Lead.Email: nulls first (the contact member, whose Lead is null)
    assert r.body.decode() == (
        '"Id","LeadId","ContactId","Status","Lead.Email","Contact.Email"\n'
        f'"{members[contact]["Id"]}","","{contact}","Sent","","c0@example.com"\n'
        f'"{members[lead["m0@example.com"]]["Id"]}","{lead["m0@example.com"]}","","Sent","m0@example.com",""\n'
        f'"{members[lead["m1@example.com"]]["Id"]}","{lead["m1@example.com"]}","","Responded","m1@example.com",""\n')
    assert r.header("Sforce-Limit-Info").startswith("api-usage=")


def test_results_pages_by_locator_and_max_records(sf):
    campaign = seed_campaign(sf, people=5)["campaigns"][0]["Id"]
    sf.config(**FAST)
    job_id = sf.run(member_soql(campaign, "Lead.Email"))
    header, rows, locator, pages = None, [], None, 0
    while locator != "null":
        r = sf.results(job_id, "?maxRecords=2" + (f"&locator={locator}" if locator else ""))
        head, *body = r.body.decode().splitlines()
        assert header in (None, head)
        header, locator, pages = head, r.header("Sforce-Locator"), pages + 1
        assert int(r.header("Sforce-NumberOfRecords")) == len(body) <= 2
        rows += body
        if locator != "null":          # "MTAwMDA"-like: base64 of the next offset
            assert base64.b64decode(locator + "=" * (-len(locator) % 4)).decode() == str(len(rows))
    assert pages == 3 and header == '"Lead.Email"'
    assert rows == [f'"m{i}@example.com"' for i in range(5)]
    # "As long as the associated job exists, the locator string for a set of results does not change."
    again = sf.results(job_id, f"?maxRecords=2&locator={base64.b64encode(b'2').decode().rstrip('=')}")
    assert again.body.decode().splitlines()[1:] == rows[2:4]
    sf.config(bulkResultsMaxRecords=4)           # the page size without maxRecords
    first = sf.results(job_id)
    assert first.header("Sforce-NumberOfRecords") == "4" and first.header("Sforce-Locator") != "null"
    for bad in ("?maxRecords=0", "?maxRecords=x", "?locator=%%%", "?locator=OTk5"):
        r = sf.http("GET", f"{JOBS}/{job_id}/results{bad}")
        assert r.status == 400, (bad, r.status, r.body)


def test_delimiters_line_endings_quotes_and_types(sf):
    seed = sf.sim.ctl("POST", "seed", {
        "campaigns": [{"Name": "W", "statuses": STATUSES}],
        "leads": [{"LastName": 'O"Neil', "Company": "A|B", "Email": "q@example.com"}],
        "members": [{"CampaignId": "@campaigns.0", "LeadId": "@leads.0", "Status": "Responded"}]})
    campaign = seed["campaigns"][0]["Id"]
    sf.config(**FAST)
    job_id = sf.run(member_soql(campaign, "LastName, CompanyOrAccount, HasResponded, LastModifiedDate"),
                    columnDelimiter="PIPE", lineEnding="CRLF")
    assert sf.info(job_id)["columnDelimiter"] == "PIPE" and sf.info(job_id)["lineEnding"] == "CRLF"
    body = sf.results(job_id).body.decode()
    stamp = re.search(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"\r\n$', body)
    assert stamp, body
    assert body == ('"LastName"|"CompanyOrAccount"|"HasResponded"|"LastModifiedDate"\r\n'
                    f'"O""Neil"|"A|B"|"true"|"{stamp.group(1)}"\r\n')


def test_query_all_includes_deleted_members(sf):
    seed = seed_campaign(sf, people=3)
    campaign = seed["campaigns"][0]["Id"]
    gone = sf.sim.ctl("GET", f"members?campaignId={campaign}")["members"][0]["Id"]
    cs.request(sf.sim.port, "DELETE", f"/_sim/members/{gone}")
    sf.config(**FAST)
    soql = f"SELECT Id, IsDeleted FROM CampaignMember WHERE CampaignId = '{campaign}' ORDER BY Id"
    live = sf.results(sf.run(soql)).body.decode().splitlines()
    every = sf.results(sf.run(soql, operation="queryAll")).body.decode().splitlines()
    assert len(live) == 3 and len(every) == 4 and f'"{gone}","true"' in every


def test_records_are_read_when_the_job_starts(sf):
    seed = seed_campaign(sf, people=2)
    campaign = seed["campaigns"][0]["Id"]
    sf.config(bulkQueuedMs=60000, bulkProcessingMs=60000)
    job = sf.create(member_soql(campaign, "Lead.Email, Status"))
    sf.sim.ctl("POST", "members", {"CampaignId": campaign, "LeadId": seed["leads"][0]["Id"], "Status": "Responded"})
    sf.config(bulkQueuedMs=0)
    sf.wait_state(job["id"], "InProgress")
    sf.sim.ctl("POST", "members", {"CampaignId": campaign, "LeadId": seed["leads"][1]["Id"], "Status": "Sent"})
    sf.config(bulkProcessingMs=0)
    sf.wait_state(job["id"], "JobComplete")
    assert sf.results(job["id"]).body.decode().splitlines()[1:] == ['"m0@example.com","Responded"',
                                                                    '"m1@example.com","Responded"']
    # The member journal records the read, as it does for REST queries.
    member = sf.sim.ctl("GET", f"members?campaignId={campaign}")["members"][0]["Id"]
    assert "read" in [e["op"] for e in sf.sim.ctl("GET", f"journal?id={member}")["entries"]]


def test_results_before_completion_and_with_another_version(sf):
    campaign = seed_campaign(sf)["campaigns"][0]["Id"]
    sf.config(bulkQueuedMs=60000)
    job = sf.create(member_soql(campaign))
    r = sf.http("GET", f"{JOBS}/{job['id']}/results")
    assert r.status == 412 and r.json() == [{
        "errorCode": "JOB_NOT_COMPLETE", "message": "can only download query results of successfully "
        "completed bulk job with status: JOB_COMPLETE. Current status: UPLOAD_COMPLETE"}]
    sf.config(bulkQueuedMs=0, bulkProcessingMs=0)
    sf.wait_state(job["id"], "JobComplete")
    r = sf.http("GET", f"/services/data/v61.0/jobs/query/{job['id']}/results")
    assert r.status == 409 and r.json()[0]["errorCode"]
    assert sf.http("GET", f"{JOBS}/750Sm00000zzzzzAAA").status == 404


def test_failed_job_carries_an_error_message(sf):
    campaign = seed_campaign(sf)["campaigns"][0]["Id"]
    sf.config(bulkFailMessage="Retried more than 15 times", **FAST)
    job = sf.create(member_soql(campaign))
    failed_job = sf.wait_state(job["id"], "Failed")
    assert failed_job["errorMessage"] == "Retried more than 15 times"
    r = sf.http("GET", f"{JOBS}/{job['id']}/results")
    assert r.status == 412 and r.json()[0]["message"].endswith("Current status: FAILED")


# ------------------------------------------------------------------ invalid queries and bodies

def test_invalid_query_refused_at_creation_or_failing_the_job(sf):
    """The guide does not say whether a bad query fails the create call or the job: both,
    chosen by bulkInvalidQuery."""
    seed_campaign(sf)
    bad = "SELECT Id, ShoeSize FROM CampaignMember"
    r = sf.http("POST", JOBS, {"operation": "query", "query": bad})
    assert r.status == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'ShoeSize' on entity 'CampaignMember'" in r.json()[0]["message"]
    for soql in ("SELECT COUNT() FROM CampaignMember", "SELECT Id FROM CampaignMember LIMIT 5 OFFSET 1"):
        r = sf.http("POST", JOBS, {"operation": "query", "query": soql})
        assert r.status == 400 and r.json()[0]["errorCode"] == "INVALIDJOB", (soql, r.body)
    assert sf.json("GET", JOBS)["records"] == []
    sf.config(bulkInvalidQuery="fail", **FAST)
    job = sf.create(bad)
    assert job["state"] == "UploadComplete" and job["object"] == "CampaignMember"
    done = sf.wait_state(job["id"], "Failed")
    assert done["errorMessage"].startswith("INVALID_FIELD:") and "ShoeSize" in done["errorMessage"]


@pytest.mark.parametrize("body,status,code", [
    ({"query": "SELECT Id FROM Lead"}, 400, "API_ERROR"),
    ({"operation": "insert", "query": "SELECT Id FROM Lead"}, 400, "API_ERROR"),
    ({"operation": "query"}, 400, "API_ERROR"),
    ({"operation": "query", "query": "SELECT Id FROM Lead", "contentType": "JSON"}, 400, "API_ERROR"),
    ({"operation": "query", "query": "SELECT Id FROM Lead", "columnDelimiter": "COLON"}, 400, "API_ERROR"),
    ({"operation": "query", "query": "SELECT Id FROM Lead", "lineEnding": "CR"}, 400, "API_ERROR"),
    ({"operation": "query", "query": "SELECT Id FROM Lead WHERE LastName = '" + "x" * 100_000 + "'"},
     400, "MALFORMED_QUERY"),
    (["not", "an", "object"], 400, "API_ERROR"),
])
def test_create_refusals(sf, body, status, code):
    r = sf.http("POST", JOBS, body)
    assert (r.status, r.json()[0]["errorCode"]) == (status, code), r.body
    assert sf.json("GET", JOBS)["records"] == []


def test_create_needs_json_and_api_47(sf):
    r = sf.http("POST", JOBS, "operation=query", {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415
    assert sf.http("POST", JOBS, b"", {"Content-Type": "application/json"}).json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    r = sf.http("POST", "/services/data/v46.0/jobs/query", {"operation": "query", "query": "SELECT Id FROM Lead"})
    assert r.status == 404


# ------------------------------------------------------------------ abort, delete, list

def test_abort_only_while_running_and_delete_only_when_terminated(sf):
    campaign = seed_campaign(sf)["campaigns"][0]["Id"]
    sf.config(bulkQueuedMs=60000, bulkProcessingMs=60000)
    job = sf.create(member_soql(campaign))
    r = sf.http("DELETE", f"{JOBS}/{job['id']}")
    assert r.status == 400 and r.json() == [{"errorCode": "API_ERROR", "message":
                                             "Error encountered when deleting the job because the job is not terminated"}]
    r = sf.http("PATCH", f"{JOBS}/{job['id']}", {"state": "JobComplete"})
    assert r.status == 400
    aborted = sf.json("PATCH", f"{JOBS}/{job['id']}", {"state": "Aborted"})
    assert aborted == {k: v for k, v in dict(job, state="Aborted", systemModstamp=aborted["systemModstamp"]).items()
                       if k not in ("lineEnding", "columnDelimiter")}
    assert sf.http("PATCH", f"{JOBS}/{job['id']}", {"state": "Aborted"}).status == 400
    sf.config(**FAST)
    time.sleep(0.1)          # the scheduler must not revive an aborted job
    assert sf.info(job["id"])["state"] == "Aborted"
    assert sf.http("GET", f"{JOBS}/{job['id']}/results").status == 412
    inprogress = sf.create(member_soql(campaign))
    sf.config(bulkProcessingMs=60000)
    sf.wait_state(inprogress["id"], "InProgress")
    assert sf.json("PATCH", f"{JOBS}/{inprogress['id']}", {"state": "Aborted"})["state"] == "Aborted"
    assert sf.http("DELETE", f"{JOBS}/{job['id']}").status == 204
    assert sf.http("GET", f"{JOBS}/{job['id']}").status == 404
    sf.config(bulkProcessingMs=0)
    done = sf.run(member_soql(campaign))
    assert sf.http("PATCH", f"{JOBS}/{done}", {"state": "Aborted"}).status == 400
    assert sf.http("DELETE", f"{JOBS}/{done}").status == 204
    assert sf.http("GET", f"{JOBS}/{done}/results").status == 404


def test_list_jobs_pages_of_a_thousand(sf):
    seed_campaign(sf)
    sf.config(bulkQueuedMs=600000, bulkDailyQueryJobs=2000)
    ids = [sf.create("SELECT Id FROM Lead")["id"] for _ in range(1001)]
    first = sf.json("GET", JOBS)
    assert first["done"] is False and len(first["records"]) == 1000
    assert set(first["records"][0]) == {"id", "operation", "object", "createdById", "createdDate",
                                        "systemModstamp", "state", "concurrencyMode", "contentType",
                                        "apiVersion", "jobType", "lineEnding", "columnDelimiter"}
    assert first["nextRecordsUrl"].startswith(f"{JOBS}?queryLocator=")
    second = sf.json("GET", first["nextRecordsUrl"])
    assert second == {"done": True, "records": second["records"], "nextRecordsUrl": None}
    assert [r["id"] for r in first["records"] + second["records"]] == ids
    assert sf.json("GET", f"{JOBS}?jobType=V2Ingest")["records"] == []
    assert sf.json("GET", f"{JOBS}?isPkChunkingEnabled=true")["records"] == []


# ------------------------------------------------------------------ allocations and lifespan

def test_daily_query_job_allocation_in_limits_and_exceeded_quota(sf):
    seed_campaign(sf)
    sf.config(bulkDailyQueryJobs=2, **FAST)
    for _ in range(2):
        sf.create("SELECT Id FROM Lead")
    limits = sf.json("GET", f"/services/data/{V}/limits")
    assert limits["DailyBulkV2QueryJobs"] == {"Max": 2, "Remaining": 0}
    assert limits["DailyBulkV2QueryFileStorageMB"]["Max"] == 1_048_576
    r = sf.http("POST", JOBS, {"operation": "query", "query": "SELECT Id FROM Lead"})
    assert r.status == 400 and r.json()[0]["errorCode"] == "EXCEEDED_QUOTA"
    sf.sim.ctl("POST", "bulk/age", {"seconds": 86400 + 1})     # the window rolls on
    assert sf.json("GET", f"/services/data/{V}/limits")["DailyBulkV2QueryJobs"]["Remaining"] == 2
    assert sf.create("SELECT Id FROM Lead")["state"] == "UploadComplete"


def test_results_storage_allocation(sf):
    seed_campaign(sf)
    sf.config(bulkDailyResultsMB=1, **FAST)
    sf.run("SELECT Id FROM Lead")
    assert sf.json("GET", f"/services/data/{V}/limits")["DailyBulkV2QueryFileStorageMB"] == {"Max": 1, "Remaining": 0}
    r = sf.http("POST", JOBS, {"operation": "query", "query": "SELECT Id FROM Lead"})
    assert r.status == 400 and r.json()[0]["errorCode"] == "EXCEEDED_QUOTA"


def test_terminal_jobs_are_deleted_after_seven_days(sf):
    campaign = seed_campaign(sf)["campaigns"][0]["Id"]
    sf.config(bulkQueuedMs=600000, bulkProcessingMs=0)
    waiting = sf.create(member_soql(campaign))["id"]
    sf.config(bulkQueuedMs=0)
    sf.wait_state(waiting, "JobComplete")
    sf.config(bulkQueuedMs=60 * 86400 * 1000)        # longer than the ages below
    pending = sf.create(member_soql(campaign))["id"]
    sf.sim.ctl("POST", "bulk/age", {"seconds": 6 * 86400})
    assert sf.results(waiting).header("Sforce-NumberOfRecords") == "3"
    sf.sim.ctl("POST", "bulk/age", {"seconds": 86400 + 1})
    assert sf.http("GET", f"{JOBS}/{waiting}").status == 404
    assert sf.info(pending)["state"] == "UploadComplete"     # only terminal jobs go
    assert [j["id"] for j in sf.sim.ctl("GET", "bulk")["jobs"]] == [pending]


def test_bulk_calls_count_as_api_calls(sf):
    campaign = seed_campaign(sf)["campaigns"][0]["Id"]
    sf.config(apiLimit=5, **FAST)
    job = sf.create(member_soql(campaign))
    r = sf.http("GET", f"{JOBS}/{job['id']}")
    assert r.header("Sforce-Limit-Info") == "api-usage=2/5"
    cs.wait_until(lambda: sf.info(job["id"])["state"] == "JobComplete")
    for _ in range(5):
        r = sf.http("GET", f"{JOBS}/{job['id']}/results")
    assert r.status == 403 and r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_reset_forgets_jobs(sf):
    seed_campaign(sf)
    job = sf.create("SELECT Id FROM Lead")
    sf.sim.ctl("POST", "reset")
    assert sf.sim.ctl("GET", "bulk")["jobs"] == []
    sf.token = None
    assert sf.http("GET", f"{JOBS}/{job['id']}").status == 404


# ------------------------------------------------------------------ 100,000 members

def test_generate_a_hundred_thousand_members_and_read_them_by_bulk_query(sf):
    seed = sf.sim.ctl("POST", "seed", {"campaigns": [{"Name": "Big", "statuses": STATUSES}]})
    campaign = seed["campaigns"][0]["Id"]
    began = time.monotonic()
    gen = sf.sim.ctl("POST", "seed", {"generate": {"campaignId": campaign, "count": 100_000,
                                                   "statuses": {"Sent": 60_000, "Responded": 40_000},
                                                   "kind": "lead", "emailPattern": "big{n}@example.com"}},
                     timeout=60)
    seconds = time.monotonic() - began
    print(f"\ngenerate 100,000 members: {seconds:.2f} s (simulator says {gen['generated'][0]['ms']} ms), "
          f"RSS {cs.rss_kib(sf.sim.proc.pid)} KiB")
    (g,) = gen["generated"]
    assert (g["members"], g["peopleCreated"], g["statuses"]) == (100_000, 100_000, {"Sent": 60_000, "Responded": 40_000})
    sf.config(**FAST)
    job_id = sf.run(f"SELECT Id, LeadId, Status, Lead.Email FROM CampaignMember WHERE CampaignId = '{campaign}'")
    emails, responded, locator, pages = set(), 0, None, 0
    while locator != "null":
        r = sf.results(job_id, "?maxRecords=40000" + (f"&locator={locator}" if locator else ""))
        locator, pages = r.header("Sforce-Locator"), pages + 1
        for line in r.body.decode().splitlines()[1:]:
            _, _, status, email = line.split(",")
            emails.add(email.strip('"'))
            responded += status == '"Responded"'
    assert pages == 3 and len(emails) == 100_000 and responded == 40_000
    assert "big1@example.com" in emails and "big100000@example.com" in emails


def test_generate_contacts_reuses_people_updates_members_and_refuses_bad_specs(sf):
    seed = sf.sim.ctl("POST", "seed", {"campaigns": [{"Name": "W", "statuses": STATUSES}],
                                       "contacts": [{"LastName": "Old", "Email": "p2@example.com"}],
                                       "accounts": [{"Name": "Acme"}]})
    campaign, account = seed["campaigns"][0]["Id"], seed["accounts"][0]["Id"]
    spec = {"campaignId": campaign, "count": 3, "statuses": {"Sent": 1, "Responded": 2}, "kind": "contact",
            "emailPattern": "p{n}@example.com", "accountId": account, "firstNamePattern": "F{n}"}
    (g,) = sf.sim.ctl("POST", "seed", {"generate": spec})["generated"]
    assert (g["peopleCreated"], g["peopleReused"]) == (2, 1)
    state = sf.sim.ctl("GET", "state")
    contacts = {c["Email"]: c for c in state["contacts"]}
    assert contacts["p2@example.com"]["Id"] == seed["contacts"][0]["Id"]
    assert contacts["p1@example.com"]["AccountId"] == account and contacts["p1@example.com"]["FirstName"] == "F1"
    members = sf.sim.ctl("GET", f"members?campaignId={campaign}")["members"]
    assert len(members) == 3 and all(m["ContactId"] and m["LeadId"] is None for m in members)
    assert sorted(m["Status"] for m in members) == ["Responded", "Responded", "Sent"]
    assert all(m["HasResponded"] == (m["Status"] == "Responded") for m in members)
    # Generating again over the same people changes their status, adds no member.
    sf.sim.ctl("POST", "seed", {"generate": dict(spec, statuses={"Sent": 3})})
    after = sf.sim.ctl("GET", f"members?campaignId={campaign}")["members"]
    assert {m["Id"] for m in after} == {m["Id"] for m in members} and {m["Status"] for m in after} == {"Sent"}
    before = sf.sim.ctl("GET", "state")
    for bad in ({"statuses": {"Attended": 1}}, {"count": 0}, {"kind": "account"}, {"campaignId": "701000000000000"},
                {"emailPattern": "fixed@example.com"}, {"accountId": campaign}, {"shoeSize": 9}):
        r = cs.request(sf.sim.port, "POST", "/_sim/seed", {"generate": dict(spec, **bad)},
                       {"Content-Type": "application/json"})
        assert r.status == 400, (bad, r.body)
    r = cs.request(sf.sim.port, "POST", "/_sim/seed", {"generate": spec, "leads": []}, {"Content-Type": "application/json"})
    assert r.status == 400
    after = sf.sim.ctl("GET", "state")
    assert (after["contacts"], after["members"]) == (before["contacts"], before["members"])


# ------------------------------------------------------------------ a real client

def test_jsforce_bulk2_query_reads_every_page(node_modules, sf):  # noqa: F811
    """jsforce 3's Connection#bulk2.query: create, poll until JobComplete, every results page by
    Sforce-Locator, CSV parsed; an invalid query refused at creation, then failing its job."""
    seed = sf.sim.ctl("POST", "seed", {"campaigns": [{"Name": "Big", "statuses": STATUSES}]})
    campaign = seed["campaigns"][0]["Id"]
    sf.sim.ctl("POST", "seed", {"generate": {"campaignId": campaign, "count": 2500,
                                             "statuses": {"Sent": 2000, "Responded": 500},
                                             "emailPattern": "js{n}@example.com"}})
    sf.config(bulkQueuedMs=100, bulkProcessingMs=100, bulkResultsMaxRecords=1000)
    r = run_client(node_modules, "jsforce_bulk2.js", {
        "url": sf.sim.url, "clientId": "sim-sf-client", "clientSecret": "sim-sf-secret", "version": "62.0",
        "soql": f"SELECT Id, Status, Lead.Email FROM CampaignMember WHERE CampaignId = '{campaign}'",
        "badSoql": "SELECT Id, ShoeSize FROM CampaignMember"})
    rows = ok(r, "query")
    # Every results page is a CSV file with its own header row; jsforce 3.10 pipes the pages
    # into one CSV parser, so the header rows of pages 2 and 3 come back as records.
    header = {"Id": "Id", "Status": "Status", "Lead.Email": "Lead.Email"}
    assert [i for i, row in enumerate(rows) if row == header] == [1000, 2001]
    rows = [row for row in rows if row != header]
    assert len(rows) == 2500 and sum(row["Status"] == "Responded" for row in rows) == 500
    assert {row["Lead.Email"] for row in rows} == {f"js{n}@example.com" for n in range(1, 2501)}
    calls = sf.sim.calls()
    pages = [c for c in calls if c["path"].endswith("/results")]
    assert [c["query"].get("locator") for c in pages[:3]] == [None, "MTAwMA", "MjAwMA"]
    assert all(c["status"] == 200 for c in pages[:3]) and pages[0]["response"]["records"] == 1000
    creates = [c for c in calls if c["method"] == "POST" and c["path"] == JOBS]
    assert [c["status"] for c in creates] == [200, 400, 200]
    assert creates[0]["body"] == {"operation": "query", "query": creates[0]["body"]["query"]}
    first = creates[0]["response"]["id"]
    polls = [c["response"]["state"] for c in calls if c["method"] == "GET" and c["path"] == f"{JOBS}/{first}"]
    assert polls[-1] == "JobComplete" and set(polls) <= {"UploadComplete", "InProgress", "JobComplete"}
    refused = failed(r, "queryBad")
    assert refused["errorCode"] == "INVALID_FIELD"
    failing = failed(r, "queryFailing")
    assert failing["message"] == "Query job failed to complete"
    # jsforce deletes a job that failed.
    cs.wait_until(lambda: any(c["method"] == "DELETE" and c["status"] == 204 for c in sf.sim.calls()),
                  what="jsforce's DELETE of the failed job")
