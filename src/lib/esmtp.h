/*
 * esmtp.h - the argument syntax of MAIL FROM and RCPT TO: keywords, ESMTP
 * parameters, and the values of SIZE, ENVID, NOTIFY and ORCPT.
 *
 * Trust: every argument is peer text; the functions bound what they read
 * and say false instead of guessing. They reply nothing: the caller chooses
 * the reply.
 */
#ifndef POSTERN_ESMTP_H
#define POSTERN_ESMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define ESMTP_ENVID_MAX     100     /* RFC 3461: ENVID at most 100 characters */
#define ESMTP_ORCPT_MAX     500     /* RFC 3461: ORCPT at most 500 characters */

/*
 * "FROM:" / "TO:" at the start of args (case-insensitive); blanks after the
 * colon are allowed, as by Postfix without strict_rfc821_envelopes. The
 * text after them, or NULL.
 */
const char *esmtp_skip_keyword(const char *args, const char *kw);
/*
 * The next parameter of *rest, "KEY=VALUE" or "KEY", copied into key and
 * value (value empty without '='); false at the end.
 */
bool    esmtp_next_param(const char **rest, str_t *key, str_t *value, bool *has_value);
/* A decimal number without sign or junk, at most 18 digits. */
bool    esmtp_parse_size(const char *text, long *out);
/* xtext-decode text (at most max bytes) into out; the result must be printable ASCII. */
bool    esmtp_decode_xtext(str_t *out, const char *text, size_t max);
/* NOTIFY=: NEVER alone, or a list of SUCCESS, FAILURE, DELAY, as a DSN_NOTIFY_* mask. */
bool    esmtp_parse_notify(const char *v, int *mask);
/* ORCPT=addr-type;xtext as a new string "addr-type;decoded" (mem_free it). */
bool    esmtp_parse_orcpt(const char *v, char **out);

#endif
