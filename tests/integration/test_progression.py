"""Marketo progression as documented (issue 16), end to end: real Redis, both CRM simulators
and the real binary, set up as in test_s2m.py.

Adobe's "Program Members" page (Program Member Status): a status call skips a lead (1037)
when its current status has a GREATER step than the new one, or it already has that status;
a move to another status on the SAME step applies. The service does not reason about steps:
it sends the status and, after a 1037, reads what Marketo holds to tell "already there" from
a backward move. So a same-step move in Salesforce must reach Marketo and count as applied,
both ways, while a move to a lower step is still dropped as `backward_progression`."""
import pytest

import cs
from cs import no_dead_letters

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)

# A channel with two statuses on step 40, seeded through the Marketo simulator's control API.
CHANNEL = "Same Step Webinar"
STEPS = [("Invited", 10, False), ("Registered", 20, False), ("Attended", 40, True),
         ("Attended On-demand", 40, True)]


@pytest.fixture
def world(world):
    """Set up as in test_s2m.py (cs.TOWARD_MARKETO)."""
    return world.defaults(**cs.TOWARD_MARKETO)


def test_same_step_moves_apply_both_ways_and_a_lower_step_is_backward(world):
    w = world
    w.mk.ctl("POST", "seed", {"channels": [{"name": CHANNEL, "progressionStatuses": [
        {"name": n, "step": s, "success": ok} for n, s, ok in STEPS]}]})
    pid = w.program("Same step webinar", channel=CHANNEL)
    cid = w.campaign("Same step webinar", statuses=tuple(n for n, _, _ in STEPS))
    p = w.sf_person("samestep", kind="contact")
    w.start()
    w.map(pid, cid, enabled=True)
    w.sf_human(cid, p, "Attended")
    w.wait_mk(pid, p.lead, "Attended")
    cs.wait_until(w.queue_empty, T, what="the first change handled")
    back0 = w.metric("campaign_sync_events_dropped_total", reason="backward_progression")
    applied0 = w.metric("campaign_sync_events_applied_total", target="marketo")
    seq = w.mk_seq()

    # Attended -> Attended On-demand (same step 40): Marketo applies it.
    w.sf_human(cid, p, "Attended On-demand")
    w.wait_mk(pid, p.lead, "Attended On-demand")
    w.wait_metric("campaign_sync_events_applied_total", applied0 + 1, target="marketo")
    # ... and back again.
    w.sf_human(cid, p, "Attended")
    w.wait_mk(pid, p.lead, "Attended")
    w.wait_metric("campaign_sync_events_applied_total", applied0 + 2, target="marketo")
    cs.wait_until(w.queue_empty, T, what="the same-step moves handled")
    calls = [(c["body"]["statusName"], [i["leadId"] for i in c["body"]["input"]])
             for c in w.status_calls(seq)]
    assert calls == [("Attended On-demand", [p.lead]), ("Attended", [p.lead])], calls
    assert w.metric("campaign_sync_events_dropped_total", reason="backward_progression") == back0
    rec = w.record(cid, p.lead)
    assert (rec["mkto_member"], rec["mkto_status"]) == ("1", "Attended"), rec
    assert (rec["sf_member"], rec["sf_status"]) == ("1", "Attended"), rec

    # Attended (40) -> Registered (20): the documented backward case, skipped by Marketo.
    w.sf_human(cid, p, "Registered")
    w.wait_metric("campaign_sync_events_dropped_total", back0 + 1, reason="backward_progression")
    cs.wait_until(w.queue_empty, T, what="the backward move handled")
    assert w.mk_status(pid, p.lead) == "Attended"
    assert w.metric("campaign_sync_events_applied_total", target="marketo") == applied0 + 2
    assert [c["body"]["statusName"] for c in w.status_calls(seq)] == \
        ["Attended On-demand", "Attended", "Registered"]
    sf_members = w.sf.ctl("GET", f"members?campaignId={cid}")["members"]
    assert [m["Status"] for m in sf_members] == ["Registered"], sf_members
    no_dead_letters(w)
