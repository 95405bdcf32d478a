"""Large campaigns listed through a Salesforce Bulk API 2.0 query job (issue 19, second half).

A job listing a campaign from the start counts its members (SOQL COUNT()); above
SF_BULK_ABOVE_MEMBERS it creates a Bulk API 2.0 query job, waits for it and reads its CSV
results a page (SF_BULK_PAGE_RECORDS rows) at a time by locator; at or below it, it pages SOQL
in Id order as before. A worker killed mid-results resumes the same job at its locator; a spent
daily allocation falls back to SOQL. Real Redis, the real binary, both simulators; outcomes
read from the job API, the simulators' calls and both simulators' members."""
import json
import re
import signal

import pytest

import cs
from test_jobs import T, job, link, wait_job
from test_jobs import world  # noqa: F401 - the fixture (backfill on link)


def bulk_creates(w, since=0):
    return [c for c in w.sf_calls(since) if c["method"] == "POST" and
            re.search(r"/jobs/query$", c["path"])]


def results_calls(w, since=0):
    return [c for c in w.sf_calls(since) if c["method"] == "GET" and
            re.search(r"/jobs/query/[0-9A-Za-z]+/results$", c["path"])]


def soql_member_pages(w, cid, since=0):
    """The SOQL queries that list the campaign's members page by page, in Id order."""
    return [c for c in w.sf_calls(since) if c["path"].endswith("/query") and
            "FROM CampaignMember WHERE CampaignId" in json.dumps(c.get("query")) and
            cid in json.dumps(c.get("query")) and "ORDER BY Id" in json.dumps(c.get("query"))]


def seed_campaign(w, cid, n, prefix, status="Registered"):
    """n campaign members, Leads that Marketo lacks, as a data import makes them."""
    w.sf.ctl("POST", "seed", {"generate": {"campaignId": cid, "count": n, "kind": "lead",
                                           "statuses": {status: n},
                                           "emailPattern": prefix + "{n}@example.com"}})


def test_a_campaign_above_the_threshold_is_listed_by_a_bulk_query_job(world):
    """150 members over a threshold of 100: one query job, its results read 50 rows a page by
    locator (each page's header row is not a member), no SOQL paging of the members; the
    backfill merges every member both ways."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_campaign(w, cid, 150, "big")
    mk_only = w.mk_people(5, "mko", sf="lead")
    for p in mk_only:
        w.mk_human(pid, p, "Registered")
    w.start(workers=1, threads=2, SF_BULK_ABOVE_MEMBERS=100, SF_BULK_PAGE_RECORDS=50)
    jid = link(w, pid, cid)
    j = wait_job(w, jid)
    assert j["counts"]["listed"]["salesforce"] == 150, j
    assert j["counts"]["listed"]["marketo"] == 5, j
    creates = bulk_creates(w)
    assert len(creates) == 1, creates
    body = creates[0]["body"]
    assert body["operation"] == "query" and re.fullmatch(
        r"SELECT Id, LeadId, ContactId, Status, Email, FirstName, LastName, CompanyOrAccount, "
        r"LastModifiedDate FROM CampaignMember WHERE CampaignId = '" + cid + "'",
        body["query"]), body
    pages = results_calls(w)
    assert [p["query"].get("maxRecords") for p in pages] == ["50"] * 3, pages
    assert "locator" not in pages[0]["query"], pages[0]
    assert all(p["query"].get("locator") for p in pages[1:]), pages
    assert soql_member_pages(w, cid) == []
    # The finished job is deleted.
    assert w.sf.ctl("GET", "bulk")["jobs"] == []
    w.wait_settled(timeout=120)
    members = w.sf_members(cid)
    assert len(members) == 155 and set(members.values()) == {"Registered"}, len(members)
    assert sorted(w.mk_members(pid).values()) == ["Registered"] * 155
    cs.no_dead_letters(w)


def test_the_threshold_chooses_soql_at_or_below_it_and_bulk_above(world):
    """A campaign of exactly SF_BULK_ABOVE_MEMBERS members is paged by SOQL (no query job); one
    member more and the next campaign goes through a query job."""
    w = world
    at, above = w.campaign("At"), w.campaign("Above")
    p1, p2 = w.program("P1"), w.program("P2")
    seed_campaign(w, at, 40, "at")
    seed_campaign(w, above, 41, "above")
    w.start(workers=1, threads=2, SF_BULK_ABOVE_MEMBERS=40)
    wait_job(w, link(w, p1, at))
    assert bulk_creates(w) == [] and soql_member_pages(w, at), w.sf_calls()
    counts = [c for c in w.sf_calls() if "COUNT()" in json.dumps(c.get("query"))]
    assert len(counts) == 1 and at in json.dumps(counts[0]["query"]), counts
    since = w.sf_seq()
    j = wait_job(w, link(w, p2, above))
    assert j["counts"]["listed"]["salesforce"] == 41, j
    assert len(bulk_creates(w, since)) == 1 and soql_member_pages(w, above, since) == []
    w.wait_settled(timeout=120)
    assert len(w.mk_members(p1)) == 40 and len(w.mk_members(p2)) == 41


def killed_mid_results(w, n, prefix):
    """A campaign of n members (emails prefix{n}@example.com) linked to a program, its backfill
    listing them through a query job whose results pages (100 rows) are slowed; the one worker
    is killed by SIGKILL once two pages are listed (the results delay is still on). Returns
    (campaign id, program id, backfill job id)."""
    cid, pid = w.campaign(), w.program()
    seed_campaign(w, cid, n, prefix)
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "delay", "path": r"/jobs/query/.+/results",
                                           "delay_ms": 400, "count": None}]})
    w.start(workers=1, threads=2, SF_BULK_ABOVE_MEMBERS=100, SF_BULK_PAGE_RECORDS=100)
    jid = link(w, pid, cid)
    cs.wait_until(lambda: job(w, jid)["counts"]["listed"]["salesforce"] >= 200, T,
                  what="two results pages listed")
    w.worker.stop(signal.SIGKILL)
    return cid, pid, jid


def test_a_worker_killed_mid_results_resumes_the_same_job_at_its_locator(world):
    """SIGKILL of the worker while it reads the results of a query job (slow pages of 100
    rows): the worker that takes the job over reads the same job's results from a locator (not
    the first page again) and creates no second job; every member is merged."""
    w = world
    cid, pid, jid = killed_mid_results(w, 800, "res")
    since = w.sf_seq()
    job_id = bulk_creates(w)[0]["response"]["id"]
    w.restart(w.worker)
    cs.wait_until(lambda: results_calls(w, since), T, what="the results to be read again")
    resumed = results_calls(w, since)[0]
    assert job_id in resumed["path"] and resumed["query"].get("locator"), resumed
    w.sf.ctl("POST", "faults", {"rules": []})
    j = wait_job(w, jid, timeout=180)
    assert j["takeovers"] == 1, j
    assert 800 <= j["counts"]["listed"]["salesforce"] <= 800 + 100, j
    assert len(bulk_creates(w)) == 1 and soql_member_pages(w, cid) == []
    w.wait_settled(timeout=120)
    assert len(w.sf_members(cid)) == 800
    assert len(w.mk_members(pid)) == 800


def test_a_spent_daily_bulk_allocation_falls_back_to_soql(world):
    """The org's one daily query job is used by the first campaign; the second, as large, is
    refused a job (ExceededQuota) and is listed by SOQL paging instead, and still merges."""
    w = world
    c1, c2 = w.campaign("One"), w.campaign("Two")
    p1, p2 = w.program("P1"), w.program("P2")
    seed_campaign(w, c1, 30, "one")
    seed_campaign(w, c2, 30, "two")
    w.sf.ctl("POST", "config", {"bulkDailyQueryJobs": 1})
    w.start(workers=1, threads=2, SF_BULK_ABOVE_MEMBERS=10)
    wait_job(w, link(w, p1, c1))
    assert len(bulk_creates(w)) == 1 and bulk_creates(w)[0]["status"] == 200
    since = w.sf_seq()
    j = wait_job(w, link(w, p2, c2))
    refused = bulk_creates(w, since)
    assert [c["status"] for c in refused] == [400], refused
    assert "EXCEEDED_QUOTA" in json.dumps(refused[0]["response"])
    assert soql_member_pages(w, c2, since), "the second campaign was not paged by SOQL"
    assert j["counts"]["listed"]["salesforce"] == 30, j
    w.wait_settled(timeout=120)
    assert len(w.mk_members(p2)) == 30 and len(w.sf_members(c2)) == 30


def test_names_with_quotes_commas_and_line_breaks_come_through_the_csv(world):
    """Members whose names and company hold double quotes, commas and line breaks (quoted CSV
    values over several lines): the backfill creates their Marketo leads with exactly those
    values; the header row of each one-row results page is not taken for a member."""
    w = world
    cid, pid = w.campaign(), w.program()
    odd = [("Ann \"Annie\"", "O'Neil, Jr.", "Acme, \"Inc\"\nWest"),
           ("Bob,\nJr", "\"Quoted\"", "Plain Co"),
           ("Cy", "Lee", "Ends with quote\"")]
    leads = w.sf.ctl("POST", "seed", {"leads": [
        {"FirstName": f, "LastName": l, "Company": c, "Email": f"odd{i}@example.com"}
        for i, (f, l, c) in enumerate(odd)]})["leads"]
    w.sf.ctl("POST", "seed", {"members": [{"CampaignId": cid, "LeadId": r["Id"],
                                           "Status": "Registered"} for r in leads]})
    w.start(workers=1, threads=2, SF_BULK_ABOVE_MEMBERS=2, SF_BULK_PAGE_RECORDS=1)
    j = wait_job(w, link(w, pid, cid))
    assert j["counts"]["listed"]["salesforce"] == 3, j
    assert len(results_calls(w)) == 3 and len(bulk_creates(w)) == 1
    w.wait_settled(timeout=120)
    assert sorted(w.mk_members(pid).values()) == ["Registered"] * 3
    state = w.mk.ctl("GET", "state")
    by_email = {l["email"]: l for l in state["leads"]}
    for i, (f, l, c) in enumerate(odd):
        lead = by_email[f"odd{i}@example.com"]
        assert (lead.get("firstName"), lead.get("lastName")) == (f, l), lead


def test_a_results_page_cut_midway_resumes_after_the_rows_already_handed(world):
    """A results page of 3,600 rows is handed 2,000 at a time (ML_PAGE_MAX); the connection is
    lost after about 2,700 rows of it. The listing goes on from its cursor (the job, the page's
    locator, 2,000 rows handed): it reads the same page of the same job again and skips those
    2,000, so every member is listed exactly once and no second job is made."""
    w = world
    cid, pid = w.campaign(), w.program()
    n = 3600
    pattern = {"emailPattern": "cut{n}@example.com", "start": 1000}  # fixed-width rows
    w.sf.ctl("POST", "seed", {"generate": {"campaignId": cid, "count": n, "kind": "lead",
                                           "statuses": {"Registered": n}, **pattern}})
    w.mk.ctl("POST", "seed", {"generate": {"programId": pid, "count": n,
                                           "statuses": {"Registered": n}, **pattern}})
    row = len('"00vSm0000000001AAA","00QSm0000000001AAA","","Registered","cut1000@example.com",'
              '"","Member 1000","","2026-12-07T18:00:00.000Z"\n')
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "cut", "path": r"/jobs/query/.+/results",
                                           "bytes": 2700 * row, "count": 1}]})
    # The program (3,600 > MARKETO_BULK_ABOVE_MEMBERS) goes through the bulk extract: polled
    # every 100 ms rather than every minute.
    w.start(workers=1, threads=2, SF_BULK_ABOVE_MEMBERS=100, SF_BULK_PAGE_RECORDS=n,
            MARKETO_BULK_POLL_MS=100)
    j = wait_job(w, link(w, pid, cid), timeout=120)
    reads = results_calls(w)
    assert len(reads) == 2 and reads[0]["path"] == reads[1]["path"], reads
    assert "locator" not in reads[1]["query"], reads[1]
    assert len(bulk_creates(w)) == 1
    assert j["counts"]["listed"]["salesforce"] == n, j
    assert j["counts"]["listed"]["marketo"] == n, j
    assert j["counts"]["queued"] == 0, j
    assert len(w.sf_members(cid)) == n and len(w.mk_members(pid)) == n


def test_a_job_gone_when_the_listing_resumes_is_started_over(world):
    """The worker is killed mid-results and the query job is gone by the time the listing
    resumes (deleted; Salesforce deletes terminal jobs after 7 days): the results read answers
    404, the listing starts over with a new query job and every member is merged (members
    listed twice are meant to be harmless: the sink keys them by email). Today the members
    listed twice whose corrections were applied in between are deleted from the campaign: a
    job_run bug (issue 19, first half) this test reports as an expected failure, after checking
    what this listing does."""
    w = world
    cid, pid, jid = killed_mid_results(w, 600, "gone")
    w.sf.ctl("DELETE", "bulk")
    w.sf.ctl("POST", "faults", {"rules": []})
    since = w.sf_seq()
    w.restart(w.worker)
    j = wait_job(w, jid, timeout=180)
    reads = results_calls(w, since)
    assert reads[0]["status"] == 404 and reads[0]["query"].get("locator"), reads[0]
    assert len(bulk_creates(w, since)) == 1 and len(bulk_creates(w)) == 2
    assert 600 + 200 <= j["counts"]["listed"]["salesforce"] <= 600 + 600, j
    w.wait_settled(timeout=120)
    assert len(w.mk_members(pid)) == 600
    # The pages listed again after their corrections were applied are not taken for members
    # Marketo removed: none is deleted from the campaign.
    assert len(w.sf_members(cid)) == 600


def test_a_failed_query_job_fails_the_listing_with_salesforces_words(world):
    """A query job that ends Failed: the backfill fails (a refusal, not retried) with
    Salesforce's errorMessage and the campaign named; the failed query job is deleted."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_campaign(w, cid, 20, "fail")
    w.sf.ctl("POST", "config", {"bulkFailMessage": "InternalServerError: retried more than 15 "
                                                   "times"})
    w.start(workers=1, threads=2, SF_BULK_ABOVE_MEMBERS=10)
    j = wait_job(w, link(w, pid, cid), state="failed")
    assert "retried more than 15 times" in j["error"] and cid in j["error"], j
    assert "Bulk API 2.0" in j["error"], j
    assert len(bulk_creates(w)) == 1 and results_calls(w) == []
    assert w.sf.ctl("GET", "bulk")["jobs"] == []
    assert w.mk_members(pid) == {}


def test_an_expired_token_while_reading_results_is_renewed(world):
    """The session expires just before a results page is read: Salesforce answers 401, the
    service fetches a new token and reads the page again; the listing goes on."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_campaign(w, cid, 30, "tok")
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "expire_tokens",
                                           "path": r"/jobs/query/.+/results", "count": 1}]})
    w.start(workers=1, threads=2, SF_BULK_ABOVE_MEMBERS=10, SF_BULK_PAGE_RECORDS=20)
    j = wait_job(w, link(w, pid, cid))
    assert j["counts"]["listed"]["salesforce"] == 30, j
    reads = results_calls(w)
    assert [r["status"] for r in reads] == [401, 200, 200], reads
    w.wait_settled(timeout=120)
    assert len(w.mk_members(pid)) == 30
