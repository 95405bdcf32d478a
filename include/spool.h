/* spool — the local journal that keeps Marketo events while Redis cannot take them.
 *
 * Owns the files in SPOOL_DIR: `marketo.journal` (one event JSON per line, each append
 * fsync'ed before the sender is answered), `marketo.offset` (how far the journal has been
 * moved into Redis) and `.lock` (one process per directory). A mover thread drains the
 * journal into Redis in order once Redis answers; a crash while moving may move an event
 * twice, which the de-duplication key turns into a no-op, so nothing is lost or doubled.
 * While the journal holds events, new Marketo events are appended behind them, keeping
 * their order. The directory must belong to the service's user with no access for others
 * (mode 0700; it is created so); its files are opened without following symbolic links and
 * must be regular files of its own, or the service does not start. The journal holds at
 * most SPOOL_MAX_BYTES: an append past it is refused (Marketo is answered 503, so nothing
 * is acknowledged that was not stored). */
#ifndef CS_SPOOL_H
#define CS_SPOOL_H

#include "config.h"
#include "event.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct spool spool;

/* Opens (creating) the directory's journal, at most max_bytes long, and takes its lock.
 * NULL with err on failure: a sentence naming SPOOL_DIR and, for a directory others may
 * reach or a file that is a link, device or someone else's, the command that fixes it. */
spool *spool_new(const char *dir, long max_bytes, char *err, size_t errlen);
/* Stops the mover (if started), closes the files and frees sp (accepts NULL). */
void spool_free(spool *sp);

/* Appends n events and fsyncs them; 0 or -1 with err (nothing acknowledged then), also
 * when they would take the journal past its max_bytes. */
int spool_append(spool *sp, const event *evs, size_t n, char *err, size_t errlen);

/* Events in the journal not yet moved into Redis. */
size_t spool_pending(spool *sp);

/* Moves up to max journaled events into Redis through st, oldest first. Returns the
 * number moved (0 when empty), or -1 with err when Redis refused (nothing advanced).
 * *added and *dups receive how many were new and how many Redis already had. */
long spool_drain(spool *sp, store *st, size_t max, size_t *added, size_t *dups, char *err,
                 size_t errlen);

/* Starts the background mover, which drains into target whenever the journal is not empty
 * and counts moved events in campaign_sync_events_received_total. */
int spool_start_mover(spool *sp, const struct redis_target *target);

#endif
