/*
 * cmd_replay_pack.h — replay's packed contracts: a memory budget for the
 * contracts `revstream replay` keeps live in its engine, the rest held
 * packed (rs_engine_pack_contract) and unpacked when an event, a month-end
 * close or a report needs them. See cmd_replay_pack.c for the invariants.
 *
 * Ownership: the pack borrows the engine (which must outlive it) and owns
 * every packed record and its tables; rs_rpack_destroy frees them.
 */
#ifndef CMD_REPLAY_PACK_H
#define CMD_REPLAY_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "rs_engine.h"
#include "rs_report.h"

typedef struct rs_rpack rs_rpack_t;

/* A pack for `e` that keeps the live contracts' heap (as
 * rs_engine_contract_bytes counts it) within `budget` bytes (0: every
 * contract no event is touching is packed). Sets itself as e's advance
 * hook. 0, or -1 with errstr. */
int rs_rpack_new(rs_rpack_t **out, rs_engine_t *e, size_t budget, char *errstr, size_t errlen);
void rs_rpack_destroy(rs_rpack_t *p); /* accepts NULL */

/* Take in every contract the engine holds (a pack made after events were
 * applied without one): all live, counted at the next rs_rpack_settle.
 * 0, or -1 with errstr. */
int rs_rpack_adopt(rs_rpack_t *p, char *errstr, size_t errlen);

/* Before an event for contract_id is applied: have the contract in the
 * engine (unpacked and caught up through the closes it missed). 0, or -1
 * with errstr. */
int rs_rpack_fetch(rs_rpack_t *p, const char *contract_id, char *errstr, size_t errlen);
/* After it was applied: count its bytes and pack contracts, least
 * recently fetched first, while the live ones are over the budget. 0, or
 * -1 with errstr. */
int rs_rpack_settle(rs_rpack_t *p, char *errstr, size_t errlen);

/* rs_report_each_fn over every contract, live or packed, in contract_id
 * order (a packed one is unpacked for the call, then dropped again). */
int rs_rpack_each(void *opaque, rs_report_contract_fn fn, void *arg);
/* Unpack every contract into the engine for good (the reports that read
 * the engine's views). 0, or -1 with errstr. */
int rs_rpack_unpack_all(rs_rpack_t *p, char *errstr, size_t errlen);

/* Why the last advance hook failed ("" if none). */
const char *rs_rpack_error(const rs_rpack_t *p);

typedef struct rs_rpack_stats {
    size_t contracts;    /* known to the pack */
    size_t live, packed; /* in the engine / packed now */
    size_t live_bytes;   /* the live contracts' heap, as last counted */
    size_t packed_bytes; /* bytes of the packed records */
    size_t pending;      /* waiting events inside packed records */
    uint64_t packs, unpacks, walked, written;
} rs_rpack_stats_t;
void rs_rpack_get_stats(const rs_rpack_t *p, rs_rpack_stats_t *out);

#endif
