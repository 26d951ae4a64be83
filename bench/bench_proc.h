/*
 * bench_proc.h — what the benchmarks that drive `revstream` as child
 * processes share (bench_bounded, bench_restore): a monotonic clock,
 * spawning a child with its output in files, waiting for it (its rusage
 * for peak RSS), reading a whole file, a running child's CPU time.
 *
 * Header-only (static functions): the benchmarks are single files, not a
 * library. Ownership: bp_slurp's buffer is the caller's (free()).
 */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static inline double bp_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run bin with argv; stdin /dev/null, stdout and stderr to files (NULL:
 * /dev/null). Exits the benchmark if it cannot. */
static inline pid_t bp_spawn(const char *bin, char *const argv[], const char *out,
                             const char *err)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err ? err : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "cannot run %s: %s\n", bin, strerror(rc));
        exit(1);
    }
    return pid;
}

/* Wait for pid; its exit status (128 + signal when killed), -1 on error;
 * *ru (may be NULL) gets its rusage. */
static inline int bp_wait(pid_t pid, struct rusage *ru)
{
    int ws;
    struct rusage dummy;
    while (wait4(pid, &ws, 0, ru ? ru : &dummy) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* The whole file as a NUL-terminated string, or NULL. */
static inline char *bp_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The CPU seconds (user + system) a running child has used so far, from
 * /proc/PID/stat (fields 14 and 15, in clock ticks); -1 if unreadable. */
static inline double bp_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

#endif
