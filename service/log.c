/* log — JSON or text lines on stderr. See include/log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

/* Process-wide on purpose: the process writes one log (stderr), set up once by main. */
static atomic_int cur_level = LOG_INFO;
static atomic_int cur_format = LOG_FORMAT_JSON;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_setup(log_level level, log_format format) {
    atomic_store(&cur_level, (int)level);
    atomic_store(&cur_format, (int)format);
}

int log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

int log_format_parse(const char *s) {
    if (strcmp(s, "json") == 0) return LOG_FORMAT_JSON;
    if (strcmp(s, "text") == 0) return LOG_FORMAT_TEXT;
    return -1;
}

bool log_enabled(log_level level) {
    return (int)level >= atomic_load(&cur_level);
}

/* A bounded line under construction; text past the end is cut, never overflowed. */
typedef struct {
    char b[LINE_MAX_BYTES];
    size_t n;
} line;

static void put(line *l, const char *s, size_t len) {
    size_t room = sizeof(l->b) - 2 - l->n; /* keep space for "\n" and NUL */
    if (len > room) len = room;
    memcpy(l->b + l->n, s, len);
    l->n += len;
}

static void puts_(line *l, const char *s) {
    put(l, s, strlen(s));
}

/* JSON string body escaping; control bytes become \u00XX so a line stays one line. */
static void put_json_str(line *l, const char *s) {
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': put(l, "\\\"", 2); break;
        case '\\': put(l, "\\\\", 2); break;
        case '\n': put(l, "\\n", 2); break;
        case '\r': put(l, "\\r", 2); break;
        case '\t': put(l, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                puts_(l, esc);
            } else {
                put(l, (const char *)p, 1);
            }
        }
    }
    put(l, "\"", 1);
}

/* Text-format escaping: a value from outside (a header, a client's address, a parser's
 * message quoting the input) must not start a new line or pass for a field of its own, so
 * control bytes become \n, \r, \t or \xNN, a backslash is doubled, and inside a quoted value
 * a double quote is escaped. */
static void put_text_str(line *l, const char *s, bool quoted) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '\n': put(l, "\\n", 2); break;
        case '\r': put(l, "\\r", 2); break;
        case '\t': put(l, "\\t", 2); break;
        case '\\': put(l, "\\\\", 2); break;
        case '"':
            if (quoted)
                put(l, "\\\"", 2);
            else
                put(l, "\"", 1);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", *p);
                puts_(l, esc);
            } else {
                put(l, (const char *)p, 1);
            }
        }
    }
}

static void put_timestamp(line *l) {
    struct timespec ts;
    struct tm tm;
    char buf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000L);
    puts_(l, buf);
}

static void begin(line *l, log_level level, const char *msg) {
    l->n = 0;
    if (atomic_load(&cur_format) == LOG_FORMAT_JSON) {
        puts_(l, "{\"ts\":\"");
        put_timestamp(l);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_names[level]);
        puts_(l, "\",\"msg\":");
        put_json_str(l, msg);
    } else {
        put_timestamp(l);
        puts_(l, " ");
        puts_(l, level_names[level]);
        puts_(l, " ");
        put_text_str(l, msg, false);
    }
}

static void field(line *l, const char *k, const char *v) {
    if (atomic_load(&cur_format) == LOG_FORMAT_JSON) {
        put(l, ",", 1);
        put_json_str(l, k);
        put(l, ":", 1);
        put_json_str(l, v);
    } else {
        puts_(l, " ");
        puts_(l, k);
        puts_(l, "=");
        bool quote = strpbrk(v, " \"=") != NULL || *v == '\0';
        if (quote) put(l, "\"", 1);
        put_text_str(l, v, quote);
        if (quote) put(l, "\"", 1);
    }
}

static void finish(line *l) {
    if (atomic_load(&cur_format) == LOG_FORMAT_JSON) put(l, "}", 1);
    l->b[l->n++] = '\n';
    /* One write per line so lines from several threads never interleave. */
    ssize_t w = write(STDERR_FILENO, l->b, l->n);
    (void)w;
}

static void held_field(line *l, long held) {
    if (held <= 0) return;
    char n[24];
    snprintf(n, sizeof n, "%ld", held);
    field(l, "suppressed", n);
}

void log_kv(log_level level, long held, const char *msg, ...) {
    line l;
    va_list ap;
    begin(&l, level, msg);
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        if (v) field(&l, k, v);
    }
    va_end(ap);
    held_field(&l, held);
    finish(&l);
}

void log_kvv(log_level level, const char *msg, const char *const *kv, int n) {
    line l;
    begin(&l, level, msg);
    for (int i = 0; i < n; i++)
        if (kv[2 * i + 1]) field(&l, kv[2 * i], kv[2 * i + 1]);
    finish(&l);
}

void log_fmt(log_level level, long held, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    line l;
    begin(&l, level, msg);
    held_field(&l, held);
    finish(&l);
}

long long log_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec;
}

bool log_limit_take(log_limit *l, long long now_s, long *held) {
    long long was = atomic_load(&l->second);
    /* The thread that moves the second on restarts its count; a line racing with that may be
     * counted in either second, which only moves the limit by one. */
    if (was != now_s && atomic_compare_exchange_strong(&l->second, &was, now_s))
        atomic_store(&l->lines, 0);
    if (atomic_fetch_add(&l->lines, 1) >= LOG_LIMIT_PER_S) {
        atomic_fetch_add(&l->lines, -1); /* stays bounded however many arrive */
        atomic_fetch_add(&l->held, 1);
        return false;
    }
    *held = atomic_exchange(&l->held, 0);
    return true;
}
