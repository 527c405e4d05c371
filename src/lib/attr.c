/*
 * attr.c - the attribute-list codec; see attr.h for the wire format.
 *
 * What it does: builds, encodes and strictly decodes the (name, value) lists
 * that every Postern daemon exchanges with every other one.
 *
 * What it trusts: nothing it reads. One parser serves both the in-memory
 * decoder (attr_decode) and the stream reader (attr_read), so the two agree
 * on every input. Each length is checked against its limit as soon as its
 * digits are seen, before any byte of the netstring body is read or any
 * memory is set aside for it; the running size of the message is checked
 * against max_total with a lower bound of what must still follow, so a
 * message that cannot fit is rejected as early as it can be seen. Error
 * texts quote peer data only after escaping it, so they are safe to log.
 *
 * What it owns: an attr_list_t owns a copy of every name (inline, at most
 * ATTR_NAME_MAX bytes) and every value (a str_t, NUL-terminated after its
 * length). A decode that fails leaves the list empty.
 *
 * Cost: encoding and decoding are linear in the size of the message. Names
 * are found through a small open-addressing hash index kept beside the
 * array, so duplicate detection and the getters do not rescan the list; the
 * hash is seeded once per process so that a peer cannot choose names that
 * collide. In the worst case a lookup is linear in the number of attributes.
 *
 * How it fails: malformed or oversized input gives ATTR_BAD with a reason;
 * invalid names passed by our own code (attr_put_*, getters) are a broken
 * invariant and log_panic. Allocation failure is fatal (mem.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "log.h"
#include "mem.h"

const struct attr_limits attr_default_limits = {
    .max_attrs = 1024,
    .max_value = 1024 * 1024,
    .max_total = 4 * 1024 * 1024,
};

/* Limits for the handshake message: one short attribute is expected. */
static const struct attr_limits handshake_limits = {
    .max_attrs = 16,
    .max_value = 256,
    .max_total = 4096,
};

#define ATTR_PROTOCOL_NAME  "protocol"
#define LEN_MAX_DIGITS      10      /* digits in a netstring length */
#define END_MARKER_LEN      3       /* "0:," */
#define EMPTY_VALUE_LEN     3       /* "0:," as a value */
#define INDEX_MIN_SLOTS     16
#define QUOTE_MAX           64      /* bytes of peer data quoted in an error */
#define STREAM_PREALLOC     65536   /* value bytes reserved before they arrive */

struct attr {
    str_t   value;                      /* owned; NUL after value.len */
    uint32_t hash;                      /* name_hash(name) */
    unsigned char name_len;
    bool    read;                       /* returned by a getter */
    char    name[ATTR_NAME_MAX + 1];    /* NUL-terminated */
};

struct attr_list {
    struct attr *items;
    size_t  count;
    size_t  cap;
    uint32_t *slots;                    /* 0 = empty, else item index + 1 */
    size_t  nslots;                     /* 0 or a power of two >= 2 * count */
    str_t   error;                      /* last getter failure */
};

/* Names, hashing and the index. */

static bool
name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Length of a valid name, or 0 when "name" is not one. */
static size_t
name_check(const char *name)
{
    size_t  len;

    if (name == NULL)
        return 0;
    for (len = 0; name[len]; len++)
        if (len >= ATTR_NAME_MAX || !name_char((unsigned char) name[len]))
            return 0;
    return len;
}

/* As name_check, but a bad name is our own bug. */
static size_t
name_require(const char *name, const char *caller)
{
    size_t  len = name_check(name);

    if (len == 0)
        log_panic("%s: invalid attribute name \"%.*s\"", caller, ATTR_NAME_MAX + 1,
                  name ? name : "(null)");
    return len;
}

static uint32_t hash_seed;
static bool hash_seeded;

/*
 * Seed the name hash once per process. The seed only spreads names over the
 * index; if no random bytes are available the fallback merely makes
 * collisions easier to guess, it never changes a result.
 */
static void
hash_seed_init(void)
{
    uint32_t seed;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t) sizeof(seed)) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
            ts.tv_nsec = 0;
        seed = (uint32_t) ts.tv_nsec ^ ((uint32_t) getpid() << 16);
    }
    hash_seed = seed;
    hash_seeded = true;
}

/* FNV-1a over a seeded basis, followed by a final avalanche. */
static uint32_t
name_hash(const char *name, size_t len)
{
    uint32_t h;

    if (!hash_seeded)
        hash_seed_init();
    h = 2166136261u ^ hash_seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char) name[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

/* Index of the attribute called name[0..len), or SIZE_MAX. */
static size_t
index_find(const attr_list_t *al, const char *name, size_t len, uint32_t h)
{
    size_t  mask;

    if (al->nslots == 0)
        return SIZE_MAX;
    mask = al->nslots - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        uint32_t slot = al->slots[s];

        if (slot == 0)
            return SIZE_MAX;
        const struct attr *a = &al->items[slot - 1];

        if (a->hash == h && a->name_len == len && memcmp(a->name, name, len) == 0)
            return slot - 1;
    }
}

static void
index_put(attr_list_t *al, size_t i)
{
    size_t  mask = al->nslots - 1;
    size_t  s = al->items[i].hash & mask;

    while (al->slots[s] != 0)
        s = (s + 1) & mask;
    al->slots[s] = (uint32_t) (i + 1);
}

/* Make room in the index for "want" attributes (load factor at most 1/2). */
static void
index_reserve(attr_list_t *al, size_t want)
{
    size_t  n;

    if (want > UINT32_MAX - 1)
        log_panic("attr: too many attributes in one list (%zu)", want);
    if (al->nslots >= INDEX_MIN_SLOTS && want <= al->nslots / 2)
        return;
    n = al->nslots ? al->nslots : INDEX_MIN_SLOTS;
    while (want > n / 2)
        n *= 2;
    mem_free(al->slots);
    al->slots = mem_array(n, sizeof(*al->slots));
    al->nslots = n;
    for (size_t i = 0; i < al->count; i++)
        index_put(al, i);
}

/*
 * Prepare the slot after the last attribute for name[0..len) and return it.
 * The slot is not part of the list until slot_commit(); its value is not
 * initialised.
 */
static struct attr *
slot_prepare(attr_list_t *al, const char *name, size_t len, uint32_t h)
{
    struct attr *a;

    al->items = mem_grow_array(al->items, &al->cap, al->count + 1, sizeof(*al->items));
    index_reserve(al, al->count + 1);
    a = &al->items[al->count];
    memcpy(a->name, name, len);
    a->name[len] = 0;
    a->name_len = (unsigned char) len;
    a->hash = h;
    a->read = false;
    return a;
}

static void
slot_commit(attr_list_t *al)
{
    index_put(al, al->count);
    al->count++;
}

/* List management. */

attr_list_t *
attr_list_new(void)
{
    attr_list_t *al = mem_zalloc(sizeof(*al));

    str_init(&al->error);
    return al;
}

/* Drop every attribute; keep the arrays for reuse. */
void
attr_list_reset(attr_list_t *al)
{
    for (size_t i = 0; i < al->count; i++)
        str_release(&al->items[i].value);
    al->count = 0;
    if (al->nslots)
        memset(al->slots, 0, al->nslots * sizeof(*al->slots));
    str_reset(&al->error);
}

void
attr_list_free(attr_list_t *al)
{
    if (al == NULL)
        return;
    attr_list_reset(al);
    mem_free(al->items);
    mem_free(al->slots);
    str_release(&al->error);
    mem_free(al);
}

size_t
attr_list_count(const attr_list_t *al)
{
    return al->count;
}

const char *
attr_name_at(const attr_list_t *al, size_t i)
{
    if (i >= al->count)
        log_panic("attr_name_at: index %zu out of range (%zu attributes)", i, al->count);
    return al->items[i].name;
}

const char *
attr_value_at(const attr_list_t *al, size_t i, size_t *len)
{
    if (i >= al->count)
        log_panic("attr_value_at: index %zu out of range (%zu attributes)", i, al->count);
    if (len)
        *len = al->items[i].value.len;
    return al->items[i].value.data;
}

const char *
attr_last_error(const attr_list_t *al)
{
    return str_cstr(&al->error);
}

/* Building. */

/*
 * Set name to data[0..len): a new attribute goes at the end; an existing one
 * keeps its place, takes the new value and counts as not yet read.
 */
void
attr_put_data(attr_list_t *al, const char *name, const void *data, size_t len)
{
    size_t  nlen = name_require(name, "attr_put");
    uint32_t h = name_hash(name, nlen);
    size_t  i = index_find(al, name, nlen, h);
    str_t   value;

    if (data == NULL && len != 0)
        log_panic("attr_put: NULL data for attribute \"%s\"", name);
    if (i != SIZE_MAX) {
        str_set(&al->items[i].value, data, len);
        al->items[i].read = false;
        return;
    }
    /* Copy first: data may point into this list, which slot_prepare moves. */
    str_init(&value);
    str_set(&value, data, len);
    slot_prepare(al, name, nlen, h)->value = value;
    slot_commit(al);
}

void
attr_put_str(attr_list_t *al, const char *name, const char *value)
{
    if (value == NULL)
        log_panic("attr_put_str: NULL value for attribute \"%s\"", name ? name : "(null)");
    attr_put_data(al, name, value, strlen(value));
}

/* Decimal form of v in buf (no terminator); returns the length. */
static size_t
fmt_u64(char buf[24], uint64_t v)
{
    char    tmp[24];
    size_t  n = 0, len;

    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);
    for (len = 0; len < n; len++)
        buf[len] = tmp[n - 1 - len];
    return n;
}

void
attr_put_int(attr_list_t *al, const char *name, long long value)
{
    char    buf[24];
    size_t  n = 0;
    uint64_t mag;

    if (value < 0) {
        buf[n++] = '-';
        mag = (uint64_t) 0 - (uint64_t) value;
    } else {
        mag = (uint64_t) value;
    }
    n += fmt_u64(buf + n, mag);
    attr_put_data(al, name, buf, n);
}

/* Encoding. */

static size_t
digits_u64(uint64_t v)
{
    size_t  n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Append "<len>:<data>," to out. */
static void
put_netstring(str_t *out, const char *data, size_t len)
{
    char    buf[24];
    size_t  n = fmt_u64(buf, len);

    buf[n++] = ':';
    str_append(out, buf, n);
    str_append(out, data, len);
    str_putc(out, ',');
}

/* Size of the encoded message; computed first so that encoding grows once. */
static size_t
encoded_size(const attr_list_t *al)
{
    size_t  total = END_MARKER_LEN;

    for (size_t i = 0; i < al->count; i++) {
        const struct attr *a = &al->items[i];

        total += digits_u64(a->name_len) + a->name_len + 2;
        total += digits_u64(a->value.len) + a->value.len + 2;
    }
    return total;
}

void
attr_encode(const attr_list_t *al, str_t *out)
{
    str_reserve(out, encoded_size(al));
    for (size_t i = 0; i < al->count; i++) {
        put_netstring(out, al->items[i].name, al->items[i].name_len);
        put_netstring(out, al->items[i].value.data, al->items[i].value.len);
    }
    str_append(out, "0:,", END_MARKER_LEN);
}

/* Write "<len>:<data>," to the stream's buffer. */
static int
write_netstring(stream_t *st, const char *data, size_t len)
{
    char    buf[24];
    size_t  n = fmt_u64(buf, len);
    int     rc;

    buf[n++] = ':';
    if ((rc = stream_write(st, buf, n)) != STREAM_OK)
        return rc;
    if ((rc = stream_write(st, data, len)) != STREAM_OK)
        return rc;
    return stream_write(st, ",", 1);
}

/*
 * Write the message and flush. ATTR_OK or ATTR_IOERR; on failure
 * stream_status()/stream_errno() tell why.
 */
int
attr_write_buffered(stream_t *st, const attr_list_t *al)
{
    for (size_t i = 0; i < al->count; i++) {
        const struct attr *a = &al->items[i];

        if (write_netstring(st, a->name, a->name_len) != STREAM_OK
            || write_netstring(st, a->value.data, a->value.len) != STREAM_OK)
            return ATTR_IOERR;
    }
    if (stream_write(st, "0:,", END_MARKER_LEN) != STREAM_OK)
        return ATTR_IOERR;
    return ATTR_OK;
}

int
attr_write(stream_t *st, const attr_list_t *al)
{
    if (attr_write_buffered(st, al) != ATTR_OK || stream_flush(st) != STREAM_OK)
        return ATTR_IOERR;
    return ATTR_OK;
}

/* Error text helpers. */

/* Append data[0..len) as a quoted, escaped string, at most QUOTE_MAX bytes. */
static void
quote_append(str_t *out, const char *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t  n = len > QUOTE_MAX ? QUOTE_MAX : len;

    str_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) data[i];

        if (c == '"' || c == '\\') {
            str_putc(out, '\\');
            str_putc(out, c);
        } else if (c >= 0x20 && c < 0x7f) {
            str_putc(out, c);
        } else {
            char    esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};

            str_append(out, esc, sizeof(esc));
        }
    }
    str_putc(out, '"');
    if (n < len)
        str_append_cstr(out, "...");
}

/* A readable form of one input byte: 'x' or 0x0a. */
static const char *
show_byte(int c, char buf[8])
{
    static const char hex[] = "0123456789abcdef";

    if (c > 0x20 && c < 0x7f && c != '\'') {
        buf[0] = '\'';
        buf[1] = (char) c;
        buf[2] = '\'';
        buf[3] = 0;
    } else {
        buf[0] = '0';
        buf[1] = 'x';
        buf[2] = hex[(c >> 4) & 15];
        buf[3] = hex[c & 15];
        buf[4] = 0;
    }
    return buf;
}

/* Decoding: one parser over two kinds of input. */

#define P_END   (-100)          /* input ended (memory) or closed (stream) */
#define P_IOERR (-101)          /* stream error; source.io_status says which */

struct source {
    stream_t *st;               /* stream input, or NULL for memory */
    const unsigned char *buf;   /* memory input */
    size_t  len;
    size_t  pos;                /* bytes of this message consumed so far */
    int     io_status;          /* stream status after P_IOERR */
};

enum parse_ctx {
    CTX_NONE,                   /* the message names what it is about */
    CTX_NAME,                   /* reading the name of attribute #n */
    CTX_VALUE,                  /* reading the value of attribute "name" */
    CTX_END,                    /* reading the end marker */
};

struct parser {
    struct source src;
    const struct attr_limits *lim;
    attr_list_t *out;
    str_t  *err;
    enum parse_ctx ctx;
    char    name[ATTR_NAME_MAX + 1];    /* attribute being read, for CTX_VALUE */
};

/* Next byte (0..255), P_END or P_IOERR. */
static int
next_byte(struct source *src)
{
    int     c;

    if (src->st == NULL) {
        if (src->pos >= src->len)
            return P_END;
        return src->buf[src->pos++];
    }
    c = stream_getc(src->st);
    if (c >= 0) {
        src->pos++;
        return c;
    }
    if (c == STREAM_EOF)
        return P_END;
    src->io_status = c;
    return P_IOERR;
}

/* Whether next_byte() would return a byte at once, without waiting. */
static bool
byte_ready(const struct source *src)
{
    return src->st ? stream_pending(src->st) > 0 : src->pos < src->len;
}

/*
 * Read n value bytes into the uninitialised str_t "value". On success the
 * str_t is initialised and owned by the caller; on P_END/P_IOERR it is left
 * released. From a stream, memory grows with the bytes that actually
 * arrive, not with what the peer announced.
 */
static int
read_value(struct source *src, str_t *value, size_t n)
{
    int     rc;

    if (src->st == NULL) {
        if (src->len - src->pos < n)
            return P_END;
        value->data = mem_alloc(n + 1);
        if (n)
            memcpy(value->data, src->buf + src->pos, n);
        value->data[n] = 0;
        value->len = n;
        value->cap = n + 1;
        src->pos += n;
        return ATTR_OK;
    }
    str_init(value);
    str_reserve(value, n < STREAM_PREALLOC ? n : STREAM_PREALLOC);
    rc = stream_read_append(src->st, value, n);
    if (rc == STREAM_OK) {
        src->pos += n;
        return ATTR_OK;
    }
    str_release(value);
    if (rc == STREAM_EOF)
        return P_END;
    src->io_status = rc;
    return P_IOERR;
}

/* Start the error text with where the parser is. */
static void
context_prefix(const struct parser *p, str_t *err)
{
    switch (p->ctx) {
    case CTX_NONE:
        str_reset(err);
        break;
    case CTX_NAME:
        str_printf(err, "attribute #%zu: ", p->out->count + 1);
        break;
    case CTX_VALUE:
        str_printf(err, "attribute \"%s\": ", p->name);
        break;
    case CTX_END:
        str_printf(err, "end of message: ");
        break;
    }
}

/* Set err to "<context>: <message>" and return ATTR_BAD. */
static int parse_fail(struct parser *p, const char *fmt, ...) STR_PRINTF(2, 3);

static int
parse_fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;

    context_prefix(p, p->err);
    va_start(ap, fmt);
    str_append_vprintf(p->err, fmt, ap);
    va_end(ap);
    return ATTR_BAD;
}

/* Whether "extra" more bytes after the current position would pass max_total. */
static bool
total_exceeded(const struct parser *p, uint64_t extra)
{
    uint64_t max = p->lim->max_total;

    return extra > max || p->src.pos > max - extra;
}

static int
fail_total(struct parser *p)
{
    return parse_fail(p, "message length exceeds limit %zu", p->lim->max_total);
}

/*
 * A length has passed its limit after "ndigits" digits. Take the rest of its
 * digits that are already at hand, without waiting for more, so that the
 * error shows the length the peer sent.
 */
static int
fail_length(struct parser *p, const char *what, uint64_t v, int ndigits, uint64_t limit)
{
    while (byte_ready(&p->src)) {
        int     c = next_byte(&p->src);

        if (c < '0' || c > '9')
            break;
        if (++ndigits > LEN_MAX_DIGITS)
            return parse_fail(p, "%s length has more than %d digits", what, LEN_MAX_DIGITS);
        v = v * 10 + (uint64_t) (c - '0');
    }
    return parse_fail(p, "%s length %llu exceeds limit %llu", what,
                      (unsigned long long) v, (unsigned long long) limit);
}

/*
 * Read a netstring length "<digits>:" into *out. The length may not exceed
 * "limit"; "min_after" is a lower bound of the bytes that must follow the
 * digits, for the early max_total check. Returns ATTR_OK, ATTR_BAD, P_END
 * or P_IOERR.
 */
static int
read_length(struct parser *p, const char *what, uint64_t limit, uint64_t min_after,
            uint64_t *out)
{
    uint64_t v = 0;
    int     ndigits = 0;
    int     c;
    char    b[8];

    for (;;) {
        if ((c = next_byte(&p->src)) < 0)
            return c;
        if (c < '0' || c > '9')
            break;
        if (ndigits == 1 && v == 0)
            return parse_fail(p, "%s length has a leading zero", what);
        if (++ndigits > LEN_MAX_DIGITS)
            return parse_fail(p, "%s length has more than %d digits", what, LEN_MAX_DIGITS);
        v = v * 10 + (uint64_t) (c - '0');
        if (v > limit)
            return fail_length(p, what, v, ndigits, limit);
        if (total_exceeded(p, min_after))
            return fail_total(p);
    }
    if (ndigits == 0)
        return parse_fail(p, "%s length: expected a digit, got %s", what, show_byte(c, b));
    if (c != ':')
        return parse_fail(p, "%s length: expected ':' after the digits, got %s", what,
                          show_byte(c, b));
    *out = v;
    return ATTR_OK;
}

/* Read one byte that must be ','. */
static int
expect_comma(struct parser *p, const char *after)
{
    int     c = next_byte(&p->src);
    char    b[8];

    if (c < 0)
        return c;
    if (c != ',')
        return parse_fail(p, "expected ',' after the %s, got %s", after, show_byte(c, b));
    return ATTR_OK;
}

/*
 * Read one attribute whose name length n (> 0) has been read: the name, the
 * value, and add them to the list.
 */
static int
parse_attribute(struct parser *p, size_t n)
{
    attr_list_t *al = p->out;
    struct attr *a;
    uint64_t vlen;
    uint32_t h;
    int     c, rc;
    char    b[8];

    if (al->count >= p->lim->max_attrs) {
        p->ctx = CTX_NONE;
        return parse_fail(p, "too many attributes (limit %zu)", p->lim->max_attrs);
    }
    /* name, ',', at least an empty value, the end marker */
    if (total_exceeded(p, n + 1 + EMPTY_VALUE_LEN + END_MARKER_LEN))
        return fail_total(p);
    for (size_t i = 0; i < n; i++) {
        if ((c = next_byte(&p->src)) < 0)
            return c;
        if (!name_char(c))
            return parse_fail(p, "invalid character %s in name", show_byte(c, b));
        p->name[i] = (char) c;
    }
    p->name[n] = 0;
    h = name_hash(p->name, n);
    if (index_find(al, p->name, n, h) != SIZE_MAX) {
        p->ctx = CTX_NONE;
        return parse_fail(p, "duplicate attribute \"%s\"", p->name);
    }
    if ((rc = expect_comma(p, "name")) != ATTR_OK)
        return rc;

    p->ctx = CTX_VALUE;
    /* after the digits: ':', ',' and the end marker */
    if ((rc = read_length(p, "value", p->lim->max_value, 2 + END_MARKER_LEN, &vlen)) != ATTR_OK)
        return rc;
    if (total_exceeded(p, vlen + 1 + END_MARKER_LEN))
        return fail_total(p);
    a = slot_prepare(al, p->name, n, h);
    if ((rc = read_value(&p->src, &a->value, (size_t) vlen)) != ATTR_OK)
        return rc;
    if ((rc = expect_comma(p, "value")) != ATTR_OK) {
        str_release(&a->value);
        return rc;
    }
    slot_commit(al);
    return ATTR_OK;
}

/* Parse one whole message into p->out. ATTR_OK, ATTR_BAD, P_END or P_IOERR. */
static int
parse_message(struct parser *p)
{
    for (;;) {
        uint64_t n;
        int     rc;

        p->ctx = CTX_NAME;
        /* after the digits at least ":," (the end marker) */
        if ((rc = read_length(p, "name", ATTR_NAME_MAX, 2, &n)) != ATTR_OK)
            return rc;
        if (n == 0) {
            p->ctx = CTX_END;
            if ((rc = expect_comma(p, "end marker \"0:\"")) != ATTR_OK)
                return rc;
            if (total_exceeded(p, 0))
                return fail_total(p);
            return ATTR_OK;
        }
        if ((rc = parse_attribute(p, (size_t) n)) != ATTR_OK)
            return rc;
    }
}

/*
 * Run the parser over "src" and turn its result into a public status. The
 * list is reset first and again on any failure.
 */
static int
run_parser(struct source *src, const struct attr_limits *limits, attr_list_t *out, str_t *err)
{
    struct parser p = {
        .src = *src,
        .lim = limits ? limits : &attr_default_limits,
        .out = out,
        .err = err,
    };
    int     rc;

    attr_list_reset(out);
    str_reset(err);
    rc = parse_message(&p);
    *src = p.src;
    switch (rc) {
    case ATTR_OK:
        return ATTR_OK;
    case P_END:
        if (src->st == NULL) {
            str_set_cstr(err, "incomplete message");
            rc = ATTR_INCOMPLETE;
        } else if (src->pos == 0) {
            str_set_cstr(err, "connection closed");
            rc = ATTR_EOF;
        } else {
            rc = parse_fail(&p, "truncated message: connection closed after %zu bytes",
                            src->pos);
        }
        break;
    case P_IOERR:
        if (src->pos == 0)
            str_set_cstr(err, "waiting for a message: ");
        else
            context_prefix(&p, err);
        str_append_printf(err, "read error: %s", stream_strstatus(src->io_status));
        if (src->io_status == STREAM_ERR && stream_errno(src->st) != 0)
            str_append_printf(err, ": %s", strerror(stream_errno(src->st)));
        rc = ATTR_IOERR;
        break;
    default:
        rc = ATTR_BAD;
        break;
    }
    attr_list_reset(out);
    return rc;
}

int
attr_decode(const void *buf, size_t len, size_t *consumed,
            const struct attr_limits *limits, attr_list_t *out, str_t *err)
{
    struct source src = {.buf = buf, .len = len};
    str_t   scratch;
    int     rc;

    if (consumed)
        *consumed = 0;
    if (err == NULL)
        str_init(&scratch);
    rc = run_parser(&src, limits, out, err ? err : &scratch);
    if (err == NULL)
        str_release(&scratch);
    if (rc == ATTR_OK && consumed)
        *consumed = src.pos;
    return rc;
}

int
attr_read(stream_t *st, const struct attr_limits *limits, attr_list_t *out, str_t *err)
{
    struct source src = {.st = st};
    str_t   scratch;
    int     rc;

    if (err == NULL)
        str_init(&scratch);
    rc = run_parser(&src, limits, out, err ? err : &scratch);
    if (err == NULL)
        str_release(&scratch);
    return rc;
}

/* Getters. */

/* Find a named attribute for a getter and mark it read; NULL if missing. */
static struct attr *
get_attr(attr_list_t *al, const char *name)
{
    size_t  len = name_require(name, "attr_get");
    size_t  i = index_find(al, name, len, name_hash(name, len));

    if (i == SIZE_MAX) {
        str_printf(&al->error, "attribute \"%s\" is missing", name);
        return NULL;
    }
    al->items[i].read = true;
    return &al->items[i];
}

int
attr_get_data(attr_list_t *al, const char *name, const void **data, size_t *len)
{
    struct attr *a = get_attr(al, name);

    if (a == NULL)
        return ATTR_MISSING;
    *data = a->value.data;
    if (len)
        *len = a->value.len;
    return ATTR_OK;
}

int
attr_get_str(attr_list_t *al, const char *name, const char **value)
{
    struct attr *a = get_attr(al, name);

    if (a == NULL)
        return ATTR_MISSING;
    if (memchr(a->value.data, 0, a->value.len) != NULL) {
        str_printf(&al->error, "attribute \"%s\": value contains a NUL byte", name);
        return ATTR_BAD;
    }
    *value = a->value.data;
    return ATTR_OK;
}

/*
 * Parse s[0..len) as an optional '-' and one or more decimal digits.
 * Returns 0, -1 for bad syntax, -2 for overflow. Accumulates negatively so
 * that LLONG_MIN parses.
 */
static int
parse_ll(const char *s, size_t len, long long *out)
{
    bool    neg = len > 0 && s[0] == '-';
    size_t  i = neg ? 1 : 0;
    long long v = 0;

    if (i == len)
        return -1;
    for (; i < len; i++) {
        int     d = s[i] - '0';

        if (d < 0 || d > 9)
            return -1;
    }
    for (i = neg ? 1 : 0; i < len; i++) {
        int     d = s[i] - '0';

        if (v < LLONG_MIN / 10 || (v == LLONG_MIN / 10 && d > -(LLONG_MIN % 10)))
            return -2;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == LLONG_MIN)
            return -2;
        v = -v;
    }
    *out = v;
    return 0;
}

int
attr_get_int(attr_list_t *al, const char *name, long long min, long long max,
             long long *value)
{
    struct attr *a;
    long long v;
    int     rc;

    if (min > max)
        log_panic("attr_get_int: empty range [%lld, %lld] for \"%s\"", min, max, name);
    if ((a = get_attr(al, name)) == NULL)
        return ATTR_MISSING;
    rc = parse_ll(a->value.data, a->value.len, &v);
    if (rc == 0 && v >= min && v <= max) {
        *value = v;
        return ATTR_OK;
    }
    str_printf(&al->error, "attribute \"%s\": ", name);
    quote_append(&al->error, a->value.data, a->value.len);
    if (rc == -1)
        str_append_cstr(&al->error, " is not a decimal integer");
    else if (rc == -2)
        str_append_cstr(&al->error, " overflows a 64-bit integer");
    else
        str_append_printf(&al->error, " is outside [%lld, %lld]", min, max);
    return ATTR_BAD;
}

int
attr_check_end(const attr_list_t *al, str_t *err)
{
    for (size_t i = 0; i < al->count; i++) {
        if (!al->items[i].read) {
            if (err)
                str_printf(err, "unexpected attribute \"%s\"", al->items[i].name);
            return ATTR_BAD;
        }
    }
    return ATTR_OK;
}

/* Handshake. */

int
attr_send_protocol(stream_t *st, const char *protocol)
{
    if (protocol == NULL)
        log_panic("attr_send_protocol: NULL protocol");
    if (write_netstring(st, ATTR_PROTOCOL_NAME, strlen(ATTR_PROTOCOL_NAME)) != STREAM_OK
        || write_netstring(st, protocol, strlen(protocol)) != STREAM_OK
        || stream_write(st, "0:,", END_MARKER_LEN) != STREAM_OK
        || stream_flush(st) != STREAM_OK)
        return ATTR_IOERR;
    return ATTR_OK;
}

/*
 * Read the server's first message and require exactly {protocol = NAME}.
 * Returns ATTR_OK; ATTR_EOF, ATTR_IOERR or ATTR_BAD (including a wrong or
 * missing protocol) with err saying why.
 */
int
attr_expect_protocol(stream_t *st, const char *protocol, str_t *err)
{
    attr_list_t *al = attr_list_new();
    str_t   why;
    const void *got;
    size_t  got_len;
    int     rc;

    if (protocol == NULL)
        log_panic("attr_expect_protocol: NULL protocol");
    str_init(&why);
    rc = attr_read(st, &handshake_limits, al, &why);
    if (rc != ATTR_OK) {
        if (err)
            str_printf(err, "protocol \"%s\" handshake: %s", protocol, str_cstr(&why));
    } else if (attr_get_data(al, ATTR_PROTOCOL_NAME, &got, &got_len) != ATTR_OK) {
        if (err)
            str_printf(err, "protocol mismatch: expected \"%s\", got no protocol attribute",
                       protocol);
        rc = ATTR_BAD;
    } else if (got_len != strlen(protocol) || memcmp(got, protocol, got_len) != 0) {
        if (err) {
            str_printf(err, "protocol mismatch: expected \"%s\", got ", protocol);
            quote_append(err, got, got_len);
        }
        rc = ATTR_BAD;
    } else if (attr_check_end(al, &why) != ATTR_OK) {
        if (err)
            str_printf(err, "protocol \"%s\" handshake: %s", protocol, str_cstr(&why));
        rc = ATTR_BAD;
    }
    str_release(&why);
    attr_list_free(al);
    return rc;
}
