"""A program's members through Marketo's bulk program member extract (issue 19, second half):
a backfill lists the program through the extract above MARKETO_BULK_ABOVE_MEMBERS and when
Marketo refuses the paged listing (1003); it resumes the export's file from the offset its
cursor recorded after its process is killed; it waits out a spent daily export allocation;
the file's CSV (quotes, commas, line breaks) arrives intact.

Real Redis, the real binary, both simulators (the Marketo simulator's "bulk extract" section
plays the extract with its documented states and limits). Outcomes are read on the job API,
the simulators' call logs and both simulators' members."""
import re
import signal
import time

import cs
from cs import no_dead_letters

T = 90  # seconds to wait for a job (generous: the suite also runs under sanitizers)
EXPORT = r"/bulk/v1/program/members/export"
# The extract's status changes in the simulator within half a second; poll it often.
FAST = {"MARKETO_BULK_POLL_MS": "100", "BACKFILL_ON_LINK": "true"}


def next_second():
    """Sleeps past the next whole second (Marketo's member times have whole seconds)."""
    time.sleep(1.0 - time.time() % 1.0 + 0.05)


def job(w, jid):
    return w.admin("GET", f"/v1/jobs/{jid}", expect=200).json()


def wait_job(w, jid, state="done", timeout=T):
    def ready():
        j = job(w, jid)
        if j["state"] in ("done", "failed", "cancelled") and j["state"] != state:
            raise AssertionError(f"job ended {j['state']}: {j}\n{w.stderr()}")
        return j if j["state"] == state else None
    return cs.wait_until(ready, timeout, interval=0.2, what=f"job {jid} {state}")


def link(w, pid, cid):
    r = w.put_mapping(pid, cid, expect=(201, 200), wait_backfill=False, enabled=True)
    return r.json()["backfillJob"]


def bulk_calls(w, verb, since=0):
    """The calls to one endpoint of the extract ("create", "enqueue", "status", "file")."""
    pat = re.compile(EXPORT + (r"/create\.json" if verb == "create" else
                               rf"/[0-9a-f-]+/{verb}\.json"))
    return [c for c in w.mk_calls(since) if pat.fullmatch(c["path"])]


def members_calls(w, since=0):
    return [c for c in w.mk_calls(since)
            if re.fullmatch(r"/rest/v1/programs/\d+/members\.json", c["path"])
            and c["method"] == "GET" and c["query"].get("filterType") == "statusName"]


def seed_program(w, pid, n, status="Registered"):
    w.mk.ctl("POST", "seed", {"generate": {"programId": pid, "count": n,
                                           "statuses": {status: n},
                                           "emailPattern": f"p{pid}-{{n}}@example.com",
                                           "lastNamePattern": "Member {n}",
                                           "company": "Acme"}})


def test_a_program_above_the_threshold_is_listed_through_the_bulk_extract(world):
    """MARKETO_BULK_ABOVE_MEMBERS=300: the paged listing hands one page of 300, meets more,
    and the program is listed again through one export (created, enqueued, polled, its file
    read); the backfill then merges both ways as a paged one does."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_program(w, pid, 700)
    # One person in both with different statuses (Salesforce's is newer), one only in Salesforce.
    both = w.sf_person("both")
    w.mk_human(pid, both, "Registered")
    next_second()
    sf_only = w.sf_person("sfo", marketo=False)
    w.seed_members(cid, [both, sf_only], "Attended")
    w.start(workers=1, threads=2, MARKETO_BULK_ABOVE_MEMBERS="300", **FAST)

    jid = link(w, pid, cid)
    j = wait_job(w, jid)
    c = j["counts"]
    # 300 by the paged listing (Invited: none; Registered: a page), then all 701 through the
    # extract: each member counted once.
    assert c["listed"]["marketo"] == 701 and c["listed"]["salesforce"] == 2, j
    assert (c["differences"]["missing_in_salesforce"], c["differences"]["missing_in_marketo"],
            c["differences"]["status_differs"]) == (700, 1, 1), j
    assert [len(bulk_calls(w, v)) for v in ("create", "enqueue")] == [1, 1]
    assert bulk_calls(w, "status") and bulk_calls(w, "file")
    create = bulk_calls(w, "create")[0]
    assert create["body"]["filter"] == {"programId": pid}, create
    assert set(create["body"]["fields"]) >= {"leadId", "email", "statusName", "updatedAt"}
    # The paged listing stopped at the page that would pass the threshold.
    assert [c["query"]["filterValues"] for c in members_calls(w)] == [
        "Invited", "Registered", "Registered"], members_calls(w)

    w.wait_settled(timeout=120)
    sf = w.sf_members(cid)
    assert len(sf) == 702 and sf[both.email] == "Attended", len(sf)
    assert all(sf[f"p{pid}-{n}@example.com"] == "Registered" for n in range(1, 701))
    mk = w.mk_members(pid)
    assert len(mk) == 702 and mk[both.lead] == "Attended"
    no_dead_letters(w)


def test_1003_from_the_members_endpoint_falls_back_to_the_bulk_extract(world):
    """Marketo refuses members.json by status for a program over its limit (1003, "Total
    membership size ... exceeds the limit"): the backfill lists the program through the
    bulk extract instead of failing."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_program(w, pid, 40)
    w.mk.ctl("POST", "config", {"memberQueryLimit": 10})
    w.start(workers=1, threads=2, **FAST)

    jid = link(w, pid, cid)
    j = wait_job(w, jid)
    assert j["counts"]["listed"]["marketo"] == 40 and j["error"] is None, j
    refused = members_calls(w)
    assert len(refused) == 1 and refused[0]["code"] == "1003", refused
    assert [len(bulk_calls(w, v)) for v in ("create", "enqueue")] == [1, 1]
    w.wait_settled(timeout=60)
    assert len(w.sf_members(cid)) == 40


def test_a_killed_listing_resumes_the_file_from_its_offset(world):
    """SIGKILL of the worker while it reads the export's file (MARKETO_BULK_READ_BYTES=4096,
    each read slowed): the worker started again takes the job over and reads the same
    export's file from the offset its cursor recorded (a Range from a non-zero byte), making
    no second export; every member is merged."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_program(w, pid, 2100)
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "delay", "path": r"/file\.json$",
                                           "method": "GET", "delay_ms": 250, "count": 0}]})
    w.start(workers=1, threads=2, MARKETO_BULK_ABOVE_MEMBERS="0",
            MARKETO_BULK_READ_BYTES="4096", **FAST)

    jid = link(w, pid, cid)
    cs.wait_until(lambda: job(w, jid)["counts"]["listed"]["marketo"] >= 1000, T,
                  what="a page of the file listed")
    w.worker.stop(signal.SIGKILL)
    assert job(w, jid)["counts"]["listed"]["marketo"] < 2100
    since = w.mk_seq()
    w.restart(w.worker)
    cs.wait_until(lambda: bulk_calls(w, "file", since), T, what="the file read again")
    first = bulk_calls(w, "file", since)[0]
    m = re.fullmatch(r"bytes=(\d+)-(\d+)", first["range"] or "")
    assert m and int(m.group(1)) > 0 and first["http"] == 206, first
    assert bulk_calls(w, "create", since) == []

    w.mk.ctl("DELETE", "faults")
    j = wait_job(w, jid, timeout=180)
    assert j["takeovers"] == 1 and len(bulk_calls(w, "create")) == 1, j
    # The page in progress when the process died is listed again, but counted once.
    assert j["counts"]["listed"]["marketo"] == 2100, j
    w.wait_settled(timeout=180)
    assert len(w.sf_members(cid)) == 2100


def test_a_spent_daily_export_allocation_is_waited_out(world):
    """Marketo's daily export allocation is spent ("1029, Export daily quota exceeded"):
    the job keeps running and asks again (no failure, nothing lost); once the allocation has
    room (here: raised, as the midnight reset would), the export is made and the backfill
    ends with every member merged."""
    w = world
    cid, pid = w.campaign(), w.program()
    cid2, pid2 = w.campaign(name="Second"), w.program(name="Second")
    seed_program(w, pid, 5)
    seed_program(w, pid2, 7)
    w.start(workers=1, threads=2, MARKETO_BULK_ABOVE_MEMBERS="0", **FAST)
    wait_job(w, link(w, pid, cid))
    used = w.mk.ctl("GET", "bulk")["dailyExportBytesUsed"]
    assert used > 0
    w.mk.ctl("POST", "config", {"bulkDailyExportBytes": used})

    since = w.mk_seq()
    jid = link(w, pid2, cid2)
    cs.wait_until(lambda: len([c for c in bulk_calls(w, "create", since)
                               if c["code"] == "1029"]) >= 3, T,
                  what="the export asked for again while the allocation is spent")
    j = job(w, jid)
    assert (j["state"], j["phase"], j["error"]) == ("running", "listing_marketo", None), j
    w.mk.ctl("POST", "config", {"bulkDailyExportBytes": 500 * 1024 * 1024})
    j = wait_job(w, jid)
    assert j["counts"]["listed"]["marketo"] == 7, j
    w.wait_settled(timeout=60)
    assert len(w.sf_members(cid2)) == 7


def test_quoted_names_in_the_file_arrive_intact(world):
    """A member whose names and company hold commas, quotes and a line break (quoted in the
    export's CSV): with MARKETO_BULK_ABOVE_MEMBERS=0 the program is listed through the
    extract only, and the Lead created in Salesforce carries the names as Marketo has them
    (each field quoted in the file, the quotes in the first name doubled)."""
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.mk_person("quoted", first='Jo, "JJ"', last="O'Neil, Jr.", company="Acme,\nInc.")
    w.mk_human(pid, p, "Registered")
    w.start(workers=1, threads=2, MARKETO_BULK_ABOVE_MEMBERS="0", **FAST)

    jid = link(w, pid, cid)
    j = wait_job(w, jid)
    assert j["counts"]["listed"]["marketo"] == 1, j
    assert members_calls(w) == [] and len(bulk_calls(w, "create")) == 1
    w.wait_settled(timeout=60)
    assert w.sf_members(cid) == {p.email: "Registered"}
    lead = w.sf_leads(p.email)
    assert len(lead) == 1, lead
    # The line break inside the quoted company ends no record (a record of too few fields
    # would fail the job); a job keeps a member's texts on one line (store_jobs.h), so it
    # arrives as a space.
    assert (lead[0]["FirstName"], lead[0]["LastName"], lead[0]["Company"]) == (
        'Jo, "JJ"', "O'Neil, Jr.", "Acme, Inc."), lead


def test_an_expired_token_while_reading_the_file_is_fetched_again(world):
    """The file endpoint answers an error envelope (602, token expired) instead of the file:
    the listing fetches a token and reads the same range again, not parsing the envelope as
    the file."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_program(w, pid, 5)
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "expire_tokens", "path": r"/file\.json$",
                                           "count": 1}]})
    w.start(workers=1, threads=2, MARKETO_BULK_ABOVE_MEMBERS="0", **FAST)
    j = wait_job(w, link(w, pid, cid))
    assert j["counts"]["listed"]["marketo"] == 5, j
    files = bulk_calls(w, "file")
    assert [(c["code"], c["http"]) for c in files] == [("602", 200), (None, 206)], files
    assert files[1]["range"] == "bytes=0-" + str(w.mk.ctl("GET", "bulk")["jobs"][0]["fileSize"] - 1)


def test_exports_that_keep_failing_fail_the_job_saying_why(world):
    """Every export Marketo runs ends Failed: the listing makes another (Adobe: "you must
    recreate it") up to three, then the job fails with Marketo's errorMsg and what to do."""
    w = world
    cid, pid = w.campaign(), w.program()
    seed_program(w, pid, 5)
    w.mk.ctl("POST", "config", {"bulkFailMessage": "Export failed: internal error"})
    w.start(workers=1, threads=2, MARKETO_BULK_ABOVE_MEMBERS="0", **FAST)
    j = wait_job(w, link(w, pid, cid), state="failed")
    assert "Export failed: internal error" in j["error"] and "start the job again" in j["error"], j
    assert len(bulk_calls(w, "create")) == 3 and bulk_calls(w, "file") == []


def file_reads_and_tokens(w):
    """From the first read of an export's file to the last, in order: ("file", code) per read
    and ("token", None) per identity call between them (the reading thread's re-authentications;
    the one worker has one thread)."""
    out = []
    for c in w.mk_calls():
        if re.fullmatch(EXPORT + r"/[0-9a-f-]+/file\.json", c["path"]):
            out.append(("file", c["code"]))
        elif c["path"] == "/identity/oauth/token" and out:
            out.append(("token", None))
    while out and out[-1][0] == "token":
        out.pop()  # another process's (or the merge's) token after the listing
    return out


def list_with_file_fault(w, code, count, state="done"):
    """A program of 5 members listed through the extract only (one worker of one thread) while
    Marketo answers its next `count` reads of the file with error `code`; waits for the
    backfill to end in `state`. Returns (campaign id, program id, the job)."""
    cid, pid = w.campaign(), w.program()
    seed_program(w, pid, 5)
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "error", "code": code,
                                           "path": r"/file\.json$", "count": count}]})
    w.start(workers=1, threads=1, MARKETO_BULK_ABOVE_MEMBERS="0", **FAST)
    return cid, pid, wait_job(w, link(w, pid, cid), state=state)


def test_an_invalid_token_while_reading_the_file_is_fetched_again_once(world):
    """The file endpoint answers 601 (access token invalid) instead of the file: the listing
    fetches one new token and reads the same range again at once (no wait, no second export);
    every member is merged and the 601 is counted."""
    w = world
    cid, pid, j = list_with_file_fault(w, "601", 1)
    assert j["counts"]["listed"]["marketo"] == 5 and j["error"] is None, j
    assert file_reads_and_tokens(w) == [("file", "601"), ("token", None), ("file", None)]
    files = bulk_calls(w, "file")
    size = w.mk.ctl("GET", "bulk")["jobs"][0]["fileSize"]
    assert (files[1]["http"], files[1]["range"]) == (206, f"bytes=0-{size - 1}"), files
    assert len(bulk_calls(w, "create")) == 1
    assert w.metric("campaign_sync_crm_errors_total", target="marketo", code="601") == 1
    w.wait_settled(timeout=60)
    assert len(w.sf_members(cid)) == 5 and len(w.mk_members(pid)) == 5
    no_dead_letters(w)


def test_a_token_refused_again_while_reading_the_file_is_not_fetched_twice(world):
    """601 to the read and again to the read with a new token: one re-authentication only (a
    read is sent again at once once, not in a loop); the listing is tried again later from its
    cursor with the token it has, and ends with every member merged."""
    w = world
    cid, pid, j = list_with_file_fault(w, "601", 2)
    assert j["counts"]["listed"]["marketo"] == 5 and j["error"] is None, j
    assert file_reads_and_tokens(w) == [("file", "601"), ("token", None), ("file", "601"),
                                        ("file", None)]
    assert len(bulk_calls(w, "create")) == 1
    w.wait_settled(timeout=60)
    assert len(w.sf_members(cid)) == 5 and len(w.mk_members(pid)) == 5
    no_dead_letters(w)


def test_a_spent_daily_quota_while_reading_the_file_fails_the_job_saying_why(world):
    """607 (daily quota reached) to the read of the file: no new token, no second read; the
    pause until Marketo's reset is recorded for every process (cs:quota:marketo) and the job
    fails saying the allowance is spent and to start it again once it has room."""
    w = world
    cid, pid, j = list_with_file_fault(w, "607", 1, state="failed")
    assert "daily API quota is spent (607)" in j["error"], j
    assert "start the job again once it has room" in j["error"], j
    assert file_reads_and_tokens(w) == [("file", "607")]
    assert w.redis.cmd("PTTL", "cs:quota:marketo") > 0
    assert w.metric("campaign_sync_crm_errors_total", target="marketo", code="607") == 1
    assert w.sf_members(cid) == {}
