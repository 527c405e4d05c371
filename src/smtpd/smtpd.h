/*
 * smtpd.h - the SMTP server (internal interfaces).
 *
 * smtpd_main.c     skeleton glue, one session per connection, the command loop
 * smtpd_cmd.c      the command handlers: EHLO/HELO, MAIL, RCPT, RSET, ...
 * smtpd_data.c     message content: DATA (dot-unstuffing, end of data) and BDAT
 * smtpd_cleanup.c  the client side of the cleanup service: a kept connection
 *                  for many messages, envelope and content records, the reply
 * smtpd_check.c    the access restrictions (smtpd_*_restrictions)
 *
 * Ownership: a session owns everything hanging off it; the transaction part
 * (sender, recipients, the cleanup stream) is released by smtpd_xact_reset().
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/time.h>

#include "config.h"
#include "queue.h"
#include "str.h"
#include "stream.h"

#define SMTPD_NAME_MAX 256
#define SMTPD_VERB_MAX 16

struct smtpd_counter {
    const char *name;           /* "ehlo", "mail", ... */
    int     total;
    int     ok;
};

/* One accepted recipient. */
struct smtpd_rcpt {
    char   *addr;               /* internal form */
    char   *orcpt;              /* "addr-type;decoded address", or NULL */
    int     notify;             /* DSN_NOTIFY_* mask, 0 when not given */
};

/* BODY= values. */
enum smtpd_body {
    SMTPD_BODY_NONE = 0,
    SMTPD_BODY_7BIT,
    SMTPD_BODY_8BITMIME,
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
    char    verb[SMTPD_VERB_MAX];   /* last command, upper case, for "lost connection after" */
    struct smtpd_counter *counters;
    size_t  ncounters;

    /* The mail transaction; in_mail is true between MAIL and its end. */
    bool    in_mail;
    char   *sender;             /* internal form, "" for <> */
    long    declared_size;      /* SIZE=, 0 when not given */
    enum smtpd_body body;
    bool    smtputf8;
    int     dsn_ret;            /* DSN_RET_*, 0 when not given */
    char   *dsn_envid;          /* decoded ENVID, or NULL */
    struct timeval arrival;
    struct smtpd_rcpt *rcpts;
    size_t  nrcpts;
    size_t  rcpt_cap;
    bool    bdat;               /* a BDAT chunk was received in this transaction */
    str_t  *bdat_line;          /* BDAT: the unfinished last line of the chunks so far */

    /* The cleanup connection of the current message (NULL when none). */
    stream_t *cleanup;
    char    queue_id[QUEUE_ID_MAX + 1];
    bool    content_started;    /* M record and Received: header written */
    long    msg_bytes;          /* content bytes so far, one per line end */
    bool    too_big;            /* message_size_limit exceeded: content discarded */
};

/* Send one reply line (or several separated by "\n"); "250-" continuations added. */
void    smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "421 4.4.2 ... timeout exceeded", written although the stream timed out. */
void    smtpd_reply_timeout(struct smtpd_session *s);

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

/* smtpd_cmd.c: end the mail transaction (RSET, EHLO, QUIT, end of message). */
void    smtpd_xact_reset(struct smtpd_session *s);
/* "name[addr]" style prefix pieces and the protocol name for logs and records. */
const char *smtpd_protocol(const struct smtpd_session *s);
/* Log "ID: reject: WHAT from name[addr]: REPLY; from=<> to=<> proto=P helo=<h>". */
void    smtpd_log_reject(struct smtpd_session *s, const char *what, const char *reply,
                         const char *rcpt, bool warning);

/* smtpd_data.c */
bool    smtpd_cmd_data(struct smtpd_session *s, const char *args);
bool    smtpd_cmd_bdat(struct smtpd_session *s, const char *args);

/* smtpd_cleanup.c */
/*
 * Connect to cleanup, get the queue ID, log "ID: client=..." and send the
 * envelope so far. false (logged) when cleanup is unavailable; the caller
 * replies 451 4.3.0.
 */
bool    smtpd_cleanup_open(struct smtpd_session *s);
/* Append one accepted recipient to the envelope. */
void    smtpd_cleanup_rcpt(struct smtpd_session *s, const struct smtpd_rcpt *r);
/* Start the content: M record and our Received: header. */
void    smtpd_cleanup_begin(struct smtpd_session *s);
/*
 * One piece of a content line (no line terminator); "last" says whether the
 * line ends with this piece. Counts the size and stops sending (too_big) past
 * message_size_limit.
 */
void    smtpd_cleanup_line(struct smtpd_session *s, const char *data, size_t len, bool last);
/*
 * Finish the message: X and E records, read cleanup's verdict and reply to
 * the client (250 with the queue ID only when cleanup committed the file).
 * Returns true for 250. The transaction is reset afterwards by the caller.
 */
bool    smtpd_cleanup_finish(struct smtpd_session *s);
/* Drop the cleanup connection: cleanup discards the unfinished file. */
void    smtpd_cleanup_abort(struct smtpd_session *s);
/* Close the cleanup connection kept for the next message (the skeleton's idle hook). */
void    smtpd_cleanup_release(void);

/* smtpd_check.c */
/* Parse the restriction lists and open their tables; fatal on a bad configuration. */
void    smtpd_check_init(config_t *cfg);
/* True when the client matches local_header_rewrite_clients. */
bool    smtpd_check_local_header_client(struct smtpd_session *s);
/*
 * Run the restrictions that apply at MAIL FROM (only when smtpd_delay_reject
 * is off) or RCPT TO. 0 when the command may proceed; otherwise the full
 * reply ("554 5.7.1 <x@y>: Relay access denied") is in reply and the reject
 * was logged.
 */
int     smtpd_check_mail(struct smtpd_session *s, str_t *reply);
int     smtpd_check_rcpt(struct smtpd_session *s, const char *rcpt, str_t *reply);

#endif
