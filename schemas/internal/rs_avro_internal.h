/*
 * rs_avro_internal — what the files of the Avro codec share. Internal to
 * schemas/ (rs_codec's PRIVATE include folder); the interface is rs_avro.h.
 *
 * The Avro codec is split by job:
 *   rs_avro_schemas.c     the compiled-in schema texts and names, and the
 *                         field index tables (layouts) of a parsed schema;
 *   rs_avro_scan.c        the bounds checker that runs before Avro C reads a
 *                         body (and the public rs_avro_checker_t);
 *   rs_avro_projection.c  the reader schema for a writer: our event records
 *                         cut down to what the writer has;
 *   rs_avro_cache.c       the cache of writer schema ids and their entries;
 *   rs_avro_decode.c      wire-format message -> rs_event_t;
 *   rs_avro_encode.c      events, journal entries, balances and dead letters
 *                         -> wire-format messages;
 *   rs_avro_direct.c      journal entries and balances written straight
 *                         into bytes from a plan of the writer schema (the
 *                         same bytes; the generic path is the fallback);
 *   rs_avro_read.c        input events read straight from the bytes by a
 *                         read plan of the writer schema (the same events;
 *                         the generic path is the fallback and gives every
 *                         error).
 *
 * Invariants:
 *   - Per writer id (rs_avro_entry_t), built once and kept until the cache is
 *     destroyed:
 *       scan      a flat program compiled from the writer schema that walks a
 *                 body and checks every varint, length, count, branch and
 *                 enum index against the bytes present, before Avro C reads
 *                 it (so no corrupt length reaches avro_malloc);
 *       decoding  (on first decode) the projected reader: rs_avro_reader_text
 *                 cut to the writer's records and stripped of optional fields
 *                 the writer lacks (Avro C 1.11.1 cannot fill reader
 *                 defaults); the resolver writer -> projected reader, or none
 *                 when the two parse equal (the fast path for our own
 *                 schemas); the reader value; and the layout `rlay`;
 *       encoding  (on first encode) a generic value of the writer schema,
 *                 its layout `wlay`, and which of its fields revstream must
 *                 null; (on first direct write) the plans `dplans`.
 *     A failure to build either side is remembered (ESCHEMA with the same
 *     message every time); it is not retried per message.
 *   - Field access never goes by name at run time: every record revstream
 *     knows has a kind (RS_RK_*) and a fixed list of field slots
 *     (rs_codec_fields.h); a layout maps (kind, slot) to the field's index in
 *     that id's schema, -1 when the schema lacks the field.
 *
 * Ownership: the cache owns its entries; an entry owns its schema text copy,
 * schemas, ifaces and values (released in rs_avro_cache.c). A scan program
 * borrows the schema it was compiled from.
 */
#ifndef RS_AVRO_INTERNAL_H
#define RS_AVRO_INTERNAL_H

#include <avro.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_avro.h"
#include "rs_codec_fields.h"

/* ---- rs_avro_schemas.c ---- */

/* Every event record, branch i being event type i + 1 (so record kind k is
 * branch k): what every writer schema is read into. */
extern const char rs_avro_reader_text[];

/* (kind, slot) -> field index in one schema; -1 when absent. */
typedef struct rs_avro_layout {
    int8_t idx[RS_RK__COUNT][RS_CODEC_MAX_SLOTS];
    uint8_t seen[RS_RK__COUNT]; /* the schema has this record */
} rs_avro_layout_t;

/* Fill `lay` from every record reachable in `s`. */
void rs_avro_layout_build(rs_avro_layout_t *lay, avro_schema_t s);

/* ---- rs_avro_scan.c ---- */

typedef struct rs_avro_snode {
    avro_schema_t schema; /* borrowed from the entry's writer schema (memo key) */
    int type;             /* avro_type_t */
    int32_t n;            /* record fields, union branches, enum symbols; 1 for array/map */
    int32_t first;        /* first child in prog->kids */
    int64_t size;         /* fixed: byte size */
} rs_avro_snode_t;

/* A schema compiled for the scanner; node 0 is the schema itself. All zero
 * is an empty program. */
typedef struct rs_avro_scan_prog {
    rs_avro_snode_t *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t *kids;
    int32_t n_kids, cap_kids;
} rs_avro_scan_prog_t;

/* Compile `s` into `p`; returns its node index, or -1 with a static reason
 * in *why ("out of memory", or a schema too large or broken). */
int32_t rs_avro_scan_compile(rs_avro_scan_prog_t *p, avro_schema_t s, const char **why);
void rs_avro_scan_free(rs_avro_scan_prog_t *p);
/* Check the body msg[RS_AVRO_HEADER_SIZE..len) against the program: 0, or -1
 * with the reason in why. *top_branch: the top-level union branch, or -1. */
int rs_avro_scan_body(const rs_avro_scan_prog_t *prog, const uint8_t *msg, size_t len,
                      int64_t *top_branch, char *why, size_t whylen);
/* Skip one value of program node `node` at msg[*pos], within msg[0..len),
 * checked as rs_avro_scan_body checks it at nesting `depth`, *items the
 * array and map items counted so far in the message; a block with a byte
 * size must also hold exactly its items. 0 with *pos and *items advanced,
 * or -1. */
int rs_avro_scan_skip(const rs_avro_scan_prog_t *prog, int32_t node, const uint8_t *msg,
                      size_t len, size_t *pos, int depth, int64_t *items);

/* ---- rs_avro_projection.c ---- */

/* The reader for writer schema text `wtext`: the union of our event records
 * the writer has (in event-type order) or, for a writer that is one record,
 * that record. branch_type[i] receives the event type of reader branch i.
 * Returns a malloc'd schema text, or NULL with a reason in why. */
char *rs_avro_projected_reader(const char *wtext, rs_event_type_t branch_type[RS_RK__EVENTS],
                               int *n_branches, char *why, size_t whylen);

/* ---- rs_avro_direct.c ---- */

/* A value for one field slot of a record written directly. */
enum {
    RS_DV_UNSET = 0,
    RS_DV_NULL,
    RS_DV_STR,
    RS_DV_LONG,
    RS_DV_INT,
    RS_DV_ARRAY,
    RS_DV__COUNT
};
/* Array items that are no record kind (rs_avro_dval_t.item, rs_avro_dfield_t.item). */
enum { RS_DITEM_STRING = -2, RS_DITEM_OTHER = -3 };
#define RS_DPLAN_MAX_FIELDS 64

typedef struct rs_avro_dval {
    uint8_t tag;   /* RS_DV_* */
    uint8_t added; /* a value a later schema version added: left out when the writer lacks it */
    int8_t
        item; /* ARRAY: a record kind (items of RS_CODEC_MAX_SLOTS values) or RS_DITEM_STRING */
    uint32_t n; /* STR: its length; ARRAY: its items */
    union {     /* by tag (16 bytes a value: a record's values are cleared per message) */
        const char *s;                    /* STR */
        int64_t l;                        /* LONG, INT */
        const struct rs_avro_dval *items; /* ARRAY */
    };
} rs_avro_dval_t;

/* One writer field of a record: its slot (-1: a field revstream does not
 * know, written null), the union branch per value tag (-1: none; a field
 * that is no union has 0 for its type's tag), its array items' kind. */
typedef struct rs_avro_dfield {
    int8_t slot;
    int8_t is_union;
    int8_t item;
    int16_t br[RS_DV__COUNT];
} rs_avro_dfield_t;

/* The writer's record of one kind, in its field order. state: 0 not built,
 * 1 ready, -1 not direct. top_branch: the top-level union branch holding
 * it, -1 when the writer is the record, -2 when neither. */
typedef struct rs_avro_dplan {
    int state, nf, top_branch;
    int8_t slot_field[RS_CODEC_MAX_SLOTS]; /* slot -> field index, -1 absent */
    uint32_t lacks; /* bit s: the kind names slot s and the writer lacks it */
    int inorder;    /* the writer's fields are the kind's slots, in slot order */
    rs_avro_dfield_t f[RS_DPLAN_MAX_FIELDS];
} rs_avro_dplan_t;

/* What the direct writer keeps between messages (a cache's, so each thread's
 * own): the last day and the last two months it formatted, a month per
 * field that holds one (text as rs_date_format and rs_period_format give
 * it; RS_DATE_NONE / RS_PERIOD_NONE: none yet), and the lengths of the
 * entry kind and account names (names_ready). */
typedef struct rs_avro_dmemo {
    int32_t date, period[2];
    uint32_t date_n, period_n[2];
    char date_text[32], period_text[2][32];
    int names_ready;
    uint8_t kind_n[RS_ENTRY__COUNT], account_n[RS_ACCT__COUNT];
} rs_avro_dmemo_t;

struct rs_avro_entry;
/* Journal entries and balance snapshots written directly (the entry's
 * encoding side prepared). 0 with *buf malloc'd, or 1: use the generic
 * path (it gives the same bytes or the error). */
int rs_avro_direct_entry(rs_avro_cache_t *c, struct rs_avro_entry *ent, const rs_entry_t *e,
                         void **buf, size_t *len);
int rs_avro_direct_balance(rs_avro_cache_t *c, struct rs_avro_entry *ent,
                           const rs_avro_balance_t *b, void **buf, size_t *len);

/* ---- rs_avro_decode.c ---- */

/* An Avro string of n bytes as the field source hands it out: 1, or
 * RS_CODEC_EBAD with the reason in *why (a NUL byte, or not UTF-8). */
int rs_avro_string_check(const char *s, size_t n, const char **why);

/* ---- rs_avro_read.c ---- */

struct rs_avro_entry;
struct rs_avro_rplan;  /* an entry's read plan (rs_avro_read.c) */
struct rs_avro_rstate; /* a cache's scratch for reading (rs_avro_read.c) */
/* Decode the event in msg[0..len) directly; the entry's decoding side must
 * be ready (dec_state 1). 0 with *ev filled, or 1 with *ev cleared: run the
 * generic path (a shape the plan does not cover, anything malformed or
 * invalid: the generic path gives the error). */
int rs_avro_read_direct(rs_avro_cache_t *c, struct rs_avro_entry *e, const uint8_t *msg,
                        size_t len, rs_event_t *ev);
void rs_avro_read_plan_free(struct rs_avro_rplan *p);   /* accepts NULL */
void rs_avro_read_state_free(struct rs_avro_rstate *s); /* accepts NULL */

/* ---- rs_avro_cache.c ---- */

typedef struct rs_avro_entry {
    int32_t id;
    char *text; /* the writer schema as registered */
    avro_schema_t wschema;
    rs_avro_scan_prog_t prog;
    int8_t *wbranch_kind; /* writer top-level union branch -> RS_RK_ or -1 */
    size_t n_wbranches;   /* 0 when the writer is not a union */

    /* decoding: dec_state 0 = not built, 1 = ready, -1 = failed (dec_error) */
    int dec_state;
    char *dec_error;
    avro_schema_t rschema;
    avro_value_iface_t *rclass;
    avro_value_t rvalue;
    avro_value_iface_t *resolver; /* NULL: the writer is the reader */
    avro_value_t resolved;
    rs_event_type_t branch_type[RS_RK__EVENTS];
    int n_branches;
    int r_is_union;
    rs_avro_layout_t rlay;

    /* encoding: the same states */
    int enc_state;
    char *enc_error;
    avro_value_iface_t *wclass;
    avro_value_t wvalue;
    rs_avro_layout_t wlay;
    uint64_t nullmask[RS_RK__COUNT]; /* writer fields unknown to us, set to null */
    rs_avro_dplan_t *dplans;         /* [RS_RK__COUNT], on first direct write */
    struct rs_avro_rplan *rplan;     /* on first direct read */
} rs_avro_entry_t;

struct rs_avro_cache {
    rs_avro_entry_t **entries;
    size_t n, cap;
    rs_avro_entry_t *last;
    rs_avro_lookup_fn lookup;
    void *lookup_opaque;
    avro_reader_t reader; /* decoding reads through it (rs_avro_decode.c) */
    avro_writer_t writer; /* encoding writes through it (rs_avro_encode.c) */
    int generic_only;     /* rs_avro_cache_set_direct(c, 0) */
    uint64_t direct_writes;
    uint8_t *dbuf; /* the direct writer's scratch (rs_avro_direct.c) */
    size_t dcap;
    rs_avro_dmemo_t dmemo;
    int generic_read;              /* rs_avro_cache_set_direct_read(c, 0) */
    uint64_t direct_reads;         /* events the direct reader decoded */
    struct rs_avro_rstate *rstate; /* the direct reader's scratch (rs_avro_read.c) */
};

/* avro_strerror(), or a placeholder when it is empty. Copy it at once: it is
 * one global buffer (see rs_avro.h). */
const char *rs_avro_why(void);
/* The entry for `id`, asking the lookup hook when it is not cached. */
int rs_avro_entry_get(rs_avro_cache_t *c, int32_t id, rs_avro_entry_t **out, char *errstr,
                      size_t errlen);
/* Mark one side of an entry failed (*state = -1) and keep `msg` in *slot for
 * later calls; returns RS_AVRO_ESCHEMA (RS_AVRO_ENOMEM if msg cannot be kept). */
int rs_avro_remember_error(char **slot, int *state, const char *msg);

#endif
