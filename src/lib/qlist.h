/*
 * qlist.h - walk the mail queue and describe each message, for listings.
 *
 * One description of "what is in the queue" shared by the programs that
 * show it: "postern queue -p/-j" when it can read the queue itself, and the
 * showq daemon, which sends the same descriptions to users who cannot.
 * Because both go through qlist_walk(), their output is the same by
 * construction.
 *
 * The queues are walked in the order incoming, active, deferred, hold,
 * maildrop, oldest message first within each (queue IDs sort by arrival
 * time). Each message is read with the strict queue file reader; only
 * recipients not yet delivered are described. For a deferred message the
 * last reason logged per recipient comes from its defer log (defer/ID):
 * blocks of "name=value" lines ended by an empty line, of which
 * "recipient" and "reason" are used (bounce_proto.h).
 *
 * A message that vanishes between the directory scan and the read
 * (delivered or moved) is skipped with a warning, as is a file that cannot
 * be parsed; neither stops the walk.
 *
 * Paths are relative to the working directory, which must be
 * queue_directory; queue_init() must have been called.
 *
 * Ownership: a struct qlist_msg handed to the callback belongs to the
 * walker and is valid only during the call. qlist_msg_* helpers let other
 * code (the showq client) build and free its own.
 */
#ifndef POSTERN_QLIST_H
#define POSTERN_QLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"

struct qlist_rcpt {
    char   *address;        /* internal form, as stored */
    char   *reason;         /* last delay reason, or NULL */
};

struct qlist_msg {
    const char *queue_name; /* one of the QUEUE_* names (static) */
    char    queue_id[QUEUE_ID_MAX + 1];
    long long arrival_time; /* seconds since the epoch */
    long long message_size; /* content bytes */
    char   *sender;         /* "" for the null sender */
    struct qlist_rcpt *rcpts;
    size_t  rcpt_count;
    size_t  rcpt_cap;
};

/* The queues listed, in listing order, and their count. */
extern const char *const qlist_queues[];
extern const size_t qlist_queue_count;

/* The static name from qlist_queues equal to name, or NULL. */
const char *qlist_queue_name(const char *name);

/*
 * Call fn for every message, in listing order. fn returns 0 to go on, or
 * non-zero to stop the walk (that value is then returned). Returns 0 when
 * the walk ran to the end.
 */
typedef int (*qlist_fn)(const struct qlist_msg *msg, void *ctx);
int     qlist_walk(qlist_fn fn, void *ctx);
/* The same for one queue only (one of qlist_queues). */
int     qlist_walk_queue(const char *queue_name, qlist_fn fn, void *ctx);

/* Building and freeing descriptions (all strings are copied). */
void    qlist_msg_init(struct qlist_msg *msg);
void    qlist_msg_add_rcpt(struct qlist_msg *msg, const char *address, const char *reason);
void    qlist_msg_free(struct qlist_msg *msg);

#endif
