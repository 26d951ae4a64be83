/*
 * rs_metrics — a small thread-safe metrics registry, its Prometheus text
 * exposition (format 0.0.4) and an HTTP server for /metrics, /healthz and
 * /readyz.
 *
 * Model:
 *   - A registry holds families; a family has a name, a help text, a type
 *     (counter, gauge, histogram) and one or more series. A series is the
 *     family plus a set of up to RS_METRICS_MAX_LABELS label pairs. Every
 *     series of a family has the same label names (and, for histograms, the
 *     same bucket bounds); registering a series that disagrees with its
 *     family is an error, never a silent second family.
 *   - Registering the same name + label set twice (label order does not
 *     matter) returns the same series handle, so callers may look series up
 *     lazily.
 *   - Counter and gauge values are int64 (event counts, offsets, lags).
 *     Counters only go up. Histograms take doubles: they are for latencies in
 *     seconds, never for money. A counter or gauge may instead hold a
 *     decimal: int64 units and a scale (rs_metrics_set_decimal: units 12345,
 *     scale 2 renders "123.45"), built from integers only, which is how money
 *     amounts (minor units, the currency's exponent), seconds with
 *     milliseconds and CPU seconds are exposed. A series keeps one scale.
 *   - A counter or gauge series may be unset (rs_metrics_unset): it is not
 *     rendered until it is set again (a partition no longer assigned, a
 *     figure not known yet).
 *   - Liveness: /healthz answers 503 once the last rs_metrics_heartbeat() is
 *     older than the limit set with rs_metrics_set_stale_after() (0, the
 *     default, never). The first heartbeat is the registry's creation.
 *   - A render hook (rs_metrics_set_render_hook) runs before each render,
 *     on the rendering thread, outside the registry lock: it may update
 *     series (the process metrics do).
 *
 * Thread safety: every function may be called from any thread. Updating a
 * counter or gauge is one atomic operation; a histogram observation takes
 * the series' own lock; registration and rendering take the registry lock.
 * A rendered histogram is always self-consistent (its +Inf bucket equals
 * its count).
 *
 * Ownership: the registry owns every family and series; series handles stay
 * valid until rs_metrics_destroy(). Names, help texts, labels and bucket
 * arrays passed in are copied. The server borrows the registry: stop the
 * server before destroying the registry.
 *
 * Exposition: families sorted by name (bytewise); series within a family
 * sorted by their label pairs (labels within a series sorted by name);
 * histogram series as cumulative _bucket lines (le last, "+Inf" included),
 * then _sum and _count. Help text escapes '\' and newline; label values
 * escape '\', '"' and newline.
 */
#ifndef RS_METRICS_H
#define RS_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* The most label pairs one series may carry. */
#define RS_METRICS_MAX_LABELS 4
/* The most bucket bounds one histogram may have (+Inf is implicit). */
#define RS_METRICS_MAX_BUCKETS 32
/* The longest /readyz reason kept (longer ones are truncated). */
#define RS_METRICS_REASON_MAX 256

typedef struct rs_metrics rs_metrics_t;
typedef struct rs_metrics_series rs_metrics_series_t;
typedef struct rs_metrics_server rs_metrics_server_t;

/* Called before each render with the registry and its opaque. */
typedef void (*rs_metrics_hook_fn)(rs_metrics_t *reg, void *opaque);

typedef enum rs_metrics_type {
    RS_METRICS_COUNTER = 0,
    RS_METRICS_GAUGE,
    RS_METRICS_HISTOGRAM,
} rs_metrics_type_t;

/* One label pair. Names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with
 * "__"; values are any UTF-8 text. */
typedef struct rs_metrics_label {
    const char *name;
    const char *value;
} rs_metrics_label_t;

/* Default histogram bounds for batch latency in seconds:
 * 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10. */
extern const double rs_metrics_latency_buckets[];
extern const size_t rs_metrics_latency_bucket_count;

/* A new, empty registry (not ready, reason "starting"). Returns 0, or -1 with
 * errstr set. */
int rs_metrics_new(rs_metrics_t **out, char *errstr, size_t errlen);
/* Free the registry and every series. Accepts NULL. */
void rs_metrics_destroy(rs_metrics_t *reg);

/* Get or create a counter / gauge series. `labels` may be NULL when nlabels
 * is 0. Returns 0 with *out set, or -1 with errstr naming the metric and the
 * problem (bad name, type or help differs from the family's, label names
 * differ from the family's, too many labels, duplicate label). */
int rs_metrics_counter(rs_metrics_t *reg, rs_metrics_series_t **out, const char *name,
                       const char *help, const rs_metrics_label_t *labels, size_t nlabels,
                       char *errstr, size_t errlen);
int rs_metrics_gauge(rs_metrics_t *reg, rs_metrics_series_t **out, const char *name,
                     const char *help, const rs_metrics_label_t *labels, size_t nlabels,
                     char *errstr, size_t errlen);
/* Get or create a histogram series with the given upper bounds (finite,
 * strictly increasing, at most RS_METRICS_MAX_BUCKETS; NULL/0 means
 * rs_metrics_latency_buckets). The label name "le" is reserved. */
int rs_metrics_histogram(rs_metrics_t *reg, rs_metrics_series_t **out, const char *name,
                         const char *help, const rs_metrics_label_t *labels, size_t nlabels,
                         const double *bounds, size_t nbounds, char *errstr, size_t errlen);

/* Counter or gauge += 1. Returns 0, or -1 (nothing changed) on a histogram. */
int rs_metrics_inc(rs_metrics_series_t *s);
/* Counter or gauge += delta. Returns 0, or -1 (nothing changed) when the
 * series is a histogram or a counter would go down (delta < 0). */
int rs_metrics_add(rs_metrics_series_t *s, int64_t delta);
/* Gauge = value. Returns 0, or -1 (nothing changed) unless s is a gauge. */
int rs_metrics_set(rs_metrics_series_t *s, int64_t value);
/* Counter or gauge = units / 10^scale (0 <= scale <= 18), rendered as an
 * exact decimal ("-0.05"). Meant for gauges and for counters mirroring a
 * count kept elsewhere (CPU seconds). Returns 0, or -1 on a histogram or a
 * bad scale. */
int rs_metrics_set_decimal(rs_metrics_series_t *s, int64_t units, int scale);
/* Hide a counter/gauge series from the exposition until it is next set or
 * added to. Accepts NULL. */
void rs_metrics_unset(rs_metrics_series_t *s);
/* 1 if the series is rendered (not unset). */
int rs_metrics_is_set(rs_metrics_series_t *s);
/* units / 10^scale as a decimal text in buf ("" if buf is too small;
 * 32 bytes always suffice). Returns buf. */
char *rs_metrics_format_decimal(int64_t units, int scale, char *buf, size_t buflen);
/* Histogram observation. Returns 0, or -1 (nothing recorded) unless s is a
 * histogram or when v is NaN. */
int rs_metrics_observe(rs_metrics_series_t *s, double v);
/* Current counter/gauge value (0 for a histogram). */
int64_t rs_metrics_value(rs_metrics_series_t *s);
/* Histogram observation count (0 for a counter/gauge). */
uint64_t rs_metrics_hist_count(rs_metrics_series_t *s);

/* Render the registry in Prometheus text format 0.0.4. Returns 0 with *out a
 * malloc'd NUL-terminated string (free() it) and *len its length (len may be
 * NULL), or -1 on out-of-memory. */
int rs_metrics_render(rs_metrics_t *reg, char **out, size_t *len);

/* Readiness for /readyz. While not ready, /readyz answers 503 with the last
 * reason set. Setting ready does not clear the reason. */
void rs_metrics_set_ready(rs_metrics_t *reg, int ready);
int rs_metrics_is_ready(rs_metrics_t *reg);
/* Set the not-ready reason, printf-style ("restoring partition %d"). */
void rs_metrics_set_reason(rs_metrics_t *reg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Copy the current reason into buf (always NUL-terminated). Returns buf. */
char *rs_metrics_reason(rs_metrics_t *reg, char *buf, size_t buflen);

/* Liveness: the processing loop calls rs_metrics_heartbeat() on every
 * iteration; /healthz is 503 once the last one is older than `ms` (0: off).
 * rs_metrics_stale_for() is how long it has been stale (0: not stale). */
void rs_metrics_heartbeat(rs_metrics_t *reg);
void rs_metrics_set_stale_after(rs_metrics_t *reg, uint64_t ms);
uint64_t rs_metrics_stale_for(rs_metrics_t *reg);
uint64_t rs_metrics_now_ms(void); /* CLOCK_MONOTONIC, ms */

/* Set the render hook (NULL: none), replacing any (whose opaque is then
 * freed). Set it before the server starts. free_opaque (may be NULL) frees
 * opaque when the registry is destroyed: the registry owns it then. */
void rs_metrics_set_render_hook(rs_metrics_t *reg, rs_metrics_hook_fn fn, void *opaque,
                                void (*free_opaque)(void *));

/* The standard process metrics, read from /proc/self at each render:
 * process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds. Registers them and installs its render
 * hook (which then calls `chain`, when not NULL, with chain_opaque).
 * Returns 0, or -1 with errstr set. */
int rs_metrics_process_register(rs_metrics_t *reg, rs_metrics_hook_fn chain, void *chain_opaque,
                                char *errstr, size_t errlen);

/* Start an HTTP server on one internal thread. bind_addr is a numeric IPv4 or
 * IPv6 address ("127.0.0.1", "0.0.0.0", "::1"); NULL means all IPv4
 * interfaces. port 0 picks an ephemeral port (see rs_metrics_server_port()).
 * Endpoints (GET/HEAD; other methods get 405):
 *   /metrics  200 text/plain; version=0.0.4; charset=utf-8
 *   /healthz  200 "ok\n", or 503 "stalled: no progress for N ms\n" (see
 *             rs_metrics_set_stale_after)
 *   /readyz   200 "ready\n", or 503 "<reason>\n" while not ready
 *   anything else 404.
 * Returns 0, or -1 with errstr set (bad address, port in use, ...). */
int rs_metrics_server_start(rs_metrics_server_t **out, rs_metrics_t *reg, const char *bind_addr,
                            int port, char *errstr, size_t errlen);
/* The port the server listens on (useful after port 0), or -1. */
int rs_metrics_server_port(const rs_metrics_server_t *srv);
/* Stop listening and close connections; the handle stays valid for
 * rs_metrics_server_port() (which then returns -1). Idempotent; accepts NULL. */
void rs_metrics_server_stop(rs_metrics_server_t *srv);
/* Stop if running, then free. Accepts NULL. */
void rs_metrics_server_destroy(rs_metrics_server_t *srv);

#endif
