/* log — one line per event on stderr, as JSON objects or as text.
 *
 * Owns the process-wide log level and format. A line carries `ts` (UTC, ISO-8601 with
 * milliseconds), `level`, `msg` and any number of string fields given as key/value pairs.
 * The LOG_* macros test the level before any argument is formatted, so a debug line in a
 * hot path costs one comparison when debug is off. Text lines escape control characters and
 * backslashes (and double quotes inside a quoted value), so outside text cannot start a line
 * or forge one; JSON lines escape as JSON does. Thread-safe: each line is written with
 * one write(2). Secrets must never be passed here; config redacts them before logging.
 * Lines that outside input can cause at any rate (a refused request) go through a per-site
 * limit (LOG_KV_LIMITED): at most LOG_LIMIT_PER_S a second, and the next line written says
 * how many were held back ("suppressed"); the metrics count every one. */
#ifndef CS_LOG_H
#define CS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
typedef enum { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT } log_format;

/* Sets level and format; both default to info and json. */
void log_setup(log_level level, log_format format);

/* Parses "debug", "info", "warn", "error" (and "json"/"text"); -1 when unknown. */
int log_level_parse(const char *s);
int log_format_parse(const char *s);

bool log_enabled(log_level level);

/* Writes one line: msg, then NULL-terminated key/value string pairs; a NULL value is skipped.
 * held > 0 adds a "suppressed" field: the lines of this kind held back before it (see
 * LOG_KV_LIMITED); 0 otherwise. */
void log_kv(log_level level, long held, const char *msg, ...);

/* Same as log_kv with the n key/value pairs given as an array kv[2*n]. */
void log_kvv(log_level level, const char *msg, const char *const *kv, int n);

/* Writes one line whose msg is printf-formatted; no extra fields but "suppressed" (as log_kv). */
void log_fmt(log_level level, long held, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Lines a second per call site of LOG_KV_LIMITED / LOGF_LIMITED. */
#define LOG_LIMIT_PER_S 10

typedef struct {
    _Atomic long long second; /* the monotonic second whose lines are counted */
    atomic_int lines;         /* lines asked for in that second */
    atomic_long held;         /* lines held back since the last one written */
} log_limit;

/* True when a line may be written at monotonic second now_s; *held is then the number held
 * back before it (and starts again from 0). Thread-safe. */
bool log_limit_take(log_limit *l, long long now_s, long *held);

/* The monotonic clock's second, for log_limit_take. */
long long log_now_s(void);

#define LOG_KV(lvl, ...)                                                                           \
    do {                                                                                           \
        if (log_enabled(lvl)) log_kv(lvl, 0, __VA_ARGS__, (const char *)0);                        \
    } while (0)
#define LOGF(lvl, ...)                                                                             \
    do {                                                                                           \
        if (log_enabled(lvl)) log_fmt(lvl, 0, __VA_ARGS__);                                        \
    } while (0)

/* One log_limit per call site; `write` is the call that writes the line, given held_. */
#define LOG_LIMITED_(lvl, write)                                                                   \
    do {                                                                                           \
        static log_limit limit_;                                                                   \
        long held_;                                                                                \
        if (log_enabled(lvl) && log_limit_take(&limit_, log_now_s(), &held_)) write;               \
    } while (0)
#define LOG_KV_LIMITED(lvl, ...) LOG_LIMITED_(lvl, log_kv(lvl, held_, __VA_ARGS__, (const char *)0))
#define LOGF_LIMITED(lvl, ...)   LOG_LIMITED_(lvl, log_fmt(lvl, held_, __VA_ARGS__))

#endif
