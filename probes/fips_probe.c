/*
 * fips_probe: forces an OpenSSL 3 FIPS provider failure, frees everything,
 * watches the loader, reloads the provider, and prints what it saw as one
 * JSON document on stdout. It reports observations only; the verdict is
 * computed by fips-reload-matrix from them.
 *
 * Usage: fips_probe --scenario NAME --module PATH [--canary PATH] [--workdir DIR]
 *                   [--config KEY=VALUE]...   (extra lines for the module's config section)
 *
 * Every observation is taken in its own statement: C leaves the order of
 * evaluation of function arguments unspecified.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/fipskey.h>
#include <openssl/opensslv.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/self_test.h>
#include <pthread.h>
#include <time.h>

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

/* ---------- self-test callback: counts events, corrupts one test on demand ---------- */

struct st_counts {
    long starts, passes, fails, corrupted;
};

static struct {
    struct st_counts n;
    const char *arm_type, *arm_desc; /* corrupt this test while armed */
    int armed;
    char failed[512]; /* "type/desc" of failed tests since the step began, comma separated */
} st;

static const char *param_str(const OSSL_PARAM *params, const char *key)
{
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, key);

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
        st.n.starts++;
    } else if (strcmp(phase, OSSL_SELF_TEST_PHASE_PASS) == 0) {
        st.n.passes++;
    } else if (strcmp(phase, OSSL_SELF_TEST_PHASE_FAIL) == 0) {
        size_t used = strlen(st.failed);

        st.n.fails++;
        snprintf(st.failed + used, sizeof(st.failed) - used, "%s%s/%s", used ? "," : "", type, desc);
    } else if (strcmp(phase, OSSL_SELF_TEST_PHASE_CORRUPT) == 0 && st.armed
               && strcmp(type, st.arm_type) == 0 && strcmp(desc, st.arm_desc) == 0) {
        st.n.corrupted++;
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
    params[0] = OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, &status);
    params[1] = OSSL_PARAM_construct_end();
    if (!OSSL_PROVIDER_get_params(prov, params) || !OSSL_PARAM_modified(params))
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

/* ---------- steps ---------- */

static struct st_counts step_start;

static void step_begin(const char *name)
{
    ERR_clear_error();
    step_start = st.n;
    st.failed[0] = '\0';
    fprintf(stderr, "fips_probe: step %s\n", name);
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
    emit_kv_int("started", st.n.starts - step_start.starts);
    emit_kv_int("passed", st.n.passes - step_start.passes);
    emit_kv_int("failed", st.n.fails - step_start.fails);
    emit_kv_int("corrupted", st.n.corrupted - step_start.corrupted);
    emit_kv_str("failed_tests", st.failed);
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
}

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

/* HMAC-SHA256 of the module file under the build's FIPS key, as fipsinstall
 * computes module-mac; done in a private context with the default provider. */
static int module_mac(char *hex, size_t hexlen, char *sha_hex)
{
    FILE *f = fopen(module_path, "rb");
    unsigned char *data = NULL, *key = NULL, mac[32], sha[32];
    size_t n = 0, cap = 0, maclen = 0, i;
    long keylen = 0;
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
        key = OPENSSL_hexstr2buf(FIPS_KEY_STRING, &keylen);
        ok = key != NULL && sha256 != NULL
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
    OPENSSL_free(key);
    free(data);
    EVP_MD_free(sha256);
    OSSL_PROVIDER_unload(def);
    OSSL_LIB_CTX_free(tool);
    return ok;
}

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

static char prov_name[64], prov_version[64], prov_buildinfo[128];

/* Copied out: the strings live in the module, which may be unmapped later. */
static void read_provider_versions(OSSL_PROVIDER *prov)
{
    const char *name = NULL, *version = NULL, *buildinfo = NULL;
    OSSL_PARAM params[4];

    params[0] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, (char **)&name, 0);
    params[1] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, (char **)&version, 0);
    params[2] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, (char **)&buildinfo, 0);
    params[3] = OSSL_PARAM_construct_end();
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

/* ---------- scenarios ---------- */

enum scenario { ONDEMAND_KAT, LOAD_KAT, INTEGRITY, LEAKED_REF, NO_FAILURE, TWO_CONTEXTS, WORKER_THREAD };

static const char *const scenario_names[] = {
    "ondemand-kat", "load-kat", "integrity", "leaked-ref", "no-failure", "two-contexts", "worker-thread",
};

/* ---------- the worker thread of worker-thread ---------- */

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    OSSL_LIB_CTX *ctx;
    int stop;   /* main: finish the current round, call OPENSSL_thread_stop_ex, wait */
    int leave;  /* main: exit the thread now */
    int parked; /* worker: stopped using ctx, waiting for leave */
    long ok, failed, rounds;
    char first_error[128];
} w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* One round of real work: random bytes and an HMAC, both through the context. */
static int worker_round(OSSL_LIB_CTX *ctx)
{
    unsigned char buf[32], key[32], mac[32];
    size_t maclen = 0;
    int ok = RAND_bytes_ex(ctx, buf, sizeof(buf), 0) > 0
             && RAND_bytes_ex(ctx, key, sizeof(key), 0) > 0
             && EVP_Q_mac(ctx, "HMAC", "provider=fips", "SHA256", NULL, key, sizeof(key), buf,
                          sizeof(buf), mac, sizeof(mac), &maclen) != NULL;

    if (!ok && w.first_error[0] == '\0') {
        unsigned long e = ERR_peek_last_error();
        const char *r = ERR_reason_error_string(e);

        snprintf(w.first_error, sizeof(w.first_error), "%s", r != NULL ? r : "unknown error");
    }
    ERR_clear_error();
    return ok;
}

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&w.lock);
    while (!w.stop) {
        pthread_mutex_unlock(&w.lock);
        int ok = worker_round(w.ctx);
        pthread_mutex_lock(&w.lock);
        w.rounds++;
        if (ok)
            w.ok++;
        else
            w.failed++;
        pthread_cond_broadcast(&w.cond);
        pthread_mutex_unlock(&w.lock);
        nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
        pthread_mutex_lock(&w.lock);
    }
    pthread_mutex_unlock(&w.lock);
    /* As the documentation asks: free this thread's resources of that context. */
    OPENSSL_thread_stop_ex(w.ctx);
    pthread_mutex_lock(&w.lock);
    w.parked = 1;
    pthread_cond_broadcast(&w.cond);
    while (!w.leave)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return NULL;
}

/* Waits until the worker has done `rounds` rounds in all, or 5 s passed. */
static void worker_wait_rounds(long rounds)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&w.lock);
    while (w.rounds < rounds && pthread_cond_timedwait(&w.cond, &w.lock, &deadline) == 0)
        ;
    pthread_mutex_unlock(&w.lock);
}

/* "before": rounds before the forced failure; "during": while the self-test ran;
 * "after": once the module was in its error state, until the worker was stopped. */
static void emit_worker(long ok_before, long failed_before, long ok_during, long failed_during)
{
    pthread_mutex_lock(&w.lock);
    emit_key("worker");
    emit("{");
    emit_kv_int("rounds", w.rounds);
    emit_kv_int("ok_before_failure", ok_before);
    emit_kv_int("failed_before_failure", failed_before);
    emit_kv_int("ok_during_failure", ok_during);
    emit_kv_int("failed_during_failure", failed_during);
    emit_kv_int("ok_after_failure", w.ok - ok_before - ok_during);
    emit_kv_int("failed_after_failure", w.failed - failed_before - failed_during);
    emit_kv_str("first_error", w.first_error[0] != '\0' ? w.first_error : NULL);
    emit_kv_bool("stopped_before_free", w.parked);
    emit("}");
    pthread_mutex_unlock(&w.lock);
}

/* ---------- scenarios ---------- */

/* Loads the module into a new context; a NULL context or provider is recorded as a failure. */
static OSSL_PROVIDER *load_step(const char *name, OSSL_LIB_CTX **ctx, const char *cnf, int armed)
{
    OSSL_PROVIDER *prov;

    *ctx = new_context(cnf);
    st.armed = armed;
    step_begin(name);
    prov = *ctx != NULL ? OSSL_PROVIDER_load(*ctx, "fips") : NULL;
    st.armed = 0;
    step_end(prov != NULL, prov, NULL);
    read_provider_versions(prov);
    return prov;
}

/*
 * Context A: load, fail (as the scenario says), confirm the refusal, free all,
 * unload, free A. Then observe the loader, and load into a fresh context B.
 * The last unload step is always "unload_a" and the last reload "reload_b"/"selftest_b":
 * the verdict is read from those.
 */
static void run_scenario(enum scenario sc, const char *good_cnf, const char *bad_cnf)
{
    OSSL_LIB_CTX *a = NULL, *b = NULL, *c = NULL;
    OSSL_PROVIDER *prov_a, *prov_b, *prov_c = NULL;
    EVP_MD *leaked = NULL;
    long ok_before = 0, failed_before = 0, ok_during = 0, failed_during = 0;
    int ok, worker = 0;

    st.arm_type = OSSL_SELF_TEST_TYPE_KAT_DIGEST;
    st.arm_desc = OSSL_SELF_TEST_DESC_MD_SHA2;

    emit_key("steps");
    emit("[");
    prov_a = load_step("load_a", &a, sc == INTEGRITY ? bad_cnf : good_cnf, sc == LOAD_KAT);
    if (sc == TWO_CONTEXTS)
        prov_c = load_step("load_c", &c, good_cnf, 0);

    if (prov_a != NULL) {
        /* With deferred self-tests the KATs run at first use: load-kat keeps them corrupted. */
        st.armed = sc == LOAD_KAT;
        step_begin("digest_a");
        ok = digest_works(a, sc == LEAKED_REF ? &leaked : NULL);
        st.armed = 0;
        step_end(ok, prov_a, NULL);
    }

    if (prov_a != NULL && sc == WORKER_THREAD) {
        step_begin("worker_start");
        w.ctx = a;
        worker = pthread_create(&w.thread, NULL, worker_main, NULL) == 0;
        if (worker)
            worker_wait_rounds(3);
        pthread_mutex_lock(&w.lock);
        ok_before = w.ok;
        failed_before = w.failed;
        pthread_mutex_unlock(&w.lock);
        step_end(worker && ok_before > 0, prov_a, NULL);
    }

    if (prov_a != NULL && (sc == ONDEMAND_KAT || sc == LEAKED_REF || sc == TWO_CONTEXTS
                           || sc == WORKER_THREAD)) {
        step_begin("fail_a");
        st.armed = 1;
        ok = OSSL_PROVIDER_self_test(prov_a);
        st.armed = 0;
        step_end(ok, prov_a, NULL);
    }

    if (worker) {
        /* Let the worker meet the error state, then stop it before anything is freed. */
        step_begin("worker_stop");
        pthread_mutex_lock(&w.lock);
        ok_during = w.ok - ok_before;
        failed_during = w.failed - failed_before;
        pthread_mutex_unlock(&w.lock);
        worker_wait_rounds(ok_before + failed_before + ok_during + failed_during + 3);
        pthread_mutex_lock(&w.lock);
        w.stop = 1;
        while (!w.parked)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        step_end(1, prov_a, NULL);
    }

    if (sc != NO_FAILURE) {
        /* Does the module refuse work now? (status and a digest through A) */
        step_begin("refuses_a");
        step_end(-1, prov_a, a);
    }
    if (sc == TWO_CONTEXTS) {
        /* The other context never failed anything itself: does it still work? */
        step_begin("refuses_c");
        step_end(-1, prov_c, c);

        step_begin("unload_a_only");
        ok = OSSL_PROVIDER_unload(prov_a);
        OSSL_LIB_CTX_free(a);
        prov_a = NULL;
        a = NULL;
        step_end(ok, NULL, NULL);

        /* A reload while the other context still holds the module. */
        prov_b = load_step("reload_while_c", &b, good_cnf, 0);
        if (prov_b != NULL) {
            step_begin("selftest_while_c");
            ok = OSSL_PROVIDER_self_test(prov_b);
            step_end(ok, prov_b, b);
        }
        OSSL_PROVIDER_unload(prov_b);
        OSSL_LIB_CTX_free(b);
        b = NULL;
    }

    step_begin("unload_a");
    ok = 1;
    if (prov_a != NULL)
        ok = OSSL_PROVIDER_unload(prov_a);
    OSSL_LIB_CTX_free(a);
    if (prov_c != NULL)
        ok = OSSL_PROVIDER_unload(prov_c) && ok;
    OSSL_LIB_CTX_free(c);
    step_end(ok, NULL, NULL);

    prov_b = load_step("reload_b", &b, good_cnf, 0);
    if (prov_b != NULL) {
        step_begin("selftest_b");
        ok = OSSL_PROVIDER_self_test(prov_b);
        step_end(ok, prov_b, b);
    }
    emit("]");
    emit_provider_versions();
    emit_kv_bool("leaked_reference", leaked != NULL);
    if (worker)
        emit_worker(ok_before, failed_before, ok_during, failed_during);

    OSSL_PROVIDER_unload(prov_b);
    OSSL_LIB_CTX_free(b);
    /* "leaked" stays alive on purpose: that is the scenario. */
}

static void worker_leave(void)
{
    pthread_mutex_lock(&w.lock);
    w.leave = 1;
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.lock);
    pthread_join(w.thread, NULL);
    fprintf(stderr, "fips_probe: the worker thread exited\n");
}

static int dlclose_unmaps(const char *canary)
{
    char real[PATH_MAX];
    void *h;
    int before;

    if (canary == NULL || realpath(canary, real) == NULL || (h = dlopen(real, RTLD_NOW)) == NULL)
        return -1;
    before = count_mappings(real);
    dlclose(h);
    if (before <= 0)
        return -1;
    return count_mappings(real) == 0;
}

int main(int argc, char **argv)
{
    const char *scenario = NULL, *module = NULL, *canary = NULL, *workdir = "/tmp";
    char good_cnf[PATH_MAX], bad_cnf[PATH_MAX], mac[128] = "", bad_mac[128], sha[65] = "";
    char libc_version[64];
    struct utsname uts;
    int sc = -1, nodelete;

#ifdef FIPS_PROBE_PORTABLE
    /* probes/portable/: --discover, or bind the libcrypto given at run time before any call. */
    int portable = fips_portable_start(argc, argv);

    if (portable >= 0)
        return portable;
#endif
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--scenario") == 0)
            scenario = argv[i + 1];
        else if (strcmp(argv[i], "--module") == 0)
            module = argv[i + 1];
        else if (strcmp(argv[i], "--canary") == 0)
            canary = argv[i + 1];
        else if (strcmp(argv[i], "--workdir") == 0)
            workdir = argv[i + 1];
        else if (strcmp(argv[i], "--config") == 0 && strchr(argv[i + 1], '=') != NULL
                 && n_config_extra < MAX_EXTRA)
            config_extra[n_config_extra++] = argv[i + 1];
    }
    for (int i = 0; scenario != NULL && i < (int)(sizeof(scenario_names) / sizeof(*scenario_names)); i++)
        if (strcmp(scenario, scenario_names[i]) == 0)
            sc = i;
    if (sc < 0 || module == NULL || realpath(module, module_path) == NULL) {
        fprintf(stderr, "usage: fips_probe --scenario {ondemand-kat|load-kat|integrity|leaked-ref|"
                        "no-failure|two-contexts|worker-thread} --module PATH [--canary PATH]\n"
                        "       [--workdir DIR] [--config KEY=VALUE]...\n");
        return 2;
    }

    /* No system config: one that activates fips in the default context
     * would share the module's mapping and state with ours. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);

    emit("{");
    emit_kv_int("schema", PROBE_SCHEMA);
    emit_kv_str("scenario", scenario_names[sc]);
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
    emit_kv_str("openssl_headers", OPENSSL_VERSION_TEXT);
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

    nodelete = elf_nodelete(module_path);
    emit_key("baseline");
    emit("{");
    emit_kv_tri("module_nodelete", nodelete);
    emit_kv_tri("libc_dlclose_unmaps", dlclose_unmaps(canary));
    emit_kv_int("mappings", count_mappings(module_path));
    emit_kv_bool("noload_loaded", noload_says_loaded(module_path));
    if (!module_mac(mac, sizeof(mac), sha)) {
        emit_kv_str("setup_error", "could not compute the module's HMAC");
        emit("}}\n");
        fwrite(out, 1, out_len, stdout);
        return 3;
    }
    emit_kv_str("module_sha256", sha);
    emit("}");
    ERR_clear_error();

    /* A wrong module-mac: the real one with its first byte flipped. */
    snprintf(bad_mac, sizeof(bad_mac), "%s", mac);
    bad_mac[0] = bad_mac[0] == '0' ? '1' : '0';
    snprintf(good_cnf, sizeof(good_cnf), "%s/fips-good.cnf", workdir);
    snprintf(bad_cnf, sizeof(bad_cnf), "%s/fips-bad-mac.cnf", workdir);
    if (!write_config(good_cnf, mac) || !write_config(bad_cnf, bad_mac)) {
        fprintf(stderr, "fips_probe: cannot write configs in %s: %s\n", workdir, strerror(errno));
        return 3;
    }

    run_scenario((enum scenario)sc, good_cnf, bad_cnf);
    emit_kv_bool("completed", 1);
    emit("}\n");
    fwrite(out, 1, out_len, stdout);
    fflush(stdout);
    /* Only now may the worker leave: whatever that does to the process is the exit status. */
    if (sc == WORKER_THREAD && w.parked)
        worker_leave();
    return 0;
}
