/* tzguard: which Marketo times look rendered in another zone, and which zone is named. */
#include "unit.h"

#include "tzguard.h"

#define H  (3600 * 1000LL)
#define MN (60 * 1000LL)
/* 2026-12-07T15:00:00Z and 2026-07-07T15:00:00Z (US and EU on standard / daylight time). */
#define WINTER 1796655600000LL
#define SUMMER 1783436400000LL

static void whole_hours_within_five_minutes(void **state) {
    (void)state;
    int64_t rx = WINTER;
    assert_int_equal(tzguard_offset_hours(rx - 6 * H, rx), 6);
    assert_int_equal(tzguard_offset_hours(rx - 6 * H - 5 * MN, rx), 6);
    assert_int_equal(tzguard_offset_hours(rx - 6 * H + 5 * MN, rx), 6);
    assert_int_equal(tzguard_offset_hours(rx + 5 * H + 2 * MN, rx), -5); /* in the future */
    assert_int_equal(tzguard_offset_hours(rx - 1 * H, rx), 1);
    assert_int_equal(tzguard_offset_hours(rx - 26 * H, rx), 26);
}

static void not_suspect(void **state) {
    (void)state;
    int64_t rx = WINTER;
    assert_int_equal(tzguard_offset_hours(rx - 3000, rx), 0);           /* a webhook's transit */
    assert_int_equal(tzguard_offset_hours(rx - 4 * MN, rx), 0);         /* 0 h */
    assert_int_equal(tzguard_offset_hours(rx - 6 * H - 6 * MN, rx), 0); /* past the slack */
    assert_int_equal(tzguard_offset_hours(rx - 30 * MN, rx), 0);
    assert_int_equal(tzguard_offset_hours(rx - 90 * MN, rx), 0);
    assert_int_equal(tzguard_offset_hours(rx - 27 * H, rx), 0); /* no two zones are so far */
    assert_int_equal(tzguard_offset_hours(0, rx), 0);           /* no occurredAt */
    assert_int_equal(tzguard_offset_hours(rx, 0), 0);
}

static void zones_by_offset_and_season(void **state) {
    (void)state;
    assert_string_equal(tzguard_zone_for(-6 * 3600, WINTER), "America/Chicago");
    assert_string_equal(tzguard_zone_for(-5 * 3600, SUMMER), "America/Chicago");
    assert_string_equal(tzguard_zone_for(-5 * 3600, WINTER), "America/New_York");
    assert_string_equal(tzguard_zone_for(-7 * 3600, SUMMER), "America/Los_Angeles");
    assert_string_equal(tzguard_zone_for(-7 * 3600, WINTER), "America/Denver");
    assert_string_equal(tzguard_zone_for(0, WINTER), "UTC");
    assert_string_equal(tzguard_zone_for(3600, SUMMER), "Europe/London");
    assert_string_equal(tzguard_zone_for(3600, WINTER), "Europe/Paris");
    assert_string_equal(tzguard_zone_for(11 * 3600, WINTER), "Australia/Sydney"); /* its summer */
    assert_string_equal(tzguard_zone_for(10 * 3600, SUMMER), "Australia/Sydney");
    assert_string_equal(tzguard_zone_for(9 * 3600, WINTER), "Asia/Tokyo");
    assert_null(tzguard_zone_for(-1 * 3600, WINTER));
}

static void daylight_time_changes_at_the_rules_instants(void **state) {
    (void)state;
    /* United States 2026: 8 March 02:00 local to 1 November 02:00 local (Chicago: 08:00Z and
     * 07:00Z); European Union: 29 March to 25 October, 01:00Z. */
    const int64_t us_start = 1772956800000LL, us_end = 1793516400000LL;
    const int64_t eu_start = 1774746000000LL, eu_end = 1792890000000LL;
    assert_string_equal(tzguard_zone_for(-6 * 3600, us_start - 1000), "America/Chicago");
    assert_string_equal(tzguard_zone_for(-5 * 3600, us_start), "America/Chicago");
    assert_string_equal(tzguard_zone_for(-5 * 3600, us_end - 1000), "America/Chicago");
    /* At that instant Denver is still on daylight time (UTC-6, until 08:00Z): named first. */
    assert_string_equal(tzguard_zone_for(-6 * 3600, us_end), "America/Denver");
    assert_string_equal(tzguard_zone_for(-6 * 3600, us_end + H), "America/Chicago");
    assert_string_equal(tzguard_zone_for(3600, eu_start - 1000), "Europe/Paris");
    assert_string_equal(tzguard_zone_for(3600, eu_start), "Europe/London");
    assert_string_equal(tzguard_zone_for(3600, eu_end - 1000), "Europe/London");
    assert_string_equal(tzguard_zone_for(3600, eu_end), "Europe/Paris");
}

static void note_names_the_zone_or_the_offset(void **state) {
    (void)state;
    char buf[300];
    tzguard_note(6, "UTC", 0, WINTER, buf, sizeof buf);
    assert_string_equal(buf, "occurredAt is 6 h behind the receive time: MARKETO_TIMEZONE may be "
                             "America/Chicago (UTC-06:00) rather than UTC");
    tzguard_note(-6, "America/Chicago", -6 * 3600, WINTER, buf, sizeof buf);
    assert_string_equal(buf, "occurredAt is 6 h ahead of the receive time: MARKETO_TIMEZONE may "
                             "be UTC (UTC+00:00) rather than America/Chicago");
    tzguard_note(-3, "Europe/Paris", 3600, WINTER, buf, sizeof buf); /* UTC+4 */
    assert_string_equal(buf, "occurredAt is 3 h ahead of the receive time: MARKETO_TIMEZONE may "
                             "be Asia/Dubai (UTC+04:00) rather than Europe/Paris");
    tzguard_note(2, "UTC", 0, WINTER, buf, sizeof buf); /* UTC-2: none of the common zones */
    assert_string_equal(buf, "occurredAt is 2 h behind the receive time: MARKETO_TIMEZONE may be "
                             "a zone at UTC-02:00 rather than UTC");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_hours_within_five_minutes),
        cmocka_unit_test(not_suspect),
        cmocka_unit_test(zones_by_offset_and_season),
        cmocka_unit_test(daylight_time_changes_at_the_rules_instants),
        cmocka_unit_test(note_names_the_zone_or_the_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
