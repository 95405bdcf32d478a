/* marketo: the pure parts of the client (when the daily quota resets, error classes). */
#include "unit.h"

#include "marketo.h"

/* Expected values computed with Python's zoneinfo America/Chicago. */
static void quota_resets_at_midnight_us_central(void **state) {
    (void)state;
    const struct {
        const char *what;
        int64_t now, reset;
    } cases[] = {
        {"winter (CST, UTC-6)", 1796652000000LL /* 2026-12-07T14:00Z */,
         1796709600000LL /* 2026-12-08T06:00Z */},
        {"summer (CDT, UTC-5), a second before midnight", 1782881999000LL, 1782882000000LL},
        {"exactly midnight: the next one", 1782882000000LL, 1782968400000LL},
        {"the day daylight saving starts: its midnight is still CST", 1772949599000LL,
         1772949600000LL},
        {"after the change: the next midnight is CDT", 1772953200000LL, 1773032400000LL},
        {"the eve of the day it ends: that midnight is CDT", 1793448000000LL, 1793509200000LL},
        {"the day it ends: the next midnight is CST", 1793511000000LL, 1793599200000LL},
        {"another year's second Sunday of March", 1805004000000LL, 1805086800000LL},
        {"a leap day", 1709182800000LL, 1709186400000LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = mkto_quota_reset_ms(cases[i].now);
        if (got != cases[i].reset)
            fail_msg("%s: reset %lld, want %lld", cases[i].what, (long long)got,
                     (long long)cases[i].reset);
    }
}

static void daily_quota_is_a_wait(void **state) {
    (void)state;
    assert_int_equal(mkto_classify("607"), MK_BUSY);
    assert_int_equal(mkto_classify("606"), MK_RETRY);
    assert_int_equal(mkto_classify("615"), MK_RETRY);
    assert_int_equal(mkto_classify("603"), MK_PERMANENT);
    assert_int_equal(mkto_classify("1013"), MK_PERMANENT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quota_resets_at_midnight_us_central),
        cmocka_unit_test(daily_quota_is_a_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
