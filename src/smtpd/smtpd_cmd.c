/*
 * smtpd_cmd.c - SMTP command handlers.
 *
 * Each handler validates its own arguments and answers with an RFC 5321
 * reply code and an RFC 3463 enhanced status code.
 */
#include <ctype.h>
#include <string.h>

#include "log.h"
#include "mem.h"
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

static bool
greet(struct smtpd_session *s, const char *args, bool esmtp)
{
    if (!valid_helo(args)) {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return false;
    }
    mem_free(s->helo);
    s->helo = mem_strdup(args);
    s->esmtp = esmtp;
    if (!esmtp) {
        smtpd_reply(s, "250 %s", config_str(s->cfg, "myhostname"));
        return true;
    }
    smtpd_reply(s, "250-%s\n250-PIPELINING\n250-SIZE %ld\n250-ENHANCEDSTATUSCODES\n250 8BITMIME",
                config_str(s->cfg, "myhostname"), config_int(s->cfg, "message_size_limit"));
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
    smtpd_reply(s, "250 2.0.0 Ok");
    return true;
}

static bool
cmd_quit(struct smtpd_session *s, const char *args)
{
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
    smtpd_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
    return true;
}

/*
 * Mail transactions need the queue, which this build does not have yet:
 * answer with a temporary failure so that a client keeps its mail and tries
 * again later, rather than pretending to accept it.
 */
static bool
cmd_transaction(struct smtpd_session *s, const char *args)
{
    if (s->helo == NULL) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return false;
    }
    smtpd_reply(s, "451 4.3.2 Error: mail queue not available, try again later");
    return false;
}

const struct smtpd_command smtpd_commands[] = {
    {"ehlo", cmd_ehlo},
    {"helo", cmd_helo},
    {"mail", cmd_transaction},
    {"rcpt", cmd_transaction},
    {"data", cmd_transaction},
    {"bdat", cmd_transaction},
    {"rset", cmd_rset},
    {"noop", cmd_noop},
    {"vrfy", cmd_vrfy},
    {"help", cmd_help},
    {"quit", cmd_quit},
    {NULL, NULL},
};
