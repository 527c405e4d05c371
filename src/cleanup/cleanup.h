/*
 * cleanup.h - the cleanup daemon's shared state and internal interfaces.
 *
 * One connection carries one message (see cleanup_proto.h). The daemon
 * reads the client's records, checks their order and contents, rewrites
 * the envelope addresses, inspects the headers, copies the body, and
 * writes the queue file (rec_type.h) in a few large writes. The message is
 * committed only after the file is fsync'ed and renamed to its queue ID.
 *
 * Files:
 *   cleanup_main.c      main(), the per-connection loop, record order
 *   cleanup_envelope.c  envelope records: checks, rewriting, duplicates
 *   cleanup_message.c   content records: headers, added headers, body
 *   cleanup_out.c       the queue file: create, buffer, commit, abort
 *
 * Ownership: a struct cleanup_state lives for one connection; everything
 * it points to is freed by cleanup_state_free().
 */
#ifndef POSTERN_CLEANUP_H
#define POSTERN_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include "config.h"
#include "htable.h"
#include "str.h"
#include "stream.h"

/* Longest envelope record (T, F, S, A, O, N, R) the client may send. */
#define CLEANUP_ENV_REC_MAX     4096
/* Longest content record accepted; longer lines must arrive as L pieces. */
#define CLEANUP_CONTENT_REC_MAX (1024 * 1024)
/* Most recipients per message (envelope plus extracted), see docs/cleanup.md. */
#define CLEANUP_MAX_RECIPIENTS  100000
/* The output buffer is written to the file when it grows past this. */
#define CLEANUP_FLUSH_SIZE      (64 * 1024)
/* Longest value of a fullname (F) record. */
#define CLEANUP_FULLNAME_MAX    256

/* Settings read once at start (post_init). */
struct cleanup_conf {
    long    message_size_limit;     /* 0 = none */
    long    header_size_limit;      /* 0 = none */
    long    hopcount_limit;
    long    line_length_limit;
    bool    always_add_missing_headers;
    const char *myhostname;
    const char *undisclosed_header; /* "" = none */
    int     ipc_timeout;
    long    daemon_timeout;
};

extern struct cleanup_conf cleanup_conf;

/* Headers cleanup knows by name (bit numbers in headers_seen). */
enum cleanup_hdr {
    HDR_OTHER = 0,
    HDR_BCC, HDR_CC, HDR_CONTENT_LENGTH, HDR_DATE, HDR_FROM, HDR_MESSAGE_ID,
    HDR_RECEIVED, HDR_RESENT_BCC, HDR_RESENT_CC, HDR_RESENT_DATE, HDR_RESENT_FROM,
    HDR_RESENT_MESSAGE_ID, HDR_RESENT_OTHER, HDR_RESENT_TO, HDR_RETURN_PATH, HDR_TO,
};

/* Where the content parser is. */
enum cleanup_content_phase {
    CONTENT_HEADERS,        /* in the primary header block */
    CONTENT_BODY,           /* after the header block */
};

struct cleanup_state {
    /* The connection and the request. */
    stream_t *client;
    int     flags;                  /* CLEANUP_FLAG_* */
    int     errs;                   /* CLEANUP_STAT_* bits seen so far */
    str_t  *reason;                 /* first error's reply text, with enhanced code */
    char   *queue_id;

    /* The queue file. */
    int     fd;                     /* -1 when none */
    str_t  *temp_path;              /* incoming/.tmp.<random> until committed */
    struct timeval create_time;     /* when the file was made (queue ID, Message-Id) */
    str_t  *out;                    /* records not yet written to fd */
    long long out_written;          /* bytes of the file already written */
    long long size_rec_offset;      /* offset of the C record's data */
    long long content_offset;       /* offset of the first record after M */
    long long message_size;         /* content bytes written, one "\n" per line */
    long long input_size;           /* content bytes received, for message_size_limit */

    /* Envelope. */
    long long arrival_sec;          /* from the T record */
    long    arrival_usec;
    char   *fullname;               /* F record, NULL when none */
    char   *sender;                 /* S record as received, internal form */
    char   *sender_canon;           /* after rewriting */
    const char *rewrite_rule;       /* "local" or "remote" */
    htable_t *attr_seen;            /* A record names seen */
    str_t  *pend_attrs;             /* A records, written after the rewritten S */
    htable_t *rcpt_seen;            /* duplicate filter, see cleanup_envelope.c */
    long    rcpt_count;             /* recipients written (envelope + extracted) */
    long    rcpt_received;          /* R records received (for the cap) */
    char   *pend_orcpt;             /* O waiting for its R */
    int     pend_notify;            /* N waiting for its R, 0 when none */
    bool    envelope_done;          /* sender rewritten, recipients may follow */
    char   *first_rcpt;             /* for log lines */

    /* Content. */
    enum cleanup_content_phase phase;
    str_t  *line;                   /* current physical line being assembled */
    bool    in_line;                /* line holds L pieces of an unfinished line */
    str_t  *hdr_raw;                /* raw lines of the current header, back to back */
    size_t *hdr_ends;               /* end offset of each line in hdr_raw */
    size_t  hdr_nlines, hdr_cap;
    str_t  *hdr_joined;             /* the same header unfolded, for inspection */
    size_t  hdr_block_size;         /* bytes of the header block so far */
    unsigned long headers_seen;     /* 1 << enum cleanup_hdr */
    bool    resent;                 /* a Resent-* header was seen */
    long    hops;                   /* Received: headers */
    str_t  *extract_plain;          /* To/Cc/Bcc addresses, NUL-separated */
    str_t  *extract_resent;         /* Resent-To/Cc/Bcc addresses, NUL-separated */
    bool    message_id_logged;
};

/* cleanup_main.c */
void    cleanup_error(struct cleanup_state *st, int stat, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool    cleanup_text_ok(const char *data, size_t len);

/* cleanup_envelope.c */
void    cleanup_envelope_init(struct cleanup_state *st);
void    cleanup_envelope_free(struct cleanup_state *st);
/* One envelope record (type already accepted by the order check). */
void    cleanup_envelope_record(struct cleanup_state *st, int type, const str_t *data);
/* Called at M: rewrite the sender if not done yet. */
void    cleanup_envelope_end(struct cleanup_state *st);
/* Add one recipient (already rewritten or not): used for R and extraction. */
void    cleanup_envelope_add_rcpt(struct cleanup_state *st, const char *addr,
                                  const char *orcpt, int notify, bool rewrite);

/* cleanup_message.c */
void    cleanup_message_init(struct cleanup_state *st);
void    cleanup_message_free(struct cleanup_state *st);
/* One content record (N or L) after M. */
void    cleanup_message_record(struct cleanup_state *st, int type, const str_t *data);
/* At X: finish the header block if still open and any partial line. */
void    cleanup_message_end(struct cleanup_state *st);
/* After X: extracted recipients (sendmail -t). */
void    cleanup_message_extract(struct cleanup_state *st);
/* The "Date:" value for a time, RFC 5322, local time. */
void    cleanup_format_date(str_t *out, time_t when);

/* cleanup_out.c */
bool    cleanup_out_open(struct cleanup_state *st);
void    cleanup_out_record(struct cleanup_state *st, int type, const void *data, size_t len);
void    cleanup_out_line(struct cleanup_state *st, const char *data, size_t len);
void    cleanup_out_mark_size(struct cleanup_state *st);
void    cleanup_out_mark_content(struct cleanup_state *st);
bool    cleanup_out_commit(struct cleanup_state *st);
void    cleanup_out_abort(struct cleanup_state *st);
void    cleanup_out_sweep(long max_age);
/* True while writing makes sense (no error yet, not discarding). */
bool    cleanup_out_ok(const struct cleanup_state *st);

#endif
