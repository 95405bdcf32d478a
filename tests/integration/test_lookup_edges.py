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
import json
import time
import urllib.parse
from datetime import datetime, timezone

import pytest

import cs
from cs import no_dead_letters

T = 60  # seconds to wait for an outcome (generous: the suite also runs under sanitizers)
SF_URI_BUDGET = 2000  # the service's query URIs stay within Salesforce's recommendation


def mk_hook(lead, email, program, status, first="Ann", last="Lee", company="Acme"):
    """SPEC section 7's recommended template for one Marketo person, with a status."""
    body = {"type": "member_status_changed", "programId": int(program), "leadId": int(lead),
            "email": email, "firstName": first, "lastName": last, "company": company,
            "status": status,
            "occurredAt": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
    return {k: v for k, v in body.items() if v is not None}  # no email: read from Marketo


@pytest.fixture
def world(world):
    """One ingest and one worker process with one thread: a burst is one batch."""
    return world.defaults(workers=1)


def pair(w):
    """A Webinar campaign and a Webinar program."""
    return w.campaign(), w.program("Webinar")


def hold(w):
    """Sync off, so that what arrives next is applied as one batch once it is on again
    (the pause lets the worker, blocked on the queue, see the switch)."""
    w.admin("PUT", "/v1/sync", {"enabled": False}, expect=200)
    time.sleep(0.7)


def release(w):
    w.admin("PUT", "/v1/sync", {"enabled": True}, expect=200)


def send(w, bodies):
    """One Marketo webhook call of these events (dicts), as an array."""
    r = w.ingest.req("POST", "/webhooks/marketo", json.dumps(bodies), cs.MK_HEADERS, timeout=30)
    assert r.status == 202, f"webhook: {r.status} {r.body!r}"


def post_om(w, members, status):
    """One Outbound Message: these CampaignMember records changed by a person to status."""
    w.post_om([cs.changed(m, status) for m in members])


def wait(w, pred, what):
    """Waits for pred, or for a dead letter (which fails the test sooner)."""
    try:
        return cs.wait_until(lambda: pred() or w.dead_letters() and "dead letters", T,
                             interval=0.2, what=what)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}\n{w.stderr()}") from None


# ------------------------------------------------------------------ long lookups toward Marketo

def test_300_new_people_from_salesforce_are_looked_up_in_marketo_as_one_long_post(world):
    """300 people added to a campaign at once: the lookup of their emails is a ~15 KB query,
    over Marketo's 8 KB. It goes as POST ?_method=GET with a form body; a third of them exist
    in Marketo already, and createOrUpdate must not overwrite their names and company."""
    w = world
    n = 300
    cid, pid = pair(w)
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
    hold(w)
    seq = w.mk.ctl("GET", "calls")["next"]
    for i in range(0, n, 100):  # three Outbound Messages of 100 notifications
        post_om(w, members[i:i + 100], "Registered")
    release(w)
    wait(w, lambda: len(w.mk_members(pid)) == n, f"{n} members in Marketo")

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
    cid, pid = pair(w)
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
    hold(w)
    seq = w.sf.ctl("GET", "calls")["next"]
    send(w, [mk_hook(l["id"], e, pid, "Registered", last=f"New{i}")
            for i, (l, e) in enumerate(zip(mk, emails))])
    release(w)
    wait(w, lambda: len(w.members(cid)) == n, f"{n} campaign members in Salesforce")

    no_dead_letters(w)
    got = {m["Email"].lower(): m for m in w.members(cid)}
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
    cid, pid = pair(w)
    good = ["first.good@example.com", "second.good@example.com"]
    bad = "bad\u0001person@example.com"
    mk = w.mk.ctl("POST", "seed", {"leads": [{"email": e} for e in good + [bad]]})["leads"]
    contact = w.sf.ctl("POST", "seed", {"contacts": [{"LastName": "G", "Email": good[0]}]}
                       )["contacts"][0]["Id"]
    w.start()
    w.admin("PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True}, expect=201)
    hold(w)
    seq = w.sf.ctl("GET", "calls")["next"]
    send(w, [mk_hook(mk[0]["id"], None, pid, "Registered"),
            mk_hook(mk[2]["id"], None, pid, "Registered"),
            mk_hook(mk[1]["id"], None, pid, "Registered")])
    release(w)
    dead = cs.wait_until(w.dead_letters, T, what="the dead letter")
    cs.wait_until(lambda: len(w.members(cid)) == 2, T, what="the two good people applied")
    got = {m["Email"]: m for m in w.members(cid)}
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
    cid, pid = pair(w)
    email = "dupe.person@example.com"
    lead = w.mk.ctl("POST", "seed", {"leads": [{"email": email}]})["leads"][0]["id"]
    w.sf.ctl("POST", "config", {"duplicateRuleLead": mode})
    w.sf.ctl("POST", "faults", {"rules": [{"kind": "delay", "method": "POST",
                                           "path": "/composite/sobjects$", "delay_ms": 2000}]})
    w.start()
    w.admin("PUT", f"/v1/mappings/{pid}", {"campaignId": cid, "enabled": True}, expect=201)
    seq = w.sf.ctl("GET", "calls")["next"]
    send(w, [mk_hook(lead, email, pid, "Registered", first="Dee", last="Upe")])
    cs.wait_until(lambda: any(" FROM Lead " in (c["query"].get("q") or "") for c in w.sf.calls(seq)),
                  T, what="the Lead lookup")
    seeded = w.sf.ctl("POST", "seed", {
        "contacts": [{"LastName": "Upe", "Email": "Dupe.Person@Example.com"}],
        "leads": [{"LastName": "Upe", "Company": "Web", "Email": email}]})
    contact, their_lead = seeded["contacts"][0]["Id"], seeded["leads"][0]["Id"]
    wait(w, lambda: w.members(cid), "the campaign member")

    no_dead_letters(w)
    (m,) = w.members(cid)
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
