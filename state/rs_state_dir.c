/*
 * rs_state_dir.c — the state directory's filesystem: can a writable store
 * live there (rs_state_check_dir, rs_state.h), and is a RocksDB error a disk
 * fault (rs_state_dir.h); and which RocksDB the store was built with
 * (rs_state_rocksdb_version).
 *
 * Invariants: rs_state_check_dir writes, syncs and removes one probe file
 * and leaves nothing else behind; it never opens RocksDB (which aborts
 * without an error when the disk fills while it opens).
 */
#include "rs_state_dir.h"
#include "rs_err.h"
#include "rs_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Is a RocksDB error message a disk fault (full, over quota, read-only)? */
int rs_state_is_disk_fault(const char *msg)
{
    static const char *const marks[] = {"No space left", "Read-only file system",
                                        "Disk quota exceeded", "Permission denied", NULL};
    for (int i = 0; marks[i] != NULL; i++)
        if (strstr(msg, marks[i]) != NULL)
            return 1;
    return 0;
}

/* A human size: "1.2 MiB". */
static void fmt_size(char *buf, size_t len, unsigned long long v)
{
    if (v >= 1048576ull)
        snprintf(buf, len, "%.1f MiB", (double)v / (1024.0 * 1024.0));
    else
        snprintf(buf, len, "%llu bytes", v);
}

#define PROBE_BYTES 65536

int rs_state_check_dir(const char *path, char *errstr, size_t errlen)
{
    char probe[4200], have[32], need[32];
    struct statvfs vfs;
    static char zeros[PROBE_BYTES];
    int fd = -1, e = 0;

    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        e = errno;
        rs_errorf(errstr, errlen, "cannot create the state directory: %s", strerror(e));
        return e == ENOSPC || e == EROFS || e == EDQUOT || e == EACCES || e == EPERM
                   ? RS_STATE_EDISK
                   : -1;
    }
    if (statvfs(path, &vfs) != 0) {
        rs_errorf(errstr, errlen, "statvfs: %s", strerror(errno));
        return -1;
    }
    if (vfs.f_flag & ST_RDONLY) {
        rs_errorf(errstr, errlen, "the state directory is on a read-only filesystem");
        return RS_STATE_EDISK;
    }
    unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    if (avail < RS_STATE_MIN_FREE_BYTES) {
        fmt_size(have, sizeof have, avail);
        fmt_size(need, sizeof need, RS_STATE_MIN_FREE_BYTES);
        rs_errorf(errstr, errlen, "no space left: %s free, at least %s needed", have, need);
        return RS_STATE_EDISK;
    }
    /* quotas, permissions and read-only bind mounts only show on a write */
    snprintf(probe, sizeof probe, "%s/.revstream-probe", path);
    fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros || fsync(fd) != 0)
        e = errno != 0 ? errno : EIO;
    if (fd >= 0)
        close(fd);
    unlink(probe);
    if (e != 0) {
        rs_errorf(errstr, errlen, "the state directory is not writable: %s", strerror(e));
        return e == ENOSPC || e == EROFS || e == EDQUOT || e == EACCES || e == EPERM
                   ? RS_STATE_EDISK
                   : -1;
    }
    return 0;
}

const char *rs_state_rocksdb_version(void)
{
    return RS_ROCKSDB_VERSION; /* pkg-config's, at configure time */
}
