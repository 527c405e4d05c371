/*
 * qfile.c - strict reader of queue files and maildrop files; see qfile.h.
 *
 * Trust: the file was written by cleanup (or, for maildrop, by a local
 * user through postdrop) and may be damaged or hostile. Every record is
 * read with a length limit, checked against a state machine before anybody
 * sees it, and every message about it escapes the bytes it quotes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "qfile.h"
#include "rec.h"
#include "stream.h"

#define SIZE_FIELD_MAX      999999999999999LL

enum reader_state {
    S_FIRST,                /* V (queue file) or T (maildrop file) */
    S_SIZE,                 /* C */
    S_TIME,                 /* T */
    S_SENDER,               /* F or S */
    S_ENVELOPE,             /* A, O, N, R, D or M */
    S_CONTENT,              /* N, L or X */
    S_EXTRA,                /* W, A, O, N, R, D or E */
    S_END,                  /* E returned: only end of input may follow */
    S_FINISHED,             /* QFILE_DONE returned */
    S_FAILED,
};

struct qfile_reader {
    stream_t *st;
    char   *name;
    int     flags;
    bool    maildrop;
    enum reader_state state;
    int     result;         /* sticky result once finished or failed */
    str_t  *buf;            /* data of the current record */
    str_t  *err;
    off_t   pos;            /* offset of the next record */
    /* Per recipient. */
    bool    pend_orcpt, pend_notify;
    bool    in_cont;        /* the last content record was L */
    bool    seen_fullname;
    /* For the C record check. */
    bool    have_size;
    off_t   size_offset;
    long long size_fields[3];
    long long content_size;
    off_t   content_offset;
    long long rcpts;
};

/* Bytes a record with len data bytes occupies on disk. */
static off_t
record_size(size_t len)
{
    off_t   n = 2;

    for (size_t v = len; v >= 0x80; v >>= 7)
        n++;
    return n + (off_t) len;
}

/* Append text with every byte that is not printable ASCII as \xNN. */
static void
append_escaped(str_t *out, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];

        if (c >= 0x20 && c < 0x7f && c != '\\')
            str_putc(out, c);
        else
            str_append_printf(out, "\\x%02x", c);
    }
}

/* A record type for messages: 'R', or 0x07 when not printable. */
static void
append_type(str_t *out, int type)
{
    if (type > 0x20 && type < 0x7f)
        str_append_printf(out, "'%c'", type);
    else
        str_append_printf(out, "type 0x%02x", (unsigned) type & 0xff);
}

static int fail(qfile_reader_t *r, off_t at, int result, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record the (first) problem "name: offset N: what" and fail from now on. */
static int
fail(qfile_reader_t *r, off_t at, int result, const char *fmt, ...)
{
    str_t  *what = str_new(64);
    va_list ap;

    va_start(ap, fmt);
    str_append_vprintf(what, fmt, ap);
    va_end(ap);
    str_reset(r->err);
    append_escaped(r->err, r->name, strlen(r->name));
    str_append_printf(r->err, ": offset %lld: ", (long long) at);
    append_escaped(r->err, str_cstr(what), str_len(what));
    str_free(what);
    r->state = S_FAILED;
    r->result = result;
    return result;
}

/* The C record: three right-aligned decimal fields of REC_SIZE_WIDTH. */
static bool
parse_size(const char *data, size_t len, long long v[3])
{
    if (len != 3 * REC_SIZE_WIDTH + 2)
        return false;
    for (int f = 0; f < 3; f++) {
        const char *p = data + f * (REC_SIZE_WIDTH + 1);
        size_t  i = 0;

        if (f > 0 && p[-1] != ' ')
            return false;
        while (i < REC_SIZE_WIDTH && p[i] == ' ')
            i++;
        if (!rec_parse_decimal(p + i, REC_SIZE_WIDTH - i, SIZE_FIELD_MAX, &v[f]))
            return false;
    }
    return true;
}

/* "name=value", name [a-z_]+, value clean text (tabs allowed). */
static bool
attr_ok(const char *data, size_t len)
{
    const char *eq = memchr(data, '=', len);

    if (eq == NULL || eq == data)
        return false;
    for (const char *p = data; p < eq; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
            return false;
    return rec_text_ok(eq + 1, len - (size_t) (eq + 1 - data), true);
}

/* DSN ORCPT "addr-type;address": type [A-Za-z0-9-]+, address clean text. */
static bool
orcpt_ok(const char *data, size_t len)
{
    const char *semi = memchr(data, ';', len);

    if (semi == NULL || semi == data || !rec_text_ok(data, len, false))
        return false;
    for (const char *p = data; p < semi; p++)
        if (!isalnum((unsigned char) *p) && *p != '-')
            return false;
    return true;
}

static bool
notify_ok(const char *data, size_t len)
{
    long long v;

    return rec_parse_decimal(data, len, DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE
                         | DSN_NOTIFY_DELAY, &v)
        && v != 0 && (!(v & DSN_NOTIFY_NEVER) || v == DSN_NOTIFY_NEVER);
}

qfile_reader_t *
qfile_reader_new(int fd, const char *name, int flags)
{
    qfile_reader_t *r = mem_zalloc(sizeof(*r));

    r->name = mem_strdup(name ? name : "(queue file)");
    r->flags = (flags & QFILE_FLAG_ANY) ? flags : QFILE_FLAG_QUEUE;
    r->buf = str_new(256);
    r->err = str_new(64);
    r->state = S_FIRST;
    r->size_offset = -1;
    if (lseek(fd, 0, SEEK_SET) == 0) {
        r->st = stream_open_file(fd, 0);    /* seekable: a file, never waited for */
    } else if (errno == ESPIPE) {
        r->st = stream_open(fd);            /* a pipe: polled, under deadlines */
    } else {
        (void) fail(r, 0, QFILE_IOERR, "cannot rewind: %s", strerror(errno));
        r->st = NULL;
    }
    return r;
}

const char *
qfile_reader_error(const qfile_reader_t *r)
{
    return str_cstr(r->err);
}

bool
qfile_reader_is_maildrop(const qfile_reader_t *r)
{
    return r->maildrop;
}

void
qfile_reader_free(qfile_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->st)
        stream_abandon(r->st);
    str_free(r->buf);
    str_free(r->err);
    mem_free(r->name);
    mem_free(r);
}

/* A recipient-related record (O, N, R, D) in the envelope or after X. */
static int
check_rcpt_record(qfile_reader_t *r, int type, const char *data, size_t len, off_t at)
{
    switch (type) {
    case REC_TYPE_ORCPT:
        if (r->pend_orcpt || r->pend_notify)
            return fail(r, at, QFILE_BAD, "original recipient record out of order");
        if (!orcpt_ok(data, len))
            return fail(r, at, QFILE_BAD, "malformed original recipient record");
        r->pend_orcpt = true;
        return QFILE_RECORD;
    case REC_TYPE_NOTIFY:
        if (r->pend_notify)
            return fail(r, at, QFILE_BAD, "two notify records for one recipient");
        if (!notify_ok(data, len))
            return fail(r, at, QFILE_BAD, "malformed notify record");
        r->pend_notify = true;
        return QFILE_RECORD;
    case REC_TYPE_DONE:
        if (r->maildrop)
            return fail(r, at, QFILE_BAD, "done recipient record in a maildrop file");
        /* FALLTHROUGH */
    case REC_TYPE_RCPT:
        if (len == 0 || !rec_text_ok(data, len, false))
            return fail(r, at, QFILE_BAD, "malformed recipient record");
        r->pend_orcpt = r->pend_notify = false;
        r->rcpts++;
        return QFILE_RECORD;
    default:
        return fail(r, at, QFILE_BAD, "not a recipient record");
    }
}

/* Compare the C record with what the file holds (at E). */
static int
check_size_record(qfile_reader_t *r)
{
    if (!r->have_size)
        return QFILE_RECORD;
    if (r->size_fields[0] != r->content_size)
        return fail(r, r->size_offset, QFILE_BAD,
                    "size record gives message size %lld, the content has %lld bytes",
                    r->size_fields[0], r->content_size);
    if (r->size_fields[1] != (long long) r->content_offset)
        return fail(r, r->size_offset, QFILE_BAD,
                    "size record gives content offset %lld, the content starts at %lld",
                    r->size_fields[1], (long long) r->content_offset);
    if (r->size_fields[2] != r->rcpts)
        return fail(r, r->size_offset, QFILE_BAD,
                    "size record gives %lld recipients, the file has %lld",
                    r->size_fields[2], r->rcpts);
    return QFILE_RECORD;
}

/* Check one record against the state machine; QFILE_RECORD when it fits. */
static int
check_record(qfile_reader_t *r, int type, const char *data, size_t len, off_t at,
             enum qfile_section *section)
{
    long long sec, v;
    long    usec;

    *section = r->state >= S_EXTRA ? QFILE_SEC_EXTRA
        : r->state == S_CONTENT ? QFILE_SEC_CONTENT : QFILE_SEC_ENVELOPE;
    if (*section != QFILE_SEC_CONTENT && len > QFILE_ENV_MAX)
        return fail(r, at, QFILE_BAD, "envelope record of %zu bytes (limit %d)", len, QFILE_ENV_MAX);
    switch (r->state) {
    case S_FIRST:
        if (type == REC_TYPE_VERSION && (r->flags & QFILE_FLAG_QUEUE)) {
            if (len != strlen(REC_VERSION_CURRENT) || memcmp(data, REC_VERSION_CURRENT, len) != 0)
                return fail(r, at, QFILE_BAD, "unsupported queue file version \"%.*s\"",
                            (int) (len > 20 ? 20 : len), data);
            r->state = S_SIZE;
            return QFILE_RECORD;
        }
        if (type == REC_TYPE_TIME && (r->flags & QFILE_FLAG_MAILDROP)) {
            r->maildrop = true;
            r->state = S_TIME;
            return check_record(r, type, data, len, at, section);
        }
        return fail(r, at, QFILE_BAD, "%s", (r->flags & QFILE_FLAG_QUEUE)
                    ? "not a queue file: no version record first"
                    : "not a maildrop file: no time record first");
    case S_SIZE:
        if (type != REC_TYPE_SIZE)
            return fail(r, at, QFILE_BAD, "size record missing after the version record");
        if (!parse_size(data, len, r->size_fields))
            return fail(r, at, QFILE_BAD, "malformed size record");
        r->have_size = true;
        r->size_offset = at;
        r->state = S_TIME;
        return QFILE_RECORD;
    case S_TIME:
        if (type != REC_TYPE_TIME)
            return fail(r, at, QFILE_BAD, "time record missing");
        if (!rec_parse_time(data, len, &sec, &usec))
            return fail(r, at, QFILE_BAD, "malformed time record");
        r->state = S_SENDER;
        return QFILE_RECORD;
    case S_SENDER:
        if (type == REC_TYPE_FULLNAME && !r->seen_fullname) {
            if (!rec_text_ok(data, len, true))
                return fail(r, at, QFILE_BAD, "malformed full name record");
            r->seen_fullname = true;
            return QFILE_RECORD;
        }
        if (type != REC_TYPE_SENDER)
            return fail(r, at, QFILE_BAD, "sender record missing");
        if (!rec_text_ok(data, len, false))
            return fail(r, at, QFILE_BAD, "malformed sender record");
        r->state = S_ENVELOPE;
        return QFILE_RECORD;
    case S_ENVELOPE:
        switch (type) {
        case REC_TYPE_ATTR:
            if (r->pend_orcpt || r->pend_notify)
                return fail(r, at, QFILE_BAD, "attribute record between a recipient's records");
            if (!attr_ok(data, len))
                return fail(r, at, QFILE_BAD, "malformed attribute record");
            return QFILE_RECORD;
        case REC_TYPE_ORCPT:
        case REC_TYPE_NOTIFY:
        case REC_TYPE_RCPT:
        case REC_TYPE_DONE:
            return check_rcpt_record(r, type, data, len, at);
        case REC_TYPE_MESG:
            if (r->pend_orcpt || r->pend_notify)
                return fail(r, at, QFILE_BAD, "content starts before the pending recipient record");
            if (len != 0)
                return fail(r, at, QFILE_BAD, "content start record is not empty");
            r->state = S_CONTENT;
            r->content_offset = at + record_size(len);
            return QFILE_RECORD;
        default:
            break;
        }
        str_reset(r->buf);
        append_type(r->buf, type);
        return fail(r, at, QFILE_BAD, "unexpected record %s in the envelope", str_cstr(r->buf));
    case S_CONTENT:
        if (type == REC_TYPE_NORM || type == REC_TYPE_CONT) {
            r->content_size += (long long) len + (type == REC_TYPE_NORM);
            r->in_cont = type == REC_TYPE_CONT;
            return QFILE_RECORD;
        }
        if (type != REC_TYPE_XTRA) {
            str_reset(r->buf);
            append_type(r->buf, type);
            return fail(r, at, QFILE_BAD, "unexpected record %s in the content", str_cstr(r->buf));
        }
        if (r->in_cont)
            return fail(r, at, QFILE_BAD, "content ends inside a continued line");
        if (len != 0)
            return fail(r, at, QFILE_BAD, "content end record is not empty");
        *section = QFILE_SEC_CONTENT;
        r->state = S_EXTRA;
        return QFILE_RECORD;
    case S_EXTRA:
        if (type == REC_TYPE_END) {
            if (r->pend_orcpt || r->pend_notify)
                return fail(r, at, QFILE_BAD, "file ends before the pending recipient record");
            if (len != 0)
                return fail(r, at, QFILE_BAD, "end record is not empty");
            if (check_size_record(r) != QFILE_RECORD)
                return r->result;
            r->state = S_END;
            return QFILE_RECORD;
        }
        if (r->maildrop)
            return fail(r, at, QFILE_BAD, "maildrop file: only the end record may follow the content");
        switch (type) {
        case REC_TYPE_WARN:
            if (r->pend_orcpt || r->pend_notify || !rec_parse_decimal(data, len, REC_TIME_MAX, &v))
                return fail(r, at, QFILE_BAD, "malformed warning time record");
            return QFILE_RECORD;
        case REC_TYPE_ATTR:
            if (r->pend_orcpt || r->pend_notify)
                return fail(r, at, QFILE_BAD, "attribute record between a recipient's records");
            if (!attr_ok(data, len))
                return fail(r, at, QFILE_BAD, "malformed attribute record");
            return QFILE_RECORD;
        case REC_TYPE_ORCPT:
        case REC_TYPE_NOTIFY:
        case REC_TYPE_RCPT:
        case REC_TYPE_DONE:
            return check_rcpt_record(r, type, data, len, at);
        default:
            str_reset(r->buf);
            append_type(r->buf, type);
            return fail(r, at, QFILE_BAD, "unexpected record %s after the content", str_cstr(r->buf));
        }
    default:
        return fail(r, at, QFILE_BAD, "internal error: bad reader state");
    }
}

int
qfile_reader_next(qfile_reader_t *r, struct qfile_rec *rec)
{
    str_t  *why;
    off_t   at = r->pos;
    int     type, rc;
    enum qfile_section section;

    if (r->state == S_FAILED || r->state == S_FINISHED)
        return r->result;
    if (r->state == S_END) {
        r->state = S_FINISHED;
        r->result = QFILE_DONE;
        return r->result;
    }
    why = str_new(64);
    type = rec_get(r->st, r->buf, QFILE_CONTENT_MAX, why);
    if (type == REC_EOF) {
        str_free(why);
        return fail(r, at, QFILE_BAD, "%s", r->state == S_FIRST ? "empty file"
                    : "file ends without an end record (incomplete)");
    }
    if (type == REC_IOERR) {
        rc = fail(r, at, QFILE_IOERR, "%s", str_cstr(why));
        str_free(why);
        return rc;
    }
    if (type == REC_BAD) {
        rc = fail(r, at, QFILE_BAD, "%s", str_cstr(why));
        str_free(why);
        return rc;
    }
    str_free(why);
    r->pos += record_size(str_len(r->buf));
    if ((rc = check_record(r, type, str_cstr(r->buf), str_len(r->buf), at, &section)) != QFILE_RECORD)
        return rc;
    if (r->state == S_END) {
        /* E must be the last record: look for anything after it now. */
        int     c = stream_getc(r->st);

        if (c >= 0)
            return fail(r, r->pos, QFILE_BAD, "data after the end record");
        if (c != STREAM_EOF)
            return fail(r, r->pos, QFILE_IOERR, "read error: %s", stream_strstatus(c));
    }
    rec->type = type;
    rec->section = section;
    rec->offset = at;
    rec->data = str_cstr(r->buf);
    rec->len = str_len(r->buf);
    return QFILE_RECORD;
}

/* Parsing into a struct qfile. */

void
qfile_free(struct qfile *qf)
{
    mem_free(qf->fullname);
    mem_free(qf->sender);
    for (size_t i = 0; i < qf->attr_count; i++) {
        mem_free(qf->attrs[i].name);
        mem_free(qf->attrs[i].value);
    }
    mem_free(qf->attrs);
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        mem_free(qf->rcpts[i].address);
        mem_free(qf->rcpts[i].orcpt);
    }
    mem_free(qf->rcpts);
    memset(qf, 0, sizeof(*qf));
}

const char *
qfile_attr(const struct qfile *qf, const char *name)
{
    for (size_t i = 0; i < qf->attr_count; i++)
        if (strcmp(qf->attrs[i].name, name) == 0)
            return qf->attrs[i].value;
    return NULL;
}

int
qfile_read(int fd, const char *name, int flags, struct qfile *qf, str_t *err)
{
    qfile_reader_t *r = qfile_reader_new(fd, name, flags);
    struct qfile_rec rec;
    size_t  attr_cap = 0, rcpt_cap = 0;
    char   *orcpt = NULL;
    int     notify = 0, rc;
    long long v;

    memset(qf, 0, sizeof(*qf));
    qf->size_offset = -1;
    while ((rc = qfile_reader_next(r, &rec)) == QFILE_RECORD) {
        if (rec.section == QFILE_SEC_CONTENT)
            continue;
        switch (rec.type) {
        case REC_TYPE_SIZE:
            qf->size_offset = rec.offset;
            break;
        case REC_TYPE_TIME:
            (void) rec_parse_time(rec.data, rec.len, &qf->arrival_sec, &qf->arrival_usec);
            break;
        case REC_TYPE_FULLNAME:
            qf->fullname = mem_strndup(rec.data, rec.len);
            break;
        case REC_TYPE_SENDER:
            qf->sender = mem_strndup(rec.data, rec.len);
            break;
        case REC_TYPE_ATTR: {
            const char *eq = memchr(rec.data, '=', rec.len);

            qf->attrs = mem_grow_array(qf->attrs, &attr_cap, qf->attr_count + 1, sizeof(*qf->attrs));
            qf->attrs[qf->attr_count].name = mem_strndup(rec.data, (size_t) (eq - rec.data));
            qf->attrs[qf->attr_count].value = mem_strndup(eq + 1, rec.len - (size_t) (eq + 1 - rec.data));
            qf->attr_count++;
            break;
        }
        case REC_TYPE_ORCPT:
            orcpt = mem_strndup(rec.data, rec.len);
            break;
        case REC_TYPE_NOTIFY:
            if (rec_parse_decimal(rec.data, rec.len, 15, &v))
                notify = (int) v;
            break;
        case REC_TYPE_RCPT:
        case REC_TYPE_DONE: {
            struct qfile_rcpt *rp;

            qf->rcpts = mem_grow_array(qf->rcpts, &rcpt_cap, qf->rcpt_count + 1, sizeof(*qf->rcpts));
            rp = &qf->rcpts[qf->rcpt_count++];
            rp->address = mem_strndup(rec.data, rec.len);
            rp->orcpt = orcpt;
            rp->notify = notify;
            rp->done = rec.type == REC_TYPE_DONE;
            rp->offset = rec.offset;
            if (!rp->done)
                qf->rcpt_todo++;
            orcpt = NULL;
            notify = 0;
            break;
        }
        case REC_TYPE_MESG:
            qf->content_offset = rec.offset + record_size(0);
            break;
        case REC_TYPE_WARN:
            if (rec_parse_decimal(rec.data, rec.len, REC_TIME_MAX, &v))
                qf->warn_time = v;
            break;
        default:
            break;
        }
    }
    mem_free(orcpt);
    qf->maildrop = qfile_reader_is_maildrop(r);
    qf->message_size = r->content_size;
    if (qf->sender == NULL)
        qf->sender = mem_strdup("");
    if (err) {
        str_reset(err);
        str_append_cstr(err, qfile_reader_error(r));
    }
    qfile_reader_free(r);
    return rc;
}

int
qfile_mark_done(int fd, off_t offset, bool sync)
{
    char    c;
    ssize_t n;

    if (offset < 0) {
        errno = EINVAL;
        return -1;
    }
    do {
        n = pread(fd, &c, 1, offset);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0 || (c != REC_TYPE_RCPT && c != REC_TYPE_DONE)) {
        errno = EINVAL;
        return -1;
    }
    if (c == REC_TYPE_RCPT) {
        c = REC_TYPE_DONE;
        do {
            n = pwrite(fd, &c, 1, offset);
        } while (n < 0 && errno == EINTR);
        if (n != 1) {
            if (n >= 0)
                errno = EIO;
            return -1;
        }
    }
    if (sync && fdatasync(fd) != 0)
        return -1;
    return 0;
}
