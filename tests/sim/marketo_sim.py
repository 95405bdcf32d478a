#!/usr/bin/python3
"""Marketo Engage REST simulator for campaign-sync's tests (Python 3.11 standard library only).

It plays the wire format of a real Marketo instance (identity, lead database, program members,
channels and programs) closely enough that a client that works against it works against the real
API, and it refuses what the real API refuses: missing or expired tokens, rate, concurrency and
quota limits, over-long batches, unknown statuses, backward status moves.  It also plays the
trigger campaign "Program Status is Changed" calling the user's webhook, and offers a control API
under /_sim/ (seed data, change members as a human would, inject faults, read the call log).
The Bulk Program Member Extract and its limits are in the "bulk extract" section near the end.

    /usr/bin/python3 tests/sim/marketo_sim.py --port 0 [--host 127.0.0.1] [--client-id ID]
        [--client-secret S] [--calls-per-20s 100] [--max-concurrent 10] [--daily-quota 50000]
        [--latency-ms 0] [--token-ttl 3600] [--upsert-window-ms 30] [--webhook-url URL]
        [--webhook-secret S] [--timezone UTC]

Prints exactly one line, ``READY port=<port>``, on stdout once listening; SIGTERM/SIGINT stop it.

Sources: /work/shared/reference/marketo-api.md and the fixtures in /work/shared/fixtures/marketo.
Behaviours no public source pins down are marked GUESS where they are implemented:
  * request-level error texts for 1003 (missing/unknown filterType, over 300 values, bad
    batchSize or paging token, unknown action), 1011 for an unsupported lookupField;
  * 1013 "Object not found" for an unknown program on the program-member endpoints;
  * 1025 "Program status not found" for an unknown statusName on members/status.json (the code
    is documented for the older, superseded leads/programs/{id}/status.json endpoint) and for
    "Not in Program" there (removal goes through members/delete.json);
  * 1002 "Missing value for the required parameter '<p>'" for a missing statusName or input;
  * the default member fields are always returned, requested ``fields`` are added to them;
  * a missing lookup value is skipped with 1003; lookupField ``id`` only with updateOnly;
  * maxReturn over 200 on the asset API is 1003; updatedAt member queries need startAt/endAt
    at most 7 days apart (documented) and fail with 1003 otherwise;
  * an empty lead token renders as ``null`` in a webhook body; non-ASCII is sent as UTF-8; no
    X-Webhook-Secret header is sent while no secret is configured;
Deliberate choices: failure envelopes carry no ``result`` (as real ones); skipped program-member
items carry ``seq`` and ``reasons`` but no ``leadId`` (as the doc sample); success envelopes
always carry ``errors: []`` and ``warnings: []`` although real lead-database answers often omit
them, so a client must not require them.
"""
import argparse
import base64
import collections
import copy
import csv
import hashlib
import io
import json
import random
import re
import signal
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zoneinfo
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY_BYTES = 1024 * 1024          # real: "413 if the Request Payload exceeds 1MB"
MAX_URI_BYTES = 8 * 1024              # real: "414 ... when the URI of a GET request exceeds 8KB"
MAX_BATCH = 300                       # lead database batch limit (filterValues, input, batchSize)
MAX_ASSET_RETURN = 200                # asset API maxReturn limit
RATE_WINDOW_S = 20.0
WEBHOOK_TIMEOUT_S = 30.0              # Marketo waits at most 30 s for a webhook, never retries
NOT_IN_PROGRAM = "Not in Program"
CENTRAL = zoneinfo.ZoneInfo("America/Chicago")
NO_ASSETS = "No assets found for the given search criteria."

# Response-level messages as the error-code reference words them; %s slots are filled per call.
ERROR_MESSAGES = {
    "601": "Access token invalid", "602": "Access token expired", "603": "Access denied",
    "604": "Request time-out", "605": "HTTP Method not supported",
    "606": "Max rate limit '%s' exceeded with in '%s' secs", "607": "Daily quota reached",
    "608": "API Temporarily Unavailable", "609": "Invalid JSON",
    "610": "Requested resource not found", "611": "System error", "612": "Invalid Content Type",
    "613": "Invalid Multipart Request", "614": "Invalid Subscription",
    "615": "Concurrent access limit reached", "616": "Invalid subscription type",
    "701": "%s cannot be blank", "702": "No data found for a given search scenario",
    "709": "Business Rule Violation", "713": "Transient Error", "719": "Lock wait timeout exception",
    "1001": "Invalid value '%s'. Required of type '%s'",
    "1002": "Missing value for the required parameter '%s'", "1003": "Invalid data",
    "1004": "Lead not found", "1005": "Lead already exists", "1006": "Field '%s' not found",
    "1007": "Multiple leads match the lookup criteria", "1011": "Field '%s' not supported",
    "1013": "Object not found", "1025": "Program status not found",
    "1029": "Too many jobs in queue", "1037": "Lead was skipped",
}
SKIP_PAST_STATUS = "Lead skipped because it is already in or past this status"
SKIP_NOT_IN_PROGRAM = "Lead not in program"


class MarketoError(Exception):
    """A response-level (``success:false``) or record-level (``skipped``) Marketo error."""

    def __init__(self, code, *args, message=None):
        self.code = str(code)
        template = ERROR_MESSAGES[self.code]
        self.message = message if message is not None else (template % args if args else template)
        super().__init__(f"{self.code} {self.message}")

    def reason(self):
        return {"code": self.code, "message": self.message}


def utcnow():
    return datetime.now(timezone.utc)


def asset_time(dt):
    """Asset API dates look like ``2015-07-15T11:40:58Z+0000`` (not ISO-8601: clients must cope)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ+0000")


def lead_time(dt):
    """Lead database dates look like ``2020-08-30T06:26:52Z``."""
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def request_id():
    return f"{random.randrange(0x100, 0xfffff):x}#{int(time.time() * 1000):x}"


def as_int(value):
    """Coerce a JSON or query value to int as Marketo's Java layer does (digits only)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise MarketoError("1001", value, "Integer")


def split_csv(value):
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class PageToken:
    """Opaque paging tokens (base32 with ``=`` padding like the real ones) carrying an offset."""

    @staticmethod
    def encode(kind, offset):
        return base64.b32encode(f"{kind}:{offset}".encode()).decode()

    @staticmethod
    def decode(kind, token):
        try:
            k, off = base64.b32decode(token.encode()).decode().split(":")
            if k == kind and off.isdigit():
                return int(off)
        except (ValueError, UnicodeError):
            pass
        raise MarketoError("1003", message="Invalid nextPageToken")  # GUESS: exact text


def page(items, kind, query):
    """Slice ``items`` by ``batchSize`` (default and maximum 300) and ``nextPageToken``;
    returns (items, envelope extras)."""
    size = as_int(query.get("batchSize", MAX_BATCH))
    if not 1 <= size <= MAX_BATCH:
        raise MarketoError("1003", message=f"Invalid batchSize {size}, must be 1-{MAX_BATCH}")  # GUESS
    offset = PageToken.decode(kind, query["nextPageToken"]) if query.get("nextPageToken") else 0
    chunk = items[offset:offset + size]
    extra = {"moreResult": offset + size < len(items)}
    if extra["moreResult"]:
        extra["nextPageToken"] = PageToken.encode(kind, offset + size)
    return chunk, extra


class SimConfig:
    """Run-time settings; the command line gives the start values, ``/_sim/config`` changes them
    and ``/_sim/reset`` restores the start values.  Host, port and client credentials are fixed
    at start-up."""

    FIELDS = {  # wire name -> (type, validator)
        "callsPer20s": (int, lambda v: v >= 1), "maxConcurrent": (int, lambda v: v >= 1),
        "dailyQuota": (int, lambda v: v >= 1), "latencyMs": (int, lambda v: v >= 0),
        "tokenTtl": (int, lambda v: v >= 1), "upsertWindowMs": (int, lambda v: v >= 0),
        "webhookUrl": (str, lambda v: v == "" or v.startswith(("http://", "https://"))),
        "webhookSecret": (str, lambda v: True), "timezone": (str, lambda v: bool(zoneinfo.ZoneInfo(v))),
        "includeStatus": (bool, lambda v: True), "fireOnApi": (bool, lambda v: True),
    }

    def __init__(self, fixed, settings):
        self._lock = threading.Lock()
        self._fixed = dict(fixed)
        self._values = {}
        self.update(settings)
        missing = set(self.FIELDS) - set(self._values)
        if missing:
            raise ValueError(f"missing settings {sorted(missing)}")
        self._initial = dict(self._values)

    def __getattr__(self, name):
        for part in ("_values", "_fixed"):
            values = self.__dict__.get(part, {})
            if name in values:
                return values[name]
        raise AttributeError(name)

    def update(self, changes):
        """Validate every change first, then apply them together; raises ValueError."""
        clean = {}
        for key, value in changes.items():
            if key not in self.FIELDS:
                raise ValueError(f"unknown config key {key!r}")
            kind, valid = self.FIELDS[key]
            if value is None and kind is str:
                value = ""
            if type(value) is not kind:
                raise ValueError(f"{key} must be a {kind.__name__}")
            try:
                ok = valid(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                ok = False
            if not ok:
                raise ValueError(f"invalid value for {key}: {value!r}")
            clean[key] = value
        with self._lock:
            self._values.update(clean)

    def restore(self):
        with self._lock:
            self._values = dict(self._initial)

    def as_dict(self):
        with self._lock:
            return dict(self._values)


class TokenStore:
    """Access tokens of the identity service.  Like the real one, asking again before expiry
    returns the same token with its remaining lifespan, so a client cannot refresh early."""

    def __init__(self, config):
        self._config = config
        self._lock = threading.Lock()
        self._expiry = {}          # token -> monotonic expiry (kept after expiry: 602, not 601)
        self._current = None

    def issue(self):
        with self._lock:
            now = time.monotonic()
            if self._current is None or self._expiry[self._current] - now < 1:
                self._current = f"{uuid.uuid4()}:ab"
                self._expiry[self._current] = now + self._config.tokenTtl
            return self._current, int(self._expiry[self._current] - now)

    def check(self, token):
        """Raise 601 for a missing/unknown token, 602 for an expired one."""
        with self._lock:
            expiry = self._expiry.get(token or "")
        if expiry is None:
            raise MarketoError("601")
        if expiry <= time.monotonic():
            raise MarketoError("602")

    def expire_all(self):
        with self._lock:
            self._expiry = {t: 0.0 for t in self._expiry}


class RateLimiter:
    """Instance-wide limits over all callers together: calls per sliding 20 s (606), calls in
    progress (615) and the daily quota (607), plus the counters the control API reports.

    Every call that reaches the limiter counts: a call refused with 606/615/607 is still a call
    in the 20-s window and towards the daily quota.  The error-code reference marks only 601,
    602, 604, 605, 608 and 611 as "not counted against your daily quota, or your rate limit", so
    a client that keeps hammering through 606 keeps itself locked out, as on a real instance.
    """

    def __init__(self, config):
        self._config = config
        self._lock = threading.Lock()
        self._in_flight = 0
        self.reset()

    def reset(self):
        """Forget the window, the quota and the counters; calls still in progress keep their slot."""
        with self._lock:
            self._window = collections.deque()
            self._quota_day = None
            self._day_calls = 0
            self._stats = dict(totalCalls=0, rateLimited606=0, concurrencyLimited615=0,
                               quotaExceeded607=0, maxConcurrency=0, maxCallsIn20s=0,
                               identityCalls=0, authErrors=0, faultsFired=0)

    @staticmethod
    def _today():
        # Adobe "Error Codes", 607: the quota resets daily at 12:00 AM US Central time (CST in
        # winter, CDT in summer: the America/Chicago zone).
        return utcnow().astimezone(CENTRAL).date()

    def admit(self):
        """Take a slot for a call or raise the limit error; on success the caller must release()."""
        with self._lock:
            now = time.monotonic()
            while self._window and self._window[0] <= now - RATE_WINDOW_S:
                self._window.popleft()
            earlier = len(self._window)
            self._window.append(now)
            day = self._today()
            if day != self._quota_day:
                self._quota_day, self._day_calls = day, 0
            self._day_calls += 1
            s = self._stats
            s["totalCalls"] += 1
            s["maxCallsIn20s"] = max(s["maxCallsIn20s"], len(self._window))
            if self._day_calls > self._config.dailyQuota:
                s["quotaExceeded607"] += 1
                raise MarketoError("607")
            if earlier >= self._config.callsPer20s:
                s["rateLimited606"] += 1
                raise MarketoError("606", self._config.callsPer20s, int(RATE_WINDOW_S))
            if self._in_flight >= self._config.maxConcurrent:
                s["concurrencyLimited615"] += 1
                raise MarketoError("615")
            self._in_flight += 1
            s["maxConcurrency"] = max(s["maxConcurrency"], self._in_flight)

    def release(self):
        with self._lock:
            self._in_flight -= 1

    def count(self, counter):
        with self._lock:
            self._stats[counter] += 1

    def stats(self):
        with self._lock:
            now = time.monotonic()
            return dict(self._stats, inFlight=self._in_flight, dailyCalls=self._day_calls,
                        callsInLast20s=sum(1 for t in self._window if t > now - RATE_WINDOW_S))


class CallLog:
    """Every non-control request, in arrival order, for tests to inspect what a client sent."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seq = 0
        self._calls = []

    def add(self, record):
        with self._lock:
            self._seq += 1
            self._calls.append(dict(record, seq=self._seq))

    def since(self, seq):
        with self._lock:
            calls = [c for c in self._calls if c["seq"] > seq]
            return calls, (calls[-1]["seq"] if calls else max(seq, 0))

    def clear(self):
        """Drop the records; sequence numbers keep growing so a poller's ``since`` stays valid."""
        with self._lock:
            self._calls = []


class FaultInjector:
    """Rules that make matching requests fail the way a real instance sometimes does."""

    KINDS = ("error", "http", "expire_tokens", "delay", "drop")

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._next_id = 1

    def add(self, rules):
        """Validate and append rules; ``count`` 0 means unlimited, a roll that misses
        (``probability``) does not use up the count.  Raises ValueError."""
        parsed = []
        for r in rules:
            if not isinstance(r, dict) or r.get("kind") not in self.KINDS:
                raise ValueError(f"each rule needs kind in {self.KINDS}")
            rule = {"method": (r.get("method") or "").upper() or None, "path": r.get("path"),
                    "kind": r["kind"], "count": r.get("count", 1),
                    "probability": float(r.get("probability", 1.0))}
            if rule["path"] is not None:
                re.compile(rule["path"])
            if rule["kind"] == "error":
                code = rule["code"] = str(r.get("code", ""))
                if code not in ERROR_MESSAGES or ("%s" in ERROR_MESSAGES[code] and code != "606"):
                    raise ValueError(f"error rule needs a Marketo code with a fixed message "
                                     f"(604, 606, 608, 611, 615, ...), got {code!r}")
            elif rule["kind"] == "http":
                rule["status"] = int(r.get("status", 503))
            elif rule["kind"] == "delay":
                rule["delay_ms"] = int(r.get("delay_ms", 1000))
            if type(rule["count"]) is not int or rule["count"] < 0:
                raise ValueError("count must be an integer >= 0")
            parsed.append(rule)
        with self._lock:
            for rule in parsed:
                rule["id"] = self._next_id
                self._next_id += 1
                self._rules.append(rule)
        return self.rules()

    def rules(self):
        with self._lock:
            return [dict(r) for r in self._rules]

    def clear(self):
        with self._lock:
            self._rules = []

    def take(self, method, path):
        """The first matching rule that fires for this request (consuming one of its count)."""
        with self._lock:
            for rule in self._rules:
                if rule["method"] and rule["method"] != method:
                    continue
                if rule["path"] and not re.search(rule["path"], path):
                    continue
                if random.random() >= rule["probability"]:
                    continue
                if rule["count"]:
                    rule["count"] -= 1
                    if rule["count"] == 0:
                        self._rules.remove(rule)
                return dict(rule)
        return None


class WebhookNotifier:
    """Plays the trigger campaign "Program Status is Changed" with a Call Webhook flow step.

    The body is the template SPEC section 7 recommends, rendered the way Marketo renders tokens:
    string tokens wrapped in double quotes by Marketo itself (JSON-escaped: the request token
    encoding is JSON), numeric ids bare, ``{{system.dateTime}}`` as ``yyyy-MM-dd HH:mm:ss`` in
    the account time zone with no offset.  No token carries the member status; ``includeStatus``
    models a template that hard-codes it.  Calls go out one at a time (Marketo runs webhooks
    serially), with one attempt and a 30-s timeout: Marketo does not retry.
    """

    TEMPLATE = ('{"type":"member_status_changed","programId":{{program.id}},"leadId":{{lead.Id}},'
                '"email":{{lead.Email Address}},"firstName":{{lead.First Name}},'
                '"lastName":{{lead.Last Name}},"company":{{company.Company Name}},'
                '%s"occurredAt":{{system.dateTime}}}')
    NUMERIC_TOKENS = {"program.id", "lead.Id"}

    def __init__(self, config):
        self._config = config
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._log = []
        self._seq = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    @classmethod
    def render(cls, tokens, tz_name, status=None):
        """The body bytes Marketo would send for these token values (None renders as null)."""
        tokens = dict(tokens, **{"system.dateTime": datetime.now(zoneinfo.ZoneInfo(tz_name))
                                 .strftime("%Y-%m-%d %H:%M:%S")})
        hard_coded = "" if status is None else '"status":%s,' % json.dumps(status, ensure_ascii=False)

        def token(match):
            value = tokens[match.group(1)]
            if value is None or value == "":
                return "null"
            if match.group(1) in cls.NUMERIC_TOKENS:
                return str(int(value))
            return json.dumps(str(value), ensure_ascii=False)

        return re.sub(r"\{\{([^}]+)\}\}", token, cls.TEMPLATE % hard_coded).encode("utf-8")

    def status_changed(self, program, lead, new_status):
        """Queue the webhook call for one member status change (a removal is "Not in Program")."""
        cfg = self._config.as_dict()
        if not cfg["webhookUrl"]:
            return
        tokens = {"program.id": program["id"], "lead.Id": lead["id"],
                  "lead.Email Address": lead.get("email"), "lead.First Name": lead.get("firstName"),
                  "lead.Last Name": lead.get("lastName"), "company.Company Name": lead.get("company")}
        body = self.render(tokens, cfg["timezone"], new_status if cfg["includeStatus"] else None)
        headers = {"Content-Type": "application/json"}
        if cfg["webhookSecret"]:
            headers["X-Webhook-Secret"] = cfg["webhookSecret"]
        with self._cond:
            self._queue.append((cfg["webhookUrl"], headers, body))
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                url, headers, body = self._queue.popleft()
            self._deliver(url, headers, body)

    def _deliver(self, url, headers, body):
        record = {"url": url, "headers": headers, "body": body.decode("utf-8"), "status": None,
                  "response": None, "error": None, "t_start": time.time()}
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT_S) as resp:
                record["status"], record["response"] = resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            record["status"], record["response"] = e.code, e.read().decode("utf-8", "replace")
        except (OSError, ValueError) as e:
            record["error"] = f"{type(e).__name__}: {e}"
        record["t_end"] = time.time()
        with self._cond:
            self._seq += 1
            self._log.append(dict(record, seq=self._seq))

    def log(self, since=0):
        with self._cond:
            return [dict(r) for r in self._log if r["seq"] > since]

    def pending(self):
        with self._cond:
            return len(self._queue)

    def clear(self):
        with self._cond:
            self._queue.clear()
            self._log = []

    def close(self):
        with self._cond:
            self._closing = True
            self._queue.clear()
            self._cond.notify()
        self._thread.join(timeout=2)


def default_channels():
    """The two channels of the get-channels fixture plus a webinar channel (event programs)."""
    fixture_time = datetime(2015, 7, 15, 11, 40, 57, tzinfo=timezone.utc)

    def statuses(*entries):
        return [{"name": NOT_IN_PROGRAM, "step": 0, "success": False}] + \
            [{"name": n, "step": s, "success": ok} for n, s, ok in entries]

    return [
        {"id": 3, "name": "Blog", "applicableProgramType": "program", "createdAt": fixture_time,
         "progressionStatuses": statuses(("Invited", 10, False), ("Visited Booth", 20, False),
                                         ("Influenced", 30, True))},
        {"id": 4, "name": "Online Advertising", "applicableProgramType": "program",
         "createdAt": fixture_time + timedelta(seconds=1),
         "progressionStatuses": statuses(("Invited", 10, False), ("Registered", 20, False),
                                         ("No Show", 30, False), ("Attended", 40, True))},
        {"id": 5, "name": "Webinar", "applicableProgramType": "event", "createdAt": fixture_time,
         "progressionStatuses": statuses(("Invited", 10, False), ("Registered", 20, False),
                                         ("No Show", 30, False), ("Attended", 40, True),
                                         ("Attended On-demand", 40, True))},
    ]


PROGRAM_TYPES = {"program": "Default", "event": "Event", "email": "Email", "nurture": "Engagement"}


class LeadTable(dict):
    """The lead database: leads by id, with an index by lower-case email (a lookup of 300 emails
    among 100,000 leads scanned them all: seconds per call) and the highest id (new ids)."""

    def __init__(self):
        super().__init__()
        self._by_email = collections.defaultdict(set)
        self.max_id = 0

    @staticmethod
    def _key(lead):
        return (lead.get("email") or "").lower()

    def __setitem__(self, lead_id, lead):
        if lead_id in self:
            self._by_email[self._key(self[lead_id])].discard(lead_id)
        super().__setitem__(lead_id, lead)
        self._by_email[self._key(lead)].add(lead_id)
        self.max_id = max(self.max_id, lead_id)

    def pop(self, lead_id, *default):
        lead = super().pop(lead_id, *default)
        if lead is not None and lead is not (default[0] if default else None):
            self._by_email[self._key(lead)].discard(lead_id)
        return lead

    def update_lead(self, lead_id, fields):
        """A lead's fields changed in place (its email may be among them)."""
        lead = self[lead_id]
        self._by_email[self._key(lead)].discard(lead_id)
        lead.update(fields)
        self._by_email[self._key(lead)].add(lead_id)

    def by_email(self, email):
        return [self[i] for i in sorted(self._by_email.get((email or "").lower(), ()))]


class MarketoState:
    """Leads, channels, programs and program members, behind one lock, with the rules the real
    instance applies to them.  Member status changes are reported to the webhook notifier."""

    LEAD_FIELDS = ("id", "email", "firstName", "lastName", "company", "sfdcLeadId",
                   "sfdcContactId", "createdAt", "updatedAt")
    LEAD_WRITABLE = {"email", "firstName", "lastName", "company", "sfdcLeadId", "sfdcContactId"}
    LEAD_DEFAULT_FIELDS = ("id", "email", "firstName", "lastName", "updatedAt", "createdAt")
    LEAD_FILTERS = ("id", "email", "sfdcLeadId", "sfdcContactId")
    LEAD_ACTIONS = ("createOnly", "updateOnly", "createOrUpdate", "createDuplicate")
    MEMBER_DEFAULT_FIELDS = ("leadId", "programId", "membershipDate", "reachedSuccess", "acquiredBy")
    MEMBER_FIELDS = MEMBER_DEFAULT_FIELDS + ("statusName", "createdAt", "updatedAt", "isExhausted",
                                             "program", "reachedSuccessDate", "statusReason")
    MEMBER_SEARCHABLE = ("leadId", "reachedSuccess", "statusName")

    def __init__(self, config, notifier):
        self._config = config
        self._notifier = notifier
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.channels = {c["name"]: dict(c, updatedAt=c["createdAt"]) for c in default_channels()}
            self.programs = {}
            self.leads = LeadTable()
            self.members = {}      # (programId, leadId) -> membership dict

    # ---------------------------------------------------------------- lookups
    def _program(self, program_id):
        program = self.programs.get(program_id)
        if program is None:
            raise MarketoError("1013")   # GUESS: code and text for an unknown program
        return program

    def _statuses(self, program):
        return {s["name"]: s for s in self.channels[program["channel"]]["progressionStatuses"]}

    def _leads_by(self, field, value):
        if field == "email":
            return self.leads.by_email(value)
        if field == "id":
            lead = self.leads.get(value)
            return [lead] if lead else []
        return [l for l in self.leads.values() if l[field] == value and value is not None]

    # ---------------------------------------------------------------- leads
    def query_leads(self, filter_type, values, fields):
        if filter_type == "id":
            values = [as_int(v) for v in values]
        with self.lock:
            found = {l["id"]: l for v in values for l in self._leads_by(filter_type, v)}
            return [{f: self._lead_value(found[i], f) for f in fields} for i in sorted(found)]

    @staticmethod
    def _lead_value(lead, field):
        value = lead[field]
        return lead_time(value) if field in ("createdAt", "updatedAt") else value

    def sync_leads(self, action, lookup_field, inputs):
        """Create/update leads.  A creation looks up, waits ``upsertWindowMs`` without holding
        the lock, then inserts without looking again: two overlapping upserts for a new email
        both create a lead, as concurrent upserts do on a real instance."""
        with self.lock:
            plans = [self._plan_lead(action, lookup_field, record) for record in inputs]
        if any(p[0] == "create" for p in plans) and action != "createDuplicate":
            time.sleep(self._config.upsertWindowMs / 1000.0)
        results, created = [], {}
        with self.lock:
            for kind, arg, fields in plans:
                key = (fields or {}).get(lookup_field)
                key = key.lower() if lookup_field == "email" and isinstance(key, str) else key
                if kind == "create" and action != "createDuplicate" and key in created:
                    if action == "createOnly":   # the batch itself created it a moment ago
                        kind, arg = "skip", MarketoError("1005")
                    else:
                        kind, arg = "update", created[key]
                if kind == "skip":
                    results.append({"status": "skipped", "reasons": [arg.reason()]})
                elif kind == "update":
                    self.leads.update_lead(arg, dict(fields, updatedAt=utcnow()))
                    lead = self.leads[arg]
                    results.append({"id": lead["id"], "status": "updated"})
                else:
                    lead = self._insert_lead(fields)
                    created[key] = lead["id"]
                    results.append({"id": lead["id"], "status": "created"})
        return results

    def _plan_lead(self, action, lookup_field, record):
        """Decide under the lock what one input record will do: (kind, lead id|error, fields)."""
        if not isinstance(record, dict):
            return "skip", MarketoError("1003"), None
        fields = {k: v for k, v in record.items() if k != "id"}
        unknown = [k for k in fields if k not in self.LEAD_WRITABLE]
        if unknown:
            return "skip", MarketoError("1006", unknown[0]), None
        if action == "createDuplicate":
            return "create", None, fields
        key = record.get(lookup_field)
        if key in (None, ""):
            return "skip", MarketoError(
                "1003", message=f"Value for lookup field '{lookup_field}' not specified"), None  # GUESS
        if lookup_field == "id":
            key = as_int(key)
        matches = self._leads_by(lookup_field, key)
        if len(matches) > 1 and action != "createOnly":
            return "skip", MarketoError("1007"), None
        if action == "updateOnly":
            return ("update", matches[0]["id"], fields) if matches else ("skip", MarketoError("1004"), None)
        if matches:
            return ("skip", MarketoError("1005"), None) if action == "createOnly" \
                else ("update", matches[0]["id"], fields)
        return "create", None, fields

    def _insert_lead(self, fields, lead_id=None):
        lead_id = lead_id or self.leads.max_id + 1
        if lead_id in self.leads:
            raise ValueError(f"lead id {lead_id} exists")
        now = utcnow()
        lead = {f: None for f in self.LEAD_FIELDS}
        lead.update(fields, id=lead_id, createdAt=now, updatedAt=now)
        self.leads[lead_id] = lead
        return lead

    # ---------------------------------------------------------------- members
    def query_members(self, program_id, filter_type, values, fields, start=None, end=None):
        with self.lock:
            program = self._program(program_id)
            rows = sorted((k[1], m) for k, m in self.members.items() if k[0] == program_id)
            if filter_type == "leadId":
                wanted = {as_int(v) for v in values}
                rows = [r for r in rows if r[0] in wanted]
            elif filter_type == "statusName":
                rows = [r for r in rows if r[1]["statusName"] in values]
            elif filter_type == "reachedSuccess":
                wanted = {v.lower() == "true" for v in values}
                rows = [r for r in rows if r[1]["reachedSuccess"] in wanted]
            else:   # updatedAt
                rows = [r for r in rows if start <= r[1]["updatedAt"] <= end]
            return [self._member_view(program, lead_id, m, fields) for lead_id, m in rows]

    @staticmethod
    def _member_view(program, lead_id, m, fields):
        values = {"leadId": lead_id, "programId": program["id"], "program": program["name"],
                  "membershipDate": lead_time(m["membershipDate"]), "statusName": m["statusName"],
                  "reachedSuccess": m["reachedSuccess"], "acquiredBy": m["acquiredBy"],
                  "createdAt": lead_time(m["createdAt"]), "updatedAt": lead_time(m["updatedAt"]),
                  "reachedSuccessDate": lead_time(m["reachedSuccessDate"]), "isExhausted": False,
                  "statusReason": None}
        return {f: values[f] for f in fields}

    def set_member_status(self, program_id, status_name, lead_ids):
        """members/status.json: upsert each lead's status, never moving a member backwards."""
        with self.lock:
            program = self._program(program_id)
            status = self._statuses(program).get(status_name)
            if status is None or status["step"] == 0:
                raise MarketoError("1025")
            results = []
            for seq, lead_id in enumerate(lead_ids):
                try:
                    outcome = self._apply_status(program, lead_id, status, via_api=True,
                                                 forward_only=True)
                    results.append({"seq": seq, "status": outcome, "leadId": lead_id})
                except MarketoError as e:   # the doc sample leaves leadId out of skipped items
                    results.append({"seq": seq, "status": "skipped", "reasons": [e.reason()]})
            return results

    def _apply_status(self, program, lead_id, status, via_api, forward_only):
        lead = self.leads.get(lead_id)
        if lead is None:
            raise MarketoError("1004")
        key = (program["id"], lead_id)
        member = self.members.get(key)
        steps = self._statuses(program)
        if member is not None:
            current = steps[member["statusName"]]
            # Adobe REST docs "Program Members" > Program Member Status: skipped from a greater step only
            if member["statusName"] == status["name"] or forward_only and current["step"] > status["step"]:
                raise MarketoError("1037", message=SKIP_PAST_STATUS)
        now = utcnow()
        outcome = "updated" if member else "created"
        if member is None:
            member = self.members[key] = {"membershipDate": now, "createdAt": now, "acquiredBy": False,
                                          "reachedSuccess": False, "reachedSuccessDate": None}
        member.update(statusName=status["name"], updatedAt=now)
        if status["success"] and not member["reachedSuccess"]:
            member.update(reachedSuccess=True, reachedSuccessDate=now)
        if not via_api or self._config.fireOnApi:
            self._notifier.status_changed(program, lead, status["name"])
        return outcome

    def delete_members(self, program_id, lead_ids, via_api=True):
        with self.lock:
            program = self._program(program_id)
            results = []
            for seq, lead_id in enumerate(lead_ids):
                if self.members.pop((program_id, lead_id), None) is None:
                    results.append({"seq": seq, "status": "skipped", "reasons": [
                        MarketoError("1037", message=SKIP_NOT_IN_PROGRAM).reason()]})
                    continue
                results.append({"seq": seq, "status": "deleted", "leadId": lead_id})
                if not via_api or self._config.fireOnApi:
                    self._notifier.status_changed(program, self.leads[lead_id], NOT_IN_PROGRAM)
            return results

    def delete_leads(self, lead_ids):
        """leads/delete.json (Adobe "Leads", Delete): each lead goes with its memberships.
        GUESS: an unknown id is skipped with 1004, and a deletion fires no trigger."""
        with self.lock:
            results = []
            for lead_id in lead_ids:
                if self.leads.pop(lead_id, None) is None:
                    results.append({"id": lead_id, "status": "skipped",
                                    "reasons": [MarketoError("1004").reason()]})
                    continue
                for key in [k for k in self.members if k[1] == lead_id]:
                    del self.members[key]
                results.append({"id": lead_id, "status": "deleted"})
            return results

    # ---------------------------------------------------------------- assets
    def channel_view(self, c):
        return {"id": c["id"], "name": c["name"], "applicableProgramType": c["applicableProgramType"],
                "progressionStatuses": [{"name": s["name"], "step": s["step"], "description": None,
                                         "hidden": s.get("hidden", False), "success": s["success"]}
                                        for s in c["progressionStatuses"]],
                "createdAt": asset_time(c["createdAt"]), "updatedAt": asset_time(c["updatedAt"])}

    def list_channels(self):
        with self.lock:
            return [self.channel_view(c) for c in sorted(self.channels.values(), key=lambda c: c["id"])]

    def channel_by_name(self, name):
        with self.lock:
            c = self.channels.get(name)
            return [self.channel_view(c)] if c else []

    @staticmethod
    def program_view(p):
        return {"id": p["id"], "name": p["name"], "description": p["description"],
                "createdAt": asset_time(p["createdAt"]), "updatedAt": asset_time(p["updatedAt"]),
                "url": f"https://app-sim.marketo.com/#PG{p['id']}A1", "type": p["type"],
                "channel": p["channel"], "folder": {"type": "Folder", "value": 15,
                                                    "folderName": "Marketing Activities"},
                "status": p["status"], "workspace": "Default",
                "costs": copy.deepcopy(p["costs"]) or None, "sfdcId": p["sfdcId"],
                "sfdcName": p["sfdcName"]}

    def program_by_id(self, program_id):
        with self.lock:
            p = self.programs.get(program_id)
            return [self.program_view(p)] if p else []

    # ---------------------------------------------------------------- control side
    def seed(self, data):
        """Add channels (replacing same-named ones), programs, leads and members; all or nothing.
        Raises ValueError naming the bad record."""
        with self.lock:
            saved = copy.deepcopy((self.channels, self.programs, self.leads, self.members))
            try:
                return {"channels": [self.channel_view(self._seed_channel(c)) for c in data.get("channels", [])],
                        "programs": [self.program_view(self._seed_program(p)) for p in data.get("programs", [])],
                        "leads": [self._lead_control_view(self._seed_lead(l)) for l in data.get("leads", [])],
                        "members": [self._seed_member(m) for m in data.get("members", [])]}
            except (KeyError, TypeError, ValueError, MarketoError) as e:
                self.channels, self.programs, self.leads, self.members = saved
                raise ValueError(f"seed rejected: {e}") from None

    def _seed_channel(self, c):
        statuses = [{"name": s["name"], "step": int(s["step"]), "success": bool(s.get("success", False)),
                     "hidden": bool(s.get("hidden", False))} for s in c["progressionStatuses"]]
        if not any(s["step"] == 0 for s in statuses):
            statuses.insert(0, {"name": NOT_IN_PROGRAM, "step": 0, "success": False, "hidden": False})
        if len({s["name"] for s in statuses}) != len(statuses):
            raise ValueError(f"channel {c['name']!r} repeats a status name")
        old = self.channels.get(c["name"])
        now = utcnow()
        channel = {"id": old["id"] if old else max(x["id"] for x in self.channels.values()) + 1,
                   "name": c["name"], "applicableProgramType": c.get("applicableProgramType", "program"),
                   "progressionStatuses": sorted(statuses, key=lambda s: s["step"]),
                   "createdAt": old["createdAt"] if old else now, "updatedAt": now}
        self.channels[c["name"]] = channel
        return channel

    def _seed_program(self, p):
        channel = self.channels.get(p["channel"])
        if channel is None:
            raise ValueError(f"program {p.get('name')!r}: unknown channel {p['channel']!r}")
        program_id = int(p.get("id") or max(self.programs, default=1000) + 1)
        if program_id in self.programs:
            raise ValueError(f"program id {program_id} exists")
        now = utcnow()
        program = {"id": program_id, "name": p["name"], "description": p.get("description", ""),
                   "type": p.get("type") or PROGRAM_TYPES.get(channel["applicableProgramType"], "Default"),
                   "channel": channel["name"], "status": p.get("status", ""), "createdAt": now,
                   "updatedAt": now, "costs": self._costs(p.get("costs")), "sfdcId": p.get("sfdcId"),
                   "sfdcName": p.get("sfdcName")}
        self.programs[program_id] = program
        return program

    @staticmethod
    def _costs(costs):
        if costs is None:
            return None
        out = []
        for c in costs:
            datetime.strptime(c["startDate"], "%Y-%m-%d")
            if type(c["cost"]) is not int:
                raise ValueError("cost must be an integer (int32 in the swagger)")
            out.append({"startDate": c["startDate"], "cost": c["cost"], "note": c.get("note")})
        return out

    def _seed_lead(self, l):
        fields = {k: l.get(k) for k in self.LEAD_WRITABLE}
        return self._insert_lead(fields, int(l["id"]) if l.get("id") else None)

    def _lead_control_view(self, lead):
        return {f: self._lead_value(lead, f) for f in self.LEAD_FIELDS}

    def _seed_member(self, m):
        program = self.programs[int(m["programId"])]
        lead_id = int(m["leadId"])
        status = self._statuses(program).get(m["statusName"])
        if lead_id not in self.leads or status is None or status["step"] == 0:
            raise ValueError(f"member {m}: unknown lead or status")
        now = utcnow()
        self.members[(program["id"], lead_id)] = {
            "statusName": status["name"], "membershipDate": now, "createdAt": now, "updatedAt": now,
            "acquiredBy": False, "reachedSuccess": status["success"],
            "reachedSuccessDate": now if status["success"] else None}
        return self._member_control_view(program, lead_id)

    def _member_control_view(self, program, lead_id):
        m = self.members[(program["id"], lead_id)]
        return dict(self._member_view(program, lead_id, m, self.MEMBER_FIELDS),
                    step=self._statuses(program)[m["statusName"]]["step"])

    def human_set_status(self, program_id, lead_id, status_name):
        """A person changes a status in Marketo: any direction; "Not in Program" removes."""
        with self.lock:
            program = self.programs.get(program_id)
            if program is None or lead_id not in self.leads:
                raise ValueError("unknown program or lead")
            if status_name == NOT_IN_PROGRAM:
                self.delete_members(program_id, [lead_id], via_api=False)
                return None
            status = self._statuses(program).get(status_name)
            if status is None:
                raise ValueError(f"status {status_name!r} is not in channel {program['channel']!r}")
            try:
                self._apply_status(program, lead_id, status, via_api=False, forward_only=False)
            except MarketoError:
                pass   # already in that status: nothing changes, no trigger fires
            return self._member_control_view(program, lead_id)

    def update_program(self, program_id, changes):
        with self.lock:
            program = self.programs.get(program_id)
            if program is None:
                raise KeyError(program_id)
            allowed = {"channel", "costs", "sfdcId", "sfdcName", "name", "description", "status"}
            if set(changes) - allowed:
                raise ValueError(f"only {sorted(allowed)} can change")
            if "channel" in changes:
                channel = self.channels.get(changes["channel"])
                if channel is None:
                    raise ValueError(f"unknown channel {changes['channel']!r}")
                names = {s["name"] for s in channel["progressionStatuses"]}
                if any(m["statusName"] not in names for k, m in self.members.items() if k[0] == program_id):
                    raise ValueError("members hold statuses the new channel lacks")
            if "costs" in changes:
                changes = dict(changes, costs=self._costs(changes["costs"]))
            program.update(changes, updatedAt=utcnow())
            return self.program_view(program)

    def members_of(self, program_id=None):
        with self.lock:
            return [self._member_control_view(self.programs[p], l)
                    for p, l in sorted(self.members) if program_id in (None, p)]

    def snapshot(self):
        with self.lock:
            return {"channels": self.list_channels(),
                    "programs": [self.program_view(p) for _, p in sorted(self.programs.items())],
                    "leads": [self._lead_control_view(l) for _, l in sorted(self.leads.items())],
                    "members": self.members_of()}


class RestApi:
    """The REST endpoints: parameter checks as the real API does them, then MarketoState."""

    ROUTES = [  # (method, path regex, handler name); POST routes take a JSON body
        ("GET", r"/rest/v1/leads\.json", "get_leads"),
        ("POST", r"/rest/v1/leads\.json", "sync_leads"),
        ("GET", r"/rest/v1/programs/members/describe\.json", "describe_members"),
        ("GET", r"/rest/v1/programs/(\d+)/members\.json", "get_members"),
        ("POST", r"/rest/v1/programs/(\d+)/members/status\.json", "sync_member_status"),
        ("POST", r"/rest/v1/programs/(\d+)/members/delete\.json", "delete_members"),
        ("GET", r"/rest/asset/v1/channels\.json", "get_channels"),
        ("GET", r"/rest/asset/v1/channel/byName\.json", "get_channel_by_name"),
        ("GET", r"/rest/asset/v1/program/(\d+)\.json", "get_program"),
        ("POST", r"/rest/v1/leads/delete\.json", "delete_leads"),
    ]

    def __init__(self, state, extra_routes=()):
        """extra_routes: (method, path regex, handler) served beside ROUTES (the bulk API)."""
        self.state = state
        self._routes = [(m, re.compile(p + r"\Z"), getattr(self, h)) for m, p, h in self.ROUTES]
        self._routes += [(m, re.compile(p + r"\Z"), h) for m, p, h in extra_routes]

    def resolve(self, method, path):
        """(handler, path args); None for an unknown path; 605 for a known path, wrong method."""
        matched = False
        for m, rx, handler in self._routes:
            hit = rx.match(path)
            if hit and m == method:
                return handler, [int(g) if g.isdigit() else g for g in hit.groups()]
            matched = matched or bool(hit)
        if matched:
            raise MarketoError("605")
        return None

    @staticmethod
    def ok(result, **extra):
        return dict({"success": True, "errors": [], "warnings": [], "result": result}, **extra)

    @staticmethod
    def no_assets():
        """Asset API "nothing found": success with a warning and no result, as real answers show."""
        return {"success": True, "errors": [], "warnings": [NO_ASSETS]}

    @staticmethod
    def _filter(query, allowed):
        filter_type = query.get("filterType")
        if not filter_type:
            raise MarketoError("1003", message="filterType not specified")           # GUESS
        if filter_type not in allowed:
            raise MarketoError("1003", message=f"Invalid filterType '{filter_type}'")  # GUESS
        return filter_type

    @staticmethod
    def _values(query):
        values = split_csv(query.get("filterValues"))
        if not values:
            raise MarketoError("1003", message="filterValues not specified")           # GUESS
        if len(values) > MAX_BATCH:
            raise MarketoError("1003", message=f"Too many filterValues: {len(values)}, "
                                               f"maximum is {MAX_BATCH}")               # GUESS
        return values

    @staticmethod
    def _inputs(body):
        records = body.get("input")
        if records is None:
            raise MarketoError("1002", "input")
        if not isinstance(records, list):
            raise MarketoError("1003")
        if len(records) > MAX_BATCH:
            raise MarketoError("1003", message=f"Too many input records: {len(records)}, "
                                               f"maximum is {MAX_BATCH}")               # GUESS
        return records

    # ---------------------------------------------------------------- leads
    def get_leads(self, query, body):
        filter_type = query.get("filterType")
        if filter_type in ("firstName", "lastName", "company"):   # fields, but not searchable
            raise MarketoError("1011", filter_type)
        filter_type = self._filter(query, MarketoState.LEAD_FILTERS)
        values = self._values(query)
        fields = split_csv(query.get("fields")) or list(MarketoState.LEAD_DEFAULT_FIELDS)
        for f in fields:
            if f not in MarketoState.LEAD_FIELDS:
                raise MarketoError("1006", f)
        if "id" not in fields:
            fields.insert(0, "id")
        rows = self.state.query_leads(filter_type, values, fields)
        rows, extra = page(rows, "leads", query)
        if not extra["moreResult"]:     # lead queries carry moreResult only when paging goes on
            extra = {}
        return self.ok(rows, **extra)

    def sync_leads(self, query, body):
        action = body.get("action", "createOrUpdate")
        if action not in MarketoState.LEAD_ACTIONS:
            raise MarketoError("1003", message=f"Invalid action '{action}'")            # GUESS
        lookup = body.get("lookupField", "email")
        if lookup not in MarketoState.LEAD_FILTERS:
            raise MarketoError("1011", lookup)
        if lookup == "id" and action != "updateOnly":    # an id cannot be created
            raise MarketoError("1003", message="lookupField 'id' requires action 'updateOnly'")  # GUESS
        return self.ok(self.state.sync_leads(action, lookup, self._inputs(body)))

    # ---------------------------------------------------------------- program members
    def describe_members(self, query, body):
        types = {"leadId": "integer", "programId": "integer", "acquiredBy": "boolean",
                 "reachedSuccess": "boolean", "isExhausted": "boolean", "membershipDate": "datetime",
                 "createdAt": "datetime", "updatedAt": "datetime", "reachedSuccessDate": "datetime"}
        fields = [{"name": f, "displayName": f, "dataType": types.get(f, "string"),
                   "updateable": False, "crmManaged": False} for f in sorted(MarketoState.MEMBER_FIELDS)]
        return self.ok([{"name": "API Program Membership",
                         "description": "Map for API program membership fields",
                         "createdAt": "2021-03-20T01:30:05Z", "updatedAt": "2021-03-20T01:30:05Z",
                         "dedupeFields": ["leadId", "programId"],
                         "searchableFields": [[f] for f in MarketoState.MEMBER_SEARCHABLE],
                         "fields": fields}])

    def get_members(self, query, body, program_id):
        filter_type = self._filter(query, MarketoState.MEMBER_SEARCHABLE + ("updatedAt",))
        values, start, end = [], None, None
        if filter_type == "updatedAt":
            start, end = self._date_range(query)
        else:
            values = self._values(query)
        fields = list(MarketoState.MEMBER_DEFAULT_FIELDS)
        for f in split_csv(query.get("fields")):
            if f not in MarketoState.MEMBER_FIELDS:
                raise MarketoError("1006", f)
            if f not in fields:
                fields.append(f)
        member_query_guard(self.state, program_id, filter_type)
        rows = self.state.query_members(program_id, filter_type, values, fields, start, end)
        member_query_guard(self.state, program_id, filter_type, len(rows))
        rows, extra = page(rows, f"members{program_id}", query)
        return self.ok([dict({"seq": i}, **r) for i, r in enumerate(rows)], **extra)

    @staticmethod
    def _date_range(query):
        """updatedAt filtering needs startAt and endAt, at most seven days apart."""
        try:
            start = datetime.fromisoformat(query["startAt"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(query["endAt"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            raise MarketoError("1003", message="startAt and endAt must be ISO-8601 datetimes") from None  # GUESS
        start, end = (d if d.tzinfo else d.replace(tzinfo=timezone.utc) for d in (start, end))
        if not timedelta(0) <= end - start <= timedelta(days=7):
            raise MarketoError("1003", message="Date range must be 7 days or fewer")    # GUESS
        return start, end

    def sync_member_status(self, query, body, program_id):
        status = body.get("statusName")
        if not status:
            raise MarketoError("1002", "statusName")
        return self.ok(self.state.set_member_status(program_id, status, self._lead_ids(body)))

    def delete_members(self, query, body, program_id):
        return self.ok(self.state.delete_members(program_id, self._lead_ids(body)))

    def delete_leads(self, query, body):
        records = self._inputs(body)
        if not all(isinstance(r, dict) and "id" in r for r in records):
            raise MarketoError("1003")
        return self.ok(self.state.delete_leads([as_int(r["id"]) for r in records]))

    def _lead_ids(self, body):
        """``input`` as ``[{"leadId": n}, ...]``; a malformed entry fails the whole request."""
        records = self._inputs(body)
        if not all(isinstance(r, dict) and "leadId" in r for r in records):
            raise MarketoError("1003")
        return [as_int(r["leadId"]) for r in records]

    # ---------------------------------------------------------------- assets
    def get_channels(self, query, body):
        max_return = as_int(query.get("maxReturn", 20))
        offset = as_int(query.get("offset", 0))
        if not 1 <= max_return <= MAX_ASSET_RETURN:
            raise MarketoError("1003", message=f"maxReturn must be between 1 and {MAX_ASSET_RETURN}")  # GUESS
        rows = self.state.list_channels()[offset:offset + max_return]
        return self.ok(rows) if rows else self.no_assets()

    def get_channel_by_name(self, query, body):
        if not query.get("name"):
            raise MarketoError("701", "name")
        rows = self.state.channel_by_name(query["name"])
        return self.ok(rows) if rows else self.no_assets()

    def get_program(self, query, body, program_id):
        rows = self.state.program_by_id(program_id)
        return self.ok(rows) if rows else self.no_assets()


class ControlApi:
    """``/_sim/*``: no auth, JSON in and out, never counted as Marketo calls."""

    def __init__(self, sim):
        self.sim = sim

    def handle(self, method, path, query, body):
        """Returns (HTTP status, JSON-able answer)."""
        sim = self.sim
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return 400, {"error": "body is not JSON"}
        if not isinstance(data, dict):
            return 400, {"error": "body must be a JSON object"}
        route = (method, path)
        try:
            if route == ("POST", "/_sim/reset"):
                sim.reset()
                return 200, {"ok": True}
            if route == ("POST", "/_sim/seed"):
                if "generate" in data:
                    return 200, generate_seed(sim.state, data)
                return 200, sim.state.seed(data)
            if path == "/_sim/bulk" or path.startswith("/_sim/bulk/"):
                return sim.bulk.control(method, path, data)
            if route == ("GET", "/_sim/state"):
                return 200, dict(sim.state.snapshot(), counters=sim.limiter.stats())
            if route == ("GET", "/_sim/members"):
                pid = query.get("programId")
                return 200, {"members": sim.state.members_of(int(pid) if pid else None)}
            if route == ("POST", "/_sim/members"):
                member = sim.state.human_set_status(int(data["programId"]), int(data["leadId"]),
                                                    data["statusName"])
                return 200, {"member": member}
            if route == ("DELETE", "/_sim/members"):
                results = sim.state.delete_members(int(query["programId"]), [int(query["leadId"])],
                                                   via_api=False)
                return 200, {"deleted": results[0]["status"] == "deleted"}
            if method == "POST" and path.startswith("/_sim/programs/"):
                return 200, sim.state.update_program(int(path.rsplit("/", 1)[1]), data)
            if route == ("GET", "/_sim/calls"):
                calls, nxt = sim.calls.since(int(query.get("since", 0)))
                return 200, {"calls": calls, "next": nxt}
            if route == ("DELETE", "/_sim/calls"):
                sim.calls.clear()
                return 200, {"ok": True}
            if route == ("GET", "/_sim/stats"):
                return 200, sim.limiter.stats()
            if route == ("GET", "/_sim/config"):
                return 200, sim.config.as_dict()
            if route == ("POST", "/_sim/config"):
                sim.config.update(data)
                return 200, sim.config.as_dict()
            if route == ("GET", "/_sim/faults"):
                return 200, {"rules": sim.faults.rules()}
            if route == ("POST", "/_sim/faults"):
                return 200, {"rules": sim.faults.add(data.get("rules", []))}
            if route == ("DELETE", "/_sim/faults"):
                sim.faults.clear()
                return 200, {"ok": True}
            if route == ("GET", "/_sim/webhooks"):
                return 200, {"webhooks": sim.notifier.log(int(query.get("since", 0))),
                             "pending": sim.notifier.pending()}
            if route == ("DELETE", "/_sim/webhooks"):
                sim.notifier.clear()
                return 200, {"ok": True}
        except MarketoError as e:
            return 404, {"error": e.message}
        except KeyError as e:
            return 404, {"error": f"not found or missing field: {e}"}
        except (ValueError, TypeError, re.error) as e:
            return 400, {"error": str(e)}
        return 404, {"error": f"no control endpoint {method} {path}"}


class SimHandler(BaseHTTPRequestHandler):
    """HTTP plumbing: limits on the wire, then faults, auth, rate limits and the REST handler."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the second waits for
    # the client's delayed ACK (~40 ms a call), which would make latency figures lie.
    disable_nagle_algorithm = True
    server_version = "nginx"
    sys_version = ""
    sim = None   # set by Simulator on a subclass

    def log_message(self, fmt, *args):
        """Silent: stdout carries only the READY line, and tests read the call log instead."""

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # ---------------------------------------------------------------- wire
    def _send(self, status, body, content_type="application/json;charset=UTF-8"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self._log_call(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_html_status(self, status):
        """An nginx-style error page, which is what a plain HTTP error from Marketo looks like."""
        phrase = self.responses.get(status, ("Error",))[0]
        html = (f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
                f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n").encode()
        self._send(status, html, "text/html")

    def _read_body(self):
        """The request body, or None when it is over 1 MB.  An oversized body is still read
        (and dropped), so the client gets to read the 413 instead of a reset connection."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks) if size <= MAX_BODY_BYTES else None
                size += n
                data = self.rfile.read(n)
                if size <= MAX_BODY_BYTES:
                    chunks.append(data)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length <= MAX_BODY_BYTES:
            return self.rfile.read(length) if length else b""
        self.close_connection = True
        while length > 0:
            got = len(self.rfile.read(min(length, 65536)) or b"")
            if not got:
                break
            length -= got
        return None

    # ---------------------------------------------------------------- pipeline
    def _handle(self):
        sim = self.sim
        url = urllib.parse.urlsplit(self.path)
        url = url._replace(path=remove_dot_segments(url.path))
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        self._record = None
        if url.path.startswith("/_sim/"):
            body = self._read_body()
            status, answer = sim.control.handle(self.command, url.path, query, body or b"")
            return self._send(status, answer)
        self._record = {"method": self.command, "path": url.path, "query": query, "body": None,
                        "code": None, "http": None, "fault": None, "t_start": time.time()}
        try:
            self._marketo(url, query, self._record)
        finally:
            self._log_call(None)     # a dropped connection, or a simulator bug, sent nothing

    def _log_call(self, status):
        """Logs the request being answered, before its answer is written: a client that has
        read an answer finds its call in the log, in the order the answers were given."""
        record, self._record = getattr(self, "_record", None), None
        if record is not None:
            record.update(http=status, t_end=time.time())
            self.sim.calls.add(record)

    def _marketo(self, url, query, record):
        """Answer one identity or REST request; returns the HTTP status sent (None if dropped)."""
        sim = self.sim
        if len(self.path.encode()) > MAX_URI_BYTES:   # nginx limits the request line for any method
            self.close_connection = True
            self._send_html_status(414)
            return 414
        body = self._read_body()
        if body is None:
            self._send_html_status(413)
            return 413
        record["body"] = self._loggable(body)
        fault = sim.faults.take(self.command, url.path)
        extra_delay = 0.0
        if fault:
            record["fault"] = fault["kind"]
            sim.limiter.count("faultsFired")
            if fault["kind"] == "drop":
                self.close_connection = True
                return None
            if fault["kind"] == "http":
                self._send_html_status(fault["status"])
                return fault["status"]
            if fault["kind"] == "error":
                err = MarketoError(fault["code"], sim.config.callsPer20s, int(RATE_WINDOW_S)) \
                    if fault["code"] == "606" else MarketoError(fault["code"])
                return self._send_error(err, record)
            if fault["kind"] == "expire_tokens":
                sim.tokens.expire_all()
            extra_delay = fault.get("delay_ms", 0) / 1000.0
        if url.path == "/identity/oauth/token":
            time.sleep(extra_delay)
            return self._identity(query)
        return self._rest(url.path, query, body, record, extra_delay)

    @staticmethod
    def _loggable(body):
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")

    def _identity(self, query):
        """Client-credentials grant with query parameters (the swagger's ``in: query``); never
        counted towards the API limits."""
        sim = self.sim
        sim.limiter.count("identityCalls")
        if self.command not in ("GET", "POST"):
            self._send(405, {"error": "method_not_allowed", "error_description": "Request method not supported"})
            return 405
        grant = query.get("grant_type")
        if not grant:
            self._send(400, {"error": "invalid_request", "error_description": "Missing grant type"})
            return 400
        if grant != "client_credentials":
            self._send(400, {"error": "unsupported_grant_type",
                             "error_description": f"Unsupported grant type: {grant}"})
            return 400
        cfg = sim.config
        if query.get("client_id") != cfg.clientId or query.get("client_secret") != cfg.clientSecret:
            self._send(401, {"error": "unauthorized", "error_description": "Bad client credentials"})
            return 401
        token, remaining = sim.tokens.issue()
        self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": remaining,
                         "scope": "apis@sim"})
        return 200

    def _send_error(self, err, record):
        record["code"] = err.code
        self._send(200, {"requestId": request_id(), "success": False, "errors": [err.reason()],
                         "warnings": []})
        return 200

    def _rest(self, path, query, body, record, extra_delay):
        sim = self.sim
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        # The documented 414 workaround: POST with _method=GET and the query in a form body
        # (Adobe developer docs, "Leads", Query). Whether _method goes in the URL or in the body
        # the text does not say (node-marketo-rest sends it in the body): both are served. The
        # log keeps method POST, and the body's parameters as "form", so a test sees which form
        # a call took.
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        in_body = self.command == "POST" and ctype == "application/x-www-form-urlencoded" and \
            ("_method", "GET") in urllib.parse.parse_qsl(body.decode("utf-8", "replace"))
        method = "GET" if self.command == "POST" and (query.get("_method") == "GET" or in_body) \
            else self.command
        if method != self.command:
            record["form"] = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                                         keep_blank_values=True))
        try:
            # 601/602 and 605 are not counted against the rate limit or the quota (codes with *).
            sim.tokens.check(token)
            route = sim.rest.resolve(method, path)
        except MarketoError as err:
            if err.code in ("601", "602"):
                sim.limiter.count("authErrors")
            return self._send_error(err, record)
        try:
            sim.limiter.admit()
        except MarketoError as err:
            return self._send_error(err, record)
        try:
            delay = sim.config.latencyMs / 1000.0 + extra_delay
            if delay:
                time.sleep(delay)    # a delayed call is in progress: it holds its concurrency slot
            answer = self._dispatch(route, method, query, body)
        except MarketoError as err:
            return self._send_error(err, record)
        except Exception:   # a simulator bug: answer as Marketo does ("all unhandled exceptions")
            traceback.print_exc()
            return self._send_error(MarketoError("611"), record)
        finally:
            sim.limiter.release()
        if isinstance(answer, RawAnswer):      # the bulk export file, or its plaintext 404
            return answer.send(self)
        self._send(200, dict({"requestId": request_id()}, **answer))
        return 200

    def _dispatch(self, route, method, query, body):
        """Check the body's content type and shape, then call the endpoint handler."""
        if route is None:
            raise MarketoError("610")
        handler, args = route
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        data = {}
        if method != self.command:      # POST standing in for GET: the query is in a form body
            if content_type != "application/x-www-form-urlencoded":
                raise MarketoError("612")
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            form.pop("_method", None)
            query = dict(query, **form)
        elif method == "POST" and getattr(handler, "json_body", True):
            if content_type != "application/json":
                raise MarketoError("612")
            try:
                data = json.loads(body)
            except ValueError:
                raise MarketoError("609") from None
            if not isinstance(data, dict):
                raise MarketoError("609")
        return handler(query, data, *args)


class Simulator:
    """Composition root: one of each concern, the HTTP server, and start/stop."""

    def __init__(self, config):
        self.config = config
        self.tokens = TokenStore(config)
        self.limiter = RateLimiter(config)
        self.calls = CallLog()
        self.faults = FaultInjector()
        self.notifier = WebhookNotifier(config)
        self.state = MarketoState(config, self.notifier)
        self.bulk = BulkExtract(config, self.state)
        self.rest = RestApi(self.state, self.bulk.routes())
        self.control = ControlApi(self)
        handler = type("BoundSimHandler", (SimHandler,), {"sim": self})
        self.server = ThreadingHTTPServer((config.host, config.port), handler)
        self.server.daemon_threads = True

    def reset(self):
        """Back to the state right after start-up; issued tokens stay valid."""
        self.config.restore()
        self.state.reset()
        self.limiter.reset()
        self.calls.clear()
        self.faults.clear()
        self.notifier.clear()
        self.bulk.reset()

    def serve(self):
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)
        thread.start()
        print(f"READY port={self.server.server_address[1]}", flush=True)
        stop.wait()
        self.server.shutdown()
        self.server.server_close()
        self.notifier.close()


# ============================================================================ bulk extract
# Bulk Program Member Extract, as Adobe documents it. Sources ("ADE" = AdobeDocs/marketo-developer.en):
#   ADE help/rest-api/bulk-extract.md                  Limits, Queue, File Size, Polling, Range, Cancel
#   ADE help/rest-api/bulk-program-member-extract.md   Filters, Options (fields, columnHeaderNames, format)
#   ADE help/rest-api/error-codes.md                   1029 (three texts), 1035, 1003, 1006
#   ADE help/rest-api/assets/swagger-mapi.json         ExportProgramMemberRequest/Filter, ExportResponse
#   ADE help/rest-api/program-members.md               members.json: the two 1003 texts above 100,000
# Behaviours no source pins down are marked GUESS where they are implemented.

BULK_CREATED, BULK_QUEUED, BULK_PROCESSING = "Created", "Queued", "Processing"
BULK_COMPLETED, BULK_FAILED, BULK_CANCELLED = "Completed", "Failed", "Cancelled"
BULK_STATUSES = (BULK_CREATED, BULK_QUEUED, BULK_PROCESSING, BULK_CANCELLED, BULK_COMPLETED, BULK_FAILED)
BULK_TERMINAL = (BULK_COMPLETED, BULK_FAILED, BULK_CANCELLED)
BULK_LIST_AGE = timedelta(days=7)          # Get Export Jobs: "jobs that were created in the past 7 days"
BULK_STATUS_AGE = timedelta(days=30)       # "Job status is available for 30 days after Completed or Failed"
BULK_MAX_PROGRAM_IDS = 10                  # programIds: "an array of up to 10 program ids"
BULK_MAX_UPDATED_AT = timedelta(days=31)   # "Max Time Span for Date Range Filter ... 31 days"
BULK_MAX_FIELDS = 1000                     # GUESS: no documented cap; a bound on the request
BULK_LEAD_FIELDS = ("email", "firstName", "lastName", "company", "sfdcLeadId", "sfdcContactId")
BULK_NURTURE_CADENCES = ("paus", "pause", "norm")   # swagger enum "paus"; the page says "pause"
GENERATE_MAX = 1_000_000                   # members one /_sim/seed generate call may create

# Settings of the bulk extract, registered into SimConfig.FIELDS below: (type, check, default).
BULK_CONFIG = {
    # How long a queued job waits before it may start, and how long processing takes (real
    # instances: minutes; tests want milliseconds).
    "bulkQueuedMs": (int, lambda v: v >= 0, 200),
    "bulkProcessingMs": (int, lambda v: v >= 0, 300),
    # "Max Concurrent Export Jobs: 2"; "Max Queued Export Jobs (inclusive of currently
    # exporting jobs): 10" (ADE bulk-extract.md, Limits).
    "bulkMaxProcessing": (int, lambda v: v >= 1, 2),
    "bulkMaxQueued": (int, lambda v: v >= 1, 10),
    # "Default Daily Export Allocation: 500MB" (GUESS: MB read as MiB), reset at midnight Central.
    "bulkDailyExportBytes": (int, lambda v: v >= 1, 500 * 1024 * 1024),
    # "File Retention Period: seven days" (Limits) against "Data from each successful export is
    # held for 10 days" (Starting a Job): the two texts disagree, so the period is a setting.
    "bulkFileRetentionDays": (int, lambda v: v >= 1, 7),
    # SSV is "space-separated values" on the program member page, "semi-colon-separated values"
    # on the Bulk Extract page: "space" or "semicolon".
    "bulkSsvDelimiter": (str, lambda v: v in ("space", "semicolon"), "space"),
    # "The updatedAt filter requires additional infrastructure components which have not yet
    # been rolled out to all subscriptions": false answers 1035 as such a subscription does.
    "bulkUpdatedAtFilter": (bool, lambda v: True, True),
    # Non-empty: every job that starts processing ends Failed with this errorMsg.
    "bulkFailMessage": (str, lambda v: len(v) <= 1000, ""),
    # members.json with a filter other than leadId: 1003 above this many members ("total":
    # the whole program, "matching": the members the filter matches; ADE program-members.md
    # documents both, "depending on your Marketo instance configuration").
    "memberQueryLimit": (int, lambda v: v >= 1, 100_000),
    "memberQueryLimitMode": (str, lambda v: v in ("total", "matching"), "total"),
}
SimConfig.FIELDS.update({k: (t, check) for k, (t, check, _) in BULK_CONFIG.items()})
ERROR_MESSAGES.setdefault("1035", "Unsupported filter type")     # error-codes.md
BULK_DEFAULTS = {k: default for k, (_, _, default) in BULK_CONFIG.items()}


def remove_dot_segments(path):
    """RFC 3986 section 5.2.4, as the web server in front of Marketo applies it: node-marketo-rest
    reaches the bulk API as ``<endpoint>/rest/../bulk/v1/...``."""
    if "/." not in path:
        return path
    out = []
    for seg in path.split("/")[1:]:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    tail = "/" if path.endswith(("/.", "/..")) else ""
    return "/" + "/".join(out) + tail


def member_query_guard(state, program_id, filter_type, matched=None):
    """members.json with a filter other than leadId serves at most memberQueryLimit members
    (ADE program-members.md, Query): 1003 with the documented text, checked against the whole
    program (``matched`` None) or against the members the filter matched."""
    limit, mode = state._config.memberQueryLimit, state._config.memberQueryLimitMode
    if filter_type == "leadId":
        return
    if matched is None and mode == "total":
        with state.lock:
            total = sum(1 for key in state.members if key[0] == program_id)
        if total > limit:
            raise MarketoError("1003", message=f"Total membership size: {total:,} exceeds the limit "
                                               f"allowed {limit:,} for the filter")
    elif matched is not None and mode == "matching" and matched > limit:
        raise MarketoError("1003", message=f"Matching membership size: {matched:,} exceeds the limit "
                                           f"allowed ({limit:,}) for this api")


class RawAnswer:
    """A REST answer that is not a JSON envelope: the export file, or its plaintext 404. With
    ``ranged``, a request's ``Range: bytes=`` header selects one part of the body (RFC 7233;
    ADE bulk-extract.md "Partial Retrieval and Resumption": 206 with Accept-Ranges,
    Content-Length and Content-Range)."""

    CHUNK = 64 * 1024

    def __init__(self, status, body, content_type, ranged=False):
        self.status, self.body, self.content_type, self.ranged = status, body, content_type, ranged

    def send(self, handler):
        status, body, headers = self.status, self.body, {}
        if handler._record is not None:     # the call log keeps the Range asked for (or None)
            handler._record["range"] = handler.headers.get("Range")
        if self.ranged:
            headers["Accept-Ranges"] = "bytes"
            span = self.byte_range(handler.headers.get("Range"), len(body))
            if span == "unsatisfiable":
                status, headers["Content-Range"], body = 416, f"bytes */{len(body)}", b""
            elif span is not None:
                status, headers["Content-Range"] = 206, f"bytes {span[0]}-{span[1]}/{len(body)}"
                body = memoryview(body)[span[0]:span[1] + 1]
        handler._log_call(status)
        handler.send_response(status)
        handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        view = memoryview(body)
        try:
            for at in range(0, len(view), self.CHUNK):
                handler.wfile.write(view[at:at + self.CHUNK])
        except (BrokenPipeError, ConnectionResetError):   # the client stopped reading
            handler.close_connection = True
        return status

    @staticmethod
    def byte_range(header, size):
        """(first, last) of one ``bytes=`` range, "unsatisfiable", or None to send the whole body
        (no header, one not understood, or several ranges: RFC 7233 lets a server ignore it)."""
        m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
        if not m or (not m.group(1) and not m.group(2)):
            return None
        if not m.group(1):                          # suffix: the last N bytes
            n = int(m.group(2))
            return (max(size - n, 0), size - 1) if n and size else "unsatisfiable"
        first = int(m.group(1))
        if first >= size or (m.group(2) and int(m.group(2)) < first):
            return "unsatisfiable"
        return first, min(int(m.group(2)), size - 1) if m.group(2) else size - 1


class ExportJob:
    """One program member export job: its request, its timestamps, and its file once written."""

    def __init__(self, spec, now):
        self.export_id = str(uuid.uuid4())
        self.spec = spec                       # validated request: fields, headers, filter, format
        self.status = BULK_CREATED
        self.created_at, self.queued_at, self.started_at, self.finished_at = now, None, None, None
        self.records = self.file = self.checksum = self.error = None
        self.size = 0
        self.pending = None                    # (file bytes, records) written while Processing

    def view(self):
        """The ExportResponse of swagger-mapi: members without a value are left out, as in the
        documented examples (a Created job shows exportId, format, status, createdAt)."""
        out = {"exportId": self.export_id, "format": self.spec["format"], "status": self.status,
               "createdAt": lead_time(self.created_at)}
        for key, value in (("queuedAt", self.queued_at), ("startedAt", self.started_at),
                           ("finishedAt", self.finished_at)):
            if value is not None:
                out[key] = lead_time(value)
        if self.status == BULK_COMPLETED:
            out.update(numberOfRecords=self.records, fileSize=self.size,
                       fileChecksum=f"sha256:{self.checksum}")
        if self.status == BULK_FAILED:
            out["errorMsg"] = self.error
        return out

    def shift(self, delta):
        for name in ("created_at", "queued_at", "started_at", "finished_at"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value - delta)


class BulkRequest:
    """Checks a Create Export Program Member Job body and returns the job spec, or raises the
    error Marketo answers."""

    FORMATS = ("CSV", "TSV", "SSV")

    def __init__(self, state, config):
        self.state, self.config = state, config

    def parse(self, body):
        if "fields" not in body:
            raise MarketoError("1002", "fields")     # swagger: fields and filter are required
        if "filter" not in body:
            raise MarketoError("1002", "filter")
        fmt = body.get("format", "CSV")
        if not isinstance(fmt, str) or fmt.upper() not in self.FORMATS:
            raise MarketoError("1003", message=f"Invalid format '{fmt}'")      # GUESS: text
        fields = self._fields(body["fields"])
        filt = self._filter(body["filter"])
        headers = self._headers(body.get("columnHeaderNames"), fields)
        if filt["multi"]:   # programIds: "An additional field "programId" is added ... as the first field"
            fields, headers = ["programId"] + fields, ["programId"] + headers
        return {"format": fmt.upper(), "fields": fields, "headers": headers, "filter": filt,
                "request": {k: body[k] for k in ("fields", "filter", "format", "columnHeaderNames")
                            if k in body}}

    @staticmethod
    def _fields(fields):
        if not isinstance(fields, list) or not fields or len(fields) > BULK_MAX_FIELDS \
                or not all(isinstance(f, str) for f in fields):
            raise MarketoError("1003", message="fields must be a non-empty array of field names")  # GUESS
        for f in fields:
            if f not in MarketoState.MEMBER_FIELDS and f not in BULK_LEAD_FIELDS:
                raise MarketoError("1006", f)
        return list(fields)

    @staticmethod
    def _headers(names, fields):
        """columnHeaderNames: "The key must be the name of a field included in the export job"."""
        if names is None:
            return list(fields)
        if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
            raise MarketoError("1003", message="columnHeaderNames must be an object of strings")  # GUESS
        stray = [k for k in names if k not in fields]
        if stray:
            raise MarketoError("1003", message=f"columnHeaderNames names a field not exported: "
                                               f"'{stray[0]}'")                                  # GUESS
        return [names.get(f, f) for f in fields]

    def _filter(self, filt):
        if not isinstance(filt, dict):
            raise MarketoError("1003", message="filter must be an object")           # GUESS: text
        known = ("programId", "programIds", "isExhausted", "nurtureCadence", "statusNames", "updatedAt")
        unknown = [k for k in filt if k not in known]
        if unknown:
            raise MarketoError("1003", message=f"Invalid filter type '{unknown[0]}'")   # GUESS: text
        out = {"programIds": self._programs(filt), "multi": "programIds" in filt}
        if "isExhausted" in filt:
            if not isinstance(filt["isExhausted"], bool):
                raise MarketoError("1001", filt["isExhausted"], "Boolean")
            out["isExhausted"] = filt["isExhausted"]
        if "nurtureCadence" in filt:
            if filt["nurtureCadence"] not in BULK_NURTURE_CADENCES:
                raise MarketoError("1003", message=f"Invalid nurtureCadence '{filt['nurtureCadence']}'")  # GUESS
            out["nurtureCadence"] = filt["nurtureCadence"]
        if "statusNames" in filt:
            out["statusNames"] = self._status_names(filt["statusNames"], out["programIds"])
        if "updatedAt" in filt:
            out["updatedAt"] = self._updated_at(filt["updatedAt"])
        return out

    def _programs(self, filt):
        """Exactly one of programId (an id) and programIds (up to 10 ids); every program known."""
        has_one, has_many = "programId" in filt, "programIds" in filt
        if has_one == has_many:   # "You must specify either the programId or the programIds filter"
            raise MarketoError("1003", message="Specify exactly one of programId or programIds")  # GUESS: text
        ids = [filt["programId"]] if has_one else filt["programIds"]
        if not isinstance(ids, list) or not ids or len(ids) > BULK_MAX_PROGRAM_IDS:
            raise MarketoError("1003", message=f"programIds must list 1 to {BULK_MAX_PROGRAM_IDS} "
                                               "program ids")                                   # GUESS: text
        ids = [as_int(i) for i in ids]
        with self.state.lock:
            for pid in ids:
                self.state._program(pid)      # GUESS: 1013, as the members endpoints answer
        return ids

    def _status_names(self, names, program_ids):
        """"If a status name is not found in any of the programs, "1003, Invalid Data""."""
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise MarketoError("1003")
        with self.state.lock:
            known = {s for pid in program_ids for s in self.state._statuses(self.state.programs[pid])}
        if any(n not in known for n in names):
            raise MarketoError("1003")
        return list(names)

    def _updated_at(self, rng):
        if not self.config.bulkUpdatedAtFilter:
            raise MarketoError("1035", message="Unsupported filter type for target subscription")
        try:
            start = datetime.fromisoformat(rng["startAt"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(rng["endAt"].replace("Z", "+00:00"))
        except (KeyError, TypeError, AttributeError, ValueError):
            raise MarketoError("1003", message="updatedAt needs ISO-8601 startAt and endAt") from None  # GUESS
        start, end = (d if d.tzinfo else d.replace(tzinfo=timezone.utc) for d in (start, end))
        if not timedelta(0) <= end - start <= BULK_MAX_UPDATED_AT:
            raise MarketoError("1003", message="updatedAt range must be 31 days or fewer")   # GUESS: text
        return start, end


class BulkExtract:
    """The export job queue shared by the bulk extract APIs, and the program member extract on
    it. A scheduler thread moves jobs Queued -> Processing -> Completed (or Failed) on its own,
    at most bulkMaxProcessing at once in queue order; members are read when processing starts
    ("members of the program at the time that the job begins processing") and the file is
    published whole when the job completes ("partial files are never written")."""

    TICK_S = 0.02

    def __init__(self, config, state):
        self.config, self.state = config, state
        self.cond = threading.Condition()
        self.jobs = collections.OrderedDict()      # exportId -> ExportJob, oldest first
        self.thread = threading.Thread(target=self._run, name="bulk-extract", daemon=True)
        self.thread.start()

    def routes(self):
        """Served by RestApi like every REST endpoint, so a bulk call needs the token and counts
        towards the 100-calls-per-20-s, 10-concurrent and daily call limits (ADE rest-api.md:
        the limits are per instance, over every API call)."""
        base = r"/bulk/v1/program/members/export"
        return [("POST", base + r"/create\.json", self.create),
                ("POST", base + r"/([0-9a-fA-F-]{1,64})/enqueue\.json", self.enqueue),
                ("GET", base + r"/([0-9a-fA-F-]{1,64})/status\.json", self.status),
                ("GET", base + r"/([0-9a-fA-F-]{1,64})/file\.json", self.file),
                ("POST", base + r"/([0-9a-fA-F-]{1,64})/cancel\.json", self.cancel),
                ("GET", base + r"\.json", self.list_jobs)]

    # ---------------------------------------------------------------- REST handlers
    def create(self, query, body):
        spec = BulkRequest(self.state, self.config).parse(body)
        with self.cond:
            self._prune()
            self._check_quota()
            job = ExportJob(spec, utcnow())
            self.jobs[job.export_id] = job
            return RestApi.ok([job.view()])

    def enqueue(self, query, body, export_id):
        with self.cond:
            job = self._job(export_id)
            if job.status != BULK_CREATED:
                # "Job already queued: The export id has already been queued" (GUESS: also for a
                # job that has finished or was cancelled; the swagger: "must be in Created state")
                raise MarketoError("1029", message="Job already queued")
            self._check_quota()
            busy = sum(1 for j in self.jobs.values() if j.status in (BULK_QUEUED, BULK_PROCESSING))
            if busy >= self.config.bulkMaxQueued:
                raise MarketoError("1029", message="Too many jobs in queue")
            job.status, job.queued_at = BULK_QUEUED, utcnow()
            self.cond.notify_all()
            return RestApi.ok([job.view()])

    def status(self, query, body, export_id):
        with self.cond:
            return RestApi.ok([self._job(export_id).view()])

    def cancel(self, query, body, export_id):
        with self.cond:
            job = self._job(export_id)
            if job.status in BULK_TERMINAL:
                # GUESS: code and text for cancelling a job that has already ended
                raise MarketoError("1003", message=f"Export job is already {job.status.lower()}")
            job.status, job.pending = BULK_CANCELLED, None
            self.cond.notify_all()
            return RestApi.ok([job.view()])

    def list_jobs(self, query, body):
        """Jobs created in the past seven days, optionally filtered by status (comma-separated;
        "Canceled" and "Cancelled" both name the cancelled state), paged by batchSize (at most
        and by default 300) and nextPageToken."""
        wanted = None
        if query.get("status"):
            wanted = set()
            for s in split_csv(query["status"]):
                name = {"canceled": BULK_CANCELLED.lower()}.get(s.lower(), s.lower())
                match = [x for x in BULK_STATUSES if x.lower() == name]
                if not match:
                    raise MarketoError("1003", message=f"Invalid status '{s}'")        # GUESS: text
                wanted.add(match[0])
        with self.cond:
            self._prune()
            since = utcnow() - BULK_LIST_AGE
            rows = [j.view() for j in self.jobs.values()
                    if j.created_at >= since and (wanted is None or j.status in wanted)]
        rows, extra = page(rows, "bulkexport", query)
        extra.pop("moreResult")       # swagger ResponseOfExportResponseWithToken: nextPageToken only
        return RestApi.ok(rows, **extra)

    def file(self, query, body, export_id):
        """The file of a Completed job, whole or one byte range. A bad id or a job not completed:
        404 with a plaintext message, "unlike most other Marketo REST endpoints"."""
        with self.cond:
            self._prune()
            job = self.jobs.get(export_id)
            if job is None:
                return self._not_found(f"Export job {export_id} not found")          # GUESS: text
            if job.status != BULK_COMPLETED:
                return self._not_found(f"Export job {export_id} is not completed")  # GUESS: text
            if job.file is None:
                return self._not_found(f"The file of export job {export_id} has expired")  # GUESS
            return RawAnswer(200, job.file, "text/csv;charset=UTF-8", ranged=True)  # GUESS: type

    # node-marketo-rest's bulk calls send enqueue and cancel as a "_method=POST" form
    enqueue.json_body = cancel.json_body = False

    @staticmethod
    def _not_found(text):
        return RawAnswer(404, text.encode(), "text/plain;charset=UTF-8")

    # ---------------------------------------------------------------- rules
    def _job(self, export_id):
        self._prune()
        job = self.jobs.get(export_id)
        if job is None:
            raise MarketoError("1003", message=f"Export job {export_id} not found")    # GUESS
        return job

    def _prune(self):
        """Forgets what the documentation says is gone: a finished job 30 days after it ended, a
        job that never finished once it is 30 days old (GUESS), and a file after the retention
        period."""
        now = utcnow()
        keep = timedelta(days=self.config.bulkFileRetentionDays)
        for export_id, job in list(self.jobs.items()):
            ended = job.finished_at or job.created_at
            if now - ended > BULK_STATUS_AGE:
                del self.jobs[export_id]
            elif job.file is not None and now - job.finished_at > keep:
                job.file = None

    def daily_used(self):
        """Bytes exported today (US Central day, as the 607 quota): the fileSize of the jobs
        that completed today ("sum the file sizes for those jobs")."""
        today = RateLimiter._today()
        return sum(j.size for j in self.jobs.values()
                   if j.status == BULK_COMPLETED and j.finished_at.astimezone(CENTRAL).date() == today)

    def _check_quota(self):
        """"When the quota is exceeded, you cannot Create or Enqueue another job until the daily
        quota resets" (GUESS: reached counts as exceeded)."""
        if self.daily_used() >= self.config.bulkDailyExportBytes:
            raise MarketoError("1029", message="Export daily quota exceeded")

    # ---------------------------------------------------------------- scheduler
    def _run(self):
        while True:
            with self.cond:
                active = any(j.status in (BULK_QUEUED, BULK_PROCESSING) for j in self.jobs.values())
                self.cond.wait(self.TICK_S if active else None)
                self._finish_due()
                starting = self._start_due()
            for job in starting:
                self._write(job)

    def _start_due(self):
        """Queued jobs whose wait is over take free processing slots, oldest first."""
        now, started = utcnow(), []
        wait = timedelta(milliseconds=self.config.bulkQueuedMs)
        busy = sum(1 for j in self.jobs.values() if j.status == BULK_PROCESSING)
        for job in sorted((j for j in self.jobs.values() if j.status == BULK_QUEUED),
                          key=lambda j: j.queued_at):
            if busy >= self.config.bulkMaxProcessing or now - job.queued_at < wait:
                break
            job.status, job.started_at, busy = BULK_PROCESSING, now, busy + 1
            started.append(job)
        return started

    def _finish_due(self):
        """Processing jobs whose time is up and whose file is written end Completed (or Failed
        with bulkFailMessage); the file and its SHA-256 are published at once."""
        now = utcnow()
        took = timedelta(milliseconds=self.config.bulkProcessingMs)
        for job in self.jobs.values():
            if job.status != BULK_PROCESSING or job.pending is None or now - job.started_at < took:
                continue
            job.finished_at = now
            if self.config.bulkFailMessage:
                job.status, job.error = BULK_FAILED, self.config.bulkFailMessage
            else:
                job.file, job.records = job.pending
                job.size, job.checksum = len(job.file), hashlib.sha256(job.file).hexdigest()
                job.status = BULK_COMPLETED
            job.pending = None

    def _write(self, job):
        """Reads the members (their values under the state lock) and renders the file."""
        rows = MemberSnapshot(self.state, job.spec).rows()
        data = render_export(job.spec, rows, self.config.bulkSsvDelimiter)
        with self.cond:
            if job.status == BULK_PROCESSING:
                job.pending = (data, len(rows))
                self.cond.notify_all()

    # ---------------------------------------------------------------- control side
    def control(self, method, path, data):
        """/_sim/bulk: GET lists every job with its request; DELETE forgets them; POST
        /_sim/bulk/age {"seconds": N} moves every job's timestamps N seconds into the past (file
        retention, the 7- and 30-day windows and the daily quota then see the time gone by)."""
        if (method, path) == ("GET", "/_sim/bulk"):
            with self.cond:
                self._prune()
                jobs = [dict(j.view(), request=j.spec["request"], hasFile=j.file is not None)
                        for j in self.jobs.values()]
                return 200, {"jobs": jobs, "dailyExportBytesUsed": self.daily_used(),
                             "dailyExportBytesQuota": self.config.bulkDailyExportBytes}
        if (method, path) == ("DELETE", "/_sim/bulk"):
            self.reset()
            return 200, {"ok": True}
        if (method, path) == ("POST", "/_sim/bulk/age"):
            seconds = data.get("seconds")
            if type(seconds) is not int or seconds < 0:
                raise ValueError("age: seconds must be an integer >= 0")
            with self.cond:
                for job in self.jobs.values():
                    job.shift(timedelta(seconds=seconds))
                self._prune()
                self.cond.notify_all()
                return 200, {"aged": len(self.jobs)}
        return 404, {"error": f"no control endpoint {method} {path}"}

    def reset(self):
        with self.cond:
            self.jobs.clear()
            self.cond.notify_all()


class MemberSnapshot:
    """The members an export job returns, read when it starts processing, after the job's
    filters (ANDed): one tuple of raw values per member (the requested fields, in order),
    program then lead id order. Only values are copied under the state lock; rendering them
    happens outside it."""

    DATES = ("membershipDate", "createdAt", "updatedAt", "reachedSuccessDate")

    def __init__(self, state, spec):
        self.state, self.filter, self.fields = state, spec["filter"], spec["fields"]

    def rows(self):
        f = self.filter
        # The simulator's members are never exhausted and follow no nurture cadence.
        if f.get("isExhausted") is True or "nurtureCadence" in f:
            return []
        wanted = set(f["programIds"])
        statuses = set(f["statusNames"]) if "statusNames" in f else None
        span = f.get("updatedAt")
        getters = [self._getter(name) for name in self.fields]
        with self.state.lock:
            rows = [(pid, lead_id, tuple(get(pid, lead_id, m) for get in getters))
                    for (pid, lead_id), m in self.state.members.items()
                    if pid in wanted and (statuses is None or m["statusName"] in statuses)
                    and (span is None or span[0] <= m["updatedAt"] <= span[1])]
        rows.sort(key=lambda r: (r[0], r[1]))
        return [r[2] for r in rows]

    def _getter(self, name):
        state = self.state
        if name == "leadId":
            return lambda pid, lead_id, m: lead_id
        if name == "programId":
            return lambda pid, lead_id, m: pid
        if name == "program":
            return lambda pid, lead_id, m: state.programs[pid]["name"]
        if name == "isExhausted":
            return lambda pid, lead_id, m: False
        if name in BULK_LEAD_FIELDS:
            return lambda pid, lead_id, m: state.leads[lead_id].get(name)
        return lambda pid, lead_id, m: m.get(name)


def render_export(spec, rows, ssv_delimiter):
    """The export file: a header row (columnHeaderNames applied), then one row per member with
    the requested fields; an empty value is written as ``null`` ("If a requested program member
    field is empty (contains no data), then null is placed in the corresponding field"), dates as
    the lead database writes them (2020-01-08T18:10:26Z, as the documented sample file).
    GUESS: RFC 4180 quoting, LF line ends, UTF-8."""
    delimiter = {"CSV": ",", "TSV": "\t",
                 "SSV": " " if ssv_delimiter == "space" else ";"}[spec["format"]]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(spec["headers"])

    def text(v):
        if v is None or v == "":
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, datetime):
            return lead_time(v)
        return str(v)

    writer.writerows([text(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


def generate_seed(state, data):
    """/_sim/seed {"generate": spec or [spec, ...]}: many members at once, as a list import
    would make them (no webhooks fire). A spec: {"programId", "count" (1..1,000,000),
    "statuses": {name: weight} (exact counts when they are integers adding up to count),
    "emailPattern" ("{n}" is the member's number), "start" (first number, default 1),
    "firstNamePattern", "lastNamePattern", "company", "seed" (of the shuffle of statuses)}.
    A lead whose email exists already is reused. All specs are checked before any is applied."""
    if set(data) != {"generate"}:
        raise ValueError("generate cannot be combined with other seed lists")
    specs = data["generate"] if isinstance(data["generate"], list) else [data["generate"]]
    with state.lock:
        plans = [_generate_plan(state, spec) for spec in specs]
        return {"generated": [_generate_apply(state, plan) for plan in plans]}


def _generate_plan(state, spec):
    if not isinstance(spec, dict):
        raise ValueError("generate: each spec must be an object")
    known = {"programId", "count", "statuses", "emailPattern", "start", "firstNamePattern",
             "lastNamePattern", "company", "seed"}
    if set(spec) - known:
        raise ValueError(f"generate: unknown keys {sorted(set(spec) - known)}")
    program = state.programs.get(as_int(spec.get("programId")))
    if program is None:
        raise ValueError(f"generate: unknown programId {spec.get('programId')!r}")
    count, start = spec.get("count"), spec.get("start", 1)
    if type(count) is not int or not 1 <= count <= GENERATE_MAX or type(start) is not int or start < 0:
        raise ValueError(f"generate: count must be 1..{GENERATE_MAX} and start an integer >= 0")
    steps = state._statuses(program)
    weights = spec.get("statuses")
    if not isinstance(weights, dict) or not weights or any(
            n not in steps or steps[n]["step"] == 0 or type(w) not in (int, float) or w < 0
            for n, w in weights.items()) or not sum(weights.values()) > 0:
        raise ValueError(f"generate: statuses must map statuses of channel {program['channel']!r} "
                         "(not Not in Program) to weights >= 0")
    texts = {}
    for key, default in (("emailPattern", f"p{program['id']}-{{n}}@example.com"),
                         ("firstNamePattern", None), ("lastNamePattern", None), ("company", None)):
        value = spec.get(key, default)
        if value is not None and (not isinstance(value, str) or len(value) > 200):
            raise ValueError(f"generate: {key} must be a string of at most 200 characters")
        texts[key] = value
    if "{n}" not in texts["emailPattern"]:
        raise ValueError("generate: emailPattern must contain {n}")
    return {"program": program, "count": count, "start": start, "texts": texts,
            "statuses": _apportion(weights, count, spec.get("seed", 0))}


def _apportion(weights, count, seed):
    """count statuses in the proportions of weights (largest remainder), shuffled by seed."""
    names = list(weights)
    if all(type(w) is int for w in weights.values()) and sum(weights.values()) == count:
        counts = [weights[n] for n in names]
    else:
        total = sum(weights.values())
        exact = [weights[n] * count / total for n in names]
        counts = [int(x) for x in exact]
        for i in sorted(range(len(names)), key=lambda i: exact[i] - counts[i], reverse=True):
            if sum(counts) == count:
                break
            counts[i] += 1
    order = [n for n, c in zip(names, counts) for _ in range(c)]
    random.Random(seed).shuffle(order)
    return order


def _generate_apply(state, plan):
    began = time.monotonic()
    program, texts = plan["program"], plan["texts"]
    steps = state._statuses(program)
    by_email = {}
    next_id = state.leads.max_id + 1
    now, created, first = utcnow(), 0, None
    fill = lambda pattern, n: None if pattern is None else pattern.replace("{n}", str(n))  # noqa: E731
    for k, status in enumerate(plan["statuses"]):
        n = plan["start"] + k
        email = fill(texts["emailPattern"], n)
        lead_id = by_email.get(email.lower())
        if lead_id is None:
            known = state.leads.by_email(email)
            lead_id = known[0]["id"] if known else None
        if lead_id is None:
            lead_id, next_id, created = next_id, next_id + 1, created + 1
            state.leads[lead_id] = {
                "id": lead_id, "email": email, "firstName": fill(texts["firstNamePattern"], n),
                "lastName": fill(texts["lastNamePattern"], n), "company": texts["company"],
                "sfdcLeadId": None, "sfdcContactId": None, "createdAt": now, "updatedAt": now}
            by_email[email.lower()] = lead_id
        first = lead_id if first is None else first
        success = steps[status]["success"]
        state.members[(program["id"], lead_id)] = {
            "statusName": status, "membershipDate": now, "createdAt": now, "updatedAt": now,
            "acquiredBy": False, "reachedSuccess": success, "reachedSuccessDate": now if success else None}
    return {"programId": program["id"], "members": plan["count"], "leadsCreated": created,
            "leadsReused": plan["count"] - created, "firstLeadId": first,
            "statuses": dict(collections.Counter(plan["statuses"])),
            "ms": int((time.monotonic() - began) * 1000)}


def parse_args(argv):
    p = argparse.ArgumentParser(description="Marketo Engage REST simulator")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--client-id", default="sim-mkto-client")
    p.add_argument("--client-secret", default="sim-mkto-secret")
    p.add_argument("--calls-per-20s", type=int, default=100)
    p.add_argument("--max-concurrent", type=int, default=10)
    p.add_argument("--daily-quota", type=int, default=50000)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--token-ttl", type=int, default=3600)
    p.add_argument("--upsert-window-ms", type=int, default=30)
    p.add_argument("--webhook-url", default="")
    p.add_argument("--webhook-secret", default="")
    p.add_argument("--timezone", default="UTC")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    try:
        config = SimConfig(
            {"host": a.host, "port": a.port, "clientId": a.client_id, "clientSecret": a.client_secret},
            {"callsPer20s": a.calls_per_20s, "maxConcurrent": a.max_concurrent,
             "dailyQuota": a.daily_quota, "latencyMs": a.latency_ms, "tokenTtl": a.token_ttl,
             "upsertWindowMs": a.upsert_window_ms, "webhookUrl": a.webhook_url,
             "webhookSecret": a.webhook_secret, "timezone": a.timezone,
             "includeStatus": False, "fireOnApi": True, **BULK_DEFAULTS})
    except ValueError as e:
        print(f"marketo_sim: {e}", file=sys.stderr)
        return 2
    Simulator(config).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
