/*
 * smtpd.h - the SMTP server (internal interfaces).
 *
 * smtpd_main.c   skeleton glue, one session per connection, the command loop
 * smtpd_cmd.c    the command handlers
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <netinet/in.h>
#include <stdbool.h>

#include "config.h"
#include "str.h"
#include "stream.h"

#define SMTPD_NAME_MAX 256

struct smtpd_counter {
    const char *name;           /* "ehlo", "mail", ... */
    int     total;
    int     ok;
};

struct smtpd_session {
    stream_t *client;
    config_t *cfg;
    char    addr[INET6_ADDRSTRLEN];
    char    name[SMTPD_NAME_MAX];   /* verified reverse name or "unknown" */
    int     port;
    char   *helo;               /* the EHLO/HELO argument, NULL before */
    bool    esmtp;
    bool    quit;               /* end the session after this reply */
    int     errors;             /* soft error count, for the error limits */
    str_t  *line;               /* the current command line (no CRLF) */
    struct smtpd_counter *counters;
    size_t  ncounters;
};

/* Send one reply line (or several separated by "\n"); "250-" continuations added. */
void    smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * A command handler gets the argument text after the verb (may be "") and
 * returns true when the command succeeded (for the "disconnect" statistics).
 */
typedef bool (*smtpd_cmd_fn)(struct smtpd_session *s, const char *args);

struct smtpd_command {
    const char *verb;
    smtpd_cmd_fn fn;
};

extern const struct smtpd_command smtpd_commands[];

#endif
