/*
 * cmd_codec.c — `revstream encode` (JSON Lines -> Avro wire-format records,
 * one .avrobin file per topic) and `revstream decode` (an .avrobin file ->
 * JSON Lines on stdout).
 *
 * The .avrobin stream is a sequence of records, each:
 *     u32 record_len   big-endian: the bytes that follow (4 + key_len + value_len)
 *     u32 key_len      big-endian
 *     key              key_len bytes: the Kafka key, the event's contract_id
 *                      ("" for period.closed)
 *     value            the Kafka value: Confluent wire format (magic 0,
 *                      schema id, Avro body)
 * so a file replays into Kafka as it is (kcat -K, or the worker's loader).
 *
 * Invariants:
 *   - Schemas come from one rs_registry: the local map (--schemas DIR, by
 *     default share/revstream/schemas next to the installed binary, or the
 *     source tree's schemas/ for a build-folder run) or a
 *     Schema Registry (--registry URL). encode registers the compiled-in
 *     topic schema under "<topic>-value" (the local map just answers its
 *     fixed id) and writes with the text the registry holds for that id.
 *     decode fetches every id it meets through the same registry.
 *   - A bad input line or record is reported on stderr with its line or
 *     record number ("encode: line 7: event E-7: amount: ...") and skipped;
 *     everything else still goes through. Exit status: 0 all good, 2 some
 *     line or record rejected, 1 usage or I/O error (or a framing error in
 *     an .avrobin file, after which nothing more can be read).
 *   - Log lines are key=value on stderr; registry credentials (URL userinfo
 *     or RS_REGISTRY_USERNAME / RS_REGISTRY_PASSWORD) are never printed:
 *     only rs_registry_describe() is.
 *
 * Ownership: each command owns its registry, cache, files and buffers for
 * the call and frees them through its one exit label.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_bytes.h"
#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_registry.h"

#define N_TOPICS 4 /* contracts, invoices, payments, usage: schema kinds 0..3 */
#define MAX_KEY (64 * 1024)

typedef struct codec_opts {
    const char *schemas;  /* local map directory or file */
    const char *registry; /* registry URL, or NULL */
    const char *out_dir;
    const char *file;
} codec_opts_t;

static void encode_usage(FILE *f)
{
    fprintf(
        f,
        "usage: revstream encode [--schemas DIR | --registry URL] [--out-dir DIR] FILE.jsonl\n"
        "\n"
        "Turn a JSON Lines file of events (events.md) into Avro records in the Confluent\n"
        "wire format, one file per topic: DIR/contracts.avrobin, invoices.avrobin,\n"
        "payments.avrobin, usage.avrobin. Each record is a 4-byte big-endian length, a\n"
        "4-byte big-endian key length, the key (the contract_id) and the value.\n"
        "\n"
        "  --schemas DIR   local schema ids: DIR/ids.properties and DIR/<name>.avsc\n"
        "                  (default %s)\n"
        "  --registry URL  a Confluent Schema Registry; the topic schemas are registered\n"
        "                  as <topic>-value. Basic auth from the URL's user:password@ or\n"
        "                  RS_REGISTRY_USERNAME / RS_REGISTRY_PASSWORD.\n"
        "  --out-dir DIR   where the .avrobin files go (default .)\n"
        "  -h, --help      this text\n"
        "\n"
        "FILE may be - for stdin. Exit status: 0 all lines encoded, 2 some line rejected\n"
        "(the others are still written), 1 usage or I/O error.\n",
        rs_cli_schema_dir());
}

static void decode_usage(FILE *f)
{
    fprintf(f,
            "usage: revstream decode [--schemas DIR | --registry URL] FILE.avrobin\n"
            "\n"
            "Print the events of an .avrobin file (see 'revstream encode --help') as JSON\n"
            "Lines on stdout, fetching each schema id from the local ids or the registry.\n"
            "\n"
            "  --schemas DIR   local schema ids (default %s)\n"
            "  --registry URL  a Confluent Schema Registry (auth as for encode)\n"
            "  -h, --help      this text\n"
            "\n"
            "FILE may be - for stdin. Exit status: 0 all records decoded, 2 some record\n"
            "rejected, 1 usage or I/O error (including a truncated file).\n",
            rs_cli_schema_dir());
}

/* Print msg on stderr as one line (control bytes shown as '?'). */
static void put_line(const char *cmd, const char *where, long n, const char *msg)
{
    fprintf(stderr, "%s: %s %ld: ", cmd, where, n);
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, stderr);
    fputc('\n', stderr);
}

/* Parse the options shared by both commands. Returns 0, 1 (usage error) or
 * -1 (--help printed). */
static int parse_opts(int argc, char **argv, int with_out_dir, codec_opts_t *o)
{
    static const struct option longopts[] = {
        {"schemas", required_argument, NULL, 's'},
        {"registry", required_argument, NULL, 'r'},
        {"out-dir", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    int opt, has_schemas = 0;

    o->schemas = rs_cli_schema_dir();
    o->registry = NULL;
    o->out_dir = ".";
    o->file = NULL;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            o->schemas = optarg;
            has_schemas = 1;
            break;
        case 'r':
            o->registry = optarg;
            break;
        case 'o':
            if (!with_out_dir) {
                fprintf(stderr, "%s: --out-dir is for encode only\n", cmd);
                return 1;
            }
            o->out_dir = optarg;
            break;
        case 'h':
            return -1;
        default:
            fprintf(stderr, "%s: run 'revstream %s --help' for usage\n", cmd, cmd);
            return 1;
        }
    }
    if (has_schemas && o->registry != NULL) {
        fprintf(stderr, "%s: --schemas and --registry exclude each other\n", cmd);
        return 1;
    }
    if (optind >= argc) {
        fprintf(stderr, "%s: missing FILE\n", cmd);
        return 1;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "%s: one FILE only\n", cmd);
        return 1;
    }
    o->file = argv[optind];
    return 0;
}

static int open_registry(const char *cmd, const codec_opts_t *o, rs_registry_t **reg)
{
    char err[512];
    int rc;
    if (o->registry != NULL) {
        rs_registry_options_t ro = {.url = o->registry,
                                    .username = getenv("RS_REGISTRY_USERNAME"),
                                    .password = getenv("RS_REGISTRY_PASSWORD")};
        if (ro.username != NULL && ro.username[0] == '\0')
            ro.username = NULL;
        rc = rs_registry_new(reg, &ro, err, sizeof(err));
    } else {
        rc = rs_registry_new_local(reg, o->schemas, err, sizeof(err));
    }
    if (rc != RS_REGISTRY_OK) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return -1;
    }
    return 0;
}

static FILE *open_input(const char *cmd, const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdin;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fprintf(stderr, "%s: %s: %s\n", cmd, path, strerror(errno));
    return f;
}

/* ------------------------------------------------------------------------ */
/* encode                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct topic_out {
    int32_t id; /* -1 until the schema is registered */
    FILE *f;
    char *path;
    long count;
} topic_out_t;

/* Register the topic's schema, load it into the cache, open its file. */
static int open_topic(const char *cmd, int kind, const codec_opts_t *o, rs_registry_t *reg,
                      rs_avro_cache_t *cache, topic_out_t *t)
{
    char err[512], subject[64];
    const char *text = NULL;
    int32_t id = -1;

    snprintf(subject, sizeof(subject), "%s-value", rs_avro_schema_name(kind));
    if (rs_registry_register(reg, subject, rs_avro_schema_json(kind), &id, err, sizeof(err)) !=
            RS_REGISTRY_OK ||
        rs_registry_get_schema(reg, id, &text, err, sizeof(err)) != RS_REGISTRY_OK ||
        rs_avro_cache_add(cache, id, text, err, sizeof(err)) != RS_AVRO_OK) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return -1;
    }
    if (asprintf(&t->path, "%s/%s.avrobin", o->out_dir, rs_avro_schema_name(kind)) < 0) {
        t->path = NULL;
        fprintf(stderr, "%s: out of memory\n", cmd);
        return -1;
    }
    t->f = fopen(t->path, "wb");
    if (t->f == NULL) {
        fprintf(stderr, "%s: %s: %s\n", cmd, t->path, strerror(errno));
        return -1;
    }
    t->id = id;
    fprintf(stderr, "%s: topic=%s schema_id=%d registry=\"%s\" file=\"%s\"\n", cmd,
            rs_avro_schema_name(kind), (int)id, rs_registry_describe(reg), t->path);
    return 0;
}

static int write_record(topic_out_t *t, const char *key, const void *value, size_t len)
{
    uint8_t hdr[8];
    size_t klen = strlen(key);
    rs_put_be32(hdr, (uint32_t)(4 + klen + len));
    rs_put_be32(hdr + 4, (uint32_t)klen);
    if (fwrite(hdr, 1, 8, t->f) != 8 || fwrite(key, 1, klen, t->f) != klen ||
        fwrite(value, 1, len, t->f) != len)
        return -1;
    t->count++;
    return 0;
}

int rs_cli_cmd_encode(int argc, char **argv)
{
    const char *cmd = "encode";
    codec_opts_t o;
    rs_registry_t *reg = NULL;
    rs_avro_cache_t *cache = NULL;
    topic_out_t topics[N_TOPICS];
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, written = 0, rejected = 0;
    char err[512];
    int status = 1;

    for (int k = 0; k < N_TOPICS; k++)
        topics[k] = (topic_out_t){-1, NULL, NULL, 0};
    int p = parse_opts(argc, argv, 1, &o);
    if (p != 0) {
        if (p < 0)
            encode_usage(stdout);
        return p < 0 ? 0 : 1;
    }
    if (open_registry(cmd, &o, &reg) != 0)
        goto out;
    if (rs_avro_cache_new(&cache, err, sizeof(err)) != RS_AVRO_OK) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        goto out;
    }
    if ((in = open_input(cmd, o.file)) == NULL)
        goto out;

    ssize_t n;
    while ((n = getline(&line, &cap, in)) != -1) {
        rs_event_t ev;
        void *buf = NULL;
        size_t len = 0;
        lineno++;
        /* a byte-order mark at the start of the file is not part of line 1 */
        size_t bom = lineno == 1 ? rs_utf8_bom_len(line, (size_t)n) : 0;
        const char *text = line + bom;
        n -= (ssize_t)bom;
        if (strspn(text, " \t\r\n") == (size_t)n)
            continue;
        if (rs_codec_json_decode(text, (size_t)n, &ev, err, sizeof(err)) != 0) {
            put_line(cmd, "line", lineno, err);
            rejected++;
            continue;
        }
        int kind = rs_avro_schema_kind_of_event(ev.type);
        topic_out_t *t = &topics[kind];
        if (t->id < 0 && open_topic(cmd, kind, &o, reg, cache, t) != 0) {
            rs_event_clear(&ev);
            goto out;
        }
        int rc = rs_avro_encode_event(cache, t->id, &ev, &buf, &len, err, sizeof(err));
        if (rc != RS_AVRO_OK) {
            put_line(cmd, "line", lineno, err);
            rejected++;
        } else if (write_record(t, ev.contract_id, buf, len) != 0) {
            fprintf(stderr, "%s: %s: %s\n", cmd, t->path, strerror(errno));
            free(buf);
            rs_event_clear(&ev);
            goto out;
        } else {
            written++;
        }
        free(buf);
        rs_event_clear(&ev);
    }
    if (ferror(in)) {
        fprintf(stderr, "%s: %s: %s\n", cmd, o.file, strerror(errno));
        goto out;
    }
    status = rejected > 0 ? 2 : 0;
out:
    for (int k = 0; k < N_TOPICS; k++) {
        if (topics[k].f != NULL && fclose(topics[k].f) != 0) {
            fprintf(stderr, "%s: %s: %s\n", cmd, topics[k].path, strerror(errno));
            status = 1;
        }
        free(topics[k].path);
    }
    if (status != 1 || written > 0)
        fprintf(
            stderr,
            "%s: lines=%ld written=%ld rejected=%ld contracts=%ld invoices=%ld payments=%ld "
            "usage=%ld\n",
            cmd, lineno, written, rejected, topics[0].count, topics[1].count, topics[2].count,
            topics[3].count);
    if (in != NULL && in != stdin)
        fclose(in);
    free(line);
    rs_avro_cache_destroy(cache);
    rs_registry_destroy(reg);
    return status;
}

/* ------------------------------------------------------------------------ */
/* decode                                                                   */
/* ------------------------------------------------------------------------ */

/* Read exactly n bytes: 1 read, 0 clean EOF before the first byte, -1
 * truncated or I/O error. */
static int read_exact(FILE *f, void *p, size_t n)
{
    size_t got = fread(p, 1, n, f);
    if (got == n)
        return 1;
    return (got == 0 && feof(f)) ? 0 : -1;
}

int rs_cli_cmd_decode(int argc, char **argv)
{
    const char *cmd = "decode";
    codec_opts_t o;
    rs_registry_t *reg = NULL;
    rs_avro_cache_t *cache = NULL;
    FILE *in = NULL;
    uint8_t *rec = NULL;
    long n_rec = 0, printed = 0, rejected = 0;
    char err[512];
    int status = 1;

    int p = parse_opts(argc, argv, 0, &o);
    if (p != 0) {
        if (p < 0)
            decode_usage(stdout);
        return p < 0 ? 0 : 1;
    }
    if (open_registry(cmd, &o, &reg) != 0)
        goto out;
    if (rs_avro_cache_new(&cache, err, sizeof(err)) != RS_AVRO_OK) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        goto out;
    }
    rs_avro_cache_set_lookup(cache, rs_registry_lookup, reg);
    if ((in = open_input(cmd, o.file)) == NULL)
        goto out;
    rec = malloc(4 + MAX_KEY + RS_AVRO_MAX_MESSAGE);
    if (rec == NULL) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        goto out;
    }

    for (;;) {
        uint8_t hdr[4];
        int r = read_exact(in, hdr, 4);
        if (r == 0)
            break;
        n_rec++;
        if (r < 0) {
            put_line(cmd, "record", n_rec, "truncated length");
            goto out;
        }
        uint32_t rlen = rs_get_be32(hdr);
        if (rlen < 4 || rlen > 4 + MAX_KEY + RS_AVRO_MAX_MESSAGE) {
            snprintf(err, sizeof(err),
                     "record length %lu is not between 4 and %d (not an .avrobin file?)",
                     (unsigned long)rlen, 4 + MAX_KEY + RS_AVRO_MAX_MESSAGE);
            put_line(cmd, "record", n_rec, err);
            goto out;
        }
        if (read_exact(in, rec, rlen) != 1) {
            put_line(cmd, "record", n_rec, "truncated record");
            goto out;
        }
        uint32_t klen = rs_get_be32(rec);
        if (klen > rlen - 4 || klen > MAX_KEY) {
            snprintf(err, sizeof(err), "key length %lu does not fit the record",
                     (unsigned long)klen);
            put_line(cmd, "record", n_rec, err);
            goto out;
        }
        const char *key = (const char *)rec + 4;
        const uint8_t *value = rec + 4 + klen;
        size_t vlen = rlen - 4 - klen;

        rs_event_t ev;
        int rc = rs_avro_decode_event(cache, value, vlen, &ev, err, sizeof(err));
        if (rc != RS_AVRO_OK) {
            put_line(cmd, "record", n_rec, err);
            rejected++;
            continue;
        }
        if (strlen(ev.contract_id) != klen || memcmp(key, ev.contract_id, klen) != 0) {
            snprintf(err, sizeof(err),
                     "event %s: the record's key is not its contract_id \"%s\"", ev.event_id,
                     ev.contract_id);
            put_line(cmd, "record", n_rec, err);
            rejected++;
            rs_event_clear(&ev);
            continue;
        }
        char *json = rs_codec_json_encode(&ev);
        rs_event_clear(&ev);
        if (json == NULL) {
            put_line(cmd, "record", n_rec, "cannot print the event as JSON");
            rejected++;
            continue;
        }
        int w = printf("%s\n", json);
        free(json);
        if (w < 0) {
            fprintf(stderr, "%s: stdout: %s\n", cmd, strerror(errno));
            goto out;
        }
        printed++;
    }
    if (ferror(in)) {
        fprintf(stderr, "%s: %s: %s\n", cmd, o.file, strerror(errno));
        goto out;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "%s: stdout: %s\n", cmd, strerror(errno));
        goto out;
    }
    status = rejected > 0 ? 2 : 0;
out:
    fprintf(stderr, "%s: records=%ld printed=%ld rejected=%ld registry=\"%s\"\n", cmd, n_rec,
            printed, rejected, rs_registry_describe(reg));
    if (in != NULL && in != stdin)
        fclose(in);
    free(rec);
    rs_avro_cache_destroy(cache);
    rs_registry_destroy(reg);
    return status;
}
