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
WEBINAR = ["Invited", "Registered", "No Show", "Attended", "Attended On-demand"]
COSTS = [{"startDate": "2026-11-01", "cost": 200}, {"startDate": "2026-11-02", "cost": 50}]
QUIET = {"SF_DELETED_POLL_INTERVAL_S": "86400", "RECONCILE_INTERVAL_S": "604800"}
PICKLIST = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


class World:
    """An `ingest` process without CRM credentials answers the admin API (so a mapping is
    stored without reading the program: every Marketo program read is the poller's), and a
    `worker` process runs the poller."""

    def __init__(self, redis, services, sf, mk):
        self.redis, self.services, self.sf, self.mk = redis, services, sf, mk
        self.svc = self.worker = None

    def start(self):
        env = cs.crm_env(self.sf, self.mk, PROGRAM_POLL_INTERVAL_S=INTERVAL_S, WORKERS=1, **QUIET)
        self.svc = self.services(self.redis.url, command="ingest", name="ingest")
        self.worker = self.services(self.redis.url, command="worker", name="worker", **env)
        return self

    def campaign(self, name="Webinar"):
        return self.sf.ctl("POST", "seed", {"campaigns": [{
            "Name": name, "IsActive": True,
            "statuses": [{"Label": s, "IsDefault": s == "Invited", "HasResponded": s == "Attended"}
                         for s in WEBINAR]}]})["campaigns"][0]["Id"]

    def program(self, channel="Webinar"):
        return self.mk.ctl("POST", "seed", {"programs": [
            {"name": "Webinar Nov", "channel": channel, "costs": COSTS}]})["programs"][0]["id"]

    def admin(self, method, path, body=None):
        return self.svc.req(method, path, body, cs.admin_headers())

    def map(self, pid, cid):
        r = self.admin("PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True,
                                                      "force": True})
        assert r.status in (200, 201), (r.status, r.body)
        return r.json()

    def mapping(self, pid):
        r = self.admin("GET", f"/v1/mappings/{pid}")
        assert r.status == 200, (r.status, r.body)
        return r.json()

    def campaign_record(self, cid):
        return next(c for c in self.sf.ctl("GET", "state")["campaigns"] if c["Id"] == cid)

    def patches(self, cid):
        """The PATCH calls on the campaign that Salesforce received (path ends in its id)."""
        return [c for c in self.sf.calls() if c["method"] == "PATCH"
                and c["path"].endswith(f"/sobjects/Campaign/{cid}")]

    def program_reads(self, pid):
        return [c for c in self.mk.calls() if c["path"] == f"/rest/asset/v1/program/{pid}.json"]

    def metric(self, target, code):
        text = self.worker.req("GET", "/metrics").body.decode()
        return cs.metric_value(text, "campaign_sync_program_copy_errors_total", target=target,
                               code=code) or 0

    def sf_token(self):
        r = cs.request(self.sf.port, "POST", "/services/oauth2/token",
                       "grant_type=client_credentials&client_id=sim-sf-client&"
                       "client_secret=sim-sf-secret",
                       {"Content-Type": "application/x-www-form-urlencoded"})
        return r.json()["access_token"]


@pytest.fixture
def world(redis, services, sf_sim, mkto_sim):
    return World(redis, services, sf_sim, mkto_sim)


def iso_ms(text):
    from datetime import datetime
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


def wait_error(w, pid, crm, code):
    """Waits for the mapping to show a copy error from crm with code; returns the mapping."""
    def shown():
        m = w.mapping(pid)
        e = m.get("lastCopyError")
        return m if e and (e.get("crm"), e.get("code")) == (crm, code) else None
    try:
        return cs.wait_until(shown, T, interval=0.1, what=f"lastCopyError {crm} {code}")
    except AssertionError:
        raise AssertionError(f"mapping {w.mapping(pid)}\n{w.worker.stderr()[-3000:]}") from None


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
    cs.wait_until(lambda: w.mapping(pid)["lastCopyError"] is None, T, interval=0.1,
                  what="lastCopyError to clear")
    m = w.mapping(pid)
    assert m["lastCopyError"] is None and m["lastCopyErrorAt"] is None, m


def wait_copied(w, cid, type_):
    cs.wait_until(lambda: (w.campaign_record(cid)["Type"], w.campaign_record(cid)["ActualCost"])
                  == (type_, 250), T, interval=0.1, what=f"campaign Type {type_!r}, cost 250")


# ------------------------------------------------------------------ Salesforce refuses

def test_restricted_type_backs_off_shows_the_error_and_clears_once_allowed(world):
    w = world
    cid, pid = w.campaign(), w.program()
    # The org restricts Campaign.Type to values without the program's channel "Webinar".
    w.sf.ctl("POST", "config", {"campaignTypeRestricted": True,
                                "campaignTypeValues": ["Email", "Conference"]})
    w.start()
    t0 = int(time.time() * 1000)
    answer = w.map(pid, cid)

    cs.wait_until(lambda: w.patches(cid), T, interval=0.1, what="the first PATCH")
    assert_backs_off(tries_in_window(lambda: len(w.patches(cid))))
    refused = w.patches(cid)
    assert all(c["status"] == 400 and c["body"] == {"Type": "Webinar", "ActualCost": 250}
               for c in refused), refused

    m = wait_error(w, pid, "salesforce", PICKLIST)
    assert m["lastCopyError"]["message"] == \
        "Type: bad value for restricted picklist field: Webinar", m
    assert t0 - 1000 <= iso_ms(m["lastCopyErrorAt"]) <= int(time.time() * 1000) + 1000, m
    # The PUT answered before any copy: no error then.
    assert answer["lastCopyError"] is None and answer["lastCopyErrorAt"] is None, answer
    # Every refusal counted once, by CRM and Salesforce's errorCode.
    cs.wait_until(lambda: w.metric("salesforce", PICKLIST) == len(w.patches(cid)), T,
                  interval=0.1, what="the metric to count every refused PATCH")
    # The list shows it too.
    listed = w.admin("GET", "/v1/mappings").json()["items"]
    assert [x["lastCopyError"]["code"] for x in listed] == [PICKLIST], listed
    assert w.campaign_record(cid)["Type"] is None

    # An admin adds "Webinar" to the picklist: the next try copies, and the error clears.
    w.sf.ctl("POST", "config", {"campaignTypeValues": ["Email", "Conference", "Webinar"]})
    wait_copied(w, cid, "Webinar")
    wait_cleared(w, pid)
    assert w.patches(cid)[-1]["status"] == 204


def test_a_channel_change_ends_a_restricted_type_refusal(world):
    w = world
    cid, pid = w.campaign(), w.program(channel="Online Advertising")
    w.sf.ctl("POST", "config", {"campaignTypeRestricted": True})  # the standard values
    w.start()
    w.map(pid, cid)
    m = wait_error(w, pid, "salesforce", PICKLIST)
    assert "Online Advertising" in m["lastCopyError"]["message"], m
    w.mk.ctl("POST", f"programs/{pid}", {"channel": "Webinar"})
    wait_copied(w, cid, "Webinar")
    wait_cleared(w, pid)
    assert w.metric("salesforce", PICKLIST) >= 1


def test_missing_rights_back_off_until_granted(world):
    w = world
    cid, pid = w.campaign(), w.program()
    w.sf.ctl("POST", "config", {"permissions": {"Campaign": {"updateable": False}}})
    w.start()
    w.map(pid, cid)
    code = "INSUFFICIENT_ACCESS_OR_READONLY"
    wait_error(w, pid, "salesforce", code)
    assert_backs_off(tries_in_window(lambda: len(w.patches(cid))))
    cs.wait_until(lambda: w.metric("salesforce", code) == len(w.patches(cid)), T, interval=0.1,
                  what="the metric to count every refused PATCH")
    w.sf.ctl("POST", "config", {"permissions": {"Campaign": {"updateable": True}}})
    wait_copied(w, cid, "Webinar")
    wait_cleared(w, pid)


def test_a_deleted_campaign_backs_off_and_a_new_mapping_copies_at_once(world):
    w = world
    cid, pid = w.campaign(), w.program()
    r = cs.request(w.sf.port, "DELETE", f"/services/data/v62.0/sobjects/Campaign/{cid}", None,
                   {"Authorization": f"Bearer {w.sf_token()}"})
    assert r.status == 204, r.body
    w.start()
    w.map(pid, cid)
    m = wait_error(w, pid, "salesforce", "ENTITY_IS_DELETED")
    assert m["lastCopyError"]["message"] == "entity is deleted", m
    assert_backs_off(tries_in_window(lambda: len(w.patches(cid))))
    # Mapping the program to a live campaign copies at once, whatever the backoff.
    other = w.campaign("Webinar again")
    w.map(pid, other)
    wait_copied(w, other, "Webinar")
    wait_cleared(w, pid)


# ------------------------------------------------------------------ Marketo refuses

@pytest.mark.parametrize("code,message", [("603", "Access denied"), ("1013", "Object not found"),
                                          ("608", "API Temporarily Unavailable")])
def test_marketo_program_read_errors_back_off(world, code, message):
    """603 (no rights) and 1013 (no such object) are permanent, 608 transient: each backs off."""
    w = world
    cid, pid = w.campaign(), w.program()
    w.mk.ctl("POST", "faults", {"rules": [{"kind": "error", "code": code, "count": 0,
                                           "method": "GET",
                                           "path": f"^/rest/asset/v1/program/{pid}\\.json$"}]})
    w.start()
    w.map(pid, cid)
    cs.wait_until(lambda: w.program_reads(pid), T, interval=0.1, what="the first program read")
    assert_backs_off(tries_in_window(lambda: len(w.program_reads(pid))))
    m = wait_error(w, pid, "marketo", code)
    assert m["lastCopyError"]["message"] == message, m
    refused = [c for c in w.program_reads(pid) if c["code"] == code]
    assert refused == w.program_reads(pid), "every read was refused while the fault held"
    cs.wait_until(lambda: w.metric("marketo", code) == len(w.program_reads(pid)), T,
                  interval=0.1, what="the metric to count every refused read")
    assert w.patches(cid) == []

    w.mk.ctl("DELETE", "faults")
    wait_copied(w, cid, "Webinar")
    wait_cleared(w, pid)
