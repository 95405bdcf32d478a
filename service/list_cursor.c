/* list_cursor — a member listing's resume point as text. See include/list_cursor.h. */
#include "list_cursor.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Percent-encodes the bytes of s that a cursor uses as separators or escapes (':', '%') and
 * the control characters; appends to out at *n. -1 when out is too small. */
static int put_escaped(char *out, size_t size, size_t *n, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = *p != ':' && *p != '%' && *p >= 0x20 && *p != 0x7f;
        size_t need = plain ? 1 : 3;
        if (*n + need >= size) return -1;
        if (plain)
            out[(*n)++] = (char)*p;
        else
            *n += (size_t)snprintf(out + *n, size - *n, "%%%02X", *p);
    }
    out[*n] = '\0';
    return 0;
}

static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes s[0..len) into out (size); -1 when malformed or too long. */
static int get_escaped(const char *s, size_t len, char *out, size_t size) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len) return -1;
            int h = hex(s[i + 1]), l = hex(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (n + 1 >= size || c == '\0') return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

/* Whether s holds only what a token or an id holds: printable ASCII without spaces. */
static bool token_ok(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) return false;
    return true;
}

/* "mb1:<exportId>:<offset>": an id of token characters without ':', a decimal offset. */
static int parse_bulk(const char *text, list_cursor *out) {
    const char *id = text + 4, *sep = strchr(id, ':');
    if (!sep || sep == id || (size_t)(sep - id) >= sizeof out->export_id) return -1;
    const char *num = sep + 1;
    size_t digits = strspn(num, "0123456789");
    if (digits == 0 || digits > 15 || num[digits] != '\0') return -1;
    memcpy(out->export_id, id, (size_t)(sep - id));
    out->export_id[sep - id] = '\0';
    if (!token_ok(out->export_id)) return -1;
    out->offset = strtoll(num, NULL, 10);
    out->kind = LC_MARKETO_BULK;
    return 0;
}

/* "<job>:<locator>:<handed>" of a "sb1:" cursor. */
static int parse_bulk_sf(const char *s, list_cursor *out) {
    const char *sep = strchr(s, ':'), *last = strrchr(s, ':');
    if (!sep || sep == s || last == sep || (size_t)(sep - s) >= sizeof out->sb_job) return -1;
    memcpy(out->sb_job, s, (size_t)(sep - s));
    out->sb_job[sep - s] = '\0';
    char *end;
    long n = strtol(last + 1, &end, 10);
    if (!token_ok(out->sb_job) || !isdigit((unsigned char)last[1]) || *end || n < 0 ||
        get_escaped(sep + 1, (size_t)(last - sep - 1), out->sb_locator, sizeof out->sb_locator))
        return -1;
    out->kind = LC_SALESFORCE_BULK;
    out->sb_handed = n;
    return 0;
}

int list_cursor_parse(const char *text, list_cursor *out) {
    memset(out, 0, sizeof *out);
    if (!text || !*text) return 0;
    if (strcmp(text, "end") == 0) {
        out->kind = LC_END;
        return 0;
    }
    if (strncmp(text, "sp1:", 4) == 0) {
        const char *id = text + 4;
        size_t len = strlen(id);
        if (len == 0 || len >= sizeof out->after_id || !token_ok(id)) return -1;
        out->kind = LC_SALESFORCE_PAGED;
        memcpy(out->after_id, id, len + 1);
        return 0;
    }
    if (strncmp(text, "mb1:", 4) == 0) {
        if (parse_bulk(text, out) == 0) return 0;
        memset(out, 0, sizeof *out);
        return -1;
    }
    if (strncmp(text, "sb1:", 4) == 0) return parse_bulk_sf(text + 4, out);
    if (strncmp(text, "mp1:", 4) == 0) {
        const char *st = text + 4, *sep = strchr(st, ':');
        if (!sep || sep == st) return -1;
        const char *tok = sep + 1;
        size_t tlen = strlen(tok);
        if (get_escaped(st, (size_t)(sep - st), out->status, sizeof out->status) != 0 ||
            tlen >= sizeof out->token || !token_ok(tok))
            return -1;
        out->kind = LC_MARKETO_PAGED;
        memcpy(out->token, tok, tlen + 1);
        return 0;
    }
    return -1;
}

int list_cursor_format(const list_cursor *c, char *out, size_t size) {
    size_t n = 0;
    if (size == 0) return -1;
    out[0] = '\0';
    switch (c->kind) {
    case LC_START: return 0;
    case LC_END: return snprintf(out, size, "end") < (int)size ? 0 : -1;
    case LC_SALESFORCE_PAGED:
        if (!c->after_id[0] || !token_ok(c->after_id)) return -1;
        return snprintf(out, size, "sp1:%s", c->after_id) < (int)size ? 0 : -1;
    case LC_SALESFORCE_BULK:
        if (!c->sb_job[0] || !token_ok(c->sb_job) || strchr(c->sb_job, ':') || c->sb_handed < 0)
            return -1;
        n = (size_t)snprintf(out, size, "sb1:%s:", c->sb_job);
        if (n >= size || put_escaped(out, size, &n, c->sb_locator) != 0) return -1;
        return snprintf(out + n, size - n, ":%ld", c->sb_handed) < (int)(size - n) ? 0 : -1;
    case LC_MARKETO_PAGED:
        if (!c->status[0] || !token_ok(c->token) || size < 5) return -1;
        memcpy(out, "mp1:", 5);
        n = 4;
        if (put_escaped(out, size, &n, c->status) != 0 || n + 1 + strlen(c->token) >= size)
            return -1;
        out[n++] = ':';
        memcpy(out + n, c->token, strlen(c->token) + 1);
        return 0;
    case LC_MARKETO_BULK:
        if (!c->export_id[0] || !token_ok(c->export_id) || strchr(c->export_id, ':') ||
            c->offset < 0 || c->offset > 999999999999999LL)
            return -1;
        return snprintf(out, size, "mb1:%s:%lld", c->export_id, c->offset) < (int)size ? 0 : -1;
    }
    return -1;
}
