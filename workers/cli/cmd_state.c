/*
 * cmd_state.c — `revstream state`: look into and copy a worker's state store.
 *
 *   revstream state partitions --state-dir DIR
 *   revstream state show --state-dir DIR CONTRACT [--through YYYY-MM]
 *   revstream state checkpoint --state-dir DIR OUT_DIR
 *
 * Invariants:
 *   - The store is opened read-only, so these commands work next to a running
 *     worker and never change its state (checkpoint falls back to a
 *     read-write open only when the store is not in use).
 *   - `show` restores the contract exactly as the worker would (its
 *     partition's meta record and the contract record) and prints it from
 *     the engine's own views: what a restarted worker would continue from.
 *   - `partitions` shows each partition's next input offsets and next
 *     changelog offset ("changelog/N": where a restore onto this store, or
 *     onto a checkpoint of it, starts reading the changelog).
 *   - Output is for people on stdout; errors name the store and the reason on
 *     stderr; exit 0 ok, 1 usage or store error, 2 contract not found.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_changelog.h"
#include "rs_cli.h"
#include "rs_engine.h"
#include "rs_pstate.h"
#include "rs_state.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: revstream state partitions --state-dir DIR\n"
               "       revstream state show --state-dir DIR CONTRACT [--through YYYY-MM]\n"
               "       revstream state checkpoint --state-dir DIR OUT_DIR\n"
               "\n"
               "Look into a worker's state store (opened read-only) or copy it\n"
               "consistently with a RocksDB checkpoint.\n");
}

static int open_store(rs_state_t **st, const char *dir, int read_only)
{
    rs_state_opts_t o = {0};
    char err[512];
    o.path = dir;
    o.read_only = read_only;
    if (rs_state_open(st, &o, err, sizeof(err))) {
        fprintf(stderr, "state: error=open dir=\"%s\" reason=\"%s\"\n", dir, err);
        return -1;
    }
    return 0;
}

typedef struct count_ctx {
    size_t n;
} count_ctx_t;

static int count_one(void *opaque, const char *id, const void *blob, size_t len)
{
    (void)id;
    (void)blob;
    (void)len;
    ((count_ctx_t *)opaque)->n++;
    return 0;
}

static const char *const topics[] = {"contracts", "invoices", "payments", "usage"};

static int cmd_partitions(rs_state_t *st)
{
    char err[512];
    int32_t *parts = NULL;
    size_t n = 0;
    if (rs_state_partitions(st, &parts, &n, err, sizeof(err))) {
        fprintf(stderr, "state: error=scan reason=\"%s\"\n", err);
        return 1;
    }
    printf("%-9s  %9s  %-40s  %9s  %s\n", "Partition", "Contracts", "Next offsets (c/i/p/u)",
           "Changelog", "Pending plan");
    for (size_t i = 0; i < n; i++) {
        count_ctx_t cc = {0};
        if (rs_state_foreach_contract(st, parts[i], count_one, &cc, err, sizeof(err)) < 0) {
            fprintf(stderr, "state: error=scan partition=%d reason=\"%s\"\n", parts[i], err);
            rs_state_free(parts);
            return 1;
        }
        char offs[64] = "";
        size_t o = 0;
        for (int t = 0; t < 4; t++) {
            int64_t off = -1;
            int rc = rs_state_get_input_offset(st, topics[t], parts[i], &off, err, sizeof(err));
            o += (size_t)snprintf(offs + o, sizeof(offs) - o, "%s%s", t ? "/" : "",
                                  rc == 0 ? "" : "-");
            if (rc == 0)
                o += (size_t)snprintf(offs + o, sizeof(offs) - o, "%lld", (long long)off);
        }
        char key[32];
        void *blob = NULL;
        size_t len = 0;
        snprintf(key, sizeof(key), "plan/%d", (int)parts[i]);
        int rc = rs_state_get_meta(st, key, &blob, &len, err, sizeof(err));
        /* the next changelog offset: a copy restores from there, so the
         * changelog's low watermark must not be past it (R1) */
        int64_t pos = -1;
        char cl[24] = "-";
        if (rs_changelog_get_pos(st, parts[i], &pos, err, sizeof(err)) == 0)
            snprintf(cl, sizeof(cl), "%lld", (long long)pos);
        printf("%9d  %9zu  %-40s  %9s  %s\n", parts[i], cc.n, offs, cl,
               rc == 0 && len > 0 ? "yes (replayed at next start)" : "no");
        rs_state_free(blob);
    }
    rs_state_free(parts);
    return 0;
}

static void money(char *buf, size_t n, rs_money_t v, int exp)
{
    rs_money_format_grouped(v, exp, buf, n);
}

static int cmd_show(rs_state_t *st, const char *contract, const char *through_s)
{
    char err[512];
    int32_t *parts = NULL;
    size_t n = 0;
    int rc = 1;
    rs_pstate_t *ps = NULL;
    if (rs_state_partitions(st, &parts, &n, err, sizeof(err))) {
        fprintf(stderr, "state: error=scan reason=\"%s\"\n", err);
        return 1;
    }
    int32_t found = -1;
    for (size_t i = 0; i < n && found < 0; i++) {
        void *blob = NULL;
        size_t len = 0;
        int r = rs_state_get_contract(st, parts[i], contract, &blob, &len, err, sizeof(err));
        rs_state_free(blob);
        if (r < 0) {
            fprintf(stderr, "state: error=read contract=\"%s\" reason=\"%s\"\n", contract, err);
            goto out;
        }
        if (r == 0)
            found = parts[i];
    }
    if (found < 0) {
        fprintf(stderr, "state: contract \"%s\" is not in this store\n", contract);
        rc = 2;
        goto out;
    }
    if (rs_pstate_load(&ps, st, found, NULL, err, sizeof(err))) {
        fprintf(stderr, "state: error=load partition=%d reason=\"%s\"\n", found, err);
        goto out;
    }
    rs_engine_t *e = rs_pstate_engine(ps);
    rs_period_t through = RS_PERIOD_NONE;
    if (through_s && rs_period_parse(through_s, &through)) {
        fprintf(stderr, "state: --through: expected YYYY-MM, got \"%s\"\n", through_s);
        goto out;
    }
    printf("Contract %s (partition %d)\n", contract, found);
    for (size_t i = 0, nc = rs_engine_contract_count(e); i < nc; i++) {
        rs_contract_view_t cv;
        rs_engine_contract_get(e, i, &cv);
        if (strcmp(cv.contract_id, contract) != 0)
            continue;
        char a[48], b[48], d[16];
        money(a, sizeof(a), cv.customer_credit, cv.exponent);
        money(b, sizeof(b), cv.written_off, cv.exponent);
        printf("  customer %s, currency %s, cancelled %s, customer credit %s, written off %s\n",
               cv.customer_id, cv.currency,
               cv.cancelled_on == RS_DATE_NONE ? "no" : rs_date_format(cv.cancelled_on, d, 16),
               a, b);
    }
    printf("\n%-12s %-16s %-10s %-10s %14s %14s %14s %14s %14s %14s\n", "Line", "Method",
           "Start", "End", "Price", "Billed", "Recognized", "Deferred", "Unbilled", "Received");
    for (size_t i = 0, nl = rs_engine_line_count(e); i < nl; i++) {
        rs_line_view_t v;
        rs_engine_line_get(e, i, &v);
        if (strcmp(v.contract_id, contract) != 0)
            continue;
        char s1[16], s2[16], m[6][48];
        money(m[0], 48, v.price, v.exponent);
        money(m[1], 48, v.billed, v.exponent);
        money(m[2], 48, v.recognized, v.exponent);
        money(m[3], 48, v.deferred, v.exponent);
        money(m[4], 48, v.unbilled, v.exponent);
        money(m[5], 48, v.received, v.exponent);
        printf("%-12s %-16s %-10s %-10s %14s %14s %14s %14s %14s %14s\n", v.line_id,
               rs_method_name(v.method), rs_date_format(v.start, s1, 16),
               rs_date_format(v.end, s2, 16), m[0], m[1], m[2], m[3], m[4], m[5]);
    }
    printf("\nSchedule (what the current terms recognize per month)\n");
    for (size_t i = 0, nl = rs_engine_line_count(e); i < nl; i++) {
        rs_line_view_t v;
        rs_engine_line_get(e, i, &v);
        if (strcmp(v.contract_id, contract) != 0)
            continue;
        rs_period_t last = rs_period_of(v.end);
        if (through != RS_PERIOD_NONE && through < last)
            last = through;
        printf("  %s:", v.line_id);
        for (rs_period_t p = rs_period_of(v.start); p <= last; p++) {
            char per[16], a[48];
            rs_money_t r = rs_engine_line_scheduled(e, i, rs_period_last_day(p)) -
                           rs_engine_line_scheduled(e, i, rs_period_first_day(p) - 1);
            money(a, sizeof(a), r, v.exponent);
            printf(" %s %s%s", rs_period_format(p, per, sizeof(per)), a, p < last ? "," : "");
        }
        printf("\n");
    }
    int waiting = 0;
    for (size_t i = 0, np = rs_engine_pending_count(e); i < np; i++) {
        rs_pending_view_t pv;
        rs_engine_pending_get(e, i, &pv);
        if (pv.contract_id == NULL || strcmp(pv.contract_id, contract) != 0)
            continue;
        if (!waiting++)
            printf("\nWaiting events\n");
        printf("  %s (%s) waits for %s\n", pv.event_id, rs_event_type_name(pv.type),
               pv.waiting_for);
    }
    printf("\nApplied offsets:");
    for (int t = 0; t < 4; t++) {
        int64_t off;
        int r = rs_state_get_contract_offset(st, contract, topics[t], &off, err, sizeof(err));
        if (r == 0)
            printf(" %s=%lld", topics[t], (long long)off);
        else
            printf(" %s=-", topics[t]);
    }
    printf("\n");
    rc = 0;
out:
    rs_pstate_destroy(ps);
    rs_state_free(parts);
    return rc;
}

int rs_cli_cmd_state(int argc, char **argv)
{
    const char *dir = NULL, *through = NULL;
    static const struct option opts[] = {{"state-dir", required_argument, NULL, 'd'},
                                         {"through", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    const char *sub = argv[1];
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "d:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 't':
            through = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (dir == NULL) {
        fprintf(stderr, "state: --state-dir is required\n");
        return 1;
    }
    rs_state_t *st = NULL;
    int rc;
    if (strcmp(sub, "partitions") == 0) {
        if (optind != argc || open_store(&st, dir, 1))
            return 1;
        rc = cmd_partitions(st);
    } else if (strcmp(sub, "show") == 0) {
        if (optind + 1 != argc) {
            fprintf(stderr, "state: show needs one CONTRACT\n");
            return 1;
        }
        if (open_store(&st, dir, 1))
            return 1;
        rc = cmd_show(st, argv[optind], through);
    } else if (strcmp(sub, "checkpoint") == 0) {
        if (optind + 1 != argc) {
            fprintf(stderr, "state: checkpoint needs one OUT_DIR (which must not exist)\n");
            return 1;
        }
        char err[512];
        rs_state_opts_t o = {0};
        o.path = dir;
        o.read_only = 1;
        if (rs_state_open(&st, &o, err, sizeof(err))) {
            fprintf(stderr, "state: error=open dir=\"%s\" reason=\"%s\"\n", dir, err);
            return 1;
        }
        if (rs_state_checkpoint(st, argv[optind], err, sizeof(err))) {
            /* a read-only handle may not checkpoint: retry read-write, which
             * works when no worker holds the store */
            rs_state_destroy(st);
            st = NULL;
            o.read_only = 0;
            if (rs_state_open(&st, &o, err, sizeof(err)) ||
                rs_state_checkpoint(st, argv[optind], err, sizeof(err))) {
                fprintf(stderr, "state: error=checkpoint dir=\"%s\" out=\"%s\" reason=\"%s\"\n",
                        dir, argv[optind], err);
                rs_state_destroy(st);
                return 1;
            }
        }
        fprintf(stderr, "state: checkpoint dir=\"%s\" out=\"%s\"\n", dir, argv[optind]);
        rc = 0;
    } else {
        fprintf(stderr, "state: unknown subcommand \"%s\"\n", sub);
        usage(stderr);
        return 1;
    }
    rs_state_destroy(st);
    return rc;
}
