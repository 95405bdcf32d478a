/* netacl: CIDR parsing and matching, and the client address behind trusted proxies. */
#include "unit.h"

#include "netacl.h"

static void parse_and_match(void **state) {
    (void)state;
    netacl a;
    char err[160];
    assert_int_equal(
        netacl_parse("10.0.0.0/8, 192.168.1.0/24,203.0.113.7 ,2001:db8::/32", &a, err, sizeof err),
        0);
    assert_int_equal(a.n, 4);
    assert_true(netacl_contains(&a, "10.1.2.3"));
    assert_false(netacl_contains(&a, "11.0.0.1"));
    assert_true(netacl_contains(&a, "192.168.1.255"));
    assert_false(netacl_contains(&a, "192.168.2.0"));
    assert_true(netacl_contains(&a, "203.0.113.7"));
    assert_false(netacl_contains(&a, "203.0.113.8"));
    assert_true(netacl_contains(&a, "2001:db8:1::5"));
    assert_false(netacl_contains(&a, "2001:db9::1"));
    /* An IPv4-mapped IPv6 peer matches IPv4 ranges. */
    assert_true(netacl_contains(&a, "::ffff:10.9.9.9"));
    assert_false(netacl_contains(&a, "not-an-ip"));
    assert_false(netacl_contains(&a, NULL));
}

static void odd_prefixes(void **state) {
    (void)state;
    netacl a;
    char err[160];
    assert_int_equal(netacl_parse("192.168.0.0/23", &a, err, sizeof err), 0);
    assert_true(netacl_contains(&a, "192.168.1.200"));
    assert_false(netacl_contains(&a, "192.168.2.1"));
    assert_int_equal(netacl_parse("0.0.0.0/0", &a, err, sizeof err), 0);
    assert_true(netacl_contains(&a, "8.8.8.8"));
    assert_false(netacl_contains(&a, "2001:db8::1")); /* /0 of IPv4 is all IPv4 only */
    assert_int_equal(netacl_parse("::/0", &a, err, sizeof err), 0);
    assert_true(netacl_contains(&a, "2001:db8::1"));
    assert_int_equal(netacl_parse("", &a, err, sizeof err), 0);
    assert_int_equal(a.n, 0);
}

static void errors_name_the_entry(void **state) {
    (void)state;
    netacl a;
    char err[160];
    assert_int_equal(netacl_parse("10.0.0.0/33", &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "10.0.0.0/33"));
    assert_int_equal(netacl_parse("10.0.0.0/8, example.com", &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "example.com"));
    assert_int_equal(netacl_parse("10.0.0.0/", &a, err, sizeof err), -1);
    assert_int_equal(netacl_parse("2001:db8::/129", &a, err, sizeof err), -1);
}

static void client_behind_trusted_proxies(void **state) {
    (void)state;
    netacl t;
    char err[160], out[64];
    assert_int_equal(netacl_parse("127.0.0.1, 10.0.0.0/8", &t, err, sizeof err), 0);
    /* A direct client: X-Forwarded-For is ignored. */
    netacl_client(&t, "198.51.100.9", "203.0.113.5", out, sizeof out);
    assert_string_equal(out, "198.51.100.9");
    /* Behind our proxy: the address it appended. */
    netacl_client(&t, "127.0.0.1", "203.0.113.5", out, sizeof out);
    assert_string_equal(out, "203.0.113.5");
    /* A forged left-most entry does not help: the right-most untrusted one counts. */
    netacl_client(&t, "127.0.0.1", "203.0.113.5, 198.51.100.1", out, sizeof out);
    assert_string_equal(out, "198.51.100.1");
    /* Through two of our proxies. */
    netacl_client(&t, "127.0.0.1", "203.0.113.5, 10.1.1.1", out, sizeof out);
    assert_string_equal(out, "203.0.113.5");
    /* Garbage stops the walk at the last trustworthy address. */
    netacl_client(&t, "127.0.0.1", "evil, 10.1.1.1", out, sizeof out);
    assert_string_equal(out, "10.1.1.1");
    /* No trusted proxies configured: the peer, always. */
    netacl none = {0};
    netacl_client(&none, "127.0.0.1", "203.0.113.5", out, sizeof out);
    assert_string_equal(out, "127.0.0.1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_and_match),
        cmocka_unit_test(odd_prefixes),
        cmocka_unit_test(errors_name_the_entry),
        cmocka_unit_test(client_behind_trusted_proxies),
    };
    return cmocka_run_group_tests_name("netacl", tests, NULL, NULL);
}
