/*
 * cmd_crm.c — `revstream crm hubspot|salesforce FILE... [--map FILE]
 * [--state FILE] [--out FILE.jsonl | --produce --config worker.properties]`:
 * closed-won deals of a CRM export as contract.booked / contract.amended
 * (rs_intake; mappings in docs/intake.md). Also holds the output the `crm`
 * and `billing` commands share (rs_cli_intake_*): JSON Lines to a file or
 * stdout, or, with --produce, to the input topics through `revstream
 * produce` with the worker config's bootstrap servers, format and kafka.*
 * properties.
 *
 * Invariants:
 *   - Exit 0 everything mapped; 2 some deal or record reported and left out
 *     (the rest were written); 1 usage, I/O or delivery error.
 *   - --state FILE is read before and appended to (only the new events)
 *     after the events were written or produced, so a failed run leaves the
 *     history as it was and the next run emits the same ids again.
 *   - Summary on stderr: one key=value line.
 *
 * Ownership: the sink owns its FILE and temp file; closed by _finish.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_config.h"
#include "rs_intake.h"

extern char **environ;

int rs_cli_intake_open(rs_cli_intake_out_t *o, const char *out, int produce)
{
    memset(o, 0, sizeof *o);
    o->produce = produce;
    if (produce) {
        snprintf(o->tmp, sizeof o->tmp, "/tmp/revstream-intake-XXXXXX");
        int fd = mkstemp(o->tmp);
        o->f = fd >= 0 ? fdopen(fd, "w") : NULL;
    } else {
        o->f = out ? fopen(out, "w") : stdout;
    }
    if (o->f == NULL) {
        fprintf(stderr, "intake: error=open file=\"%s\"\n", out ? out : o->tmp);
        return -1;
    }
    return 0;
}

int rs_cli_intake_emit(void *ctx, const rs_event_t *ev)
{
    rs_cli_intake_out_t *o = ctx;
    char *json = rs_codec_json_encode(ev);
    int rc = json != NULL && fprintf(o->f, "%s\n", json) > 0 ? 0 : -1;
    free(json);
    return rc;
}

/* Produces the temp file with the worker config's settings. */
static int produce(const char *tmp, const char *config)
{
    rs_config_t *cfg = NULL;
    char err[512];
    char *argv[80];
    char kv[64][512];
    int argc = 0, nk = 0, rc;
    if (rs_config_load(&cfg, config, environ, err, sizeof err) != 0) {
        fprintf(stderr, "intake: error=config reason=\"%s\"\n", err);
        return 1;
    }
    const char *bs = rs_config_get(cfg, "kafka.bootstrap.servers");
    argv[argc++] = "produce";
    argv[argc++] = "--bootstrap";
    argv[argc++] = (char *)(bs ? bs : "");
    argv[argc++] = "--format";
    argv[argc++] = cfg->input_format == RS_CONFIG_FORMAT_AVRO ? "avro" : "json";
    if (cfg->schema_dir != NULL) {
        argv[argc++] = "--schemas";
        argv[argc++] = (char *)cfg->schema_dir;
    }
    for (size_t i = 0; i < cfg->n_kafka && nk < 32; i++) {
        if (strcmp(cfg->kafka[i].key, "bootstrap.servers") == 0)
            continue;
        snprintf(kv[nk], sizeof kv[nk], "%s=%s", cfg->kafka[i].key, cfg->kafka[i].value);
        argv[argc++] = "--kafka";
        argv[argc++] = kv[nk++];
    }
    argv[argc++] = (char *)tmp;
    argv[argc] = NULL;
    rc = rs_cli_cmd_produce(argc, argv);
    rs_config_destroy(cfg);
    return rc;
}

int rs_cli_intake_finish(rs_cli_intake_out_t *o, const char *config, int rc)
{
    int close_bad = o->f != stdout ? fclose(o->f) != 0 : fflush(stdout) != 0;
    if (close_bad && rc != 1) {
        fprintf(stderr, "intake: error=write\n");
        rc = 1;
    }
    if (o->produce && rc != 1) {
        int prc = produce(o->tmp, config);
        if (prc != 0)
            rc = 1; /* every event is valid: a skipped line is a delivery problem */
    }
    if (o->produce)
        unlink(o->tmp);
    return rc;
}

static int append_state(void *ctx, const rs_event_t *ev)
{
    return rs_cli_intake_emit(ctx, ev);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: revstream crm hubspot|salesforce FILE... [--map FILE] [--state FILE]\n"
            "                     [--out FILE.jsonl | --produce --config worker.properties]\n"
            "\n"
            "Closed-won deals of a CRM export as contract.booked, and, for deals in the\n"
            "--state history whose lines changed, contract.amended (docs/intake.md).\n"
            "HubSpot: CRM v3 JSON pages of deals and line items. Salesforce: query\n"
            "responses (JSON) or CSV exports of Opportunity and OpportunityLineItem.\n"
            "Output: JSON Lines on stdout or --out, or --produce to the input topics\n"
            "(bootstrap, format and kafka.* from the worker config). Exit 0 all mapped,\n"
            "2 some deal reported on stderr and left out, 1 error.\n");
}

/* Options of `crm` and `billing`: 0 parsed, 1 error (usage printed), -1
 * --help (printed). */
int rs_cli_intake_args(int argc, char **argv, int with_state, void (*usage)(FILE *),
                       rs_cli_intake_args_t *a)
{
    static const struct option opts[] = {{"map", required_argument, NULL, 'm'},
                                         {"state", required_argument, NULL, 's'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"produce", no_argument, NULL, 'p'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    memset(a, 0, sizeof *a);
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:s:o:pc:h", opts, NULL)) != -1) {
        if (c == 'm')
            a->map = optarg;
        else if (c == 's' && with_state)
            a->state = optarg;
        else if (c == 'o')
            a->out = optarg;
        else if (c == 'p')
            a->produce = 1;
        else if (c == 'c')
            a->config = optarg;
        else if (c == 'h') {
            usage(stdout);
            return -1;
        } else {
            usage(stderr);
            return 1;
        }
    }
    if (optind + 2 > argc || (a->produce && (a->config == NULL || a->out != NULL)) ||
        (!a->produce && a->config != NULL)) {
        usage(stderr);
        return 1;
    }
    a->source = argv[optind];
    a->files = argv + optind + 1;
    a->nfiles = argc - optind - 1;
    return 0;
}

int rs_cli_cmd_crm(int argc, char **argv)
{
    rs_cli_intake_args_t a;
    int rc = rs_cli_intake_args(argc, argv, 1, usage, &a);
    if (rc != 0)
        return rc < 0 ? 0 : 1;
    rc = 1;
    const char *state = a.state;
    const char *system = a.source;
    char err[512];
    rs_intake_map_t *map = NULL;
    rs_intake_history_t *hist = NULL;
    rs_cli_intake_out_t o, st = {0};
    rs_intake_stats_t s;
    if (rs_intake_map_load(&map, system, a.map, err, sizeof err) != 0 ||
        rs_intake_history_load(&hist, state, err, sizeof err) != 0) {
        fprintf(stderr, "crm: error=setup reason=\"%s\"\n", err);
        goto exit;
    }
    if (rs_cli_intake_open(&o, a.out, a.produce) != 0)
        goto exit;
    /* new events go to a temp file first: the state grows only after success */
    if (state != NULL && rs_cli_intake_open(&st, NULL, 1) != 0) {
        rs_cli_intake_finish(&o, NULL, 1);
        goto exit;
    }
    rc = rs_intake_crm(system, a.files, a.nfiles, map, hist, rs_cli_intake_emit, &o,
                       state ? append_state : NULL, &st, stderr, &s);
    rc = rs_cli_intake_finish(&o, a.config, rc);
    if (state != NULL) {
        fclose(st.f);
        if (rc != 1) {
            size_t n;
            char buf[65536];
            FILE *in = fopen(st.tmp, "r"), *app = fopen(state, "a");
            while (in && app && (n = fread(buf, 1, sizeof buf, in)) > 0)
                if (fwrite(buf, 1, n, app) != n)
                    rc = 1;
            if (in == NULL || app == NULL || (app && fclose(app) != 0)) {
                fprintf(stderr, "crm: error=state file=\"%s\"\n", state);
                rc = 1;
            }
            if (in)
                fclose(in);
        }
        unlink(st.tmp);
    }
    fprintf(stderr,
            "crm: done system=%s deals=%ld emitted=%ld booked=%ld amended=%ld unchanged=%ld "
            "not_won=%ld incomplete=%ld\n",
            system, s.records, s.emitted, s.booked, s.amended, s.unchanged, s.not_won,
            s.incomplete);
exit:
    rs_intake_history_destroy(hist);
    rs_intake_map_destroy(map);
    return rc;
}
