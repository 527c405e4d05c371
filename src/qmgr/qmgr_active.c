/*
 * qmgr_active.c - the active queue: bringing messages in, recording
 * delivery results in the queue file, and handing finished messages on.
 *
 * A message enters memory from incoming/ or deferred/ by rename(2) into
 * active/ (or, after a crash, is found there at start). Its file is read
 * with the strict reader; a file that fails the check is moved to corrupt/
 * with a warning and never deleted. Each recipient that is not yet done is
 * resolved through trivial-rewrite (cached per message) and queued for its
 * transport and next hop.
 *
 * Results: "sent" marks the R record done in place (one fdatasync per agent
 * reply), after a trace block when the recipient asked for NOTIFY=SUCCESS;
 * "bounced" appends a block to bounce/ID, syncs it, and only then marks the
 * recipient done, so a crash can repeat a bounce block but never lose one;
 * "deferred" appends to defer/ID and keeps the recipient for the next pass.
 * When no recipient of the pass is waiting any more, qmgr_defer_finish()
 * decides between removal and deferred/.
 *
 * Trust: queue files were written by cleanup but are checked anyway by the
 * reader; queue IDs from directory listings pass queue_id_ok() in
 * queue_walk().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "deliver_proto.h"
#include "log.h"
#include "mem.h"
#include "qmgr.h"
#include "queue.h"
#include "rec_type.h"
#include "rewrite_clnt.h"
#include "server.h"

/*
 * qmgr_active_full - true when no further message may enter memory.
 */
bool
qmgr_active_full(void)
{
    return qmgr.nmsg >= (size_t) qmgr.active_limit || qmgr.nrcpt >= (size_t) qmgr.rcpt_limit;
}

/*
 * qmgr_active_free - release a message's memory and unlink it from the
 * in-memory list (its file stays where qmgr_defer_finish() put it).
 */
void
qmgr_active_free(struct qmgr_message *msg)
{
    if (msg->prev)
        msg->prev->next = msg->next;
    else
        qmgr.msgs = msg->next;
    if (msg->next)
        msg->next->prev = msg->prev;
    qmgr.nmsg--;
    qmgr.nrcpt -= msg->nmem;
    for (size_t i = 0; i < msg->qf.rcpt_count && msg->rs; i++) {
        mem_free(msg->rs[i].address);
        mem_free(msg->rs[i].dsn);
        mem_free(msg->rs[i].reason);
    }
    mem_free(msg->rs);
    qfile_free(&msg->qf);
    mem_free(msg->id);
    mem_free(msg);
}

/*
 * qmgr_active_open - open active/ID read-write for done marks, fchmod and
 * futimens. Returns the descriptor, or -1 after a warning.
 */
int
qmgr_active_open(const struct qmgr_message *msg)
{
    str_t  *path = str_new(0);
    int     fd;

    queue_path(path, QUEUE_ACTIVE, msg->id);
    if ((fd = open(str_cstr(path), O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0)
        log_warn_errno("%s: open %s", msg->id, str_cstr(path));
    str_free(path);
    return fd;
}

/* Mark recipient i done in the file (synced later by qmgr_active_sync). */
static void
mark_done(struct qmgr_message *msg, size_t i)
{
    int     fd = qmgr_active_open(msg);

    if (fd < 0)
        return;
    if (qfile_mark_done(fd, msg->qf.rcpts[i].offset, false) != 0)
        log_warn_errno("%s: cannot mark recipient <%s> done", msg->id, msg->qf.rcpts[i].address);
    else
        msg->dirty = true;
    if (close(fd) != 0)
        log_warn_errno("%s: close", msg->id);
}

/*
 * qmgr_active_sync - make the done marks of the last reply durable (one
 * fdatasync for all of them).
 *
 * Not when every recipient is done: the file is about to be removed
 * (qmgr_active_check), and the marks are already in the page cache, where
 * a crash of any process, qmgr included, still finds them. Only a power
 * loss before the removal reaches the disk could deliver such a message
 * again, the trade-off Postfix makes for every message; a sync here cost
 * one device flush per message and protected against duplicates only,
 * never against loss. A message with recipients left keeps its marks
 * synced, so that a later pass never repeats a delivery that was done.
 */
size_t
qmgr_active_count(const struct qmgr_message *msg, enum qmgr_rstate state)
{
    size_t  n = 0;

    for (size_t i = 0; i < msg->qf.rcpt_count; i++)
        n += msg->rs[i].state == state;
    return n;
}

void
qmgr_active_sync(struct qmgr_message *msg)
{
    int     fd;

    if (!msg->dirty)
        return;
    msg->dirty = false;
    if (qmgr_active_count(msg, QMGR_R_DONE) == msg->qf.rcpt_count)
        return;
    if ((fd = qmgr_active_open(msg)) < 0)
        return;
    if (fdatasync(fd) != 0)
        log_warn_errno("%s: fdatasync", msg->id);
    (void) close(fd);
}

static void
set_deferred(struct qmgr_message *msg, size_t i, const char *dsn, const char *reason)
{
    struct qmgr_rcpt_state *rs = &msg->rs[i];

    rs->state = QMGR_R_DEFERRED;
    mem_free(rs->dsn);
    mem_free(rs->reason);
    rs->dsn = mem_strdup(dsn);
    rs->reason = mem_strdup(reason);
}

/* True when dsn looks like an enhanced status code of the given class. */
static bool
dsn_class_ok(const char *dsn, char cls)
{
    return dsn && dsn[0] == cls && dsn[1] == '.' && strlen(dsn) <= 16
        && strspn(dsn, "0123456789.") == strlen(dsn);
}

/*
 * qmgr_active_result - record one recipient's result of this pass. The
 * recipient must be waiting (queued or busy). Does not finish the message:
 * callers call qmgr_active_sync() and qmgr_active_check() afterwards.
 */
void
qmgr_active_result(struct qmgr_message *msg, size_t i, const char *result,
                   const char *dsn, const char *reason, const char *relay)
{
    struct qmgr_rcpt_state *rs = &msg->rs[i];
    const struct qfile_rcpt *r = &msg->qf.rcpts[i];

    if (rs->state != QMGR_R_QUEUED && rs->state != QMGR_R_BUSY)
        log_panic("%s: result for recipient %zu that is not waiting", msg->id, i);
    if (reason == NULL || *reason == 0)
        reason = "no reason given";
    if (relay == NULL || *relay == 0)
        relay = "none";
    msg->pending--;

    if (result && strcmp(result, DELIVER_RESULT_SENT) == 0) {
        if (r->notify & DSN_NOTIFY_SUCCESS) {
            if (qmgr_log_append(QMGR_LOG_TRACE, msg, i, "delivered",
                                dsn_class_ok(dsn, '2') ? dsn : "2.0.0", reason, relay, true) == 0)
                msg->trace_log = true;
        }
        rs->state = QMGR_R_DONE;
        mark_done(msg, i);
        return;
    }
    if (result && strcmp(result, DELIVER_RESULT_BOUNCE) == 0) {
        if (!dsn_class_ok(dsn, '5'))
            dsn = "5.0.0";
        if (qmgr_log_append(QMGR_LOG_BOUNCE, msg, i, "failed", dsn, reason, relay, true) != 0) {
            /* Without the log there would be no notice: keep the recipient. */
            set_deferred(msg, i, "4.3.0", "cannot write the bounce log");
            return;
        }
        msg->bounce_log = true;
        rs->state = QMGR_R_DONE;
        mark_done(msg, i);
        return;
    }
    if (result == NULL || strcmp(result, DELIVER_RESULT_DEFER) != 0) {
        log_warn("%s: unknown delivery result for <%s>: treated as a deferral", msg->id,
                 r->address);
        dsn = "4.3.0";
        reason = "unknown result from the delivery agent";
    }
    if (!dsn_class_ok(dsn, '4'))
        dsn = "4.0.0";
    msg->defer_log = true;          /* even a failed append may leave a part */
    (void) qmgr_log_append(QMGR_LOG_DEFER, msg, i, "delayed", dsn, reason, relay, false);
    set_deferred(msg, i, dsn, reason);
}

/*
 * qmgr_active_check - when no recipient of msg is waiting any more, hand
 * the message to qmgr_defer_finish(), which frees it (perhaps later, from
 * the loop). The caller must not use msg afterwards.
 */
void
qmgr_active_check(struct qmgr_message *msg)
{
    if (msg->pending == 0)
        qmgr_defer_finish(msg);
}

/* A file that the reader rejects: keep it for the admin in corrupt/. */
static void
to_corrupt(const char *id, const char *why)
{
    if (queue_move(QUEUE_ACTIVE, QUEUE_CORRUPT, id) != 0)
        log_warn_errno("%s: corrupt queue file (%s) and cannot move it to corrupt/", id, why);
    else
        log_warn("%s: corrupt queue file, moved to corrupt/: %s", id, why);
}

/* Per-message resolve cache entry. */
struct resolved {
    int     flags;
    char   *transport, *nexthop, *recipient;
};

static void
resolved_free(void *p)
{
    struct resolved *r = p;

    mem_free(r->transport);
    mem_free(r->nexthop);
    mem_free(r->recipient);
    mem_free(r);
}

/*
 * Resolve every waiting recipient and queue it. A resolver failure defers
 * the whole message; a malformed address bounces that recipient.
 */
static void
resolve_and_queue(struct qmgr_message *msg)
{
    htable_t *cache = htable_new(msg->pending);
    struct resolve_reply rr;
    struct resolved **res = mem_array(msg->qf.rcpt_count, sizeof(*res));
    bool    failed = false;

    resolve_reply_init(&rr);
    for (size_t i = 0; i < msg->qf.rcpt_count && !failed; i++) {
        const char *addr = msg->qf.rcpts[i].address;
        struct resolved *r;

        if (msg->rs[i].state != QMGR_R_QUEUED)
            continue;
        if ((r = htable_find(cache, addr)) == NULL) {
            int     flags = resolve_clnt(msg->qf.sender, addr, &rr);

            if (flags & RESOLVE_FLAG_FAIL) {
                failed = true;
                break;
            }
            r = mem_zalloc(sizeof(*r));
            r->flags = flags;
            r->transport = mem_strdup(str_cstr(rr.transport));
            r->nexthop = mem_strdup(str_cstr(rr.nexthop));
            r->recipient = mem_strdup(str_cstr(rr.recipient));
            htable_insert(cache, addr, r);
        }
        res[i] = r;
    }
    resolve_reply_free(&rr);

    for (size_t i = 0; i < msg->qf.rcpt_count; i++) {
        if (msg->rs[i].state != QMGR_R_QUEUED)
            continue;
        if (failed) {
            qmgr_active_result(msg, i, DELIVER_RESULT_DEFER, "4.3.0",
                               "address resolver failure", "none");
        } else if ((res[i]->flags & RESOLVE_FLAG_ERROR) || *res[i]->transport == 0) {
            qmgr_active_result(msg, i, DELIVER_RESULT_BOUNCE, "5.1.3",
                               "bad address syntax", "none");
        } else {
            msg->rs[i].address = mem_strdup(res[i]->recipient);
            qmgr_sched_enqueue(msg, i, res[i]->transport, res[i]->nexthop);
        }
    }
    if (failed)
        log_warn("%s: address resolver failure; message deferred", msg->id);
    mem_free(res);
    htable_free(cache, resolved_free);
    qmgr_active_sync(msg);
}

/*
 * Bring active/ID into memory. The file is already in active/; first_pass:
 * it came from incoming/, so no per-message log of it can exist yet.
 */
static void
admit(const char *id, bool first_pass)
{
    struct qmgr_message *msg = mem_zalloc(sizeof(*msg));
    str_t  *path = str_new(0);
    str_t  *err = str_new(0);
    int     rc;

    msg->id = mem_strdup(id);
    msg->fd = -1;
    msg->first_pass = first_pass;
    queue_path(path, QUEUE_ACTIVE, id);
    if ((msg->fd = open(str_cstr(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        if (errno != ENOENT)
            log_warn_errno("%s: open %s", id, str_cstr(path));
        goto drop;
    }
    rc = qfile_read(msg->fd, id, QFILE_FLAG_QUEUE, &msg->qf, err);
    (void) close(msg->fd);
    msg->fd = -1;
    if (rc == QFILE_BAD) {
        to_corrupt(id, str_cstr(err));
        goto drop;
    }
    if (rc != QFILE_DONE) {
        /* A read error: leave it where a later pass (or restart) finds it. */
        log_warn("%s: cannot read queue file: %s; retried later", id, str_cstr(err));
        if (queue_move(QUEUE_ACTIVE, QUEUE_DEFERRED, id) != 0)
            log_warn_errno("%s: move to deferred/", id);
        goto drop;
    }
    msg->active_time = clock_now();
    msg->rs = mem_array(msg->qf.rcpt_count ? msg->qf.rcpt_count : 1, sizeof(*msg->rs));
    for (size_t i = 0; i < msg->qf.rcpt_count; i++) {
        msg->rs[i].state = msg->qf.rcpts[i].done ? QMGR_R_DONE : QMGR_R_QUEUED;
        if (!msg->qf.rcpts[i].done)
            msg->pending++;
    }
    msg->nmem = msg->pending;
    msg->next = qmgr.msgs;
    if (qmgr.msgs)
        qmgr.msgs->prev = msg;
    qmgr.msgs = msg;
    qmgr.nmsg++;
    qmgr.nrcpt += msg->nmem;
    log_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)", id, msg->qf.sender,
             msg->qf.message_size, msg->qf.rcpt_count);
    str_free(path);
    str_free(err);
    if (msg->pending > 0)
        resolve_and_queue(msg);
    qmgr_active_check(msg);
    return;

  drop:
    qfile_free(&msg->qf);
    mem_free(msg->id);
    mem_free(msg);
    str_free(path);
    str_free(err);
}

/*
 * A scan of incoming/ or deferred/: the IDs that were due when the
 * directory was listed, taken a few at a time (QMGR_SCAN_STEP) with the
 * event loop in between. Reading a queue file and moving it costs file
 * system calls that wait for directory locks, so a scan of a busy incoming/
 * done in one go kept qmgr from the agents' replies (and from handing out
 * more work) for as long as it lasted, while the agents sat idle.
 */
#define QMGR_SCAN_STEP 4

struct scan {
    const char *queue_name;
    bool    flush;                  /* deferred: regardless of the next-attempt time */
    time_t  now;                    /* when listed: what is due */
    char  **ids;
    size_t  n, pos, cap;
    bool    busy;                   /* a list is being worked through */
    bool    again, again_flush;     /* asked for meanwhile: list the directory anew after */
};

static struct scan scan_incoming = {.queue_name = QUEUE_INCOMING};
static struct scan scan_deferred = {.queue_name = QUEUE_DEFERRED};

static void
collect(const char *queue_name, const char *id, void *ctx)
{
    struct scan *sc = ctx;

    if (strcmp(queue_name, QUEUE_DEFERRED) == 0 && !sc->flush) {
        str_t  *path = str_new(0);
        struct stat sb;
        bool    due;

        queue_path(path, queue_name, id);
        due = stat(str_cstr(path), &sb) == 0 && sb.st_mtime <= sc->now;
        str_free(path);
        if (!due)
            return;
    }
    sc->ids = mem_grow_array(sc->ids, &sc->cap, sc->n + 1, sizeof(*sc->ids));
    sc->ids[sc->n++] = mem_strdup(id);
}

/* Oldest first: queue IDs sort by arrival time. */
static int
cmp_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
scan_clear(struct scan *sc)
{
    for (size_t j = 0; j < sc->n; j++)
        mem_free(sc->ids[j]);
    mem_free(sc->ids);
    sc->ids = NULL;
    sc->n = sc->pos = sc->cap = 0;
    sc->busy = false;
}

static void scan_step(void *ctx);

static void
scan_list(struct scan *sc, bool flush)
{
    sc->flush = flush;
    sc->now = clock_now();
    sc->busy = true;
    if (queue_walk(sc->queue_name, collect, sc) < 0 && errno != ENOENT)
        log_warn_errno("scan %s", sc->queue_name);
    if (sc->n > 1)
        qsort(sc->ids, sc->n, sizeof(*sc->ids), cmp_ids);
}

/* Take the next few files of the list; come back after the next events. */
static void
scan_step(void *ctx)
{
    struct scan *sc = ctx;
    bool    incoming = sc == &scan_incoming;

    for (int k = 0; k < QMGR_SCAN_STEP && sc->pos < sc->n; k++) {
        const char *id = sc->ids[sc->pos];

        if (qmgr_active_full()) {
            /* No room: the tick resumes with a new listing once there is. */
            if (incoming)
                qmgr.scan_incoming = true;
            else {
                qmgr.scan_deferred = true;
                qmgr.flush_deferred = sc->flush || sc->again_flush;
            }
            sc->again = sc->again_flush = false;
            scan_clear(sc);
            return;
        }
        sc->pos++;
        if (queue_move(sc->queue_name, QUEUE_ACTIVE, id) != 0) {
            if (errno != ENOENT)
                log_warn_errno("%s: move %s to active", id, sc->queue_name);
            continue;
        }
        admit(id, incoming);
        qmgr_sched_run();
    }
    if (sc->pos < sc->n) {
        event_timer_add(server_loop(), 0, scan_step, sc);
        return;
    }
    scan_clear(sc);
    if (sc->again) {
        bool    flush = sc->again_flush;

        sc->again = sc->again_flush = false;
        scan_list(sc, flush);
        event_timer_add(server_loop(), 0, scan_step, sc);
    }
}

/*
 * qmgr_active_scan - bring what is due in queue_name (incoming or
 * deferred; flush: deferred mail regardless of its next-attempt time) into
 * active/, oldest first, while there is room: a few files now, the rest
 * between the next events. Asked again while a scan is under way, it lists
 * the directory anew when that one is done. When the limits stop the scan,
 * it is marked to be resumed.
 */
void
qmgr_active_scan(const char *queue_name, bool flush)
{
    struct scan *sc = strcmp(queue_name, QUEUE_INCOMING) == 0 ? &scan_incoming : &scan_deferred;

    if (sc == &scan_incoming)
        qmgr.scan_incoming = false;
    else
        qmgr.scan_deferred = qmgr.flush_deferred = false;
    if (sc->busy) {
        sc->again = true;
        sc->again_flush |= flush;
        return;
    }
    scan_list(sc, flush);
    scan_step(sc);
}

/* Recovery: collect active/ IDs (admit may not run inside the walk). */
static void
collect_all(const char *queue_name, const char *id, void *ctx)
{
    struct scan *sc = ctx;

    sc->ids = mem_grow_array(sc->ids, &sc->cap, sc->n + 1, sizeof(*sc->ids));
    sc->ids[sc->n++] = mem_strdup(id);
}

/*
 * qmgr_active_recover - at start, everything in active/ was left by a
 * crash or a stop: read it again. Done recipients stay done. Files beyond
 * the memory limits go back to incoming/ for a later scan.
 */
void
qmgr_active_recover(void)
{
    struct scan sc = {.queue_name = QUEUE_ACTIVE};

    (void) queue_walk(QUEUE_ACTIVE, collect_all, &sc);
    if (sc.n > 1)
        qsort(sc.ids, sc.n, sizeof(*sc.ids), cmp_ids);
    for (size_t i = 0; i < sc.n; i++) {
        if (qmgr_active_full()) {
            if (queue_move(QUEUE_ACTIVE, QUEUE_INCOMING, sc.ids[i]) != 0)
                log_warn_errno("%s: move active to incoming", sc.ids[i]);
            qmgr.scan_incoming = true;
        } else {
            admit(sc.ids[i], false);
            qmgr_sched_run();
        }
        mem_free(sc.ids[i]);
    }
    mem_free(sc.ids);
}
