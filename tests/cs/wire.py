"""What the CRMs send the service, built the way they build it, and how to tell the calls the
service made to the simulators apart.

Salesforce: a SOAP Outbound Message on CampaignMember (SPEC section 6), its notification ids,
LastModifiedDate as it carries it. Marketo: a webhook rendered from SPEC section 7's
recommended template exactly as Marketo renders its tokens (strings quoted, ids as numbers, an
empty token as null; {{system.dateTime}} in the account's time zone, UTC here, no offset)."""
import itertools
import json
import re
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

from .web import ORG_ID

HUMAN = "005000000000002AAA"        # the Salesforce simulator's human user
INTEGRATION = "005000000000001AAA"  # SF_INTEGRATION_USER_ID (procs.crm_urls)

# ------------------------------------------------------------------ Salesforce

_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_nid = itertools.count(1)


def to18(id15):
    """A 15-character Salesforce id in its 18-character form (the case-safe suffix)."""
    out = ""
    for chunk in range(3):
        bits = sum(1 << j for j, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]) if "A" <= ch <= "Z")
        out += _CHECKSUM[bits]
    return id15 + out


def notification_id():
    """A fresh Outbound Message notification id (04l..., 18 characters), unique in the process."""
    n, digits = next(_nid), ""
    for _ in range(6):
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
    return to18("04lTst" + "0" * 3 + digits)


def soap_time(dt=None):
    """LastModifiedDate as Outbound Messages carry it: 2026-11-29T10:00:00.000Z (now, or dt)."""
    dt = dt or datetime.now(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


OM_NS = "http://soap.sforce.com/2005/09/outbound"
OM_FIELDS = ["CampaignId", "CompanyOrAccount", "ContactId", "Email", "FirstName",
             "LastModifiedById", "LastModifiedDate", "LastName", "LeadId", "Status"]


def outbound_message(notifications, org_id=ORG_ID):
    """One SOAP Outbound Message on CampaignMember, as text; notifications: [(notification id,
    record dict of CampaignMember fields as the Salesforce simulator shows them)]; fields
    without a value are left out, as Salesforce does."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n'
             '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
             'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
             f'<notifications xmlns="{OM_NS}"><OrganizationId>{org_id}</OrganizationId>'
             '<ActionId>04kSm0000000Om1AAA</ActionId><SessionId xsi:nil="true"/>'
             '<EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000001'
             '</EnterpriseUrl><PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/'
             '00D000000000001</PartnerUrl>']
    for nid, rec in notifications:
        parts.append(f'<Notification><Id>{nid}</Id><sObject xsi:type="sf:CampaignMember" '
                     'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
                     f'<sf:Id>{rec["Id"]}</sf:Id>')
        for name in OM_FIELDS:
            v = rec.get(name)
            if v is not None:
                parts.append(f"<sf:{name}>{escape(str(v))}</sf:{name}>")
        parts.append("</sObject></Notification>")
    parts.append("</notifications></soapenv:Body></soapenv:Envelope>")
    return "".join(parts)


def om_body(records):
    """One Outbound Message with one Notification (a fresh id) per CampaignMember record."""
    return outbound_message([(notification_id(), rec) for rec in records])


def changed(member, status=None, by=HUMAN, when=None):
    """The notification data of a CampaignMember record after a change: its fields, with the
    given Status, LastModifiedById and a LastModifiedDate of now (or `when`)."""
    rec = dict(member)
    if status is not None:
        rec["Status"] = status
    rec["LastModifiedById"] = by
    rec["LastModifiedDate"] = soap_time(when)
    return rec


# ------------------------------------------------------------------ Marketo

BASE = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)


def marketo_time(dt):
    """{{system.dateTime}} as Marketo renders it for an account in UTC: no offset."""
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def at(seconds=0):
    """{{system.dateTime}} of BASE (ten minutes before the harness was loaded) + seconds."""
    return marketo_time(BASE + timedelta(seconds=seconds))


def token(value):
    """One rendered token: Marketo quotes strings itself; an empty token renders as null."""
    if value is None:
        return "null"
    return str(value) if isinstance(value, int) else json.dumps(value)


def hook(p, when, program=None, status=None, type="member_status_changed", campaign=None,
         omit=(), **override):
    """The recommended template for person p (a Person: lead, email, first, last, company):
    {"type":"member_status_changed","programId":{{program.id}},"leadId":{{lead.Id}},
     "email":{{lead.Email Address}},"firstName":{{lead.First Name}},
     "lastName":{{lead.Last Name}},"company":{{company.Company Name}},
     "occurredAt":{{system.dateTime}}}
    with a hard-coded "status" when given, and "campaignId" for the F7 flow actions."""
    fields = [("type", type), ("programId", program), ("campaignId", campaign),
              ("leadId", p.lead), ("email", p.email), ("firstName", p.first),
              ("lastName", p.last), ("company", p.company), ("occurredAt", when),
              ("status", status)]
    fields = [(k, override.get(k, v)) for k, v in fields]
    fields += [(k, v) for k, v in override.items() if k not in dict(fields)]
    keep = [(k, v) for k, v in fields if k not in omit and
            not (k in ("programId", "campaignId", "status") and v is None and k not in override)]
    return "{" + ",".join(f'"{k}":{token(v)}' for k, v in keep) + "}"


# ------------------------------------------------------------------ the calls the service made

STATUS_CALL = re.compile(r"^/rest/v1/programs/(\d+)/members/status\.json$")
DELETE_CALL = re.compile(r"^/rest/v1/programs/(\d+)/members/delete\.json$")
MEMBERS_READ = re.compile(r"^/rest/v1/programs/(\d+)/members\.json$")


def is_cm_write(call):
    """An sObject Collections call that writes CampaignMember records."""
    if not call["path"].endswith("/composite/sobjects"):
        return False
    if call["method"] in ("POST", "PATCH"):
        recs = (call["body"] or {}).get("records", []) if isinstance(call["body"], dict) else []
        return any((r.get("attributes") or {}).get("type") == "CampaignMember" for r in recs)
    if call["method"] == "DELETE":
        return any(i.startswith("00v") for i in (call["query"].get("ids") or "").split(","))
    return False


def is_lead_create(call):
    return (call["method"] == "POST" and call["path"].endswith("/composite/sobjects")
            and isinstance(call["body"], dict)
            and any((r.get("attributes") or {}).get("type") == "Lead"
                    for r in call["body"].get("records", [])))
