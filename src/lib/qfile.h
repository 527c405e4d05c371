/*
 * qfile.h - a strict reader of queue files and maildrop files.
 *
 * Two layers:
 *   qfile_reader_*  returns the records of a file one by one, each already
 *                   checked against the order and contents of rec_type.h,
 *                   with its section and its file offset ("postern cat").
 *   qfile_read      reads a whole file through the reader and returns the
 *                   parsed envelope (qmgr, "postern queue", pickup).
 *
 * The whole file is always read through its E record, body included: the
 * records after X (extracted recipients, done marks, warning time) belong
 * to the envelope, and the only way to find X robustly is to walk the
 * records (message_size counts content bytes, not record bytes). The body
 * is not kept: each content record is checked and dropped, so memory stays
 * bounded by one record. The reader reads ahead in large buffered blocks,
 * so walking costs a few read(2) calls, not one per record.
 *
 * Limits: an envelope record (anything but N/L after M) may hold at most
 * QFILE_ENV_MAX bytes, a content record at most QFILE_CONTENT_MAX bytes. A
 * longer record makes the file bad without its data being read.
 *
 * Checks (queue file): V first with version "1"; C second, exactly
 * REC_SIZE_FORMAT, its numbers equal to what the file holds (content size
 * with one "\n" per line, offset of the first record after M, number of
 * R and D records); T a valid time; F at most once; S once; A is
 * "name=value" with name [a-z_]+; O? N? then R or D per recipient (O is
 * "type;address", N a DSN_NOTIFY_* mask); M; only N/L until X (an L is
 * followed by L or N); after X: W (decimal time), A, O? N? R/D; E last,
 * and no byte after it. No envelope value may hold NUL, CR or LF (tabs are
 * allowed in F and A values).
 * A maildrop file (QFILE_MAILDROP) is the same without V and C.
 *
 * Errors: one message "NAME: offset N: what is wrong" (NAME as the caller
 * gave it), safe to print and log: peer bytes in it are escaped.
 *
 * Ownership: the reader does not own fd (it neither closes nor seeks it
 * except to rewind it to 0 at the start). Records returned by
 * qfile_reader_next() stay valid until the next call. A struct qfile owns
 * all its strings; qfile_free() releases them.
 */
#ifndef POSTERN_QFILE_H
#define POSTERN_QFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

#define QFILE_ENV_MAX       (64 * 1024)     /* longest envelope record */
#define QFILE_CONTENT_MAX   (1024 * 1024)   /* longest content record */

/* Flags for qfile_reader_new() and qfile_read(). */
#define QFILE_FLAG_QUEUE    (1 << 0)        /* accept a queue file (V first) */
#define QFILE_FLAG_MAILDROP (1 << 1)        /* accept a maildrop file (T first) */
#define QFILE_FLAG_ANY      (QFILE_FLAG_QUEUE | QFILE_FLAG_MAILDROP)

enum qfile_section {
    QFILE_SEC_ENVELOPE,     /* from the first record through M */
    QFILE_SEC_CONTENT,      /* N/L records after M, and X */
    QFILE_SEC_EXTRA,        /* after X, through E */
};

/* Results of qfile_reader_next(). */
enum qfile_result {
    QFILE_RECORD = 1,       /* *rec holds the next record */
    QFILE_DONE = 0,         /* E was read and nothing follows: the file is good */
    QFILE_BAD = -1,         /* the file is malformed: see qfile_reader_error() */
    QFILE_IOERR = -2,       /* read error: see qfile_reader_error() */
};

struct qfile_rec {
    int     type;           /* REC_TYPE_* */
    enum qfile_section section;
    off_t   offset;         /* offset of the record's type byte */
    const char *data;       /* NUL-terminated copy; may hold NULs in content */
    size_t  len;
};

typedef struct qfile_reader qfile_reader_t;

/* Start reading fd (rewound to offset 0 when it is seekable). name is for messages. */
qfile_reader_t *qfile_reader_new(int fd, const char *name, int flags);
/* The next checked record. After QFILE_DONE/BAD/IOERR every call returns the same. */
int     qfile_reader_next(qfile_reader_t *r, struct qfile_rec *rec);
/* Why the file is bad ("" when it is not). */
const char *qfile_reader_error(const qfile_reader_t *r);
/* True when the file is a maildrop file (known after the first record). */
bool    qfile_reader_is_maildrop(const qfile_reader_t *r);
void    qfile_reader_free(qfile_reader_t *r);

struct qfile_attr {
    char   *name;
    char   *value;
};

struct qfile_rcpt {
    char   *address;        /* internal form */
    char   *orcpt;          /* DSN original recipient "type;address", or NULL */
    int     notify;         /* DSN_NOTIFY_* mask, 0 when not given */
    bool    done;           /* a D record: already delivered */
    off_t   offset;         /* of the R/D type byte, for qfile_mark_done() */
};

struct qfile {
    bool    maildrop;               /* a maildrop file: no V, no C */
    long long message_size;         /* content bytes, one "\n" per line */
    off_t   content_offset;         /* first record after M */
    off_t   size_offset;            /* the C record's type byte (-1 for maildrop) */
    long long arrival_sec;
    long    arrival_usec;
    char   *fullname;               /* NULL when none */
    char   *sender;                 /* "" for the null sender */
    long long warn_time;            /* W record, 0 when none */
    struct qfile_attr *attrs;
    size_t  attr_count;
    struct qfile_rcpt *rcpts;       /* in file order (envelope, then after X) */
    size_t  rcpt_count;             /* R and D records */
    size_t  rcpt_todo;              /* R records (not yet delivered) */
};

/*
 * Read and check the whole file; fill *qf (which the caller then frees with
 * qfile_free, also on failure). Returns QFILE_DONE, QFILE_BAD or
 * QFILE_IOERR; err (reset first) says why.
 */
int     qfile_read(int fd, const char *name, int flags, struct qfile *qf, str_t *err);
void    qfile_free(struct qfile *qf);
/* The value of attribute "name", or NULL. */
const char *qfile_attr(const struct qfile *qf, const char *name);

/*
 * Mark the recipient whose R record starts at "offset" as delivered, by
 * overwriting the type byte with D (one byte: atomic). The byte must be R
 * (or already D: then nothing is written). With sync, fdatasync() follows;
 * without it, a crash may lose the mark and repeat that delivery (never
 * lose the message): callers that mark many recipients may sync once after
 * the last. Returns 0, or -1 with errno set (EINVAL: not an R/D record).
 */
int     qfile_mark_done(int fd, off_t offset, bool sync);

#endif
