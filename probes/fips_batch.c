/*
 * fips_batch: every probe run of one cell in one container, each still a fresh process.
 *
 * Usage: fips_batch --timeout SECONDS --workdir DIR -- N1 ARG... N2 ARG... ...
 *
 * Each run is a count and then that many argv elements, so no argument (a whole Python
 * script, say) is ever parsed. Run i runs in DIR/run-<i> with stdin from /dev/null and its
 * stdout/stderr captured to files; one run after another, never two at once. After each
 * run this writes to its stdout
 *   fips-batch-run <i> exit=<code|-1> timed_out=<0|1> seconds=<s.sss> stdout=<n> stderr=<m>
 * then exactly n raw bytes of the run's stdout and m of its stderr (each capped at 4 MiB),
 * and nothing after the last run's bytes. The exit code is what tini reported when
 * each probe had a container of its own: the code, 128+N when killed by signal N, 127 when
 * the program cannot be executed. Exit status: 0 when the batch ran, 1 when it could not go
 * on (no reports after that), 2 for a usage error.
 *
 * Plain C99 and POSIX, no OpenSSL: it builds with glibc's gcc and with musl-gcc.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAP (4 * 1024 * 1024)

static void usage(const char *why)
{
    fprintf(stderr, "fips_batch: %s\n"
                    "usage: fips_batch --timeout SECONDS --workdir DIR -- N1 ARG... N2 ARG...\n",
            why);
    exit(2);
}

/* All of buf, whatever write(2) does: a short write or EINTR must not cut the framing. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Up to CAP bytes of a capture file into buf; the count read, or -1. */
static long read_capture(const char *path, char *buf)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    long got = 0;
    if (fd < 0)
        return -1;
    while (got < CAP) {
        ssize_t n = read(fd, buf + got, (size_t)(CAP - got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            got = -1;
            break;
        }
        if (n == 0)
            break;
        got += n;
    }
    close(fd);
    return got;
}

/* Waits for the run's process, killing its whole process group once the deadline passes.
 * SIGCHLD is blocked in this process, so sigtimedwait wakes as soon as the child ends,
 * without a polling delay. Returns 1 if it timed out, 0 if not, -1 if waitpid failed;
 * *status is the reaped status. */
static int wait_run(pid_t pid, double deadline, int *status)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        double left = deadline - now();
        if (left <= 0)
            break;
        struct timespec ts;
        ts.tv_sec = (time_t)left;
        ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
        sigtimedwait(&chld, NULL, &ts); /* SIGCHLD, the timeout or EINTR: look again */
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return 1;
}

int main(int argc, char **argv)
{
    double timeout = 0;
    const char *workdir = NULL;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (i + 1 >= argc)
            usage("an option without its value");
        if (strcmp(argv[i], "--timeout") == 0) {
            char *end;
            timeout = strtod(argv[i + 1], &end);
            if (*argv[i + 1] == '\0' || *end != '\0' || !(timeout > 0))
                usage("--timeout wants a number of seconds above 0");
        } else if (strcmp(argv[i], "--workdir") == 0) {
            workdir = argv[i + 1];
        } else {
            usage("unknown option");
        }
    }
    if (i >= argc || timeout <= 0 || workdir == NULL)
        usage("--timeout, --workdir and -- are all required");
    i++;

    /* Check every count first: a usage error must not come after some runs were made. */
    int runs = 0;
    for (int j = i; j < argc; runs++) {
        char *end;
        long n = strtol(argv[j], &end, 10);
        if (*argv[j] == '\0' || *end != '\0' || n < 1 || n > argc - j - 1)
            usage("each run is a count of 1 or more and then that many arguments");
        j += 1 + (int)n;
    }

    /* Whatever this was started with, waitpid must see the children (SIG_IGN reaps them). */
    signal(SIGCHLD, SIG_DFL);
    /* Blocked so that wait_run can sigtimedwait for it; the child unblocks it before exec. */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);

    static char out[CAP], err[CAP];
    char dir[4096], out_path[4200], err_path[4200], header[512];
    for (int run = 0; run < runs; run++) {
        int n = atoi(argv[i]);
        char **args = &argv[i + 1];
        char *saved = args[n];
        args[n] = NULL; /* execvp wants a NULL-terminated argv; restored below */
        i += 1 + n;

        snprintf(dir, sizeof dir, "%s/run-%d", workdir, run);
        snprintf(out_path, sizeof out_path, "%s/run-%d.out", workdir, run);
        snprintf(err_path, sizeof err_path, "%s/run-%d.err", workdir, run);
        if (mkdir(dir, 0700) < 0) {
            fprintf(stderr, "fips_batch: run %d: cannot make %s: %s\n", run, dir, strerror(errno));
            return 1;
        }
        /* O_CLOEXEC: no later run (nor this one, past its dup2) inherits these. */
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (null_fd < 0 || out_fd < 0 || err_fd < 0) {
            fprintf(stderr, "fips_batch: run %d: cannot open its files: %s\n", run,
                    strerror(errno));
            return 1;
        }

        double started = now();
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "fips_batch: run %d: fork: %s\n", run, strerror(errno));
            return 1;
        }
        if (pid == 0) {
            /* A process group of its own, so a timeout kills whatever the run started. */
            setpgid(0, 0);
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
                _exit(127);
            if (chdir(dir) < 0) {
                fprintf(stderr, "fips_batch: cannot enter %s: %s\n", dir, strerror(errno));
                _exit(127);
            }
            execvp(args[0], args);
            fprintf(stderr, "fips_batch: cannot execute %s: %s\n", args[0], strerror(errno));
            _exit(127);
        }
        setpgid(pid, pid); /* also here: the kill below must not race the child's own call */
        close(null_fd);
        close(out_fd);
        close(err_fd);
        args[n] = saved;

        int status = 0;
        int timed_out = wait_run(pid, started + timeout, &status);
        if (timed_out < 0) {
            fprintf(stderr, "fips_batch: run %d: waitpid: %s\n", run, strerror(errno));
            return 1;
        }
        double seconds = now() - started;
        /* Whatever the run left running dies with it, as it did with its container. */
        kill(-pid, SIGKILL);

        int code = -1;
        if (!timed_out)
            code = WIFEXITED(status) ? WEXITSTATUS(status)
                   : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                         : -1;
        long out_n = read_capture(out_path, out);
        long err_n = read_capture(err_path, err);
        if (out_n < 0 || err_n < 0) {
            fprintf(stderr, "fips_batch: run %d: cannot read its output back\n", run);
            return 1;
        }
        /* The tmpfs is small: the next runs need the room. */
        unlink(out_path);
        unlink(err_path);

        int len = snprintf(header, sizeof header,
                           "fips-batch-run %d exit=%d timed_out=%d seconds=%.3f stdout=%ld "
                           "stderr=%ld\n",
                           run, code, timed_out, seconds, out_n, err_n);
        if (len < 0 || (size_t)len >= sizeof header) {
            fprintf(stderr, "fips_batch: run %d: report header too long\n", run);
            return 1;
        }
        if (write_all(1, header, (size_t)len) < 0 || write_all(1, out, (size_t)out_n) < 0 ||
            write_all(1, err, (size_t)err_n) < 0) {
            fprintf(stderr, "fips_batch: cannot write the report: %s\n", strerror(errno));
            return 1;
        }
    }
    return 0;
}
