/*
 * qmgr_deliver.c - the queue manager's side of deliver_proto.h, on the
 * event loop: a non-blocking connection to private/TRANSPORT per request,
 * kept after a good reply for the transport's next request (the pool).
 *
 *   GREETING   wait for the agent's {protocol = "delivery"} (new connections)
 *   SENDING    write the request (at once; the loop only when it would block)
 *   WAITING    read the reply; then record every recipient's result
 *
 * A kept connection that ends before any byte of its reply (the agent left
 * it while it was idle) is not a failure of the request: it is sent again,
 * once, over a new connection.
 *
 * A request that fails as a whole (the agent closed the connection, sent
 * something malformed, replied with a non-zero status, or took longer than
 * daemon_timeout) defers all its recipients with the reason; the agent may
 * have delivered some of them, so they can be delivered twice, but never
 * lost. A transport that cannot be connected to is marked dead (see
 * qmgr_sched.c).
 *
 * Trust: the agent is another Postern program, but its reply is decoded by
 * the strict attribute codec, and every value is checked before use.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "attr.h"
#include "clock.h"
#include "deliver_proto.h"
#include "log.h"
#include "mem.h"
#include "qmgr.h"
#include "rec_type.h"
#include "server.h"

enum {
    JOB_GREETING,
    JOB_SENDING,
    JOB_WAITING,
};

#define JOB_READ_CHUNK  8192

static struct qmgr_job *jobs;
static size_t njobs;

/*
 * The pool: connections whose last request got a good reply, oldest first,
 * each for its transport's next request. At most POOL_MAX; a connection
 * idle for DELIVER_POOL_IDLE_MS is closed (qmgr_deliver_tick), so the agent
 * processes they hold go back to master. A pooled connection stays in the
 * event loop, for reading as during a request: one that becomes readable
 * (the agent closed it, or talks unasked) is closed at once, and a request
 * that takes one over changes no registration.
 */
#define POOL_MAX        64

static struct pooled {
    struct qmgr_transport *tr;
    int     fd;
    int64_t since_ms;
} pool[POOL_MAX];
static size_t npool;

static void
pool_remove(size_t k, bool close_it)
{
    if (close_it) {
        event_fd_del(server_loop(), pool[k].fd);
        (void) close(pool[k].fd);
    }
    memmove(&pool[k], &pool[k + 1], (npool - k - 1) * sizeof(pool[0]));
    npool--;
}

/* A pooled connection is readable: it is of no more use. */
static void
pool_event(int fd, int events, void *ctx)
{
    for (size_t k = 0; k < npool; k++)
        if (pool[k].fd == fd) {
            pool_remove(k, true);
            return;
        }
    event_fd_del(server_loop(), fd);    /* not ours: cannot happen */
}

static void
pool_put(struct qmgr_transport *tr, int fd)
{
    if (npool == POOL_MAX)
        pool_remove(0, true);
    event_fd_add(server_loop(), fd, EVENT_READ, pool_event, NULL);
    pool[npool++] = (struct pooled) {.tr = tr, .fd = fd, .since_ms = clock_mono_ms()};
}

/* The most recently used connection to tr, or -1. */
static int
pool_take(struct qmgr_transport *tr)
{
    for (size_t k = npool; k-- > 0;) {
        int     fd = pool[k].fd;

        if (pool[k].tr != tr)
            continue;
        pool_remove(k, false);
        return fd;
    }
    return -1;
}

/* Close the idle connections to tr (every transport: NULL), or those idle since before. */
static void
pool_drop(const struct qmgr_transport *tr, int64_t before_ms)
{
    for (size_t k = npool; k-- > 0;)
        if ((tr == NULL || pool[k].tr == tr) && pool[k].since_ms <= before_ms)
            pool_remove(k, true);
}

void
qmgr_deliver_pool_drop(struct qmgr_transport *tr)
{
    pool_drop(tr, INT64_MAX);
}

/*
 * qmgr_deliver_count - requests in progress.
 */
size_t
qmgr_deliver_count(void)
{
    return njobs;
}

/* The request attributes of deliver_proto.h. */
static void
build_request(struct qmgr_job *job)
{
    struct qmgr_message *msg = job->msg;
    attr_list_t *al = attr_list_new();
    const char *v;
    long    flags = DELIVER_FLAG_NONE;
    str_t  *name = str_new(32);

    if (*msg->qf.sender == 0)
        flags |= DELIVER_FLAG_BOUNCE;
    attr_put_str(al, "queue_name", "active");
    attr_put_str(al, "queue_id", msg->id);
    attr_put_int(al, "content_offset", (long long) msg->qf.content_offset);
    attr_put_int(al, "message_size", msg->qf.message_size);
    attr_put_int(al, "arrival_time", msg->qf.arrival_sec);
    attr_put_int(al, "active_time", msg->active_time);
    attr_put_str(al, "sender", msg->qf.sender);
    attr_put_str(al, "transport", job->queue->tr->name);
    attr_put_str(al, "nexthop", job->queue->nexthop);
    attr_put_str(al, "encoding", (v = qfile_attr(&msg->qf, REC_ATTR_ENCODING)) ? v : "");
    attr_put_int(al, "smtputf8",
                 (v = qfile_attr(&msg->qf, REC_ATTR_SMTPUTF8)) && strcmp(v, "1") == 0);
    attr_put_str(al, "dsn_envid", (v = qfile_attr(&msg->qf, REC_ATTR_DSN_ENVID)) ? v : "");
    {
        long    ret = 0;

        if ((v = qfile_attr(&msg->qf, REC_ATTR_DSN_RET)) != NULL
            && (cstr_parse_long(v, &ret) != 0 || (ret != DSN_RET_FULL && ret != DSN_RET_HDRS)))
            ret = 0;
        attr_put_int(al, "dsn_ret", ret);
    }
    attr_put_str(al, "client_name", (v = qfile_attr(&msg->qf, REC_ATTR_CLIENT_NAME)) ? v : "");
    attr_put_str(al, "client_address",
                 (v = qfile_attr(&msg->qf, REC_ATTR_CLIENT_ADDR)) ? v : "");
    attr_put_str(al, "helo_name", (v = qfile_attr(&msg->qf, REC_ATTR_HELO_NAME)) ? v : "");
    attr_put_str(al, "protocol", (v = qfile_attr(&msg->qf, REC_ATTR_PROTOCOL)) ? v : "");
    attr_put_int(al, "flags", flags);
    attr_put_int(al, "rcpt_count", (long long) job->n);
    for (size_t k = 0; k < job->n; k++) {
        const struct qfile_rcpt *r = &msg->qf.rcpts[job->rcpt[k]];

        str_printf(name, "rcpt_%zu_address", k);
        attr_put_str(al, str_cstr(name), msg->rs[job->rcpt[k]].address);
        str_printf(name, "rcpt_%zu_orig", k);
        attr_put_str(al, str_cstr(name), r->address);
        str_printf(name, "rcpt_%zu_offset", k);
        attr_put_int(al, str_cstr(name), (long long) r->offset);
        str_printf(name, "rcpt_%zu_orcpt", k);
        attr_put_str(al, str_cstr(name), r->orcpt ? r->orcpt : "");
        str_printf(name, "rcpt_%zu_notify", k);
        attr_put_int(al, str_cstr(name), r->notify);
    }
    attr_encode(al, job->out);
    attr_list_free(al);
    str_free(name);
}

static void
job_unlink_free(struct qmgr_job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    njobs--;
    qmgr_stop_if_idle();            /* the last reply of a stop may be in */
    if (job->fd >= 0) {
        event_fd_del(server_loop(), job->fd);
        (void) close(job->fd);
    }
    str_free(job->in);
    str_free(job->out);
    mem_free(job->rcpt);
    mem_free(job);
}

/*
 * Finish a request: record results (reply NULL: the request failed as a
 * whole with "why"), sync the done marks, release the slot, let finished
 * messages go, and start more work.
 */
static void
job_finish(struct qmgr_job *job, attr_list_t *reply, const char *why)
{
    struct qmgr_message *msg = job->msg;
    struct qmgr_queue *q = job->queue;
    str_t  *name = str_new(32);
    bool    ok = reply != NULL;

    for (size_t k = 0; k < job->n; k++) {
        const char *result = NULL, *dsn = NULL, *reason = NULL, *relay = NULL;

        if (reply) {
            str_printf(name, "rcpt_%zu_result", k);
            (void) attr_get_str(reply, str_cstr(name), &result);
            str_printf(name, "rcpt_%zu_dsn", k);
            (void) attr_get_str(reply, str_cstr(name), &dsn);
            str_printf(name, "rcpt_%zu_reason", k);
            (void) attr_get_str(reply, str_cstr(name), &reason);
            str_printf(name, "rcpt_%zu_relay", k);
            (void) attr_get_str(reply, str_cstr(name), &relay);
            if (result == NULL) {
                result = DELIVER_RESULT_DEFER;
                dsn = "4.3.0";
                reason = "no result from the delivery agent";
            }
        } else {
            result = DELIVER_RESULT_DEFER;
            dsn = "4.3.0";
            reason = why;
            relay = "none";
        }
        qmgr_active_result(msg, job->rcpt[k], result, dsn, reason, relay);
    }
    str_free(name);
    /* A clean end (no bytes beyond the reply) leaves the connection fit for the next request. */
    if (ok && job->state == JOB_WAITING && str_len(job->in) == 0 && job->fd >= 0
        && job->queue->tr->dead_until_ms == 0) {
        pool_put(job->queue->tr, job->fd);
        job->fd = -1;
    }
    qmgr_active_sync(msg);
    job_unlink_free(job);
    qmgr_sched_job_done(q, ok);
    qmgr_active_check(msg);
    qmgr_sched_run();
}

/* The request failed as a whole: log why, defer its recipients. */
static void job_fail(struct qmgr_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
job_fail(struct qmgr_job *job, const char *fmt, ...)
{
    str_t  *why = str_new(0);
    va_list ap;

    va_start(ap, fmt);
    str_append_vprintf(why, fmt, ap);
    va_end(ap);
    log_warn("%s: transport %s: %s", job->msg->id, job->queue->tr->name, str_cstr(why));
    job_finish(job, NULL, str_cstr(why));
    str_free(why);
}

static void job_event(int fd, int events, void *ctx);
static void job_send(struct qmgr_job *job, bool may_finish);
static int transport_connect(const struct qmgr_transport *tr);

/* A whole message arrived in job->in: act on it. */
static void
job_message(struct qmgr_job *job, attr_list_t *al)
{
    const char *proto = NULL;
    long long status = 0;

    if (job->state == JOB_GREETING) {
        if (attr_get_str(al, "protocol", &proto) != ATTR_OK
            || strcmp(proto, DELIVER_PROTOCOL) != 0) {
            job_fail(job, "protocol mismatch (not a delivery agent)");
            return;
        }
        job_send(job, true);
        return;
    }
    if (attr_get_int(al, "status", -1000000, 1000000, &status) != ATTR_OK) {
        job_fail(job, "malformed reply (no status)");
        return;
    }
    if (status != 0) {
        const char *reason = NULL;
        str_t  *why = str_new(0);

        (void) attr_get_str(al, "reason", &reason);
        str_printf(why, "delivery agent %s: %s", job->queue->tr->name,
                   reason && *reason ? reason : "request failed");
        job_finish(job, NULL, str_cstr(why));
        str_free(why);
        return;
    }
    job_finish(job, al, NULL);
}

/*
 * A kept connection ended before any byte of the reply: the agent closed it
 * while idle, before it could have read the request. Send the request again
 * over a new connection (once). When the agents' socket is only busy (its
 * backlog full), or during a stop, the recipients go back to their queue
 * for the next turn instead, and the job is gone. false when this is no
 * such case or no new connection could be made.
 */
static bool
job_retry_fresh(struct qmgr_job *job)
{
    int     fd;

    if (!job->reused || job->in_bytes > 0)
        return false;
    /* At a stop the agents are ending too: the request waits in active/. */
    if (qmgr.stopping || (fd = transport_connect(job->queue->tr)) < 0) {
        if (!qmgr.stopping && errno != EAGAIN)
            return false;
        qmgr_sched_job_requeue(job->queue, job->msg, job->rcpt, job->n);
        job_unlink_free(job);
        return true;
    }
    event_fd_del(server_loop(), job->fd);
    (void) close(job->fd);
    job->fd = fd;
    job->reused = false;
    job->out_off = 0;
    str_reset(job->in);
    job->state = JOB_GREETING;
    event_fd_add(server_loop(), fd, EVENT_READ, job_event, job);
    return true;
}

/*
 * Write the request; wait for writability only when the socket is full.
 * Unless may_finish (called from the event loop), a failure is left for the
 * loop to find again: the caller is the scheduler, which must not see the
 * job end under its feet.
 */
static void
job_send(struct qmgr_job *job, bool may_finish)
{
    job->state = JOB_SENDING;
    while (job->out_off < str_len(job->out)) {
        ssize_t n = send(job->fd, str_cstr(job->out) + job->out_off,
                         str_len(job->out) - job->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if ((n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) || (n <= 0 && !may_finish)) {
            event_fd_add(server_loop(), job->fd, EVENT_WRITE, job_event, job);
            return;
        }
        if (n <= 0) {
            if (!job_retry_fresh(job))
                job_fail(job, "lost connection while sending the request: %s",
                         n < 0 ? strerror(errno) : "no progress");
            return;
        }
        job->out_off += (size_t) n;
    }
    job->state = JOB_WAITING;
    event_fd_add(server_loop(), job->fd, EVENT_READ, job_event, job);
}

/* Readable or writable. */
static void
job_event(int fd, int events, void *ctx)
{
    struct qmgr_job *job = ctx;

    if (job->state == JOB_SENDING) {
        job_send(job, true);
        return;
    }

    char    buf[JOB_READ_CHUNK];
    ssize_t n;

    do
        n = read(fd, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        if (!job_retry_fresh(job))
            job_fail(job, "%s", n == 0 ? "delivery agent closed the connection without a reply"
                     : strerror(errno));
        return;
    }
    job->in_bytes += (size_t) n;
    str_append(job->in, buf, (size_t) n);

    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);
    size_t  used = 0;
    int     rc = attr_decode(str_cstr(job->in), str_len(job->in), &used, NULL, al, err);

    if (rc == ATTR_OK) {
        /* Drop the bytes of this message; a reply follows the greeting. */
        size_t  rest = str_len(job->in) - used;

        memmove(job->in->data, job->in->data + used, rest);
        str_truncate(job->in, rest);
        job_message(job, al);
    } else if (rc != ATTR_INCOMPLETE) {
        job_fail(job, "malformed reply: %s", str_cstr(err));
    }
    attr_list_free(al);
    str_free(err);
}

/*
 * A new connection to private/TRANSPORT, or -1 with errno (ENAMETOOLONG
 * for a name that cannot be a socket path, EAGAIN when the socket is only
 * busy).
 */
static int
transport_connect(const struct qmgr_transport *tr)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int     fd, n;

    n = snprintf(sun.sun_path, sizeof(sun.sun_path), "private/%s", tr->name);
    if (n < 0 || (size_t) n >= sizeof(sun.sun_path) || strchr(tr->name, '/')) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    while (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS)
            break;
        int     saved = errno;

        (void) close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/*
 * qmgr_deliver_start - open a request to q's transport for recipients
 * rcpt[0..n) of msg (which are in state BUSY), over a kept connection when
 * there is one. Returns 0 when the request is under way, or -1 when it
 * could not start: the recipients are back in their queue, and the
 * transport is marked dead unless the socket was only busy.
 */
int
qmgr_deliver_start(struct qmgr_queue *q, struct qmgr_message *msg, size_t *rcpt, size_t n)
{
    int     fd = pool_take(q->tr);
    bool    reused = fd >= 0;

    if (!reused && (fd = transport_connect(q->tr)) < 0) {
        int     saved = errno;

        qmgr_sched_requeue(q, msg, rcpt, n);
        if (saved == ENAMETOOLONG) {
            qmgr_sched_transport_dead(q->tr, "bad mail transport name");
            log_warn("transport name \"%s\" is not usable", q->tr->name);
        } else if (saved != EAGAIN) {
            log_warn("connect to transport private/%s: %s", q->tr->name, strerror(saved));
            qmgr_sched_transport_dead(q->tr, "mail transport unavailable");
        }
        return -1;
    }

    struct qmgr_job *job = mem_zalloc(sizeof(*job));

    job->queue = q;
    job->msg = msg;
    job->rcpt = mem_memdup(rcpt, n * sizeof(*rcpt));
    job->n = n;
    job->fd = fd;
    job->reused = reused;
    job->in = str_new(256);
    job->out = str_new(1024);
    job->deadline_ms = clock_mono_ms() + (int64_t) qmgr.daemon_timeout * 1000;
    build_request(job);
    job->next = jobs;
    if (jobs)
        jobs->prev = job;
    jobs = job;
    njobs++;
    if (reused) {
        job_send(job, false);
    } else {
        job->state = JOB_GREETING;
        event_fd_add(server_loop(), fd, EVENT_READ, job_event, job);
    }
    return 0;
}

/*
 * qmgr_deliver_stop - qmgr got SIGTERM: close the kept connections, and
 * give up the requests that no agent has seen (still waiting for the
 * greeting, or not yet written), so that what remains are requests whose
 * agents finish and reply before they exit. Their recipients stay in
 * active/ for the next start.
 */
void
qmgr_deliver_stop(void)
{
    pool_drop(NULL, INT64_MAX);
    for (struct qmgr_job *job = jobs, *next; job; job = next) {
        next = job->next;
        if (job->state == JOB_GREETING || (job->state == JOB_SENDING && job->out_off == 0)) {
            qmgr_sched_job_requeue(job->queue, job->msg, job->rcpt, job->n);
            job_unlink_free(job);
        }
    }
    qmgr_stop_if_idle();
}

/*
 * qmgr_deliver_tick - fail requests that took longer than daemon_timeout.
 */
void
qmgr_deliver_tick(void)
{
    int64_t now = clock_mono_ms();
    struct qmgr_job *job = jobs;

    pool_drop(NULL, now - DELIVER_POOL_IDLE_MS);

    while (job) {
        struct qmgr_job *next = job->next;

        if (now >= job->deadline_ms) {
            job_fail(job, "delivery agent did not reply in time");
            next = jobs;            /* job_finish may have changed the list */
        }
        job = next;
    }
}
