#!/usr/bin/env python3
"""Salesforce simulator for the campaign-sync tests.

It plays the Salesforce REST API (OAuth client credentials, sObject rows, sObject
Collections, SOQL query/queryAll, getDeleted, describe) and Outbound Messages for
CampaignMember closely enough that a client that works against it works against a real
org. Its value is in what it *refuses*: every rule below answers with the status code,
errorCode and message shape of the real API, so a client bug fails here as it would in
production. Behaviour that could not be checked against Salesforce is marked "guess".

Standard library only; all state lives in memory behind one lock. A control API under
/_sim/ (no auth, never counted) seeds data, acts as a human in the Salesforce UI,
injects faults and shows what clients sent. Bulk API 2.0 query jobs are in the "Bulk API
2.0 query" section near the end.

Run: python3 salesforce_sim.py --port 0   (prints "READY port=<port>" once listening)
"""

import argparse
import array
import base64
import collections
import copy
import hashlib
import hmac
import http.client
import json
import random
import re
import secrets
import signal
import sys
import threading
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from xml.sax.saxutils import escape as xml_escape

JSON_CT = "application/json;charset=UTF-8"
MAX_BODY = 64 * 1024 * 1024
URI_MAX = 16_384                      # URI (+ headers) bytes a REST call may take (Help 000386264)
COLLECTION_LIMIT = 200
RETRIEVE_LIMIT = 2000
DAY_MS = 86_400_000


# --------------------------------------------------------------------------- ids

CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ALNUM_RE = re.compile(r"[A-Za-z0-9]+")


def id_suffix(id15: str) -> str:
    """The 3-character case-safety suffix Salesforce appends to a 15-character id: one
    character per 5-character chunk, whose bits say which letters are upper case."""
    out = ""
    for chunk in range(3):
        bits = 0
        for j, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << j
        out += CHECKSUM_CHARS[bits]
    return out


def to18(id15: Optional[str]) -> Optional[str]:
    return None if id15 is None else id15 + id_suffix(id15)


def canonical_id(value: Any) -> Optional[str]:
    """The case-sensitive 15-character form of a 15- or 18-character id, or None when it is
    not an id. An 18-character id is case-insensitive: its suffix restores the case of the
    first 15 characters, which is how Salesforce treats 18-character ids."""
    if not isinstance(value, str) or not ALNUM_RE.fullmatch(value):
        return None
    if len(value) == 15:
        return value
    if len(value) != 18:
        return None
    chars = list(value[:15])
    for chunk, s in enumerate(value[15:].upper()):
        bits = CHECKSUM_CHARS.find(s)
        if bits < 0:
            return None
        for j in range(5):
            k = chunk * 5 + j
            if chars[k].isalpha():
                chars[k] = chars[k].upper() if bits >> j & 1 else chars[k].lower()
    return "".join(chars)


class IdFactory:
    """Hands out new ids with the right key prefix. Ids are never reused (Salesforce burns
    ids of rolled-back inserts too), and they contain upper-case letters so that a client
    comparing ids case-insensitively or ignoring the suffix is caught."""

    def __init__(self):
        self._next = 1

    def new(self, prefix: str, taken) -> str:
        while True:
            n, digits = self._next, ""
            self._next += 1
            for _ in range(5):
                n, r = divmod(n, 62)
                digits = BASE62[r] + digits
            candidate = prefix + "Sm00000" + digits
            if not taken(candidate):
                return candidate


# --------------------------------------------------------------------------- time

DT_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                   r"(Z|[+-]\d{2}:?\d{2})")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def fmt_dt(ms: int) -> str:
    """REST form: 2026-11-29T10:00:00.000+0000."""
    d = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}+0000"


def fmt_soap_dt(ms: int) -> str:
    """SOAP (Outbound Message) form: 2026-11-29T10:00:00.000Z."""
    return fmt_dt(ms)[:-5] + "Z"


def parse_dt(text: str) -> Optional[int]:
    """Epoch ms of an ISO-8601 date-time with a zone designator, else None."""
    m = DT_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
    except ValueError:
        return None
    ms = int(base.timestamp()) * 1000 + int((frac or "0")[:3].ljust(3, "0"))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    return ms


class Clock:
    """Write timestamps: the wall clock, never going backwards. Two writes in one millisecond
    share a LastModifiedDate, as in real Salesforce. (Forcing +1 ms per write made the clock
    run ahead of real time by one millisecond per record under load: a Collections call of
    200 records put later human changes 200 ms in the future.)"""

    def __init__(self):
        self._last = 0

    def stamp(self) -> int:
        self._last = max(now_ms(), self._last)
        return self._last


# --------------------------------------------------------------------------- errors

class ApiError(Exception):
    """A whole-request REST error: answered as [{"message","errorCode"(,"fields")}], plus
    `extra` keys when given (a duplicate rule's match details)."""

    def __init__(self, status: int, code: str, message: str, fields=None, extra=None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields
        self.extra = extra or {}

    def body(self):
        err = dict(self.extra)
        err.update(message=self.message, errorCode=self.code)
        if self.fields is not None:
            err["fields"] = self.fields
        return [err]


class DmlError(Exception):
    """A per-record save error (a SaveResult error in Collections, a 400 for single rows)."""

    def __init__(self, code: str, message: str, fields=()):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, list(fields)

    def save_error(self, version=None):
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def api_error(self, version=None):
        return ApiError(400, self.code, self.message, self.fields)


DUPLICATE_MESSAGE = "Use one of these records?"
MATCH_RULES = {"Lead": "Standard_Lead_Match_Rule_v1_0", "Contact": "Standard_Contact_Match_Rule_v1_1"}


class DuplicateDetected(DmlError):
    """A create blocked by an active duplicate rule. Its error carries duplicateResult with the
    matched records (DuplicateError, DuplicateResult, MatchResult, MatchRecord in the SOAP API
    reference): one matchResult per matched object, each record as {attributes, Id}.
    guess: a Collections SaveResult error carries it as "duplicateResult" (the field name of the
    SOAP DuplicateError); the REST guide's Collections example shows the error without it
    (config duplicateRuleLead "blockWithoutDetails"). A single-record create's 400 body
    carries it as "duplicateResut", the spelling public captures of REST answers show
    (API v51.0 to v56.0), and without "fields"."""

    def __init__(self, matches, with_details=True):
        super().__init__("DUPLICATES_DETECTED", DUPLICATE_MESSAGE)
        self.matches, self.with_details = matches, with_details   # [(object name, id15)]

    def duplicate_result(self, version):
        results = []
        for obj in ("Lead", "Contact"):
            ids = [i for o, i in self.matches if o == obj]
            if not ids:
                continue
            results.append({"entityType": obj, "errors": [], "matchEngine": "ExactMatchEngine",
                            "matchRecords": [{
                                "additionalInformation": [], "fieldDiffs": [],
                                "matchConfidence": 100.0,
                                "record": {"attributes": {
                                    "type": obj,
                                    "url": f"/services/data/{version}/sobjects/{obj}/{to18(i)}"},
                                    "Id": to18(i)}} for i in ids],
                            "rule": MATCH_RULES[obj], "size": len(ids), "success": True})
        return {"allowSave": False, "duplicateRule": "Standard_Lead_Duplicate_Rule",
                "duplicateRuleEntityType": "Lead", "errorMessage": DUPLICATE_MESSAGE,
                "matchResults": results}

    def save_error(self, version=None):
        err = super().save_error()
        if self.with_details:
            err["duplicateResult"] = self.duplicate_result(version or "v62.0")
        return err

    def api_error(self, version=None):
        return ApiError(400, self.code, self.message,
                        extra={"duplicateResut": self.duplicate_result(version or "v62.0")})


class ControlError(Exception):
    """An error of the /_sim/ control API: {"error","message"}."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def not_found():
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


# --------------------------------------------------------------------------- schema

STRING_TYPES = {"string", "email", "picklist", "textarea"}
NUMBER_TYPES = {"currency", "double", "int"}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str
    length: int = 0
    createable: bool = False
    updateable: bool = False
    required: bool = False          # REQUIRED_FIELD_MISSING on create (and when blanked)
    reference_to: Optional[str] = None
    relationship: Optional[str] = None
    cascade: bool = False           # deleting the parent deletes this record
    derived: bool = False           # computed from related records, never stored


@dataclass
class ObjectDef:
    name: str
    label: str
    prefix: str
    fields: list

    def __post_init__(self):
        self.by_lower = {f.name.lower(): f for f in self.fields}
        self.by_relationship = {f.relationship.lower(): f for f in self.fields if f.relationship}

    def field(self, name: str) -> Optional[FieldDef]:
        return self.by_lower.get(name.lower())


def _writable(name, type_, label, length=0, required=False, updateable=True, **kw):
    return FieldDef(name, type_, label, length, createable=True, updateable=updateable,
                    required=required, **kw)


def _readonly(name, type_, label, length=0, **kw):
    return FieldDef(name, type_, label, length, **kw)


def _object(name, label, prefix, own_fields):
    system = [
        _readonly("IsDeleted", "boolean", "Deleted"),
        _readonly("CreatedDate", "datetime", "Created Date"),
        _readonly("CreatedById", "reference", "Created By ID", 18, reference_to="User"),
        _readonly("LastModifiedDate", "datetime", "Last Modified Date"),
        _readonly("LastModifiedById", "reference", "Last Modified By ID", 18, reference_to="User"),
        _readonly("SystemModstamp", "datetime", "System Modstamp"),
    ]
    return ObjectDef(name, label, prefix,
                     [_readonly("Id", "id", f"{label} ID", 18)] + own_fields + system)


def build_schema() -> dict:
    """The objects a campaign sync touches, with the field rules that matter to it."""
    objs = [
        _object("Account", "Account", "001", [_writable("Name", "string", "Account Name", 255, True)]),
        _object("Campaign", "Campaign", "701", [
            _writable("Name", "string", "Campaign Name", 80, True),
            _writable("Type", "picklist", "Type", 255),
            _writable("IsActive", "boolean", "Active"),
            _writable("ActualCost", "currency", "Actual Cost in Campaign"),
        ]),
        _object("CampaignMemberStatus", "Campaign Member Status", "01Y", [
            _writable("CampaignId", "reference", "Campaign ID", 18, True, updateable=False,
                      reference_to="Campaign", cascade=True),
            _writable("Label", "string", "Member Status", 765, True),
            _writable("IsDefault", "boolean", "Default"),
            _writable("HasResponded", "boolean", "Responded"),
            _writable("SortOrder", "int", "Sort Order"),
        ]),
        _object("CampaignMember", "Campaign Member", "00v", [
            _writable("CampaignId", "reference", "Campaign ID", 18, True, updateable=False,
                      reference_to="Campaign", relationship="Campaign", cascade=True),
            _writable("LeadId", "reference", "Lead ID", 18, updateable=False,
                      reference_to="Lead", relationship="Lead", cascade=True),
            _writable("ContactId", "reference", "Contact ID", 18, updateable=False,
                      reference_to="Contact", relationship="Contact", cascade=True),
            _writable("Status", "picklist", "Status", 40),
            _readonly("HasResponded", "boolean", "Responded"),
            _readonly("LeadOrContactId", "reference", "Lead or Contact ID", 18, derived=True),
            _readonly("Email", "email", "Email", 80, derived=True),
            _readonly("FirstName", "string", "First Name", 40, derived=True),
            _readonly("LastName", "string", "Last Name", 80, derived=True),
            _readonly("CompanyOrAccount", "string", "Company (Account)", 255, derived=True),
        ]),
        _object("Lead", "Lead", "00Q", [
            _writable("FirstName", "string", "First Name", 40),
            _writable("LastName", "string", "Last Name", 80, True),
            _writable("Company", "string", "Company", 255, True),
            _writable("Email", "email", "Email", 80),
            # Converted leads stay queryable; a sync must look past them (real field).
            _readonly("IsConverted", "boolean", "Converted"),
        ]),
        _object("Contact", "Contact", "003", [
            _writable("FirstName", "string", "First Name", 40),
            _writable("LastName", "string", "Last Name", 80, True),
            _writable("Email", "email", "Email", 80),
            _writable("AccountId", "reference", "Account ID", 18, reference_to="Account",
                      relationship="Account", cascade=True),
        ]),
    ]
    return {o.name: o for o in objs}


# --------------------------------------------------------------------------- config

PERMISSION_FLAGS = ("queryable", "createable", "updateable", "deletable")
DUPLICATE_RULE_MODES = ("off", "block", "blockWithoutDetails")
# The Type values of a new org's Campaign (Setup > Object Manager > Campaign > Type); an org
# edits them. Guess: the standard list as remembered, not checked against a fresh org.
CAMPAIGN_TYPES = ("Advertisement", "Banner Ads", "Conference", "Direct Mail", "Email", "Partners",
                  "Public Relations", "Referral Program", "Telemarketing", "Webinar", "Other")
UNKNOWN_STATUS_MODES = ("refuse", "default")


@dataclass
class Config:
    """Run-time settings; the JSON names of /_sim/config are the camelCase field names."""
    clientId: str = "sim-sf-client"
    clientSecret: str = "sim-sf-secret"
    orgId: str = "00D000000000001AAA"
    integrationUserId: str = "005000000000001AAA"
    humanUserId: str = "005000000000002AAA"
    apiLimit: int = 15000
    # Whether `limits` still answers once the allowance is spent (undocumented: "answer", or
    # "refuse" with REQUEST_LIMIT_EXCEEDED like every other call).
    limitsWhenSpent: str = "answer"
    # getDeleted with a start before earliestDateAvailable (the delete log was purged): the
    # SOAP guide's getDeleted() says INVALID_REPLICATION_DATE ("error"); GetDeletedResult's
    # field text reads as if the call answers and the client must compare ("answer").
    deletedStartBeforeEarliest: str = "error"
    deletedIdLimit: int = 600_000          # more ids than this: EXCEEDED_ID_LIMIT
    latencyMs: int = 0
    queryBatchSize: int = 2000
    tokenTtlS: int = 7200
    outboundUrl: Optional[str] = None
    outboundBatchMs: int = 50
    outboundRetryBaseMs: int = 200
    outboundRetryMaxMs: int = 5000
    outboundMaxAgeMs: int = DAY_MS
    outboundTimeoutMs: int = 60000
    outboundFields: list = field(default_factory=lambda: [
        "CampaignId", "LeadId", "ContactId", "Status", "Email", "FirstName", "LastName",
        "CompanyOrAccount", "LastModifiedDate", "LastModifiedById"])
    permissions: dict = field(default_factory=dict)
    # An active duplicate rule on Lead with the Block action: "off", "block" (the Collections
    # error names the matched records) or "blockWithoutDetails" (it does not); see
    # DuplicateDetected.
    duplicateRuleLead: str = "off"
    # Campaign.Type as a restricted picklist: an admin may tick "Restrict picklist to the values
    # defined in the value set" (Metadata API Picklist.restrictedPicklist, api_meta
    # meta_picklist.htm); then a value outside campaignTypeValues fails with
    # INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST. Unrestricted (the default), any value is kept.
    campaignTypeRestricted: bool = False
    # SOQL WHERE terms `=`/`IN` on Id, CampaignMember.CampaignId/LeadId/ContactId and
    # Lead/Contact Email take their candidates from an index (false: scan every record, the
    # reference the index is tested against). Results are the same either way.
    queryIndex: bool = True
    campaignTypeValues: list = field(default_factory=lambda: list(CAMPAIGN_TYPES))
    # What a CampaignMember save with a Status the campaign lacks does: "refuse" (the restricted
    # picklist error) or "default" (GUESS, from public posts: the campaign's default member
    # status is stored instead, without an error).
    unknownMemberStatus: str = "refuse"
    # Bulk API 2.0 query jobs (BulkQueryJobs): how long a job waits UploadComplete and runs
    # InProgress; the records of a results page without maxRecords (guess: the documented
    # default is "based on service"); an invalid query refused at creation ("reject", 400 with
    # the SOQL error) or failing the job ("fail": state Failed, errorMessage); every job
    # failing with bulkFailMessage when it is set; the 24-hour allocations DailyBulkV2QueryJobs
    # and DailyBulkV2QueryFileStorageMB; the results lifespan in days.
    bulkQueuedMs: int = 200
    bulkProcessingMs: int = 300
    bulkResultsMaxRecords: int = 50_000
    bulkInvalidQuery: str = "reject"
    bulkFailMessage: str = ""
    bulkDailyQueryJobs: int = 10_000
    bulkDailyResultsMB: int = 1_048_576
    bulkResultsDays: int = 7

    def apply(self, changes: dict, schema: dict):
        """Validates and applies a partial update; raises ControlError naming the bad key."""
        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                raise ControlError(400, "unknown_setting", f"unknown config key {key!r}")
            current = getattr(self, key)
            if key == "permissions":
                self._apply_permissions(value, schema)
            elif key == "outboundUrl":
                if value is not None and not (isinstance(value, str)
                                              and re.match(r"https?://", value)):
                    raise ControlError(400, "bad_setting", "outboundUrl must be an http(s) URL or null")
                self.outboundUrl = value
            elif key == "duplicateRuleLead":
                if value not in DUPLICATE_RULE_MODES:
                    raise ControlError(400, "bad_setting",
                                       f"duplicateRuleLead must be one of {', '.join(DUPLICATE_RULE_MODES)}")
                self.duplicateRuleLead = value
            elif key in ("campaignTypeRestricted", "queryIndex"):
                if not isinstance(value, bool):
                    raise ControlError(400, "bad_setting", f"{key} must be true or false")
                setattr(self, key, value)
            elif key == "campaignTypeValues":
                if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 255
                                                          for v in value) or len(value) > 1000:
                    raise ControlError(400, "bad_setting", "campaignTypeValues must be a list of up to "
                                       "1000 non-empty strings of at most 255 characters")
                self.campaignTypeValues = list(value)
            elif key == "unknownMemberStatus":
                if value not in UNKNOWN_STATUS_MODES:
                    raise ControlError(400, "bad_setting", "unknownMemberStatus must be one of "
                                       + ", ".join(UNKNOWN_STATUS_MODES))
                self.unknownMemberStatus = value
            elif key == "outboundFields":
                cm = schema["CampaignMember"]
                if not isinstance(value, list) or not all(isinstance(v, str) and cm.field(v)
                                                          for v in value):
                    raise ControlError(400, "bad_setting",
                                       "outboundFields must list CampaignMember field names")
                self.outboundFields = [cm.field(v).name for v in value]
            elif key in ("limitsWhenSpent", "deletedStartBeforeEarliest"):
                allowed = {"limitsWhenSpent": ("answer", "refuse"),
                           "deletedStartBeforeEarliest": ("error", "answer")}[key]
                if value not in allowed:
                    raise ControlError(400, "bad_setting", f"{key} must be one of {allowed}")
                setattr(self, key, value)
            elif key in BULK_CHECKS:
                setattr(self, key, bulk_setting(key, value))
            elif isinstance(current, int) and not isinstance(current, bool):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ControlError(400, "bad_setting", f"{key} must be a non-negative integer")
                if key == "queryBatchSize" and value < 1:
                    raise ControlError(400, "bad_setting", "queryBatchSize must be at least 1")
                setattr(self, key, value)
            else:
                if not isinstance(value, str) or not value:
                    raise ControlError(400, "bad_setting", f"{key} must be a non-empty string")
                prefix = {"orgId": "00D", "integrationUserId": "005", "humanUserId": "005"}.get(key)
                if prefix and (canonical_id(value) is None or not value.startswith(prefix)):
                    raise ControlError(400, "bad_setting",
                                       f"{key} must be a 15- or 18-character id starting {prefix}")
                setattr(self, key, value)

    def _apply_permissions(self, value, schema):
        if not isinstance(value, dict):
            raise ControlError(400, "bad_setting", "permissions must be an object per sObject")
        for obj, flags in value.items():
            if obj not in schema or not isinstance(flags, dict) or not all(
                    k in PERMISSION_FLAGS and isinstance(v, bool) for k, v in flags.items()):
                raise ControlError(400, "bad_setting",
                                   f"permissions.{obj}: expected a known sObject with boolean "
                                   f"{', '.join(PERMISSION_FLAGS)}")
            self.permissions.setdefault(obj, {}).update(flags)

    def allowed(self, obj: str, flag: str) -> bool:
        return self.permissions.get(obj, {}).get(flag, True)

    def public(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# --------------------------------------------------------------------------- store

class Transaction:
    """Undo log for one unit of work (one record of a Collections call, one seed, ...):
    remembers each touched record's state before its first change, and the member ids whose
    Outbound Message fires if the work is committed."""

    def __init__(self, store):
        self.store = store
        self.before = {}
        self.notify = []
        self.journal = []     # CampaignMember saves, for the member journal once committed

    def touch(self, id15: str):
        if id15 not in self.before:
            self.before[id15] = self.store.locate(id15)

    def rollback(self):
        for id15, snap in reversed(list(self.before.items())):
            self.store.restore(id15, snap)
        self.before.clear()
        self.notify.clear()
        self.journal.clear()


# Fields of live records indexed by value, so that a SOQL `=` or `IN` term on them takes its
# candidates from the index (QueryEngine.candidates) instead of scanning the object.
INDEXED_FIELDS = {"CampaignMember": ("CampaignId", "LeadId", "ContactId"),
                  "Lead": ("Email",), "Contact": ("Email",)}


def index_key(f: FieldDef, v):
    """A stored value as SOQL compares it (QueryEngine._value): strings case-insensitively."""
    return v.casefold() if isinstance(v, str) and f.type in STRING_TYPES else v


class Store:
    """Live records per object and the recycle bin, keyed by canonical 15-character id.
    Stored dicts are never mutated in place (saves replace them), so snapshots are cheap.
    Every change to `live` goes through save, discard and restore, which keep the value
    indexes (`by_value`) and each live record's place in its object's dict (`seq`) true."""

    def __init__(self, schema):
        self.schema = schema
        self.live = {name: {} for name in schema}
        self.recycle = {}                      # id15 -> (obj, record with deletedDate)
        self.member_by_person = {}             # (campaign15, person15) -> member15
        # (obj, field) -> index_key(value) -> {id15, ...} of live records
        self.by_value = {(obj, name): {} for obj, names in INDEXED_FIELDS.items() for name in names}
        # id15 -> a number rising with the record's place in live[obj] (the order of a scan)
        self.seq = {}
        self._next_seq = 0

    def get(self, obj: str, id15: Optional[str]):
        return self.live[obj].get(id15) if id15 else None

    def locate(self, id15: str):
        """(object name, record, deleted?) or (None, None, False)."""
        for name, recs in self.live.items():
            if id15 in recs:
                return name, recs[id15], False
        if id15 in self.recycle:
            name, rec = self.recycle[id15]
            return name, rec, True
        return None, None, False

    def get_any(self, obj: str, id15: Optional[str]):
        """A live or recycled record (for derived values of deleted members)."""
        rec = self.get(obj, id15)
        if rec is None and id15 in self.recycle and self.recycle[id15][0] == obj:
            rec = self.recycle[id15][1]
        return rec

    def taken(self, id15: str) -> bool:
        return any(id15 in recs for recs in self.live.values()) or id15 in self.recycle

    def save(self, tx: Transaction, obj: str, rec: dict):
        tx.touch(rec["Id"])
        old = self.live[obj].get(rec["Id"])
        self._unindex(obj, old)
        self.live[obj][rec["Id"]] = rec        # an existing key keeps its place in the dict
        if old is None:
            self._place(rec["Id"])
        self._index(obj, rec)

    def discard(self, tx: Transaction, obj: str, id15: str, rec: dict):
        """Moves a live record to the recycle bin as `rec` (already marked deleted)."""
        tx.touch(id15)
        self._unindex(obj, self.live[obj].pop(id15))
        self.seq.pop(id15, None)
        self.recycle[id15] = (obj, rec)

    def restore(self, id15, snap):
        for name, recs in self.live.items():
            if id15 in recs:
                self._unindex(name, recs.pop(id15))
        self.seq.pop(id15, None)
        self.recycle.pop(id15, None)
        obj, rec, deleted = snap
        if obj is None:
            return
        if deleted:
            self.recycle[id15] = (obj, rec)
        else:
            self.live[obj][id15] = rec         # re-inserted: now last in the dict
            self._place(id15)
            self._index(obj, rec)

    def member_key(self, rec):
        return rec["CampaignId"], rec["ContactId"] or rec["LeadId"]

    def _place(self, id15):
        self.seq[id15] = self._next_seq
        self._next_seq += 1

    def _index(self, obj, rec):
        if obj == "CampaignMember":
            self.member_by_person[self.member_key(rec)] = rec["Id"]
        objdef = self.schema[obj]
        for name in INDEXED_FIELDS.get(obj, ()):
            key = index_key(objdef.field(name), rec.get(name))
            self.by_value[obj, name].setdefault(key, set()).add(rec["Id"])

    def _unindex(self, obj, rec):
        if rec is None:
            return
        if obj == "CampaignMember":
            self.member_by_person.pop(self.member_key(rec), None)
        objdef = self.schema[obj]
        for name in INDEXED_FIELDS.get(obj, ()):
            key = index_key(objdef.field(name), rec.get(name))
            ids = self.by_value[obj, name].get(key)
            if ids is not None:
                ids.discard(rec["Id"])
                if not ids:
                    del self.by_value[obj, name][key]

    def ids_where(self, obj: str, name: str, keys) -> Optional[set]:
        """Ids of live `obj` records whose `name` (as index_key makes it) is one of keys;
        None when that field has no index."""
        if name == "Id":
            return {k for k in keys if k in self.live[obj]}
        index = self.by_value.get((obj, name))
        if index is None:
            return None
        return set().union(*(index.get(k, ()) for k in keys))

    def in_scan_order(self, obj: str, ids) -> list:
        """The live records of ids in the order list(live[obj].values()) gives them."""
        live = self.live[obj]
        return [live[i] for i in sorted(ids, key=self.seq.__getitem__)]

    def statuses(self, campaign15: str) -> list:
        return sorted((r for r in self.live["CampaignMemberStatus"].values()
                       if r["CampaignId"] == campaign15), key=lambda r: r["SortOrder"] or 0)


class Values:
    """Reads field values, derived ones included, and renders them for JSON and SOAP."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, obj: str, rec: dict, f: FieldDef):
        if not f.derived:
            return rec.get(f.name)
        person, kind = self._person(rec)
        if f.name == "LeadOrContactId":
            return rec["ContactId"] or rec["LeadId"]
        if person is None:
            return None
        if f.name == "CompanyOrAccount":
            if kind == "Lead":
                return person.get("Company")
            account = self.store.get_any("Account", person.get("AccountId"))
            return account["Name"] if account else None
        return person.get(f.name)

    def _person(self, member):
        if member.get("ContactId"):
            return self.store.get_any("Contact", member["ContactId"]), "Contact"
        return self.store.get_any("Lead", member.get("LeadId")), "Lead"

    @staticmethod
    def json_value(f: FieldDef, v):
        if v is None:
            return None
        if f.type in ("id", "reference"):
            return to18(v)
        if f.type == "datetime":
            return fmt_dt(v)
        return v

    @staticmethod
    def soap_value(f: FieldDef, v) -> str:
        if f.type in ("id", "reference"):
            return to18(v)
        if f.type == "datetime":
            return fmt_soap_dt(v)
        if f.type == "boolean":
            return "true" if v else "false"
        if f.type in ("currency", "double"):
            return repr(float(v))
        return str(v)

    def plain(self, objdef: ObjectDef, rec: dict) -> dict:
        """Every field, JSON-rendered (control API and single-row GET)."""
        return {f.name: self.json_value(f, self.get(objdef.name, rec, f)) for f in objdef.fields}

    def api_record(self, objdef: ObjectDef, rec: dict, version: str, fields=None) -> dict:
        out = {"attributes": {"type": objdef.name,
                              "url": f"/services/data/{version}/sobjects/{objdef.name}/{to18(rec['Id'])}"}}
        for f in fields or objdef.fields:
            out[f.name] = self.json_value(f, self.get(objdef.name, rec, f))
        return out


# --------------------------------------------------------------------------- DML rules

EMAIL_RE = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
DEFAULT_STATUSES = [{"Label": "Sent", "IsDefault": True}, {"Label": "Responded", "HasResponded": True}]


class Dml:
    """Creates, updates and deletes records with the real API's validation: field names,
    types, lengths, required fields, writability, references, and the CampaignMember and
    CampaignMemberStatus rules. Raises DmlError (per record) or ApiError (whole request,
    for what Salesforce rejects while deserializing: unknown fields, wrong JSON types)."""

    def __init__(self, sim):
        self.sim = sim
        self.store: Store = sim.store

    # ---- entry points

    def create(self, tx, objdef, values, user, *, check_access=True, explicit_id=None,
               stamps=None, statuses=None) -> str:
        """Inserts one record and returns its id15. A new Campaign gets `statuses` as its
        member statuses, by default Salesforce's standard Sent (default) and Responded."""
        if check_access:
            self._check_access(objdef, "createable")
        if isinstance(values, dict) and any(k.lower() == "id" for k in values):
            raise DmlError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call",
                           ["Id"])
        data = self._coerce(objdef, values, "createable")
        missing = [f.name for f in objdef.fields if f.required and data.get(f.name) is None]
        if missing:
            raise DmlError("REQUIRED_FIELD_MISSING",
                           f"Required fields are missing: [{', '.join(missing)}]", missing)
        rec = {f.name: (False if f.type == "boolean" else None)
               for f in objdef.fields if not f.derived}
        rec.update(data)
        hook = getattr(self, f"_before_create_{objdef.name}", None)
        if hook:
            hook(tx, rec)
        if check_access and objdef.name == "Lead":
            self._duplicate_rule(rec)
        at = (stamps or {}).get("CreatedDate") or self.sim.clock.stamp()
        modified = (stamps or {}).get("LastModifiedDate") or at
        rec.update(Id=explicit_id or self.sim.ids.new(objdef.prefix, self.store.taken),
                   IsDeleted=False, CreatedDate=at, CreatedById=user, LastModifiedDate=modified,
                   LastModifiedById=user, SystemModstamp=modified)
        self.store.save(tx, objdef.name, rec)
        if objdef.name == "Campaign":
            self.add_statuses(tx, rec["Id"], statuses or DEFAULT_STATUSES, user)
        if objdef.name == "CampaignMember":
            tx.notify.append(rec["Id"])
            tx.journal.append({"t": modified, "op": "create", "id": rec["Id"], "by": user,
                               "status": rec.get("Status")})
        return rec["Id"]

    def update(self, tx, objdef, rec, values, user, *, check_access=True):
        if check_access:
            self._check_access(objdef, "updateable")
        data = self._coerce(objdef, values, "updateable")
        blanked = [f.name for f in objdef.fields
                   if f.required and f.name in data and data[f.name] is None]
        if blanked:
            raise DmlError("REQUIRED_FIELD_MISSING",
                           f"Required fields are missing: [{', '.join(blanked)}]", blanked)
        new = dict(rec)
        new.update(data)
        hook = getattr(self, f"_before_update_{objdef.name}", None)
        if hook:
            hook(tx, rec, new)
        at = self.sim.clock.stamp()
        new.update(LastModifiedDate=at, LastModifiedById=user, SystemModstamp=at)
        self.store.save(tx, objdef.name, new)
        if objdef.name == "CampaignMember":
            tx.notify.append(new["Id"])
            tx.journal.append({"t": at, "op": "update", "id": new["Id"], "by": user,
                               "status": new.get("Status")})

    def delete(self, tx, objdef, rec, user, *, check_access=True, cascading=False):
        if check_access:
            self._check_access(objdef, "deletable")
        hook = getattr(self, f"_before_delete_{objdef.name}", None)
        if hook and not cascading:
            hook(rec)
        at = self.sim.clock.stamp()
        if objdef.name == "CampaignMember":
            tx.journal.append({"t": at, "op": "delete", "id": rec["Id"], "by": user,
                               "status": rec.get("Status")})
        self.store.discard(tx, objdef.name, rec["Id"],
                           dict(rec, IsDeleted=True, LastModifiedDate=at, LastModifiedById=user,
                                SystemModstamp=at, deletedDate=at))
        for child_def in self.sim.schema.values():
            for f in child_def.fields:
                if f.cascade and f.reference_to == objdef.name:
                    for child in [c for c in self.store.live[child_def.name].values()
                                  if c.get(f.name) == rec["Id"]]:
                        if child["Id"] in self.store.live[child_def.name]:
                            self.delete(tx, child_def, child, user, check_access=False,
                                        cascading=True)

    def resolve(self, objdef: ObjectDef, raw_id):
        """The live record with this id, or a DmlError saying why not (Collections wording)."""
        id15 = canonical_id(raw_id)
        if id15 is None or not id15.startswith(objdef.prefix):
            raise DmlError("MALFORMED_ID", f"malformed id {raw_id}", ["Id"])
        rec = self.store.get(objdef.name, id15)
        if rec is None:
            if id15 in self.store.recycle:
                raise DmlError("ENTITY_IS_DELETED", "entity is deleted")
            raise DmlError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        return rec

    # ---- generic checks

    def _check_access(self, objdef, flag):
        if not self.sim.config.allowed(objdef.name, flag):
            # guess: the exact code/status for a missing object permission on DML
            raise DmlError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")

    def _coerce(self, objdef, values, writable_flag) -> dict:
        if not isinstance(values, dict):
            raise ApiError(400, "JSON_PARSER_ERROR",
                           f"Cannot deserialize instance of {objdef.name} from "
                           f"{'START_ARRAY' if isinstance(values, list) else 'VALUE_STRING'} value")
        data, readonly = {}, []
        for key, value in values.items():
            if key == "attributes":
                continue
            f = objdef.field(key)
            if f is None:
                raise ApiError(400, "INVALID_FIELD",
                               f"No such column '{key}' on sobject of type {objdef.name}")
            if not getattr(f, writable_flag):
                readonly.append(f.name)
                continue
            data[f.name] = self._convert(f, value)
        if readonly:
            raise DmlError("INVALID_FIELD_FOR_INSERT_UPDATE",
                           f"Unable to create/update fields: {', '.join(readonly)}. Please check "
                           "the security settings of this field and verify that it is read/write "
                           "for your profile or permission set.", readonly)
        return data

    def _convert(self, f: FieldDef, value):
        def bad(token):
            return ApiError(400, "JSON_PARSER_ERROR",
                            f"Cannot deserialize instance of {f.type} from {token} value "
                            f"{json.dumps(value)} or request may be missing a required field")

        token = {bool: "VALUE_TRUE" if value else "VALUE_FALSE", str: "VALUE_STRING",
                 int: "VALUE_NUMBER_INT", float: "VALUE_NUMBER_FLOAT", list: "START_ARRAY",
                 dict: "START_OBJECT"}.get(type(value), "VALUE_NULL")
        if f.type == "boolean":
            if value is None:
                return False
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise bad(token)
        if value is None:
            return None
        if f.type in NUMBER_TYPES:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise bad(token)
            try:
                number = float(value)
            except ValueError:
                raise bad(token) from None
            if f.type == "int":
                if number != int(number):
                    raise bad(token)
                return int(number)
            return number
        if isinstance(value, (bool, list, dict)):
            raise bad(token)
        text = str(value) if not isinstance(value, str) else value
        if text.strip() == "":
            return None                     # Salesforce stores blank text as null
        if f.type == "reference":
            return self._reference(f, text)
        if f.length and len(text) > f.length:
            raise DmlError("STRING_TOO_LONG",
                           f"{f.label}: data value too large: {text} (max length={f.length})", [f.name])
        if f.type == "email" and not EMAIL_RE.fullmatch(text):
            raise DmlError("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", [f.name])
        return text

    def _reference(self, f: FieldDef, text: str) -> str:
        id15 = canonical_id(text)
        if id15 is None:
            raise DmlError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {text}", [f.name])
        target = self.sim.schema[f.reference_to]
        if not id15.startswith(target.prefix):
            raise DmlError("FIELD_INTEGRITY_EXCEPTION",
                           f"{f.label}: id value of incorrect type: {text}", [f.name])
        if self.store.get(target.name, id15) is None:
            if id15 in self.store.recycle:
                raise DmlError("ENTITY_IS_DELETED", "entity is deleted", [f.name])
            raise DmlError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        return id15

    def add_statuses(self, tx, campaign15, statuses, user):
        status_def = self.sim.schema["CampaignMemberStatus"]
        for s in statuses:
            self.create(tx, status_def, dict(s, CampaignId=campaign15), user, check_access=False)

    # ---- duplicate rule on Lead

    def _duplicate_rule(self, rec):
        """An active Lead duplicate rule (action Block) matching Leads and Contacts by Email.
        guess: real matching rules also match fuzzily on names, company and phone; only the
        exact, case-insensitive Email rule is modelled. It runs with system sharing (the REST
        Duplicate Rule Header's runAsCurrentUser defaults to false); converted Leads are not
        matched. API requests only: seeding and human actions bypass it."""
        mode = self.sim.config.duplicateRuleLead
        email = (rec.get("Email") or "").casefold()
        if mode == "off" or not email:
            return
        matches = [(obj, r["Id"]) for obj in ("Lead", "Contact")
                   for r in self.store.live[obj].values()
                   if (r.get("Email") or "").casefold() == email and not r.get("IsConverted")]
        if matches:
            raise DuplicateDetected(matches, with_details=mode == "block")

    # ---- CampaignMember

    def _before_create_CampaignMember(self, tx, rec):
        if rec["LeadId"] is None and rec["ContactId"] is None:
            # guess: the code and wording when neither person field is set
            raise DmlError("REQUIRED_FIELD_MISSING", "Required fields are missing: [LeadId, ContactId]",
                           ["LeadId", "ContactId"])
        if rec["ContactId"]:
            rec["LeadId"] = None            # both given: only ContactId is stored
        if self.store.member_key(rec) in self.store.member_by_person:
            raise DmlError("DUPLICATE_VALUE", "Already a campaign member.")
        self._apply_status(rec, default_when_null=True)

    def _before_update_CampaignMember(self, tx, old, new):
        if new["Status"] != old["Status"] or new["Status"] is None:
            self._apply_status(new, default_when_null=False)

    def _apply_status(self, rec, default_when_null):
        statuses = self.store.statuses(rec["CampaignId"])
        default = next((s for s in statuses if s["IsDefault"]), None)
        if rec["Status"] is None and default_when_null:
            rec["Status"] = default["Label"] if default else None
        match = next((s for s in statuses if s["Label"] == rec["Status"]), None)
        if match is None and rec["Status"] is not None and default is not None \
                and self.sim.config.unknownMemberStatus == "default":
            # GUESS (public posts, /_sim/config unknownMemberStatus "default"): the campaign's
            # default status is stored in place of one it lacks, and the save succeeds.
            rec["Status"], match = default["Label"], default
        if match is None:
            raise DmlError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"Status: bad value for restricted picklist field: {rec['Status'] or ''}", ["Status"])
        rec["HasResponded"] = match["HasResponded"]

    # ---- Campaign: Type as a restricted picklist (Config.campaignTypeRestricted)

    def _before_create_Campaign(self, tx, rec):
        self._check_campaign_type(rec)

    def _before_update_Campaign(self, tx, old, new):
        if new["Type"] != old["Type"]:
            self._check_campaign_type(new)

    def _check_campaign_type(self, rec):
        cfg = self.sim.config
        if cfg.campaignTypeRestricted and rec["Type"] is not None \
                and rec["Type"] not in cfg.campaignTypeValues:
            # The error of a value outside a restricted picklist, as a single-record PATCH
            # answers it: 400 [{"message","errorCode","fields"}] (REST API Developer Guide,
            # "Status Codes and Error Responses", api-rest/guide/errorcodes.html).
            raise DmlError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"Type: bad value for restricted picklist field: {rec['Type']}", ["Type"])

    # ---- CampaignMemberStatus: one default, one responded, unique labels and sort orders
    # (guess: the codes for breaking these rules; the rules themselves are documented)

    def _before_create_CampaignMemberStatus(self, tx, rec):
        siblings = self.store.statuses(rec["CampaignId"])
        self._check_unique_status(rec, siblings)
        if rec["SortOrder"] is None:
            rec["SortOrder"] = max((s["SortOrder"] or 0 for s in siblings), default=0) + 1
        if rec["IsDefault"]:
            self._clear_other_defaults(tx, rec, siblings)

    def _before_update_CampaignMemberStatus(self, tx, old, new):
        siblings = [s for s in self.store.statuses(new["CampaignId"]) if s["Id"] != new["Id"]]
        self._check_unique_status(new, siblings)
        if old["IsDefault"] and not new["IsDefault"]:
            raise DmlError("FIELD_INTEGRITY_EXCEPTION",
                           "A campaign must have exactly one default member status; set another "
                           "status as default instead.", ["IsDefault"])
        if old["HasResponded"] and not new["HasResponded"] and not any(s["HasResponded"] for s in siblings):
            raise DmlError("FIELD_INTEGRITY_EXCEPTION",
                           "A campaign must have at least one member status with HasResponded set.",
                           ["HasResponded"])
        if new["IsDefault"] and not old["IsDefault"]:
            self._clear_other_defaults(tx, new, siblings)
        if new["Label"] != old["Label"]:
            for m in [m for m in self.store.live["CampaignMember"].values()
                      if m["CampaignId"] == new["CampaignId"] and m["Status"] == old["Label"]]:
                self.store.save(tx, "CampaignMember", dict(m, Status=new["Label"]))

    def _before_delete_CampaignMemberStatus(self, rec):
        siblings = [s for s in self.store.statuses(rec["CampaignId"]) if s["Id"] != rec["Id"]]
        if rec["IsDefault"]:
            raise DmlError("DELETE_FAILED", "You can't delete the default campaign member status.")
        if rec["HasResponded"] and not any(s["HasResponded"] for s in siblings):
            raise DmlError("DELETE_FAILED",
                           "A campaign must keep at least one member status with HasResponded set.")
        if any(m["CampaignId"] == rec["CampaignId"] and m["Status"] == rec["Label"]
               for m in self.store.live["CampaignMember"].values()):
            raise DmlError("DELETE_FAILED", "You can't delete a campaign member status that is in use.")

    def _check_unique_status(self, rec, siblings):
        for s in siblings:
            if s["Label"].lower() == rec["Label"].lower():
                raise DmlError("DUPLICATE_VALUE", "duplicate value found: Label duplicates value on "
                               f"record with id: {to18(s['Id'])}", ["Label"])
            if rec["SortOrder"] is not None and s["SortOrder"] == rec["SortOrder"]:
                raise DmlError("DUPLICATE_VALUE", "duplicate value found: SortOrder duplicates value "
                               f"on record with id: {to18(s['Id'])}", ["SortOrder"])

    def _clear_other_defaults(self, tx, rec, siblings):
        for s in siblings:
            if s["IsDefault"] and s["Id"] != rec["Id"]:
                self.store.save(tx, "CampaignMemberStatus", dict(s, IsDefault=False))


# --------------------------------------------------------------------------- SOQL

class SoqlError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w-]))
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
""", re.X)
STRING_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"',
                  "\\": "\\", "%": "\\%", "_": "\\_"}


@dataclass
class Token:
    kind: str
    text: str
    pos: int
    value: Any = None

    def kw(self, *words) -> bool:
        return self.kind == "ident" and self.text.upper() in words


@dataclass
class Path:
    """A selected or filtered field: base.field, or base.relationship.field."""
    rel: Optional[FieldDef]
    field: FieldDef
    target: ObjectDef


@dataclass
class Query:
    objdef: ObjectDef
    select: Optional[list]            # None for COUNT()
    where: Any
    order: list
    limit: Optional[int]
    offset: int


class SoqlParser:
    """Parses the SOQL subset a sync client needs, failing with the real error codes
    (MALFORMED_QUERY, INVALID_TYPE, INVALID_FIELD, INVALID_QUERY_FILTER_OPERATOR) and the
    real message layout (query, caret, "ERROR at Row:1:Column:N", reason). Mixing AND and OR
    without parentheses is rejected, as in SOQL."""

    def __init__(self, sim, text: str):
        self.sim, self.text = sim, text
        self.tokens = self._tokenize(text)
        self.i = 0

    # ---- errors

    def fail(self, code, pos, reason):
        row = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        raise SoqlError(code, f"\n{self.text}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{reason}")

    def unexpected(self, tok=None):
        tok = tok or self.peek()
        if tok.kind == "eof":
            self.fail("MALFORMED_QUERY", len(self.text), "unexpected token: <EOF>")
        self.fail("MALFORMED_QUERY", tok.pos, f"unexpected token: {tok.text}")

    # ---- tokens

    def _tokenize(self, text):
        tokens, pos = [], 0
        while pos < len(text):
            m = TOKEN_RE.match(text, pos)
            if not m:
                self.fail("MALFORMED_QUERY", pos, f"unexpected token: {text[pos:pos + 10].split()[0]}")
            kind = m.lastgroup
            if kind != "ws":
                tok = Token(kind, m.group(), pos)
                if kind == "string":
                    tok.value = re.sub(r"\\(.)", lambda e: STRING_ESCAPES.get(e.group(1), e.group(1)),
                                       m.group()[1:-1])
                tokens.append(tok)
            pos = m.end()
        tokens.append(Token("eof", "", len(text)))
        return tokens

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect_kw(self, *words) -> Token:
        if not self.peek().kw(*words):
            self.unexpected()
        return self.take()

    def expect_punct(self, text) -> Token:
        if self.peek().text != text:
            self.unexpected()
        return self.take()

    # ---- grammar

    def parse(self) -> Query:
        self.expect_kw("SELECT")
        raw_fields, count = [], False
        if self.peek().kw("COUNT") and self.tokens[self.i + 1].text == "(":
            self.take()
            self.take()
            self.expect_punct(")")
            count = True
        else:
            while True:
                tok = self.take()
                if tok.kind != "ident" or tok.kw("FROM"):
                    self.unexpected(tok)
                raw_fields.append(tok)
                if self.peek().text != ",":
                    break
                self.take()
        self.expect_kw("FROM")
        obj_tok = self.take()
        if obj_tok.kind != "ident":
            self.unexpected(obj_tok)
        objdef = self._object(obj_tok)
        select = None if count else self._select(objdef, raw_fields)
        where = order = None
        limit, offset = None, 0
        if self.peek().kw("WHERE"):
            self.take()
            where = self._expr(objdef)
        if self.peek().kw("ORDER"):
            self.take()
            self.expect_kw("BY")
            order = self._order(objdef)
        if self.peek().kw("LIMIT"):
            self.take()
            limit = self._int()
        if self.peek().kw("OFFSET"):
            self.take()
            offset = self._int()
        if self.peek().kind != "eof":
            self.unexpected()
        return Query(objdef, select, where, order or [], limit, offset)

    def _object(self, tok) -> ObjectDef:
        objdef = next((o for o in self.sim.schema.values() if o.name.lower() == tok.text.lower()), None)
        if objdef is None or not self.sim.config.allowed(objdef.name, "queryable"):
            self.fail("INVALID_TYPE", tok.pos,
                      f"sObject type '{tok.text}' is not supported. If you are attempting to use a "
                      "custom object, be sure to append the '__c' after the entity name. Please "
                      "reference your WSDL or the describe call for the appropriate names.")
        return objdef

    def _select(self, objdef, raw_fields) -> list:
        paths, seen = [], set()
        for tok in raw_fields:
            path = self._path(objdef, tok)
            key = ((path.rel.name if path.rel else ""), path.field.name)
            if key in seen:
                # guess: the error code for a field selected twice
                self.fail("MALFORMED_QUERY", tok.pos, f"duplicate field selected: {tok.text}")
            seen.add(key)
            paths.append(path)
        return paths

    def _path(self, objdef, tok) -> Path:
        parts = tok.text.split(".")
        if len(parts) > 2:
            self.fail("INVALID_FIELD", tok.pos, f"Didn't understand relationship '{parts[0]}' in "
                      "field path. Please reference your WSDL or the describe call for the "
                      "appropriate names.")
        if len(parts) == 2:
            rel = objdef.by_relationship.get(parts[0].lower())
            if rel is None:
                self.fail("INVALID_FIELD", tok.pos, f"Didn't understand relationship '{parts[0]}' in "
                          "field path. If you are attempting to use a custom relationship, be sure "
                          "to append the '__r' after the custom relationship name. Please reference "
                          "your WSDL or the describe call for the appropriate names.")
            target = self.sim.schema[rel.reference_to]
            f = target.field(parts[1])
            if f is None:
                self._no_column(tok, parts[1], target)
            return Path(rel, f, target)
        f = objdef.field(parts[0])
        if f is None:
            self._no_column(tok, parts[0], objdef)
        return Path(None, f, objdef)

    def _no_column(self, tok, name, objdef):
        self.fail("INVALID_FIELD", tok.pos,
                  f"No such column '{name}' on entity '{objdef.name}'. If you are attempting to use "
                  "a custom field, be sure to append the '__c' after the custom field name. Please "
                  "reference your WSDL or the describe call for the appropriate names.")

    def _int(self) -> int:
        tok = self.take()
        if tok.kind != "number" or not tok.text.isdigit():
            self.unexpected(tok)
        return int(tok.text)

    def _order(self, objdef) -> list:
        items = []
        while True:
            tok = self.take()
            if tok.kind != "ident":
                self.unexpected(tok)
            path = self._path(objdef, tok)
            desc = False
            if self.peek().kw("ASC", "DESC"):
                desc = self.take().text.upper() == "DESC"
            nulls_first = not desc
            if self.peek().kw("NULLS"):
                self.take()
                nulls_first = self.expect_kw("FIRST", "LAST").text.upper() == "FIRST"
            items.append((path, desc, nulls_first))
            if self.peek().text != ",":
                return items
            self.take()

    def _expr(self, objdef):
        """term {AND term} or term {OR term}; a different connective needs parentheses."""
        terms, connective = [self._term(objdef)], None
        while self.peek().kw("AND", "OR"):
            word = self.peek().text.upper()
            if connective and word != connective:
                self.unexpected()
            connective = word
            self.take()
            terms.append(self._term(objdef))
        if connective is None:
            return terms[0]
        return ("and" if connective == "AND" else "or", terms)

    def _term(self, objdef):
        tok = self.peek()
        if tok.kw("NOT"):
            self.take()
            return ("not", self._term(objdef))
        if tok.text == "(":
            self.take()
            inner = self._expr(objdef)
            self.expect_punct(")")
            return inner
        if tok.kind != "ident":
            self.unexpected()
        path = self._path(objdef, self.take())
        op_tok = self.take()
        if op_tok.kind == "op":
            value = self._literal(path)
            if op_tok.text in ("<", ">", "<=", ">=") and value is None:
                self.unexpected(self.tokens[self.i - 1])
            return ("cmp", path, "!=" if op_tok.text == "<>" else op_tok.text, value)
        negate = op_tok.kw("NOT")
        if negate:
            op_tok = self.take()
        if op_tok.kw("IN"):
            self.expect_punct("(")
            values = [self._literal(path)]
            while self.peek().text == ",":
                self.take()
                values.append(self._literal(path))
            self.expect_punct(")")
            return ("in", path, set(values), negate)
        if op_tok.kw("LIKE") and not negate:
            pat_tok = self.take()
            if pat_tok.kind != "string":
                self.unexpected(pat_tok)
            if path.field.type not in STRING_TYPES:
                self.fail("INVALID_QUERY_FILTER_OPERATOR", op_tok.pos,
                          f"invalid operator on {path.field.type} field")
            return ("like", path, self._like_regex(pat_tok.value))
        self.unexpected(op_tok)

    @staticmethod
    def _like_regex(pattern):
        out, i = "", 0
        while i < len(pattern):
            ch = pattern[i]
            if ch == "\\" and i + 1 < len(pattern):
                out += re.escape(pattern[i + 1])
                i += 2
                continue
            out += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
            i += 1
        return re.compile(out, re.I | re.S)

    def _literal(self, path: Path):
        """The comparable value of a literal, checked against the field type as SOQL does."""
        tok = self.take()
        f = path.field
        if tok.kw("NULL"):
            return None
        if tok.kind not in ("string", "number", "datetime", "date") and not tok.kw("TRUE", "FALSE"):
            self.unexpected(tok)

        def wrong(kind, quoted):
            self.fail("INVALID_FIELD", tok.pos,
                      f"value of filter criterion for field '{f.name}' must be of type {kind} and "
                      f"should {'' if quoted else 'not '}be enclosed in quotes")

        if f.type in ("id", "reference"):
            if tok.kind != "string":
                wrong("id", True)
            id15 = canonical_id(tok.value)
            if id15 is None:
                self.fail("INVALID_QUERY_FILTER_OPERATOR", tok.pos, f"invalid ID field: {tok.value}")
            return id15
        if f.type in STRING_TYPES:
            if tok.kind != "string":
                wrong("string", True)
            return tok.value.casefold()
        if f.type == "boolean":
            if not tok.kw("TRUE", "FALSE"):
                wrong("boolean", False)
            return tok.text.upper() == "TRUE"
        if f.type == "datetime":
            if tok.kind != "datetime":
                wrong("dateTime", False)
            return parse_dt(tok.text)
        if tok.kind != "number":
            wrong("double" if f.type != "int" else "int", False)
        return float(tok.text)


class QueryEngine:
    """Runs parsed queries over the store and keeps the cursors behind nextRecordsUrl."""

    MAX_CURSORS = 100

    def __init__(self, sim):
        self.sim = sim
        self.cursors = collections.OrderedDict()   # locator id -> (records, query resource)
        self.rows_examined = 0     # records the WHERE clause was evaluated on (/_sim/stats)
        self.index_hits = 0        # queries whose candidates came from an index

    def candidates(self, q: Query, include_deleted: bool) -> list:
        """The records the WHERE clause must be evaluated on, in the order of a full scan
        (live records in insertion order, then the recycle bin's): all of the object's, or,
        when the WHERE is a conjunction with an indexed `=`/`IN` term (and config queryIndex
        is on), only the live records that term can match. Either way the caller evaluates the
        whole WHERE, so the result is the same."""
        store, obj = self.sim.store, q.objdef.name
        ids = self._indexed_ids(q) if self.sim.config.queryIndex else None
        if ids is None:
            rows = list(store.live[obj].values())
        else:
            rows = store.in_scan_order(obj, ids)
            self.index_hits += 1
        if include_deleted:
            rows += [rec for o, rec in store.recycle.values() if o == obj]
        self.rows_examined += len(rows)
        return rows

    def _indexed_ids(self, q: Query) -> Optional[set]:
        """The smallest id set one indexed term of a top-level AND allows, or None."""
        if q.where is None:
            return None
        best = None
        for term in self._conjuncts(q.where):
            if term[0] == "cmp" and term[2] == "=":
                keys = (term[3],)
            elif term[0] == "in" and not term[3]:
                keys = term[2]
            else:
                continue
            path = term[1]
            if path.rel is not None or path.field.derived:
                continue
            ids = self.sim.store.ids_where(q.objdef.name, path.field.name, keys)
            if ids is not None and (best is None or len(ids) < len(best)):
                best = ids
        return best

    @classmethod
    def _conjuncts(cls, node):
        if node[0] != "and":
            return [node]
        return [t for n in node[1] for t in cls._conjuncts(n)]

    def run(self, text: str, include_deleted: bool, version: str, resource: str, batch: int):
        q = SoqlParser(self.sim, text).parse()
        rows = self.candidates(q, include_deleted)
        rows = [r for r in rows if q.where is None or self._eval(q.where, q.objdef, r)]
        for path, desc, nulls_first in reversed(q.order):
            rows.sort(key=lambda r, p=path, nf=nulls_first, d=desc: self._sort_key(p, r, nf != d),
                      reverse=desc)
        rows = rows[q.offset:]
        if q.limit is not None:
            rows = rows[:q.limit]
        if q.select is None:
            return {"totalSize": len(rows), "done": True, "records": []}
        if q.objdef.name == "CampaignMember":
            t = now_ms()
            self.sim.member_journal.extend({"t": t, "op": "read", "id": r["Id"],
                                            "status": r.get("Status")} for r in rows)
        records = [self._render(q, r, version) for r in rows]
        return self.page(records, 0, version, resource, batch, None)

    def page(self, records, start, version, resource, batch, locator):
        end = start + batch
        out = {"totalSize": len(records), "done": end >= len(records), "records": records[start:end]}
        if not out["done"]:
            if locator is None:
                locator = to18(self.sim.ids.new("01g", lambda _: False))
                self.cursors[locator] = records
                while len(self.cursors) > self.MAX_CURSORS:
                    self.cursors.popitem(last=False)
            out["nextRecordsUrl"] = f"/services/data/{version}/{resource}/{locator}-{end}"
        return out

    def next_page(self, locator_text, version, resource, batch):
        m = re.fullmatch(r"([A-Za-z0-9]{18})-(\d+)", locator_text)
        if not m or m.group(1) not in self.cursors:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        self.cursors.move_to_end(m.group(1))
        return self.page(self.cursors[m.group(1)], int(m.group(2)), version, resource, batch, m.group(1))

    def _value(self, path: Path, rec):
        values = self.sim.values
        if path.rel is not None:
            rec = self.sim.store.get_any(path.target.name, rec.get(path.rel.name))
            if rec is None:
                return None
        v = values.get(path.target.name, rec, path.field)
        if isinstance(v, str) and path.field.type in STRING_TYPES:
            return v.casefold()
        return v

    def _sort_key(self, path, rec, none_low):
        v = self._value(path, rec)
        if v is None:
            return (0 if none_low else 2, 0)
        return (1, v)

    def _eval(self, node, objdef, rec) -> bool:
        kind = node[0]
        if kind == "and":
            return all(self._eval(n, objdef, rec) for n in node[1])
        if kind == "or":
            return any(self._eval(n, objdef, rec) for n in node[1])
        if kind == "not":
            return not self._eval(node[1], objdef, rec)
        v = self._value(node[1], rec)
        if kind == "in":
            return (v in node[2]) != node[3]
        if kind == "like":
            return v is not None and node[2].fullmatch(v) is not None
        op, lit = node[2], node[3]
        if op == "=":
            return v == lit
        if op == "!=":
            return v != lit
        if v is None:
            return False
        return {"<": v < lit, ">": v > lit, "<=": v <= lit, ">=": v >= lit}[op]

    def _render(self, q: Query, rec, version):
        values = self.sim.values
        out = {"attributes": {"type": q.objdef.name,
                              "url": f"/services/data/{version}/sobjects/{q.objdef.name}/{to18(rec['Id'])}"}}
        for path in q.select:
            if path.rel is None:
                out[path.field.name] = values.json_value(path.field, values.get(q.objdef.name, rec, path.field))
                continue
            parent = self.sim.store.get_any(path.target.name, rec.get(path.rel.name))
            if parent is None:
                out[path.rel.relationship] = None
                continue
            nested = out.get(path.rel.relationship) or {"attributes": {
                "type": path.target.name,
                "url": f"/services/data/{version}/sobjects/{path.target.name}/{to18(parent['Id'])}"}}
            nested[path.field.name] = values.json_value(path.field,
                                                        values.get(path.target.name, parent, path.field))
            out[path.rel.relationship] = nested
        return out


# --------------------------------------------------------------------------- auth, usage, faults, calls

class Auth:
    """Issued access tokens and their expiry (client credentials flow: no refresh token)."""

    def __init__(self):
        self.tokens = {}

    def issue(self, org15: str, ttl_s: int) -> str:
        token = f"{org15}!AQ{secrets.token_urlsafe(72)}"
        self.tokens[token] = time.monotonic() + ttl_s
        return token

    def valid(self, header: Optional[str]) -> bool:
        m = re.fullmatch(r"(?:Bearer|OAuth) (\S+)", header or "")
        return bool(m) and self.tokens.get(m.group(1), 0) > time.monotonic()

    def expire_all(self):
        self.tokens.clear()


# "cut": the request is served, but only the first `bytes` bytes of its body are sent (its
# Content-Length says the whole) before the connection closes: a connection lost mid-answer.
FAULT_KINDS = ("status", "expire_tokens", "request_limit", "delay", "drop", "cut")


@dataclass
class FaultRule:
    kind: str
    method: Optional[str] = None
    path: Optional[Any] = None
    status: int = 503
    body: Any = None
    headers: dict = field(default_factory=dict)
    count: Optional[int] = 1          # None: every time
    probability: float = 1.0
    delay_ms: int = 0
    fired: int = 0
    cut_bytes: int = 0

    def public(self):
        return {"kind": self.kind, "method": self.method,
                "path": self.path.pattern if self.path else None, "status": self.status,
                "count": self.count, "probability": self.probability, "delayMs": self.delay_ms,
                "bytes": self.cut_bytes, "fired": self.fired}


class Faults:
    """Injected failures for data and token calls: the first matching rule that fires
    decides. A rule that fires never lets the request change state."""

    def __init__(self):
        self.rules, self.random = [], random.Random()

    def replace(self, spec):
        if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list):
            raise ControlError(400, "bad_faults", 'expected {"rules": [...]}')
        rules = []
        for i, r in enumerate(spec["rules"]):
            try:
                rules.append(self._rule(r))
            except (KeyError, TypeError, ValueError, re.error) as e:
                raise ControlError(400, "bad_faults", f"rules[{i}]: {e}") from None
        if "seed" in spec:
            self.random.seed(spec["seed"])
        self.rules = rules

    @staticmethod
    def _rule(r) -> FaultRule:
        if not isinstance(r, dict) or r.get("kind") not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        count = r.get("count", 1)
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null (always)")
        probability = float(r.get("probability", 1.0))
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        status = int(r.get("status", 503))
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        method = r.get("method")
        return FaultRule(kind=r["kind"], method=method.upper() if method else None,
                         path=re.compile(r["path"]) if r.get("path") else None, status=status,
                         body=r.get("body"), headers=dict(r.get("headers") or {}), count=count,
                         probability=probability, delay_ms=int(r.get("delay_ms", 0)),
                         cut_bytes=int(r.get("bytes", 0)))

    def match(self, method: str, path: str) -> Optional[FaultRule]:
        for rule in self.rules:
            if rule.count is not None and rule.fired >= rule.count:
                continue
            if rule.method and rule.method != method:
                continue
            if rule.path and not rule.path.search(path):
                continue
            if self.random.random() >= rule.probability:
                continue
            rule.fired += 1
            return rule
        return None

    def public(self):
        return {"rules": [r.public() for r in self.rules]}


class CallLog:
    """Every request outside /_sim/, with what was answered, for tests to assert on."""

    MAX = 10_000

    def __init__(self):
        self.calls = collections.deque(maxlen=self.MAX)
        self.seq = 0

    def add(self, method, path, query, body, status, response, uri_bytes=None):
        self.seq += 1
        self.calls.append({"seq": self.seq, "method": method, "path": path, "query": query,
                           "body": body, "status": status, "response": response,
                           "uriBytes": uri_bytes})

    def since(self, n: int):
        calls = [c for c in self.calls if c["seq"] > n]
        return {"calls": calls, "next": calls[-1]["seq"] if calls else max(n, 0)}

    def clear(self):
        self.calls.clear()


# --------------------------------------------------------------------------- outbound messages

OM_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_PARSE_ERROR = ("org.xml.sax.SAXParseException; lineNumber: 1; columnNumber: 1; "
                    "Content is not allowed in prolog.")


@dataclass
class OutboundMessage:
    seq: int
    notifications: list            # [(notification id15, member id15)]
    created: float                 # monotonic
    next_at: float
    attempts: int = 0
    delay_ms: int = 0


class OutboundDispatcher:
    """Salesforce's Outbound Message queue for CampaignMember creates and updates: batches
    what is pending within outboundBatchMs (up to 100 notifications per SOAP message),
    renders each record's latest data at send time, and retries a message (same
    notification ids) with doubling backoff until it is acknowledged or too old."""

    def __init__(self, sim):
        self.sim = sim
        self.cond = threading.Condition(sim.lock)
        self.action_id = to18("04kSm0000000Om1")
        self.queued = []                   # [(nid15, member15, monotonic queued)]
        self.messages = []
        self.log = collections.deque(maxlen=10_000)
        self.seq = 0
        self.generation = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="outbound", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.thread.join(timeout=5)

    def notify(self, member_ids):
        """Queues one notification per change (caller holds the lock)."""
        if not self.sim.config.outboundUrl or not member_ids:
            return
        for member15 in member_ids:
            self.queued.append((self.sim.ids.new("04l", lambda _: False), member15, time.monotonic()))
        self.cond.notify_all()

    def reset(self):
        self.queued.clear()
        self.messages.clear()
        self.log.clear()
        self.generation += 1
        self.cond.notify_all()

    def wake(self):
        self.cond.notify_all()

    def public(self):
        pending = len(self.queued) + sum(len(m.notifications) for m in self.messages)
        return {"deliveries": list(self.log), "pending": pending}

    # ---- the delivery thread

    def _run(self):
        while True:
            with self.cond:
                job = None
                while job is None:
                    if self.stopping:
                        return
                    job, wait = self._next_job(time.monotonic())
                    if job is None:
                        self.cond.wait(wait)
                generation = self.generation
            msg, url, body = job
            result = self._post(url, body)
            with self.cond:
                if generation == self.generation:
                    self._record(msg, body, *result)

    def _next_job(self, now):
        """(message, url, body) due now, or (None, seconds to wait or None)."""
        cfg = self.sim.config
        batch_s = cfg.outboundBatchMs / 1000
        while self.queued and (len(self.queued) >= 100 or now - self.queued[0][2] >= batch_s):
            take, self.queued = self.queued[:100], self.queued[100:]
            self.seq += 1
            self.messages.append(OutboundMessage(self.seq, [(n, m) for n, m, _ in take], now, now))
        waits = [self.queued[0][2] + batch_s - now] if self.queued else []
        for msg in list(self.messages):
            if now - msg.created > cfg.outboundMaxAgeMs / 1000:
                self.messages.remove(msg)
                self.log.append(self._entry(msg, None, False, "dropped: older than outboundMaxAgeMs", "", ""))
                continue
            if cfg.outboundUrl and msg.next_at <= now:
                return (msg, cfg.outboundUrl, self._render(msg)), None
            if cfg.outboundUrl:
                waits.append(msg.next_at - now)
        return None, (max(min(waits), 0.001) if waits else None)

    def _render(self, msg) -> str:
        cfg, store, values = self.sim.config, self.sim.store, self.sim.values
        cm = self.sim.schema["CampaignMember"]
        org15 = cfg.orgId[:15]
        base = self.sim.base_url
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n'
                 '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                 'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
                 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n <soapenv:Body>\n'
                 f'  <notifications xmlns="{OM_NS}">\n'
                 f'   <OrganizationId>{xml_escape(cfg.orgId)}</OrganizationId>\n'
                 f'   <ActionId>{self.action_id}</ActionId>\n'
                 '   <SessionId xsi:nil="true"/>\n'
                 f'   <EnterpriseUrl>{xml_escape(base)}/services/Soap/c/62.0/{org15}</EnterpriseUrl>\n'
                 f'   <PartnerUrl>{xml_escape(base)}/services/Soap/u/62.0/{org15}</PartnerUrl>\n']
        # Salesforce lists the sObject fields alphabetically after Id.
        names = ["Id"] + sorted(n for n in cfg.outboundFields if n != "Id")
        for nid, member15 in msg.notifications:
            parts.append(f'   <Notification>\n    <Id>{to18(nid)}</Id>\n')
            rec = store.get("CampaignMember", member15)
            open_tag = ('<sObject xsi:type="sf:CampaignMember" '
                        'xmlns:sf="urn:sobject.enterprise.soap.sforce.com"')
            if rec is None:            # deleted before delivery: the notification has no data
                parts.append(f'    {open_tag}/>\n   </Notification>\n')
                continue
            parts.append(f'    {open_tag}>\n')
            for name in names:
                f = cm.field(name)
                v = values.get("CampaignMember", rec, f)
                if v is not None:
                    parts.append(f'     <sf:{name}>{xml_escape(values.soap_value(f, v))}</sf:{name}>\n')
            parts.append('    </sObject>\n   </Notification>\n')
        parts.append('  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n')
        return "".join(parts)

    def _post(self, url, body):
        """(status or None, response text, error or None); no redirects are followed."""
        u = urllib.parse.urlsplit(url)
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(u.hostname, u.port, timeout=self.sim.config.outboundTimeoutMs / 1000)
        try:
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            conn.request("POST", path, body.encode("utf-8"),
                         {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
            resp = conn.getresponse()
            text = resp.read(1 << 20).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            return None, "", f"{type(e).__name__}: {e}"
        finally:
            conn.close()
        if resp.status != 200:
            return resp.status, text, f"HTTP {resp.status}"
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            return resp.status, text, SOAP_PARSE_ERROR
        ack = root.find(f".//{{{OM_NS}}}Ack")
        if ack is None or (ack.text or "").strip() not in ("true", "1"):
            return resp.status, text, "SOAP response was a nack"
        return resp.status, text, None

    def _record(self, msg, body, status, text, error):
        msg.attempts += 1
        acked = error is None
        self.log.append(self._entry(msg, status, acked, error, text, body))
        if acked:
            if msg in self.messages:
                self.messages.remove(msg)
            return
        cfg = self.sim.config
        msg.delay_ms = (cfg.outboundRetryBaseMs if msg.attempts == 1
                        else min(msg.delay_ms * 2, cfg.outboundRetryMaxMs))
        msg.next_at = time.monotonic() + msg.delay_ms / 1000

    @staticmethod
    def _entry(msg, status, acked, error, response, request):
        return {"message": msg.seq, "notificationIds": [to18(n) for n, _ in msg.notifications],
                "memberIds": [to18(m) for _, m in msg.notifications], "attempt": msg.attempts,
                "status": status, "acked": acked, "error": error, "at": fmt_dt(now_ms()),
                "responseBody": response[:4096], "requestBody": request}


# --------------------------------------------------------------------------- the simulator

class Simulator:
    """All state and the services acting on it; every access holds `lock`."""

    def __init__(self, config: Config):
        self.lock = threading.RLock()
        self.startup_config = copy.deepcopy(config)
        self.config = config
        self.schema = build_schema()
        self.clock = Clock()
        self.ids = IdFactory()
        self.auth = Auth()
        self.faults = Faults()
        self.calls = CallLog()
        self.base_url = ""
        self.outbound = OutboundDispatcher(self)
        # Every committed CampaignMember save and every query that returned a member, with
        # when and by whom: lets a test tell a change overwritten in the window between a
        # client's read and its write from one overwritten although it had been read.
        self.member_journal = collections.deque(maxlen=200_000)
        self._fresh_state()
        self.bulk = BulkQueryJobs(self)

    def _fresh_state(self):
        self.store = Store(self.schema)
        self.values = Values(self.store)
        self.dml = Dml(self)
        self.queries = QueryEngine(self)
        self.api_used = 0
        self.started_ms = now_ms()
        # The delete log reaches back to here (moved by /_sim/purge_deleted): a log that
        # nothing has purged yet reaches back the 15 days getDeleted serves.
        earliest = self.started_ms - 15 * DAY_MS
        self.earliest_deleted_ms = earliest - earliest % 60_000

    def reset(self):
        self._fresh_state()
        self.auth.expire_all()
        self.faults.rules = []
        self.calls.clear()
        self.member_journal.clear()
        self.outbound.reset()
        self.bulk.reset()

    def user(self, which: str) -> str:
        """A configured user id as stored in LastModifiedById (its first 15 characters as given)."""
        return getattr(self.config, which)[:15]

    def commit(self, txs):
        for tx in txs:
            self.outbound.notify(tx.notify)
            self.member_journal.extend(tx.journal)

    def usage_header(self):
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.config.apiLimit}"}

    def object_def(self, name: str) -> Optional[ObjectDef]:
        return next((o for o in self.schema.values() if o.name.lower() == name.lower()), None)


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: Any
    body: bytes

    def json(self):
        if self.body.strip() == b"":
            raise ApiError(400, "JSON_PARSER_ERROR",
                           "The HTTP entity body is required, but this request has no entity body.")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            where = f" at [line:{e.lineno}, column:{e.colno}]" if isinstance(e, json.JSONDecodeError) else ""
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character ({e}){where}") from None


@dataclass
class Reply:
    status: int
    body: Any = None                  # JSON value, or str/bytes sent as is
    headers: dict = field(default_factory=dict)
    content_type: str = JSON_CT
    drop: bool = False
    cut: Optional[int] = None         # send only this many bytes of the body, then close


# --------------------------------------------------------------------------- REST API

class RestApi:
    """/services/oauth2/token and /services/data/vNN.N/...: auth, usage, faults, routing."""

    DATA_RE = re.compile(r"/services/data/(v\d+\.\d)(?:/(.*))?")

    def __init__(self, sim: Simulator):
        self.sim = sim

    def handle(self, req: Request) -> Reply:
        sim = self.sim
        data = self.DATA_RE.fullmatch(req.path)
        with sim.lock:
            rule = sim.faults.match(req.method, req.path)
        if rule is not None and rule.delay_ms:
            time.sleep(rule.delay_ms / 1000)
        fault_reply = self._fault(rule, data is not None)
        if fault_reply is not None:
            return fault_reply
        if rule is not None and rule.kind == "cut":
            reply = self._serve(req, data)
            reply.cut = rule.cut_bytes
            return reply
        return self._serve(req, data)

    def _serve(self, req: Request, data) -> Reply:
        sim = self.sim
        if req.path == "/services/oauth2/token":
            with sim.lock:
                return self._token(req)
        if data is None:
            return Reply(404, not_found().body())
        if sim.config.latencyMs:
            time.sleep(sim.config.latencyMs / 1000)
        with sim.lock:
            if not sim.auth.valid(req.headers.get("Authorization")):
                return Reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                             dict(sim.usage_header(), **{"WWW-Authenticate": "Token"}))
            sim.api_used += 1
            spent = sim.api_used > sim.config.apiLimit
            if spent and not (data.group(2) == "limits" and sim.config.limitsWhenSpent == "answer"):
                return Reply(403, self._limit_body(), sim.usage_header())
            try:
                reply = DataRoutes(sim, req, data.group(1), data.group(2) or "").dispatch()
            except ApiError as e:
                reply = Reply(e.status, e.body())
            reply.headers.update(sim.usage_header())
            return reply

    @staticmethod
    def _limit_body():
        return [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]

    def _fault(self, rule: Optional[FaultRule], is_data: bool) -> Optional[Reply]:
        if rule is None or rule.kind in ("delay", "cut"):
            return None
        with self.sim.lock:
            usage = self.sim.usage_header() if is_data else {}
            if rule.kind == "expire_tokens":
                self.sim.auth.expire_all()
                return None            # the request itself then meets the expired token
        if rule.kind == "drop":
            return Reply(0, drop=True)
        if rule.kind == "request_limit":
            return Reply(403, self._limit_body(), usage)
        body = rule.body
        if body is None:
            body = ([{"message": "Service Unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
                    if rule.status >= 500 else
                    [{"message": "Simulated fault", "errorCode": "UNKNOWN_EXCEPTION"}])
        content_type = "text/html;charset=UTF-8" if isinstance(body, str) else JSON_CT
        return Reply(rule.status, body, dict(usage, **rule.headers), content_type)

    def _token(self, req: Request) -> Reply:
        sim, cfg = self.sim, self.sim.config
        if req.method != "POST":
            return Reply(400, {"error": "invalid_request", "error_description": "must use HTTP POST"})
        params = {}
        if (req.headers.get("Content-Type") or "").split(";")[0].strip().lower() == \
                "application/x-www-form-urlencoded":
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace"),
                                                                 keep_blank_values=True).items()}
        if params.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        if params.get("client_id") != cfg.clientId:
            return Reply(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
        if not hmac.compare_digest(params.get("client_secret", ""), cfg.clientSecret):
            return Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        host = req.headers.get("Host") or sim.base_url.split("//", 1)[1]
        instance = f"http://{host}"
        identity = f"{instance}/id/{cfg.orgId}/{cfg.integrationUserId}"
        issued = str(now_ms())
        signature = base64.b64encode(hmac.new(cfg.clientSecret.encode(), (identity + issued).encode(),
                                              hashlib.sha256).digest()).decode()
        return Reply(200, {"access_token": sim.auth.issue(cfg.orgId[:15], cfg.tokenTtlS),
                           "signature": signature, "token_format": "opaque",
                           "instance_url": instance, "id": identity, "token_type": "Bearer",
                           "issued_at": issued})


class DataRoutes:
    """One authenticated data request (lock held): routes it and applies it."""

    def __init__(self, sim: Simulator, req: Request, version: str, rest: str):
        self.sim, self.req, self.version = sim, req, version
        self.parts = [p for p in rest.split("/") if p != ""]
        self.trailing_slash = rest.endswith("/")

    def dispatch(self) -> Reply:
        p = self.parts
        if not p:
            return self._allow({"GET"}, lambda: Reply(200, self._resources()))
        head = p[0]
        if head == "limits" and len(p) == 1:
            return self._allow({"GET"}, self._limits)
        if head == "sobjects":
            return self._sobjects(p[1:])
        if head in ("query", "queryAll") and len(p) <= 2:
            return self._allow({"GET"}, lambda: self._query(head, p[1] if len(p) == 2 else None))
        if head == "composite" and len(p) >= 2 and p[1] == "sobjects":
            return self._collections(p[2:])
        if head == "jobs" and len(p) >= 2 and p[1] == "query":
            return BulkQueryRoutes(self).dispatch(p[2:])
        raise not_found()

    def _allow(self, methods, fn) -> Reply:
        if self.req.method not in methods:
            raise ApiError(405, "METHOD_NOT_ALLOWED",
                           f"HTTP Method '{self.req.method}' not allowed. Allowed are "
                           f"{','.join(sorted(methods))}")
        return fn()

    def _resources(self):
        base = f"/services/data/{self.version}"
        return {name: f"{base}/{name}" for name in ("sobjects", "query", "queryAll", "composite", "limits")}

    def _limits(self):
        limit = self.sim.config.apiLimit
        return Reply(200, {"DailyApiRequests": {"Max": limit, "Remaining": max(limit - self.sim.api_used, 0)},
                           **self.sim.bulk.limits()})

    # ---- sobjects

    def _sobjects(self, p) -> Reply:
        if not p:
            return self._allow({"GET"}, lambda: Reply(200, {
                "encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT,
                "sobjects": [self._describe_object(o) for o in self.sim.schema.values()]}))
        objdef = self.sim.object_def(p[0])
        if objdef is None:
            raise not_found()
        if len(p) == 1:
            return self._allow({"GET", "POST"}, lambda: self._create(objdef) if self.req.method == "POST"
                               else Reply(200, {"objectDescribe": self._describe_object(objdef),
                                                "recentItems": []}))
        if len(p) == 2 and p[1] == "describe":
            return self._allow({"GET"}, lambda: Reply(200, self._describe(objdef)))
        if len(p) == 2 and p[1] == "deleted":
            return self._allow({"GET"}, lambda: self._deleted(objdef))
        if len(p) == 2:
            return self._allow({"GET", "PATCH", "DELETE"}, lambda: self._row(objdef, p[1]))
        raise not_found()

    def _create(self, objdef) -> Reply:
        self._check_content_type()
        body = self.req.json()
        tx = Transaction(self.sim.store)
        try:
            new_id = self.sim.dml.create(tx, objdef, body, self.sim.user("integrationUserId"))
        except DmlError as e:
            tx.rollback()
            raise e.api_error(self.version) from None
        except ApiError:
            tx.rollback()
            raise
        self.sim.commit([tx])
        return Reply(201, {"id": to18(new_id), "success": True, "errors": []})

    def _row(self, objdef, raw_id) -> Reply:
        id15 = canonical_id(raw_id)
        rec = self.sim.store.get(objdef.name, id15) if id15 and id15.startswith(objdef.prefix) else None
        if rec is None:
            if id15 in self.sim.store.recycle and self.sim.store.recycle[id15][0] == objdef.name:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            raise not_found()
        method = self.req.method
        if method == "GET":
            if not self.sim.config.allowed(objdef.name, "queryable"):
                raise not_found()
            return Reply(200, self.sim.values.api_record(objdef, rec, self.version, self._fields_param(objdef)))
        tx = Transaction(self.sim.store)
        try:
            if method == "PATCH":
                self._check_content_type()
                self.sim.dml.update(tx, objdef, rec, self.req.json(), self.sim.user("integrationUserId"))
            else:
                self.sim.dml.delete(tx, objdef, rec, self.sim.user("integrationUserId"))
        except DmlError as e:
            tx.rollback()
            raise e.api_error() from None
        except ApiError:
            tx.rollback()
            raise
        self.sim.commit([tx])
        return Reply(204)

    def _fields_param(self, objdef):
        raw = self.req.query.get("fields")
        return self._field_defs(objdef, raw.split(",")) if raw else None

    @staticmethod
    def _field_defs(objdef, names):
        out = []
        for name in names:
            f = objdef.field(name.strip())
            if f is None:
                raise ApiError(400, "INVALID_FIELD",
                               f"No such column '{name.strip()}' on sobject of type {objdef.name}")
            out.append(f)
        return out

    def _check_content_type(self):
        ctype = (self.req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype and ctype != "application/json":
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                           f"MediaType of '{ctype}' is not supported by this resource")

    def _describe_object(self, objdef):
        cfg = self.sim.config
        flags = {f: cfg.allowed(objdef.name, f) for f in PERMISSION_FLAGS}
        return dict(name=objdef.name, label=objdef.label, keyPrefix=objdef.prefix, custom=False,
                    retrieveable=flags["queryable"], replicateable=True,
                    urls={"sobject": f"/services/data/{self.version}/sobjects/{objdef.name}",
                          "describe": f"/services/data/{self.version}/sobjects/{objdef.name}/describe"},
                    **flags)

    def _describe(self, objdef):
        cfg = self.sim.config
        out = self._describe_object(objdef)
        out["fields"] = [{
            "name": f.name, "label": f.label, "type": f.type, "length": f.length,
            "createable": f.createable and cfg.allowed(objdef.name, "createable"),
            "updateable": f.updateable and cfg.allowed(objdef.name, "updateable"),
            "nillable": not f.required and f.type != "boolean" and f.name != "Id",
            "filterable": True, "sortable": True,
            "referenceTo": [f.reference_to] if f.reference_to else (
                ["Contact", "Lead"] if f.name == "LeadOrContactId" else []),
            "relationshipName": f.relationship,
            **self._picklist(objdef, f),
        } for f in objdef.fields]
        return out

    def _picklist(self, objdef, f):
        """describe's restrictedPicklist and picklistValues of Campaign.Type (DescribeFieldResult)."""
        if (objdef.name, f.name) != ("Campaign", "Type"):
            return {}
        cfg = self.sim.config
        return {"restrictedPicklist": cfg.campaignTypeRestricted,
                "picklistValues": [{"value": v, "label": v, "active": True, "defaultValue": False,
                                    "validFor": None} for v in cfg.campaignTypeValues]}

    def _deleted(self, objdef) -> Reply:
        """sObject Get Deleted, with the rules of the SOAP API guide's getDeleted(): the window
        in whole minutes (seconds are ignored), start more than a minute before end, no more
        than 15 days back, nothing before the delete log's earliestDateAvailable, at most
        600,000 ids; only deletions of minutes that have ended are reported
        (latestDateCovered)."""
        q = self.req.query

        def bad(msg, code="INVALID_REPLICATION_DATE"):
            return ApiError(400, code, msg)

        start, end = parse_dt(q.get("start", "")), parse_dt(q.get("end", ""))
        if start is None or end is None:
            raise bad("start and end must be ISO-8601 date-times with a zone, e.g. "
                      "2026-11-29T10:00:00+00:00 (URL-encode the '+')")
        now = now_ms()
        start, end = start - start % 60_000, end - end % 60_000
        if end - start < 60_000:
            raise bad("end must be at least one minute after start")
        if start < now - 15 * DAY_MS:
            raise bad("start must be within the last 15 days")
        earliest = self.sim.earliest_deleted_ms
        if start < earliest and self.sim.config.deletedStartBeforeEarliest == "error":
            raise bad(f"the delete log starts at {fmt_dt(earliest)}: start is before it")
        covered = min(end, now - now % 60_000)
        records = sorted(((id15, rec["deletedDate"]) for id15, (obj, rec) in self.sim.store.recycle.items()
                          if obj == objdef.name and start <= rec["deletedDate"] < covered),
                         key=lambda x: x[1])
        if len(records) > self.sim.config.deletedIdLimit:
            raise bad("more ids than getDeleted returns: choose start and end closer together",
                      "EXCEEDED_ID_LIMIT")
        return Reply(200, {
            "deletedRecords": [{"id": to18(i), "deletedDate": fmt_dt(d)} for i, d in records],
            "earliestDateAvailable": fmt_dt(earliest),
            "latestDateCovered": fmt_dt(covered)})

    # ---- query

    def _batch_size(self):
        size = self.sim.config.queryBatchSize
        m = re.search(r"batchSize=(\d+)", self.req.headers.get("Sforce-Query-Options") or "")
        if m:
            size = min(max(int(m.group(1)), 200), 2000)
        return size

    def _query(self, resource, locator) -> Reply:
        if locator is not None:
            return Reply(200, self.sim.queries.next_page(locator, self.version, resource, self._batch_size()))
        text = self.req.query.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            return Reply(200, self.sim.queries.run(text, resource == "queryAll", self.version,
                                                   resource, self._batch_size()))
        except SoqlError as e:
            raise ApiError(400, e.code, e.message) from None

    # ---- sObject Collections

    def _collections(self, p) -> Reply:
        if len(p) == 1:
            objdef = self.sim.object_def(p[0])
            if objdef is None:
                raise not_found()
            # "Get Records With a Request Body Using sObject Collections": POST {ids, fields}
            return self._allow({"GET", "POST"}, lambda: self._retrieve(objdef))
        if p:
            raise not_found()
        handlers = {"POST": self._collection_save, "PATCH": self._collection_save,
                    "DELETE": self._collection_delete}
        return self._allow(set(handlers), lambda: handlers[self.req.method]())

    def _retrieve(self, objdef) -> Reply:
        """Records by id: GET ?ids=&fields= (comma-separated), or POST {"ids": [], "fields": []}
        for lists too long for a URL; an unknown id gives null in its place."""
        if self.req.method == "POST":
            self._check_content_type()
            body = self.req.json()
            ids, names = (body.get("ids"), body.get("fields")) if isinstance(body, dict) else (None, None)
            if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in (ids, names)):
                # guess: the code for a body without ids and fields lists
                raise ApiError(400, "JSON_PARSER_ERROR", "Request body must be an object with ids and fields lists")
        else:
            ids = [i for i in (self.req.query.get("ids") or "").split(",") if i]
            names = [n for n in (self.req.query.get("fields") or "").split(",") if n]
        if not ids or not names:
            raise ApiError(400, "MISSING_ARGUMENT", "ids and fields are required")
        if len(ids) > RETRIEVE_LIMIT:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           f"record limit reached. cannot submit more than {RETRIEVE_LIMIT} records into this call")
        fields = self._field_defs(objdef, names)
        out = []
        for raw in ids:
            rec = self.sim.store.get(objdef.name, canonical_id(raw))
            out.append(self.sim.values.api_record(objdef, rec, self.version, fields) if rec else None)
        return Reply(200, out)

    @staticmethod
    def _too_many():
        return ApiError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than "
                        f"{COLLECTION_LIMIT} records into this call")

    def _collection_save(self) -> Reply:
        self._check_content_type()
        body = self.req.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            # guess: the code for a body without a records list
            raise ApiError(400, "JSON_PARSER_ERROR", "Request body must be an object with a records list")
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise ApiError(400, "JSON_PARSER_ERROR", "allOrNone must be a boolean")
        records = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise self._too_many()
        creating = self.req.method == "POST"
        return self._apply_all(records, all_or_none,
                               self._create_one if creating else self._update_one)

    def _collection_delete(self) -> Reply:
        ids = [i for i in (self.req.query.get("ids") or "").split(",") if i]
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > COLLECTION_LIMIT:
            raise self._too_many()
        all_or_none = (self.req.query.get("allOrNone") or "false").lower() == "true"
        return self._apply_all(ids, all_or_none, self._delete_one)

    def _apply_all(self, items, all_or_none, apply_one) -> Reply:
        """Applies each item in its own transaction; with allOrNone, any failure rolls all back
        and the otherwise successful items report ALL_OR_NONE_OPERATION_ROLLED_BACK."""
        results, done = [], []
        for item in items:
            tx = Transaction(self.sim.store)
            try:
                record_id = apply_one(tx, item)
            except DmlError as e:
                tx.rollback()
                result = {"success": False, "errors": [e.save_error(self.version)]}
                known = self._known_id(item)
                if known:
                    result = {"id": known, **result}
                results.append(result)
                continue
            except ApiError:
                tx.rollback()
                for earlier in reversed(done):
                    earlier.rollback()
                raise
            done.append(tx)
            results.append({"id": to18(record_id), "success": True, "errors": []})
        if all_or_none and any(not r["success"] for r in results):
            for tx in reversed(done):
                tx.rollback()
            rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                      "message": "Record rolled back because not all records were valid and the "
                                 "request was using AllOrNone header", "fields": []}
            for i, r in enumerate(results):
                if r["success"]:
                    known = None if self.req.method == "POST" else r["id"]
                    results[i] = ({"id": known} if known else {}) | {"success": False, "errors": [rolled]}
            done = []
        self.sim.commit(done)
        return Reply(200, results)

    def _known_id(self, item):
        """The id a failed update or delete names (18-character when it is an id)."""
        raw = item
        if isinstance(item, dict):
            raw = next((v for k, v in item.items() if k.lower() == "id"), None) \
                if self.req.method == "PATCH" else None
        if not isinstance(raw, str):
            return None
        return to18(canonical_id(raw)) or raw

    def _typed(self, item):
        if not isinstance(item, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
        attrs = item.get("attributes")
        type_name = attrs.get("type") if isinstance(attrs, dict) else None
        if not type_name:
            # guess: the wording for a record without attributes.type
            raise DmlError("INVALID_TYPE", "No type specified in attributes for this record")
        objdef = self.sim.object_def(type_name)
        if objdef is None:
            raise DmlError("INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        return objdef

    def _create_one(self, tx, item):
        objdef = self._typed(item)
        return self.sim.dml.create(tx, objdef, item, self.sim.user("integrationUserId"))

    def _update_one(self, tx, item):
        objdef = self._typed(item)
        raw_id = next((v for k, v in item.items() if k.lower() == "id"), None)
        if raw_id is None:
            raise DmlError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        rec = self.sim.dml.resolve(objdef, raw_id)
        values = {k: v for k, v in item.items() if k.lower() != "id"}
        self.sim.dml.update(tx, objdef, rec, values, self.sim.user("integrationUserId"))
        return rec["Id"]

    def _delete_one(self, tx, raw_id):
        id15 = canonical_id(raw_id)
        obj = self.sim.store.locate(id15)[0] if id15 else None
        if obj is None:
            if id15 is None:
                raise DmlError("MALFORMED_ID", f"malformed id {raw_id}")
            raise DmlError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        objdef = self.sim.schema[obj]
        rec = self.sim.dml.resolve(objdef, raw_id)
        self.sim.dml.delete(tx, objdef, rec, self.sim.user("integrationUserId"))
        return rec["Id"]


# --------------------------------------------------------------------------- control API

class ControlApi:
    """/_sim/: seed and inspect state, act as a human user, configure, inject faults."""

    SEED_ORDER = (("accounts", "Account"), ("campaigns", "Campaign"), ("leads", "Lead"),
                  ("contacts", "Contact"), ("members", "CampaignMember"))

    def __init__(self, sim: Simulator):
        self.sim = sim

    def handle(self, req: Request) -> Reply:
        try:
            body = json.loads(req.body.decode("utf-8")) if req.body.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return self._error(ControlError(400, "bad_json", f"request body is not JSON: {e}"))
        path = req.path.rstrip("/")
        m = re.fullmatch(r"/_sim/members/([A-Za-z0-9]+)", path)
        route = ("DELETE", "/_sim/members/{id}") if m and req.method == "DELETE" else (req.method, path)
        routes = {
            ("POST", "/_sim/reset"): lambda: self._reset(body),
            ("POST", "/_sim/seed"): lambda: generate_seed(self.sim, body)
            if isinstance(body, dict) and "generate" in body else self._seed(body),
            ("GET", "/_sim/bulk"): lambda: bulk_control(self.sim, "GET", "/_sim/bulk", body),
            ("DELETE", "/_sim/bulk"): lambda: bulk_control(self.sim, "DELETE", "/_sim/bulk", body),
            ("POST", "/_sim/bulk/age"): lambda: bulk_control(self.sim, "POST", "/_sim/bulk/age", body),
            ("GET", "/_sim/state"): self._state,
            ("GET", "/_sim/members"): lambda: self._members(req.query.get("campaignId")),
            ("POST", "/_sim/members"): lambda: self._human_member(body),
            ("DELETE", "/_sim/members/{id}"): lambda: self._delete_member(m.group(1),
                                                                          req.query.get("deletedDate")),
            ("POST", "/_sim/statuses"): lambda: self._human_status(body),
            ("GET", "/_sim/calls"): lambda: Reply(200, self.sim.calls.since(int(req.query.get("since") or 0))),
            ("DELETE", "/_sim/calls"): self._clear_calls,
            ("GET", "/_sim/faults"): lambda: Reply(200, self.sim.faults.public()),
            ("POST", "/_sim/faults"): lambda: self._set_faults(body),
            ("DELETE", "/_sim/faults"): self._clear_faults,
            ("GET", "/_sim/config"): lambda: Reply(200, self.sim.config.public()),
            ("GET", "/_sim/stats"): lambda: Reply(200, {"queryRowsExamined": self.sim.queries.rows_examined,
                                                        "queryIndexHits": self.sim.queries.index_hits}),
            ("POST", "/_sim/config"): lambda: self._configure(body),
            ("GET", "/_sim/outbound"): lambda: Reply(200, self.sim.outbound.public()),
            ("GET", "/_sim/journal"): lambda: self._journal(req.query.get("id")),
            ("POST", "/_sim/api_usage"): lambda: self._api_usage(body),
            ("POST", "/_sim/purge_deleted"): lambda: self._purge_deleted(body),
            ("POST", "/_sim/age_deleted"): lambda: self._age_deleted(body),
        }
        try:
            with self.sim.lock:
                if route not in routes:
                    raise ControlError(404, "not_found", f"no control route {req.method} {req.path}")
                return routes[route]()
        except ControlError as e:
            return self._error(e)
        except ValueError as e:
            return self._error(ControlError(400, "bad_request", str(e)))

    @staticmethod
    def _error(e: ControlError) -> Reply:
        return Reply(e.status, {"error": e.error, "message": e.message})

    def _object(self, body, what):
        if not isinstance(body, dict):
            raise ControlError(400, "bad_request", f"{what} must be a JSON object")
        return body

    def _reset(self, body):
        """Empties all state; config stays unless given ("defaults": true restores the
        command-line config first)."""
        body = dict(self._object(body, "reset body"))
        base = self.sim.startup_config if body.pop("defaults", False) else self.sim.config
        self.sim.config = self._changed(base, body)
        self.sim.reset()
        return Reply(200, {"config": self.sim.config.public()})

    def _api_usage(self, body):
        """The calls of the org's allowance used so far (by other integrations too)."""
        used = self._object(body, "api_usage").get("used")
        if not isinstance(used, int) or isinstance(used, bool) or used < 0:
            raise ControlError(400, "bad_request", "api_usage: used must be an integer >= 0")
        self.sim.api_used = used
        return Reply(200, {"apiUsage": used, "apiLimit": self.sim.config.apiLimit})

    def _journal(self, member_id):
        """The member journal of one CampaignMember (its saves and the queries that read it),
        oldest first."""
        id15 = canonical_id(member_id)
        if not id15:
            raise ControlError(400, "bad_request", "journal: give ?id=<CampaignMember id>")
        return Reply(200, {"id": to18(id15),
                           "entries": [dict(e, id=to18(e["id"])) for e in self.sim.member_journal
                                       if canonical_id(e["id"]) == id15]})

    def _configure(self, body):
        self.sim.config = self._changed(self.sim.config, self._object(body, "config"))
        self.sim.outbound.wake()
        return Reply(200, self.sim.config.public())

    def _changed(self, base: Config, changes: dict) -> Config:
        """A validated copy of `base` with `changes`: a rejected change leaves config as it was."""
        config = copy.deepcopy(base)
        config.apply(changes, self.sim.schema)
        return config

    def _clear_calls(self):
        self.sim.calls.clear()
        return Reply(204)

    def _clear_faults(self):
        self.sim.faults.replace({"rules": []})
        return Reply(204)

    def _set_faults(self, body):
        self.sim.faults.replace(body)
        return Reply(200, self.sim.faults.public())

    def _plain(self, obj, rec):
        out = self.sim.values.plain(self.sim.schema[obj], rec)
        if "deletedDate" in rec:
            out["deletedDate"] = fmt_dt(rec["deletedDate"])
        return out

    def _state(self):
        store = self.sim.store
        live = {key: [self._plain(obj, r) for r in store.live[obj].values()]
                for key, obj in (("accounts", "Account"), ("campaigns", "Campaign"),
                                 ("campaignMemberStatuses", "CampaignMemberStatus"),
                                 ("members", "CampaignMember"), ("leads", "Lead"), ("contacts", "Contact"))}
        live["deleted"] = [dict(self._plain(obj, r), type=obj) for obj, r in store.recycle.values()]
        live["apiUsage"] = self.sim.api_used
        live["apiLimit"] = self.sim.config.apiLimit
        return Reply(200, live)

    def _members(self, campaign):
        campaign15 = canonical_id(campaign) if campaign else None
        if campaign and campaign15 is None:
            raise ControlError(400, "bad_id", f"campaignId {campaign!r} is not a Salesforce id")
        return Reply(200, {"members": [self._plain("CampaignMember", r)
                                       for r in self.sim.store.live["CampaignMember"].values()
                                       if campaign15 is None or r["CampaignId"] == campaign15]})

    # ---- seed: pre-existing data, all or nothing, no Outbound Messages

    def _seed(self, body):
        body = self._object(body, "seed body")
        unknown = set(body) - {k for k, _ in self.SEED_ORDER}
        if unknown:
            raise ControlError(400, "bad_seed", f"unknown seed lists: {', '.join(sorted(unknown))}")
        txs, created = [], {k: [] for k, _ in self.SEED_ORDER}
        try:
            for key, obj in self.SEED_ORDER:
                items = body.get(key, [])
                if not isinstance(items, list):
                    raise ControlError(400, "bad_seed", f"{key} must be a list")
                for i, item in enumerate(items):
                    tx = Transaction(self.sim.store)
                    txs.append(tx)
                    created[key].append(self._seed_one(tx, key, obj, i, item, created))
        except ControlError:
            for tx in reversed(txs):
                tx.rollback()
            raise
        return Reply(200, {key: [self._seed_view(obj, r) for r in created[key]]
                           for key, obj in self.SEED_ORDER})

    def _seed_view(self, obj, rec):
        out = self._plain(obj, rec)
        if obj == "Campaign":
            out["statuses"] = [self._plain("CampaignMemberStatus", s) for s in self.sim.store.statuses(rec["Id"])]
        return out

    def _seed_one(self, tx, key, obj, index, item, created):
        where = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise ControlError(400, "bad_seed", f"{where} must be an object")
        item = {k: self._placeholder(v, created, where) for k, v in item.items()}
        objdef = self.sim.schema[obj]
        explicit = self._explicit_id(item.pop("Id", None), objdef, where)
        stamps = {}
        for name in ("CreatedDate", "LastModifiedDate"):
            if name in item:
                stamps[name] = parse_dt(item.pop(name))
                if stamps[name] is None:
                    raise ControlError(400, "bad_seed", f"{where}.{name} must be an ISO-8601 date-time")
        statuses = item.pop("statuses", None) if obj == "Campaign" else None
        user = self.sim.user("humanUserId")
        if statuses is not None:
            statuses = self._seed_statuses(statuses, where)
        try:
            new_id = self.sim.dml.create(tx, objdef, item, user, check_access=False,
                                         explicit_id=explicit, stamps=stamps, statuses=statuses)
        except (DmlError, ApiError) as e:
            raise ControlError(400, e.code, f"{where}: {e.message}") from None
        tx.notify.clear()
        return self.sim.store.get(obj, new_id)

    @staticmethod
    def _seed_statuses(statuses, where):
        if not isinstance(statuses, list) or not statuses or not all(isinstance(s, dict) for s in statuses):
            raise ControlError(400, "bad_seed", f"{where}.statuses must be a non-empty list of objects")
        statuses = [dict(s) for s in statuses]
        defaults = [s for s in statuses if s.get("IsDefault")]
        if len(defaults) > 1:
            raise ControlError(400, "bad_seed", f"{where}.statuses: exactly one status may be IsDefault")
        if not defaults:
            statuses[0]["IsDefault"] = True
        if not any(s.get("HasResponded") for s in statuses):
            raise ControlError(400, "bad_seed", f"{where}.statuses: Salesforce requires at least one "
                               "status with HasResponded true")
        return statuses

    def _explicit_id(self, raw, objdef, where):
        if raw is None:
            return None
        id15 = canonical_id(raw)
        if id15 is None or (len(raw) == 18 and raw[15:] != id_suffix(raw[:15])):
            raise ControlError(400, "bad_seed", f"{where}.Id {raw!r} is not a valid 15/18-character id "
                               "(an 18-character id needs its checksum suffix)")
        if not id15.startswith(objdef.prefix):
            raise ControlError(400, "bad_seed", f"{where}.Id must start with {objdef.prefix} for {objdef.name}")
        if self.sim.store.taken(id15):
            raise ControlError(400, "bad_seed", f"{where}.Id {raw} is already used")
        return id15

    @staticmethod
    def _placeholder(value, created, where):
        """"@campaigns.0" stands for the Id of the first campaign of this seed."""
        m = re.fullmatch(r"@(accounts|campaigns|leads|contacts)\.(\d+)", value) if isinstance(value, str) else None
        if not m:
            return value
        items = created[m.group(1)]
        if int(m.group(2)) >= len(items):
            raise ControlError(400, "bad_seed", f"{where}: {value} names no earlier seeded record")
        return to18(items[int(m.group(2))]["Id"])

    # ---- a human in the Salesforce UI

    def _human_member(self, body):
        body = self._object(body, "member")
        sim, store = self.sim, self.sim.store
        cm = sim.schema["CampaignMember"]
        user = sim.user("humanUserId")
        campaign15 = canonical_id(body.get("CampaignId"))
        person15 = canonical_id(body.get("ContactId") or body.get("LeadId"))
        existing = store.member_by_person.get((campaign15, person15))
        tx = Transaction(store)
        try:
            if existing:
                rec = store.get("CampaignMember", existing)
                if "Status" in body:
                    sim.dml.update(tx, cm, rec, {"Status": body["Status"]}, user, check_access=False)
                member15 = existing
            else:
                member15 = sim.dml.create(tx, cm, body, user, check_access=False)
        except (DmlError, ApiError) as e:
            tx.rollback()
            raise ControlError(400, e.code, e.message) from None
        sim.commit([tx])
        return Reply(200 if existing else 201, {"created": not existing,
                                                "member": self._plain("CampaignMember", store.get("CampaignMember", member15))})

    def _human_status(self, body):
        body = self._object(body, "status")
        tx = Transaction(self.sim.store)
        try:
            new_id = self.sim.dml.create(tx, self.sim.schema["CampaignMemberStatus"], body,
                                         self.sim.user("humanUserId"), check_access=False)
        except (DmlError, ApiError) as e:
            tx.rollback()
            raise ControlError(400, e.code, e.message) from None
        return Reply(201, self._plain("CampaignMemberStatus", self.sim.store.get("CampaignMemberStatus", new_id)))

    def _delete_member(self, raw_id, deleted_date=None):
        """A human deletes a campaign member; ?deletedDate= backdates the delete log entry (so a
        test need not wait for the minute to end before getDeleted reports it)."""
        rec = self.sim.store.get("CampaignMember", canonical_id(raw_id))
        if rec is None:
            raise ControlError(404, "not_found", f"no live CampaignMember {raw_id}")
        at = parse_dt(deleted_date) if deleted_date else None
        if deleted_date and at is None:
            raise ControlError(400, "bad_request", "deletedDate must be an ISO-8601 date-time")
        tx = Transaction(self.sim.store)
        self.sim.dml.delete(tx, self.sim.schema["CampaignMember"], rec, self.sim.user("humanUserId"),
                            check_access=False)
        if at is not None:
            self.sim.store.recycle[canonical_id(raw_id)][1]["deletedDate"] = at
        return Reply(204)

    def _age_deleted(self, body):
        """Moves every delete log entry `seconds` into the past, as if that much time had gone
        by since (getDeleted reports only deletions of minutes that have ended)."""
        seconds = self._object(body, "age_deleted").get("seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
            raise ControlError(400, "bad_request", "age_deleted: seconds must be an integer >= 0")
        for _, rec in self.sim.store.recycle.values():
            rec["deletedDate"] -= seconds * 1000
        return Reply(200, {"aged": len(self.sim.store.recycle)})

    def _purge_deleted(self, body):
        """Salesforce's background purge of a large delete log: entries before `before` (ISO
        date-time) are gone and earliestDateAvailable moves there."""
        before = parse_dt(self._object(body, "purge_deleted").get("before", ""))
        if before is None:
            raise ControlError(400, "bad_request", "purge_deleted: before must be an ISO-8601 date-time")
        recycle = self.sim.store.recycle
        for id15 in [i for i, (obj, rec) in recycle.items() if rec["deletedDate"] < before]:
            del recycle[id15]
        self.sim.earliest_deleted_ms = max(self.sim.earliest_deleted_ms, before)
        return Reply(200, {"earliestDateAvailable": fmt_dt(self.sim.earliest_deleted_ms)})


# --------------------------------------------------------------------------- Bulk API 2.0 query
# Query jobs as the Bulk API 2.0 and Bulk API Developer Guide describes them
# (developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/):
#   query_create_job.htm, query_get_one_job.htm, query_get_job_results.htm, query_abort_job.htm,
#   query_delete_job.htm, query_get_all_jobs.htm, bulk_api_2_0_errors.htm; limits from
#   "Bulk API and Bulk API 2.0 Limits and Allocations" (salesforce_app_limits_cheatsheet) and
#   bulk_api_2_limits.htm. What no page pins down is marked "guess" where it is implemented.

BULK_MIN_VERSION = 47.0                   # "This resource is available in API version 47.0 and later"
BULK_DELIMITERS = {"BACKQUOTE": "`", "CARET": "^", "COMMA": ",", "PIPE": "|", "SEMICOLON": ";",
                   "TAB": "\t"}
BULK_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
BULK_TERMINAL = ("JobComplete", "Aborted", "Failed")
BULK_LIST_PAGE = 1000                     # Get All Query Jobs: "up to 1,000 result rows per request"
BULK_SOQL_MAX = 100_000                   # SOQL statements: at most 100,000 characters (SOQL limits)
BULK_INVALID_QUERY_MODES = ("reject", "fail")
GENERATE_MAX = 1_000_000                  # members one /_sim/seed generate call may create

# Settings (Config fields bulk*): their checks, run by Config.apply.
BULK_CHECKS = {
    "bulkQueuedMs": lambda v: type(v) is int and v >= 0,
    "bulkProcessingMs": lambda v: type(v) is int and v >= 0,
    "bulkResultsMaxRecords": lambda v: type(v) is int and v >= 1,
    "bulkInvalidQuery": lambda v: v in BULK_INVALID_QUERY_MODES,
    "bulkFailMessage": lambda v: isinstance(v, str) and len(v) <= 1000,
    "bulkDailyQueryJobs": lambda v: type(v) is int and v >= 1,
    "bulkDailyResultsMB": lambda v: type(v) is int and v >= 1,
    "bulkResultsDays": lambda v: type(v) is int and v >= 1,
}


def bulk_setting(key, value):
    """A validated bulk* setting, or ControlError."""
    if not BULK_CHECKS[key](value):
        raise ControlError(400, "bad_setting", f"invalid value for {key}: {value!r}")
    return value


class _NoUndo:
    """A Transaction stand-in for generated seed records: nothing to roll back."""

    def touch(self, id15):
        pass


def bulk_locator(offset: int) -> str:
    """A result-set locator: "a pseudo-random string (MTAwMDA, for example)" from API 49.0 on,
    which is base64 of "10000": the offset, base64-encoded without padding."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def bulk_offset(locator: str) -> Optional[int]:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class QueryJob:
    """One Bulk API 2.0 query job and, once complete, its results: the CSV rows as one byte
    string with the offset of every row, so a page is one slice."""

    def __init__(self, id15, operation, text, version, delimiter, line_ending, user, now):
        self.id15, self.operation, self.text, self.version = id15, operation, text, version
        self.delimiter, self.line_ending, self.user = delimiter, line_ending, user
        self.object = None
        self.created = self.modstamp = now
        self.state = "UploadComplete"
        self.started = None
        self.records = 0
        self.processing_ms = 0
        self.error = None
        self.header = b""
        self.rows = b""
        self.offsets = array.array("Q", [0])
        self.pending = None            # (header, rows, offsets) written while InProgress

    def base(self):
        """The job info of the create and abort answers (query_create_job.htm, query_abort_job.htm)."""
        return {"id": to18(self.id15), "operation": self.operation, "object": self.object,
                "createdById": to18(self.user), "createdDate": fmt_dt(self.created),
                "systemModstamp": fmt_dt(self.modstamp), "state": self.state,
                "concurrencyMode": "Parallel", "contentType": "CSV",
                "apiVersion": float(self.version[1:])}

    def created_info(self):
        return dict(self.base(), lineEnding=self.line_ending, columnDelimiter=self.delimiter)

    def listed_info(self):
        return dict(self.created_info(), jobType="V2Query")

    def info(self):
        """Get Information About a Query Job (query_get_one_job.htm)."""
        out = dict(self.listed_info(), numberRecordsProcessed=self.records, retries=0,
                   totalProcessingTime=self.processing_ms, isPkChunkingSupported=True)
        if self.state == "Failed":
            out["errorMessage"] = self.error
        return out

    def size(self):
        return len(self.header) + len(self.rows)


class BulkQueryJobs:
    """The org's query jobs, and a scheduler thread that moves them UploadComplete ->
    InProgress -> JobComplete (or Failed) on their own: bulkQueuedMs after creation the job
    starts and reads the records, bulkProcessingMs after that it completes."""

    TICK_S = 0.02

    def __init__(self, sim):
        self.sim = sim
        self.jobs = collections.OrderedDict()      # id15 -> QueryJob, oldest first
        self.created_at = collections.deque()      # creation times (ms) for the 24-hour count
        self.generated = collections.deque()       # (ms, result bytes) for the 24-hour storage
        self.wake = threading.Condition(sim.lock)
        threading.Thread(target=self._run, name="bulk-query", daemon=True).start()

    def reset(self):
        with self.sim.lock:
            self.jobs.clear()
            self.created_at.clear()
            self.generated.clear()

    # ---- the 24-hour allocations (bulk_api_2_limits.htm: DailyBulkV2QueryJobs 10,000 jobs,
    # DailyBulkV2QueryFileStorageMB 1 TB, both in /limits)

    def _window(self):
        since = now_ms() - DAY_MS
        while self.created_at and self.created_at[0] < since:
            self.created_at.popleft()
        while self.generated and self.generated[0][0] < since:
            self.generated.popleft()

    def limits(self):
        self._window()
        cfg = self.sim.config
        used_mb = -(-sum(n for _, n in self.generated) // (1024 * 1024))
        return {"DailyBulkV2QueryJobs": {"Max": cfg.bulkDailyQueryJobs,
                                         "Remaining": max(cfg.bulkDailyQueryJobs - len(self.created_at), 0)},
                "DailyBulkV2QueryFileStorageMB": {"Max": cfg.bulkDailyResultsMB,
                                                  "Remaining": max(cfg.bulkDailyResultsMB - used_mb, 0)}}

    def _check_allocations(self):
        left = self.limits()
        if not left["DailyBulkV2QueryJobs"]["Remaining"] or not left["DailyBulkV2QueryFileStorageMB"]["Remaining"]:
            # bulk_api_2_0_errors.htm: ExceededQuota, "The job or batch you tried to create exceeds
            # the allowed number for the past 24-hour period" (guess: REST spelling and status 400)
            raise ApiError(400, "EXCEEDED_QUOTA", "The job you tried to create exceeds the allowed "
                           "number of query jobs or result storage for the past 24-hour period")

    # ---- jobs

    def create(self, body, version) -> QueryJob:
        """Create a Query Job: checks the body and (bulkInvalidQuery "reject") the SOQL."""
        if not isinstance(body, dict):
            raise ApiError(400, "API_ERROR", "Request body must be a JSON object")   # guess: code
        operation, text = body.get("operation"), body.get("query")
        for key, value, allowed in (("operation", operation, ("query", "queryAll")),
                                    ("contentType", body.get("contentType", "CSV"), ("CSV",)),
                                    ("columnDelimiter", body.get("columnDelimiter", "COMMA"), BULK_DELIMITERS),
                                    ("lineEnding", body.get("lineEnding", "LF"), BULK_LINE_ENDINGS)):
            if value not in allowed:
                # guess: the code and wording for a missing or unknown enum value
                raise ApiError(400, "API_ERROR", f"{key}: expected one of {', '.join(allowed)}, got "
                               f"{json.dumps(value)}")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "API_ERROR", "query: a SOQL query is required")        # guess: code
        if len(text) > BULK_SOQL_MAX:
            raise ApiError(400, "MALFORMED_QUERY", f"SOQL statements cannot exceed {BULK_SOQL_MAX:,} "
                           "characters")
        problem = self._check_query(text)
        if problem and self.sim.config.bulkInvalidQuery == "reject":
            # guess (config bulkInvalidQuery): the SOQL errors of the REST query resource, at creation
            raise ApiError(400, problem.code, problem.message)
        self._check_allocations()
        sim = self.sim
        job = QueryJob(sim.ids.new("750", sim.store.taken), operation, text, version,
                       body.get("columnDelimiter", "COMMA"), body.get("lineEnding", "LF"),
                       sim.user("integrationUserId"), now_ms())
        m = re.search(r"\bFROM\s+(\w+)", text, re.I)
        objdef = sim.object_def(m.group(1)) if m else None
        job.object = objdef.name if objdef else (m.group(1) if m else None)
        self.jobs[job.id15] = job
        self.created_at.append(job.created)
        self.wake.notify_all()
        return job

    def _check_query(self, text) -> Optional[SoqlError]:
        """The SOQL error a query job meets, or None. Bulk API 2.0 "doesn't support SOQL
        queries that include ... GROUP BY, OFFSET, or TYPEOF clauses, aggregate functions such as
        COUNT()" (query_create_job.htm); the parser has no GROUP BY or TYPEOF at all."""
        try:
            q = SoqlParser(self.sim, text).parse()
        except SoqlError as e:
            return e
        if q.select is None:
            return SoqlError("INVALIDJOB", "Aggregate functions such as COUNT() are not supported "
                             "by Bulk API 2.0 query jobs")                              # guess: wording
        if q.offset:
            return SoqlError("INVALIDJOB", "OFFSET is not supported by Bulk API 2.0 query jobs")  # guess
        return None

    def get(self, raw_id) -> QueryJob:
        self._prune()
        job = self.jobs.get(canonical_id(raw_id) or "")
        if job is None:
            raise not_found()
        return job

    def abort(self, job, body):
        """PATCH {"state": "Aborted"}: "You can only abort jobs that are in the following states:
        UploadComplete, InProgress" (query_abort_job.htm)."""
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            # guess: the code and wording for another target state
            raise ApiError(400, "INVALIDJOBSTATE", "A query job can only be set to the state Aborted")
        if job.state in BULK_TERMINAL:
            raise ApiError(400, "INVALIDJOBSTATE", f"Can't abort a job in the state {job.state}")  # guess
        job.state, job.modstamp, job.pending = "Aborted", now_ms(), None
        return job.base()

    def delete(self, job):
        """"You can only delete a job if its state is JobComplete, Aborted, or Failed"
        (query_delete_job.htm, with its error body)."""
        if job.state not in BULK_TERMINAL:
            raise ApiError(400, "API_ERROR", "Error encountered when deleting the job because the "
                           "job is not terminated")
        del self.jobs[job.id15]

    def _prune(self):
        """"Results lifespan. Jobs that are older than 7 days are deleted if they are in a
        terminal state" (bulk_api_2_limits.htm)."""
        limit = now_ms() - self.sim.config.bulkResultsDays * DAY_MS
        for id15, job in list(self.jobs.items()):
            if job.state in BULK_TERMINAL and job.created < limit:
                del self.jobs[id15]

    def listing(self, query, version):
        """Get Information About All Query Jobs: Bulk API 2.0 query jobs only here (no Bulk API
        jobs exist), 1,000 per page, nextRecordsUrl with a queryLocator."""
        self._prune()
        jobs = list(self.jobs.values())
        if query.get("jobType") not in (None, "V2Query") or query.get("isPkChunkingEnabled") == "true":
            jobs = []       # PK chunking "only applies to Bulk API (not Bulk API 2.0) jobs"
        if query.get("concurrencyMode") not in (None, "parallel", "Parallel"):
            jobs = []
        start = 0
        if query.get("queryLocator"):
            start = bulk_offset(query["queryLocator"])
            if start is None:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")  # guess: code
        end = start + BULK_LIST_PAGE
        more = end < len(jobs)
        return {"done": not more, "records": [j.listed_info() for j in jobs[start:end]],
                "nextRecordsUrl": f"/services/data/{version}/jobs/query?queryLocator={bulk_locator(end)}"
                if more else None}

    def results(self, job, query, version) -> Reply:
        """Get Results for a Query Job: one page of CSV, Sforce-NumberOfRecords and
        Sforce-Locator ("null" on the last page) in the headers."""
        if version != job.version:
            # "Use the same API version to get query results that you used to create the query.
            # Otherwise, the call returns a 409 error." (guess: the body)
            raise ApiError(409, "API_VERSION_MISMATCH", f"This job was created with API version "
                           f"{job.version[1:]}; get its results with the same version")
        if job.state != "JobComplete":
            # the 412 example of query_get_job_results.htm (API 50.0 to 58.0 pages)
            state = re.sub(r"(?<!^)([A-Z])", r"_\1", job.state).upper()     # InProgress -> IN_PROGRESS
            raise ApiError(412, "JOB_NOT_COMPLETE", "can only download query results of "
                           "successfully completed bulk job with status: JOB_COMPLETE. Current "
                           f"status: {state}")
        size = self.sim.config.bulkResultsMaxRecords
        if "maxRecords" in query:
            raw = query["maxRecords"]
            if not raw.isdigit() or int(raw) < 1:
                raise ApiError(400, "API_ERROR", "maxRecords must be a positive integer")   # guess
            size = int(raw)
        start = 0
        if query.get("locator"):
            start = bulk_offset(query["locator"])
            if start is None or start > job.records:
                raise ApiError(400, "INVALID_LOCATOR", "invalid locator")                 # guess
        end = min(start + size, job.records)
        body = job.header + job.rows[job.offsets[start]:job.offsets[end]]
        reply = Reply(200, body, {"Sforce-NumberOfRecords": str(end - start),
                                  "Sforce-Locator": bulk_locator(end) if end < job.records else "null"},
                      content_type="text/csv")
        reply.log_body = {"csvBytes": len(body), "records": end - start,
                          "head": body[:300].decode("utf-8", "replace")}
        return reply

    # ---- the scheduler

    def _run(self):
        while True:
            with self.sim.lock:
                active = any(j.state in ("UploadComplete", "InProgress") for j in self.jobs.values())
                self.wake.wait(self.TICK_S if active else None)
                self._finish_due()
                starting = self._start_due()
            for job in starting:
                self._execute(job)

    def _start_due(self):
        now, started = now_ms(), []
        for job in self.jobs.values():
            if job.state == "UploadComplete" and now - job.created >= self.sim.config.bulkQueuedMs:
                job.state, job.started, job.modstamp = "InProgress", now, now
                started.append(job)
        return started

    def _finish_due(self):
        now, cfg = now_ms(), self.sim.config
        for job in self.jobs.values():
            if job.state != "InProgress" or job.pending is None or now - job.started < cfg.bulkProcessingMs:
                continue
            job.modstamp, job.processing_ms = now, now - job.started
            outcome, job.pending = job.pending, None
            if isinstance(outcome, SoqlError) or cfg.bulkFailMessage:
                job.state = "Failed"
                job.error = cfg.bulkFailMessage or f"{outcome.code}: {outcome.message}"
                continue
            job.header, job.rows, job.offsets, job.records = outcome
            job.state = "JobComplete"
            self.generated.append((now, job.size()))

    def _execute(self, job):
        """Runs the query: the candidate records are taken under the lock, then filtered,
        sorted and written outside it (records are replaced, never changed in place)."""
        try:
            q = SoqlParser(self.sim, job.text).parse()
            problem = self._check_query(job.text)
            if problem:
                raise problem
        except SoqlError as e:
            with self.sim.lock:
                if job.state == "InProgress":
                    job.pending = e
            return
        with self.sim.lock:
            rows = self.sim.queries.candidates(q, job.operation == "queryAll")
        header, data, offsets, read = BulkCsv(self.sim, q, job).write(rows)
        with self.sim.lock:
            if job.state != "InProgress":
                return
            job.pending = (header, data, offsets, len(read))
            if q.objdef.name == "CampaignMember":   # the member journal records every read
                t = now_ms()
                self.sim.member_journal.extend({"t": t, "op": "read", "id": r["Id"],
                                                "status": r.get("Status")} for r in read)


class BulkCsv:
    """A query job's result file in the format of "Get Results for a Query Job": a header row
    of the selected field names in the order asked for ("API version 50.0 and later"),
    relationship fields as Relationship.Field; every value in double quotes (the documented
    sample). Every results page starts with the header row (guess, from clients that keep
    one header across pages: slothflowlabs/duckle PR 196; simple-salesforce issue 765 shows a
    page as a whole CSV). guess: null as an empty quoted value, dates as
    2026-01-01T00:00:00.000Z, booleans as true/false."""

    def __init__(self, sim, q, job):
        self.sim, self.q = sim, q
        self.sep = BULK_DELIMITERS[job.delimiter]
        self.eol = BULK_LINE_ENDINGS[job.line_ending]

    def write(self, rows):
        engine, q = self.sim.queries, self.q
        rows = [r for r in rows if q.where is None or engine._eval(q.where, q.objdef, r)]
        for path, desc, nulls_first in reversed(q.order):
            rows.sort(key=lambda r, p=path, nf=nulls_first, d=desc: engine._sort_key(p, r, nf != d),
                      reverse=desc)
        if q.limit is not None:
            rows = rows[:q.limit]
        names = [f"{p.rel.relationship}.{p.field.name}" if p.rel else p.field.name for p in q.select]
        header = self._line(names).encode("utf-8")
        out, offsets, at = [], array.array("Q", [0]), 0
        for rec in rows:
            line = self._line([self._text(p, rec) for p in q.select]).encode("utf-8")
            out.append(line)
            at += len(line)
            offsets.append(at)
        return header, b"".join(out), offsets, rows

    def _line(self, values):
        return self.sep.join('"' + v.replace('"', '""') + '"' for v in values) + self.eol

    def _text(self, path, rec):
        values, store = self.sim.values, self.sim.store
        if path.rel is not None:
            rec = store.get_any(path.target.name, rec.get(path.rel.name))
            if rec is None:
                return ""
        v = values.get(path.target.name, rec, path.field)
        if v is None:
            return ""
        if path.field.type in ("id", "reference"):
            return to18(v)
        if path.field.type == "datetime":
            return fmt_soap_dt(v)
        if path.field.type == "boolean":
            return "true" if v else "false"
        return str(v)


class BulkQueryRoutes:
    """/services/data/vXX.X/jobs/query[/id[/results]] (lock held, as every data request). Each
    request is one call of the daily allowance, as RestApi counts every data request ("Bulk API
    use is subject to the standard API usage limits. Each HTTP request counts as one call",
    asynch_api_concepts_limits.htm)."""

    def __init__(self, routes: "DataRoutes"):
        self.routes, self.sim, self.req, self.version = routes, routes.sim, routes.req, routes.version

    def dispatch(self, p) -> Reply:
        if float(self.version[1:]) < BULK_MIN_VERSION:
            raise not_found()
        bulk = self.sim.bulk
        if not p:
            return self.routes._allow({"GET", "POST"}, lambda: self._create() if self.req.method == "POST"
                                      else Reply(200, bulk.listing(self.req.query, self.version)))
        job = bulk.get(p[0])
        if len(p) == 1:
            handlers = {"GET": lambda: Reply(200, job.info()),
                        "PATCH": lambda: self._abort(job),
                        "DELETE": lambda: self._delete(job)}
            return self.routes._allow(set(handlers), lambda: handlers[self.req.method]())
        if len(p) == 2 and p[1] == "results":
            return self.routes._allow({"GET"}, lambda: bulk.results(job, self.req.query, self.version))
        raise not_found()

    def _create(self):
        self.routes._check_content_type()
        return Reply(200, self.sim.bulk.create(self.req.json(), self.version).created_info())

    def _abort(self, job):
        self.routes._check_content_type()
        return Reply(200, self.sim.bulk.abort(job, self.req.json()))

    def _delete(self, job):
        self.sim.bulk.delete(job)
        return Reply(204)


# ---- control side: /_sim/bulk and the generate form of /_sim/seed

def bulk_control(sim, method, path, body) -> Reply:
    """GET /_sim/bulk: every job with its query and counts, and the 24-hour allocations;
    DELETE /_sim/bulk forgets the jobs; POST /_sim/bulk/age {"seconds": N} moves every job and
    allocation entry N seconds into the past (results lifespan, 24-hour windows)."""
    bulk = sim.bulk
    if (method, path) == ("GET", "/_sim/bulk"):
        bulk._prune()
        return Reply(200, {"jobs": [dict(j.info(), query=j.text, resultBytes=j.size())
                                    for j in bulk.jobs.values()], "limits": bulk.limits()})
    if (method, path) == ("DELETE", "/_sim/bulk"):
        bulk.reset()
        return Reply(204)
    if (method, path) == ("POST", "/_sim/bulk/age"):
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if type(seconds) is not int or seconds < 0:
            raise ControlError(400, "bad_request", "bulk/age: seconds must be an integer >= 0")
        delta = seconds * 1000
        for job in bulk.jobs.values():
            job.created -= delta
            job.modstamp -= delta
            if job.started is not None:
                job.started -= delta
        bulk.created_at = collections.deque(t - delta for t in bulk.created_at)
        bulk.generated = collections.deque((t - delta, n) for t, n in bulk.generated)
        bulk._prune()
        bulk.wake.notify_all()
        return Reply(200, {"jobs": len(bulk.jobs)})
    raise ControlError(404, "not_found", f"no control route {method} {path}")


def generate_seed(sim, body) -> Reply:
    """/_sim/seed {"generate": spec or [spec, ...]}: many campaign members at once, with their
    Leads or Contacts, as a data import would make them (no Outbound Messages). A spec:
    {"campaignId", "count" (1..1,000,000), "statuses": {label: weight} (exact counts when they
    are integers adding up to count), "kind": "lead" | "contact", "emailPattern" ("{n}" is the
    member's number), "start" (first number, default 1), "firstNamePattern", "lastNamePattern",
    "company" (leads), "accountId" (contacts), "seed" (of the shuffle of statuses),
    "lastModifiedDate"}. A person of that kind whose Email exists already is reused, an existing
    member gets the new status. All specs are checked before any is applied."""
    if set(body) != {"generate"}:
        raise ControlError(400, "bad_seed", "generate cannot be combined with other seed lists")
    specs = body["generate"] if isinstance(body["generate"], list) else [body["generate"]]
    plans = [_generate_plan(sim, spec) for spec in specs]
    return Reply(200, {"generated": [_generate_apply(sim, plan) for plan in plans]})


def _generate_plan(sim, spec):
    def bad(msg):
        return ControlError(400, "bad_seed", f"generate: {msg}")

    if not isinstance(spec, dict):
        raise bad("each spec must be an object")
    known = {"campaignId", "count", "statuses", "kind", "emailPattern", "start", "firstNamePattern",
             "lastNamePattern", "company", "accountId", "seed", "lastModifiedDate"}
    if set(spec) - known:
        raise bad(f"unknown keys {sorted(set(spec) - known)}")
    campaign = sim.store.get("Campaign", canonical_id(spec.get("campaignId")))
    if campaign is None:
        raise bad(f"no live Campaign {spec.get('campaignId')!r}")
    count, start, kind = spec.get("count"), spec.get("start", 1), spec.get("kind", "lead")
    if type(count) is not int or not 1 <= count <= GENERATE_MAX or type(start) is not int or start < 0:
        raise bad(f"count must be 1..{GENERATE_MAX:,} and start an integer >= 0")
    if kind not in ("lead", "contact"):
        raise bad("kind must be lead or contact")
    labels = {s["Label"]: s for s in sim.store.statuses(campaign["Id"])}
    weights = spec.get("statuses")
    if not isinstance(weights, dict) or not weights or any(
            n not in labels or type(w) not in (int, float) or w < 0 for n, w in weights.items()) \
            or not sum(weights.values()) > 0:
        raise bad(f"statuses must map this campaign's statuses {sorted(labels)} to weights >= 0")
    texts = {}
    for key, default in (("emailPattern", f"c{campaign['Id'][-6:]}-{{n}}@example.com"),
                         ("firstNamePattern", None), ("lastNamePattern", "Member {n}"),
                         ("company", "Generated" if kind == "lead" else None)):
        value = spec.get(key, default)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 200):
            raise bad(f"{key} must be a string of 1 to 200 characters")
        texts[key] = value
    if "{n}" not in texts["emailPattern"] or texts["lastNamePattern"] is None:
        raise bad("emailPattern must contain {n}; lastNamePattern is required")
    account = None
    if spec.get("accountId") is not None:
        account = sim.store.get("Account", canonical_id(spec["accountId"]))
        if kind != "contact" or account is None:
            raise bad("accountId must name a live Account, for contacts")
    stamp = None
    if spec.get("lastModifiedDate") is not None:
        stamp = parse_dt(spec["lastModifiedDate"])
        if stamp is None:
            raise bad("lastModifiedDate must be an ISO-8601 date-time")
    return {"campaign": campaign, "count": count, "start": start, "kind": kind, "texts": texts,
            "account": account, "stamp": stamp, "labels": labels,
            "statuses": _apportion(weights, count, spec.get("seed", 0))}


def _apportion(weights, count, seed):
    """count labels in the proportions of weights (largest remainder), shuffled by seed."""
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


def _generate_apply(sim, plan):
    """Writes the records straight into the store, in the shape Dml.create gives them."""
    began = time.monotonic()
    store, schema, texts = sim.store, sim.schema, plan["texts"]
    obj = "Lead" if plan["kind"] == "lead" else "Contact"
    user = sim.user("humanUserId")
    at = plan["stamp"] or sim.clock.stamp()
    system = {"IsDeleted": False, "CreatedDate": at, "CreatedById": user, "LastModifiedDate": at,
              "LastModifiedById": user, "SystemModstamp": at}

    def blank(name):
        return {f.name: (False if f.type == "boolean" else None) for f in schema[name].fields
                if not f.derived}

    person_blank, member_blank = dict(blank(obj), **system), dict(blank("CampaignMember"), **system)
    by_email = {r["Email"].casefold(): i for i, r in store.live[obj].items() if r.get("Email")}
    campaign15 = plan["campaign"]["Id"]
    person_field = "LeadId" if obj == "Lead" else "ContactId"
    fill = lambda pattern, n: None if pattern is None else pattern.replace("{n}", str(n))  # noqa: E731
    created = 0
    for k, label in enumerate(plan["statuses"]):
        n = plan["start"] + k
        email = fill(texts["emailPattern"], n)
        person15 = by_email.get(email.casefold())
        if person15 is None:
            person15 = sim.ids.new(schema[obj].prefix, store.taken)
            values = {"Id": person15, "Email": email, "FirstName": fill(texts["firstNamePattern"], n),
                      "LastName": fill(texts["lastNamePattern"], n)}
            if obj == "Lead":
                values["Company"] = texts["company"]
            elif plan["account"] is not None:
                values["AccountId"] = plan["account"]["Id"]
            store.save(_NoUndo(), obj, dict(person_blank, **values))
            by_email[email.casefold()] = person15
            created += 1
        existing = store.member_by_person.get((campaign15, person15))
        member = dict(store.get("CampaignMember", existing)) if existing else dict(
            member_blank, Id=sim.ids.new("00v", store.taken), CampaignId=campaign15,
            **{person_field: person15})
        member.update(Status=label, HasResponded=plan["labels"][label]["HasResponded"])
        store.save(_NoUndo(), "CampaignMember", member)
    return {"campaignId": to18(campaign15), "members": plan["count"], "kind": plan["kind"],
            "peopleCreated": created, "peopleReused": plan["count"] - created,
            "statuses": dict(collections.Counter(plan["statuses"])),
            "ms": int((time.monotonic() - began) * 1000)}


# --------------------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    """Reads one request, hands it to the control API or the REST API, writes the reply and
    records REST calls in the call log."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the second waits for
    # the client's delayed ACK (~40 ms a call), which would make latency figures lie.
    disable_nagle_algorithm = True
    server_version = "SFDC-sim"
    sim: Simulator = None
    rest: RestApi = None
    control: ControlApi = None

    def do_GET(self):
        self._serve()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

    def log_message(self, fmt, *args):
        """Quiet: stdout carries only the READY line, and tests read stderr only on failure."""

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _serve(self):
        split = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._write(Reply(413, [{"message": "request too large", "errorCode": "REQUEST_TOO_LARGE"}]))
            return
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        req = Request(self.command, split.path, query, self.headers, body)
        if split.path == "/_sim" or split.path.startswith("/_sim/"):
            self._write(self.control.handle(req))
            return
        too_long = self._too_long()
        try:
            reply = too_long or self.rest.handle(req)
        except Exception:  # a simulator bug: answer like Salesforce's own 500, say why on stderr
            traceback.print_exc()
            reply = Reply(500, [{"message": "An unexpected error occurred in the simulator (see its "
                                            "stderr).", "errorCode": "UNKNOWN_EXCEPTION"}])
        logged = reply.body if not isinstance(reply.body, (str, bytes)) else self._loggable(self._encode(reply))
        logged = getattr(reply, "log_body", logged)      # a results page is logged as a summary
        with self.sim.lock:
            self.sim.calls.add(req.method, req.path, query, self._loggable(body),
                               None if reply.drop else reply.status, None if reply.drop else logged,
                               uri_bytes=len(self.path.encode()))
        if reply.drop:
            self.close_connection = True
            return
        self._write(reply)

    def _too_long(self) -> Optional[Reply]:
        """Salesforce Help 000386264: URI and headers together may take 16,384 bytes; a longer
        URI is refused with 414 URI Too Long, longer headers with 431. Nothing is applied and
        nothing is counted. guess: the bodies (an error page, as from a front end)."""
        uri = len(self.path.encode())
        headers = sum(len(k) + len(v) + 4 for k, v in self.headers.items())
        status = 414 if uri > URI_MAX else 431 if uri + headers > URI_MAX else None
        if status is None:
            return None
        phrase = "URI Too Long" if status == 414 else "Request Header Fields Too Large"
        return Reply(status, f"<html><body><h1>{status} {phrase}</h1></body></html>",
                     content_type="text/html;charset=UTF-8")

    @staticmethod
    def _encode(reply: Reply) -> bytes:
        if reply.body is None:
            return b""
        if isinstance(reply.body, bytes):
            return reply.body
        if isinstance(reply.body, str):
            return reply.body.encode("utf-8")
        return json.dumps(reply.body).encode("utf-8")

    @staticmethod
    def _loggable(raw: bytes):
        if not raw:
            return None
        text = raw.decode("utf-8", "replace")
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    def _write(self, reply: Reply):
        data = self._encode(reply)
        self.send_response(reply.status)
        if data:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if reply.cut is not None:
            self.wfile.write(data[:reply.cut])
            self.close_connection = True
            return
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def parse_args(argv):
    d = Config()
    p = argparse.ArgumentParser(description="Salesforce REST + Outbound Message simulator")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--client-id", default=d.clientId)
    p.add_argument("--client-secret", default=d.clientSecret)
    p.add_argument("--org-id", default=d.orgId)
    p.add_argument("--integration-user-id", default=d.integrationUserId)
    p.add_argument("--api-limit", type=int, default=d.apiLimit)
    p.add_argument("--latency-ms", type=int, default=d.latencyMs)
    p.add_argument("--query-batch-size", type=int, default=d.queryBatchSize)
    p.add_argument("--outbound-url", default=None)
    p.add_argument("--outbound-batch-ms", type=int, default=d.outboundBatchMs)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = Config()
    try:
        config.apply({"clientId": args.client_id, "clientSecret": args.client_secret,
                      "orgId": args.org_id, "integrationUserId": args.integration_user_id,
                      "apiLimit": args.api_limit, "latencyMs": args.latency_ms,
                      "queryBatchSize": args.query_batch_size, "outboundUrl": args.outbound_url,
                      "outboundBatchMs": args.outbound_batch_ms}, build_schema())
    except ControlError as e:
        sys.exit(f"salesforce_sim: {e.message}")
    sim = Simulator(config)
    Handler.sim, Handler.rest, Handler.control = sim, RestApi(sim), ControlApi(sim)
    server = Server((args.host, args.port), Handler)
    port = server.server_address[1]
    sim.base_url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '') else args.host}:{port}"
    sim.outbound.start()

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY port={port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    sim.outbound.stop()
    server.server_close()


if __name__ == "__main__":
    main()
