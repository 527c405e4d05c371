/*
 * sendmail.h - the parts of sendmail that its -bs mode shares with the
 * ordinary one.
 */
#ifndef POSTERN_SENDMAIL_H
#define POSTERN_SENDMAIL_H

#include <stdbool.h>

#include "config.h"
#include "str.h"
#include "stream.h"
#include "submit.h"

struct sendmail_ctx {
    config_t *cfg;
    const char *config_dir;
    bool    explicit_dir;       /* pass -c config_dir on to postdrop */
};

/*
 * Hand one message to postdrop: the envelope records (up to and including
 * M), then the content that "in" reads from src, then X and E when the
 * content ended well. Without E postdrop queues nothing. records is reused
 * as a buffer. Returns the submit_input status of the content and sets
 * *status to postdrop's exit status (EX_OK: queued).
 */
int     sendmail_post(const struct sendmail_ctx *c, str_t *records, stream_t *src,
                      struct submit_input *in, int *status);

/*
 * -bs: an SMTP dialogue on standard input and output, each message queued
 * through postdrop like any other submission by this user. Returns the
 * exit status.
 */
int     sendmail_smtp(const struct sendmail_ctx *c);

#endif
