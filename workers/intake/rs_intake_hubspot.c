/*
 * rs_intake_hubspot.c — HubSpot CRM v3 exports to normalised deals.
 *
 * Accepted layouts (docs/intake.md, "HubSpot"):
 *   - Each FILE is one page of a CRM v3 list, {"results": [...], "paging":
 *     {"next": {"after", "link"}}} (no paging on the last page), or a single
 *     object as GET /crm/v3/objects/deals/{id} returns it. Several files are
 *     several pages, read in the order given.
 *   - An object whose properties include `dealstage` is a deal; any other
 *     object is a line item. Deals and line items may share a page or come
 *     in separate lists (deal pages, then line-item pages, in any order).
 *   - A deal's line items are its association "line items" (or
 *     "line_items"): results [{"id", "type": "deal_to_line_item"}]. An
 *     association result that itself has `properties` is the line item,
 *     embedded; otherwise the line item with that id must be in the files.
 *     A line item named by a deal but not found is a missing line (the deal
 *     is reported). Line items keep the order of the association list.
 *   - The customer is the deal's first associated company (association
 *     "companies"), unless the map names a deal property (deal.customer_id).
 *   - Closed-won: properties.hs_is_closed_won is "true", or dealstage is one
 *     of deal.won_stages (comma-separated; default closedwon).
 *   - The last file given must not announce a next page (paging.next): an
 *     export cut short is an error, not a smaller book.
 *
 * Ownership: the normalised deals hold new references to the source's
 * properties objects; the files' trees are released when the call returns.
 */
#include <string.h>

#include "rs_intake_internal.h"

static json_t *assoc_results(json_t *deal, const char *key)
{
    return json_object_get(json_object_get(json_object_get(deal, "associations"), key),
                           "results");
}

static int stage_won(const rs_intake_map_t *map, json_t *props)
{
    const char *won = json_string_value(json_object_get(props, "hs_is_closed_won"));
    const char *stage = json_string_value(json_object_get(props, "dealstage"));
    const char *list = rs_intake_map_get(map, "deal.won_stages");
    if (won != NULL && strcmp(won, "true") == 0)
        return 1;
    if (stage == NULL || list == NULL)
        return 0;
    size_t n = strlen(stage);
    for (const char *p = list; p != NULL && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, stage, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The id of a HubSpot object: "id", else properties.hs_object_id. */
static const char *object_id(json_t *o)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    return id ? id
              : json_string_value(
                    json_object_get(json_object_get(o, "properties"), "hs_object_id"));
}

static int add_object(json_t *o, json_t *deals, json_t *items, const char *path, FILE *diag)
{
    json_t *props = json_object_get(o, "properties");
    const char *id = object_id(o);
    if (!json_is_object(props) || id == NULL) {
        fprintf(diag,
                "crm: error=format file=\"%s\" reason=\"an object without id or "
                "properties\"\n",
                path);
        return 1;
    }
    if (json_object_get(props, "dealstage") != NULL)
        return json_array_append(deals, o) != 0;
    /* a line item: the first copy of an id wins */
    if (json_object_get(items, id) == NULL)
        return json_object_set(items, id, o) != 0;
    return 0;
}

int rs_intake_hubspot_deals(char *const *files, int nfiles, const rs_intake_map_t *map,
                            json_t *deals, FILE *diag)
{
    json_t *raw = json_array(), *items = json_object(), *pages = json_array();
    char err[512];
    int rc = 1;
    size_t i;
    json_t *o;

    if (raw == NULL || items == NULL || pages == NULL)
        goto exit;
    for (int f = 0; f < nfiles; f++) {
        json_t *root = rs_intake_load_json(files[f], err, sizeof err);
        if (root == NULL) {
            fprintf(diag, "crm: error=read reason=\"%s\"\n", err);
            goto exit;
        }
        json_array_append_new(pages, root);
        json_t *results = json_object_get(root, "results");
        if (json_is_array(results)) {
            json_array_foreach(results, i, o)
            {
                if (add_object(o, raw, items, files[f], diag) != 0)
                    goto exit;
            }
        } else if (json_is_object(root) && add_object(root, raw, items, files[f], diag) != 0) {
            goto exit;
        }
        json_t *next = json_object_get(json_object_get(root, "paging"), "next");
        if (f == nfiles - 1 && next != NULL) {
            fprintf(diag,
                    "crm: error=incomplete file=\"%s\" after=\"%s\" reason=\"the last page "
                    "given says more pages follow\"\n",
                    files[f],
                    json_string_value(json_object_get(next, "after"))
                        ? json_string_value(json_object_get(next, "after"))
                        : "");
            goto exit;
        }
    }
    json_array_foreach(raw, i, o)
    {
        json_t *props = json_object_get(o, "properties");
        json_t *assoc = assoc_results(o, "line items");
        json_t *lines = json_array(), *a;
        json_t *companies = assoc_results(o, "companies");
        const char *cust =
            json_string_value(json_object_get(json_array_get(companies, 0), "id"));
        const char *upd = json_string_value(json_object_get(o, "updatedAt"));
        size_t k;
        if (assoc == NULL)
            assoc = assoc_results(o, "line_items");
        json_array_foreach(assoc, k, a)
        {
            const char *lid = json_string_value(json_object_get(a, "id"));
            json_t *item =
                json_object_get(a, "properties") ? a : json_object_get(items, lid ? lid : "");
            if (item == NULL) { /* named by the deal, in no file: reported by the CRM core */
                json_array_append_new(
                    lines, json_pack("{s:s?, s:{}, s:b}", "id", lid, "fields", "missing", 1));
                continue;
            }
            json_array_append_new(lines,
                                  json_pack("{s:s?, s:O}", "id", object_id(item), "fields",
                                            json_object_get(item, "properties")));
        }
        json_array_append_new(deals,
                              json_pack("{s:s, s:b, s:s?, s:s?, s:O, s:o}", "id", object_id(o),
                                        "won", stage_won(map, props), "updated_at", upd,
                                        "customer_id", cust, "fields", props, "lines", lines));
    }
    rc = 0;
exit:
    json_decref(raw);
    json_decref(items);
    json_decref(pages);
    return rc;
}
