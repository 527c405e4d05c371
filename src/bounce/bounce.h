/*
 * bounce.h - the bounce daemon's internal interface.
 *
 * bounce_main.c   the service: request, log selection, who gets a notice,
 *                 the reply and the log lines.
 * bounce_notice.c composing an RFC 3464 delivery status notification from
 *                 a log and the original queue file, and queueing it
 *                 through cleanup.
 */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "bounce_log.h"
#include "config.h"
#include "qfile.h"
#include "str.h"

enum bounce_kind {
    BOUNCE_KIND_FAILURE,        /* "flush": non-delivery notice */
    BOUNCE_KIND_DELAY,          /* "warn": delay notice */
    BOUNCE_KIND_SUCCESS,        /* "trace": success notice */
};

/* The original message, as far as it could be read. */
struct bounce_original {
    const char *queue_name;
    const char *queue_id;
    const char *sender;         /* from the request */
    const char *dsn_envid;      /* "" when none */
    int     dsn_ret;            /* DSN_RET_* or 0 */
    bool    have_file;          /* qf holds the parsed queue file */
    struct qfile qf;
    int     fd;                 /* open queue file when have_file, else -1 */
};

/* One notice to compose. */
struct bounce_notice {
    enum bounce_kind kind;
    const char *recipient;      /* envelope and To: recipient */
    const char *env_sender;     /* "" or the double-bounce address */
    bool    postmaster;         /* a copy for the postmaster (or a 2bounce) */
    bool    headers_only;       /* return only the original's headers */
    const struct bounce_log_entry *const *entries;
    size_t  count;
};

/*
 * Compose the notice and queue it through cleanup. Returns 0 with the new
 * queue ID in new_id, or -1 with why set (a temporary problem: the caller
 * keeps the log and the client tries again later).
 */
int     bounce_notice_send(config_t *cfg, const struct bounce_original *orig,
                           const struct bounce_notice *n, str_t *new_id, str_t *why);

/* "name@$myorigin" for a bare name; an address with '@' is kept. */
void    bounce_qualify(config_t *cfg, str_t *out, const char *name);

#endif
