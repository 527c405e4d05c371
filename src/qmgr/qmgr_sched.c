/*
 * qmgr_sched.c - transports, destination queues and the choice of the next
 * delivery.
 *
 * A transport is a master.cf service that delivery requests go to
 * (private/NAME). Its recipients wait in one queue per next hop
 * (destination). Limits, read once per transport:
 *   - <t>_destination_concurrency_limit (default_destination_concurrency_
 *     limit): requests in progress per destination. A destination starts at
 *     <t>_initial_destination_concurrency, gains one slot per request that
 *     worked and loses one (never below 1) per request that failed as a
 *     whole;
 *   - <t>_destination_recipient_limit: recipients per request (at most
 *     DELIVER_MAX_RCPT), all from one message;
 *   - <t>_destination_rate_delay: a pause after each request to the same
 *     destination (and concurrency 1), when not zero;
 *   - the master.cf maxproc of the transport ("-" = default_process_limit,
 *     0 = no limit): requests in progress over all its destinations.
 * Fairness: the queues of a transport that have work form a ring; each
 * request is taken from the queue after the one served last, so one big
 * destination cannot starve the others.
 *
 * A transport whose socket cannot be reached is "dead" for
 * transport_retry_time: its waiting recipients are deferred at once with
 * the reason, instead of piling up in memory.
 */
#include <errno.h>
#include <string.h>

#include "clock.h"
#include "deliver_proto.h"
#include "log.h"
#include "mastercf.h"
#include "mem.h"
#include "params.h"
#include "qmgr.h"
#include "server.h"

static struct qmgr_transport *transports;
static struct mastercf sched_mc;
static bool sched_mc_loaded;

/*
 * qmgr_sched_init - read master.cf once, for the process limits of the
 * transports. A master.cf that cannot be read leaves default_process_limit
 * for every transport.
 */
void
qmgr_sched_init(config_t *cfg)
{
    str_t  *path = str_new(0);
    diag_list_t diags;

    diag_init(&diags);
    str_printf(path, "%s/master.cf", config_str(cfg, "config_directory"));
    if (mastercf_read_file(str_cstr(path), &sched_mc, &diags) == 0)
        sched_mc_loaded = true;
    else
        log_warn("cannot read %s: using default_process_limit for every transport",
                 str_cstr(path));
    diag_free(&diags);
    str_free(path);
}

/*
 * qmgr_transport_param - the value of "<transport><suffix>" when main.cf
 * (or a qmgr -o option) sets it and it is valid, else the generic parameter.
 * Numbers only (INT and TIME parameters).
 */
long
qmgr_transport_param(config_t *cfg, const char *transport, const char *suffix,
                     const char *generic)
{
    const struct param_def *def = param_lookup(generic);
    str_t  *name = str_new(0);
    str_t  *val = str_new(0);
    str_t  *why = str_new(0);
    const char *raw;
    long    num;

    if (def == NULL)
        log_panic("qmgr_transport_param: no parameter %s", generic);
    num = def->type == PARAM_TIME ? config_time(cfg, generic) : config_int(cfg, generic);
    str_printf(name, "%s%s", transport, suffix);
    if ((raw = config_get_raw(cfg, str_cstr(name))) != NULL) {
        long    v;

        if (config_expand(cfg, raw, val, why) && param_check_value(def, str_cstr(val), &v, why))
            num = v;
        else
            log_warn("%s: %s; using %s", str_cstr(name), str_cstr(why), generic);
    }
    str_free(name);
    str_free(val);
    str_free(why);
    return num;
}

static long
transport_maxproc(const char *name)
{
    long    def = config_int(qmgr.cfg, "default_process_limit");

    for (size_t i = 0; sched_mc_loaded && i < sched_mc.count; i++) {
        const struct mastercf_entry *e = &sched_mc.entries[i];

        if (e->type == MASTERCF_UNIX && strcmp(e->service, name) == 0)
            return e->maxproc < 0 ? def : e->maxproc;
    }
    return def;
}

static struct qmgr_transport *
transport_find(const char *name)
{
    struct qmgr_transport *tr;

    for (tr = transports; tr; tr = tr->next)
        if (strcmp(tr->name, name) == 0)
            return tr;
    tr = mem_zalloc(sizeof(*tr));
    tr->name = mem_strdup(name);
    tr->dest_limit = qmgr_transport_param(qmgr.cfg, name, "_destination_concurrency_limit",
                                          "default_destination_concurrency_limit");
    tr->rcpt_limit = qmgr_transport_param(qmgr.cfg, name, "_destination_recipient_limit",
                                          "default_destination_recipient_limit");
    tr->initial = qmgr_transport_param(qmgr.cfg, name, "_initial_destination_concurrency",
                                       "initial_destination_concurrency");
    tr->rate_delay = qmgr_transport_param(qmgr.cfg, name, "_destination_rate_delay",
                                          "default_destination_rate_delay");
    tr->maxproc = transport_maxproc(name);
    if (tr->rcpt_limit > DELIVER_MAX_RCPT)
        tr->rcpt_limit = DELIVER_MAX_RCPT;
    if (tr->rate_delay > 0)
        tr->dest_limit = 1;
    if (tr->initial > tr->dest_limit)
        tr->initial = tr->dest_limit;
    tr->queues = htable_new(16);
    tr->next = transports;
    transports = tr;
    return tr;
}

static void
ring_add(struct qmgr_queue *q)
{
    struct qmgr_transport *tr = q->tr;

    if (q->in_ring)
        return;
    if (tr->ring == NULL) {
        q->rr_next = q->rr_prev = q;
        tr->ring = q;
    } else {
        /* Just before the cursor: served last in the current round. */
        q->rr_next = tr->ring;
        q->rr_prev = tr->ring->rr_prev;
        q->rr_prev->rr_next = q;
        tr->ring->rr_prev = q;
    }
    q->in_ring = true;
}

static void
ring_del(struct qmgr_queue *q)
{
    struct qmgr_transport *tr = q->tr;

    if (!q->in_ring)
        return;
    if (q->rr_next == q) {
        tr->ring = NULL;
    } else {
        q->rr_prev->rr_next = q->rr_next;
        q->rr_next->rr_prev = q->rr_prev;
        if (tr->ring == q)
            tr->ring = q->rr_next;
    }
    q->rr_next = q->rr_prev = NULL;
    q->in_ring = false;
}

static void queue_maybe_free(struct qmgr_queue *q);

/* The rate delay of an idle queue is over: it may go now. */
static void
queue_linger_done(void *ctx)
{
    struct qmgr_queue *q = ctx;

    q->linger_timer = 0;
    queue_maybe_free(q);
}

/*
 * Free a queue that has neither waiting recipients nor requests. While its
 * rate delay runs it stays (with a timer), so that the next message for the
 * destination still waits: freeing it would forget when the last request
 * started.
 */
static void
queue_maybe_free(struct qmgr_queue *q)
{
    if (q->count > 0 || q->active > 0 || q->linger_timer)
        return;
    if (q->blocked_until_ms > clock_mono_ms()) {
        q->linger_timer = event_timer_add(server_loop(), q->blocked_until_ms - clock_mono_ms(),
                                          queue_linger_done, q);
        return;
    }
    ring_del(q);
    htable_remove(q->tr->queues, q->nexthop, NULL);
    mem_free(q->nexthop);
    mem_free(q);
}

/*
 * qmgr_sched_enqueue - recipient i of msg waits for transport:nexthop.
 */
void
qmgr_sched_enqueue(struct qmgr_message *msg, size_t i, const char *transport,
                   const char *nexthop)
{
    struct qmgr_transport *tr = transport_find(transport);
    struct qmgr_queue *q = htable_find(tr->queues, nexthop);
    struct qmgr_entry *e = mem_zalloc(sizeof(*e));

    if (q == NULL) {
        q = mem_zalloc(sizeof(*q));
        q->tr = tr;
        q->nexthop = mem_strdup(nexthop);
        q->window = tr->initial;
        htable_insert(tr->queues, nexthop, q);
    }
    e->msg = msg;
    e->rcpt = i;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    q->count++;
    msg->rs[i].state = QMGR_R_QUEUED;
    ring_add(q);
}

/*
 * qmgr_sched_requeue - put the recipients of a request that could not be
 * started back at the head of their queue, in order.
 */
void
qmgr_sched_requeue(struct qmgr_queue *q, struct qmgr_message *msg, const size_t *rcpt, size_t n)
{
    for (size_t k = n; k-- > 0;) {
        struct qmgr_entry *e = mem_zalloc(sizeof(*e));

        e->msg = msg;
        e->rcpt = rcpt[k];
        e->next = q->head;
        q->head = e;
        if (q->tail == NULL)
            q->tail = e;
        q->count++;
        msg->rs[rcpt[k]].state = QMGR_R_QUEUED;
    }
    ring_add(q);
}

/* Take the first entry of q. */
static struct qmgr_entry *
pop(struct qmgr_queue *q)
{
    struct qmgr_entry *e = q->head;

    if (e) {
        q->head = e->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->count--;
    }
    return e;
}

/*
 * Defer everything waiting for a dead transport. Messages that have no
 * waiting recipient left are finished.
 */
static void
drain_dead(struct qmgr_transport *tr)
{
    struct qmgr_queue *q;

    while ((q = tr->ring) != NULL) {
        struct qmgr_entry *e;

        while ((e = pop(q)) != NULL) {
            struct qmgr_message *msg = e->msg;
            size_t  i = e->rcpt;

            mem_free(e);
            qmgr_active_result(msg, i, DELIVER_RESULT_DEFER, "4.3.0", tr->dead_reason,
                               "none");
            qmgr_active_check(msg);
        }
        ring_del(q);
        queue_maybe_free(q);
    }
}

/*
 * qmgr_sched_transport_dead - stop using a transport for
 * transport_retry_time; its waiting recipients are deferred with reason.
 */
void
qmgr_sched_transport_dead(struct qmgr_transport *tr, const char *reason)
{
    tr->dead_until_ms = clock_mono_ms() + (int64_t) qmgr.transport_retry * 1000;
    mem_free(tr->dead_reason);
    tr->dead_reason = mem_strdup(reason);
    qmgr_deliver_pool_drop(tr);
}

/*
 * qmgr_sched_revive - bring transports whose retry time passed (all: every
 * transport, for a flush) back into use.
 */
void
qmgr_sched_revive(bool all)
{
    int64_t now = clock_mono_ms();

    for (struct qmgr_transport *tr = transports; tr; tr = tr->next)
        if (tr->dead_until_ms && (all || now >= tr->dead_until_ms))
            tr->dead_until_ms = 0;
}

/* May q take one more request now? */
static bool
queue_ready(const struct qmgr_queue *q, int64_t now)
{
    return q->count > 0 && q->active < q->window && now >= q->blocked_until_ms;
}

/* Start as many requests for tr as its limits allow. */
static void
run_transport(struct qmgr_transport *tr)
{
    int64_t now = clock_mono_ms();
    size_t  rcpt[DELIVER_MAX_RCPT];

    while (tr->ring && (tr->maxproc == 0 || tr->busy < tr->maxproc)) {
        struct qmgr_queue *q = tr->ring, *start = q;
        struct qmgr_message *msg;
        size_t  n = 0;

        while (!queue_ready(q, now)) {
            q = q->rr_next;
            if (q == start)
                return;                 /* every destination is at its limit */
        }
        msg = q->head->msg;
        while (n < (size_t) tr->rcpt_limit && q->head && q->head->msg == msg) {
            struct qmgr_entry *e = pop(q);

            rcpt[n++] = e->rcpt;
            msg->rs[e->rcpt].state = QMGR_R_BUSY;
            mem_free(e);
        }
        tr->ring = q->rr_next;          /* the next request goes elsewhere */
        if (q->count == 0)
            ring_del(q);
        q->active++;
        tr->busy++;
        if (qmgr_deliver_start(q, msg, rcpt, n) != 0) {
            /* Not started: the recipients are back in q, try again later. */
            q->active--;
            tr->busy--;
            if (tr->dead_until_ms)
                drain_dead(tr);
            return;
        }
    }
}

/*
 * qmgr_sched_run - start whatever deliveries the limits allow now.
 */
void
qmgr_sched_run(void)
{
    if (qmgr.stopping)
        return;                     /* SIGTERM: only the replies under way */
    for (struct qmgr_transport *tr = transports; tr; tr = tr->next) {
        if (tr->dead_until_ms)
            drain_dead(tr);
        else
            run_transport(tr);
    }
}

/*
 * qmgr_sched_job_requeue - a request to q that was under way could not be
 * sent after all (the agent's socket was only busy): its recipients go back
 * to the head of q, and its slot is released without judging the
 * destination.
 */
void
qmgr_sched_job_requeue(struct qmgr_queue *q, struct qmgr_message *msg, const size_t *rcpt,
                       size_t n)
{
    q->active--;
    q->tr->busy--;
    qmgr_sched_requeue(q, msg, rcpt, n);
}

/*
 * qmgr_sched_job_done - a request to q finished (ok: it got a proper reply
 * from the agent). Adjusts the destination's concurrency window.
 */
void
qmgr_sched_job_done(struct qmgr_queue *q, bool ok)
{
    struct qmgr_transport *tr = q->tr;

    q->active--;
    tr->busy--;
    if (ok && q->window < tr->dest_limit)
        q->window++;
    else if (!ok && q->window > 1)
        q->window--;
    if (tr->rate_delay > 0)
        q->blocked_until_ms = clock_mono_ms() + (int64_t) tr->rate_delay * 1000;
    if (q->count > 0)
        ring_add(q);
    queue_maybe_free(q);
}
