/*
 * addr.h - mail addresses: RFC 5321 paths and RFC 5322 header address lists.
 *
 * Postern keeps addresses in "internal" form: the local part unquoted (as
 * the characters it denotes), then "@domain" when there is a domain. The
 * "external" form quotes the local part when RFC 5321/5322 require it
 * ("John Doe"@example.com). Conversions go through these functions only.
 *
 * Trust: all input comes from peers; every function bounds what it reads
 * and reports malformed input instead of guessing.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define ADDR_MAX_LEN      1024      /* longest address accepted in internal form */

/* Flags for addr_parse_path(). */
#define ADDR_PATH_ALLOW_EMPTY   (1 << 0)    /* "<>" is fine (MAIL FROM) */
#define ADDR_PATH_STRICT        (1 << 1)    /* require the <> brackets (RFC 5321) */
#define ADDR_PATH_UTF8          (1 << 2)    /* SMTPUTF8: allow UTF-8 in local part and domain */

/*
 * Parse an SMTP path as in "MAIL FROM:<path> params" starting at text
 * (after the colon; leading blanks allowed). Accepts <addr>, <>, and
 * source routes <@a,@b:user@c> (the route is dropped). On success returns
 * true, stores the internal form in addr and sets *rest to the text after
 * the path (the ESMTP parameters). On failure returns false with err
 * holding an enhanced status code and reason for the reply, e.g.
 * "5.1.7 Bad sender address syntax" is for the caller to choose; err gets
 * the specific problem ("unbalanced angle brackets", "missing '<'").
 */
bool    addr_parse_path(const char *text, str_t *addr, const char **rest, int flags, str_t *err);

/*
 * Parse an RFC 5322 address-list header value (To, Cc, Bcc, From, Sender,
 * Reply-To, ...; obsolete syntax accepted as far as is safe): groups,
 * display names, comments, quoted strings, angle addresses. Calls fn once
 * per address in internal form (groups expand to their members; an empty
 * group gives nothing). Returns the number of addresses, or -1 when the
 * value is not an address list at all (unbalanced quotes or brackets);
 * addresses found before the error were already passed to fn.
 */
typedef void (*addr_list_fn)(const char *addr, void *ctx);
int     addr_parse_header(const char *value, size_t len, addr_list_fn fn, void *ctx);

/* internal -> external: quote the local part when needed. */
void    addr_externalize(str_t *out, const char *internal);
/* external -> internal: remove quoting of the local part. */
void    addr_internalize(str_t *out, const char *external);

/* Domain part of an internal-form address (after the last '@'), or NULL. */
const char *addr_domain(const char *internal);

/* True when domain is a syntactically valid host name or [address literal]. */
bool    addr_domain_ok(const char *domain, bool allow_utf8);

/*
 * xtext (RFC 3461) for ENVID and ORCPT: decode into out; false when malformed.
 * Encode appends the xtext form of text.
 */
bool    addr_xtext_decode(str_t *out, const char *xtext);
void    addr_xtext_encode(str_t *out, const char *text);

#endif
