/*
 * The portable probe's binding to a libcrypto chosen at run time, and its hooks in
 * fips_probe.c's main (see fips_probe_ossl.h).
 *
 * The libcrypto is opened RTLD_NOW | RTLD_LOCAL: its symbols stay out of the global scope and
 * every one the probe uses is resolved at once, so a missing one is reported before anything
 * runs, by name, with the file. It is never closed (as a linked libcrypto is never unloaded).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "elfinfo.h"
#include "fips_probe_ossl.h"
#include "jsonw.h"

/* The pointers fips_probe.c calls through, named as the functions they point to. */
#define DEFINE_POINTER(ret, name, params) FIPS_PROBE_HIDDEN ret(*name) params;
FIPS_PROBE_OSSL_FUNCTIONS(DEFINE_POINTER, DEFINE_POINTER)
#undef DEFINE_POINTER

const char *fips_probe_fips_key = FIPS_PROBE_DEFAULT_FIPS_KEY;

static const struct {
    const char *name;
    void **slot; /* POSIX: a function pointer can hold what dlsym returns */
    int required;
} symbols[] = {
#define REQUIRED(ret, name, params) { #name, (void **)&name, 1 },
#define OPTIONAL(ret, name, params) { #name, (void **)&name, 0 },
    FIPS_PROBE_OSSL_FUNCTIONS(REQUIRED, OPTIONAL)
#undef REQUIRED
#undef OPTIONAL
};

const char *const *fips_probe_ossl_required_names(size_t *n)
{
    static const char *names[sizeof(symbols) / sizeof(*symbols)];
    size_t k = 0;

    for (size_t i = 0; i < sizeof(symbols) / sizeof(*symbols); i++)
        if (symbols[i].required)
            names[k++] = symbols[i].name;
    *n = k;
    return names;
}

static struct {
    const char *requested; /* as given (a path, a directory, or a bare soname) */
    char opened[PATH_MAX]; /* the file the loader mapped, as it names it */
    char real[PATH_MAX];   /* and with every link resolved */
    char soname[256];      /* its DT_SONAME */
    const char *version;   /* OpenSSL_version(OPENSSL_VERSION) */
    const char *module_mac;
    int fips_key_given;
} bound;

/* The file a loaded address belongs to: dladdr's name, or /proc/self/maps when that has none. */
static void file_of(const void *addr, char *out, size_t len)
{
    Dl_info info;
    FILE *maps;
    char line[PATH_MAX + 256];

    out[0] = '\0';
    if (dladdr(addr, &info) != 0 && info.dli_fname != NULL && info.dli_fname[0] == '/') {
        snprintf(out, len, "%s", info.dli_fname);
        return;
    }
    if ((maps = fopen("/proc/self/maps", "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long lo, hi;
        char *path = strchr(line, '/');

        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && path != NULL
            && (unsigned long)addr >= lo && (unsigned long)addr < hi) {
            path[strcspn(path, "\n")] = '\0';
            snprintf(out, len, "%s", path);
            break;
        }
    }
    fclose(maps);
}

/* A directory holding exactly one of libcrypto.so.4 and libcrypto.so.3 stands for that file. */
static const char *pick(const char *requested, char *buf, size_t len)
{
    static const char *const sonames[] = { "libcrypto.so.4", "libcrypto.so.3" };
    const char *found = NULL;

    if (strchr(requested, '/') == NULL || !discover_is_dir(requested))
        return requested;
    for (size_t i = 0; i < sizeof(sonames) / sizeof(*sonames); i++) {
        snprintf(buf, len, "%s/%s", requested, sonames[i]);
        if (discover_is_file(buf)) {
            if (found != NULL)
                return NULL; /* both: the user must say which */
            found = sonames[i];
        }
    }
    if (found == NULL)
        return NULL;
    snprintf(buf, len, "%s/%s", requested, found);
    return buf;
}

int fips_probe_ossl_open(const char *requested, char *err, size_t errlen)
{
    char dirbuf[PATH_MAX];
    const char *path = pick(requested, dirbuf, sizeof(dirbuf));
    void *h;
    struct elfinfo elf;

    bound.requested = requested;
    if (path == NULL) {
        snprintf(err, errlen, "%s: a directory must hold exactly one of libcrypto.so.4 and "
                              "libcrypto.so.3", requested);
        return 0;
    }
    if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        const char *why = dlerror();

        snprintf(err, errlen, "cannot open libcrypto %s: %s", path, why != NULL ? why : "?");
        return 0;
    }
    for (size_t i = 0; i < sizeof(symbols) / sizeof(*symbols); i++) {
        *symbols[i].slot = dlsym(h, symbols[i].name);
        if (*symbols[i].slot == NULL && symbols[i].required) {
            char where[PATH_MAX];

            file_of(h != NULL ? dlsym(h, "OpenSSL_version") : NULL, where, sizeof(where));
            snprintf(err, errlen, "%s (opened as %s) has no %s: not an OpenSSL 3 or later "
                                  "libcrypto the probe can use",
                     where[0] != '\0' ? where : path, path, symbols[i].name);
            return 0; /* left open: closing would not make the process cleaner */
        }
    }
    file_of((const void *)OpenSSL_version, bound.opened, sizeof(bound.opened));
    if (realpath(bound.opened, bound.real) == NULL)
        snprintf(bound.real, sizeof(bound.real), "%s", bound.opened);
    if (elfinfo_read(bound.real, &elf) == 0)
        snprintf(bound.soname, sizeof(bound.soname), "%s", elf.soname);
    bound.version = OpenSSL_version(OPENSSL_VERSION);
    return 1;
}

const char *fips_portable_module_mac(void) { return bound.module_mac; }

const char *fips_portable_json(void)
{
    static struct jw j;

    if (j.buf != NULL)
        return j.buf;
    jw_open(&j, NULL, '{');
    jw_kstr(&j, "probe", "portable");
    jw_kstr(&j, "libcrypto_requested", bound.requested);
    jw_kstr(&j, "libcrypto", bound.opened[0] != '\0' ? bound.opened : NULL);
    jw_kstr(&j, "libcrypto_realpath", bound.real[0] != '\0' ? bound.real : NULL);
    jw_kstr(&j, "libcrypto_soname", bound.soname[0] != '\0' ? bound.soname : NULL);
    jw_kstr(&j, "libcrypto_version", bound.version);
    jw_kstr(&j, "module_mac", bound.module_mac != NULL ? "given" : "computed");
    jw_kstr(&j, "module_mac_value", bound.module_mac);
    jw_kstr(&j, "fips_key", bound.fips_key_given ? "given" : "default");
    jw_kstr(&j, "built_for", FIPS_PROBE_LIBC "-" FIPS_PROBE_ARCH);
    jw_close(&j, '}');
    return j.buf;
}

static int hex_ok(const char *s, int colons)
{
    int digits = 0;

    for (; *s != '\0'; s++) {
        if ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F'))
            digits++;
        else if (!(colons && *s == ':'))
            return 0;
    }
    return digits > 0 && digits % 2 == 0;
}

int fips_portable_start(int argc, char **argv)
{
    const char *libcrypto = NULL;
    char err[PATH_MAX + 256];

    if (argc > 1 && strcmp(argv[1], "--discover") == 0)
        return discover_main(argc, argv);
    /* fips_probe.c reads its options in pairs and passes over these. */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--libcrypto") == 0) {
            libcrypto = argv[i + 1];
        } else if (strcmp(argv[i], "--module-mac") == 0) {
            if (!hex_ok(argv[i + 1], 1)) {
                fprintf(stderr, "fips_probe: --module-mac wants hex bytes (AB:CD:... or abcd...)\n");
                return 2;
            }
            bound.module_mac = argv[i + 1];
        } else if (strcmp(argv[i], "--fips-key") == 0) {
            if (!hex_ok(argv[i + 1], 0)) {
                fprintf(stderr, "fips_probe: --fips-key wants hex digits\n");
                return 2;
            }
            fips_probe_fips_key = argv[i + 1];
            bound.fips_key_given = 1;
        }
    }
    if (libcrypto != NULL) {
        if (fips_probe_ossl_open(libcrypto, err, sizeof(err)))
            return -1;
    } else {
        /* No choice given: what the loader finds, as an application of the image would. */
        char err3[sizeof(err)];

        if (fips_probe_ossl_open("libcrypto.so.3", err3, sizeof(err3))
            || fips_probe_ossl_open("libcrypto.so.4", err, sizeof(err)))
            return -1;
        strncat(err, "; ", sizeof(err) - strlen(err) - 1);
        strncat(err, err3, sizeof(err) - strlen(err) - 1);
    }
    fprintf(stderr, "fips_probe: %s\n", err);
    /* A document all the same, so the reader sees why there are no observations. */
    {
        struct jw j = { 0 };

        jw_open(&j, NULL, '{');
        jw_klong(&j, "schema", 1);
        jw_key(&j, "portable");
        jw_raw(&j, "%s", fips_portable_json());
        jw_kstr(&j, "error", err);
        jw_close(&j, '}');
        printf("%s\n", j.buf);
        free(j.buf);
    }
    return 3;
}
