/* mapping_patch: a JSON merge patch (RFC 7396) of a stored mapping, written as the PUT body
 * of the result. The members a patch names replace the stored ones, null removes, statusMap
 * is merged entry by entry; unknown and read-only members and removing what a mapping cannot
 * be without are refused, naming them (issue 21). */
#include "unit.h"

#include "mapping_patch.h"

/* The stored mapping 1001 ↔ 7015g000000CampAAA, enabled, {Invited: Sent, Registered:
 * Responded}. */
static mapping stored(void) {
    mapping m;
    memset(&m, 0, sizeof m);
    strcpy(m.program_id, "1001");
    strcpy(m.campaign_id, "7015g000000CampAAA");
    m.enabled = true;
    strcpy(m.map[0].marketo, "Invited");
    strcpy(m.map[0].salesforce, "Sent");
    strcpy(m.map[1].marketo, "Registered");
    strcpy(m.map[1].salesforce, "Responded");
    m.nmap = 2;
    return m;
}

/* The PUT body a patch gives, or NULL (with err) when it is refused. */
static char err[600];
static char *patched(const char *patch) {
    mapping m = stored();
    char *out = NULL;
    err[0] = '\0';
    mapping_patch_rc rc = mapping_patch_apply(&m, patch, strlen(patch), &out, err, sizeof err);
    if (rc != MAPPING_PATCH_APPLIED) assert_null(out);
    return rc == MAPPING_PATCH_APPLIED ? out : NULL;
}

#define ASSERT_PATCH(patch, want)                                                                  \
    do {                                                                                           \
        char *got_ = patched(patch);                                                               \
        if (!got_) fail_msg("%s refused: %s", (patch), err);                                       \
        assert_string_equal(got_, (want));                                                         \
        free(got_);                                                                                \
    } while (0)

#define ASSERT_REFUSED(patch, words)                                                               \
    do {                                                                                           \
        char *got_ = patched(patch);                                                               \
        if (got_) fail_msg("%s accepted as %s", (patch), got_);                                    \
        if (!strstr(err, (words))) fail_msg("%s: \"%s\" lacks \"%s\"", (patch), err, (words));     \
    } while (0)

static const char KEPT[] = "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true,"
                           "\"statusMap\":{\"Invited\":\"Sent\",\"Registered\":\"Responded\"}}";

static void empty_patch_keeps_everything(void **state) {
    (void)state;
    ASSERT_PATCH("{}", KEPT);
    ASSERT_PATCH(" {} \n", KEPT);
}

static void disabling_keeps_the_status_map(void **state) {
    (void)state;
    ASSERT_PATCH("{\"enabled\": false}",
                 "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":false,"
                 "\"statusMap\":{\"Invited\":\"Sent\",\"Registered\":\"Responded\"}}");
}

static void status_map_is_merged_entry_by_entry(void **state) {
    (void)state;
    /* Changed in place, added at the end, removed by null; the order of the rest kept. */
    ASSERT_PATCH("{\"statusMap\": {\"Invited\": \"Sent Invite\", \"No Show\": \"Did Not Attend\"}}",
                 "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true,\"statusMap\":"
                 "{\"Invited\":\"Sent Invite\",\"Registered\":\"Responded\","
                 "\"No Show\":\"Did Not Attend\"}}");
    ASSERT_PATCH("{\"statusMap\": {\"Invited\": null}}",
                 "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true,"
                 "\"statusMap\":{\"Registered\":\"Responded\"}}");
    /* Removing an entry that is not there changes nothing. */
    ASSERT_PATCH("{\"statusMap\": {\"Attended\": null}}", KEPT);
    /* null removes the whole map: no explicit entries. */
    ASSERT_PATCH("{\"statusMap\": null}",
                 "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true}");
}

static void other_members_replace(void **state) {
    (void)state;
    ASSERT_PATCH("{\"campaignId\": \"7015g000000CmpBAAA\", \"force\": true}",
                 "{\"campaignId\":\"7015g000000CmpBAAA\",\"enabled\":true,"
                 "\"statusMap\":{\"Invited\":\"Sent\",\"Registered\":\"Responded\"},"
                 "\"force\":true}");
    /* A value that is not an object replaces (RFC 7396): the PUT reader judges it. */
    ASSERT_PATCH("{\"statusMap\": \"x\", \"enabled\": 3}",
                 "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":3,\"statusMap\":\"x\"}");
}

static void refusals_name_what_is_wrong(void **state) {
    (void)state;
    ASSERT_REFUSED("", "one JSON object");
    ASSERT_REFUSED("[]", "one JSON object");
    ASSERT_REFUSED("null", "one JSON object");
    ASSERT_REFUSED("{\"enabled\": false} x", "one JSON object");
    ASSERT_REFUSED("{\"enabled\": false", "one JSON object");
    ASSERT_REFUSED("{\"enabld\": false, \"statusmap\": {}}",
                   "unknown fields \"enabld\", \"statusmap\"");
    ASSERT_REFUSED("{\"programId\": \"1002\"}", "\"programId\" cannot be changed");
    ASSERT_REFUSED("{\"createdAt\": \"x\", \"updatedAt\": \"y\"}",
                   "\"createdAt\", \"updatedAt\" cannot be changed");
    ASSERT_REFUSED("{\"enabled\": null}", "enabled cannot be removed");
    ASSERT_REFUSED("{\"campaignId\": null}", "campaignId cannot be removed");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_patch_keeps_everything),
        cmocka_unit_test(disabling_keeps_the_status_map),
        cmocka_unit_test(status_map_is_merged_entry_by_entry),
        cmocka_unit_test(other_members_replace),
        cmocka_unit_test(refusals_name_what_is_wrong),
    };
    return cmocka_run_group_tests_name("mapping_patch", tests, NULL, NULL);
}
