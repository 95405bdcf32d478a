"""The copy of a program's channel and costs to its campaign (F2/F3) when it fails (issue 16):
a copy that Salesforce or Marketo refuses (a Type outside a restricted picklist, missing
rights, a deleted campaign, Marketo 603/1013, or a transient error) backs off per mapping up
to PROGRAM_POLL_INTERVAL_S instead of being tried again every poller tick (twice a second);
the last error and its time show on GET /v1/mappings/{programId} and the failures are
counted in campaign_sync_program_copy_errors_total{target,code}; once the cause is gone the
copy succeeds and the error clears.

Real Redis, both CRM simulators and the real binary as an `ingest` process (the admin API)
and a `worker` process (its poller does the copies). Outcomes are read where a user would see them: the calls each simulator
received, the campaign in Salesforce, the mapping in the admin API and /metrics."""
import time

import pytest

import cs

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)
INTERVAL_S = 3  # PROGRAM_POLL_INTERVAL_S of these tests: the longest pause between tries
WINDOW_S = 2 * INTERVAL_S  # how long the tries of a failing copy are counted
TICKS_PER_WINDOW = WINDOW_S * 2  # what a retry on every poller tick (500 ms) would make
COSTS = [{"startDate": "2026-11-01", "cost": 200}, {"startDate": "2026-11-02", "cost": 50}]
PICKLIST = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


@pytest.fixture
def world(world):
    """An `ingest` process without CRM credentials answers the admin API (so a mapping is
    stored without reading the program: every Marketo program read is the poller's), and a
    `worker` process runs the poller."""
    return world.defaults(workers=1, ingest_crm=False, quiet=True,
                          PROGRAM_POLL_INTERVAL_S=INTERVAL_S)


def program(w, channel="Webinar"):
    return w.program(channel=channel, costs=COSTS)


def map_forced(w, pid, cid):
    return w.map(pid, cid, enabled=True, force=True)


def mapping(w, pid):
    r = w.admin("GET", f"/v1/mappings/{pid}")
    assert r.status == 200, (r.status, r.body)
    return r.json()


def patches(w, cid):
    """The PATCH calls on the campaign that Salesforce received (path ends in its id)."""
    return [c for c in w.sf.calls() if c["method"] == "PATCH"
            and c["path"].endswith(f"/sobjects/Campaign/{cid}")]


def program_reads(w, pid):
    return [c for c in w.mk.calls() if c["path"] == f"/rest/asset/v1/program/{pid}.json"]


def copy_errors(w, target, code):
    return w.process_metric("campaign_sync_program_copy_errors_total", svc=w.worker,
                            target=target, code=code) or 0


def sf_token(w):
    r = cs.request(w.sf.port, "POST", "/services/oauth2/token",
                   "grant_type=client_credentials&client_id=sim-sf-client&"
                   "client_secret=sim-sf-secret",
                   {"Content-Type": "application/x-www-form-urlencoded"})
    return r.json()["access_token"]


def iso_ms(text):
    from datetime import datetime
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


def wait_error(w, pid, crm, code):
    """Waits for the mapping to show a copy error from crm with code; returns the mapping."""
    def shown():
        m = mapping(w, pid)
        e = m.get("lastCopyError")
        return m if e and (e.get("crm"), e.get("code")) == (crm, code) else None
    try:
        return cs.wait_until(shown, T, interval=0.1, what=f"lastCopyError {crm} {code}")
    except AssertionError:
        raise AssertionError(f"mapping {mapping(w, pid)}\n{w.worker.stderr()[-3000:]}") from None


def tries_in_window(count):
    """count() at the end of a window of WINDOW_S seconds less at its start. The window is how
    a failing copy's pace is seen: no outcome to wait for, only calls that must not come."""
    before = count()
    time.sleep(WINDOW_S)
    return count() - before


def assert_backs_off(tries):
    # Tried again (not given up), at most once per pause of up to INTERVAL_S (the first
    # pauses of a transient failure are shorter): nowhere near a try per 500 ms tick.
    assert 1 <= tries <= WINDOW_S // 1.5 + 1, \
        f"{tries} tries in {WINDOW_S} s (a try per tick would make {TICKS_PER_WINDOW})"


def wait_cleared(w, pid):
    cs.wait_until(lambda: mapping(w, pid)["lastCopyError"] is None, T, interval=0.1,
                  what="lastCopyError to clear")
    m = mapping(w, pid)
    assert m["lastCopyError"] is None and m["lastCopyErrorAt"] is None, m


def wait_copied(w, cid, type_):
    cs.wait_until(lambda: (w.campaign_record(cid)["Type"], w.campaign_record(cid)["ActualCost"])
                  == (type_, 250), T, interval=0.1, what=f"campaign Type {type_!r}, cost 250")


# ------------------------------------------------------------------ Salesforce refuses

def test_restricted_type_backs_off_shows_the_error_and_clears_once_allowed(world):
    w = world
    cid, pid = w.campaign(), program(w)
    # The org restricts Campaign.Type to values without the program's channel "Webinar".
    w.sf.ctl("POST", "config", {"campaignTypeRestricted": True,
                                "campaignTypeValues": ["Email", "Conference"]})
    w.start()
    t0 = int(time.time() * 1000)
    answer = map_forced(w, pid, cid)

    cs.wait_until(lambda: patches(w, cid), T, interval=0.1, what="the first PATCH")
    assert_backs_off(tries_in_window(lambda: len(patches(w, cid))))
    refused = patches(w, cid)
    assert all(c["status"] == 400 and c["body"] == {"Type": "Webinar", "ActualCost": 250}
               for c in refused), refused

    m = wait_error(w, pid, "salesforce", PICKLIST)
    assert m["lastCopyError"]["message"] == \
        "Type: bad value for restricted picklist field: Webinar", m
    assert t0 - 1000 <= iso_ms(m["lastCopyErrorAt"]) <= int(time.time() * 1000) + 1000, m
    # The PUT answered before any copy: no error then.
    assert answer["lastCopyError"] is None and answer["lastCopyErrorAt"] is None, answer
    # Every refusal counted once, by CRM and Salesforce's errorCode.
    cs.wait_until(lambda: copy_errors(w, "salesforce", PICKLIST) == len(patches(w, cid)), T,
                  interval=0.1, what="the metric to count every refused PATCH")
    # The list shows it too.
    listed = w.admin("GET", "/v1/mappings").json()["items"]
    assert [x["lastCopyError"]["code"] for x in listed] == [PICKLIST], listed
    assert w.campaign_record(cid)["Type"] is None

    # An admin adds "Webinar" to the picklist: the next try copies, and the error clears.
    w.sf.ctl("POST", "config", {"campaignTypeValues": ["Email", "Conference", "Webinar"]})
    wait_copied(w, cid, "Webinar")
    wait_cleared(w, pid)
    assert patches(w, cid)[-1]["status"] == 204


def test_a_channel_change_ends_a_restricted_type_refusal(world):
    w = world
    cid, pid = w.campaign(), program(w, channel="Online Advertising")
    w.sf.ctl("POST", "config", {"campaignTypeRestricted": True})  # the standard values
    w.start()
    map_forced(w, pid, cid)
    m = wait_error(w, pid, "salesforce", PICKLIST)
    assert "Online Advertising" in m["lastCopyError"]["message"], m
    w.mk.ctl("POST", f"programs/{pid}", {"channel": "Webinar"})
    wait_copied(w, cid, "Webinar")
    wait_cleared(w, pid)
    assert copy_errors(w, "salesforce", PICKLIST) >= 1


def test_missing_rights_back_off_until_granted(world):
    w = world
    cid, pid = w.campaign(), program(w)
    w.sf.ctl("POST", "config", {"permissions": {"Campaign": {"updateable": False}}})
    w.start()
    map_forced(w, pid, cid)
    code = "INSUFFICIENT_ACCESS_OR_READONLY"
    wait_error(w, pid, "salesforce", code)
    assert_backs_off(tries_in_window(lambda: len(patches(w, cid))))
    cs.wait_until(lambda: copy_errors(w, "salesforce", code) == len(patches(w, cid)), T, interval=0.1,
                  what="the metric to count every refused PATCH")
    w.sf.ctl("POST", "config", {"permissions": {"Campaign": {"updateable": True}}})
    wait_copied(w, cid, "Webinar")
    wait_cleared(w, pid)


def test_a_deleted_campaign_backs_off_and_a_new_mapping_copies_at_once(world):
    w = world
    cid, pid = w.campaign(), program(w)
    r = cs.request(w.sf.port, "DELETE", f"/services/data/v62.0/sobjects/Campaign/{cid}", None,
                   {"Authorization": f"Bearer {sf_token(w)}"})
    assert r.status == 204, r.body
    w.start()
    map_forced(w, pid, cid)
    m = wait_error(w, pid, "salesforce", "ENTITY_IS_DELETED")
    assert m["lastCopyError"]["message"] == "entity is deleted", m
    assert_backs_off(tries_in_window(lambda: len(patches(w, cid))))
    # Mapping the program to a live campaign copies at once, whatever the backoff.
    other = w.campaign("Webinar again")
    map_forced(w, pid, other)
    wait_copied(w, other, "Webinar")
    wait_cleared(w, pid)


# ------------------------------------------------------------------ Marketo refuses

@pytest.mark.parametrize("code,message", [("603", "Access denied"), ("1013", "Object not found"),
                                          ("608", "API Temporarily Unavailable")])
def test_marketo_program_read_errors_back_off(world, code, message):
    """603 (no rights) and 1013 (no such object) are permanent, 608 transient: each backs off."""
    w = world
    cid, pid = w.campaign(), program(w)
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "error", "code": code, "count": 0,
                                           "method": "GET",
                                           "path": f"^/rest/asset/v1/program/{pid}\\.json$"}]})
    w.start()
    map_forced(w, pid, cid)
    cs.wait_until(lambda: program_reads(w, pid), T, interval=0.1, what="the first program read")
    assert_backs_off(tries_in_window(lambda: len(program_reads(w, pid))))
    m = wait_error(w, pid, "marketo", code)
    assert m["lastCopyError"]["message"] == message, m
    refused = [c for c in program_reads(w, pid) if c["code"] == code]
    assert refused == program_reads(w, pid), "every read was refused while the fault held"
    cs.wait_until(lambda: copy_errors(w, "marketo", code) == len(program_reads(w, pid)), T,
                  interval=0.1, what="the metric to count every refused read")
    assert patches(w, cid) == []

    w.mk.ctl("DELETE", "faults")
    wait_copied(w, cid, "Webinar")
    wait_cleared(w, pid)
