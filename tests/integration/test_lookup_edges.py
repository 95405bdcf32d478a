"""People lookups where the real CRM APIs leave the happy path (issue 16): long lookups toward
Marketo and Salesforce, values that cannot be put in a query, and Salesforce duplicate rules.
Real Redis, both CRM simulators, the real binary (one ingest, one worker process with one
thread, so that a burst is one batch and its lookups are as long as they get).

Sources the simulators follow here:
* Marketo: a GET over 8 KB is answered 414; a long query goes as POST with _method=GET and the
  query string as an application/x-www-form-urlencoded body (Adobe developer docs, "Leads",
  Query section).
* Salesforce: URI and headers together may take 16,384 bytes (414 URI Too Long, 431), and URIs
  of at most 2,000 characters are recommended because the server expands a query before it
  runs it (Salesforce Help 000386264); Lead.Email and Contact.Email hold 80 characters
  (Salesforce Field Reference); a create refused by a duplicate rule fails with
  DUPLICATES_DETECTED, its duplicateResult naming the matched records (SOAP API reference:
  DuplicateError, DuplicateResult, MatchResult, MatchRecord)."""
import itertools
import json
import time
import urllib.parse
from datetime import datetime, timezone

import pytest

import cs

T = 60  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)
WEBINAR = ["Invited", "Registered", "No Show", "Attended", "Attended On-demand"]
MK_HEADERS = {"Content-Type": "application/json", "X-Webhook-Secret": cs.WEBHOOK_SECRET}
SF_URI_BUDGET = 2000  # the service's query URIs stay within Salesforce's recommendation
_nid = itertools.count(1)


def notification_id():
    n, digits = next(_nid), ""
    for _ in range(6):
        n, r = divmod(n, 62)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[r] + digits
    return cs.to18("04lLkp" + "0" * 3 + digits)


def soap_now():
    dt = datetime.now(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def mk_hook(lead, email, program, status, first="Ann", last="Lee", company="Acme"):
    """SPEC section 7's recommended template for one Marketo person, with a status."""
    body = {"type": "member_status_changed", "programId": int(program), "leadId": int(lead),
            "email": email, "firstName": first, "lastName": last, "company": company,
            "status": status,
            "occurredAt": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
    return {k: v for k, v in body.items() if v is not None}  # no email: read from Marketo


class World:
    def __init__(self, redis, services, sf, mk):
        self.redis, self.services, self.sf, self.mk = redis, services, sf, mk
        self.ingest = self.worker = None

    def start(self, **env):
        env = cs.crm_env(self.sf, self.mk, **env)
        self.ingest = self.services(self.redis.url, command="ingest", name="ingest", **env)
        self.worker = self.services(self.redis.url, command="worker", name="w1",
                                    **dict(env, WORKERS="1"))
        return self

    def stderr(self):
        return "\n".join(f"--- {s.command}\n{s.stderr()[-3000:]}" for s in (self.ingest, self.worker))

    def admin(self, method, path, body=None, expect=200):
        r = self.ingest.req(method, path, body, cs.admin_headers())
        assert r.status == expect, f"{method} {path}: {r.status} {r.body[:400]!r}"
        return r.json() if r.body else None

    def pair(self):
        cid = self.sf.ctl("POST", "seed", {"campaigns": [{"Name": "Webinar", "IsActive": True, "statuses": [
            {"Label": s, "IsDefault": s == "Invited", "HasResponded": s == "Attended"}
            for s in WEBINAR]}]})["campaigns"][0]["Id"]
        pid = self.mk.ctl("POST", "seed", {"programs": [{"name": "Webinar", "channel": "Webinar"}]}
                          )["programs"][0]["id"]
        return cid, pid

    def hold(self):
        """Sync off, so that what arrives next is applied as one batch once it is on again
        (the pause lets the worker, blocked on the queue, see the switch)."""
        self.admin("PUT", "/v1/sync", {"enabled": False})
        time.sleep(0.7)

    def release(self):
        self.admin("PUT", "/v1/sync", {"enabled": True})

    def dead_letters(self):
        return self.admin("GET", "/v1/deadletters?limit=1000")["items"]

    def send(self, bodies):
        r = self.ingest.req("POST", "/webhooks/marketo", json.dumps(bodies), MK_HEADERS, timeout=30)
        assert r.status == 202, f"webhook: {r.status} {r.body!r}"

    def post_om(self, members, status):
        recs = [dict(m, Status=status, LastModifiedById="005000000000002AAA",
                     LastModifiedDate=soap_now()) for m in members]
        r = self.ingest.req("POST", "/webhooks/salesforce",
                            cs.outbound_message([(notification_id(), rec) for rec in recs]),
                            {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'},
                            timeout=30)
        assert r.status == 200 and b"<Ack>true</Ack>" in r.body, r.body[:300]

    def sf_members(self, campaign):
        return self.sf.ctl("GET", f"members?campaignId={campaign}")["members"]

    def mk_members(self, program):
        return {m["leadId"]: m["statusName"]
                for m in self.mk.ctl("GET", f"members?programId={program}")["members"]}

    def wait(self, pred, what):
        try:
            return cs.wait_until(lambda: pred() or self.dead_letters() and "dead letters", T,
                                 interval=0.2, what=what)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {what}\n{self.stderr()}") from None


@pytest.fixture
def world(redis, services, sf_sim, mkto_sim):
    return World(redis, services, sf_sim, mkto_sim)


def no_dead_letters(w):
    dl = w.dead_letters()
    assert dl == [], f"{len(dl)} dead letters, e.g. {json.dumps(dl[:3], indent=1)[:2000]}"


# ------------------------------------------------------------------ long lookups toward Marketo

def test_300_new_people_from_salesforce_are_looked_up_in_marketo_as_one_long_post(world):
    """300 people added to a campaign at once: the lookup of their emails is a ~15 KB query,
    over Marketo's 8 KB. It goes as POST ?_method=GET with a form body; a third of them exist
    in Marketo already, and createOrUpdate must not overwrite their names and company."""
    w = world
    n = 300
    cid, pid = w.pair()
    emails = [f"long.lookup.person.{i:03d}@example-company.com" for i in range(n)]
    leads = w.sf.ctl("POST", "seed", {"leads": [
        {"FirstName": f"Sf{i}", "LastName": "Salesforce", "Company": "SF Corp", "Email": e}
        for i, e in enumerate(emails)]})["leads"]
    members = w.sf.ctl("POST", "seed", {"members": [
        {"CampaignId": cid, "LeadId": l["Id"], "Status": "Invited"} for l in leads]})["members"]
    known = {e: {"email": e, "firstName": "Mk", "lastName": f"Marketo{i}", "company": "Marketo Co"}
             for i, e in enumerate(emails) if i % 3 == 0}
    w.mk.ctl("POST", "seed", {"leads": list(known.values())})
    w.start()
    w.admin("PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True}, expect=201)
    w.hold()
    seq = w.mk.ctl("GET", "calls")["next"]
    for i in range(0, n, 100):  # three Outbound Messages of 100 notifications
        w.post_om(members[i:i + 100], "Registered")
    w.release()
    w.wait(lambda: len(w.mk_members(pid)) == n, f"{n} members in Marketo")

    no_dead_letters(w)
    by_email = {}
    for lead in w.mk.ctl("GET", "state")["leads"]:
        by_email.setdefault(lead["email"].lower(), []).append(lead)
    assert all(len(by_email[e]) == 1 for e in emails), "one Marketo lead per email"
    for e, before in known.items():
        lead = by_email[e][0]
        assert (lead["firstName"], lead["lastName"], lead["company"]) == \
            (before["firstName"], before["lastName"], before["company"]), \
            f"the names of {e}, known to Marketo, were overwritten: {lead}"
    assert set(w.mk_members(pid).values()) == {"Registered"}
    calls = w.mk.calls(seq)
    assert not [c for c in calls if c["http"] == 414], "no request was too long"
    lookups = [c for c in calls if c["path"] == "/rest/v1/leads.json"
               and (c["method"] == "GET" or c["query"].get("_method") == "GET")]
    long_ones = [c for c in lookups if c["method"] == "POST"]
    assert long_ones, "the long lookup went as POST ?_method=GET"
    first = long_ones[0]
    assert first["query"] == {"_method": "GET"} and first["form"]["filterType"] == "email"
    assert sorted(first["form"]["filterValues"].split(",")) == sorted(emails)
    assert all(len(urllib.parse.urlencode(c["query"])) < 7200 for c in lookups if c["method"] == "GET")
    creates = [c for c in calls if c["method"] == "POST" and c["path"] == "/rest/v1/leads.json"
               and not c["query"].get("_method")]
    created = sorted(r["email"] for c in creates for r in c["body"]["input"])
    assert created == sorted(e for e in emails if e not in known), "only the unknown are created"


# ------------------------------------------------------------------ long lookups toward Salesforce

def test_300_marketo_people_with_long_emails_are_found_or_created_in_salesforce(world):
    """300 people with long (but valid: at most 80 characters) emails added to a program at
    once: the Contact, Lead and CampaignMember lookups are split so that no query URI passes
    Salesforce's recommended 2,000 characters, and every person is found or created once."""
    w = world
    n = 300
    cid, pid = w.pair()
    emails = [f"o'brien.{i:03d}+spring-webinar-registrations@marketing.example-company.com"
              for i in range(n)]
    assert all(len(e) <= 80 for e in emails)
    mk = w.mk.ctl("POST", "seed", {"leads": [{"email": e} for e in emails]})["leads"]
    contacts = w.sf.ctl("POST", "seed", {"contacts": [
        {"LastName": f"C{i}", "Email": e} for i, e in enumerate(emails) if i % 3 == 0]})["contacts"]
    sf_leads = w.sf.ctl("POST", "seed", {"leads": [
        {"LastName": f"L{i}", "Company": "Acme", "Email": e.upper()}
        for i, e in enumerate(emails) if i % 3 == 1]})["leads"]
    w.start()
    w.admin("PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True}, expect=201)
    w.hold()
    seq = w.sf.ctl("GET", "calls")["next"]
    w.send([mk_hook(l["id"], e, pid, "Registered", last=f"New{i}")
            for i, (l, e) in enumerate(zip(mk, emails))])
    w.release()
    w.wait(lambda: len(w.sf_members(cid)) == n, f"{n} campaign members in Salesforce")

    no_dead_letters(w)
    got = {m["Email"].lower(): m for m in w.sf_members(cid)}
    got_contact = {c["Email"] for c in contacts}
    assert sorted(got) == sorted(emails)
    assert {got[c["Email"]]["ContactId"] for c in contacts} == {c["Id"] for c in contacts}
    assert {got[l["Email"].lower()]["LeadId"] for l in sf_leads} == {l["Id"] for l in sf_leads}
    state = w.sf.ctl("GET", "state")
    per_email = {}
    for lead in state["leads"]:
        per_email[lead["Email"].lower()] = per_email.get(lead["Email"].lower(), 0) + 1
    assert all(per_email.get(e, 0) == (0 if i % 3 == 0 else 1) for i, e in enumerate(emails)), \
        "a Contact or one Lead per person: none created twice, none for a known person"
    calls = w.sf.calls(seq)
    assert not [c for c in calls if c["status"] in (414, 431)]
    queries = [c for c in calls if c["method"] == "GET" and c["path"].endswith("/query")]
    too_long = [c["uriBytes"] for c in queries if c["uriBytes"] > SF_URI_BUDGET]
    assert not too_long, f"query URIs over {SF_URI_BUDGET} bytes: {too_long}"
    by_object = {o: [c for c in queries if f" FROM {o} " in c["query"]["q"]]
                 for o in ("Contact", "Lead", "CampaignMember")}
    assert all(len(qs) > 1 for qs in by_object.values()), "each lookup took several queries"
    # Every email asked once of Contact; those not found there once of Lead.
    for o, expected in (("Contact", emails), ("Lead", [e for e in emails if e not in got_contact])):
        asked = [e for c in by_object[o] for e in emails
                 if "'" + e.replace("'", "\\'") + "'" in c["query"]["q"]]
        assert sorted(asked) == sorted(expected), f"asked of {o}: {len(asked)} of {len(expected)}"


def test_an_email_with_a_control_character_fails_alone(world):
    """A Marketo email holding a control character (here U+0001; say, from a list import).
    The webhooks carry no email (the ingest would refuse it), so the worker reads the emails
    from Marketo. Such an email cannot be a Salesforce email, nor be put in a SOQL literal
    (SOQL escapes only newline, return, tab, form feed, quotes and backslash): that person is
    dead-lettered with the reason, before any call to Salesforce; the others of the same batch
    are applied."""
    w = world
    cid, pid = w.pair()
    good = ["first.good@example.com", "second.good@example.com"]
    bad = "bad\u0001person@example.com"
    mk = w.mk.ctl("POST", "seed", {"leads": [{"email": e} for e in good + [bad]]})["leads"]
    contact = w.sf.ctl("POST", "seed", {"contacts": [{"LastName": "G", "Email": good[0]}]}
                       )["contacts"][0]["Id"]
    w.start()
    w.admin("PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True}, expect=201)
    w.hold()
    seq = w.sf.ctl("GET", "calls")["next"]
    w.send([mk_hook(mk[0]["id"], None, pid, "Registered"),
            mk_hook(mk[2]["id"], None, pid, "Registered"),
            mk_hook(mk[1]["id"], None, pid, "Registered")])
    w.release()
    dead = cs.wait_until(w.dead_letters, T, what="the dead letter")
    cs.wait_until(lambda: len(w.sf_members(cid)) == 2, T, what="the two good people applied")
    got = {m["Email"]: m for m in w.sf_members(cid)}
    assert got[good[0]]["ContactId"] == contact and got[good[1]]["LeadId"]
    assert len(dead) == 1, dead
    assert dead[0]["event"]["mktoLeadId"] == str(mk[2]["id"]), dead[0]
    assert dead[0]["error"] == (
        f"Marketo lead {mk[2]['id']} with email \"{bad}\" cannot be found or created in "
        "Salesforce: it contains the control character U+0001, which no Salesforce email "
        "address can hold"), dead[0]["error"]
    sent = json.dumps(w.sf.calls(seq))
    assert "\\u0001" not in sent, "the unusable email never went to Salesforce"


# ------------------------------------------------------------------ Salesforce duplicate rules

@pytest.mark.parametrize("mode", ["block", "blockWithoutDetails"])
def test_a_lead_refused_by_a_duplicate_rule_joins_the_campaign_as_the_matched_contact(world, mode):
    """Why the email lookup does not see the person: it appears in Salesforce between our
    lookup and our Lead creation (a sales rep, a web-to-lead form or another integration
    creates it at the same moment). Here both a Contact and a Lead with the email appear, held
    by a delay on the Collections call. The org's duplicate rule on Lead (action Block) then
    refuses our Lead with DUPLICATES_DETECTED; the service takes the matched record, the
    Contact (a Contact wins, SPEC section 8): the campaign member is created for it, no Lead is
    created, nothing is dead-lettered. ("blockWithoutDetails": the Collections error names no
    record, as in the REST guide's example; one single-record create then asks again, and its
    400 answer names them.)"""
    w = world
    cid, pid = w.pair()
    email = "dupe.person@example.com"
    lead = w.mk.ctl("POST", "seed", {"leads": [{"email": email}]})["leads"][0]["id"]
    w.sf.ctl("POST", "config", {"duplicateRuleLead": mode})
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "delay", "method": "POST",
                                           "path": "/composite/sobjects$", "delay_ms": 2000}]})
    w.start()
    w.admin("PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True}, expect=201)
    seq = w.sf.ctl("GET", "calls")["next"]
    w.send([mk_hook(lead, email, pid, "Registered", first="Dee", last="Upe")])
    cs.wait_until(lambda: any(" FROM Lead " in (c["query"].get("q") or "") for c in w.sf.calls(seq)),
                  T, what="the Lead lookup")
    seeded = w.sf.ctl("POST", "seed", {
        "contacts": [{"LastName": "Upe", "Email": "Dupe.Person@Example.com"}],
        "leads": [{"LastName": "Upe", "Company": "Web", "Email": email}]})
    contact, their_lead = seeded["contacts"][0]["Id"], seeded["leads"][0]["Id"]
    w.wait(lambda: w.sf_members(cid), "the campaign member")

    no_dead_letters(w)
    (m,) = w.sf_members(cid)
    assert (m["ContactId"], m["LeadId"], m["Status"]) == (contact, None, "Registered"), m
    leads = [l["Id"] for l in w.sf.ctl("GET", "state")["leads"] if l["Email"].lower() == email]
    assert leads == [their_lead], "no Lead was created"
    calls = w.sf.calls(seq)
    creates = [c for c in calls if c["method"] == "POST" and c["path"].endswith("/composite/sobjects")
               and c["body"]["records"][0]["attributes"]["type"] == "Lead"]
    assert len(creates) == 1 and creates[0]["response"][0]["errors"][0]["statusCode"] == \
        "DUPLICATES_DETECTED", "precondition: the rule refused the Lead"
    single = [c for c in calls if c["method"] == "POST" and c["path"].endswith("/sobjects/Lead")]
    if mode == "block":
        assert single == [], "the Collections answer named the record: no second call"
    else:
        assert [c["status"] for c in single] == [400]
        assert single[0]["response"][0]["errorCode"] == "DUPLICATES_DETECTED"
