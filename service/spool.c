/* spool — fsync'ed journal of Marketo events for Redis outages. See include/spool.h. */
#include "spool.h"

#include "log.h"
#include "metrics.h"
#include "store_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK     (1024 * 1024)
#define MOVE_BATCH     500
#define MOVER_IDLE_MS  200
#define MOVER_RETRY_MS 250

struct spool {
    char dir[1024];
    int lock_fd, journal_fd, offset_fd;
    off_t size;            /* the journal's size (under lock) */
    off_t max_size;        /* SPOOL_MAX_BYTES: appends past it are refused */
    pthread_mutex_t lock;  /* appends, offset and truncation */
    pthread_cond_t wake;   /* an append happened, or stop */
    off_t offset;          /* bytes of the journal already in Redis */
    atomic_size_t pending; /* events after offset */
    bool mover_running;
    atomic_bool stop;
    pthread_t mover;
    store *mover_store;
};

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int save_offset(spool *sp, off_t off) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%020lld\n", (long long)off);
    if (pwrite(sp->offset_fd, buf, (size_t)n, 0) != n) return -1;
    return fdatasync(sp->offset_fd);
}

/* Counts complete lines after the offset and cuts a torn last line: a crash during an
 * append, whose sender was never answered. */
static int recover(spool *sp, char *err, size_t errlen) {
    char buf[32] = "";
    ssize_t n = pread(sp->offset_fd, buf, sizeof buf - 1, 0);
    sp->offset = n > 0 ? (off_t)strtoll(buf, NULL, 10) : 0;
    struct stat st;
    if (fstat(sp->journal_fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat the journal: %s", strerror(errno));
        return -1;
    }
    if (sp->offset < 0 || sp->offset > st.st_size) sp->offset = 0;
    char *chunk = malloc(READ_CHUNK);
    if (!chunk) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t lines = 0;
    off_t pos = sp->offset, last_nl = sp->offset;
    while (pos < st.st_size) {
        ssize_t r = pread(sp->journal_fd, chunk, READ_CHUNK, pos);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++)
            if (chunk[i] == '\n') {
                lines++;
                last_nl = pos + i + 1;
            }
        pos += r;
    }
    free(chunk);
    sp->size = st.st_size;
    if (last_nl < st.st_size) {
        LOGF(LOG_WARN, "spool: dropping %lld bytes of an unfinished append (never answered)",
             (long long)(st.st_size - last_nl));
        if (ftruncate(sp->journal_fd, last_nl) != 0) {
            snprintf(err, errlen, "cannot truncate the journal: %s", strerror(errno));
            return -1;
        }
        sp->size = last_nl;
    }
    atomic_store(&sp->pending, lines);
    if (lines) LOGF(LOG_INFO, "spool: %zu Marketo events wait in the journal for Redis", lines);
    return 0;
}

/* SPOOL_DIR holds events until Redis has them: only this service's user may reach it, so
 * nobody else can read them, plant a link or fill the disk under our name. */
static int check_dir(int dfd, const char *dir, char *err, size_t errlen) {
    struct stat st;
    if (fstat(dfd, &st) != 0) {
        snprintf(err, errlen, "SPOOL_DIR: cannot stat %s: %s", dir, strerror(errno));
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "SPOOL_DIR: %s is owned by uid %u, not by uid %u that campaign-sync runs as; "
                 "fix: chown %u %s && chmod 700 %s",
                 dir, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), dir, dir);
        return -1;
    }
    if (st.st_mode & 0077) {
        snprintf(err, errlen,
                 "SPOOL_DIR: %s has mode %04o; only its owner may use it; fix: chmod 700 %s", dir,
                 (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    return 0;
}

/* Opens (creating) a file of the directory: never through a symbolic link, and only a
 * regular file of its own (not a device, a FIFO, or a hard link to a file elsewhere). */
static int open_file(int dfd, const char *dir, const char *name, int flags, char *err,
                     size_t errlen) {
    int fd = openat(dfd, name, flags | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    struct stat st;
    if (fd < 0) {
        snprintf(err, errlen, "SPOOL_DIR: cannot open %s/%s: %s%s", dir, name, strerror(errno),
                 errno == ELOOP ? " (it is a symbolic link; remove it)" : "");
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "SPOOL_DIR: %s/%s is not a regular file of this service's own (a device, a "
                 "FIFO, another user's file or a hard link); move it away",
                 dir, name);
        close(fd);
        return -1;
    }
    /* Blocking again: O_NONBLOCK only kept a FIFO from holding the open. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

spool *spool_new(const char *dir, long max_bytes, char *err, size_t errlen) {
    spool *sp = calloc(1, sizeof *sp);
    if (!sp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sp->lock_fd = sp->journal_fd = sp->offset_fd = -1;
    sp->max_size = (off_t)max_bytes;
    snprintf(sp->dir, sizeof sp->dir, "%s", dir);
    if (pthread_mutex_init(&sp->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot make the spool's lock");
        free(sp);
        return NULL;
    }
    if (pthread_cond_init(&sp->wake, NULL) != 0) {
        snprintf(err, errlen, "cannot make the spool's condition variable");
        pthread_mutex_destroy(&sp->lock);
        free(sp);
        return NULL;
    }
    int dfd = -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "SPOOL_DIR: cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "SPOOL_DIR: cannot open the directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (check_dir(dfd, dir, err, errlen) != 0) goto fail;
    sp->lock_fd = open_file(dfd, dir, ".lock", O_RDWR, err, errlen);
    if (sp->lock_fd < 0) goto fail;
    if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen,
                 "SPOOL_DIR: %s is in use by another campaign-sync process; give each "
                 "ingest process its own SPOOL_DIR",
                 dir);
        goto fail;
    }
    sp->journal_fd = open_file(dfd, dir, "marketo.journal", O_RDWR | O_APPEND, err, errlen);
    if (sp->journal_fd < 0) goto fail;
    sp->offset_fd = open_file(dfd, dir, "marketo.offset", O_RDWR, err, errlen);
    if (sp->offset_fd < 0) goto fail;
    close(dfd);
    dfd = -1;
    if (recover(sp, err, errlen) != 0) goto fail;
    return sp;
fail:
    if (dfd >= 0) close(dfd);
    spool_free(sp);
    return NULL;
}

void spool_free(spool *sp) {
    if (!sp) return;
    if (sp->mover_running) {
        pthread_mutex_lock(&sp->lock);
        atomic_store(&sp->stop, true);
        pthread_cond_signal(&sp->wake);
        pthread_mutex_unlock(&sp->lock);
        pthread_join(sp->mover, NULL);
    }
    store_free(sp->mover_store);
    if (sp->journal_fd >= 0) close(sp->journal_fd);
    if (sp->offset_fd >= 0) close(sp->offset_fd);
    if (sp->lock_fd >= 0) close(sp->lock_fd); /* releases the flock */
    pthread_cond_destroy(&sp->wake);
    pthread_mutex_destroy(&sp->lock);
    free(sp);
}

int spool_append(spool *sp, const event *evs, size_t n, char *err, size_t errlen) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = -1;
    if (!buf) goto oom;
    for (size_t i = 0; i < n; i++) {
        char *j = event_to_json(&evs[i]);
        if (!j) goto oom;
        size_t jl = strlen(j);
        if (len + jl + 1 > cap) {
            while (len + jl + 1 > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(j);
                goto oom;
            }
            buf = nb;
        }
        memcpy(buf + len, j, jl);
        buf[len + jl] = '\n';
        len += jl + 1;
        free(j);
    }
    pthread_mutex_lock(&sp->lock);
    if (sp->size + (off_t)len > sp->max_size) {
        snprintf(err, errlen,
                 "the spool journal in %s is full (%lld bytes; SPOOL_MAX_BYTES=%lld): it waits "
                 "for Redis to take what it holds",
                 sp->dir, (long long)sp->size, (long long)sp->max_size);
    } else if (write_all(sp->journal_fd, buf, len) != 0 || fdatasync(sp->journal_fd) != 0) {
        snprintf(err, errlen, "cannot write the spool journal in %s: %s", sp->dir, strerror(errno));
        /* A partial line may be in the file: keep counting it against the cap. */
        struct stat st;
        if (fstat(sp->journal_fd, &st) == 0) sp->size = st.st_size;
    } else {
        sp->size += (off_t)len;
        atomic_fetch_add(&sp->pending, n);
        pthread_cond_signal(&sp->wake);
        rc = 0;
    }
    pthread_mutex_unlock(&sp->lock);
    free(buf);
    return rc;
oom:
    free(buf);
    snprintf(err, errlen, "out of memory");
    return -1;
}

size_t spool_pending(spool *sp) {
    return sp ? atomic_load(&sp->pending) : 0;
}

long spool_drain(spool *sp, store *st, size_t max, size_t *added_out, size_t *dups_out, char *err,
                 size_t errlen) {
    *added_out = *dups_out = 0;
    if (atomic_load(&sp->pending) == 0) return 0;
    pthread_mutex_lock(&sp->lock);
    off_t start = sp->offset;
    pthread_mutex_unlock(&sp->lock);

    char *chunk = malloc(READ_CHUNK + 1);
    event *evs = calloc(max, sizeof *evs);
    bool *added = calloc(max, sizeof *added);
    long moved = -1;
    if (!chunk || !evs || !added) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* Appends only add after start, so reading without the lock sees complete lines. */
    ssize_t r = pread(sp->journal_fd, chunk, READ_CHUNK, start);
    if (r < 0) {
        snprintf(err, errlen, "cannot read the spool journal: %s", strerror(errno));
        goto out;
    }
    size_t nev = 0, lines = 0, used = 0;
    for (size_t pos = 0; pos < (size_t)r && nev < max;) {
        char *nl = memchr(chunk + pos, '\n', (size_t)r - pos);
        if (!nl) break;
        size_t ll = (size_t)(nl - (chunk + pos));
        char why[128];
        if (event_from_json(chunk + pos, ll, &evs[nev], why, sizeof why) == 0)
            nev++;
        else
            LOGF(LOG_ERROR, "spool: skipping an unreadable journal line at byte %lld: %s",
                 (long long)(start + (off_t)pos), why);
        lines++;
        pos += ll + 1;
        used = pos;
    }
    if (nev && store_enqueue(st, evs, nev, added, err, errlen) != 0) goto out;
    for (size_t i = 0; i < nev; i++)
        (added[i] ? (*added_out)++ : (*dups_out)++);

    pthread_mutex_lock(&sp->lock);
    sp->offset = start + (off_t)used;
    atomic_fetch_sub(&sp->pending, lines);
    struct stat stt;
    bool all_moved = fstat(sp->journal_fd, &stt) == 0 && sp->offset >= stt.st_size;
    if (all_moved) {
        /* Journal first: a crash between the two leaves an offset past the end, read as 0. */
        if (ftruncate(sp->journal_fd, 0) == 0) sp->offset = sp->size = 0;
    }
    if (save_offset(sp, sp->offset) != 0)
        LOGF(LOG_WARN,
             "spool: cannot save the journal offset: %s (events may be moved twice; "
             "de-duplication absorbs it)",
             strerror(errno));
    pthread_mutex_unlock(&sp->lock);
    moved = (long)lines;
out:
    free(chunk);
    free(evs);
    free(added);
    return moved;
}

static void *mover_main(void *arg) {
    spool *sp = arg;
    bool failing = false;
    while (!atomic_load(&sp->stop)) {
        if (atomic_load(&sp->pending) == 0) {
            pthread_mutex_lock(&sp->lock);
            if (atomic_load(&sp->pending) == 0 && !atomic_load(&sp->stop)) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += MOVER_IDLE_MS * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&sp->wake, &sp->lock, &until);
            }
            pthread_mutex_unlock(&sp->lock);
            continue;
        }
        size_t added, dups;
        char err[STORE_ERR_MAX];
        long moved = spool_drain(sp, sp->mover_store, MOVE_BATCH, &added, &dups, err, sizeof err);
        if (moved < 0) {
            if (!failing) LOG_KV(LOG_WARN, "spool: Redis still unavailable", "error", err);
            failing = true;
            struct timespec pause = {0, MOVER_RETRY_MS * 1000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        if (failing) LOG_KV(LOG_INFO, "spool: Redis is back; moving journaled events");
        failing = false;
        metrics_add(M_EVENTS_RECEIVED, (double)added, "marketo", "accepted");
        metrics_add(M_EVENTS_RECEIVED, (double)dups, "marketo", "duplicate");
        if (moved)
            LOGF(LOG_INFO,
                 "spool: moved %ld journaled events into Redis (%zu new, %zu already "
                 "there), %zu left",
                 moved, added, dups, spool_pending(sp));
    }
    return NULL;
}

int spool_start_mover(spool *sp, const struct redis_target *target) {
    sp->mover_store = store_new(target);
    if (!sp->mover_store) return -1;
    if (pthread_create(&sp->mover, NULL, mover_main, sp) != 0) return -1;
    sp->mover_running = true;
    return 0;
}
