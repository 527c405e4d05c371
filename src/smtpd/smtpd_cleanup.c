/*
 * smtpd_cleanup.c - handing a message to the cleanup service.
 *
 * A message starts (cleanup_proto.h) at the first accepted recipient
 * (smtpd_delay_open_until_valid_rcpt = yes, as Postfix) or at MAIL FROM,
 * on the cleanup connection this process kept from its last message, else
 * on a new one. The connection receives the envelope records as the
 * transaction goes (T S A*, then O? N? R per recipient), then M, our
 * Received: header, the content lines as N/L records, X and E. Only
 * cleanup's status 0 means the file is committed (renamed and fsync'ed);
 * only then does the client get "250 ... queued as ID". Dropping the
 * connection at any earlier point makes cleanup discard the file.
 *
 * The kept connection: after cleanup's reply to a message the connection
 * goes back to cleanup_kept for the next message, possibly of the next
 * SMTP session; a message abandoned half-way closes it. It saves a
 * connect, cleanup's greeting and two status reports to master per
 * message, and since every message asks for CLEANUP_FLAG_MORE, cleanup
 * has the next queue file and its ID ready, so a message costs cleanup
 * one wake-up (its end) instead of two. Since cleanup may have closed a
 * kept connection meanwhile (its ipc_timeout, a reload), a failure to
 * start a message on it is retried once on a new connection: nothing was
 * queued by then. The skeleton's
 * idle hook gives it back (smtpd_cleanup_release) when no SMTP client
 * came for a while, so idle smtpd processes do not hold cleanup processes.
 *
 * Trust: cleanup is one of ours, but its reply is still checked: the queue
 * ID must look like one, and the reason text shown to the client is reduced
 * to printable ASCII and bounded.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "attr.h"
#include "cleanup_proto.h"
#include "clock.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "rec.h"
#include "smtpd.h"

#define REASON_MAX  200             /* longest cleanup reason shown to a client */

/* A queue ID from cleanup: letters and digits only, bounded. */
static bool
queue_id_sane(const char *id)
{
    size_t  n = strlen(id);

    if (n == 0 || n > QUEUE_ID_MAX)
        return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char) *p))
            return false;
    return true;
}

static void
put(struct smtpd_session *s, int type, const char *data, size_t len)
{
    if (s->cleanup)
        rec_write(s->cleanup, type, data, len);
}

static void
put_attr(struct smtpd_session *s, const char *name, const char *value)
{
    str_t  *buf = str_new(64);

    str_printf(buf, "%s=%s", name, value);
    put(s, REC_TYPE_ATTR, buf->data, buf->len);
    str_free(buf);
}

/* The connection kept from the last message, or NULL. */
static stream_t *cleanup_kept;

void
smtpd_cleanup_release(void)
{
    if (cleanup_kept) {
        stream_close(cleanup_kept);
        cleanup_kept = NULL;
    }
}

/*
 * Start a message on st: send {flags}, read {queue_id} into s->queue_id.
 * On a kept connection cleanup has sent the {queue_id} already
 * (CLEANUP_FLAG_MORE, cleanup_proto.h): it is read first, and the {flags}
 * go out with the first records, without a round trip. Returns 1 on
 * success, -1 on failure, and for a kept connection 0 (not logged) when
 * it turns out closed before cleanup said anything: worth a retry on a new
 * one.
 */
static int
start_message(struct smtpd_session *s, stream_t *st, bool kept)
{
    str_t  *err = str_new(64);
    attr_list_t *flags = attr_list_new(), *al = attr_list_new();
    const char *id = NULL;
    int     rc = -1, r;

    attr_put_int(flags, "flags", CLEANUP_FLAG_MORE);
    if (!kept && attr_write(st, flags) != ATTR_OK) {
        log_warn("cleanup service: write error: %s", stream_strstatus(stream_status(st)));
        goto out;
    }
    r = attr_read(st, NULL, al, err);
    if ((r == ATTR_EOF || r == ATTR_IOERR) && kept) {
        rc = 0;
        goto out;
    }
    if (r != ATTR_OK || attr_get_str(al, "queue_id", &id) != ATTR_OK
        || attr_check_end(al, err) != ATTR_OK || !queue_id_sane(id)) {
        log_warn("cleanup service: bad reply to a new message: %s",
                 str_len(err) ? str_cstr(err) : attr_last_error(al));
        goto out;
    }
    /*
     * An announced ID may have been sent just before cleanup went away
     * (killed, restarted): then the close follows it, and this connection
     * is not worth a message. Checked without waiting.
     */
    if (kept && stream_peer_gone(st)) {
        rc = 0;
        goto out;
    }
    if (kept && attr_write_buffered(st, flags) != ATTR_OK) {
        log_warn("cleanup service: write error: %s", stream_strstatus(stream_status(st)));
        goto out;
    }
    snprintf(s->queue_id, sizeof(s->queue_id), "%s", id);
    rc = 1;
  out:
    attr_list_free(flags);
    attr_list_free(al);
    str_free(err);
    return rc;
}

bool
smtpd_cleanup_open(struct smtpd_session *s)
{
    str_t  *err = str_new(64);
    stream_t *st = NULL;
    bool    ok = false;
    int     rc = 0;

    if (cleanup_kept) {
        st = cleanup_kept;
        cleanup_kept = NULL;
        if ((rc = start_message(s, st, true)) <= 0) {
            stream_close(st);
            st = NULL;
            if (rc < 0)
                goto out;
        }
    }
    if (rc == 0) {
        st = ipc_connect(NULL, "private", config_str(s->cfg, "cleanup_service_name"),
                         CLEANUP_PROTOCOL, (int) config_time(s->cfg, "ipc_timeout"), err);
        if (st == NULL) {
            log_warn("cannot hand mail to cleanup: %s", str_cstr(err));
            goto out;
        }
        if (start_message(s, st, false) <= 0)
            goto out;
    }
    s->cleanup = st;
    st = NULL;
    log_info("%s: client=%s[%s]", s->queue_id, s->name, s->addr);

    str_t  *buf = str_new(64);
    char    port[16];

    str_printf(buf, "%lld.%06ld", (long long) s->arrival.tv_sec, (long) s->arrival.tv_usec);
    put(s, REC_TYPE_TIME, buf->data, buf->len);
    put(s, REC_TYPE_SENDER, s->sender, strlen(s->sender));
    put_attr(s, REC_ATTR_CLIENT_NAME, s->name);
    put_attr(s, REC_ATTR_CLIENT_ADDR, s->addr);
    snprintf(port, sizeof(port), "%d", s->port);
    put_attr(s, REC_ATTR_CLIENT_PORT, port);
    if (s->helo)
        put_attr(s, REC_ATTR_HELO_NAME, s->helo);
    put_attr(s, REC_ATTR_PROTOCOL, smtpd_protocol(s));
    if (s->body != SMTPD_BODY_NONE)
        put_attr(s, REC_ATTR_ENCODING, s->body == SMTPD_BODY_8BITMIME ? "8bitmime" : "7bit");
    if (s->smtputf8)
        put_attr(s, REC_ATTR_SMTPUTF8, "1");
    if (s->dsn_envid)
        put_attr(s, REC_ATTR_DSN_ENVID, s->dsn_envid);
    if (s->dsn_ret) {
        snprintf(port, sizeof(port), "%d", s->dsn_ret);
        put_attr(s, REC_ATTR_DSN_RET, port);
    }
    put_attr(s, REC_ATTR_RWR_CONTEXT, smtpd_check_local_header_client(s) ? "local" : "remote");
    str_free(buf);
    for (size_t i = 0; i < s->nrcpts; i++)
        smtpd_cleanup_rcpt(s, &s->rcpts[i]);
    ok = true;
  out:
    if (st)
        stream_close(st);
    str_free(err);
    return ok;
}

void
smtpd_cleanup_rcpt(struct smtpd_session *s, const struct smtpd_rcpt *r)
{
    if (r->orcpt)
        put(s, REC_TYPE_ORCPT, r->orcpt, strlen(r->orcpt));
    if (r->notify) {
        char    mask[16];
        int     n = snprintf(mask, sizeof(mask), "%d", r->notify);

        put(s, REC_TYPE_NOTIFY, mask, (size_t) n);
    }
    put(s, REC_TYPE_RCPT, r->addr, strlen(r->addr));
}

/* "Thu, 22 Nov 2023 10:00:00 +0100 (CET)" for now. */
static void
format_date(str_t *out)
{
    time_t  now = clock_now();
    struct tm tm;
    char    buf[128];

    if (localtime_r(&now, &tm) == NULL
        || strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
        snprintf(buf, sizeof(buf), "Thu, 01 Jan 1970 00:00:00 +0000 (UTC)");
    str_append_cstr(out, buf);
}

void
smtpd_cleanup_begin(struct smtpd_session *s)
{
    str_t  *line = str_new(256);

    if (s->content_started)
        goto out;
    s->content_started = true;
    put(s, REC_TYPE_MESG, "", 0);
    /* Postfix's layout, folded over two or three lines. */
    str_printf(line, "Received: from %s (%s [%s%s])", s->helo ? s->helo : s->name, s->name,
               strchr(s->addr, ':') ? "IPv6:" : "", s->addr);
    put(s, REC_TYPE_NORM, line->data, line->len);
    str_printf(line, "\tby %s (%s) with %s id %s", config_str(s->cfg, "myhostname"),
               config_str(s->cfg, "mail_name"), smtpd_protocol(s), s->queue_id);
    if (s->nrcpts == 1) {
        str_t  *ext = str_new(64);

        put(s, REC_TYPE_NORM, line->data, line->len);
        addr_externalize(ext, s->rcpts[0].addr);
        str_printf(line, "\tfor <%s>; ", str_cstr(ext));
        str_free(ext);
    } else {
        str_append_cstr(line, "; ");
    }
    format_date(line);
    put(s, REC_TYPE_NORM, line->data, line->len);
  out:
    str_free(line);
}

void
smtpd_cleanup_line(struct smtpd_session *s, const char *data, size_t len, bool last)
{
    long    limit = config_int(s->cfg, "message_size_limit");
    size_t  max = (size_t) config_int(s->cfg, "line_length_limit");

    if (s->too_big)
        return;
    s->msg_bytes += (long) len + (last ? 1 : 0);
    if (limit > 0 && s->msg_bytes > limit) {
        s->too_big = true;
        smtpd_cleanup_abort(s);     /* cleanup discards what it has */
        return;
    }
    while (len > max) {
        put(s, REC_TYPE_CONT, data, max);
        data += max;
        len -= max;
    }
    if (last || len > 0)
        put(s, last ? REC_TYPE_NORM : REC_TYPE_CONT, data, len);
}

/* Keep printable ASCII of cleanup's reason, bounded. */
static void
sanitize(str_t *out, const char *text)
{
    for (const char *p = text; *p && str_len(out) < REASON_MAX; p++)
        str_putc(out, (*p >= 0x20 && *p < 0x7f) ? *p : '?');
}

/* Does text start with an enhanced status code of class cls ("5.3.4 ")? */
static size_t
dsn_prefix(const char *text, char cls)
{
    const char *p = text;

    if (*p != cls || p[1] != '.')
        return 0;
    p += 2;
    if (!isdigit((unsigned char) *p))
        return 0;
    while (isdigit((unsigned char) *p))
        p++;
    if (*p++ != '.' || !isdigit((unsigned char) *p))
        return 0;
    while (isdigit((unsigned char) *p))
        p++;
    if (*p != ' ' && *p != 0)
        return 0;
    return (size_t) (p - text);
}

bool
smtpd_cleanup_finish(struct smtpd_session *s)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(64), *reply = str_new(128);
    long long status = -1;
    const char *reason = "";
    bool    ok = false;

    if (s->cleanup == NULL)
        goto tempfail;
    put(s, REC_TYPE_XTRA, "", 0);
    put(s, REC_TYPE_END, "", 0);
    if (stream_flush(s->cleanup) != STREAM_OK) {
        log_warn("%s: cleanup service: write error: %s", s->queue_id,
                 stream_strstatus(stream_status(s->cleanup)));
        goto tempfail;
    }
    if (attr_read(s->cleanup, NULL, al, err) != ATTR_OK
        || attr_get_int(al, "status", 0, 0x7fffffff, &status) != ATTR_OK
        || attr_get_str(al, "reason", &reason) != ATTR_OK || attr_check_end(al, err) != ATTR_OK) {
        log_warn("%s: cleanup service: bad or missing reply: %s", s->queue_id,
                 str_len(err) ? str_cstr(err) : attr_last_error(al));
        goto tempfail;
    }
    /* cleanup answered the whole message: the connection can carry the next one. */
    smtpd_cleanup_release();
    cleanup_kept = s->cleanup;
    s->cleanup = NULL;
    if (status == CLEANUP_STAT_OK) {
        smtpd_reply(s, "250 2.0.0 Ok: queued as %s", s->queue_id);
        ok = true;
        goto out;
    }
    /* Refused: pick the reply code from the status, the detail from the reason. */
    bool    perm = CLEANUP_STAT_PERMANENT(status);
    char    cls = perm ? '5' : '4';
    int     code = !perm ? 451 : (status & CLEANUP_STAT_SIZE) ? 552
        : (status & CLEANUP_STAT_CONT) ? 550 : 554;
    const char *dflt = !perm ? "4.3.0" : (status & CLEANUP_STAT_SIZE) ? "5.3.4"
        : (status & CLEANUP_STAT_HOPS) ? "5.4.6" : (status & CLEANUP_STAT_RCPT) ? "5.1.3"
        : "5.7.1";
    size_t  dl = dsn_prefix(reason, cls);

    if (dl) {
        str_printf(reply, "%d ", code);
        sanitize(reply, reason);
    } else {
        str_printf(reply, "%d %s Error: ", code, dflt);
        if (perm && *reason)
            sanitize(reply, reason);
        else
            str_append_cstr(reply, perm ? "message content rejected" : "queue file write error");
    }
    smtpd_log_reject(s, "END-OF-MESSAGE", str_cstr(reply), NULL, false);
    smtpd_reply(s, "%s", str_cstr(reply));
    goto out;
  tempfail:
    smtpd_reply(s, "451 4.3.0 Error: queue file write error");
  out:
    smtpd_cleanup_abort(s);
    attr_list_free(al);
    str_free(err);
    str_free(reply);
    return ok;
}

void
smtpd_cleanup_abort(struct smtpd_session *s)
{
    if (s->cleanup) {
        /* Nothing to flush: a half-sent message is meant to be dropped. */
        int     fd = stream_fd(s->cleanup);

        stream_abandon(s->cleanup);
        if (fd >= 0 && close(fd) != 0)
            log_warn_errno("close cleanup connection");
        s->cleanup = NULL;
    }
}
