/*
 * sendmail_smtp.c - "sendmail -bs": SMTP on standard input and output.
 *
 * A program that would rather speak SMTP than build a command line (some
 * mail user agents do) runs "sendmail -bs" and holds an RFC 5321 dialogue
 * with it. Each message is submitted through postdrop exactly as the
 * ordinary mode submits one: it is the calling user's mail, any recipient
 * is allowed (as on the command line), and postdrop and pickup check it
 * again. The reply to the end of DATA comes after postdrop has synced the
 * file into maildrop/.
 *
 * Extensions: PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, DSN. No
 * CHUNKING, STARTTLS, AUTH or SMTPUTF8. Lines may end in CRLF or in a bare
 * LF: the input is a local program's, not the network's.
 *
 * Limits: line_length_limit for the content, 2048 bytes per command line,
 * smtpd_recipient_limit, message_size_limit, smtpd_timeout for each read,
 * smtpd_hard_error_limit errors before the dialogue ends with 421.
 *
 * SECURITY: runs with the caller's privileges only; everything it accepts
 * is no more than the caller could put on a command line.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "esmtp.h"
#include "mem.h"
#include "rec.h"
#include "rec_type.h"
#include "sendmail.h"

#define BS_LINE_MAX     2048        /* a command line, CRLF included */

struct bs_rcpt {
    char   *addr;                   /* internal form */
    char   *orcpt;                  /* "type;value" or NULL */
    int     notify;                 /* DSN_NOTIFY_* mask, 0: not given */
};

struct bs_session {
    const struct sendmail_ctx *c;
    stream_t *in, *out;
    int     errors;
    bool    in_mail;
    char   *sender;                 /* internal form; "" is the null sender */
    char   *envid;
    int     ret;
    struct bs_rcpt *rcpts;
    size_t  nrcpt, rcpt_cap;
};

static void
reply(struct bs_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
reply(struct bs_session *s, const char *fmt, ...)
{
    va_list ap;
    str_t  *line = str_new(128);

    va_start(ap, fmt);
    str_append_vprintf(line, fmt, ap);
    va_end(ap);
    str_append(line, "\r\n", 2);
    (void) stream_write(s->out, str_cstr(line), str_len(line));
    /* Pipelined commands get their replies in one write. */
    if (stream_pending(s->in) == 0)
        (void) stream_flush(s->out);
    str_free(line);
}

static void
xact_reset(struct bs_session *s)
{
    for (size_t i = 0; i < s->nrcpt; i++) {
        mem_free(s->rcpts[i].addr);
        mem_free(s->rcpts[i].orcpt);
    }
    s->nrcpt = 0;
    mem_free(s->sender);
    mem_free(s->envid);
    s->sender = s->envid = NULL;
    s->ret = 0;
    s->in_mail = false;
}

/* A 4xx/5xx reply counts; too many end the dialogue. */
static bool
error_reply(struct bs_session *s, const char *text)
{
    reply(s, "%s", text);
    if (++s->errors >= config_int(s->c->cfg, "smtpd_hard_error_limit")) {
        reply(s, "421 4.7.0 %s Error: too many errors", config_str(s->c->cfg, "myhostname"));
        return false;
    }
    return true;
}

/*
 * One MAIL or RCPT parameter: NULL when it is fine, else the reply text.
 * PARAM_UNKNOWN for one that this command does not take.
 */
typedef const char *(*param_fn)(struct bs_session *s, const char *key, const char *value,
                                bool has_value, void *ctx);

static const char PARAM_UNKNOWN[] = "";

/*
 * Every parameter of rest through fn. true when all were fine; else the
 * error was replied (555 names an unknown one, shown printable and at most
 * 32 bytes) and *go_on says whether the dialogue continues.
 */
static bool
params(struct bs_session *s, const char *rest, param_fn fn, void *ctx, bool *go_on)
{
    str_t  *key = str_new(16), *value = str_new(64);
    const char *bad = NULL;
    bool    has_value;

    while (bad == NULL && esmtp_next_param(&rest, key, value, &has_value))
        bad = fn(s, str_cstr(key), str_cstr(value), has_value, ctx);
    if (bad == PARAM_UNKNOWN) {
        str_t  *text = str_new(64);

        str_set_cstr(text, "555 5.5.4 Unsupported option: ");
        for (size_t i = 0; i < str_len(key) && i < 32; i++)
            str_putc(text, isgraph((unsigned char) key->data[i]) ? key->data[i] : '?');
        *go_on = error_reply(s, str_cstr(text));
        str_free(text);
    } else if (bad) {
        *go_on = error_reply(s, bad);
    }
    str_free(key);
    str_free(value);
    return bad == NULL;
}

static const char *
mail_param(struct bs_session *s, const char *k, const char *v, bool has_value, void *ctx)
{
    long    limit = config_int(s->c->cfg, "message_size_limit"), size;

    if (strcasecmp(k, "SIZE") == 0 && has_value) {
        if (!esmtp_parse_size(v, &size))
            return "501 5.5.4 Bad message size syntax";
        if (limit > 0 && size > limit)
            return "552 5.3.4 Message size exceeds fixed limit";
    } else if (strcasecmp(k, "BODY") == 0 && has_value) {
        if (strcasecmp(v, "7BIT") != 0 && strcasecmp(v, "8BITMIME") != 0)
            return "501 5.5.4 Unsupported BODY parameter value";
    } else if (strcasecmp(k, "RET") == 0 && has_value) {
        if (s->ret)
            return "501 5.5.4 Duplicate RET parameter";
        if (strcasecmp(v, "FULL") == 0)
            s->ret = DSN_RET_FULL;
        else if (strcasecmp(v, "HDRS") == 0)
            s->ret = DSN_RET_HDRS;
        else
            return "501 5.5.4 Bad RET parameter syntax";
    } else if (strcasecmp(k, "ENVID") == 0 && has_value) {
        str_t  *dec = str_new(64);
        bool    ok = s->envid == NULL && esmtp_decode_xtext(dec, v, ESMTP_ENVID_MAX);

        if (ok)
            s->envid = mem_strdup(str_cstr(dec));
        str_free(dec);
        if (!ok)
            return "501 5.5.4 Bad ENVID parameter syntax";
    } else {
        return PARAM_UNKNOWN;
    }
    return NULL;
}

static bool
cmd_mail(struct bs_session *s, const char *args)
{
    const char *path, *rest = "";
    str_t  *addr, *err;
    bool    go_on = true;

    if (s->in_mail)
        return error_reply(s, "503 5.5.1 Error: nested MAIL command");
    if ((path = esmtp_skip_keyword(args, "FROM:")) == NULL || *path == 0)
        return error_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
    addr = str_new(64);
    err = str_new(64);
    if (!addr_parse_path(path, addr, &rest, ADDR_PATH_ALLOW_EMPTY, err)) {
        go_on = error_reply(s, "501 5.1.7 Bad sender address syntax");
    } else {
        s->in_mail = true;
        s->sender = mem_strdup(str_cstr(addr));
        if (params(s, rest, mail_param, NULL, &go_on))
            reply(s, "250 2.1.0 Ok");
        else
            xact_reset(s);
    }
    str_free(addr);
    str_free(err);
    return go_on;
}

static const char *
rcpt_param(struct bs_session *s, const char *k, const char *v, bool has_value, void *ctx)
{
    struct bs_rcpt *r = ctx;

    if (strcasecmp(k, "NOTIFY") == 0 && has_value) {
        if (r->notify || !esmtp_parse_notify(v, &r->notify))
            return "501 5.5.4 Error: Bad NOTIFY parameter syntax";
    } else if (strcasecmp(k, "ORCPT") == 0 && has_value) {
        if (r->orcpt || !esmtp_parse_orcpt(v, &r->orcpt))
            return "501 5.5.4 Error: Bad ORCPT parameter syntax";
    } else {
        return PARAM_UNKNOWN;
    }
    return NULL;
}

static bool
cmd_rcpt(struct bs_session *s, const char *args)
{
    const char *path, *rest = "";
    struct bs_rcpt r = {0};
    str_t  *addr, *err;
    bool    go_on = true;

    if (!s->in_mail)
        return error_reply(s, "503 5.5.1 Error: need MAIL command");
    if ((path = esmtp_skip_keyword(args, "TO:")) == NULL || *path == 0)
        return error_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
    addr = str_new(64);
    err = str_new(64);
    bool    ok = addr_parse_path(path, addr, &rest, 0, err) && str_len(addr) > 0;

    if (!ok)
        go_on = error_reply(s, "501 5.1.3 Bad recipient address syntax");
    else if (!params(s, rest, rcpt_param, &r, &go_on))
        ok = false;                 /* replied */
    else if ((long) s->nrcpt >= config_int(s->c->cfg, "smtpd_recipient_limit")) {
        go_on = error_reply(s, "452 4.5.3 Error: too many recipients");
        ok = false;
    }
    if (ok) {
        r.addr = mem_strdup(str_cstr(addr));
        s->rcpts = mem_grow_array(s->rcpts, &s->rcpt_cap, s->nrcpt + 1, sizeof(*s->rcpts));
        s->rcpts[s->nrcpt++] = r;
        r = (struct bs_rcpt) {0};
        reply(s, "250 2.1.5 Ok");
    }
    mem_free(r.orcpt);
    str_free(addr);
    str_free(err);
    return go_on;
}

/* The envelope records of the transaction, up to and including M. */
static void
envelope(const struct bs_session *s, str_t *records)
{
    struct timeval tv;
    str_t  *ext = str_new(64);

    gettimeofday(&tv, NULL);
    rec_putf(records, REC_TYPE_TIME, "%lld.%06ld", (long long) tv.tv_sec, (long) tv.tv_usec);
    if (*s->sender)
        addr_externalize(ext, s->sender);
    rec_put(records, REC_TYPE_SENDER, str_cstr(ext), str_len(ext));
    if (s->envid)
        rec_putf(records, REC_TYPE_ATTR, "%s=%s", REC_ATTR_DSN_ENVID, s->envid);
    if (s->ret)
        rec_putf(records, REC_TYPE_ATTR, "%s=%d", REC_ATTR_DSN_RET, s->ret);
    for (size_t i = 0; i < s->nrcpt; i++) {
        const struct bs_rcpt *r = &s->rcpts[i];

        if (r->orcpt)
            rec_put_str(records, REC_TYPE_ORCPT, r->orcpt);
        if (r->notify)
            rec_putf(records, REC_TYPE_NOTIFY, "%d", r->notify);
        str_reset(ext);
        addr_externalize(ext, r->addr);
        rec_put(records, REC_TYPE_RCPT, str_cstr(ext), str_len(ext));
    }
    rec_put(records, REC_TYPE_MESG, "", 0);
    str_free(ext);
}

/* DATA: false when the dialogue is over (the input ended or broke). */
static bool
cmd_data(struct bs_session *s, const char *args)
{
    struct submit_input in;
    str_t  *records;
    int     read_status, status;

    if (*args)
        return error_reply(s, "501 5.5.4 Syntax: DATA");
    if (!s->in_mail)
        return error_reply(s, "503 5.5.1 Error: need MAIL command");
    if (s->nrcpt == 0)
        return error_reply(s, "503 5.5.1 Error: need RCPT command");
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
    (void) stream_flush(s->out);
    records = str_new(4096);
    envelope(s, records);
    submit_input_init(&in, (size_t) config_int(s->c->cfg, "line_length_limit"),
                      config_int(s->c->cfg, "message_size_limit"), false);
    in.smtp = true;
    read_status = sendmail_post(s->c, records, s->in, &in, &status);
    submit_input_free(&in);
    str_free(records);
    xact_reset(s);
    switch (read_status) {
    case SUBMIT_INPUT_OK:
        break;
    case SUBMIT_INPUT_TOOBIG:
        return error_reply(s, "552 5.3.4 Error: message file too big");
    default:
        return false;               /* no "." line: the client is gone */
    }
    if (status == EX_NOPERM)
        return error_reply(s, "550 5.7.1 Error: you may not submit mail (authorized_submit_users)");
    if (status != EX_OK) {
        str_t  *text = str_new(64);
        bool    go_on;

        str_printf(text, "451 4.3.0 Error: queue file write error (postdrop exit status %d)",
                   status);
        go_on = error_reply(s, str_cstr(text));
        str_free(text);
        return go_on;
    }
    reply(s, "250 2.0.0 Ok: queued");
    return true;
}

static bool
cmd_ehlo(struct bs_session *s, const char *args, bool esmtp)
{
    long    limit = config_int(s->c->cfg, "message_size_limit");
    const char *me = config_str(s->c->cfg, "myhostname");

    if (*args == 0 || strchr(args, ' '))
        return error_reply(s, esmtp ? "501 5.5.4 Syntax: EHLO hostname"
                           : "501 5.5.4 Syntax: HELO hostname");
    xact_reset(s);
    if (!esmtp) {
        reply(s, "250 %s", me);
        return true;
    }
    reply(s, "250-%s", me);
    reply(s, "250-PIPELINING");
    if (limit > 0)
        reply(s, "250-SIZE %ld", limit);
    else
        reply(s, "250-SIZE");
    reply(s, "250-8BITMIME");
    reply(s, "250-ENHANCEDSTATUSCODES");
    reply(s, "250 DSN");
    return true;
}

/* One command line (without its line end); false when the dialogue is over. */
static bool
command(struct bs_session *s, char *line)
{
    char   *args = line + strcspn(line, " ");

    if (*args)
        *args++ = 0;
    while (*args == ' ')
        args++;
    if (strcasecmp(line, "EHLO") == 0 || strcasecmp(line, "HELO") == 0)
        return cmd_ehlo(s, args, strcasecmp(line, "EHLO") == 0);
    if (strcasecmp(line, "MAIL") == 0)
        return cmd_mail(s, args);
    if (strcasecmp(line, "RCPT") == 0)
        return cmd_rcpt(s, args);
    if (strcasecmp(line, "DATA") == 0)
        return cmd_data(s, args);
    if (strcasecmp(line, "RSET") == 0) {
        xact_reset(s);
        reply(s, "250 2.0.0 Ok");
        return true;
    }
    if (strcasecmp(line, "NOOP") == 0) {
        reply(s, "250 2.0.0 Ok");
        return true;
    }
    if (strcasecmp(line, "QUIT") == 0) {
        reply(s, "221 2.0.0 Bye");
        return false;
    }
    if (strcasecmp(line, "VRFY") == 0) {
        if (config_bool(s->c->cfg, "disable_vrfy_command"))
            return error_reply(s, "502 5.5.1 VRFY command is disabled");
        reply(s, "252 2.0.0 Send some mail, and I will try my best");
        return true;
    }
    if (strcasecmp(line, "HELP") == 0) {
        reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
        return true;
    }
    return error_reply(s, *line ? "502 5.5.2 Error: command not recognized"
                       : "500 5.5.2 Error: bad syntax");
}

int
sendmail_smtp(const struct sendmail_ctx *c)
{
    struct bs_session s = {.c = c};
    str_t  *line = str_new(BS_LINE_MAX);
    bool    go_on = true;

    s.in = stream_open(STDIN_FILENO);
    s.out = stream_open(STDOUT_FILENO);
    stream_set_timeout(s.in, (int) config_time(c->cfg, "smtpd_timeout"));
    reply(&s, "220 %s", config_str(c->cfg, "smtpd_banner"));
    while (go_on) {
        int     rc = stream_read_line(s.in, line, BS_LINE_MAX);

        if (rc == STREAM_TOOLONG) {
            while (rc == STREAM_TOOLONG)
                rc = stream_read_line(s.in, line, BS_LINE_MAX);
            go_on = rc == STREAM_OK && error_reply(&s, "500 5.5.0 Error: line too long");
            continue;
        }
        if (rc == STREAM_TIMEOUT) {
            reply(&s, "421 4.4.2 %s Error: timeout exceeded", config_str(c->cfg, "myhostname"));
            break;
        }
        if (rc != STREAM_OK)
            break;                  /* end of input without QUIT */
        str_chomp(line);
        if (memchr(str_cstr(line), 0, str_len(line))) {
            go_on = error_reply(&s, "500 5.5.2 Error: bad syntax");
            continue;
        }
        go_on = command(&s, line->data);
    }
    (void) stream_flush(s.out);
    xact_reset(&s);
    mem_free(s.rcpts);
    stream_abandon(s.in);
    stream_abandon(s.out);
    str_free(line);
    return EX_OK;
}
