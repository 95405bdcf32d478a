/* mkto_webhook: SPEC section 7's template, every field type, and errors naming the field. */
#include "unit.h"

#include "mkto_webhook.h"

#include <time.h>

#define RX 1795946500123LL /* 2026-11-29T10:01:40.123Z */

static mkto_webhook_result parse(const char *json) {
    mkto_webhook_result r;
    mkto_webhook_parse(json, strlen(json), RX, &r);
    return r;
}

static int setup(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static void recommended_template(void **state) {
    (void)state;
    char *json = read_data("marketo/template.json", NULL);
    mkto_webhook_result r = parse(json);
    free(json);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 1);
    const event *e = &r.events[0];
    assert_int_equal(e->source, SRC_MARKETO);
    assert_int_equal(e->type, EV_MEMBER_STATUS_CHANGED);
    assert_string_equal(e->program_id, "1001");
    assert_string_equal(e->mkto_lead_id, "123");
    assert_string_equal(e->email, "ann.lee@example.com");
    assert_string_equal(e->first_name, "Ann");
    assert_string_equal(e->last_name, "Lee");
    assert_string_equal(e->company, "Acme Corp");
    assert_string_equal(e->status, ""); /* no token carries it: read from Marketo later */
    assert_true(e->source_ts_ms == 1795946400000LL);
    assert_true(e->received_ms == RX);
    /* Derived id: stable for the same content, different for other content. */
    assert_int_equal(strncmp(e->id, "d:", 2), 0);
    assert_int_equal(strlen(e->id), 66);
    char first[EV_ID_MAX];
    strcpy(first, e->id);
    mkto_webhook_result_free(&r);
    r = parse("{\"type\":\"member_status_changed\",\"programId\":1001,\"leadId\":123,\"email\":"
              "\"ann.lee@example.com\",\"firstName\":\"Ann\",\"lastName\":\"Lee\",\"company\":"
              "\"Acme Corp\",\"occurredAt\":\"2026-11-29 10:00:00\"}");
    assert_string_equal(r.events[0].id, first);
    mkto_webhook_result_free(&r);
    r = parse("{\"type\":\"member_status_changed\",\"programId\":1001,\"leadId\":123,\"email\":"
              "\"ann.lee@example.com\",\"occurredAt\":\"2026-11-29 10:00:01\"}");
    assert_string_not_equal(r.events[0].id, first);
    mkto_webhook_result_free(&r);
}

static void template_in_account_zone(void **state) {
    (void)state;
    setenv("TZ", "America/Chicago", 1);
    tzset();
    mkto_webhook_result r = parse("{\"type\":\"member_status_changed\",\"programId\":1,"
                                  "\"leadId\":2,\"occurredAt\":\"2026-11-29 04:00:00\"}");
    assert_int_equal(r.status, 0);
    assert_true(r.events[0].source_ts_ms == 1795946400000LL); /* 10:00Z, CST = UTC-6 */
    mkto_webhook_result_free(&r);
    setup(NULL);
}

static void every_type_and_id_form(void **state) {
    (void)state;
    char *json = read_data("marketo/batch_5.json", NULL);
    mkto_webhook_result r = parse(json);
    free(json);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.nevents, 5);
    assert_string_equal(r.events[0].program_id, "1001");
    assert_string_equal(r.events[0].mkto_lead_id, "124");
    assert_string_equal(r.events[0].first_name, "");
    assert_string_equal(r.events[0].last_name, "");
    assert_string_equal(r.events[0].status, "Registered");
    assert_true(r.events[0].source_ts_ms == 1795946405250LL);
    assert_int_equal(r.events[1].type, EV_MEMBER_REMOVED);
    assert_string_equal(r.events[1].id, "e:evt-125-1");
    assert_true(event_is_removal(&r.events[1]));
    assert_true(r.events[1].source_ts_ms == 0); /* receive time rules */
    assert_int_equal(r.events[2].type, EV_ADD_TO_CAMPAIGN);
    assert_string_equal(r.events[2].campaign_id, "7015g000000CampAAA");
    assert_string_equal(r.events[2].program_id, "");
    assert_int_equal(r.events[3].type, EV_CHANGE_CAMPAIGN_STATUS);
    assert_int_equal(r.events[4].type, EV_REMOVE_FROM_CAMPAIGN);
    assert_string_equal(r.events[4].campaign_id, "7015g000000Camp");
    assert_string_equal(r.events[4].id, "e:42");
    mkto_webhook_result_free(&r);
}

static void not_in_program_is_removal(void **state) {
    (void)state;
    mkto_webhook_result r = parse("{\"type\":\"member_status_changed\",\"programId\":1,"
                                  "\"leadId\":2,\"status\":\"Not in Program\"}");
    assert_int_equal(r.status, 0);
    assert_true(event_is_removal(&r.events[0]));
    mkto_webhook_result_free(&r);
}

typedef struct {
    const char *json, *field;
    long index;
    const char *message;
} bad_case;

static void errors_name_field_and_index(void **state) {
    (void)state;
    const bad_case cases[] = {
        {"{\"programId\":1,\"leadId\":2}", "type", -1, "type: is required"},
        {"{\"type\":\"joined\",\"programId\":1,\"leadId\":2}", "type", -1, NULL},
        {"{\"type\":7,\"programId\":1,\"leadId\":2}", "type", -1, NULL},
        {"{\"type\":\"member_status_changed\",\"leadId\":2}", "programId", -1,
         "programId: is required for type member_status_changed"},
        {"{\"type\":\"member_removed\",\"programId\":\"12a\",\"leadId\":2}", "programId", -1, NULL},
        {"{\"type\":\"member_removed\",\"programId\":1.5,\"leadId\":2}", "programId", -1, NULL},
        {"{\"type\":\"member_removed\",\"programId\":-3,\"leadId\":2}", "programId", -1, NULL},
        {"{\"type\":\"add_to_campaign\",\"leadId\":2}", "campaignId", -1,
         "campaignId: is required for type add_to_campaign"},
        {"{\"type\":\"add_to_campaign\",\"campaignId\":\"701\",\"leadId\":2}", "campaignId", -1,
         NULL},
        {"{\"type\":\"member_removed\",\"programId\":1}", "leadId", -1, "leadId: is required"},
        {"{\"type\":\"member_removed\",\"programId\":1,\"leadId\":true}", "leadId", -1, NULL},
        {"{\"type\":\"member_removed\",\"programId\":1,\"leadId\":2,\"email\":5}", "email", -1,
         "email: must be a string or null"},
        {"{\"type\":\"member_removed\",\"programId\":1,\"leadId\":2,\"status\":[]}", "status", -1,
         NULL},
        {"{\"type\":\"member_removed\",\"programId\":1,\"leadId\":2,\"occurredAt\":\"today\"}",
         "occurredAt", -1, NULL},
        {"{\"type\":\"member_removed\",\"programId\":1,\"leadId\":2,\"eventId\":\"a b\"}",
         "eventId", -1, NULL},
        {"{\"type\":\"member_removed\",\"programId\":1,\"leadId\":2,\"eventId\":\"\"}", "eventId",
         -1, NULL},
        {"[{\"type\":\"member_removed\",\"programId\":1,\"leadId\":2},{\"type\":\"member_removed\","
         "\"programId\":1,\"leadId\":3},{\"type\":\"member_removed\",\"programId\":1}]",
         "leadId", 2, "event 2: leadId: is required"},
        {"[1]", "", 0, "event 0: each event must be a JSON object"},
        {"\"hello\"", "", -1, "the body must be an event object or an array of events"},
        {"{\"type\":", "", -1, NULL},
        {"{} trailing", "", -1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mkto_webhook_result r = parse(cases[i].json);
        if (r.status != 400) fail_msg("case %zu accepted: %s", i, cases[i].json);
        assert_string_equal(r.field, cases[i].field);
        assert_int_equal(r.index, cases[i].index);
        if (cases[i].message) assert_string_equal(r.message, cases[i].message);
        assert_null(r.events);
        assert_int_equal(r.nevents, 0);
    }
}

static void limits(void **state) {
    (void)state;
    const char *one = "{\"type\":\"member_removed\",\"programId\":1,\"leadId\":2},";
    size_t n1 = strlen(one);
    char *big = malloc(1001 * n1 + 4);
    for (int count = 1000; count <= 1001; count++) {
        char *p = big;
        *p++ = '[';
        for (int i = 0; i < count; i++, p += n1)
            memcpy(p, one, n1);
        p[-1] = ']';
        *p = '\0';
        mkto_webhook_result r = parse(big);
        if (count == 1000) {
            assert_int_equal(r.status, 0);
            assert_int_equal(r.nevents, 1000);
        } else {
            assert_int_equal(r.status, 400);
            assert_string_equal(r.message, "an array holds at most 1000 events, this one has 1001");
        }
        mkto_webhook_result_free(&r);
    }
    free(big);
    /* Over-long strings are refused by name, never cut. */
    char longer[600];
    snprintf(longer, sizeof longer,
             "{\"type\":\"member_removed\",\"programId\":1,\"leadId\":2,\"company\":\"%0300d\"}",
             0);
    mkto_webhook_result r = parse(longer);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.field, "company");
    mkto_webhook_result r2 = parse("[]");
    assert_int_equal(r2.status, 0);
    assert_int_equal(r2.nevents, 0);
    mkto_webhook_result_free(&r2);
}

static void content_types(void **state) {
    (void)state;
    assert_true(mkto_webhook_content_type_ok("application/json"));
    assert_true(mkto_webhook_content_type_ok("application/json; charset=UTF-8"));
    assert_true(mkto_webhook_content_type_ok("Application/JSON;charset=utf-8"));
    assert_false(mkto_webhook_content_type_ok(NULL));
    assert_false(mkto_webhook_content_type_ok("text/plain"));
    assert_false(mkto_webhook_content_type_ok("application/jsonx"));
    assert_false(mkto_webhook_content_type_ok("application/x-www-form-urlencoded"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recommended_template),
        cmocka_unit_test(template_in_account_zone),
        cmocka_unit_test(every_type_and_id_form),
        cmocka_unit_test(not_in_program_is_removal),
        cmocka_unit_test(errors_name_field_and_index),
        cmocka_unit_test(limits),
        cmocka_unit_test(content_types),
    };
    return cmocka_run_group_tests_name("mkto_webhook", tests, setup, NULL);
}
