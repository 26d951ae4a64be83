/*
 * test_metrics.c — the metrics registry, its Prometheus text exposition and
 * the /metrics, /healthz, /readyz HTTP server.
 *
 * Invariants checked: exact exposition text (sorting, HELP/TYPE lines,
 * cumulative histogram buckets with le last, shortest float formatting),
 * escaping of help text and label values, registration errors that leave
 * the registry unchanged, exact totals under concurrent updates, and every
 * endpoint over real HTTP (libcurl to 127.0.0.1 on an ephemeral port).
 *
 * Ownership: each test creates and destroys its own registry and server;
 * Criterion runs each test in its own process.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rs_metrics.h"

static rs_metrics_t *new_reg(void)
{
    rs_metrics_t *reg = NULL;
    char err[256] = "";

    cr_assert_eq(rs_metrics_new(&reg, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(reg);
    return reg;
}

static char *render(rs_metrics_t *reg)
{
    char *text = NULL;
    size_t len = 0;

    cr_assert_eq(rs_metrics_render(reg, &text, &len), 0);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text));
    return text;
}

Test(metrics, exposition_exact_text)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *events, *lag_pay, *lag_con, *batch;
    char err[256] = "";
    const rs_metrics_label_t pay[] = {{"topic", "payments"}, {"partition", "1"}};
    const rs_metrics_label_t con[] = {{"partition", "0"}, {"topic", "contracts"}};
    const rs_metrics_label_t stage[] = {{"stage", "commit"}};
    const double bounds[] = {0.125, 0.5, 1};

    /* Registered out of name order: the output is sorted anyway. */
    cr_assert_eq(rs_metrics_counter(reg, &events, "rs_events_total", "Events applied.", NULL, 0,
                                    err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(rs_metrics_gauge(reg, &lag_pay, "rs_consumer_lag", "Records behind.", pay, 2,
                                  err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(rs_metrics_gauge(reg, &lag_con, "rs_consumer_lag", "Records behind.", con, 2,
                                  err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(rs_metrics_histogram(reg, &batch, "rs_batch_seconds", "Batch latency.", stage,
                                      1, bounds, 3, err, sizeof err),
                 0, "%s", err);

    cr_assert_eq(rs_metrics_add(events, 40), 0);
    cr_assert_eq(rs_metrics_inc(events), 0);
    cr_assert_eq(rs_metrics_inc(events), 0);
    cr_assert_eq(rs_metrics_set(lag_pay, 20), 0);
    cr_assert_eq(rs_metrics_add(lag_pay, -3), 0);
    cr_assert_eq(rs_metrics_set(lag_con, -3), 0);
    /* Exactly representable values so the sum is exact: 4.6875. */
    cr_assert_eq(rs_metrics_observe(batch, 0.0625), 0);
    cr_assert_eq(rs_metrics_observe(batch, 0.125), 0); /* on a bound: le is inclusive */
    cr_assert_eq(rs_metrics_observe(batch, 0.5), 0);
    cr_assert_eq(rs_metrics_observe(batch, 4), 0);

    cr_assert_eq(rs_metrics_value(events), 42);
    cr_assert_eq(rs_metrics_value(lag_pay), 17);
    cr_assert_eq(rs_metrics_hist_count(batch), 4);

    char *text = render(reg);
    cr_assert_str_eq(text, "# HELP rs_batch_seconds Batch latency.\n"
                           "# TYPE rs_batch_seconds histogram\n"
                           "rs_batch_seconds_bucket{stage=\"commit\",le=\"0.125\"} 2\n"
                           "rs_batch_seconds_bucket{stage=\"commit\",le=\"0.5\"} 3\n"
                           "rs_batch_seconds_bucket{stage=\"commit\",le=\"1\"} 3\n"
                           "rs_batch_seconds_bucket{stage=\"commit\",le=\"+Inf\"} 4\n"
                           "rs_batch_seconds_sum{stage=\"commit\"} 4.6875\n"
                           "rs_batch_seconds_count{stage=\"commit\"} 4\n"
                           "# HELP rs_consumer_lag Records behind.\n"
                           "# TYPE rs_consumer_lag gauge\n"
                           "rs_consumer_lag{partition=\"0\",topic=\"contracts\"} -3\n"
                           "rs_consumer_lag{partition=\"1\",topic=\"payments\"} 17\n"
                           "# HELP rs_events_total Events applied.\n"
                           "# TYPE rs_events_total counter\n"
                           "rs_events_total 42\n");
    free(text);
    rs_metrics_destroy(reg);
}

Test(metrics, empty_registry_renders_nothing)
{
    rs_metrics_t *reg = new_reg();
    char *text = render(reg);

    cr_assert_str_eq(text, "");
    free(text);
    rs_metrics_destroy(reg);
    rs_metrics_destroy(NULL); /* accepted */
}

Test(metrics, escaping_of_label_values_and_help)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *g;
    char err[256] = "";
    const rs_metrics_label_t l[] = {{"contract_id", "a\\b\"c\nd"}};

    cr_assert_eq(rs_metrics_gauge(reg, &g, "rs_waiting", "Waits \"here\".\nSee C:\\docs.", l, 1,
                                  err, sizeof err),
                 0, "%s", err);
    rs_metrics_set(g, 5);
    char *text = render(reg);
    /* help: \ and newline escaped, quotes kept; label value: \ " newline. */
    cr_assert_str_eq(text, "# HELP rs_waiting Waits \"here\".\\nSee C:\\\\docs.\n"
                           "# TYPE rs_waiting gauge\n"
                           "rs_waiting{contract_id=\"a\\\\b\\\"c\\nd\"} 5\n");
    free(text);
    rs_metrics_destroy(reg);
}

Test(metrics, empty_help_has_no_help_line)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *c;
    char err[256] = "";

    cr_assert_eq(rs_metrics_counter(reg, &c, "x_total", NULL, NULL, 0, err, sizeof err), 0);
    char *text = render(reg);
    cr_assert_str_eq(text, "# TYPE x_total counter\nx_total 0\n");
    free(text);
    rs_metrics_destroy(reg);
}

Test(metrics, histogram_bound_formatting)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *h, *d;
    char err[256] = "";
    const double bounds[] = {1e-05, 0.001, 1, 100, 123456.5, 1000000};

    cr_assert_eq(rs_metrics_histogram(reg, &h, "h", "", NULL, 0, bounds, 6, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(rs_metrics_observe(h, 0.1), 0);
    cr_assert_eq(rs_metrics_observe(h, 0.2), 0);
    char *text = render(reg);
    cr_assert_str_eq(text, "# TYPE h histogram\n"
                           "h_bucket{le=\"1e-05\"} 0\n"
                           "h_bucket{le=\"0.001\"} 0\n"
                           "h_bucket{le=\"1\"} 2\n"
                           "h_bucket{le=\"100\"} 2\n"
                           "h_bucket{le=\"123456.5\"} 2\n"
                           "h_bucket{le=\"1e+06\"} 2\n"
                           "h_bucket{le=\"+Inf\"} 2\n"
                           /* 0.1 + 0.2 in binary: the shortest round-trip form */
                           "h_sum 0.30000000000000004\n"
                           "h_count 2\n");
    free(text);

    /* Default latency buckets. */
    cr_assert_eq(rs_metrics_histogram(reg, &d, "rs_batch_seconds", "", NULL, 0, NULL, 0, err,
                                      sizeof err),
                 0, "%s", err);
    text = render(reg);
    cr_assert_not_null(strstr(text, "rs_batch_seconds_bucket{le=\"0.001\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"0.0025\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"0.005\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"0.01\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"0.025\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"0.05\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"0.1\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"0.25\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"0.5\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"1\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"2.5\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"5\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"10\"} 0\n"
                                    "rs_batch_seconds_bucket{le=\"+Inf\"} 0\n"
                                    "rs_batch_seconds_sum 0\n"
                                    "rs_batch_seconds_count 0\n"),
                       "got:\n%s", text);
    free(text);
    rs_metrics_destroy(reg);
}

Test(metrics, same_labels_any_order_same_series)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *a, *b, *c;
    char err[256] = "";
    const rs_metrics_label_t ab[] = {{"a", "1"}, {"b", "2"}};
    const rs_metrics_label_t ba[] = {{"b", "2"}, {"a", "1"}};
    const rs_metrics_label_t other[] = {{"b", "3"}, {"a", "1"}};

    cr_assert_eq(rs_metrics_counter(reg, &a, "c_total", "C.", ab, 2, err, sizeof err), 0);
    cr_assert_eq(rs_metrics_counter(reg, &b, "c_total", "C.", ba, 2, err, sizeof err), 0);
    cr_assert_eq(rs_metrics_counter(reg, &c, "c_total", "C.", other, 2, err, sizeof err), 0);
    cr_assert_eq(a, b);
    cr_assert_neq(a, c);
    rs_metrics_inc(a);
    rs_metrics_inc(b);
    cr_assert_eq(rs_metrics_value(a), 2);
    cr_assert_eq(rs_metrics_value(c), 0);
    rs_metrics_destroy(reg);
}

/* Every bad registration fails with the metric named, and changes nothing. */
Test(metrics, registration_errors)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *s = NULL, *ok;
    char err[256];
    const rs_metrics_label_t t[] = {{"topic", "x"}};
    const rs_metrics_label_t five[] = {
        {"a", "1"}, {"b", "1"}, {"c", "1"}, {"d", "1"}, {"e", "1"}};
    const rs_metrics_label_t dup[] = {{"a", "1"}, {"a", "2"}};
    const rs_metrics_label_t reserved[] = {{"__name", "1"}};
    const rs_metrics_label_t dash[] = {{"a-b", "1"}};
    const rs_metrics_label_t le[] = {{"le", "1"}};
    const rs_metrics_label_t nullval[] = {{"a", NULL}};
    const double unsorted[] = {1, 0.5};
    const double with_nan[] = {0.5, NAN};
    const double with_inf[] = {0.5, INFINITY};

    cr_assert_eq(rs_metrics_counter(reg, &ok, "rs_x_total", "X.", t, 1, err, sizeof err), 0);
    char *before = render(reg);

#define BAD(call, needle)                                                                      \
    do {                                                                                       \
        err[0] = '\0';                                                                         \
        s = (rs_metrics_series_t *)1;                                                          \
        cr_assert_eq((call), -1, "expected failure: %s", #call);                               \
        cr_assert_null(s);                                                                     \
        cr_assert_not_null(strstr(err, (needle)), "error \"%s\" lacks \"%s\"", err, (needle)); \
    } while (0)

    BAD(rs_metrics_counter(reg, &s, "1abc", "", NULL, 0, err, sizeof err), "invalid name");
    BAD(rs_metrics_counter(reg, &s, "a-b", "", NULL, 0, err, sizeof err), "\"a-b\"");
    BAD(rs_metrics_counter(reg, &s, "", "", NULL, 0, err, sizeof err), "invalid name");
    BAD(rs_metrics_counter(reg, &s, NULL, "", NULL, 0, err, sizeof err), "invalid name");
    BAD(rs_metrics_counter(reg, &s, "y", "", five, 5, err, sizeof err), "at most 4");
    BAD(rs_metrics_counter(reg, &s, "y", "", dup, 2, err, sizeof err), "duplicate label \"a\"");
    BAD(rs_metrics_counter(reg, &s, "y", "", reserved, 1, err, sizeof err), "\"__name\"");
    BAD(rs_metrics_counter(reg, &s, "y", "", dash, 1, err, sizeof err), "\"a-b\"");
    BAD(rs_metrics_counter(reg, &s, "y", "", nullval, 1, err, sizeof err), "value is NULL");
    BAD(rs_metrics_gauge(reg, &s, "rs_x_total", "X.", t, 1, err, sizeof err),
        "already registered as a counter");
    BAD(rs_metrics_counter(reg, &s, "rs_x_total", "Other.", t, 1, err, sizeof err),
        "help text differs");
    BAD(rs_metrics_counter(reg, &s, "rs_x_total", "X.", NULL, 0, err, sizeof err),
        "0 labels, the family has 1");
    BAD(rs_metrics_counter(reg, &s, "rs_x_total", "X.", dup, 1, err, sizeof err),
        "label \"a\" is not one of the family's");
    BAD(rs_metrics_histogram(reg, &s, "h", "", le, 1, NULL, 0, err, sizeof err), "\"le\"");
    BAD(rs_metrics_histogram(reg, &s, "h", "", NULL, 0, unsorted, 2, err, sizeof err),
        "strictly increasing");
    BAD(rs_metrics_histogram(reg, &s, "h", "", NULL, 0, with_nan, 2, err, sizeof err),
        "finite");
    BAD(rs_metrics_histogram(reg, &s, "h", "", NULL, 0, with_inf, 2, err, sizeof err),
        "finite");
#undef BAD

    /* "le" is an ordinary label name on a gauge. */
    cr_assert_eq(rs_metrics_gauge(reg, &s, "g", "", le, 1, err, sizeof err), 0, "%s", err);
    /* Histograms of one family must share bounds. */
    cr_assert_eq(
        rs_metrics_histogram(reg, &s, "h2", "", t, 1, unsorted + 1, 1, err, sizeof err), 0,
        "%s", err);
    const rs_metrics_label_t t2[] = {{"topic", "y"}};
    cr_assert_eq(rs_metrics_histogram(reg, &s, "h2", "", t2, 1, NULL, 0, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "bucket bounds differ"), "%s", err);

    /* The failures left the first family as it was. */
    rs_metrics_t *reg2 = new_reg();
    cr_assert_eq(rs_metrics_counter(reg2, &ok, "rs_x_total", "X.", t, 1, err, sizeof err), 0);
    char *again = render(reg2);
    cr_assert_str_eq(again, before);
    free(again);
    free(before);
    rs_metrics_destroy(reg2);
    rs_metrics_destroy(reg);
}

Test(metrics, wrong_operations_change_nothing)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *c, *g, *h;
    char err[256] = "";

    cr_assert_eq(rs_metrics_counter(reg, &c, "c_total", "", NULL, 0, err, sizeof err), 0);
    cr_assert_eq(rs_metrics_gauge(reg, &g, "g", "", NULL, 0, err, sizeof err), 0);
    cr_assert_eq(rs_metrics_histogram(reg, &h, "h", "", NULL, 0, NULL, 0, err, sizeof err), 0);

    cr_assert_eq(rs_metrics_add(c, 5), 0);
    cr_assert_eq(rs_metrics_add(c, -1), -1, "a counter never goes down");
    cr_assert_eq(rs_metrics_set(c, 1), -1);
    cr_assert_eq(rs_metrics_observe(c, 1.0), -1);
    cr_assert_eq(rs_metrics_value(c), 5);

    cr_assert_eq(rs_metrics_add(g, -7), 0);
    cr_assert_eq(rs_metrics_observe(g, 1.0), -1);
    cr_assert_eq(rs_metrics_value(g), -7);

    cr_assert_eq(rs_metrics_inc(h), -1);
    cr_assert_eq(rs_metrics_set(h, 3), -1);
    cr_assert_eq(rs_metrics_observe(h, NAN), -1);
    cr_assert_eq(rs_metrics_hist_count(h), 0);
    cr_assert_eq(rs_metrics_observe(h, -1.0), 0, "negative values land in the first bucket");
    cr_assert_eq(rs_metrics_hist_count(h), 1);
    cr_assert_eq(rs_metrics_hist_count(c), 0);

    cr_assert_eq(rs_metrics_inc(NULL), -1);
    rs_metrics_destroy(reg);
}

#define N_THREADS 4
#define N_PER_THREAD 50000

typedef struct worker_arg {
    rs_metrics_t *reg;
    int id;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *a = p;
    char err[256], part[8];
    rs_metrics_series_t *c, *h, *g;
    rs_metrics_label_t l[] = {{"partition", part}};

    snprintf(part, sizeof part, "%d", a->id % 2);
    for (int i = 0; i < N_PER_THREAD; i++) {
        /* Look the series up every time: registration races with updates. */
        if (rs_metrics_counter(a->reg, &c, "ops_total", "Ops.", l, 1, err, sizeof err) != 0 ||
            rs_metrics_histogram(a->reg, &h, "lat", "Lat.", NULL, 0, NULL, 0, err,
                                 sizeof err) != 0 ||
            rs_metrics_gauge(a->reg, &g, "level", "Level.", NULL, 0, err, sizeof err) != 0)
            return (void *)1;
        rs_metrics_inc(c);
        rs_metrics_add(g, (i % 2) ? -1 : 1);
        rs_metrics_observe(h, (i % 3) * 0.01);
        if (i % 1000 == 0) {
            char *text = NULL;
            if (rs_metrics_render(a->reg, &text, NULL) != 0)
                return (void *)1;
            free(text);
        }
    }
    return NULL;
}

Test(metrics, concurrent_updates_are_exact)
{
    rs_metrics_t *reg = new_reg();
    pthread_t th[N_THREADS];
    worker_arg_t args[N_THREADS];
    rs_metrics_series_t *c0, *c1, *h, *g;
    char err[256];

    for (int i = 0; i < N_THREADS; i++) {
        args[i].reg = reg;
        args[i].id = i;
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        cr_assert_null(ret);
    }
    const rs_metrics_label_t p0[] = {{"partition", "0"}}, p1[] = {{"partition", "1"}};
    cr_assert_eq(rs_metrics_counter(reg, &c0, "ops_total", "Ops.", p0, 1, err, sizeof err), 0);
    cr_assert_eq(rs_metrics_counter(reg, &c1, "ops_total", "Ops.", p1, 1, err, sizeof err), 0);
    cr_assert_eq(
        rs_metrics_histogram(reg, &h, "lat", "Lat.", NULL, 0, NULL, 0, err, sizeof err), 0);
    cr_assert_eq(rs_metrics_gauge(reg, &g, "level", "Level.", NULL, 0, err, sizeof err), 0);
    cr_assert_eq(rs_metrics_value(c0), (N_THREADS / 2) * N_PER_THREAD);
    cr_assert_eq(rs_metrics_value(c1), (N_THREADS / 2) * N_PER_THREAD);
    cr_assert_eq(rs_metrics_value(g), 0);
    cr_assert_eq(rs_metrics_hist_count(h), (uint64_t)N_THREADS * N_PER_THREAD);
    char *text = render(reg);
    char want[128];
    snprintf(want, sizeof want, "lat_bucket{le=\"+Inf\"} %d\nlat_sum ",
             N_THREADS * N_PER_THREAD);
    cr_assert_not_null(strstr(text, want), "%s", text);
    free(text);
    rs_metrics_destroy(reg);
}

Test(metrics, readiness_flag_and_reason)
{
    rs_metrics_t *reg = new_reg();
    char buf[64];

    cr_assert_eq(rs_metrics_is_ready(reg), 0);
    cr_assert_str_eq(rs_metrics_reason(reg, buf, sizeof buf), "starting");
    rs_metrics_set_reason(reg, "restoring partition %d", 3);
    cr_assert_str_eq(rs_metrics_reason(reg, buf, sizeof buf), "restoring partition 3");
    rs_metrics_set_ready(reg, 1);
    cr_assert_eq(rs_metrics_is_ready(reg), 1);
    rs_metrics_set_ready(reg, 0);
    cr_assert_eq(rs_metrics_is_ready(reg), 0);
    /* Truncated, never overflowing. */
    char small[8];
    cr_assert_str_eq(rs_metrics_reason(reg, small, sizeof small), "restori");
    rs_metrics_destroy(reg);
}

/* ---------- HTTP ---------- */

typedef struct http_resp {
    long status;
    char body[8192];
    size_t len;
    char ctype[128];
    CURLcode code;
} http_resp_t;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    http_resp_t *r = ud;
    size_t bytes = size * n;

    if (r->len + bytes >= sizeof r->body)
        return 0; /* test bodies are small; abort otherwise */
    memcpy(r->body + r->len, p, bytes);
    r->len += bytes;
    r->body[r->len] = '\0';
    return bytes;
}

static void http(int port, const char *method, const char *path, http_resp_t *r)
{
    char url[256];
    char *ct = NULL;
    CURL *h = curl_easy_init();

    cr_assert_not_null(h);
    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "x=1");
    }
    r->code = curl_easy_perform(h);
    if (r->code == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
            snprintf(r->ctype, sizeof r->ctype, "%s", ct);
    }
    curl_easy_cleanup(h);
}

static void start_server(rs_metrics_t *reg, rs_metrics_server_t **srv, int *port)
{
    char err[256] = "";

    cr_assert_eq(rs_metrics_server_start(srv, reg, "127.0.0.1", 0, err, sizeof err), 0, "%s",
                 err);
    *port = rs_metrics_server_port(*srv);
    cr_assert(*port > 0 && *port < 65536, "port %d", *port);
}

Test(metrics_http, endpoints_round_trip)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_server_t *srv = NULL;
    rs_metrics_series_t *c;
    http_resp_t r;
    char err[256] = "";
    int port;

    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    cr_assert_eq(
        rs_metrics_counter(reg, &c, "rs_events_total", "Events.", NULL, 0, err, sizeof err), 0);
    rs_metrics_add(c, 7);
    start_server(reg, &srv, &port);

    http(port, "GET", "/metrics", &r);
    cr_assert_eq(r.code, CURLE_OK, "%s", curl_easy_strerror(r.code));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    cr_assert_str_eq(r.body, "# HELP rs_events_total Events.\n"
                             "# TYPE rs_events_total counter\n"
                             "rs_events_total 7\n");

    /* Each scrape renders the current values. */
    rs_metrics_inc(c);
    http(port, "GET", "/metrics", &r);
    cr_assert_not_null(strstr(r.body, "rs_events_total 8\n"), "%s", r.body);

    http(port, "GET", "/healthz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok\n");

    http(port, "GET", "/readyz", &r);
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(r.body, "starting\n");

    rs_metrics_set_reason(reg, "restoring partition %d", 3);
    http(port, "GET", "/readyz", &r);
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(r.body, "restoring partition 3\n");

    rs_metrics_set_ready(reg, 1);
    http(port, "GET", "/readyz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ready\n");

    rs_metrics_set_ready(reg, 0);
    http(port, "GET", "/readyz", &r);
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(r.body, "restoring partition 3\n");

    http(port, "GET", "/", &r);
    cr_assert_eq(r.status, 404);
    http(port, "GET", "/metrics/extra", &r);
    cr_assert_eq(r.status, 404);
    http(port, "GET", "/metricsx", &r);
    cr_assert_eq(r.status, 404);
    /* A query string does not change the path. */
    http(port, "GET", "/healthz?verbose=1", &r);
    cr_assert_eq(r.status, 200);

    http(port, "POST", "/metrics", &r);
    cr_assert_eq(r.status, 405);
    http(port, "HEAD", "/healthz", &r);
    cr_assert_eq(r.code, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);

    /* Stopped: the port no longer answers. */
    rs_metrics_server_stop(srv);
    cr_assert_eq(rs_metrics_server_port(srv), -1);
    http(port, "GET", "/healthz", &r);
    cr_assert_eq(r.code, CURLE_COULDNT_CONNECT, "%s", curl_easy_strerror(r.code));
    rs_metrics_server_stop(srv); /* idempotent */
    rs_metrics_server_destroy(srv);
    rs_metrics_server_destroy(NULL);
    rs_metrics_destroy(reg);
    curl_global_cleanup();
}

Test(metrics_http, start_errors)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_server_t *a = NULL, *b = (rs_metrics_server_t *)1;
    char err[256] = "";
    int port;

    start_server(reg, &a, &port);
    /* The same port again: in use. */
    cr_assert_eq(rs_metrics_server_start(&b, reg, "127.0.0.1", port, err, sizeof err), -1);
    cr_assert_null(b);
    cr_assert_not_null(strstr(err, "cannot listen on 127.0.0.1 port"), "%s", err);

    b = (rs_metrics_server_t *)1;
    cr_assert_eq(rs_metrics_server_start(&b, reg, "localhost-ish", 0, err, sizeof err), -1);
    cr_assert_null(b);
    cr_assert_not_null(strstr(err, "\"localhost-ish\" is not a numeric IP"), "%s", err);

    cr_assert_eq(rs_metrics_server_start(&b, reg, "127.0.0.1", 70000, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "70000"), "%s", err);

    rs_metrics_server_destroy(a);
    rs_metrics_destroy(reg);
}

Test(metrics, decimal_values_are_exact_text)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *g, *c;
    rs_metrics_label_t usd = {"currency", "USD"};
    char err[256] = "", buf[32];
    char *text;

    cr_assert_str_eq(rs_metrics_format_decimal(12345, 2, buf, sizeof buf), "123.45");
    cr_assert_str_eq(rs_metrics_format_decimal(-5, 2, buf, sizeof buf), "-0.05");
    cr_assert_str_eq(rs_metrics_format_decimal(7, 0, buf, sizeof buf), "7");
    cr_assert_str_eq(rs_metrics_format_decimal(1, 3, buf, sizeof buf), "0.001");
    cr_assert_str_eq(rs_metrics_format_decimal(INT64_MIN, 2, buf, sizeof buf),
                     "-92233720368547758.08");
    cr_assert_str_eq(rs_metrics_format_decimal(INT64_MAX, 18, buf, sizeof buf),
                     "9.223372036854775807");
    cr_assert_eq(rs_metrics_gauge(reg, &g, "rs_amount", "Amount.", &usd, 1, err, sizeof err),
                 0);
    cr_assert_eq(
        rs_metrics_counter(reg, &c, "rs_cpu_seconds_total", "CPU.", NULL, 0, err, sizeof err),
        0);
    cr_assert_eq(rs_metrics_set_decimal(g, 100000000000123, 2), 0);
    cr_assert_eq(rs_metrics_set_decimal(c, 1234, 2), 0);
    cr_assert_eq(rs_metrics_set_decimal(g, 1, 19), -1);
    text = render(reg);
    cr_assert_str_eq(text, "# HELP rs_amount Amount.\n"
                           "# TYPE rs_amount gauge\n"
                           "rs_amount{currency=\"USD\"} 1000000000001.23\n"
                           "# HELP rs_cpu_seconds_total CPU.\n"
                           "# TYPE rs_cpu_seconds_total counter\n"
                           "rs_cpu_seconds_total 12.34\n");
    free(text);
    rs_metrics_destroy(reg);
}

Test(metrics, unset_series_are_not_rendered_until_set)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_series_t *a, *b;
    rs_metrics_label_t pa = {"partition", "0"}, pb = {"partition", "1"};
    char err[256] = "";
    char *text;

    cr_assert_eq(rs_metrics_gauge(reg, &a, "rs_lag", "Lag.", &pa, 1, err, sizeof err), 0);
    cr_assert_eq(rs_metrics_gauge(reg, &b, "rs_lag", "Lag.", &pb, 1, err, sizeof err), 0);
    rs_metrics_set(a, 3);
    rs_metrics_set(b, 4);
    rs_metrics_unset(a);
    cr_assert_not(rs_metrics_is_set(a));
    text = render(reg);
    cr_assert_str_eq(text,
                     "# HELP rs_lag Lag.\n# TYPE rs_lag gauge\nrs_lag{partition=\"1\"} 4\n");
    free(text);
    rs_metrics_set(a, 0);
    text = render(reg);
    cr_assert_not_null(strstr(text, "rs_lag{partition=\"0\"} 0\n"));
    free(text);
    rs_metrics_destroy(reg);
}

Test(metrics, process_metrics_from_proc)
{
    rs_metrics_t *reg = new_reg();
    char err[256] = "";
    char *text;
    long long rss = -1, maxfds = -1, fds = -1;
    double start = 0;

    cr_assert_eq(rs_metrics_process_register(reg, NULL, NULL, err, sizeof err), 0, "%s", err);
    text = render(reg);
    cr_assert_not_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nprocess_cpu_seconds_total "), "%s", text);
    cr_assert_eq(sscanf(strstr(text, "\nprocess_resident_memory_bytes ") + 1,
                        "process_resident_memory_bytes %lld", &rss),
                 1);
    cr_assert_gt(rss, 1024 * 1024, "%s", text);
    cr_assert_eq(sscanf(strstr(text, "\nprocess_open_fds ") + 1, "process_open_fds %lld", &fds),
                 1);
    cr_assert(fds >= 3, "%s", text);
    cr_assert_eq(
        sscanf(strstr(text, "\nprocess_max_fds ") + 1, "process_max_fds %lld", &maxfds), 1);
    cr_assert_gt(maxfds, fds);
    cr_assert_eq(sscanf(strstr(text, "\nprocess_start_time_seconds ") + 1,
                        "process_start_time_seconds %lf", &start),
                 1);
    /* started within the last hour, by the wall clock */
    cr_assert(start > (double)time(NULL) - 3600 && start <= (double)time(NULL) + 1, "%f",
              start);
    cr_assert_not_null(strstr(text, "\nprocess_virtual_memory_bytes "), "%s", text);
    free(text);
    rs_metrics_destroy(reg);
}

Test(metrics_http, healthz_fails_when_the_heartbeat_is_stale)
{
    rs_metrics_t *reg = new_reg();
    rs_metrics_server_t *srv = NULL;
    http_resp_t r;
    int port;

    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    start_server(reg, &srv, &port);
    rs_metrics_set_stale_after(reg, 200);
    rs_metrics_heartbeat(reg);
    http(port, "GET", "/healthz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok\n");
    usleep(400 * 1000);
    http(port, "GET", "/healthz", &r);
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert_eq(strncmp(r.body, "stalled: no progress for ", 25), 0, "%s", r.body);
    rs_metrics_heartbeat(reg);
    http(port, "GET", "/healthz", &r);
    cr_assert_eq(r.status, 200);
    rs_metrics_set_stale_after(reg, 0); /* off: never stale */
    usleep(300 * 1000);
    http(port, "GET", "/healthz", &r);
    cr_assert_eq(r.status, 200);
    rs_metrics_server_destroy(srv);
    rs_metrics_destroy(reg);
    curl_global_cleanup();
}
