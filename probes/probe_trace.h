/*
 * probe_trace.h: crash attribution for fips_probe.c (included by it, once; no OpenSSL here).
 *
 * Writes machine-readable lines to stderr (fd 2), each one line starting with a fixed
 * marker and then one JSON object (formats: docs/probe-document.md):
 *   fips-probe-thread {...}     a thread of ours started (kernel tid, name)
 *   fips-probe-event {...}      a lifecycle point a crash must be placed against
 *   fips-probe-object {...}     a watched object (fips.so, libcrypto, the canary) was seen
 *                               mapped (its ranges and load base, while they are valid) or
 *                               seen gone
 *   fips-probe-crash {...}      from the signal handler: signal, fault address, pc, sp, tid,
 *                               64 stack words
 *   fips-probe-maps-begin {...} / fips-probe-maps-end {...}   /proc/self/maps at the crash
 *   fips-probe-backtrace {...}  backtrace() frames (glibc), or why there are none
 *
 * The handler (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) runs on an alternate signal stack
 * (every thread that calls trace_thread_start has one) and uses only async-signal-safe calls:
 * open/read/write/close, sigaction, raise, getpid, syscall(SYS_gettid), nanosleep, and the
 * string functions. No stdio, no malloc. Then it restores the default action and re-raises,
 * so the process still dies by that signal (exit status 128+N for the batch driver). glibc's
 * backtrace() is the one exception to the list, called last, once it was warmed up at start.
 *
 * Functions are static inline: a user of this header need not use them all.
 * trace_objects() and the object state are for the main thread only (the probe calls them
 * from there, and from the one thread of a forked child); threads and events may be written
 * from any thread.
 */
#ifndef PROBE_TRACE_H
#define PROBE_TRACE_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <execinfo.h>
#endif

#define TRACE_ALTSTACK_SIZE (256 * 1024) /* backtrace()'s unwinder wants room too */
#define TRACE_STACK_WORDS 64
#define TRACE_FRAMES 64
#define TRACE_MAX_THREADS 32
#define TRACE_MAX_OBJECTS 4
#define TRACE_MAX_RANGES 24
#define TRACE_PATH_MAX 1024 /* longer paths are cut in the lines (and never matched) */

/* ---------- a bounded line writer (async-signal-safe) ---------- */

struct tline {
    char *buf;
    size_t cap, len;
};

/* Appends up to n bytes, always keeping room for the closing "}\n". */
static inline void tl_raw(struct tline *l, const char *s, size_t n)
{
    size_t room = l->cap - l->len - 2;

    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static inline void tl_str(struct tline *l, const char *s)
{
    tl_raw(l, s, strlen(s));
}

static inline void tl_json_str(struct tline *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    if (s == NULL) {
        tl_str(l, "null");
        return;
    }
    tl_str(l, "\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            tl_raw(l, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            tl_raw(l, esc, 6);
        } else {
            tl_raw(l, (const char *)&c, 1);
        }
    }
    tl_str(l, "\"");
}

/* "0x..." in lower case, as a JSON string. */
static inline void tl_hex(struct tline *l, uintptr_t v)
{
    char t[2 + 2 * sizeof(v) + 2];
    size_t i = sizeof(t);

    t[--i] = '"';
    do {
        t[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    t[--i] = 'x';
    t[--i] = '0';
    t[--i] = '"';
    tl_raw(l, t + i, sizeof(t) - i);
}

static inline void tl_dec(struct tline *l, long v)
{
    char t[24];
    size_t i = sizeof(t);
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;

    do {
        t[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        t[--i] = '-';
    tl_raw(l, t + i, sizeof(t) - i);
}

static inline void tl_key(struct tline *l, const char *k)
{
    if (l->len > 0 && l->buf[l->len - 1] != '{' && l->buf[l->len - 1] != '[')
        tl_str(l, ",");
    tl_json_str(l, k);
    tl_str(l, ":");
}

static inline void write_all_fd(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static inline pid_t trace_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* "MARKER {" with pid and tid, the first two keys of every line. */
static inline void tl_begin(struct tline *l, char *buf, size_t cap, const char *marker)
{
    l->buf = buf;
    l->cap = cap;
    l->len = 0;
    tl_str(l, marker);
    tl_str(l, " {");
    tl_key(l, "pid");
    tl_dec(l, (long)getpid());
    tl_key(l, "tid");
    tl_dec(l, (long)trace_gettid());
}

/* Closes the object and writes the line with one write(2) where the kernel allows it. */
static inline void tl_end(struct tline *l)
{
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    write_all_fd(2, l->buf, l->len);
}

/* ---------- /proc/self/maps, read with open/read only ---------- */

struct maps_reader {
    int fd;
    size_t len, pos;
    char buf[4096];
};

static inline int maps_open(struct maps_reader *r)
{
    r->len = r->pos = 0;
    r->fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    return r->fd >= 0;
}

/* The next line without its newline, cut to cap-1 bytes; 0 at the end. */
static inline int maps_line(struct maps_reader *r, char *line, size_t cap)
{
    size_t n = 0;
    int got = 0;

    for (;;) {
        char c;

        if (r->pos == r->len) {
            ssize_t k;

            do
                k = read(r->fd, r->buf, sizeof(r->buf));
            while (k < 0 && errno == EINTR);
            if (k <= 0)
                break;
            r->len = (size_t)k;
            r->pos = 0;
        }
        c = r->buf[r->pos++];
        got = 1;
        if (c == '\n')
            break;
        if (n + 1 < cap)
            line[n++] = c;
    }
    line[n] = '\0';
    return got;
}

struct maps_entry {
    uintptr_t start, end, offset;
    char perms[5];
    const char *path; /* into the line; "" for anonymous mappings */
};

static inline const char *parse_hex(const char *s, uintptr_t *v)
{
    const char *first = s;

    *v = 0;
    for (;; s++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0'
                : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                         : -1;
        if (d < 0)
            return s == first ? NULL : s;
        *v = *v * 16 + (uintptr_t)d;
    }
}

static inline const char *skip_field(const char *s)
{
    while (*s == ' ')
        s++;
    while (*s != ' ' && *s != '\0')
        s++;
    while (*s == ' ')
        s++;
    return s;
}

/* "start-end perms offset dev inode   path" */
static inline int maps_parse(const char *line, struct maps_entry *e)
{
    const char *s = parse_hex(line, &e->start);

    if (s == NULL || *s != '-' || (s = parse_hex(s + 1, &e->end)) == NULL || *s != ' ')
        return 0;
    s++;
    if (strlen(s) < 5 || s[4] != ' ')
        return 0;
    memcpy(e->perms, s, 4);
    e->perms[4] = '\0';
    if ((s = parse_hex(s + 5, &e->offset)) == NULL)
        return 0;
    s = skip_field(s); /* dev */
    s = skip_field(s); /* inode, and the spaces before the path */
    e->path = s;
    return 1;
}

/* ---------- threads ---------- */

static struct {
    pid_t tid;
    char name[24];
} trace_threads[TRACE_MAX_THREADS];
static volatile int trace_n_threads;
static pthread_mutex_t trace_threads_lock = PTHREAD_MUTEX_INITIALIZER;

/* What the main thread was doing: the step, or a lifecycle point after the steps. */
static const char *volatile trace_phase = "start";

static inline const char *trace_thread_name(pid_t tid)
{
    int n = trace_n_threads;

    for (int i = 0; i < n && i < TRACE_MAX_THREADS; i++)
        if (trace_threads[i].tid == tid)
            return trace_threads[i].name;
    return NULL;
}

/*
 * For every thread of ours, first thing: an alternate signal stack (a crash in a thread's
 * exit, in its thread-local destructors, still runs there) and a fips-probe-thread line.
 * Returns the stack's mapping, to be unmapped once the thread was joined (NULL if none).
 */
static inline void *trace_thread_start(const char *name)
{
    char buf[256];
    struct tline l;
    stack_t ss;
    void *stack = mmap(NULL, TRACE_ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pid_t tid = trace_gettid();
    int altstack = 0;

    if (stack != MAP_FAILED) {
        ss.ss_sp = stack;
        ss.ss_size = TRACE_ALTSTACK_SIZE;
        ss.ss_flags = 0;
        altstack = sigaltstack(&ss, NULL) == 0;
        if (!altstack) {
            munmap(stack, TRACE_ALTSTACK_SIZE);
            stack = MAP_FAILED;
        }
    }
    pthread_mutex_lock(&trace_threads_lock);
    if (trace_n_threads < TRACE_MAX_THREADS) {
        int i = trace_n_threads;

        trace_threads[i].tid = tid;
        strncpy(trace_threads[i].name, name, sizeof(trace_threads[i].name) - 1);
        trace_n_threads = i + 1;
    }
    pthread_mutex_unlock(&trace_threads_lock);

    tl_begin(&l, buf, sizeof(buf), "fips-probe-thread");
    tl_key(&l, "name");
    tl_json_str(&l, name);
    tl_key(&l, "altstack");
    tl_str(&l, altstack ? "true" : "false");
    tl_end(&l);
    return stack == MAP_FAILED ? NULL : stack;
}

/* The thread is gone (joined): its alternate stack can go too. */
static inline void trace_thread_joined(void *stack)
{
    if (stack != NULL)
        munmap(stack, TRACE_ALTSTACK_SIZE);
}

/* Waits up to `seconds` for the kernel task of thread tid to be gone; 1 if it is (or if
 * /proc cannot tell), 0 if it is still there: stuck in its exit (thread-local destructors). */
static inline int trace_thread_gone(pid_t tid, int seconds)
{
    char path[64];
    struct tline l;

    l.buf = path;
    l.cap = sizeof(path);
    l.len = 0;
    tl_str(&l, "/proc/self/task/");
    tl_dec(&l, (long)tid);
    path[l.len] = '\0';
    for (int i = 0; i < seconds * 1000; i++) {
        struct timespec t = { 0, 1000000 };

        if (access(path, F_OK) != 0)
            return 1;
        nanosleep(&t, NULL);
    }
    return 0;
}

/* A thread that does not finish exiting: SIGABRT to it, so that the handler reports where
 * it is stuck (its pc and stack) and the process ends by that signal instead of hanging. */
static inline void trace_abort_thread(pid_t tid, const char *name)
{
    char buf[256];
    struct tline l;

    tl_begin(&l, buf, sizeof(buf), "fips-probe-event");
    tl_key(&l, "event");
    tl_json_str(&l, "thread-exit-stuck");
    tl_key(&l, "thread");
    tl_json_str(&l, name);
    tl_key(&l, "stuck_tid");
    tl_dec(&l, (long)tid);
    tl_end(&l);
    syscall(SYS_tgkill, (long)getpid(), (long)tid, (long)SIGABRT);
}

/* ---------- events ---------- */

/* One event, with one optional string key and value. */
static inline void trace_event(const char *event, const char *key, const char *value)
{
    char buf[512];
    struct tline l;

    tl_begin(&l, buf, sizeof(buf), "fips-probe-event");
    tl_key(&l, "event");
    tl_json_str(&l, event);
    if (key != NULL) {
        tl_key(&l, key);
        tl_json_str(&l, value);
    }
    tl_end(&l);
}

/* A forked child ended: its pid and how (exit status, or signal). */
static inline void trace_event_child(const char *event, pid_t child, int exit_status, int sig)
{
    char buf[512];
    struct tline l;

    tl_begin(&l, buf, sizeof(buf), "fips-probe-event");
    tl_key(&l, "event");
    tl_json_str(&l, event);
    tl_key(&l, "child");
    tl_dec(&l, (long)child);
    tl_key(&l, "exit_status");
    if (exit_status < 0)
        tl_str(&l, "null");
    else
        tl_dec(&l, exit_status);
    tl_key(&l, "signal");
    if (sig <= 0)
        tl_str(&l, "null");
    else
        tl_dec(&l, sig);
    tl_end(&l);
}

/* ---------- watched objects ---------- */

struct trace_range {
    uintptr_t start, end, offset;
    char perms[5];
};

struct trace_object {
    const char *role;   /* "fips", "libcrypto", "canary" */
    const char *prefix; /* match by file name prefix until the path is known, or NULL */
    char path[TRACE_PATH_MAX];
    int mapped, generation, n;
    uintptr_t base;
    struct trace_range r[TRACE_MAX_RANGES];
};

static struct trace_object trace_obj[TRACE_MAX_OBJECTS];
static int trace_n_obj;

/* Watch a file by its path as /proc/self/maps names it (the real path). */
static inline void trace_watch(const char *role, const char *path)
{
    struct trace_object *o;

    if (trace_n_obj >= TRACE_MAX_OBJECTS || strlen(path) >= TRACE_PATH_MAX)
        return;
    o = &trace_obj[trace_n_obj++];
    memset(o, 0, sizeof(*o));
    o->role = role;
    memcpy(o->path, path, strlen(path) + 1);
}

/* Watch the first mapped file whose name begins with prefix (libcrypto.so.3, .so.4...). */
static inline void trace_watch_prefix(const char *role, const char *prefix)
{
    struct trace_object *o;

    if (trace_n_obj >= TRACE_MAX_OBJECTS)
        return;
    o = &trace_obj[trace_n_obj++];
    memset(o, 0, sizeof(*o));
    o->role = role;
    o->prefix = prefix;
}

static inline int trace_matches(struct trace_object *o, const char *path)
{
    const char *slash;

    if (o->path[0] != '\0')
        return strcmp(o->path, path) == 0;
    slash = strrchr(path, '/');
    if (o->prefix == NULL || slash == NULL || strncmp(slash + 1, o->prefix, strlen(o->prefix)) != 0
        || strlen(path) >= TRACE_PATH_MAX)
        return 0;
    memcpy(o->path, path, strlen(path) + 1); /* from now on, this very file */
    return 1;
}

static inline void trace_object_line(const struct trace_object *o, const char *state, const char *step)
{
    static char buf[16384]; /* main thread only: a path of TRACE_PATH_MAX escaped and the ranges */
    struct tline l;

    tl_begin(&l, buf, sizeof(buf), "fips-probe-object");
    tl_key(&l, "object");
    tl_json_str(&l, o->role);
    tl_key(&l, "path");
    tl_json_str(&l, o->path);
    tl_key(&l, "state");
    tl_json_str(&l, state);
    tl_key(&l, "generation");
    tl_dec(&l, o->generation);
    tl_key(&l, "step");
    tl_json_str(&l, step);
    tl_key(&l, "base");
    if (o->base != 0)
        tl_hex(&l, o->base);
    else
        tl_str(&l, "null");
    tl_key(&l, "mappings");
    tl_str(&l, "[");
    for (int i = 0; i < o->n; i++) {
        tl_str(&l, i > 0 ? ",{" : "{");
        tl_key(&l, "start");
        tl_hex(&l, o->r[i].start);
        tl_key(&l, "end");
        tl_hex(&l, o->r[i].end);
        tl_key(&l, "offset");
        tl_hex(&l, o->r[i].offset);
        tl_key(&l, "perms");
        tl_json_str(&l, o->r[i].perms);
        tl_str(&l, "}");
    }
    tl_str(&l, "]");
    tl_end(&l);
}

/*
 * Looks at /proc/self/maps and writes a fips-probe-object line for every watched object
 * whose mappings changed since the last look: "mapped" (with a new generation when it was
 * not mapped before, or its load base moved) or "unmapped" (with the ranges it had).
 * `step` names the step or lifecycle point of the look.
 */
static inline void trace_objects(const char *step)
{
    static struct trace_range now[TRACE_MAX_OBJECTS][TRACE_MAX_RANGES];
    static char line[TRACE_PATH_MAX + 256];
    int n[TRACE_MAX_OBJECTS] = { 0 };
    struct maps_reader r;
    struct maps_entry e;

    if (!maps_open(&r))
        return;
    while (maps_line(&r, line, sizeof(line))) {
        if (!maps_parse(line, &e) || e.path[0] != '/')
            continue;
        for (int k = 0; k < trace_n_obj; k++) {
            if (!trace_matches(&trace_obj[k], e.path) || n[k] >= TRACE_MAX_RANGES)
                continue;
            now[k][n[k]].start = e.start;
            now[k][n[k]].end = e.end;
            now[k][n[k]].offset = e.offset;
            memcpy(now[k][n[k]].perms, e.perms, sizeof(e.perms));
            n[k]++;
        }
    }
    close(r.fd);

    for (int k = 0; k < trace_n_obj; k++) {
        struct trace_object *o = &trace_obj[k];
        uintptr_t base = 0;

        for (int i = 0; i < n[k]; i++)
            if (now[k][i].offset == 0) {
                base = now[k][i].start;
                break;
            }
        if (n[k] == 0) {
            if (o->mapped) {
                o->mapped = 0;
                trace_object_line(o, "unmapped", step); /* the ranges it had, for the record */
            }
            continue;
        }
        if (o->mapped && base == o->base && n[k] == o->n
            && memcmp(now[k], o->r, (size_t)n[k] * sizeof(now[k][0])) == 0)
            continue; /* as it was */
        if (!o->mapped || base != o->base)
            o->generation++;
        o->mapped = 1;
        o->base = base;
        o->n = n[k];
        memcpy(o->r, now[k], (size_t)n[k] * sizeof(now[k][0]));
        trace_object_line(o, "mapped", step);
    }
}

/* ---------- the crash handler ---------- */

static const int trace_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
static const char *const trace_signal_names[] = { "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE",
                                                  "SIGABRT" };
static volatile sig_atomic_t trace_crashing;

/* The interrupted context's pc and sp (and lr on aarch64); 0 where this build cannot tell. */
static inline void trace_registers(const void *ucv, uintptr_t *pc, uintptr_t *sp, uintptr_t *lr)
{
    const ucontext_t *uc = ucv;

    *pc = *sp = *lr = 0;
    if (uc == NULL)
        return;
#if defined(__x86_64__) && defined(REG_RIP)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__i386__) && defined(REG_EIP)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
    *sp = (uintptr_t)uc->uc_mcontext.gregs[REG_ESP];
#elif defined(__aarch64__)
    *pc = (uintptr_t)uc->uc_mcontext.pc;
    *sp = (uintptr_t)uc->uc_mcontext.sp;
    *lr = (uintptr_t)uc->uc_mcontext.regs[30];
#endif
}

/* One look at the maps for the handler: how many words from sp up lie in one readable
 * mapping (so reading them cannot fault), and the permissions of the mapping holding pc
 * ("" when pc is in no mapping: code that ran from an object no longer there). */
static inline size_t trace_look(uintptr_t sp, uintptr_t pc, char pc_perms[5])
{
    struct maps_reader r;
    struct maps_entry e;
    char line[512];
    size_t words = 0;

    pc_perms[0] = '\0';
    if (!maps_open(&r))
        return 0;
    while (maps_line(&r, line, sizeof(line))) {
        if (!maps_parse(line, &e))
            continue;
        if (sp != 0 && sp >= e.start && sp < e.end && e.perms[0] == 'r')
            words = (e.end - sp) / sizeof(uintptr_t);
        if (pc != 0 && pc >= e.start && pc < e.end)
            memcpy(pc_perms, e.perms, 5);
    }
    close(r.fd);
    return words < TRACE_STACK_WORDS ? words : TRACE_STACK_WORDS;
}

static inline void trace_dump_maps(void)
{
    char buf[4096], head[128];
    struct tline l;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    char last = '\n';

    tl_begin(&l, head, sizeof(head), "fips-probe-maps-begin");
    tl_end(&l);
    if (fd >= 0) {
        for (;;) {
            ssize_t k = read(fd, buf, sizeof(buf));

            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            write_all_fd(2, buf, (size_t)k);
            last = buf[k - 1];
        }
        close(fd);
    }
    if (last != '\n')
        write_all_fd(2, "\n", 1);
    tl_begin(&l, head, sizeof(head), "fips-probe-maps-end");
    tl_end(&l);
}

/* pc_runs: pc lies in an executable mapping. When it does not, the unwinder would read the
 * instructions at pc (to recognise a signal trampoline) and fault: no backtrace() then. */
static inline void trace_backtrace(int pc_runs)
{
    char buf[2048];
    struct tline l;

    tl_begin(&l, buf, sizeof(buf), "fips-probe-backtrace");
    tl_key(&l, "frames");
#ifdef __GLIBC__
    if (!pc_runs) {
        tl_str(&l, "null");
        tl_key(&l, "why");
        tl_json_str(&l, "pc is in no executable mapping: backtrace() would fault reading it");
    } else {
        void *frames[TRACE_FRAMES];
        int n = backtrace(frames, TRACE_FRAMES);

        tl_str(&l, "[");
        for (int i = 0; i < n; i++) {
            if (i > 0)
                tl_str(&l, ",");
            tl_hex(&l, (uintptr_t)frames[i]);
        }
        tl_str(&l, "]");
    }
#else
    (void)pc_runs;
    tl_str(&l, "null");
    tl_key(&l, "why");
    tl_json_str(&l, "no backtrace() in this C library (musl has no execinfo.h)");
#endif
    tl_end(&l);
}

static inline void trace_crash_handler(int sig, siginfo_t *si, void *ucv)
{
    char buf[4096];
    struct tline l;
    uintptr_t pc, sp, lr, words[TRACE_STACK_WORDS];
    char pc_perms[5];
    size_t nwords;
    const char *name = "unknown";
    int first = !trace_crashing;

    trace_crashing = 1;
    for (size_t i = 0; i < sizeof(trace_signals) / sizeof(*trace_signals); i++)
        if (trace_signals[i] == sig)
            name = trace_signal_names[i];
    trace_registers(ucv, &pc, &sp, &lr);
    nwords = trace_look(sp, pc, pc_perms);
    if (nwords > 0)
        memcpy(words, (const void *)sp, nwords * sizeof(uintptr_t));

    tl_begin(&l, buf, sizeof(buf), "fips-probe-crash");
    tl_key(&l, "thread");
    tl_json_str(&l, trace_thread_name(trace_gettid()));
    tl_key(&l, "signal");
    tl_dec(&l, sig);
    tl_key(&l, "signal_name");
    tl_json_str(&l, name);
    tl_key(&l, "code");
    tl_dec(&l, si != NULL ? si->si_code : 0);
    tl_key(&l, "addr"); /* only a fault has one; a signal sent by kill/raise/abort has not */
    if (si != NULL && si->si_code > 0)
        tl_hex(&l, (uintptr_t)si->si_addr);
    else
        tl_str(&l, "null");
    tl_key(&l, "pc");
    if (pc != 0)
        tl_hex(&l, pc);
    else
        tl_json_str(&l, "unknown");
    tl_key(&l, "pc_perms"); /* of the mapping holding pc now; null: pc is in no mapping */
    if (pc_perms[0] != '\0')
        tl_json_str(&l, pc_perms);
    else
        tl_str(&l, "null");
    tl_key(&l, "sp");
    if (sp != 0)
        tl_hex(&l, sp);
    else
        tl_json_str(&l, "unknown");
#if defined(__aarch64__)
    tl_key(&l, "lr");
    tl_hex(&l, lr);
#else
    (void)lr;
#endif
    tl_key(&l, "phase");
    tl_json_str(&l, trace_phase);
    tl_key(&l, "first");
    tl_str(&l, first ? "true" : "false");
    tl_key(&l, "stack");
    tl_str(&l, "[");
    for (size_t i = 0; i < nwords; i++) {
        if (i > 0)
            tl_str(&l, ",");
        tl_hex(&l, words[i]);
    }
    tl_str(&l, "]");
    tl_end(&l);

    if (first) {
        trace_dump_maps();
        trace_backtrace(pc_perms[2] == 'x'); /* last: the one call that might not come back */
    } else {
        /* Another thread is writing its report: let it finish and kill the process. */
        for (int i = 0; i < 50; i++) {
            struct timespec t = { 0, 100000000 };

            nanosleep(&t, NULL);
        }
    }
    {
        struct sigaction dfl;

        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
    }
    raise(sig); /* blocked until we return: then the default action ends the process */
}

static inline void trace_atexit(void)
{
    trace_phase = "atexit";
    trace_event("atexit", NULL, NULL);
    trace_objects("atexit");
}

/*
 * First thing in main: the atexit handler (registered before OpenSSL registers its own,
 * so it runs after OpenSSL's atexit cleanup), the main thread's alternate stack and name,
 * the crash handler, and a first backtrace() so that libgcc_s is loaded before any crash.
 */
static inline void trace_install(void)
{
    struct sigaction sa;

    atexit(trace_atexit);
#ifdef __GLIBC__
    {
        void *frames[4];

        (void)backtrace(frames, 4);
    }
#endif
    (void)trace_thread_start("main"); /* the main thread's stack stays for the process's life */
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = trace_crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(trace_signals) / sizeof(*trace_signals); i++)
        sigaddset(&sa.sa_mask, trace_signals[i]); /* a fault inside the handler ends it all */
    for (size_t i = 0; i < sizeof(trace_signals) / sizeof(*trace_signals); i++)
        sigaction(trace_signals[i], &sa, NULL);
}

#endif
