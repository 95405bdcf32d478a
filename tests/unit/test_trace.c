/* trace: the JSON of a person's trace entry for each outcome. */
#include "unit.h"

#include "trace.h"

#include <cJSON.h>

static event sample(void) {
    event ev;
    memset(&ev, 0, sizeof ev);
    ev.source = SRC_MARKETO;
    ev.type = EV_MEMBER_STATUS_CHANGED;
    snprintf(ev.id, sizeof ev.id, "e:jane-1");
    snprintf(ev.status, sizeof ev.status, "Registered");
    ev.received_ms = 1796655600000LL;
    ev.source_ts_ms = 1796655599000LL;
    return ev;
}

static char *json_of(const trace_record *r) {
    char *s = trace_entry_json(r);
    assert_non_null(s);
    return s;
}

static void applied_names_the_sides_and_the_crm_answer(void **state) {
    (void)state;
    event ev = sample();
    trace_record r = {.at_ms = 1796655600120LL,
                      .ev = &ev,
                      .email = "jane@example.com",
                      .mkto_lead = "4711",
                      .sf_person = "0035g0000000001AAA",
                      .program_id = "1001",
                      .campaign_id = "7015g000000CampAAA",
                      .outcome = TRACE_APPLIED,
                      .to_sf = true,
                      .sf_member = true,
                      .sf_status = "Registered",
                      .cm_id = "00v5g0000000001AAA"};
    char *s = json_of(&r);
    assert_string_equal(
        s, "{\"at\":\"2026-12-07T15:00:00.120Z\",\"receivedAt\":\"2026-12-07T15:00:00.000Z\","
           "\"occurredAt\":\"2026-12-07T14:59:59.000Z\",\"eventId\":\"e:jane-1\","
           "\"source\":\"marketo\",\"type\":\"member_status_changed\",\"status\":\"Registered\","
           "\"programId\":\"1001\",\"campaignId\":\"7015g000000CampAAA\","
           "\"email\":\"jane@example.com\",\"marketoLeadId\":\"4711\","
           "\"salesforceId\":\"0035g0000000001AAA\",\"outcome\":\"applied\","
           "\"appliedTo\":[\"salesforce\"],\"salesforce\":{\"status\":\"Registered\","
           "\"campaignMemberId\":\"00v5g0000000001AAA\",\"personId\":\"0035g0000000001AAA\"}}");
    free(s);
    /* A removal from Marketo. */
    trace_record m = {.at_ms = 1,
                      .ev = &ev,
                      .mkto_lead = "4711",
                      .outcome = TRACE_APPLIED,
                      .to_mkto = true,
                      .mkto_member = false};
    s = json_of(&m);
    assert_non_null(strstr(s, "\"appliedTo\":[\"marketo\"],\"marketo\":{\"removed\":true,"
                              "\"leadId\":\"4711\"}"));
    free(s);
}

static void drops_retries_dead_letters_and_parks(void **state) {
    (void)state;
    event ev = sample();
    trace_record r = {.at_ms = 1, .ev = &ev, .outcome = TRACE_DROPPED, .reason = "stale"};
    char *s = json_of(&r);
    assert_non_null(strstr(s, "\"outcome\":\"dropped\",\"reason\":\"stale\"}"));
    assert_null(strstr(s, "appliedTo"));
    assert_null(strstr(s, "email")); /* empty fields are left out */
    free(s);
    r = (trace_record){.at_ms = 1,
                       .ev = &ev,
                       .outcome = TRACE_RETRY,
                       .attempt = 2,
                       .error = "create campaign member: SERVER_UNAVAILABLE: Service Unavailable"};
    s = json_of(&r);
    assert_non_null(strstr(s, "\"outcome\":\"retry\",\"attempt\":2,\"error\":\"create campaign "
                              "member: SERVER_UNAVAILABLE: Service Unavailable\"}"));
    free(s);
    r = (trace_record){.at_ms = 1,
                       .ev = &ev,
                       .outcome = TRACE_DEAD_LETTER,
                       .attempt = 1,
                       .dead_id = "1795946401234-0",
                       .error = "no counterpart"};
    s = json_of(&r);
    assert_non_null(strstr(s, "\"outcome\":\"dead_letter\",\"attempt\":1,\"deadLetterId\":"
                              "\"1795946401234-0\",\"error\":\"no counterpart\"}"));
    free(s);
    r = (trace_record){
        .at_ms = 1, .ev = &ev, .outcome = TRACE_PARKED, .reason = "mapping_disabled"};
    s = json_of(&r);
    assert_non_null(strstr(s, "\"outcome\":\"parked\",\"reason\":\"mapping_disabled\"}"));
    free(s);
}

static void a_long_error_is_cut_between_characters(void **state) {
    (void)state;
    event ev = sample();
    char error[1000];
    memset(error, 'x', 699);
    memcpy(error + 699, "\xc3\xa9\xc3\xa9", 4); /* é at bytes 699-700 straddles the cut */
    error[703] = '\0';
    trace_record r = {.at_ms = 1, .ev = &ev, .outcome = TRACE_RETRY, .attempt = 1, .error = error};
    char *s = json_of(&r);
    cJSON *o = cJSON_Parse(s);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    assert_true(cJSON_IsString(e));
    assert_int_equal(strlen(e->valuestring), 699);
    cJSON_Delete(o);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(applied_names_the_sides_and_the_crm_answer),
        cmocka_unit_test(drops_retries_dead_letters_and_parks),
        cmocka_unit_test(a_long_error_is_cut_between_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
