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

/* Stores the jobs of one group (n_ev events in all) and finishes each. */
static void run_group(store *st, commit_job *group, size_t n_ev) {
    const event **evs = malloc(sizeof *evs * n_ev);
    bool *added = malloc(sizeof *added * n_ev);
    char err[STORE_ERR_MAX] = "out of memory";
    int rc = -1;
    if (evs && added) {
        size_t k = 0;
        for (commit_job *j = group; j; j = j->next)
            for (size_t i = 0; i < j->n; i++)
                evs[k++] = &j->evs[i];
        rc = store_enqueue_refs(st, evs, n_ev, added, err, sizeof err);
    }
    size_t k = 0;
    for (commit_job *j = group, *next; j; j = next) {
        next = j->next; /* done may end the job's life: nothing of j is read after it */
        size_t n = j->n;
        if (rc == 0) {
            memcpy(j->added, added + k, sizeof *added * n);
            j->rc = 0;
            j->done(j, j->ud);
        } else {
            fail(j, -1, err);
        }
        k += n;
    }
    free(evs);
    free(added);
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
        size_t n_ev = group->n;
        while (last->next && n_ev + last->next->n <= COMMIT_MAX_EVENTS) {
            last = last->next;
            n_ev += last->n;
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
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    c->st = store_open(target);
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
    if (c->stopping || c->waiting + job->n > c->max_waiting) {
        char why[STORE_ERR_MAX] = "the service is shutting down";
        int rc = c->stopping ? -1 : COMMIT_BUSY;
        if (rc == COMMIT_BUSY)
            snprintf(why, sizeof why, "%zu events already wait for Redis", c->waiting);
        pthread_mutex_unlock(&c->lock);
        fail(job, rc, why);
        return;
    }
    c->waiting += job->n;
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
