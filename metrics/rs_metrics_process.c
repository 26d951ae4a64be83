/*
 * rs_metrics_process.c — the standard process metrics of the Prometheus
 * client libraries, read from /proc/self at each render (Linux only).
 *
 *   process_cpu_seconds_total      utime + stime of /proc/self/stat, in
 *                                  clock ticks, as an exact decimal of
 *                                  hundredths of a second
 *   process_resident_memory_bytes  rss (pages) * page size
 *   process_virtual_memory_bytes   vsize
 *   process_open_fds               entries of /proc/self/fd (minus the one
 *                                  the listing itself opens)
 *   process_max_fds                the soft RLIMIT_NOFILE
 *   process_start_time_seconds     btime of /proc/stat + starttime ticks,
 *                                  in hundredths of a second
 *
 * Invariants: no floating point (ticks and pages are integers, divided
 * only when rendered as a decimal); a figure that cannot be read is unset
 * (not rendered) rather than rendered as 0.
 *
 * Ownership: the series and the hook's state belong to the registry (freed
 * by rs_metrics_destroy).
 */
#include "rs_err.h"
#include "rs_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct proc_state {
    rs_metrics_series_t *cpu, *rss, *vsz, *fds, *maxfds, *start;
    rs_metrics_hook_fn chain;
    void *chain_opaque;
} proc_state_t;

/* Fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss) of
 * /proc/self/stat. The second field (comm) may hold spaces and ')', so the
 * fields are counted from the last ')'. 0 or -1. */
static int read_stat(unsigned long long *utime, unsigned long long *stime,
                     unsigned long long *starttime, unsigned long long *vsize, long long *rss)
{
    char buf[1024];
    size_t n;
    FILE *f = fopen("/proc/self/stat", "r");
    char *p;

    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    /* after ")": field 3 (state) is the first, so field k is token k - 3 */
    unsigned long long v[22] = {0};
    char *save = NULL, *tok = strtok_r(p + 1, " ", &save);
    int i = 0;
    for (; tok != NULL && i < 22; i++, tok = strtok_r(NULL, " ", &save)) {
        char *end;
        errno = 0;
        v[i] = strtoull(tok, &end, 10);
        if (i >= 11 && (errno != 0 || *end != '\0'))
            return -1; /* the fields read below are numbers */
    }
    if (i < 22)
        return -1;
    *utime = v[11];
    *stime = v[12];
    *starttime = v[19];
    *vsize = v[20];
    *rss = (long long)v[21];
    return 0;
}

static long long read_btime(void)
{
    char line[256];
    long long bt = -1;
    FILE *f = fopen("/proc/stat", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "btime ", 6) == 0) {
            char *end;
            errno = 0;
            bt = strtoll(line + 6, &end, 10);
            if (errno != 0 || end == line + 6)
                bt = -1;
            break;
        }
    fclose(f);
    return bt;
}

static long long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long long n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory stream's own descriptor */
}

/* ticks / clk as hundredths (exact when clk divides 100 or 100 divides it). */
static int64_t ticks_centis(unsigned long long ticks, long clk)
{
    return (int64_t)(ticks * 100u / (unsigned long long)clk);
}

static void collect(rs_metrics_t *reg, void *opaque)
{
    proc_state_t *ps = opaque;
    unsigned long long ut, st, start, vsize;
    long long rss, btime, fds;
    long clk = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct rlimit rl;

    if (clk > 0 && read_stat(&ut, &st, &start, &vsize, &rss) == 0) {
        rs_metrics_set_decimal(ps->cpu, ticks_centis(ut + st, clk), 2);
        rs_metrics_set(ps->vsz, (int64_t)vsize);
        rs_metrics_set(ps->rss, (int64_t)rss * (page > 0 ? page : 4096));
        btime = read_btime();
        if (btime >= 0)
            rs_metrics_set_decimal(ps->start, (int64_t)btime * 100 + ticks_centis(start, clk),
                                   2);
    }
    fds = count_fds();
    if (fds >= 0)
        rs_metrics_set(ps->fds, fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        rs_metrics_set(ps->maxfds, (int64_t)rl.rlim_cur);
    if (ps->chain != NULL)
        ps->chain(reg, ps->chain_opaque);
}

int rs_metrics_process_register(rs_metrics_t *reg, rs_metrics_hook_fn chain, void *chain_opaque,
                                char *errstr, size_t errlen)
{
    proc_state_t *ps;
    typedef struct {
        rs_metrics_series_t **s;
        const char *name, *help;
        int counter;
    } pdef_t;
    pdef_t defs[6];
    int rc = -1;

    ps = calloc(1, sizeof *ps);
    if (ps == NULL) {
        rs_errorf(errstr, errlen, "metrics: out of memory");
        return -1;
    }
    defs[0] = (pdef_t){&ps->cpu, "process_cpu_seconds_total",
                       "Total user and system CPU time spent in seconds.", 1};
    defs[1] = (pdef_t){&ps->rss, "process_resident_memory_bytes",
                       "Resident memory size in bytes.", 0};
    defs[2] =
        (pdef_t){&ps->vsz, "process_virtual_memory_bytes", "Virtual memory size in bytes.", 0};
    defs[3] = (pdef_t){&ps->fds, "process_open_fds", "Number of open file descriptors.", 0};
    defs[4] =
        (pdef_t){&ps->maxfds, "process_max_fds", "Maximum number of open file descriptors.", 0};
    defs[5] = (pdef_t){&ps->start, "process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.", 0};
    for (size_t i = 0; i < 6; i++) {
        int r = defs[i].counter ? rs_metrics_counter(reg, defs[i].s, defs[i].name, defs[i].help,
                                                     NULL, 0, errstr, errlen)
                                : rs_metrics_gauge(reg, defs[i].s, defs[i].name, defs[i].help,
                                                   NULL, 0, errstr, errlen);
        if (r != 0)
            goto done;
        rs_metrics_unset(*defs[i].s); /* until the first render reads it */
    }
    ps->chain = chain;
    ps->chain_opaque = chain_opaque;
    rs_metrics_set_render_hook(reg, collect, ps, free);
    ps = NULL;
    rc = 0;
done:
    free(ps);
    return rc;
}
