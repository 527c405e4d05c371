/*
 * maildrop.c - checks for local submissions; see maildrop.h.
 *
 * Trust: everything fed in here was written by a local user (through
 * sendmail and postdrop) and is checked before anybody acts on it. The
 * checker is pure: no I/O, no logging; callers decide what a failure means.
 */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "cleanup_proto.h"
#include "dict.h"
#include "maildrop.h"
#include "mem.h"
#include "rec.h"

enum {
    ST_TIME,                /* expect T */
    ST_SENDER,              /* expect F or S */
    ST_ATTR,                /* after S: A, O, N, R or M */
    ST_RCPT,                /* after the first recipient record: O, N, R or M */
    ST_CONTENT,             /* after M: N, L or X */
    ST_END,                 /* after X: E */
    ST_DONE,
    ST_FAILED,
};

/* The attributes a submission may carry; the bit is set once seen. */
static const struct {
    const char *name;
    bool    user_may_set;
} known_attrs[] = {
    {REC_ATTR_SUBMIT_FLAGS, true},
    {REC_ATTR_DSN_ENVID, true},
    {REC_ATTR_DSN_RET, true},
    {REC_ATTR_SUBMIT_UID, false},
    {REC_ATTR_SUBMIT_USER, false},
};

#define NATTRS (sizeof(known_attrs) / sizeof(known_attrs[0]))

void
maildrop_check_init(struct maildrop_check *mc, enum maildrop_origin origin,
                    size_t line_limit, long long size_limit)
{
    memset(mc, 0, sizeof(*mc));
    mc->origin = origin;
    mc->line_limit = line_limit;
    mc->size_limit = size_limit;
    mc->submit_uid = -1;
    mc->state = ST_TIME;
    str_init(&mc->sender);
    str_init(&mc->error);
}

void
maildrop_check_free(struct maildrop_check *mc)
{
    str_release(&mc->sender);
    str_release(&mc->error);
}

size_t
maildrop_max_record(size_t line_limit)
{
    return line_limit > MAILDROP_ENV_MAX ? line_limit : MAILDROP_ENV_MAX;
}

static int fail(struct maildrop_check *mc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the first problem and refuse everything after it. */
static int
fail(struct maildrop_check *mc, const char *fmt, ...)
{
    va_list ap;

    str_reset(&mc->error);
    va_start(ap, fmt);
    str_append_vprintf(&mc->error, fmt, ap);
    va_end(ap);
    mc->state = ST_FAILED;
    return MAILDROP_BAD;
}

/* A login name as postdrop writes it: the characters of portable user names. */
static bool
user_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != '$' && c != '@')
            return false;
    }
    return true;
}

static int
check_attr(struct maildrop_check *mc, const char *data, size_t len)
{
    const char *eq = memchr(data, '=', len);
    size_t  nlen, vlen;
    const char *val;
    size_t  i;
    long long v;

    if (len > MAILDROP_ATTR_MAX)
        return fail(mc, "attribute record longer than %d bytes", MAILDROP_ATTR_MAX);
    if (eq == NULL || eq == data)
        return fail(mc, "attribute record without name=value");
    nlen = (size_t) (eq - data);
    val = eq + 1;
    vlen = len - nlen - 1;
    if (!rec_text_ok(val, vlen, false))
        return fail(mc, "attribute value with a control character");
    for (i = 0; i < NATTRS; i++)
        if (strlen(known_attrs[i].name) == nlen && memcmp(known_attrs[i].name, data, nlen) == 0)
            break;
    if (i == NATTRS || (mc->origin == MAILDROP_FROM_USER && !known_attrs[i].user_may_set)) {
        str_t  *q = str_new(0);
        int     rc;

        dict_quote(q, data, nlen);
        rc = fail(mc, "attribute %s is not allowed in a submission", str_cstr(q));
        str_free(q);
        return rc;
    }
    if (mc->seen_attrs & (1u << i))
        return fail(mc, "attribute %s given twice", known_attrs[i].name);
    mc->seen_attrs |= 1u << i;

    if (strcmp(known_attrs[i].name, REC_ATTR_SUBMIT_FLAGS) == 0) {
        if (!rec_parse_decimal(val, vlen, CLEANUP_FLAG_EXTRACT, &v) || (v & ~CLEANUP_FLAG_EXTRACT) != 0)
            return fail(mc, "bad %s value", REC_ATTR_SUBMIT_FLAGS);
        mc->submit_flags = (int) v;
    } else if (strcmp(known_attrs[i].name, REC_ATTR_DSN_ENVID) == 0) {
        if (vlen == 0 || vlen > MAILDROP_ENVID_MAX)
            return fail(mc, "bad %s length", REC_ATTR_DSN_ENVID);
        for (size_t k = 0; k < vlen; k++)
            if ((unsigned char) val[k] < 0x21 || (unsigned char) val[k] > 0x7e)
                return fail(mc, "%s must be printable ASCII without spaces", REC_ATTR_DSN_ENVID);
    } else if (strcmp(known_attrs[i].name, REC_ATTR_DSN_RET) == 0) {
        if (!rec_parse_decimal(val, vlen, DSN_RET_HDRS, &v) || (v != DSN_RET_FULL && v != DSN_RET_HDRS))
            return fail(mc, "bad %s value", REC_ATTR_DSN_RET);
    } else if (strcmp(known_attrs[i].name, REC_ATTR_SUBMIT_UID) == 0) {
        if (!rec_parse_decimal(val, vlen, 0xfffffffeLL, &v))
            return fail(mc, "bad %s value", REC_ATTR_SUBMIT_UID);
        mc->submit_uid = v;
    } else if (strcmp(known_attrs[i].name, REC_ATTR_SUBMIT_USER) == 0) {
        if (!user_name_ok(val, vlen))
            return fail(mc, "bad %s value", REC_ATTR_SUBMIT_USER);
    }
    return MAILDROP_MORE;
}

static int
check_address(struct maildrop_check *mc, const char *what, const char *data, size_t len,
              bool empty_ok)
{
    if (len == 0 && !empty_ok)
        return fail(mc, "empty %s address", what);
    if (len > MAILDROP_ADDR_MAX)
        return fail(mc, "%s address longer than %d bytes", what, MAILDROP_ADDR_MAX);
    if (!rec_text_ok(data, len, false))
        return fail(mc, "%s address with a control character", what);
    return MAILDROP_MORE;
}

/* Envelope records allowed once the sender is known (states ST_ATTR and ST_RCPT). */
static int
check_envelope(struct maildrop_check *mc, int type, const char *data, size_t len)
{
    long long v;

    switch (type) {
    case REC_TYPE_ATTR:
        if (mc->state != ST_ATTR)
            return fail(mc, "attribute record after a recipient");
        return check_attr(mc, data, len);
    case REC_TYPE_ORCPT:
        if (mc->pending_orcpt || mc->pending_notify)
            return fail(mc, "original recipient record out of order");
        if (len == 0 || len > MAILDROP_ADDR_MAX || memchr(data, ';', len) == NULL
            || !rec_text_ok(data, len, false))
            return fail(mc, "bad original recipient record");
        mc->pending_orcpt = true;
        mc->state = ST_RCPT;
        return MAILDROP_MORE;
    case REC_TYPE_NOTIFY:
        if (mc->pending_notify)
            return fail(mc, "notify record given twice for one recipient");
        if (!rec_parse_decimal(data, len, DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE
                           | DSN_NOTIFY_DELAY, &v) || v == 0
            || ((v & DSN_NOTIFY_NEVER) && v != DSN_NOTIFY_NEVER))
            return fail(mc, "bad notify record");
        mc->pending_notify = true;
        mc->state = ST_RCPT;
        return MAILDROP_MORE;
    case REC_TYPE_RCPT:
        if (check_address(mc, "recipient", data, len, false) != MAILDROP_MORE)
            return MAILDROP_BAD;
        mc->pending_orcpt = mc->pending_notify = false;
        mc->rcpt_count++;
        mc->state = ST_RCPT;
        return MAILDROP_MORE;
    case REC_TYPE_MESG:
        if (mc->pending_orcpt || mc->pending_notify)
            return fail(mc, "recipient options without a recipient");
        if (len != 0)
            return fail(mc, "content start record with data");
        if (mc->rcpt_count == 0 && !(mc->submit_flags & CLEANUP_FLAG_EXTRACT))
            return fail(mc, "no recipients");
        if (mc->origin == MAILDROP_FROM_FILE && mc->submit_uid < 0)
            return fail(mc, "no %s attribute", REC_ATTR_SUBMIT_UID);
        mc->state = ST_CONTENT;
        return MAILDROP_MORE;
    default:
        if (type >= 0x21 && type <= 0x7e)
            return fail(mc, "unexpected '%c' record in the envelope", type);
        return fail(mc, "unexpected record type %d in the envelope", type);
    }
}

int
maildrop_check_record(struct maildrop_check *mc, int type, const char *data, size_t len)
{
    switch (mc->state) {
    case ST_TIME: {
        long long t_sec;
        long    t_usec;

        if (type != REC_TYPE_TIME)
            return fail(mc, "the first record is not the arrival time");
        if (!rec_parse_time(data, len, &t_sec, &t_usec))
            return fail(mc, "bad arrival time");
        mc->state = ST_SENDER;
        return MAILDROP_MORE;
    }
    case ST_SENDER:
        if (type == REC_TYPE_FULLNAME) {
            if (mc->seen_fullname)
                return fail(mc, "full name record given twice");
            if (len > MAILDROP_NAME_MAX || !rec_text_ok(data, len, true))
                return fail(mc, "bad full name record");
            mc->seen_fullname = true;
            return MAILDROP_MORE;
        }
        if (type != REC_TYPE_SENDER)
            return fail(mc, "no sender record after the arrival time");
        if (check_address(mc, "sender", data, len, true) != MAILDROP_MORE)
            return MAILDROP_BAD;
        str_set(&mc->sender, data, len);
        mc->state = ST_ATTR;
        return MAILDROP_MORE;
    case ST_ATTR:
    case ST_RCPT:
        return check_envelope(mc, type, data, len);
    case ST_CONTENT:
        if (type == REC_TYPE_XTRA) {
            if (mc->in_cont)
                return fail(mc, "content ends inside a line");
            if (len != 0)
                return fail(mc, "content end record with data");
            mc->state = ST_END;
            return MAILDROP_MORE;
        }
        if (type != REC_TYPE_NORM && type != REC_TYPE_CONT)
            return fail(mc, "unexpected record in the content");
        if (len > mc->line_limit)
            return fail(mc, "content record longer than %zu bytes", mc->line_limit);
        mc->content_size += (long long) len + (type == REC_TYPE_NORM);
        if (mc->size_limit > 0 && mc->content_size > mc->size_limit)
            return fail(mc, "message file too big");
        mc->in_cont = (type == REC_TYPE_CONT);
        return MAILDROP_MORE;
    case ST_END:
        if (type != REC_TYPE_END || len != 0)
            return fail(mc, "no end record after the content");
        mc->state = ST_DONE;
        return MAILDROP_DONE;
    case ST_DONE:
        return fail(mc, "data after the end record");
    default:
        return MAILDROP_BAD;
    }
}

/* Next item of a list separated by commas and white space: [*start, *start+*len). */
static bool
next_item(const char **p, const char **start, size_t *len)
{
    const char *s = *p;

    while (*s == ',' || isspace((unsigned char) *s))
        s++;
    if (*s == 0)
        return false;
    *start = s;
    /* Braces (inline:{a=1, b=2}) keep their commas and blanks inside the item. */
    for (int depth = 0; *s && (depth > 0 || (*s != ',' && !isspace((unsigned char) *s))); s++) {
        if (*s == '{')
            depth++;
        else if (*s == '}' && depth > 0)
            depth--;
    }
    *len = (size_t) (s - *start);
    *p = s;
    return true;
}

int
maildrop_user_allowed(const char *list, const char *user, str_t *err)
{
    const char *p = list, *item;
    size_t  len;

    while (next_item(&p, &item, &len)) {
        bool    negate = false;
        int     match;

        if (*item == '!') {
            negate = true;
            item++;
            len--;
        }
        if (len == 0)
            continue;
        if (memchr(item, ':', len) != NULL) {
            char   *name = mem_strndup(item, len);
            str_t  *value = str_new(0);
            dict_t *d = dict_open(name, 0, err);
            int     rc;

            if (d == NULL) {
                str_free(value);
                mem_free(name);
                return -1;
            }
            rc = dict_lookup(d, user, value);
            if (rc == DICT_ERROR)
                str_printf(err, "%s: %s", name, dict_error(d));
            dict_close(d);
            str_free(value);
            mem_free(name);
            if (rc == DICT_ERROR)
                return -1;
            match = (rc == DICT_FOUND);
        } else {
            match = (strlen(user) == len && strncasecmp(user, item, len) == 0);
        }
        if (match)
            return negate ? 0 : 1;
    }
    return 0;
}

bool
maildrop_dir_listed(const char *list, const char *dir)
{
    const char *p = list, *item;
    size_t  len, dlen = strlen(dir);

    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    while (next_item(&p, &item, &len)) {
        while (len > 1 && item[len - 1] == '/')
            len--;
        if (len == dlen && memcmp(item, dir, len) == 0)
            return true;
    }
    return false;
}
