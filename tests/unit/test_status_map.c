/* status_map: the status translation rule, the one-to-one property, the admin PUT body and
 * the stored form of a mapping.
 *
 * SPEC section 5 ("Mapping body"): an explicit statusMap entry maps a Marketo status to a
 * Salesforce status; any other label maps to the same label, case-sensitive; a label that
 * is already the target (or source) of an explicit entry has no counterpart; the effective
 * map is one-to-one and used both ways; Marketo's "Not in Program" never maps. F1/F10/F11. */
#include "unit.h"

#include "status_map.h"

#include <time.h>

/* ------------------------------------------------------------------------------------------
 * Helpers */

static int utc(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

/* A mapping 1001 ↔ 7015g000000CampAAA with the given explicit entries (NULL-terminated list
 * of marketo, salesforce pairs). */
static mapping make_map(const char *const *pairs) {
    mapping m;
    memset(&m, 0, sizeof m);
    strcpy(m.program_id, "1001");
    strcpy(m.campaign_id, "7015g000000CampAAA");
    m.enabled = true;
    for (int i = 0; pairs && pairs[2 * i]; i++) {
        assert_true(m.nmap < MAP_MAX_ENTRIES);
        strcpy(m.map[m.nmap].marketo, pairs[2 * i]);
        strcpy(m.map[m.nmap].salesforce, pairs[2 * i + 1]);
        m.nmap++;
    }
    return m;
}

/* Translations as a value: NULL when there is no counterpart. */
static char sf_buf[STATUS_LABEL_MAX], mk_buf[STATUS_LABEL_MAX];
static const char *to_sf(const mapping *m, const char *marketo) {
    memset(sf_buf, 'x', sizeof sf_buf);
    if (!status_map_to_salesforce(m, marketo, sf_buf, sizeof sf_buf)) return NULL;
    return sf_buf;
}
static const char *to_mk(const mapping *m, const char *salesforce) {
    memset(mk_buf, 'x', sizeof mk_buf);
    if (!status_map_to_marketo(m, salesforce, mk_buf, sizeof mk_buf)) return NULL;
    return mk_buf;
}

#define ASSERT_SF(m, in, want)                                                                     \
    do {                                                                                           \
        const char *got_ = to_sf((m), (in));                                                       \
        const char *want_ = (want);                                                                \
        if (!want_ && got_) fail_msg("to_salesforce(\"%s\") = \"%s\", want none", (in), got_);     \
        if (want_ && !got_) fail_msg("to_salesforce(\"%s\") = none, want \"%s\"", (in), want_);    \
        if (want_) assert_string_equal(got_, want_);                                               \
    } while (0)
#define ASSERT_MK(m, in, want)                                                                     \
    do {                                                                                           \
        const char *got_ = to_mk((m), (in));                                                       \
        const char *want_ = (want);                                                                \
        if (!want_ && got_) fail_msg("to_marketo(\"%s\") = \"%s\", want none", (in), got_);        \
        if (want_ && !got_) fail_msg("to_marketo(\"%s\") = none, want \"%s\"", (in), want_);       \
        if (want_) assert_string_equal(got_, want_);                                               \
    } while (0)

/* ------------------------------------------------------------------------------------------
 * Translation (SPEC 5: explicit entries, same-label fallback, no counterpart, Not in Program,
 * case-sensitivity, empty labels) */

/* With no statusMap every label maps to itself, both ways. */
static void same_label_without_entries(void **state) {
    (void)state;
    mapping m = make_map(NULL);
    const char *labels[] = {"Registered", "Attended",   "No Show",  "Sent", "Responded",
                            "Member",     "Influenced", "ümlaut ✓", "a"};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        ASSERT_SF(&m, labels[i], labels[i]);
        ASSERT_MK(&m, labels[i], labels[i]);
    }
}

/* An explicit entry is used Marketo→Salesforce and, reversed, Salesforce→Marketo. */
static void explicit_entries_both_ways(void **state) {
    (void)state;
    const char *pairs[] = {"Registered", "Signed Up", "Attended", "Came", NULL};
    mapping m = make_map(pairs);
    ASSERT_SF(&m, "Registered", "Signed Up");
    ASSERT_SF(&m, "Attended", "Came");
    ASSERT_MK(&m, "Signed Up", "Registered");
    ASSERT_MK(&m, "Came", "Attended");
    /* Labels not in any entry still use the same-label rule. */
    ASSERT_SF(&m, "No Show", "No Show");
    ASSERT_MK(&m, "No Show", "No Show");
}

/* A label that is the target (Salesforce side) of an explicit entry has no same-label
 * counterpart Marketo→Salesforce, and one that is the source (Marketo side) has none
 * Salesforce→Marketo: otherwise two statuses would map to one. */
static void entry_labels_lose_same_label_match(void **state) {
    (void)state;
    const char *pairs[] = {"Registered", "Signed Up", NULL};
    mapping m = make_map(pairs);
    /* "Signed Up" in Marketo: Salesforce's "Signed Up" is already Marketo's "Registered". */
    ASSERT_SF(&m, "Signed Up", NULL);
    /* "Registered" in Salesforce: Marketo's "Registered" is already Salesforce's "Signed Up". */
    ASSERT_MK(&m, "Registered", NULL);
    /* An identity entry is allowed and changes nothing. */
    const char *id[] = {"Registered", "Registered", NULL};
    mapping mi = make_map(id);
    ASSERT_SF(&mi, "Registered", "Registered");
    ASSERT_MK(&mi, "Registered", "Registered");
}

/* A chain A→B, B→C: C has no Marketo counterpart of the same label and A none in Salesforce. */
static void chains(void **state) {
    (void)state;
    const char *pairs[] = {"A", "B", "B", "C", NULL};
    mapping m = make_map(pairs);
    ASSERT_SF(&m, "A", "B");
    ASSERT_SF(&m, "B", "C");
    ASSERT_SF(&m, "C", NULL);
    ASSERT_MK(&m, "B", "A");
    ASSERT_MK(&m, "C", "B");
    ASSERT_MK(&m, "A", NULL);
    ASSERT_SF(&m, "D", "D");
    ASSERT_MK(&m, "D", "D");
}

/* A swap {"A":"B","B":"A"} is one-to-one and must be honoured exactly. */
static void swaps(void **state) {
    (void)state;
    const char *pairs[] = {"A", "B", "B", "A", NULL};
    mapping m = make_map(pairs);
    ASSERT_SF(&m, "A", "B");
    ASSERT_SF(&m, "B", "A");
    ASSERT_MK(&m, "A", "B");
    ASSERT_MK(&m, "B", "A");
    ASSERT_SF(&m, "C", "C");
    ASSERT_MK(&m, "C", "C");
}

/* "Not in Program" is the absence of membership: it never maps, whatever the entries. */
static void not_in_program_never_maps(void **state) {
    (void)state;
    mapping m = make_map(NULL);
    ASSERT_SF(&m, NOT_IN_PROGRAM, NULL);
    ASSERT_MK(&m, NOT_IN_PROGRAM, NULL);
    const char *pairs[] = {"Registered", "Signed Up", NULL};
    mapping m2 = make_map(pairs);
    ASSERT_SF(&m2, NOT_IN_PROGRAM, NULL);
    ASSERT_MK(&m2, NOT_IN_PROGRAM, NULL);
    /* Only the exact label (case-sensitive) is special. */
    ASSERT_SF(&m, "not in program", "not in program");
    ASSERT_MK(&m, "Not In Program", "Not In Program");
}

/* Case-sensitive both in the explicit entries and the same-label rule (SPEC 5: "as Marketo's
 * native sync requires"): "registered" is not "Registered". */
static void case_sensitive(void **state) {
    (void)state;
    const char *pairs[] = {"Registered", "Signed Up", NULL};
    mapping m = make_map(pairs);
    ASSERT_SF(&m, "registered", "registered");
    ASSERT_SF(&m, "REGISTERED", "REGISTERED");
    ASSERT_MK(&m, "signed up", "signed up");
    ASSERT_MK(&m, "Signed up", "Signed up");
    /* ... and the no-counterpart rule does not fold case either. */
    ASSERT_SF(&m, "signed Up", "signed Up");
    ASSERT_MK(&m, "registereD", "registereD");
    /* Spaces are significant too. */
    ASSERT_SF(&m, "Registered ", "Registered ");
}

/* An empty label is "no status": never translated. */
static void empty_labels(void **state) {
    (void)state;
    mapping m = make_map(NULL);
    ASSERT_SF(&m, "", NULL);
    ASSERT_MK(&m, "", NULL);
    const char *pairs[] = {"Registered", "Signed Up", NULL};
    mapping m2 = make_map(pairs);
    ASSERT_SF(&m2, "", NULL);
    ASSERT_MK(&m2, "", NULL);
}

/* The output buffer bounds the copy: a result that does not fit is "no counterpart", never
 * a cut label; a 127-byte label (the maximum) fits. */
static void output_bounds(void **state) {
    (void)state;
    char lab[STATUS_LABEL_MAX];
    memset(lab, 'L', sizeof lab - 1);
    lab[sizeof lab - 1] = '\0';
    mapping m = make_map(NULL);
    ASSERT_SF(&m, lab, lab);
    ASSERT_MK(&m, lab, lab);
    char small[5];
    assert_false(status_map_to_salesforce(&m, "Registered", small, sizeof small));
    assert_false(status_map_to_marketo(&m, "Registered", small, sizeof small));
    assert_true(status_map_to_salesforce(&m, "Reg", small, sizeof small));
    assert_string_equal(small, "Reg");
}

/* ------------------------------------------------------------------------------------------
 * One-to-one (SPEC 5: "the effective map ... must be one-to-one"). For every sample label
 * that has a counterpart, translating there and back gives the label again, in both
 * directions, and no two labels share a counterpart. */

static const char *const sample_labels[] = {
    "Registered",   "Attended", "No Show", "Invited", "Signed Up", "Came",       "Sent",
    "Responded",    "A",        "B",       "C",       "D",         "registered", "Member",
    NOT_IN_PROGRAM, "",
};
#define NSAMPLES (sizeof sample_labels / sizeof sample_labels[0])

static void check_one_to_one(const mapping *m) {
    char seen_sf[NSAMPLES][STATUS_LABEL_MAX], seen_mk[NSAMPLES][STATUS_LABEL_MAX];
    size_t nsf = 0, nmk = 0;
    for (size_t i = 0; i < NSAMPLES; i++) {
        const char *l = sample_labels[i];
        char s[STATUS_LABEL_MAX], back[STATUS_LABEL_MAX];
        if (status_map_to_salesforce(m, l, s, sizeof s)) {
            if (!status_map_to_marketo(m, s, back, sizeof back))
                fail_msg("\"%s\" -> \"%s\" has no way back", l, s);
            if (strcmp(back, l) != 0) fail_msg("\"%s\" -> \"%s\" -> \"%s\"", l, s, back);
            for (size_t j = 0; j < nsf; j++)
                if (strcmp(seen_sf[j], s) == 0) fail_msg("two Marketo labels map to \"%s\"", s);
            strcpy(seen_sf[nsf++], s);
        }
        if (status_map_to_marketo(m, l, s, sizeof s)) {
            if (!status_map_to_salesforce(m, s, back, sizeof back))
                fail_msg("SF \"%s\" -> \"%s\" has no way back", l, s);
            if (strcmp(back, l) != 0) fail_msg("SF \"%s\" -> \"%s\" -> \"%s\"", l, s, back);
            for (size_t j = 0; j < nmk; j++)
                if (strcmp(seen_mk[j], s) == 0) fail_msg("two SF labels map to \"%s\"", s);
            strcpy(seen_mk[nmk++], s);
        }
    }
}

static void effective_map_is_one_to_one(void **state) {
    (void)state;
    const char *const none[] = {NULL};
    const char *const plain[] = {"Registered", "Signed Up", "Attended", "Came", NULL};
    const char *const swap[] = {"A", "B", "B", "A", NULL};
    const char *const chain[] = {"A", "B", "B", "C", "C", "D", NULL};
    const char *const ident[] = {"Registered", "Registered", "Sent", "Invited", NULL};
    const char *const rot[] = {"A", "B", "B", "C", "C", "A", NULL};
    const char *const cased[] = {"Registered", "registered", NULL};
    const char *const *sets[] = {none, plain, swap, chain, ident, rot, cased};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        mapping m = make_map(sets[i]);
        check_one_to_one(&m);
    }
}

/* ------------------------------------------------------------------------------------------
 * mapping_from_request: the admin PUT body (SPEC 5; 400 naming the field). */

static int req(const char *program_id, const char *json, mapping *m, bool *force, char *err) {
    memset(err, 0, 256);
    return mapping_from_request(program_id, json, strlen(json), m, force, err, 256);
}

static void request_valid_bodies(void **state) {
    (void)state;
    mapping m;
    bool force = true;
    char err[256];

    /* Minimal: enabled defaults to true, force to false, no entries. */
    assert_int_equal(req("1001", "{\"campaignId\":\"7015g000000CampAAA\"}", &m, &force, err), 0);
    assert_string_equal(m.program_id, "1001");
    assert_string_equal(m.campaign_id, "7015g000000CampAAA");
    assert_true(m.enabled);
    assert_false(force);
    assert_int_equal(m.nmap, 0);

    /* Every field. */
    assert_int_equal(req("42",
                         "{\"campaignId\":\"7015g000000Camp\",\"enabled\":false,"
                         "\"statusMap\":{\"Registered\":\"Signed Up\",\"Attended\":\"Came\"},"
                         "\"force\":true}",
                         &m, &force, err),
                     0);
    assert_string_equal(m.program_id, "42");
    assert_string_equal(m.campaign_id, "7015g000000Camp");
    assert_false(m.enabled);
    assert_true(force);
    assert_int_equal(m.nmap, 2);
    assert_string_equal(m.map[0].marketo, "Registered");
    assert_string_equal(m.map[0].salesforce, "Signed Up");
    assert_string_equal(m.map[1].marketo, "Attended");
    assert_string_equal(m.map[1].salesforce, "Came");

    /* enabled true, force false explicitly; statusMap empty or null; unknown fields ignored. */
    assert_int_equal(req("7",
                         "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true,"
                         "\"force\":false,\"statusMap\":{},\"note\":1}",
                         &m, &force, err),
                     0);
    assert_true(m.enabled);
    assert_false(force);
    assert_int_equal(m.nmap, 0);
    assert_int_equal(
        req("7", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":null}", &m, &force, err), 0);
    assert_int_equal(m.nmap, 0);

    /* A swap and an identity entry are one-to-one. */
    assert_int_equal(req("7",
                         "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":"
                         "{\"A\":\"B\",\"B\":\"A\",\"C\":\"C\"}}",
                         &m, &force, err),
                     0);
    assert_int_equal(m.nmap, 3);

    /* Labels differing only in case are different labels. */
    assert_int_equal(req("7",
                         "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":"
                         "{\"Registered\":\"X\",\"registered\":\"x\"}}",
                         &m, &force, err),
                     0);
    assert_int_equal(m.nmap, 2);
}

/* Exactly MAP_MAX_ENTRIES entries and 127-byte labels are accepted. */
static void request_limits_accepted(void **state) {
    (void)state;
    mapping m;
    bool force;
    char err[256];
    char body[16384];
    size_t n = (size_t)snprintf(body, sizeof body,
                                "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{");
    for (int i = 0; i < MAP_MAX_ENTRIES; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%s\"m%d\":\"s%d\"", i ? "," : "", i, i);
    snprintf(body + n, sizeof body - n, "}}");
    assert_int_equal(req("1", body, &m, &force, err), 0);
    assert_int_equal(m.nmap, MAP_MAX_ENTRIES);
    assert_string_equal(m.map[49].marketo, "m49");

    char l127[128];
    memset(l127, 'k', 127);
    l127[127] = '\0';
    snprintf(body, sizeof body,
             "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"%s\":\"%s\"}}", l127, l127);
    assert_int_equal(req("1", body, &m, &force, err), 0);
    assert_int_equal(strlen(m.map[0].marketo), 127);
    assert_int_equal(strlen(m.map[0].salesforce), 127);
}

typedef struct {
    const char *program_id;
    const char *json;
    const char *field; /* must appear in err */
} bad_request;

static void request_invalid_bodies_name_the_field(void **state) {
    (void)state;
    /* Over-limit bodies built at run time. */
    static char too_many[16384], long_key[512], long_value[512];
    size_t n = (size_t)snprintf(too_many, sizeof too_many,
                                "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{");
    for (int i = 0; i <= MAP_MAX_ENTRIES; i++)
        n += (size_t)snprintf(too_many + n, sizeof too_many - n, "%s\"m%d\":\"s%d\"", i ? "," : "",
                              i, i);
    snprintf(too_many + n, sizeof too_many - n, "}}");
    char l128[129];
    memset(l128, 'k', 128);
    l128[128] = '\0';
    snprintf(long_key, sizeof long_key,
             "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"%s\":\"x\"}}", l128);
    snprintf(long_value, sizeof long_value,
             "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"x\":\"%s\"}}", l128);

    const bad_request cases[] = {
        /* not an object */
        {"1001", "[]", "body"},
        {"1001", "\"x\"", "body"},
        {"1001", "null", "body"},
        {"1001", "", "body"},
        {"1001", "{\"campaignId\":", "body"},
        /* programId (from the path) */
        {"", "{\"campaignId\":\"7015g000000CampAAA\"}", "programId"},
        {"12a", "{\"campaignId\":\"7015g000000CampAAA\"}", "programId"},
        {"-1", "{\"campaignId\":\"7015g000000CampAAA\"}", "programId"},
        {"1 2", "{\"campaignId\":\"7015g000000CampAAA\"}", "programId"},
        {"123456789012345678901234", "{\"campaignId\":\"7015g000000CampAAA\"}", "programId"},
        /* campaignId */
        {"1001", "{}", "campaignId"},
        {"1001", "{\"campaignId\":null}", "campaignId"},
        {"1001", "{\"campaignId\":7015}", "campaignId"},
        {"1001", "{\"campaignId\":\"701\"}", "campaignId"},
        {"1001", "{\"campaignId\":\"\"}", "campaignId"},
        {"1001", "{\"campaignId\":\"7015g000000Cam\"}", "campaignId"},      /* 14 */
        {"1001", "{\"campaignId\":\"7015g000000CampA\"}", "campaignId"},    /* 16 */
        {"1001", "{\"campaignId\":\"7015g000000CampAAAA\"}", "campaignId"}, /* 19 */
        {"1001", "{\"campaignId\":\"7015g000000Cam-\"}", "campaignId"},
        {"1001", "{\"campaignId\":\"7015g000000Cam AAA\"}", "campaignId"},
        {"1001", "{\"campaignId\":\"7015g000000CampA\\u00e9\"}", "campaignId"},
        /* enabled / force */
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":\"true\"}", "enabled"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":1}", "enabled"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":null}", "enabled"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"force\":\"yes\"}", "force"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"force\":0}", "force"},
        /* statusMap */
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":[]}", "statusMap"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":\"A\"}", "statusMap"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"A\":1}}", "statusMap"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"A\":null}}", "statusMap"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"A\":\"\"}}", "statusMap"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"\":\"A\"}}", "statusMap"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"A\":\"X\",\"B\":\"X\"}}",
         "not one-to-one"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"A\":\"X\",\"A\":\"Y\"}}",
         "statusMap"},
        {"1001", "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"Not in Program\":\"X\"}}",
         "Not in Program"},
        {"1001", too_many, "statusMap"},
        {"1001", long_key, "statusMap"},
        {"1001", long_value, "statusMap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mapping m;
        bool force = true;
        char err[256];
        int rc = req(cases[i].program_id, cases[i].json, &m, &force, err);
        if (rc != -1) fail_msg("case %zu accepted: %.200s", i, cases[i].json);
        if (!err[0]) fail_msg("case %zu: empty err", i);
        if (!strstr(err, cases[i].field))
            fail_msg("case %zu: err \"%s\" does not name \"%s\"", i, err, cases[i].field);
        assert_false(force);
    }
}

/* A body with text after the object (`{...} x`, or two objects `{...}{...}`) is not one JSON
 * value: SPEC 5 asks for 400 on a bad payload. (Found as a bug: the end was not checked.) */
static void request_trailing_garbage_is_refused(void **state) {
    (void)state;
    const char *bad[] = {
        "{\"campaignId\":\"7015g000000CampAAA\"} x",
        "{\"campaignId\":\"7015g000000CampAAA\"}{\"enabled\":false}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mapping m;
        bool force;
        char err[256];
        if (req("1001", bad[i], &m, &force, err) != -1) fail_msg("accepted: %s", bad[i]);
        assert_non_null(strstr(err, "body"));
    }
    /* Trailing white space is still JSON. */
    mapping m;
    bool force;
    char err[256];
    assert_int_equal(req("1001", "{\"campaignId\":\"7015g000000CampAAA\"} \n", &m, &force, err), 0);
}

/* Specific messages a person can act on. */
static void request_error_messages(void **state) {
    (void)state;
    mapping m;
    bool force;
    char err[256];
    assert_int_equal(req("1",
                         "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":"
                         "{\"Registered\":\"Signed Up\",\"Attended\":\"Signed Up\"}}",
                         &m, &force, err),
                     -1);
    assert_string_equal(err, "statusMap is not one-to-one: \"Registered\" and \"Attended\" both "
                             "map to \"Signed Up\"");
    char body[8192];
    size_t n = (size_t)snprintf(body, sizeof body,
                                "{\"campaignId\":\"7015g000000CampAAA\","
                                "\"statusMap\":{");
    for (int i = 0; i < 51; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%s\"m%d\":\"s%d\"", i ? "," : "", i, i);
    snprintf(body + n, sizeof body - n, "}}");
    assert_int_equal(req("1", body, &m, &force, err), -1);
    assert_string_equal(err, "statusMap holds at most 50 entries");
    char l128[129];
    memset(l128, 'k', 128);
    l128[128] = '\0';
    snprintf(body, sizeof body,
             "{\"campaignId\":\"7015g000000CampAAA\",\"statusMap\":{\"A\":\"%s\"}}", l128);
    assert_int_equal(req("1", body, &m, &force, err), -1);
    assert_string_equal(err, "statusMap[\"A\"]: labels are at most 127 bytes");
}

/* ------------------------------------------------------------------------------------------
 * Stored form (SPEC 5 mapping answer: programId, campaignId, enabled, statusMap, createdAt,
 * updatedAt): mapping_to_json → mapping_from_json gives the same mapping back. */

static void json_round_trip(void **state) {
    (void)state;
    const char *pairs[] = {"Registered", "Signed Up", "Attended", "Came", "Quote \" and \\ back",
                           "ümlaut ✓",   "A",         "B",        "B",    "A",
                           NULL};
    mapping m = make_map(pairs);
    strcpy(m.program_id, "123456");
    strcpy(m.campaign_id, "7015g000000Camp");
    m.enabled = false;
    m.created_ms = 1795946400123LL; /* 2026-11-29T10:00:00.123Z */
    m.updated_ms = 1795946500999LL;
    char *json = mapping_to_json(&m);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"programId\":\"123456\""));
    assert_non_null(strstr(json, "\"campaignId\":\"7015g000000Camp\""));
    assert_non_null(strstr(json, "\"enabled\":false"));
    assert_non_null(strstr(json, "\"statusMap\":{\"Registered\":\"Signed Up\""));
    assert_non_null(strstr(json, "\"createdAt\":\"2026-11-29T10:00:00.123Z\""));
    assert_non_null(strstr(json, "\"updatedAt\":\"2026-11-29T10:01:40.999Z\""));
    mapping back;
    memset(&back, 0xAB, sizeof back);
    char err[256] = "";
    assert_int_equal(mapping_from_json(json, strlen(json), &back, err, sizeof err), 0);
    free(json);
    assert_string_equal(back.program_id, m.program_id);
    assert_string_equal(back.campaign_id, m.campaign_id);
    assert_int_equal(back.enabled, m.enabled);
    assert_int_equal(back.nmap, m.nmap);
    for (int i = 0; i < m.nmap; i++) {
        assert_string_equal(back.map[i].marketo, m.map[i].marketo);
        assert_string_equal(back.map[i].salesforce, m.map[i].salesforce);
    }
    assert_true(back.created_ms == m.created_ms);
    assert_true(back.updated_ms == m.updated_ms);

    /* enabled true, no entries, times at whole seconds; the struct comes back byte-equal. */
    mapping m2 = make_map(NULL);
    m2.created_ms = 1700000000000LL;
    m2.updated_ms = 1700000001000LL;
    json = mapping_to_json(&m2);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"statusMap\":{}"));
    assert_int_equal(mapping_from_json(json, strlen(json), &back, err, sizeof err), 0);
    free(json);
    assert_memory_equal(&back, &m2, sizeof m2);

    /* The full 50 entries with 127-byte labels survive. */
    mapping m3 = make_map(NULL);
    m3.nmap = MAP_MAX_ENTRIES;
    for (int i = 0; i < MAP_MAX_ENTRIES; i++) {
        memset(m3.map[i].marketo, 'a' + i % 26, 127);
        memset(m3.map[i].salesforce, 'A' + i % 26, 127);
        /* a unique prefix "NNm" / "NNs" keeps the labels distinct */
        m3.map[i].marketo[0] = m3.map[i].salesforce[0] = (char)('0' + i / 10);
        m3.map[i].marketo[1] = m3.map[i].salesforce[1] = (char)('0' + i % 10);
        m3.map[i].marketo[2] = 'm';
        m3.map[i].salesforce[2] = 's';
    }
    json = mapping_to_json(&m3);
    assert_non_null(json);
    assert_int_equal(mapping_from_json(json, strlen(json), &back, err, sizeof err), 0);
    free(json);
    assert_memory_equal(&back, &m3, sizeof m3);
}

/* What mapping_from_request reads, mapping_to_json writes and mapping_from_json reads back. */
static void request_then_store(void **state) {
    (void)state;
    mapping m, back;
    bool force;
    char err[256];
    assert_int_equal(req("55",
                         "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":false,"
                         "\"statusMap\":{\"Registered\":\"Signed Up\"},\"force\":true}",
                         &m, &force, err),
                     0);
    m.created_ms = m.updated_ms = 1795946400000LL;
    char *json = mapping_to_json(&m);
    assert_null(strstr(json, "force")); /* force is a request flag, never stored */
    assert_int_equal(mapping_from_json(json, strlen(json), &back, err, sizeof err), 0);
    free(json);
    assert_memory_equal(&back, &m, sizeof m);
}

static void stored_form_rejects_garbage(void **state) {
    (void)state;
    const char *bad[] = {
        "",
        "[]",
        "{\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true}",
        "{\"programId\":1001,\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true}",
        "{\"programId\":\"1001\",\"enabled\":true}",
        "{\"programId\":\"1001\",\"campaignId\":\"7015g000000CampAAA\"}",
        "{\"programId\":\"1001\",\"campaignId\":\"7015g000000CampAAA\",\"enabled\":\"yes\"}",
        "{\"programId\":\"1001\",\"campaignId\":\"7015g000000CampAAAAAAAAA\",\"enabled\":true}",
        "{\"programId\":\"1001\",\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true,"
        "\"statusMap\":{\"A\":\"X\",\"B\":\"X\"}}",
        "{\"programId\":\"1001\",\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true,"
        "\"statusMap\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mapping m;
        char err[256] = "";
        if (mapping_from_json(bad[i], strlen(bad[i]), &m, err, sizeof err) != -1)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        assert_true(err[0] != '\0');
    }
    /* Absent times read as 0. */
    const char *ok =
        "{\"programId\":\"1001\",\"campaignId\":\"7015g000000CampAAA\",\"enabled\":true}";
    mapping m;
    char err[256];
    assert_int_equal(mapping_from_json(ok, strlen(ok), &m, err, sizeof err), 0);
    assert_true(m.created_ms == 0 && m.updated_ms == 0);
    assert_int_equal(m.nmap, 0);
}

/* ------------------------------------------------------------------------------------------
 * The validation report (F11): status_map_compare on both sides' status lists */

/* Runs the comparison of a Marketo list and a Salesforce list (NULL-terminated). */
static status_report *compare(const mapping *m, const char *const *mk, const char *const *sf) {
    size_t nm = 0, ns = 0;
    while (mk && mk[nm])
        nm++;
    while (sf && sf[ns])
        ns++;
    status_report *r = malloc(sizeof *r);
    assert_non_null(r);
    memset(r, 0x5a, sizeof *r); /* whatever was there before is overwritten */
    status_map_compare(m, mk, nm, sf, ns, r);
    return r;
}

static const status_unmatched *unmatched(const status_report *r, bool marketo_side,
                                         const char *status) {
    for (int i = 0; i < r->nunmatched; i++)
        if (r->unmatched[i].marketo_side == marketo_side &&
            strcmp(r->unmatched[i].status, status) == 0)
            return &r->unmatched[i];
    return NULL;
}

/* The fix of an unmatched status, or a failure naming what is missing. */
static const char *fix_of(const status_report *r, bool marketo_side, const char *status) {
    const status_unmatched *u = unmatched(r, marketo_side, status);
    if (!u)
        fail_msg("%s status \"%s\" is not reported unmatched",
                 marketo_side ? "Marketo" : "Salesforce", status);
    assert_null(strchr(u->fix, '\n')); /* one line */
    return u->fix;
}

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle))) fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle)); \
    } while (0)

#define ASSERT_PAIR(r, i, mk, sf)                                                                  \
    do {                                                                                           \
        assert_true((i) < (r)->nmatched);                                                          \
        assert_string_equal((r)->matched[i].marketo, (mk));                                        \
        assert_string_equal((r)->matched[i].salesforce, (sf));                                     \
    } while (0)

/* The Webinar channel of the simulators, with Marketo's "Not in Program" first. */
static const char *const WEBINAR_MK[] = {
    "Not in Program", "Invited", "Registered", "No Show", "Attended", "Attended On-demand", NULL};

/* Same labels on both sides, no statusMap: every status matches itself, in Marketo's order;
 * nothing is unmatched. */
static void compare_same_labels(void **state) {
    (void)state;
    mapping m = make_map(NULL);
    const char *sf[] = {"Attended On-demand", "Attended", "No Show", "Registered", "Invited", NULL};
    status_report *r = compare(&m, WEBINAR_MK, sf);
    assert_int_equal(r->nmatched, 5);
    assert_int_equal(r->nunmatched, 0);
    ASSERT_PAIR(r, 0, "Invited", "Invited");
    ASSERT_PAIR(r, 1, "Registered", "Registered");
    ASSERT_PAIR(r, 2, "No Show", "No Show");
    ASSERT_PAIR(r, 3, "Attended", "Attended");
    ASSERT_PAIR(r, 4, "Attended On-demand", "Attended On-demand");
    free(r);
    /* Nothing on either side: an empty report. */
    r = compare(&m, NULL, NULL);
    assert_int_equal(r->nmatched, 0);
    assert_int_equal(r->nunmatched, 0);
    free(r);
}

/* Explicit entries match through the map (both of its labels are then taken); the other
 * statuses still match by label. */
static void compare_explicit_entries(void **state) {
    (void)state;
    const char *pairs[] = {"Invited", "Sent", "No Show", "Did Not Attend", NULL};
    mapping m = make_map(pairs);
    const char *sf[] = {"Sent",     "Registered",         "Did Not Attend",
                        "Attended", "Attended On-demand", NULL};
    status_report *r = compare(&m, WEBINAR_MK, sf);
    assert_int_equal(r->nunmatched, 0);
    assert_int_equal(r->nmatched, 5);
    ASSERT_PAIR(r, 0, "Invited", "Sent");
    ASSERT_PAIR(r, 1, "Registered", "Registered");
    ASSERT_PAIR(r, 2, "No Show", "Did Not Attend");
    ASSERT_PAIR(r, 3, "Attended", "Attended");
    free(r);

    /* An entry whose Salesforce label the campaign lacks: the Marketo status is unmatched,
     * and the fix names the missing label (not the Marketo one) and the campaign. */
    const char *sf2[] = {"Sent", "Registered", "Attended", "Attended On-demand", NULL};
    r = compare(&m, WEBINAR_MK, sf2);
    assert_int_equal(r->nunmatched, 1);
    const char *fix = fix_of(r, true, "No Show");
    ASSERT_CONTAINS(fix, "\"Did Not Attend\"");
    ASSERT_CONTAINS(fix, "7015g000000CampAAA");
    ASSERT_CONTAINS(fix, "statusMap");
    free(r);

    /* An entry whose Marketo label the channel lacks: the Salesforce status is unmatched and
     * the fix names the Marketo label to add, and the program. */
    const char *pairs3[] = {"Webinar Attended", "Attended", NULL};
    mapping m3 = make_map(pairs3);
    const char *mk3[] = {"Not in Program", "Registered", NULL};
    const char *sf3[] = {"Registered", "Attended", NULL};
    r = compare(&m3, mk3, sf3);
    assert_int_equal(r->nmatched, 1);
    ASSERT_PAIR(r, 0, "Registered", "Registered");
    assert_int_equal(r->nunmatched, 1);
    fix = fix_of(r, false, "Attended");
    ASSERT_CONTAINS(fix, "\"Webinar Attended\"");
    ASSERT_CONTAINS(fix, "program 1001");
    free(r);
}

/* Statuses on one side only: every Marketo status without its counterpart, and every
 * Salesforce status no Marketo status reaches, is unmatched, once, with a fix naming the
 * status and where to add it (the campaign in Salesforce, the program in Marketo). */
static void compare_statuses_on_one_side_only(void **state) {
    (void)state;
    mapping m = make_map(NULL);
    const char *sf[] = {"Invited", "Registered", "Attended", "Did Not Attend", "Responded", NULL};
    status_report *r = compare(&m, WEBINAR_MK, sf);
    assert_int_equal(r->nmatched, 3);
    ASSERT_PAIR(r, 0, "Invited", "Invited");
    ASSERT_PAIR(r, 1, "Registered", "Registered");
    ASSERT_PAIR(r, 2, "Attended", "Attended");
    assert_int_equal(r->nunmatched, 4);
    /* Marketo's first, in channel order, then Salesforce's, in campaign order. */
    assert_true(r->unmatched[0].marketo_side && r->unmatched[1].marketo_side);
    assert_string_equal(r->unmatched[0].status, "No Show");
    assert_string_equal(r->unmatched[1].status, "Attended On-demand");
    assert_true(!r->unmatched[2].marketo_side && !r->unmatched[3].marketo_side);
    assert_string_equal(r->unmatched[2].status, "Did Not Attend");
    assert_string_equal(r->unmatched[3].status, "Responded");

    const char *fix = fix_of(r, true, "No Show");
    ASSERT_CONTAINS(fix, "\"No Show\"");
    ASSERT_CONTAINS(fix, "Salesforce campaign 7015g000000CampAAA");
    ASSERT_CONTAINS(fix, "statusMap");
    fix = fix_of(r, true, "Attended On-demand");
    ASSERT_CONTAINS(fix, "\"Attended On-demand\"");
    ASSERT_CONTAINS(fix, "7015g000000CampAAA");
    fix = fix_of(r, false, "Did Not Attend");
    ASSERT_CONTAINS(fix, "\"Did Not Attend\"");
    ASSERT_CONTAINS(fix, "Marketo program 1001");
    ASSERT_CONTAINS(fix, "statusMap");
    fix = fix_of(r, false, "Responded");
    ASSERT_CONTAINS(fix, "\"Responded\"");
    ASSERT_CONTAINS(fix, "1001");
    free(r);

    /* Only Marketo has statuses, or only Salesforce. */
    r = compare(&m, WEBINAR_MK, NULL);
    assert_int_equal(r->nmatched, 0);
    assert_int_equal(r->nunmatched, 5);
    for (int i = 0; i < r->nunmatched; i++)
        assert_true(r->unmatched[i].marketo_side);
    free(r);
    r = compare(&m, NULL, sf);
    assert_int_equal(r->nmatched, 0);
    assert_int_equal(r->nunmatched, 5);
    for (int i = 0; i < r->nunmatched; i++)
        assert_false(r->unmatched[i].marketo_side);
    free(r);
}

/* Marketo's "Not in Program" is the absence of membership: never matched, never reported,
 * wherever it is in the channel's list. */
static void compare_ignores_not_in_program(void **state) {
    (void)state;
    mapping m = make_map(NULL);
    const char *mk[] = {"Registered", "Not in Program", "Attended", NULL};
    const char *sf[] = {"Registered", "Attended", NULL};
    status_report *r = compare(&m, mk, sf);
    assert_int_equal(r->nmatched, 2);
    assert_int_equal(r->nunmatched, 0);
    for (int i = 0; i < r->nmatched; i++) {
        assert_string_not_equal(r->matched[i].marketo, "Not in Program");
        assert_string_not_equal(r->matched[i].salesforce, "Not in Program");
    }
    free(r);
    /* A channel of "Not in Program" alone has nothing to compare. */
    const char *only[] = {"Not in Program", NULL};
    r = compare(&m, only, NULL);
    assert_int_equal(r->nmatched, 0);
    assert_int_equal(r->nunmatched, 0);
    free(r);
}

/* A label taken by an explicit entry has no same-label counterpart: reported unmatched on
 * its side, with a fix saying to give it its own entry; case matters. */
static void compare_taken_labels_and_case(void **state) {
    (void)state;
    /* Marketo's "Invited" is Salesforce's "Registered", so Marketo's own "Registered" has no
     * counterpart, and Salesforce's "Invited" is reached by nothing. */
    const char *pairs[] = {"Invited", "Registered", NULL};
    mapping m = make_map(pairs);
    const char *mk[] = {"Not in Program", "Invited", "Registered", NULL};
    const char *sf[] = {"Invited", "Registered", NULL};
    status_report *r = compare(&m, mk, sf);
    assert_int_equal(r->nmatched, 1);
    ASSERT_PAIR(r, 0, "Invited", "Registered");
    assert_int_equal(r->nunmatched, 2);
    const char *fix = fix_of(r, true, "Registered");
    ASSERT_CONTAINS(fix, "\"Registered\"");
    ASSERT_CONTAINS(fix, "statusMap");
    fix = fix_of(r, false, "Invited");
    ASSERT_CONTAINS(fix, "\"Invited\"");
    ASSERT_CONTAINS(fix, "statusMap");
    free(r);

    /* Labels are compared case-sensitively, as Marketo's own sync does. */
    mapping plain = make_map(NULL);
    const char *mk2[] = {"Registered", NULL};
    const char *sf2[] = {"registered", NULL};
    r = compare(&plain, mk2, sf2);
    assert_int_equal(r->nmatched, 0);
    assert_int_equal(r->nunmatched, 2);
    assert_non_null(unmatched(r, true, "Registered"));
    assert_non_null(unmatched(r, false, "registered"));
    free(r);
}

/* Long lists stay within the report's bounds. */
static void compare_stays_within_bounds(void **state) {
    (void)state;
    mapping m = make_map(NULL);
    enum { N = 3 * REPORT_MAX };
    static char mk_labels[N][16], sf_labels[N][16];
    const char *mk[N + 1], *sf[N + 1];
    for (int i = 0; i < N; i++) {
        snprintf(mk_labels[i], sizeof mk_labels[i], "m%d", i);
        snprintf(sf_labels[i], sizeof sf_labels[i], "s%d", i);
        mk[i] = mk_labels[i];
        sf[i] = sf_labels[i];
    }
    mk[N] = sf[N] = NULL;
    status_report *r = compare(&m, mk, sf);
    assert_int_equal(r->nmatched, 0);
    assert_int_equal(r->nunmatched, REPORT_MAX);
    /* The first ones are the ones reported. */
    assert_string_equal(r->unmatched[0].status, "m0");
    assert_true(r->unmatched[0].marketo_side);
    free(r);
    /* A label of the longest length (and the campaign id) still gives a whole fix line. */
    char longest[STATUS_LABEL_MAX];
    memset(longest, 'L', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    const char *mk1[] = {longest, NULL};
    r = compare(&m, mk1, NULL);
    assert_int_equal(r->nunmatched, 1);
    assert_string_equal(r->unmatched[0].status, longest);
    ASSERT_CONTAINS(r->unmatched[0].fix, "7015g000000CampAAA");
    free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        /* translation */
        cmocka_unit_test(same_label_without_entries),
        cmocka_unit_test(explicit_entries_both_ways),
        cmocka_unit_test(entry_labels_lose_same_label_match),
        cmocka_unit_test(chains),
        cmocka_unit_test(swaps),
        cmocka_unit_test(not_in_program_never_maps),
        cmocka_unit_test(case_sensitive),
        cmocka_unit_test(empty_labels),
        cmocka_unit_test(output_bounds),
        /* one-to-one */
        cmocka_unit_test(effective_map_is_one_to_one),
        /* admin body */
        cmocka_unit_test(request_valid_bodies),
        cmocka_unit_test(request_limits_accepted),
        cmocka_unit_test(request_invalid_bodies_name_the_field),
        cmocka_unit_test(request_trailing_garbage_is_refused),
        cmocka_unit_test(request_error_messages),
        /* stored form */
        cmocka_unit_test(json_round_trip),
        cmocka_unit_test(request_then_store),
        cmocka_unit_test(stored_form_rejects_garbage),
        /* validation report */
        cmocka_unit_test(compare_same_labels),
        cmocka_unit_test(compare_explicit_entries),
        cmocka_unit_test(compare_statuses_on_one_side_only),
        cmocka_unit_test(compare_ignores_not_in_program),
        cmocka_unit_test(compare_taken_labels_and_case),
        cmocka_unit_test(compare_stays_within_bounds),
    };
    return cmocka_run_group_tests_name("status_map", tests, utc, NULL);
}
