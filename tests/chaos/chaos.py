#!/usr/bin/env python3
"""Chaos suite: changes in both directions while the system is broken on purpose.

One ingest and two worker processes share one Redis (AOF, appendfsync always), with both
CRM simulators. While the changes flow:
  1. a worker process is killed with SIGKILL three times (and started again),
  2. Redis is restarted, once with SIGTERM and once with SIGKILL,
  3. both simulators answer 10% of calls with 5xx, let 2% time out, and expire all tokens
     twice,
  4. the ingest process is restarted (SIGTERM) with requests in flight.
Then, with the faults lifted, it waits for the queue to drain and checks: every change that
a sender got acknowledged is applied (final states in both simulators equal the expected
states), no member or person exists twice in either simulator, and the dead-letter list
holds exactly the changes that were meant to fail. Figures go to stdout and, as JSON, to
--out.

Senders: Salesforce changes are made in the Salesforce simulator, which delivers the
Outbound Messages itself and redelivers until it gets an Ack, as Salesforce does. Marketo
changes are made in the Marketo simulator (its webhook off) and the webhook is sent by this
driver, which sends again until it is acknowledged: a Marketo change counts only once
acknowledged. Each person's changes move forward through the channel (one-way progression),
alternate between the two sides, and may end with a removal in Marketo or a move back in
Salesforce (which Marketo refuses: each side then ends with its own status).

Usage: PYTHONPATH=tests tests/chaos/chaos.py [--changes 20000] [--short] [--out results.json]
(`make chaos` sets PYTHONPATH: the shared harness tests/cs/ is imported as `cs`.)
"""
import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cs  # the shared harness, tests/cs/ (PYTHONPATH=tests: the Makefile sets it)

STEPS = ["Invited", "Registered", "Attended"]           # forward only, in both CRMs
BAD_STATUS = "Attended On-demand"                        # in Marketo's channel, not in Salesforce


def outbound_figures(ob):
    """What Salesforce's Outbound Message queue saw: messages and notifications acknowledged,
    attempts refused or failed (retried by the simulator, as Salesforce does), dropped."""
    acked = [d for d in ob["deliveries"] if d["acked"]]
    dropped = [d for d in ob["deliveries"] if (d["error"] or "").startswith("dropped")]
    return {"pending": ob["pending"], "messages_acked": len(acked),
            "notifications_acked": sum(len(d["notificationIds"]) for d in acked),
            "attempts_not_acked": len(ob["deliveries"]) - len(acked) - len(dropped),
            "dropped": len(dropped)}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# The service's settings under chaos: CRM calls that time out sooner than the simulators'
# dropped answers, retries that outlast the faults, the background jobs out of the way.
SETTINGS = {"CRM_TIMEOUT_MS": 1500, "RETRY_BASE_MS": 100, "RETRY_MAX_MS": 2000,
            "MAX_ATTEMPTS": 60, "CLAIM_IDLE_MS": 3000, "MARKETO_CALLS_PER_20S": 100,
            "MARKETO_MAX_CONCURRENT": 10, "SF_DELETED_POLL_INTERVAL_S": 2,
            "RECONCILE_INTERVAL_S": 86400, "PROGRAM_POLL_INTERVAL_S": 86400}


class Chaos:
    """The run: a cs.World of its own (Redis with AOF, appendfsync always), the people and
    the mapping it syncs, the senders of changes, the faults, and the figures."""

    def __init__(self, args):
        self.args = args
        self.world = None
        self.figures = {"faults": [], "recovery_s": {}}
        self.lock = threading.Lock()

    # ---- set-up
    def setup(self, people):
        w = self.world = cs.World.own(cs.make_workdir(), appendonly=True, fsync="always")
        self.redis, self.sf, self.mk = w.redis, w.sf, w.mk
        statuses = [{"Label": s, "IsDefault": s == "Invited", "HasResponded": s == "Attended"}
                    for s in STEPS]
        sf = self.sf.ctl("POST", "seed", {
            "campaigns": [{"Name": "Chaos", "statuses": statuses}],
            "contacts": [{"Email": f"p{i}@chaos.test", "FirstName": "P", "LastName": str(i)}
                         for i in range(people)]})
        self.campaign = sf["campaigns"][0]["Id"]
        self.contacts = [c["Id"] for c in sf["contacts"]]
        mk = self.mk.ctl("POST", "seed", {
            "programs": [{"name": "Chaos", "channel": "Webinar"}],
            "leads": [{"email": f"p{i}@chaos.test", "firstName": "P", "lastName": str(i),
                       "company": "Chaos"} for i in range(people)]})
        self.program = mk["programs"][0]["id"]
        self.leads = [l["id"] for l in mk["leads"]]
        self.mk.ctl("POST", "config", {"webhookUrl": "", "callsPer20s": 100,
                                       "maxConcurrent": 10})
        w.start(workers=2, threads=2, LOG_LEVEL=os.environ.get("CHAOS_LOG_LEVEL", "warn"),
                **SETTINGS)
        self.sf.ctl("POST", "config", {
            "outboundUrl": f"http://127.0.0.1:{w.ingest.port}/webhooks/salesforce",
            "outboundRetryBaseMs": 200, "outboundRetryMaxMs": 2000,
            "outboundMaxAgeMs": 3600 * 1000})
        # Forced: the channel has statuses the campaign lacks, on purpose (the doomed ones).
        w.map(self.program, self.campaign, enabled=True, force=True)

    def stop_all(self):
        if self.world is None:
            return
        for e in self.world.close(expect_rc=None):
            log(f"stopping: {e}")

    # ---- senders
    def marketo_change(self, lead, status, event_id):
        """Makes the change in Marketo and sends its webhook until acknowledged."""
        for _ in range(100):
            try:
                if status:
                    self.mk.ctl("POST", "members", {"programId": self.program, "leadId": lead,
                                                    "statusName": status})
                else:
                    self.mk.ctl("DELETE", f"members?programId={self.program}&leadId={lead}")
                break
            except (AssertionError, OSError):
                time.sleep(0.1)  # the simulator is busy: the user tries again
        now = time.time()  # one clock reading for seconds and milliseconds
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (
            int(now * 1000) % 1000)
        body = {"type": "member_status_changed" if status else "member_removed",
                "programId": self.program, "leadId": lead, "occurredAt": at,
                "eventId": event_id, "email": f"p{self.leads.index(lead)}@chaos.test"}
        if status:
            body["status"] = status
        tries = 0
        while True:
            tries += 1
            try:
                r = self.world.ingest.req("POST", "/webhooks/marketo", body, cs.MK_HEADERS,
                                          timeout=10)
                if r.status == 202:
                    return tries
            except OSError:
                pass
            time.sleep(0.1)

    def salesforce_change(self, i, status):
        """A user changes the member in Salesforce; the simulator sends the Outbound
        Message and redelivers until it gets an Ack."""
        for _ in range(100):
            try:
                self.sf.ctl("POST", "members", {"CampaignId": self.campaign,
                                                "ContactId": self.contacts[i], "Status": status})
                return
            except (AssertionError, OSError):
                time.sleep(0.1)  # the simulator refused or is busy: the user tries again

    # ---- faults
    def crm_faults(self, on):
        if not on:
            for sim in (self.sf, self.mk):
                sim.ctl("DELETE", "faults")
            return
        self.sf.ctl("POST", "faults", {"rules": [
            {"path": "/services/data/", "kind": "status", "status": 503, "probability": 0.10,
             "count": None, "seed": 7},
            {"path": "/services/data/", "kind": "drop", "delay_ms": 1800, "probability": 0.02,
             "count": None, "seed": 8}]})
        self.mk.ctl("POST", "faults", {"rules": [
            {"path": "^/rest/", "kind": "http", "status": 503, "probability": 0.10,
             "count": 0},
            {"path": "^/rest/", "kind": "delay", "delay_ms": 1800, "probability": 0.02,
             "count": 0}]})

    def expire_tokens(self):
        self.sf.ctl("POST", "faults", {"rules": [{"path": "/services/data/",
                                                  "kind": "expire_tokens", "count": 1}]})
        self.mk.ctl("POST", "faults", {"rules": [{"path": "^/rest/", "kind": "expire_tokens",
                                                  "count": 1}]})

    def note(self, what):
        with self.lock:
            self.figures["faults"].append({"t": round(time.monotonic() - self.t0, 1),
                                           "what": what})
        log(what)

    def kill_worker(self, name):
        svc = self.world.process(name)
        svc.stop(signal.SIGKILL)
        self.note(f"SIGKILL worker {name}")
        self.world.restart(svc)

    def restart_redis(self, sig):
        t = time.monotonic()
        self.redis.stop(sig)
        self.note(f"Redis stopped with {signal.Signals(sig).name}")
        time.sleep(1.0)
        self.redis.start()
        # Recovery: from Redis answering again to the ingest being ready again.
        back = time.monotonic()
        while self.world.ingest.req("GET", "/readyz").status != 200:
            time.sleep(0.05)
        self.figures["recovery_s"][f"redis_{signal.Signals(sig).name}"] = round(
            time.monotonic() - back, 2)
        self.figures["redis_down_s"] = round(back - t, 2)

    def restart_ingest(self):
        svc = self.world.ingest
        t = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        self.note("SIGTERM ingest with requests in flight")
        svc.proc.wait(20)
        rc = svc.stop(expect_rc=None)  # exited already: its status, its stderr checked
        self.world.restart(svc)
        self.figures["recovery_s"]["ingest_restart"] = round(time.monotonic() - t, 2)
        self.figures["ingest_exit_status"] = rc


def plan_changes(n_changes, people, rng, short):
    """Per person, a forward walk through STEPS alternating sides, then one of three endings:
    a removal in Marketo (both sides end without the member), a move back in Salesforce
    (Marketo keeps its status: one-way progression), or none. Returns the change list in
    sending order and the expected end per person, as (Salesforce status, Marketo status),
    None for no member.

    A move back follows only a last step made in Marketo: that status is then Marketo's own
    and must stay. After a last step made in Salesforce, the move back may supersede it before
    it reached Marketo (newest change wins), and Marketo's end would be either status."""
    per = max(1, n_changes // people)
    changes, expected = [], {}
    for i in range(people):
        side = rng.choice(["marketo", "salesforce"])
        k = min(per, len(STEPS))
        seq = []
        for step in range(k):
            seq.append((side, STEPS[step]))
            side = "salesforce" if side == "marketo" else "marketo"
        ending = rng.random()
        if per > k and ending < 0.4:
            seq.append(("marketo", None))  # removal
            expected[i] = (None, None)
        elif per > k and ending < 0.7 and k >= 2 and seq[-1][0] == "marketo":
            seq.append(("salesforce", STEPS[k - 2]))
            expected[i] = (STEPS[k - 2], STEPS[k - 1])
        else:
            expected[i] = (STEPS[k - 1], STEPS[k - 1])
        changes.append((i, seq))
    return changes, expected


INTEGRATION_USER15 = "005000000000001"   # SF_INTEGRATION_USER_ID (cs.crm_env), as stored


def overwritten_between_read_and_write(journal):
    """The one loss the service cannot prevent with sObject Collections, which take no
    condition: a person's change made in Salesforce after our last read of the member and
    before our write landed (the write then carries an older change over it, and Salesforce
    sends only the latest data). True when the member's journal shows our last write preceded
    by a human save made after the last read before that write."""
    entries = journal["entries"]
    ours = [k for k, e in enumerate(entries)
            if e["op"] != "read" and (e.get("by") or "")[:15] == INTEGRATION_USER15]
    if not ours:
        return False
    w = ours[-1]
    # Journal order, not times: a read and a save can share a millisecond.
    reads = [k for k, e in enumerate(entries[:w]) if e["op"] == "read"]
    human = [k for k, e in enumerate(entries[:w])
             if e["op"] != "read" and (e.get("by") or "")[:15] != INTEGRATION_USER15]
    return bool(reads and human and human[-1] > reads[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=20000)
    ap.add_argument("--short", action="store_true", help="CI's short form (2,000 changes)")
    ap.add_argument("--out", default="")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--rate", type=float, default=100.0, help="changes sent per second")
    args = ap.parse_args()
    if args.short:
        args.changes = 2000
    rng = random.Random(args.seed)
    people = max(10, args.changes // 4)
    w = Chaos(args)
    failures = []
    try:
        w.setup(people + 20)
        w.t0 = time.monotonic()
        changes, expected = plan_changes(args.changes, people, rng, args.short)
        # Changes meant to fail: a status with no counterpart in Salesforce (F11).
        doomed = [(people + k, f"chaos-doomed-{k}") for k in range(5)]
        total = sum(len(seq) for _, seq in changes) + len(doomed)
        log(f"{total} changes for {people} people; faults on")
        w.crm_faults(True)
        sent = {"marketo": 0, "salesforce": 0, "webhook_tries": 0}
        counter = [0]
        done = threading.Event()

        # Paced, so that the faults fall while changes flow (about RATE changes a second).
        rate = args.rate
        pace = threading.Semaphore(0)

        def pacer():
            while not done.is_set():
                pace.release()
                time.sleep(1.0 / rate)

        threading.Thread(target=pacer, daemon=True).start()

        def person(job):
            i, seq = job
            for n, (side, status) in enumerate(seq):
                pace.acquire()
                if side == "marketo":
                    tries = w.marketo_change(w.leads[i], status, f"chaos-{i}-{n}")
                    with w.lock:
                        sent["marketo"] += 1
                        sent["webhook_tries"] += tries
                else:
                    w.salesforce_change(i, status)
                    with w.lock:
                        sent["salesforce"] += 1
                with w.lock:
                    counter[0] += 1
                time.sleep(0.02)  # the next change of this person comes later in time

        def faults():
            marks = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
            acts = [lambda: w.kill_worker("w1"), w.expire_tokens,
                    lambda: w.restart_redis(signal.SIGTERM), lambda: w.kill_worker("w2"),
                    w.restart_ingest, w.expire_tokens,
                    lambda: w.restart_redis(signal.SIGKILL), lambda: w.kill_worker("w1"),
                    lambda: None]
            for mark, act in zip(marks, acts):
                while counter[0] < mark * total and not done.is_set():
                    time.sleep(0.05)
                act()
                if act is w.expire_tokens:
                    w.note("tokens expired in both CRMs")

        fthread = threading.Thread(target=faults)
        fthread.start()
        t_send = time.monotonic()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(person, changes))
            for i, eid in doomed:
                pool.submit(w.marketo_change, w.leads[i], BAD_STATUS, eid).result()
        done.set()
        fthread.join()
        send_s = time.monotonic() - t_send
        log(f"all {total} changes acknowledged in {send_s:.1f} s; faults off, draining")
        w.crm_faults(False)

        # Drain: Salesforce redeliveries done, queue empty, nothing waiting for a retry.
        t_drain = time.monotonic()
        deadline = t_drain + (600 if not args.short else 300)
        while time.monotonic() < deadline:
            ob = w.sf.ctl("GET", "outbound")
            depth = cs.queue_len(w.redis) + w.redis.cmd("ZCARD", "cs:retry")
            if ob.get("pending", 0) == 0 and depth == 0:
                time.sleep(3)  # late redeliveries and echoes
                depth = cs.queue_len(w.redis) + w.redis.cmd("ZCARD", "cs:retry")
                if depth == 0 and w.sf.ctl("GET", "outbound").get("pending", 0) == 0:
                    break
            time.sleep(0.5)
        drain_s = time.monotonic() - t_drain
        log(f"drained in {drain_s:.1f} s")

        # ---- checks
        sf_members = [m for m in w.sf.ctl("GET", "state")["members"]
                      if m["CampaignId"][:15] == w.campaign[:15]]
        by_contact = {}
        for m in sf_members:
            by_contact.setdefault(m["ContactId"] or m["LeadId"], []).append(m)
        mk_members = w.mk.ctl("GET", f"members?programId={w.program}")["members"]
        mk_by_lead = {}
        for m in mk_members:
            mk_by_lead.setdefault(m["leadId"], []).append(m)
        dup_sf = [k for k, v in by_contact.items() if len(v) > 1]
        dup_mk = [k for k, v in mk_by_lead.items() if len(v) > 1]
        mk_state = w.mk.ctl("GET", "state")
        emails = {}
        for lead in mk_state["leads"]:
            emails[lead["email"].lower()] = emails.get(lead["email"].lower(), 0) + 1
        dup_leads = [e for e, n in emails.items() if n > 1]
        sf_state = w.sf.ctl("GET", "state")
        sf_people = {}
        for p in sf_state["leads"] + sf_state["contacts"]:
            e = (p.get("Email") or "").lower()
            sf_people[e] = sf_people.get(e, 0) + 1
        dup_people = [e for e, n in sf_people.items() if n > 1]
        wrong, raced = [], []
        for i, (sf_want, mk_want) in expected.items():
            sf_member = by_contact.get(w.contacts[i], [{}])[0]
            sf_now = sf_member.get("Status")
            mk_now = mk_by_lead.get(w.leads[i], [{}])[0].get("statusName")
            if sf_now == sf_want and mk_now == mk_want:
                continue
            x = {"person": i, "want": [sf_want, mk_want], "salesforce": sf_now,
                 "marketo": mk_now}
            # Counted apart, not a failure: a change lost in the read-to-write window, after
            # which both CRMs still agree.
            journal = (w.sf.ctl("GET", f"journal?id={sf_member['Id']}")
                       if sf_member.get("Id") else {"entries": []})
            if sf_now == mk_now and overwritten_between_read_and_write(journal):
                raced.append(x)
            else:
                x["journal"] = journal["entries"][-12:]
                wrong.append(x)
        dead = w.world.dead_letters()
        dead_ids = sorted(d["event"]["id"] for d in dead)
        want_dead = sorted(f"e:{eid}" for _, eid in doomed)
        metrics = w.world.process("w1").req("GET", "/metrics").body.decode()
        ingest_metrics = w.world.ingest.req("GET", "/metrics").body.decode()

        def mv(text, name, **labels):
            return int(cs.metric_value(text, name, **labels) or 0)

        def by_path(sim):
            out = {}
            for c in sim.ctl("GET", "calls?since=0")["calls"]:
                key = f'{c["method"]} {c["path"].split("?")[0]}'
                for pat in ("/members/status.json", "/members/delete.json", "/members.json",
                            "/leads.json", "/composite/sobjects", "/query", "/oauth2/token",
                            "/identity/oauth/token", "/deleted/"):
                    if pat in key:
                        key = f'{c["method"]} ...{pat}'
                        break
                out[key] = out.get(key, 0) + 1
            return out

        fig = w.figures
        fig["marketo_calls"] = by_path(w.mk)
        fig["salesforce_calls"] = by_path(w.sf)
        fig.update({
            "changes": total, "people": people, "sent": sent,
            "endings": {"removed": sum(1 for v in expected.values() if v[0] is None),
                        "moved_back_in_salesforce": sum(1 for v in expected.values()
                                                        if v[0] and v[0] != v[1]),
                        "stayed": sum(1 for v in expected.values() if v[0] and v[0] == v[1])},
            "send_seconds": round(send_s, 1), "drain_seconds": round(drain_s, 1),
            "salesforce_outbound": outbound_figures(w.sf.ctl("GET", "outbound")),
            "wrong_final_states": len(wrong),
            "lost_between_read_and_write": len(raced), "raced_examples": raced[:3],
            "duplicate_campaign_members": len(dup_sf),
            "duplicate_program_members": len(dup_mk), "duplicate_marketo_leads": len(dup_leads),
            "duplicate_salesforce_people": len(dup_people),
            "dead_letters": dead_ids, "dead_letters_expected": want_dead,
            "dead_letter_errors": sorted({d["error"][:300] for d in dead})[:10],
            "marketo_stats": w.mk.ctl("GET", "stats"),
            "ingest_since_restart": {
                o: mv(ingest_metrics, "campaign_sync_events_received_total", source=s, outcome=o)
                for s in ("marketo",) for o in ("accepted", "duplicate", "spooled", "rejected")},
            "worker_w1": {
                "applied_salesforce": mv(metrics, "campaign_sync_events_applied_total",
                                         target="salesforce"),
                "applied_marketo": mv(metrics, "campaign_sync_events_applied_total",
                                      target="marketo"),
                "retries_salesforce": mv(metrics, "campaign_sync_retries_total",
                                         target="salesforce"),
                "retries_marketo": mv(metrics, "campaign_sync_retries_total", target="marketo"),
                "dropped_echo": mv(metrics, "campaign_sync_events_dropped_total", reason="echo"),
                "dropped_stale": mv(metrics, "campaign_sync_events_dropped_total",
                                    reason="stale"),
                "dropped_backward_progression": mv(metrics, "campaign_sync_events_dropped_total",
                                                   reason="backward_progression")},
        })
        if wrong:
            failures.append(f"{len(wrong)} people end in the wrong state, e.g. {wrong[:3]}")
            # What the service did for them, to see why.
            audit, cursor = [], ""
            while True:
                page = w.world.admin(
                    "GET", f"/v1/audit?limit=1000&campaignId={w.campaign}&cursor={cursor}").json()
                audit += page["items"]
                if not page["next"]:
                    break
                cursor = page["next"]
            for x in wrong[:3]:
                email = f"p{x['person']}@chaos.test"
                x["audit"] = [{k: a.get(k) for k in ("at", "receivedAt", "eventId", "source",
                                                      "target", "action", "status", "result")}
                              for a in audit if a.get("email") == email]
                x["state"] = w.redis.cmd("HGETALL", f"cs:member:{w.campaign[:15]}:"
                                         f"{w.leads[x['person']]}")
                x["plan"] = [c for c in changes if c[0] == x["person"]]
            fig["wrong_examples"] = wrong[:3]
        if dup_sf or dup_mk or dup_leads or dup_people:
            failures.append(f"duplicates: campaign members {dup_sf[:3]}, program members "
                            f"{dup_mk[:3]}, Marketo leads {dup_leads[:3]}, Salesforce people "
                            f"{dup_people[:3]}")
        if dead_ids != want_dead:
            failures.append(f"dead letters {dead_ids[:10]} != expected {want_dead}")
        ob = fig["salesforce_outbound"]
        if ob["pending"] or ob["dropped"]:
            failures.append(f"Outbound Messages never acknowledged: {ob}")
        if fig.get("ingest_exit_status") not in (0, None):
            failures.append(f"ingest exited {fig['ingest_exit_status']} on SIGTERM")
        for svc in w.world.procs():
            if svc.proc is not None and svc.proc.poll() is not None:
                failures.append(f"{svc.name} died: {svc.stderr()[-500:]}")
        fig["result"] = "pass" if not failures else "fail"
        fig["failures"] = failures
        print(json.dumps(fig, indent=2))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(fig, f, indent=2)
    finally:
        w.stop_all()
    if failures:
        for f in failures:
            log("FAIL: " + f)
        sys.exit(1)
    log("PASS")


if __name__ == "__main__":
    main()
