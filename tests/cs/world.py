"""The world of an end-to-end test, of the chaos suite and of a benchmark: one Redis, both CRM
simulators, and the campaign-sync processes on them; with the helpers that seed the
simulators, act as a person or a CRM would, call the admin API and read outcomes where a user
would see them.

Naming: an `sf_` helper reads or changes the Salesforce simulator, an `mk_` helper the Marketo
simulator. Where the tests of the two directions had a helper of the same name that behaved
differently, both behaviours are here under their own names (sf_people / mk_people, metric /
worker_metric / process_metric, queue_empty / nothing_pending, map / put_mapping)."""
import json

from .procs import QUIET, Redis, Services, Sim, base_env, crm_env, crm_urls, wait_until
from .streams import queue_len, queue_pending
from .metrics import metric_value
from .web import MK_HEADERS, SF_HEADERS, WEBHOOK_SECRET, admin_headers
from .wire import DELETE_CALL, STATUS_CALL, is_cm_write, om_body

T = 30  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)
# Marketo's "Webinar" channel in the simulator (steps 10, 20, 30, 40, 40); a campaign with the
# same labels is compatible with it.
WEBINAR = ["Invited", "Registered", "No Show", "Attended", "Attended On-demand"]
# Statuses seeded with HasResponded (a campaign needs one; the service does not read it).
RESPONDED = {"Attended", "Attended On-demand", "Responded", "Did Not Attend"}
# The set-up of the Salesforce -> Marketo tests (World.defaults): two threads per worker, the
# Marketo simulator's limits equal to MARKETO_CALLS_PER_20S and MARKETO_MAX_CONCURRENT (so a
# limiter that only counted per process would meet 606/615; 3 < 4 worker threads + pollers),
# Salesforce's Outbound Message on CampaignMember pointing at the ingest process.
TOWARD_MARKETO = {"threads": 2, "calls": 20, "concurrent": 3, "outbound": True}
# World.start's own arguments, at their defaults.
START = {"workers": 2, "threads": 1, "command": "ingest", "ingest_crm": True, "calls": None,
         "concurrent": None, "outbound": False, "webhook": False, "hooks": False, "quiet": False}


class Person:
    """One person as the tests know them: the fields a webhook template renders, and the ids
    they have in each CRM once seeded (sf_id: a Lead or Contact; lead: a Marketo lead)."""

    def __init__(self, email, first="Ann", last="Lee", company="Acme Corp"):
        self.email, self.first, self.last, self.company = email, first, last, company
        self.sf_id = None   # Salesforce Lead or Contact id, when seeded there
        self.lead = None    # Marketo lead id, when seeded there
        self.member = None  # a CampaignMember id, where a set-up keeps one


class World:
    """Redis, both simulators and the service's processes: `ingest` (the process the webhooks
    and the admin API reach: an `ingest`, or the one `serve` process of World.start(command=
    "serve")) and `workers`.

    From pytest, the `world` fixture (tests/conftest.py) builds one on the test's Redis and
    simulators; a test module may set its own start() defaults (World.defaults). Outside
    pytest, World.own(workdir) starts Redis and the simulators itself and close() stops all."""

    def __init__(self, redis, services, sf, mk, test_timings=True):
        self.redis, self.services, self.sf, self.mk = redis, services, sf, mk
        self.workdir = services.workdir
        self.test_timings = test_timings  # crm_env's short retries, or the service's defaults
        self.ingest = None
        self.workers = []
        self.env = {}
        self._defaults = {}
        self._owned = False

    @classmethod
    def own(cls, workdir, appendonly=True, fsync="always", redis_timeout=5, sim_timeout=10,
            test_timings=True, **service_env):
        """A world that starts its own Redis (AOF, appendfsync always by default) and
        simulators; service_env: settings every service process gets."""
        started = []
        try:
            redis = Redis(workdir, appendonly, fsync, timeout=redis_timeout).start()
            started.append(redis)
            sf = Sim("salesforce_sim.py", workdir, timeout=sim_timeout).start()
            started.append(sf)
            mk = Sim("marketo_sim.py", workdir, timeout=sim_timeout).start()
        except BaseException:
            for x in reversed(started):
                x.stop()
            raise
        w = cls(redis, Services(workdir, **service_env), sf, mk, test_timings)
        w._owned = True
        return w

    def close(self, timeout=15, expect_rc=0, must_stop=True):
        """Stops the service processes (Services.stop_all) and, for World.own, the simulators
        and Redis; returns what failed, as text."""
        errors = self.services.stop_all(timeout, expect_rc, must_stop)
        if self._owned:
            for x in (self.sf, self.mk, self.redis):
                try:
                    x.stop()
                except Exception as e:  # noqa: BLE001 - report every one
                    errors.append(f"{x}: {e}")
        return errors

    # ---- processes

    def defaults(self, **kw):
        """Defaults for start() (a test module's set-up); start()'s own arguments win."""
        self._defaults = kw
        return self

    def start(self, **kw):
        """One `ingest` (or `serve`) process and `workers` worker processes of `threads`
        threads each, all pointing at the simulators (the ingest not when ingest_crm=False).
        calls / concurrent: the Marketo simulator's limits and MARKETO_CALLS_PER_20S /
        MARKETO_MAX_CONCURRENT, set equal. outbound: Salesforce's Outbound Message points at
        the service; webhook: Marketo's webhook does; hooks: both. quiet: QUIET. Any other
        keyword is a setting of the service. Defaults: START, then World.defaults."""
        kw = {**START, **self._defaults, **kw}
        o = {k: kw.pop(k) for k in START}
        if o["calls"] is not None:
            self.mk.ctl("POST", "config", {"callsPer20s": o["calls"]})
            kw.setdefault("MARKETO_CALLS_PER_20S", o["calls"])
        if o["concurrent"] is not None:
            self.mk.ctl("POST", "config", {"maxConcurrent": o["concurrent"]})
            kw.setdefault("MARKETO_MAX_CONCURRENT", o["concurrent"])
        crm = crm_env if self.test_timings else crm_urls
        self.env = crm(self.sf, self.mk, **{**(QUIET if o["quiet"] else {}), **kw})
        self.ingest = self.services(self.redis.url, command=o["command"],
                                    name="serve" if o["command"] == "serve" else "ingest",
                                    **(self.env if o["ingest_crm"] else {}))
        for _ in range(o["workers"]):
            self.add_worker(o["threads"])
        if o["outbound"] or o["hooks"]:
            self.sf_outbound(True)
        if o["webhook"] or o["hooks"]:
            self.mk_webhook(True)
        return self

    def add_worker(self, threads=1, name=None, **env):
        """One more worker process (after start)."""
        svc = self.services(self.redis.url, command="worker",
                            name=name or f"w{len(self.workers) + 1}",
                            **{**self.env, "WORKERS": str(threads), **env})
        self.workers.append(svc)
        return svc

    @property
    def worker(self):
        """The first worker process (of a world with one)."""
        return self.workers[0]

    def procs(self):
        return [s for s in [self.ingest] + self.workers if s]

    def process(self, name):
        return next(s for s in self.procs() if s.name == name)

    def pids(self):
        """{name: pid} of the running service processes."""
        return {s.name: s.pid for s in self.procs() if s.proc is not None}

    def restart(self, svc):
        """A new process in place of a stopped one: same command, name, port and settings."""
        assert svc.proc is None, f"{svc.name} is still running"
        new = self.services(self.redis.url, command=svc.command, name=svc.name, **svc.env)
        if svc is self.ingest:
            self.ingest = new
        else:
            self.workers[self.workers.index(svc)] = new
        return new

    def sf_outbound(self, on=True):
        """Salesforce's Outbound Message on CampaignMember points at the service (or nowhere)."""
        url = f"http://127.0.0.1:{self.ingest.port}/webhooks/salesforce"
        self.sf.ctl("POST", "config", {"outboundUrl": url if on else None})

    def mk_webhook(self, on=True):
        """Marketo's "Program Status is Changed" webhook calls the service (or nobody)."""
        self.mk.ctl("POST", "config", {
            "webhookUrl": f"http://127.0.0.1:{self.ingest.port}/webhooks/marketo" if on else "",
            "webhookSecret": WEBHOOK_SECRET})

    def hooks(self, on):
        """Switches Salesforce's Outbound Message and Marketo's webhook on or off."""
        self.sf_outbound(on)
        self.mk_webhook(on)

    def stderr(self):
        return "\n".join(f"--- {s.command} {s.port}\n{s.stderr()[-3000:]}" for s in self.procs())

    def check_env(self, **extra):
        """The environment of `campaign-sync check` for this world."""
        env = base_env(self.redis.url, self.workdir, **self.env)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    # ---- seeding

    def campaign(self, name="Webinar", statuses=tuple(WEBINAR), default=None):
        default = default or statuses[0]
        seed = self.sf.ctl("POST", "seed", {"campaigns": [{
            "Name": name, "IsActive": True,
            "statuses": [{"Label": s, "IsDefault": s == default, "HasResponded": s in RESPONDED}
                         for s in statuses]}]})
        return seed["campaigns"][0]["Id"]

    def program(self, name="Webinar Nov", channel="Webinar", costs=None):
        p = {"name": name, "channel": channel}
        if costs is not None:
            p["costs"] = costs
        return self.mk.ctl("POST", "seed", {"programs": [p]})["programs"][0]["id"]

    def sf_people(self, n, prefix, kind="lead", marketo=True, company="Acme & Sons",
                  marketo_company=False):
        """n people who are in Salesforce (kind "lead" or "contact"), named First<i>
        <Prefix><i>, and Marketo leads with the same email unless marketo=False (with the
        company too when marketo_company)."""
        ps = [Person(f"{prefix}{i}@example.com", f"First{i}", f"{prefix.title()}{i}", company)
              for i in range(n)]
        self._seed_sf(ps, kind)
        if marketo:
            self._seed_mk(ps, ["firstName", "lastName"] + (["company"] if marketo_company else []))
        return ps

    def sf_person(self, prefix, **kw):
        return self.sf_people(1, prefix, **kw)[0]

    def mk_people(self, n=1, prefix="p", sf=None, marketo_names=True, **kw):
        """n people as Marketo leads (Person's defaults: Ann Lee of Acme Corp, or kw), without
        their names and company when marketo_names=False; sf="contact" or "lead" also seeds
        them in Salesforce."""
        ps = [Person(f"{prefix}{i}@example.com", **kw) for i in range(n)]
        self._seed_mk(ps, ["firstName", "lastName", "company"] if marketo_names else [])
        if sf:
            self._seed_sf(ps, sf)
        return ps

    def mk_person(self, *a, **kw):
        return self.mk_people(1, *a, **kw)[0]

    def _seed_sf(self, ps, kind):
        if kind == "contact":
            seeded = self.sf.ctl("POST", "seed", {"contacts": [
                {"FirstName": p.first, "LastName": p.last, "Email": p.email} for p in ps]})["contacts"]
        else:
            seeded = self.sf.ctl("POST", "seed", {"leads": [
                {"FirstName": p.first, "LastName": p.last, "Company": p.company, "Email": p.email}
                for p in ps]})["leads"]
        for p, r in zip(ps, seeded):
            p.sf_id = r["Id"]

    def _seed_mk(self, ps, fields):
        names = {"firstName": "first", "lastName": "last", "company": "company"}
        leads = self.mk.ctl("POST", "seed", {"leads": [
            {"email": p.email, **{f: getattr(p, names[f]) for f in fields}} for p in ps]})["leads"]
        for p, l in zip(ps, leads):
            p.lead = l["id"]

    def seed_members(self, campaign, people, status):
        """CampaignMember records that exist in Salesforce already (no Outbound Message)."""
        members = [{"CampaignId": campaign, "Status": status,
                    ("ContactId" if p.sf_id.startswith("003") else "LeadId"): p.sf_id} for p in people]
        return self.sf.ctl("POST", "seed", {"members": members})["members"]

    # ---- a person in either CRM (the simulator then fires its webhook, when pointed at us)

    def sf_human(self, campaign, p, status):
        """Adds or changes p's CampaignMember as a person in Salesforce would; the member."""
        key = "ContactId" if p.sf_id.startswith("003") else "LeadId"
        return self.sf.ctl("POST", "members", {"CampaignId": campaign, key: p.sf_id,
                                               "Status": status})["member"]

    def sf_human_delete(self, campaign, p):
        m = self.sf_member(campaign, p)
        self.sf.ctl("DELETE", f"members/{m['Id']}")

    def mk_human(self, program, p, status):
        """Sets p's program status as a person in Marketo would ("Not in Program" removes)."""
        self.mk.ctl("POST", "members", {"programId": program, "leadId": p.lead,
                                        "statusName": status})

    # ---- webhooks, as the CRMs send them

    def send(self, *bodies):
        """One Marketo webhook call (wire.hook bodies); several bodies go as one array."""
        body = bodies[0] if len(bodies) == 1 else "[" + ",".join(bodies) + "]"
        r = self.ingest.req("POST", "/webhooks/marketo", body, MK_HEADERS, timeout=30)
        assert r.status == 202, f"webhook: {r.status} {r.body!r}"
        return r.json()

    def post_om(self, records):
        """One Outbound Message of these CampaignMember records (wire.changed), acknowledged."""
        r = self.ingest.req("POST", "/webhooks/salesforce", om_body(records), SF_HEADERS,
                            timeout=30)
        assert r.status == 200 and b"<Ack>true</Ack>" in r.body, f"OM: {r.status} {r.body[:400]!r}"

    # ---- admin API

    def admin(self, method, path, body=None, expect=None, svc=None):
        r = (svc or self.ingest).req(method, path, body, admin_headers())
        if expect is not None:
            assert r.status == expect, f"{method} {path}: {r.status} {r.body[:800]!r}"
        return r

    def put_mapping(self, program, campaign, expect=(200, 201), wait_backfill=True, **fields):
        """PUT /v1/mappings/{program}; the response. A mapping created or enabled starts a
        backfill job (BACKFILL_ON_LINK): unless wait_backfill=False, it is waited for while a
        process runs jobs, so that what the test does next meets the two lists merged rather
        than the job under way."""
        r = self.admin("PUT", f"/v1/mappings/{program}", dict({"campaignId": campaign}, **fields))
        assert r.status in expect, f"PUT mapping: {r.status} {r.body!r}"
        if wait_backfill:
            self.wait_backfill(r)
        return r

    def map(self, program, campaign, expect=(200, 201), **fields):
        """PUT /v1/mappings/{program}; the mapping answered."""
        return self.put_mapping(program, campaign, expect, **fields).json()

    def wait_backfill(self, r, timeout=T):
        """Waits until the backfill job a mapping's answer names has ended, when a process
        that runs jobs (a worker, or `serve`) is up."""
        jid = r.json().get("backfillJob") if r.status in (200, 201) else None
        runs_jobs = [s for s in self.workers if s.proc is not None] or (
            self.ingest.command == "serve" and self.ingest.proc is not None)
        if not jid or not runs_jobs:
            return
        wait_until(lambda: self.admin("GET", f"/v1/jobs/{jid}").json().get("state") in (
            "done", "failed", "cancelled"), timeout, interval=0.05, what=f"backfill {jid} to end")

    def dead_letters(self, query=""):
        return self.admin("GET", "/v1/deadletters?limit=1000" + query, expect=200).json()["items"]

    def audit(self, query=""):
        return self.admin("GET", "/v1/audit" + query, expect=200).json()

    def trace(self, expect=200, **query):
        """GET /v1/people?<query>: a person's trace."""
        q = "&".join(f"{k}={v}" for k, v in query.items())
        r = self.admin("GET", f"/v1/people?{q}")
        assert r.status == expect, f"GET /v1/people?{q}: {r.status} {r.body[:500]!r}"
        return r.json()

    def trace_items(self, **query):
        return self.trace(**query)["items"]

    def wait_trace_items(self, n, what, timeout=T, **query):
        """Waits for n entries (or more) in the trace; returns them."""
        return wait_until(lambda: (lambda i: len(i) >= n and i)(self.trace_items(**query)),
                          timeout, what=what)

    # ---- what Salesforce holds and was sent

    def members(self, campaign):
        return self.sf.ctl("GET", f"members?campaignId={campaign}")["members"]

    def member(self, campaign, email):
        ms = [m for m in self.members(campaign) if (m["Email"] or "").lower() == email.lower()]
        assert len(ms) <= 1, f"{email} is a member of {campaign} {len(ms)} times: {ms}"
        return ms[0] if ms else None

    def status_of(self, campaign, email):
        m = self.member(campaign, email)
        return m and m["Status"]

    def wait_status(self, campaign, email, status, timeout=T):
        try:
            wait_until(lambda: self.status_of(campaign, email) == status, timeout,
                       what=f"{email} to be {status!r} in {campaign}")
        except AssertionError:
            raise AssertionError(f"{email} in {campaign} is {self.status_of(campaign, email)!r}, "
                                 f"expected {status!r}\n{self.stderr()}") from None

    def wait_gone(self, campaign, email, timeout=T):
        wait_until(lambda: self.member(campaign, email) is None, timeout,
                   what=f"{email} to leave {campaign}")

    def sf_members(self, campaign):
        """{email: Status} of the campaign's members."""
        return {(m["Email"] or "").lower(): m["Status"] for m in self.members(campaign)}

    def sf_member(self, campaign, p):
        """p's CampaignMember, found by p's email."""
        ms = [m for m in self.members(campaign) if (m["Email"] or "").lower() == p.email]
        assert len(ms) <= 1, ms
        return ms[0] if ms else None

    def sf_calls(self, since=0):
        return self.sf.calls(since)

    def sf_seq(self):
        return self.sf.ctl("GET", "calls")["next"]

    def cm_writes(self, since=0):
        return [c for c in self.sf_calls(since) if is_cm_write(c)]

    def sf_leads(self, email):
        return [l for l in self.sf.ctl("GET", "state")["leads"]
                if (l["Email"] or "").lower() == email.lower()]

    def campaign_record(self, cid):
        return next(c for c in self.sf.ctl("GET", "state")["campaigns"] if c["Id"] == cid)

    # ---- what Marketo holds and was sent

    def mk_members(self, program):
        """{leadId: statusName} of the program's members."""
        return {m["leadId"]: m["statusName"]
                for m in self.mk.ctl("GET", f"members?programId={program}")["members"]}

    def mk_status(self, program, lead):
        return self.mk_members(program).get(lead)

    def wait_mk(self, program, lead, status, timeout=T):
        """Waits until the lead's status in the program is `status` (None: not a member)."""
        try:
            wait_until(lambda: self.mk_status(program, lead) == status, timeout,
                       what=f"lead {lead} to be {status!r} in program {program}")
        except AssertionError:
            raise AssertionError(f"lead {lead} in program {program} is "
                                 f"{self.mk_status(program, lead)!r}, expected {status!r}\n"
                                 f"{self.stderr()}") from None

    def mk_leads(self, email):
        return [l for l in self.mk.ctl("GET", "state")["leads"]
                if (l["email"] or "").lower() == email.lower()]

    def mk_calls(self, since=0):
        return self.mk.calls(since)

    def mk_seq(self):
        return self.mk.ctl("GET", "calls")["next"]

    def status_calls(self, since=0, program=None):
        return [c for c in self.mk_calls(since) if c["method"] == "POST" and STATUS_CALL.match(c["path"])
                and (program is None or STATUS_CALL.match(c["path"]).group(1) == str(program))]

    def mk_writes(self, since=0):
        """Calls that change Marketo: member status, member removal, lead upserts."""
        return [c for c in self.mk_calls(since) if c["method"] == "POST" and
                (STATUS_CALL.match(c["path"]) or DELETE_CALL.match(c["path"])
                 or c["path"] == "/rest/v1/leads.json")]

    def mk_stats(self):
        return self.mk.ctl("GET", "stats")

    # ---- both CRMs

    def wait_both(self, program, campaign, want, timeout=T):
        """Waits until both CRMs hold exactly `want` ({Person: status}) as members."""
        sf_want = {p.email: s for p, s in want.items()}
        mk_want = {p.lead: s for p, s in want.items()}

        def agree():
            return self.sf_members(campaign) == sf_want and self.mk_members(program) == mk_want
        try:
            wait_until(agree, timeout, interval=0.1, what="both CRMs to agree")
        except AssertionError:
            raise AssertionError(
                f"Salesforce {self.sf_members(campaign)} (want {sf_want}), Marketo "
                f"{self.mk_members(program)} (want {mk_want})\n{self.stderr()}") from None

    # ---- metrics

    def metric(self, name, **labels):
        """A series summed over every running process (ingest and workers)."""
        return sum(metric_value(s.req("GET", "/metrics").body.decode(), name, **labels) or 0.0
                   for s in self.procs() if s.proc is not None)

    def wait_metric(self, name, at_least, timeout=T, **labels):
        wait_until(lambda: self.metric(name, **labels) >= at_least, timeout,
                   what=f"{name}{labels} >= {at_least} (now {self.metric(name, **labels)})")

    def worker_metric_values(self, name, **labels):
        """One value per running worker process (None where the series is missing)."""
        return [metric_value(w.req("GET", "/metrics").body.decode(), name, **labels)
                for w in self.workers if w.proc is not None]

    def worker_metric(self, name, **labels):
        """A series summed over the running worker processes only."""
        return sum(v or 0.0 for v in self.worker_metric_values(name, **labels))

    def process_metric(self, name, svc=None, **labels):
        """A series of one process (the ingest's unless svc), None when it is missing."""
        return metric_value((svc or self.ingest).req("GET", "/metrics").body.decode(), name,
                            **labels)

    # ---- the queue

    def queue_empty(self):
        """Nothing queued and nothing read and unacknowledged, in either queue."""
        return queue_len(self.redis) == 0 and queue_pending(self.redis) == 0

    def nothing_pending(self):
        """Nothing read by a worker and unacknowledged (entries may still wait to be read)."""
        return queue_pending(self.redis) == 0

    def settled(self):
        """No webhook waiting in either simulator and every queued event handled."""
        return (self.sf.ctl("GET", "outbound")["pending"] == 0
                and self.mk.ctl("GET", "webhooks")["pending"] == 0
                and queue_len(self.redis) == 0
                and queue_pending(self.redis) == 0
                and self.redis.cmd("ZCARD", "cs:retry") == 0)

    def wait_settled(self, timeout=T):
        wait_until(self.settled, timeout, interval=0.1, what="webhooks delivered and events handled")

    def record(self, campaign, lead):
        """The service's recorded member state (cs:member:<campaign15>:<lead>) as a dict."""
        rec = self.redis.cmd("HGETALL", "cs:member:%s:%s" % (campaign[:15], lead))
        return dict(zip(rec[0::2], rec[1::2]))


def no_dead_letters(w):
    dl = w.dead_letters()
    assert dl == [], f"unexpected dead letters: {json.dumps(dl, indent=1)[:2000]}"
