/*
 * smtpd_cmd.c - SMTP command handlers (everything but the message content).
 *
 * Each handler validates its own arguments and answers with an RFC 5321
 * reply code and an RFC 3463 enhanced status code. The order of commands is
 * enforced here: MAIL needs no open transaction, RCPT needs MAIL, and DATA
 * or BDAT (smtpd_data.c) need at least one accepted recipient.
 *
 * Trust: the argument text is the client's; addresses go through
 * addr_parse_path() and ESMTP parameters through strict parsers below.
 * Nothing from the client reaches a log line or a queue record unchecked.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "clock.h"
#include "esmtp.h"
#include "log.h"
#include "mem.h"
#include "rec_type.h"
#include "smtpd.h"


/* A HELO/EHLO argument: one word of printable ASCII. */
static bool
valid_helo(const char *arg)
{
    if (*arg == 0 || strlen(arg) > 255)
        return false;
    for (const char *p = arg; *p; p++)
        if (!isgraph((unsigned char) *p))
            return false;
    return true;
}

const char *
smtpd_protocol(const struct smtpd_session *s)
{
    if (!s->esmtp)
        return "SMTP";
    return s->in_mail && s->smtputf8 ? "UTF8SMTP" : "ESMTP";
}

void
smtpd_log_reject(struct smtpd_session *s, const char *what, const char *reply,
                 const char *rcpt, bool warning)
{
    str_t  *line = str_new(256);

    str_printf(line, "%s: %s: %s from %s[%s]: %s;",
               s->queue_id[0] ? s->queue_id : "NOQUEUE", warning ? "reject_warning" : "reject",
               what, s->name, s->addr, reply);
    if (s->in_mail)
        str_append_printf(line, " from=<%s>", s->sender);
    if (rcpt)
        str_append_printf(line, " to=<%s>", rcpt);
    str_append_printf(line, " proto=%s", smtpd_protocol(s));
    if (s->helo)
        str_append_printf(line, " helo=<%s>", s->helo);
    log_info("%s", str_cstr(line));
    str_free(line);
}

void
smtpd_xact_reset(struct smtpd_session *s)
{
    smtpd_cleanup_abort(s);
    for (size_t i = 0; i < s->nrcpts; i++) {
        mem_free(s->rcpts[i].addr);
        mem_free(s->rcpts[i].orcpt);
    }
    mem_free(s->rcpts);
    s->rcpts = NULL;
    s->nrcpts = s->rcpt_cap = 0;
    mem_free(s->sender);
    s->sender = NULL;
    mem_free(s->dsn_envid);
    s->dsn_envid = NULL;
    s->in_mail = false;
    s->declared_size = 0;
    s->body = SMTPD_BODY_NONE;
    s->smtputf8 = false;
    s->dsn_ret = 0;
    s->bdat = false;
    str_free(s->bdat_line);
    s->bdat_line = NULL;
    s->queue_id[0] = 0;
    s->content_started = false;
    s->msg_bytes = 0;
    s->too_big = false;
}

static bool
greet(struct smtpd_session *s, const char *args, bool esmtp)
{
    if (!valid_helo(args)) {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return false;
    }
    smtpd_xact_reset(s);            /* RFC 5321 4.1.4: like RSET */
    mem_free(s->helo);
    s->helo = mem_strdup(args);
    s->esmtp = esmtp;
    if (!esmtp) {
        smtpd_reply(s, "250 %s", config_str(s->cfg, "myhostname"));
        return true;
    }
    str_t  *r = str_new(256);
    long    limit = config_int(s->cfg, "message_size_limit");

    str_printf(r, "250-%s\n250-PIPELINING\n", config_str(s->cfg, "myhostname"));
    if (limit > 0)
        str_append_printf(r, "250-SIZE %ld\n", limit);
    else
        str_append_cstr(r, "250-SIZE\n");
    if (!config_bool(s->cfg, "disable_vrfy_command"))
        str_append_cstr(r, "250-VRFY\n");
    str_append_cstr(r, "250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250-SMTPUTF8\n"
                    "250 CHUNKING");
    smtpd_reply(s, "%s", str_cstr(r));
    str_free(r);
    return true;
}

static bool
cmd_ehlo(struct smtpd_session *s, const char *args)
{
    return greet(s, args, true);
}

static bool
cmd_helo(struct smtpd_session *s, const char *args)
{
    return greet(s, args, false);
}

static bool
cmd_noop(struct smtpd_session *s, const char *args)
{
    smtpd_reply(s, "250 2.0.0 Ok");
    return true;
}

static bool
cmd_rset(struct smtpd_session *s, const char *args)
{
    if (*args) {
        smtpd_reply(s, "501 5.5.4 Syntax: RSET");
        return false;
    }
    smtpd_xact_reset(s);
    smtpd_reply(s, "250 2.0.0 Ok");
    return true;
}

static bool
cmd_quit(struct smtpd_session *s, const char *args)
{
    smtpd_xact_reset(s);
    smtpd_reply(s, "221 2.0.0 Bye");
    s->quit = true;
    return true;
}

static bool
cmd_vrfy(struct smtpd_session *s, const char *args)
{
    if (config_bool(s->cfg, "disable_vrfy_command")) {
        smtpd_reply(s, "502 5.5.1 VRFY command is disabled");
        return false;
    }
    if (*args == 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: VRFY address");
        return false;
    }
    smtpd_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
    return true;
}

static bool
cmd_help(struct smtpd_session *s, const char *args)
{
    smtpd_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT");
    return true;
}

/* True when text holds a byte >= 0x80. */
static bool
has_8bit(const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if (*p >= 0x80)
            return true;
    return false;
}

/* 555 for an unknown or malformed MAIL/RCPT parameter, showing only a safe, bounded key. */
static void
reply_unsupported(struct smtpd_session *s, const str_t *key)
{
    str_t  *shown = str_new(32);

    for (size_t i = 0; i < str_len(key) && i < 32; i++)
        str_putc(shown, isgraph((unsigned char) key->data[i]) ? key->data[i] : '?');
    smtpd_reply(s, "555 5.5.4 Unsupported option: %s", str_cstr(shown));
    str_free(shown);
}

/* Parse the MAIL FROM parameters into the session; replies on error. */
static bool
mail_params(struct smtpd_session *s, const char *rest)
{
    str_t  *key = str_new(16), *value = str_new(64);
    bool    has_value, ok = false;

    while (esmtp_next_param(&rest, key, value, &has_value)) {
        const char *k = str_cstr(key), *v = str_cstr(value);

        if (strcasecmp(k, "SIZE") == 0 && has_value) {
            if (!esmtp_parse_size(v, &s->declared_size)) {
                smtpd_reply(s, "501 5.5.4 Bad message size syntax");
                goto out;
            }
        } else if (strcasecmp(k, "BODY") == 0 && has_value) {
            if (strcasecmp(v, "7BIT") == 0)
                s->body = SMTPD_BODY_7BIT;
            else if (strcasecmp(v, "8BITMIME") == 0)
                s->body = SMTPD_BODY_8BITMIME;
            else {
                smtpd_reply(s, "501 5.5.4 Unsupported BODY parameter value");
                goto out;
            }
        } else if (strcasecmp(k, "SMTPUTF8") == 0 && !has_value && s->esmtp) {
            s->smtputf8 = true;
        } else if (strcasecmp(k, "RET") == 0 && has_value && s->esmtp) {
            if (s->dsn_ret) {
                smtpd_reply(s, "501 5.5.4 Duplicate RET parameter");
                goto out;
            }
            if (strcasecmp(v, "FULL") == 0)
                s->dsn_ret = DSN_RET_FULL;
            else if (strcasecmp(v, "HDRS") == 0)
                s->dsn_ret = DSN_RET_HDRS;
            else {
                smtpd_reply(s, "501 5.5.4 Bad RET parameter syntax");
                goto out;
            }
        } else if (strcasecmp(k, "ENVID") == 0 && has_value && s->esmtp) {
            str_t  *dec = str_new(64);

            if (s->dsn_envid || !esmtp_decode_xtext(dec, v, ESMTP_ENVID_MAX)) {
                str_free(dec);
                smtpd_reply(s, "501 5.5.4 Bad ENVID parameter syntax");
                goto out;
            }
            s->dsn_envid = str_steal(dec);
        } else {
            reply_unsupported(s, key);
            goto out;
        }
    }
    ok = true;
  out:
    str_free(key);
    str_free(value);
    return ok;
}

static bool
cmd_mail(struct smtpd_session *s, const char *args)
{
    const char *path, *rest = "";
    str_t  *addr, *err;
    bool    ok = false;

    if (s->helo == NULL && config_bool(s->cfg, "smtpd_helo_required")) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return false;
    }
    if (s->in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
        return false;
    }
    if ((path = esmtp_skip_keyword(args, "FROM:")) == NULL || *path == 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return false;
    }
    addr = str_new(64);
    err = str_new(64);
    if (!addr_parse_path(path, addr, &rest, ADDR_PATH_ALLOW_EMPTY | ADDR_PATH_UTF8, err)) {
        smtpd_reply(s, "501 5.1.7 Bad sender address syntax");
        goto out;
    }
    /* Start the transaction now so a parameter error can simply reset it. */
    s->in_mail = true;
    s->sender = mem_strdup(str_cstr(addr));
    if (!mail_params(s, rest)) {
        smtpd_xact_reset(s);
        goto out;
    }
    if (has_8bit(s->sender) && !s->smtputf8) {
        smtpd_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        smtpd_xact_reset(s);
        goto out;
    }
    long    limit = config_int(s->cfg, "message_size_limit");

    if (limit > 0 && s->declared_size > limit) {
        smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        smtpd_xact_reset(s);
        goto out;
    }
    if (!config_bool(s->cfg, "smtpd_delay_reject")) {
        str_t  *reply = str_new(128);

        if (smtpd_check_mail(s, reply) != 0) {
            smtpd_reply(s, "%s", str_cstr(reply));
            smtpd_xact_reset(s);
            str_free(reply);
            goto out;
        }
        str_free(reply);
    }
    int64_t ms = clock_now_ms();

    s->arrival.tv_sec = (time_t) (ms / 1000);
    s->arrival.tv_usec = (suseconds_t) (ms % 1000) * 1000;
    if (!config_bool(s->cfg, "smtpd_delay_open_until_valid_rcpt") && !smtpd_cleanup_open(s)) {
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        smtpd_xact_reset(s);
        goto out;
    }
    smtpd_reply(s, "250 2.1.0 Ok");
    ok = true;
  out:
    str_free(addr);
    str_free(err);
    return ok;
}

static bool
rcpt_params(struct smtpd_session *s, const char *rest, struct smtpd_rcpt *r)
{
    str_t  *key = str_new(16), *value = str_new(64);
    bool    has_value, ok = false;

    while (esmtp_next_param(&rest, key, value, &has_value)) {
        const char *k = str_cstr(key), *v = str_cstr(value);

        if (strcasecmp(k, "NOTIFY") == 0 && has_value && s->esmtp) {
            if (r->notify || !esmtp_parse_notify(v, &r->notify)) {
                smtpd_reply(s, "501 5.5.4 Error: Bad NOTIFY parameter syntax");
                goto out;
            }
        } else if (strcasecmp(k, "ORCPT") == 0 && has_value && s->esmtp) {
            if (r->orcpt || !esmtp_parse_orcpt(v, &r->orcpt)) {
                smtpd_reply(s, "501 5.5.4 Error: Bad ORCPT parameter syntax");
                goto out;
            }
        } else {
            reply_unsupported(s, key);
            goto out;
        }
    }
    ok = true;
  out:
    str_free(key);
    str_free(value);
    return ok;
}

static bool
cmd_rcpt(struct smtpd_session *s, const char *args)
{
    const char *path, *rest = "";
    struct smtpd_rcpt r = {0};
    str_t  *addr, *err, *reply;
    bool    ok = false;

    if (!s->in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return false;
    }
    if ((path = esmtp_skip_keyword(args, "TO:")) == NULL || *path == 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return false;
    }
    addr = str_new(64);
    err = str_new(64);
    reply = str_new(128);
    if (!addr_parse_path(path, addr, &rest, ADDR_PATH_UTF8, err) || str_len(addr) == 0) {
        smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
        goto out;
    }
    if (!rcpt_params(s, rest, &r))
        goto out;
    if (has_8bit(str_cstr(addr)) && !s->smtputf8) {
        smtpd_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        goto out;
    }
    if ((long) s->nrcpts >= config_int(s->cfg, "smtpd_recipient_limit")) {
        smtpd_reply(s, "452 4.5.3 Error: too many recipients");
        goto out;
    }
    if (smtpd_check_rcpt(s, str_cstr(addr), reply) != 0) {
        smtpd_reply(s, "%s", str_cstr(reply));
        goto out;
    }
    if (s->cleanup == NULL && !smtpd_cleanup_open(s)) {
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        goto out;
    }
    r.addr = mem_strdup(str_cstr(addr));
    s->rcpts = mem_grow_array(s->rcpts, &s->rcpt_cap, s->nrcpts + 1, sizeof(*s->rcpts));
    s->rcpts[s->nrcpts++] = r;
    smtpd_cleanup_rcpt(s, &r);
    r = (struct smtpd_rcpt) {0};
    smtpd_reply(s, "250 2.1.5 Ok");
    ok = true;
  out:
    mem_free(r.orcpt);
    str_free(addr);
    str_free(err);
    str_free(reply);
    return ok;
}

const struct smtpd_command smtpd_commands[] = {
    {"ehlo", cmd_ehlo},
    {"helo", cmd_helo},
    {"mail", cmd_mail},
    {"rcpt", cmd_rcpt},
    {"data", smtpd_cmd_data},
    {"bdat", smtpd_cmd_bdat},
    {"rset", cmd_rset},
    {"noop", cmd_noop},
    {"vrfy", cmd_vrfy},
    {"help", cmd_help},
    {"quit", cmd_quit},
    {NULL, NULL},
};
