/* ml_marketo_bulk — a program's members listed through Marketo's bulk program member extract.
 *
 * Owns the walk of one export (marketo_bulk.h) as a member listing (member_lists.h): create
 * it, enqueue it, read its status with a backoff while it is queued or processing (from
 * MARKETO_BULK_POLL_MS, doubling, to five times that), then read its file
 * MARKETO_BULK_READ_BYTES at a time, handing the sink pages of members each with the cursor
 * "mb1:<exportId>:<offset of the next record>" (list_cursor.h). Memory holds one read and one
 * page, whatever the file's size.
 *   - Resuming from such a cursor reads the same export's file from that offset (a Range);
 *     no new export is made. An export that is gone by then (unknown, cancelled, failed, its
 *     file expired) is replaced by a new one read from its start: the members handed again
 *     are harmless, the sink keeps them by email.
 *   - While it waits (the queue, the processing, Marketo's daily export allocation), the
 *     sink is handed pages of no members with the cursor naming the export, so the job
 *     records the export before its file is read (a process that dies meanwhile leaves
 *     a cursor that resumes the same export) and a cancel or a stop is seen between polls.
 *     A stop of the process (crm_stopping) ends a wait at once.
 *     A cancelled job's export is left to run out in Marketo: from here it cannot be told
 *     from a job another process took over, which goes on with the same export.
 *   - Export queue full and daily export allocation spent (both 1029) are waited out, up to
 *     26 hours in all (one daily reset and more); then the listing fails, CRM_REFUSED, as it
 *     does after three exports that ended without a file (Marketo's errorMsg in the error):
 *     the job fails saying so rather than trying again from its cursor. */
#ifndef CS_ML_MARKETO_BULK_H
#define CS_ML_MARKETO_BULK_H

#include "member_lists.h"

/* Lists the program's members from `from` (LC_MARKETO_BULK: that export; anything else: a
 * new export, from its start). */
ml_result ml_marketo_bulk(crm *c, const char *program_id, const list_cursor *from, ml_mk_sink sink,
                          void *ud, ml_error *err);

#endif
