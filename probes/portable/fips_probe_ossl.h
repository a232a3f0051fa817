/*
 * The portable probe's own view of the OpenSSL 3/4 public API: just what fips_probe.c uses,
 * written for this project (not copied from OpenSSL's headers). Compiled with
 * -DFIPS_PROBE_PORTABLE -Iprobes/portable, fips_probe.c includes <openssl/...> and gets this.
 *
 * Nothing here is linked against OpenSSL. Every function is a pointer that
 * ossl_dynamic.c fills with dlsym() from the libcrypto given at run time, so the same binary
 * works with any libcrypto.so.3 or libcrypto.so.4. The pointers carry the functions' own
 * names, so fips_probe.c compiles unchanged, but they have hidden visibility: an executable
 * exports no such symbol, so nothing of ours can interpose on libcrypto's.
 *
 * Adding a function is one line in the FIPS_PROBE_OSSL_FUNCTIONS list below:
 *   F(return type, name, (parameter types))      required: the probe refuses a libcrypto
 *                                                 without it, naming it
 *   O(return type, name, (parameter types))      optional: NULL when absent; check before use
 * Every function listed exists in OpenSSL 3.0 and in 4.0 (util/libcrypto.num of 3.0.20 and
 * 4.0.2); the types and constant values below are the public ABI of both.
 */
#ifndef FIPS_PROBE_OSSL_H
#define FIPS_PROBE_OSSL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define FIPS_PROBE_HIDDEN __attribute__((visibility("hidden")))
#else
#define FIPS_PROBE_HIDDEN
#endif

/* ---------- types: opaque, except OSSL_PARAM whose layout is public ABI ---------- */

typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;
typedef struct ossl_provider_st OSSL_PROVIDER;
typedef struct evp_md_st EVP_MD;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct engine_st ENGINE;
typedef struct ossl_init_settings_st OPENSSL_INIT_SETTINGS;

typedef struct ossl_param_st {
    const char *key;        /* parameter name */
    unsigned int data_type; /* OSSL_PARAM_INTEGER, ... */
    void *data;             /* what is passed in or out */
    size_t data_size;       /* bytes at data */
    size_t return_size;     /* bytes returned, or OSSL_PARAM_UNMODIFIED */
} OSSL_PARAM;

typedef int(OSSL_CALLBACK)(const OSSL_PARAM params[], void *arg);

/* ---------- the functions resolved at run time ---------- */

#define FIPS_PROBE_OSSL_FUNCTIONS(F, O)                                                        \
    F(int, OPENSSL_init_crypto, (uint64_t, const OPENSSL_INIT_SETTINGS *))                     \
    F(void, OPENSSL_cleanup, (void))                                                           \
    F(void, OPENSSL_thread_stop_ex, (OSSL_LIB_CTX *))                                          \
    F(const char *, OpenSSL_version, (int))                                                    \
    F(unsigned char *, OPENSSL_hexstr2buf, (const char *, long *))                             \
    F(void, CRYPTO_free, (void *, const char *, int))                                          \
    F(OSSL_LIB_CTX *, OSSL_LIB_CTX_new, (void))                                                \
    F(int, OSSL_LIB_CTX_load_config, (OSSL_LIB_CTX *, const char *))                           \
    F(void, OSSL_LIB_CTX_free, (OSSL_LIB_CTX *))                                               \
    F(void, OSSL_SELF_TEST_set_callback, (OSSL_LIB_CTX *, OSSL_CALLBACK *, void *))            \
    F(OSSL_PROVIDER *, OSSL_PROVIDER_load, (OSSL_LIB_CTX *, const char *))                     \
    F(int, OSSL_PROVIDER_unload, (OSSL_PROVIDER *))                                            \
    F(int, OSSL_PROVIDER_available, (OSSL_LIB_CTX *, const char *))                            \
    F(int, OSSL_PROVIDER_self_test, (const OSSL_PROVIDER *))                                   \
    F(int, OSSL_PROVIDER_get_params, (const OSSL_PROVIDER *, OSSL_PARAM *))                    \
    F(OSSL_PARAM, OSSL_PARAM_construct_int, (const char *, int *))                             \
    F(OSSL_PARAM, OSSL_PARAM_construct_utf8_ptr, (const char *, char **, size_t))              \
    F(OSSL_PARAM, OSSL_PARAM_construct_end, (void))                                            \
    F(const OSSL_PARAM *, OSSL_PARAM_locate_const, (const OSSL_PARAM *, const char *))         \
    F(int, OSSL_PARAM_modified, (const OSSL_PARAM *))                                          \
    F(EVP_MD *, EVP_MD_fetch, (OSSL_LIB_CTX *, const char *, const char *))                    \
    F(void, EVP_MD_free, (EVP_MD *))                                                           \
    F(int, EVP_Digest,                                                                         \
      (const void *, size_t, unsigned char *, unsigned int *, const EVP_MD *, ENGINE *))       \
    F(unsigned char *, EVP_Q_mac,                                                              \
      (OSSL_LIB_CTX *, const char *, const char *, const char *, const OSSL_PARAM *,           \
       const void *, size_t, const unsigned char *, size_t, unsigned char *, size_t,           \
       size_t *))                                                                              \
    F(int, RAND_bytes_ex, (OSSL_LIB_CTX *, unsigned char *, size_t, unsigned int))             \
    F(unsigned long, ERR_get_error_all,                                                        \
      (const char **, int *, const char **, const char **, int *))                             \
    F(unsigned long, ERR_peek_last_error, (void))                                              \
    F(const char *, ERR_reason_error_string, (unsigned long))                                  \
    F(const char *, ERR_lib_error_string, (unsigned long))                                     \
    F(void, ERR_clear_error, (void))

#define FIPS_PROBE_OSSL_DECLARE(ret, name, params) extern FIPS_PROBE_HIDDEN ret(*name) params;
FIPS_PROBE_OSSL_FUNCTIONS(FIPS_PROBE_OSSL_DECLARE, FIPS_PROBE_OSSL_DECLARE)
#undef FIPS_PROBE_OSSL_DECLARE

/* Real headers make these macros; ours say the same thing in our words. */
#define OPENSSL_free(addr) CRYPTO_free((addr), __FILE__, __LINE__)

/* ---------- crypto.h ---------- */

#define OPENSSL_VERSION 0 /* OpenSSL_version() items */
#define OPENSSL_CFLAGS 1
#define OPENSSL_BUILT_ON 2
#define OPENSSL_PLATFORM 3
#define OPENSSL_DIR 4
#define OPENSSL_ENGINES_DIR 5
#define OPENSSL_VERSION_STRING 6
#define OPENSSL_FULL_VERSION_STRING 7
#define OPENSSL_MODULES_DIR 8
#define OPENSSL_CPU_INFO 9

#define OPENSSL_INIT_LOAD_CRYPTO_STRINGS 0x00000002L /* OPENSSL_init_crypto() options */
#define OPENSSL_INIT_NO_LOAD_CONFIG 0x00000080L

/* ---------- opensslv.h: there are no headers of a version here ---------- */

#define OPENSSL_VERSION_TEXT ((const char *)0) /* the document says null, as the twin's */

/* ---------- fipskey.h ---------- */

/* OpenSSL's default FIPS key, unless --fips-key gave the image's build's own. */
#define FIPS_PROBE_DEFAULT_FIPS_KEY "f4556650ac31d35461610bac4ed81b1a181b2d8a43ea2854cbae22ca74560813"
extern FIPS_PROBE_HIDDEN const char *fips_probe_fips_key;
#define FIPS_KEY_STRING fips_probe_fips_key

/* ---------- err.h ---------- */

#define ERR_TXT_MALLOCED 0x01
#define ERR_TXT_STRING 0x02
#define FIPS_PROBE_ERR_SYSTEM_FLAG 0x80000000UL /* a system error: errno in the low bits */
#define ERR_SYSTEM_ERROR(e) (((unsigned long)(e) & FIPS_PROBE_ERR_SYSTEM_FLAG) != 0)
#define ERR_LIB_SYS 2

/* An error code is lib (8 bits at 23) and reason (23 bits), or a system error's errno. */
static inline int ERR_GET_REASON(unsigned long e)
{
    return (int)(ERR_SYSTEM_ERROR(e) ? e & 0x7FFFFFFFUL : e & 0x7FFFFFUL);
}

static inline int ERR_GET_LIB(unsigned long e)
{
    return ERR_SYSTEM_ERROR(e) ? ERR_LIB_SYS : (int)((e >> 23) & 0xFFUL);
}

/* ---------- evp.h ---------- */

#define EVP_MAX_MD_SIZE 64

/* ---------- core.h / params.h ---------- */

#define OSSL_PARAM_INTEGER 1
#define OSSL_PARAM_UNSIGNED_INTEGER 2
#define OSSL_PARAM_REAL 3
#define OSSL_PARAM_UTF8_STRING 4
#define OSSL_PARAM_OCTET_STRING 5
#define OSSL_PARAM_UTF8_PTR 6
#define OSSL_PARAM_OCTET_PTR 7
#define OSSL_PARAM_UNMODIFIED ((size_t)-1)

/* ---------- core_names.h: provider parameters ---------- */

#define OSSL_PROV_PARAM_NAME "name"
#define OSSL_PROV_PARAM_VERSION "version"
#define OSSL_PROV_PARAM_BUILDINFO "buildinfo"
#define OSSL_PROV_PARAM_STATUS "status"
#define OSSL_PROV_PARAM_SELF_TEST_PHASE "st-phase"
#define OSSL_PROV_PARAM_SELF_TEST_TYPE "st-type"
#define OSSL_PROV_PARAM_SELF_TEST_DESC "st-desc"

/* ---------- self_test.h: what the self-test callback reports ---------- */

#define OSSL_SELF_TEST_PHASE_NONE "None"
#define OSSL_SELF_TEST_PHASE_START "Start"
#define OSSL_SELF_TEST_PHASE_CORRUPT "Corrupt"
#define OSSL_SELF_TEST_PHASE_PASS "Pass"
#define OSSL_SELF_TEST_PHASE_FAIL "Fail"
#define OSSL_SELF_TEST_TYPE_MODULE_INTEGRITY "Module_Integrity"
#define OSSL_SELF_TEST_TYPE_KAT_DIGEST "KAT_Digest"
#define OSSL_SELF_TEST_DESC_INTEGRITY_HMAC "HMAC"
#define OSSL_SELF_TEST_DESC_MD_SHA2 "SHA2"

/* ---------- the portable probe's hooks in fips_probe.c's main ---------- */

/* Before anything else: --discover runs discovery; otherwise binds the libcrypto of
 * --libcrypto (or the loader's libcrypto.so.3, then .so.4). Returns -1 to go on, or the
 * exit status to return (the discovery's, or 3 when no libcrypto could be bound). */
FIPS_PROBE_HIDDEN int fips_portable_start(int argc, char **argv);
/* The "portable" object of the document: which libcrypto (file, soname, version), and
 * whether module-mac and the FIPS key were given or the defaults. */
FIPS_PROBE_HIDDEN const char *fips_portable_json(void);
/* --module-mac's value, or NULL to compute it. */
FIPS_PROBE_HIDDEN const char *fips_portable_module_mac(void);

#endif
