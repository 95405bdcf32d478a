/* commit — group commit of received events. See include/commit.h. */
#include "commit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct committer {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    commit_job *head, *tail; /* FIFO: groups keep the order requests arrived in */
    size_t waiting;          /* events queued or being stored */
    size_t max_waiting;
    bool stopping;
    store *st;
    pthread_t thread;
    bool started;
};

static void fail(commit_job *job, int rc, const char *why) {
    job->rc = rc;
    snprintf(job->err, sizeof job->err, "%s", why);
    job->done(job, job->ud);
}

static size_t job_size(const commit_job *j) {
    return j->n + j->ndead;
}

/* Stores the jobs of one group (size items in all) and finishes each. */
static void run_group(store *st, commit_job *group, size_t size) {
    const event **evs = malloc(sizeof *evs * size);
    const store_unusable **dead = malloc(sizeof *dead * size);
    bool *added = malloc(sizeof *added * size), *dead_added = malloc(sizeof *dead_added * size);
    char err[STORE_ERR_MAX] = "out of memory";
    int rc = -1;
    if (evs && dead && added && dead_added) {
        size_t n = 0, m = 0;
        for (commit_job *j = group; j; j = j->next) {
            for (size_t i = 0; i < j->n; i++)
                evs[n++] = &j->evs[i];
            for (size_t i = 0; i < j->ndead; i++)
                dead[m++] = &j->dead[i];
        }
        rc = store_enqueue_with_dead(st, evs, n, added, dead, m, dead_added, err, sizeof err);
    }
    size_t k = 0, d = 0;
    for (commit_job *j = group, *next; j; j = next) {
        next = j->next; /* done may end the job's life: nothing of j is read after it */
        size_t n = j->n, m = j->ndead;
        if (rc == 0) {
            if (n) memcpy(j->added, added + k, sizeof *added * n);
            if (m) memcpy(j->dead_added, dead_added + d, sizeof *dead_added * m);
            j->rc = 0;
            j->done(j, j->ud);
        } else {
            fail(j, -1, err);
        }
        k += n;
        d += m;
    }
    free(evs);
    free(dead);
    free(added);
    free(dead_added);
}

static void *committer_main(void *arg) {
    committer *c = arg;
    pthread_mutex_lock(&c->lock);
    store *st = c->st;
    for (;;) {
        while (!c->head && !c->stopping)
            pthread_cond_wait(&c->wake, &c->lock);
        if (!c->head) break; /* stopping, and nothing left */
        /* The group: jobs in order while they fit (a first job larger than the cap goes alone). */
        commit_job *group = c->head, *last = group;
        size_t n_ev = job_size(group);
        while (last->next && n_ev + job_size(last->next) <= COMMIT_MAX_EVENTS) {
            last = last->next;
            n_ev += job_size(last);
        }
        c->head = last->next;
        if (!c->head) c->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&c->lock);
        run_group(st, group, n_ev);
        pthread_mutex_lock(&c->lock);
        c->waiting -= n_ev;
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

committer *committer_start(const struct redis_target *target, size_t max_waiting, char *err,
                           size_t errlen) {
    committer *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->max_waiting = max_waiting;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot make the commit thread's lock");
        free(c);
        return NULL;
    }
    if (pthread_cond_init(&c->wake, NULL) != 0) {
        snprintf(err, errlen, "cannot make the commit thread's condition variable");
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    c->st = store_new(target);
    c->started = c->st && pthread_create(&c->thread, NULL, committer_main, c) == 0;
    if (!c->started) {
        snprintf(err, errlen, "%s", c->st ? "cannot start the commit thread" : "out of memory");
        committer_stop(c);
        return NULL;
    }
    return c;
}

void committer_submit(committer *c, commit_job *job) {
    job->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->stopping || c->waiting + job_size(job) > c->max_waiting) {
        char why[STORE_ERR_MAX] = "the service is shutting down";
        int rc = c->stopping ? -1 : COMMIT_BUSY;
        if (rc == COMMIT_BUSY)
            snprintf(why, sizeof why, "%zu events already wait for Redis", c->waiting);
        pthread_mutex_unlock(&c->lock);
        fail(job, rc, why);
        return;
    }
    c->waiting += job_size(job);
    if (c->tail)
        c->tail->next = job;
    else
        c->head = job;
    c->tail = job;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void committer_stop(committer *c) {
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    if (c->started) pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    store_free(c->st);
    free(c);
}
