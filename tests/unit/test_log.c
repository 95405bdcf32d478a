/* log: the per-site limit on lines that outside input can cause, and the lines it writes. */
#include "unit.h"

#include "log.h"

#include <unistd.h>

/* Runs fn with stderr going to a temporary file; returns what it wrote (malloc'd). */
static char *capture_stderr(void (*fn)(void)) {
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    /* The log writes with write(2) on fd 2, which shares tmp's offset: its end is the size. */
    long n = (long)lseek(fileno(tmp), 0, SEEK_END);
    assert_true(n >= 0);
    char *out = calloc(1, (size_t)n + 1);
    assert_non_null(out);
    assert_int_equal(pread(fileno(tmp), out, (size_t)n, 0), n);
    fclose(tmp);
    return out;
}

static int count_lines(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void limit_per_second(void **state) {
    (void)state;
    log_limit l = {0};
    long held = -1;
    int written = 0;
    for (int i = 0; i < 25; i++) {
        held = -1;
        if (log_limit_take(&l, 100, &held)) {
            assert_int_equal(held, 0);
            written++;
        }
    }
    assert_int_equal(written, LOG_LIMIT_PER_S);
    /* The next second's first line carries the 15 held back; then the count starts again. */
    assert_true(log_limit_take(&l, 101, &held));
    assert_int_equal(held, 15);
    for (int i = 1; i < LOG_LIMIT_PER_S; i++) {
        assert_true(log_limit_take(&l, 101, &held));
        assert_int_equal(held, 0);
    }
    assert_false(log_limit_take(&l, 101, &held));
    /* A quiet spell loses nothing: the one held back is reported whenever the next line is. */
    assert_true(log_limit_take(&l, 500, &held));
    assert_int_equal(held, 1);
}

static void write_held_lines(void) {
    log_setup(LOG_INFO, LOG_FORMAT_JSON);
    log_kv(LOG_WARN, 15, "webhook refused", "reason", "bad \"x\"", (const char *)0);
    log_kv(LOG_WARN, 0, "webhook refused", "reason", "y", (const char *)0);
    log_fmt(LOG_ERROR, 3, "%d events lost", 2);
    log_setup(LOG_INFO, LOG_FORMAT_TEXT);
    log_kv(LOG_WARN, 7, "webhook refused", "reason", "z", (const char *)0);
    log_setup(LOG_INFO, LOG_FORMAT_JSON);
}

static void held_count_in_the_line(void **state) {
    (void)state;
    char *out = capture_stderr(write_held_lines);
    assert_non_null(strstr(out, "\"msg\":\"webhook refused\",\"reason\":\"bad \\\"x\\\"\","
                                "\"suppressed\":\"15\"}\n"));
    assert_non_null(strstr(out, "\"msg\":\"webhook refused\",\"reason\":\"y\"}\n"));
    assert_non_null(strstr(out, "\"msg\":\"2 events lost\",\"suppressed\":\"3\"}\n"));
    assert_non_null(strstr(out, " warn webhook refused reason=z suppressed=7\n"));
    assert_int_equal(count_lines(out, "\n"), 4);
    free(out);
}

static void limited_lines(void) {
    log_setup(LOG_INFO, LOG_FORMAT_JSON);
    for (int i = 0; i < 25; i++)
        LOG_KV_LIMITED(LOG_WARN, "refused", "n", "1");
    for (int i = 0; i < 25; i++)
        LOG_KV_LIMITED(LOG_DEBUG, "debug refused", "n", "1");
}

static void macro_limits_its_own_site(void **state) {
    (void)state;
    char *out = capture_stderr(limited_lines);
    /* 25 calls within microseconds span at most two seconds of the clock: 10 to 20 lines. */
    int n = count_lines(out, "\"msg\":\"refused\"");
    assert_true(n >= LOG_LIMIT_PER_S && n <= 2 * LOG_LIMIT_PER_S);
    assert_int_equal(count_lines(out, "debug refused"), 0); /* below the level: nothing */
    free(out);
}

static void write_forged_lines(void) {
    log_setup(LOG_INFO, LOG_FORMAT_TEXT);
    /* What a client can put in a header or a body: a line break and a forged line after it. */
    log_kv(LOG_WARN, 0, "webhook refused", "client",
           "1.2.3.4\n2026-12-07T00:00:00.000Z info admin login ok user=root", "reason",
           "a\rb\tc\x01"
           "d\x7f"
           "\\e \"quoted\" x=y",
           (const char *)0);
    log_fmt(LOG_WARN, 0, "parse error near \"%s\"", "<a>\n<b>");
    log_setup(LOG_INFO, LOG_FORMAT_JSON);
}

static void text_lines_escape_control_characters(void **state) {
    (void)state;
    char *out = capture_stderr(write_forged_lines);
    /* Two calls, two lines: no byte of the input started a line of its own. */
    assert_int_equal(count_lines(out, "\n"), 2);
    assert_non_null(strstr(out, " warn webhook refused client=\"1.2.3.4\\n2026-12-07T00:00:00.000Z "
                                "info admin login ok user=root\" reason=\"a\\rb\\tc\\x01d\\x7f"
                                "\\\\e \\\"quoted\\\" x=y\"\n"));
    assert_non_null(strstr(out, " warn parse error near \"<a>\\n<b>\"\n"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_per_second),
        cmocka_unit_test(held_count_in_the_line),
        cmocka_unit_test(macro_limits_its_own_site),
        cmocka_unit_test(text_lines_escape_control_characters),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
