/*
 * fips_probe --discover [--libcrypto P] [--modules DIR] [--fips-config F] [--exe PATH]...
 *
 * Looks, inside the image and with the image's own environment, for what a process there
 * would use of OpenSSL: the libc, every libcrypto.so.3 / libcrypto.so.4 the loader or the usual
 * places offer (and how each was found), fips.so candidates, and the module configuration
 * files, whose small texts are included so the tool can read them. Every path tried goes into
 * the document with what was found there, so an image without OpenSSL 3 or without a FIPS
 * provider can be told exactly what was looked for and where. Prints one JSON document;
 * exit 0 when it could look at all (whatever it found), 2 on bad usage.
 *
 * Each libcrypto found is opened in a child process of its own (fork, dlopen, read its
 * version and directories, exit): a constructor that crashes or hangs, or two libcryptos that
 * should not share a process, cannot spoil the rest of the document.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "discover.h"
#include "elfinfo.h"
#include "jsonw.h"

#define DISCOVERY_SCHEMA 1
#define MAX_FROM 8          /* reasons kept per path */
#define MAX_TRIED 512       /* paths tried per kind */
#define MAX_DIRS 256        /* directories searched for libcrypto */
#define MAX_GLOB 64         /* entries taken from one wildcard or one included directory */
#define MAX_CONF_FILES 32   /* configuration files read, includes counted */
#define MAX_TEXT 65536      /* bytes of a configuration file's text put in the document */
#define MAX_LDCONF_DEPTH 8  /* ld.so.conf include nesting */
#define MAX_LDCONF_FILES 64 /* ld.so.conf files read in all: ten self-includes fan out */
#define DEFAULT_DIRS 16     /* places in dirs[] kept for the loader's default directories */
#define CHILD_SECONDS 10    /* a libcrypto's child process may take this long */
#define CHILDREN_SECONDS 40 /* and all of them together: discovery runs under a timeout */
#define MAX_REPLY 16384     /* bytes of a child's reply read, at most */

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#endif

/* snprintf that says whether it all fit: a path cut short must not be tried as a path. */
__attribute__((format(printf, 3, 4))) static int fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    int n;

    va_start(ap, f);
    n = vsnprintf(buf, len, f, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < len;
}

static const char *const sonames[] = { "libcrypto.so.3", "libcrypto.so.4" };

/* ---------- paths tried, and files found, each with every reason it was looked at ---------- */

struct entry {
    char path[PATH_MAX];
    char real[PATH_MAX];
    char *from[MAX_FROM]; /* why it was looked at: "LD_LIBRARY_PATH", "RUNPATH of X", ... */
    int n_from;
    char result[200]; /* tried: "found", "absent", why not usable; found: "" */
};

struct list {
    struct entry *e;
    int n, cap, dropped;
};

static struct entry *list_add(struct list *l, const char *path, const char *from)
{
    struct entry *e = NULL;

    for (int i = 0; i < l->n; i++)
        if (strcmp(l->e[i].path, path) == 0)
            e = &l->e[i];
    if (e == NULL) {
        if (l->n == l->cap) {
            if (l->cap >= MAX_TRIED) {
                l->dropped++;
                return NULL;
            }
            l->cap = l->cap ? l->cap * 2 : 16;
            if ((l->e = realloc(l->e, (size_t)l->cap * sizeof(*l->e))) == NULL)
                abort();
        }
        e = &l->e[l->n++];
        memset(e, 0, sizeof(*e));
        snprintf(e->path, sizeof(e->path), "%s", path);
    }
    for (int i = 0; i < e->n_from; i++)
        if (strcmp(e->from[i], from) == 0)
            return e;
    if (e->n_from < MAX_FROM && (e->from[e->n_from] = strdup(from)) != NULL)
        e->n_from++;
    return e;
}

static void emit_from(struct jw *j, const struct entry *e)
{
    jw_open(j, "from", '[');
    for (int i = 0; i < e->n_from; i++)
        jw_astr(j, e->from[i]);
    jw_close(j, ']');
}

static void emit_tried(struct jw *j, const struct list *l)
{
    jw_open(j, "tried", '[');
    for (int i = 0; i < l->n; i++) {
        jw_open(j, NULL, '{');
        jw_kstr(j, "path", l->e[i].path);
        emit_from(j, &l->e[i]);
        jw_kstr(j, "result", l->e[i].result);
        jw_close(j, '}');
    }
    jw_close(j, ']');
    jw_klong(j, "tried_dropped", l->dropped);
}

int discover_is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int discover_is_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Is there a readable regular file at path? 1 with *real set, or 0 with why not. */
static int usable_file(const char *path, char *real, size_t reallen, char *why, size_t whylen)
{
    struct stat st;
    char buf[PATH_MAX];

    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            snprintf(why, whylen, lstat(path, &st) == 0 ? "a dangling symbolic link" : "absent");
        else if (errno == ELOOP)
            snprintf(why, whylen, "a symbolic link loop");
        else
            snprintf(why, whylen, "cannot stat: %s", strerror(errno));
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return 0;
    }
    if (access(path, R_OK) != 0) {
        snprintf(why, whylen, "not readable by this user: %s", strerror(errno));
        return 0;
    }
    if (realpath(path, buf) == NULL) {
        snprintf(why, whylen, "cannot resolve: %s", strerror(errno));
        return 0;
    }
    snprintf(real, reallen, "%s", buf);
    snprintf(why, whylen, "found");
    return 1;
}

/* Tries a path for one kind of file: always recorded in tried, and in found (keyed by the file
 * it resolves to) when usable. Returns the found entry or NULL. */
static struct entry *try_path(struct list *tried, struct list *found, const char *path,
                              const char *from)
{
    char real[PATH_MAX], why[200];
    struct entry *t = list_add(tried, path, from), *f;

    if (t != NULL && t->result[0] != '\0' && strcmp(t->result, "found") != 0)
        return NULL; /* tried before, for another reason, and not usable */
    if (!usable_file(path, real, sizeof(real), why, sizeof(why))) {
        if (t != NULL)
            snprintf(t->result, sizeof(t->result), "%s", why);
        return NULL;
    }
    if (t != NULL)
        snprintf(t->result, sizeof(t->result), "found");
    if ((f = list_add(found, real, from)) != NULL)
        snprintf(f->real, sizeof(f->real), "%s", real);
    /* the first name it was found under is the one reported; the real file is the key */
    if (f != NULL && f->result[0] == '\0')
        snprintf(f->result, sizeof(f->result), "%s", path);
    return f;
}

/* ---------- directories the loader searches ---------- */

struct dir {
    char path[PATH_MAX];
    char from[PATH_MAX + 64];
};

static struct dir dirs[MAX_DIRS];
static int n_dirs, dirs_dropped;

/* What was dropped, by where it came from (LD_LIBRARY_PATH, RUNPATH of X, ...): said, never
 * silent. The last slot takes every other source. */
#define MAX_DROP_SOURCES 8
static struct {
    char from[PATH_MAX + 64];
    int count;
} drops[MAX_DROP_SOURCES];
static int n_drops;

static void dropped_dir(const char *from)
{
    int i;

    dirs_dropped++;
    for (i = 0; i < n_drops; i++)
        if (strcmp(drops[i].from, from) == 0)
            break;
    if (i == n_drops) {
        if (n_drops == MAX_DROP_SOURCES)
            i = MAX_DROP_SOURCES - 1;
        else
            snprintf(drops[n_drops++].from, sizeof(drops[0].from), "%s", from);
    }
    drops[i].count++;
}

/* A directory to search. The loader's defaults (is_default) always get a place: the other
 * sources (LD_LIBRARY_PATH, RUNPATH, ld.so.conf, the usual places) stop DEFAULT_DIRS short
 * of the end. */
static void add_dir_as(const char *path, const char *from, int is_default)
{
    if (path[0] == '\0')
        return;
    for (int i = 0; i < n_dirs; i++)
        if (strcmp(dirs[i].path, path) == 0 && strcmp(dirs[i].from, from) == 0)
            return; /* listed twice by one source: searched once */
    if (n_dirs >= (is_default ? MAX_DIRS : MAX_DIRS - DEFAULT_DIRS)) {
        dropped_dir(from);
        return;
    }
    snprintf(dirs[n_dirs].path, sizeof(dirs[0].path), "%s", path);
    snprintf(dirs[n_dirs].from, sizeof(dirs[0].from), "%s", from);
    n_dirs++;
}

static void add_dir(const char *path, const char *from)
{
    add_dir_as(path, from, 0);
}

/* Each element of a ':'-separated list (LD_LIBRARY_PATH, a RUNPATH), $ORIGIN expanded. */
static void add_dir_list_as(const char *list, const char *origin, const char *from, int is_default);

static void add_dir_list(const char *list, const char *origin, const char *from)
{
    add_dir_list_as(list, origin, from, 0);
}

static void add_dir_list_as(const char *list, const char *origin, const char *from, int is_default)
{
    char *copy = strdup(list), *save = NULL;

    if (copy == NULL)
        abort();
    for (char *d = strtok_r(copy, ":;", &save); d != NULL; d = strtok_r(NULL, ":;", &save)) {
        char buf[PATH_MAX];
        const char *o = strstr(d, "$ORIGIN") != NULL ? "$ORIGIN" : strstr(d, "${ORIGIN}") != NULL ? "${ORIGIN}" : NULL;

        if (o != NULL && origin != NULL) {
            const char *at = strstr(d, o);

            if (fmt(buf, sizeof(buf), "%.*s%s%s", (int)(at - d), d, origin, at + strlen(o)))
                add_dir_as(buf, from, is_default);
        } else {
            add_dir_as(d, from, is_default); /* $LIB, $PLATFORM stay as they are: no such dir */
        }
    }
    free(copy);
}

#ifdef __GLIBC__
/* glibc's /etc/ld.so.conf: directories, "include GLOB" lines (relative to the file's directory)
 * and hwcap lines, which name no directory. */
static char ldconf_read[MAX_LDCONF_FILES][PATH_MAX]; /* the files read, by real path */
static int n_ldconf_read;

static void read_ld_so_conf(const char *path, int depth, struct jw *files)
{
    FILE *f;
    char line[PATH_MAX + 32], from[PATH_MAX + 64], why[160], real[PATH_MAX];

    jw_open(files, NULL, '{');
    jw_kstr(files, "path", path);
    if (depth > MAX_LDCONF_DEPTH) {
        jw_kstr(files, "result", "not read: includes nested too deep");
        jw_close(files, '}');
        return;
    }
    if (realpath(path, real) == NULL)
        snprintf(real, sizeof(real), "%s", path);
    for (int i = 0; i < n_ldconf_read; i++)
        if (strcmp(ldconf_read[i], real) == 0) {
            jw_kstr(files, "result", "not read again: included before (an include loop?)");
            jw_close(files, '}');
            return;
        }
    if (n_ldconf_read == MAX_LDCONF_FILES) {
        fmt(why, sizeof(why), "not read: more than %d files included", MAX_LDCONF_FILES);
        jw_kstr(files, "result", why);
        jw_close(files, '}');
        return;
    }
    /* never a plain fopen: a FIFO here would block discovery until its timeout */
    if ((f = open_regular(path, why, sizeof(why))) == NULL) {
        jw_kstr(files, "result", why);
        jw_close(files, '}');
        return;
    }
    snprintf(ldconf_read[n_ldconf_read++], sizeof(ldconf_read[0]), "%s", real);
    jw_kstr(files, "result", "read");
    jw_close(files, '}');
    fmt(from, sizeof(from), "ld.so.conf: %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = line, *end;

        s[strcspn(s, "#\n")] = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        for (end = s + strlen(s); end > s && (end[-1] == ' ' || end[-1] == '\t'); end--)
            end[-1] = '\0';
        if (*s == '\0' || strncmp(s, "hwcap", 5) == 0)
            continue;
        if (strncmp(s, "include", 7) == 0 && (s[7] == ' ' || s[7] == '\t')) {
            char pattern[PATH_MAX * 2];
            glob_t g;

            s += 8;
            while (*s == ' ' || *s == '\t')
                s++;
            if (*s == '/') {
                snprintf(pattern, sizeof(pattern), "%s", s);
            } else {
                const char *slash = strrchr(path, '/');

                snprintf(pattern, sizeof(pattern), "%.*s/%s", (int)(slash - path), path, s);
            }
            if (glob(pattern, 0, NULL, &g) == 0) {
                for (size_t i = 0; i < g.gl_pathc && i < MAX_GLOB; i++)
                    read_ld_so_conf(g.gl_pathv[i], depth + 1, files);
                globfree(&g);
            }
            continue;
        }
        /* a directory, possibly "dir=TYPE" from old libc5 days */
        s[strcspn(s, "= \t")] = '\0';
        add_dir(s, from);
    }
    fclose(f);
}

#else
/* musl: /etc/ld-musl-ARCH.path holds the whole search path (newlines or ':'); without it the
 * default is /lib:/usr/local/lib:/usr/lib. */
static void read_musl_path(struct jw *files)
{
    const char *path = "/etc/ld-musl-" FIPS_PROBE_ARCH ".path";
    char buf[8192], why[160];
    FILE *f = open_regular(path, why, sizeof(why));
    size_t n;

    jw_open(files, NULL, '{');
    jw_kstr(files, "path", path);
    if (f == NULL) {
        jw_kstr(files, "result", why);
        jw_close(files, '}');
        add_dir_list_as("/lib:/usr/local/lib:/usr/lib", NULL,
                        "musl's default path (no usable /etc/ld-musl-" FIPS_PROBE_ARCH ".path)", 1);
        return;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    jw_kstr(files, "result", "read");
    jw_close(files, '}');
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '\n')
            *p = ':';
    add_dir_list(buf, NULL, "ld-musl path file");
}
#endif

/* ---------- the libc ---------- */

static void own_loader(char *out, size_t len)
{
    struct elfinfo self;

    out[0] = '\0';
    if (elfinfo_read("/proc/self/exe", &self) == 0)
        snprintf(out, len, "%s", self.interp);
}

static void libc_version(char *buf, size_t len, const char *loader)
{
#ifdef __GLIBC__
    (void)loader;
    snprintf(buf, len, "%s", gnu_get_libc_version());
#else
    /* musl has no version API: its loader prints the version when run by itself. */
    int fds[2];
    pid_t pid;

    snprintf(buf, len, "unknown");
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
#endif
}

/* ---------- one libcrypto, looked at in a child process ---------- */

struct crypto_facts {
    int opened;
    char error[512];
    char version[256], openssl_dir[PATH_MAX + 32], modules_dir[PATH_MAX + 32];
    char missing[128]; /* the first function the probe needs that it lacks */
    char mapped[PATH_MAX]; /* the file the loader mapped (for a bare name) */
};

/* "MODULESDIR: \"/x\"" -> "/x" */
static void quoted(const char *text, char *out, size_t len)
{
    const char *a = strchr(text, '"'), *b = a != NULL ? strrchr(a + 1, '"') : NULL;

    out[0] = '\0';
    if (a != NULL && b != NULL && b > a)
        snprintf(out, len, "%.*s", (int)(b - a - 1), a + 1);
}

/* One field of the child's reply: "key<TAB>value<LF>", the value escaped (\\ \n \t \r) so that
 * nothing a library returns (a version string with a newline) can add a line of its own. */
static void put_field(FILE *out, const char *key, const char *value)
{
    fprintf(out, "%s\t", key);
    for (const char *p = value != NULL ? value : ""; *p != '\0'; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p == '\r')
            fputs("\\r", out);
        else
            fputc(*p, out);
    }
    fputc('\n', out);
}

/* put_field's escapes undone, in place */
static void unescape(char *s)
{
    char *w = s;

    for (char *r = s; *r != '\0'; r++) {
        if (*r == '\\' && r[1] != '\0') {
            r++;
            *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r == 'r' ? '\r' : *r;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static void child_look(const char *path, int fd)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const char *(*version)(int);
    size_t n;
    const char *const *names = fips_probe_ossl_required_names(&n);
    FILE *out = fdopen(fd, "w");
    Dl_info info;

    if (out == NULL)
        _exit(1);
    if (h == NULL) {
        const char *e = dlerror();

        put_field(out, "error", e != NULL ? e : "dlopen failed");
        fclose(out);
        _exit(0);
    }
    put_field(out, "opened", "1");
    *(void **)&version = dlsym(h, "OpenSSL_version");
    if (version != NULL) {
        put_field(out, "version", version(0));
        put_field(out, "openssl_dir", version(4));
        put_field(out, "modules_dir", version(8));
        if (dladdr(*(void **)&version, &info) != 0 && info.dli_fname != NULL)
            put_field(out, "mapped", info.dli_fname);
    }
    for (size_t i = 0; i < n; i++)
        if (dlsym(h, names[i]) == NULL) {
            put_field(out, "missing", names[i]);
            break;
        }
    fclose(out);
    _exit(0);
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double children_left = CHILDREN_SECONDS; /* what all the children may still take */

/* The child's reply, read with a deadline of the parent's own (the child's alarm can be
 * blocked or ignored by the library it opens, and a process it started can hold the pipe
 * open), and at most MAX_REPLY bytes of it. 0: read to its end; 1: the deadline passed;
 * 2: the reply was longer than MAX_REPLY. */
static int read_reply(int fd, double deadline, char *reply, size_t *got)
{
    *got = 0;
    for (;;) {
        double left = deadline - now_seconds();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char chunk[4096];
        ssize_t n;
        int r;

        if (left <= 0)
            return 1;
        r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return 1;
        if (r < 0)
            return 0;
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        if (*got + (size_t)n > MAX_REPLY) {
            memcpy(reply + *got, chunk, MAX_REPLY - *got);
            *got = MAX_REPLY;
            return 2;
        }
        memcpy(reply + *got, chunk, (size_t)n);
        *got += (size_t)n;
    }
}

static void look_at_libcrypto(const char *path, struct crypto_facts *cf)
{
    int fds[2], status = 0, how;
    pid_t pid;
    char *reply, *save = NULL;
    size_t got;
    double started = now_seconds(), seconds;

    memset(cf, 0, sizeof(*cf));
    seconds = children_left < CHILD_SECONDS ? children_left : CHILD_SECONDS;
    if (seconds < 1) {
        snprintf(cf->error, sizeof(cf->error), "not opened: discovery's %d s for opening "
                 "libraries were used up by the others", CHILDREN_SECONDS);
        return;
    }
    if (pipe(fds) != 0) {
        snprintf(cf->error, sizeof(cf->error), "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        snprintf(cf->error, sizeof(cf->error), "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        setpgid(0, 0); /* a group of its own: whatever it starts is killed with it */
        close(fds[0]);
        alarm((unsigned)seconds);
        child_look(path, fds[1]);
    }
    setpgid(pid, pid);
    close(fds[1]);
    if ((reply = malloc(MAX_REPLY + 1)) == NULL)
        abort();
    how = read_reply(fds[0], started + seconds + 1, reply, &got);
    close(fds[0]);
    reply[got] = '\0';
    if (how != 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    waitpid(pid, &status, 0);
    children_left -= now_seconds() - started;
    for (char *line = strtok_r(reply, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');

        if (tab == NULL)
            continue;
        *tab++ = '\0';
        unescape(tab);
        if (strcmp(line, "opened") == 0)
            cf->opened = 1;
        else if (strcmp(line, "error") == 0)
            snprintf(cf->error, sizeof(cf->error), "%s", tab);
        else if (strcmp(line, "version") == 0)
            snprintf(cf->version, sizeof(cf->version), "%s", tab);
        else if (strcmp(line, "openssl_dir") == 0)
            snprintf(cf->openssl_dir, sizeof(cf->openssl_dir), "%s", tab);
        else if (strcmp(line, "modules_dir") == 0)
            snprintf(cf->modules_dir, sizeof(cf->modules_dir), "%s", tab);
        else if (strcmp(line, "missing") == 0)
            snprintf(cf->missing, sizeof(cf->missing), "%s", tab);
        else if (strcmp(line, "mapped") == 0)
            snprintf(cf->mapped, sizeof(cf->mapped), "%s", tab);
    }
    free(reply);
    if (how == 1 || (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM))
        snprintf(cf->error, sizeof(cf->error), "timed out: the process that opened it did not "
                 "finish within %.0f s (a constructor that blocks?), and was killed", seconds);
    else if (how == 2)
        snprintf(cf->error, sizeof(cf->error), "its reply was over %d bytes: cut, and the "
                 "process that opened it killed", MAX_REPLY);
    else if (WIFSIGNALED(status) && cf->error[0] == '\0')
        snprintf(cf->error, sizeof(cf->error), "the process that opened it was killed by signal %d",
                 WTERMSIG(status));
}

/* ---------- configuration files ---------- */

struct conf_text {
    char *text;
    size_t len;
    long long size;
    int truncated;
};

static void read_text(const char *path, struct conf_text *ct)
{
    char why[160];
    FILE *f = open_regular(path, why, sizeof(why));
    struct stat st;

    memset(ct, 0, sizeof(*ct));
    ct->size = -1;
    if (f == NULL)
        return;
    if (fstat(fileno(f), &st) == 0)
        ct->size = (long long)st.st_size;
    if ((ct->text = malloc(MAX_TEXT + 1)) == NULL)
        abort();
    ct->len = fread(ct->text, 1, MAX_TEXT, f);
    ct->truncated = fgetc(f) != EOF;
    ct->text[ct->len] = '\0';
    fclose(f);
}

/* The ".include" and ".includedir" lines of a config text; each include is tried as a config
 * file (a directory: its *.cnf and *.conf files, as OpenSSL takes them). */
static void follow_includes(struct jw *j, const struct conf_text *ct, const char *conf_path,
                            struct list *tried, struct list *found)
{
    char includedir[PATH_MAX] = "";
    const char *env_dir = getenv("OPENSSL_CONF_INCLUDE");
    char *copy = strdup(ct->text != NULL ? ct->text : ""), *save = NULL;

    if (copy == NULL)
        abort();
    jw_open(j, "includes", '[');
    for (char *line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *s = line, path[PATH_MAX * 2], from[PATH_MAX + 64];
        int is_dir_line;

        while (*s == ' ' || *s == '\t')
            s++;
        if (strncmp(s, ".include", 8) != 0)
            continue;
        is_dir_line = strncmp(s, ".includedir", 11) == 0;
        s += is_dir_line ? 11 : 8;
        while (*s == ' ' || *s == '\t' || *s == '=')
            s++;
        s[strcspn(s, " \t\r#")] = '\0';
        if (*s == '\0')
            continue;
        if (is_dir_line) {
            snprintf(includedir, sizeof(includedir), "%s", s);
            continue;
        }
        /* Relative: under .includedir, else OPENSSL_CONF_INCLUDE, else the process's working
         * directory (OpenSSL's rule); the config file's own directory is tried too. */
        jw_open(j, NULL, '{');
        jw_kstr(j, "raw", s);
        jw_open(j, "tried", '[');
        char seen[3][PATH_MAX * 2];
        int n_seen = 0;

        for (int k = 0; k < 3; k++) {
            const char *base = k == 0 ? (includedir[0] != '\0' ? includedir : env_dir) : NULL;

            if (s[0] == '/' && k > 0)
                break;
            if (s[0] == '/') {
                snprintf(path, sizeof(path), "%s", s);
            } else if (k == 0 && base != NULL) {
                snprintf(path, sizeof(path), "%s/%s", base, s);
            } else if (k == 1) {
                const char *slash = strrchr(conf_path, '/');

                snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - conf_path), conf_path, s);
            } else if (k == 2) {
                char cwd[PATH_MAX];

                if (getcwd(cwd, sizeof(cwd)) == NULL)
                    continue;
                snprintf(path, sizeof(path), "%s/%s", cwd, s);
            } else {
                continue;
            }
            for (int q = 0; q < n_seen; q++)
                if (strcmp(seen[q], path) == 0)
                    path[0] = '\0';
            if (path[0] == '\0')
                continue; /* two rules, one place */
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s", path);
            jw_astr(j, path);
            fmt(from, sizeof(from), ".include in %s", conf_path);
            if (discover_is_dir(path)) {
                DIR *d = opendir(path);
                struct dirent *de;
                int taken = 0;

                while (d != NULL && (de = readdir(d)) != NULL && taken < MAX_GLOB) {
                    size_t l = strlen(de->d_name);
                    char file[PATH_MAX * 3];

                    if ((l > 4 && strcmp(de->d_name + l - 4, ".cnf") == 0)
                        || (l > 5 && strcmp(de->d_name + l - 5, ".conf") == 0)) {
                        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
                        try_path(tried, found, file, from);
                        taken++;
                    }
                }
                if (d != NULL)
                    closedir(d);
            } else {
                try_path(tried, found, path, from);
            }
        }
        jw_close(j, ']');
        jw_close(j, '}');
    }
    jw_close(j, ']');
    free(copy);
}

/* ---------- the document ---------- */

/* Was e looked at for this reason? how: 0 equal, 1 starts with it, 2 contains it. */
static int has_from(const struct entry *e, const char *reason, int how)
{
    for (int k = 0; k < e->n_from; k++)
        if ((how == 0 && strcmp(e->from[k], reason) == 0)
            || (how == 1 && strncmp(e->from[k], reason, strlen(reason)) == 0)
            || (how == 2 && strstr(e->from[k], reason) != NULL))
            return 1;
    return 0;
}

/* The fips.so that belongs to a libcrypto: in its compiled-in MODULESDIR, else in ossl-modules
 * beside it (under either of its names). -1 when none was found. */
static int module_of(const struct list *mods, const struct entry *lc, const char **why)
{
    char reason[PATH_MAX + 64];

    fmt(reason, sizeof(reason), "MODULESDIR of %s", lc->real);
    for (int i = 0; i < mods->n; i++)
        if (has_from(&mods->e[i], reason, 0)) {
            *why = "the suggested libcrypto's compiled-in MODULESDIR";
            return i;
        }
    for (int n = 0; n < 2; n++) {
        fmt(reason, sizeof(reason), "beside %s", n == 0 ? lc->real : lc->result);
        for (int i = 0; i < mods->n; i++)
            if (has_from(&mods->e[i], reason, 0)) {
                *why = "in ossl-modules beside the suggested libcrypto";
                return i;
            }
    }
    return -1;
}

/* A command name looked up in the PATH of the image's environment, as execvp would. */
static const char *in_path(const char *name, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    char *copy, *save = NULL;
    const char *found = NULL;

    if (path == NULL || (copy = strdup(path)) == NULL)
        return NULL;
    for (char *d = strtok_r(copy, ":", &save); d != NULL && found == NULL; d = strtok_r(NULL, ":", &save))
        if (fmt(buf, len, "%s/%s", d, name) && access(buf, X_OK) == 0 && discover_is_file(buf))
            found = buf;
    free(copy);
    return found;
}

static void emit_env(struct jw *j, const char *name)
{
    jw_kstr(j, name, getenv(name));
}

static void usage(void)
{
    fprintf(stderr, "usage: fips_probe --discover [--libcrypto PATH] [--modules DIR] "
                    "[--fips-config FILE] [--exe PATH]...\n");
}

int discover_main(int argc, char **argv)
{
    const char *o_libcrypto = NULL, *o_modules = NULL, *o_config = NULL;
    const char *exes[16];
    int n_exes = 0;
    struct jw j = { 0 };
    char loader[PATH_MAX], version[128], buf[PATH_MAX * 2], from[PATH_MAX * 2 + 64];
    struct list lc_tried = { 0 }, lc_found = { 0 }, mod_tried = { 0 }, mod_found = { 0 };
    struct list cf_tried = { 0 }, cf_found = { 0 };
    struct crypto_facts *facts;
    char exe_needs[16][32];
    char exe_found[16][PATH_MAX];
    char other[PATH_MAX] = ""; /* a libcrypto of another series (1.1, ...), if any was seen */

    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        if (strcmp(argv[i], "--libcrypto") == 0)
            o_libcrypto = argv[i + 1];
        else if (strcmp(argv[i], "--modules") == 0)
            o_modules = argv[i + 1];
        else if (strcmp(argv[i], "--fips-config") == 0)
            o_config = argv[i + 1];
        else if (strcmp(argv[i], "--exe") == 0 && n_exes < 16)
            exes[n_exes++] = argv[i + 1];
        else {
            usage();
            return 2;
        }
    }

    jw_open(&j, NULL, '{');
    jw_klong(&j, "discovery", DISCOVERY_SCHEMA);
    jw_kstr(&j, "built_for", FIPS_PROBE_LIBC "-" FIPS_PROBE_ARCH);

    own_loader(loader, sizeof(loader));
    libc_version(version, sizeof(version), loader);
    jw_open(&j, "libc", '{');
    jw_kstr(&j, "name", FIPS_PROBE_LIBC);
    jw_kstr(&j, "version", version);
    jw_kstr(&j, "loader", loader[0] != '\0' ? loader : NULL);
    jw_close(&j, '}');

    jw_open(&j, "environment", '{');
    emit_env(&j, "OPENSSL_CONF");
    emit_env(&j, "OPENSSL_MODULES");
    emit_env(&j, "OPENSSL_CONF_INCLUDE");
    emit_env(&j, "OPENSSL_ENGINES");
    emit_env(&j, "LD_LIBRARY_PATH");
    emit_env(&j, "LD_PRELOAD");
    jw_close(&j, '}');

    jw_open(&j, "overrides", '{');
    jw_kstr(&j, "libcrypto", o_libcrypto);
    jw_kstr(&j, "modules", o_modules);
    jw_kstr(&j, "fips_config", o_config);
    jw_close(&j, '}');

    /* --- where a libcrypto could come from, in the loader's order where it has one --- */
    if (o_libcrypto != NULL && strchr(o_libcrypto, '/') != NULL && discover_is_dir(o_libcrypto))
        add_dir(o_libcrypto, "override: --libcrypto (a directory)");
    else if (o_libcrypto != NULL && strchr(o_libcrypto, '/') != NULL)
        try_path(&lc_tried, &lc_found, o_libcrypto, "override: --libcrypto");

    jw_open(&j, "executables", '[');
    for (int e = 0; e < n_exes; e++) {
        struct elfinfo ei;
        char real[PATH_MAX], origin[PATH_MAX];

        exe_needs[e][0] = '\0';
        jw_open(&j, NULL, '{');
        jw_kstr(&j, "path", exes[e]);
        if (strchr(exes[e], '/') == NULL) {
            /* a bare command name, as an image's ENTRYPOINT may give: the image's PATH */
            exes[e] = in_path(exes[e], exe_found[e], sizeof(exe_found[e]));
            jw_kstr(&j, "found_in_path", exes[e]);
            if (exes[e] == NULL) {
                jw_kstr(&j, "error", "not found in PATH");
                jw_close(&j, '}');
                exes[e] = "";
                continue;
            }
        }
        if (realpath(exes[e], real) == NULL) {
            jw_kstr(&j, "error", strerror(errno));
            jw_close(&j, '}');
            continue;
        }
        jw_kstr(&j, "realpath", real);
        if (elfinfo_read(real, &ei) != 0) {
            jw_kstr(&j, "error", ei.error);
            jw_close(&j, '}');
            continue;
        }
        jw_kstr(&j, "error", NULL);
        jw_kstr(&j, "interp", ei.interp[0] != '\0' ? ei.interp : NULL);
        jw_kstr(&j, "runpath", ei.runpath[0] != '\0' ? ei.runpath : NULL);
        jw_kstr(&j, "rpath", ei.rpath[0] != '\0' ? ei.rpath : NULL);
        jw_open(&j, "needed", '[');
        for (int k = 0; k < ei.n_needed; k++) {
            jw_astr(&j, ei.needed[k]);
            for (size_t s = 0; s < sizeof(sonames) / sizeof(*sonames); s++)
                if (strcmp(ei.needed[k], sonames[s]) == 0)
                    snprintf(exe_needs[e], sizeof(exe_needs[e]), "%s", sonames[s]);
        }
        jw_close(&j, ']');
        jw_kstr(&j, "needs_libcrypto", exe_needs[e][0] != '\0' ? exe_needs[e] : NULL);
        jw_close(&j, '}');
        snprintf(origin, sizeof(origin), "%s", real);
        *strrchr(origin, '/') = '\0';
        /* DT_RPATH counts only without DT_RUNPATH, and comes before LD_LIBRARY_PATH. */
        fmt(from, sizeof(from), "RPATH of %s", exes[e]);
        if (ei.runpath[0] == '\0' && ei.rpath[0] != '\0')
            add_dir_list(ei.rpath, origin, from);
    }
    jw_close(&j, ']');

    if (getenv("LD_LIBRARY_PATH") != NULL)
        add_dir_list(getenv("LD_LIBRARY_PATH"), NULL, "LD_LIBRARY_PATH");
    for (int e = 0; e < n_exes; e++) {
        struct elfinfo ei;
        char real[PATH_MAX];

        if (realpath(exes[e], real) == NULL || elfinfo_read(real, &ei) != 0 || ei.runpath[0] == '\0')
            continue;
        *strrchr(real, '/') = '\0';
        fmt(from, sizeof(from), "RUNPATH of %s", exes[e]);
        add_dir_list(ei.runpath, real, from);
    }

    jw_open(&j, "loader_config", '[');
#ifdef __GLIBC__
    read_ld_so_conf("/etc/ld.so.conf", 0, &j);
    jw_close(&j, ']');
    add_dir_as("/lib64", "glibc's default directories", 1);
    add_dir_as("/usr/lib64", "glibc's default directories", 1);
    add_dir_as("/lib/" MULTIARCH, "glibc's default directories", 1);
    add_dir_as("/usr/lib/" MULTIARCH, "glibc's default directories", 1);
    add_dir_as("/lib", "glibc's default directories", 1);
    add_dir_as("/usr/lib", "glibc's default directories", 1);
#else
    read_musl_path(&j);
    jw_close(&j, ']');
#endif
    add_dir_as("/usr/local/lib", "a usual place", 1);
    add_dir_as("/usr/local/lib64", "a usual place", 1);
    add_dir_as("/usr/local/ssl/lib", "a usual place", 1);
    add_dir_as("/usr/local/ssl/lib64", "a usual place", 1);
    {
        glob_t g;

        if (glob("/opt/*/lib", 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc && i < MAX_GLOB; i++)
                add_dir(g.gl_pathv[i], "a usual place (/opt/*/lib)");
            globfree(&g);
        }
        if (glob("/opt/*/lib64", 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc && i < MAX_GLOB; i++)
                add_dir(g.gl_pathv[i], "a usual place (/opt/*/lib64)");
            globfree(&g);
        }
    }

    jw_open(&j, "search_dirs", '[');
    for (int d = 0; d < n_dirs; d++) {
        glob_t g;

        jw_open(&j, NULL, '{');
        jw_kstr(&j, "dir", dirs[d].path);
        jw_kstr(&j, "from", dirs[d].from);
        jw_kbool(&j, "exists", discover_is_dir(dirs[d].path));
        /* Every libcrypto.so.N here, so an image with only OpenSSL 1.1 says so. */
        jw_open(&j, "libcrypto_files", '[');
        if (fmt(buf, sizeof(buf), "%s/libcrypto.so.*", dirs[d].path) && glob(buf, 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc && i < MAX_GLOB; i++) {
                const char *name = strrchr(g.gl_pathv[i], '/') + 1;

                jw_astr(&j, name);
                if (other[0] == '\0' && strcmp(name, sonames[0]) != 0 && strcmp(name, sonames[1]) != 0)
                    fmt(other, sizeof(other), "%s", g.gl_pathv[i]);
            }
            globfree(&g);
        }
        jw_close(&j, ']');
        jw_close(&j, '}');
        for (size_t s = 0; s < sizeof(sonames) / sizeof(*sonames); s++) {
            fmt(buf, sizeof(buf), "%s/%s", dirs[d].path, sonames[s]);
            fmt(from, sizeof(from), "%s: %s", dirs[d].from, dirs[d].path);
            try_path(&lc_tried, &lc_found, buf, from);
        }
    }
    jw_close(&j, ']');
    jw_klong(&j, "search_dirs_dropped", dirs_dropped);
    jw_open(&j, "search_dirs_dropped_from", '[');
    for (int i = 0; i < n_drops; i++) {
        jw_open(&j, NULL, '{');
        jw_kstr(&j, "from", i == MAX_DROP_SOURCES - 1 && n_drops == MAX_DROP_SOURCES ? "other sources" : drops[i].from);
        jw_klong(&j, "count", drops[i].count);
        jw_close(&j, '}');
    }
    jw_close(&j, ']');

    /* The loader's own answer for a bare name (its cache included), from this process, which
     * has no RUNPATH: what an application of the image without one gets. */
    {
        const char *bare[3] = { sonames[0], sonames[1], NULL };

        if (o_libcrypto != NULL && strchr(o_libcrypto, '/') == NULL)
            bare[2] = o_libcrypto;
        for (int b = 0; b < 3; b++) {
            struct crypto_facts cf;

            if (bare[b] == NULL)
                continue;
            look_at_libcrypto(bare[b], &cf);
            fmt(from, sizeof(from), "dlopen(\"%s\"): the loader's own search%s", bare[b],
                     b == 2 ? " (override: --libcrypto)" : "");
            if (cf.opened && cf.mapped[0] != '\0') {
                try_path(&lc_tried, &lc_found, cf.mapped, from);
            } else {
                struct entry *t = list_add(&lc_tried, bare[b], from);

                if (t != NULL)
                    snprintf(t->result, sizeof(t->result), "%.199s",
                             cf.error[0] != '\0' ? cf.error : "not found by the loader");
            }
        }
    }

    /* --- each libcrypto found --- */
    facts = calloc((size_t)(lc_found.n ? lc_found.n : 1), sizeof(*facts));
    if (facts == NULL)
        abort();
    jw_open(&j, "libcrypto", '{');
    emit_tried(&j, &lc_tried);
    jw_open(&j, "found", '[');
    for (int i = 0; i < lc_found.n; i++) {
        struct entry *e = &lc_found.e[i];
        struct elfinfo ei;
        struct stat st;
        char dir[PATH_MAX], mdir[PATH_MAX];

        look_at_libcrypto(e->real, &facts[i]);
        jw_open(&j, NULL, '{');
        jw_kstr(&j, "path", e->result); /* the name it was first found under */
        jw_kstr(&j, "realpath", e->real);
        emit_from(&j, e);
        jw_klong(&j, "size", stat(e->real, &st) == 0 ? (long long)st.st_size : -1);
        jw_kstr(&j, "soname", elfinfo_read(e->real, &ei) == 0 && ei.soname[0] ? ei.soname : NULL);
        jw_kbool(&j, "opened", facts[i].opened);
        jw_kstr(&j, "error", facts[i].error[0] != '\0' ? facts[i].error : NULL);
        jw_kstr(&j, "version", facts[i].version[0] != '\0' ? facts[i].version : NULL);
        jw_kstr(&j, "openssl_dir_text", facts[i].openssl_dir[0] ? facts[i].openssl_dir : NULL);
        jw_kstr(&j, "modules_dir_text", facts[i].modules_dir[0] ? facts[i].modules_dir : NULL);
        quoted(facts[i].openssl_dir, dir, sizeof(dir));
        quoted(facts[i].modules_dir, mdir, sizeof(mdir));
        jw_kstr(&j, "openssldir", dir[0] != '\0' ? dir : NULL);
        jw_kstr(&j, "modulesdir", mdir[0] != '\0' ? mdir : NULL);
        jw_kstr(&j, "missing_function", facts[i].missing[0] != '\0' ? facts[i].missing : NULL);
        jw_kbool(&j, "usable", facts[i].opened && facts[i].error[0] == '\0' && facts[i].missing[0] == '\0');
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    jw_close(&j, '}');

    /* --- fips.so: the override, the environment, each libcrypto's directories, usual places --- */
    if (o_modules != NULL) {
        if (discover_is_dir(o_modules)) {
            fmt(buf, sizeof(buf), "%s/fips.so", o_modules);
            try_path(&mod_tried, &mod_found, buf, "override: --modules");
        } else {
            try_path(&mod_tried, &mod_found, o_modules, "override: --modules");
        }
    }
    if (getenv("OPENSSL_MODULES") != NULL) {
        fmt(buf, sizeof(buf), "%s/fips.so", getenv("OPENSSL_MODULES"));
        try_path(&mod_tried, &mod_found, buf, "OPENSSL_MODULES");
    }
    for (int i = 0; i < lc_found.n; i++) {
        char dir[PATH_MAX];

        quoted(facts[i].modules_dir, dir, sizeof(dir));
        if (dir[0] != '\0') {
            fmt(buf, sizeof(buf), "%s/fips.so", dir);
            fmt(from, sizeof(from), "MODULESDIR of %s", lc_found.e[i].real);
            try_path(&mod_tried, &mod_found, buf, from);
        }
        for (int k = 0; k < 2; k++) {
            const char *p = k == 0 ? lc_found.e[i].result : lc_found.e[i].real;

            snprintf(dir, sizeof(dir), "%s", p);
            if (strrchr(dir, '/') == NULL)
                continue;
            *strrchr(dir, '/') = '\0';
            fmt(buf, sizeof(buf), "%s/ossl-modules/fips.so", dir);
            fmt(from, sizeof(from), "beside %s", p);
            try_path(&mod_tried, &mod_found, buf, from);
        }
    }
    {
        static const char *const usual[] = {
            "/usr/lib/" MULTIARCH "/ossl-modules/fips.so", "/usr/lib64/ossl-modules/fips.so",
            "/usr/lib/ossl-modules/fips.so", "/lib/ossl-modules/fips.so",
            "/usr/local/lib/ossl-modules/fips.so", "/usr/local/lib64/ossl-modules/fips.so",
            "/usr/local/ssl/lib/ossl-modules/fips.so", "/usr/local/ssl/lib64/ossl-modules/fips.so",
            "/opt/*/lib/ossl-modules/fips.so", "/opt/*/lib64/ossl-modules/fips.so",
        };

        for (size_t u = 0; u < sizeof(usual) / sizeof(*usual); u++) {
            glob_t g;

            if (strchr(usual[u], '*') == NULL) {
                try_path(&mod_tried, &mod_found, usual[u], "a usual place");
                continue;
            }
            if (glob(usual[u], 0, NULL, &g) == 0) {
                for (size_t i = 0; i < g.gl_pathc && i < MAX_GLOB; i++)
                    try_path(&mod_tried, &mod_found, g.gl_pathv[i], "a usual place");
                globfree(&g);
            } else {
                struct entry *t = list_add(&mod_tried, usual[u], "a usual place");

                if (t != NULL && t->result[0] == '\0')
                    snprintf(t->result, sizeof(t->result), "no match");
            }
        }
    }
    jw_open(&j, "fips_modules", '{');
    emit_tried(&j, &mod_tried);
    jw_open(&j, "found", '[');
    for (int i = 0; i < mod_found.n; i++) {
        struct entry *e = &mod_found.e[i];
        struct elfinfo ei;
        struct stat st;
        int ok = elfinfo_read(e->real, &ei) == 0;

        jw_open(&j, NULL, '{');
        jw_kstr(&j, "path", e->result);
        jw_kstr(&j, "realpath", e->real);
        emit_from(&j, e);
        jw_klong(&j, "size", stat(e->real, &st) == 0 ? (long long)st.st_size : -1);
        jw_kstr(&j, "elf_error", ok ? NULL : ei.error);
        jw_ktri(&j, "nodelete", ok && ei.has_dynamic ? ei.nodelete : -1);
        jw_open(&j, "needed", '[');
        for (int k = 0; ok && k < ei.n_needed; k++)
            jw_astr(&j, ei.needed[k]);
        jw_close(&j, ']');
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    jw_close(&j, '}');

    /* --- module configuration --- */
    if (o_config != NULL)
        try_path(&cf_tried, &cf_found, o_config, "override: --fips-config");
    if (getenv("OPENSSL_CONF") != NULL)
        try_path(&cf_tried, &cf_found, getenv("OPENSSL_CONF"), "OPENSSL_CONF");
    for (int i = 0; i < lc_found.n; i++) {
        char dir[PATH_MAX];

        quoted(facts[i].openssl_dir, dir, sizeof(dir));
        if (dir[0] == '\0')
            continue;
        fmt(from, sizeof(from), "OPENSSLDIR of %s", lc_found.e[i].real);
        fmt(buf, sizeof(buf), "%s/openssl.cnf", dir);
        try_path(&cf_tried, &cf_found, buf, from);
        fmt(buf, sizeof(buf), "%s/fipsmodule.cnf", dir);
        try_path(&cf_tried, &cf_found, buf, from);
    }
    {
        static const char *const usual[] = {
            "/etc/ssl/openssl.cnf", "/etc/ssl/fipsmodule.cnf", "/etc/pki/tls/openssl.cnf",
            "/etc/pki/tls/fipsmodule.cnf", "/usr/lib/ssl/openssl.cnf", "/usr/lib/ssl/fipsmodule.cnf",
            "/usr/local/ssl/openssl.cnf", "/usr/local/ssl/fipsmodule.cnf",
        };

        for (size_t u = 0; u < sizeof(usual) / sizeof(*usual); u++)
            try_path(&cf_tried, &cf_found, usual[u], "a usual place");
    }
    jw_open(&j, "configs", '{');
    jw_open(&j, "found", '[');
    /* cf_found grows while its includes are followed: the loop picks those up too. */
    for (int i = 0; i < cf_found.n && i < MAX_CONF_FILES; i++) {
        struct conf_text ct;
        char path[PATH_MAX], real[PATH_MAX];

        snprintf(path, sizeof(path), "%s", cf_found.e[i].result);
        snprintf(real, sizeof(real), "%s", cf_found.e[i].real);
        read_text(real, &ct);
        jw_open(&j, NULL, '{');
        jw_kstr(&j, "path", path);
        jw_kstr(&j, "realpath", real);
        emit_from(&j, &cf_found.e[i]);
        jw_klong(&j, "size", ct.size);
        jw_key(&j, "text");
        if (ct.text != NULL)
            jw_strn(&j, ct.text, ct.len);
        else
            jw_raw(&j, "null");
        jw_kbool(&j, "truncated", ct.truncated);
        follow_includes(&j, &ct, path, &cf_tried, &cf_found);
        jw_close(&j, '}');
        free(ct.text);
    }
    jw_close(&j, ']');
    jw_klong(&j, "not_read", cf_found.n > MAX_CONF_FILES ? cf_found.n - MAX_CONF_FILES : 0);
    emit_tried(&j, &cf_tried);
    jw_close(&j, '}');

    /* --- what the evidence points to; the tool decides, this only says why --- */
    {
        int pick = -1, mod = -1, owned = 0;
        const char *why = NULL, *mwhy = NULL;

        for (int i = 0; i < lc_found.n && pick < 0; i++) /* the user's choice */
            if (has_from(&lc_found.e[i], "override", 1)
                || has_from(&lc_found.e[i], "(override: --libcrypto)", 2)) {
                pick = i;
                why = "the user's --libcrypto";
            }
        for (int e = 0; e < n_exes && pick < 0; e++) { /* what the application would load */
            char rpath[PATH_MAX + 64];

            if (exe_needs[e][0] == '\0')
                continue;
            fmt(from, sizeof(from), "RUNPATH of %s", exes[e]);
            fmt(rpath, sizeof(rpath), "RPATH of %s", exes[e]);
            for (int i = 0; i < lc_found.n && pick < 0; i++)
                if ((has_from(&lc_found.e[i], from, 1) || has_from(&lc_found.e[i], rpath, 1))
                    && strstr(lc_found.e[i].result, exe_needs[e]) != NULL) {
                    pick = i;
                    why = "needed by the executable and found through its RUNPATH/RPATH";
                }
        }
        /* Without either, a libcrypto with a fips.so of its own (in its MODULESDIR or beside
         * it) is the likely pair; the loader's answer by name first. */
        for (int pass = 0; pass < 2 && pick < 0; pass++)
            for (int s = 0; s < 3 && pick < 0; s++) {
                fmt(from, sizeof(from), "dlopen(\"%s\")", s < 2 ? sonames[s] : "");
                for (int i = 0; i < lc_found.n && pick < 0; i++) {
                    const char *w;

                    if (!facts[i].opened || facts[i].missing[0] != '\0'
                        || (pass == 0 && module_of(&mod_found, &lc_found.e[i], &w) < 0)
                        || (s < 2 && !has_from(&lc_found.e[i], from, 1)))
                        continue;
                    pick = i;
                    why = pass == 0 ? (s < 2 ? "what the loader finds by name, with a fips.so of its own"
                                             : "the first usable one with a fips.so of its own")
                                    : (s < 2 ? "what the loader finds by name (no fips.so of its own)"
                                             : "the first usable one found (no fips.so of its own)");
                }
            }
        for (int i = 0; i < mod_found.n && mod < 0; i++)
            if (has_from(&mod_found.e[i], "override", 1)) {
                mod = i;
                mwhy = "the user's --modules";
            }
        for (int i = 0; i < mod_found.n && mod < 0; i++)
            if (has_from(&mod_found.e[i], "OPENSSL_MODULES", 0)) {
                mod = i;
                mwhy = "OPENSSL_MODULES in the image's environment";
            }
        if (pick >= 0) {
            const char *w = NULL;
            int own = module_of(&mod_found, &lc_found.e[pick], &w);

            owned = own >= 0 && (mod < 0 || own == mod);
            if (mod < 0 && own >= 0) {
                mod = own;
                mwhy = w;
            }
        }
        if (mod < 0 && mod_found.n > 0) {
            mod = 0;
            mwhy = "the first fips.so found";
        }
        jw_open(&j, "suggested", '{');
        jw_kstr(&j, "libcrypto", pick >= 0 ? lc_found.e[pick].real : NULL);
        jw_kstr(&j, "libcrypto_why", why);
        jw_kbool(&j, "libcrypto_usable", pick >= 0 && facts[pick].opened && facts[pick].missing[0] == '\0'
                                              && facts[pick].error[0] == '\0');
        jw_kstr(&j, "module", mod >= 0 ? mod_found.e[mod].real : NULL);
        jw_kstr(&j, "module_why", mwhy);
        jw_kbool(&j, "module_of_libcrypto", owned);
        jw_close(&j, '}');

        jw_open(&j, "problems", '[');
        if (lc_found.n == 0) {
            fmt(buf, sizeof(buf), "no libcrypto.so.3 or libcrypto.so.4 found (%d paths tried in "
                                       "%d directories, and the loader's own search)",
                     lc_tried.n, n_dirs);
            jw_astr(&j, buf);
            if (other[0] != '\0' && fmt(buf, sizeof(buf), "only a libcrypto of another series is "
                                                           "here: %s (OpenSSL 1.1 or older has no "
                                                           "FIPS provider to probe)", other))
                jw_astr(&j, buf);
        } else if (pick < 0 || !facts[pick].opened || facts[pick].missing[0] != '\0') {
            jw_astr(&j, "no libcrypto found that the probe can use (see libcrypto.found[].error "
                        "and missing_function)");
            /* why each could not be used, the first few: a timeout must read as one */
            for (int i = 0; i < lc_found.n && i < 4; i++)
                if (facts[i].error[0] != '\0'
                    && fmt(buf, sizeof(buf), "%s: %s", lc_found.e[i].real, facts[i].error))
                    jw_astr(&j, buf);
        }
        if (dirs_dropped > 0) {
            int at = fmt(buf, sizeof(buf), "%d directories were not searched (more than %d in "
                                            "all; the loader's default ones always are):",
                         dirs_dropped, MAX_DIRS);

            for (int i = 0; at && i < n_drops; i++) {
                size_t used = strlen(buf);

                at = fmt(buf + used, sizeof(buf) - used, "%s %d of %s", i ? "," : "",
                         drops[i].count, i == MAX_DROP_SOURCES - 1 && n_drops == MAX_DROP_SOURCES
                                             ? "other sources" : drops[i].from);
            }
            jw_astr(&j, buf);
        }
        if (pick >= 0 && mod >= 0 && !owned && strcmp(mwhy, "the first fips.so found") == 0
            && fmt(buf, sizeof(buf), "the suggested fips.so (%s) is neither in the MODULESDIR of the "
                                     "suggested libcrypto (%s) nor beside it: say which pair the "
                                     "application uses (--libcrypto, --modules, --exe)",
                   mod_found.e[mod].real, lc_found.e[pick].real))
            jw_astr(&j, buf);
        if (mod_found.n == 0) {
            fmt(buf, sizeof(buf), "no fips.so found (%d paths tried: the overrides, "
                                       "OPENSSL_MODULES, each libcrypto's MODULESDIR and "
                                       "ossl-modules beside it, the usual places)",
                     mod_tried.n);
            jw_astr(&j, buf);
        }
        jw_close(&j, ']');
    }
    jw_close(&j, '}');
    printf("%s\n", j.buf);
    fflush(stdout);
    free(facts);
    free(j.buf);
    return 0;
}
