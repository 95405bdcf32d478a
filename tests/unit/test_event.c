/* event: queue form round trip, removal rule and timestamp forms. */
#include "unit.h"

#include "event.h"

#include <time.h>

static int utc(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static void json_round_trip(void **state) {
    (void)state;
    event ev = {0}, back;
    ev.source = SRC_SALESFORCE;
    ev.type = EV_SF_MEMBER_CHANGED;
    strcpy(ev.id, "04l1I000000fztEQAQ");
    strcpy(ev.campaign_id, "7011I000000abcdQAA");
    strcpy(ev.member_id, "00v1I000000abcdQAA");
    strcpy(ev.sf_lead_id, "00Q1I000000abcdQAA");
    strcpy(ev.email, "ann.lee@example.com");
    strcpy(ev.first_name, "Ann \"Q\" Lee");
    strcpy(ev.status, "Responded");
    strcpy(ev.modified_by, "005000000000002AAA");
    ev.source_ts_ms = 1732870800123;
    ev.received_ms = 1732870801000;
    char *json = event_to_json(&ev);
    assert_non_null(json);
    char err[128];
    assert_int_equal(event_from_json(json, strlen(json), &back, err, sizeof err), 0);
    assert_memory_equal(&ev, &back, sizeof ev);
    /* Absent fields are left out of the queue form. */
    assert_null(strstr(json, "mktoLeadId"));
    assert_non_null(strstr(json, "\"type\":\"campaign_member_changed\""));
    /* Times are plain integers, the form earlier versions queued (cJSON's "%1.15g"). */
    assert_non_null(strstr(json, "\"sourceTs\":1732870800123,\"receivedAt\":1732870801000}"));
    free(json);
}

static void json_rejects_garbage(void **state) {
    (void)state;
    event ev;
    char err[128];
    const char *bad[] = {"[]", "{\"source\":\"x\",\"type\":\"member_removed\"}",
                         "{\"source\":\"marketo\",\"type\":\"nope\"}",
                         "{\"source\":\"marketo\",\"type\":\"member_removed\",\"email\":5}",
                         "{\"source\":\"marketo\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(event_from_json(bad[i], strlen(bad[i]), &ev, err, sizeof err), -1);
    /* A field longer than its buffer is refused, not cut. */
    char big[400];
    snprintf(big, sizeof big,
             "{\"source\":\"marketo\",\"type\":\"member_removed\",\"status\":\"%0300d\"}", 0);
    assert_int_equal(event_from_json(big, strlen(big), &ev, err, sizeof err), -1);
    assert_non_null(strstr(err, "status"));
}

static void removal_rule(void **state) {
    (void)state;
    event ev = {0};
    ev.type = EV_MEMBER_STATUS_CHANGED;
    strcpy(ev.status, "Registered");
    assert_false(event_is_removal(&ev));
    strcpy(ev.status, "Not in Program");
    assert_true(event_is_removal(&ev));
    ev.type = EV_MEMBER_REMOVED;
    assert_true(event_is_removal(&ev));
    ev.type = EV_REMOVE_FROM_CAMPAIGN;
    assert_true(event_is_removal(&ev));
    ev.type = EV_SF_MEMBER_DELETED;
    assert_true(event_is_removal(&ev));
    ev.type = EV_SF_MEMBER_CHANGED; /* a Salesforce status is never a removal */
    assert_false(event_is_removal(&ev));
}

static void time_forms(void **state) {
    (void)state;
    int64_t ms;
    assert_int_equal(event_parse_time("2015-08-14T18:27:02.000Z", &ms), 0);
    assert_true(ms == 1439576822000LL);
    assert_int_equal(event_parse_time("2015-08-14T18:27:02.5Z", &ms), 0);
    assert_true(ms == 1439576822500LL);
    assert_int_equal(event_parse_time("2015-08-14T18:27:02.123456Z", &ms), 0);
    assert_true(ms == 1439576822123LL);
    assert_int_equal(event_parse_time("2015-08-14T20:27:02+02:00", &ms), 0);
    assert_true(ms == 1439576822000LL);
    assert_int_equal(event_parse_time("2015-08-14T13:27:02.000-0500", &ms), 0);
    assert_true(ms == 1439576822000LL);
    /* Marketo asset dates. */
    assert_int_equal(event_parse_time("2015-05-21T22:45:13Z+0000", &ms), 0);
    assert_true(ms == 1432248313000LL);
    /* Marketo {{system.dateTime}}: local time of the account (UTC here). */
    assert_int_equal(event_parse_time("2013-08-08 16:36:13", &ms), 0);
    assert_true(ms == 1375979773000LL);
    assert_int_equal(event_parse_time("2024-02-29T00:00:00Z", &ms), 0);
}

static void time_in_account_zone(void **state) {
    (void)state;
    int64_t ms;
    setenv("TZ", "America/Chicago", 1);
    tzset();
    /* Summer: CDT is UTC-5; winter: CST is UTC-6. */
    assert_int_equal(event_parse_time("2013-08-08 16:36:13", &ms), 0);
    assert_true(ms == 1375979773000LL + 5 * 3600 * 1000LL);
    assert_int_equal(event_parse_time("2013-12-08 16:36:13", &ms), 0);
    assert_true(ms == 1386520573000LL + 6 * 3600 * 1000LL);
    /* An explicit offset is not affected by the zone. */
    assert_int_equal(event_parse_time("2013-08-08T16:36:13Z", &ms), 0);
    assert_true(ms == 1375979773000LL);
    utc(NULL);
}

static void time_rejects(void **state) {
    (void)state;
    int64_t ms;
    const char *bad[] = {"",
                         "yesterday",
                         "2013-08-08",
                         "2013-13-08 16:36:13",
                         "2013-02-30 16:36:13",
                         "2023-02-29T00:00:00Z",
                         "2013-08-08 24:00:00",
                         "2013-08-08 16:36",
                         "2013-08-08T16:36:13X",
                         "2013-08-08T16:36:13Zjunk",
                         "2013-08-08T16:36:13.Z",
                         "2013-08-08T16:36:13+25:00",
                         "1969-12-31T23:59:59Z",
                         "13-08-08 16:36:13"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (event_parse_time(bad[i], &ms) != -1) fail_msg("accepted \"%s\"", bad[i]);
}

static void format_time(void **state) {
    (void)state;
    char buf[32];
    event_format_time(1439576822045LL, buf, sizeof buf);
    assert_string_equal(buf, "2015-08-14T18:27:02.045Z");
}

static void utf8_text(void **state) {
    (void)state;
    assert_true(event_text_ok("plain ASCII, tab\tand newline\n"));
    assert_true(event_text_ok("Zoë Müller — 東京 🎉"));
    assert_false(event_text_ok("\xc3"));             /* truncated */
    assert_false(event_text_ok("\xc0\xaf"));         /* overlong '/' */
    assert_false(event_text_ok("\xed\xa0\x80"));     /* a surrogate */
    assert_false(event_text_ok("\xf4\x90\x80\x80")); /* past U+10FFFF */
    assert_false(event_text_ok("\xff"));
    assert_false(event_text_ok("bell\x07")); /* control character */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_round_trip),      cmocka_unit_test(json_rejects_garbage),
        cmocka_unit_test(removal_rule),         cmocka_unit_test(time_forms),
        cmocka_unit_test(time_in_account_zone), cmocka_unit_test(time_rejects),
        cmocka_unit_test(format_time),          cmocka_unit_test(utf8_text),
    };
    return cmocka_run_group_tests_name("event", tests, utc, NULL);
}
