"""The Redis scripts of service/lua/ as the service runs them: each key they touch passed in
KEYS (dead letters whose id is taken, parked lists read by the queue gauges), and Redis
losing its script cache (a restart without persistence, SCRIPT FLUSH) in the middle of the
flow: single scripts fall back to EVAL, pipelined ones are loaded and sent again.

Real Redis and the real binary; where a CRM takes part, both simulators, the changes reaching
the service as in production. Outcomes are read where a user sees them: the admin API,
/metrics, both simulators' members and the keys the README documents."""
import json
import time

import cs

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)
ADMIN = cs.admin_headers()
QUIET = {"SF_DELETED_POLL_INTERVAL_S": "86400", "RECONCILE_INTERVAL_S": "604800",
         "PROGRAM_POLL_INTERVAL_S": "86400"}


def admin(svc, method, path, body=None, expect=None):
    r = svc.req(method, path, json.dumps(body) if body is not None else None, ADMIN)
    if expect is not None:
        assert r.status == expect, f"{method} {path}: {r.status} {r.body[:800]!r}"
    return r


def dead_letters(svc):
    return admin(svc, "GET", "/v1/deadletters?limit=1000", expect=200).json()["items"]


def metrics(svc):
    text = svc.req("GET", "/metrics").body.decode()
    assert cs.promtool_check(text) == "", cs.promtool_check(text)
    return text


def marketo_events(service, program, leads):
    body = [{"type": "member_status_changed", "programId": program, "leadId": lead,
             "email": f"p{lead}@example.com", "status": "Registered",
             "occurredAt": "2026-11-29 10:00:00"} for lead in leads]
    r = service.req("POST", "/webhooks/marketo", json.dumps(body),
                    {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET})
    assert r.status == 202 and r.json() == {"accepted": len(leads), "duplicates": 0}, r.body
    return r


def waiting(entry_id, raw, q):
    """A waiting entry as a retry or a parked event keeps it (store_queue.c)."""
    return json.dumps({"event": raw, "attempts": 0, "error": "", "from": entry_id, "q": q},
                      separators=(",", ":"))


# ------------------------------------------------------------------ dead letters' ids

def test_dead_letters_of_both_queues_take_the_next_free_ids_of_their_millisecond(
        redis, services):
    """Both queues make entry ids the same way, so an entry of each may have one id; dead
    letters must not overwrite each other. Five ids of that millisecond are already taken
    (more than the first window of candidates the script is given): the two entries become
    the sixth and seventh, the five stay as they were."""
    ms = 1796655600000
    for seq in range(5):
        redis.cmd("HSET", f"cs:dead:{ms}-{seq}", "item", f'{{"id":"{ms}-{seq}"}}', "event", "{}",
                  "q", "0")
        redis.cmd("ZADD", "cs:deadletters", ms, f"{ms}-{seq}")
    for stream in cs.STREAMS:
        redis.cmd("XADD", stream, f"{ms}-0", "event", "not an event", "attempts", "0")
    worker = services(redis.url, command="worker", WORKERS="1", **QUIET)
    cs.wait_until(lambda: redis.cmd("ZCARD", "cs:deadletters") == 7, T,
                  what="both entries among the dead letters")
    assert sorted(redis.cmd("ZRANGE", "cs:deadletters", 0, -1)) == \
        sorted(f"{ms}-{seq}" for seq in range(7))
    assert sorted(redis.cmd("HGET", f"cs:dead:{ms}-{seq}", "q") for seq in (5, 6)) == ["0", "1"]
    for seq in (5, 6):
        item = json.loads(redis.cmd("HGET", f"cs:dead:{ms}-{seq}", "item"))
        assert item["error"].startswith("unreadable queued event")
        assert redis.cmd("HGET", f"cs:dead:{ms}-{seq}", "event") == "not an event"
    for seq in range(5):
        assert redis.cmd("HGET", f"cs:dead:{ms}-{seq}", "item") == f'{{"id":"{ms}-{seq}"}}'
    assert cs.queue_len(redis) == 0 and cs.queue_pending(redis) == 0
    ingest = services(redis.url)
    listed = dead_letters(ingest)
    assert sorted(d["id"] for d in listed if "error" in d) == [f"{ms}-5", f"{ms}-6"]
    worker.stop()


def test_unusable_notifications_of_one_message_take_ids_of_their_receive_time(redis, service):
    """Three notifications without a CampaignId in one Outbound Message: three dead letters
    with the receive time's first ids, the de-duplication keys naming them; delivered again,
    nothing new."""
    notes = [(f"04l5g00000{k:05d}BBB", {"Id": f"00v5g00000{k:05d}BBB",
                                        "LeadId": f"00Q5g00000{k:05d}BBB", "Status": "Sent"})
             for k in range(3)]
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    for _ in range(2):
        r = service.req("POST", "/webhooks/salesforce", cs.outbound_message(notes), headers)
        assert r.status == 200, r.body
    ids = redis.cmd("ZRANGE", "cs:deadletters", 0, -1)
    assert len(ids) == 3
    (ms,) = {i.split("-")[0] for i in ids}
    assert sorted(ids) == [f"{ms}-{seq}" for seq in range(3)]
    assert sorted(redis.cmd("GET", f"cs:dedup:sf:{n}") for n, _ in notes) == sorted(ids)
    assert all(redis.cmd("HEXISTS", f"cs:dead:{i}", "unusable") == 1 for i in ids)


# ------------------------------------------------------------------ parked lists

def test_queue_gauges_count_the_parked_lists_before_and_after_a_script_flush(redis, services):
    """Events parked by two disabled mappings and one waiting for Marketo's allowance: the
    gauges count each list (the script is given their keys), per program too; the same after
    Redis lost its scripts."""
    svc = services(redis.url, command="serve", SYNC_ENABLED="false")
    for pid, q, n in (("1001", 1, 2), ("1002", 0, 1), ("quota:marketo", 0, 1)):
        for k in range(n):
            raw = json.dumps({"v": 1, "source": "marketo" if q else "salesforce",
                              "id": f"{pid}-{k}", "receivedAt": int(time.time() * 1000)})
            redis.cmd("RPUSH", f"cs:parked:{pid}", waiting(f"1-{k}", raw, q))
        redis.cmd("SADD", "cs:parked:programs", pid)

    def seen():
        text = metrics(svc)
        return (cs.metric_value(text, "campaign_sync_queue_depth"),
                cs.metric_value(text, "campaign_sync_queue_depth", queue="marketo"),
                cs.metric_value(text, "campaign_sync_queue_depth", queue="salesforce"),
                cs.metric_value(text, "campaign_sync_parked_events", program_id="1001"),
                cs.metric_value(text, "campaign_sync_parked_events", program_id="1002"),
                cs.metric_value(text, "campaign_sync_parked_events",
                                program_id="quota:marketo"))

    assert seen() == (4, 1, 0, 2, 1, None)
    redis.cmd("SCRIPT", "FLUSH")
    assert seen() == (4, 1, 0, 2, 1, None)
    redis.cmd("SREM", "cs:parked:programs", "1002")
    redis.cmd("DEL", "cs:parked:1002")
    assert seen() == (3, 1, 0, 2, None, None)


# ------------------------------------------------------------------ Redis loses its scripts

def test_bulk_replay_after_redis_lost_its_scripts(redis, service):
    """The replay of many dead letters goes in one pipeline of EVALSHA: when Redis lost the
    script, it is loaded and the replays sent again, each once."""
    redis.cmd("SCRIPT", "FLUSH")
    marketo_events(service, 1001, [1, 2, 3])
    queued = cs.stream_events(redis, cs.STREAM_MKTO)
    now = int(time.time() * 1000)
    for entry_id, ev, f in queued:
        redis.cmd("XDEL", cs.STREAM_MKTO, entry_id)
        item = {"id": entry_id, "at": "2026-11-29T10:00:00.000Z", "attempts": 10,
                "error": "gave up", "event": ev}
        redis.cmd("HSET", f"cs:dead:{entry_id}", "item", json.dumps(item), "event", f["event"],
                  "q", "1")
        redis.cmd("ZADD", "cs:deadletters", now, entry_id)
    redis.cmd("SCRIPT", "FLUSH")
    redis.cmd("CONFIG", "RESETSTAT")
    r = admin(service, "POST", "/v1/deadletters/replay", {}, expect=202)
    assert r.json() == {"queued": 3, "skipped": 0, "next": None, "dryRun": False}
    again = cs.stream_events(redis, cs.STREAM_MKTO)
    assert sorted(f["event"] for _, _, f in again) == sorted(f["event"] for _, _, f in queued)
    assert redis.cmd("ZCARD", "cs:deadletters") == 0
    stats = redis.cmd("INFO", "commandstats")
    assert "cmdstat_script|load:calls=1," in stats, stats


class World:
    """Both simulators seeded, one ingest and one worker process on one Redis."""

    def __init__(self, redis, services, sf, mk):
        self.redis, self.services, self.sf, self.mk = redis, services, sf, mk

    def start(self):
        env = cs.crm_env(self.sf, self.mk, **QUIET)
        self.ingest = self.services(self.redis.url, command="ingest", name="ingest", **env)
        self.worker = self.services(self.redis.url, command="worker", name="w1",
                                    **dict(env, WORKERS="1"))
        port = self.ingest.port
        self.mk.ctl("POST", "config", {"webhookUrl": f"http://127.0.0.1:{port}/webhooks/marketo",
                                       "webhookSecret": cs.WEBHOOK_SECRET})
        self.sf.ctl("POST", "config",
                    {"outboundUrl": f"http://127.0.0.1:{port}/webhooks/salesforce"})
        return self

    def sf_members(self, campaign):
        return {(m["Email"] or "").lower(): m["Status"]
                for m in self.sf.ctl("GET", f"members?campaignId={campaign}")["members"]}


def test_a_change_flows_while_redis_loses_its_scripts(redis, services, sf_sim, mkto_sim):
    """Marketo changes a member twice, Redis losing its scripts before each: both reach
    Salesforce and the member's record has two versions (member_put.lua, pipelined, was
    loaded again each time; the others fell back to EVAL)."""
    cid = sf_sim.ctl("POST", "seed", {"campaigns": [{
        "Name": "Webinar", "IsActive": True,
        "statuses": [{"Label": s, "IsDefault": i == 0, "HasResponded": s == "Attended"}
                     for i, s in enumerate(["Invited", "Registered", "Attended"])]}]}
    )["campaigns"][0]["Id"]
    pid = mkto_sim.ctl("POST", "seed", {"programs": [{"name": "Webinar Nov",
                                                      "channel": "Webinar"}]})["programs"][0]["id"]
    email = "ann@example.com"
    sf_sim.ctl("POST", "seed", {"leads": [{"FirstName": "Ann", "LastName": "Lee",
                                           "Company": "Acme", "Email": email}]})
    lead = mkto_sim.ctl("POST", "seed", {"leads": [{"email": email, "firstName": "Ann",
                                                    "lastName": "Lee", "company": "Acme"}]}
                        )["leads"][0]["id"]
    w = World(redis, services, sf_sim, mkto_sim).start()
    admin(w.ingest, "PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True,
                                                    "force": True}, expect=201)
    member_key = f"cs:member:{cid[:15]}:{lead}"
    for status, version in (("Registered", "1"), ("Attended", "2")):
        # The webhook template's time has whole seconds: a second change within the same
        # second would be de-duplicated as a resend.
        time.sleep(1.0 - time.time() % 1.0 + 0.05)
        redis.cmd("SCRIPT", "FLUSH")
        redis.cmd("CONFIG", "RESETSTAT")
        mkto_sim.ctl("POST", "members", {"programId": pid, "leadId": lead, "statusName": status})
        cs.wait_until(lambda: w.sf_members(cid) == {email: status}, T,
                      what=f"{status} in Salesforce")
        cs.wait_until(lambda: redis.cmd("HGET", member_key, "sf_status") == status, T,
                      what=f"{status} recorded")
        assert redis.cmd("HGET", member_key, "ver") == version
        assert "cmdstat_script|load:" in redis.cmd("INFO", "commandstats")
    assert cs.queue_len(redis) == 0
    assert dead_letters(w.ingest) == []


# ------------------------------------------------------------------ dead letters, listed

def test_dead_letter_pages_and_a_cursor_that_names_none(redis, service):
    """Pages of the dead letters follow their cursor; a cursor that names no dead letter (it
    was replayed or deleted since) is refused with 400, saying what to do."""
    now = int(time.time() * 1000)
    for k in range(5):
        redis.cmd("HSET", f"cs:dead:{now}-{k}", "item",
                  json.dumps({"id": "", "at": "2026-11-29T10:00:00.000Z", "attempts": 1,
                              "error": "gave up", "event": {"v": 1}}), "event", "{}", "q", "1")
        redis.cmd("ZADD", "cs:deadletters", now + k, f"{now}-{k}")
    seen, cursor = [], ""
    while True:
        page = admin(service, "GET", f"/v1/deadletters?limit=2&cursor={cursor}",
                     expect=200).json()
        seen += [d["id"] for d in page["items"]]
        if page["next"] is None:
            break
        cursor = page["next"]
    assert seen == [f"{now}-{k}" for k in range(4, -1, -1)]
    r = admin(service, "GET", f"/v1/deadletters?cursor={now}-9")
    assert r.status == 400
    assert r.json() == {"error": "invalid_parameter",
                        "message": f"cursor: no dead letter {now}-9 (replayed or deleted "
                                   "since); start again without a cursor"}


# ------------------------------------------------------------------ the Marketo pace

def lua(name):
    """service/lua/<name> as Redis runs it: each `--@use FILE` line replaced by its helper
    (service/lua/embed.sh)."""
    here = cs.ROOT + "/service/lua/"
    out = []
    for line in open(here + name).read().splitlines():
        out.append(open(here + "lib/" + line.split()[1]).read() if line.startswith("--@use ")
                   else line)
    return "\n".join(out)


def test_a_jobs_call_in_a_busy_window_leaves_the_live_pace_alone(redis):
    """While live changes stream toward Marketo, the live pace counts on the window's calls but
    the one a job may take (PACE_BUSY_SHARE_CALLS), and never goes faster than the calls in the
    window allow (budget_window_pace). The window holds 48 live calls a pace apart and the job's
    one call: the next live call is paced at the window's pace, ~434 ms (20 s / 46), not made
    to wait for two paces as when the job's call was both taken out of the window's calls and
    counted in it (817 ms: the live p99 toward Marketo went over 500 ms each time the job made
    its call of the window, BENCHMARKS.md section 4)."""
    def redis_ms():
        t = redis.cmd("TIME")
        return int(t[0]) * 1000 + int(t[1]) // 1000

    now = redis_ms()
    for i in range(1, 49):
        redis.cmd("ZADD", "cs:mkto:calls", now - 408 * i, f"live{i}")
    redis.cmd("ZADD", "cs:mkto:calls", now - 100, "job1")
    redis.cmd("ZADD", "cs:mkto:calls:fix", now - 100, "job1")
    redis.cmd("HSET", "cs:mkto:rate", "t", now, "n", 0, "rate", 100)  # 100 changes/s: busy
    keys = ["cs:mkto:calls", "cs:mkto:inflight", "cs:mkto:pace", "cs:mkto:calls:fix",
            "cs:mkto:inflight:fix", "cs:events:sf", "cs:mkto:rate"]
    # token, calls, window, max_concurrent, lease, fix_max (0: a live call), fix_concurrent,
    # light_rate, busy_max
    args = ["live49", 50, 20000, 5, 30000, 0, 0, 50, 1]
    t0 = redis_ms()
    assert redis.cmd("EVAL", lua("mkto_acquire.lua"), len(keys), *keys, *args) == 0
    pace = int(redis.cmd("GET", "cs:mkto:pace")) - t0
    assert 420 <= pace <= 460, pace
