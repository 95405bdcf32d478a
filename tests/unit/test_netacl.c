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

/* The client address for peer and the X-Forwarded-For lines given; "REFUSED: why" on -1. */
static const char *client_of(const netacl *t, const char *peer, const char *const *lines,
                             size_t n) {
    static char out[192];
    char addr[64], why[160];
    if (netacl_client(t, peer, lines, n, addr, sizeof addr, why, sizeof why) != 0) {
        assert_string_equal(addr, peer); /* out is the peer even then */
        snprintf(out, sizeof out, "REFUSED: %s", why);
    } else {
        snprintf(out, sizeof out, "%s", addr);
    }
    return out;
}

static const char *client1(const netacl *t, const char *peer, const char *xff) {
    return client_of(t, peer, &xff, 1);
}

static void client_behind_trusted_proxies(void **state) {
    (void)state;
    netacl t;
    char err[160];
    assert_int_equal(netacl_parse("127.0.0.1, 10.0.0.0/8, 2001:db8::/32", &t, err, sizeof err), 0);
    /* A direct client: X-Forwarded-For is ignored, whatever it holds. */
    assert_string_equal(client1(&t, "198.51.100.9", "203.0.113.5"), "198.51.100.9");
    assert_string_equal(client1(&t, "198.51.100.9", "garbage,,"), "198.51.100.9");
    /* Behind our proxy: the address it appended. */
    assert_string_equal(client1(&t, "127.0.0.1", "203.0.113.5"), "203.0.113.5");
    /* A forged left-most entry does not help: the right-most untrusted one counts. */
    assert_string_equal(client1(&t, "127.0.0.1", "203.0.113.5, 198.51.100.1"), "198.51.100.1");
    /* Through two of our proxies. */
    assert_string_equal(client1(&t, "127.0.0.1", "203.0.113.5, 10.1.1.1"), "203.0.113.5");
    assert_string_equal(client1(&t, "127.0.0.1", "203.0.113.5,\t10.1.1.1 , 2001:db8::7"),
                        "203.0.113.5");
    /* Only our proxies: the left-most of them. */
    assert_string_equal(client1(&t, "127.0.0.1", "10.2.2.2, 10.1.1.1"), "10.2.2.2");
    /* Ports and brackets, as some proxies write them. */
    assert_string_equal(client1(&t, "127.0.0.1", "198.51.100.1:5123"), "198.51.100.1");
    assert_string_equal(client1(&t, "127.0.0.1", "[2001:db9::1]:443, 10.1.1.1"), "2001:db9::1");
    assert_string_equal(client1(&t, "127.0.0.1", "[2001:db9::2]"), "2001:db9::2");
    assert_string_equal(client1(&t, "127.0.0.1", "2001:db9::3"), "2001:db9::3");
    /* No trusted proxies configured: the peer, always. */
    netacl none = {0};
    assert_string_equal(client1(&none, "127.0.0.1", "203.0.113.5"), "127.0.0.1");
    /* No header from our proxy: the proxy itself. */
    assert_string_equal(client_of(&t, "127.0.0.1", NULL, 0), "127.0.0.1");
}

static void forwarded_for_from_every_line(void **state) {
    (void)state;
    netacl t;
    char err[160];
    assert_int_equal(netacl_parse("127.0.0.1, 10.0.0.0/8", &t, err, sizeof err), 0);
    /* A second header line is part of the list, after the first: the attacker's allowed
     * address in the first line is not the client. */
    const char *two[] = {"203.0.113.5", "198.51.100.1, 10.1.1.1"};
    assert_string_equal(client_of(&t, "127.0.0.1", two, 2), "198.51.100.1");
    const char *proxies_only_last[] = {"198.51.100.1", "10.1.1.1"};
    assert_string_equal(client_of(&t, "127.0.0.1", proxies_only_last, 2), "198.51.100.1");
    /* A long list is read whole, right to left: 1,000 bytes of allowed addresses on the left
     * do not push the real client out of view (it used to be cut at 1,023 bytes). */
    char longline[2048] = "";
    for (int i = 0; i < 60; i++)
        strcat(longline, "203.0.113.5, ");
    strcat(longline, "198.51.100.1");
    assert_true(strlen(longline) > 780);
    assert_string_equal(client1(&t, "127.0.0.1", longline), "198.51.100.1");
}

static void malformed_forwarded_for_is_refused(void **state) {
    (void)state;
    netacl t;
    char err[160];
    assert_int_equal(netacl_parse("127.0.0.1, 10.0.0.0/8", &t, err, sizeof err), 0);
    const char *bad[] = {"evil, 10.1.1.1", "203.0.113.5,, 10.1.1.1", "203.0.113.5,", "",
                         "1.2.3.4:0",      "1.2.3.4:99999",          "[::1",         "unknown",
                         "2001:db8::1:80x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *got = client1(&t, "127.0.0.1", bad[i]);
        assert_true(strncmp(got, "REFUSED: X-Forwarded-For holds ", 31) == 0);
    }
    assert_string_equal(client1(&t, "127.0.0.1", "evil, 10.1.1.1"),
                        "REFUSED: X-Forwarded-For holds \"evil\", which is not an address");
    /* Junk left of the client is refused too: a list that cannot be read is not guessed at. */
    assert_true(strncmp(client1(&t, "127.0.0.1", "x, 198.51.100.1"), "REFUSED", 7) == 0);
    /* Too many entries, over one line or several. */
    char many[2048] = "";
    for (int i = 0; i < NETACL_XFF_MAX_ENTRIES; i++)
        strcat(many, "10.0.0.1, ");
    strcat(many, "198.51.100.1");
    assert_string_equal(client1(&t, "127.0.0.1", many),
                        "REFUSED: X-Forwarded-For holds more than 64 addresses");
    const char *lines[NETACL_XFF_MAX_ENTRIES + 1];
    for (int i = 0; i <= NETACL_XFF_MAX_ENTRIES; i++)
        lines[i] = "10.0.0.1";
    assert_true(
        strncmp(client_of(&t, "127.0.0.1", lines, NETACL_XFF_MAX_ENTRIES + 1), "REFUSED", 7) == 0);
    assert_string_equal(client_of(&t, "127.0.0.1", lines, NETACL_XFF_MAX_ENTRIES), "10.0.0.1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_and_match),
        cmocka_unit_test(odd_prefixes),
        cmocka_unit_test(errors_name_the_entry),
        cmocka_unit_test(client_behind_trusted_proxies),
        cmocka_unit_test(forwarded_for_from_every_line),
        cmocka_unit_test(malformed_forwarded_for_is_refused),
    };
    return cmocka_run_group_tests_name("netacl", tests, NULL, NULL);
}
