/* main — command line, start-up and shutdown of the server (and, in later commands, the
 * workers). Signals are taken synchronously with sigwait on the main thread, so no code runs
 * in a signal handler. */
#include "checks.h"
#include "config.h"
#include "crm.h"
#include "http_server.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "quota.h"
#include "http_client.h"
#include "routes_admin.h"
#include "routes_deadletters.h"
#include "routes_console.h"
#include "routes_health.h"
#include "routes_jobs.h"
#include "routes_overview.h"
#include "routes_people.h"
#include "routes_webhooks.h"
#include "roundtrip.h"
#include "secure.h"
#include "sf_outbound.h"
#include "spool.h"
#include "store.h"
#include "store_mappings.h"
#include "tzwatch.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CS_VERSION
#define CS_VERSION "0.0.0-dev"
#endif

#define SHUTDOWN_GRACE_MS 8000
#define PEM_MAX           (1024 * 1024)
#define MAX_ROUTES        40

static void usage(FILE *f) {
    fprintf(f,
            "campaign-sync %s — two-way sync of Marketo programs and Salesforce campaigns\n"
            "\n"
            "usage: campaign-sync <command>\n"
            "\n"
            "commands:\n"
            "  serve       HTTP ingest, admin, health and metrics (the container default)\n"
            "  ingest      the same HTTP interface, without workers\n"
            "  worker      workers only; serves /healthz, /readyz and /metrics\n"
            "  check       start-up checks (config, Redis, both CRMs, mappings); exit 1 on a "
            "FAIL\n"
            "  check --roundtrip PROGRAM_ID [--timeout SECONDS]\n"
            "              against a running service: a marked test person changed in Marketo,\n"
            "              awaited in Salesforce, changed there, awaited in Marketo, then removed\n"
            "              and deleted on both sides; each wait at most SECONDS (default %d);\n"
            "              exit 1 on a FAIL. Run it against sandboxes before go-live\n"
            "  healthcheck GET /healthz on 127.0.0.1:$MANAGEMENT_PORT when set, else $PORT (HTTPS "
            "with TLS_CERT_FILE); exit 0 when it answers 200 (for containers)\n"
            "  --version   print the version\n"
            "  --help      print this text\n"
            "\n"
            "Configuration comes from environment variables; see README.md.\n",
            CS_VERSION, ROUNDTRIP_TIMEOUT_S);
}

static void print_config_error(const char *line, void *ud) {
    (void)ud;
    LOG_KV(LOG_ERROR, line);
}

/* /healthz, /readyz and /metrics on MANAGEMENT_BIND_ADDR:MANAGEMENT_PORT, plain HTTP, apart
 * from the webhooks (for a private network, a sidecar or the container's health check). */
static http_server *start_management(const struct config *cfg, routes_health_ctx *health, char *err,
                                     size_t errlen) {
    http_route routes[4];
    size_t n = routes_health(routes, 4, health);
    http_server_options opt = {.bind_addr = cfg->management_bind_addr,
                               .port = cfg->management_port,
                               .max_body_bytes = 4096,
                               .threads = 2,
                               .connection_limit = 64,
                               .per_ip_limit = 0,
                               .timeout_s = cfg->http_timeout_s,
                               .request_timeout_s = cfg->http_request_timeout_s,
                               .name = "management"};
    http_server *srv = http_server_start(&opt, routes, n, err, errlen);
    if (srv) {
        char port[8];
        snprintf(port, sizeof port, "%d", cfg->management_port);
        LOG_KV(LOG_INFO, "listening (management: /healthz, /readyz, /metrics)", "addr",
               cfg->management_bind_addr, "port", port);
    }
    return srv;
}

/* Adds a /readyz check; false, logged, when the table is full (a mistake in this file). */
static bool add_check(routes_health_ctx *h, const char *name, health_check_fn fn, void *ud,
                      bool required) {
    if (routes_health_add_check(h, name, fn, ud, required) == 0) return true;
    LOG_KV(LOG_ERROR, "too many readiness checks", "check", name);
    return false;
}

static int serve(cs_command cmd) {
    struct config cfg;
    /* Level and format first, so the lines about other variables come out as asked. */
    const char *lv = getenv("LOG_LEVEL"), *lf = getenv("LOG_FORMAT");
    log_setup(lv && log_level_parse(lv) >= 0 ? (log_level)log_level_parse(lv) : LOG_INFO,
              lf && log_format_parse(lf) >= 0 ? (log_format)log_format_parse(lf) : LOG_FORMAT_JSON);
    int problems = config_load(&cfg, cmd, print_config_error, NULL);
    if (problems) {
        LOGF(LOG_ERROR, "campaign-sync %s: %d configuration problem%s; not starting",
             config_command_name(cmd), problems, problems == 1 ? "" : "s");
        config_free(&cfg);
        return 2;
    }
    log_setup((log_level)cfg.log_level, (log_format)cfg.log_format);
    /* Marketo's {{system.dateTime}} has no offset: local time means the account's zone. */
    setenv("TZ", cfg.marketo_timezone, 1);
    tzset();
    config_log(&cfg);

    metrics_init(CS_VERSION);
    int xml_rc = sf_outbound_init();
    /* The Redis handles of the HTTP servers' threads (and of this one), and what /readyz
     * checks. */
    store_pool *stores = store_pool_new(&cfg.redis);
    routes_health_ctx *health = stores ? routes_health_new(stores) : NULL;

    http_client_global_init();

    int rc = 0;
    bool signalled = false;
    http_server *srv = NULL, *mgmt = NULL;
    worker_pool *workers = NULL;
    routes_ctx api = {.stores = stores, .health = health};
    checks_ready *crm_checks = NULL;
    poller *jobs = NULL;
    jobs_runner *job_thread = NULL;
    char *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
    char err[256];
    bool http_api = cmd != CMD_WORKER, run_workers = cmd != CMD_INGEST;
    webhooks_ctx hooks = {.cfg = &cfg};
    routes_webhooks_acl(&hooks);
    if (xml_rc != 0 || !health) {
        LOG_KV(LOG_ERROR, xml_rc != 0 ? "cannot set up the XML parser (no thread key left)"
                                      : "out of memory (the readiness checks)");
        rc = 1;
        goto out;
    }
    if (http_api) {
        char serr[1400];
        hooks.spool = spool_new(cfg.spool_dir, cfg.spool_max_bytes, serr, sizeof serr);
        if (!hooks.spool) {
            LOG_KV(LOG_ERROR, serr);
            rc = 2;
            goto out;
        }
    }
    /* The switch's first value; later /v1/sync rules. Workers retry this if Redis is down. */
    store *boot = store_pool_get(stores);
    if (boot && store_sync_init(boot, cfg.sync_enabled, err, sizeof err) != 0)
        LOG_KV(LOG_WARN, "the sync switch's first value is not stored yet; workers retry", "error",
               err);

    /* Signals go to the main thread's sigwait only; every thread inherits this mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        LOG_KV(LOG_ERROR, "cannot set up signal handling");
        rc = 1;
        goto out;
    }

    /* After the mask: background threads must not take SIGTERM. */
    if (hooks.spool && spool_start_mover(hooks.spool, &cfg.redis) != 0) {
        LOG_KV(LOG_ERROR, "cannot start the spool mover thread");
        rc = 1;
        goto out;
    }
    if (http_api) {
        /* CRM checks are listed in /readyz (never failing it), refreshed in the background. */
        char missing[200];
        if (crm_configured(&cfg, missing, sizeof missing)) {
            crm_checks = checks_ready_start(&cfg);
            if (!add_check(health, "salesforce", checks_ready_salesforce, crm_checks, false) ||
                !add_check(health, "marketo", checks_ready_marketo, crm_checks, false)) {
                rc = 1;
                goto out;
            }
        }
    }
    char no_crm[200];
    if (crm_configured(&cfg, no_crm, sizeof no_crm)) {
        /* A spent CRM allowance pauses every process that calls the CRMs: each says so, and
         * shows a wrong MARKETO_TIMEZONE as the workers saw it (kept in Redis). */
        if (!add_check(health, "salesforce_quota", quota_ready_salesforce, NULL, false) ||
            !add_check(health, "marketo_quota", quota_ready_marketo, NULL, false) ||
            !add_check(health, "marketo_timezone", tzwatch_ready, &cfg, false)) {
            rc = 1;
            goto out;
        }
        if (quota_metrics_start(stores) != 0) {
            LOG_KV(LOG_ERROR, "too many metrics collectors");
            rc = 1;
            goto out;
        }
    }

    if (run_workers && cfg.workers > 0) {
        workers = worker_pool_start(&cfg, cfg.workers, err, sizeof err);
        if (!workers) {
            LOG_KV(LOG_ERROR, err);
            rc = 1;
            goto out;
        }
        if (!add_check(health, "workers", worker_ready_check, &cfg, true)) {
            rc = 1;
            goto out;
        }
        jobs = poller_start(&cfg, err, sizeof err);
        if (!jobs) {
            LOG_KV(LOG_ERROR, err);
            rc = 1;
            goto out;
        }
        /* Backfills and reconciliations (issue 19). */
        job_thread = jobs_runner_start(&cfg, err, sizeof err);
        if (!job_thread) {
            LOG_KV(LOG_ERROR, err);
            rc = 1;
            goto out;
        }
    }

    if (http_api) {
        hooks.commit = committer_start(&cfg.redis, (size_t)cfg.ingest_max_waiting, err, sizeof err);
        if (!hooks.commit) {
            LOG_KV(LOG_ERROR, err);
            rc = 1;
            goto out;
        }
    }

    /* With MANAGEMENT_PORT, /readyz and /metrics are served there only (with /healthz); the
     * public port keeps /healthz. */
    http_route routes[MAX_ROUTES];
    size_t nroutes = cfg.management_port ? routes_health_liveness(routes, MAX_ROUTES, health)
                                         : routes_health(routes, MAX_ROUTES, health);
    if (http_api) {
        /* The CRM clients of the server's threads (validation, reconciliation, resync). */
        api.crms = crm_pool_new(&cfg, stores);
        if (!api.crms) {
            LOG_KV(LOG_ERROR, "out of memory");
            rc = 1;
            goto out;
        }
        nroutes += routes_webhooks(routes + nroutes, MAX_ROUTES - nroutes, &hooks);
        nroutes += routes_admin(routes + nroutes, MAX_ROUTES - nroutes, &api);
        nroutes += routes_deadletters(routes + nroutes, MAX_ROUTES - nroutes, &api);
        nroutes += routes_console(routes + nroutes, MAX_ROUTES - nroutes, &cfg);
        nroutes += routes_people(routes + nroutes, MAX_ROUTES - nroutes, &api);
        nroutes += routes_jobs(routes + nroutes, MAX_ROUTES - nroutes, &api);
        nroutes += routes_overview(routes + nroutes, MAX_ROUTES - nroutes, &api);
    }

    http_server_options opt = {.bind_addr = cfg.bind_addr,
                               .port = cfg.port,
                               .max_body_bytes = (size_t)cfg.max_body_bytes,
                               .threads = cfg.http_threads,
                               .connection_limit = cfg.http_connection_limit,
                               .per_ip_limit = cfg.http_per_ip_limit,
                               .timeout_s = cfg.http_timeout_s,
                               .request_timeout_s = cfg.http_request_timeout_s,
                               .name = "public"};
    unsigned char pins[SECURE_PINS_MAX * SECURE_PIN_BYTES];
    if (cfg.tls_cert_file) {
        const struct {
            const char *var, *path;
            char **dst;
        } pem[] = {{"TLS_CERT_FILE", cfg.tls_cert_file, &tls_cert},
                   {"TLS_KEY_FILE", cfg.tls_key_file, &tls_key},
                   {"TLS_CLIENT_CA_FILE", cfg.tls_client_ca_file, &tls_ca}};
        for (size_t i = 0; i < 3; i++) {
            if (!pem[i].path) continue;
            *pem[i].dst = config_read_file(pem[i].path, PEM_MAX, err, sizeof err);
            if (*pem[i].dst && !**pem[i].dst) snprintf(err, sizeof err, "%s is empty", pem[i].path);
            if (!*pem[i].dst || !**pem[i].dst) {
                LOGF(LOG_ERROR, "%s: %s", pem[i].var, err);
                rc = 2;
                goto out;
            }
        }
        opt.tls_cert_pem = tls_cert;
        opt.tls_key_pem = tls_key;
        opt.tls_ca_pem = tls_ca;
        if (cfg.tls_client_cert_pins) { /* validated by config_load */
            int n =
                secure_parse_pins(cfg.tls_client_cert_pins, pins, SECURE_PINS_MAX, err, sizeof err);
            opt.cert_pins = pins;
            opt.n_cert_pins = n > 0 ? (size_t)n : 0;
        }
    }
    srv = http_server_start(&opt, routes, nroutes, err, sizeof err);
    if (!srv) {
        LOGF(LOG_ERROR, "BIND_ADDR/PORT: %s", err);
        rc = 1;
        goto out;
    }
    char port[8];
    snprintf(port, sizeof port, "%d", cfg.port);
    LOG_KV(LOG_INFO, "listening", "command", config_command_name(cmd), "addr", cfg.bind_addr,
           "port", port, "version", CS_VERSION);
    if (cfg.management_port) {
        mgmt = start_management(&cfg, health, err, sizeof err);
        if (!mgmt) {
            LOGF(LOG_ERROR, "MANAGEMENT_BIND_ADDR/MANAGEMENT_PORT: %s", err);
            rc = 1;
            goto out;
        }
    }

    int sig = 0;
    sigwait(&sigs, &sig);
    LOG_KV(LOG_INFO, "shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_stop(srv, SHUTDOWN_GRACE_MS);
    srv = NULL;
    signalled = true;
out:
    http_server_stop(srv, 0);
    http_server_stop(mgmt, 0);
    committer_stop(hooks.commit); /* after the server: its deferred requests need it */
    checks_ready_stop(crm_checks);
    jobs_runner_stop(job_thread);
    poller_stop(jobs);
    worker_pool_stop(workers);
    spool_free(hooks.spool);
    /* Last, so that no worker or poller line follows it: an operator reads it as "all done". */
    if (signalled) LOG_KV(LOG_INFO, "stopped");
    free(tls_cert);
    if (tls_key) memset(tls_key, 0, strlen(tls_key)); /* a private key does not linger */
    free(tls_key);
    free(tls_ca);
    routes_health_free(health);
    quota_metrics_stop(stores);
    crm_pool_free(api.crms); /* after the server: its threads used them */
    store_pool_free(stores); /* after everything that borrowed it */
    metrics_cleanup();
    sf_outbound_cleanup();
    http_client_global_cleanup();
    config_free(&cfg);
    return rc;
}

/* `check [--roundtrip PROGRAM_ID [--timeout SECONDS]]`: 0, or -1 with a sentence on stderr. */
static int check_args(int argc, char **argv, const char **program, int *timeout_s) {
    bool timeout_given = false;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(argv[i], "--roundtrip") && v && v[0] && strlen(v) < 20 &&
            strspn(v, "0123456789") == strlen(v)) {
            *program = argv[++i];
        } else if (!strcmp(argv[i], "--timeout") && v) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > ROUNDTRIP_TIMEOUT_MAX_S) {
                fprintf(stderr,
                        "campaign-sync check: --timeout takes 1 to %d seconds, not \"%s\"\n",
                        ROUNDTRIP_TIMEOUT_MAX_S, v);
                return -1;
            }
            *timeout_s = (int)n;
            timeout_given = true;
            i++;
        } else {
            fprintf(stderr, "campaign-sync check: %s\n",
                    !strcmp(argv[i], "--roundtrip")
                        ? "--roundtrip takes a Marketo program id (digits)"
                        : "unexpected argument");
            return -1;
        }
    }
    if (timeout_given && !*program) {
        fprintf(stderr, "campaign-sync check: --timeout goes with --roundtrip\n");
        return -1;
    }
    return 0;
}

static int check(int argc, char **argv) {
    const char *roundtrip = NULL;
    int timeout_s = ROUNDTRIP_TIMEOUT_S;
    if (check_args(argc, argv, &roundtrip, &timeout_s) != 0) {
        usage(stderr);
        return 2;
    }
    struct config cfg;
    const char *lf = getenv("LOG_FORMAT");
    log_setup(LOG_WARN,
              lf && log_format_parse(lf) >= 0 ? (log_format)log_format_parse(lf) : LOG_FORMAT_TEXT);
    int problems = config_load(&cfg, CMD_CHECK, print_config_error, NULL);
    if (!problems) {
        setenv("TZ", cfg.marketo_timezone, 1);
        tzset();
    }
    metrics_init(CS_VERSION);
    http_client_global_init();
    int rc = 1;
    if (roundtrip && problems)
        printf("FAIL  config: %d variable(s) missing or malformed (named above)\n", problems);
    else if (roundtrip)
        rc = roundtrip_run(&cfg, roundtrip, timeout_s, stdout);
    else
        rc = checks_cli(&cfg, problems, stdout);
    http_client_global_cleanup();
    metrics_cleanup();
    config_free(&cfg);
    return rc;
}

/* A container HEALTHCHECK without curl in the image: the management port when there is one
 * (plain HTTP, also when the public port serves HTTPS), else the public port (HTTPS when
 * TLS_CERT_FILE is set). */
static int healthcheck(void) {
    const char *port = getenv("MANAGEMENT_PORT"), *addr = getenv("MANAGEMENT_BIND_ADDR");
    const char *cert = getenv("TLS_CERT_FILE");
    bool tls = false;
    if (!port || !*port) {
        port = getenv("PORT");
        addr = NULL;
        tls = cert && *cert;
    }
    /* A wildcard address is reached on loopback. */
    if (!addr || !*addr || !strcmp(addr, "0.0.0.0") || !strcmp(addr, "::")) addr = "127.0.0.1";
    char url[128];
    snprintf(url, sizeof url, strchr(addr, ':') ? "%s://[%s]:%s/healthz" : "%s://%s:%s/healthz",
             tls ? "https" : "http", addr, port && *port ? port : "8080");
    log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
    metrics_init(CS_VERSION);
    http_client_global_init();
    http_client *c = http_client_new("self", 3000);
    if (c && tls) http_client_trust_loopback(c);
    http_result r = {0};
    int ok = c && http_client_request(c, "GET", url, NULL, NULL, 0, &r) == 0 && r.status == 200;
    if (!ok)
        fprintf(stderr, "campaign-sync healthcheck: %s: %s\n", url, r.status ? "not 200" : r.error);
    http_result_free(&r);
    http_client_free(c);
    http_client_global_cleanup();
    metrics_cleanup();
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "--version") || !strcmp(c, "-V")) {
        printf("campaign-sync %s\n", CS_VERSION);
        return 0;
    }
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "serve")) return serve(CMD_SERVE);
    if (!strcmp(c, "ingest")) return serve(CMD_INGEST);
    if (!strcmp(c, "worker")) return serve(CMD_WORKER);
    if (!strcmp(c, "check")) return check(argc - 2, argv + 2);
    if (!strcmp(c, "healthcheck")) return healthcheck();
    fprintf(stderr, "campaign-sync: unknown command \"%s\"\n\n", c);
    usage(stderr);
    return 2;
}
