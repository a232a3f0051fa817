/* What the portable probe reads from an ELF file itself: the loader (PT_INTERP), the dynamic
 * section's DT_NEEDED, DT_RUNPATH, DT_RPATH, DT_SONAME and DF_1_NODELETE. 64-bit ELF of the
 * probe's own byte order only (the probe is built per architecture). */
#ifndef FIPS_PROBE_ELFINFO_H
#define FIPS_PROBE_ELFINFO_H

#include <stddef.h>
#include <stdio.h>

#define ELFINFO_MAX_NEEDED 32

struct elfinfo {
    char error[160];  /* "" when the file was read; otherwise why not */
    int machine;      /* e_machine */
    int is_dyn;       /* ET_DYN (a library or a PIE) */
    int has_dynamic;  /* a PT_DYNAMIC segment */
    int nodelete;     /* DF_1_NODELETE in DT_FLAGS_1 */
    char interp[256];
    char soname[256];
    char runpath[1024]; /* as written, $ORIGIN not expanded */
    char rpath[1024];
    char needed[ELFINFO_MAX_NEEDED][128];
    int n_needed;
};

/* 0 when the file was read (info->error is ""), -1 otherwise (info->error says why). */
int elfinfo_read(const char *path, struct elfinfo *info);

/* A file of the image opened for reading without ever blocking: opened O_NONBLOCK (a FIFO or a
 * device would block a plain open for ever), then refused unless fstat says it is a regular
 * file. The stream, or NULL with why not in why ("absent", "not a regular file: a FIFO", ...). */
FILE *open_regular(const char *path, char *why, size_t whylen);

#endif
