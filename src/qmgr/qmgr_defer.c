/*
 * qmgr_defer.c - what happens to a message after a delivery pass: the
 * per-message logs (bounce_proto.h format), requests to the bounce
 * service, removal, or deferred/ with back-off, expiry and delay warnings.
 *
 * Next attempt time: a deferred message's file gets the time of its next
 * attempt as its mtime (futimens), as Postfix does. The wait is the age of
 * the message, kept between minimal_backoff_time and maximal_backoff_time,
 * so it roughly doubles from one attempt to the next.
 *
 * Expiry: when a pass ends with deferred recipients and the message is
 * older than maximal_queue_lifetime (bounce_queue_lifetime for sender <>;
 * 0 = give up after the first attempt), those recipients are bounced with
 * their last deferral reason.
 *
 * Delay warning: at most once per message, when delay_warning_time is not
 * zero and the message is older than that, the bounce service is asked for
 * a "warn" notice. That it was sent is remembered in the queue file's mode:
 * the owner-execute bit (0700 instead of 0600), set with fchmod after the
 * bounce service accepted the request. The mode survives renames and
 * crashes and needs no extra record.
 *
 * Never lose a notice: a message whose bounce (or trace) log could not be
 * handed to the bounce service stays queued in deferred/, and the request
 * is repeated at its next attempt; the message file is removed only after
 * the service accepted it.
 *
 * Requests to the bounce service do not block the loop (ipc_call.h): while
 * one is under way, deliveries of other mail go on, and the message waits
 * in memory (counted against qmgr_message_active_limit) for the reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "bounce_log.h"
#include "bounce_proto.h"
#include "clock.h"
#include "ipc_call.h"
#include "log.h"
#include "mem.h"
#include "qmgr.h"
#include "queue.h"
#include "server.h"

#define QMGR_WARNED_BIT     S_IXUSR     /* delay warning sent */
#define BOUNCE_TIMEOUT_S    60          /* one bounce service request */

/*
 * qmgr_log_append - append one block about recipient i to log/ID (log is
 * QMGR_LOG_BOUNCE, _DEFER or _TRACE) through bounce_log_append(); sync:
 * fsync before returning. Returns 0, or -1 after a warning.
 */
int
qmgr_log_append(const char *log, struct qmgr_message *msg, size_t i, const char *action,
                const char *dsn, const char *reason, const char *relay, bool sync)
{
    const struct qfile_rcpt *r = &msg->qf.rcpts[i];
    struct bounce_log_entry e = {
        .recipient = r->address,
        .dsn_orcpt = r->orcpt,
        .dsn_notify = r->notify,
        .offset = (long long) r->offset,
        .status = (char *) dsn,
        .action = (char *) action,
        .reason = (char *) reason,
        .relay = (char *) relay,
        .time = (long long) clock_now(),
    };
    str_t  *err = str_new(0);
    int     rc;

    if ((rc = bounce_log_append(log, msg->id, &e, 1, sync, err)) != 0)
        log_warn("%s: %s log: %s", msg->id, log, str_cstr(err));
    str_free(err);
    return rc;
}

/*
 * qmgr_log_exists - true when log/ID exists.
 */
bool
qmgr_log_exists(const char *log, const char *id)
{
    str_t  *path = str_new(0);
    struct stat sb;
    bool    found;

    queue_path(path, log, id);
    found = lstat(str_cstr(path), &sb) == 0;
    str_free(path);
    return found;
}

/*
 * qmgr_log_remove - remove log/ID if it exists.
 */
void
qmgr_log_remove(const char *log, const char *id)
{
    str_t  *path = str_new(0);

    queue_path(path, log, id);
    if (unlink(str_cstr(path)) != 0 && errno != ENOENT)
        log_warn_errno("%s: remove %s", id, str_cstr(path));
    str_free(path);
}

/* What a bounce request says about msg (in active/). */
static attr_list_t *
bounce_request(const char *request, const struct qmgr_message *msg)
{
    attr_list_t *al = attr_list_new();
    const char *v;
    long    ret = 0;

    attr_put_str(al, "request", request);
    attr_put_str(al, "queue_name", QUEUE_ACTIVE);
    attr_put_str(al, "queue_id", msg->id);
    attr_put_str(al, "sender", msg->qf.sender);
    attr_put_str(al, "dsn_envid", (v = qfile_attr(&msg->qf, "dsn_envid")) ? v : "");
    if ((v = qfile_attr(&msg->qf, "dsn_ret")) != NULL && cstr_parse_long(v, &ret) != 0)
        ret = 0;
    attr_put_int(al, "dsn_ret", ret);
    return al;
}

/*
 * The bounce service's verdict on a reply (NULL: the call failed with
 * why): true when it accepted the request, else false with the reason in
 * out.
 */
static bool
bounce_accepted(attr_list_t *reply, const char *why, str_t *out)
{
    long long status = -1;
    const char *reason = NULL;

    if (reply == NULL) {
        str_set_cstr(out, why);
        return false;
    }
    if (attr_get_int(reply, "status", -1000000, 1000000, &status) != ATTR_OK) {
        str_set_cstr(out, "bounce service: malformed reply");
        return false;
    }
    if (status != 0) {
        (void) attr_get_str(reply, "reason", &reason);
        str_printf(out, "bounce service: %s", reason ? reason : "request failed");
        return false;
    }
    return true;                    /* the bounce service logs the notice's queue id */
}

/*
 * Send request about msg to the bounce service without blocking the loop:
 * done(msg, reply, why) follows from the loop, or at once with reply NULL
 * when the service cannot be reached. msg stays in memory (and counts
 * against the active limit) until then.
 */
static void
bounce_call(const char *request, struct qmgr_message *msg, ipc_call_fn done)
{
    attr_list_t *al = bounce_request(request, msg);
    str_t  *why = str_new(0);

    qmgr.bounce_calls++;
    if (ipc_call_start(server_loop(), "private", BOUNCE_SERVICE, BOUNCE_PROTOCOL, al,
                       BOUNCE_TIMEOUT_S, done, msg, why) == NULL)
        done(msg, NULL, str_cstr(why));
    attr_list_free(al);
    str_free(why);
}

/* The first thing each bounce_call() callback does. */
static void
bounce_call_over(void)
{
    qmgr.bounce_calls--;
    qmgr_stop_if_idle();
}

/*
 * qmgr_defer_expired - true when msg has been queued too long.
 */
bool
qmgr_defer_expired(const struct qmgr_message *msg)
{
    long    life = *msg->qf.sender ? qmgr.max_lifetime : qmgr.bounce_lifetime;

    return clock_now() - msg->qf.arrival_sec >= life;
}

/* Bounce every recipient deferred in this pass ("message too old"). */
static void
expire(struct qmgr_message *msg)
{
    bool    any = false;

    for (size_t i = 0; i < msg->qf.rcpt_count; i++) {
        struct qmgr_rcpt_state *rs = &msg->rs[i];
        char    dsn[20];
        str_t  *reason;

        if (rs->state != QMGR_R_DEFERRED)
            continue;
        /* 4.X.Y -> 5.X.Y: the same problem, now final. */
        if (snprintf(dsn, sizeof(dsn), "5%s", rs->dsn && rs->dsn[0] ? rs->dsn + 1 : ".4.7")
            >= (int) sizeof(dsn))
            memcpy(dsn, "5.4.7", 6);
        reason = str_new(0);
        str_printf(reason, "message delayed too long: %s",
                   rs->reason ? rs->reason : "delivery was not possible");
        if (qmgr_log_append(QMGR_LOG_BOUNCE, msg, i, "failed", dsn, str_cstr(reason), "none",
                            true) == 0) {
            int     fd = qmgr_active_open(msg);

            msg->bounce_log = true;
            rs->state = QMGR_R_DONE;
            any = true;
            if (fd >= 0) {
                if (qfile_mark_done(fd, msg->qf.rcpts[i].offset, false) != 0)
                    log_warn_errno("%s: cannot mark <%s> done", msg->id, msg->qf.rcpts[i].address);
                else
                    msg->dirty = true;
                (void) close(fd);
            }
        }
        str_free(reason);
    }
    if (any)
        log_info("%s: from=<%s>, status=expired, returned to sender", msg->id, msg->qf.sender);
    qmgr_active_sync(msg);
}

/* Seconds until the next attempt. */
static long
backoff(const struct qmgr_message *msg)
{
    long    age = (long) (clock_now() - msg->qf.arrival_sec);

    if (age < qmgr.min_backoff)
        age = qmgr.min_backoff;
    if (age > qmgr.max_backoff)
        age = qmgr.max_backoff;
    return age;
}

/* Set msg's next attempt time, move it to deferred/, and free it. */
static void
park(struct qmgr_message *msg)
{
    int     fd = qmgr_active_open(msg);

    if (fd >= 0) {
        struct timespec ts[2];

        ts[0].tv_sec = clock_now();
        ts[0].tv_nsec = 0;
        ts[1].tv_sec = clock_now() + backoff(msg);
        ts[1].tv_nsec = 0;
        if (futimens(fd, ts) != 0)
            log_warn_errno("%s: set next attempt time", msg->id);
        (void) close(fd);
    }
    if (queue_move(QUEUE_ACTIVE, QUEUE_DEFERRED, msg->id) != 0)
        log_warn_errno("%s: move to deferred/", msg->id);
    qmgr_active_free(msg);
}

/* The bounce service answered the delay warning request: remember it, then park. */
static void
warn_done(void *ctx, attr_list_t *reply, const char *why)
{
    struct qmgr_message *msg = ctx;
    str_t  *reason = str_new(0);
    struct stat sb;
    int     fd;

    bounce_call_over();
    if (!bounce_accepted(reply, why, reason)) {
        log_warn("%s: delay warning not sent: %s; trying again later", msg->id, str_cstr(reason));
    } else if ((fd = qmgr_active_open(msg)) >= 0) {
        if (fstat(fd, &sb) != 0 || fchmod(fd, (sb.st_mode & 07777) | QMGR_WARNED_BIT) != 0)
            log_warn_errno("%s: fchmod (delay warning sent)", msg->id);
        (void) close(fd);
    }
    str_free(reason);
    park(msg);
}

/* Is a delay warning due for msg (at most once per message)? */
static bool
warning_due(struct qmgr_message *msg)
{
    struct stat sb;
    int     fd;
    bool    due;

    if (qmgr.warn_time <= 0 || *msg->qf.sender == 0
        || clock_now() - msg->qf.arrival_sec < qmgr.warn_time)
        return false;
    if ((fd = qmgr_active_open(msg)) < 0)
        return false;
    due = fstat(fd, &sb) == 0 && !(sb.st_mode & QMGR_WARNED_BIT);
    (void) close(fd);
    return due && qmgr_log_exists(QMGR_LOG_DEFER, msg->id);
}

/* Park msg in deferred/ until its next attempt, after a delay warning when one is due. */
static void
to_deferred(struct qmgr_message *msg, bool warn)
{
    if (warn && warning_due(msg))
        bounce_call(BOUNCE_REQ_WARN, msg, warn_done);
    else
        park(msg);
}

/*
 * The end of a message whose recipients are all done, in steps: the
 * non-delivery notice (bounce/ID), the delivery status notice (trace/ID),
 * each handed to the bounce service when there is a log, then removal.
 * msg->finish_step says where it is; a failed request parks the message
 * in deferred/, to be tried again at its next attempt.
 */
enum {
    FINISH_BOUNCE,
    FINISH_TRACE,
    FINISH_REMOVE,
};

static void finish_next(struct qmgr_message *msg);

static void
finish_done(void *ctx, attr_list_t *reply, const char *why)
{
    struct qmgr_message *msg = ctx;
    str_t  *reason = str_new(0);

    bounce_call_over();
    if (!bounce_accepted(reply, why, reason)) {
        log_warn("%s: %s notice not sent: %s; trying again later", msg->id,
                 msg->finish_step == FINISH_BOUNCE ? "non-delivery" : "delivery status",
                 str_cstr(reason));
        str_free(reason);
        to_deferred(msg, false);
        return;
    }
    str_free(reason);
    msg->finish_step++;
    finish_next(msg);
}

static void
finish_next(struct qmgr_message *msg)
{
    str_t  *path;

    if (msg->finish_step == FINISH_BOUNCE) {
        if (msg->bounce_log || (!msg->first_pass && qmgr_log_exists(QMGR_LOG_BOUNCE, msg->id))) {
            bounce_call(BOUNCE_REQ_FLUSH, msg, finish_done);
            return;
        }
        msg->finish_step = FINISH_TRACE;
    }
    if (msg->finish_step == FINISH_TRACE) {
        if (msg->trace_log || (!msg->first_pass && qmgr_log_exists(QMGR_LOG_TRACE, msg->id))) {
            bounce_call(BOUNCE_REQ_TRACE, msg, finish_done);
            return;
        }
        msg->finish_step = FINISH_REMOVE;
    }
    if (!msg->first_pass || msg->defer_log)
        qmgr_log_remove(QMGR_LOG_DEFER, msg->id);
    path = str_new(0);
    queue_path(path, QUEUE_ACTIVE, msg->id);
    /* Kept as a spare file for cleanup's next message when there is room (queue.h). */
    if (queue_spare_put(str_cstr(path)) != 0)
        log_warn_errno("%s: remove %s", msg->id, str_cstr(path));
    else
        log_info("%s: removed", msg->id);
    str_free(path);
    qmgr_active_free(msg);
}

/*
 * qmgr_defer_finish - the pass over msg is over (no recipient waits). Frees
 * msg, at once or when the bounce service has answered: the file is removed
 * when every recipient is done and every notice was handed to the bounce
 * service; otherwise it goes to deferred/.
 */
void
qmgr_defer_finish(struct qmgr_message *msg)
{
    size_t  deferred;

    if (msg->finishing)
        return;                     /* already on its way out (a bounce request is under way) */
    msg->finishing = true;
    qmgr_active_sync(msg);
    deferred = qmgr_active_count(msg, QMGR_R_DEFERRED);
    if (deferred > 0 && qmgr_defer_expired(msg)) {
        expire(msg);
        deferred = qmgr_active_count(msg, QMGR_R_DEFERRED);
    }
    if (deferred > 0) {
        to_deferred(msg, true);
        return;
    }

    /* Every recipient is done: notices first, then removal. */
    msg->finish_step = FINISH_BOUNCE;
    finish_next(msg);
}
