/*
 * smtpd_data.c - message content: DATA and BDAT (RFC 5321, RFC 3030).
 *
 * DATA: after "354", lines are read up to line_length_limit bytes at a time
 * (longer lines go to cleanup in pieces), dot-stuffing is removed, and the
 * message ends only at <CR><LF>.<CR><LF>: the "." line must itself end in
 * CRLF and the line before it too. A line that ends in a bare <LF> is the
 * SMTP smuggling pattern; with smtpd_forbid_bare_newline = yes (default) the
 * message is dropped with "521 5.5.2 ... bare <LF> received" and the session
 * ends (Postfix 3.8.4 behaviour for "yes"); with "no" such a line is taken as
 * a line end ("normalize" in Postfix 3.9) but can never end the message.
 * NUL bytes and 8-bit bytes are passed on unchanged, as Postfix does.
 *
 * BDAT: "BDAT size [LAST]" is followed by exactly size bytes, always read
 * even when the command is refused, so they are never taken as commands.
 * The bytes are raw (no dot-stuffing, no end marker); they are split into
 * lines at <LF> (a <CR> before it is dropped), and a line may span chunks.
 * A chunk size that cannot be parsed ends the session: the server could not
 * know where the next command starts.
 *
 * Oversized content is read to its end and discarded, then refused with
 * 552 5.3.4. A client that goes away or times out mid-message loses it: the
 * cleanup connection is dropped and cleanup removes the unfinished file.
 */
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mem.h"
#include "smtpd.h"

#define BDAT_BLOCK  65536           /* bytes read per step while receiving a chunk */

enum content_status {
    CONTENT_END = 0,                /* the end of the message was seen */
    CONTENT_LOST,                   /* EOF or read error */
    CONTENT_TIMEOUT,
    CONTENT_BARE_LF,                /* bare <LF> with smtpd_forbid_bare_newline */
};

/* Log a lost or timed-out client during content, and end the session. */
static void
content_broken(struct smtpd_session *s, int status, const char *verb, long bytes)
{
    if (status == CONTENT_TIMEOUT) {
        log_info("timeout after %s (%ld bytes) from %s[%s]", verb, bytes, s->name, s->addr);
        smtpd_reply_timeout(s);
    } else {
        log_info("lost connection after %s (%ld bytes) from %s[%s]", verb, bytes, s->name,
                 s->addr);
    }
    s->quit = true;
}

/*
 * Read DATA content up to the end marker, handing lines to cleanup.
 * *bytes counts what the client sent.
 */
static int
read_data(struct smtpd_session *s, long *bytes)
{
    size_t  limit = (size_t) config_int(s->cfg, "line_length_limit");
    bool    forbid = config_bool(s->cfg, "smtpd_forbid_bare_newline");
    str_t  *buf = str_new(limit + 1);
    bool    at_start = true;        /* the next piece begins a line */
    bool    after_crlf = true;      /* the last line ended in CRLF (DATA's own counts) */
    bool    pending_cr = false;     /* a piece ended in CR: is it the CR of CRLF? */
    int     status;

    for (;;) {
        int     rc = stream_read_line(s->client, buf, limit);
        bool    complete;

        if (rc == STREAM_TOOLONG) {
            complete = false;
        } else if (rc == STREAM_OK && str_len(buf) > 0 && buf->data[str_len(buf) - 1] == '\n') {
            complete = true;
        } else {
            status = rc == STREAM_TIMEOUT ? CONTENT_TIMEOUT : CONTENT_LOST;
            break;
        }
        *bytes += (long) str_len(buf);

        const char *p = buf->data;
        size_t  n = str_len(buf);

        if (pending_cr) {
            pending_cr = false;
            if (complete && n == 1) {   /* the CR and this LF end the line */
                smtpd_cleanup_line(s, "", 0, true);
                at_start = after_crlf = true;
                continue;
            }
            smtpd_cleanup_line(s, "\r", 1, false);  /* a CR inside the line */
            at_start = false;
        }
        if (!complete) {
            if (at_start && n > 0 && p[0] == '.') {
                p++;
                n--;
            }
            if (n > 0 && p[n - 1] == '\r') {
                pending_cr = true;
                n--;
            }
            smtpd_cleanup_line(s, p, n, false);
            at_start = false;
            continue;
        }
        n--;                        /* the LF */
        bool    crlf = n > 0 && p[n - 1] == '\r';

        if (crlf)
            n--;
        else if (forbid) {
            status = CONTENT_BARE_LF;
            break;
        }
        if (at_start) {
            if (crlf && after_crlf && n == 1 && p[0] == '.') {
                status = CONTENT_END;
                break;
            }
            if (n > 0 && p[0] == '.') {
                p++;
                n--;
            }
        }
        smtpd_cleanup_line(s, p, n, true);
        at_start = true;
        after_crlf = crlf;
    }
    str_free(buf);
    return status;
}

/* Reply to the end of a message and end the transaction. */
static bool
end_of_message(struct smtpd_session *s)
{
    bool    ok;

    if (s->too_big) {
        const char *reply = "552 5.3.4 Error: message file too big";

        smtpd_log_reject(s, "END-OF-MESSAGE", reply, NULL, false);
        smtpd_reply(s, "%s", reply);
        ok = false;
    } else {
        ok = smtpd_cleanup_finish(s);
    }
    smtpd_xact_reset(s);
    return ok;
}

bool
smtpd_cmd_data(struct smtpd_session *s, const char *args)
{
    long    bytes = 0;

    if (*args) {
        smtpd_reply(s, "501 5.5.4 Syntax: DATA");
        return false;
    }
    if (!s->in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
        return false;
    }
    if (s->bdat) {
        smtpd_reply(s, "503 5.5.1 Error: DATA after BDAT is not allowed");
        return false;
    }
    if (s->nrcpts == 0) {
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        return false;
    }
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    stream_flush(s->client);
    smtpd_cleanup_begin(s);

    int     status = read_data(s, &bytes);

    switch (status) {
    case CONTENT_END:
        return end_of_message(s);
    case CONTENT_BARE_LF:
        log_info("disconnect: bare <LF> received from %s[%s]", s->name, s->addr);
        smtpd_reply(s, "521 5.5.2 %s Error: bare <LF> received",
                    config_str(s->cfg, "myhostname"));
        smtpd_xact_reset(s);
        s->quit = true;
        return false;
    default:
        content_broken(s, status, "DATA", bytes);
        smtpd_xact_reset(s);
        return false;
    }
}

/* Parse "size [LAST]"; false on anything else. */
static bool
parse_bdat(const char *args, long *size, bool *last)
{
    long    v = 0;
    const char *p = args;

    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (p - args >= 18)
            return false;
        v = v * 10 + (*p - '0');
    }
    *last = false;
    if (*p == ' ') {
        while (*p == ' ')
            p++;
        if (strcasecmp(p, "LAST") != 0)
            return false;
        *last = true;
    } else if (*p != 0) {
        return false;
    }
    *size = v;
    return true;
}

/*
 * Append n bytes of chunk data to the unfinished line and send every line
 * completed by a LF. Long unfinished lines go out in line_length_limit
 * pieces so that memory stays bounded.
 */
static void
bdat_feed(struct smtpd_session *s, const char *data, size_t n)
{
    size_t  limit = (size_t) config_int(s->cfg, "line_length_limit");
    str_t  *line = s->bdat_line;

    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t  take = nl ? (size_t) (nl - data) : n;

        str_append(line, data, take);
        if (nl) {
            size_t  len = str_len(line);

            if (len > 0 && line->data[len - 1] == '\r')
                len--;
            smtpd_cleanup_line(s, line->data, len, true);
            str_reset(line);
            take++;
        } else {
            while (str_len(line) > limit) {
                smtpd_cleanup_line(s, line->data, limit, false);
                memmove(line->data, line->data + limit, str_len(line) - limit);
                str_truncate(line, str_len(line) - limit);
            }
        }
        data += take;
        n -= take;
    }
}

bool
smtpd_cmd_bdat(struct smtpd_session *s, const char *args)
{
    long    size, got = 0;
    bool    last;
    const char *refuse = NULL;

    if (!parse_bdat(args, &size, &last)) {
        /* Without a size the rest of the input cannot be framed: hang up. */
        smtpd_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
        log_info("disconnect: bad BDAT syntax from %s[%s]", s->name, s->addr);
        smtpd_xact_reset(s);
        s->quit = true;
        return false;
    }
    if (!s->in_mail)
        refuse = "503 5.5.1 Error: need MAIL command";
    else if (s->nrcpts == 0)
        refuse = "554 5.5.1 Error: no valid recipients";
    if (refuse == NULL && !s->bdat) {
        s->bdat = true;
        s->bdat_line = str_new(256);
        smtpd_cleanup_begin(s);
    }
    str_t  *buf = str_new(BDAT_BLOCK);

    while (got < size) {
        size_t  want = (size_t) (size - got) < BDAT_BLOCK ? (size_t) (size - got) : BDAT_BLOCK;
        int     rc;

        str_reset(buf);
        if ((rc = stream_read_append(s->client, buf, want)) != STREAM_OK) {
            str_free(buf);
            content_broken(s, rc == STREAM_TIMEOUT ? CONTENT_TIMEOUT : CONTENT_LOST, "BDAT",
                           got);
            smtpd_xact_reset(s);
            return false;
        }
        got += (long) want;
        if (refuse == NULL)
            bdat_feed(s, buf->data, want);
    }
    str_free(buf);
    if (refuse) {
        smtpd_reply(s, "%s", refuse);
        smtpd_xact_reset(s);        /* later chunks of this message are refused too */
        return false;
    }
    /* The unfinished line counts too, or a chunk without LF could evade the limit. */
    long    limit = config_int(s->cfg, "message_size_limit");

    if (!s->too_big && limit > 0 && s->msg_bytes + (long) str_len(s->bdat_line) > limit) {
        s->too_big = true;
        smtpd_cleanup_abort(s);
    }
    if (s->too_big)
        return end_of_message(s);
    if (!last) {
        smtpd_reply(s, "250 2.0.0 Ok: %ld bytes", size);
        return true;
    }
    if (str_len(s->bdat_line) > 0)
        smtpd_cleanup_line(s, s->bdat_line->data, str_len(s->bdat_line), true);
    return end_of_message(s);
}
