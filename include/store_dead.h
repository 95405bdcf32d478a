/* store_dead — dead letters in Redis: what the service gave up on, for a person to read,
 * replay or delete.
 *
 * Owns the dead letters:
 *   cs:dead:<id>              one dead letter (hash): `item` (its listed JSON), `event` (the
 *                             raw event JSON to replay), `q` (the queue it came from), or for
 *                             a received item that never was an event `unusable` (why)
 *                             instead of `event` and `q`
 *   cs:deadletters            their index (zset), scored by when each was made (ms)
 * The id is the entry id it had, made unique across the two queues (the next free sequence
 * number of its millisecond); an unusable item's is its receive time's first free one.
 * Moving an entry to the dead letters, replaying one, and storing unusable items with the
 * events of the same request are each one script (service/lua/). */
#ifndef CS_STORE_DEAD_H
#define CS_STORE_DEAD_H

#include "event.h"
#include "store.h"
#include "store_queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Moves an entry to the dead-letter list with the reason; returns 0 or -1. id (NULL: not
 * wanted) gets the dead letter's id: the entry's, or the next free one of its millisecond. */
int store_dead_letter(store *s, const store_entry *e, int attempts, const char *error, char *id,
                      size_t idlen, char *err, size_t errlen);

typedef enum {
    STORE_DEAD_LIST_ERROR = -1, /* err says why */
    STORE_DEAD_LIST_OK = 0,
    STORE_DEAD_LIST_NO_CURSOR = 1, /* the cursor names no dead letter (err says so) */
} store_dead_list_rc;
/* Dead letters, newest first: *json gets a malloc'd JSON array text of items {"id", "at",
 * "attempts", "error", "event"} (on STORE_DEAD_LIST_OK only; the caller frees it). cursor:
 * "" or a previous next (the id of the last item of that page); *next gets the cursor of the
 * following page ("" at the end). */
store_dead_list_rc store_dead_list(store *s, const char *cursor, long limit, char **json,
                                   char *next, size_t nextlen, char *err, size_t errlen);
/* Queues dead letter id's event again: STORE_FOUND when queued, STORE_NOT_FOUND when there
 * is no such dead letter or it holds no event (an unusable item). */
store_found store_dead_replay(store *s, const char *id, char *err, size_t errlen);
/* STORE_FOUND when deleted, STORE_NOT_FOUND when there was none. */
store_found store_dead_delete(store *s, const char *id, char *err, size_t errlen);

/* ---- received items that cannot become events ---- */

/* A received item that cannot become an event (a Salesforce notification without a
 * CampaignId, say): it goes straight to the dead letters. */
typedef struct {
    const event *ev;   /* what could be read; ev->source and ev->id make its de-duplication key */
    const char *error; /* why it cannot be used, for the person who reads the dead letter */
} store_unusable;

/* As store_enqueue_refs, and in the same script (one round trip, all or nothing) the m
 * unusable items as dead letters (0 attempts, the receive time as `at`), each unless its
 * de-duplication key exists; the key is then set as for an event, so a redelivery stores
 * nothing new. dead_added[i] says which were stored. Such a dead letter holds no event to
 * replay: store_dead_replay answers 0 for it, store_dead_unusable says why. */
int store_enqueue_with_dead(store *s, const event *const *evs, size_t n, bool *added,
                            const store_unusable *const *dead, size_t m, bool *dead_added,
                            char *err, size_t errlen);

/* STORE_FOUND when dead letter id is an unusable item stored by store_enqueue_with_dead (why
 * gets its reason), STORE_NOT_FOUND when it is not (or does not exist). */
store_found store_dead_unusable(store *s, const char *id, char *why, size_t whylen, char *err,
                                size_t errlen);

/* ---- many at a time ---- */

/* A place in the dead-letter index (cs:deadletters, scored by when each was made): at_ms and
 * id of the last dead letter looked at. */
typedef struct {
    int64_t at_ms; /* < 0: no place, start from the newest */
    char id[48];
} store_dead_pos;

/* One dead letter as store_dead_scan reads it. */
typedef struct {
    char id[48];
    int64_t at_ms;
    char *item; /* its JSON as store_dead_list lists it (without the id fixed up); NULL when
                   it was replayed or deleted while being read */
    size_t len;
    bool unusable; /* a received item that never was an event (store_enqueue_with_dead) */
} store_dead_entry;

/* Up to max dead letters made between from_ms and to_ms (inclusive), newest first, after
 * the place `after` (NULL: from the newest). *out is malloc'd (store_dead_entries_free);
 * returns how many, or -1 with err. Reads only. */
long store_dead_scan(store *s, int64_t from_ms, int64_t to_ms, const store_dead_pos *after,
                     size_t max, store_dead_entry **out, char *err, size_t errlen);
void store_dead_entries_free(store_dead_entry *e, size_t n);

/* store_dead_replay for each of n ids, in one round trip, the same script for each: rc[i] is
 * what store_dead_replay answers (STORE_FOUND: queued again; STORE_NOT_FOUND: nothing to
 * queue). 0, or -1 with err when Redis failed (the ids before the failure may be queued). */
int store_dead_replay_many(store *s, const char *const *ids, size_t n, store_found *rc, char *err,
                           size_t errlen);

#endif
