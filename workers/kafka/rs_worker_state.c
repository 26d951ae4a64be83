/*
 * rs_worker_state.c — the worker's two state machines (the states and their
 * allowed transitions are listed in internal/rs_worker_internal.h), the
 * failure record, and the worker's log lines.
 *
 * Invariants:
 *   - w->state and w->parts[N].state change only here, each through a
 *     table of allowed transitions; an illegal one is a bug: it is logged
 *     ("worker: bug illegal_transition ...") and fails the worker, which
 *     then commits nothing more (a restart replays its plans).
 *   - rs_worker_fail() keeps the first failure only: FAILED is entered once
 *     and only CLOSING follows it.
 *   - A log line goes through rs_log (workers/base/rs_log.h): one JSON
 *     object per line (or "worker: ..." text with log.format=text),
 *     written with one fputs(), so lines from librdkafka's threads never
 *     interleave with it. Messages keep their "event key=value" phrasing;
 *     rs_log turns the pairs into fields.
 *
 * Ownership: nothing is allocated here.
 */
#include "rs_log.h"
#include "rs_worker_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BIT(s) (1u << (s))

/* The canonical topic of each input index (rs_event_topic() names). */
static const char *const canonical_in[N_IN] = {"contracts", "invoices", "payments", "usage"};

static const char *const worker_names[RS_WORKER__STATES] = {
    "starting", "joining", "restoring", "running", "stopping", "stopped", "failed", "closing",
};

static const char *const part_names[RS_PART__STATES] = {
    "unassigned", "restoring", "replaying", "active", "revoked",
};

/* Where every state before STOPPED may also go. */
#define EXITS (BIT(RS_WORKER_FAILED) | BIT(RS_WORKER_CLOSING))

/* worker_next[from]: the states `from` may move to. */
static const unsigned worker_next[RS_WORKER__STATES] = {
    [RS_WORKER_STARTING] = BIT(RS_WORKER_JOINING) | EXITS,
    [RS_WORKER_JOINING] = BIT(RS_WORKER_RESTORING) | BIT(RS_WORKER_STOPPING) | EXITS,
    [RS_WORKER_RESTORING] = BIT(RS_WORKER_RUNNING) | EXITS,
    [RS_WORKER_RUNNING] = BIT(RS_WORKER_RESTORING) | BIT(RS_WORKER_STOPPING) | EXITS,
    [RS_WORKER_STOPPING] = BIT(RS_WORKER_STOPPED) | EXITS,
    [RS_WORKER_STOPPED] = BIT(RS_WORKER_CLOSING),
    [RS_WORKER_FAILED] = BIT(RS_WORKER_CLOSING),
    [RS_WORKER_CLOSING] = 0,
};

/* part_next[from]: the states `from` may move to. */
static const unsigned part_next[RS_PART__STATES] = {
    [RS_PART_UNASSIGNED] = BIT(RS_PART_RESTORING) | BIT(RS_PART_REVOKED),
    [RS_PART_RESTORING] =
        BIT(RS_PART_REPLAYING) | BIT(RS_PART_ACTIVE) | BIT(RS_PART_UNASSIGNED),
    [RS_PART_REPLAYING] = BIT(RS_PART_ACTIVE) | BIT(RS_PART_REVOKED),
    [RS_PART_ACTIVE] = BIT(RS_PART_REVOKED),
    [RS_PART_REVOKED] = BIT(RS_PART_RESTORING) | BIT(RS_PART_UNASSIGNED),
};

const char *rs_worker_state_name(rs_worker_state_t s)
{
    return (unsigned)s < RS_WORKER__STATES ? worker_names[s] : "?";
}

const char *rs_worker_part_state_name(rs_part_state_t s)
{
    return (unsigned)s < RS_PART__STATES ? part_names[s] : "?";
}

void rs_worker_fail(rs_worker_t *w, const char *fmt, ...)
{
    va_list ap;

    /* apply lanes may fail at once: the first one's message stays */
    pthread_mutex_lock(&w->mu);
    if ((worker_next[w->state] & BIT(RS_WORKER_FAILED)) != 0) {
        va_start(ap, fmt);
        vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
        va_end(ap);
        w->state = RS_WORKER_FAILED;
    } /* else FAILED already (the first failure stays), STOPPED or CLOSING */
    pthread_mutex_unlock(&w->mu);
}

int rs_worker_set_state(rs_worker_t *w, rs_worker_state_t to)
{
    rs_worker_state_t from = w->state;

    if ((unsigned)from < RS_WORKER__STATES && (unsigned)to < RS_WORKER__STATES &&
        (worker_next[from] & BIT(to)) != 0) {
        w->state = to; /* FAILED: rs_worker_fail() says why */
        return 0;
    }
    rs_worker_log("bug illegal_transition machine=worker from=%s to=%s",
                  rs_worker_state_name(from), rs_worker_state_name(to));
    rs_worker_fail(w, "internal error: worker state %s -> %s is not allowed",
                   rs_worker_state_name(from), rs_worker_state_name(to));
    return -1;
}

int rs_worker_part_set_state(rs_worker_t *w, int32_t n, rs_part_state_t to)
{
    part_t *p = &w->parts[n];
    rs_part_state_t from = p->state;

    if ((unsigned)from < RS_PART__STATES && (unsigned)to < RS_PART__STATES &&
        (part_next[from] & BIT(to)) != 0) {
        p->state = to;
        return 0;
    }
    rs_worker_log("bug illegal_transition machine=partition partition=%d from=%s to=%s", (int)n,
                  rs_worker_part_state_name(from), rs_worker_part_state_name(to));
    rs_worker_fail(w, "internal error: partition %d state %s -> %s is not allowed", (int)n,
                   rs_worker_part_state_name(from), rs_worker_part_state_name(to));
    return -1;
}

void rs_worker_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rs_logv(RS_LOG_LEVEL_AUTO, "worker", fmt, ap);
    va_end(ap);
}

const char *rs_worker_quote(char *buf, size_t buflen, const char *s)
{
    size_t o = 0;

    if (buflen < 3) {
        if (buflen > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && o + 3 < buflen;
         p++) {
        if (*p == '"' || *p == '\\')
            buf[o++] = '\\';
        buf[o++] = (char)((*p < 0x20 || *p == 0x7f) ? '?' : *p);
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

uint64_t rs_worker_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int rs_worker_topic_index(const rs_worker_t *w, const char *name)
{
    for (int t = 0; t < N_IN; t++)
        if (strcmp(w->cfg->topics[t], name) == 0)
            return t;
    return -1;
}

int rs_worker_canonical_index(const char *topic)
{
    for (int t = 0; t < N_IN; t++)
        if (topic != NULL && strcmp(canonical_in[t], topic) == 0)
            return t;
    return -1;
}
