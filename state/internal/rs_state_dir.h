/*
 * rs_state_dir.h — private to rs_state: disk faults (the state directory's
 * filesystem full, over quota or read-only).
 */
#ifndef RS_STATE_DIR_H
#define RS_STATE_DIR_H

/* Is a RocksDB error message a disk fault (full, over quota, read-only)?
 * 1 or 0. */
int rs_state_is_disk_fault(const char *msg);

#endif
