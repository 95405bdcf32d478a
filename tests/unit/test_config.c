/* config: defaults, validation, NAME_FILE secrets and REDIS_URL parsing. */
#include "unit.h"

#include "config.h"

#include <unistd.h>

typedef struct {
    int n;
    char lines[16][512];
} collected;

static void collect(const char *line, void *ud) {
    collected *c = ud;
    if (c->n < 16) snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", line);
}

static const char *const all_vars[] = {"PORT",
                                       "BIND_ADDR",
                                       "REDIS_URL",
                                       "WORKERS",
                                       "SF_LOGIN_URL",
                                       "SF_CLIENT_ID",
                                       "SF_CLIENT_SECRET",
                                       "SF_CLIENT_SECRET_FILE",
                                       "SF_API_VERSION",
                                       "SF_ORG_ID",
                                       "SF_INTEGRATION_USER_ID",
                                       "MARKETO_BASE_URL",
                                       "MARKETO_CLIENT_ID",
                                       "MARKETO_CLIENT_SECRET",
                                       "MARKETO_CLIENT_SECRET_FILE",
                                       "MARKETO_WEBHOOK_SECRET",
                                       "MARKETO_WEBHOOK_SECRET_FILE",
                                       "MARKETO_TIMEZONE",
                                       "MARKETO_CALLS_PER_20S",
                                       "MARKETO_MAX_CONCURRENT",
                                       "ADMIN_TOKEN",
                                       "ADMIN_TOKEN_FILE",
                                       "SYNC_ENABLED",
                                       "MAX_BODY_BYTES",
                                       "MAX_ATTEMPTS",
                                       "RETRY_BASE_MS",
                                       "RETRY_MAX_MS",
                                       "CLAIM_IDLE_MS",
                                       "READY_STALL_S",
                                       "TLS_CERT_FILE",
                                       "TLS_KEY_FILE",
                                       "TLS_CLIENT_CA_FILE",
                                       "SPOOL_DIR",
                                       "LOG_LEVEL",
                                       "LOG_FORMAT",
                                       "REDIS_URL_FILE",
                                       "SF_ALLOWED_CIDRS",
                                       "SF_WEBHOOK_TOKEN",
                                       "SF_WEBHOOK_TOKEN_FILE",
                                       "SF_WEBHOOK_AUTH",
                                       "TLS_CLIENT_CERT_PINS",
                                       "SF_MAX_BODY_BYTES",
                                       "HTTP_REQUEST_TIMEOUT_S",
                                       "SPOOL_MAX_BYTES",
                                       "MANAGEMENT_PORT",
                                       "MANAGEMENT_BIND_ADDR",
                                       NULL};

static int clear_env(void **state) {
    (void)state;
    for (int i = 0; all_vars[i]; i++)
        unsetenv(all_vars[i]);
    return 0;
}

#define SECRET32 "0123456789abcdef0123456789abcdef"

static void set_ingest_required(void) {
    setenv("SF_ORG_ID", "00D000000000001AAA", 1);
    setenv("MARKETO_WEBHOOK_SECRET", SECRET32, 1);
    setenv("SF_WEBHOOK_AUTH", "none", 1);
}

static void set_crm_required(void) {
    setenv("SF_LOGIN_URL", "https://acme.my.salesforce.com", 1);
    setenv("SF_CLIENT_ID", "cid", 1);
    setenv("SF_CLIENT_SECRET", "csecret", 1);
    setenv("MARKETO_BASE_URL", "https://123-ABC-456.mktorest.com", 1);
    setenv("MARKETO_CLIENT_ID", "mid", 1);
    setenv("MARKETO_CLIENT_SECRET", "msecret", 1);
}

static void defaults_apply(void **state) {
    (void)state;
    set_ingest_required();
    set_crm_required();
    struct config cfg;
    collected c = {0};
    assert_int_equal(config_load(&cfg, CMD_SERVE, collect, &c), 0);
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.bind_addr, "0.0.0.0");
    assert_string_equal(cfg.redis.host, "127.0.0.1");
    assert_int_equal(cfg.redis.port, 6379);
    assert_int_equal(cfg.redis.db, 0);
    assert_int_equal(cfg.workers, 2);
    assert_string_equal(cfg.sf_api_version, "v62.0");
    assert_string_equal(cfg.marketo_timezone, "UTC");
    assert_int_equal(cfg.marketo_calls_per_20s, 50);
    assert_int_equal(cfg.marketo_max_concurrent, 5);
    assert_true(cfg.sync_enabled);
    assert_int_equal(cfg.max_body_bytes, 1048576);
    assert_int_equal(cfg.max_attempts, 10);
    assert_int_equal(cfg.retry_base_ms, 500);
    assert_int_equal(cfg.retry_max_ms, 300000);
    assert_int_equal(cfg.claim_idle_ms, 30000);
    assert_int_equal(cfg.ready_stall_s, 120);
    assert_int_equal(cfg.program_poll_interval_s, 300);
    assert_int_equal(cfg.sf_deleted_poll_interval_s, 60);
    assert_int_equal(cfg.reconcile_interval_s, 3600);
    assert_string_equal(cfg.spool_dir, "./spool");
    assert_null(cfg.admin_token);
    assert_null(cfg.tls_cert_file);
    assert_null(cfg.sf_webhook_token);
    assert_null(cfg.tls_client_cert_pins);
    assert_int_equal(cfg.sf_max_body_bytes, 262144);
    assert_int_equal(cfg.http_request_timeout_s, 30);
    assert_int_equal(cfg.spool_max_bytes, 1073741824L);
    assert_int_equal(cfg.management_port, 0);
    assert_string_equal(cfg.management_bind_addr, "127.0.0.1");
    config_free(&cfg);
}

static void missing_required_named_per_command(void **state) {
    (void)state;
    struct config cfg;
    collected c = {0};
    /* ingest needs only the webhook settings, not CRM credentials. */
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 2);
    assert_non_null(strstr(c.lines[0], "SF_ORG_ID: required for `campaign-sync ingest`"));
    assert_non_null(strstr(c.lines[1], "MARKETO_WEBHOOK_SECRET: required"));
    config_free(&cfg);

    memset(&c, 0, sizeof c);
    assert_int_equal(config_load(&cfg, CMD_WORKER, collect, &c), 6);
    assert_non_null(strstr(c.lines[0], "SF_LOGIN_URL"));
    assert_non_null(strstr(c.lines[5], "MARKETO_CLIENT_SECRET"));
    config_free(&cfg);
}

static void malformed_values_named(void **state) {
    (void)state;
    set_ingest_required();
    setenv("PORT", "80a", 1);
    setenv("WORKERS", "-1", 1);
    setenv("SYNC_ENABLED", "maybe", 1);
    setenv("LOG_LEVEL", "loud", 1);
    setenv("SF_LOGIN_URL", "acme.my.salesforce.com", 1);
    setenv("MARKETO_TIMEZONE", "Mars/Olympus", 1);
    setenv("REDIS_URL", "http://localhost", 1);
    struct config cfg;
    collected c = {0};
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 7);
    const char *expect[] = {"REDIS_URL: must be redis://",
                            "PORT: must be an integer from 1 to 65535 (got \"80a\")",
                            "WORKERS: must be an integer",
                            "SF_LOGIN_URL: must be an http(s) URL",
                            "MARKETO_TIMEZONE: must be an IANA time zone",
                            "SYNC_ENABLED: must be true or false",
                            "LOG_LEVEL: must be debug"};
    for (int i = 0; i < 7; i++) {
        bool found = false;
        for (int j = 0; j < c.n; j++)
            found = found || strstr(c.lines[j], expect[i]) != NULL;
        if (!found) fail_msg("no line contains \"%s\"", expect[i]);
    }
    config_free(&cfg);
}

static void org_id_forms(void **state) {
    (void)state;
    set_ingest_required();
    struct config cfg;
    collected c = {0};
    setenv("SF_ORG_ID", "00D000000000001", 1); /* 15 characters */
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 0);
    config_free(&cfg);
    setenv("SF_ORG_ID", "00D00000000000", 1); /* 14 */
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_non_null(strstr(c.lines[0], "SF_ORG_ID: must be a Salesforce org id"));
    config_free(&cfg);
}

static void secret_from_file_and_never_echoed(void **state) {
    (void)state;
    set_ingest_required();
    unsetenv("MARKETO_WEBHOOK_SECRET");
    char path[] = "/tmp/cs-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, SECRET32 "-from-file\n", 43), 43);
    close(fd);
    setenv("MARKETO_WEBHOOK_SECRET_FILE", path, 1);
    struct config cfg;
    collected c = {0};
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 0);
    assert_string_equal(cfg.marketo_webhook_secret, SECRET32 "-from-file");
    config_free(&cfg);

    /* Both forms at once is ambiguous. */
    setenv("MARKETO_WEBHOOK_SECRET", "other", 1);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_non_null(strstr(c.lines[0], "set either MARKETO_WEBHOOK_SECRET or"));
    config_free(&cfg);
    unsetenv("MARKETO_WEBHOOK_SECRET");

    unlink(path);
    memset(&c, 0, sizeof c);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_non_null(strstr(c.lines[0], "MARKETO_WEBHOOK_SECRET_FILE: cannot read"));
    config_free(&cfg);

    /* A malformed secret is named, its value never printed. */
    unsetenv("MARKETO_WEBHOOK_SECRET_FILE");
    setenv("REDIS_URL", "redis://:hunter2@", 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 2);
    for (int i = 0; i < c.n; i++)
        assert_null(strstr(c.lines[i], "hunter2"));
    config_free(&cfg);
}

static void tls_pairs(void **state) {
    (void)state;
    set_ingest_required();
    setenv("TLS_CERT_FILE", "/etc/cert.pem", 1);
    struct config cfg;
    collected c = {0};
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_non_null(strstr(c.lines[0], "TLS_KEY_FILE"));
    config_free(&cfg);
}

static bool has_line(const collected *c, const char *text) {
    for (int i = 0; i < c->n; i++)
        if (strstr(c->lines[i], text)) return true;
    return false;
}

static void short_secrets_refused(void **state) {
    (void)state;
    set_ingest_required();
    setenv("ADMIN_TOKEN", "0123456789abcdef0123456789abcde", 1); /* 31 bytes */
    setenv("MARKETO_WEBHOOK_SECRET", "short", 1);
    setenv("SF_WEBHOOK_TOKEN", "0123456789", 1);
    struct config cfg;
    collected c = {0};
    assert_int_equal(config_load(&cfg, CMD_WORKER, collect, &c), 9); /* 6 CRM + 3 secrets */
    assert_true(has_line(&c, "ADMIN_TOKEN: must be at least 32 bytes long"));
    assert_true(has_line(&c, "MARKETO_WEBHOOK_SECRET: must be at least 32 bytes long"));
    assert_true(has_line(&c, "SF_WEBHOOK_TOKEN: must be at least 32 bytes long"));
    for (int i = 0; i < c.n; i++) /* never echoed */
        assert_null(strstr(c.lines[i], "0123456789"));
    config_free(&cfg);
    /* 32 bytes are enough; the URL token is a path segment of URL-safe characters. */
    setenv("ADMIN_TOKEN", SECRET32, 1);
    setenv("MARKETO_WEBHOOK_SECRET", SECRET32, 1);
    setenv("SF_WEBHOOK_TOKEN", SECRET32 "/x", 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_true(has_line(&c, "SF_WEBHOOK_TOKEN: must be 32 to 255 letters, digits"));
    config_free(&cfg);
    setenv("SF_WEBHOOK_TOKEN", SECRET32 "-_.~", 1);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 0);
    assert_string_equal(cfg.sf_webhook_token, SECRET32 "-_.~");
    config_free(&cfg);
}

static void salesforce_webhook_needs_authentication(void **state) {
    (void)state;
    set_ingest_required();
    unsetenv("SF_WEBHOOK_AUTH");
    struct config cfg;
    collected c = {0};
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_non_null(strstr(c.lines[0], "SF_WEBHOOK_AUTH: /webhooks/salesforce would take a "
                                       "message from anyone who knows the org id: set "
                                       "SF_WEBHOOK_TOKEN"));
    assert_non_null(strstr(c.lines[0], "TLS_CLIENT_CERT_PINS"));
    assert_non_null(strstr(c.lines[0], "SF_ALLOWED_CIDRS"));
    config_free(&cfg);
    /* A worker takes no webhooks. */
    set_crm_required();
    memset(&c, 0, sizeof c);
    assert_int_equal(config_load(&cfg, CMD_WORKER, collect, &c), 0);
    config_free(&cfg);
    /* Any one method is enough; an allowlist that lists nothing is none. */
    setenv("SF_ALLOWED_CIDRS", " , ", 1);
    assert_int_equal(config_load(&cfg, CMD_SERVE, collect, &c), 1);
    config_free(&cfg);
    setenv("SF_ALLOWED_CIDRS", "13.108.0.0/14", 1);
    assert_int_equal(config_load(&cfg, CMD_SERVE, collect, &c), 0);
    config_free(&cfg);
    unsetenv("SF_ALLOWED_CIDRS");
    setenv("SF_WEBHOOK_TOKEN", SECRET32, 1);
    assert_int_equal(config_load(&cfg, CMD_SERVE, collect, &c), 0);
    config_free(&cfg);
    unsetenv("SF_WEBHOOK_TOKEN");
    setenv("SF_WEBHOOK_AUTH", "none", 1);
    assert_int_equal(config_load(&cfg, CMD_SERVE, collect, &c), 0);
    config_free(&cfg);
    setenv("SF_WEBHOOK_AUTH", "yes", 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(config_load(&cfg, CMD_SERVE, collect, &c), 1);
    assert_non_null(strstr(c.lines[0], "SF_WEBHOOK_AUTH: the only value is \"none\""));
    config_free(&cfg);
}

static void certificate_pins(void **state) {
    (void)state;
    set_ingest_required();
    unsetenv("SF_WEBHOOK_AUTH");
    setenv("TLS_CERT_FILE", "/etc/cert.pem", 1);
    setenv("TLS_KEY_FILE", "/etc/key.pem", 1);
    setenv("TLS_CLIENT_CERT_PINS",
           "sha256 Fingerprint=0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:"
           "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9",
           1);
    struct config cfg;
    collected c = {0};
    /* Pins are checked on top of the CA's signature. */
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_non_null(strstr(c.lines[0], "TLS_CLIENT_CERT_PINS: needs TLS_CLIENT_CA_FILE"));
    config_free(&cfg);
    setenv("TLS_CLIENT_CA_FILE", "/etc/ca.pem", 1);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 0);
    config_free(&cfg);
    setenv("TLS_CLIENT_CERT_PINS",
           "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", 1);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 0);
    config_free(&cfg);
    setenv("TLS_CLIENT_CERT_PINS", "0a1b2c3d", 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_true(has_line(&c, "TLS_CLIENT_CERT_PINS: \"0a1b2c3d\" is not a SHA-256 fingerprint"));
    config_free(&cfg);
}

static void management_port(void **state) {
    (void)state;
    set_ingest_required();
    setenv("MANAGEMENT_PORT", "8080", 1);
    struct config cfg;
    collected c = {0};
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 1);
    assert_non_null(strstr(c.lines[0], "MANAGEMENT_PORT: must differ from PORT (8080)"));
    config_free(&cfg);
    setenv("MANAGEMENT_PORT", "9090", 1);
    setenv("MANAGEMENT_BIND_ADDR", "0.0.0.0", 1);
    assert_int_equal(config_load(&cfg, CMD_INGEST, collect, &c), 0);
    assert_int_equal(cfg.management_port, 9090);
    assert_string_equal(cfg.management_bind_addr, "0.0.0.0");
    config_free(&cfg);
}

static void redis_urls(void **state) {
    (void)state;
    struct redis_target t;
    char err[128];
    assert_int_equal(
        config_parse_redis_url("redis://:pw@redis.internal:6380/3", &t, err, sizeof err), 0);
    assert_string_equal(t.host, "redis.internal");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.db, 3);
    assert_string_equal(t.password, "pw");
    assert_string_equal(t.user, "");
    assert_int_equal(config_parse_redis_url("redis://app:p@ss@10.0.0.1", &t, err, sizeof err), 0);
    assert_string_equal(t.user, "app");
    assert_string_equal(t.password, "p@ss");
    assert_string_equal(t.host, "10.0.0.1");
    assert_int_equal(t.port, 6379);
    assert_int_equal(config_parse_redis_url("redis://[::1]:7000/1", &t, err, sizeof err), 0);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 7000);
    assert_int_equal(t.db, 1);
    assert_int_equal(config_parse_redis_url("redis://localhost/", &t, err, sizeof err), 0);
    assert_int_equal(t.db, 0);
    assert_int_equal(config_parse_redis_url("rediss://localhost", &t, err, sizeof err), -1);
    assert_int_equal(config_parse_redis_url("redis://localhost:0", &t, err, sizeof err), -1);
    assert_int_equal(config_parse_redis_url("redis://localhost:99999", &t, err, sizeof err), -1);
    assert_int_equal(config_parse_redis_url("redis://localhost/x", &t, err, sizeof err), -1);
    assert_int_equal(config_parse_redis_url("redis://:pw@/0", &t, err, sizeof err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults_apply, clear_env),
        cmocka_unit_test_setup(missing_required_named_per_command, clear_env),
        cmocka_unit_test_setup(malformed_values_named, clear_env),
        cmocka_unit_test_setup(org_id_forms, clear_env),
        cmocka_unit_test_setup(secret_from_file_and_never_echoed, clear_env),
        cmocka_unit_test_setup(tls_pairs, clear_env),
        cmocka_unit_test_setup(short_secrets_refused, clear_env),
        cmocka_unit_test_setup(salesforce_webhook_needs_authentication, clear_env),
        cmocka_unit_test_setup(certificate_pins, clear_env),
        cmocka_unit_test_setup(management_port, clear_env),
        cmocka_unit_test(redis_urls),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
