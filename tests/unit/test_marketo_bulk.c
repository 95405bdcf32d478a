/* marketo_bulk: the bulk extract file's CSV, parsed in pieces of any size
 * (include/marketo_bulk.h); and the bulk listing's cursor (include/list_cursor.h). */
#include "unit.h"

#include "list_cursor.h"
#include "marketo_bulk.h"

/* What the parser handed: each record's fields joined with '|', and the offset after it. */
typedef struct {
    char text[4096];
    long long next[32];
    int n, stop_after;
} got;

static int collect(void *ud, char *const *f, int n, long long next) {
    got *g = ud;
    size_t len = strlen(g->text);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(g->text + len, sizeof g->text - len, "%s%s", i ? "|" : "", f[i]);
    snprintf(g->text + len, sizeof g->text - len, "\n");
    g->next[g->n++] = next;
    return g->stop_after && g->n >= g->stop_after;
}

/* Parses data fed `step` bytes at a time from offset 100. */
static void parse_in_steps(const char *data, size_t step, got *g) {
    mkb_csv *p = malloc(sizeof *p);
    assert_non_null(p);
    mkb_csv_init(p, 100);
    memset(g, 0, sizeof *g);
    size_t len = strlen(data);
    for (size_t at = 0; at < len; at += step) {
        size_t n = len - at < step ? len - at : step;
        assert_int_equal(mkb_csv_feed(p, data + at, n, at + n >= len, collect, g), MKB_CSV_FED);
    }
    free(p);
}

static void quoted_fields_parse_whatever_the_pieces(void **state) {
    (void)state;
    const char *file = "leadId,email,firstName\n"
                       "1,a@x.com,\"Smith, Jr.\"\n"
                       "2,b@x.com,\"say \"\"hi\"\"\"\r\n"
                       "3,c@x.com,\"two\nlines\"\n"
                       "\n"
                       "4,,null\n"
                       "5,\"\",last";
    const char *want = "leadId|email|firstName\n1|a@x.com|Smith, Jr.\n"
                       "2|b@x.com|say \"hi\"\n3|c@x.com|two\nlines\n4||null\n5||last\n";
    size_t len = strlen(file);
    for (size_t step = 1; step <= len; step++) {
        got g;
        parse_in_steps(file, step, &g);
        assert_string_equal(g.text, want);
        assert_int_equal(g.n, 6);
        /* Each record's end offset is where the next record starts (from 100). */
        assert_int_equal(g.next[0], 100 + 23);
        assert_int_equal(g.next[1], 100 + 23 + 23);
        assert_int_equal(g.next[5], 100 + (long long)len);
    }
}

static void a_stop_leaves_the_rest_unparsed(void **state) {
    (void)state;
    mkb_csv p;
    got g = {.stop_after = 1};
    mkb_csv_init(&p, 0);
    assert_int_equal(mkb_csv_feed(&p, "a,b\nc,d\n", 8, true, collect, &g), MKB_CSV_STOPPED);
    assert_string_equal(g.text, "a|b\n");
    assert_int_equal(g.next[0], 4);
}

static void an_endless_record_is_refused(void **state) {
    (void)state;
    mkb_csv *p = malloc(sizeof *p);
    assert_non_null(p);
    got g = {0};
    mkb_csv_init(p, 0);
    assert_int_equal(mkb_csv_feed(p, "ok\n", 3, false, collect, &g), MKB_CSV_FED);
    char *big = malloc(MKB_RECORD_MAX + 10);
    assert_non_null(big);
    memset(big, 'x', MKB_RECORD_MAX + 10);
    assert_int_equal(mkb_csv_feed(p, big, MKB_RECORD_MAX + 10, false, collect, &g),
                     MKB_CSV_TOO_LONG);
    assert_int_equal(p->record_start, 3);
    mkb_csv_init(p, 0);
    assert_int_equal(mkb_csv_feed(p, ",,,,,,,,,,,,,,,,,,,,\n", 21, false, collect, &g),
                     MKB_CSV_TOO_LONG);
    free(big);
    free(p);
}

static void bulk_cursors_round_trip(void **state) {
    (void)state;
    list_cursor c = {.kind = LC_MARKETO_BULK,
                     .export_id = "b5ca52a9-5ecb-4966-b5a9-11659a8b4c2b",
                     .offset = 123456789};
    char out[LIST_CURSOR_MAX];
    assert_int_equal(list_cursor_format(&c, out, sizeof out), 0);
    assert_string_equal(out, "mb1:b5ca52a9-5ecb-4966-b5a9-11659a8b4c2b:123456789");
    list_cursor back;
    assert_int_equal(list_cursor_parse(out, &back), 0);
    assert_int_equal(back.kind, LC_MARKETO_BULK);
    assert_string_equal(back.export_id, c.export_id);
    assert_int_equal(back.offset, 123456789);
    assert_int_equal(list_cursor_parse("mb1:abc:0", &back), 0);
    assert_int_equal(back.offset, 0);
    const char *bad[] = {"mb1:",      "mb1:abc",  "mb1::5",   "mb1:abc:",
                         "mb1:a b:1", "mb1:a:-1", "mb1:a:1x", "mb1:a:1234567890123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(list_cursor_parse(bad[i], &back), -1);
    c = (list_cursor){.kind = LC_MARKETO_BULK, .export_id = "", .offset = 1};
    assert_int_equal(list_cursor_format(&c, out, sizeof out), -1);
    c = (list_cursor){.kind = LC_MARKETO_BULK, .export_id = "a:b", .offset = 1};
    assert_int_equal(list_cursor_format(&c, out, sizeof out), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoted_fields_parse_whatever_the_pieces),
        cmocka_unit_test(a_stop_leaves_the_rest_unparsed),
        cmocka_unit_test(an_endless_record_is_refused),
        cmocka_unit_test(bulk_cursors_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
