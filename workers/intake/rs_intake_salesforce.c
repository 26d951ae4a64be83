/*
 * rs_intake_salesforce.c — Salesforce Opportunity + OpportunityLineItem
 * exports to normalised deals.
 *
 * Accepted layouts (docs/intake.md, "Salesforce"):
 *   - JSON: each FILE is one page of a REST query response, {"totalSize",
 *     "done", "nextRecordsUrl", "records": [...]}; pages in the order given.
 *     A record's attributes.type says what it is: "Opportunity" (its line
 *     items may come in the subquery OpportunityLineItems: {"records": [...]},
 *     which must be complete: done not false) or "OpportunityLineItem" (a
 *     separate query; linked by OpportunityId). The last file must say
 *     done: true. Numbers (Amount, TotalPrice, ...) are read exactly as
 *     rs_intake_field says.
 *   - CSV: exports of both objects (Data Loader, Workbench: a header row of
 *     API field names, RFC 4180 quoting, parsed by libcsv; a UTF-8 BOM is
 *     skipped). A file whose header has OpportunityId holds line items, one
 *     with IsWon opportunities. Empty cells are absent fields.
 *   - Closed-won is IsWon (true/"true"/"1"), never a stage name.
 *   - Line items keep the order they come in (subquery, then separate
 *     records in file order); one Id given twice counts once.
 *
 * Ownership: the normalised deals hold new references; file trees and CSV
 * rows are released when the call returns.
 */
#include <csv.h>
#include <stdlib.h>
#include <string.h>

#include "rs_intake_internal.h"

static const char *rec_type(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "attributes"), "type"));
}

/* ---- CSV ---- */

typedef struct csv_ctx {
    json_t *header; /* array of names */
    json_t *row;    /* the row being read: array of strings */
    json_t *rows;   /* objects */
    int failed;
} csv_ctx_t;

static void on_field(void *s, size_t len, void *data)
{
    csv_ctx_t *c = data;
    if (c->row == NULL)
        c->row = json_array();
    if (json_array_append_new(c->row, json_stringn((const char *)s, len)) != 0)
        c->failed = 1; /* not UTF-8 */
}

static void on_row(int term, void *data)
{
    csv_ctx_t *c = data;
    size_t i;
    json_t *v;
    (void)term;
    if (c->row == NULL)
        return;
    if (c->header == NULL) {
        c->header = c->row;
    } else {
        json_t *o = json_object();
        json_array_foreach(c->row, i, v)
        {
            const char *name = json_string_value(json_array_get(c->header, i));
            if (name != NULL && json_string_length(v) > 0)
                json_object_set(o, name, v);
        }
        json_array_append_new(c->rows, o);
        json_decref(c->row);
    }
    c->row = NULL;
}

/* A CSV file as {"header": [...], "rows": [{...}]}; NULL on error. */
static json_t *load_csv(const char *path, FILE *diag)
{
    struct csv_parser p;
    csv_ctx_t c = {NULL, NULL, json_array(), 0};
    size_t len = 0;
    char *text = rs_intake_slurp(path, &len);
    json_t *out = NULL;
    if (text == NULL || c.rows == NULL || csv_init(&p, CSV_STRICT | CSV_APPEND_NULL) != 0) {
        fprintf(diag, "crm: error=read file=\"%s\"\n", path);
        free(text);
        json_decref(c.rows);
        return NULL;
    }
    size_t skip = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    if (csv_parse(&p, text + skip, len - skip, on_field, on_row, &c) != len - skip ||
        csv_fini(&p, on_field, on_row, &c) != 0 || c.failed || c.header == NULL)
        fprintf(diag, "crm: error=csv file=\"%s\" reason=\"%s\"\n", path,
                c.failed ? "not UTF-8" : csv_strerror(csv_error(&p)));
    else
        out = json_pack("{s:O, s:O}", "header", c.header, "rows", c.rows);
    csv_free(&p);
    free(text);
    json_decref(c.header);
    json_decref(c.row);
    json_decref(c.rows);
    return out;
}

static int header_has(json_t *header, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(header, i, v)
    {
        if (strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

/* ---- both ---- */

static int is_true(json_t *o, const char *name)
{
    char buf[16];
    const char *s = rs_intake_field(o, name, buf, sizeof buf);
    return s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

/* Adds line item r to its opportunity's list in `lines` (object: opp id ->
 * array), once per Id. */
static void add_line(json_t *lines, json_t *seen, json_t *r, const char *opp)
{
    const char *id = json_string_value(json_object_get(r, "Id"));
    if (opp == NULL || id == NULL || json_object_get(seen, id) != NULL)
        return;
    json_object_set_new(seen, id, json_true());
    json_t *list = json_object_get(lines, opp);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(lines, opp, list);
    }
    json_array_append_new(list, json_pack("{s:s, s:O}", "id", id, "fields", r));
}

int rs_intake_salesforce_deals(char *const *files, int nfiles, const rs_intake_map_t *map,
                               json_t *deals, FILE *diag)
{
    json_t *opps = json_array(), *lines = json_object(), *seen = json_object();
    json_t *keep = json_array();
    char err[512];
    int rc = 1;
    size_t i, k;
    json_t *r, *sub;

    for (int f = 0; f < nfiles; f++) {
        size_t n = strlen(files[f]);
        json_t *root;
        if (n > 4 && strcmp(files[f] + n - 4, ".csv") == 0) {
            json_t *csv = load_csv(files[f], diag);
            if (csv == NULL)
                goto exit;
            json_array_append_new(keep, csv);
            json_t *header = json_object_get(csv, "header");
            int is_lines = header_has(header, "OpportunityId");
            if (!is_lines && !header_has(header, "IsWon")) {
                fprintf(diag,
                        "crm: error=format file=\"%s\" reason=\"a CSV export of Opportunity "
                        "(with IsWon) or OpportunityLineItem (with OpportunityId)\"\n",
                        files[f]);
                goto exit;
            }
            json_array_foreach(json_object_get(csv, "rows"), i, r)
            {
                if (is_lines)
                    add_line(lines, seen, r,
                             json_string_value(json_object_get(r, "OpportunityId")));
                else
                    json_array_append(opps, r);
            }
            continue;
        }
        if ((root = rs_intake_load_json(files[f], err, sizeof err)) == NULL) {
            fprintf(diag, "crm: error=read reason=\"%s\"\n", err);
            goto exit;
        }
        json_array_append_new(keep, root);
        if (!json_is_array(json_object_get(root, "records"))) {
            fprintf(diag,
                    "crm: error=format file=\"%s\" reason=\"no records: not a query "
                    "response\"\n",
                    files[f]);
            goto exit;
        }
        if (f == nfiles - 1 && json_is_false(json_object_get(root, "done"))) {
            fprintf(diag,
                    "crm: error=incomplete file=\"%s\" next=\"%s\" reason=\"the last page "
                    "given is not done\"\n",
                    files[f],
                    json_string_value(json_object_get(root, "nextRecordsUrl"))
                        ? json_string_value(json_object_get(root, "nextRecordsUrl"))
                        : "");
            goto exit;
        }
        json_array_foreach(json_object_get(root, "records"), i, r)
        {
            const char *type = rec_type(r);
            if (type != NULL && strcmp(type, "OpportunityLineItem") == 0) {
                add_line(lines, seen, r,
                         json_string_value(json_object_get(r, "OpportunityId")));
                continue;
            }
            if (type == NULL || strcmp(type, "Opportunity") != 0)
                continue;
            json_array_append(opps, r);
            sub = json_object_get(r, "OpportunityLineItems");
            if (json_is_false(json_object_get(sub, "done"))) {
                fprintf(diag,
                        "crm: error=incomplete file=\"%s\" deal=%s reason=\"the "
                        "OpportunityLineItems subquery is paged; export the line items as "
                        "their own query\"\n",
                        files[f], json_string_value(json_object_get(r, "Id")));
                goto exit;
            }
            json_t *item;
            json_array_foreach(json_object_get(sub, "records"), k, item)
            {
                add_line(lines, seen, item, json_string_value(json_object_get(r, "Id")));
            }
        }
    }
    json_array_foreach(opps, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "Id"));
        char ubuf[64];
        const char *ufield = rs_intake_map_get(map, "deal.updated_at");
        const char *upd = ufield ? rs_intake_field(r, ufield, ubuf, sizeof ubuf) : NULL;
        json_t *l = json_object_get(lines, id ? id : "");
        if (id == NULL) {
            fprintf(diag, "crm: error=format reason=\"an Opportunity without Id\"\n");
            goto exit;
        }
        json_array_append_new(deals, json_pack("{s:s, s:b, s:s?, s:n, s:O, s:o}", "id", id,
                                               "won", is_true(r, "IsWon"), "updated_at", upd,
                                               "customer_id", "fields", r, "lines",
                                               l ? json_incref(l) : json_array()));
    }
    rc = 0;
exit:
    json_decref(opps);
    json_decref(lines);
    json_decref(seen);
    json_decref(keep);
    return rc;
}
