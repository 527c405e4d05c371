/*
 * rec.c - queue-file records: type byte, varint length, data.
 *
 * Trust: rec_get() and rec_decode() read data that another program (or a
 * local user, for maildrop files) wrote; they check every length against
 * the caller's limit before allocating or reading, and reject overlong
 * varints so every record has exactly one encoding.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "rec.h"

/* Encode len as a varint into buf; returns the number of bytes. */
static size_t
put_varint(unsigned char *buf, size_t len)
{
    size_t  n = 0;

    do {
        unsigned char b = len & 0x7f;

        len >>= 7;
        if (len)
            b |= 0x80;
        buf[n++] = b;
    } while (len);
    return n;
}

void
rec_put(str_t *out, int type, const void *data, size_t len)
{
    unsigned char hdr[1 + REC_LEN_BYTES];
    size_t  n;

    if (len > (size_t) REC_MAX_LEN)
        log_panic("rec_put: record of %zu bytes exceeds the format's limit", len);
    hdr[0] = (unsigned char) type;
    n = 1 + put_varint(hdr + 1, len);
    str_reserve(out, n + len);
    str_append(out, hdr, n);
    str_append(out, data, len);
}

void
rec_put_str(str_t *out, int type, const char *text)
{
    rec_put(out, type, text, strlen(text));
}

void
rec_putf(str_t *out, int type, const char *fmt, ...)
{
    str_t  *buf = str_new(64);
    va_list ap;

    va_start(ap, fmt);
    str_append_vprintf(buf, fmt, ap);
    va_end(ap);
    rec_put(out, type, buf->data, buf->len);
    str_free(buf);
}

void
rec_put_attr(str_t *out, const char *name, const char *value)
{
    rec_putf(out, REC_TYPE_ATTR, "%s=%s", name, value);
}

void
rec_put_line(str_t *out, const char *line, size_t len, size_t max)
{
    while (max > 0 && len > max) {
        rec_put(out, REC_TYPE_CONT, line, max);
        line += max;
        len -= max;
    }
    rec_put(out, REC_TYPE_NORM, line, len);
}

int
rec_write(stream_t *st, int type, const void *data, size_t len)
{
    unsigned char hdr[1 + REC_LEN_BYTES];
    size_t  n;
    int     rc;

    if (len > (size_t) REC_MAX_LEN)
        log_panic("rec_write: record of %zu bytes exceeds the format's limit", len);
    hdr[0] = (unsigned char) type;
    n = 1 + put_varint(hdr + 1, len);
    if ((rc = stream_write(st, hdr, n)) != STREAM_OK)
        return rc;
    return stream_write(st, data, len);
}

/*
 * Parse a varint from at most avail bytes. Returns bytes used, 0 when more
 * input is needed (avail too short), or -1 when malformed (overlong,
 * too many bytes, or above REC_MAX_LEN).
 */
static int
get_varint(const unsigned char *buf, size_t avail, size_t *value)
{
    size_t  v = 0;

    for (size_t i = 0; i < REC_LEN_BYTES; i++) {
        if (i >= avail)
            return 0;
        v |= (size_t) (buf[i] & 0x7f) << (7 * i);
        if (!(buf[i] & 0x80)) {
            if (i > 0 && buf[i] == 0)
                return -1;          /* overlong: a trailing zero group */
            if (v > (size_t) REC_MAX_LEN)
                return -1;
            *value = v;
            return (int) i + 1;
        }
    }
    return -1;
}

static void
set_err(str_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_err(str_t *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    str_reset(err);
    va_start(ap, fmt);
    str_append_vprintf(err, fmt, ap);
    va_end(ap);
}

int
rec_get(stream_t *st, str_t *data, size_t max_len, str_t *err)
{
    unsigned char hdr[1 + REC_LEN_BYTES];
    size_t  have = 0, len = 0;
    int     c, used = 0;

    str_reset(data);
    if ((c = stream_getc(st)) < 0) {
        if (c == STREAM_EOF)
            return REC_EOF;
        set_err(err, "read error: %s", stream_strstatus(c));
        return REC_IOERR;
    }
    hdr[have++] = (unsigned char) c;
    while (used == 0) {
        if ((c = stream_getc(st)) < 0) {
            if (c == STREAM_EOF) {
                set_err(err, "record '%c' truncated in its length", hdr[0]);
                return REC_BAD;
            }
            set_err(err, "read error: %s", stream_strstatus(c));
            return REC_IOERR;
        }
        hdr[have++] = (unsigned char) c;
        used = get_varint(hdr + 1, have - 1, &len);
        if (used < 0 || (used == 0 && have == sizeof(hdr))) {
            set_err(err, "record type %d: malformed length", hdr[0]);
            return REC_BAD;
        }
    }
    if (len > max_len) {
        set_err(err, "record '%c': length %zu exceeds the limit of %zu", hdr[0], len, max_len);
        return REC_BAD;
    }
    if (len > 0) {
        int     rc = stream_read_append(st, data, len);

        if (rc == STREAM_EOF) {
            set_err(err, "record '%c' truncated: %zu data bytes expected", hdr[0], len);
            return REC_BAD;
        }
        if (rc != STREAM_OK) {
            set_err(err, "read error: %s", stream_strstatus(rc));
            return REC_IOERR;
        }
    }
    return hdr[0];
}

int
rec_decode(const void *buf, size_t len, size_t max_len, const char **data,
           size_t *data_len, size_t *consumed)
{
    const unsigned char *p = buf;
    size_t  dlen = 0;
    int     used;

    if (len == 0)
        return REC_EOF;
    used = get_varint(p + 1, len - 1, &dlen);
    if (used <= 0 || dlen > max_len || dlen > len - 1 - (size_t) used)
        return REC_BAD;
    *data = (const char *) p + 1 + used;
    *data_len = dlen;
    *consumed = 1 + (size_t) used + dlen;
    return p[0];
}

bool
rec_text_ok(const char *data, size_t len, bool tab_ok)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) data[i];

        if ((c < 0x20 && !(c == '\t' && tab_ok)) || c == 0x7f)
            return false;
    }
    return true;
}

bool
rec_parse_decimal(const char *s, size_t len, long long max, long long *out)
{
    long long v = 0;

    if (len == 0 || len > 18 || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char) s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

bool
rec_parse_time(const char *data, size_t len, long long *sec, long *usec)
{
    const char *dot = memchr(data, '.', len);
    size_t  slen = dot ? (size_t) (dot - data) : len;
    long    us = 0;

    if (!rec_parse_decimal(data, slen, REC_TIME_MAX, sec))
        return false;
    if (dot) {
        if (len - slen - 1 < 1 || len - slen - 1 > 6)
            return false;
        for (size_t i = slen + 1; i < len; i++) {
            if (!isdigit((unsigned char) data[i]))
                return false;
            us = us * 10 + (data[i] - '0');
        }
    }
    *usec = us;
    return true;
}

const char *
rec_type_name(int type)
{
    switch (type) {
    case REC_TYPE_VERSION: return "version";
    case REC_TYPE_SIZE: return "size";
    case REC_TYPE_TIME: return "time";
    case REC_TYPE_FULLNAME: return "full_name";
    case REC_TYPE_SENDER: return "sender";
    case REC_TYPE_ATTR: return "named_attribute";
    case REC_TYPE_ORCPT: return "original_recipient";
    case REC_TYPE_NORM: return "regular_text";      /* also DSN notify before M */
    case REC_TYPE_RCPT: return "recipient";
    case REC_TYPE_DONE: return "done_recipient";
    case REC_TYPE_MESG: return "message_content";
    case REC_TYPE_CONT: return "continued_text";
    case REC_TYPE_XTRA: return "message_extra";
    case REC_TYPE_WARN: return "warning_time";
    case REC_TYPE_END: return "message_end";
    default: return "unknown";
    }
}
