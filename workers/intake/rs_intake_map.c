/*
 * rs_intake_map.c — the field mapping: built-in defaults per source system,
 * overridden by a properties file (--map FILE, parsed by rs_props with
 * trailing '#' comments). docs/intake.md lists every key.
 *
 * Invariants:
 *   - A key set later wins (defaults first, then the file in line order).
 *   - Checked at load: every recognition.* value is a method intake can book
 *     (ratable_daily, ratable_monthly, point_in_time, usage; milestone lines
 *     need milestones a CRM line item does not carry), every ssp.* value a
 *     decimal, every frequency.* value a number of months, amend.treatment
 *     prospective or catch_up. A bad value fails the load with file:line.
 *
 * Ownership: the map owns copies of its keys and values.
 */
#include <stdlib.h>
#include <string.h>

#include "rs_intake_internal.h"
#include "rs_money.h"
#include "rs_props.h"

typedef struct kv {
    char *key, *value;
} kv_t;

struct rs_intake_map {
    kv_t *v;
    size_t n, cap;
};

static const char *const DEFAULTS_HUBSPOT[] = {
    "deal.won_stages=closedwon",
    "deal.close_date=closedate",
    "deal.currency=deal_currency_code",
    "deal.customer_id=",
    "deal.effective_on=",
    "line.currency=hs_line_item_currency_code",
    "line.product=name",
    "line.sku=hs_sku",
    "line.product_id=hs_product_id",
    "line.amount=amount",
    "line.unit_price=price",
    "line.quantity=quantity",
    "line.start=hs_recurring_billing_start_date",
    "line.end=hs_recurring_billing_end_date",
    "line.term=hs_term_in_months,hs_recurring_billing_period",
    "line.frequency=recurringbillingfrequency",
    "line.payments=hs_recurring_billing_number_of_payments",
    NULL};

static const char *const DEFAULTS_SALESFORCE[] = {"deal.close_date=CloseDate",
                                                  "deal.currency=CurrencyIsoCode",
                                                  "deal.customer_id=AccountId",
                                                  "deal.updated_at=LastModifiedDate",
                                                  "deal.effective_on=",
                                                  "line.currency=CurrencyIsoCode",
                                                  "line.product=Name",
                                                  "line.sku=ProductCode",
                                                  "line.product_id=Product2Id",
                                                  "line.amount=TotalPrice",
                                                  "line.unit_price=UnitPrice",
                                                  "line.quantity=Quantity",
                                                  "line.start=ServiceDate,SBQQ__StartDate__c",
                                                  "line.end=SBQQ__EndDate__c",
                                                  "line.term=SBQQ__SubscriptionTerm__c",
                                                  "line.frequency=",
                                                  "line.payments=",
                                                  NULL};

static const char *const DEFAULTS_STRIPE[] = {"link.contract_key=revstream_contract_id",
                                              "link.line_key=revstream_line_id",
                                              "credit_reason.duplicate=error",
                                              "credit_reason.fraudulent=error",
                                              "credit_reason.order_change=cancellation",
                                              "credit_reason.product_unsatisfactory=refund",
                                              "credit_reason.none=discount",
                                              NULL};

static const char *const DEFAULTS_COMMON[] = {"recognition.default=ratable_monthly",
                                              "amend.treatment=prospective",
                                              "contract_id.prefix=",
                                              "point_in_time.start=",
                                              "frequency.monthly=1",
                                              "frequency.quarterly=3",
                                              "frequency.per_six_months=6",
                                              "frequency.annually=12",
                                              "frequency.per_two_years=24",
                                              "frequency.per_three_years=36",
                                              "frequency.per_four_years=48",
                                              "frequency.per_five_years=60",
                                              NULL};

static int set(rs_intake_map_t *m, const char *key, const char *value)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].key, key) == 0) {
            char *nv = strdup(value);
            if (nv == NULL)
                return -1;
            free(m->v[i].value);
            m->v[i].value = nv;
            return 0;
        }
    }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        kv_t *nv = realloc(m->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        m->v = nv;
        m->cap = ncap;
    }
    m->v[m->n].key = strdup(key);
    m->v[m->n].value = strdup(value);
    if (m->v[m->n].key == NULL || m->v[m->n].value == NULL) {
        free(m->v[m->n].key);
        free(m->v[m->n].value);
        return -1;
    }
    m->n++;
    return 0;
}

static int set_list(rs_intake_map_t *m, const char *const *list)
{
    for (; *list != NULL; list++) {
        const char *eq = strchr(*list, '=');
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(eq - *list), *list);
        if (set(m, key, eq + 1) != 0)
            return -1;
    }
    return 0;
}

/* A value's check; NULL when fine, else the reason. */
static const char *check(const char *key, const char *value)
{
    rs_decimal_t d;
    char err[128];
    if (strncmp(key, "recognition.", 12) == 0) {
        rs_method_t me = rs_method_from_name(value);
        if (me == RS_METHOD_NONE || me == RS_METHOD_MILESTONE)
            return "ratable_daily, ratable_monthly, point_in_time or usage";
    } else if (strncmp(key, "ssp.", 4) == 0) {
        if (rs_decimal_parse(value, &d, err, sizeof err) != 0 || d.mantissa < 0)
            return "a decimal >= 0 (the unit's standalone selling price)";
    } else if (strncmp(key, "frequency.", 10) == 0) {
        if (rs_intake_months(value) < 0)
            return "a number of months";
    } else if (strcmp(key, "amend.treatment") == 0) {
        if (strcmp(value, "prospective") != 0 && strcmp(value, "catch_up") != 0)
            return "prospective or catch_up";
    } else if (strcmp(key, "point_in_time.start") == 0) {
        if (value[0] != '\0' && strcmp(value, "close_date") != 0)
            return "empty or close_date";
    } else if (strncmp(key, "credit_reason.", 14) == 0) {
        if (rs_credit_reason_from_name(value) == RS_CREDIT_NONE)
            return "discount, refund, cancellation or error";
    }
    return NULL;
}

typedef struct load_ctx {
    rs_intake_map_t *m;
    const char *path;
    char *errstr;
    size_t errlen;
} load_ctx_t;

static int on_prop(void *vctx, int lineno, char *key, char *value)
{
    load_ctx_t *c = vctx;
    const char *why;
    if (value == NULL) {
        snprintf(c->errstr, c->errlen, "%s:%d: expected key=value", c->path, lineno);
        return 1;
    }
    if ((why = check(key, value)) != NULL) {
        snprintf(c->errstr, c->errlen, "%s:%d: %s: expected %s, got \"%s\"", c->path, lineno,
                 key, why, value);
        return 1;
    }
    if (set(c->m, key, value) != 0) {
        snprintf(c->errstr, c->errlen, "out of memory");
        return 1;
    }
    return 0;
}

int rs_intake_map_load(rs_intake_map_t **out, const char *system, const char *path,
                       char *errstr, size_t errlen)
{
    rs_intake_map_t *m = calloc(1, sizeof *m);
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    *out = NULL;
    if (m == NULL || set_list(m, DEFAULTS_COMMON) != 0) {
        snprintf(errstr, errlen, "out of memory");
        goto exit;
    }
    if (strcmp(system, "hubspot") == 0)
        rc = set_list(m, DEFAULTS_HUBSPOT);
    else if (strcmp(system, "salesforce") == 0)
        rc = set_list(m, DEFAULTS_SALESFORCE);
    else if (strcmp(system, "stripe") == 0)
        rc = set_list(m, DEFAULTS_STRIPE);
    else
        snprintf(errstr, errlen, "unknown system \"%s\"", system);
    if (rc != 0)
        goto exit;
    rc = -1;
    if (path != NULL) {
        load_ctx_t c = {m, path, errstr, errlen};
        text = rs_intake_slurp(path, &len);
        if (text == NULL) {
            snprintf(errstr, errlen, "%s: cannot read", path);
            goto exit;
        }
        int prc = rs_props_parse(text, RS_PROPS_TRAILING_COMMENTS, on_prop, &c);
        if (prc == RS_PROPS_ENOMEM)
            snprintf(errstr, errlen, "out of memory");
        if (prc != 0)
            goto exit;
    }
    *out = m;
    m = NULL;
    rc = 0;
exit:
    free(text);
    rs_intake_map_destroy(m);
    return rc;
}

void rs_intake_map_destroy(rs_intake_map_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].value);
    }
    free(m->v);
    free(m);
}

const char *rs_intake_map_get(const rs_intake_map_t *m, const char *key)
{
    for (size_t i = 0; m != NULL && i < m->n; i++)
        if (strcmp(m->v[i].key, key) == 0)
            return m->v[i].value;
    return NULL;
}

const char *rs_intake_map_get2(const rs_intake_map_t *m, const char *prefix, const char *key)
{
    char full[256];
    if (key == NULL)
        return NULL;
    snprintf(full, sizeof full, "%s.%s", prefix, key);
    return rs_intake_map_get(m, full);
}
