/*
 * cleanup_main.c - the cleanup daemon: messages, one after another, per
 * connection.
 *
 * Protocol: cleanup_proto.h. Per connection: greet; then per message: read
 * {flags}, create the queue file and reply {queue_id}, read the records
 * under strict limits and order checks, then commit the file and reply
 * {status, reason}. A client that goes away or times out before E loses
 * its message: the temporary file is removed, a warning logged, and the
 * connection ends.
 *
 * Record order accepted from the client:
 *     T  F?  S  A*  (O? N? R)*  M  (N | L)*  X  E
 * Anything else is a protocol error (status CLEANUP_STAT_BAD, reply sent,
 * connection closed, nothing queued).
 *
 * SECURITY: runs as mail_owner on the single-server skeleton, working in
 * queue_directory (maybe chrooted there). It trusts nothing the client
 * sends: every record length is bounded before it is read (a small fixed
 * limit for envelope records, CLEANUP_CONTENT_REC_MAX for content), every
 * read has the ipc_timeout deadline, and contents are checked before use.
 * It writes only in incoming/ and hold/, and connects to private/rewrite
 * and public/qmgr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "attr.h"
#include "cleanup.h"
#include "cleanup_proto.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "rec.h"
#include "rewrite_clnt.h"
#include "server.h"

struct cleanup_conf cleanup_conf;

/* Where the record reader is in the expected order. */
enum want {
    W_T,            /* T */
    W_FS,           /* F or S */
    W_S,            /* S (after F) */
    W_ATTR,         /* A, O, N, R or M */
    W_RCPT,         /* O, N, R or M (after a recipient) */
    W_AFTER_O,      /* N or R */
    W_AFTER_N,      /* R */
    W_CONTENT,      /* N, L or X */
    W_END,          /* E */
    W_DONE,
};

static const char *const want_text[] = {
    [W_T] = "arrival time", [W_FS] = "full name or sender", [W_S] = "sender",
    [W_ATTR] = "attribute, recipient or message start", [W_RCPT] = "recipient or message start",
    [W_AFTER_O] = "notify or recipient", [W_AFTER_N] = "recipient",
    [W_CONTENT] = "content or end of content", [W_END] = "end of file", [W_DONE] = "nothing",
};

void
cleanup_error(struct cleanup_state *st, int stat, const char *fmt, ...)
{
    va_list ap;

    st->errs |= stat;
    if (str_len(st->reason) > 0)
        return;
    va_start(ap, fmt);
    str_append_vprintf(st->reason, fmt, ap);
    va_end(ap);
}

/* Text without NUL, CR or LF. */
bool
cleanup_text_ok(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (data[i] == 0 || data[i] == '\r' || data[i] == '\n')
            return false;
    return true;
}

static void
state_init(struct cleanup_state *st, stream_t *client)
{
    memset(st, 0, sizeof(*st));
    st->client = client;
    st->fd = -1;
    st->reason = str_new(64);
    st->temp_path = str_new(64);
    st->out = str_new(CLEANUP_FLUSH_SIZE + 4096);
    cleanup_envelope_init(st);
    cleanup_message_init(st);
}

static void
state_free(struct cleanup_state *st)
{
    cleanup_out_abort(st);          /* no-op after a commit */
    cleanup_envelope_free(st);
    cleanup_message_free(st);
    str_free(st->reason);
    str_free(st->temp_path);
    str_free(st->out);
    mem_free(st->queue_id);
}

/*
 * Check that "type" may come now and move the order state on. Returns
 * false for a record out of order.
 */
static bool
order_next(enum want *w, int type)
{
    switch (*w) {
    case W_T:
        if (type != REC_TYPE_TIME)
            return false;
        *w = W_FS;
        return true;
    case W_FS:
    case W_S:
        if (type == REC_TYPE_FULLNAME && *w == W_FS)
            *w = W_S;
        else if (type == REC_TYPE_SENDER)
            *w = W_ATTR;
        else
            return false;
        return true;
    case W_ATTR:
    case W_RCPT:
        if (type == REC_TYPE_ATTR && *w == W_ATTR)
            return true;
        if (type == REC_TYPE_ORCPT)
            *w = W_AFTER_O;
        else if (type == REC_TYPE_NOTIFY)
            *w = W_AFTER_N;
        else if (type == REC_TYPE_RCPT)
            *w = W_RCPT;
        else if (type == REC_TYPE_MESG)
            *w = W_CONTENT;
        else
            return false;
        return true;
    case W_AFTER_O:
        if (type == REC_TYPE_NOTIFY)
            *w = W_AFTER_N;
        else if (type == REC_TYPE_RCPT)
            *w = W_RCPT;
        else
            return false;
        return true;
    case W_AFTER_N:
        if (type != REC_TYPE_RCPT)
            return false;
        *w = W_RCPT;
        return true;
    case W_CONTENT:
        if (type == REC_TYPE_XTRA)
            *w = W_END;
        else if (type != REC_TYPE_NORM && type != REC_TYPE_CONT)
            return false;
        return true;
    case W_END:
        if (type != REC_TYPE_END)
            return false;
        *w = W_DONE;
        return true;
    case W_DONE:
        return false;
    }
    return false;
}

/* Printable form of a record type byte for log lines. */
static void
type_text(char *buf, size_t size, int type)
{
    if (type > ' ' && type < 0x7f)
        snprintf(buf, size, "'%c'", type);
    else
        snprintf(buf, size, "0x%02x", (unsigned) type & 0xff);
}

/*
 * Read records until E. Returns true when the whole message was read
 * (errors in its contents are in st->errs), false when the connection was
 * lost or the input cannot be followed any more (logged; st->errs set).
 */
static bool
read_records(struct cleanup_state *st)
{
    enum want w = W_T;
    str_t  *data = str_new(256);
    str_t  *err = str_new(64);
    bool    ok = false;

    while (w != W_DONE) {
        size_t  max = (w == W_CONTENT) ? CLEANUP_CONTENT_REC_MAX : CLEANUP_ENV_REC_MAX;
        int     type = rec_get(st->client, data, max, err);
        char    tbuf[8];

        if (type == REC_EOF || type == REC_IOERR) {
            log_warn("%s: lost connection with client while receiving %s%s%s", st->queue_id,
                     w >= W_CONTENT ? "the message content" : "the envelope",
                     type == REC_IOERR ? ": " : "", type == REC_IOERR ? str_cstr(err) : "");
            cleanup_error(st, CLEANUP_STAT_BAD, "4.3.0 lost connection with client");
            goto done;
        }
        if (type == REC_BAD) {
            log_warn("%s: malformed record from client: %s", st->queue_id, str_cstr(err));
            cleanup_error(st, CLEANUP_STAT_BAD, "4.3.0 internal protocol error");
            goto done;
        }
        if (!order_next(&w, type)) {
            type_text(tbuf, sizeof(tbuf), type);
            log_warn("%s: unexpected record type %s (%s) from client, expected %s", st->queue_id,
                     tbuf, rec_type_name(type), want_text[w]);
            cleanup_error(st, CLEANUP_STAT_BAD, "4.3.0 internal protocol error");
            goto done;
        }
        switch (type) {
        case REC_TYPE_MESG:
            cleanup_envelope_end(st);
            cleanup_out_record(st, REC_TYPE_MESG, "", 0);
            cleanup_out_mark_content(st);
            break;
        case REC_TYPE_XTRA:
            cleanup_message_end(st);
            cleanup_out_record(st, REC_TYPE_XTRA, "", 0);
            cleanup_message_extract(st);
            break;
        case REC_TYPE_END:
            break;
        default:
            if (w == W_CONTENT)
                cleanup_message_record(st, type, data);
            else
                cleanup_envelope_record(st, type, data);
            break;
        }
        /* A bad record desynchronises us from the client: stop reading. */
        if (st->errs & CLEANUP_STAT_BAD)
            goto done;
    }
    ok = true;
done:
    str_free(data);
    str_free(err);
    return ok;
}

static void
send_reply(struct cleanup_state *st, int status, const char *reason)
{
    attr_list_t *reply = attr_list_new();

    attr_put_int(reply, "status", status);
    attr_put_str(reply, "reason", reason);
    if (attr_write(st->client, reply) != ATTR_OK)
        log_warn("%s: cannot send the reply to the client: %s", st->queue_id,
                 stream_strstatus(stream_status(st->client)));
    attr_list_free(reply);
}

/*
 * True when the client closed its end: an orderly end of input, or a reset
 * or broken pipe because it went away with our queue ID unread. Between two
 * messages of a kept connection that is how a connection normally ends
 * (smtpd exits after max_use, gives the connection back when idle, or is
 * stopped), so it is not worth a warning.
 */
static bool
client_went_away(stream_t *client)
{
    int     e = stream_errno(client);

    return stream_status(client) == STREAM_EOF
        || (stream_status(client) == STREAM_ERR && (e == ECONNRESET || e == EPIPE));
}

/*
 * Create the message's queue file and tell the client its queue ID. With
 * announce, the previous message is done and the client may be gone
 * already: that is not logged.
 */
static bool
open_and_announce(struct cleanup_state *st, stream_t *client, attr_list_t *req, bool announce)
{
    if (!cleanup_out_open(st))
        return false;               /* logged; the client sees the connection close */
    attr_list_reset(req);
    attr_put_str(req, "queue_id", st->queue_id);
    if (attr_write(client, req) != ATTR_OK) {
        if (!announce || !client_went_away(client))
            log_warn("%s: lost connection with client before the message", st->queue_id);
        return false;
    }
    return true;
}

/*
 * What the connection does after a message (cleanup_one's result).
 */
enum cleanup_next {
    NEXT_END,                       /* close the connection */
    NEXT_MESSAGE,                   /* the client may send another {flags} */
    NEXT_ANNOUNCED,                 /* CLEANUP_FLAG_MORE: announce the next file first */
};

/*
 * One message on the connection: {flags}, {queue_id}, records, {status};
 * with "announce" (the last message asked for CLEANUP_FLAG_MORE) the
 * {queue_id} comes first. Returns what may follow: nothing when the client
 * closed the connection (also the normal end, before a {flags}), broke the
 * protocol, or went away in the middle of a message.
 */
static enum cleanup_next
cleanup_one(stream_t *client, bool announce)
{
    struct cleanup_state st;
    attr_list_t *req = attr_list_new();
    str_t  *err = str_new(64);
    long long flags = 0;
    bool    complete;
    enum cleanup_next next = NEXT_END;

    state_init(&st, client);
    if (announce && !open_and_announce(&st, client, req, true))
        goto out;
    attr_list_reset(req);
    switch (attr_read(client, NULL, req, err)) {
    case ATTR_OK:
        break;
    case ATTR_EOF:
        goto out;                   /* a file made in advance is removed by state_free */
    case ATTR_IOERR:
        if (client_went_away(client))
            goto out;               /* closed with our announced queue ID unread */
        /* FALLTHROUGH */
    default:
        log_warn("bad request from client: %s", str_len(err) ? str_cstr(err) : "read error");
        goto out;
    }
    if (attr_get_int(req, "flags", 0, CLEANUP_FLAG_MASK, &flags) != ATTR_OK
        || attr_check_end(req, err) != ATTR_OK) {
        log_warn("bad request from client: %s",
                 str_len(err) ? str_cstr(err) : attr_last_error(req));
        goto out;
    }
    st.flags = (int) flags;
    if (!announce && !open_and_announce(&st, client, req, false))
        goto out;

    complete = read_records(&st);
    if (complete && st.errs == 0 && st.rcpt_count == 0) {
        log_info("%s: reject: no recipients; from=<%s>", st.queue_id,
                 st.sender ? st.sender : "");
        cleanup_error(&st, CLEANUP_STAT_RCPT, "5.1.3 no recipients specified");
    }
    if (!complete) {
        cleanup_out_abort(&st);
        /* The reply is best effort: the client may be gone. */
        if (stream_status(client) == STREAM_OK)
            send_reply(&st, st.errs, str_cstr(st.reason));
        goto out;
    }
    next = (st.flags & CLEANUP_FLAG_MORE) ? NEXT_ANNOUNCED : NEXT_MESSAGE;
    if (st.flags & CLEANUP_FLAG_DISCARD) {
        cleanup_out_abort(&st);
        log_info("%s: discard: from=<%s>: discarded on request of the client", st.queue_id,
                 st.sender ? st.sender : "");
        send_reply(&st, CLEANUP_STAT_OK, "");
        goto out;
    }
    if (st.errs == 0 && cleanup_out_commit(&st)) {
        if ((st.flags & CLEANUP_FLAG_HOLD) == 0)
            (void) ipc_trigger(NULL, "public", "qmgr", IPC_TRIGGER_WAKEUP);
        else
            log_info("%s: hold: from=<%s>: held on request of the client", st.queue_id,
                     st.sender ? st.sender : "");
        send_reply(&st, CLEANUP_STAT_OK, "");
        goto out;
    }
    cleanup_out_abort(&st);
    if (CLEANUP_STAT_PERMANENT(st.errs) == 0 && (st.errs & CLEANUP_STAT_BAD) == 0)
        log_warn("%s: message not accepted, try again later: %s", st.queue_id,
                 str_cstr(st.reason));
    send_reply(&st, st.errs, str_cstr(st.reason));
out:
    if (stream_status(client) != STREAM_OK)
        next = NEXT_END;
    attr_list_free(req);
    str_free(err);
    state_free(&st);
    return next;
}

/*
 * A connection carries messages one after another until the client closes
 * it. The watchdog is restarted before each message, so that no live
 * cleanup process owns a temporary file older than daemon_timeout (the
 * sweep in cleanup_out.c relies on it).
 */
static void
cleanup_service(stream_t *client, config_t *cfg)
{
    enum cleanup_next next = NEXT_MESSAGE;

    stream_set_timeout(client, cleanup_conf.ipc_timeout);
    if (attr_send_protocol(client, CLEANUP_PROTOCOL) != ATTR_OK)
        return;
    for (long n = 0; next != NEXT_END; n++) {
        if (n > 0)
            server_watchdog_restart();
        next = cleanup_one(client, next == NEXT_ANNOUNCED);
    }
}

static void
cleanup_post_init(config_t *cfg)
{
    cleanup_conf.message_size_limit = config_int(cfg, "message_size_limit");
    cleanup_conf.header_size_limit = config_int(cfg, "header_size_limit");
    cleanup_conf.hopcount_limit = config_int(cfg, "hopcount_limit");
    cleanup_conf.line_length_limit = config_int(cfg, "line_length_limit");
    cleanup_conf.always_add_missing_headers = config_bool(cfg, "always_add_missing_headers");
    cleanup_conf.myhostname = config_str(cfg, "myhostname");
    cleanup_conf.undisclosed_header = config_str(cfg, "undisclosed_recipients_header");
    cleanup_conf.ipc_timeout = (int) config_time(cfg, "ipc_timeout");
    cleanup_conf.daemon_timeout = config_time(cfg, "daemon_timeout");
    queue_init(cfg);
    rewrite_clnt_set_qdir(NULL);
    /* What a killed cleanup process left behind; see cleanup_out.c. */
    cleanup_out_sweep(cleanup_conf.daemon_timeout);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "cleanup",
        .post_init = cleanup_post_init,
        .service = cleanup_service,
    };

    single_server_main(argc, argv, &ops);
}
