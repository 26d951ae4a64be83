/*
 * cmd_replay_acc.h — replay's report aggregator on a thread of its own.
 *
 * Replay's engine thread emits an entry and goes on; summing it into the
 * rs_report_acc_t (a hash lookup of its line, mostly a cache miss) happens
 * on a second thread, overlapping with the engine on the second core.
 *
 * Invariants:
 *   - The aggregator sees exactly the calls the engine thread made, in the
 *     same order: every rs_replay_acc_add() as rs_report_acc_add() of that
 *     entry, every rs_replay_acc_floor() as rs_report_acc_set_floor(). The
 *     result is the same aggregator, bit for bit, as calling them directly.
 *   - An entry is copied when added (what rs_report_acc_add reads of it:
 *     ids, currency, period, kind, rule, exponent, measures, postings'
 *     accounts and amounts), so the engine may reuse its entry at once.
 *   - At most RS_REPLAY_ACC_BATCHES batches of RS_REPLAY_ACC_BATCH bytes are
 *     in flight: memory is bounded whatever the book.
 *   - After the first failing rs_report_acc_add the thread adds nothing more
 *     (as replay's sink did); rs_replay_acc_finish() returns that result.
 *
 * Ownership and threads: borrows `acc`, which only the aggregator's thread
 * touches from rs_replay_acc_new() until rs_replay_acc_finish() returns;
 * then it is the caller's again. One producer thread.
 */
#ifndef CMD_REPLAY_ACC_H
#define CMD_REPLAY_ACC_H

#include "rs_engine.h"
#include "rs_report.h"

#define RS_REPLAY_ACC_BATCH ((size_t)64 * 1024)
#define RS_REPLAY_ACC_BATCHES 8

typedef struct rs_replay_acc rs_replay_acc_t;

/* Start the thread. Returns 0, or -1 with errstr. */
int rs_replay_acc_new(rs_replay_acc_t **out, rs_report_acc_t *acc, char *errstr, size_t errlen);
/* Queue rs_report_acc_add(acc, e). 0, or -1 on ENOMEM (nothing queued). */
int rs_replay_acc_add(rs_replay_acc_t *q, const rs_entry_t *e);
/* Queue rs_report_acc_set_floor(acc, floor). 0, or -1 on ENOMEM. */
int rs_replay_acc_floor(rs_replay_acc_t *q, rs_period_t floor);
/* Wait until everything queued is added; stop the thread. Returns the
 * first failing rs_report_acc_add's result (-1 or RS_REPORT_ERANGE), or 0.
 * Once only. */
int rs_replay_acc_finish(rs_replay_acc_t *q);
/* Stop the thread (finishing first if not yet done) and free. Accepts NULL. */
void rs_replay_acc_destroy(rs_replay_acc_t *q);

#endif
