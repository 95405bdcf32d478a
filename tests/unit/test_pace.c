/* pace: which changes of a paced read toward Marketo wait for the next read (include/pace.h):
 * the calls a batch makes, the lookups held back first, then the smallest young groups, never
 * the oldest change's group; nothing held when the calls fit or the read is not paced. */
#include "unit.h"

#include "pace.h"

#define NOW  1795946400000LL
#define PACE 2000L

static pace_change change(const char *status, bool needs_lead, int64_t age_ms) {
    return (pace_change){"1001", true, status, needs_lead, NOW - age_ms, PACE_GO};
}

static void calls_count_groups_and_one_lookup(void **state) {
    (void)state;
    pace_change c[700];
    for (size_t i = 0; i < 700; i++)
        c[i] = change(i < 650 ? "Registered" : "Attended", false, 10);
    /* 650 of one status: three calls of 300; 50 of another: one. */
    assert_int_equal(pace_calls(c, 700), 4);
    c[3].needs_lead = c[4].needs_lead = true;
    assert_int_equal(pace_calls(c, 700), 5); /* one lookup for both */
    /* A removal and the same status in another program are other calls. */
    pace_change d[3] = {change("Registered", false, 1), change("Registered", false, 1),
                        change("Registered", false, 1)};
    d[1].member = false;
    d[2].program_id = "1002";
    assert_int_equal(pace_calls(d, 3), 3);
    assert_int_equal(pace_calls(d, 0), 0);
}

static void nothing_held_when_the_calls_fit_or_unpaced(void **state) {
    (void)state;
    pace_change c[3] = {change("A", false, 10), change("B", false, 10), change("C", true, 10)};
    assert_int_equal(pace_hold(c, 3, PACE, 4, NOW), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c[i].verdict, PACE_GO);
    assert_int_equal(pace_hold(c, 3, 0, 1, NOW), 0); /* not a paced read */
    assert_int_equal(pace_hold(c, 0, PACE, 1, NOW), 0);
}

static void lookups_wait_first(void **state) {
    (void)state;
    /* 5 changes of one status (the oldest among them), one needing its lead: 2 calls, room 1. */
    pace_change c[5];
    for (int i = 0; i < 5; i++)
        c[i] = change("Registered", i == 4, 100 - i);
    assert_int_equal(pace_hold(c, 5, PACE, 1, NOW), 1);
    assert_int_equal(c[4].verdict, PACE_LOOKUP_NEXT);
    for (int i = 0; i < 4; i++)
        assert_int_equal(c[i].verdict, PACE_GO);
}

static void lookups_go_when_old_many_or_the_oldest(void **state) {
    (void)state;
    pace_change c[4];
    for (int i = 0; i < 4; i++)
        c[i] = change("Registered", i == 3, 100);
    c[3].received_ms = NOW - 3 * PACE; /* received before the last pace: not held */
    pace_hold(c, 4, PACE, 1, NOW);
    assert_int_equal(c[3].verdict, PACE_GO);
    /* Half of the changes need a lead: they are not fewer than the rest. */
    pace_change d[2] = {change("Registered", false, 200), change("Registered", true, 100)};
    pace_hold(d, 2, PACE, 1, NOW);
    assert_int_equal(d[1].verdict, PACE_GO);
}

static void smallest_young_groups_wait_never_the_oldest(void **state) {
    (void)state;
    /* The oldest change is of "A" (one change); "B" has 3, "C" has 2: room for 2 calls. */
    pace_change c[6] = {change("A", false, 500), change("B", false, 10), change("B", false, 10),
                        change("B", false, 10),  change("C", false, 10), change("C", false, 10)};
    assert_int_equal(pace_hold(c, 6, PACE, 2, NOW), 2);
    assert_int_equal(c[0].verdict, PACE_GO);
    for (int i = 1; i < 4; i++)
        assert_int_equal(c[i].verdict, PACE_GO);
    assert_int_equal(c[4].verdict, PACE_GROUP_NEXT);
    assert_int_equal(c[5].verdict, PACE_GROUP_NEXT);
    /* Room for one: the oldest change's group alone goes. */
    assert_int_equal(pace_hold(c, 6, PACE, 1, NOW), 5);
    assert_int_equal(c[0].verdict, PACE_GO);
    /* A group with an old change is not held: the calls may then pass the room. */
    pace_change d[3] = {change("A", false, 500), change("B", false, 3 * PACE),
                        change("C", false, 10)};
    d[0].received_ms = NOW - 4 * PACE; /* the oldest */
    assert_int_equal(pace_hold(d, 3, PACE, 1, NOW), 1);
    assert_int_equal(d[1].verdict, PACE_GO);
    assert_int_equal(d[2].verdict, PACE_GROUP_NEXT);
}

static void ties_hold_the_first_group(void **state) {
    (void)state;
    pace_change c[3] = {change("A", false, 900), change("B", false, 10), change("C", false, 10)};
    assert_int_equal(pace_hold(c, 3, PACE, 2, NOW), 1);
    assert_int_equal(c[1].verdict, PACE_GROUP_NEXT);
    assert_int_equal(c[2].verdict, PACE_GO);
}

static void the_jobs_share_of_the_budget(void **state) {
    (void)state;
    assert_int_equal(pace_share_calls(50, 0.5), 25);
    assert_int_equal(pace_share_calls(50, 0.3), 15); /* not 14: 50 x 0.3 in binary */
    assert_int_equal(pace_share_calls(20, 0.05), 1); /* at least one: a job always moves */
    assert_int_equal(pace_share_calls(1, 0.5), 1);
    assert_int_equal(pace_share_calls(50, 0.99), 49); /* a live change always finds a call */
    assert_int_equal(pace_share_calls(50, 1.0), 50);
    assert_int_equal(pace_share_concurrent(5, 0.5), 2);
    assert_int_equal(pace_share_concurrent(5, 0.9), 4);
    assert_int_equal(pace_share_concurrent(1, 0.5), 1);
    assert_int_equal(pace_share_concurrent(10, 1.0), 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_jobs_share_of_the_budget),
        cmocka_unit_test(calls_count_groups_and_one_lookup),
        cmocka_unit_test(nothing_held_when_the_calls_fit_or_unpaced),
        cmocka_unit_test(lookups_wait_first),
        cmocka_unit_test(lookups_go_when_old_many_or_the_oldest),
        cmocka_unit_test(smallest_young_groups_wait_never_the_oldest),
        cmocka_unit_test(ties_hold_the_first_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
