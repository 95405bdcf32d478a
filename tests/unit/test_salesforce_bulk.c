/* Unit tests: the CSV reader of Bulk API 2.0 query results (include/salesforce_bulk.h) and the
 * "sb1:" cursor of a bulk listing (include/list_cursor.h). */
#include "unit.h"

#include "list_cursor.h"
#include "salesforce_bulk.h"

typedef struct {
    int n;
    char id[8][CRM_SFID_MAX], lead[8][CRM_SFID_MAX], contact[8][CRM_SFID_MAX];
    char status[8][64], email[8][128], first[8][128], last[8][128], company[8][128];
    int64_t modified[8];
    int stop_at; /* row number whose call answers 7, 0: never */
} rows;

static int keep(void *ud, const sf_member_row *r) {
    rows *k = ud;
    assert_true(k->n < 8);
    int i = k->n++;
    snprintf(k->id[i], sizeof k->id[i], "%s", r->id);
    snprintf(k->lead[i], sizeof k->lead[i], "%s", r->lead_id);
    snprintf(k->contact[i], sizeof k->contact[i], "%s", r->contact_id);
    snprintf(k->status[i], sizeof k->status[i], "%s", r->status);
    snprintf(k->email[i], sizeof k->email[i], "%s", r->email);
    snprintf(k->first[i], sizeof k->first[i], "%s", r->first_name);
    snprintf(k->last[i], sizeof k->last[i], "%s", r->last_name);
    snprintf(k->company[i], sizeof k->company[i], "%s", r->company);
    k->modified[i] = r->modified_ms;
    return k->stop_at == k->n ? 7 : 0;
}

/* Two results pages as Bulk API 2.0 writes them: each starts with the header row; values in
 * double quotes, "" for a quote, commas and line breaks inside quotes; relationship columns
 * and columns not read are skipped; the last row of the second page has no line break. */
static const char page1[] =
    "\"Id\",\"Contact.Email\",\"LeadId\",\"ContactId\",\"Status\",\"Email\",\"FirstName\","
    "\"LastName\",\"CompanyOrAccount\",\"LastModifiedDate\"\n"
    "\"00vA00000000001AAA\",\"x@y.z\",\"00QA00000000001AAA\",\"\",\"Registered\","
    "\"Ann@Example.com\",\"Ann \"\"Annie\"\"\",\"O'Neil, Jr.\",\"Acme, \"\"Inc\"\"\nWest\","
    "\"2026-01-02T03:04:05.000Z\"\n";
static const char page2[] =
    "\"Id\",\"Contact.Email\",\"LeadId\",\"ContactId\",\"Status\",\"Email\",\"FirstName\","
    "\"LastName\",\"CompanyOrAccount\",\"LastModifiedDate\"\r\n"
    "\"00vA00000000002AAA\",\"\",\"\",\"003A00000000002AAA\",\"Attended\",\"b@example.com\","
    "\"Bob,\r\nJr\",\"\"\"Quoted\"\"\",\"Ends\"\"\",\"\"";

static void feed_in_chunks(size_t chunk) {
    rows k = {0};
    sfb_csv *p = sfb_csv_new(keep, &k);
    assert_non_null(p);
    for (size_t at = 0; at < sizeof page1 - 1; at += chunk) {
        size_t n = sizeof page1 - 1 - at < chunk ? sizeof page1 - 1 - at : chunk;
        assert_int_equal(sfb_csv_feed(p, page1 + at, n), 0);
    }
    assert_int_equal(sfb_csv_end(p), 0);
    sfb_csv_page(p);
    for (size_t at = 0; at < sizeof page2 - 1; at += chunk) {
        size_t n = sizeof page2 - 1 - at < chunk ? sizeof page2 - 1 - at : chunk;
        assert_int_equal(sfb_csv_feed(p, page2 + at, n), 0);
    }
    assert_int_equal(sfb_csv_end(p), 0);
    sfb_csv_free(p);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.id[0], "00vA00000000001AAA");
    assert_string_equal(k.lead[0], "00QA00000000001AAA");
    assert_string_equal(k.contact[0], "");
    assert_string_equal(k.status[0], "Registered");
    assert_string_equal(k.email[0], "Ann@Example.com");
    assert_string_equal(k.first[0], "Ann \"Annie\"");
    assert_string_equal(k.last[0], "O'Neil, Jr.");
    assert_string_equal(k.company[0], "Acme, \"Inc\"\nWest");
    assert_true(k.modified[0] == 1767323045000LL);
    assert_string_equal(k.contact[1], "003A00000000002AAA");
    assert_string_equal(k.first[1], "Bob,\r\nJr");
    assert_string_equal(k.last[1], "\"Quoted\"");
    assert_string_equal(k.company[1], "Ends\"");
    assert_true(k.modified[1] == 0);
}

static void test_csv_any_chunking(void **state) {
    (void)state;
    for (size_t chunk = 1; chunk <= sizeof page1; chunk++)
        feed_in_chunks(chunk);
}

static void test_csv_stop_and_refusals(void **state) {
    (void)state;
    rows k = {.stop_at = 1};
    sfb_csv *p = sfb_csv_new(keep, &k);
    assert_int_equal(sfb_csv_feed(p, page1, sizeof page1 - 1), 7);
    sfb_csv_free(p);

    static const char *const bad[] = {
        "\"Name\"\n\"x\"\n",                   /* no Id column */
        "\"Id\"\nab\"c\n",                     /* a quote inside an unquoted value */
        "\"Id\"\n\"a\"b\n",                    /* text after a closing quote */
        "\"Id\"\n\"00vA00000000001AAAXYZ\"\n", /* an id too long */
        "\"Id\"\n\"unterminated\n",            /* ends inside quotes (at sfb_csv_end) */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rows none = {0};
        p = sfb_csv_new(keep, &none);
        int rc = sfb_csv_feed(p, bad[i], strlen(bad[i]));
        if (rc == 0) rc = sfb_csv_end(p);
        assert_int_equal(rc, -1);
        assert_true(strlen(sfb_csv_why(p)) > 0);
        assert_int_equal(none.n, 0);
        sfb_csv_free(p);
    }
    /* An empty page (no rows, or only the header) hands nothing. */
    rows none = {0};
    p = sfb_csv_new(keep, &none);
    assert_int_equal(sfb_csv_end(p), 0);
    assert_int_equal(sfb_csv_feed(p, "\"Id\"\n", 5), 0);
    assert_int_equal(sfb_csv_end(p), 0);
    assert_int_equal(none.n, 0);
    sfb_csv_free(p);
}

static void round_trip(const list_cursor *c, const char *text) {
    char out[LIST_CURSOR_MAX];
    list_cursor back;
    assert_int_equal(list_cursor_format(c, out, sizeof out), 0);
    assert_string_equal(out, text);
    assert_int_equal(list_cursor_parse(out, &back), 0);
    assert_int_equal(back.kind, LC_SALESFORCE_BULK);
    assert_string_equal(back.sb_job, c->sb_job);
    assert_string_equal(back.sb_locator, c->sb_locator);
    assert_true(back.sb_handed == c->sb_handed);
}

static void test_bulk_cursor(void **state) {
    (void)state;
    list_cursor c = {.kind = LC_SALESFORCE_BULK, .sb_job = "750A00000000001AAA"};
    round_trip(&c, "sb1:750A00000000001AAA::0");
    c.sb_handed = 2000;
    snprintf(c.sb_locator, sizeof c.sb_locator, "MTAwMDA");
    round_trip(&c, "sb1:750A00000000001AAA:MTAwMDA:2000");
    snprintf(c.sb_locator, sizeof c.sb_locator, "a:b%%c/+=");
    round_trip(&c, "sb1:750A00000000001AAA:a%3Ab%25c/+=:2000");

    static const char *const bad[] = {"sb1:",
                                      "sb1:750A00000000001AAA",
                                      "sb1::x:1",
                                      "sb1:750A00000000001AAA:x:",
                                      "sb1:750A00000000001AAA:x:-1",
                                      "sb1:750A00000000001AAA:x:1a",
                                      "sb1:750A00000000001AAA:%zz:1",
                                      "sb1:750A000000000000000000001AAA:x:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        list_cursor out;
        assert_int_equal(list_cursor_parse(bad[i], &out), -1);
    }
    char out[LIST_CURSOR_MAX];
    list_cursor no_job = {.kind = LC_SALESFORCE_BULK};
    assert_int_equal(list_cursor_format(&no_job, out, sizeof out), -1);
    assert_int_equal(list_cursor_format(&c, out, 20), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_any_chunking),
        cmocka_unit_test(test_csv_stop_and_refusals),
        cmocka_unit_test(test_bulk_cursor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
