"""Where the real CRM APIs leave the happy path (issue 16): the service's own deletions seen
again by the deleted-records poll, that poll's window, purges and gaps of Salesforce's delete
log, and spent daily API allowances on either side.

The simulators play what Salesforce's and Marketo's documentation says: getDeleted in whole
minutes, reporting only minutes that have ended, no more than 15 days back, a delete log that
a purge shortens (earliestDateAvailable, INVALID_REPLICATION_DATE); Marketo's 607 with its
reset at midnight US Central time; Salesforce's REQUEST_LIMIT_EXCEEDED and `limits`. Set-up as
in test_s2m: one ingest and two worker processes on one Redis."""
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import cs
from cs import DELETE_CALL, at, hook, no_dead_letters

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)

DELETED_PATH = "/sobjects/CampaignMember/deleted/"


@pytest.fixture
def world(world):
    """Set up as in test_s2m.py (cs.TOWARD_MARKETO)."""
    return world.defaults(**cs.TOWARD_MARKETO)


def sf_member_by_id(w, campaign, p):
    ms = [m for m in w.sf.ctl("GET", f"members?campaignId={campaign}")["members"]
          if (m.get("LeadId") or m.get("ContactId") or "")[:15] == p.sf_id[:15]]
    assert len(ms) <= 1, ms
    return ms[0] if ms else None


def wait_sf(w, campaign, p, status):
    """Waits until p's campaign member has `status` (None: no member); returns the record."""
    def ok():
        m = sf_member_by_id(w, campaign, p)
        return (m is None) if status is None else (m is not None and m["Status"] == status)
    cs.wait_until(ok, T, what=f"{p.email} to be {status!r} in {campaign}\n{w.stderr()}")
    return sf_member_by_id(w, campaign, p)


def deleted_polls(w, since=0):
    return [c for c in w.sf.calls(since) if DELETED_PATH in c["path"]]


def parse(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def reported(w, cm_id, since=0):
    """Whether a deleted-records poll has reported this CampaignMember."""
    return any(r["id"][:15] == cm_id[:15]
               for c in deleted_polls(w, since) if c["status"] == 200
               for r in c["response"]["deletedRecords"])


def member_since_earlier(w, cid, pid, p, status="Registered"):
    """p a member on both sides from a Marketo change of some minutes ago (at(0)), so that a
    deletion backdated by a minute or two (?deletedDate=) is still the newer change."""
    w.mk.ctl("POST", "seed", {"members": [{"programId": pid, "leadId": p.lead,
                                           "statusName": status}]})
    w.send(hook(p, at(0), program=pid, status=status))
    return wait_sf(w, cid, p, status)


def delete_in_salesforce(w, member, ago):
    when = (datetime.now(timezone.utc) - ago).isoformat().replace("+", "%2B")
    w.sf.ctl("DELETE", f"members/{member['Id']}?deletedDate={when}")


def set_cursor(w, when):
    w.redis.cmd("SET", "cs:kv:sf-deleted-start", when.strftime("%Y-%m-%dT%H:%M:%SZ"))


def mk_removals(w, lead, since):
    return [c for c in w.mk_calls(since) if c["method"] == "POST" and DELETE_CALL.match(c["path"])
            and any(i["leadId"] == lead for i in c["body"]["input"])]


# ------------------------------------------------------------------ our own deletions

def test_remove_and_readd_within_a_minute_keeps_the_newest_change(world):
    """Marketo: remove a member, add it again. The service deletes the campaign member for the
    removal; the deleted-records poll reports that deletion (dated after the re-add was made)
    once its minute has ended: it is the service's own, an echo, never a removal to apply."""
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.sf_person("readd", kind="lead")
    w.start(SF_DELETED_POLL_INTERVAL_S=1)
    w.map(pid, cid, enabled=True)
    w.send(hook(p, at(0), program=pid, status="Registered"))
    first = wait_sf(w, cid, p, "Registered")
    w.send(hook(p, at(1), program=pid, status="Not in Program"))
    wait_sf(w, cid, p, None)
    w.send(hook(p, at(2), program=pid, status="Attended"))
    second = wait_sf(w, cid, p, "Attended")
    assert second["Id"] != first["Id"]
    cs.wait_until(w.queue_empty, T, what="the three changes handled")
    echo0 = w.metric("campaign_sync_events_dropped_total", reason="echo")
    seq, sf_seq = w.mk_seq(), w.sf.ctl("GET", "calls")["next"]

    # A minute later, getDeleted reports the first member's deletion.
    w.sf.ctl("POST", "age_deleted", {"seconds": 60})
    cs.wait_until(lambda: reported(w, first["Id"], sf_seq), T, what="the poll to report it")
    w.wait_metric("campaign_sync_events_dropped_total", echo0 + 1, reason="echo")
    time.sleep(1.0)  # polls go on: the deletion is never queued as a change
    assert w.redis.cmd("KEYS", "cs:dedup:sf:del:*") == []
    cs.wait_until(w.queue_empty, T, what="nothing left to handle")
    assert sf_member_by_id(w, cid, p)["Id"] == second["Id"]
    assert sf_member_by_id(w, cid, p)["Status"] == "Attended"
    assert mk_removals(w, p.lead, seq) == []
    assert w.record(cid, p.lead)["sf_member"] == "1"

    # Without the record of our own deletion (e.g. it expired), the deletion of a member that
    # a newer one replaced is still older than it: dropped as stale, nothing removed.
    stale0 = w.metric("campaign_sync_events_dropped_total", reason="stale")
    assert w.redis.cmd("DEL", "cs:sfdel:" + first["Id"][:15]) == 1
    w.wait_metric("campaign_sync_events_dropped_total", stale0 + 1, reason="stale")
    assert len(w.redis.cmd("KEYS", "cs:dedup:sf:del:*")) == 1
    cs.wait_until(w.queue_empty, T, what="nothing left to handle")
    assert sf_member_by_id(w, cid, p)["Id"] == second["Id"]
    assert mk_removals(w, p.lead, seq) == []
    no_dead_letters(w)


# ------------------------------------------------------------------ the poll's window

def test_deleted_polls_every_interval_with_overlapping_encoded_windows(world):
    w = world
    w.start(SF_DELETED_POLL_INTERVAL_S=1)
    cs.wait_until(lambda: len(deleted_polls(w)) >= 4, T, what="four deleted-records polls")
    polls = deleted_polls(w)
    assert all(c["status"] == 200 for c in polls), [c["response"] for c in polls]
    for c in polls:
        # "+00:00" arrives only when the '+' was sent URL-encoded (a bare '+' is a space).
        start, end = c["query"]["start"], c["query"]["end"]
        assert start.endswith("+00:00") and end.endswith("+00:00"), c["query"]
        s, e = parse(start).replace(second=0), parse(end).replace(second=0)
        assert e - s >= timedelta(minutes=2), c["query"]
    for a, b in zip(polls, polls[1:]):
        assert parse(b["query"]["start"]) <= parse(a["response"]["latestDateCovered"]), (a, b)
    assert w.metric("campaign_sync_salesforce_deleted_gaps_total") == 0


def test_removal_in_salesforce_while_sync_is_disabled_waits_in_the_queue(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.sf_person("offdel", kind="lead")
    w.start(SF_DELETED_POLL_INTERVAL_S=1)
    w.map(pid, cid, enabled=True)
    m = member_since_earlier(w, cid, pid, p)
    cs.wait_until(w.queue_empty, T, what="the change handled")
    w.admin("PUT", "/v1/sync", {"enabled": False}, expect=200)
    sf_seq = w.sf.ctl("GET", "calls")["next"]
    delete_in_salesforce(w, m, timedelta(seconds=90))
    cs.wait_until(lambda: reported(w, m["Id"], sf_seq), T, what="the poll while sync is off")
    cs.wait_until(lambda: cs.queue_len(w.redis) >= 1, T, what="the removal queued")
    time.sleep(1.5)
    assert w.mk_status(pid, p.lead) == "Registered", "nothing applied while sync is off"
    w.admin("PUT", "/v1/sync", {"enabled": True}, expect=200)
    w.wait_mk(pid, p.lead, None)
    no_dead_letters(w)


# ------------------------------------------------------------------ gaps in the delete log

@pytest.mark.parametrize("mode", ["error", "answer"])
def test_purged_delete_log_is_a_gap_healed_by_reconciliation(world, mode):
    """A purge took deletions the service had not read yet. Salesforce then either refuses the
    window (INVALID_REPLICATION_DATE) or answers with an earliestDateAvailable past it: either
    way the gap is counted and every mapping is reconciled, which finds the removal."""
    w = world
    cid, pid = w.campaign(), w.program()
    p, q = w.sf_people(2, "gap", kind="lead")
    w.start(SF_DELETED_POLL_INTERVAL_S=1)
    w.map(pid, cid, enabled=True)
    mp = member_since_earlier(w, cid, pid, p)
    member_since_earlier(w, cid, pid, q)
    w.sf.ctl("POST", "config", {"deletedStartBeforeEarliest": mode})
    now = datetime.now(timezone.utc)
    delete_in_salesforce(w, mp, timedelta(minutes=5))
    w.sf.ctl("POST", "purge_deleted", {"before": (now - timedelta(minutes=3)).isoformat()})
    set_cursor(w, now - timedelta(minutes=10))
    w.wait_metric("campaign_sync_salesforce_deleted_gaps_total", 1)
    w.wait_mk(pid, p.lead, None)
    assert w.mk_status(pid, q.lead) == "Registered"
    if mode == "error":
        assert any(c["status"] == 400 and c["response"][0]["errorCode"] == "INVALID_REPLICATION_DATE"
                   for c in deleted_polls(w))
    # The poll goes on from where Salesforce's log starts: no further gaps, answers are 200.
    sf_seq = w.sf.ctl("GET", "calls")["next"]
    cs.wait_until(lambda: len(deleted_polls(w, sf_seq)) >= 2, T, what="two more polls")
    assert all(c["status"] == 200 for c in deleted_polls(w, sf_seq))
    assert w.metric("campaign_sync_salesforce_deleted_gaps_total") == 1
    no_dead_letters(w)


def test_cursor_older_than_fifteen_days_starts_within_them(world):
    w = world
    w.start(SF_DELETED_POLL_INTERVAL_S=1)
    cs.wait_until(lambda: deleted_polls(w), T, what="a first poll")
    sf_seq = w.sf.ctl("GET", "calls")["next"]
    set_cursor(w, datetime.now(timezone.utc) - timedelta(days=20))
    cs.wait_until(lambda: deleted_polls(w, sf_seq), T, what="a poll from the old cursor")
    c = deleted_polls(w, sf_seq)[0]
    assert c["status"] == 200, c["response"]
    assert datetime.now(timezone.utc) - parse(c["query"]["start"]) <= timedelta(days=15)
    w.wait_metric("campaign_sync_salesforce_deleted_gaps_total", 1)


def test_too_many_deleted_ids_asks_shorter_windows(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p, q = w.sf_people(2, "idlim", kind="lead")
    w.start(SF_DELETED_POLL_INTERVAL_S=1)
    w.map(pid, cid, enabled=True)
    mp, mq = member_since_earlier(w, cid, pid, p), member_since_earlier(w, cid, pid, q)
    w.sf.ctl("POST", "config", {"deletedIdLimit": 1})
    now = datetime.now(timezone.utc)
    delete_in_salesforce(w, mp, timedelta(minutes=9))
    delete_in_salesforce(w, mq, timedelta(minutes=4))
    set_cursor(w, now - timedelta(minutes=12))
    w.wait_mk(pid, p.lead, None)
    w.wait_mk(pid, q.lead, None)
    limited = [c for c in deleted_polls(w) if c["status"] == 400]
    assert limited and all(c["response"][0]["errorCode"] == "EXCEEDED_ID_LIMIT" for c in limited)
    assert w.metric("campaign_sync_salesforce_deleted_gaps_total") == 0
    no_dead_letters(w)


# ------------------------------------------------------------------ spent daily allowances

def next_central_midnight(now):
    local = now.astimezone(ZoneInfo("America/Chicago"))
    nxt = (local + timedelta(days=1)).date()
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=ZoneInfo("America/Chicago"))


def rest_calls(w, since):
    return [c for c in w.mk_calls(since) if c["path"].startswith("/rest/")]


def readyz_checks(svc):
    r = svc.req("GET", "/readyz")
    assert r.status == 200, r.body
    return r.json()["checks"]


def test_marketo_daily_quota_waits_for_its_reset_then_resumes(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p, q, r = w.sf_people(3, "quota", kind="lead")
    w.start()
    w.map(pid, cid, enabled=True)
    w.sf_human(cid, p, "Registered")
    w.wait_mk(pid, p.lead, "Registered")
    retries0 = w.metric("campaign_sync_retries_total", target="marketo")
    # The day's quota is spent: the next call answers 607.
    w.mk.ctl("POST", "config", {"dailyQuota": w.mk_stats()["dailyCalls"]})
    seq = w.mk_seq()
    w.sf_human(cid, q, "Registered")
    cs.wait_until(lambda: w.redis.cmd("EXISTS", "cs:quota:marketo") == 1, T, what="the pause")
    now = datetime.now(timezone.utc)
    left = w.redis.cmd("PTTL", "cs:quota:marketo") / 1000
    want = (next_central_midnight(now) - now).total_seconds()
    assert abs(left - want) < 10, (left, want)
    # More changes meanwhile: no call reaches Marketo, nothing is retried or dead-lettered.
    calls_at_pause = len(rest_calls(w, seq))
    w.sf_human(cid, r, "Attended")
    cs.wait_until(lambda: cs.queue_pending(w.redis) == 0 and
                  w.redis.cmd("LLEN", "cs:parked:quota:marketo") == 2, T, what="both parked")
    time.sleep(1.0)
    assert len(rest_calls(w, seq)) == calls_at_pause, rest_calls(w, seq)
    assert [c["code"] for c in rest_calls(w, seq)].count("607") >= 1
    for svc in [w.ingest] + w.workers:
        assert readyz_checks(svc)["marketo_quota"].startswith("waiting"), readyz_checks(svc)
    assert w.metric("campaign_sync_crm_quota_waiting", target="marketo") >= 1
    assert w.metric("campaign_sync_retries_total", target="marketo") == retries0
    no_dead_letters(w)

    # Midnight in Chicago: the quota is back. (The pause is shortened instead of waited for.)
    w.mk.ctl("POST", "config", {"dailyQuota": 50000})
    w.redis.cmd("PEXPIRE", "cs:quota:marketo", 200)
    w.wait_mk(pid, q.lead, "Registered")
    w.wait_mk(pid, r.lead, "Attended")
    assert readyz_checks(w.workers[0])["marketo_quota"] == "ok"
    assert w.metric("campaign_sync_crm_quota_waiting", target="marketo") == 0
    no_dead_letters(w)


@pytest.mark.parametrize("limits_when_spent", ["answer", "refuse"])
def test_salesforce_allowance_spent_waits_probes_limits_then_resumes(world, limits_when_spent):
    w = world
    cid, pid = w.campaign(), w.program()
    p, q = w.sf_people(2, "allow", kind="lead")
    w.start()
    w.map(pid, cid, enabled=True)
    w.sf.ctl("POST", "config", {"apiLimit": 100000, "limitsWhenSpent": limits_when_spent})
    w.send(hook(p, at(0), program=pid, status="Registered"))
    wait_sf(w, cid, p, "Registered")
    w.sf.ctl("POST", "api_usage", {"used": 100000})
    sf_seq = w.sf.ctl("GET", "calls")["next"]
    w.send(hook(q, at(1), program=pid, status="Registered"))
    cs.wait_until(lambda: w.redis.cmd("EXISTS", "cs:quota:salesforce") == 1, T, what="the pause")
    cs.wait_until(lambda: w.redis.cmd("LLEN", "cs:parked:quota:salesforce") == 1, T,
                  what="the change parked")
    paused_seq = w.sf.ctl("GET", "calls")["next"]
    time.sleep(1.0)
    assert w.sf.calls(paused_seq) == [], "no call while the allowance is spent"
    for svc in [w.ingest] + w.workers:
        assert readyz_checks(svc)["salesforce_quota"].startswith("waiting")

    # The probe time comes: `limits` says the allowance is still spent; the wait goes on.
    w.redis.cmd("PEXPIRE", "cs:quota:salesforce", 100)
    cs.wait_until(lambda: any(c["path"].endswith("/limits") for c in w.sf.calls(sf_seq)), T,
                  what="a probe of limits")
    cs.wait_until(lambda: w.redis.cmd("EXISTS", "cs:quota:salesforce") == 1, T,
                  what="the pause renewed")
    # Only the probe (and perhaps a new token: identity calls are no API calls).
    assert {c["path"].rsplit("/", 1)[-1] for c in w.sf.calls(paused_seq)} - {"token"} == {"limits"}
    # Other integrations' calls age out of the rolling 24 hours: the next probe finds room.
    w.sf.ctl("POST", "api_usage", {"used": 10})
    w.redis.cmd("PEXPIRE", "cs:quota:salesforce", 100)
    wait_sf(w, cid, q, "Registered")
    assert readyz_checks(w.workers[0])["salesforce_quota"] == "ok"
    no_dead_letters(w)
