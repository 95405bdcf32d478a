"""The time-zone guard (issue 21): Marketo renders {{system.dateTime}} in the account's time
zone without an offset; when MARKETO_TIMEZONE names another zone, every occurredAt is off by
whole hours and "newest wins" compares the wrong times. A webhook whose occurredAt is rendered
in another zone is still accepted and applied, and the service says so: a warning line, the
metric campaign_sync_marketo_timezone_suspect_total{offset_hours} and /readyz's
marketo_timezone "suspect" (in every process with CRM credentials), its log line naming the
likely zone, without failing readiness. Set-up of test_m2s.py."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import cs
from cs import hook

T = 30
WARNING = "marketo: occurredAt is whole hours from the receive time"
METRIC = "campaign_sync_marketo_timezone_suspect_total"


def rendered(zone, delay_s=0):
    """{{system.dateTime}} of a moment delay_s ago, as Marketo renders it for an account in
    `zone` (local time, no offset)."""
    return (datetime.now(ZoneInfo(zone)) - timedelta(seconds=delay_s)).strftime("%Y-%m-%d %H:%M:%S")


def offset_h(zone):
    return int(datetime.now(ZoneInfo(zone)).utcoffset().total_seconds() // 3600)


def warnings(w):
    return [l for s in w.workers for l in s.logs() if l.get("msg") == WARNING]


def readyz_note(svc):
    """/readyz's marketo_timezone: its state there ("ok", "suspect"), and the note itself from
    the log line that answer wrote (/readyz shows states only: issue 17)."""
    r = svc.req("GET", "/readyz")
    assert r.status == 200 and r.json()["status"] == "ready", r.body  # never fails readiness
    state = r.json()["checks"]["marketo_timezone"]
    if state == "ok":
        return state
    assert state == "suspect", r.body
    [*_, line] = [l for l in svc.logs() if l.get("msg") == "readyz: check failing"
                  and l.get("check") == "marketo_timezone"]
    assert line["detail"].startswith("suspect: "), line
    return line["detail"][len("suspect: "):]


def test_wrong_zone_warns_counts_and_shows_in_readyz(world):
    w = world
    cid, pid = w.campaign(), w.program()
    ok, late, wrong = w.mk_people(3, "tz", sf="contact")
    w.start()  # MARKETO_TIMEZONE=UTC (the default)
    w.map(pid, cid, enabled=True)
    # In the right zone, or 30 minutes late (not whole hours): nothing to say.
    w.send(hook(ok, rendered("UTC"), pid, "Registered"))
    w.send(hook(late, rendered("UTC", 30 * 60), pid, "Registered"))
    w.wait_status(cid, ok.email, "Registered")
    w.wait_status(cid, late.email, "Registered")
    assert warnings(w) == [] and w.worker_metric(METRIC, offset_hours="6") == 0
    assert readyz_note(w.ingest) == "ok"

    # An account in Chicago: occurredAt is its local time, read as UTC (5 or 6 h behind).
    hours = -offset_h("America/Chicago")
    assert w.send(hook(wrong, rendered("America/Chicago"), pid, "Registered")) == \
        {"accepted": 1, "duplicates": 0}
    w.wait_status(cid, wrong.email, "Registered")  # still applied
    cs.wait_until(lambda: w.worker_metric(METRIC, offset_hours=str(hours)) == 1, T,
                  what="the suspect event counted")
    [line] = cs.wait_until(lambda: warnings(w), T, what="the warning")
    hint = (f"occurredAt is {hours} h behind the receive time: MARKETO_TIMEZONE may be "
            f"America/Chicago (UTC-{hours:02d}:00) rather than UTC")
    assert line["level"] == "warn" and line["hint"] == hint, line
    assert line["offset_hours"] == str(hours) and line["event_id"]
    # Every process shows the evidence, kept in Redis an hour after the last suspect event.
    for svc in [w.ingest] + w.workers:
        note = readyz_note(svc)
        assert note.startswith(hint + " (1 suspect Marketo event, the last "), note
    ttl = w.redis.cmd("TTL", "cs:tz:marketo")
    assert 3500 < ttl <= 3600, ttl
    # Two more: counted, but no process warns twice within the minute.
    w.send(hook(wrong, rendered("America/Chicago", -5), pid, "Attended"))
    w.send(hook(ok, rendered("America/Chicago", -6), pid, "Attended"))
    cs.wait_until(lambda: w.worker_metric(METRIC, offset_hours=str(hours)) == 3, T,
                  what="the other suspect events counted")
    assert all(len([l for l in s.logs() if l.get("msg") == WARNING]) <= 1 for s in w.workers)
    # The count in Redis is written with the batch's records, after the metric: wait for it.
    cs.wait_until(lambda: "(3 suspect Marketo events, " in readyz_note(w.ingest), T,
                  what="the note counting 3")
    # The note goes once the evidence has expired.
    w.redis.cmd("DEL", "cs:tz:marketo")
    assert readyz_note(w.ingest) == "ok"


def test_account_in_utc_read_as_chicago_is_ahead(world):
    w = world
    cid, pid = w.campaign(), w.program()
    p = w.mk_person("ahead", sf="contact")
    w.start(MARKETO_TIMEZONE="America/Chicago")
    w.map(pid, cid, enabled=True)
    # Marketo renders UTC; read in Chicago time it lies 5 or 6 hours in the future.
    hours = -offset_h("America/Chicago")
    w.send(hook(p, rendered("UTC"), pid, "Registered"))
    w.wait_status(cid, p.email, "Registered")
    cs.wait_until(lambda: w.worker_metric(METRIC, offset_hours=str(-hours)) == 1, T,
                  what="the suspect event counted")
    assert readyz_note(w.ingest).startswith(
        f"occurredAt is {hours} h ahead of the receive time: MARKETO_TIMEZONE may be UTC "
        "(UTC+00:00) rather than America/Chicago (1 suspect Marketo event, ")
