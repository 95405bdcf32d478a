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

/* What serve started, so that stop_all frees exactly that (NULL or false: not started). It
 * lives on serve's stack for the whole run: the servers' routes point into it. */
typedef struct {
    cs_command cmd;
    bool http_api, run_workers;
    struct config cfg;
    bool xml_ready, curl_ready;
    /* The Redis handles of the HTTP servers' threads (and of this one), and what /readyz
     * checks. */
    store_pool *stores;
    routes_health_ctx *health;
    webhooks_ctx hooks;
    routes_ctx api;
    checks_ready *crm_checks;
    worker_pool *workers;
    poller *jobs;
    jobs_runner *job_thread;
    char *tls_cert, *tls_key, *tls_ca;
    http_server *srv, *mgmt;
    sigset_t sigs;
    bool signalled;
} running;

/* Logging, then the configuration (logged with secrets redacted): 0, or 2 after naming each
 * problem (the configuration is freed then). */
static int load_config(running *r) {
    /* Level and format first, so the lines about other variables come out as asked. */
    const char *lv = getenv("LOG_LEVEL"), *lf = getenv("LOG_FORMAT");
    log_setup(lv && log_level_parse(lv) >= 0 ? (log_level)log_level_parse(lv) : LOG_INFO,
              lf && log_format_parse(lf) >= 0 ? (log_format)log_format_parse(lf) : LOG_FORMAT_JSON);
    int problems = config_load(&r->cfg, r->cmd, print_config_error, NULL);
    if (problems) {
        LOGF(LOG_ERROR, "campaign-sync %s: %d configuration problem%s; not starting",
             config_command_name(r->cmd), problems, problems == 1 ? "" : "s");
        config_free(&r->cfg);
        return 2;
    }
    log_setup((log_level)r->cfg.log_level, (log_format)r->cfg.log_format);
    /* Marketo's {{system.dateTime}} has no offset: local time means the account's zone. */
    setenv("TZ", r->cfg.marketo_timezone, 1);
    tzset();
    config_log(&r->cfg);
    return 0;
}

/* Metrics, the XML parser, the store pool and readiness checks, libcurl, the Marketo spool
 * and the sync switch's first value: 0, 1, or 2 when the spool cannot be opened. */
static int open_base(running *r) {
    char err[256];
    if (metrics_init(CS_VERSION, err, sizeof err) != 0) {
        LOG_KV(LOG_ERROR, err);
        return 1;
    }
    r->xml_ready = sf_outbound_init() == 0;
    r->stores = store_pool_new(&r->cfg.redis);
    r->health = r->stores ? routes_health_new(r->stores) : NULL;
    r->curl_ready = true;
    bool curl_ok = http_client_global_init() == 0;
    r->api = (routes_ctx){.stores = r->stores, .health = r->health};
    r->hooks = (webhooks_ctx){.cfg = &r->cfg};
    routes_webhooks_acl(&r->hooks);
    if (!r->xml_ready || !r->health || !curl_ok) {
        LOG_KV(LOG_ERROR, !r->xml_ready ? "cannot set up the XML parser (no thread key left)"
                          : !curl_ok    ? "cannot set up libcurl (curl_global_init failed)"
                                        : "out of memory (the readiness checks)");
        return 1;
    }
    if (r->http_api) {
        char serr[1400];
        r->hooks.spool = spool_new(r->cfg.spool_dir, r->cfg.spool_max_bytes, serr, sizeof serr);
        if (!r->hooks.spool) {
            LOG_KV(LOG_ERROR, serr);
            return 2;
        }
    }
    /* The switch's first value; later /v1/sync rules. Workers retry this if Redis is down. */
    store *boot = store_pool_get(r->stores);
    if (boot && store_sync_init(boot, r->cfg.sync_enabled, err, sizeof err) != 0)
        LOG_KV(LOG_WARN, "the sync switch's first value is not stored yet; workers retry", "error",
               err);
    return 0;
}

/* Signals go to the main thread's sigwait only; every thread started after this inherits the
 * mask. 0 or 1. */
static int block_signals(running *r) {
    sigemptyset(&r->sigs);
    sigaddset(&r->sigs, SIGTERM);
    sigaddset(&r->sigs, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &r->sigs, NULL) != 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        LOG_KV(LOG_ERROR, "cannot set up signal handling");
        return 1;
    }
    return 0;
}

/* The spool mover and the CRM readiness and allowance checks: 0 or 1. */
static int start_checks(running *r) {
    /* After the mask: background threads must not take SIGTERM. */
    if (r->hooks.spool && spool_start_mover(r->hooks.spool, &r->cfg.redis) != 0) {
        LOG_KV(LOG_ERROR, "cannot start the spool mover thread");
        return 1;
    }
    if (r->http_api) {
        /* CRM checks are listed in /readyz (never failing it), refreshed in the background. */
        char missing[200];
        if (crm_configured(&r->cfg, missing, sizeof missing)) {
            r->crm_checks = checks_ready_start(&r->cfg);
            if (!add_check(r->health, "salesforce", checks_ready_salesforce, r->crm_checks,
                           false) ||
                !add_check(r->health, "marketo", checks_ready_marketo, r->crm_checks, false))
                return 1;
        }
    }
    char no_crm[200];
    if (crm_configured(&r->cfg, no_crm, sizeof no_crm)) {
        /* A spent CRM allowance pauses every process that calls the CRMs: each says so, and
         * shows a wrong MARKETO_TIMEZONE as the workers saw it (kept in Redis). */
        if (!add_check(r->health, "salesforce_quota", quota_ready_salesforce, NULL, false) ||
            !add_check(r->health, "marketo_quota", quota_ready_marketo, NULL, false) ||
            !add_check(r->health, "marketo_timezone", tzwatch_ready, &r->cfg, false))
            return 1;
        if (quota_metrics_start(r->stores) != 0) {
            LOG_KV(LOG_ERROR, "too many metrics collectors");
            return 1;
        }
    }
    return 0;
}

/* Workers, the poller and the jobs runner (unless ingest-only), then the ingest committer
 * (unless worker-only): 0 or 1. */
static int start_workers(running *r) {
    char err[256];
    if (r->run_workers && r->cfg.workers > 0) {
        r->workers = worker_pool_start(&r->cfg, r->cfg.workers, err, sizeof err);
        if (!r->workers) {
            LOG_KV(LOG_ERROR, err);
            return 1;
        }
        if (!add_check(r->health, "workers", worker_ready_check, &r->cfg, true)) return 1;
        r->jobs = poller_start(&r->cfg, err, sizeof err);
        if (!r->jobs) {
            LOG_KV(LOG_ERROR, err);
            return 1;
        }
        /* Backfills and reconciliations (issue 19). */
        r->job_thread = jobs_runner_start(&r->cfg, err, sizeof err);
        if (!r->job_thread) {
            LOG_KV(LOG_ERROR, err);
            return 1;
        }
    }
    if (r->http_api) {
        r->hooks.commit =
            committer_start(&r->cfg.redis, (size_t)r->cfg.ingest_max_waiting, err, sizeof err);
        if (!r->hooks.commit) {
            LOG_KV(LOG_ERROR, err);
            return 1;
        }
    }
    return 0;
}

/* The public port's routes into routes (MAX_ROUTES); their count, or -1 (logged) when the
 * CRM clients of the server's threads cannot be made. */
static int public_routes(running *r, http_route *routes) {
    /* With MANAGEMENT_PORT, /readyz and /metrics are served there only (with /healthz); the
     * public port keeps /healthz. */
    size_t n = r->cfg.management_port ? routes_health_liveness(routes, MAX_ROUTES, r->health)
                                      : routes_health(routes, MAX_ROUTES, r->health);
    if (!r->http_api) return (int)n;
    /* The CRM clients of the server's threads (validation, reconciliation, resync). */
    r->api.crms = crm_pool_new(&r->cfg, r->stores);
    if (!r->api.crms) {
        LOG_KV(LOG_ERROR, "out of memory");
        return -1;
    }
    n += routes_webhooks(routes + n, MAX_ROUTES - n, &r->hooks);
    n += routes_admin(routes + n, MAX_ROUTES - n, &r->api);
    n += routes_deadletters(routes + n, MAX_ROUTES - n, &r->api);
    n += routes_console(routes + n, MAX_ROUTES - n, &r->cfg);
    n += routes_people(routes + n, MAX_ROUTES - n, &r->api);
    n += routes_jobs(routes + n, MAX_ROUTES - n, &r->api);
    n += routes_overview(routes + n, MAX_ROUTES - n, &r->api);
    return (int)n;
}

/* With TLS_CERT_FILE: the PEM files read into r (kept until stop_all) and the client
 * certificate pins parsed into pins, both set in opt. 0, or 2 (logged) on a missing or empty
 * file. */
static int load_tls(running *r, http_server_options *opt, unsigned char *pins) {
    if (!r->cfg.tls_cert_file) return 0;
    char err[256];
    const struct {
        const char *var, *path;
        char **dst;
    } pem[] = {{"TLS_CERT_FILE", r->cfg.tls_cert_file, &r->tls_cert},
               {"TLS_KEY_FILE", r->cfg.tls_key_file, &r->tls_key},
               {"TLS_CLIENT_CA_FILE", r->cfg.tls_client_ca_file, &r->tls_ca}};
    for (size_t i = 0; i < 3; i++) {
        if (!pem[i].path) continue;
        *pem[i].dst = config_read_file(pem[i].path, PEM_MAX, err, sizeof err);
        if (*pem[i].dst && !**pem[i].dst) snprintf(err, sizeof err, "%s is empty", pem[i].path);
        if (!*pem[i].dst || !**pem[i].dst) {
            LOGF(LOG_ERROR, "%s: %s", pem[i].var, err);
            return 2;
        }
    }
    opt->tls_cert_pem = r->tls_cert;
    opt->tls_key_pem = r->tls_key;
    opt->tls_ca_pem = r->tls_ca;
    if (r->cfg.tls_client_cert_pins) { /* validated by config_load */
        int n =
            secure_parse_pins(r->cfg.tls_client_cert_pins, pins, SECURE_PINS_MAX, err, sizeof err);
        opt->cert_pins = pins;
        opt->n_cert_pins = n > 0 ? (size_t)n : 0;
    }
    return 0;
}

/* The public listener (its routes, TLS) and the management one: 0, 1, or 2 on a TLS file. */
static int start_listeners(running *r) {
    http_route routes[MAX_ROUTES];
    int nroutes = public_routes(r, routes);
    if (nroutes < 0) return 1;
    const struct config *cfg = &r->cfg;
    http_server_options opt = {.bind_addr = cfg->bind_addr,
                               .port = cfg->port,
                               .max_body_bytes = (size_t)cfg->max_body_bytes,
                               .threads = cfg->http_threads,
                               .connection_limit = cfg->http_connection_limit,
                               .per_ip_limit = cfg->http_per_ip_limit,
                               .timeout_s = cfg->http_timeout_s,
                               .request_timeout_s = cfg->http_request_timeout_s,
                               .name = "public"};
    unsigned char pins[SECURE_PINS_MAX * SECURE_PIN_BYTES];
    int rc = load_tls(r, &opt, pins);
    if (rc != 0) return rc;
    char err[256];
    r->srv = http_server_start(&opt, routes, (size_t)nroutes, err, sizeof err);
    if (!r->srv) {
        LOGF(LOG_ERROR, "BIND_ADDR/PORT: %s", err);
        return 1;
    }
    char port[8];
    snprintf(port, sizeof port, "%d", cfg->port);
    LOG_KV(LOG_INFO, "listening", "command", config_command_name(r->cmd), "addr", cfg->bind_addr,
           "port", port, "version", CS_VERSION);
    if (cfg->management_port) {
        r->mgmt = start_management(cfg, r->health, err, sizeof err);
        if (!r->mgmt) {
            LOGF(LOG_ERROR, "MANAGEMENT_BIND_ADDR/MANAGEMENT_PORT: %s", err);
            return 1;
        }
    }
    return 0;
}

/* Blocks until SIGTERM or SIGINT, then lets the public server's requests finish. */
static void wait_for_signal(running *r) {
    int sig = 0;
    sigwait(&r->sigs, &sig);
    LOG_KV(LOG_INFO, "shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_stop(r->srv, SHUTDOWN_GRACE_MS);
    r->srv = NULL;
    r->signalled = true;
}

/* Stops and frees what r says started (every stop and free takes NULL), in this order. */
static void stop_all(running *r) {
    http_server_stop(r->srv, 0);
    http_server_stop(r->mgmt, 0);
    committer_stop(r->hooks.commit); /* after the server: its deferred requests need it */
    checks_ready_stop(r->crm_checks);
    jobs_runner_stop(r->job_thread);
    poller_stop(r->jobs);
    worker_pool_stop(r->workers);
    spool_free(r->hooks.spool);
    /* Last, so that no worker or poller line follows it: an operator reads it as "all done". */
    if (r->signalled) LOG_KV(LOG_INFO, "stopped");
    free(r->tls_cert);
    if (r->tls_key) memset(r->tls_key, 0, strlen(r->tls_key)); /* a private key does not linger */
    free(r->tls_key);
    free(r->tls_ca);
    routes_health_free(r->health);
    quota_metrics_stop(r->stores);
    crm_pool_free(r->api.crms); /* after the server: its threads used them */
    store_pool_free(r->stores); /* after everything that borrowed it */
    metrics_cleanup();
    if (r->xml_ready) sf_outbound_cleanup();
    if (r->curl_ready) http_client_global_cleanup();
    config_free(&r->cfg);
}

/* serve, ingest and worker: start in order, wait for a signal, stop. The exit code: 0 after a
 * signal, 2 for configuration, 1 for any other start-up failure. */
static int serve(cs_command cmd) {
    running r = {.cmd = cmd, .http_api = cmd != CMD_WORKER, .run_workers = cmd != CMD_INGEST};
    if (load_config(&r) != 0) return 2;
    int rc = open_base(&r);
    if (rc == 0) rc = block_signals(&r);
    if (rc == 0) rc = start_checks(&r);
    if (rc == 0) rc = start_workers(&r);
    if (rc == 0) rc = start_listeners(&r);
    if (rc == 0) wait_for_signal(&r);
    stop_all(&r);
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
    char err[256];
    if (metrics_init(CS_VERSION, err, sizeof err) != 0) {
        LOG_KV(LOG_ERROR, err);
        metrics_cleanup();
        config_free(&cfg);
        return 1;
    }
    int rc = 1;
    if (http_client_global_init() != 0)
        printf("FAIL  libcurl: curl_global_init failed\n");
    else if (roundtrip && problems)
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
    char err[256];
    if (metrics_init(CS_VERSION, err, sizeof err) != 0) {
        fprintf(stderr, "campaign-sync healthcheck: %s\n", err);
        metrics_cleanup();
        return 1;
    }
    http_client *c = http_client_global_init() == 0 ? http_client_new("self", 3000) : NULL;
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
