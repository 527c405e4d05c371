/*
 * bounce_log.h - the per-message bounce/, defer/ and trace/ logs.
 *
 * The format is described in bounce_proto.h: blocks of "name=value" lines,
 * each block ended by an empty line, one block per recipient result.
 *
 * Writer: bounce_log_append() formats blocks and appends them to
 * LOG/[hash/]ID (LOG is BOUNCE_LOG_BOUNCE, _DEFER or _TRACE) with one
 * write(2) on a descriptor opened with O_APPEND, creating the hashed
 * subdirectory on demand. A write that fails half way is cut back to the
 * old size, so a reader never sees half a block followed by a whole one.
 * With sync, the file (and its directory when the file was new) is
 * fsync'ed before returning: use it whenever the recipient is marked done
 * in the queue file afterwards, or the result would be lost with a crash.
 *
 * Reader: bounce_log_parse() (memory) and bounce_log_read() (a file) turn
 * the text into entries. They are tolerant: unknown names are ignored; a
 * block that is malformed (no recipient, a line without '=', a bad number
 * or status, an overlong line, or the last block not ended by an empty
 * line) is skipped and counted, and the first problem is kept as text so
 * the caller can log it. Nothing here logs.
 *
 * Ownership: entries returned by the reader are owned by the struct
 * bounce_log and freed by bounce_log_free(). The writer copies nothing.
 *
 * Trust: log files are written by qmgr (mail_owner) in the queue; they are
 * still read with limits: at most BOUNCE_LOG_MAX bytes, lines of at most
 * BOUNCE_LOG_LINE_MAX bytes.
 */
#ifndef POSTERN_BOUNCE_LOG_H
#define POSTERN_BOUNCE_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "bounce_proto.h"
#include "str.h"

#define BOUNCE_LOG_MAX      (64L * 1024 * 1024)     /* larger logs are refused */
#define BOUNCE_LOG_LINE_MAX (64 * 1024)             /* longest name=value line */

/* RFC 3464 actions (the "action" field). */
#define BOUNCE_ACTION_FAILED    "failed"
#define BOUNCE_ACTION_DELAYED   "delayed"
#define BOUNCE_ACTION_DELIVERED "delivered"
#define BOUNCE_ACTION_RELAYED   "relayed"
#define BOUNCE_ACTION_EXPANDED  "expanded"

/*
 * One recipient result. For the writer, NULL strings and negative numbers
 * mean "absent" (the line is not written); recipient is required. The
 * reader sets absent strings to NULL, dsn_notify to 0, offset and time to
 * -1.
 */
struct bounce_log_entry {
    char   *recipient;          /* internal form, required */
    char   *orig_rcpt;          /* as received, when it differs */
    char   *dsn_orcpt;          /* DSN ORCPT "type;address" */
    int     dsn_notify;         /* DSN_NOTIFY_* mask, 0 = not given */
    long long offset;           /* R record offset in the queue file */
    char   *status;             /* enhanced status code "X.Y.Z" */
    char   *action;             /* BOUNCE_ACTION_* */
    char   *reason;             /* diagnostic text */
    char   *relay;              /* who said so */
    long long time;             /* seconds since the epoch */
};

struct bounce_log {
    struct bounce_log_entry *entries;
    size_t  count;
    size_t  cap;
    size_t  skipped;            /* malformed blocks left out */
    str_t  *problem;            /* the first problem seen ("" when none) */
};

/* Append one block for e to out (values with CR/LF get spaces instead). */
void    bounce_log_format(str_t *out, const struct bounce_log_entry *e);

/*
 * Append n entries to log_name/[hash/]queue_id in one write. Requires
 * queue_init() and queue_directory as the working directory (or paths
 * relative to it). Returns 0, or -1 with err saying why (errno kept).
 */
int     bounce_log_append(const char *log_name, const char *queue_id,
                          const struct bounce_log_entry *e, size_t n, bool sync, str_t *err);

/* Parse text into log (which must be zeroed or freed before). */
void    bounce_log_parse(struct bounce_log *log, const char *text, size_t len);

/*
 * Read log_name/[hash/]queue_id into log (zeroed or freed before). Returns
 * 1 when read, 0 when there is no such log, -1 with err on an error (I/O,
 * too large, not a regular file).
 */
int     bounce_log_read(const char *log_name, const char *queue_id, struct bounce_log *log,
                        str_t *err);

void    bounce_log_free(struct bounce_log *log);

/*
 * Keep only the newest entry per recipient (same recipient and offset;
 * the later block in the file wins), in the order in which the recipients
 * first appear. For defer logs, where each attempt adds a block.
 */
void    bounce_log_newest(struct bounce_log *log);

/* The newest entry for a recipient address, or NULL. */
const struct bounce_log_entry *bounce_log_find(const struct bounce_log *log, const char *recipient);

/* Remove the log. 0 also when it did not exist; -1 with errno otherwise. */
int     bounce_log_remove(const char *log_name, const char *queue_id);

/* True when the log exists. */
bool    bounce_log_exists(const char *log_name, const char *queue_id);

#endif
