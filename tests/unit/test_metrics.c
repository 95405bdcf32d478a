/* metrics: registry, label escaping and the Prometheus text rendering. */
#include "unit.h"

#include "metrics.h"

static int teardown(void **state) {
    (void)state;
    metrics_cleanup();
    return 0;
}

static void counter_with_labels(void **state) {
    (void)state;
    metric *m =
        metrics_register(METRIC_COUNTER, "t_requests_total", "Requests.", "route,code", NULL, 0);
    assert_non_null(m);
    metrics_add(m, 1, "/a", "200");
    metrics_add(m, 2, "/a", "200");
    metrics_add(m, 1, "/b", "404");
    assert_true(metrics_value(m, "/a", "200") == 3.0);
    size_t len;
    char *txt = metrics_render(&len);
    assert_string_equal(txt, "# HELP t_requests_total Requests.\n"
                             "# TYPE t_requests_total counter\n"
                             "t_requests_total{route=\"/a\",code=\"200\"} 3\n"
                             "t_requests_total{route=\"/b\",code=\"404\"} 1\n");
    assert_int_equal(len, strlen(txt));
    free(txt);
    /* A name is registered once. */
    assert_null(metrics_register(METRIC_COUNTER, "t_requests_total", "x", NULL, NULL, 0));
}

static void label_values_escaped(void **state) {
    (void)state;
    metric *m = metrics_register(METRIC_GAUGE, "t_gauge", "G.", "v", NULL, 0);
    metrics_set(m, 1.5, "a\"b\\c\nd");
    char *txt = metrics_render(NULL);
    assert_non_null(strstr(txt, "t_gauge{v=\"a\\\"b\\\\c\\nd\"} 1.5\n"));
    free(txt);
}

static void histogram_buckets_cumulative(void **state) {
    (void)state;
    const double b[] = {0.1, 1};
    metric *h = metrics_register(METRIC_HISTOGRAM, "t_seconds", "H.", NULL, b, 2);
    metrics_observe(h, 0.05);
    metrics_observe(h, 0.5);
    metrics_observe(h, 5);
    char *txt = metrics_render(NULL);
    assert_non_null(strstr(txt, "# TYPE t_seconds histogram\n"
                                "t_seconds_bucket{le=\"0.1\"} 1\n"
                                "t_seconds_bucket{le=\"1\"} 2\n"
                                "t_seconds_bucket{le=\"+Inf\"} 3\n"
                                "t_seconds_sum 5.55\n"
                                "t_seconds_count 3\n"));
    free(txt);
}

static int collected_calls;
static void collector(void *ud) {
    collected_calls++;
    metrics_set((metric *)ud, 42);
}

static void collectors_run_before_render(void **state) {
    (void)state;
    metric *g = metrics_register(METRIC_GAUGE, "t_depth", "D.", NULL, NULL, 0);
    metrics_on_collect(collector, g);
    char *txt = metrics_render(NULL);
    assert_int_equal(collected_calls, 1);
    assert_non_null(strstr(txt, "t_depth 42\n"));
    free(txt);
    metrics_remove_collect(collector, g);
    free(metrics_render(NULL));
    assert_int_equal(collected_calls, 1);
}

static void spec_families_present(void **state) {
    (void)state;
    char err[200];
    assert_int_equal(metrics_init("1.2.3", err, sizeof err), 0);
    assert_int_equal(metrics_init("1.2.3", err, sizeof err), 0); /* idempotent */
    metrics_observe(M_APPLY_LATENCY, 0.2, "salesforce");
    char *txt = metrics_render(NULL);
    const char *names[] = {
        "campaign_sync_events_received_total{source=\"marketo\",outcome=\"spooled\"} 0",
        "campaign_sync_events_applied_total{target=\"salesforce\"} 0",
        "campaign_sync_events_dropped_total{reason=\"backward_progression\"} 0",
        "campaign_sync_dead_letters_total 0",
        "campaign_sync_retries_total{target=\"marketo\"} 0",
        "campaign_sync_queue_depth 0",
        "campaign_sync_queue_oldest_age_seconds 0",
        "# TYPE campaign_sync_crm_requests_total counter",
        "# TYPE campaign_sync_crm_errors_total counter",
        "# TYPE campaign_sync_crm_request_seconds histogram",
        "# TYPE campaign_sync_salesforce_api_usage gauge",
        "campaign_sync_reconcile_differences_total{kind=\"status_differs\"} 0",
        "# TYPE campaign_sync_apply_latency_seconds histogram",
        "campaign_sync_apply_latency_seconds_bucket{target=\"salesforce\",le=\"0.25\"} 1",
        "# TYPE campaign_sync_http_requests_total counter",
        "# TYPE campaign_sync_http_request_seconds histogram",
        "campaign_sync_build_info{version=\"1.2.3\"} 1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strstr(txt, names[i])) fail_msg("missing: %s", names[i]);
    free(txt);
}

/* A family whose name is taken fails metrics_init, which names it. */
static void init_names_a_failed_family(void **state) {
    (void)state;
    assert_non_null(
        metrics_register(METRIC_GAUGE, "campaign_sync_build_info", "Taken.", NULL, NULL, 0));
    char err[200] = "";
    assert_int_equal(metrics_init("1.2.3", err, sizeof err), -1);
    assert_non_null(strstr(err, "campaign_sync_build_info"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(counter_with_labels, teardown),
        cmocka_unit_test_teardown(label_values_escaped, teardown),
        cmocka_unit_test_teardown(histogram_buckets_cumulative, teardown),
        cmocka_unit_test_teardown(collectors_run_before_render, teardown),
        cmocka_unit_test_teardown(spec_families_present, teardown),
        cmocka_unit_test_teardown(init_names_a_failed_family, teardown),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
