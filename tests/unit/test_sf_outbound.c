/* sf_outbound: the public fixtures and our CampaignMember cases in tests/data/salesforce/. */
#include "unit.h"

#include "sf_outbound.h"

#define ORG "00D000000000001AAA"
#define RX  1764410000000LL

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

static int setup(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    sf_outbound_init();
    return 0;
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

static void missing_field_named(void **state) {
    (void)state;
    sf_outbound_result r = parse_file("cm_missing_status.xml", ORG);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.message, "Notification 04l5g0000000001AAA: the CampaignMember has no "
                                   "Status; add it to the Outbound Message's fields");
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

static void bad_ids_and_dates(void **state) {
    (void)state;
    size_t len;
    char *xml = read_data("salesforce/cm_1.xml", &len);
    char *p = strstr(xml, "7015g000000CampAAA");
    memcpy(p, "7015g-00000CampAAA", 18);
    sf_outbound_result r;
    sf_outbound_parse(xml, len, ORG, RX, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "CampaignId is not a 15- or 18-character Salesforce id"));
    memcpy(p, "7015g000000CampAAA", 18);
    p = strstr(xml, "2026-11-29T10:00:01.000Z");
    memcpy(p, "2026-13-29", 10);
    sf_outbound_parse(xml, len, ORG, RX, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "LastModifiedDate"));
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
        cmocka_unit_test(missing_field_named),
        cmocka_unit_test(repeated_field_later_wins),
        cmocka_unit_test(order_of_elements_does_not_matter),
        cmocka_unit_test(last_sobject_and_last_body_count),
        cmocka_unit_test(field_text_includes_nested_text_and_cdata),
        cmocka_unit_test(malformed_and_foreign_xml),
        cmocka_unit_test(dtds_refused),
        cmocka_unit_test(bad_ids_and_dates),
        cmocka_unit_test(ack_and_fault_bytes),
    };
    int rc = cmocka_run_group_tests_name("sf_outbound", tests, setup, NULL);
    sf_outbound_cleanup();
    return rc;
}
