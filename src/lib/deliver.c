/*
 * deliver.c - the delivery agents' shared library (see deliver.h).
 *
 * Four parts:
 *   - the request from qmgr (deliver_proto.h): read, check, free;
 *   - per-recipient results with their Postfix-style log line, and the
 *     reply;
 *   - deliver_copy(): the message from the queue file to a descriptor,
 *     with optional mbox "From " line and quoting, CRLF, dot-stuffing;
 *   - the mailbox writers: Maildir (tmp/ -> new/) and mbox (dot-lock plus
 *     fcntl lock, truncated back on any failure).
 *
 * Trust: the request comes from qmgr and the queue file from cleanup, but
 * both are checked: attribute limits and types, queue name and ID syntax,
 * no CR/LF/NUL in addresses, the content offset against the file's own C
 * record, and only content records between M and X. Mailbox paths come
 * from the agent's configuration; the writers refuse a symbolic link as
 * the final component, anything but a directory / regular file, and a
 * mailbox owned by someone else than the effective uid.
 *
 * Durability: a mailbox delivery is reported successful only after the
 * data (and for Maildir the new/ directory entry) is on disk. A Maildir
 * file is written as an unnamed file in tmp/ (O_TMPFILE) and linked into
 * new/, or where that cannot be done written under its name in tmp/ and
 * renamed into new/; then it is fsync'ed: on Linux that one fsync makes
 * the data and the new name durable (the reasoning is in
 * src/cleanup/cleanup_out.c), where a sync of the file before the move
 * and of new/ after it cost two device flushes. The file is complete
 * when it appears in new/; only a power loss before the fsync ends could
 * leave a partly written copy there, and the message, not yet reported
 * delivered, is then delivered again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "attr.h"
#include "clock.h"
#include "deliver.h"
#include "log.h"
#include "mem.h"
#include "qfile.h"
#include "queue.h"
#include "rec.h"
#include "server.h"

/* Limits of a request: a few envelope attributes and five per recipient. */
#define DELIVER_ATTR_MAX    (32 + 5 * DELIVER_MAX_RCPT)
#define DELIVER_VALUE_MAX   QFILE_ENV_MAX
#define DELIVER_TOTAL_MAX   (4 * 1024 * 1024)
#define DELIVER_REASON_MAX  2000        /* longest reason text kept */
#define DELIVER_OFFSET_MAX  (1LL << 62)

/* Output is written in blocks of about this size. */
#define COPY_BLOCK          (64 * 1024)

/* mbox locking, as Postfix's deliver_lock_attempts/_delay and stale_lock_time. */
#define MBOX_LOCK_ATTEMPTS  20
#define MBOX_LOCK_DELAY_S   1
#define MBOX_STALE_LOCK_S   500

static const char *fail_dsn = "4.3.0";

const char *
deliver_fail_dsn(void)
{
    return fail_dsn;
}

/* ---------------------------------------------------------------- request */

/* An address or text field from qmgr must not hold CR or LF (log and header safety). */
static bool
text_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

/*
 * Get string attribute "name" into *out (a copy). Missing: the default
 * (NULL def = required). Returns false with err set on a problem.
 */
static bool
get_text(attr_list_t *al, const char *name, const char *def, char **out, str_t *err)
{
    const char *v;
    int     rc = attr_get_str(al, name, &v);

    if (rc == ATTR_MISSING && def != NULL)
        v = def;
    else if (rc != ATTR_OK) {
        str_printf(err, "bad delivery request: %s", attr_last_error(al));
        return false;
    }
    if (!text_ok(v)) {
        str_printf(err, "bad delivery request: attribute \"%s\" holds a line break", name);
        return false;
    }
    *out = mem_strdup(v);
    return true;
}

/* Integer attribute in [min, max]; missing: def (required when !optional). */
static bool
get_num(attr_list_t *al, const char *name, bool optional, long long def, long long min,
        long long max, long long *out, str_t *err)
{
    int     rc = attr_get_int(al, name, min, max, out);

    if (rc == ATTR_MISSING && optional) {
        *out = def;
        return true;
    }
    if (rc != ATTR_OK) {
        str_printf(err, "bad delivery request: %s", attr_last_error(al));
        return false;
    }
    return true;
}

/* Read the request attributes into rq; false with err set. */
static bool
request_parse(attr_list_t *al, struct deliver_request *rq, str_t *err)
{
    long long n, count;
    char    name[ATTR_NAME_MAX + 1];

    if (!get_text(al, "queue_name", NULL, &rq->queue_name, err)
        || !get_text(al, "queue_id", NULL, &rq->queue_id, err))
        return false;
    if (!queue_name_ok(rq->queue_name) || !queue_id_ok(rq->queue_id)) {
        str_set_cstr(err, "bad delivery request: bad queue name or queue ID");
        return false;
    }
    if (!get_num(al, "content_offset", false, 0, 1, DELIVER_OFFSET_MAX, &n, err))
        return false;
    rq->content_offset = (off_t) n;
    if (!get_num(al, "message_size", true, 0, 0, DELIVER_OFFSET_MAX, &rq->message_size, err))
        return false;
    if (!get_num(al, "arrival_time", true, 0, 0, DELIVER_OFFSET_MAX, &n, err))
        return false;
    rq->arrival_time = n;
    if (!get_num(al, "active_time", true, rq->arrival_time, 0, DELIVER_OFFSET_MAX, &n, err))
        return false;
    rq->active_time = n;
    if (!get_text(al, "sender", NULL, &rq->sender, err)
        || !get_text(al, "transport", "", &rq->transport, err)
        || !get_text(al, "nexthop", "", &rq->nexthop, err)
        || !get_text(al, "encoding", "", &rq->encoding, err)
        || !get_text(al, "dsn_envid", "", &rq->dsn_envid, err)
        || !get_text(al, "client_name", "", &rq->client_name, err)
        || !get_text(al, "client_address", "", &rq->client_address, err)
        || !get_text(al, "helo_name", "", &rq->helo_name, err)
        || !get_text(al, "protocol", "", &rq->protocol, err))
        return false;
    if (!get_num(al, "smtputf8", true, 0, 0, 1, &n, err))
        return false;
    rq->smtputf8 = n != 0;
    if (!get_num(al, "dsn_ret", true, 0, 0, DSN_RET_HDRS, &n, err))
        return false;
    rq->dsn_ret = (int) n;
    if (!get_num(al, "flags", true, 0, 0, 0x7fffffff, &n, err))
        return false;
    rq->flags = (int) n;
    if (!get_num(al, "rcpt_count", false, 0, 1, DELIVER_MAX_RCPT, &count, err))
        return false;
    rq->rcpt = mem_array((size_t) count, sizeof(*rq->rcpt));
    for (size_t i = 0; i < (size_t) count; i++) {
        struct deliver_rcpt *r = &rq->rcpt[i];

        rq->nrcpt = i + 1;          /* so that free() sees this one */
        snprintf(name, sizeof(name), "rcpt_%zu_address", i);
        if (!get_text(al, name, NULL, &r->address, err))
            return false;
        snprintf(name, sizeof(name), "rcpt_%zu_orig", i);
        if (!get_text(al, name, "", &r->orig, err))
            return false;
        snprintf(name, sizeof(name), "rcpt_%zu_orcpt", i);
        if (!get_text(al, name, "", &r->orcpt, err))
            return false;
        snprintf(name, sizeof(name), "rcpt_%zu_notify", i);
        if (!get_num(al, name, true, 0, 0, 0xff, &n, err))
            return false;
        r->notify = (int) n;
        snprintf(name, sizeof(name), "rcpt_%zu_offset", i);
        if (!get_num(al, name, true, 0, 0, DELIVER_OFFSET_MAX, &r->offset, err))
            return false;
        if (strlen(r->address) > ADDR_MAX_LEN) {
            str_printf(err, "bad delivery request: recipient %zu is too long", i);
            return false;
        }
    }
    if (attr_check_end(al, err) != ATTR_OK) {
        str_t  *why = str_new(0);

        str_printf(why, "bad delivery request: %s", str_cstr(err));
        str_set_cstr(err, str_cstr(why));
        str_free(why);
        return false;
    }
    return true;
}

/* Open the request's queue file read-only; -1 with err set. */
static int
open_queue_file(const struct deliver_request *rq, str_t *err)
{
    str_t  *path = str_new(0);
    int     fd;

    queue_path(path, rq->queue_name, rq->queue_id);
    fd = open(str_cstr(path), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        str_printf(err, "cannot open queue file %s: %s", str_cstr(path), strerror(errno));
    str_free(path);
    return fd;
}

/* Read one request (after the greeting, when greet); *eof when the client closed before it. */
static struct deliver_request *
request_read(stream_t *client, bool greet, bool *eof, str_t *err)
{
    static const struct attr_limits limits = {
        .max_attrs = DELIVER_ATTR_MAX,
        .max_value = DELIVER_VALUE_MAX,
        .max_total = DELIVER_TOTAL_MAX,
    };
    attr_list_t *al = attr_list_new();
    struct deliver_request *rq = mem_zalloc(sizeof(*rq));
    int     rc;

    str_reset(err);
    rq->start_ms = clock_now_ms();
    if (greet && attr_send_protocol(client, DELIVER_PROTOCOL) != ATTR_OK) {
        str_printf(err, "cannot send greeting: %s", stream_strstatus(stream_status(client)));
        goto bad;
    }
    rc = attr_read(client, &limits, al, err);
    if (rc != ATTR_OK) {
        if (rc == ATTR_EOF && eof)
            *eof = true;
        if (rc == ATTR_EOF)
            str_set_cstr(err, "client closed the connection before its request");
        else if (rc == ATTR_IOERR)
            str_printf(err, "cannot read request: %s", stream_strstatus(stream_status(client)));
        goto bad;
    }
    rq->start_ms = clock_now_ms();
    if (!request_parse(al, rq, err))
        goto bad;
    if ((rq->queue_fd = open_queue_file(rq, err)) < 0)
        goto bad;
    rq->queue_fd_set = true;
    attr_list_free(al);
    return rq;

bad:
    attr_list_free(al);
    deliver_request_free(rq);
    return NULL;
}

struct deliver_request *
deliver_request_read(stream_t *client, str_t *err)
{
    return request_read(client, true, NULL, err);
}

void
deliver_serve(stream_t *client, deliver_fn deliver, void *ctx)
{
    str_t  *err = str_new(0);

    for (bool first = true;; first = false) {
        struct deliver_request *rq;
        bool    eof = false;

        /* qmgr may keep the connection for its next request: wait, then quietly end. */
        if (!first && !server_take_another(client, DELIVER_IDLE_S * 1000))
            break;
        if ((rq = request_read(client, first, &eof, err)) == NULL) {
            if (eof && !first)
                break;              /* qmgr let the kept connection go */
            log_warn("bad delivery request: %s", str_cstr(err));
            (void) deliver_reply_error(client, str_cstr(err));
            break;
        }
        deliver(rq, ctx);
        if (deliver_reply(client, rq) != 0) {
            deliver_request_free(rq);
            break;
        }
        deliver_request_free(rq);
    }
    str_free(err);
}

void
deliver_request_free(struct deliver_request *rq)
{
    if (rq == NULL)
        return;
    if (rq->queue_fd_set && close(rq->queue_fd) != 0)
        log_warn_errno("close queue file %s", rq->queue_id ? rq->queue_id : "?");
    mem_free(rq->queue_name);
    mem_free(rq->queue_id);
    mem_free(rq->sender);
    mem_free(rq->transport);
    mem_free(rq->nexthop);
    mem_free(rq->encoding);
    mem_free(rq->dsn_envid);
    mem_free(rq->client_name);
    mem_free(rq->client_address);
    mem_free(rq->helo_name);
    mem_free(rq->protocol);
    for (size_t i = 0; i < rq->nrcpt; i++) {
        struct deliver_rcpt *r = &rq->rcpt[i];

        mem_free(r->address);
        mem_free(r->orig);
        mem_free(r->orcpt);
        str_free(r->dsn);
        str_free(r->reason);
        str_free(r->relay);
    }
    mem_free(rq->rcpt);
    mem_free(rq);
}

/* ---------------------------------------------------------------- results */

/* Seconds as Postfix prints them in delay=: "0", "0.25", "3.1", "125". */
static void
append_secs(str_t *out, int64_t ms)
{
    if (ms < 5) {
        str_append_cstr(out, "0");
    } else if (ms < 10000) {
        char    buf[32];
        size_t  n;

        snprintf(buf, sizeof(buf), "%.2f", (double) ms / 1000.0);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '0')
            buf[--n] = 0;
        if (n > 0 && buf[n - 1] == '.')
            buf[--n] = 0;
        str_append_cstr(out, buf);
    } else {
        str_append_printf(out, "%lld", (long long) ((ms + 500) / 1000));
    }
}

static int64_t
nonneg(int64_t v)
{
    return v < 0 ? 0 : v;
}

void
deliver_delays(const struct deliver_request *rq, str_t *out)
{
    int64_t now = clock_now_ms();
    int64_t arrival = rq->arrival_time * 1000, active = rq->active_time * 1000;

    if (arrival == 0)
        arrival = active ? active : rq->start_ms;
    if (active < arrival)
        active = arrival;
    str_append_cstr(out, "delay=");
    append_secs(out, nonneg(now - arrival));
    str_append_cstr(out, ", delays=");
    append_secs(out, nonneg(active - arrival));
    str_putc(out, '/');
    append_secs(out, nonneg(rq->start_ms - active));
    str_append_cstr(out, "/0/");
    append_secs(out, nonneg(now - rq->start_ms));
}

/* Copy text into out with control bytes as spaces, at most DELIVER_REASON_MAX bytes. */
static void
set_clean(str_t *out, const char *text)
{
    str_reset(out);
    for (const unsigned char *p = (const unsigned char *) text;
         *p && str_len(out) < DELIVER_REASON_MAX; p++)
        str_putc(out, *p < 0x20 || *p == 0x7f ? ' ' : *p);
}

static void
set_result(struct deliver_request *rq, size_t i, const char *result, const char *relay,
           const char *dsn, const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* Set recipient i's result and log its line. */
static void
set_result(struct deliver_request *rq, size_t i, const char *result, const char *relay,
           const char *dsn, const char *fmt, va_list ap)
{
    struct deliver_rcpt *r;
    str_t  *text = str_new(0), *line = str_new(0), *ext = str_new(0);

    if (i >= rq->nrcpt)
        log_panic("deliver result for recipient %zu of %zu", i, rq->nrcpt);
    r = &rq->rcpt[i];
    if (r->dsn == NULL) {
        r->dsn = str_new(0);
        r->reason = str_new(0);
        r->relay = str_new(0);
    }
    r->result = result;
    str_append_vprintf(text, fmt, ap);
    set_clean(r->reason, str_cstr(text));
    set_clean(r->dsn, dsn);
    set_clean(r->relay, relay);

    addr_externalize(ext, r->address);
    str_printf(line, "%s: to=<%s>, ", rq->queue_id, str_cstr(ext));
    if (r->orig[0] && strcmp(r->orig, r->address) != 0) {
        addr_externalize(ext, r->orig);
        str_append_printf(line, "orig_to=<%s>, ", str_cstr(ext));
    }
    str_append_printf(line, "relay=%s, ", str_cstr(r->relay));
    deliver_delays(rq, line);
    str_append_printf(line, ", dsn=%s, status=%s (%s)", str_cstr(r->dsn), result,
                      str_cstr(r->reason));
    log_info("%s", str_cstr(line));
    str_free(text);
    str_free(line);
    str_free(ext);
}

void
deliver_sent(struct deliver_request *rq, size_t i, const char *relay, const char *dsn,
             const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_result(rq, i, DELIVER_RESULT_SENT, relay, dsn, fmt, ap);
    va_end(ap);
}

void
deliver_defer(struct deliver_request *rq, size_t i, const char *relay, const char *dsn,
              const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_result(rq, i, DELIVER_RESULT_DEFER, relay, dsn, fmt, ap);
    va_end(ap);
}

void
deliver_bounce(struct deliver_request *rq, size_t i, const char *relay, const char *dsn,
               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_result(rq, i, DELIVER_RESULT_BOUNCE, relay, dsn, fmt, ap);
    va_end(ap);
}

int
deliver_reply(stream_t *client, struct deliver_request *rq)
{
    attr_list_t *al = attr_list_new();
    char    name[ATTR_NAME_MAX + 1];
    int     rc;

    attr_put_int(al, "status", 0);
    for (size_t i = 0; i < rq->nrcpt; i++) {
        struct deliver_rcpt *r = &rq->rcpt[i];

        if (r->result == NULL)
            deliver_defer(rq, i, "none", "4.3.0", "delivery agent gave no result");
        snprintf(name, sizeof(name), "rcpt_%zu_result", i);
        attr_put_str(al, name, r->result);
        snprintf(name, sizeof(name), "rcpt_%zu_dsn", i);
        attr_put_str(al, name, str_cstr(r->dsn));
        snprintf(name, sizeof(name), "rcpt_%zu_reason", i);
        attr_put_str(al, name, str_cstr(r->reason));
        snprintf(name, sizeof(name), "rcpt_%zu_relay", i);
        attr_put_str(al, name, str_cstr(r->relay));
    }
    rc = attr_write(client, al);
    attr_list_free(al);
    if (rc != ATTR_OK) {
        log_warn("%s: cannot send the delivery reply: %s", rq->queue_id,
                 stream_strstatus(stream_status(client)));
        return -1;
    }
    return 0;
}

int
deliver_reply_error(stream_t *client, const char *reason)
{
    attr_list_t *al = attr_list_new();
    str_t  *clean = str_new(0);
    int     rc;

    set_clean(clean, reason);
    attr_put_int(al, "status", 1);
    attr_put_str(al, "reason", str_cstr(clean));
    rc = attr_write(client, al);
    attr_list_free(al);
    str_free(clean);
    return rc == ATTR_OK ? 0 : -1;
}

/* ---------------------------------------------------------------- copying */

struct copy {
    int     fd;                 /* output */
    int     flags;              /* DELIVER_COPY_* */
    bool    bol;                /* at the beginning of an output line */
    str_t  *buf;
    int     write_errno;        /* non-zero after a write failure */
};

static int
copy_flush(struct copy *c)
{
    if (str_len(c->buf) == 0)
        return 0;
    if (fd_write_all(c->fd, str_cstr(c->buf), str_len(c->buf)) < 0) {
        c->write_errno = errno ? errno : EIO;
        return -1;
    }
    str_reset(c->buf);
    return 0;
}

/* One piece of a line (eol: the line ends here), quoted as the flags say. */
static int
copy_emit(struct copy *c, const char *data, size_t len, bool eol)
{
    if (c->bol) {
        if ((c->flags & (DELIVER_COPY_MBOX | DELIVER_COPY_QUOTE_FROM)) && len >= 5
            && memcmp(data, "From ", 5) == 0)
            str_putc(c->buf, '>');
        if ((c->flags & DELIVER_COPY_DOT) && len >= 1 && data[0] == '.')
            str_putc(c->buf, '.');
    }
    str_append(c->buf, data, len);
    if (eol)
        str_append_cstr(c->buf, (c->flags & DELIVER_COPY_CRLF) ? "\r\n" : "\n");
    c->bol = eol;
    return str_len(c->buf) >= COPY_BLOCK ? copy_flush(c) : 0;
}

/* The mbox "From sender date" line. */
static void
copy_from_line(struct copy *c, const char *sender)
{
    char    date[64];
    time_t  now = clock_now();
    struct tm tm;

    str_append_cstr(c->buf, "From ");
    if (*sender == 0)
        sender = "MAILER-DAEMON";
    for (const char *p = sender; *p; p++)
        str_putc(c->buf, *p == ' ' || *p == '\t' ? '_' : *p);
    if (localtime_r(&now, &tm) == NULL || strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y",
                                                   &tm) == 0)
        snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
    str_append_printf(c->buf, "  %s", date);
    str_append_cstr(c->buf, (c->flags & DELIVER_COPY_CRLF) ? "\r\n" : "\n");
}

/*
 * Check the head of the queue file (V, then C) and that its content offset
 * is the one in the request. Returns 0, or -1 with why set.
 */
static int
check_head(stream_t *st, const struct deliver_request *rq, str_t *why)
{
    str_t  *data = str_new(0), *err = str_new(0);
    long long size, offset, nrcpt;
    int     type, rc = -1;

    type = rec_get(st, data, QFILE_ENV_MAX, err);
    if (type != REC_TYPE_VERSION || !str_eq_cstr(data, REC_VERSION_CURRENT)) {
        str_printf(why, "queue file %s: no version record", rq->queue_id);
    } else if ((type = rec_get(st, data, QFILE_ENV_MAX, err)) != REC_TYPE_SIZE
               || sscanf(str_cstr(data), "%lld %lld %lld", &size, &offset, &nrcpt) != 3) {
        str_printf(why, "queue file %s: no size record", rq->queue_id);
    } else if (offset != (long long) rq->content_offset) {
        str_printf(why, "queue file %s: content offset %lld in the request, %lld in the file",
                   rq->queue_id, (long long) rq->content_offset, offset);
    } else {
        rc = 0;
    }
    str_free(data);
    str_free(err);
    return rc;
}

/* The content records, M+1 through X, into c. Returns 0 or -1 with why. */
static int
copy_content(stream_t *st, const struct deliver_request *rq, struct copy *c, str_t *why)
{
    str_t  *data = str_new(0), *err = str_new(0);
    int     rc = -1;

    /* Most often within what check_head() read: no second read of the file. */
    if (stream_seek(st, rq->content_offset) != STREAM_OK) {
        str_printf(why, "queue file %s: seek: %s", rq->queue_id, strerror(stream_errno(st)));
        goto out;
    }
    for (;;) {
        int     type = rec_get(st, data, QFILE_CONTENT_MAX, err);

        if (type == REC_TYPE_NORM || type == REC_TYPE_CONT) {
            if (copy_emit(c, str_cstr(data), str_len(data), type == REC_TYPE_NORM) < 0) {
                str_printf(why, "write error: %s", strerror(c->write_errno));
                break;
            }
        } else if (type == REC_TYPE_XTRA) {
            if (!c->bol && copy_emit(c, "", 0, true) < 0) {
                str_printf(why, "write error: %s", strerror(c->write_errno));
                break;
            }
            rc = 0;
            break;
        } else if (type >= 0) {
            str_printf(why, "queue file %s: unexpected %s record in the content",
                       rq->queue_id, rec_type_name(type));
            break;
        } else {
            str_printf(why, "queue file %s: %s", rq->queue_id,
                       type == REC_EOF ? "content ends without X record"
                       : str_len(err) ? str_cstr(err) : "read error");
            break;
        }
    }
out:
    str_free(data);
    str_free(err);
    return rc;
}

int
deliver_copy(struct deliver_request *rq, int fd, const char *const *headers, int flags,
             str_t *why)
{
    struct copy c = {.fd = fd, .flags = flags, .bol = true, .buf = str_new(COPY_BLOCK + 4096)};
    int     qfd = rq->queue_fd, rc = -1;
    stream_t *st = NULL;

    str_reset(why);
    if (!rq->queue_fd_set && (qfd = open_queue_file(rq, why)) < 0) {
        str_free(c.buf);
        errno = EBADMSG;
        return -1;
    }
    if (lseek(qfd, 0, SEEK_SET) < 0) {
        str_printf(why, "queue file %s: seek: %s", rq->queue_id, strerror(errno));
        goto out;
    }
    st = stream_open_file(qfd, 0);
    if (check_head(st, rq, why) < 0)
        goto out;
    if (flags & DELIVER_COPY_MBOX)
        copy_from_line(&c, rq->sender);
    /* The caller's header lines are not quoted: a "From " line may be one of them. */
    c.flags &= ~(DELIVER_COPY_MBOX | DELIVER_COPY_QUOTE_FROM);
    for (size_t h = 0; headers != NULL && headers[h] != NULL; h++) {
        if (copy_emit(&c, headers[h], strlen(headers[h]), true) < 0) {
            str_printf(why, "write error: %s", strerror(c.write_errno));
            goto out;
        }
    }
    c.flags = flags;
    if (copy_content(st, rq, &c, why) < 0)
        goto out;
    if ((flags & (DELIVER_COPY_MBOX | DELIVER_COPY_BLANK)) && copy_emit(&c, "", 0, true) < 0) {
        str_printf(why, "write error: %s", strerror(c.write_errno));
        goto out;
    }
    if (copy_flush(&c) < 0) {
        str_printf(why, "write error: %s", strerror(c.write_errno));
        goto out;
    }
    rc = 0;
out:
    if (st)
        stream_abandon(st);
    if (!rq->queue_fd_set && close(qfd) != 0)
        log_warn_errno("close queue file %s", rq->queue_id);
    str_free(c.buf);
    /* A write error keeps its errno; a queue file problem must not look like one. */
    errno = rc == 0 ? 0 : c.write_errno ? c.write_errno : EBADMSG;
    return rc;
}

/* ---------------------------------------------------------------- mailboxes */

/*
 * Record a failure: its DSN, its text, and whether it is temporary. err is
 * the errno that caused it (0 when none): ENOSPC/EDQUOT are temporary
 * "full" conditions, EFBIG a permanent size limit, ELOOP a symbolic link.
 */
/* Classify a failure by its errno (0: none) and set fail_dsn. */
static int
classify(int err, bool perm)
{
    switch (err) {
    case ENOSPC:
        fail_dsn = "4.3.1";
        return DELIVER_FAIL_TEMP;
    case EDQUOT:
        fail_dsn = "4.2.2";
        return DELIVER_FAIL_TEMP;
    case EFBIG:
        fail_dsn = "5.2.2";
        return DELIVER_FAIL_PERM;
    case ELOOP:
        fail_dsn = "5.2.0";
        return DELIVER_FAIL_PERM;
    case EBADMSG:                   /* deliver_copy: the queue file, not the mailbox */
        fail_dsn = "4.3.0";
        return DELIVER_FAIL_TEMP;
    default:
        fail_dsn = perm ? "5.2.0" : "4.2.0";
        return perm ? DELIVER_FAIL_PERM : DELIVER_FAIL_TEMP;
    }
}

static int
fail(str_t *why, int err, bool perm, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Record a failure: why = the text (+ ": strerror(err)"); returns DELIVER_FAIL_*. */
static int
fail(str_t *why, int err, bool perm, const char *fmt, ...)
{
    va_list ap;

    str_reset(why);
    va_start(ap, fmt);
    str_append_vprintf(why, fmt, ap);
    va_end(ap);
    if (err != 0 && err != EBADMSG)
        str_append_printf(why, ": %s", strerror(err));
    return classify(err, perm);
}

/* A deliver_copy() failure (errno err, its text in why) while writing "what". */
static int
fail_copy(str_t *why, int err, const char *what, const char *name)
{
    str_t  *text = str_new(0);
    int     rc;

    str_printf(text, "cannot write %s%s (%s)", what, name, str_cstr(why));
    str_set_cstr(why, str_cstr(text));
    str_free(text);
    rc = classify(err, false);
    return rc;
}

/* Return-Path: and Delivered-To: for recipient i. */
static void
make_headers(const struct deliver_request *rq, size_t i, str_t *rp, str_t *dt)
{
    str_t  *ext = str_new(0);

    if (i >= rq->nrcpt)
        log_panic("deliver: recipient %zu of %zu", i, rq->nrcpt);
    addr_externalize(ext, rq->sender);
    str_printf(rp, "Return-Path: <%s>", str_cstr(ext));
    addr_externalize(ext, rq->rcpt[i].address);
    str_lower(ext);
    str_printf(dt, "Delivered-To: %s", str_cstr(ext));
    str_free(ext);
}

/* mkdir -p for the parents of path (not path itself), as the current euid. */
static void
make_parents(const char *path)
{
    str_t  *p = str_new(0);

    str_set_cstr(p, path);
    for (size_t i = 1; i < str_len(p); i++) {
        if (p->data[i] != '/')
            continue;
        p->data[i] = 0;
        if (mkdir(p->data, 0700) != 0 && errno != EEXIST)
            break;
        p->data[i] = '/';
    }
    str_free(p);
}

/*
 * Open (creating; then *made is set) the subdirectory name of dfd, refusing
 * links and directories not owned by uid me (the current euid).
 */
static int
open_subdir(int dfd, const char *dir, const char *name, uid_t me, bool *made, str_t *why,
            int *rc)
{
    struct stat st;
    int     fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT) {
        if (mkdirat(dfd, name, 0700) != 0 && errno != EEXIST) {
            *rc = fail(why, errno, false, "cannot create maildir %s/%s", dir, name);
            return -1;
        }
        *made = true;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        *rc = fail(why, errno, errno == ENOTDIR, "cannot open maildir %s/%s", dir, name);
        return -1;
    }
    if (fstat(fd, &st) != 0 || st.st_uid != me) {
        *rc = fail(why, 0, false, "maildir %s/%s is not owned by uid %ld", dir, name, (long) me);
        close(fd);
        return -1;
    }
    return fd;
}

/* A unique Maildir file name: SECONDS.MmicroPpidQcount.host */
static void
maildir_name(str_t *out)
{
    static unsigned long count;
    static char host[256];
    static pid_t pid;
    int64_t now = clock_now_ms();

    if (host[0] == 0 && (gethostname(host, sizeof(host) - 1) != 0 || host[0] == 0))
        snprintf(host, sizeof(host), "localhost");
    if (pid == 0)
        pid = getpid();             /* agents deliver in the process they started as */
    str_printf(out, "%lld.M%lldP%ldQ%lu.", (long long) (now / 1000),
               (long long) (now % 1000) * 1000, (long) pid, ++count);
    for (const char *h = host; *h; h++) {
        if (*h == '/')
            str_append_cstr(out, "\\057");
        else if (*h == ':')
            str_append_cstr(out, "\\072");
        else
            str_putc(out, *h);
    }
}

/* Whether this process writes only named files in tmp/ (see deliver_maildir). */
static bool maildir_named_only;

void
deliver_maildir_named(bool on)
{
    maildir_named_only = on;
}

/*
 * Give the unnamed file fd the name "name" in directory dfd, refusing to
 * replace anything. linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH, which
 * an agent running as a mailbox owner lacks; the /proc/self/fd link does
 * the same without it. -1 with errno ENOENT or EPERM when neither can.
 */
static int
link_unnamed(int fd, int dfd, const char *name)
{
    char    proc[64];

    if (linkat(fd, "", dfd, name, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno != ENOENT && errno != EPERM)
        return -1;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW);
}

int
deliver_maildir(struct deliver_request *rq, size_t i, const char *dir, str_t *why)
{
    str_t  *path = str_new(0), *name = str_new(0), *rp = str_new(0), *dt = str_new(0);
    const char *headers[3];
    int     dfd = -1, tmpfd = -1, newfd = -1, fd = -1, rc = DELIVER_FAIL_TEMP;
    bool    in_tmp = false, made = false;
    struct stat st;
    uid_t   me = geteuid();

    /* No trailing '/': it would make O_NOFOLLOW follow a link. */
    str_set_cstr(path, dir);
    while (str_len(path) > 1 && path->data[str_len(path) - 1] == '/')
        str_truncate(path, str_len(path) - 1);
    if (str_len(path) == 0 || str_eq_cstr(path, "/")) {
        rc = fail(why, 0, true, "bad maildir path \"%s\"", dir);
        goto out;
    }
    dfd = open(str_cstr(path), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT) {
        make_parents(str_cstr(path));
        if (mkdir(str_cstr(path), 0700) != 0 && errno != EEXIST) {
            rc = fail(why, errno, false, "cannot create maildir %s", str_cstr(path));
            goto out;
        }
        dfd = open(str_cstr(path), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (dfd < 0) {
        struct stat lst;

        /* O_DIRECTORY|O_NOFOLLOW on a link fails with ENOTDIR or ELOOP. */
        if ((errno == ELOOP || errno == ENOTDIR) && lstat(str_cstr(path), &lst) == 0
            && S_ISLNK(lst.st_mode))
            rc = fail(why, 0, true, "maildir %s is a symbolic link", str_cstr(path));
        else
            rc = fail(why, errno, errno == ENOTDIR, "cannot open maildir %s", str_cstr(path));
        goto out;
    }
    if (fstat(dfd, &st) != 0 || st.st_uid != me) {
        rc = fail(why, 0, false, "maildir %s is not owned by uid %ld", str_cstr(path), (long) me);
        goto out;
    }
    if ((tmpfd = open_subdir(dfd, str_cstr(path), "tmp", me, &made, why, &rc)) < 0
        || (newfd = open_subdir(dfd, str_cstr(path), "new", me, &made, why, &rc)) < 0)
        goto out;
    /* cur/ is made along with the others, not looked for at every delivery (as Postfix does). */
    if (made) {
        int     curfd = open_subdir(dfd, str_cstr(path), "cur", me, &made, why, &rc);

        if (curfd < 0)
            goto out;
        close(curfd);
    }

    maildir_name(name);
    make_headers(rq, i, rp, dt);
    headers[0] = str_cstr(rp);
    headers[1] = str_cstr(dt);
    headers[2] = NULL;
    /*
     * The message goes to an unnamed file (O_TMPFILE) in tmp/, which is
     * linked into new/ when complete; a failure or a crash on the way
     * leaves nothing behind. Where the file system has no unnamed files, or
     * the link is impossible (no /proc in a chroot), the file is named in
     * tmp/ and renamed into new/, as the Maildir convention describes.
     */
    for (bool named = maildir_named_only;;) {
        if (!named) {
            fd = openat(tmpfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
            if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
                maildir_named_only = named = true;
                continue;
            }
        } else {
            fd = openat(tmpfd, str_cstr(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                        | O_CLOEXEC, 0600);
            in_tmp = fd >= 0;
        }
        if (fd < 0) {
            rc = fail(why, errno, false, "cannot create %s/tmp/%s", str_cstr(path),
                      str_cstr(name));
            goto out;
        }
        if (deliver_copy(rq, fd, headers, 0, why) != 0) {
            str_append_cstr(path, "/tmp/");
            rc = fail_copy(why, errno, str_cstr(path), str_cstr(name));
            str_truncate(path, str_len(path) - 5);
            goto out;
        }
        if (named)
            break;
        if (link_unnamed(fd, newfd, str_cstr(name)) == 0)
            goto linked;
        if (errno != ENOENT && errno != EPERM) {
            rc = fail(why, errno, false, "cannot link %s/tmp/%s into new/", str_cstr(path),
                      str_cstr(name));
            goto out;
        }
        /* This process cannot link an unnamed file: it names its files from now on. */
        close(fd);
        fd = -1;
        maildir_named_only = named = true;
    }
    /* Into new/ under the same unique name, replacing nothing; then one fsync (see the top). */
    if (renameat2(tmpfd, str_cstr(name), newfd, str_cstr(name), RENAME_NOREPLACE) != 0
        && ((errno != EINVAL && errno != ENOSYS)       /* no RENAME_NOREPLACE: names are unique */
            || renameat(tmpfd, str_cstr(name), newfd, str_cstr(name)) != 0)) {
        rc = fail(why, errno, false, "cannot move %s/tmp/%s to new/", str_cstr(path),
                  str_cstr(name));
        goto out;
    }
    in_tmp = false;
linked:
    {
        int     cfd = fd, err = 0;

        fd = -1;
        if (fsync(cfd) != 0)
            err = errno;
        if (close(cfd) != 0 && err == 0)
            err = errno;
        if (err != 0) {
            /* Not durable: do not claim success, and take back what we put in new/. */
            rc = fail(why, err, false, "cannot fsync %s/new/%s", str_cstr(path), str_cstr(name));
            if (unlinkat(newfd, str_cstr(name), 0) != 0)
                log_warn_errno("cannot remove %s/new/%s", str_cstr(path), str_cstr(name));
            goto out;
        }
    }
    str_printf(why, "delivered to maildir %s/new/%s", str_cstr(path), str_cstr(name));
    rc = 0;

out:
    if (fd >= 0)
        close(fd);
    if (in_tmp && unlinkat(tmpfd, str_cstr(name), 0) != 0)
        log_warn_errno("cannot remove %s/tmp/%s", str_cstr(path), str_cstr(name));
    if (tmpfd >= 0)
        close(tmpfd);
    if (newfd >= 0)
        close(newfd);
    if (dfd >= 0)
        close(dfd);
    str_free(path);
    str_free(name);
    str_free(rp);
    str_free(dt);
    return rc;
}

/*
 * Take the dot-lock path.lock. Returns 1 when taken, 0 when the directory
 * does not let us create it (the fcntl lock alone protects the mailbox
 * then), or a DELIVER_FAIL_* with why.
 */
static int
dotlock_take(const char *lock, str_t *why)
{
    for (int attempt = 0; attempt < MBOX_LOCK_ATTEMPTS; attempt++) {
        int     fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        struct stat st;

        if (fd >= 0) {
            if (close(fd) != 0)
                log_warn_errno("close %s", lock);
            return 1;
        }
        if (errno == EACCES || errno == EPERM || errno == EROFS)
            return 0;
        if (errno != EEXIST)
            return fail(why, errno, false, "cannot create lock file %s", lock);
        if (lstat(lock, &st) == 0 && clock_now() - st.st_mtime > MBOX_STALE_LOCK_S) {
            if (unlink(lock) == 0) {
                log_warn("removed stale lock file %s", lock);
                continue;
            }
        }
        if (attempt + 1 < MBOX_LOCK_ATTEMPTS)
            sleep(MBOX_LOCK_DELAY_S);
    }
    return fail(why, 0, false, "mailbox is locked: lock file %s exists", lock);
}

/* The fcntl write lock on the whole file, with retries. 0 or DELIVER_FAIL_*. */
static int
fcntl_take(int fd, const char *path, str_t *why)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};

    for (int attempt = 0; attempt < MBOX_LOCK_ATTEMPTS; attempt++) {
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR)
            return fail(why, errno, false, "cannot lock mailbox %s", path);
        if (attempt + 1 < MBOX_LOCK_ATTEMPTS)
            sleep(MBOX_LOCK_DELAY_S);
    }
    return fail(why, 0, false, "mailbox %s is locked by another process", path);
}

int
deliver_mbox(struct deliver_request *rq, size_t i, const char *path, str_t *why)
{
    str_t  *lock = str_new(0), *rp = str_new(0), *dt = str_new(0);
    const char *headers[3];
    int     fd = -1, rc, locked = 0;
    struct stat st;
    off_t   start = -1;

    if (*path == 0 || path[strlen(path) - 1] == '/') {
        rc = fail(why, 0, true, "bad mailbox path \"%s\"", path);
        goto out;
    }
    str_printf(lock, "%s.lock", path);
    if ((locked = dotlock_take(str_cstr(lock), why)) < 0) {
        rc = locked;
        locked = 0;
        goto out;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY
              | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            rc = fail(why, 0, true, "mailbox %s is a symbolic link", path);
        else if (errno == EISDIR)
            rc = fail(why, 0, true, "mailbox %s is not a regular file", path);
        else
            rc = fail(why, errno, false, "cannot open mailbox %s", path);
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = fail(why, errno, false, "cannot stat mailbox %s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(why, 0, true, "mailbox %s is not a regular file", path);
        goto out;
    }
    if (st.st_nlink != 1) {
        rc = fail(why, 0, true, "mailbox %s has %ld hard links", path, (long) st.st_nlink);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc = fail(why, 0, false, "mailbox %s is owned by uid %ld, not %ld", path,
                  (long) st.st_uid, (long) geteuid());
        goto out;
    }
    if (fcntl(fd, F_SETFL, O_APPEND) != 0) {
        rc = fail(why, errno, false, "cannot set mailbox %s to blocking mode", path);
        goto out;
    }
    if ((rc = fcntl_take(fd, path, why)) != 0)
        goto out;
    if ((start = lseek(fd, 0, SEEK_END)) < 0) {
        rc = fail(why, errno, false, "cannot seek mailbox %s", path);
        goto out;
    }
    make_headers(rq, i, rp, dt);
    headers[0] = str_cstr(rp);
    headers[1] = str_cstr(dt);
    headers[2] = NULL;
    if (deliver_copy(rq, fd, headers, DELIVER_COPY_MBOX, why) != 0) {
        rc = fail_copy(why, errno, "mailbox ", path);
        goto truncate;
    }
    if (fsync(fd) != 0) {
        rc = fail(why, errno, false, "cannot fsync mailbox %s", path);
        goto truncate;
    }
    str_printf(why, "delivered to mailbox %s", path);
    rc = 0;
    goto out;

truncate:
    /* Leave the mailbox as it was: no half message for the next reader. */
    if (ftruncate(fd, start) != 0 || fsync(fd) != 0)
        log_warn_errno("cannot truncate mailbox %s back to %lld bytes", path, (long long) start);
out:
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = fail(why, errno, false, "cannot close mailbox %s", path);
    if (locked > 0 && unlink(str_cstr(lock)) != 0)
        log_warn_errno("cannot remove lock file %s", str_cstr(lock));
    str_free(lock);
    str_free(rp);
    str_free(dt);
    return rc;
}
