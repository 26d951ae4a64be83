/*
 * rs_engine_walk.c — the lazy close's walk (state/rs_pstate.h C2) with the
 * fewest lookups of the contract table: the walk touches every contract of
 * a partition once per month end, and each lookup of a string id in a
 * table of ~100,000s of contracts costs a few cache misses (bench/README.md,
 * the close's profile). The contract table itself is rs_engine_table.c's.
 *
 * Invariants:
 *   - rs_engine_walk_contract() is rs_engine_contract_is_changed(),
 *     rs_engine_recognize_contract() and, for a change it does not keep,
 *     rs_engine_contract_clear_changed() with one lookup: same state, same
 *     entries, same changed set.
 *   - rs_engine_walk_record() is rs_engine_import_caught_up(e, id, ..., e's
 *     own history, below, recognize) without the import's lookup of a
 *     contract to replace: the caller states that the engine holds no
 *     contract of that id (the walk reads the store's records of contracts
 *     not in memory), so the table never holds two of one id.
 *   - A contract the recognition marks changed is the last of the changed
 *     set (rs_eng_mark_changed appends), so taking it out is O(1).
 */
#include "rs_engine.h"

#include <stdio.h>

#include "rs_engine_internal.h"

/* Take c, marked changed last, out of the changed set again. */
static void unmark_last(rs_engine_t *e, rs_contract_t *c)
{
    if (!c->changed)
        return;
    if (e->nchanged > 0 && e->changed[e->nchanged - 1] == c) {
        e->nchanged--;
        c->changed = 0;
    } else {
        rs_engine_contract_clear_changed(e, c->contract_id);
    }
}

int rs_engine_walk_contract(rs_engine_t *e, const char *contract_id, int keep)
{
    rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    if (c == NULL)
        return 0;
    int was = c->changed;
    if (rs_eng_sync_contract(e, c, e->horizon, RS_DATE_NONE))
        return -1;
    if (was || !c->changed)
        return 0;
    if (!keep)
        unmark_last(e, c);
    return 1;
}

int rs_engine_walk_record(rs_engine_t *e, const char *contract_id, const void *buf, size_t len,
                          rs_period_t below, int keep_moves, int *moves, char *errstr,
                          size_t errlen)
{
    int m = 0;
    e->import_absent = 1;
    int rc = rs_engine_import_caught_up(e, contract_id, buf, len, NULL, below, 1, &m, errstr,
                                        errlen);
    e->import_absent = 0;
    if (moves != NULL)
        *moves = m < 0 ? 0 : m;
    if (rc == 1 && m < keep_moves) {
        rs_contract_t *c = rs_eng_contract_find(e, contract_id);
        if (c != NULL)
            unmark_last(e, c);
    }
    return rc;
}
