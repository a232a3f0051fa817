/* fips_probe --discover: what an image holds of OpenSSL, where it was looked for, and how each
 * file was found, as one JSON document (docs/portable-probe.md). */
#ifndef FIPS_PROBE_DISCOVER_H
#define FIPS_PROBE_DISCOVER_H

#include <stddef.h>

#ifdef __GLIBC__
#define FIPS_PROBE_LIBC "glibc"
#else
#define FIPS_PROBE_LIBC "musl"
#endif

#if defined(__x86_64__)
#define FIPS_PROBE_ARCH "x86_64"
#elif defined(__aarch64__)
#define FIPS_PROBE_ARCH "aarch64"
#else
#error "the portable probe knows x86_64 and aarch64 only"
#endif

int discover_main(int argc, char **argv);
int discover_is_dir(const char *path);
int discover_is_file(const char *path);

/* From ossl_dynamic.c: the names every libcrypto must have for the probe to run. */
const char *const *fips_probe_ossl_required_names(size_t *n);
int fips_probe_ossl_open(const char *requested, char *err, size_t errlen);

#endif
