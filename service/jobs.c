/* jobs — creating jobs, and the job thread of a worker process. See include/jobs.h; one job's
 * walk is job_run.c. */
#include "jobs_priv.h"

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "store_jobs.h"
#include "store_mappings.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS        200
#define QUEUED_LOOK    20 /* queued jobs looked at per tick */
#define APPLYING_EVERY 500

/* The random part of a job id, from the kernel (no generator state to keep); should the call
 * fail, the clock's nanoseconds and the process id, which the millisecond in the id already
 * nearly separates. */
static uint32_t id_random(void) {
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 12);
}

int jobs_create(store *st, const struct config *cfg, const mapping *m, job_kind kind,
                job_trigger trigger, char *id, bool *created, char *err, size_t errlen) {
    store_job j = {.kind = kind, .trigger = trigger, .created_ms = event_now_ms()};
    job_id_make(j.created_ms, id_random(), j.id, sizeof j.id);
    snprintf(j.program_id, sizeof j.program_id, "%s", m->program_id);
    snprintf(j.campaign_id, sizeof j.campaign_id, "%s", m->campaign_id);
    /* Index entries outlive their jobs by a day at most (a job ends within a day of its
     * creation, and is kept JOB_RETENTION_S after). */
    long long keep_ms = (cfg->job_retention_s + 86400LL) * 1000;
    switch (store_job_create(st, &j, keep_ms, id, err, errlen)) {
    case STORE_JOB_CREATED:
        *created = true;
        snprintf(id, JOB_ID_MAX, "%s", j.id);
        LOG_KV(LOG_INFO, "jobs: job queued", "job_id", j.id, "kind", job_kind_name(kind), "trigger",
               job_trigger_name(trigger), "program_id", m->program_id);
        return 0;
    case STORE_JOB_EXISTS: *created = false; return 0;
    case STORE_JOB_ERROR: return -1;
    }
    return -1;
}

struct jobs_runner {
    const struct config *cfg;
    pthread_t thread, heartbeat;
    bool heartbeat_running;
    atomic_bool stop, lost;
    store *st, *hb_store;
    crm *c;
    char owner[STORE_JOB_OWNER_MAX];
    pthread_mutex_t lock; /* the job whose lock the heartbeat renews */
    char program[EV_NUMID_MAX];
};

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Renews the lock of the job in progress three times per CLAIM_IDLE_MS; when it cannot (the
 * process was too slow and another took the job over), tells the run to leave the job. */
static void *heartbeat_main(void *arg) {
    jobs_runner *r = arg;
    long every = r->cfg->claim_idle_ms / 3 > 50 ? r->cfg->claim_idle_ms / 3 : 50;
    while (!atomic_load(&r->stop)) {
        for (long slept = 0; slept < every && !atomic_load(&r->stop); slept += 50)
            sleep_ms(50);
        char program[EV_NUMID_MAX], err[STORE_ERR_MAX];
        pthread_mutex_lock(&r->lock);
        snprintf(program, sizeof program, "%s", r->program);
        pthread_mutex_unlock(&r->lock);
        if (!program[0]) continue;
        bool held = false;
        if (store_job_renew(r->hb_store, program, r->owner, r->cfg->claim_idle_ms, &held, err,
                            sizeof err) != 0) {
            LOG_KV_LIMITED(LOG_WARN, "jobs: heartbeat could not renew a job's lock", "error", err);
            continue; /* Redis away: the job's pages cannot be recorded either */
        }
        if (!held) atomic_store(&r->lost, true);
    }
    return NULL;
}

static void heartbeat_watch(jobs_runner *r, const char *program) {
    pthread_mutex_lock(&r->lock);
    snprintf(r->program, sizeof r->program, "%s", program);
    pthread_mutex_unlock(&r->lock);
}

/* Ends the jobs whose corrections all have an outcome (any process may: no process works on
 * an applying job). */
static void end_applied(jobs_runner *r) {
    char **ids = NULL, err[STORE_ERR_MAX];
    long n = store_jobs_applying(r->st, &ids, err, sizeof err);
    for (long i = 0; i < n; i++) {
        store_job j;
        if (store_job_get(r->st, ids[i], &j, err, sizeof err) == STORE_FOUND &&
            j.state == JOB_RUNNING && j.phase == JOB_APPLYING &&
            job_outcomes_complete(j.queued, j.applied, j.skipped, j.dead_lettered) &&
            store_job_finish(r->st, j.id, j.program_id, "", JOB_DONE, "", event_now_ms(),
                             r->cfg->job_retention_s, "running,applying", err,
                             sizeof err) == STORE_JOB_CHANGED) {
            metrics_observe(M_JOB_SECONDS, (double)(event_now_ms() - j.started_ms) / 1000.0,
                            job_kind_name(j.kind));
            LOG_KV(LOG_INFO, "jobs: job done", "job_id", j.id, "program_id", j.program_id);
        }
        free(ids[i]);
    }
    free(ids);
}

/* Tries to take one of ids[0..n) for this process; fills *j with the job taken. */
static bool take_one(jobs_runner *r, char **ids, long n, store_job *j) {
    char err[STORE_ERR_MAX];
    for (long i = 0; i < n; i++) {
        store_job cand;
        if (store_job_get(r->st, ids[i], &cand, err, sizeof err) != STORE_FOUND) continue;
        store_claim_rc rc = store_job_claim(r->st, cand.id, cand.program_id, r->owner,
                                            r->cfg->claim_idle_ms, event_now_ms(), err, sizeof err);
        if (rc != STORE_CLAIM_TAKEN && rc != STORE_CLAIM_TAKEOVER) continue;
        if (store_job_get(r->st, cand.id, j, err, sizeof err) != STORE_FOUND) continue;
        LOG_KV(LOG_INFO,
               rc == STORE_CLAIM_TAKEN ? "jobs: job started"
                                       : "jobs: job taken over from a stopped process; it goes "
                                         "on from its cursor",
               "job_id", j->id, "program_id", j->program_id, "phase", job_phase_name(j->phase));
        return true;
    }
    return false;
}

/* The next job for this process: a queued one (oldest first), else a running one whose
 * process stopped. */
static bool take_job(jobs_runner *r, store_job *j) {
    char **ids = NULL, err[STORE_ERR_MAX];
    bool got = false;
    for (int pass = 0; pass < 2 && !got; pass++) {
        long n = pass == 0 ? store_jobs_queued(r->st, QUEUED_LOOK, &ids, err, sizeof err)
                           : store_jobs_running(r->st, &ids, err, sizeof err);
        if (n > 0) got = take_one(r, ids, n, j);
        for (long i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        ids = NULL;
    }
    return got;
}

static void run_job(jobs_runner *r, const store_job *j) {
    job_ctx jc = {r->cfg, r->st, r->c, r->owner, &r->stop, &r->lost, *j};
    atomic_store(&r->lost, false);
    heartbeat_watch(r, j->program_id);
    if (j->cancel) /* asked while no process worked on it */
        job_end(&jc, JOB_CANCELLED, "");
    else
        job_run(&jc);
    heartbeat_watch(r, "");
}

static void *runner_main(void *arg) {
    jobs_runner *r = arg;
    int64_t last_applying = 0;
    store_job *j = malloc(sizeof *j);
    while (j && !atomic_load(&r->stop)) {
        char err[STORE_ERR_MAX];
        bool enabled = true;
        if (store_sync_get(r->st, &enabled, err, sizeof err) != 0 || !enabled) {
            sleep_ms(TICK_MS); /* F10: nothing reaches a CRM while sync is off */
            continue;
        }
        int64_t now = event_now_ms();
        if (now - last_applying >= APPLYING_EVERY) {
            last_applying = now;
            end_applied(r);
        }
        if (take_job(r, j))
            run_job(r, j);
        else
            sleep_ms(TICK_MS);
    }
    free(j);
    return NULL;
}

jobs_runner *jobs_runner_start(const struct config *cfg, char *err, size_t errlen) {
    jobs_runner *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cfg = cfg;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot make the job runner's lock");
        free(r);
        return NULL;
    }
    char host[64] = "host";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "host");
    snprintf(r->owner, sizeof r->owner, "%s-%d-jobs", host, (int)getpid());
    r->st = store_new(&cfg->redis);
    r->hb_store = store_new(&cfg->redis);
    r->c = r->st ? crm_new(cfg, r->st, r->owner, NULL) : NULL;
    if (r->c) {
        /* A job's Marketo calls are within the jobs' share of the budget, waiting for it as
         * long as it takes (or until the process stops). */
        crm_set_budget_wait(r->c, 0, &r->stop);
        crm_set_budget_share(r->c, cfg->backfill_marketo_share);
    }
    if (!r->c || !r->hb_store || pthread_create(&r->thread, NULL, runner_main, r) != 0) {
        snprintf(err, errlen, "cannot start the job thread");
        crm_free(r->c);
        store_free(r->st);
        store_free(r->hb_store);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    if (pthread_create(&r->heartbeat, NULL, heartbeat_main, r) != 0) {
        snprintf(err, errlen, "cannot start the job thread's heartbeat");
        jobs_runner_stop(r);
        return NULL;
    }
    r->heartbeat_running = true;
    return r;
}

void jobs_runner_stop(jobs_runner *r) {
    if (!r) return;
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    if (r->heartbeat_running) pthread_join(r->heartbeat, NULL);
    crm_free(r->c);
    store_free(r->st);
    store_free(r->hb_store);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
