/*
 * rewrite_clnt.h - client of the trivial-rewrite service (private/rewrite).
 *
 * Protocol (attr codec), after the server's {protocol = "trivial-rewrite"}:
 *   rewrite: {request = "rewrite", rule = "local"|"remote", address = A}
 *            -> {flags = F, address = CANONICAL}
 *   resolve: {request = "resolve", sender = S, address = A}
 *            -> {flags = F, transport = T, nexthop = H, recipient = R}
 * Addresses are in internal (unquoted) form. A connection serves many
 * requests; the client keeps it open and reconnects once after an error.
 * The client also caches the last few replies of each kind for a few
 * seconds (rewrite_clnt.c), since the same addresses come again and again.
 *
 * Like every IPC client, the caller must ignore SIGPIPE (the server
 * skeletons do), so that a connection the service closed is an error that
 * the client can retry, not a signal that kills it.
 *
 * A reply with REWRITE_FLAG_FAIL in flags means the service could not
 * answer (a table lookup failed): callers defer (4xx), never guess.
 */
#ifndef POSTERN_REWRITE_CLNT_H
#define POSTERN_REWRITE_CLNT_H

#include <stdbool.h>

#include "str.h"

#define REWRITE_PROTOCOL       "trivial-rewrite"
#define REWRITE_SERVICE        "rewrite"

/* Result flags. */
#define RESOLVE_FLAG_FAIL      (1 << 0)     /* temporary failure: try again later */
#define RESOLVE_FLAG_ERROR     (1 << 1)     /* the address is malformed */
#define RESOLVE_FLAG_ROUTED    (1 << 2)     /* had a source route or %/! routing */
#define RESOLVE_CLASS_LOCAL    (1 << 8)     /* domain in mydestination (or none) */
#define RESOLVE_CLASS_ALIAS    (1 << 9)     /* domain in virtual_alias_domains */
#define RESOLVE_CLASS_VIRTUAL  (1 << 10)    /* domain in virtual_mailbox_domains */
#define RESOLVE_CLASS_RELAY    (1 << 11)    /* domain in relay_domains */
#define RESOLVE_CLASS_DEFAULT  (1 << 12)    /* anything else */
#define RESOLVE_CLASS_MASK     (0x1f << 8)
#define REWRITE_FLAG_FAIL      RESOLVE_FLAG_FAIL

struct resolve_reply {
    int     flags;
    str_t  *transport;
    str_t  *nexthop;
    str_t  *recipient;
};

void    resolve_reply_init(struct resolve_reply *r);
void    resolve_reply_free(struct resolve_reply *r);

/*
 * Rewrite addr to canonical form by rule "local" or "remote" into result.
 * Returns the reply flags (RESOLVE_FLAG_FAIL when the service could not be
 * reached or failed; result is then a copy of addr).
 */
int     rewrite_clnt(const char *rule, const char *addr, str_t *result);

/* Resolve a recipient to transport:nexthop. Returns r->flags. */
int     resolve_clnt(const char *sender, const char *addr, struct resolve_reply *r);

/* Close the cached connection (e.g. before a long idle period or in tests). */
void    rewrite_clnt_disconnect(void);

/* Where to connect: NULL = private/rewrite relative to the working directory. */
void    rewrite_clnt_set_qdir(const char *qdir);
/* Added: the service name (rewrite_service_name); NULL or "" = "rewrite". */
void    rewrite_clnt_set_service(const char *service);

#endif
