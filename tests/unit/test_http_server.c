/* http_server: route template matching, the token segment of the Salesforce webhook. (The
 * daemon itself is tested end to end.) */
#include "unit.h"

#include "http_server.h"

static void literal_paths(void **state) {
    (void)state;
    http_param p[HTTP_MAX_PARAMS];
    assert_int_equal(http_match("/healthz", "/healthz", p, HTTP_MAX_PARAMS), 0);
    assert_int_equal(http_match("/healthz", "/healthz/", p, HTTP_MAX_PARAMS), -1);
    assert_int_equal(http_match("/healthz", "/health", p, HTTP_MAX_PARAMS), -1);
    assert_int_equal(http_match("/healthz", "/healthzz", p, HTTP_MAX_PARAMS), -1);
    assert_int_equal(http_match("/v1/sync", "/v1", p, HTTP_MAX_PARAMS), -1);
    assert_int_equal(http_match("/", "/", p, HTTP_MAX_PARAMS), 0);
}

static void parameters(void **state) {
    (void)state;
    http_param p[HTTP_MAX_PARAMS];
    assert_int_equal(http_match("/v1/mappings/{programId}", "/v1/mappings/1001", p, 4), 1);
    assert_string_equal(p[0].name, "programId");
    assert_string_equal(p[0].value, "1001");
    assert_int_equal(
        http_match("/v1/mappings/{programId}/validation", "/v1/mappings/77/validation", p, 4), 1);
    assert_string_equal(p[0].value, "77");
    assert_int_equal(http_match("/v1/mappings/{programId}", "/v1/mappings/", p, 4), -1);
    assert_int_equal(http_match("/v1/mappings/{programId}", "/v1/mappings/1/x", p, 4), -1);
    assert_int_equal(http_match("/a/{x}/b/{y}", "/a/1/b/2", p, 4), 2);
    assert_string_equal(p[1].name, "y");
    assert_string_equal(p[1].value, "2");
    /* More parameters than room: no match rather than an overflow. */
    assert_int_equal(http_match("/a/{x}/b/{y}", "/a/1/b/2", p, 1), -1);
    /* A 300-byte segment does not fit a parameter. */
    char path[400] = "/v1/mappings/";
    memset(path + 13, '9', 300);
    path[313] = '\0';
    assert_int_equal(http_match("/v1/mappings/{programId}", path, p, 4), -1);
}

static void token_segment(void **state) {
    (void)state;
    http_param p[HTTP_MAX_PARAMS];
    const char *route = "/webhooks/salesforce/{token}";
    char path[400] = "/webhooks/salesforce/";
    memset(path + 21, 'a', 64);
    path[85] = '\0';
    assert_int_equal(http_match(route, path, p, HTTP_MAX_PARAMS), 1);
    assert_string_equal(p[0].name, "token");
    assert_int_equal(strlen(p[0].value), 64);
    /* The bare path is another route; a token path with more segments is none. */
    assert_int_equal(http_match(route, "/webhooks/salesforce", p, HTTP_MAX_PARAMS), -1);
    assert_int_equal(http_match(route, "/webhooks/salesforce/", p, HTTP_MAX_PARAMS), -1);
    strcat(path, "/x");
    assert_int_equal(http_match(route, path, p, HTTP_MAX_PARAMS), -1);
    /* A token of 255 bytes (SF_WEBHOOK_TOKEN's maximum) fits; 256 does not. */
    memset(path + 21, 'b', 255);
    path[276] = '\0';
    assert_int_equal(http_match(route, path, p, HTTP_MAX_PARAMS), 1);
    memset(path + 21, 'b', 256);
    path[277] = '\0';
    assert_int_equal(http_match(route, path, p, HTTP_MAX_PARAMS), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_paths),
        cmocka_unit_test(parameters),
        cmocka_unit_test(token_segment),
    };
    return cmocka_run_group_tests_name("http_server", tests, NULL, NULL);
}
