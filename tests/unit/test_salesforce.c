/* salesforce: the pure helpers behind every SOQL lookup and Lead creation — string literals
 * with SOQL's escape sequences ("Quoted String Escape Sequences", SOQL and SOSL Reference),
 * IN-lists split by the length of the encoded URL (Salesforce Help 000386264: 16,384 bytes
 * at most, 2,000 recommended), the emails a Lead or Contact can hold (Email is 80
 * characters), and the record a duplicate rule's DUPLICATES_DETECTED error names. */
#include "unit.h"

#include "salesforce.h"

#include <cJSON.h>

/* ------------------------------------------------------------------------------------------
 * sf_soql_literal / sf_soql_quote */

static void literal_escapes_what_soql_defines(void **state) {
    (void)state;
    char out[128];
    assert_int_equal(sf_soql_literal(out, sizeof out, "ann@x.com"), 11);
    assert_string_equal(out, "'ann@x.com'");
    assert_true(sf_soql_literal(out, sizeof out, "o'neil\\\"a\"") > 0);
    assert_string_equal(out, "'o\\'neil\\\\\\\"a\\\"'");
    assert_true(sf_soql_literal(out, sizeof out, "a\nb\rc\td\fe") > 0);
    assert_string_equal(out, "'a\\nb\\rc\\td\\fe'");
    assert_true(sf_soql_literal(out, sizeof out, "") > 0);
    assert_string_equal(out, "''");
    /* UTF-8 passes as is (it is percent-encoded in the URL). */
    assert_true(sf_soql_literal(out, sizeof out, "j\xc3\xbcrgen@x.de") > 0);
    assert_string_equal(out, "'j\xc3\xbcrgen@x.de'");
}

static void literal_refuses_other_control_characters(void **state) {
    (void)state;
    char out[64];
    const char *bad[] = {"a\x01"
                         "b",
                         "\x07",
                         "\x08",
                         "x\x1b",
                         "x\x7f",
                         "\x1f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sf_soql_literal(out, sizeof out, bad[i]), -1);
}

static void literal_never_cuts(void **state) {
    (void)state;
    char out[8];
    assert_int_equal(sf_soql_literal(out, sizeof out, "abcde"), 7); /* 'abcde' fills it */
    assert_string_equal(out, "'abcde'");
    assert_int_equal(sf_soql_literal(out, sizeof out, "abcdef"), -1);
    assert_int_equal(sf_soql_literal(out, sizeof out, "abcd'"), -1); /* the escape needs 2 */
    assert_int_equal(sf_soql_literal(out, 2, ""), -1);
}

static void quote_appends_or_leaves_the_buffer(void **state) {
    (void)state;
    char buf[32] = "Id = ";
    assert_int_equal(sf_soql_quote(buf, sizeof buf, "701x"), 0);
    assert_string_equal(buf, "Id = '701x'");
    assert_int_equal(sf_soql_quote(buf, sizeof buf, "a\x02"), -1);
    assert_string_equal(buf, "Id = '701x'");
    assert_int_equal(sf_soql_quote(buf, sizeof buf, "0123456789abcdefghijkl"), -1);
    assert_string_equal(buf, "Id = '701x'");
}

/* ------------------------------------------------------------------------------------------
 * sf_url_escaped_len / sf_soql_in */

static void escaped_length_counts_like_curl(void **state) {
    (void)state;
    assert_int_equal(sf_url_escaped_len("aZ09-._~"), 8);
    assert_int_equal(sf_url_escaped_len("a b'@,+"), 2 + 5 * 3);
    assert_int_equal(sf_url_escaped_len("\xc3\xbc"), 6);
    assert_int_equal(sf_url_escaped_len(""), 0);
}

/* The URL sf_query would send for soql, as counted by sf_soql_in. */
static size_t query_url_len(const char *soql) {
    return 32 + sf_url_escaped_len(soql);
}

static void in_list_takes_what_fits(void **state) {
    (void)state;
    const char *v[] = {"a@x.com", "b@x.com", "c'd@x.com"};
    char *soql = NULL;
    assert_int_equal(sf_soql_in("SELECT Id FROM Lead WHERE Email IN (", ")", v, 3, 100, &soql), 3);
    assert_string_equal(soql,
                        "SELECT Id FROM Lead WHERE Email IN ('a@x.com', 'b@x.com', 'c\\'d@x.com')");
    free(soql);
    assert_int_equal(sf_soql_in("X IN (", ")", v, 3, 2, &soql), 2); /* the count limit */
    assert_string_equal(soql, "X IN ('a@x.com', 'b@x.com')");
    free(soql);
}

static void in_list_splits_by_encoded_length(void **state) {
    (void)state;
    /* 300 emails of 80 characters: every query stays within the budget, none is cut, and
     * together they carry every value exactly once, in order. */
    enum { N = 300 };
    char(*emails)[128] = calloc(N, sizeof *emails);
    const char **v = calloc(N, sizeof *v);
    assert_non_null(emails);
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        snprintf(emails[i], sizeof emails[i], "o'brien+%03d.%0*d@example.com", i, 80 - 24, 0);
        assert_int_equal(strlen(emails[i]), 80);
        v[i] = emails[i];
    }
    const char *head = "SELECT Id, Email FROM Contact WHERE Email IN (";
    size_t at = 0, queries = 0;
    while (at < N) {
        char *soql = NULL;
        long k = sf_soql_in(head, ")", v + at, N - at, 100, &soql);
        assert_true(k > 0);
        assert_true(query_url_len(soql) <= SF_QUERY_URI_BUDGET);
        char lit[200];
        sf_soql_literal(lit, sizeof lit, v[at]);
        assert_non_null(strstr(soql, lit));
        sf_soql_literal(lit, sizeof lit, v[at + (size_t)k - 1]);
        assert_non_null(strstr(soql, lit));
        assert_string_equal(soql + strlen(soql) - 1, ")");
        free(soql);
        at += (size_t)k;
        queries++;
    }
    assert_int_equal(at, N);
    assert_true(queries > 3); /* 100 per query would have passed the budget */
    free(emails);
    free(v);
}

static void in_list_refuses_an_unusable_first_value(void **state) {
    (void)state;
    char *soql = (char *)"untouched";
    const char *ctl[] = {"a\x01@x.com", "b@x.com"};
    assert_int_equal(sf_soql_in("X IN (", ")", ctl, 2, 100, &soql), 0);
    assert_null(soql);
    /* An unusable value after the first ends the list before it. */
    const char *later[] = {"b@x.com", "a\x01@x.com"};
    assert_int_equal(sf_soql_in("X IN (", ")", later, 2, 100, &soql), 1);
    assert_string_equal(soql, "X IN ('b@x.com')");
    free(soql);
    char *huge = malloc(3000);
    memset(huge, 'a', 2999);
    huge[2999] = '\0';
    const char *big[] = {huge};
    assert_int_equal(sf_soql_in("X IN (", ")", big, 1, 100, &soql), 0);
    assert_null(soql);
    free(huge);
}

/* ------------------------------------------------------------------------------------------
 * sf_email_check */

static void email_check(void **state) {
    (void)state;
    char why[160];
    assert_int_equal(sf_email_check("ann@example.com", why, sizeof why), 0);
    char eighty[81];
    memset(eighty, 'a', 80);
    eighty[80] = '\0';
    assert_int_equal(sf_email_check(eighty, why, sizeof why), 0);
    /* 80 characters of which some take two bytes: still 80. */
    char wide[120] = "";
    for (int i = 0; i < 10; i++)
        strcat(wide, "\xc3\xbc");
    memcpy(wide + 20, eighty, 70);
    wide[90] = '\0';
    assert_int_equal(sf_email_check(wide, why, sizeof why), 0);
    char longer[82];
    memset(longer, 'a', 81);
    longer[81] = '\0';
    assert_int_equal(sf_email_check(longer, why, sizeof why), -1);
    assert_string_equal(why,
                        "it is 81 characters long and Salesforce's Email field holds at most 80");
    assert_int_equal(sf_email_check("a\x01"
                                    "b@x.com",
                                    why, sizeof why),
                     -1);
    assert_string_equal(why, "it contains the control character U+0001, which no Salesforce email "
                             "address can hold");
    assert_int_equal(sf_email_check("a\tb@x.com", why, sizeof why), -1);
    assert_int_equal(sf_email_check("", why, sizeof why), -1);
    assert_string_equal(why, "it is empty");
}

/* ------------------------------------------------------------------------------------------
 * sf_duplicate_match */

static cJSON *parse(const char *text) {
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    return o;
}

static void duplicate_match_prefers_a_contact(void **state) {
    (void)state;
    /* A Collections SaveResult whose error carries duplicateResult (the SOAP DuplicateError's
     * field), matching a Lead and a Contact. */
    cJSON *r =
        parse("{\"success\":false,\"errors\":[{\"statusCode\":\"DUPLICATES_DETECTED\","
              "\"message\":\"Use one of these records?\",\"fields\":[],\"duplicateResult\":{"
              "\"allowSave\":false,\"duplicateRule\":\"Standard_Lead_Duplicate_Rule\","
              "\"duplicateRuleEntityType\":\"Lead\",\"errorMessage\":\"Use one of these records?\","
              "\"matchResults\":[{\"entityType\":\"Lead\",\"errors\":[],\"matchEngine\":\"x\","
              "\"matchRecords\":[{\"additionalInformation\":[],\"fieldDiffs\":[],"
              "\"matchConfidence\":100.0,\"record\":{\"attributes\":{\"type\":\"Lead\"},"
              "\"Id\":\"00QSm0000000001AAA\"}}],\"rule\":\"r\",\"size\":1,\"success\":true},"
              "{\"entityType\":\"Contact\",\"errors\":[],\"matchRecords\":[{\"record\":{"
              "\"attributes\":{\"type\":\"Contact\"},\"Id\":\"003Sm0000000002AAA\"}}],"
              "\"size\":1,\"success\":true}]}}]}");
    char id[19];
    assert_true(sf_duplicate_match(r, id, sizeof id));
    assert_string_equal(id, "003Sm0000000002AAA");
    cJSON_Delete(r);
}

static void duplicate_match_reads_the_rest_spelling(void **state) {
    (void)state;
    /* A single-record create's 400 error as sf_create_record hands it on: REST answers have
     * shown the key as "duplicateResut". */
    cJSON *r = parse(
        "{\"success\":false,\"errors\":[{\"duplicateResut\":{\"allowSave\":false,"
        "\"matchResults\":[{\"entityType\":\"Lead\",\"matchRecords\":[{\"record\":{"
        "\"Id\":\"00QSm0000000003AAA\"}}]}]},\"errorCode\":\"DUPLICATES_DETECTED\","
        "\"statusCode\":\"DUPLICATES_DETECTED\",\"message\":\"Use one of these records?\"}]}");
    char id[19];
    assert_true(sf_duplicate_match(r, id, sizeof id));
    assert_string_equal(id, "00QSm0000000003AAA");
    cJSON_Delete(r);
}

static void duplicate_match_names_nothing_without_details(void **state) {
    (void)state;
    char id[19] = "";
    /* The REST guide's Collections example: no duplicateResult. */
    cJSON *bare = parse("{\"success\":false,\"errors\":[{\"statusCode\":\"DUPLICATES_DETECTED\","
                        "\"message\":\"Use one of these records?\",\"fields\":[]}]}");
    assert_false(sf_duplicate_match(bare, id, sizeof id));
    cJSON_Delete(bare);
    /* Another error, an Account match, a malformed id, success: nothing. */
    const char *none[] = {
        "{\"success\":false,\"errors\":[{\"statusCode\":\"REQUIRED_FIELD_MISSING\","
        "\"duplicateResult\":{\"matchResults\":[{\"matchRecords\":[{\"record\":{\"Id\":"
        "\"003Sm0000000002AAA\"}}]}]}}]}",
        "{\"success\":false,\"errors\":[{\"statusCode\":\"DUPLICATES_DETECTED\","
        "\"duplicateResult\":{\"matchResults\":[{\"matchRecords\":[{\"record\":{\"Id\":"
        "\"001Sm0000000002AAA\"}}]}]}}]}",
        "{\"success\":false,\"errors\":[{\"statusCode\":\"DUPLICATES_DETECTED\","
        "\"duplicateResult\":{\"matchResults\":[{\"matchRecords\":[{\"record\":{\"Id\":"
        "\"003x\"}}]}]}}]}",
        "{\"id\":\"00QSm0000000003AAA\",\"success\":true,\"errors\":[]}",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        cJSON *r = parse(none[i]);
        assert_false(sf_duplicate_match(r, id, sizeof id));
        cJSON_Delete(r);
    }
    assert_false(sf_duplicate_match(NULL, id, sizeof id));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_escapes_what_soql_defines),
        cmocka_unit_test(literal_refuses_other_control_characters),
        cmocka_unit_test(literal_never_cuts),
        cmocka_unit_test(quote_appends_or_leaves_the_buffer),
        cmocka_unit_test(escaped_length_counts_like_curl),
        cmocka_unit_test(in_list_takes_what_fits),
        cmocka_unit_test(in_list_splits_by_encoded_length),
        cmocka_unit_test(in_list_refuses_an_unusable_first_value),
        cmocka_unit_test(email_check),
        cmocka_unit_test(duplicate_match_prefers_a_contact),
        cmocka_unit_test(duplicate_match_reads_the_rest_spelling),
        cmocka_unit_test(duplicate_match_names_nothing_without_details),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
