/*
 * rs_state_tune.h — private to rs_state (and bench/bench_state.c, which
 * compares the variants in one run): the store's write-path choices as
 * values, so a benchmark can open a store or commit a batch the way an
 * earlier build did and print both from the same run. The worker and the
 * tests never call these: rs_state_open() and rs_state_batch_new() use
 * RS_STATE_TUNE_DEFAULT, the choices measured best (bench/README.md,
 * h17-commit).
 */
#ifndef RS_STATE_TUNE_H
#define RS_STATE_TUNE_H

#include <stddef.h>

#include "rs_state.h"

typedef struct rs_state_tune {
    int l0_plain;       /* flushes (level 0) uncompressed, LZ4 below; 0: LZ4 everywhere */
    int memtable_bloom; /* the memtable's whole-key bloom filter (ratio 0.1) */
    int bg_nice;        /* RocksDB's flush and compaction threads at a lower CPU priority */
    int insert_hint;    /* memtable inserts hinted per key prefix (rs_state_keys.h) */
    int l0_trigger;     /* level-0 files that start a compaction; 0: RocksDB's default (4) */
} rs_state_tune_t;

#define RS_STATE_TUNE_DEFAULT                                                                  \
    ((rs_state_tune_t){                                                                        \
        .l0_plain = 0, .memtable_bloom = 1, .bg_nice = 0, .insert_hint = 1, .l0_trigger = 8})

/* rs_state_open() with these choices instead of the defaults. */
int rs_state_open_tuned(rs_state_t **out, const rs_state_opts_t *opts, const rs_state_tune_t *t,
                        char *errstr, size_t errlen);

/* How b's commits are written: sorted_min, the key-ordered copy from this
 * many operations (0: never; the default is RS_STATE_SORTED_WRITE_MIN);
 * fresh, the copy's buffers freed after each commit (what builds before
 * h17-commit did) instead of kept for the next one. */
void rs_state_batch_tune(rs_state_batch_t *b, size_t sorted_min, int fresh);

#endif
