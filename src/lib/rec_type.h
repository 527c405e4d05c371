/*
 * rec_type.h - the record types of a Postern queue file.
 *
 * A queue file (and a maildrop file, and the stream a client sends to
 * cleanup) is a sequence of records. Each record is
 *     type     one byte, one of the REC_TYPE_* letters below
 *     length   the data length as a base-128 varint, low 7 bits first, the
 *              high bit of each byte set when another byte follows; at most
 *              REC_LEN_BYTES bytes, no overlong (zero-padded) encodings
 *     data     "length" bytes, binary-safe (no terminating NUL on disk)
 * rec.h reads and writes them.
 *
 * A committed queue file has this order:
 *     V            version, data "1"; always the first record
 *     C            sizes, fixed width so it can be rewritten in place:
 *                  "%15lld %15lld %15lld" = message_size content_offset
 *                  recipient_count (message_size counts content bytes with
 *                  one "\n" per line, as the message would be on disk)
 *     T            arrival time, "SECONDS.MICROSECONDS"
 *     F            (optional) sender's full name (local submission)
 *     S            envelope sender, internal form; empty for <>
 *     A            zero or more "name=value" attributes (see REC_ATTR_*)
 *     per recipient, in this order:
 *       O          (optional) DSN ORCPT, "addr-type;xtext-decoded-address"
 *       N          (optional) DSN NOTIFY as a decimal DSN_NOTIFY_* mask
 *       R          recipient, internal form; rewritten to D in place once
 *                  delivered (one byte, so the change is atomic)
 *     M            start of content, empty data
 *     N/L          content lines: N is a whole line without its newline;
 *                  L is a piece of a longer line that continues in the next
 *                  record (lines are split at line_length_limit)
 *     X            end of content, empty data
 *     ...          after X: records added by later programs (W, R, D, A)
 *     E            end of file, empty data; a file without E is incomplete
 *
 * The content starts with the headers, then an empty N record, then the body
 * (the empty line is omitted when there is no body and no separator).
 *
 * Note that 'N' is used both before M (DSN NOTIFY) and after it (content
 * line); the position tells them apart, as in Postfix's record format.
 */
#ifndef POSTERN_REC_TYPE_H
#define POSTERN_REC_TYPE_H

#define REC_TYPE_VERSION   'V'
#define REC_TYPE_SIZE      'C'
#define REC_TYPE_TIME      'T'
#define REC_TYPE_FULLNAME  'F'
#define REC_TYPE_SENDER    'S'
#define REC_TYPE_ATTR      'A'
#define REC_TYPE_ORCPT     'O'
#define REC_TYPE_NOTIFY    'N'      /* before M only */
#define REC_TYPE_RCPT      'R'
#define REC_TYPE_DONE      'D'
#define REC_TYPE_MESG      'M'
#define REC_TYPE_NORM      'N'      /* after M only */
#define REC_TYPE_CONT      'L'
#define REC_TYPE_XTRA      'X'
#define REC_TYPE_WARN      'W'      /* delay warning time, seconds since the epoch */
#define REC_TYPE_END       'E'

#define REC_VERSION_CURRENT "1"
/* Width of each number in the C record. */
#define REC_SIZE_WIDTH     15
#define REC_SIZE_FORMAT    "%15lld %15lld %15lld"

/* Attribute names used in A records. Values are text without NUL or newline. */
#define REC_ATTR_CLIENT_NAME     "client_name"      /* reverse name, or "unknown" */
#define REC_ATTR_CLIENT_ADDR     "client_address"
#define REC_ATTR_CLIENT_PORT     "client_port"
#define REC_ATTR_HELO_NAME       "helo_name"
#define REC_ATTR_PROTOCOL        "protocol"         /* SMTP, ESMTP, ESMTPS, ..., or "sendmail" */
#define REC_ATTR_ENCODING        "encoding"         /* "7bit" or "8bitmime" (BODY=) */
#define REC_ATTR_SMTPUTF8        "smtputf8"         /* "1" when SMTPUTF8 was requested */
#define REC_ATTR_DSN_ENVID       "dsn_envid"        /* xtext-decoded ENVID */
#define REC_ATTR_DSN_RET         "dsn_ret"          /* DSN_RET_FULL or DSN_RET_HDRS, decimal */
#define REC_ATTR_LOG_IDENT       "log_ident"        /* queue id to log as, when it differs */
#define REC_ATTR_RWR_CONTEXT     "rewrite_context"  /* "local" or "remote" */
#define REC_ATTR_TRACE_FLAGS     "trace_flags"
#define REC_ATTR_SUBMIT_UID      "submit_uid"       /* maildrop: uid of the submitting user */
#define REC_ATTR_SUBMIT_USER     "submit_user"      /* maildrop: login name of that user */
#define REC_ATTR_SUBMIT_FLAGS    "submit_flags"     /* maildrop: CLEANUP_FLAG_EXTRACT (sendmail -t) */

/* DSN NOTIFY mask (N records) and RET values (A record dsn_ret). */
#define DSN_NOTIFY_NEVER   (1 << 0)
#define DSN_NOTIFY_SUCCESS (1 << 1)
#define DSN_NOTIFY_FAILURE (1 << 2)
#define DSN_NOTIFY_DELAY   (1 << 3)
#define DSN_RET_FULL       1
#define DSN_RET_HDRS       2

#endif
