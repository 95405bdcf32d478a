/* config — the environment (and `NAME_FILE` secrets) turned into one validated, immutable
 * `struct config`.
 *
 * Owns the table of every setting of SPEC section 4 (name, type, default, limits, whether it
 * is a secret and which commands require it). config_load reads the table once at start-up,
 * reports each missing or malformed variable on its own line naming it, and the effective
 * configuration can be logged with secrets redacted. REDIS_URL is parsed here too, so that a
 * malformed URL stops start-up like any other bad variable. */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { CMD_SERVE = 0, CMD_INGEST, CMD_WORKER, CMD_CHECK, CMD_COUNT } cs_command;

/* Parsed `redis://[:password@]host:port[/db]` (also `redis://[user:password@]...`). */
struct redis_target {
    char host[256];
    int port;
    int db;
    char user[128];
    char password[256];
};

struct config {
    int port;
    char *bind_addr;
    char *redis_url;
    struct redis_target redis;
    int workers;
    char *sf_login_url, *sf_client_id, *sf_client_secret, *sf_api_version, *sf_org_id;
    char *sf_integration_user_id;
    char *marketo_base_url, *marketo_client_id, *marketo_client_secret;
    char *marketo_webhook_secret, *marketo_timezone;
    int marketo_calls_per_20s, marketo_max_concurrent;
    char *admin_token;
    bool sync_enabled;
    long max_body_bytes;
    int max_attempts;
    long retry_base_ms, retry_max_ms, claim_idle_ms;
    int ready_stall_s, program_poll_interval_s, sf_deleted_poll_interval_s, reconcile_interval_s;
    char *tls_cert_file, *tls_key_file, *tls_client_ca_file;
    char *sf_allowed_cidrs, *marketo_allowed_cidrs, *trusted_proxies;
    char *spool_dir;
    int log_level, log_format;
    int http_threads, http_connection_limit, http_per_ip_limit, http_timeout_s;
    int ingest_max_waiting; /* events that may wait for Redis at once (commit.c) */
    long crm_timeout_ms;
    /* Who may call the webhooks and how much they may send (issue 17). */
    char *sf_webhook_token;     /* POST /webhooks/salesforce/{token} */
    char *sf_webhook_auth;      /* "none": no Salesforce authentication, risk accepted */
    char *tls_client_cert_pins; /* SHA-256 fingerprints of the accepted client certificates */
    long sf_max_body_bytes;
    int http_request_timeout_s; /* a request must arrive whole within this */
    long spool_max_bytes;       /* the spool journal's size cap */
    int management_port;        /* 0: /metrics and /readyz on PORT */
    char *management_bind_addr;
    /* Issue 21: the webhook secret being rotated out, accepted beside the current one. */
    char *marketo_webhook_secret_previous;
    /* People (issue 21): the trace kept per person, creation of missing people, and the
     * values of the Lead fields Salesforce requires when Marketo has none. */
    int trace_retention_days, trace_max_per_person;
    bool create_missing_people;
    char *lead_placeholder_last_name, *lead_placeholder_company;
    /* Issue 19: a backfill job when a mapping is created or enabled; the share of Marketo's
     * call budget jobs' calls may take; how long finished jobs and their details are kept;
     * the most difference details a job keeps. */
    bool backfill_on_link;
    double backfill_marketo_share;
    long job_retention_s, job_details_max;
    /* Issue 19: when a program is listed through Marketo's bulk program member extract, how
     * often its export's status is read, how many bytes of its file one call reads. */
    long marketo_bulk_above_members, marketo_bulk_poll_ms, marketo_bulk_read_bytes;
    /* Issue 19: campaigns over sf_bulk_above_members are listed by a Bulk API 2.0 query job,
     * sf_bulk_page_records rows a results page. */
    long sf_bulk_above_members, sf_bulk_page_records;
};

/* Shortest ADMIN_TOKEN, MARKETO_WEBHOOK_SECRET(_PREVIOUS) and SF_WEBHOOK_TOKEN accepted. */
#define CONFIG_SECRET_MIN 32

/* Called once per problem with a line such as
 * "PORT: must be an integer from 1 to 65535 (got \"abc\")". */
typedef void (*config_error_fn)(const char *line, void *ud);

/* Fills cfg from the environment for the given command. Returns the number of problems
 * (0 = usable); each is passed to on_error (NULL: logged at error level). cfg must be
 * released with config_free whatever the result. */
int config_load(struct config *cfg, cs_command cmd, config_error_fn on_error, void *ud);

void config_free(struct config *cfg);

/* Logs the effective configuration on one line, secrets shown as "[redacted]". */
void config_log(const struct config *cfg);

/* Parses a REDIS_URL; 0 on success, -1 with a reason in err. */
int config_parse_redis_url(const char *url, struct redis_target *out, char *err, size_t errlen);

/* Reads a whole file of at most max bytes, NUL-terminated, trailing newlines kept; NULL with
 * the reason in why. Caller frees. (Secrets' NAME_FILE, TLS PEM files.) */
char *config_read_file(const char *path, size_t max, char *why, size_t whylen);

/* Name of a command as typed on the command line ("serve", ...). */
const char *config_command_name(cs_command cmd);

#endif
