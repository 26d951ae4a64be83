/*
 * rs_pstate_seen.h — private to rs_state: the seen sets rs_pstate keeps in
 * memory (rs_pstate_seen.c). A contract's set is read from the store (one
 * Get of its 0x51 key) at the first lookup of one of its ids since it came
 * into memory, kept with it (its bytes counted with the contract's in the
 * cache, dropped when the contract is evicted), and kept equal to the
 * store's by applying to it every merge staged for the contract.
 */
#ifndef RS_PSTATE_SEEN_H
#define RS_PSTATE_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include "rs_pstate.h"
#include "rs_state.h"

typedef struct rs_pseen rs_pseen_t;

/* An empty map of partition `partition`'s sets in `st` (borrowed). NULL
 * when out of memory. */
rs_pseen_t *rs_pseen_new(rs_state_t *st, int32_t partition);
void rs_pseen_free(rs_pseen_t *m); /* accepts NULL */

/* The engine's seen lookup (rs_seen_lookup_fn, as rs_state_get_seen): 0
 * seen (*content_hash), 1 not, -1 error (errstr). */
int rs_pseen_lookup(rs_pseen_t *m, const char *contract_id, uint64_t id_hash,
                    uint64_t *content_hash, char *errstr, size_t errlen);
/* Forget the contract's set (its contract leaves memory). */
void rs_pseen_drop(rs_pseen_t *m, const char *contract_id);
/* The heap the contract's set holds (0 when none is kept). */
size_t rs_pseen_bytes(const rs_pseen_t *m, const char *contract_id);

/* The map and the store of a pstate (rs_pstate.c). */
rs_pseen_t *rs_pstate_seen_map(rs_pstate_t *ps);
rs_state_t *rs_pstate_store(rs_pstate_t *ps);

#endif
