/*
 * esmtp.c - the argument syntax of MAIL and RCPT (RFC 5321, RFC 3461),
 * shared by smtpd and sendmail -bs; see esmtp.h.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "esmtp.h"
#include "mem.h"
#include "rec_type.h"

const char *
esmtp_skip_keyword(const char *args, const char *kw)
{
    size_t  n = strlen(kw);

    if (strncasecmp(args, kw, n) != 0)
        return NULL;
    args += n;
    while (*args == ' ')
        args++;
    return args;
}

bool
esmtp_next_param(const char **rest, str_t *key, str_t *value, bool *has_value)
{
    const char *p = *rest;

    while (*p == ' ')
        p++;
    if (*p == 0)
        return false;
    size_t  n = strcspn(p, " ");
    const char *eq = memchr(p, '=', n);

    if (eq) {
        str_set(key, p, (size_t) (eq - p));
        str_set(value, eq + 1, n - (size_t) (eq - p) - 1);
    } else {
        str_set(key, p, n);
        str_reset(value);
    }
    *has_value = eq != NULL;
    *rest = p + n;
    return true;
}

bool
esmtp_parse_size(const char *text, long *out)
{
    long    v = 0;

    if (*text == 0 || strlen(text) > 18)
        return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

bool
esmtp_decode_xtext(str_t *out, const char *text, size_t max)
{
    if (*text == 0 || strlen(text) > max || !addr_xtext_decode(out, text))
        return false;
    for (size_t i = 0; i < str_len(out); i++) {
        unsigned char c = (unsigned char) out->data[i];

        if (c < 0x20 || c > 0x7e)
            return false;
    }
    return true;
}

bool
esmtp_parse_notify(const char *v, int *mask)
{
    int     m = 0;
    const char *p = v;

    while (*p) {
        size_t  n = strcspn(p, ",");

        if (n == 5 && strncasecmp(p, "NEVER", 5) == 0)
            m |= DSN_NOTIFY_NEVER;
        else if (n == 7 && strncasecmp(p, "SUCCESS", 7) == 0)
            m |= DSN_NOTIFY_SUCCESS;
        else if (n == 7 && strncasecmp(p, "FAILURE", 7) == 0)
            m |= DSN_NOTIFY_FAILURE;
        else if (n == 5 && strncasecmp(p, "DELAY", 5) == 0)
            m |= DSN_NOTIFY_DELAY;
        else
            return false;
        p += n;
        if (*p == ',' && *++p == 0)
            return false;
    }
    if (m == 0 || ((m & DSN_NOTIFY_NEVER) && m != DSN_NOTIFY_NEVER))
        return false;
    *mask = m;
    return true;
}

bool
esmtp_parse_orcpt(const char *v, char **out)
{
    const char *semi = strchr(v, ';');

    if (semi == NULL || semi == v || strlen(v) > ESMTP_ORCPT_MAX)
        return false;
    for (const char *p = v; p < semi; p++)
        if (!isalnum((unsigned char) *p) && *p != '-')
            return false;
    str_t  *dec = str_new(64);

    if (!esmtp_decode_xtext(dec, semi + 1, ESMTP_ORCPT_MAX)) {
        str_free(dec);
        return false;
    }
    str_t  *o = str_new(64);

    str_append(o, v, (size_t) (semi - v + 1));
    str_append_str(o, dec);
    str_free(dec);
    *out = str_steal(o);
    return true;
}
