/*
 * cmd_replay.c — `revstream replay FILE.jsonl`: run a file of events through
 * an engine and print one report.
 *
 * Invariants:
 *   - Events are applied in file order, one line at a time; a line of any
 *     length is read whole (getline). Lines holding only whitespace are
 *     skipped but still counted, so line numbers are the file's.
 *   - Every refused event — a line that does not decode, an event the engine
 *     rejects, and an event that waited and was rejected once its reference
 *     arrived (rs_engine_take_late_rejections) — is printed on stderr as
 *     "replay: line N: <error>" when it happens and kept for the `rejected`
 *     report. A late rejection carries the line of the event that waited.
 *   - `--through` defaults to the period of the latest occurred_on among the
 *     events the engine accepted (applied, duplicate or waiting), so one bad
 *     date cannot move the report into the future.
 *   - `--policy FILE` is read whole (any size) and parsed over the defaults
 *     before any event is read; an unreadable file or a parse error stops
 *     the run (exit 1, no report) with a message naming the file and the
 *     parser's "policy line N: KEY: ..." reason. The engine copies the
 *     policy; reports take it back from rs_engine_policy() (journal account
 *     codes), so the engine is the one source of the policy in force.
 *   - Exit status: 0 nothing rejected; 2 something rejected (the report is
 *     still printed); 1 usage, I/O or out-of-memory error (no report, or an
 *     incomplete one on a write error).
 *   - stdout carries only the report; stderr carries key=value logs
 *     ("replay: policy ...", "replay: progress ...", "replay: done ...") and
 *     the rejection lines.
 *
 *   - Memory is the engine's state, not the journal: the entries the engine
 *     emits are not kept. The reports of the books (schedule, balances,
 *     waterfall, rollforward, exceptions) sum them as they come in an
 *     rs_report_acc_t, on a thread of its own (cmd_replay_acc.h: the same
 *     adds and floors in the same order, so the same sums). All but the
 *     schedule fold each line's periods up to the report's (the latest
 *     event's so far, or --through) into one cell (rs_report_acc_set_floor)
 *     and, with --through, drop the lines' entries after it
 *     (rs_report_acc_set_limit), and lines keep only the sums the report
 *     reads (rs_report_acc_need: none for the rollforward).
 *     `--report journal` writes each
 *     entry to an unlinked spool file ($TMPDIR, else /tmp) as it comes,
 *     packed (spool_pack: numbers, postings and the used bytes of its
 *     strings), and keeps only a small key per entry (period, contract, seq,
 *     offset, length), then prints the entries with period <= through in
 *     the order of rs_report_journal (period, contract_id, seq), read back
 *     one at a time. Output is the same bytes as printing a kept journal.
 *   - Contracts beyond --memory-mb (live heap, default MEMORY_MB_DEFAULT)
 *     are held packed (cmd_replay_pack.c). Until the engine's heap
 *     (rs_engine_memory_bytes, checked every check_every() events)
 *     comes within an eighth of the budget there is no pack and nothing
 *     per event; then the pack takes in every contract, and they are
 *     fetched before each event for
 *     them, packed again after it while the live ones are over the budget,
 *     walked by every close (the engine's advance hook) and, for balances
 *     and waterfall, by the report one contract at a time
 *     (rs_report_acc_*_each); the reports that read the engine's views
 *     (schedule, exceptions, invoices, pending) unpack the whole book
 *     first. Every output is the same bytes whatever the budget.
 *
 * Ownership: replay_t owns the engine, the aggregator or the spool and its
 * keys (with the interned contract ids), the kept rejections (their reason
 * strings) and the map from a waiting event's id to its line; replay_free()
 * releases all of it.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd_replay_acc.h"
#include "cmd_replay_pack.h"
#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_codec_jsonl.h"
#include "rs_engine.h"
#include "rs_format.h"
#include "rs_report.h"

#define PROGRESS_EVERY 100000
#define MEMORY_MB_DEFAULT 128       /* --memory-mb: live contracts' heap, MiB */
#define MEMORY_CHECK_EVERY 16384    /* events between checks of the engine's heap */
#define PROGRESS_AUTO_LINES 1000000 /* stderr a tty and more lines than this */

static const char *const reports[] = {"schedule", "balances",   "waterfall", "rollforward",
                                      "journal",  "exceptions", "rejected",  "pending",
                                      "invoices", NULL};

typedef struct rejected {
    long line;
    uint64_t seq; /* order of occurrence, to sort stably by line */
    char event_id[RS_ID_MAX];
    char type[64];
    char *reason; /* owned */
} rejected_t;

/* The key of a spooled entry: where it is and how the journal sorts it. */
typedef struct spool_key {
    const char *contract_id; /* interned in replay_t.cids */
    uint64_t seq;
    off_t off;
    uint32_t len; /* bytes of its packed form (spool_pack) */
    rs_period_t period;
} spool_key_t;

typedef struct replay {
    /* options */
    const char *path;
    int has_through;
    rs_period_t through;
    const char *report;
    rs_format_kind_t format;
    int progress;
    const char *policy_path; /* NULL: the default policy */
    rs_policy_t policy;      /* parsed from policy_path over the defaults */
    size_t memory;           /* --memory-mb in bytes; SIZE_MAX: unlimited */

    /* state */
    rs_engine_t *engine;
    rs_rpack_t *pack;      /* the packed contracts (NULL: not needed yet) */
    uint64_t since_check;  /* events since the engine's heap was checked */
    size_t entries;        /* entries the engine emitted */
    int sink_err;          /* 0, or the errno that made the sink drop an entry */
    rs_report_acc_t *acc;  /* sums for the reports of the books */
    rs_replay_acc_t *accq; /* adds to acc on its own thread (cmd_replay_acc.h) */
    FILE *spool;           /* --report journal: the entries, as emitted */
    off_t spool_size;
    spool_key_t *keys;
    size_t n_keys, cap_keys;
    json_t *cids;          /* contract ids of the spooled entries (a set) */
    const char *last_cid;  /* the last one interned */
    rs_entry_t *entry_buf; /* an entry read back from the spool */
    char *pack_buf;        /* SPOOL_MAX_PACKED bytes: an entry's packed form */
    json_t *waiting_line;  /* event_id -> line of events that had to wait */
    rejected_t *rej;
    size_t n_rej, cap_rej;
    long lines;
    uint64_t events;    /* lines that decoded */
    rs_period_t latest; /* period of the latest accepted occurred_on */
} replay_t;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: revstream replay FILE.jsonl [--through YYYY-MM] [--report R]\n"
        "                        [--format table|csv|json] [--policy FILE] [--progress]\n"
        "                        [--memory-mb N|unlimited]\n"
        "\n"
        "Apply the events of FILE (JSON Lines, one event per line; '-' reads stdin)\n"
        "in file order and print one report as of the end of --through.\n"
        "\n"
        "  --through YYYY-MM  report period (default: month of the latest event)\n"
        "  --report R         schedule | balances | waterfall | rollforward | journal |\n"
        "                     exceptions | rejected | pending | invoices (default: balances)\n"
        "  --format F         table | csv | json (default: table on a terminal, else json)\n"
        "  --policy FILE      policies and account codes (key = value lines; see\n"
        "                     examples/policy.properties); default: keep_deferred,\n"
        "                     allowance, days_in_month, accounts named by their role\n"
        "  --progress         log progress on stderr every %d lines\n"
        "  --memory-mb N      keep at most N MiB of contracts live in the engine (default\n"
        "                     %d); the others are held packed (~330 bytes for a simple\n"
        "                     contract) and unpacked when an event, a month close or the\n"
        "                     report needs them. Same output whatever N; 0 packs every\n"
        "                     contract no event is touching, 'unlimited' none. The\n"
        "                     schedule, exceptions, invoices and pending reports unpack\n"
        "                     the whole book at the end\n"
        "\n"
        "Exit status: 0 all events accepted, 2 some event rejected (the report is\n"
        "still printed; see --report rejected), 1 usage or I/O error.\n",
        PROGRESS_EVERY, MEMORY_MB_DEFAULT);
}

/* Print ` key="value"` for a log line, escaping quotes, backslashes and
 * control characters so one log record stays on one line. */
static void log_kv(const char *key, const char *value)
{
    fprintf(stderr, " %s=\"", key);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(stderr, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
    }
    fputc('"', stderr);
}

static void replay_free(replay_t *r)
{
    rs_rpack_destroy(r->pack);
    r->pack = NULL;
    rs_engine_destroy(r->engine);
    r->engine = NULL;
    rs_replay_acc_destroy(r->accq); /* its thread is done with acc */
    r->accq = NULL;
    rs_report_acc_free(r->acc);
    r->acc = NULL;
    if (r->spool != NULL)
        fclose(r->spool);
    r->spool = NULL;
    free(r->keys);
    r->keys = NULL;
    json_decref(r->cids);
    r->cids = NULL;
    free(r->entry_buf);
    r->entry_buf = NULL;
    free(r->pack_buf);
    r->pack_buf = NULL;
    json_decref(r->waiting_line);
    r->waiting_line = NULL;
    for (size_t i = 0; i < r->n_rej; i++)
        free(r->rej[i].reason);
    free(r->rej);
    r->rej = NULL;
    r->n_rej = r->cap_rej = 0;
}

static int parse_args(replay_t *r, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"through", required_argument, NULL, 't'}, {"report", required_argument, NULL, 'r'},
        {"format", required_argument, NULL, 'f'},  {"progress", no_argument, NULL, 'p'},
        {"policy", required_argument, NULL, 'P'},  {"memory-mb", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int has_format = 0;
    int opt;

    r->report = "balances";
    r->memory = (size_t)MEMORY_MB_DEFAULT << 20;
    optind = 1;
    opterr = 1; /* getopt reports unknown options as "replay: ..." */
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 't':
            if (rs_period_parse(optarg, &r->through) != 0) {
                fprintf(stderr, "replay: --through: \"%s\" is not a period YYYY-MM\n", optarg);
                return -1;
            }
            r->has_through = 1;
            break;
        case 'r': {
            int ok = 0;
            for (int i = 0; reports[i] != NULL; i++)
                if (strcmp(optarg, reports[i]) == 0)
                    ok = 1;
            if (!ok) {
                fprintf(stderr,
                        "replay: --report: unknown report \"%s\" (schedule, balances, "
                        "waterfall, rollforward, journal, exceptions, rejected, pending, "
                        "invoices)\n",
                        optarg);
                return -1;
            }
            r->report = optarg;
            break;
        }
        case 'f':
            if (rs_format_parse(optarg, &r->format) != 0) {
                fprintf(stderr, "replay: --format: unknown format \"%s\" (table, csv, json)\n",
                        optarg);
                return -1;
            }
            has_format = 1;
            break;
        case 'p':
            r->progress = 1;
            break;
        case 'P':
            r->policy_path = optarg;
            break;
        case 'm': {
            char *end = NULL;
            unsigned long long mb;
            if (strcmp(optarg, "unlimited") == 0) {
                r->memory = SIZE_MAX;
                break;
            }
            errno = 0;
            mb = strtoull(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                mb > (SIZE_MAX >> 20)) {
                fprintf(stderr,
                        "replay: --memory-mb: \"%s\" is not a number of MiB (or unlimited)\n",
                        optarg);
                return -1;
            }
            r->memory = (size_t)mb << 20;
            break;
        }
        case 'h':
            usage(stdout);
            return 1;
        default:
            fprintf(stderr, "replay: run 'revstream replay --help' for usage\n");
            return -1;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "replay: missing FILE (a JSON Lines file, or - for stdin)\n");
        usage(stderr);
        return -1;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "replay: one FILE only (got \"%s\" after \"%s\")\n", argv[optind + 1],
                argv[optind]);
        return -1;
    }
    r->path = argv[optind];
    if (!has_format)
        r->format = isatty(STDOUT_FILENO) ? RS_FORMAT_TABLE : RS_FORMAT_JSON;
    return 0;
}

#define POLICY_READ_CHUNK 8192

/* Read the --policy file whole and parse it over the defaults into
 * r->policy. Returns 0, or -1 with "replay: error=policy file=... reason=..."
 * printed (the reason names the line and the key for a parse error). */
static int load_policy(replay_t *r)
{
    const char *path = r->policy_path;
    char errstr[512];
    const char *reason = NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    FILE *f = NULL;
    int rc = -1;

    rs_policy_defaults(&r->policy);
    f = fopen(path, "r");
    if (f == NULL) {
        reason = strerror(errno);
        goto out;
    }
    errno = 0;
    do {
        if (cap - len < POLICY_READ_CHUNK + 1) {
            size_t ncap = cap ? cap * 2 : 2 * (size_t)POLICY_READ_CHUNK;
            char *p = realloc(text, ncap);
            if (p == NULL) {
                reason = strerror(ENOMEM);
                goto out;
            }
            text = p;
            cap = ncap;
        }
        got = fread(text + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    if (ferror(f)) {
        reason = strerror(errno != 0 ? errno : EIO);
        goto out;
    }
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL) {
        reason = "not a text file: it holds a NUL byte";
        goto out;
    }
    if (rs_policy_parse(&r->policy, text, errstr, sizeof errstr) != 0) {
        reason = errstr;
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        fputs("replay: error=policy", stderr);
        log_kv("file", path);
        log_kv("reason", reason);
        fputc('\n', stderr);
    }
    if (f != NULL)
        fclose(f);
    free(text);
    return rc;
}

/* Log the policy in force, so a report can be traced to its settings. */
static void log_policy(const replay_t *r)
{
    const rs_policy_t *p = &r->policy;
    fputs("replay: policy", stderr);
    log_kv("file", r->policy_path);
    fprintf(stderr, " cancellation=%s bad_debt=%s proration=%s account_codes=%d\n",
            p->cancellation == RS_CANCEL_FORFEIT ? "forfeit" : "keep_deferred",
            p->bad_debt == RS_BAD_DEBT_REVERSE_REVENUE ? "reverse_revenue" : "allowance",
            p->proration == RS_PRORATE_30_360 ? "30_360" : "days_in_month", p->n_codes);
}

/* Keep a rejection and print it on stderr. Returns 0 or -1 (ENOMEM). */
static int reject(replay_t *r, long line, const char *event_id, const char *type,
                  const char *reason, const char *note)
{
    /* one line per rejection, whatever the error quotes from the input */
    fprintf(stderr, "replay: line %ld: ", line);
    for (const unsigned char *p = (const unsigned char *)reason; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, stderr);
    if (note != NULL)
        fprintf(stderr, " (%s)", note);
    fputc('\n', stderr);

    if (r->n_rej == r->cap_rej) {
        size_t cap = r->cap_rej ? r->cap_rej * 2 : 16;
        rejected_t *p = realloc(r->rej, cap * sizeof *p);
        if (p == NULL)
            return -1;
        r->rej = p;
        r->cap_rej = cap;
    }
    rejected_t *x = &r->rej[r->n_rej];
    memset(x, 0, sizeof *x);
    x->line = line;
    x->seq = r->n_rej;
    snprintf(x->event_id, sizeof x->event_id, "%s", event_id != NULL ? event_id : "");
    snprintf(x->type, sizeof x->type, "%s", type != NULL ? type : "");
    x->reason = strdup(reason);
    if (x->reason == NULL)
        return -1;
    r->n_rej++;
    return 0;
}

/* A line the codec refused: pick out event_id and type if the JSON has them. */
static int reject_undecodable(replay_t *r, long line, const char *text, size_t len,
                              const char *errstr)
{
    const char *id = "", *type = "";
    json_t *root = json_loadb(text, len, 0, NULL);
    if (json_is_object(root)) {
        json_t *v = json_object_get(root, "event_id");
        if (json_is_string(v))
            id = json_string_value(v);
        v = json_object_get(root, "type");
        if (json_is_string(v))
            type = json_string_value(v);
    }
    int rc = reject(r, line, id, type, errstr, NULL);
    json_decref(root);
    return rc;
}

static int take_late_rejections(replay_t *r, long now_line)
{
    rs_rejection_t *late = NULL;
    size_t n = rs_engine_take_late_rejections(r->engine, &late);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *l = json_object_get(r->waiting_line, late[i].event_id);
        long line = json_is_integer(l) ? (long)json_integer_value(l) : 0;
        /* the engine forgot the id: a corrected event may reuse it */
        json_object_del(r->waiting_line, late[i].event_id);
        char note[96];
        if (now_line > 0)
            snprintf(note, sizeof note, "it had waited; rejected when line %ld arrived",
                     now_line);
        else
            snprintf(note, sizeof note, "it had waited; rejected at the end of the input");
        const char *type = rs_event_type_name(late[i].type);
        rc = reject(r, line, late[i].event_id, type != NULL ? type : "", late[i].reason, note);
    }
    free(late);
    return rc;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A packed contract that could not be packed or unpacked: logged; -2. */
static int pack_error(const char *reason)
{
    fputs("replay: error=pack", stderr);
    log_kv("reason", reason);
    fputc('\n', stderr);
    return -2;
}

/* Events between checks of the engine's heap: a check walks the engine
 * (O(contracts)), so not often; a small budget sooner (an event adds well
 * under budget/8 / (budget >> 13) = 1 KiB on average). */
static uint64_t check_every(size_t budget)
{
    size_t n = budget >> 13;
    return n < 64 ? 64 : n > MEMORY_CHECK_EVERY ? MEMORY_CHECK_EVERY : n;
}

/* Hold contracts packed from now on: the pack takes in the engine's
 * contracts (all live) and the closes (the advance hook). 0 or -1. */
static int start_pack(replay_t *r, char *errstr, size_t errlen)
{
    if (rs_rpack_new(&r->pack, r->engine, r->memory, errstr, errlen) != 0)
        return -1;
    return rs_rpack_adopt(r->pack, errstr, errlen);
}

/* Apply one decoded line (or record why it did not decode). Returns 0, -1
 * on out-of-memory, or -2 (a packed contract failed; logged). */
static int replay_item(replay_t *r, rs_codec_jsonl_item_t *it)
{
    char errstr[512];
    rs_event_t *ev = &it->ev;
    long line = it->line;
    int rc = 0;

    if (it->rc != 0)
        return reject_undecodable(r, line, it->text, it->len, it->errstr);
    r->events++;
    if (r->pack == NULL && r->memory != SIZE_MAX &&
        ++r->since_check >= check_every(r->memory)) {
        r->since_check = 0; /* the budget comes near: contracts are counted and packed */
        if (rs_engine_memory_bytes(r->engine) >= r->memory - r->memory / 8 &&
            start_pack(r, errstr, sizeof errstr) != 0)
            return pack_error(errstr);
    }
    int fetched = r->pack != NULL && ev->type != RS_EV_PERIOD_CLOSED && ev->contract_id[0];
    if (fetched && rs_rpack_fetch(r->pack, ev->contract_id, errstr, sizeof errstr) != 0)
        return pack_error(errstr);
    /* the digest was computed on the reader's thread */
    rs_apply_result_t res =
        rs_engine_apply_digested(r->engine, ev, &it->digest, errstr, sizeof errstr);
    switch (res) {
    case RS_APPLY_OK:
    case RS_APPLY_DUPLICATE:
        break;
    case RS_APPLY_PENDING:
        if (json_object_get(r->waiting_line, ev->event_id) == NULL &&
            json_object_set_new_nocheck(r->waiting_line, ev->event_id, json_integer(line)) != 0)
            rc = -1;
        break;
    case RS_APPLY_REJECTED: {
        const char *type = rs_event_type_name(ev->type);
        return reject(r, line, ev->event_id, type != NULL ? type : "", errstr, NULL);
    }
    case RS_APPLY_NOMEM:
    default:
        if (r->pack != NULL && rs_rpack_error(r->pack)[0] != '\0')
            return pack_error(rs_rpack_error(r->pack));
        return -1;
    }
    if (ev->occurred_on != RS_DATE_NONE) {
        rs_period_t p = rs_period_of(ev->occurred_on);
        if (r->latest == RS_PERIOD_NONE || p > r->latest) {
            r->latest = p;
            if (r->acc != NULL && !r->has_through && strcmp(r->report, "schedule") != 0 &&
                rs_replay_acc_floor(r->accq, p) != 0) /* the default --through only rises */
                rc = -1;
        }
    }
    if (rc == 0)
        rc = take_late_rejections(r, line);
    if (rc == 0 && fetched && rs_rpack_settle(r->pack, errstr, sizeof errstr) != 0)
        return pack_error(errstr);
    return rc;
}

/* A progress line for each multiple of PROGRESS_EVERY up to `lines` not
 * logged yet (blank lines come as no item: a multiple may be passed over). */
static void progress(const replay_t *r, long lines, long *next, uint64_t t0, int stderr_tty)
{
    for (; lines >= *next; *next += PROGRESS_EVERY) {
        if (!r->progress && !(stderr_tty && *next > PROGRESS_AUTO_LINES))
            continue;
        uint64_t us = now_us() - t0;
        uint64_t rate = (uint64_t)*next * 1000000u / (us > 0 ? us : 1);
        fprintf(stderr, "replay: progress lines=%ld rate=%llu/s rejected=%zu\n", *next,
                (unsigned long long)rate, r->n_rej);
    }
}

/* Hint the engine about the events after the current one (each a cold
 * contract, see rs_engine_prefetch): the table slot 10 ahead, the contract
 * 6 ahead, its parts 3 ahead, its lines' parts 1 ahead. The items
 * themselves, which the reader's thread wrote, are fetched 14 ahead. */
static void prefetch_ahead(replay_t *r, rs_codec_jsonl_t *rd)
{
    static const int ahead[4] = {1, 3, 6, 10}; /* by stage */
    const rs_codec_jsonl_item_t *n = rs_codec_jsonl_peek(rd, 14);
    if (n != NULL)
        for (size_t o = 0; o < sizeof *n; o += 64)
            __builtin_prefetch((const char *)n + o, 0, 3);
    for (int stage = 3; stage >= 0; stage--) {
        n = rs_codec_jsonl_peek(rd, ahead[stage]);
        if (n != NULL && n->rc == 0)
            rs_engine_prefetch(r->engine, &n->ev, &n->digest, stage);
    }
}

/* Read and apply the whole input: lines are read and decoded on the
 * reader's thread (rs_codec_jsonl), applied here in file order. Returns 0,
 * or -1 (message printed). */
static int replay_input(replay_t *r, FILE *in, const char *name)
{
    char errstr[256];
    rs_codec_jsonl_t *rd = NULL;
    rs_codec_jsonl_item_t *it;
    int rc = 0, err;
    int stderr_tty = isatty(STDERR_FILENO);
    uint64_t t0 = now_us();
    long next_progress = PROGRESS_EVERY;

    if (rs_codec_jsonl_new(&rd, in, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "replay: error=start");
        log_kv("reason", errstr);
        fputc('\n', stderr);
        return -1;
    }
    while ((it = rs_codec_jsonl_next(rd)) != NULL) {
        r->lines = it->line;
        prefetch_ahead(r, rd);
        int x = replay_item(r, it);
        if (x != 0) {
            if (x == -1)
                fprintf(stderr, "replay: error=out_of_memory line=%ld\n", r->lines);
            rc = -1;
            goto out;
        }
        progress(r, r->lines, &next_progress, t0, stderr_tty);
    }
    r->lines = rs_codec_jsonl_lines(rd);
    progress(r, r->lines, &next_progress, t0, stderr_tty); /* blank lines at the end */
    if ((err = rs_codec_jsonl_error(rd)) != 0) {
        fprintf(stderr, "replay: error=%s line=%ld", err == ENOMEM ? "out_of_memory" : "read",
                r->lines + 1);
        log_kv("file", name);
        log_kv("reason", strerror(err));
        fputc('\n', stderr);
        rc = -1;
    }
out:
    rs_codec_jsonl_destroy(rd);
    return rc;
}

/* The interned copy of a contract id (stable while r->cids lives), or NULL
 * on ENOMEM. */
static const char *intern_cid(replay_t *r, const char *cid)
{
    if (r->last_cid != NULL && strcmp(r->last_cid, cid) == 0)
        return r->last_cid;
    void *it = json_object_iter_at(r->cids, cid);
    if (it == NULL) {
        if (json_object_set_new_nocheck(r->cids, cid, json_null()) != 0)
            return NULL;
        it = json_object_iter_at(r->cids, cid);
        if (it == NULL)
            return NULL;
    }
    r->last_cid = json_object_iter_key(it);
    return r->last_cid;
}

/* Write an entry to the spool and keep its key. 0, or an errno. */
/* The numbers of an entry, as spooled (the strings follow, NUL-terminated). */
typedef struct spool_nums {
    uint64_t seq;
    rs_date_t posted_on;
    rs_period_t period, service_period;
    rs_entry_kind_t kind;
    int exponent, n_postings, n_sources;
    uint32_t source_count;
    rs_money_t billed, recognized, received;
} spool_nums_t;

#define SPOOL_MAX_PACKED                                                                       \
    (sizeof(spool_nums_t) + sizeof(((rs_entry_t *)0)->postings) + sizeof(rs_entry_t))

static size_t put_str(char *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return n + 1;
}

/* An entry's packed form: its numbers, its postings and its strings without
 * the unused bytes of their fixed-size fields (a few hundred bytes instead
 * of sizeof(rs_entry_t)). Returns the length written to buf
 * (SPOOL_MAX_PACKED bytes at least). */
static size_t spool_pack(const rs_entry_t *e, char *buf)
{
    spool_nums_t h = {e->seq,          e->posted_on, e->period,     e->service_period,
                      e->kind,         e->exponent,  e->n_postings, e->n_sources,
                      e->source_count, e->billed,    e->recognized, e->received};
    size_t k = 0;
    memcpy(buf, &h, sizeof h);
    k += sizeof h;
    memcpy(buf + k, e->postings, (size_t)e->n_postings * sizeof(e->postings[0]));
    k += (size_t)e->n_postings * sizeof(e->postings[0]);
#define PUT(f) k += put_str(buf + k, e->f, sizeof(e->f))
    PUT(entry_id);
    PUT(rule);
    PUT(contract_id);
    PUT(customer_id);
    PUT(line_id);
    PUT(document_id);
    PUT(product);
    PUT(currency);
    for (int i = 0; i < e->n_sources; i++)
        PUT(sources[i]);
#undef PUT
    return k;
}

/* Read a string of at most cap - 1 bytes from p (len bytes left). */
static int get_str(const char **p, size_t *left, char *dst, size_t cap)
{
    const char *end = memchr(*p, '\0', *left);
    if (end == NULL || (size_t)(end - *p) >= cap)
        return -1;
    size_t n = (size_t)(end - *p) + 1;
    memcpy(dst, *p, n);
    *p += n;
    *left -= n;
    return 0;
}

/* The inverse of spool_pack. 0, or -1 (errno EIO) if the bytes are not one. */
static int spool_unpack(const char *buf, size_t len, rs_entry_t *e)
{
    spool_nums_t h;
    memset(e, 0, sizeof *e);
    if (len < sizeof h)
        goto bad;
    memcpy(&h, buf, sizeof h);
    if (h.n_postings < 0 || h.n_postings > RS_ENTRY_MAX_POSTINGS || h.n_sources < 0 ||
        h.n_sources > RS_ENTRY_MAX_SOURCES)
        goto bad;
    size_t pb = (size_t)h.n_postings * sizeof(e->postings[0]);
    if (len - sizeof h < pb)
        goto bad;
    e->seq = h.seq;
    e->posted_on = h.posted_on;
    e->period = h.period;
    e->service_period = h.service_period;
    e->kind = h.kind;
    e->exponent = h.exponent;
    e->n_postings = h.n_postings;
    e->n_sources = h.n_sources;
    e->source_count = h.source_count;
    e->billed = h.billed;
    e->recognized = h.recognized;
    e->received = h.received;
    memcpy(e->postings, buf + sizeof h, pb);
    const char *p = buf + sizeof h + pb;
    size_t left = len - sizeof h - pb;
#define GET(f)                                                                                 \
    if (get_str(&p, &left, e->f, sizeof(e->f)) != 0)                                           \
    goto bad
    GET(entry_id);
    GET(rule);
    GET(contract_id);
    GET(customer_id);
    GET(line_id);
    GET(document_id);
    GET(product);
    GET(currency);
    for (int i = 0; i < e->n_sources; i++)
        GET(sources[i]);
#undef GET
    if (left == 0)
        return 0;
bad:
    errno = EIO;
    return -1;
}

static int spool_entry(replay_t *r, const rs_entry_t *e)
{
    if (r->n_keys == r->cap_keys) {
        size_t cap = r->cap_keys ? r->cap_keys * 2 : 1024;
        spool_key_t *k = realloc(r->keys, cap * sizeof *k);
        if (k == NULL)
            return ENOMEM;
        r->keys = k;
        r->cap_keys = cap;
    }
    spool_key_t *k = &r->keys[r->n_keys];
    k->contract_id = intern_cid(r, e->contract_id);
    if (k->contract_id == NULL)
        return ENOMEM;
    k->seq = e->seq;
    k->period = e->period;
    k->off = r->spool_size;
    k->len = (uint32_t)spool_pack(e, r->pack_buf);
    errno = 0;
    if (fwrite(r->pack_buf, k->len, 1, r->spool) != 1)
        return errno != 0 ? errno : EIO;
    r->spool_size += (off_t)k->len;
    r->n_keys++;
    return 0;
}

/* Why a report with a total out of range is refused (never wrapped). */
#define RANGE_REASON                                                                           \
    "a total of the report is beyond the largest amount (9223372036854775807/4 minor units): " \
    "split the book (by currency or contracts)"

/* The engine's sink: sum the entry or spool it, as the report needs. */
static void replay_sink(void *opaque, const rs_entry_t *e)
{
    replay_t *r = opaque;
    r->entries++;
    if (r->sink_err != 0)
        return;
    /* the aggregator's thread adds it (its result comes at the end) */
    if (r->accq != NULL && rs_replay_acc_add(r->accq, e) != 0)
        r->sink_err = ENOMEM;
    else if (r->spool != NULL)
        r->sink_err = spool_entry(r, e);
}

/* An unlinked temporary file in $TMPDIR (else /tmp), or NULL with errno. */
static FILE *spool_open(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    if ((size_t)snprintf(path, sizeof path, "%s/revstream-replay-XXXXXX", dir) >= sizeof path) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    (void)unlink(path);
    FILE *f = fdopen(fd, "w+");
    if (f == NULL) {
        int err = errno;
        close(fd);
        errno = err;
    }
    return f;
}

static int key_cmp(const void *a, const void *b)
{
    const spool_key_t *x = a, *y = b;
    if (x->period != y->period)
        return x->period < y->period ? -1 : 1;
    int c = strcmp(x->contract_id, y->contract_id);
    if (c != 0)
        return c;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/* rs_format_entry_fn over the sorted keys: read entry i back. */
static const rs_entry_t *spool_get(void *opaque, size_t i)
{
    replay_t *r = opaque;
    size_t want = r->keys[i].len, got = 0;
    while (got < want) {
        ssize_t n =
            pread(fileno(r->spool), r->pack_buf + got, want - got, r->keys[i].off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return NULL;
        }
        got += (size_t)n;
    }
    return spool_unpack(r->pack_buf, want, r->entry_buf) == 0 ? r->entry_buf : NULL;
}

/* Print the journal report from the spool. Returns 0 or -1. */
static int print_journal(replay_t *r, FILE *out, rs_period_t through)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_keys; i++)
        if (r->keys[i].period <= through)
            r->keys[n++] = r->keys[i];
    r->n_keys = n;
    if (n > 1)
        qsort(r->keys, n, sizeof *r->keys, key_cmp);
    if (fflush(r->spool) != 0)
        return -1;
    r->entry_buf = malloc(sizeof *r->entry_buf);
    if (r->entry_buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    return rs_format_journal_each(out, r->format, spool_get, r, n, rs_engine_policy(r->engine),
                                  through);
}

/* Does the report read the engine's views of the whole book (rather than
 * the aggregator, the spool or one contract at a time)? */
static int report_reads_views(const char *report)
{
    return strcmp(report, "schedule") == 0 || strcmp(report, "exceptions") == 0 ||
           strcmp(report, "invoices") == 0 || strcmp(report, "pending") == 0;
}

/* Is part of the book packed (the reports then walk it one contract at a
 * time: rs_rpack_each)? */
static int book_packed(const replay_t *r)
{
    rs_rpack_stats_t ps;
    if (r->pack == NULL)
        return 0;
    rs_rpack_get_stats(r->pack, &ps);
    return ps.packed > 0;
}

static int rej_cmp(const void *a, const void *b)
{
    const rejected_t *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Compute and print the chosen report on stdout. Returns 0 or -1. */
static int print_report(replay_t *r, rs_period_t through)
{
    FILE *out = stdout;
    rs_format_kind_t k = r->format;
    int rc = -1;

    if (strcmp(r->report, "rejected") == 0) {
        rs_format_rejection_t *rows = NULL;
        if (r->n_rej > 1) /* qsort's array may not be NULL, even empty */
            qsort(r->rej, r->n_rej, sizeof *r->rej, rej_cmp);
        if (r->n_rej > 0 && (rows = calloc(r->n_rej, sizeof *rows)) == NULL)
            return -1;
        for (size_t i = 0; i < r->n_rej; i++) {
            rows[i].line = r->rej[i].line;
            rows[i].event_id = r->rej[i].event_id;
            rows[i].type = r->rej[i].type;
            rows[i].reason = r->rej[i].reason;
        }
        rc = rs_format_rejected(out, k, rows, r->n_rej);
        free(rows);
        return rc;
    }
    if (strcmp(r->report, "invoices") == 0) {
        size_t n = rs_engine_invoice_count(r->engine);
        rs_invoice_view_t *rows = NULL;
        if (n > 0 && (rows = calloc(n, sizeof *rows)) == NULL)
            return -1;
        for (size_t i = 0; i < n; i++)
            rs_engine_invoice_get(r->engine, i, &rows[i]);
        rc = rs_format_invoices(out, k, rows, n);
        free(rows);
        return rc;
    }
    if (strcmp(r->report, "pending") == 0) {
        size_t n = rs_engine_pending_count(r->engine);
        rs_pending_view_t *rows = NULL;
        if (n > 0 && (rows = calloc(n, sizeof *rows)) == NULL)
            return -1;
        for (size_t i = 0; i < n; i++)
            rs_engine_pending_get(r->engine, i, &rows[i]);
        rc = rs_format_pending(out, k, rows, n);
        free(rows);
        return rc;
    }

    /* The reports of the books need a period; with no event at all and no
     * --through there is nothing to report. */
    if (through == RS_PERIOD_NONE) {
        if (strcmp(r->report, "journal") == 0)
            return rs_format_journal(out, k, NULL, NULL, 0, rs_engine_policy(r->engine),
                                     through);
        if (strcmp(r->report, "exceptions") == 0)
            return rs_format_exceptions(out, k, NULL, 0, through);
        if (strcmp(r->report, "schedule") == 0)
            return rs_format_schedule(out, k, NULL, 0, through);
        if (strcmp(r->report, "waterfall") == 0)
            return rs_format_waterfall(out, k, NULL, 0, through);
        if (strcmp(r->report, "rollforward") == 0)
            return rs_format_rollforward(out, k, NULL, 0, through);
        return rs_format_balances(out, k, NULL, 0, through);
    }

    if (strcmp(r->report, "schedule") == 0) {
        rs_schedule_row_t *rows = NULL;
        size_t n = 0;
        int x = rs_report_acc_schedule(r->engine, r->acc, through, &rows, &n);
        if (x == 0)
            rc = rs_format_schedule(out, k, rows, n, through);
        else
            errno = x == RS_REPORT_ERANGE ? ERANGE : ENOMEM;
        free(rows);
    } else if (strcmp(r->report, "balances") == 0) {
        rs_balance_row_t *rows = NULL;
        char *strings = NULL; /* the rows' strings, for a packed book */
        size_t n = 0;
        int x = book_packed(r) ? rs_report_acc_balances_each(rs_rpack_each, r->pack, r->acc,
                                                             through, &rows, &n, &strings)
                               : rs_report_acc_balances(r->engine, r->acc, through, &rows, &n);
        if (x == 0)
            rc = rs_format_balances(out, k, rows, n, through);
        else
            errno = x == RS_REPORT_ERANGE ? ERANGE : ENOMEM;
        free(rows);
        free(strings);
    } else if (strcmp(r->report, "waterfall") == 0) {
        rs_waterfall_row_t *rows = NULL;
        size_t n = 0;
        int x = book_packed(r) ? rs_report_acc_waterfall_each(rs_rpack_each, r->pack, r->acc,
                                                              through, &rows, &n)
                               : rs_report_acc_waterfall(r->engine, r->acc, through, &rows, &n);
        if (x == 0)
            rc = rs_format_waterfall(out, k, rows, n, through);
        else
            errno = x == RS_REPORT_ERANGE ? ERANGE : ENOMEM;
        free(rows);
    } else if (strcmp(r->report, "rollforward") == 0) {
        rs_rollforward_row_t *rows = NULL;
        size_t n = 0;
        int x = rs_report_acc_rollforward(r->engine, r->acc, through, &rows, &n);
        if (x == 0)
            rc = rs_format_rollforward(out, k, rows, n, through);
        else
            errno = x == RS_REPORT_ERANGE ? ERANGE : ENOMEM;
        free(rows);
    } else if (strcmp(r->report, "journal") == 0) {
        rc = print_journal(r, out, through);
    } else if (strcmp(r->report, "exceptions") == 0) {
        rs_exception_row_t *rows = NULL;
        size_t n = 0;
        int x = rs_report_acc_exceptions(r->engine, r->acc, through, &rows, &n);
        if (x == 0)
            rc = rs_format_exceptions(out, k, rows, n, through);
        else
            errno = x == RS_REPORT_ERANGE ? ERANGE : ENOMEM;
        free(rows);
    }
    return rc;
}

int rs_cli_cmd_replay(int argc, char **argv)
{
    replay_t r;
    FILE *in = NULL;
    const char *name;
    char errstr[256], pb[16];
    int status = 1;

    memset(&r, 0, sizeof r);
    r.latest = RS_PERIOD_NONE;
    r.through = RS_PERIOD_NONE;

    int a = parse_args(&r, argc, argv);
    if (a != 0) {
        status = a > 0 ? 0 : 1; /* --help: 0 */
        goto out;
    }
    if (r.policy_path != NULL) {
        if (load_policy(&r) != 0)
            goto out;
        log_policy(&r);
    }

    if (strcmp(r.path, "-") == 0) {
        in = stdin;
        name = "-";
    } else {
        in = fopen(r.path, "r");
        name = r.path;
        if (in == NULL) {
            int err = errno;
            fputs("replay: error=open", stderr);
            log_kv("file", r.path);
            log_kv("reason", strerror(err));
            fputc('\n', stderr);
            goto out;
        }
    }

    if (rs_engine_new(&r.engine, r.policy_path != NULL ? &r.policy : NULL, errstr,
                      sizeof errstr) != 0) {
        fputs("replay: error=engine", stderr);
        log_kv("reason", errstr);
        fputc('\n', stderr);
        goto out;
    }
    if (strcmp(r.report, "journal") == 0) {
        r.cids = json_object();
        r.pack_buf = malloc(SPOOL_MAX_PACKED);
        r.spool = spool_open();
        if (r.spool == NULL || r.cids == NULL || r.pack_buf == NULL) {
            int err = r.spool != NULL ? ENOMEM : errno;
            fputs("replay: error=spool", stderr);
            log_kv("reason", strerror(err));
            fputc('\n', stderr);
            goto out;
        }
    } else if (strcmp(r.report, "rejected") != 0 && strcmp(r.report, "pending") != 0 &&
               strcmp(r.report, "invoices") != 0 && rs_report_acc_new(&r.acc) != 0) {
        fprintf(stderr, "replay: error=out_of_memory\n");
        goto out;
    }
    if (r.acc != NULL) /* keep per line only what the report reads */
        rs_report_acc_need(r.acc,
                           strcmp(r.report, "balances") == 0      ? RS_REPORT_NEED_BALANCES
                           : strcmp(r.report, "waterfall") == 0   ? RS_REPORT_NEED_WATERFALL
                           : strcmp(r.report, "rollforward") == 0 ? RS_REPORT_NEED_ROLLFORWARD
                                                                  : RS_REPORT_NEED_ALL);
    if (r.acc != NULL && r.has_through) {
        rs_report_acc_set_limit(r.acc, r.through);
        if (strcmp(r.report, "schedule") != 0)
            rs_report_acc_set_floor(r.acc, r.through);
    }
    if (r.acc != NULL && rs_replay_acc_new(&r.accq, r.acc, errstr, sizeof errstr) != 0) {
        fputs("replay: error=start", stderr);
        log_kv("reason", errstr);
        fputc('\n', stderr);
        goto out;
    }
    /* --memory-mb 0 packs from the first event; another budget from when
     * the engine's heap comes near it (replay_item) */
    if (r.memory == 0 && start_pack(&r, errstr, sizeof errstr) != 0) {
        fputs("replay: error=engine", stderr);
        log_kv("reason", errstr);
        fputc('\n', stderr);
        goto out;
    }
    rs_engine_track_changes(r.engine, 0); /* nothing is written back */
    rs_engine_set_sink(r.engine, replay_sink, &r);
    r.waiting_line = json_object();
    if (r.waiting_line == NULL) {
        fprintf(stderr, "replay: error=out_of_memory\n");
        goto out;
    }

    if (replay_input(&r, in, name) != 0)
        goto out;

    rs_period_t through = r.has_through ? r.through : r.latest;
    if (through != RS_PERIOD_NONE && rs_engine_advance(r.engine, through) != 0) {
        fprintf(stderr, "replay: error=advance through=%s", rs_period_format(through, pb, 16));
        if (r.pack != NULL && rs_rpack_error(r.pack)[0] != '\0')
            log_kv("reason", rs_rpack_error(r.pack));
        fputc('\n', stderr);
        goto out;
    }
    /* the reports that read the engine's views need the whole book in it */
    if (r.pack != NULL && report_reads_views(r.report) &&
        rs_rpack_unpack_all(r.pack, errstr, sizeof errstr) != 0) {
        pack_error(errstr);
        goto out;
    }
    if (take_late_rejections(&r, 0) != 0) {
        fprintf(stderr, "replay: error=out_of_memory\n");
        goto out;
    }

    if (r.accq != NULL) { /* every entry is in; acc is this thread's again */
        int arc = rs_replay_acc_finish(r.accq);
        if (arc != 0 && r.sink_err == 0)
            r.sink_err = arc == RS_REPORT_ERANGE ? ERANGE : ENOMEM;
    }
    rs_engine_stats_t st;
    rs_engine_get_stats(r.engine, &st);
    if (r.sink_err == ENOMEM) { /* the sink drops entries on ENOMEM */
        fprintf(stderr, "replay: error=out_of_memory entries=%llu\n",
                (unsigned long long)st.entries);
        goto out;
    }
    if (r.sink_err == ERANGE) {
        fprintf(stderr, "replay: error=out_of_range report=%s", r.report);
        log_kv("reason", RANGE_REASON);
        fputc('\n', stderr);
        goto out;
    }
    if (r.sink_err != 0) {
        fputs("replay: error=spool", stderr);
        log_kv("reason", strerror(r.sink_err));
        fputc('\n', stderr);
        goto out;
    }
    size_t pending = rs_engine_pending_count(r.engine);
    if (r.pack != NULL) {
        rs_rpack_stats_t ps;
        rs_rpack_get_stats(r.pack, &ps);
        pending += ps.pending;
        fprintf(stderr,
                "replay: memory budget_mib=%zu contracts=%zu live=%zu live_kib=%zu packed=%zu "
                "packed_kib=%zu packs=%llu unpacks=%llu walked=%llu written=%llu\n",
                r.memory >> 20, ps.contracts, ps.live, ps.live_bytes >> 10, ps.packed,
                ps.packed_bytes >> 10, (unsigned long long)ps.packs,
                (unsigned long long)ps.unpacks, (unsigned long long)ps.walked,
                (unsigned long long)ps.written);
    }
    fprintf(stderr,
            "replay: done lines=%ld events=%llu applied=%llu duplicates=%llu rejected=%zu "
            "pending=%zu entries=%zu through=%s\n",
            r.lines, (unsigned long long)r.events, (unsigned long long)st.applied,
            (unsigned long long)st.duplicates, r.n_rej, pending, r.entries,
            through != RS_PERIOD_NONE ? rs_period_format(through, pb, 16) : "none");
    if (pending > 0)
        fprintf(stderr,
                "replay: warning pending=%zu hint=\"events still wait for their contract or "
                "invoice; see --report pending\"\n",
                pending);

    errno = 0;
    if (print_report(&r, through) != 0 || fflush(stdout) != 0 || ferror(stdout)) {
        int err = errno;
        fprintf(stderr, "replay: error=%s report=%s", err == ERANGE ? "out_of_range" : "output",
                r.report);
        log_kv("reason", err == ERANGE ? RANGE_REASON
                         : err != 0    ? strerror(err)
                                       : "writing the report to stdout failed");
        fputc('\n', stderr);
        goto out;
    }
    status = r.n_rej > 0 ? 2 : 0;
out:
    if (in != NULL && in != stdin)
        fclose(in);
    replay_free(&r);
    return status;
}
