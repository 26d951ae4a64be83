/*
 * cmd_billing.c — `revstream billing stripe FILE... [--map FILE]
 * [--out FILE.jsonl | --produce --config worker.properties]`: billing-system
 * events as invoice, payment, refund, void, write-off and credit-note events
 * (rs_intake; mappings in docs/intake.md). Output as `crm` (cmd_crm.c).
 *
 * Invariants: exit 0 everything mapped; 2 some record reported on stderr and
 * left out; 1 usage, I/O or delivery error. Summary on stderr, one line.
 */
#include <stdio.h>
#include <string.h>

#include "rs_cli.h"
#include "rs_intake.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: revstream billing stripe FILE... [--map FILE]\n"
               "                         [--out FILE.jsonl | --produce --config "
               "worker.properties]\n"
               "\n"
               "Stripe events (JSON Lines, one event, or list pages) as invoice.issued,\n"
               "payment.received, invoice.voided, invoice.uncollectible, payment.refunded\n"
               "and credit_note.issued (docs/intake.md). Exit 0 all mapped, 2 some record\n"
               "reported on stderr and left out, 1 error.\n");
}

int rs_cli_cmd_billing(int argc, char **argv)
{
    rs_cli_intake_args_t a;
    int rc = rs_cli_intake_args(argc, argv, 0, usage, &a);
    if (rc != 0)
        return rc < 0 ? 0 : 1;
    rc = 1;
    const char *provider = a.source;
    char err[512];
    rs_intake_map_t *map = NULL;
    rs_cli_intake_out_t o;
    rs_intake_stats_t s;
    if (rs_intake_map_load(&map, provider, a.map, err, sizeof err) != 0) {
        fprintf(stderr, "billing: error=setup reason=\"%s\"\n", err);
        return 1;
    }
    if (rs_cli_intake_open(&o, a.out, a.produce) == 0) {
        rc = rs_intake_billing(provider, a.files, a.nfiles, map, rs_cli_intake_emit, &o, stderr,
                               &s);
        rc = rs_cli_intake_finish(&o, a.config, rc);
        fprintf(stderr,
                "billing: done provider=%s records=%ld emitted=%ld ignored=%ld "
                "incomplete=%ld\n",
                provider, s.records, s.emitted, s.ignored, s.incomplete);
    }
    rs_intake_map_destroy(map);
    return rc;
}
