/*
 * test_disk_faults.c — defect 4 of issue 17: a worker whose state directory
 * is on a full or read-only disk. Each test mounts a small tmpfs on the
 * worker's state directory (root only: skipped, with a message, when the
 * test cannot mount), runs `revstream worker` against the embedded broker,
 * and checks that the worker stops with exit status 3 and a clear error
 * line, and that once the fault is gone a restart processes everything:
 * the deduplicated journal gives replay's balances (nothing lost).
 *
 * Invariants of this test: every mount is undone by the test's .fini
 * (umount2 MNT_DETACH), which runs even when an assertion failed, and
 * every wait has a deadline.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"

#define DISK_OPTS "size=64m,mode=0755"

/* The mount of the running test ("" when none) and its worker's temp dir. */
static char mounted[128], workdir[64];

/* Mount a tmpfs on dir, or skip the test (not root, or no mount rights). */
static void mount_disk(const char *dir)
{
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
    if (geteuid() != 0)
        cr_skip_test("disk-fault tests need root to mount a tmpfs (uid %d)", (int)geteuid());
    if (mount("tmpfs", dir, "tmpfs", 0, DISK_OPTS) != 0)
        cr_skip_test("disk-fault tests cannot mount a tmpfs: %s", strerror(errno));
    snprintf(mounted, sizeof mounted, "%s", dir);
}

/* .fini of every test: undo the mount and remove the temp dir, whether the
 * test passed, failed or was skipped. */
static void cleanup(void)
{
    if (mounted[0] != '\0')
        umount2(mounted, MNT_DETACH);
    mounted[0] = '\0';
    if (workdir[0] != '\0')
        kh_rm_rf(workdir);
    workdir[0] = '\0';
}

/* Fill the filesystem of dir to the last byte with dir/fill. */
static void fill_disk(const char *dir)
{
    char path[256];
    static char block[65536];
    snprintf(path, sizeof path, "%s/fill", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    size_t n = sizeof block;
    while (n > 0) {
        ssize_t k = write(fd, block, n);
        if (k < 0) {
            cr_assert_eq(errno, ENOSPC, "%s", strerror(errno));
            n /= 2; /* down to the last bytes */
        }
    }
    close(fd);
}

static void free_disk(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/fill", dir);
    cr_assert_eq(unlink(path), 0);
}

static void remount(const char *dir, int read_only)
{
    cr_assert_eq(mount(NULL, dir, NULL, MS_REMOUNT | (read_only ? MS_RDONLY : 0), DISK_OPTS), 0,
                 "remount: %s", strerror(errno));
}

/* The worker exits 3 naming the fault. */
static void assert_disk_exit(pid_t pid, const kh_worker_t *w, const char *what)
{
    int st = kh_wait_exit(pid, KH_DEADLINE_S, w->log);
    char *log = kh_slurp(w->log);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3, "status %d, want exit 3; log:\n%s", st,
              log);
    cr_assert_not_null(strstr(log, what), "no \"%s\" in the log:\n%s", what, log);
    cr_assert_not_null(strstr(log, "hint=\"the state directory's filesystem is full or "
                                   "read-only"),
                       "%s", log);
    free(log);
}

typedef struct fixture {
    rs_mockbroker_t *mb;
    const char *bs;
    kh_events_t events;
    kh_worker_t w;
} fixture_t;

static void setup(fixture_t *f, const char *group, const char *extra)
{
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    memset(f, 0, sizeof *f);
    cr_assert_eq(rs_mockbroker_new(&f->mb, &mo, err, sizeof err), 0, "%s", err);
    f->bs = rs_mockbroker_bootstraps(f->mb);
    kh_load_sample(&f->events, 1);
    kh_worker_init(&f->w, f->bs, group, extra);
    snprintf(workdir, sizeof workdir, "%s", f->w.dir);
    mount_disk(f->w.state);
}

/* Everything the sample book holds is in the journal, once the fault is
 * gone: the deduplicated journal equals replay. */
static void finish(fixture_t *f)
{
    kh_worker_run_idle(&f->w, NULL);
    kh_check_topic_balances(f->bs, "revenue.journal", NULL, &f->events);
    kh_ev_free(&f->events);
    rs_mockbroker_destroy(f->mb);
}

Test(defects, disk_full_at_start, .timeout = 180, .fini = cleanup)
{
    fixture_t f;
    setup(&f, "g-disk-start", "exit.when.idle=true\ninput.format=json\noutput.format=json\n");
    kh_produce_book(f.bs, &f.events);
    fill_disk(f.w.state);
    /* before the fix: SIGABRT from a RocksDB assertion, no error line */
    assert_disk_exit(kh_worker_start(&f.w, NULL), &f.w, "no space left");
    free_disk(f.w.state);
    finish(&f);
}

Test(defects, disk_read_only, .timeout = 180, .fini = cleanup)
{
    fixture_t f;
    setup(&f, "g-disk-ro", "exit.when.idle=true\ninput.format=json\noutput.format=json\n");
    kh_produce_book(f.bs, &f.events);
    remount(f.w.state, 1);
    assert_disk_exit(kh_worker_start(&f.w, NULL), &f.w, "read-only");
    remount(f.w.state, 0);
    finish(&f);
}

Test(defects, disk_full_while_running, .timeout = 180, .fini = cleanup)
{
    fixture_t f;
    /* the worker waits for input (never idle). RocksDB preallocates its
     * write-ahead log 1.1 x the memtable size ahead when it creates it: a
     * 64 MiB memtable's 70 MiB cannot be preallocated on this 64 MiB disk,
     * so the fill shows at the first commit after it, as it does on a real
     * disk once the preallocated log is used up or at the next memtable
     * flush (with the default 32 MiB the log's first 35 MiB are reserved
     * before the fill and this small book's commits fit in them). */
    setup(
        &f, "g-disk-run",
        "exit.when.idle=false\ninput.format=json\noutput.format=json\nstate.memtable.mb=64\n");
    pid_t pid = kh_worker_start(&f.w, NULL);
    kh_wait_log(f.w.log, "assigned topic_partitions", pid);
    fill_disk(f.w.state);
    kh_produce_book(f.bs, &f.events);
    assert_disk_exit(pid, &f.w, "state: ");
    free_disk(f.w.state);
    /* the restart resumes: nothing of what failed was committed */
    char *cfg = kh_slurp(f.w.cfg);
    char *p = strstr(cfg, "exit.when.idle=false");
    cr_assert_not_null(p);
    memcpy(p, "exit.when.idle=true \n", 21);
    kh_write_file(f.w.cfg, cfg);
    free(cfg);
    finish(&f);
}
