/*
 * deliver.h - what every delivery agent shares: reading a request from
 * qmgr (deliver_proto.h), copying the message out of the queue file, the
 * mailbox writers, and the per-recipient result with its log line.
 *
 * An agent's service() callback is deliver_serve(client, deliver, ctx): it
 * sends the {protocol = "delivery"} greeting, reads each request, calls
 * deliver(rq, ctx), which sets every recipient's result with deliver_sent /
 * deliver_defer / deliver_bounce, and sends the reply; qmgr may send more
 * requests over the same connection (deliver_proto.h). Agents call
 * queue_init(cfg) once (post_init) before the first request.
 *
 * Trust: the request comes from qmgr (mail_owner), the queue file was
 * written by cleanup; both are checked anyway (attribute limits, queue ID
 * syntax, record types while copying).
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "deliver_proto.h"
#include "str.h"
#include "stream.h"

struct deliver_rcpt {
    char   *address;            /* internal form */
    char   *orig;               /* as received ("" when unknown) */
    char   *orcpt;              /* DSN ORCPT or "" */
    int     notify;             /* DSN_NOTIFY_* mask */
    long long offset;           /* R record offset, echoed back */
    /* results, set by deliver_sent/defer/bounce */
    const char *result;         /* NULL until set: deliver_reply defers those */
    str_t  *dsn;
    str_t  *reason;
    str_t  *relay;
};

struct deliver_request {
    char   *queue_name, *queue_id;
    off_t   content_offset;
    long long message_size;
    int64_t arrival_time, active_time;  /* seconds */
    int64_t start_ms;                   /* when the agent got the request (clock_now_ms) */
    char   *sender, *transport, *nexthop;
    char   *encoding, *dsn_envid, *client_name, *client_address, *helo_name, *protocol;
    bool    smtputf8;
    int     dsn_ret, flags;
    size_t  nrcpt;
    struct deliver_rcpt *rcpt;
    /*
     * Added: the queue file, opened read-only by deliver_request_read()
     * while the agent still has the rights of root or mail_owner, so that
     * deliver_copy() can read it after a switch to the recipient's uid.
     * A request built by hand (tests) leaves queue_fd_set false and
     * deliver_copy() opens the file itself.
     */
    int     queue_fd;
    bool    queue_fd_set;
};

/*
 * Send the greeting, then read and check one request and open its queue
 * file; NULL with err on a malformed one or a queue file that cannot be
 * opened (the caller then answers with deliver_reply_error()).
 */
struct deliver_request *deliver_request_read(stream_t *client, str_t *err);

/*
 * An agent's whole connection with qmgr (see the top): requests until qmgr
 * closes it or leaves it idle for DELIVER_IDLE_S, until max_use or a stop
 * from master (server_take_another), or until a bad request, which gets an
 * error reply and a log line.
 */
typedef void (*deliver_fn)(struct deliver_request *rq, void *ctx);
void    deliver_serve(stream_t *client, deliver_fn deliver, void *ctx);
void    deliver_request_free(struct deliver_request *rq);
/* Added: answer a request that failed as a whole {status = 1, reason}: qmgr defers it all. */
int     deliver_reply_error(stream_t *client, const char *reason);

/*
 * Set recipient i's result and log the Postfix-style line
 * "ID: to=<...>, relay=..., delay=..., delays=..., dsn=..., status=... (reason)".
 * dsn is the enhanced status code; relay the log's relay= value.
 */
void    deliver_sent(struct deliver_request *rq, size_t i, const char *relay, const char *dsn,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void    deliver_defer(struct deliver_request *rq, size_t i, const char *relay, const char *dsn,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void    deliver_bounce(struct deliver_request *rq, size_t i, const char *relay, const char *dsn,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Send the reply (recipients without a result are deferred "4.3.0 no result"). */
int     deliver_reply(stream_t *client, struct deliver_request *rq);

/* Flags for deliver_copy(). */
#define DELIVER_COPY_MBOX       (1 << 0)    /* "From sender date" line first, ">From " quoting, blank line after */
#define DELIVER_COPY_CRLF       (1 << 1)    /* lines end in CRLF (default LF) */
#define DELIVER_COPY_DOT        (1 << 2)    /* SMTP dot-stuffing (for lmtp/smtp later) */
/* Added for pipe's flags ">" and "B" (MBOX implies both, plus the "From " line). */
#define DELIVER_COPY_QUOTE_FROM (1 << 3)    /* ">From " quoting only */
#define DELIVER_COPY_BLANK      (1 << 4)    /* a blank line after the message */

/*
 * Write the message to fd: first the given header lines (each "Name: value"
 * without a newline, e.g. Return-Path:, Delivered-To:, already formatted by
 * the caller), then the content from the queue file. Reads the queue file
 * queue_name/queue_id relative to the working directory (agents run in
 * queue_directory). Returns 0, or -1 with why saying what failed (a write
 * error keeps errno for the caller to map ENOSPC/EDQUOT to a deferral).
 */
int     deliver_copy(struct deliver_request *rq, int fd, const char *const *headers, int flags,
                     str_t *why);

/*
 * Mailbox writers. Both write the message with the Return-Path: and
 * Delivered-To: headers (recipient i), fsync before returning success, and
 * never follow a symbolic link for the final path component nor write to
 * anything but a regular file / directory owned by the current euid.
 * Return 0 (delivered), or a DELIVER_FAIL_* with why.
 */
#define DELIVER_FAIL_TEMP  (-1)     /* try again later (ENOSPC, lock busy, ...) */
#define DELIVER_FAIL_PERM  (-2)     /* will never work (symlink, not a mailbox) */
/*
 * Maildir: an unnamed file in dir/tmp linked as dir/new/UNIQUE (or, where
 * that is impossible, dir/tmp/UNIQUE renamed to dir/new/UNIQUE); creates
 * dir/{tmp,new,cur} when tmp or new is missing.
 */
int     deliver_maildir(struct deliver_request *rq, size_t i, const char *dir, str_t *why);
/* true: from now on, name every Maildir file in tmp/ (the fallback; for tests). */
void    deliver_maildir_named(bool on);
/* mbox: append with a dot-lock (path.lock) and an fcntl lock; truncates back on error. */
int     deliver_mbox(struct deliver_request *rq, size_t i, const char *path, str_t *why);
/*
 * Added: the enhanced status code that fits the last failure of
 * deliver_maildir()/deliver_mbox() (e.g. "4.2.2" mailbox full for ENOSPC or
 * EDQUOT, "5.2.2" for EFBIG, a file size limit, "5.2.0" for a mailbox that
 * is a symbolic link, "4.2.0" / "4.3.0" otherwise). Valid until the next call.
 */
const char *deliver_fail_dsn(void);

/* "delay=..., delays=..." text for recipient log lines (used by deliver_sent etc.). */
void    deliver_delays(const struct deliver_request *rq, str_t *out);

#endif
