/* config — environment to struct config through one table. See include/config.h. */
#include "config.h"

#include "log.h"
#include "netacl.h"
#include "secure.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SECRET_FILE_MAX 65536
#define ERR_LINE        512

typedef enum {
    T_STR,
    T_INT,
    T_LONG,
    T_BOOL,
    T_URL,
    T_ENUM_LEVEL,
    T_ENUM_FORMAT,
    T_ORGID,
    T_SFID,
    T_APIVER,
    T_TZ,
    T_REDIS,
    T_TOKEN, /* a secret for a URL path: letters, digits, - _ . ~ (min..max bytes) */
    T_PINS,  /* SHA-256 certificate fingerprints */
    T_SHARE  /* a fraction (double) from min/100 to max/100 */
} setting_type;

/* Bit per command that requires the setting. */
#define REQ_SERVE  (1u << CMD_SERVE)
#define REQ_INGEST (1u << CMD_INGEST)
#define REQ_WORKER (1u << CMD_WORKER)
#define REQ_CHECK  (1u << CMD_CHECK)
#define REQ_CRM    (REQ_SERVE | REQ_WORKER | REQ_CHECK)

typedef struct {
    const char *name;
    setting_type type;
    size_t offset;
    const char *def; /* NULL: no default (unset) */
    long min, max;   /* for T_INT and T_LONG; for T_STR and T_TOKEN, the length (0: any) */
    bool secret;     /* redacted in logs; may be given as NAME_FILE */
    unsigned required;
    const char *hint; /* what a valid value looks like */
} setting;

#define OFF(f) offsetof(struct config, f)

static const setting settings[] = {
    {"PORT", T_INT, OFF(port), "8080", 1, 65535, false, 0, NULL},
    {"BIND_ADDR", T_STR, OFF(bind_addr), "0.0.0.0", 0, 0, false, 0, "an IPv4 or IPv6 address"},
    {"REDIS_URL", T_REDIS, OFF(redis_url), "redis://127.0.0.1:6379/0", 0, 0, true, 0, NULL},
    {"WORKERS", T_INT, OFF(workers), "2", 0, 256, false, 0, NULL},
    {"SF_LOGIN_URL", T_URL, OFF(sf_login_url), NULL, 0, 0, false, REQ_CRM,
     "the org's My Domain URL, e.g. https://acme.my.salesforce.com"},
    {"SF_CLIENT_ID", T_STR, OFF(sf_client_id), NULL, 0, 0, false, REQ_CRM,
     "the connected app's consumer key"},
    {"SF_CLIENT_SECRET", T_STR, OFF(sf_client_secret), NULL, 0, 0, true, REQ_CRM,
     "the connected app's consumer secret"},
    {"SF_API_VERSION", T_APIVER, OFF(sf_api_version), "v62.0", 0, 0, false, 0, NULL},
    {"SF_ORG_ID", T_ORGID, OFF(sf_org_id), NULL, 0, 0, false, REQ_SERVE | REQ_INGEST,
     "the org's 15- or 18-character id (Setup > Company Information)"},
    {"SF_INTEGRATION_USER_ID", T_SFID, OFF(sf_integration_user_id), NULL, 0, 0, false, 0, NULL},
    {"MARKETO_BASE_URL", T_URL, OFF(marketo_base_url), NULL, 0, 0, false, REQ_CRM,
     "e.g. https://123-ABC-456.mktorest.com"},
    {"MARKETO_CLIENT_ID", T_STR, OFF(marketo_client_id), NULL, 0, 0, false, REQ_CRM,
     "the custom service's client id"},
    {"MARKETO_CLIENT_SECRET", T_STR, OFF(marketo_client_secret), NULL, 0, 0, true, REQ_CRM,
     "the custom service's client secret"},
    {"MARKETO_WEBHOOK_SECRET", T_STR, OFF(marketo_webhook_secret), NULL, CONFIG_SECRET_MIN, 0, true,
     REQ_SERVE | REQ_INGEST, "the value Marketo sends in X-Webhook-Secret"},
    {"MARKETO_TIMEZONE", T_TZ, OFF(marketo_timezone), "UTC", 0, 0, false, 0, NULL},
    {"MARKETO_CALLS_PER_20S", T_INT, OFF(marketo_calls_per_20s), "50", 1, 100, false, 0, NULL},
    {"MARKETO_MAX_CONCURRENT", T_INT, OFF(marketo_max_concurrent), "5", 1, 10, false, 0, NULL},
    {"ADMIN_TOKEN", T_STR, OFF(admin_token), NULL, CONFIG_SECRET_MIN, 0, true, 0, NULL},
    {"SYNC_ENABLED", T_BOOL, OFF(sync_enabled), "true", 0, 0, false, 0, NULL},
    {"MAX_BODY_BYTES", T_LONG, OFF(max_body_bytes), "1048576", 1024, 64L * 1024 * 1024, false, 0,
     NULL},
    {"MAX_ATTEMPTS", T_INT, OFF(max_attempts), "10", 1, 1000, false, 0, NULL},
    {"RETRY_BASE_MS", T_LONG, OFF(retry_base_ms), "500", 1, 3600000, false, 0, NULL},
    {"RETRY_MAX_MS", T_LONG, OFF(retry_max_ms), "300000", 1, 86400000, false, 0, NULL},
    {"CLAIM_IDLE_MS", T_LONG, OFF(claim_idle_ms), "30000", 100, 86400000, false, 0, NULL},
    {"READY_STALL_S", T_INT, OFF(ready_stall_s), "120", 1, 86400, false, 0, NULL},
    {"PROGRAM_POLL_INTERVAL_S", T_INT, OFF(program_poll_interval_s), "300", 1, 86400, false, 0,
     NULL},
    {"SF_DELETED_POLL_INTERVAL_S", T_INT, OFF(sf_deleted_poll_interval_s), "60", 1, 86400, false, 0,
     NULL},
    {"RECONCILE_INTERVAL_S", T_INT, OFF(reconcile_interval_s), "3600", 1, 7 * 86400, false, 0,
     NULL},
    {"TLS_CERT_FILE", T_STR, OFF(tls_cert_file), NULL, 0, 0, false, 0, NULL},
    {"TLS_KEY_FILE", T_STR, OFF(tls_key_file), NULL, 0, 0, false, 0, NULL},
    {"TLS_CLIENT_CA_FILE", T_STR, OFF(tls_client_ca_file), NULL, 0, 0, false, 0, NULL},
    {"SF_ALLOWED_CIDRS", T_STR, OFF(sf_allowed_cidrs), NULL, 0, 0, false, 0, NULL},
    {"MARKETO_ALLOWED_CIDRS", T_STR, OFF(marketo_allowed_cidrs), NULL, 0, 0, false, 0, NULL},
    {"TRUSTED_PROXIES", T_STR, OFF(trusted_proxies), NULL, 0, 0, false, 0, NULL},
    {"SPOOL_DIR", T_STR, OFF(spool_dir), "./spool", 0, 0, false, 0, NULL},
    {"LOG_LEVEL", T_ENUM_LEVEL, OFF(log_level), "info", 0, 0, false, 0, NULL},
    {"LOG_FORMAT", T_ENUM_FORMAT, OFF(log_format), "json", 0, 0, false, 0, NULL},
    /* Not in SPEC section 4; tuning knobs documented in the README. */
    {"HTTP_THREADS", T_INT, OFF(http_threads), "8", 1, 256, false, 0, NULL},
    {"HTTP_CONNECTION_LIMIT", T_INT, OFF(http_connection_limit), "1024", 4, 100000, false, 0, NULL},
    {"HTTP_PER_IP_CONNECTION_LIMIT", T_INT, OFF(http_per_ip_limit), "256", 0, 100000, false, 0,
     NULL},
    {"HTTP_TIMEOUT_S", T_INT, OFF(http_timeout_s), "30", 1, 3600, false, 0, NULL},
    {"INGEST_MAX_WAITING_EVENTS", T_INT, OFF(ingest_max_waiting), "20000", 100, 1000000, false, 0,
     NULL},
    {"CRM_TIMEOUT_MS", T_LONG, OFF(crm_timeout_ms), "20000", 100, 600000, false, 0, NULL},
    /* Issue 17: who may call the webhooks, how much and how slowly they may send. */
    {"SF_WEBHOOK_TOKEN", T_TOKEN, OFF(sf_webhook_token), NULL, CONFIG_SECRET_MIN, 255, true, 0,
     NULL},
    {"SF_WEBHOOK_AUTH", T_STR, OFF(sf_webhook_auth), NULL, 0, 0, false, 0, NULL},
    {"TLS_CLIENT_CERT_PINS", T_PINS, OFF(tls_client_cert_pins), NULL, 0, 0, false, 0, NULL},
    {"SF_MAX_BODY_BYTES", T_LONG, OFF(sf_max_body_bytes), "262144", 16384, 64L * 1024 * 1024, false,
     0, NULL},
    {"HTTP_REQUEST_TIMEOUT_S", T_INT, OFF(http_request_timeout_s), "30", 1, 3600, false, 0, NULL},
    {"SPOOL_MAX_BYTES", T_LONG, OFF(spool_max_bytes), "1073741824", 65536, LONG_MAX, false, 0,
     NULL},
    {"MANAGEMENT_PORT", T_INT, OFF(management_port), NULL, 1, 65535, false, 0, NULL},
    {"MANAGEMENT_BIND_ADDR", T_STR, OFF(management_bind_addr), "127.0.0.1", 0, 0, false, 0,
     "an IPv4 or IPv6 address"},
    /* Issue 21: rotating MARKETO_WEBHOOK_SECRET without losing the events sent meanwhile. */
    {"MARKETO_WEBHOOK_SECRET_PREVIOUS", T_STR, OFF(marketo_webhook_secret_previous), NULL,
     CONFIG_SECRET_MIN, 0, true, 0, NULL},
    {"TRACE_RETENTION_DAYS", T_INT, OFF(trace_retention_days), "30", 0, 400, false, 0, NULL},
    {"TRACE_MAX_PER_PERSON", T_INT, OFF(trace_max_per_person), "200", 10, 10000, false, 0, NULL},
    {"CREATE_MISSING_PEOPLE", T_BOOL, OFF(create_missing_people), "true", 0, 0, false, 0, NULL},
    /* Object Reference for the Salesforce Platform, "Lead": LastName and Company are
     * required (80 and 255 characters at most). */
    {"LEAD_PLACEHOLDER_LAST_NAME", T_STR, OFF(lead_placeholder_last_name), "[not provided]", 0, 80,
     false, 0, NULL},
    {"LEAD_PLACEHOLDER_COMPANY", T_STR, OFF(lead_placeholder_company), "[not provided]", 0, 255,
     false, 0, NULL},
    /* Issue 19: linking a program to a campaign that has members; jobs. */
    {"BACKFILL_ON_LINK", T_BOOL, OFF(backfill_on_link), "true", 0, 0, false, 0, NULL},
    {"BACKFILL_MARKETO_SHARE", T_SHARE, OFF(backfill_marketo_share), "0.5", 5, 100, false, 0, NULL},
    {"JOB_RETENTION_S", T_LONG, OFF(job_retention_s), "604800", 60, 90L * 86400, false, 0, NULL},
    {"JOB_DETAILS_MAX", T_LONG, OFF(job_details_max), "100000", 0, 10000000, false, 0, NULL},
    /* Issue 19: a program's members through Marketo's bulk program member extract
     * (member_lists.h): above how many members, how often its status is read (Adobe "Bulk
     * Extract": the status changes at most once every 60 s), how much of its file one call
     * reads. */
    {"MARKETO_BULK_ABOVE_MEMBERS", T_LONG, OFF(marketo_bulk_above_members), "3000", 0, LONG_MAX,
     false, 0, NULL},
    {"MARKETO_BULK_POLL_MS", T_LONG, OFF(marketo_bulk_poll_ms), "60000", 10, 3600000, false, 0,
     NULL},
    {"MARKETO_BULK_READ_BYTES", T_LONG, OFF(marketo_bulk_read_bytes), "4194304", 4096,
     16L * 1024 * 1024, false, 0, NULL},
    /* Issue 19: a campaign over this many members is listed by a Bulk API 2.0 query job, read
     * SF_BULK_PAGE_RECORDS rows a results page. */
    {"SF_BULK_ABOVE_MEMBERS", T_LONG, OFF(sf_bulk_above_members), "50000", 0, 100000000, false, 0,
     NULL},
    {"SF_BULK_PAGE_RECORDS", T_LONG, OFF(sf_bulk_page_records), "10000", 1, 1000000, false, 0,
     NULL},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

static const char *command_names[CMD_COUNT] = {"serve", "ingest", "worker", "check"};

const char *config_command_name(cs_command cmd) {
    return command_names[cmd];
}

/* Collects problems for the caller; each becomes one line. */
typedef struct {
    config_error_fn fn;
    void *ud;
    int count;
} problems;

static void problem(problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(problems *p, const char *fmt, ...) {
    char line[ERR_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->count++;
    if (p->fn)
        p->fn(line, p->ud);
    else
        LOG_KV(LOG_ERROR, line);
}

char *config_read_file(const char *path, size_t max, char *why, size_t whylen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || n > max) {
        snprintf(why, whylen, buf ? "%s is larger than %zu bytes" : "out of memory", path, max);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Reads a NAME_FILE secret: the whole file, trailing newlines removed. */
static char *read_secret_file(const char *path, char *why, size_t whylen) {
    char *buf = config_read_file(path, SECRET_FILE_MAX, why, whylen);
    if (!buf) return NULL;
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

static bool all_alnum(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i])) return false;
    return true;
}

static bool valid_tz(const char *tz) {
    if (strcmp(tz, "UTC") == 0) return true;
    if (!*tz || tz[0] == '/' || strstr(tz, "..")) return false;
    for (const char *p = tz; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p)) return false;
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int config_parse_redis_url(const char *url, struct redis_target *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->port = 6379;
    const char *p;
    if (strncmp(url, "redis://", 8) == 0)
        p = url + 8;
    else {
        snprintf(err, errlen, "must start with redis://");
        return -1;
    }
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : 0;
        const char *pw = colon ? colon + 1 : p;
        size_t pwlen = (size_t)(at - pw);
        if (ulen >= sizeof out->user || pwlen >= sizeof out->password) {
            snprintf(err, errlen, "user or password too long");
            return -1;
        }
        memcpy(out->user, p, ulen);
        memcpy(out->password, pw, pwlen);
        p = at + 1;
    }
    const char *end = p + strcspn(p, "/");
    const char *hs = p, *he;
    const char *portp = NULL;
    if (*p == '[') { /* [ipv6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb) {
            snprintf(err, errlen, "unterminated [ in host");
            return -1;
        }
        hs = p + 1;
        he = rb;
        if (rb + 1 < end && rb[1] == ':') portp = rb + 2;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        he = colon ? colon : end;
        if (colon) portp = colon + 1;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof out->host) {
        snprintf(err, errlen, "missing or too long host");
        return -1;
    }
    memcpy(out->host, hs, (size_t)(he - hs));
    if (portp) {
        char *e;
        long port = strtol(portp, &e, 10);
        if (e != end || port < 1 || port > 65535) {
            snprintf(err, errlen, "port must be 1-65535");
            return -1;
        }
        out->port = (int)port;
    }
    if (*end == '/' && end[1]) {
        char *e;
        long db = strtol(end + 1, &e, 10);
        if (*e || db < 0 || db > 10000 || !isdigit((unsigned char)end[1])) {
            snprintf(err, errlen, "database must be a number");
            return -1;
        }
        out->db = (int)db;
    }
    return 0;
}

/* A decimal fraction such as 0.5 (no exponent, no sign). */
static bool parse_share(const char *s, double *out) {
    if (strspn(s, "0123456789.") != strlen(s) || !*s) return false;
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || e == s || *e) return false;
    *out = v;
    return true;
}

static bool parse_long(const char *s, long *out) {
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || e == s || *e) return false;
    *out = v;
    return true;
}

/* The setters and checkers below take one value of a setting's type: a setter stores it at
 * dst, a checker only looks; each returns false with a reason in why when it does not fit. */

/* T_INT (an int at dst) or T_LONG (a long), from st->min to st->max. */
static bool set_integer(const setting *st, void *dst, const char *v, char *why, size_t wl) {
    long n;
    if (!parse_long(v, &n) || n < st->min || n > st->max) {
        snprintf(why, wl, "must be an integer from %ld to %ld", st->min, st->max);
        return false;
    }
    if (st->type == T_LONG)
        *(long *)dst = n;
    else
        *(int *)dst = (int)n;
    return true;
}

static bool set_share(const setting *st, void *dst, const char *v, char *why, size_t wl) {
    double d;
    /* A tenth of a percent of slack, so that 0.05 passes a minimum of 5 %. */
    if (!parse_share(v, &d) || d * 100 < (double)st->min - 1e-3 ||
        d * 100 > (double)st->max + 1e-3) {
        snprintf(why, wl, "must be a fraction from %.2f to %.2f, e.g. 0.5", (double)st->min / 100,
                 (double)st->max / 100);
        return false;
    }
    *(double *)dst = d;
    return true;
}

static bool set_bool(void *dst, const char *v, char *why, size_t wl) {
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
        *(bool *)dst = true;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
        *(bool *)dst = false;
    else {
        snprintf(why, wl, "must be true or false");
        return false;
    }
    return true;
}

static bool set_level(void *dst, const char *v, char *why, size_t wl) {
    int n = log_level_parse(v);
    if (n < 0) {
        snprintf(why, wl, "must be debug, info, warn or error");
        return false;
    }
    *(int *)dst = n;
    return true;
}

static bool set_format(void *dst, const char *v, char *why, size_t wl) {
    int n = log_format_parse(v);
    if (n < 0) {
        snprintf(why, wl, "must be json or text");
        return false;
    }
    *(int *)dst = n;
    return true;
}

/* Every string-valued type, once checked: a copy of v at dst. */
static bool set_text(void *dst, const char *v, char *why, size_t wl) {
    char *copy = strdup(v);
    if (!copy) {
        snprintf(why, wl, "out of memory");
        return false;
    }
    *(char **)dst = copy;
    return true;
}

static bool check_url(const setting *st, const char *v, char *why, size_t wl) {
    if ((strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0) || strlen(v) < 10 ||
        strpbrk(v, " \t\r\n")) {
        snprintf(why, wl, "must be an http(s) URL%s%s", st->hint ? ", " : "",
                 st->hint ? st->hint : "");
        return false;
    }
    return true;
}

static bool check_orgid(const char *v, char *why, size_t wl) {
    if (!((strlen(v) == 15 || strlen(v) == 18) && all_alnum(v, strlen(v)) &&
          strncmp(v, "00D", 3) == 0)) {
        snprintf(why, wl,
                 "must be a Salesforce org id: 15 or 18 letters and digits "
                 "starting with 00D");
        return false;
    }
    return true;
}

static bool check_sfid(const char *v, char *why, size_t wl) {
    if (!((strlen(v) == 15 || strlen(v) == 18) && all_alnum(v, strlen(v)))) {
        snprintf(why, wl, "must be a 15- or 18-character Salesforce id");
        return false;
    }
    return true;
}

static bool check_apiver(const char *v, char *why, size_t wl) {
    const char *p = v;
    bool ok = *p++ == 'v' && isdigit((unsigned char)*p);
    while (ok && isdigit((unsigned char)*p))
        p++;
    ok = ok && *p++ == '.' && isdigit((unsigned char)*p);
    while (ok && isdigit((unsigned char)*p))
        p++;
    if (!ok || *p) {
        snprintf(why, wl, "must look like v62.0");
        return false;
    }
    return true;
}

static bool check_tz(const char *v, char *why, size_t wl) {
    if (!valid_tz(v)) {
        snprintf(why, wl, "must be an IANA time zone name such as UTC or America/Chicago");
        return false;
    }
    return true;
}

/* Also parses the URL into redis. */
static bool check_redis(struct redis_target *redis, const char *v, char *why, size_t wl) {
    char e[128];
    if (config_parse_redis_url(v, redis, e, sizeof e) != 0) {
        snprintf(why, wl, "must be redis://[:password@]host:port[/db]: %s", e);
        return false;
    }
    return true;
}

static bool check_str(const setting *st, const char *v, char *why, size_t wl) {
    if (!*v) {
        snprintf(why, wl, "must not be empty");
        return false;
    }
    if (st->min && strlen(v) < (size_t)st->min) {
        snprintf(why, wl,
                 "must be at least %ld bytes long (a guessable secret is no secret); "
                 "generate one with `openssl rand -hex 32`",
                 st->min);
        return false;
    }
    return true;
}

static bool check_token(const setting *st, const char *v, char *why, size_t wl) {
    if (strlen(v) < (size_t)st->min) {
        snprintf(why, wl,
                 "must be at least %ld bytes long (a guessable secret is no secret); "
                 "generate one with `openssl rand -hex 32`",
                 st->min);
        return false;
    }
    if (strlen(v) > (size_t)st->max ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~") !=
            strlen(v)) {
        snprintf(why, wl,
                 "must be %ld to %ld letters, digits, '-', '_', '.' or '~' (it goes in the "
                 "endpoint URL); generate one with `openssl rand -hex 32`",
                 st->min, st->max);
        return false;
    }
    return true;
}

static bool check_pins(const char *v, char *why, size_t wl) {
    unsigned char pins[SECURE_PINS_MAX * SECURE_PIN_BYTES];
    char e[200];
    if (secure_parse_pins(v, pins, SECURE_PINS_MAX, e, sizeof e) < 0) {
        snprintf(why, wl, "%s", e);
        return false;
    }
    return true;
}

/* Stores one value; returns false with a reason when it does not fit the type. */
static bool assign(const setting *st, struct config *cfg, const char *v, char *why, size_t wl) {
    void *dst = (char *)cfg + st->offset;
    switch (st->type) {
    case T_INT:
    case T_LONG: return set_integer(st, dst, v, why, wl);
    case T_SHARE: return set_share(st, dst, v, why, wl);
    case T_BOOL: return set_bool(dst, v, why, wl);
    case T_ENUM_LEVEL: return set_level(dst, v, why, wl);
    case T_ENUM_FORMAT: return set_format(dst, v, why, wl);
    case T_URL: return check_url(st, v, why, wl) && set_text(dst, v, why, wl);
    case T_ORGID: return check_orgid(v, why, wl) && set_text(dst, v, why, wl);
    case T_SFID: return check_sfid(v, why, wl) && set_text(dst, v, why, wl);
    case T_APIVER: return check_apiver(v, why, wl) && set_text(dst, v, why, wl);
    case T_TZ: return check_tz(v, why, wl) && set_text(dst, v, why, wl);
    case T_REDIS: return check_redis(&cfg->redis, v, why, wl) && set_text(dst, v, why, wl);
    case T_STR: return check_str(st, v, why, wl) && set_text(dst, v, why, wl);
    case T_TOKEN: return check_token(st, v, why, wl) && set_text(dst, v, why, wl);
    case T_PINS: return check_pins(v, why, wl) && set_text(dst, v, why, wl);
    }
    snprintf(why, wl, "unknown setting type %d", (int)st->type); /* every type has a case */
    return false;
}

/* The Salesforce webhook must check its caller somehow: the org id in a message is no secret
 * (it shows in web-to-lead forms), so without a URL token, pinned client certificates or a
 * source allowlist anyone could send changes. SF_WEBHOOK_AUTH=none accepts that risk. */
static void check_webhook_auth(const struct config *cfg, cs_command cmd, problems *pr) {
    if (cfg->tls_client_cert_pins && !cfg->tls_client_ca_file)
        problem(pr, "TLS_CLIENT_CERT_PINS: needs TLS_CLIENT_CA_FILE (the CA that signed the "
                    "pinned certificates; for a self-signed certificate, the certificate itself)");
    if (cfg->sf_webhook_auth && strcmp(cfg->sf_webhook_auth, "none") != 0)
        problem(pr, "SF_WEBHOOK_AUTH: the only value is \"none\" (got \"%.40s\")",
                cfg->sf_webhook_auth);
    if (cfg->management_port && cfg->management_port == cfg->port)
        problem(pr, "MANAGEMENT_PORT: must differ from PORT (%d)", cfg->port);
    if (cmd != CMD_SERVE && cmd != CMD_INGEST) return;
    netacl sf;
    char why[160];
    bool cidrs = cfg->sf_allowed_cidrs &&
                 netacl_parse(cfg->sf_allowed_cidrs, &sf, why, sizeof why) == 0 && sf.n > 0;
    if (!cfg->sf_webhook_token && !cfg->tls_client_cert_pins && !cidrs && !cfg->sf_webhook_auth)
        problem(pr,
                "SF_WEBHOOK_AUTH: /webhooks/salesforce would take a message from anyone who knows "
                "the org id: set SF_WEBHOOK_TOKEN (a secret in the endpoint URL), "
                "TLS_CLIENT_CERT_PINS (Salesforce's client certificate) or SF_ALLOWED_CIDRS, or "
                "SF_WEBHOOK_AUTH=none to accept the risk");
}

/* A Lead field's placeholder must fit the field (max characters, Salesforce's length) and
 * hold no control character. */
static void placeholder_check(problems *pr, const char *name, const char *v, size_t max) {
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)v; v && *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            problem(pr, "%s: must not hold control characters", name);
            return;
        }
        chars += (*p & 0xC0) != 0x80;
    }
    if (chars > max) problem(pr, "%s: at most %zu characters (Salesforce's limit)", name, max);
}

int config_load(struct config *cfg, cs_command cmd, config_error_fn on_error, void *ud) {
    problems pr = {on_error, ud, 0};
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *st = &settings[i];
        char fname[96], why[256];
        snprintf(fname, sizeof fname, "%s_FILE", st->name);
        const char *v = getenv(st->name);
        const char *vf = st->secret ? getenv(fname) : NULL;
        char *fromfile = NULL;
        if (v && !*v) v = NULL; /* an empty variable counts as unset, as in compose files */
        if (vf && !*vf) vf = NULL;
        if (v && vf) {
            problem(&pr, "%s: set either %s or %s, not both", st->name, st->name, fname);
            continue;
        }
        if (vf) {
            fromfile = read_secret_file(vf, why, sizeof why);
            if (!fromfile) {
                problem(&pr, "%s: %s", fname, why);
                continue;
            }
            v = fromfile;
        }
        bool from_default = false;
        if (!v && st->def) {
            v = st->def;
            from_default = true;
        }
        if (!v) {
            if (st->required & (1u << cmd))
                problem(&pr, "%s: required for `campaign-sync %s`: %s", st->name,
                        command_names[cmd], st->hint ? st->hint : "set it");
            continue;
        }
        if (!assign(st, cfg, v, why, sizeof why)) {
            /* Secret values are never echoed back, not even in an error line. */
            if (st->secret || from_default)
                problem(&pr, "%s: %s", st->name, why);
            else
                problem(&pr, "%s: %s (got \"%.80s\")", st->name, why, v);
        }
        free(fromfile);
    }
    if (pr.count == 0) {
        if (cfg->retry_base_ms > cfg->retry_max_ms)
            problem(&pr, "RETRY_BASE_MS: must not exceed RETRY_MAX_MS (%ld > %ld)",
                    cfg->retry_base_ms, cfg->retry_max_ms);
        if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL))
            problem(&pr, "%s: TLS_CERT_FILE and TLS_KEY_FILE must be set together",
                    cfg->tls_cert_file ? "TLS_KEY_FILE" : "TLS_CERT_FILE");
        if (cfg->tls_client_ca_file && !cfg->tls_cert_file)
            problem(&pr, "TLS_CLIENT_CA_FILE: needs TLS_CERT_FILE and TLS_KEY_FILE");
        check_webhook_auth(cfg, cmd, &pr);
        /* The same value twice would leave campaign_sync_webhook_previous_secret_total at 0
         * while Marketo still sends the old secret: the rotation would look finished. */
        if (cfg->marketo_webhook_secret_previous && cfg->marketo_webhook_secret &&
            strcmp(cfg->marketo_webhook_secret_previous, cfg->marketo_webhook_secret) == 0)
            problem(&pr, "MARKETO_WEBHOOK_SECRET_PREVIOUS: must differ from "
                         "MARKETO_WEBHOOK_SECRET (the old secret, while Marketo still sends it)");
        const struct {
            const char *name, *value;
        } lists[] = {{"SF_ALLOWED_CIDRS", cfg->sf_allowed_cidrs},
                     {"MARKETO_ALLOWED_CIDRS", cfg->marketo_allowed_cidrs},
                     {"TRUSTED_PROXIES", cfg->trusted_proxies}};
        for (size_t i = 0; i < 3; i++) {
            netacl acl;
            char why[160];
            if (lists[i].value && netacl_parse(lists[i].value, &acl, why, sizeof why) != 0)
                problem(&pr, "%s: must be a comma-separated list of CIDR ranges: %s", lists[i].name,
                        why);
        }
        placeholder_check(&pr, "LEAD_PLACEHOLDER_LAST_NAME", cfg->lead_placeholder_last_name, 80);
        placeholder_check(&pr, "LEAD_PLACEHOLDER_COMPANY", cfg->lead_placeholder_company, 255);
    }
    return pr.count;
}

void config_free(struct config *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *st = &settings[i];
        if (st->type != T_INT && st->type != T_LONG && st->type != T_BOOL &&
            st->type != T_ENUM_LEVEL && st->type != T_ENUM_FORMAT && st->type != T_SHARE) {
            char **p = (char **)((char *)cfg + st->offset);
            free(*p);
            *p = NULL;
        }
    }
    memset(&cfg->redis, 0, sizeof cfg->redis);
}

void config_log(const struct config *cfg) {
    const char *kv[2 * NSETTINGS];
    char nums[NSETTINGS][32];
    char redis_shown[sizeof cfg->redis.host + 48];
    static const char *const lvl[] = {"debug", "info", "warn", "error"};
    int n = 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *st = &settings[i];
        const char *base = (const char *)cfg;
        const char *val = NULL;
        switch (st->type) {
        case T_INT:
            snprintf(nums[i], sizeof nums[i], "%d", *(const int *)(base + st->offset));
            val = nums[i];
            break;
        case T_LONG:
            snprintf(nums[i], sizeof nums[i], "%ld", *(const long *)(base + st->offset));
            val = nums[i];
            break;
        case T_BOOL: val = *(const bool *)(base + st->offset) ? "true" : "false"; break;
        case T_SHARE:
            snprintf(nums[i], sizeof nums[i], "%g", *(const double *)(base + st->offset));
            val = nums[i];
            break;
        case T_ENUM_LEVEL: val = lvl[*(const int *)(base + st->offset) & 3]; break;
        case T_ENUM_FORMAT: val = *(const int *)(base + st->offset) ? "text" : "json"; break;
        case T_REDIS:
            /* host, port and db are useful; the password is not shown. */
            snprintf(redis_shown, sizeof redis_shown, "redis://%s%s:%d/%d",
                     cfg->redis.password[0] ? "[redacted]@" : "", cfg->redis.host, cfg->redis.port,
                     cfg->redis.db);
            val = redis_shown;
            break;
        case T_STR:
        case T_URL:
        case T_ORGID:
        case T_SFID:
        case T_APIVER:
        case T_TZ:
        case T_TOKEN:
        case T_PINS:
            val = *(char *const *)(base + st->offset);
            if (!val)
                val = "";
            else if (st->secret)
                val = "[redacted]";
        }
        kv[2 * n] = st->name;
        kv[2 * n + 1] = val;
        n++;
    }
    log_kvv(LOG_INFO, "effective configuration", kv, n);
}
