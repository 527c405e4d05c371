/*
 * rewrite.h - the rules of the trivial-rewrite service, as a library.
 *
 * The daemon (src/trivial-rewrite/) and the golden-file unit test both call
 * these. A context is built once from the configuration: it parses the
 * domain lists (mydestination, relay_domains, virtual_alias_domains,
 * virtual_mailbox_domains), opens their tables and transport_maps, and
 * finds this machine's addresses (inet_interfaces, proxy_interfaces). No
 * table is opened per request.
 *
 * Addresses are in internal form (addr.h). docs/addressing.md describes
 * the rules for users.
 */
#ifndef POSTERN_REWRITE_H
#define POSTERN_REWRITE_H

#include "config.h"
#include "rewrite_clnt.h"
#include "str.h"

typedef struct rewrite_ctx rewrite_ctx_t;

/*
 * Build a context from cfg (values are copied). Returns NULL with err set
 * when a table cannot be opened or a list file cannot be read.
 */
rewrite_ctx_t *rewrite_ctx_new(config_t *cfg, str_t *err);
void    rewrite_ctx_free(rewrite_ctx_t *ctx);      /* NULL is fine */

/*
 * Canonicalize addr by rule "local" or "remote" into out. Returns 0, or
 * RESOLVE_FLAG_ERROR (out = addr) when the result would be too long.
 * An unknown rule is a programming error of the caller (checked by the
 * daemon); it is treated as "remote".
 */
int     rewrite_address(rewrite_ctx_t *ctx, const char *rule, const char *addr, str_t *out);

/*
 * Resolve a recipient to transport, nexthop and recipient, with the
 * RESOLVE_CLASS_* and RESOLVE_FLAG_* bits in r->flags (returned too).
 * sender is accepted for future sender-dependent routing and not used yet.
 * A table that fails gives RESOLVE_FLAG_FAIL; r->transport then holds the
 * reason, for the log.
 */
int     resolve_address(rewrite_ctx_t *ctx, const char *sender, const char *addr,
                        struct resolve_reply *r);

#endif
