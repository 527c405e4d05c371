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
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "qmgr.h"
#include "queue.h"

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

/*
 * qmgr_bounce_request - one request to the bounce service about msg (in
 * active/). Returns 0 when the service accepted it, -1 with why.
 */
int
qmgr_bounce_request(const char *request, struct qmgr_message *msg, str_t *why)
{
    stream_t *st = ipc_connect(NULL, "private", BOUNCE_SERVICE, BOUNCE_PROTOCOL,
                               BOUNCE_TIMEOUT_S, why);
    attr_list_t *al;
    const char *v;
    long long status = -1;
    int     rc = -1;

    if (st == NULL)
        return -1;
    al = attr_list_new();
    attr_put_str(al, "request", request);
    attr_put_str(al, "queue_name", QUEUE_ACTIVE);
    attr_put_str(al, "queue_id", msg->id);
    attr_put_str(al, "sender", msg->qf.sender);
    attr_put_str(al, "dsn_envid", (v = qfile_attr(&msg->qf, "dsn_envid")) ? v : "");
    {
        long    ret = 0;

        if ((v = qfile_attr(&msg->qf, "dsn_ret")) != NULL && cstr_parse_long(v, &ret) != 0)
            ret = 0;
        attr_put_int(al, "dsn_ret", ret);
    }
    if (attr_write(st, al) != ATTR_OK) {
        str_printf(why, "bounce service: write: %s", stream_strstatus(stream_status(st)));
    } else if (attr_read(st, NULL, al, why) != ATTR_OK) {
        if (str_len(why) == 0)
            str_set_cstr(why, "bounce service: no reply");
    } else if (attr_get_int(al, "status", -1000000, 1000000, &status) != ATTR_OK) {
        str_set_cstr(why, "bounce service: malformed reply");
    } else if (status != 0) {
        const char *reason = NULL;

        (void) attr_get_str(al, "reason", &reason);
        str_printf(why, "bounce service: %s", reason ? reason : "request failed");
    } else {
        const char *nid = NULL;

        (void) attr_get_str(al, "queue_id", &nid);     /* the bounce service logs it */
        rc = 0;
    }
    attr_list_free(al);
    stream_close(st);
    return rc;
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

/* Delay warning, once. fd is the open queue file. */
static void
maybe_warn(struct qmgr_message *msg, int fd)
{
    struct stat sb;
    str_t  *why;

    if (qmgr.warn_time <= 0 || *msg->qf.sender == 0
        || clock_now() - msg->qf.arrival_sec < qmgr.warn_time)
        return;
    if (fstat(fd, &sb) != 0 || (sb.st_mode & QMGR_WARNED_BIT))
        return;
    if (!qmgr_log_exists(QMGR_LOG_DEFER, msg->id))
        return;
    why = str_new(0);
    if (qmgr_bounce_request(BOUNCE_REQ_WARN, msg, why) != 0)
        log_warn("%s: delay warning not sent: %s; trying again later", msg->id, str_cstr(why));
    else if (fchmod(fd, (sb.st_mode & 07777) | QMGR_WARNED_BIT) != 0)
        log_warn_errno("%s: fchmod (delay warning sent)", msg->id);
    str_free(why);
}

/* Park msg in deferred/ until its next attempt time, and free it. */
static void
to_deferred(struct qmgr_message *msg, bool warn)
{
    int     fd = qmgr_active_open(msg);

    if (fd >= 0) {
        struct timespec ts[2];

        if (warn)
            maybe_warn(msg, fd);
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

/*
 * qmgr_defer_finish - the pass over msg is over (no recipient waits). Frees
 * msg: the file is removed when every recipient is done and every notice
 * was handed to the bounce service; otherwise it goes to deferred/.
 */
void
qmgr_defer_finish(struct qmgr_message *msg)
{
    size_t  deferred;
    str_t  *why;
    str_t  *path;

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
    why = str_new(0);
    if ((msg->bounce_log || (!msg->first_pass && qmgr_log_exists(QMGR_LOG_BOUNCE, msg->id)))
        && qmgr_bounce_request(BOUNCE_REQ_FLUSH, msg, why) != 0) {
        log_warn("%s: non-delivery notice not sent: %s; trying again later", msg->id,
                 str_cstr(why));
        str_free(why);
        to_deferred(msg, false);
        return;
    }
    str_reset(why);
    if ((msg->trace_log || (!msg->first_pass && qmgr_log_exists(QMGR_LOG_TRACE, msg->id)))
        && qmgr_bounce_request(BOUNCE_REQ_TRACE, msg, why) != 0) {
        log_warn("%s: delivery status notice not sent: %s; trying again later", msg->id,
                 str_cstr(why));
        str_free(why);
        to_deferred(msg, false);
        return;
    }
    str_free(why);
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
