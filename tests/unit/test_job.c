/* job: jobs' states and phases and the one table of transitions (include/job.h), when a job's
 * corrections all have an outcome, job ids; and the listing cursors' text
 * (include/list_cursor.h). */
#include "unit.h"

#include "job.h"
#include "list_cursor.h"

static void assert_step(job_step s, bool allowed, job_state st, job_phase ph, bool ask) {
    assert_int_equal(s.allowed, allowed);
    assert_int_equal(s.state, st);
    assert_int_equal(s.phase, ph);
    assert_int_equal(s.cancel_asked, ask);
}

static void a_job_walks_its_phases_in_order(void **state) {
    (void)state;
    assert_step(job_next(JOB_QUEUED, JOB_WAITING, JOB_EV_CLAIM), true, JOB_RUNNING,
                JOB_LIST_MARKETO, false);
    assert_step(job_next(JOB_RUNNING, JOB_LIST_MARKETO, JOB_EV_PHASE_DONE), true, JOB_RUNNING,
                JOB_LIST_SALESFORCE, false);
    assert_step(job_next(JOB_RUNNING, JOB_LIST_SALESFORCE, JOB_EV_PHASE_DONE), true, JOB_RUNNING,
                JOB_MARKETO_ONLY, false);
    assert_step(job_next(JOB_RUNNING, JOB_MARKETO_ONLY, JOB_EV_PHASE_DONE), true, JOB_RUNNING,
                JOB_APPLYING, false);
    assert_step(job_next(JOB_RUNNING, JOB_APPLYING, JOB_EV_PHASE_DONE), true, JOB_DONE,
                JOB_FINISHED, false);
    /* A job is claimed once: a running one is taken over, not claimed. */
    assert_step(job_next(JOB_RUNNING, JOB_LIST_MARKETO, JOB_EV_CLAIM), false, JOB_RUNNING,
                JOB_LIST_MARKETO, false);
}

static void a_takeover_resumes_where_the_job_stands(void **state) {
    (void)state;
    for (job_phase p = JOB_LIST_MARKETO; p <= JOB_MARKETO_ONLY; p++)
        assert_step(job_next(JOB_RUNNING, p, JOB_EV_TAKEOVER), true, JOB_RUNNING, p, false);
    /* No process works on an applying job, a queued one is claimed. */
    assert_false(job_next(JOB_RUNNING, JOB_APPLYING, JOB_EV_TAKEOVER).allowed);
    assert_false(job_next(JOB_QUEUED, JOB_WAITING, JOB_EV_TAKEOVER).allowed);
}

static void cancel_is_at_once_unless_a_process_works_on_it(void **state) {
    (void)state;
    assert_step(job_next(JOB_QUEUED, JOB_WAITING, JOB_EV_CANCEL), true, JOB_CANCELLED, JOB_FINISHED,
                false);
    assert_step(job_next(JOB_RUNNING, JOB_APPLYING, JOB_EV_CANCEL), true, JOB_CANCELLED,
                JOB_FINISHED, false);
    assert_step(job_next(JOB_RUNNING, JOB_LIST_SALESFORCE, JOB_EV_CANCEL), true, JOB_RUNNING,
                JOB_LIST_SALESFORCE, true);
    assert_step(job_next(JOB_RUNNING, JOB_LIST_SALESFORCE, JOB_EV_STOPPED), true, JOB_CANCELLED,
                JOB_FINISHED, false);
    assert_step(job_next(JOB_RUNNING, JOB_MARKETO_ONLY, JOB_EV_FAIL), true, JOB_FAILED,
                JOB_FINISHED, false);
}

static void a_finished_job_stays_as_it_ended(void **state) {
    (void)state;
    job_state ends[] = {JOB_DONE, JOB_FAILED, JOB_CANCELLED};
    for (size_t i = 0; i < 3; i++) {
        assert_true(job_state_final(ends[i]));
        for (job_event e = JOB_EV_CLAIM; e <= JOB_EV_STOPPED; e++)
            assert_step(job_next(ends[i], JOB_FINISHED, e), false, ends[i], JOB_FINISHED, false);
    }
    assert_false(job_state_final(JOB_QUEUED));
    assert_false(job_state_final(JOB_RUNNING));
}

static void names_round_trip(void **state) {
    (void)state;
    for (job_state s = JOB_QUEUED; s <= JOB_CANCELLED; s++)
        assert_int_equal(job_state_parse(job_state_name(s)), s);
    for (job_phase p = JOB_WAITING; p <= JOB_FINISHED; p++)
        assert_int_equal(job_phase_parse(job_phase_name(p)), p);
    assert_string_equal(job_kind_name(JOB_BACKFILL), "backfill");
    assert_string_equal(job_trigger_name(JOB_BY_GAP), "gap");
    assert_string_equal(job_phase_name(JOB_LIST_SALESFORCE), "listing_salesforce");
    assert_int_equal(job_state_parse("applying"), -1);
    assert_int_equal(job_kind_parse(NULL), -1);
}

static void outcomes_complete_when_every_correction_has_one(void **state) {
    (void)state;
    assert_true(job_outcomes_complete(0, 0, 0, 0));
    assert_false(job_outcomes_complete(5, 2, 1, 1));
    assert_true(job_outcomes_complete(5, 2, 2, 1));
    assert_true(job_outcomes_complete(5, 4, 2, 0)); /* counted twice after a crash: still done */
}

static void ids_are_valid_and_distinct(void **state) {
    (void)state;
    char a[JOB_ID_MAX], b[JOB_ID_MAX];
    job_id_make(1795946400000LL, 7, a, sizeof a);
    job_id_make(1795946400000LL, 8, b, sizeof b);
    assert_string_equal(a, "jmx1o4740-000007");
    assert_true(job_id_valid(a));
    assert_string_not_equal(a, b);
    job_id_make(1795946400000LL, 0xffffffffu, a, sizeof a);
    assert_true(job_id_valid(a));
    assert_false(job_id_valid(""));
    assert_false(job_id_valid("j"));
    assert_false(job_id_valid("x12"));
    assert_false(job_id_valid("j1/2"));
    assert_false(job_id_valid("j1234567890123456789012345678901234567890"));
}

static void cursor_round_trip(const list_cursor *c, const char *text) {
    char out[LIST_CURSOR_MAX];
    list_cursor back;
    assert_int_equal(list_cursor_format(c, out, sizeof out), 0);
    assert_string_equal(out, text);
    assert_int_equal(list_cursor_parse(out, &back), 0);
    assert_int_equal(back.kind, c->kind);
    assert_string_equal(back.status, c->status);
    assert_string_equal(back.token, c->token);
    assert_string_equal(back.after_id, c->after_id);
}

static void cursors_round_trip(void **state) {
    (void)state;
    list_cursor c = {.kind = LC_START};
    cursor_round_trip(&c, "");
    c = (list_cursor){.kind = LC_END};
    cursor_round_trip(&c, "end");
    c = (list_cursor){.kind = LC_SALESFORCE_PAGED, .after_id = "00vSm0000000001AAA"};
    cursor_round_trip(&c, "sp1:00vSm0000000001AAA");
    /* A status with the separator and the escape character, and a page token. */
    c = (list_cursor){.kind = LC_MARKETO_PAGED, .status = "Attended: 100%", .token = "GIYD=="};
    cursor_round_trip(&c, "mp1:Attended%3A 100%25:GIYD==");
    /* A status's first page: no token. */
    c = (list_cursor){.kind = LC_MARKETO_PAGED, .status = "Invited", .token = ""};
    cursor_round_trip(&c, "mp1:Invited:");
}

static void malformed_cursors_are_refused(void **state) {
    (void)state;
    list_cursor c;
    const char *bad[] = {"x",         "sp1:",     "sp1:a b",   "mp1:",    "mp1:Invited", "mp1::tok",
                         "mp1:%zz:t", "mp1:%4:t", "mp1:a:b c", "sp2:00v", "END"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(list_cursor_parse(bad[i], &c), -1);
    assert_int_equal(list_cursor_parse(NULL, &c), 0);
    assert_int_equal(c.kind, LC_START);
    /* Too small a buffer, or a token a cursor never holds. */
    char small[8];
    c = (list_cursor){.kind = LC_MARKETO_PAGED, .status = "Registered", .token = "abc"};
    assert_int_equal(list_cursor_format(&c, small, sizeof small), -1);
    c = (list_cursor){.kind = LC_MARKETO_PAGED, .status = "Registered", .token = "a b"};
    char out[LIST_CURSOR_MAX];
    assert_int_equal(list_cursor_format(&c, out, sizeof out), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_job_walks_its_phases_in_order),
        cmocka_unit_test(a_takeover_resumes_where_the_job_stands),
        cmocka_unit_test(cancel_is_at_once_unless_a_process_works_on_it),
        cmocka_unit_test(a_finished_job_stays_as_it_ended),
        cmocka_unit_test(names_round_trip),
        cmocka_unit_test(outcomes_complete_when_every_correction_has_one),
        cmocka_unit_test(ids_are_valid_and_distinct),
        cmocka_unit_test(cursors_round_trip),
        cmocka_unit_test(malformed_cursors_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
