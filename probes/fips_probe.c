/*
 * fips_probe: forces an OpenSSL 3 FIPS provider failure, frees everything,
 * watches the loader, reloads the provider, and prints what it saw as one
 * JSON document on stdout. It reports observations only; the verdict is
 * computed by fips-reload-matrix from them.
 *
 * Usage: fips_probe --scenario NAME --module PATH [--canary PATH] [--workdir DIR]
 *                   [--config KEY=VALUE]...   (extra lines for the module's config section)
 *
 * The document, the scenarios and the stderr lines (fips-probe-thread/-event/-object/-crash,
 * written by probe_trace.h so that a crash can be attributed) are described in
 * docs/probe-document.md.
 *
 * Every observation is taken in its own statement: C leaves the order of
 * evaluation of function arguments unspecified.
 *
 * OpenSSL, all of it (a portable build of this source resolves exactly these functions at
 * run time; keep this list in step with the code, tests/unit/test_probe_trace.py checks it):
 *   functions:
 *     OPENSSL_init_crypto OpenSSL_version OPENSSL_thread_stop_ex OPENSSL_cleanup
 *     OSSL_LIB_CTX_new OSSL_LIB_CTX_load_config OSSL_LIB_CTX_free OSSL_SELF_TEST_set_callback
 *     OSSL_PROVIDER_load OSSL_PROVIDER_unload OSSL_PROVIDER_self_test OSSL_PROVIDER_get_params
 *     EVP_MD_fetch EVP_MD_free EVP_Digest EVP_Q_mac RAND_bytes_ex
 *     ERR_get_error_all ERR_peek_last_error ERR_reason_error_string ERR_lib_error_string
 *     ERR_clear_error
 *   header-only: ERR_GET_REASON (an inline function of err.h: bit masks, no library call)
 *   types: OSSL_LIB_CTX OSSL_PROVIDER EVP_MD (opaque), OSSL_PARAM (public struct, filled in
 *     here field by field, so no OSSL_PARAM_* function is needed)
 *   constants: OPENSSL_INIT_NO_LOAD_CONFIG OPENSSL_INIT_LOAD_CRYPTO_STRINGS OPENSSL_VERSION
 *     OPENSSL_MODULES_DIR OSSL_PARAM_INTEGER OSSL_PARAM_UTF8_PTR OSSL_PARAM_UNMODIFIED
 *     ERR_TXT_STRING EVP_MAX_MD_SIZE, the OSSL_PROV_PARAM_* and OSSL_SELF_TEST_* strings
 *   compile-time values of the build: PROBE_OPENSSL_HEADERS and PROBE_FIPS_KEY just below,
 *     the only uses of OPENSSL_VERSION_TEXT and FIPS_KEY_STRING.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include <openssl/core.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/fipskey.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/self_test.h>

#include "probe_trace.h"

/* ===== The build's compile-time OpenSSL values: the one place each is used. ===== */
#ifndef PROBE_OPENSSL_HEADERS
#define PROBE_OPENSSL_HEADERS OPENSSL_VERSION_TEXT /* the headers compiled against */
#endif
#ifndef PROBE_FIPS_KEY
#define PROBE_FIPS_KEY FIPS_KEY_STRING /* the key module-mac is computed with */
#endif
/* ================================================================================ */

#define PROBE_SCHEMA 1

/* ---------- a small JSON writer ---------- */

static char *out;
static size_t out_len, out_cap;

static void emit(const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(out + out_len, out_cap - out_len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < out_cap - out_len)
            break;
        out_cap = out_cap * 2 + (size_t)n + 64;
        if ((out = realloc(out, out_cap)) == NULL)
            abort();
    }
    out_len += (size_t)n;
}

static void emit_str(const char *s)
{
    if (s == NULL) {
        emit("null");
        return;
    }
    emit("\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            emit("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            emit("\\u%04x", c);
        else
            emit("%c", c);
    }
    emit("\"");
}

static void emit_key(const char *k)
{
    if (out_len > 0 && out[out_len - 1] != '{' && out[out_len - 1] != '[')
        emit(",");
    emit_str(k);
    emit(":");
}

static void emit_kv_str(const char *k, const char *v) { emit_key(k); emit_str(v); }
static void emit_kv_int(const char *k, long v) { emit_key(k); emit("%ld", v); }
static void emit_kv_bool(const char *k, int v) { emit_key(k); emit(v ? "true" : "false"); }
static void emit_kv_tri(const char *k, int v) /* -1: not observed */
{
    emit_key(k);
    emit(v < 0 ? "null" : v ? "true" : "false");
}

static void emit_kv_null_or_int(const char *k, long v) /* -1: none */
{
    emit_key(k);
    if (v < 0)
        emit("null");
    else
        emit("%ld", v);
}

/* Writes the document to stdout: from here on nothing is added to it. */
static void print_document(void)
{
    fwrite(out, 1, out_len, stdout);
    fflush(stdout);
}

/* ---------- OSSL_PARAM, filled in by hand ---------- */

static OSSL_PARAM param(const char *key, unsigned int type, void *data, size_t size)
{
    OSSL_PARAM p;

    p.key = key;
    p.data_type = type;
    p.data = data;
    p.data_size = size;
    p.return_size = OSSL_PARAM_UNMODIFIED;
    return p;
}

static OSSL_PARAM param_end(void)
{
    OSSL_PARAM p;

    memset(&p, 0, sizeof(p));
    return p;
}

static const OSSL_PARAM *param_find(const OSSL_PARAM *params, const char *key)
{
    for (; params != NULL && params->key != NULL; params++)
        if (strcmp(params->key, key) == 0)
            return params;
    return NULL;
}

/* ---------- self-test callback: counts events, corrupts one test on demand ---------- */

struct selftest_counts {
    long starts, passes, fails, corrupted;
};

static struct {
    struct selftest_counts n;
    const char *arm_type, *arm_desc; /* corrupt this test while armed */
    int armed;
    char failed[512]; /* "type/desc" of failed tests since the step began, comma separated */
} selftests;

static const char *param_str(const OSSL_PARAM *params, const char *key)
{
    const OSSL_PARAM *p = param_find(params, key);

    /* UTF8_STRING params: read data directly, get_utf8_ptr refuses them. */
    return p != NULL && p->data != NULL ? (const char *)p->data : "";
}

static int self_test_cb(const OSSL_PARAM params[], void *arg)
{
    const char *phase = param_str(params, OSSL_PROV_PARAM_SELF_TEST_PHASE);
    const char *type = param_str(params, OSSL_PROV_PARAM_SELF_TEST_TYPE);
    const char *desc = param_str(params, OSSL_PROV_PARAM_SELF_TEST_DESC);

    (void)arg;
    if (strcmp(phase, OSSL_SELF_TEST_PHASE_START) == 0) {
        selftests.n.starts++;
    } else if (strcmp(phase, OSSL_SELF_TEST_PHASE_PASS) == 0) {
        selftests.n.passes++;
    } else if (strcmp(phase, OSSL_SELF_TEST_PHASE_FAIL) == 0) {
        size_t used = strlen(selftests.failed);

        selftests.n.fails++;
        snprintf(selftests.failed + used, sizeof(selftests.failed) - used, "%s%s/%s",
                 used ? "," : "", type, desc);
    } else if (strcmp(phase, OSSL_SELF_TEST_PHASE_CORRUPT) == 0 && selftests.armed
               && strcmp(type, selftests.arm_type) == 0 && strcmp(desc, selftests.arm_desc) == 0) {
        selftests.n.corrupted++;
        return 0;
    }
    return 1;
}

/* ---------- loader observations ---------- */

static char module_path[PATH_MAX];

static int count_mappings(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 256];
    int n = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *nl = strchr(line, '\n');
        size_t len = strlen(path);

        if (nl != NULL)
            *nl = '\0';
        /* the path is the last field of a maps line */
        if (strlen(line) >= len && strcmp(line + strlen(line) - len, path) == 0)
            n++;
    }
    fclose(f);
    return n;
}

static int noload_says_loaded(const char *path)
{
    void *h = dlopen(path, RTLD_NOLOAD | RTLD_LAZY);

    if (h == NULL)
        return 0;
    dlclose(h); /* give back the reference NOLOAD just took */
    return 1;
}

/* The file's ELF dynamic section: is DF_1_NODELETE set? -1 if unreadable. */
static int elf_nodelete(const char *path)
{
    FILE *f = fopen(path, "rb");
    Elf64_Ehdr eh;
    int result = -1;

    if (f == NULL)
        return -1;
    if (fread(&eh, sizeof(eh), 1, f) == 1 && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0
        && eh.e_ident[EI_CLASS] == ELFCLASS64) {
        for (int i = 0; i < eh.e_phnum && result < 0; i++) {
            Elf64_Phdr ph;

            if (fseek(f, (long)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize), SEEK_SET) != 0
                || fread(&ph, sizeof(ph), 1, f) != 1)
                break;
            if (ph.p_type != PT_DYNAMIC)
                continue;
            result = 0;
            for (Elf64_Xword off = 0; off + sizeof(Elf64_Dyn) <= ph.p_filesz; off += sizeof(Elf64_Dyn)) {
                Elf64_Dyn d;

                if (fseek(f, (long)(ph.p_offset + off), SEEK_SET) != 0
                    || fread(&d, sizeof(d), 1, f) != 1 || d.d_tag == DT_NULL)
                    break;
                if (d.d_tag == DT_FLAGS_1 && (d.d_un.d_val & DF_1_NODELETE) != 0)
                    result = 1;
            }
        }
    }
    fclose(f);
    return result;
}

/* dlopen the canary, dlclose it: did this libc's dlclose unmap it? -1 if not observed. */
static int dlclose_unmaps(const char *canary)
{
    char real[PATH_MAX];
    void *h;
    int before;

    if (canary == NULL || realpath(canary, real) == NULL || (h = dlopen(real, RTLD_NOW)) == NULL)
        return -1;
    trace_watch("canary", real);
    before = count_mappings(real);
    trace_objects("baseline");
    dlclose(h);
    trace_objects("baseline");
    if (before <= 0)
        return -1;
    return count_mappings(real) == 0;
}

#ifndef __GLIBC__
/* musl has no version API: its loader prints the version when run by itself. */
static void musl_version(char *buf, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 256], loader[PATH_MAX] = "";
    int fds[2];
    pid_t pid;

    snprintf(buf, len, "unknown");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = strstr(line, "/ld-musl-");

        if (p != NULL) {
            char *start = strchr(line, '/');

            line[strcspn(line, "\n")] = '\0';
            snprintf(loader, sizeof(loader), "%s", start);
            break;
        }
    }
    fclose(f);
    if (loader[0] == '\0' || pipe(fds) != 0)
        return;
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        execl(loader, loader, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (pid > 0) {
        char text[512];
        ssize_t n = read(fds[0], text, sizeof(text) - 1);
        char *v;

        text[n > 0 ? n : 0] = '\0';
        waitpid(pid, NULL, 0);
        if ((v = strstr(text, "Version ")) != NULL) {
            v += strlen("Version ");
            v[strcspn(v, "\n")] = '\0';
            snprintf(buf, len, "%s", v);
        }
    }
    close(fds[0]);
}
#endif

/* ---------- OpenSSL observations ---------- */

static void emit_errors(void)
{
    unsigned long e;
    const char *data;
    int flags;

    emit_key("errors");
    emit("[");
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *reason = ERR_reason_error_string(e);
        const char *lib = ERR_lib_error_string(e);
        char buf[64];

        if (out[out_len - 1] != '[')
            emit(",");
        emit("{");
        emit_kv_str("lib", lib);
        if (reason == NULL) {
            snprintf(buf, sizeof(buf), "reason(%d)", ERR_GET_REASON(e));
            reason = buf;
        }
        emit_kv_str("reason", reason);
        emit_kv_str("data", (flags & ERR_TXT_STRING) != 0 ? data : NULL);
        emit("}");
    }
    emit("]");
}

static int provider_status(OSSL_PROVIDER *prov)
{
    int status = -1;
    OSSL_PARAM params[2];

    if (prov == NULL)
        return -1;
    params[0] = param(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, &status, sizeof(status));
    params[1] = param_end();
    if (!OSSL_PROVIDER_get_params(prov, params) || params[0].return_size == OSSL_PARAM_UNMODIFIED)
        return -1;
    return status;
}

static const unsigned char abc_sha256[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
};

/* SHA-256("abc") through the FIPS provider only: no fallback to default. */
static int digest_works(OSSL_LIB_CTX *ctx, EVP_MD **keep)
{
    EVP_MD *md = EVP_MD_fetch(ctx, "SHA256", "provider=fips");
    unsigned char out_md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = 0;

    if (md != NULL)
        ok = EVP_Digest("abc", 3, out_md, &len, md, NULL);
    ok = ok && len == sizeof(abc_sha256) && memcmp(out_md, abc_sha256, len) == 0;
    if (keep != NULL)
        *keep = md; /* the leaked-ref scenario keeps this reference */
    else
        EVP_MD_free(md);
    return ok;
}

static char prov_name[64], prov_version[64], prov_buildinfo[128];

/* Copied out: the strings live in the module, which may be unmapped later. */
static void read_provider_versions(OSSL_PROVIDER *prov)
{
    const char *name = NULL, *version = NULL, *buildinfo = NULL;
    OSSL_PARAM params[4];

    params[0] = param(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, (void *)&name, 0);
    params[1] = param(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, (void *)&version, 0);
    params[2] = param(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, (void *)&buildinfo, 0);
    params[3] = param_end();
    if (prov_name[0] != '\0' || prov == NULL || !OSSL_PROVIDER_get_params(prov, params))
        return;
    snprintf(prov_name, sizeof(prov_name), "%s", name != NULL ? name : "");
    snprintf(prov_version, sizeof(prov_version), "%s", version != NULL ? version : "");
    snprintf(prov_buildinfo, sizeof(prov_buildinfo), "%s", buildinfo != NULL ? buildinfo : "");
}

static void emit_provider_versions(void)
{
    emit_key("provider");
    emit("{");
    emit_kv_str("name", prov_name[0] != '\0' ? prov_name : NULL);
    emit_kv_str("version", prov_version[0] != '\0' ? prov_version : NULL);
    emit_kv_str("buildinfo", prov_buildinfo[0] != '\0' ? prov_buildinfo : NULL);
    emit("}");
}

/* ---------- steps: an action, then every observation in a fixed order ---------- */

static struct selftest_counts step_start;
static const char *step_name;

static void step_begin(const char *name)
{
    ERR_clear_error();
    step_start = selftests.n;
    selftests.failed[0] = '\0';
    step_name = name;
    trace_phase = name;
    fprintf(stderr, "fips_probe: step %s\n", name);
    trace_event("step", "step", name);
    emit(out[out_len - 1] == '[' ? "{" : ",{");
    emit_kv_str("name", name);
}

/* Observes everything observable after an action, in a fixed order. */
static void step_end(int action_ok, OSSL_PROVIDER *prov, OSSL_LIB_CTX *digest_ctx)
{
    int status, digest = -1, maps, loaded;

    emit_kv_tri("ok", action_ok);
    emit_errors();
    status = provider_status(prov);
    if (digest_ctx != NULL)
        digest = digest_works(digest_ctx, NULL);
    ERR_clear_error(); /* errors of the observations themselves are not the step's */
    maps = count_mappings(module_path);
    loaded = noload_says_loaded(module_path);
    emit_key("self_tests");
    emit("{");
    emit_kv_int("started", selftests.n.starts - step_start.starts);
    emit_kv_int("passed", selftests.n.passes - step_start.passes);
    emit_kv_int("failed", selftests.n.fails - step_start.fails);
    emit_kv_int("corrupted", selftests.n.corrupted - step_start.corrupted);
    emit_kv_str("failed_tests", selftests.failed);
    emit("}");
    if (status < 0) {
        emit_key("status");
        emit("null");
    } else {
        emit_kv_int("status", status);
    }
    emit_kv_tri("digest_ok", digest);
    emit_kv_int("mappings", maps);
    emit_kv_bool("noload_loaded", loaded);
    emit("}");
    /* For crash attribution, after the document's observations: where the objects are. */
    trace_objects(step_name);
}

/* A step with no action: only the observations (of prov, and a digest through ctx). */
static void observe(const char *name, OSSL_PROVIDER *prov, OSSL_LIB_CTX *ctx)
{
    step_begin(name);
    step_end(-1, prov, ctx);
}

/* ---------- the module's configuration ---------- */

#define MAX_EXTRA 8
static const char *config_extra[MAX_EXTRA];
static int n_config_extra;

static int write_config(const char *path, const char *mac_hex)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return 0;
    /* No "activate": we call OSSL_PROVIDER_load ourselves to see the real errors. */
    fprintf(f,
            "openssl_conf = openssl_init\n"
            "[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\nfips = fips_sect\n"
            "[fips_sect]\nmodule = %s\nmodule-mac = %s\n"
            "conditional-errors = 1\nsecurity-checks = 1\n",
            module_path, mac_hex);
    for (int i = 0; i < n_config_extra; i++) {
        const char *eq = strchr(config_extra[i], '=');

        fprintf(f, "%.*s = %s\n", (int)(eq - config_extra[i]), config_extra[i], eq + 1);
    }
    return fclose(f) == 0;
}

/* The build's FIPS key as bytes (hex digits, colons allowed between them); its length or -1. */
static long fips_key(unsigned char *key, size_t cap)
{
    const char *s = PROBE_FIPS_KEY;
    size_t n = 0;

    for (; *s != '\0'; s++) {
        int hi, lo;

        if (*s == ':')
            continue;
        hi = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
             : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;
        s++;
        lo = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
             : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;
        if (hi < 0 || lo < 0 || n == cap)
            return -1;
        key[n++] = (unsigned char)(hi * 16 + lo);
    }
    return (long)n;
}

/* HMAC-SHA256 of the module file under the build's FIPS key, as fipsinstall
 * computes module-mac; done in a private context with the default provider. */
static int module_mac(char *hex, size_t hexlen, char *sha_hex)
{
    FILE *f = fopen(module_path, "rb");
    unsigned char *data = NULL, key[64], mac[32], sha[32];
    size_t n = 0, cap = 0, maclen = 0, i;
    long keylen = fips_key(key, sizeof(key));
    OSSL_LIB_CTX *tool = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *def = tool != NULL ? OSSL_PROVIDER_load(tool, "default") : NULL;
    EVP_MD *sha256 = def != NULL ? EVP_MD_fetch(tool, "SHA256", NULL) : NULL;
    unsigned int shalen = 0;
    int ok = 0;

    if (f != NULL) {
        for (;;) {
            if (n == cap && (data = realloc(data, cap = cap * 2 + 65536)) == NULL)
                abort();
            size_t r = fread(data + n, 1, cap - n, f);
            if (r == 0)
                break;
            n += r;
        }
        fclose(f);
        ok = keylen > 0 && sha256 != NULL
             && EVP_Q_mac(tool, "HMAC", NULL, "SHA256", NULL, key, (size_t)keylen, data, n,
                          mac, sizeof(mac), &maclen) != NULL
             && EVP_Digest(data, n, sha, &shalen, sha256, NULL);
    }
    if (ok) {
        for (i = 0; i < maclen && (i + 1) * 3 <= hexlen; i++)
            snprintf(hex + i * 3, hexlen - i * 3, i + 1 < maclen ? "%02X:" : "%02X", mac[i]);
        for (i = 0; i < shalen; i++)
            snprintf(sha_hex + i * 2, 3, "%02x", sha[i]);
    }
#ifdef FIPS_PROBE_PORTABLE
    if (ok && fips_portable_module_mac() != NULL) /* --module-mac: the image's own value */
        snprintf(hex, hexlen, "%s", fips_portable_module_mac());
#endif
    free(data);
    EVP_MD_free(sha256);
    OSSL_PROVIDER_unload(def);
    OSSL_LIB_CTX_free(tool);
    return ok;
}

/* ---------- load, fail, unload, reload ---------- */

static OSSL_LIB_CTX *new_context(const char *config)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    if (ctx == NULL)
        return NULL;
    /* Set before the load: the provider keeps the callback it got then. */
    OSSL_SELF_TEST_set_callback(ctx, self_test_cb, NULL);
    if (!OSSL_LIB_CTX_load_config(ctx, config)) {
        OSSL_LIB_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Loads the module into a new context; a NULL context or provider is recorded as a failure.
 * `armed`: the KAT is corrupted during this load. */
static OSSL_PROVIDER *load_step(const char *name, OSSL_LIB_CTX **ctx, const char *cnf, int armed)
{
    OSSL_PROVIDER *prov;

    *ctx = new_context(cnf);
    selftests.armed = armed;
    step_begin(name);
    prov = *ctx != NULL ? OSSL_PROVIDER_load(*ctx, "fips") : NULL;
    selftests.armed = 0;
    step_end(prov != NULL, prov, NULL);
    read_provider_versions(prov);
    return prov;
}

/* An on-demand self-test of prov; armed: with the KAT corrupted (the forced failure). */
static void selftest_step(const char *name, OSSL_PROVIDER *prov, OSSL_LIB_CTX *digest_ctx,
                          int armed)
{
    int ok;

    step_begin(name);
    selftests.armed = armed;
    ok = OSSL_PROVIDER_self_test(prov);
    selftests.armed = 0;
    step_end(ok, prov, digest_ctx);
}

/* Load into a fresh context, then (if it loaded) an on-demand self-test and a digest. */
static OSSL_PROVIDER *reload(const char *load_name, const char *selftest_name,
                             OSSL_LIB_CTX **ctx, const char *cnf)
{
    OSSL_PROVIDER *prov = load_step(load_name, ctx, cnf, 0);

    if (prov != NULL)
        selftest_step(selftest_name, prov, *ctx, 0);
    return prov;
}

/* ---------- scenarios ---------- */

enum scenario {
    ONDEMAND_KAT, LOAD_KAT, INTEGRITY, LEAKED_REF, NO_FAILURE, TWO_CONTEXTS, WORKER_THREAD,
    WORKER_NO_STOP, THREAD_POOL, EXIT_AFTER_RELOAD, WORKER_THREAD_NO_FAILURE,
    WORKER_NO_STOP_NO_FAILURE, THREAD_POOL_NO_FAILURE,
};

static const char *const scenario_names[] = {
    "ondemand-kat", "load-kat", "integrity", "leaked-ref", "no-failure", "two-contexts",
    "worker-thread", "worker-no-stop", "thread-pool", "exit-after-reload",
    "worker-thread-no-failure", "worker-no-stop-no-failure", "thread-pool-no-failure",
};
#define N_SCENARIOS ((int)(sizeof(scenario_names) / sizeof(*scenario_names)))

/* The failure is forced by an on-demand self-test with the SHA2 KAT corrupted. */
static int fails_on_demand(enum scenario sc)
{
    return sc == ONDEMAND_KAT || sc == LEAKED_REF || sc == TWO_CONTEXTS || sc == WORKER_THREAD
           || sc == WORKER_NO_STOP || sc == THREAD_POOL || sc == EXIT_AFTER_RELOAD;
}

/*
 * The controls of the scenarios with workers: each runs exactly as its partner, minus the
 * forced failure (no fail_a, no refuses_a), so a death after the document that the control
 * shows too is not the failure's. Anything else reads the partner's shape through this.
 */
static enum scenario shape_of(enum scenario sc)
{
    switch (sc) {
    case WORKER_THREAD_NO_FAILURE:
        return WORKER_THREAD;
    case WORKER_NO_STOP_NO_FAILURE:
        return WORKER_NO_STOP;
    case THREAD_POOL_NO_FAILURE:
        return THREAD_POOL;
    default:
        return sc;
    }
}

/* No failure forced at all: no-failure and the worker controls. */
static int forces_no_failure(enum scenario sc)
{
    return sc == NO_FAILURE || shape_of(sc) != sc;
}

/* ---------- worker threads: real work through context A beside the steps ---------- */

#define POOL_SIZE 4

struct worker {
    const char *name;
    int calls_thread_stop; /* OPENSSL_thread_stop_ex(ctx) once told to stop, as documented */
    OSSL_LIB_CTX *ctx;
    pthread_t thread;
    int started, joined;
    void *altstack;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* under lock */
    long tid;
    int stop;          /* main: finish the current round, (stop_ex), park */
    int leave;         /* main: exit the thread now */
    int parked;        /* worker: stopped using ctx, waiting for leave */
    int stopped_ex;    /* worker: it did call OPENSSL_thread_stop_ex */
    long ok, failed, rounds;
    char first_error[128];
    /* main's snapshots: rounds before the forced failure, and while it ran */
    long ok_before, failed_before, ok_during, failed_during;
    int exited_before_failure;
};

static void worker_init(struct worker *w, const char *name, int calls_thread_stop,
                        OSSL_LIB_CTX *ctx)
{
    memset(w, 0, sizeof(*w));
    w->name = name;
    w->calls_thread_stop = calls_thread_stop;
    w->ctx = ctx;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
}

/* One round of real work: random bytes and an HMAC, both through the context. */
static int worker_round(struct worker *w)
{
    unsigned char buf[32], key[32], mac[32];
    size_t maclen = 0;
    int ok = RAND_bytes_ex(w->ctx, buf, sizeof(buf), 0) > 0
             && RAND_bytes_ex(w->ctx, key, sizeof(key), 0) > 0
             && EVP_Q_mac(w->ctx, "HMAC", "provider=fips", "SHA256", NULL, key, sizeof(key), buf,
                          sizeof(buf), mac, sizeof(mac), &maclen) != NULL;

    if (!ok && w->first_error[0] == '\0') {
        unsigned long e = ERR_peek_last_error();
        const char *r = ERR_reason_error_string(e);

        snprintf(w->first_error, sizeof(w->first_error), "%s", r != NULL ? r : "unknown error");
    }
    ERR_clear_error();
    return ok;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    void *altstack = trace_thread_start(w->name);

    pthread_mutex_lock(&w->lock);
    w->altstack = altstack;
    w->tid = (long)trace_gettid();
    while (!w->stop) {
        pthread_mutex_unlock(&w->lock);
        int ok = worker_round(w);
        pthread_mutex_lock(&w->lock);
        w->rounds++;
        if (ok)
            w->ok++;
        else
            w->failed++;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    if (w->calls_thread_stop) {
        /* As the documentation asks: free this thread's resources of that context. */
        OPENSSL_thread_stop_ex(w->ctx);
    }
    pthread_mutex_lock(&w->lock);
    w->stopped_ex = w->calls_thread_stop;
    w->parked = 1;
    pthread_cond_broadcast(&w->cond);
    while (!w->leave)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
    trace_event("worker-exiting", "thread", w->name);
    return NULL;
}

static int worker_start(struct worker *w)
{
    w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
    return w->started;
}

/* Waits until the worker has done `rounds` rounds in all, or 5 s passed. */
static void worker_wait_rounds(struct worker *w, long rounds)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&w->lock);
    while (w->rounds < rounds && pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == 0)
        ;
    pthread_mutex_unlock(&w->lock);
}

/* Main's snapshot of the rounds so far, as those before the forced failure. */
static void worker_mark_before_failure(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->ok_before = w->ok;
    w->failed_before = w->failed;
    pthread_mutex_unlock(&w->lock);
}

/* Lets the worker meet the error state (the rounds since the failure are those "during" it,
 * and 3 more), then stops it: it stops using the context and parks. */
static void worker_stop(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->ok_during = w->ok - w->ok_before;
    w->failed_during = w->failed - w->failed_before;
    pthread_mutex_unlock(&w->lock);
    worker_wait_rounds(w, w->ok_before + w->failed_before + w->ok_during + w->failed_during + 3);
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    while (!w->parked)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

/* Lets a parked worker exit and joins it; whatever its exit does happens here. A thread
 * still not gone after 5 s is stuck in its exit: it gets SIGABRT (see trace_abort_thread). */
static void worker_leave(struct worker *w)
{
    long tid;

    pthread_mutex_lock(&w->lock);
    w->leave = 1;
    tid = w->tid;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    if (tid > 0 && !trace_thread_gone((pid_t)tid, 5))
        trace_abort_thread((pid_t)tid, w->name);
    pthread_join(w->thread, NULL);
    w->joined = 1;
    trace_thread_joined(w->altstack);
    trace_event("worker-joined", "thread", w->name);
    trace_objects("worker-joined");
}

/* worker-thread's "worker" object: "before": rounds before the forced failure; "during":
 * while the self-test ran; "after": once the module was in its error state, until stopped. */
static void emit_worker(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    emit_key("worker");
    emit("{");
    emit_kv_int("rounds", w->rounds);
    emit_kv_int("ok_before_failure", w->ok_before);
    emit_kv_int("failed_before_failure", w->failed_before);
    emit_kv_int("ok_during_failure", w->ok_during);
    emit_kv_int("failed_during_failure", w->failed_during);
    emit_kv_int("ok_after_failure", w->ok - w->ok_before - w->ok_during);
    emit_kv_int("failed_after_failure", w->failed - w->failed_before - w->failed_during);
    emit_kv_str("first_error", w->first_error[0] != '\0' ? w->first_error : NULL);
    emit_kv_bool("stopped_before_free", w->parked);
    emit("}");
    pthread_mutex_unlock(&w->lock);
}

/* The new scenarios' "workers": the same counts, and what each thread did around them. */
static void emit_workers(struct worker *ws, int n)
{
    emit_key("workers");
    emit("[");
    for (int i = 0; i < n; i++) {
        struct worker *w = &ws[i];

        pthread_mutex_lock(&w->lock);
        emit(i > 0 ? ",{" : "{");
        emit_kv_str("name", w->name);
        emit_kv_int("tid", w->tid);
        emit_kv_bool("calls_thread_stop", w->calls_thread_stop);
        emit_kv_bool("called_thread_stop", w->stopped_ex);
        emit_kv_bool("exited_before_failure", w->exited_before_failure);
        emit_kv_int("rounds", w->rounds);
        emit_kv_int("ok_before_failure", w->ok_before);
        emit_kv_int("failed_before_failure", w->failed_before);
        emit_kv_int("ok_during_failure", w->ok_during);
        emit_kv_int("failed_during_failure", w->failed_during);
        emit_kv_int("ok_after_failure", w->ok - w->ok_before - w->ok_during);
        emit_kv_int("failed_after_failure", w->failed - w->failed_before - w->failed_during);
        emit_kv_str("first_error", w->first_error[0] != '\0' ? w->first_error : NULL);
        emit_kv_bool("stopped_before_free", w->parked);
        emit_kv_bool("exits_after_document", w->parked && !w->joined);
        emit("}");
        pthread_mutex_unlock(&w->lock);
    }
    emit("]");
}

/* ---------- exit-after-reload: the normal end of a process, in forked children ---------- */

struct child_exit {
    long exit_status, signal; /* -1: not that way */
    int timed_out;
};

/*
 * A child frees context B (and, with cleanup, calls OPENSSL_cleanup as a program's last
 * OpenSSL call) and returns from main. Returns 1 in the child, which must then return
 * from main; 0 in the parent, once the child ended (or was killed after 30 s).
 */
static int exit_in_child(OSSL_PROVIDER *prov_b, OSSL_LIB_CTX *b, int cleanup,
                         struct child_exit *how)
{
    pid_t pid;
    int status = 0;

    how->exit_status = how->signal = -1;
    how->timed_out = 0;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        trace_phase = cleanup ? "child-cleanup" : "child";
        trace_event("child-started", "frees", cleanup ? "B, then OPENSSL_cleanup" : "B");
        OSSL_PROVIDER_unload(prov_b);
        OSSL_LIB_CTX_free(b);
        trace_event("context-freed", NULL, NULL);
        trace_objects("context-freed");
        if (cleanup) {
            OPENSSL_cleanup();
            trace_event("openssl-cleanup-called", NULL, NULL);
            trace_objects("openssl-cleanup-called");
        }
        return 1;
    }
    trace_event_child("fork", pid, -1, -1);
    for (int i = 0; i < 3000; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return 0;
        if (i == 2999) {
            how->timed_out = 1;
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    }
    if (!how->timed_out && WIFEXITED(status))
        how->exit_status = WEXITSTATUS(status);
    else if (!how->timed_out && WIFSIGNALED(status))
        how->signal = WTERMSIG(status);
    trace_event_child("child-ended", pid, (int)how->exit_status, (int)how->signal);
    return 0;
}

static void emit_child_exit(const char *key, const struct child_exit *how)
{
    emit_key(key);
    emit("{");
    emit_kv_null_or_int("exit_status", how->exit_status);
    emit_kv_null_or_int("signal", how->signal);
    emit_kv_bool("timed_out", how->timed_out);
    emit("}");
}

/* ---------- one run of a scenario ---------- */

struct run {
    enum scenario sc;
    const char *good_cnf, *bad_cnf;
    OSSL_LIB_CTX *a, *b, *c;
    OSSL_PROVIDER *prov_a, *prov_b, *prov_c;
    EVP_MD *leaked; /* leaked-ref: never freed, that is the scenario */
    struct worker workers[POOL_SIZE];
    int n_workers;
    struct child_exit exit_plain, exit_cleanup;
    int in_child; /* this process is a forked child: it prints no document */
};

/* worker-thread and worker-no-stop: one worker, started once A works. */
static void start_worker(struct run *run)
{
    struct worker *w = &run->workers[0];
    int started;

    step_begin("worker_start");
    worker_init(w, "worker", shape_of(run->sc) == WORKER_THREAD, run->a);
    started = worker_start(w);
    if (started) {
        run->n_workers = 1;
        worker_wait_rounds(w, 3);
    }
    worker_mark_before_failure(w);
    step_end(started && w->ok_before > 0, run->prov_a, NULL);
}

/*
 * thread-pool: four workers through A. pool-1 and pool-2 finish their work and exit (are
 * joined) before the failure is forced; pool-3 and pool-4 live through the failure, the free
 * and the reload, and exit after the document. pool-1 and pool-3 call
 * OPENSSL_thread_stop_ex when they stop, pool-2 and pool-4 do not (as most pools).
 */
static const struct {
    const char *name;
    int calls_thread_stop, exits_early;
} pool_plan[POOL_SIZE] = {
    { "pool-1", 1, 1 }, { "pool-2", 0, 1 }, { "pool-3", 1, 0 }, { "pool-4", 0, 0 },
};

static void start_pool(struct run *run)
{
    int ok = 1;

    step_begin("pool_start");
    for (int i = 0; i < POOL_SIZE; i++) {
        worker_init(&run->workers[i], pool_plan[i].name, pool_plan[i].calls_thread_stop, run->a);
        if (!worker_start(&run->workers[i])) {
            ok = 0;
            break;
        }
        run->n_workers = i + 1;
    }
    for (int i = 0; i < run->n_workers; i++) {
        worker_wait_rounds(&run->workers[i], 3);
        worker_mark_before_failure(&run->workers[i]);
        ok = ok && run->workers[i].ok_before > 0;
    }
    step_end(ok && run->n_workers == POOL_SIZE, run->prov_a, NULL);

    step_begin("pool_early_exit");
    ok = 1;
    for (int i = 0; i < run->n_workers; i++) {
        struct worker *w = &run->workers[i];

        if (!pool_plan[i].exits_early)
            continue;
        pthread_mutex_lock(&w->lock);
        w->stop = 1;
        w->leave = 1; /* its work is done: it exits instead of parking */
        w->exited_before_failure = 1;
        pthread_mutex_unlock(&w->lock);
        worker_leave(w);
        worker_mark_before_failure(w); /* all its rounds were before the failure */
        ok = ok && w->joined;
    }
    for (int i = 0; i < run->n_workers; i++)
        if (!pool_plan[i].exits_early)
            worker_mark_before_failure(&run->workers[i]);
    step_end(ok, run->prov_a, NULL);
}

static void stop_workers(struct run *run)
{
    step_begin(shape_of(run->sc) == THREAD_POOL ? "pool_stop" : "worker_stop");
    for (int i = 0; i < run->n_workers; i++)
        if (!run->workers[i].exited_before_failure)
            worker_stop(&run->workers[i]);
    step_end(1, run->prov_a, NULL);
}

/* two-contexts: the context that never failed, and a reload while it still holds the module. */
static void other_context(struct run *run)
{
    int ok;

    /* The other context never failed anything itself: does it still work? */
    observe("refuses_c", run->prov_c, run->c);

    step_begin("unload_a_only");
    ok = OSSL_PROVIDER_unload(run->prov_a);
    OSSL_LIB_CTX_free(run->a);
    run->prov_a = NULL;
    run->a = NULL;
    step_end(ok, NULL, NULL);

    /* A reload while the other context still holds the module. */
    run->prov_b = reload("reload_while_c", "selftest_while_c", &run->b, run->good_cnf);
    OSSL_PROVIDER_unload(run->prov_b);
    OSSL_LIB_CTX_free(run->b);
    run->prov_b = NULL;
    run->b = NULL;
}

/* Unload and free everything of A (and C): the verdict reads the loader after this step. */
static void unload_all(struct run *run)
{
    int ok = 1;

    step_begin("unload_a");
    if (run->prov_a != NULL)
        ok = OSSL_PROVIDER_unload(run->prov_a);
    OSSL_LIB_CTX_free(run->a);
    if (run->prov_c != NULL)
        ok = OSSL_PROVIDER_unload(run->prov_c) && ok;
    OSSL_LIB_CTX_free(run->c);
    run->prov_a = run->prov_c = NULL;
    run->a = run->c = NULL;
    step_end(ok, NULL, NULL);
}

/*
 * Context A: load, fail (as the scenario says), confirm the refusal, free all,
 * unload, free A. Then observe the loader, and load into a fresh context B.
 * The last unload step is always "unload_a" and the last reload "reload_b"/"selftest_b":
 * the verdict is read from those.
 */
static void run_scenario(struct run *run)
{
    enum scenario sc = run->sc;
    enum scenario shape = shape_of(sc); /* a control runs as its partner */
    int ok;

    selftests.arm_type = OSSL_SELF_TEST_TYPE_KAT_DIGEST;
    selftests.arm_desc = OSSL_SELF_TEST_DESC_MD_SHA2;

    emit_key("steps");
    emit("[");
    run->prov_a = load_step("load_a", &run->a, sc == INTEGRITY ? run->bad_cnf : run->good_cnf,
                            sc == LOAD_KAT);
    if (sc == TWO_CONTEXTS)
        run->prov_c = load_step("load_c", &run->c, run->good_cnf, 0);

    if (run->prov_a != NULL) {
        /* With deferred self-tests the KATs run at first use: load-kat keeps them corrupted. */
        selftests.armed = sc == LOAD_KAT;
        step_begin("digest_a");
        ok = digest_works(run->a, sc == LEAKED_REF ? &run->leaked : NULL);
        selftests.armed = 0;
        step_end(ok, run->prov_a, NULL);
    }

    if (run->prov_a != NULL && (shape == WORKER_THREAD || shape == WORKER_NO_STOP))
        start_worker(run);
    if (run->prov_a != NULL && shape == THREAD_POOL)
        start_pool(run);

    if (run->prov_a != NULL && fails_on_demand(sc))
        selftest_step("fail_a", run->prov_a, NULL, 1);

    /* Let the workers meet the error state, then stop them before anything is freed. */
    if (run->n_workers > 0)
        stop_workers(run);

    /* Does the module refuse work now? (status and a digest through A) */
    if (!forces_no_failure(sc))
        observe("refuses_a", run->prov_a, run->a);
    if (sc == TWO_CONTEXTS)
        other_context(run);

    unload_all(run);
    run->prov_b = reload("reload_b", "selftest_b", &run->b, run->good_cnf);

    if (sc == EXIT_AFTER_RELOAD) {
        if (exit_in_child(run->prov_b, run->b, 0, &run->exit_plain)
            || exit_in_child(run->prov_b, run->b, 1, &run->exit_cleanup)) {
            run->in_child = 1;
            return;
        }
    }
    emit("]");
    emit_provider_versions();
    emit_kv_bool("leaked_reference", run->leaked != NULL);
    if (shape == WORKER_THREAD && run->n_workers > 0)
        emit_worker(&run->workers[0]);
    if (shape == WORKER_NO_STOP || shape == THREAD_POOL)
        emit_workers(run->workers, run->n_workers);
    if (sc == EXIT_AFTER_RELOAD) {
        emit_child_exit("exit_without_context", &run->exit_plain);
        emit_child_exit("exit_after_cleanup", &run->exit_cleanup);
        emit_kv_bool("context_alive_at_exit", run->prov_b != NULL);
        return; /* B stays loaded: how this process ends is the run's exit status */
    }
    OSSL_PROVIDER_unload(run->prov_b);
    OSSL_LIB_CTX_free(run->b);
    run->prov_b = NULL;
    run->b = NULL;
    trace_objects("free_b");
}

/* After the document: the parked workers exit, one after the other. */
static void after_document(struct run *run)
{
    for (int i = 0; i < run->n_workers; i++) {
        struct worker *w = &run->workers[i];

        if (w->joined || !w->parked)
            continue;
        worker_leave(w);
        if (shape_of(run->sc) == WORKER_THREAD)
            fprintf(stderr, "fips_probe: the worker thread exited\n");
    }
}

/* ---------- main: the command line, the document's header, the baseline, the run ---------- */

struct options {
    const char *scenario, *canary, *workdir;
    int sc;
};

static int parse_args(int argc, char **argv, struct options *opt)
{
    const char *module = NULL;

    opt->scenario = opt->canary = NULL;
    opt->workdir = "/tmp";
    opt->sc = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--scenario") == 0)
            opt->scenario = argv[i + 1];
        else if (strcmp(argv[i], "--module") == 0)
            module = argv[i + 1];
        else if (strcmp(argv[i], "--canary") == 0)
            opt->canary = argv[i + 1];
        else if (strcmp(argv[i], "--workdir") == 0)
            opt->workdir = argv[i + 1];
        else if (strcmp(argv[i], "--config") == 0 && strchr(argv[i + 1], '=') != NULL
                 && n_config_extra < MAX_EXTRA)
            config_extra[n_config_extra++] = argv[i + 1];
    }
    for (int i = 0; opt->scenario != NULL && i < N_SCENARIOS; i++)
        if (strcmp(opt->scenario, scenario_names[i]) == 0)
            opt->sc = i;
    if (opt->sc < 0 || module == NULL || realpath(module, module_path) == NULL) {
        fprintf(stderr, "usage: fips_probe --scenario {");
        for (int i = 0; i < N_SCENARIOS; i++)
            fprintf(stderr, "%s%s", i > 0 ? "|" : "", scenario_names[i]);
        fprintf(stderr, "} --module PATH [--canary PATH]\n"
                        "       [--workdir DIR] [--config KEY=VALUE]...\n");
        return 0;
    }
    return 1;
}

/* schema, scenario, module, the module's extra config, versions, libc, kernel */
static void emit_header(const struct options *opt)
{
    char libc_version[64];
    struct utsname uts;

    emit("{");
    emit_kv_int("schema", PROBE_SCHEMA);
    emit_kv_str("scenario", scenario_names[opt->sc]);
    emit_kv_str("module", module_path);
    emit_key("module_config_extra");
    emit("[");
    for (int i = 0; i < n_config_extra; i++) {
        if (i > 0)
            emit(",");
        emit_str(config_extra[i]);
    }
    emit("]");
    emit_key("versions");
    emit("{");
    emit_kv_str("openssl", OpenSSL_version(OPENSSL_VERSION));
    emit_kv_str("openssl_headers", PROBE_OPENSSL_HEADERS);
    emit_kv_str("openssl_dir", OpenSSL_version(OPENSSL_MODULES_DIR));
    emit("}");
#ifdef FIPS_PROBE_PORTABLE
    emit_key("portable");
    emit("%s", fips_portable_json());
#endif
    emit_key("libc");
    emit("{");
#ifdef __GLIBC__
    emit_kv_str("name", "glibc");
    snprintf(libc_version, sizeof(libc_version), "%s", gnu_get_libc_version());
#else
    emit_kv_str("name", "musl");
    musl_version(libc_version, sizeof(libc_version));
#endif
    emit_kv_str("version", libc_version);
    emit("}");
    if (uname(&uts) == 0)
        emit_kv_str("kernel", uts.release);
}

/* What holds before the probe loads anything; mac/sha: the module's, for its config.
 * 0 when the module's HMAC cannot be computed (the object is left open for setup_error). */
static int baseline(const struct options *opt, char *mac, size_t maclen, char *sha)
{
    int nodelete = elf_nodelete(module_path);

    emit_key("baseline");
    emit("{");
    emit_kv_tri("module_nodelete", nodelete);
    emit_kv_tri("libc_dlclose_unmaps", dlclose_unmaps(opt->canary));
    emit_kv_int("mappings", count_mappings(module_path));
    emit_kv_bool("noload_loaded", noload_says_loaded(module_path));
    if (!module_mac(mac, maclen, sha))
        return 0;
    emit_kv_str("module_sha256", sha);
    emit("}");
    ERR_clear_error();
    return 1;
}

int main(int argc, char **argv)
{
    struct options opt;
    struct run run;
    char good_cnf[PATH_MAX], bad_cnf[PATH_MAX], mac[128] = "", bad_mac[128], sha[65] = "";

#ifdef FIPS_PROBE_PORTABLE
    /* probes/portable/: --discover, or bind the libcrypto given at run time before any call. */
    int portable = fips_portable_start(argc, argv);

    if (portable >= 0)
        return portable;
#endif
    trace_install(); /* first: its atexit handler must run after OpenSSL's */
    if (!parse_args(argc, argv, &opt))
        return 2;

    /* No system config: one that activates fips in the default context
     * would share the module's mapping and state with ours. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
    trace_watch_prefix("libcrypto", "libcrypto.so");
    trace_watch("fips", module_path);
    trace_objects("start");

    emit_header(&opt);
    trace_phase = "baseline";
    if (!baseline(&opt, mac, sizeof(mac), sha)) {
        emit_kv_str("setup_error", "could not compute the module's HMAC");
        emit("}}\n");
        print_document();
        return 3;
    }

    /* A wrong module-mac: the real one with its first byte flipped. */
    snprintf(bad_mac, sizeof(bad_mac), "%s", mac);
    bad_mac[0] = bad_mac[0] == '0' ? '1' : '0';
    snprintf(good_cnf, sizeof(good_cnf), "%s/fips-good.cnf", opt.workdir);
    snprintf(bad_cnf, sizeof(bad_cnf), "%s/fips-bad-mac.cnf", opt.workdir);
    if (!write_config(good_cnf, mac) || !write_config(bad_cnf, bad_mac)) {
        fprintf(stderr, "fips_probe: cannot write configs in %s: %s\n", opt.workdir,
                strerror(errno));
        return 3;
    }

    memset(&run, 0, sizeof(run));
    run.sc = (enum scenario)opt.sc;
    run.good_cnf = good_cnf;
    run.bad_cnf = bad_cnf;
    run_scenario(&run);
    if (run.in_child) {
        trace_event("main-returning", NULL, NULL);
        return 0;
    }
    emit_kv_bool("completed", 1);
    emit("}\n");
    print_document();
    trace_phase = "after-document";
    trace_event("document-printed", NULL, NULL);

    /* Only now may the workers leave: whatever that does to the process is the exit status. */
    after_document(&run);
    trace_phase = "main-returning";
    trace_event("main-returning", NULL, NULL);
    return 0;
}
