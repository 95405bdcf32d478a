/* sf_outbound: the public fixtures and our CampaignMember cases in tests/data/salesforce/. */
#include "unit.h"

#include "sf_outbound.h"

#define ORG "00D000000000001AAA"
#define RX  1796000000000LL /* 2026-11-30T00:53:20Z, after every fixture's change */

static sf_outbound_result parse_file(const char *name, const char *org) {
    char path[256];
    snprintf(path, sizeof path, "salesforce/%s", name);
    size_t len;
    char *xml = read_data(path, &len);
    sf_outbound_result r;
    sf_outbound_parse(xml, len, org, RX, &r);
    free(xml);
    return r;
}

/* A dead letter's event has a queue form that parses back to the same bytes. */
static void check_queue_form(const event *e) {
    char *j = event_to_json(e);
    event back;
    char err[128];
    assert_int_equal(event_from_json(j, strlen(j), &back, err, sizeof err), 0);
    char *j2 = event_to_json(&back);
    assert_string_equal(j, j2);
    free(j);
    free(j2);
}

static int setup(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    return sf_outbound_init();
}

static void one_notification(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_1.xml", ORG);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 1);
    assert_int_equal(r.nempty, 0);
    const event *e = &r.events[0];
    assert_int_equal(e->source, SRC_SALESFORCE);
    assert_int_equal(e->type, EV_SF_MEMBER_CHANGED);
    assert_string_equal(e->id, "04l5g0000000001AAA");
    assert_string_equal(e->member_id, "00v5g0000000001AAA");
    assert_string_equal(e->campaign_id, "7015g000000CampAAA");
    assert_string_equal(e->sf_lead_id, "00Q5g0000000001AAA");
    assert_string_equal(e->sf_contact_id, "");
    assert_string_equal(e->status, "Responded");
    assert_string_equal(e->email, "person1@example.com");
    assert_string_equal(e->first_name, "First1");
    assert_string_equal(e->last_name, "Last1");
    assert_string_equal(e->company, "Acme & Sons"); /* entity decoded */
    assert_string_equal(e->modified_by, "005000000000002AAA");
    assert_true(e->source_ts_ms == 1795946401000LL); /* 2026-11-29T10:00:01.000Z */
    assert_true(e->received_ms == RX);
    sf_outbound_result_free(&r);
}

static void three_notifications_in_order(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_3.xml", ORG);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 3);
    assert_string_equal(r.events[0].status, "Sent");
    assert_string_equal(r.events[1].sf_contact_id, "0035g0000000002AAA");
    assert_string_equal(r.events[1].sf_lead_id, "");
    assert_string_equal(r.events[2].email, ""); /* field left out = unknown */
    assert_string_equal(r.events[2].id, "04l5g0000000003AAA");
    sf_outbound_result_free(&r);
}

static void hundred_and_over(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_100.xml", ORG);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 100);
    assert_string_equal(r.events[99].id, "04l5g0000000100AAA");
    sf_outbound_result_free(&r);
    r = parse_file("cm_101.xml", ORG);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "1 to 100 Notification"));
    assert_null(r.events);
}

static void prefixes_do_not_matter_namespaces_do(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_other_prefixes.xml", ORG);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 1);
    assert_string_equal(r.events[0].status, "Attended");
    assert_string_equal(r.events[0].sf_contact_id, "0035g0000000042AAA");
    assert_true(r.events[0].source_ts_ms == 1795946400000LL);
    sf_outbound_result_free(&r);
    r = parse_file("cm_wrong_ns.xml", ORG);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "not a Salesforce Outbound Message"));
}

static void org_id_first_15(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_org15.xml", ORG); /* 15-char form in the message */
    assert_int_equal(r.status, 0);
    sf_outbound_result_free(&r);
    r = parse_file("cm_1.xml", "00D000000000001XYZ"); /* 18-char forms differ only at the end */
    assert_int_equal(r.status, 0);
    sf_outbound_result_free(&r);
    r = parse_file("cm_wrong_org.xml", ORG);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.message,
                        "OrganizationId 00D999999999999AAA does not match this service's "
                        "SF_ORG_ID");
}

static void wrong_sobject_type_named(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_wrong_type.xml", ORG);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "sObject type sf:Contact is not CampaignMember"));
    /* The public fixtures: a Contact message (and its org) and edited Lead types. */
    r = parse_file("aspnet-WebHooks__AspNetCore.FunctionalTest__RequestBodies__Salesforce.xml",
                   "012345678901234");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "04l1I000000fztEQAQ: sObject type sf:Contact"));
    r = parse_file("aspnet-WebHooks__AspNetCore.FunctionalTest__RequestBodies__Salesforce.xml",
                   ORG);
    assert_int_equal(r.status, 403);
    r = parse_file("aspnet-WebHooks__AspNet.Receivers.Salesforce.Test__Messages__"
                   "OutboundMessage1.xml",
                   "0123456789ABCDENNN");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "sf:Lead1"));
    r = parse_file("ejangi-salesforce-outbound-msg-to-hangouts-chat__index.test.js.xml",
                   "00D7F00000107XsUAI");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "sf:Opportunity"));
}

static void empty_record_counted_not_queued(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_empty_record.xml", ORG);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 1);
    assert_int_equal(r.nempty, 1);
    sf_outbound_result_free(&r);
}

static void missing_field_dead_lettered(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_missing_status.xml", ORG);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 0);
    assert_int_equal(r.ndead, 1);
    assert_string_equal(r.dead[0].reason, "Notification 04l5g0000000001AAA: the CampaignMember "
                                          "has no Status; add it to the Outbound Message's fields");
    /* What could be read comes with it. */
    const event *e = &r.dead[0].ev;
    assert_string_equal(e->id, "04l5g0000000001AAA");
    assert_int_equal(e->source, SRC_SALESFORCE);
    assert_int_equal(e->type, EV_SF_MEMBER_CHANGED);
    assert_string_equal(e->member_id, "00v5g0000000001AAA");
    assert_string_equal(e->status, "");
    assert_true(e->received_ms == RX);
    sf_outbound_result_free(&r);
}

/* Found by fuzzing: Salesforce never repeats a field, but when a body does, the later value
 * wins and the queue form round-trips (the earlier, longer value leaves no trace). */
static void repeated_field_later_wins(void **state) {
    (void)state;
    size_t len;
    char *xml = read_data("salesforce/cm_1.xml", &len);
    const char *one = "<sf:Email>person1@example.com</sf:Email>";
    char *at = strstr(xml, one);
    assert_non_null(at);
    const char *two = "<sf:Email>a-much-longer-address@example.com</sf:Email>"
                      "<sf:Email>person1@example.com</sf:Email>";
    char *body = malloc(len + strlen(two));
    size_t head = (size_t)(at - xml);
    memcpy(body, xml, head);
    strcpy(body + head, two);
    strcat(body, at + strlen(one));
    sf_outbound_result r;
    sf_outbound_parse(body, strlen(body), ORG, RX, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 1);
    assert_string_equal(r.events[0].email, "person1@example.com");
    char *j = event_to_json(&r.events[0]);
    event back;
    char err[128];
    assert_int_equal(event_from_json(j, strlen(j), &back, err, sizeof err), 0);
    char *j2 = event_to_json(&back);
    assert_string_equal(j, j2);
    free(j);
    free(j2);
    free(body);
    free(xml);
    sf_outbound_result_free(&r);
}

/* A message built from parts, for the cases the fixtures do not show. */
#define ENV_OPEN                                                                                   \
    "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\" "                           \
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
#define NOTIFS_OPEN "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">"
#define ORG_EL      "<OrganizationId>" ORG "</OrganizationId>"
#define SOBJ(fields)                                                                               \
    "<sObject xsi:type=\"sf:CampaignMember\" "                                                     \
    "xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">" fields "</sObject>"
#define MEMBER(status)                                                                             \
    "<sf:Id>00v5g0000000001AAA</sf:Id><sf:CampaignId>7015g000000CampAAA</sf:CampaignId>"           \
    "<sf:LeadId>00Q5g0000000001AAA</sf:LeadId><sf:Status>" status "</sf:Status>"

static sf_outbound_result parse_str(const char *xml) {
    sf_outbound_result r;
    sf_outbound_parse(xml, strlen(xml), ORG, RX, &r);
    return r;
}

static void order_of_elements_does_not_matter(void **state) {
    (void)state;
    /* The Id after the sObject; OrganizationId after the Notification. */
    sf_outbound_result r = parse_str(ENV_OPEN "<e:Body>" NOTIFS_OPEN "<Notification>" SOBJ(
        MEMBER("Sent")) "<Id>04l5g0000000001AAA</Id></Notification>" ORG_EL
                        "</notifications></e:Body></e:Envelope>");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 1);
    assert_string_equal(r.events[0].id, "04l5g0000000001AAA");
    assert_string_equal(r.events[0].status, "Sent");
    sf_outbound_result_free(&r);
    /* The org is judged before the notifications, wherever it stands. */
    r = parse_str(ENV_OPEN "<e:Body>" NOTIFS_OPEN "<Notification><Id>bad</Id></Notification>"
                           "<OrganizationId>00D999999999999AAA</OrganizationId>"
                           "</notifications></e:Body></e:Envelope>");
    assert_int_equal(r.status, 403);
}

static void last_sobject_and_last_body_count(void **state) {
    (void)state;
    sf_outbound_result r =
        parse_str(ENV_OPEN "<e:Body><x/></e:Body><e:Body>" NOTIFS_OPEN ORG_EL
                           "<Notification><Id>04l5g0000000001AAA</Id>" SOBJ(MEMBER("Sent"))
                               SOBJ(MEMBER("Responded")) "</Notification></notifications></e:Body>"
                                                         "</e:Envelope>");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.events[0].status, "Responded");
    sf_outbound_result_free(&r);
    /* A Body whose first element is not notifications, after a good one. */
    r = parse_str(
        ENV_OPEN "<e:Body>" NOTIFS_OPEN ORG_EL "<Notification><Id>04l5g0000000001AAA</Id>" SOBJ(
            MEMBER("Sent")) "</Notification></notifications></e:Body><e:Body><x/></e:Body>"
                            "</e:Envelope>");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "holds no notifications element"));
}

static void field_text_includes_nested_text_and_cdata(void **state) {
    (void)state;
    sf_outbound_result r = parse_str(
        ENV_OPEN "<e:Body>" NOTIFS_OPEN ORG_EL "<Notification><Id> 04l5g0000000001AAA </Id>" SOBJ(
            MEMBER("Re<b>spond</b>ed") "<sf:Email> <![CDATA[a&b]]>@x.org </sf:Email>"
                                       "<sf:FirstName xsi:nil=\"true\"/>") "</Notification></"
                                                                           "notifications></"
                                                                           "e:Body></e:Envelope>");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.events[0].id, "04l5g0000000001AAA");
    assert_string_equal(r.events[0].status, "Responded");
    assert_string_equal(r.events[0].email, "a&b@x.org");
    assert_string_equal(r.events[0].first_name, "");
    sf_outbound_result_free(&r);
}

static void malformed_and_foreign_xml(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_malformed.xml", ORG);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "not well-formed XML"));
    r = parse_file("not_soap.xml", ORG);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "not a SOAP 1.1 Envelope"));
    sf_outbound_parse("", 0, ORG, RX, &r);
    assert_int_equal(r.status, 400);
    const char *json = "{\"not\":\"xml\"}";
    sf_outbound_parse(json, strlen(json), ORG, RX, &r);
    assert_int_equal(r.status, 400);
}

static void dtds_refused(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("xxe.xml", ORG);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.message, "DOCTYPE declarations are not accepted");
    r = parse_file("entity_bomb.xml", ORG);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.message, "DOCTYPE declarations are not accepted");
}

/* cm_1.xml with one text replaced (same length or not), parsed. */
static sf_outbound_result parse_edited(const char *from, const char *to) {
    size_t len;
    char *xml = read_data("salesforce/cm_1.xml", &len);
    char *at = strstr(xml, from);
    assert_non_null(at);
    char *body = malloc(len + strlen(to) + 1);
    size_t head = (size_t)(at - xml);
    memcpy(body, xml, head);
    strcpy(body + head, to);
    strcat(body, at + strlen(from));
    sf_outbound_result r;
    sf_outbound_parse(body, strlen(body), ORG, RX, &r);
    free(body);
    free(xml);
    return r;
}

/* The one notification of the edited cm_1.xml is a dead letter with this reason. */
static void assert_dead(const char *from, const char *to, const char *reason) {
    sf_outbound_result r = parse_edited(from, to);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 0);
    assert_int_equal(r.nempty, 0);
    assert_int_equal(r.ndead, 1);
    assert_string_equal(r.dead[0].reason, reason);
    assert_string_equal(r.dead[0].ev.id, "04l5g0000000001AAA");
    check_queue_form(&r.dead[0].ev);
    sf_outbound_result_free(&r);
}

static void bad_fields_dead_lettered_with_the_reason(void **state) {
    (void)state;
    assert_dead("7015g000000CampAAA", "7015g-00000CampAAA",
                "Notification 04l5g0000000001AAA: CampaignId \"7015g-00000CampAAA\" is not a "
                "15- or 18-character Salesforce id");
    assert_dead("<sf:LeadId>00Q5g0000000001AAA", "<sf:LeadId>00Q5g0000000001AAAA",
                "Notification 04l5g0000000001AAA: LeadId \"00Q5g0000000001AAAA\" is not a 15- "
                "or 18-character Salesforce id");
    assert_dead("2026-11-29T10:00:01.000Z", "2026-13-29T10:00:01.000Z",
                "Notification 04l5g0000000001AAA: LastModifiedDate \"2026-13-29T10:00:01.000Z\" "
                "is not a date-time");
    char email[400] = "<sf:Email>";
    memset(email + 10, 'a', 300);
    strcpy(email + 310, "@x.org</sf:Email>");
    assert_dead("<sf:Email>person1@example.com</sf:Email>", email,
                "Notification 04l5g0000000001AAA: Email is longer than 255 bytes");
    /* A member of an Account: no CampaignId (not in the fields), no Lead, no Contact. */
    assert_dead("<sf:CampaignId>7015g000000CampAAA</sf:CampaignId>", "",
                "Notification 04l5g0000000001AAA: the CampaignMember has no CampaignId; add it "
                "to the Outbound Message's fields");
    assert_dead("<sf:LeadId>00Q5g0000000001AAA</sf:LeadId>",
                "<sf:AccountId>0015g0000000001AAA</sf:AccountId>",
                "Notification 04l5g0000000001AAA: the CampaignMember has neither LeadId nor "
                "ContactId; only Lead and Contact members are synced (if the Outbound Message "
                "lacks these fields, add both)");
    /* The value shown is cut on a character boundary. */
    sf_outbound_result r =
        parse_edited("7015g000000CampAAA", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_int_equal(r.ndead, 1);
    assert_true(event_text_ok(r.dead[0].reason));
    assert_non_null(strstr(r.dead[0].reason, "CampaignId \"\xc3\xa9"));
    sf_outbound_result_free(&r);
}

static void future_date_dead_lettered(void **state) {
    (void)state;
    /* RX + 5 minutes is still a change; a millisecond later is not. */
    sf_outbound_result r = parse_edited("2026-11-29T10:00:01.000Z", "2026-11-30T00:58:20.000Z");
    assert_int_equal(r.nevents, 1);
    assert_int_equal(r.ndead, 0);
    sf_outbound_result_free(&r);
    assert_dead("2026-11-29T10:00:01.000Z", "2026-11-30T00:58:20.001Z",
                "Notification 04l5g0000000001AAA: LastModifiedDate 2026-11-30T00:58:20.001Z is "
                "more than 5 minutes after the message arrived (2026-11-30T00:53:20.000Z); not "
                "queued: a change dated in the future would make this member's real changes "
                "look stale (a forged message, or a clock far off)");
    /* The forged message of issue 17: the rest of it is stored. */
    r = parse_file("cm_future_date.xml", ORG);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 1);
    assert_string_equal(r.events[0].id, "04l5g0000000001AAA");
    assert_int_equal(r.ndead, 1);
    assert_string_equal(r.dead[0].ev.id, "04l5g0000000002AAA");
    assert_non_null(strstr(r.dead[0].reason, "LastModifiedDate 9999-12-31T23:59:59.000Z is more "
                                             "than 5 minutes after"));
    assert_true(r.dead[0].ev.source_ts_ms == 253402300799000LL);
    sf_outbound_result_free(&r);
}

/* Issue 16: five notifications, #3 a member of an Account without CampaignId, #4 only the
 * record Id (deleted before delivery). */
static void one_unusable_notification_does_not_sink_the_message(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_5_one_unusable.xml", ORG);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 3);
    assert_string_equal(r.events[0].id, "04l5g0000000001AAA");
    assert_string_equal(r.events[1].id, "04l5g0000000002AAA");
    assert_string_equal(r.events[2].id, "04l5g0000000005AAA");
    assert_int_equal(r.nempty, 1);
    assert_int_equal(r.ndead, 1);
    assert_string_equal(r.dead[0].reason, "Notification 04l5g0000000003AAA: the CampaignMember "
                                          "has no CampaignId; add it to the Outbound Message's "
                                          "fields");
    const event *e = &r.dead[0].ev;
    assert_string_equal(e->id, "04l5g0000000003AAA");
    assert_string_equal(e->member_id, "00v5g0000000003AAA");
    assert_string_equal(e->status, "Sent");
    assert_string_equal(e->company, "Acme & Sons");
    assert_true(e->source_ts_ms == 1795946403000LL);
    sf_outbound_result_free(&r);
}

/* Deleted before delivery: no sObject data, whatever form Salesforce gives it. */
static void record_without_data_is_empty_in_every_form(void **state) {
    (void)state;
    const char *forms[] = {
        "<sObject xsi:type=\"sf:CampaignMember\" "
        "xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"/>",
        SOBJ(""),
        SOBJ("<sf:Id>00v5g0000000001AAA</sf:Id>"),
        SOBJ("<sf:Id>00v5g0000000001AAA</sf:Id><sf:Status xsi:nil=\"true\"/>"),
        "<sObject xsi:nil=\"true\"/>",
        "",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char xml[1024];
        snprintf(xml, sizeof xml,
                 ENV_OPEN "<e:Body>" NOTIFS_OPEN ORG_EL
                          "<Notification><Id>04l5g0000000001AAA</Id>%s</Notification>"
                          "</notifications></e:Body></e:Envelope>",
                 forms[i]);
        sf_outbound_result r = parse_str(xml);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.nempty, 1);
        assert_int_equal(r.nevents + r.ndead, 0);
        sf_outbound_result_free(&r);
    }
}

static sf_outbound_result parse_org(const char *org_id) {
    char xml[1024];
    snprintf(xml, sizeof xml,
             ENV_OPEN "<e:Body>" NOTIFS_OPEN "<OrganizationId>%s</OrganizationId>"
                      "<Notification><Id>04l5g0000000001AAA</Id>" SOBJ(
                          MEMBER("Sent")) "</Notification></notifications></e:Body></e:Envelope>",
             org_id);
    return parse_str(xml);
}

/* Issue 17: the org id is a 15- or 18-character id and nothing more. */
static void org_id_exact(void **state) {
    (void)state;
    const char *ok[] = {"00D000000000001AAA", "00D000000000001", "00D000000000001XYZ",
                        " 00D000000000001AAA\n"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        sf_outbound_result r = parse_org(ok[i]);
        assert_int_equal(r.status, 0);
        assert_string_equal(r.org_id, i == 1   ? "00D000000000001"
                                      : i == 2 ? "00D000000000001XYZ"
                                               : "00D000000000001AAA");
        sf_outbound_result_free(&r);
    }
    const char *bad[] = {"00D000000000001AAAjunk", "00D000000000001AAAA",
                         "00D000000000001A",       "00D000000000001 AAA",
                         "00d000000000001AAA",     "00D00000000000",
                         "00D000000000001AA-",     "00D000000000001AAA.00D000000000001AAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sf_outbound_result r = parse_org(bad[i]);
        assert_int_equal(r.status, 403);
        assert_null(r.events);
    }
    sf_outbound_result r = parse_file("cm_org_trailing_junk.xml", ORG);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.message, "OrganizationId 00D000000000001AAAjunk does not match this "
                                   "service's SF_ORG_ID");
    char long_org[200];
    memset(long_org, 'A', 199);
    long_org[199] = '\0';
    r = parse_org(long_org);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.message, "AAA... does not match"));
}

/* The pre-scan's refusal of a body made of head, n times unit, and tail. */
static sf_outbound_result parse_repeated(const char *head, const char *unit, size_t n,
                                         const char *tail) {
    size_t len = strlen(head) + n * strlen(unit) + strlen(tail);
    char *xml = malloc(len + 1);
    strcpy(xml, head);
    char *p = xml + strlen(head);
    for (size_t i = 0; i < n; i++, p += strlen(unit))
        memcpy(p, unit, strlen(unit));
    strcpy(p, tail);
    sf_outbound_result r;
    sf_outbound_parse(xml, len, ORG, RX, &r);
    free(xml);
    return r;
}

/* A cm_1.xml whose Envelope carries n more attributes (" aN=\"\"") is refused before parsing
 * past the limit; what it takes to get there is below it. */
static void attributes_counted_before_parsing(void **state) {
    (void)state;
    size_t len;
    char *xml = read_data("salesforce/cm_1.xml", &len);
    char *gt = strstr(xml, "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"") + 53;
    for (int extra = 28; extra <= 30; extra++) { /* the Envelope declares 3 namespaces */
        char *body = malloc(len + 16 * (size_t)extra);
        size_t head = (size_t)(gt - xml);
        memcpy(body, xml, head);
        char *p = body + head;
        for (int i = 0; i < extra; i++)
            p += sprintf(p, " a%d=''", i);
        strcpy(p, gt);
        sf_outbound_result r;
        sf_outbound_parse(body, strlen(body), ORG, RX, &r);
        if (extra <= 29) {
            assert_int_equal(r.status, 0);
            assert_int_equal(r.nevents, 1);
            sf_outbound_result_free(&r);
        } else {
            assert_int_equal(r.status, 400);
            assert_string_equal(r.message, "the XML is refused before parsing: an element has "
                                           "more than 32 attributes (line 2)");
        }
        free(body);
    }
    free(xml);
    /* The attack of issue 17: 90,000 attributes. */
    sf_outbound_result r = parse_repeated("<e:Envelope xmlns:e='" SOAP_ENV_NS "'", " a=''", 90000,
                                          "><e:Body/></e:Envelope>");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.message, "the XML is refused before parsing: an element has more than "
                                   "32 attributes (line 1)");
}

/* Constructs libxml2 may give up on and go on parsing as content: what follows them is
 * counted as if they were not there. */
static void attributes_counted_behind_every_construct(void **state) {
    (void)state;
    const char *around[][2] = {
        {"<!-- \x01 ", " -->"},      /* an invalid character ends libxml2's comment */
        {"<? ", " ?>"},              /* a processing instruction without a target */
        {"<?pi \x01 ", " ?>"},       /* an invalid character in a processing instruction */
        {"<![CDATA[ \x01 ", " ]]>"}, /* an invalid character in a CDATA section */
        {"<a b=\"c\" \"", "\">"},    /* a quote out of place */
        {"<a b=\"", "\">"},          /* '<' cannot be in an attribute value */
        {"<a b='x' c='y'd='z'", ""}, /* no space between attributes */
        {"<!x ", ">"},               /* a declaration that is none */
    };
    for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
        char head[160];
        snprintf(head, sizeof head, "<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body>%s<x",
                 around[i][0]);
        char tail[160];
        snprintf(tail, sizeof tail, "/>%s</e:Body></e:Envelope>", around[i][1]);
        sf_outbound_result r = parse_repeated(head, " a=''", 33, tail);
        assert_int_equal(r.status, 400);
        assert_string_equal(r.message, "the XML is refused before parsing: an element has more "
                                       "than 32 attributes (line 1)");
    }
    /* Namespace declarations are attributes too. */
    sf_outbound_result r = parse_repeated("<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body><x",
                                          " xmlns:p='u'", 33, "/></e:Body></e:Envelope>");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.message, "the XML is refused before parsing: an element has more than "
                                   "32 attributes (line 1)");
}

static void names_texts_and_depth_bounded(void **state) {
    (void)state;
    char name[300];
    memset(name, 'n', 257);
    name[257] = '\0';
    char xml[1200];
    snprintf(xml, sizeof xml,
             "<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body><%s/></e:Body></e:Envelope>", name);
    sf_outbound_result r = parse_str(xml);
    assert_string_equal(
        r.message, "the XML is refused before parsing: a name is longer than 256 bytes (line 1)");
    snprintf(xml, sizeof xml,
             "<e:Envelope xmlns:e='" SOAP_ENV_NS "'>\n<e:Body><x %s=''/></e:Body></e:Envelope>",
             name);
    r = parse_str(xml);
    assert_string_equal(
        r.message, "the XML is refused before parsing: a name is longer than 256 bytes (line 2)");
    name[256] = '\0'; /* at the limit: parsed (and then not an Outbound Message) */
    snprintf(xml, sizeof xml,
             "<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body><%s/></e:Body></e:Envelope>", name);
    r = parse_str(xml);
    assert_non_null(strstr(r.message, "holds no notifications element"));

    r = parse_repeated("<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body><x>", "a", 65537,
                       "</x></e:Body></e:Envelope>");
    assert_string_equal(r.message, "the XML is refused before parsing: a text is longer than 65536 "
                                   "bytes (line 1)");
    r = parse_repeated("<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body><x><![CDATA[", "a", 65537,
                       "]]></x></e:Body></e:Envelope>");
    assert_non_null(strstr(r.message, "a text is longer than 65536 bytes"));
    r = parse_repeated("<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body><x a='", "a", 65537,
                       "'/></e:Body></e:Envelope>");
    assert_string_equal(r.message, "the XML is refused before parsing: an attribute value is "
                                   "longer than 65536 bytes (line 1)");

    /* Envelope and Body are 2 levels: 30 more are allowed, 31 are not. */
    r = parse_repeated("<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body>", "<x>", 31, "");
    assert_string_equal(r.message, "the XML is refused before parsing: elements are nested deeper "
                                   "than 32 (line 1)");
    r = parse_repeated("<e:Envelope xmlns:e='" SOAP_ENV_NS "'><e:Body>", "<x/><y></y>", 1000,
                       "</e:Body></e:Envelope>");
    assert_non_null(strstr(r.message, "holds no notifications element"));
}

static void encoding_is_utf8_whatever_is_declared(void **state) {
    (void)state;
    sf_outbound_result r = parse_edited("<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                                        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>");
    assert_int_equal(r.status, 0);
    sf_outbound_result_free(&r);
    r = parse_edited("<sf:FirstName>First1", "<sf:FirstName>Z\xc3\xa9");
    assert_string_equal(r.events[0].first_name, "Z\xc3\xa9");
    sf_outbound_result_free(&r);
    /* Declared Latin-1, read as UTF-8: the same letter. */
    size_t len;
    char *xml = read_data("salesforce/cm_1.xml", &len);
    char *body = malloc(len + 64);
    snprintf(body, len + 64, "%s", xml);
    char *decl = strstr(body, "UTF-8");
    memcpy(decl, "latin", 5);
    char *name = strstr(body, "First1");
    memcpy(name, "Z\xc3\xa9\x20\x20\x20", 6);
    sf_outbound_parse(body, strlen(body), ORG, RX, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.events[0].first_name, "Z\xc3\xa9");
    sf_outbound_result_free(&r);
    /* EBCDIC declared over ASCII bytes: libxml2 would switch to it after the declaration. */
    r = parse_edited("<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                     "<?xml version=\"1.0\" encoding=\"IBM037\"?>");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.events[0].status, "Responded");
    sf_outbound_result_free(&r);
    /* A body whose first bytes say UTF-16, UCS-4 or EBCDIC is refused before parsing. */
    const char *other[] = {"\xff\xfe<\0e\0:\0E\0/\0>\0",
                           "\xfe\xff\0<\0e",
                           "<\0?\0x\0m\0l\0",
                           "\0<\0?\0x\0m",
                           "<\0\0\0",
                           "\x4c\x6f\xa7\x94\x89"};
    const size_t other_len[] = {14, 6, 10, 10, 4, 5};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        sf_outbound_parse(other[i], other_len[i], ORG, RX, &r);
        assert_int_equal(r.status, 400);
        assert_string_equal(r.message,
                            "the body is not UTF-8 (Salesforce sends Outbound Messages in UTF-8)");
    }
    free(body);
    free(xml);
}

static void ack_and_fault_bytes(void **state) {
    (void)state;
    size_t len;
    const char *ack = sf_outbound_ack(&len);
    assert_string_equal(ack, "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
                             "envelope/\"><soapenv:Body><notificationsResponse xmlns=\"http://"
                             "soap.sforce.com/2005/09/outbound\"><Ack>true</Ack></"
                             "notificationsResponse></soapenv:Body></soapenv:Envelope>");
    assert_int_equal(len, strlen(ack));
    const char *ct;
    char *f = sf_outbound_fault(400, "bad_request", "a <b> & \"c\"", &ct, &len);
    assert_string_equal(ct, "text/xml; charset=utf-8");
    assert_string_equal(f, "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
                           "envelope/\"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Client"
                           "</faultcode><faultstring>a &lt;b&gt; &amp; &quot;c&quot;"
                           "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>");
    free(f);
    f = sf_outbound_fault(503, "unavailable", "later", &ct, &len);
    assert_non_null(strstr(f, "<faultcode>soapenv:Server</faultcode>"));
    free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_notification),
        cmocka_unit_test(three_notifications_in_order),
        cmocka_unit_test(hundred_and_over),
        cmocka_unit_test(prefixes_do_not_matter_namespaces_do),
        cmocka_unit_test(org_id_first_15),
        cmocka_unit_test(wrong_sobject_type_named),
        cmocka_unit_test(empty_record_counted_not_queued),
        cmocka_unit_test(missing_field_dead_lettered),
        cmocka_unit_test(repeated_field_later_wins),
        cmocka_unit_test(order_of_elements_does_not_matter),
        cmocka_unit_test(last_sobject_and_last_body_count),
        cmocka_unit_test(field_text_includes_nested_text_and_cdata),
        cmocka_unit_test(malformed_and_foreign_xml),
        cmocka_unit_test(dtds_refused),
        cmocka_unit_test(bad_fields_dead_lettered_with_the_reason),
        cmocka_unit_test(future_date_dead_lettered),
        cmocka_unit_test(one_unusable_notification_does_not_sink_the_message),
        cmocka_unit_test(record_without_data_is_empty_in_every_form),
        cmocka_unit_test(org_id_exact),
        cmocka_unit_test(attributes_counted_before_parsing),
        cmocka_unit_test(attributes_counted_behind_every_construct),
        cmocka_unit_test(names_texts_and_depth_bounded),
        cmocka_unit_test(encoding_is_utf8_whatever_is_declared),
        cmocka_unit_test(ack_and_fault_bytes),
    };
    int rc = cmocka_run_group_tests_name("sf_outbound", tests, setup, NULL);
    sf_outbound_cleanup();
    return rc;
}
