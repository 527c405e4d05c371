/*
 * attr.h - the attribute-list codec for every internal request and reply.
 *
 * A message is an ordered list of (name, value) attributes. On the wire each
 * attribute is two netstrings, name then value, and the message ends with an
 * empty name:
 *     4:name,5:value,5:queue,10:4XyZabcdef,0:,
 * Names are 1..ATTR_NAME_MAX bytes of [a-z0-9_]. Values are binary-safe.
 * The decoder is strict: a bad length, a missing ',' or ':', a bad name, a
 * duplicate name, too many attributes, or a value or message over the
 * limits is an error, never a guess. Getters mark what they read;
 * attr_check_end() then rejects any attribute that nobody asked for.
 *
 * A connection starts with the server sending {protocol = NAME}; the client
 * checks it with attr_expect_protocol() so that a client talking to the wrong
 * service fails at once with a clear message.
 *
 * Ownership: an attr_list_t owns copies of all names and values.
 *
 * Cost: encoding and decoding are linear in the message size. Names are
 * looked up through a small hash index kept with the list (average constant
 * time, worst case linear in the number of attributes).
 *
 * Every "str_t *err" below may be NULL when the caller does not want the
 * text; on failure a non-NULL err says what was wrong and, where it helps,
 * which attribute. Peer data in it is quoted and escaped, safe to log.
 */
#ifndef POSTERN_ATTR_H
#define POSTERN_ATTR_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"
#include "stream.h"

#define ATTR_NAME_MAX 64

enum attr_status {
    ATTR_OK = 0,
    ATTR_MISSING = 1,       /* getter: no such attribute */
    ATTR_INCOMPLETE = 2,    /* decoder: need more bytes */
    ATTR_EOF = 3,           /* reader: connection closed before a message began */
    ATTR_BAD = -1,          /* malformed, oversized or wrong type */
    ATTR_IOERR = -2,        /* read/write failed or timed out */
};

struct attr_limits {
    size_t  max_attrs;      /* attributes per message */
    size_t  max_value;      /* bytes per value */
    size_t  max_total;      /* bytes per encoded message */
};

/* Defaults: 1024 attributes, 1 MiB per value, 4 MiB per message. */
extern const struct attr_limits attr_default_limits;

typedef struct attr_list attr_list_t;

attr_list_t *attr_list_new(void);
void    attr_list_free(attr_list_t *al);
void    attr_list_reset(attr_list_t *al);
size_t  attr_list_count(const attr_list_t *al);
/*
 * Name and value of attribute i, in wire order (value NUL-terminated after
 * len bytes; len may be NULL). These do not mark the attribute as read.
 * i >= attr_list_count() is a programming error (log_panic).
 */
const char *attr_name_at(const attr_list_t *al, size_t i);
const char *attr_value_at(const attr_list_t *al, size_t i, size_t *len);

/*
 * Building. Names must be valid (log_panic otherwise: programming error).
 * Putting a name that is already in the list replaces its value in place
 * (the attribute keeps its position and counts as not yet read); a new name
 * goes at the end. The data is copied.
 */
void    attr_put_str(attr_list_t *al, const char *name, const char *value);
void    attr_put_data(attr_list_t *al, const char *name, const void *data, size_t len);
void    attr_put_int(attr_list_t *al, const char *name, long long value);

/* Encoding: append the wire form to out (the encoding is canonical). */
void    attr_encode(const attr_list_t *al, str_t *out);
/*
 * Decoding from memory: parses one message from buf[0..len). On ATTR_OK,
 * *consumed is the number of bytes used. ATTR_INCOMPLETE when the message is
 * a valid prefix but not finished. ATTR_BAD with err explaining otherwise.
 * "out" is reset first, and left empty on any failure. limits may be NULL
 * (defaults). Bytes after the end marker are not looked at.
 */
int     attr_decode(const void *buf, size_t len, size_t *consumed,
                    const struct attr_limits *limits, attr_list_t *out, str_t *err);

/*
 * Stream I/O. attr_write flushes and returns ATTR_OK or ATTR_IOERR
 * (stream_status() says why). attr_read returns ATTR_OK; ATTR_EOF when the
 * connection closed before the first byte of a message; ATTR_BAD for a
 * malformed message, including one cut short by EOF ("truncated"); ATTR_IOERR
 * on timeout or read error. It reads only the bytes of one message, so
 * pipelined messages stay buffered in the stream.
 */
int     attr_write(stream_t *st, const attr_list_t *al);
/* The same without the flush: the message goes out with the next flush. */
int     attr_write_buffered(stream_t *st, const attr_list_t *al);
int     attr_read(stream_t *st, const struct attr_limits *limits, attr_list_t *out, str_t *err);

/*
 * Typed getters. ATTR_OK, ATTR_MISSING, or ATTR_BAD (a string holding NUL,
 * a number that does not parse or is outside [min, max]). Each getter that
 * finds the attribute marks it as read, even when it then fails. Pointers
 * handed out stay valid until the attribute is replaced or the list is
 * reset or freed; data is NUL-terminated after len. An integer is an
 * optional '-' and one or more decimal digits, nothing else; overflow is
 * ATTR_BAD. An invalid name, or min > max, is a programming error.
 */
int     attr_get_str(attr_list_t *al, const char *name, const char **value);
int     attr_get_data(attr_list_t *al, const char *name, const void **data, size_t *len);
int     attr_get_int(attr_list_t *al, const char *name, long long min, long long max,
                     long long *value);
/* ATTR_OK if every attribute was read by a getter, else ATTR_BAD naming the first extra one. */
int     attr_check_end(const attr_list_t *al, str_t *err);
/*
 * Added: the text of the last getter failure (ATTR_MISSING or ATTR_BAD), e.g.
 * `attribute "size": "12x" is not a decimal integer`, for the caller's log.
 * Empty after a reset; not cleared by a getter that succeeds.
 */
const char *attr_last_error(const attr_list_t *al);

/*
 * Handshake. The server calls attr_send_protocol() (ATTR_OK or ATTR_IOERR).
 * The client calls attr_expect_protocol(), which reads one small message and
 * requires exactly {protocol = NAME}: ATTR_OK, or ATTR_EOF / ATTR_IOERR /
 * ATTR_BAD with err saying why (`protocol mismatch: expected "X", got "Y"`).
 */
int     attr_send_protocol(stream_t *st, const char *protocol);
int     attr_expect_protocol(stream_t *st, const char *protocol, str_t *err);

#endif
