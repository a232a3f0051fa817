#define _GNU_SOURCE
#include "jsonw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_raw(struct jw *j, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(j->buf == NULL ? NULL : j->buf + j->len, j->cap - j->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if (j->buf != NULL && (size_t)n < j->cap - j->len)
            break;
        j->cap = j->cap * 2 + (size_t)n + 256;
        if ((j->buf = realloc(j->buf, j->cap)) == NULL)
            abort();
    }
    j->len += (size_t)n;
}

static void sep(struct jw *j)
{
    if (j->len > 0) {
        char last = j->buf[j->len - 1];

        if (last != '{' && last != '[' && last != ':')
            jw_raw(j, ",");
    }
}

void jw_strn(struct jw *j, const char *s, size_t n)
{
    jw_raw(j, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            jw_raw(j, "\\%c", c);
        else if (c == '\n')
            jw_raw(j, "\\n");
        else if (c == '\t')
            jw_raw(j, "\\t");
        else if (c < 0x20 || c >= 0x7f) /* bytes as Latin-1: any file's text stays valid JSON */
            jw_raw(j, "\\u%04x", c);
        else
            jw_raw(j, "%c", c);
    }
    jw_raw(j, "\"");
}

void jw_str(struct jw *j, const char *s)
{
    if (s == NULL)
        jw_raw(j, "null");
    else
        jw_strn(j, s, strlen(s));
}

void jw_key(struct jw *j, const char *k)
{
    sep(j);
    jw_str(j, k);
    jw_raw(j, ":");
}

void jw_open(struct jw *j, const char *k, char c)
{
    if (k != NULL)
        jw_key(j, k);
    else
        sep(j);
    jw_raw(j, "%c", c);
}

void jw_close(struct jw *j, char c) { jw_raw(j, "%c", c); }
void jw_kstr(struct jw *j, const char *k, const char *v) { jw_key(j, k); jw_str(j, v); }
void jw_klong(struct jw *j, const char *k, long long v) { jw_key(j, k); jw_raw(j, "%lld", v); }
void jw_kbool(struct jw *j, const char *k, int v) { jw_key(j, k); jw_raw(j, v ? "true" : "false"); }

void jw_ktri(struct jw *j, const char *k, int v)
{
    jw_key(j, k);
    jw_raw(j, v < 0 ? "null" : v ? "true" : "false");
}

void jw_astr(struct jw *j, const char *v)
{
    sep(j);
    jw_str(j, v);
}
