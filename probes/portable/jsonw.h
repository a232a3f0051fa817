/* A small JSON writer for the portable probe's own output (discovery, the "portable" object):
 * one growing buffer, commas placed by looking at the last character written. */
#ifndef FIPS_PROBE_JSONW_H
#define FIPS_PROBE_JSONW_H

#include <stddef.h>

struct jw {
    char *buf;
    size_t len, cap;
};

void jw_raw(struct jw *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jw_str(struct jw *j, const char *s);            /* a string value, or null */
void jw_strn(struct jw *j, const char *s, size_t n); /* n bytes, NULs included */
void jw_key(struct jw *j, const char *k);            /* ,"k": as needed */
void jw_open(struct jw *j, const char *k, char c);   /* ,"k":{ or [ ; k NULL in an array */
void jw_close(struct jw *j, char c);
void jw_kstr(struct jw *j, const char *k, const char *v);
void jw_klong(struct jw *j, const char *k, long long v);
void jw_kbool(struct jw *j, const char *k, int v);
void jw_ktri(struct jw *j, const char *k, int v); /* -1: null */
void jw_astr(struct jw *j, const char *v);        /* a string as the next array element */

#endif
