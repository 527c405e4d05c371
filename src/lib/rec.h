/*
 * rec.h - reading and writing queue-file records (see rec_type.h).
 *
 * Writers append records to a str_t (so a whole queue file can be written
 * in a few large writes) or to a stream. Readers take records from a stream
 * or from memory and are strict: a length over the caller's limit, an
 * overlong varint, or a record cut short is REC_BAD, never a guess. The
 * reader does not judge the record type; callers check the order.
 *
 * Ownership: data is copied into caller-owned str_t buffers.
 */
#ifndef POSTERN_REC_H
#define POSTERN_REC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "rec_type.h"
#include "str.h"
#include "stream.h"

#define REC_LEN_BYTES  5            /* most bytes of a length varint */
#define REC_MAX_LEN    (1L << 30)   /* hard ceiling for any record */

/* Reader results (record types are >= 0). */
enum rec_status {
    REC_EOF = -1,           /* clean end of input before a record began */
    REC_BAD = -2,           /* malformed, too long, or truncated */
    REC_IOERR = -3,         /* read error or timeout (stream_status() says which) */
};

/* Append one record to out. */
void    rec_put(str_t *out, int type, const void *data, size_t len);
void    rec_put_str(str_t *out, int type, const char *text);
void    rec_putf(str_t *out, int type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Append an A record "name=value". */
void    rec_put_attr(str_t *out, const char *name, const char *value);
/*
 * Append one content line (without its newline) as N records, or L records
 * followed by a final N when the line is longer than max (max 0: no limit).
 */
void    rec_put_line(str_t *out, const char *line, size_t len, size_t max);

/* Write one record to a stream (buffered); 0 or the stream's error status. */
int     rec_write(stream_t *st, int type, const void *data, size_t len);

/*
 * Read one record from a stream: returns its type and its data in "data", or
 * a rec_status. Records longer than max_len are REC_BAD (the data is not
 * read). err, when not NULL, says what was wrong.
 */
int     rec_get(stream_t *st, str_t *data, size_t max_len, str_t *err);

/*
 * Decode one record from memory buf[0..len): returns its type, sets *data /
 * *data_len to point into buf and *consumed to the record's total size.
 * REC_EOF when len is 0, REC_BAD when malformed or incomplete.
 */
int     rec_decode(const void *buf, size_t len, size_t max_len, const char **data,
                   size_t *data_len, size_t *consumed);

/*
 * Value checks shared by the readers of queue and maildrop files.
 * rec_text_ok: no NUL and no control character (a tab is fine when
 * tab_ok). rec_parse_decimal: digits only, no sign, no leading zero, at
 * most max. rec_parse_time: "SECONDS" or "SECONDS.FRACTION" with 1 to 6
 * fraction digits read as a whole number of microseconds (as "%06ld" is
 * written); seconds at most REC_TIME_MAX.
 */
#define REC_TIME_MAX   99999999999LL   /* seconds: year 5138 */
bool    rec_text_ok(const char *data, size_t len, bool tab_ok);
bool    rec_parse_decimal(const char *s, size_t len, long long max, long long *out);
bool    rec_parse_time(const char *data, size_t len, long long *sec, long *usec);

/* Name of a record type for messages ("sender", "recipient", ...); "unknown" otherwise. */
const char *rec_type_name(int type);

#endif
