/*
 * rs_metrics.c — the registry, the text exposition and the HTTP server.
 *
 * Invariants:
 *   - reg->fams is sorted by family name (bytewise) and has no duplicate
 *     names; every family has at least one series (a family is inserted
 *     only together with its first series).
 *   - fam->lnames holds the family's label names sorted bytewise; every
 *     series of the family has exactly these names, and s->lvalues[i] is
 *     the value for fam->lnames[i].
 *   - fam->series is sorted by label values (compared in lnames order) and
 *     has no duplicates, so rendering walks both arrays in order and the
 *     output is deterministic.
 *   - A histogram series keeps per-bucket (non-cumulative) counts, with
 *     buckets[nbounds] counting observations above the last bound; count
 *     and sum are updated under s->hlock together with the bucket, and
 *     rendering copies all three under the same lock.
 *   - Counter/gauge values are _Atomic int64_t; nothing else about a series
 *     changes after it is created.
 *
 * Locking: reg->lock guards fams, the arrays inside families and the
 * not-ready reason. It is never held while taking a series' hlock except in
 * rendering (registry lock, then hlock), and observe takes only hlock, so
 * there is no lock-order cycle. reg->ready is atomic.
 *
 * Ownership: the registry owns families and series (all strings copied).
 * The server borrows the registry and owns its MHD daemon. Buffers handed
 * to MHD with MHD_RESPMEM_MUST_FREE are freed by MHD.
 *
 * Float formatting (le bounds, histogram sums) prints the shortest decimal
 * that reads back to the same double, in the style of Go's
 * strconv.FormatFloat(v, 'g', -1, 64) that Prometheus clients use
 * ("0.005", "1", "2.5", "1e-05", "1e+06"). It assumes the "C" locale, which
 * the program never changes.
 */
#include "rs_metrics.h"
#include "rs_err.h"
#include "rs_log.h"
#include "rs_strbuf.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

const double rs_metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
const size_t rs_metrics_latency_bucket_count =
    sizeof(rs_metrics_latency_buckets) / sizeof(rs_metrics_latency_buckets[0]);

typedef struct rs_family rs_family_t;

struct rs_metrics_series {
    rs_family_t *fam;
    char *lvalues[RS_METRICS_MAX_LABELS];
    _Atomic int64_t value; /* counter, gauge */
    _Atomic int scale;     /* decimal places of value (rs_metrics_set_decimal) */
    _Atomic int present;   /* rendered (rs_metrics_unset clears it) */
    /* histogram only */
    pthread_mutex_t hlock;
    int hlock_ok;
    uint64_t *buckets; /* fam->nbounds + 1 */
    uint64_t count;
    double sum;
};

struct rs_family {
    char *name;
    char *help;
    rs_metrics_type_t type;
    size_t nlabels;
    char *lnames[RS_METRICS_MAX_LABELS];
    double *bounds; /* histogram only */
    size_t nbounds;
    rs_metrics_series_t **series;
    size_t nseries, cap;
};

struct rs_metrics {
    pthread_mutex_t lock;
    rs_family_t **fams;
    size_t nfams, cap;
    _Atomic int ready;
    char reason[RS_METRICS_REASON_MAX];
    _Atomic uint64_t beat_ms;  /* last heartbeat (CLOCK_MONOTONIC ms) */
    _Atomic uint64_t stale_ms; /* /healthz fails past this; 0 = never */
    rs_metrics_hook_fn hook;   /* run before each render (set once, before serving) */
    void *hook_opaque;
    void (*hook_free)(void *); /* frees hook_opaque at destroy, or NULL */
};

/* ---------- helpers ---------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static int is_alpha_(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int valid_metric_name(const char *s)
{
    if (s == NULL || *s == '\0' || !(is_alpha_((unsigned char)*s) || *s == ':'))
        return 0;
    for (s++; *s; s++) {
        int c = (unsigned char)*s;
        if (!(is_alpha_(c) || is_digit(c) || c == ':'))
            return 0;
    }
    return 1;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
static int valid_label_name(const char *s)
{
    if (s == NULL || *s == '\0' || !is_alpha_((unsigned char)*s))
        return 0;
    if (s[0] == '_' && s[1] == '_')
        return 0;
    for (s++; *s; s++) {
        int c = (unsigned char)*s;
        if (!(is_alpha_(c) || is_digit(c)))
            return 0;
    }
    return 1;
}

static const char *type_name(rs_metrics_type_t t)
{
    switch (t) {
    case RS_METRICS_COUNTER:
        return "counter";
    case RS_METRICS_GAUGE:
        return "gauge";
    case RS_METRICS_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* Shortest round-trip decimal for v, Go 'g' style (see the file comment). */
static void fmt_double(double v, char *buf, size_t buflen)
{
    char tmp[40];
    int prec, exp10;
    const char *e;

    if (isnan(v)) {
        snprintf(buf, buflen, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, buflen, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(buf, buflen, "%s", signbit(v) ? "-0" : "0");
        return;
    }
    /* prec = digits after the point in %e form; 16 always round-trips. */
    for (prec = 0; prec < 16; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec, v);
    e = strchr(tmp, 'e');
    exp10 = e != NULL ? (int)strtol(e + 1, NULL, 10) : 0;
    if (exp10 < -4 || exp10 >= 6) {
        snprintf(buf, buflen, "%s", tmp);
        return;
    }
    snprintf(buf, buflen, "%.*f", prec - exp10 > 0 ? prec - exp10 : 0, v);
}

uint64_t rs_metrics_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *rs_metrics_format_decimal(int64_t units, int scale, char *buf, size_t buflen)
{
    char digits[32];
    uint64_t mag = units < 0 ? (uint64_t)0 - (uint64_t)units : (uint64_t)units;
    int nd, o = 0;

    if (buf == NULL || buflen == 0)
        return buf;
    if (scale < 0 || scale > 18)
        scale = 0;
    nd = snprintf(digits, sizeof digits, "%0*llu", scale + 1, (unsigned long long)mag);
    if (buflen < (size_t)nd + 3) {
        buf[0] = '\0';
        return buf;
    }
    if (units < 0)
        buf[o++] = '-';
    memcpy(buf + o, digits, (size_t)(nd - scale));
    o += nd - scale;
    if (scale > 0) {
        buf[o++] = '.';
        memcpy(buf + o, digits + nd - scale, (size_t)scale);
        o += scale;
    }
    buf[o] = '\0';
    return buf;
}

/* ---------- escaping into an rs_strbuf ---------- */

/* Help text: '\' -> "\\", newline -> "\n". */
static void put_help(rs_strbuf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            rs_strbuf_puts(b, "\\\\");
        else if (*s == '\n')
            rs_strbuf_puts(b, "\\n");
        else
            rs_strbuf_putc(b, *s);
    }
}

/* Label value: '\' -> "\\", '"' -> "\"", newline -> "\n". */
static void put_label_value(rs_strbuf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            rs_strbuf_puts(b, "\\\\");
        else if (*s == '"')
            rs_strbuf_puts(b, "\\\"");
        else if (*s == '\n')
            rs_strbuf_puts(b, "\\n");
        else
            rs_strbuf_putc(b, *s);
    }
}

/* "{a="x",b="y"}" plus an optional le="..." last; nothing if no labels. */
static void put_labels(rs_strbuf_t *b, const rs_metrics_series_t *s, const char *le)
{
    const rs_family_t *f = s->fam;
    size_t i;

    if (f->nlabels == 0 && le == NULL)
        return;
    rs_strbuf_putc(b, '{');
    for (i = 0; i < f->nlabels; i++) {
        if (i > 0)
            rs_strbuf_putc(b, ',');
        rs_strbuf_puts(b, f->lnames[i]);
        rs_strbuf_puts(b, "=\"");
        put_label_value(b, s->lvalues[i]);
        rs_strbuf_putc(b, '"');
    }
    if (le != NULL) {
        if (f->nlabels > 0)
            rs_strbuf_putc(b, ',');
        rs_strbuf_puts(b, "le=\"");
        rs_strbuf_puts(b, le);
        rs_strbuf_putc(b, '"');
    }
    rs_strbuf_putc(b, '}');
}

/* ---------- registry ---------- */

int rs_metrics_new(rs_metrics_t **out, char *errstr, size_t errlen)
{
    rs_metrics_t *reg = NULL;
    int rc = -1;

    *out = NULL;
    reg = calloc(1, sizeof *reg);
    if (reg == NULL) {
        rs_errorf(errstr, errlen, "metrics: out of memory");
        goto done;
    }
    if (pthread_mutex_init(&reg->lock, NULL) != 0) {
        rs_errorf(errstr, errlen, "metrics: cannot create mutex");
        free(reg);
        reg = NULL;
        goto done;
    }
    atomic_init(&reg->ready, 0);
    atomic_init(&reg->beat_ms, rs_metrics_now_ms());
    atomic_init(&reg->stale_ms, 0);
    snprintf(reg->reason, sizeof reg->reason, "starting");
    *out = reg;
    rc = 0;
done:
    return rc;
}

static void series_free(rs_metrics_series_t *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < RS_METRICS_MAX_LABELS; i++)
        free(s->lvalues[i]);
    if (s->hlock_ok)
        pthread_mutex_destroy(&s->hlock);
    free(s->buckets);
    free(s);
}

static void family_free(rs_family_t *f)
{
    size_t i;

    if (f == NULL)
        return;
    for (i = 0; i < f->nseries; i++)
        series_free(f->series[i]);
    for (i = 0; i < RS_METRICS_MAX_LABELS; i++)
        free(f->lnames[i]);
    free(f->series);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void rs_metrics_destroy(rs_metrics_t *reg)
{
    size_t i;

    if (reg == NULL)
        return;
    for (i = 0; i < reg->nfams; i++)
        family_free(reg->fams[i]);
    free(reg->fams);
    if (reg->hook_free != NULL)
        reg->hook_free(reg->hook_opaque);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

/* Index of the family named `name`, or -(insertion point) - 1. */
static long find_family(const rs_metrics_t *reg, const char *name)
{
    size_t lo = 0, hi = reg->nfams;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->fams[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Index of the series with `values` (in lnames order), or -(ins. point) - 1. */
static long find_series(const rs_family_t *f, const char *const *values)
{
    size_t lo = 0, hi = f->nseries;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = 0;
        size_t i;
        for (i = 0; i < f->nlabels && c == 0; i++)
            c = strcmp(f->series[mid]->lvalues[i], values[i]);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Room for `need` series pointers in f->series. */
static int grow_series(rs_family_t *f, size_t need)
{
    size_t ncap;
    rs_metrics_series_t **np;

    if (need <= f->cap)
        return 0;
    ncap = f->cap ? f->cap * 2 : 8;
    np = realloc(f->series, ncap * sizeof *np);
    if (np == NULL)
        return -1;
    f->series = np;
    f->cap = ncap;
    return 0;
}

/* Room for `need` family pointers in reg->fams. */
static int grow_fams(rs_metrics_t *reg, size_t need)
{
    size_t ncap;
    rs_family_t **np;

    if (need <= reg->cap)
        return 0;
    ncap = reg->cap ? reg->cap * 2 : 8;
    np = realloc(reg->fams, ncap * sizeof *np);
    if (np == NULL)
        return -1;
    reg->fams = np;
    reg->cap = ncap;
    return 0;
}

static int register_series(rs_metrics_t *reg, rs_metrics_series_t **out, rs_metrics_type_t type,
                           const char *name, const char *help, const rs_metrics_label_t *labels,
                           size_t nlabels, const double *bounds, size_t nbounds, char *errstr,
                           size_t errlen)
{
    const rs_metrics_label_t *sorted[RS_METRICS_MAX_LABELS];
    const char *values[RS_METRICS_MAX_LABELS];
    rs_family_t *fam = NULL, *newfam = NULL;
    rs_metrics_series_t *s = NULL;
    long fi = -1, si;
    size_t i, j;
    int locked = 0, rc = -1;

    if (out != NULL)
        *out = NULL;
    if (reg == NULL || out == NULL) {
        rs_errorf(errstr, errlen, "metrics: registry and out must not be NULL");
        goto done;
    }
    if (!valid_metric_name(name)) {
        rs_errorf(errstr, errlen, "metric \"%s\": invalid name (want [a-zA-Z_:][a-zA-Z0-9_:]*)",
                  name ? name : "(null)");
        goto done;
    }
    if (help == NULL)
        help = "";
    if (nlabels > RS_METRICS_MAX_LABELS) {
        rs_errorf(errstr, errlen, "metric %s: %zu labels, at most %d allowed", name, nlabels,
                  RS_METRICS_MAX_LABELS);
        goto done;
    }
    if (nlabels > 0 && labels == NULL) {
        rs_errorf(errstr, errlen, "metric %s: labels is NULL", name);
        goto done;
    }
    /* Validate and sort the labels by name (insertion sort: n <= 4). */
    for (i = 0; i < nlabels; i++) {
        const rs_metrics_label_t *l = &labels[i];
        if (!valid_label_name(l->name)) {
            rs_errorf(errstr, errlen, "metric %s: invalid label name \"%s\"", name,
                      l->name ? l->name : "(null)");
            goto done;
        }
        if (l->value == NULL) {
            rs_errorf(errstr, errlen, "metric %s: label %s: value is NULL", name, l->name);
            goto done;
        }
        if (type == RS_METRICS_HISTOGRAM && strcmp(l->name, "le") == 0) {
            rs_errorf(errstr, errlen, "metric %s: label name \"le\" is reserved for histograms",
                      name);
            goto done;
        }
        for (j = i; j > 0 && strcmp(sorted[j - 1]->name, l->name) > 0; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = l;
    }
    for (i = 1; i < nlabels; i++) {
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) {
            rs_errorf(errstr, errlen, "metric %s: duplicate label \"%s\"", name,
                      sorted[i]->name);
            goto done;
        }
    }
    for (i = 0; i < nlabels; i++)
        values[i] = sorted[i]->value;
    if (type == RS_METRICS_HISTOGRAM) {
        if (bounds == NULL || nbounds == 0) {
            bounds = rs_metrics_latency_buckets;
            nbounds = rs_metrics_latency_bucket_count;
        }
        if (nbounds > RS_METRICS_MAX_BUCKETS) {
            rs_errorf(errstr, errlen, "metric %s: %zu buckets, at most %d allowed", name,
                      nbounds, RS_METRICS_MAX_BUCKETS);
            goto done;
        }
        for (i = 0; i < nbounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
                rs_errorf(errstr, errlen,
                          "metric %s: bucket bounds must be finite and strictly increasing "
                          "(bound %zu)",
                          name, i);
                goto done;
            }
        }
    } else {
        bounds = NULL;
        nbounds = 0;
    }

    pthread_mutex_lock(&reg->lock);
    locked = 1;
    fi = find_family(reg, name);
    if (fi >= 0) {
        fam = reg->fams[fi];
        if (fam->type != type) {
            rs_errorf(errstr, errlen, "metric %s: already registered as a %s, not a %s", name,
                      type_name(fam->type), type_name(type));
            goto done;
        }
        if (strcmp(fam->help, help) != 0) {
            rs_errorf(errstr, errlen, "metric %s: help text differs from the registered one",
                      name);
            goto done;
        }
        if (fam->nlabels != nlabels) {
            rs_errorf(errstr, errlen, "metric %s: %zu labels, the family has %zu", name,
                      nlabels, fam->nlabels);
            goto done;
        }
        for (i = 0; i < nlabels; i++) {
            if (strcmp(fam->lnames[i], sorted[i]->name) != 0) {
                rs_errorf(errstr, errlen, "metric %s: label \"%s\" is not one of the family's",
                          name, sorted[i]->name);
                goto done;
            }
        }
        if (fam->nbounds != nbounds ||
            (nbounds > 0 && memcmp(fam->bounds, bounds, nbounds * sizeof *bounds) != 0)) {
            rs_errorf(errstr, errlen, "metric %s: bucket bounds differ from the family's",
                      name);
            goto done;
        }
    } else {
        newfam = calloc(1, sizeof *newfam);
        if (newfam == NULL)
            goto oom;
        newfam->type = type;
        newfam->nlabels = nlabels;
        newfam->name = dup_str(name);
        newfam->help = dup_str(help);
        if (newfam->name == NULL || newfam->help == NULL)
            goto oom;
        for (i = 0; i < nlabels; i++) {
            newfam->lnames[i] = dup_str(sorted[i]->name);
            if (newfam->lnames[i] == NULL)
                goto oom;
        }
        if (nbounds > 0) {
            newfam->bounds = malloc(nbounds * sizeof *bounds);
            if (newfam->bounds == NULL)
                goto oom;
            memcpy(newfam->bounds, bounds, nbounds * sizeof *bounds);
            newfam->nbounds = nbounds;
        }
        fam = newfam;
    }

    si = newfam != NULL ? -1 : find_series(fam, values); /* a new family has no series */
    if (si >= 0) {
        *out = fam->series[si];
        rc = 0;
        goto done;
    }

    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto oom;
    s->fam = fam;
    atomic_init(&s->value, 0);
    atomic_init(&s->scale, 0);
    atomic_init(&s->present, 1);
    for (i = 0; i < nlabels; i++) {
        s->lvalues[i] = dup_str(values[i]);
        if (s->lvalues[i] == NULL)
            goto oom;
    }
    if (type == RS_METRICS_HISTOGRAM) {
        s->buckets = calloc(nbounds + 1, sizeof *s->buckets);
        if (s->buckets == NULL)
            goto oom;
        if (pthread_mutex_init(&s->hlock, NULL) != 0)
            goto oom;
        s->hlock_ok = 1;
    }
    /* Reserve both slots before inserting either, so failure leaves no trace. */
    if (grow_series(fam, fam->nseries + 1) != 0)
        goto oom;
    if (newfam != NULL && grow_fams(reg, reg->nfams + 1) != 0)
        goto oom;
    si = -si - 1;
    memmove(&fam->series[si + 1], &fam->series[si],
            (fam->nseries - (size_t)si) * sizeof *fam->series);
    fam->series[si] = s;
    fam->nseries++;
    if (newfam != NULL) {
        fi = -fi - 1;
        memmove(&reg->fams[fi + 1], &reg->fams[fi],
                (reg->nfams - (size_t)fi) * sizeof *reg->fams);
        reg->fams[fi] = newfam;
        reg->nfams++;
        newfam = NULL;
    }
    *out = s;
    s = NULL;
    rc = 0;
    goto done;
oom:
    rs_errorf(errstr, errlen, "metric %s: out of memory", name);
done:
    if (locked)
        pthread_mutex_unlock(&reg->lock);
    series_free(s);
    family_free(newfam);
    return rc;
}

int rs_metrics_counter(rs_metrics_t *reg, rs_metrics_series_t **out, const char *name,
                       const char *help, const rs_metrics_label_t *labels, size_t nlabels,
                       char *errstr, size_t errlen)
{
    return register_series(reg, out, RS_METRICS_COUNTER, name, help, labels, nlabels, NULL, 0,
                           errstr, errlen);
}

int rs_metrics_gauge(rs_metrics_t *reg, rs_metrics_series_t **out, const char *name,
                     const char *help, const rs_metrics_label_t *labels, size_t nlabels,
                     char *errstr, size_t errlen)
{
    return register_series(reg, out, RS_METRICS_GAUGE, name, help, labels, nlabels, NULL, 0,
                           errstr, errlen);
}

int rs_metrics_histogram(rs_metrics_t *reg, rs_metrics_series_t **out, const char *name,
                         const char *help, const rs_metrics_label_t *labels, size_t nlabels,
                         const double *bounds, size_t nbounds, char *errstr, size_t errlen)
{
    return register_series(reg, out, RS_METRICS_HISTOGRAM, name, help, labels, nlabels, bounds,
                           nbounds, errstr, errlen);
}

/* ---------- updates ---------- */

int rs_metrics_inc(rs_metrics_series_t *s)
{
    return rs_metrics_add(s, 1);
}

int rs_metrics_add(rs_metrics_series_t *s, int64_t delta)
{
    if (s == NULL || s->fam->type == RS_METRICS_HISTOGRAM)
        return -1;
    if (s->fam->type == RS_METRICS_COUNTER && delta < 0)
        return -1;
    atomic_fetch_add_explicit(&s->value, delta, memory_order_relaxed);
    atomic_store_explicit(&s->present, 1, memory_order_relaxed);
    return 0;
}

int rs_metrics_set(rs_metrics_series_t *s, int64_t value)
{
    if (s == NULL || s->fam->type != RS_METRICS_GAUGE)
        return -1;
    atomic_store_explicit(&s->value, value, memory_order_relaxed);
    atomic_store_explicit(&s->present, 1, memory_order_relaxed);
    return 0;
}

int rs_metrics_set_decimal(rs_metrics_series_t *s, int64_t units, int scale)
{
    if (s == NULL || s->fam->type == RS_METRICS_HISTOGRAM || scale < 0 || scale > 18)
        return -1;
    atomic_store_explicit(&s->scale, scale, memory_order_relaxed);
    atomic_store_explicit(&s->value, units, memory_order_relaxed);
    atomic_store_explicit(&s->present, 1, memory_order_relaxed);
    return 0;
}

void rs_metrics_unset(rs_metrics_series_t *s)
{
    if (s != NULL)
        atomic_store_explicit(&s->present, 0, memory_order_relaxed);
}

int rs_metrics_is_set(rs_metrics_series_t *s)
{
    return s != NULL && atomic_load_explicit(&s->present, memory_order_relaxed) != 0;
}

int rs_metrics_observe(rs_metrics_series_t *s, double v)
{
    const rs_family_t *f;
    size_t i;

    if (s == NULL || s->fam->type != RS_METRICS_HISTOGRAM || isnan(v))
        return -1;
    f = s->fam;
    /* First bucket whose bound is >= v; nbounds means +Inf. */
    for (i = 0; i < f->nbounds && v > f->bounds[i]; i++)
        ;
    pthread_mutex_lock(&s->hlock);
    s->buckets[i]++;
    s->count++;
    s->sum += v;
    pthread_mutex_unlock(&s->hlock);
    return 0;
}

int64_t rs_metrics_value(rs_metrics_series_t *s)
{
    if (s == NULL || s->fam->type == RS_METRICS_HISTOGRAM)
        return 0;
    return atomic_load_explicit(&s->value, memory_order_relaxed);
}

uint64_t rs_metrics_hist_count(rs_metrics_series_t *s)
{
    uint64_t n;

    if (s == NULL || s->fam->type != RS_METRICS_HISTOGRAM)
        return 0;
    pthread_mutex_lock(&s->hlock);
    n = s->count;
    pthread_mutex_unlock(&s->hlock);
    return n;
}

/* ---------- exposition ---------- */

static void render_histogram(rs_strbuf_t *b, rs_metrics_series_t *s)
{
    const rs_family_t *f = s->fam;
    uint64_t counts[RS_METRICS_MAX_BUCKETS + 1];
    uint64_t count, cum = 0;
    double sum;
    char num[64], le[64];
    size_t i;

    pthread_mutex_lock(&s->hlock);
    memcpy(counts, s->buckets, (f->nbounds + 1) * sizeof counts[0]);
    count = s->count;
    sum = s->sum;
    pthread_mutex_unlock(&s->hlock);

    for (i = 0; i <= f->nbounds; i++) {
        cum += counts[i];
        if (i < f->nbounds)
            fmt_double(f->bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        rs_strbuf_puts(b, f->name);
        rs_strbuf_puts(b, "_bucket");
        put_labels(b, s, le);
        rs_strbuf_printf(b, " %llu\n", (unsigned long long)cum);
    }
    rs_strbuf_puts(b, f->name);
    rs_strbuf_puts(b, "_sum");
    put_labels(b, s, NULL);
    rs_strbuf_putc(b, ' ');
    fmt_double(sum, num, sizeof num);
    rs_strbuf_puts(b, num);
    rs_strbuf_putc(b, '\n');
    rs_strbuf_puts(b, f->name);
    rs_strbuf_puts(b, "_count");
    put_labels(b, s, NULL);
    rs_strbuf_printf(b, " %llu\n", (unsigned long long)count);
}

int rs_metrics_render(rs_metrics_t *reg, char **out, size_t *len)
{
    rs_strbuf_t b = {NULL, 0, 0, 0};
    char num[48];
    size_t i, j, n;

    *out = NULL;
    if (len != NULL)
        *len = 0;
    if (reg->hook != NULL)
        reg->hook(reg, reg->hook_opaque); /* outside the lock: it updates series */
    pthread_mutex_lock(&reg->lock);
    for (i = 0; i < reg->nfams; i++) {
        rs_family_t *f = reg->fams[i];
        if (f->help[0] != '\0') {
            rs_strbuf_puts(&b, "# HELP ");
            rs_strbuf_puts(&b, f->name);
            rs_strbuf_putc(&b, ' ');
            put_help(&b, f->help);
            rs_strbuf_putc(&b, '\n');
        }
        rs_strbuf_puts(&b, "# TYPE ");
        rs_strbuf_puts(&b, f->name);
        rs_strbuf_putc(&b, ' ');
        rs_strbuf_puts(&b, type_name(f->type));
        rs_strbuf_putc(&b, '\n');
        for (j = 0; j < f->nseries; j++) {
            rs_metrics_series_t *s = f->series[j];
            if (f->type == RS_METRICS_HISTOGRAM) {
                render_histogram(&b, s);
                continue;
            }
            if (!atomic_load_explicit(&s->present, memory_order_relaxed))
                continue;
            rs_strbuf_puts(&b, f->name);
            put_labels(&b, s, NULL);
            rs_strbuf_putc(&b, ' ');
            rs_metrics_format_decimal(atomic_load_explicit(&s->value, memory_order_relaxed),
                                      atomic_load_explicit(&s->scale, memory_order_relaxed),
                                      num, sizeof num);
            rs_strbuf_puts(&b, num);
            rs_strbuf_putc(&b, '\n');
        }
    }
    pthread_mutex_unlock(&reg->lock);
    n = b.len;
    *out = rs_strbuf_take(&b); /* an empty registry renders as "" */
    if (*out == NULL)
        return -1;
    if (len != NULL)
        *len = n;
    return 0;
}

/* ---------- liveness, render hook ---------- */

void rs_metrics_heartbeat(rs_metrics_t *reg)
{
    if (reg != NULL)
        atomic_store_explicit(&reg->beat_ms, rs_metrics_now_ms(), memory_order_relaxed);
}

void rs_metrics_set_stale_after(rs_metrics_t *reg, uint64_t ms)
{
    if (reg != NULL)
        atomic_store(&reg->stale_ms, ms);
}

uint64_t rs_metrics_stale_for(rs_metrics_t *reg)
{
    uint64_t now, beat, limit;

    if (reg == NULL)
        return 0;
    limit = atomic_load(&reg->stale_ms);
    beat = atomic_load_explicit(&reg->beat_ms, memory_order_relaxed);
    now = rs_metrics_now_ms();
    if (limit == 0 || now < beat || now - beat <= limit)
        return 0;
    return now - beat;
}

void rs_metrics_set_render_hook(rs_metrics_t *reg, rs_metrics_hook_fn fn, void *opaque,
                                void (*free_opaque)(void *))
{
    if (reg == NULL)
        return;
    if (reg->hook_free != NULL)
        reg->hook_free(reg->hook_opaque);
    reg->hook = fn;
    reg->hook_opaque = opaque;
    reg->hook_free = free_opaque;
}

/* ---------- readiness ---------- */

void rs_metrics_set_ready(rs_metrics_t *reg, int ready)
{
    if (reg != NULL)
        atomic_store(&reg->ready, ready ? 1 : 0);
}

int rs_metrics_is_ready(rs_metrics_t *reg)
{
    return reg != NULL && atomic_load(&reg->ready) != 0;
}

void rs_metrics_set_reason(rs_metrics_t *reg, const char *fmt, ...)
{
    char tmp[RS_METRICS_REASON_MAX];
    va_list ap;

    if (reg == NULL || fmt == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&reg->lock);
    memcpy(reg->reason, tmp, sizeof tmp);
    pthread_mutex_unlock(&reg->lock);
}

char *rs_metrics_reason(rs_metrics_t *reg, char *buf, size_t buflen)
{
    if (buf == NULL || buflen == 0)
        return buf;
    if (reg == NULL) {
        buf[0] = '\0';
        return buf;
    }
    pthread_mutex_lock(&reg->lock);
    snprintf(buf, buflen, "%s", reg->reason);
    pthread_mutex_unlock(&reg->lock);
    return buf;
}

/* ---------- HTTP server ---------- */

struct rs_metrics_server {
    rs_metrics_t *reg;
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t loglock;
    int capture;       /* copy MHD's messages into lasterr (during start) */
    char lasterr[256]; /* guarded by loglock */
};

/* MHD's error log: structured line on stderr; kept for start errors. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    rs_metrics_server_t *srv = cls;
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    pthread_mutex_lock(&srv->loglock);
    if (srv->capture)
        snprintf(srv->lasterr, sizeof srv->lasterr, "%s", msg);
    pthread_mutex_unlock(&srv->loglock);
    for (char *q = msg; *q; q++)
        if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20)
            *q = '\'';
    rs_logf(RS_LOG_ERROR, "metrics", "http_error msg=\"%s\"", msg);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, const char *ctype,
                               char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
        (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
         MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char text_plain[] = "text/plain; charset=utf-8";
static const char prom_ctype[] = "text/plain; version=0.0.4; charset=utf-8";

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_size,
                                      void **con_cls)
{
    rs_metrics_server_t *srv = cls;
    static char ok[] = "ok\n", ready[] = "ready\n", notfound[] = "not found\n",
                badmethod[] = "method not allowed\n", oom[] = "out of memory\n";
    int is_metrics = strcmp(url, "/metrics") == 0;
    int is_health = strcmp(url, "/healthz") == 0;
    int is_ready = strcmp(url, "/readyz") == 0;

    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)con_cls;
    if (!is_metrics && !is_health && !is_ready)
        return respond(c, MHD_HTTP_NOT_FOUND, text_plain, notfound, sizeof notfound - 1,
                       MHD_RESPMEM_PERSISTENT);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, text_plain, badmethod,
                       sizeof badmethod - 1, MHD_RESPMEM_PERSISTENT);
    if (is_health) {
        char msg[96];
        uint64_t stale = rs_metrics_stale_for(srv->reg);
        int n;
        if (stale == 0)
            return respond(c, MHD_HTTP_OK, text_plain, ok, sizeof ok - 1,
                           MHD_RESPMEM_PERSISTENT);
        n = snprintf(msg, sizeof msg, "stalled: no progress for %llu ms\n",
                     (unsigned long long)stale);
        return respond(c, MHD_HTTP_SERVICE_UNAVAILABLE, text_plain, msg, (size_t)n,
                       MHD_RESPMEM_MUST_COPY);
    }
    if (is_ready) {
        char reason[RS_METRICS_REASON_MAX + 1];
        size_t n;
        if (rs_metrics_is_ready(srv->reg))
            return respond(c, MHD_HTTP_OK, text_plain, ready, sizeof ready - 1,
                           MHD_RESPMEM_PERSISTENT);
        rs_metrics_reason(srv->reg, reason, sizeof reason - 1);
        n = strlen(reason);
        reason[n++] = '\n';
        return respond(c, MHD_HTTP_SERVICE_UNAVAILABLE, text_plain, reason, n,
                       MHD_RESPMEM_MUST_COPY);
    }
    {
        char *text = NULL;
        size_t len = 0;
        if (rs_metrics_render(srv->reg, &text, &len) != 0)
            return respond(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text_plain, oom, sizeof oom - 1,
                           MHD_RESPMEM_PERSISTENT);
        return respond(c, MHD_HTTP_OK, prom_ctype, text, len, MHD_RESPMEM_MUST_FREE);
    }
}

int rs_metrics_server_start(rs_metrics_server_t **out, rs_metrics_t *reg, const char *bind_addr,
                            int port, char *errstr, size_t errlen)
{
    rs_metrics_server_t *srv = NULL;
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;
    const char *addr = bind_addr != NULL ? bind_addr : "0.0.0.0";
    int rc = -1, lock_ok = 0;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || reg == NULL) {
        rs_errorf(errstr, errlen, "metrics: server: registry and out must not be NULL");
        goto done;
    }
    if (port < 0 || port > 65535) {
        rs_errorf(errstr, errlen, "metrics: server: port %d out of range 0..65535", port);
        goto done;
    }
    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        rs_errorf(errstr, errlen, "metrics: server: bind address \"%s\" is not a numeric IP",
                  addr);
        goto done;
    }
    srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        rs_errorf(errstr, errlen, "metrics: server: out of memory");
        goto done;
    }
    srv->reg = reg;
    srv->port = -1;
    if (pthread_mutex_init(&srv->loglock, NULL) != 0) {
        rs_errorf(errstr, errlen, "metrics: server: cannot create mutex");
        goto done;
    }
    lock_ok = 1;
    srv->capture = 1; /* no MHD thread exists yet */
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, handle_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_logger, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)64, MHD_OPTION_END);
    pthread_mutex_lock(&srv->loglock);
    srv->capture = 0;
    pthread_mutex_unlock(&srv->loglock);
    if (srv->daemon == NULL) {
        rs_errorf(errstr, errlen, "metrics: server: cannot listen on %s port %d: %s", addr,
                  port, srv->lasterr[0] ? srv->lasterr : "MHD_start_daemon failed");
        goto done;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        rs_errorf(errstr, errlen, "metrics: server: cannot read the bound port");
        goto done;
    }
    srv->port = info->port;
    *out = srv;
    srv = NULL;
    rc = 0;
done:
    if (srv != NULL) {
        if (srv->daemon != NULL)
            MHD_stop_daemon(srv->daemon);
        if (lock_ok)
            pthread_mutex_destroy(&srv->loglock);
        free(srv);
    }
    return rc;
}

int rs_metrics_server_port(const rs_metrics_server_t *srv)
{
    if (srv == NULL || srv->daemon == NULL)
        return -1;
    return srv->port;
}

void rs_metrics_server_stop(rs_metrics_server_t *srv)
{
    if (srv == NULL || srv->daemon == NULL)
        return;
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    srv->port = -1;
}

void rs_metrics_server_destroy(rs_metrics_server_t *srv)
{
    if (srv == NULL)
        return;
    rs_metrics_server_stop(srv);
    pthread_mutex_destroy(&srv->loglock);
    free(srv);
}
