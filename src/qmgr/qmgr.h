/*
 * qmgr.h - the queue manager's shared types and the functions its files
 * export to each other.
 *
 * Files:
 *   qmgr_main.c     the event-server skeleton, wake-ups, the periodic tick
 *   qmgr_active.c   incoming/deferred/active -> memory: move, read, resolve;
 *                   recording results in the queue file; finishing messages
 *   qmgr_sched.c    transports, destinations (queues), concurrency windows,
 *                   round-robin selection of the next delivery
 *   qmgr_deliver.c  the non-blocking client of deliver_proto.h
 *   qmgr_defer.c    per-message logs, bounce service requests, back-off,
 *                   expiry, delay warnings, the deferred-queue scan
 *
 * Memory: only messages in active/ are held, at most
 * qmgr_message_active_limit of them and about qmgr_message_recipient_limit
 * recipients (a message is admitted while the count is below the limit, so
 * one big message may go over it once).
 */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "htable.h"
#include "qfile.h"
#include "str.h"

/* Per-recipient state during one pass through active/. */
enum qmgr_rstate {
    QMGR_R_DONE = 0,            /* D record, or a final result this pass */
    QMGR_R_QUEUED,              /* waiting in a destination queue */
    QMGR_R_BUSY,                /* in a delivery request */
    QMGR_R_DEFERRED,            /* temporary failure this pass */
};

struct qmgr_rcpt_state {
    enum qmgr_rstate state;
    char   *address;            /* resolved recipient (NULL when done) */
    char   *dsn;                /* last deferral: status and reason */
    char   *reason;
};

struct qmgr_message {
    char   *id;
    int     fd;                 /* active/ID, read-write, for done marks */
    struct qfile qf;
    int64_t active_time;        /* seconds, when it entered active/ */
    size_t  pending;            /* recipients without a result this pass */
    size_t  nmem;               /* recipients counted against the limit */
    struct qmgr_rcpt_state *rs; /* qf.rcpt_count entries */
    bool    bounce_log;         /* this pass wrote to bounce/ID */
    bool    trace_log;          /* this pass wrote to trace/ID */
    bool    defer_log;          /* this pass wrote to defer/ID */
    bool    dirty;              /* done marks not yet synced */
    bool    first_pass;         /* came from incoming/: no older logs exist */
    bool    finishing;          /* qmgr_defer_finish() has it: no recipient is waiting */
    int     finish_step;        /* qmgr_defer.c: notices sent at the end of a pass */
    struct qmgr_message *next, *prev;
};

struct qmgr_queue;

/* One waiting recipient in a destination queue. */
struct qmgr_entry {
    struct qmgr_message *msg;
    size_t  rcpt;
    struct qmgr_entry *next;
};

struct qmgr_transport {
    char   *name;
    long    dest_limit;         /* <t>_destination_concurrency_limit */
    long    rcpt_limit;         /* <t>_destination_recipient_limit */
    long    initial;            /* <t>_initial_destination_concurrency */
    long    rate_delay;         /* <t>_destination_rate_delay, seconds */
    long    maxproc;            /* master.cf maxproc, 0 = unlimited */
    long    busy;               /* deliveries in progress */
    int64_t dead_until_ms;      /* 0 = alive */
    char   *dead_reason;
    htable_t *queues;           /* nexthop -> struct qmgr_queue */
    struct qmgr_queue *ring;    /* round-robin cursor over queues with work */
    struct qmgr_transport *next;
};

struct qmgr_queue {
    struct qmgr_transport *tr;
    char   *nexthop;
    struct qmgr_entry *head, *tail;
    size_t  count;
    long    active;             /* requests in progress */
    long    window;             /* current concurrency limit */
    int64_t blocked_until_ms;   /* rate delay */
    uint64_t linger_timer;      /* keeps an idle queue until its rate delay ends */
    struct qmgr_queue *rr_next, *rr_prev;   /* in tr->ring when it has work */
    bool    in_ring;
};

/* A delivery request in progress (qmgr_deliver.c). */
struct qmgr_job {
    struct qmgr_queue *queue;
    struct qmgr_message *msg;
    size_t *rcpt;               /* recipient indices */
    size_t  n;
    int     fd;
    int     state;
    bool    reused;             /* over a kept connection (no greeting) */
    str_t  *in, *out;
    size_t  out_off;
    size_t  in_bytes;           /* reply bytes read so far */
    int64_t deadline_ms;        /* monotonic */
    struct qmgr_job *next, *prev;
};

/* Global state (qmgr_main.c). */
struct qmgr_state {
    config_t *cfg;
    long    active_limit, rcpt_limit;
    long    min_backoff, max_backoff, max_lifetime, bounce_lifetime, warn_time;
    long    queue_run_delay, transport_retry, ipc_timeout, daemon_timeout;
    size_t  nmsg, nrcpt;        /* in memory */
    struct qmgr_message *msgs;  /* list of messages in memory */
    bool    scan_incoming, scan_deferred, flush_deferred;
    int64_t next_deferred_scan_ms;
    bool    stopping;           /* SIGTERM: no new requests, exit when the sent ones end */
    size_t  bounce_calls;       /* requests to the bounce service under way */
    int64_t stop_deadline_ms;   /* exit then even without their replies */
};

extern struct qmgr_state qmgr;

/* qmgr_active.c */
void    qmgr_active_recover(void);
void    qmgr_active_scan(const char *queue_name, bool flush);
bool    qmgr_active_full(void);
void    qmgr_active_result(struct qmgr_message *msg, size_t i, const char *result,
                           const char *dsn, const char *reason, const char *relay);
void    qmgr_active_sync(struct qmgr_message *msg);
size_t  qmgr_active_count(const struct qmgr_message *msg, enum qmgr_rstate state);
void    qmgr_active_check(struct qmgr_message *msg);
int     qmgr_active_open(const struct qmgr_message *msg);
void    qmgr_active_free(struct qmgr_message *msg);

/* qmgr_sched.c */
void    qmgr_sched_init(config_t *cfg);
void    qmgr_sched_enqueue(struct qmgr_message *msg, size_t i, const char *transport,
                           const char *nexthop);
void    qmgr_sched_run(void);
void    qmgr_sched_job_done(struct qmgr_queue *q, bool ok);
void    qmgr_sched_job_requeue(struct qmgr_queue *q, struct qmgr_message *msg, const size_t *rcpt,
                               size_t n);
void    qmgr_sched_transport_dead(struct qmgr_transport *tr, const char *reason);
void    qmgr_sched_revive(bool all);
void    qmgr_sched_requeue(struct qmgr_queue *q, struct qmgr_message *msg, const size_t *rcpt,
                           size_t n);
long    qmgr_transport_param(config_t *cfg, const char *transport, const char *suffix,
                             const char *generic);

/* qmgr_deliver.c */
int     qmgr_deliver_start(struct qmgr_queue *q, struct qmgr_message *msg, size_t *rcpt,
                           size_t n);
void    qmgr_deliver_tick(void);
void    qmgr_deliver_pool_drop(struct qmgr_transport *tr);    /* close its kept connections */
size_t  qmgr_deliver_count(void);
void    qmgr_deliver_stop(void);    /* at SIGTERM: drop what was not sent */
void    qmgr_stop_if_idle(void);    /* during a stop: exit when no request is under way */

/* qmgr_defer.c */
#define QMGR_LOG_BOUNCE "bounce"
#define QMGR_LOG_DEFER  "defer"
#define QMGR_LOG_TRACE  "trace"
int     qmgr_log_append(const char *log, struct qmgr_message *msg, size_t i, const char *action,
                        const char *dsn, const char *reason, const char *relay, bool sync);
bool    qmgr_log_exists(const char *log, const char *id);
void    qmgr_log_remove(const char *log, const char *id);
void    qmgr_defer_finish(struct qmgr_message *msg);
bool    qmgr_defer_expired(const struct qmgr_message *msg);

#endif
