/* store_priv — what store.c shares with its store_* siblings, and with no other module: one
 * command or one script on a store handle, a round trip of many (a pipeline), reconnecting
 * as every store call does, and the small helpers their key names share. Includes hiredis and
 * the generated table of the Redis scripts (build/gen/store_lua.h, from service/lua/ by
 * service/lua/embed.sh); only store_* files may include this header.
 *
 * Replies (redisReply) belong to whoever received them: free with freeReplyObject. A NULL
 * reply means the connection failed (err says why); error replies (REDIS_REPLY_ERROR) are
 * returned for the caller to judge unless a function says otherwise. */
#ifndef CS_STORE_PRIV_H
#define CS_STORE_PRIV_H

#include "event.h"
#include "store.h"
#include "store_lua.h"

#include <hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- one command ---- */

/* A formatted command (hiredis's format: %s, %b and integer/double conversions, but no
 * precision on %s: "%.15s" fails as a bad format). */
redisReply *store_priv_cmd(store *s, char *err, size_t errlen, const char *fmt, ...);
/* A command given as argc strings argv with lengths lens (borrowed). */
redisReply *store_priv_argv(store *s, int argc, const char **argv, const size_t *lens, char *err,
                            size_t errlen);
/* 0 when r is a reply other than an error; -1 when r is NULL, or an error reply, which is
 * then freed with Redis's sentence in err. */
int store_priv_reply_error(redisReply *r, char *err, size_t errlen);
/* GET-like command fmt (with one %s for arg) into out: STORE_FOUND when a string that fits came
 * back, STORE_NOT_FOUND when none (out ""). */
store_found store_priv_get_string(store *s, char *out, size_t size, char *err, size_t errlen,
                                  const char *fmt, const char *arg);

/* The strings of array reply r as a malloc'd array of malloc'd copies in *out (NULL when
 * there are none; the caller frees each and the array): their count, or -1 with err when out
 * of memory (then *out is NULL). */
long store_priv_strings(const redisReply *r, char ***out, char *err, size_t errlen);

/* ---- scripts (service/lua/) ---- */

/* Runs script id with nkeys KEYS and then ARGV: argc strings argv, lengths lens (borrowed).
 * EVALSHA, and EVAL when Redis lost its script cache (a restart, SCRIPT FLUSH). Error replies
 * are returned. */
redisReply *store_priv_eval(store *s, store_lua_id id, int nkeys, int argc, const char **argv,
                            const size_t *lens, char *err, size_t errlen);
/* As store_priv_eval with n NUL-terminated strings; an error reply becomes NULL with Redis's
 * sentence in err. */
redisReply *store_priv_eval_strs(store *s, store_lua_id id, int nkeys, const char *const *args,
                                 int n, char *err, size_t errlen);

/* ---- argument lists ---- */

/* The arguments of one command or script, built one at a time; each borrowed or owned (freed
 * by store_priv_args_free). Start from {0}. Out of memory is remembered in oom (check it
 * before use: v then lacks arguments). */
typedef struct {
    const char **v;
    char **owned; /* parallel to v: the string to free, or NULL */
    size_t n, cap;
    bool oom;
} store_priv_args;

void store_priv_args_add(store_priv_args *a, const char *arg); /* borrowed */
void store_priv_args_take(store_priv_args *a, char *arg);      /* owned; NULL: out of memory */
void store_priv_args_addf(store_priv_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))); /* printf-formatted, owned */
void store_priv_args_free(store_priv_args *a);

/* ---- pipelines: many commands, one round trip ----
 * Commands are kept formatted, so that a pipeline cut by a Redis restart is sent again whole
 * on a fresh connection: every command put in one must be safe to send twice (a read or an
 * idempotent write). Start from {0}; free with store_priv_pipe_free. Out of memory while
 * adding is remembered and reported by the run. */
typedef struct {
    char **cmd;
    size_t *len;
    int *lua; /* the script of each command (a store_lua_id), or -1 */
    size_t n, cap;
    bool oom;
} store_priv_pipe;

void store_priv_pipe_addf(store_priv_pipe *p, const char *fmt, ...);
void store_priv_pipe_add_argv(store_priv_pipe *p, int argc, const char **argv, const size_t *lens);
/* EVALSHA of script id with nkeys KEYS, of n NUL-terminated strings args. */
void store_priv_pipe_add_eval(store_priv_pipe *p, store_lua_id id, int nkeys,
                              const char *const *args, int n);
/* Sends every command and reads every reply into out[0..p->n) (the caller frees each): 0, or
 * -1 with err (then out holds nothing). A connection Redis closed gets one more try on a
 * fresh one. Scripts Redis had lost (NOSCRIPT: they did not run) are loaded and their
 * commands sent once more, after the others. */
int store_priv_pipe_run(store *s, store_priv_pipe *p, redisReply **out, char *err, size_t errlen);
/* Runs the pipeline and hands each reply to each(i, reply, ud), which must not keep it and
 * returns 0 (or -1 to fail the whole, with err set). Stops at the first error reply (-1, with
 * Redis's sentence in err) unless each judges errors itself (tolerate_errors). */
int store_priv_pipe_each(store *s, store_priv_pipe *p, bool tolerate_errors,
                         int (*each)(size_t i, redisReply *r, void *ud), void *ud, char *err,
                         size_t errlen);
void store_priv_pipe_free(store_priv_pipe *p);
/* An each for store_priv_pipe_each that looks at nothing. */
int store_priv_ignore_reply(size_t i, redisReply *r, void *ud);

/* ---- shared by the siblings ---- */

/* A Salesforce id as keys hold it: its first 15 characters (case-sensitive), so 15- and
 * 18-character forms meet. */
void store_priv_c15(char out[16], const char *sf_id);

/* The de-duplication key of a received event (cs:dedup:<sf|mkto>:<id>), malloc'd; NULL when
 * out of memory. store_queue.c. */
char *store_priv_dedup_key(const event *ev);

/* Adds the XADD that appends one entry to the audit log (cs:audit, capped near
 * STORE_AUDIT_MAX, as audit_add.lua writes each) to p. store_mappings.c. */
void store_priv_pipe_add_audit(store_priv_pipe *p, const char *entry);

#endif
