/* store_lua: the table of Redis scripts that service/lua/embed.sh generates from
 * the files of service/lua/. Each script's hash is the SHA1 of the text sent (so EVALSHA names the
 * script EVAL would send), its helpers are in place, and it documents its KEYS and ARGV. */
#include "unit.h"

#include "store_lua.h"

#include <openssl/sha.h>

static void every_hash_is_the_sha1_of_its_text(void **state) {
    (void)state;
    for (int i = 0; i < STORE_LUA_COUNT; i++) {
        const store_lua_script *sc = &store_lua_scripts[i];
        assert_non_null(sc->text);
        assert_int_equal(strlen(sc->text), sc->len);
        unsigned char d[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)sc->text, sc->len, d);
        char hex[2 * SHA_DIGEST_LENGTH + 1];
        for (int k = 0; k < SHA_DIGEST_LENGTH; k++)
            snprintf(hex + 2 * k, 3, "%02x", d[k]);
        assert_string_equal(sc->sha1, hex);
    }
}

static void names_are_unique_and_helpers_in_place(void **state) {
    (void)state;
    assert_true(STORE_LUA_COUNT >= 10);
    for (int i = 0; i < STORE_LUA_COUNT; i++) {
        const store_lua_script *sc = &store_lua_scripts[i];
        assert_true(sc->name[0] != '\0');
        for (int k = 0; k < i; k++)
            assert_string_not_equal(sc->name, store_lua_scripts[k].name);
        assert_null(strstr(sc->text, "--@use"));
    }
}

/* The header comment of each script starts with its name and says what it returns; a script
 * with keys names them (KEYS[...]). */
static void each_script_documents_itself(void **state) {
    (void)state;
    for (int i = 0; i < STORE_LUA_COUNT; i++) {
        const store_lua_script *sc = &store_lua_scripts[i];
        char head[64];
        snprintf(head, sizeof head, "-- %s: ", sc->name);
        if (strncmp(sc->text, head, strlen(head)) != 0) fail_msg("%s.lua: no header", sc->name);
        if (!strstr(sc->text, "\n-- Returns"))
            fail_msg("%s.lua: says not what it returns", sc->name);
        if (strstr(sc->text, "KEYS") && !strstr(sc->text, "-- KEYS["))
            fail_msg("%s.lua: uses KEYS without naming them", sc->name);
    }
}

/* Every key a script touches comes in KEYS (so that the scripts could run on a Redis
 * Cluster, which routes a script by its KEYS): no script builds a key name itself. */
static void no_script_builds_a_key_name(void **state) {
    (void)state;
    for (int i = 0; i < STORE_LUA_COUNT; i++) {
        const store_lua_script *sc = &store_lua_scripts[i];
        if (strstr(sc->text, "'cs:") || strstr(sc->text, "\"cs:"))
            fail_msg("%s.lua builds a key name: pass the key in KEYS", sc->name);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_hash_is_the_sha1_of_its_text),
        cmocka_unit_test(names_are_unique_and_helpers_in_place),
        cmocka_unit_test(each_script_documents_itself),
        cmocka_unit_test(no_script_builds_a_key_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
