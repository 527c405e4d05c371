/*
 * bounce_notice.c - compose a delivery status notification and queue it.
 *
 * A notice is an RFC 3464 message:
 *     multipart/report; report-type=delivery-status
 *       1. text/plain          what happened, for people
 *       2. message/delivery-status
 *                              Reporting-MTA, X-Postern-Queue-ID,
 *                              Original-Envelope-Id, Arrival-Date, then
 *                              one group of fields per recipient
 *       3. message/rfc822      the original message (RET=FULL, the default)
 *          text/rfc822-headers its headers only (RET=HDRS, postmaster
 *                              copies); at most bounce_size_limit bytes
 * from "Mail Delivery System" <MAILER-DAEMON@$myhostname>, queued through
 * the cleanup service with the envelope sender <> (or double_bounce_sender
 * for postmaster notices, so that their failure ends the chain).
 *
 * Each part is composed into its own buffer first, so that a part that
 * holds 8-bit bytes (an SMTPUTF8 address, an 8BITMIME original) is
 * labelled Content-Transfer-Encoding: 8bit, and a 7-bit one is not.
 *
 * SECURITY: every text copied into the notice comes from the log (values
 * without CR/LF, checked by the reader) or from the queue file through
 * the strict queue file reader. Header values are bounded in length.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "attr.h"
#include "bounce.h"
#include "cleanup_proto.h"
#include "clock.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "rec.h"
#include "rec_type.h"

#define DIAG_MAX        800     /* longest diagnostic text copied into a field */
#define DATE_MAX        64

/* A part under construction: its content as N/L records. */
struct part {
    str_t  *recs;
    bool    eightbit;
};

struct composer {
    config_t *cfg;
    size_t  line_limit;
    str_t  *line;               /* scratch */
};

/* Start an empty part. */
static void
part_init(struct part *p)
{
    p->recs = str_new(1024);
    p->eightbit = false;
}

static void
part_free(struct part *p)
{
    str_free(p->recs);
}

static bool
has_8bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] & 0x80)
            return true;
    return false;
}

/* Append one formatted line (no newline) to a part. */
static void STR_PRINTF(3, 4)
put_line(struct composer *c, struct part *p, const char *fmt, ...)
{
    va_list ap;

    str_reset(c->line);
    va_start(ap, fmt);
    str_append_vprintf(c->line, fmt, ap);
    va_end(ap);
    if (has_8bit(str_cstr(c->line), str_len(c->line)))
        p->eightbit = true;
    rec_put_line(p->recs, str_cstr(c->line), str_len(c->line), c->line_limit);
}

/* RFC 5322 date of t. */
static void
format_date(char *buf, size_t size, time_t t)
{
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
        snprintf(buf, size, "Thu, 01 Jan 1970 00:00:00 +0000");
}

void
bounce_qualify(config_t *cfg, str_t *out, const char *name)
{
    str_set_cstr(out, name);
    if (strchr(name, '@') == NULL) {
        str_putc(out, '@');
        str_append_cstr(out, config_str(cfg, "myorigin"));
    }
}

static const char *
kind_subject(enum bounce_kind kind)
{
    switch (kind) {
    case BOUNCE_KIND_DELAY:
        return "Delayed Mail (still being retried)";
    case BOUNCE_KIND_SUCCESS:
        return "Successful Mail Delivery Report";
    default:
        return "Undelivered Mail Returned to Sender";
    }
}

static const char *
kind_action(enum bounce_kind kind)
{
    switch (kind) {
    case BOUNCE_KIND_DELAY:
        return BOUNCE_ACTION_DELAYED;
    case BOUNCE_KIND_SUCCESS:
        return BOUNCE_ACTION_DELIVERED;
    default:
        return BOUNCE_ACTION_FAILED;
    }
}

static const char *
kind_status(enum bounce_kind kind)
{
    switch (kind) {
    case BOUNCE_KIND_DELAY:
        return "4.0.0";
    case BOUNCE_KIND_SUCCESS:
        return "2.0.0";
    default:
        return "5.0.0";
    }
}

/* The recipient of the original queue file whose R/D record is at offset. */
static const struct qfile_rcpt *
original_rcpt(const struct bounce_original *orig, long long offset)
{
    if (!orig->have_file || offset < 0)
        return NULL;
    for (size_t i = 0; i < orig->qf.rcpt_count; i++)
        if ((long long) orig->qf.rcpts[i].offset == offset)
            return &orig->qf.rcpts[i];
    return NULL;
}

/* The DSN ORCPT of an entry: from the log, else from the queue file. */
static const char *
entry_orcpt(const struct bounce_original *orig, const struct bounce_log_entry *e)
{
    const struct qfile_rcpt *r;

    if (e->dsn_orcpt && *e->dsn_orcpt)
        return e->dsn_orcpt;
    r = original_rcpt(orig, e->offset);
    return r && r->orcpt ? r->orcpt : NULL;
}

/* The remote host of a relay such as "mx.example.com[192.0.2.1]:25", or NULL. */
static bool
remote_host(const char *relay, str_t *host)
{
    const char *br;

    if (relay == NULL || (br = strchr(relay, '[')) == NULL || br == relay)
        return false;
    str_set(host, relay, (size_t) (br - relay));
    return true;
}

/* Part 1: the explanation for people. */
static void
compose_text(struct composer *c, const struct bounce_original *orig,
             const struct bounce_notice *n, struct part *p)
{
    config_t *cfg = c->cfg;
    str_t  *ext = str_new(64);

    put_line(c, p, "This is the mail system at host %s.", config_str(cfg, "myhostname"));
    put_line(c, p, "%s", "");
    if (n->postmaster) {
        addr_externalize(ext, orig->sender);
        put_line(c, p, "This notice is for the postmaster. The message it concerns came");
        put_line(c, p, "from <%s>.", str_cstr(ext));
        put_line(c, p, "%s", "");
    }
    switch (n->kind) {
    case BOUNCE_KIND_DELAY:
        put_line(c, p, "This is a warning only: there is no need to send the message again.");
        put_line(c, p, "%s", "");
        put_line(c, p, "The message could not be delivered yet to the recipients listed");
        put_line(c, p, "below. The mail system keeps trying; if it still fails after");
        put_line(c, p, "%ld hours in the queue, the message is returned.",
                 config_time(cfg, "maximal_queue_lifetime") / 3600);
        break;
    case BOUNCE_KIND_SUCCESS:
        put_line(c, p, "As requested, this report tells that the message was delivered");
        put_line(c, p, "to the recipients listed below.");
        break;
    default:
        put_line(c, p, "The message could not be delivered to one or more of its recipients.");
        put_line(c, p, "It is attached below, after the report for each recipient.");
        put_line(c, p, "%s", "");
        put_line(c, p, "For help, ask the postmaster of this system and include this");
        put_line(c, p, "report; you may leave out your own text from the attached message.");
        break;
    }
    put_line(c, p, "%s", "");
    put_line(c, p, "                   The %s program", config_str(cfg, "mail_name"));
    for (size_t i = 0; i < n->count; i++) {
        const struct bounce_log_entry *e = n->entries[i];

        put_line(c, p, "%s", "");
        addr_externalize(ext, e->recipient);
        if (e->orig_rcpt && strcmp(e->orig_rcpt, e->recipient) != 0) {
            str_t  *o = str_new(64);

            addr_externalize(o, e->orig_rcpt);
            put_line(c, p, "<%s> (expanded from <%s>): %.*s", str_cstr(ext), str_cstr(o),
                     DIAG_MAX, e->reason ? e->reason : "no reason given");
            str_free(o);
        } else {
            put_line(c, p, "<%s>: %.*s", str_cstr(ext), DIAG_MAX,
                     e->reason ? e->reason : "no reason given");
        }
    }
    str_free(ext);
}

/* Part 2: message/delivery-status. */
static void
compose_status(struct composer *c, const struct bounce_original *orig,
               const struct bounce_notice *n, struct part *p)
{
    config_t *cfg = c->cfg;
    char    date[DATE_MAX];
    str_t  *host = str_new(64);
    long long arrival = orig->have_file ? orig->qf.arrival_sec : -1;

    put_line(c, p, "Reporting-MTA: dns; %s", config_str(cfg, "myhostname"));
    put_line(c, p, "X-Postern-Queue-ID: %s", orig->queue_id);
    if (*orig->sender)
        put_line(c, p, "X-Postern-Sender: rfc822; %s", orig->sender);
    if (orig->dsn_envid && *orig->dsn_envid)
        put_line(c, p, "Original-Envelope-Id: %.*s", DIAG_MAX, orig->dsn_envid);
    if (arrival >= 0) {
        format_date(date, sizeof(date), (time_t) arrival);
        put_line(c, p, "Arrival-Date: %s", date);
    }
    for (size_t i = 0; i < n->count; i++) {
        const struct bounce_log_entry *e = n->entries[i];
        const char *orcpt = entry_orcpt(orig, e);
        const char *reason = e->reason ? e->reason : "no reason given";
        const char *said;

        put_line(c, p, "%s", "");
        put_line(c, p, "Final-Recipient: rfc822; %s", e->recipient);
        if (orcpt && strchr(orcpt, ';')) {
            const char *semi = strchr(orcpt, ';');

            put_line(c, p, "Original-Recipient: %.*s; %s", (int) (semi - orcpt), orcpt, semi + 1);
        } else if (e->orig_rcpt && strcmp(e->orig_rcpt, e->recipient) != 0) {
            put_line(c, p, "Original-Recipient: rfc822; %s", e->orig_rcpt);
        }
        put_line(c, p, "Action: %s", e->action ? e->action : kind_action(n->kind));
        put_line(c, p, "Status: %s", e->status ? e->status : kind_status(n->kind));
        if (remote_host(e->relay, host)) {
            put_line(c, p, "Remote-MTA: dns; %s", str_cstr(host));
            /* A remote server's reply: "host ... said: 550 5.1.1 text". */
            if ((said = strstr(reason, " said: ")) != NULL)
                put_line(c, p, "Diagnostic-Code: smtp; %.*s", DIAG_MAX, said + 7);
            else
                put_line(c, p, "Diagnostic-Code: X-Postern; %.*s", DIAG_MAX, reason);
        } else {
            put_line(c, p, "Diagnostic-Code: x-unix; %.*s", DIAG_MAX, reason);
        }
        if (e->time >= 0) {
            format_date(date, sizeof(date), (time_t) e->time);
            put_line(c, p, "Last-Attempt-Date: %s", date);
        }
        if (n->kind == BOUNCE_KIND_DELAY && arrival >= 0) {
            format_date(date, sizeof(date),
                        (time_t) (arrival + config_time(cfg, "maximal_queue_lifetime")));
            put_line(c, p, "Will-Retry-Until: %s", date);
        }
    }
    str_free(host);
}

/*
 * Part 3: the original content, or its headers only, cut at limit bytes.
 * Returns false with why set when the file cannot be read again.
 */
static bool
compose_original(struct composer *c, const struct bounce_original *orig, bool headers_only,
                 long long limit, struct part *p, bool *truncated, str_t *why)
{
    qfile_reader_t *r;
    struct qfile_rec rec;
    long long size = 0;
    bool    cont = false, ok = false;
    int     rc;

    *truncated = false;
    r = qfile_reader_new(orig->fd, orig->queue_id, QFILE_FLAG_QUEUE);
    while ((rc = qfile_reader_next(r, &rec)) == QFILE_RECORD) {
        if (rec.section != QFILE_SEC_CONTENT)
            continue;
        if (rec.type == REC_TYPE_XTRA) {
            ok = true;
            break;
        }
        if (rec.type != REC_TYPE_NORM && rec.type != REC_TYPE_CONT)
            continue;
        /* The empty line after the headers ends them. */
        if (headers_only && !cont && rec.type == REC_TYPE_NORM && rec.len == 0) {
            ok = true;
            break;
        }
        if (limit > 0 && size + (long long) rec.len + 1 > limit) {
            *truncated = true;
            if (cont)
                rec_put(p->recs, REC_TYPE_NORM, "", 0);     /* end the cut line */
            ok = true;
            break;
        }
        size += (long long) rec.len + (rec.type == REC_TYPE_NORM);
        if (has_8bit(rec.data, rec.len))
            p->eightbit = true;
        rec_put(p->recs, rec.type, rec.data, rec.len);
        cont = rec.type == REC_TYPE_CONT;
    }
    if (!ok)
        str_printf(why, "%s", rc == QFILE_RECORD || rc == QFILE_DONE ? "no end of content"
                   : qfile_reader_error(r));
    qfile_reader_free(r);
    return ok;
}

/* Part headers, the blank line, the part's records. */
static void
emit_part(struct composer *c, struct part *out, const char *boundary, const char *description,
          const char *type, const struct part *p)
{
    put_line(c, out, "--%s", boundary);
    put_line(c, out, "Content-Description: %s", description);
    put_line(c, out, "Content-Type: %s", type);
    if (p->eightbit)
        put_line(c, out, "Content-Transfer-Encoding: 8bit");
    put_line(c, out, "%s", "");
    str_append_str(out->recs, p->recs);
    out->eightbit |= p->eightbit;
    put_line(c, out, "%s", "");
}

/* Talk to cleanup: the whole notice is in recs (T .. E). */
static int
submit(config_t *cfg, stream_t *cl, const str_t *recs, str_t *why)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);
    const char *reason = "";
    long long status;
    int     rc = -1;

    if (stream_write(cl, str_cstr(recs), str_len(recs)) != STREAM_OK
        || stream_flush(cl) != STREAM_OK) {
        str_printf(why, "cleanup service: write error: %s", stream_strstatus(stream_status(cl)));
        goto out;
    }
    if (attr_read(cl, NULL, al, err) != ATTR_OK
        || attr_get_int(al, "status", 0, 0x7fffffff, &status) != ATTR_OK) {
        str_printf(why, "cleanup service: bad status reply %s",
                   str_len(err) ? str_cstr(err) : attr_last_error(al));
        goto out;
    }
    if (attr_get_str(al, "reason", &reason) != ATTR_OK)
        reason = "";
    if (status == CLEANUP_STAT_OK) {
        rc = 0;
    } else {
        str_printf(why, "cleanup refused the notice: %s", *reason ? reason : "no reason given");
        rc = CLEANUP_STAT_PERMANENT(status) ? -2 : -1;
    }
  out:
    attr_list_free(al);
    str_free(err);
    return rc;
}

int
bounce_notice_send(config_t *cfg, const struct bounce_original *orig,
                   const struct bounce_notice *n, str_t *new_id, str_t *why)
{
    struct composer c = {
        .cfg = cfg,
        .line_limit = (size_t) config_int(cfg, "line_length_limit"),
        .line = str_new(256),
    };
    struct part text, status, original, body, head;
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0), *boundary = str_new(64), *to = str_new(64), *ext = str_new(64);
    str_t  *recs = str_new(4096);
    stream_t *cl = NULL;
    const char *qid;
    char    date[DATE_MAX];
    struct timeval tv;
    bool    have_original = false, truncated = false, headers_only;
    int     rc = -1;

    part_init(&text);
    part_init(&status);
    part_init(&original);
    part_init(&body);
    part_init(&head);

    cl = ipc_connect(NULL, "private", config_str(cfg, "cleanup_service_name"), CLEANUP_PROTOCOL,
                     (int) config_time(cfg, "ipc_timeout"), err);
    if (cl == NULL) {
        str_printf(why, "%s", str_cstr(err));
        goto out;
    }
    attr_put_int(al, "flags", CLEANUP_FLAG_NONE);
    if (attr_write(cl, al) != ATTR_OK) {
        str_printf(why, "cleanup service: write error");
        goto out;
    }
    if (attr_read(cl, NULL, al, err) != ATTR_OK
        || attr_get_str(al, "queue_id", &qid) != ATTR_OK || !queue_id_ok(qid)
        || attr_check_end(al, err) != ATTR_OK) {
        str_printf(why, "cleanup service: bad queue_id reply %s", str_cstr(err));
        goto out;
    }
    str_set_cstr(new_id, qid);

    /* The parts. */
    compose_text(&c, orig, n, &text);
    compose_status(&c, orig, n, &status);
    headers_only = n->headers_only || orig->dsn_ret == DSN_RET_HDRS;
    if (orig->have_file) {
        have_original = compose_original(&c, orig, headers_only,
                                         config_int(cfg, "bounce_size_limit"),
                                         &original, &truncated, err);
        if (!have_original)
            log_warn("%s: cannot return the original message: %s", orig->queue_id,
                     str_cstr(err));
    }
    if (gettimeofday(&tv, NULL) != 0)
        log_fatal_errno("gettimeofday");
    str_printf(boundary, "%s.%lld/%s", orig->queue_id, (long long) tv.tv_sec,
               config_str(cfg, "myhostname"));
    emit_part(&c, &body, str_cstr(boundary), "Notification", "text/plain; charset=utf-8", &text);
    emit_part(&c, &body, str_cstr(boundary), "Delivery report", "message/delivery-status",
              &status);
    if (have_original) {
        const char *desc = n->kind == BOUNCE_KIND_FAILURE ? "Undelivered Message"
            : n->kind == BOUNCE_KIND_DELAY ? "Delayed Message" : "Delivered Message";

        if (headers_only) {
            str_printf(err, "%s Headers", desc);
            emit_part(&c, &body, str_cstr(boundary), str_cstr(err), "text/rfc822-headers",
                      &original);
        } else {
            str_printf(err, "%s%s", desc, truncated ? " (truncated)" : "");
            emit_part(&c, &body, str_cstr(boundary), str_cstr(err), "message/rfc822", &original);
        }
    }
    put_line(&c, &body, "--%s--", str_cstr(boundary));

    /* The headers. */
    format_date(date, sizeof(date), tv.tv_sec);
    put_line(&c, &head, "Date: %s", date);
    put_line(&c, &head, "From: Mail Delivery System <MAILER-DAEMON@%s>",
             config_str(cfg, "myhostname"));
    str_printf(err, "%s%s", n->postmaster ? "Postmaster Copy: " : "", kind_subject(n->kind));
    put_line(&c, &head, "Subject: %s", str_cstr(err));
    bounce_qualify(cfg, to, n->recipient);
    addr_externalize(ext, str_cstr(to));
    put_line(&c, &head, "To: <%s>", str_cstr(ext));
    put_line(&c, &head, "Message-ID: <%lld.%s@%s>", (long long) tv.tv_sec, qid,
             config_str(cfg, "myhostname"));
    put_line(&c, &head, "Auto-Submitted: auto-replied");
    put_line(&c, &head, "MIME-Version: 1.0");
    put_line(&c, &head, "Content-Type: multipart/report; report-type=delivery-status;");
    put_line(&c, &head, "\tboundary=\"%s\"", str_cstr(boundary));
    if (body.eightbit)
        put_line(&c, &head, "Content-Transfer-Encoding: 8bit");
    put_line(&c, &head, "%s", "");
    put_line(&c, &head, "This is a MIME-encapsulated message.");
    put_line(&c, &head, "%s", "");

    /* The envelope, then everything in one write. */
    rec_putf(recs, REC_TYPE_TIME, "%lld.%06ld", (long long) tv.tv_sec, (long) tv.tv_usec);
    rec_put_str(recs, REC_TYPE_SENDER, n->env_sender);
    rec_put_attr(recs, REC_ATTR_RWR_CONTEXT, "local");
    if (body.eightbit)
        rec_put_attr(recs, REC_ATTR_ENCODING, "8bitmime");
    rec_put_str(recs, REC_TYPE_RCPT, str_cstr(to));
    rec_put(recs, REC_TYPE_MESG, "", 0);
    str_append_str(recs, head.recs);
    str_append_str(recs, body.recs);
    rec_put(recs, REC_TYPE_XTRA, "", 0);
    rec_put(recs, REC_TYPE_END, "", 0);
    rc = submit(cfg, cl, recs, why);
  out:
    if (cl)
        stream_close(cl);
    attr_list_free(al);
    part_free(&text);
    part_free(&status);
    part_free(&original);
    part_free(&body);
    part_free(&head);
    str_free(c.line);
    str_free(err);
    str_free(boundary);
    str_free(to);
    str_free(ext);
    str_free(recs);
    return rc;
}
