/* dead_filter: the filter of the dead-letter list and bulk replay (issue 21): its fields and
 * their refusals, the kinds of reason (from the texts plan.c and the worker write), the match
 * of a listed dead letter, and the cursor. */
#include "unit.h"

#include "dead_filter.h"

#include <time.h>

static int utc(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static void kinds_from_the_texts(void **state) {
    (void)state;
    /* plan.c, F11 both ways */
    assert_int_equal(dead_filter_classify("Salesforce campaign 7015g000000CampAAA status "
                                          "\"Responded\" has no counterpart in Marketo program "
                                          "1001: add the status ...",
                                          false),
                     DEAD_UNKNOWN_STATUS);
    assert_int_equal(dead_filter_classify("Marketo program 1001 status \"No Show\" has no "
                                          "counterpart in Salesforce campaign 701...",
                                          false),
                     DEAD_UNKNOWN_STATUS);
    /* worker_write_sf.c: the CRM itself does not know the status */
    assert_int_equal(dead_filter_classify("Salesforce campaign 701 has no member status "
                                          "\"Sent\" for Marketo program 1001 status ...",
                                          false),
                     DEAD_UNKNOWN_STATUS);
    assert_int_equal(dead_filter_classify("Marketo program 1001 has no status \"Sent\" for "
                                          "Salesforce campaign ...",
                                          false),
                     DEAD_UNKNOWN_STATUS);
    assert_int_equal(dead_filter_classify("gave up after 10 attempts: salesforce: HTTP 503", false),
                     DEAD_GAVE_UP);
    /* A retried F11 text is still a give-up: that is what the operator must look at. */
    assert_int_equal(
        dead_filter_classify("gave up after 3 attempts: x has no counterpart in y", false),
        DEAD_GAVE_UP);
    assert_int_equal(dead_filter_classify("campaign 701 has no default member status (or does "
                                          "not exist)",
                                          false),
                     DEAD_REFUSED);
    assert_int_equal(
        dead_filter_classify("Marketo skipped lead 5 in program 1001 (reason 1004)", false),
        DEAD_REFUSED);
    assert_int_equal(dead_filter_classify("anything", true), DEAD_UNUSABLE);
    assert_int_equal(dead_filter_classify(NULL, false), DEAD_REFUSED);
    assert_string_equal(dead_kind_name(DEAD_UNKNOWN_STATUS), "unknown_status");
    assert_string_equal(dead_kind_name(DEAD_GAVE_UP), "gave_up");
    assert_string_equal(dead_kind_name(DEAD_UNUSABLE), "unusable");
    assert_string_equal(dead_kind_name(DEAD_REFUSED), "refused");
    assert_string_equal(dead_kind_name(DEAD_ANY), "");
}

static char err[600];

static int from_json(dead_filter *f, const char *body) {
    dead_filter_init(f);
    err[0] = '\0';
    return dead_filter_from_json(f, body, strlen(body), err, sizeof err);
}

#define ASSERT_REFUSED(body, words)                                                                \
    do {                                                                                           \
        dead_filter f_;                                                                            \
        if (from_json(&f_, (body)) == 0) fail_msg("%s accepted", (body));                          \
        if (!strstr(err, (words))) fail_msg("%s: \"%s\" lacks \"%s\"", (body), err, (words));      \
    } while (0)

static void replay_body_fields(void **state) {
    (void)state;
    dead_filter f;
    assert_int_equal(from_json(&f, ""), 0);
    assert_false(dead_filter_narrows(&f));
    assert_int_equal(f.limit, 100);
    assert_false(f.dry_run || f.has_cursor);
    assert_int_equal(from_json(&f, "{}"), 0);
    assert_false(dead_filter_narrows(&f));
    assert_int_equal(
        from_json(
            &f,
            "{\"programId\": \"1001\", \"campaignId\": \"7015g000000CampAAA\", "
            "\"reason\": \"unknown_status\", \"errorContains\": \"No Show\", "
            "\"from\": \"2026-11-29T10:00:00Z\", \"to\": \"2026-11-29T11:00:00.500+01:00\", "
            "\"limit\": 1000, \"dryRun\": true, \"cursor\": \"1795946401000:1795946400000-3\"}"),
        0);
    assert_string_equal(f.program_id, "1001");
    assert_string_equal(f.campaign_id, "7015g000000CampAAA");
    assert_int_equal(f.reason, DEAD_UNKNOWN_STATUS);
    assert_string_equal(f.error_contains, "No Show");
    assert_int_equal(f.from_ms, 1795946400000LL);
    assert_int_equal(f.to_ms, 1795946400500LL);
    assert_int_equal(f.limit, 1000);
    assert_true(f.dry_run && f.has_cursor);
    assert_int_equal(f.cursor_at_ms, 1795946401000LL);
    assert_string_equal(f.cursor_id, "1795946400000-3");
    assert_true(dead_filter_narrows(&f));
    assert_int_equal(from_json(&f, "{\"cursor\": null}"), 0);
    assert_false(f.has_cursor);
}

static void replay_body_refusals(void **state) {
    (void)state;
    ASSERT_REFUSED("[]", "one JSON object");
    ASSERT_REFUSED("{} {}", "one JSON object");
    ASSERT_REFUSED("{\"program\": \"1001\", \"dry\": true}", "unknown fields \"program\", \"dry\"");
    ASSERT_REFUSED("{\"programId\": 1001}", "programId must be a string");
    ASSERT_REFUSED("{\"programId\": \"10a\"}", "programId must be");
    ASSERT_REFUSED("{\"campaignId\": \"701\"}", "campaignId must be");
    ASSERT_REFUSED("{\"reason\": \"unkown_status\"}", "reason must be unknown_status, refused");
    ASSERT_REFUSED("{\"errorContains\": \"\"}", "errorContains must be");
    ASSERT_REFUSED("{\"from\": \"2026-11-29 10:00:00\"}", "from must be a time with its offset");
    ASSERT_REFUSED("{\"to\": \"2026-11-29T10:00:00.000\"}", "to must be a time with its offset");
    ASSERT_REFUSED("{\"to\": \"yesterday\"}", "to must be a time");
    ASSERT_REFUSED("{\"from\": \"2026-11-29T11:00:00Z\", \"to\": \"2026-11-29T10:00:00Z\"}",
                   "from must not be after to");
    ASSERT_REFUSED("{\"limit\": 0}", "limit must be an integer from 1 to 1000");
    ASSERT_REFUSED("{\"limit\": 1001}", "limit must be");
    ASSERT_REFUSED("{\"limit\": 1.5}", "limit must be");
    ASSERT_REFUSED("{\"dryRun\": \"yes\"}", "dryRun must be true or false");
    ASSERT_REFUSED("{\"cursor\": \"1795946400000-3\"}", "cursor must be the \"next\"");
    ASSERT_REFUSED("{\"cursor\": \"x:1-2\"}", "cursor must be");
}

static const char SF_ITEM[] =
    "{\"id\":\"1-0\",\"at\":\"2026-11-29T10:00:00.000Z\",\"attempts\":1,\"error\":\"Salesforce "
    "campaign 7015g000000CampAAA status \\\"Responded\\\" has no counterpart in Marketo program "
    "1001\",\"event\":{\"v\":1,\"source\":\"salesforce\",\"campaignId\":\"7015g000000CampAAA\"}}";
static const char MK_ITEM[] =
    "{\"id\":\"2-0\",\"at\":\"2026-11-29T10:00:00.000Z\",\"attempts\":10,\"error\":\"gave up after "
    "10 attempts: Salesforce: UNABLE_TO_LOCK_ROW\",\"event\":{\"v\":1,\"source\":\"marketo\","
    "\"programId\":\"1001\"}}";

static bool match(const dead_filter *f, const char *item, bool unusable) {
    return dead_filter_match(f, item, strlen(item), unusable);
}

static void matching(void **state) {
    (void)state;
    dead_filter f;
    char e[200];
    dead_filter_init(&f);
    assert_true(match(&f, SF_ITEM, false) && match(&f, MK_ITEM, false));
    assert_false(match(&f, "not json", false));
    /* A program takes its own events; with its mapping, also those of its campaign. */
    assert_int_equal(dead_filter_set(&f, "programId", "1001", e, sizeof e), DEAD_FIELD_SET);
    assert_true(match(&f, MK_ITEM, false));
    assert_false(match(&f, SF_ITEM, false));
    strcpy(f.program_campaign, "7015g000000CampAAA");
    assert_true(match(&f, SF_ITEM, false));
    /* A campaign, in its 15-character form, the same the other way. */
    dead_filter_init(&f);
    assert_int_equal(dead_filter_set(&f, "campaignId", "7015g000000Camp", e, sizeof e),
                     DEAD_FIELD_SET);
    assert_true(match(&f, SF_ITEM, false));
    assert_false(match(&f, MK_ITEM, false));
    strcpy(f.campaign_program, "1001");
    assert_true(match(&f, MK_ITEM, false));
    /* Kinds and words of the error (ASCII case ignored). */
    dead_filter_init(&f);
    assert_int_equal(dead_filter_set(&f, "reason", "gave_up", e, sizeof e), DEAD_FIELD_SET);
    assert_true(match(&f, MK_ITEM, false));
    assert_false(match(&f, SF_ITEM, false));
    assert_false(match(&f, MK_ITEM, true));
    dead_filter_init(&f);
    assert_int_equal(dead_filter_set(&f, "errorContains", "unable_to_lock", e, sizeof e),
                     DEAD_FIELD_SET);
    assert_true(match(&f, MK_ITEM, false));
    assert_false(match(&f, SF_ITEM, false));
    /* Unknown names are left to the caller. */
    assert_int_equal(dead_filter_set(&f, "limit", "5", e, sizeof e), DEAD_FIELD_UNKNOWN);
}

static void cursors(void **state) {
    (void)state;
    char out[80], id[DEAD_ID_MAX];
    int64_t at;
    dead_filter_cursor(1795946401000LL, "1795946400000-12", out, sizeof out);
    assert_string_equal(out, "1795946401000:1795946400000-12");
    assert_true(dead_filter_parse_cursor(out, &at, id, sizeof id));
    assert_int_equal(at, 1795946401000LL);
    assert_string_equal(id, "1795946400000-12");
    const char *bad[] = {"",       ":1-2",  "1:",     "1:1",    "1:1-",   "1:-2",
                         "1:1-2x", "a:1-2", "1:1-2:", "1 :1-2", "1:1--2", "1234567890123456:1-2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (dead_filter_parse_cursor(bad[i], &at, id, sizeof id)) fail_msg("accepted %s", bad[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kinds_from_the_texts),
        cmocka_unit_test(replay_body_fields),
        cmocka_unit_test(replay_body_refusals),
        cmocka_unit_test(matching),
        cmocka_unit_test(cursors),
    };
    return cmocka_run_group_tests_name("dead_filter", tests, utc, NULL);
}
