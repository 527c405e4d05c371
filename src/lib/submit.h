/*
 * submit.h - turning a sendmail command line and message into submission
 * records (see maildrop.h for their order).
 *
 * submit_put_sender / submit_put_recipients parse command-line addresses;
 * submit_input_next reads the message from a stream and appends it as
 * content records: CRLF and LF both end a line (the CR is dropped), lines
 * longer than the line limit become L pieces and a final N, a leading
 * Unix "From " line is dropped, and unless dots are ignored (-i) a line
 * holding only "." ends the message. The content size counts each line
 * plus one newline, as message_size_limit does.
 *
 * With in->smtp set after init (sendmail -bs, the DATA of an SMTP
 * dialogue) the reader follows RFC 5321 instead: only the "." line ends
 * the message (end of input before it is SUBMIT_INPUT_EOF), a leading dot
 * is removed from every other line that has one, no "From " line is
 * dropped, and content over the size limit is read and discarded up to the
 * "." line, which then gives SUBMIT_INPUT_TOOBIG, so that the dialogue
 * stays in step.
 *
 * Trust: the input is the user's own; nothing here grants anything, it is
 * checked again by postdrop and pickup. Ownership: callers own every str_t.
 */
#ifndef POSTERN_SUBMIT_H
#define POSTERN_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"
#include "stream.h"

enum submit_input_status {
    SUBMIT_INPUT_MORE = 0,      /* some records appended; call again */
    SUBMIT_INPUT_OK = 1,        /* end of the message (EOF or a "." line) */
    SUBMIT_INPUT_TOOBIG = -1,   /* more content than size_limit */
    SUBMIT_INPUT_ERROR = -2,    /* read error; in->err holds errno */
    SUBMIT_INPUT_EOF = -3,      /* smtp: the input ended before the "." line */
};

struct submit_input {
    size_t  line_limit;         /* longest record; 0 = no limit */
    long long size_limit;       /* 0 = no limit */
    bool    ignore_dots;
    bool    smtp;               /* RFC 5321 DATA rules (see above) */
    long long size;             /* content bytes so far */
    long    lines;              /* lines so far */
    int     err;
    /* Private. */
    bool    cont;               /* the current line already gave L pieces */
    bool    done;
    bool    over;               /* smtp: past the size limit, discarding */
    str_t   cur;
};

void    submit_input_init(struct submit_input *in, size_t line_limit, long long size_limit,
                          bool ignore_dots);
void    submit_input_free(struct submit_input *in);
/* Read more of the message, appending records to out (about 64 KiB at a time). */
int     submit_input_next(struct submit_input *in, stream_t *st, str_t *out);

/*
 * The S record for a -f argument (or a login name): blanks around it and
 * one pair of angle brackets are removed; "<>" gives the null sender.
 */
void    submit_put_sender(str_t *out, const char *arg);
/*
 * R records (each preceded by an N record when notify != 0) for one
 * command-line argument, which may hold several addresses separated by
 * commas (outside double quotes and angle brackets). Each is trimmed and
 * loses one pair of angle brackets; empty ones are skipped. Returns the
 * number of recipients added.
 */
int     submit_put_recipients(str_t *out, const char *arg, int notify);

#endif
