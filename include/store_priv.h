/* store_priv — what store.c shares with its store_* siblings (store_trace.c), and with no
 * other module: a round trip of many commands on a store handle, reconnecting as every
 * store call does, and the audit log's command. Includes hiredis; only store_* files may
 * include this header. */
#ifndef CS_STORE_PRIV_H
#define CS_STORE_PRIV_H

#include "store.h"

#include <hiredis.h>

/* Sends the commands cmds[0..n) (formatted with redisFormatCommand*, lengths lens; borrowed)
 * in one round trip and reads every reply into out[0..n) (the caller frees each). 0, or -1
 * with err (then out holds nothing). Every command must be safe to send twice: a pipeline
 * cut by a Redis restart is sent again whole on a fresh connection. */
int store_priv_pipeline(store *s, size_t n, char *const *cmds, const size_t *lens, redisReply **out,
                        char *err, size_t errlen);

/* Formats the XADD that appends one entry to the audit log (cs:audit, capped near
 * STORE_AUDIT_MAX) into *cmd (free with redisFreeCommand); its length, or -1. */
long long store_priv_audit_cmd(char **cmd, const char *entry);

#endif
