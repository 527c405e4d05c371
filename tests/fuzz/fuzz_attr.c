/*
 * fuzz_attr.c - libFuzzer harness for the attribute-list decoder (attr.c).
 *
 * For each input, with small limits so that every limit is reached often:
 *   - attr_decode must return OK, INCOMPLETE or BAD; BAD must say why.
 *   - When it decodes: re-encoding must give back exactly the bytes consumed
 *     (the format is canonical), decoding that again must give the same
 *     list, and proper prefixes of it must be INCOMPLETE.
 *   - The getters must agree with the raw values: attr_get_str fails exactly
 *     when a value holds NUL, attr_get_int agrees with a reference parser,
 *     attr_check_end passes once everything was read.
 *   - The limits are exact: decoding with the default (larger) limits must
 *     succeed exactly when it succeeds with the small ones, unless the
 *     message passes one of the small limits, and then it must fail. And a
 *     message decodes under limits equal to its own count, largest value
 *     and size (its prefixes being INCOMPLETE there), but not with any of
 *     them one lower.
 *   - attr_read over a pipe holding the same bytes must agree with
 *     attr_decode: same list, same error text, INCOMPLETE read as truncated.
 * Any disagreement aborts. Everything allocated is freed (LeakSanitizer).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "stream.h"
#include "str.h"

int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct attr_limits fuzz_limits = {.max_attrs = 8, .max_value = 64, .max_total = 512};

#define PIPE_MAX 16384          /* fits in a pipe and in one stream buffer fill */

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static bool
lists_equal(const attr_list_t *a, const attr_list_t *b)
{
    if (attr_list_count(a) != attr_list_count(b))
        return false;
    for (size_t i = 0; i < attr_list_count(a); i++) {
        size_t  la, lb;
        const char *va = attr_value_at(a, i, &la);
        const char *vb = attr_value_at(b, i, &lb);

        if (strcmp(attr_name_at(a, i), attr_name_at(b, i)) != 0 || la != lb
            || memcmp(va, vb, la) != 0 || va[la] != 0 || vb[lb] != 0)
            return false;
    }
    return true;
}

/* Reference integer syntax check: optional '-', then one or more digits. */
static bool
int_syntax(const char *v, size_t len)
{
    size_t  i = (len > 0 && v[0] == '-') ? 1 : 0;

    if (i == len)
        return false;
    for (; i < len; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

/* Exercise every getter on every attribute of a decoded list. */
static void
check_getters(attr_list_t *al)
{
    size_t  n = attr_list_count(al);
    str_t  *err = str_new(0);

    REQUIRE(attr_check_end(al, err) == (n ? ATTR_BAD : ATTR_OK));
    for (size_t i = 0; i < n; i++) {
        char    name[ATTR_NAME_MAX + 1];
        size_t  len, glen = 0;
        const char *raw = attr_value_at(al, i, &len);
        const char *s = NULL;
        const void *d = NULL;
        long long v = 0;
        int     rc;

        size_t  nlen = strlen(attr_name_at(al, i));

        REQUIRE(nlen >= 1 && nlen <= ATTR_NAME_MAX);
        memcpy(name, attr_name_at(al, i), nlen + 1);
        REQUIRE(attr_get_data(al, name, &d, &glen) == ATTR_OK && d == raw && glen == len);
        rc = attr_get_str(al, name, &s);
        REQUIRE(rc == (memchr(raw, 0, len) ? ATTR_BAD : ATTR_OK));
        REQUIRE(rc != ATTR_OK || (s == raw && strlen(s) == len));
        rc = attr_get_int(al, name, LLONG_MIN, LLONG_MAX, &v);
        if (rc == ATTR_OK) {
            /* Re-put and parse back: must give the same number. */
            attr_list_t *tmp = attr_list_new();
            long long w = 0;

            REQUIRE(int_syntax(raw, len));
            attr_put_int(tmp, "n", v);
            REQUIRE(attr_get_int(tmp, "n", v, v, &w) == ATTR_OK && w == v);
            attr_list_free(tmp);
            REQUIRE(attr_get_int(al, name, -100, 100, &w) == ((v >= -100 && v <= 100)
                                                              ? ATTR_OK : ATTR_BAD));
        } else {
            /* Bad syntax, or an overflow of a syntactically fine number. */
            REQUIRE(rc == ATTR_BAD && attr_last_error(al)[0] != 0);
            REQUIRE(!int_syntax(raw, len) || len >= 19);
        }
    }
    REQUIRE(attr_check_end(al, err) == ATTR_OK);
    REQUIRE(attr_get_str(al, "no_such_attribute_here", &(const char *) {NULL}) == ATTR_MISSING);
    str_free(err);
}

/* Decode data[0..size) under "lim"; returns the status. */
static int
decode_with(const uint8_t *data, size_t size, const struct attr_limits *lim)
{
    attr_list_t *al = attr_list_new();
    int     rc = attr_decode(data, size, NULL, lim, al, NULL);

    attr_list_free(al);
    return rc;
}

/* The message data[0..used) with these counts sits exactly at "lim". */
static void
check_exact_limits(const uint8_t *data, size_t used, size_t count, size_t biggest)
{
    struct attr_limits lim = {.max_attrs = count, .max_value = biggest, .max_total = used};
    size_t  cuts[] = {used / 4, used / 2, used - 1};

    REQUIRE(decode_with(data, used, &lim) == ATTR_OK);
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        REQUIRE(decode_with(data, cuts[i], &lim) == ATTR_INCOMPLETE);
    lim.max_total--;
    REQUIRE(decode_with(data, used, &lim) == ATTR_BAD);
    lim.max_total++;
    if (count > 0) {
        lim.max_attrs--;
        REQUIRE(decode_with(data, used, &lim) == ATTR_BAD);
        lim.max_attrs++;
    }
    if (biggest > 0) {
        lim.max_value--;
        REQUIRE(decode_with(data, used, &lim) == ATTR_BAD);
    }
}

/*
 * Decode again with the default limits: a message within the small limits
 * must decode the same under both; one that passes a small limit must have
 * failed under the small ones.
 */
static void
check_limits(const uint8_t *data, size_t size, int rc_small, const attr_list_t *small)
{
    attr_list_t *al = attr_list_new();
    size_t  used = 0, biggest = 0;
    int     rc = attr_decode(data, size, &used, NULL, al, NULL);

    if (rc == ATTR_OK) {
        for (size_t i = 0; i < attr_list_count(al); i++) {
            size_t  len;

            (void) attr_value_at(al, i, &len);
            if (len > biggest)
                biggest = len;
        }
        bool    within = attr_list_count(al) <= fuzz_limits.max_attrs
            && biggest <= fuzz_limits.max_value && used <= fuzz_limits.max_total;

        REQUIRE(within ? (rc_small == ATTR_OK && lists_equal(al, small)) : rc_small == ATTR_BAD);
        check_exact_limits(data, used, attr_list_count(al), biggest);
    } else if (rc == ATTR_BAD) {
        REQUIRE(rc_small == ATTR_BAD);
    } else {
        REQUIRE(rc_small != ATTR_OK);
    }
    attr_list_free(al);
}

/* Feed the input to attr_read through a pipe; compare with attr_decode. */
static void
check_stream(const uint8_t *data, size_t size, int rc_mem, const attr_list_t *mem,
             const str_t *err_mem)
{
    int     fds[2];
    attr_list_t *al;
    str_t  *err;
    stream_t *st;
    int     rc;

    if (size > PIPE_MAX)
        return;
    REQUIRE(pipe(fds) == 0);        /* fails if descriptors leak */
    if (size > 0 && fd_write_all(fds[1], data, size) != (ssize_t) size)
        abort();
    REQUIRE(close(fds[1]) == 0);
    st = stream_open(fds[0]);
    stream_set_timeout(st, 10);
    al = attr_list_new();
    err = str_new(0);
    rc = attr_read(st, &fuzz_limits, al, err);
    switch (rc_mem) {
    case ATTR_OK:
        REQUIRE(rc == ATTR_OK && lists_equal(al, mem));
        break;
    case ATTR_BAD:
        REQUIRE(rc == ATTR_BAD && strcmp(str_cstr(err), str_cstr(err_mem)) == 0);
        break;
    case ATTR_INCOMPLETE:
        if (size == 0)
            REQUIRE(rc == ATTR_EOF);
        else
            REQUIRE(rc == ATTR_BAD && strstr(str_cstr(err), "truncated message") != NULL);
        break;
    default:
        abort();
    }
    REQUIRE(rc == ATTR_OK || attr_list_count(al) == 0);
    attr_list_free(al);
    str_free(err);
    REQUIRE(stream_close(st) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    attr_list_t *al = attr_list_new();
    attr_list_t *again = attr_list_new();
    str_t  *err = str_new(0);
    str_t  *wire = str_new(0);
    size_t  used = 0, used2 = 0;
    int     rc;

    rc = attr_decode(data, size, &used, &fuzz_limits, al, err);
    REQUIRE(rc == ATTR_OK || rc == ATTR_INCOMPLETE || rc == ATTR_BAD);
    if (rc == ATTR_BAD)
        REQUIRE(str_len(err) > 0 && attr_list_count(al) == 0);
    if (rc == ATTR_OK) {
        REQUIRE(used >= 3 && used <= size && used <= fuzz_limits.max_total);
        REQUIRE(attr_list_count(al) <= fuzz_limits.max_attrs);

        /* Canonical: the encoding is exactly what was consumed. */
        attr_encode(al, wire);
        REQUIRE(str_len(wire) == used && memcmp(str_cstr(wire), data, used) == 0);
        REQUIRE(attr_decode(str_cstr(wire), str_len(wire), &used2, &fuzz_limits, again, err)
                == ATTR_OK);
        REQUIRE(used2 == used && lists_equal(al, again));

        /* Some proper prefixes must be incomplete, never bad. */
        size_t  cuts[] = {0, 1, used / 3, used / 2, used - 2, used - 1};

        for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
            REQUIRE(attr_decode(data, cuts[i], NULL, &fuzz_limits, again, NULL)
                    == ATTR_INCOMPLETE);
    }
    check_limits(data, size, rc, al);
    check_stream(data, size, rc, al, err);
    if (rc == ATTR_OK)
        check_getters(al);

    attr_list_free(al);
    attr_list_free(again);
    str_free(err);
    str_free(wire);
    return 0;
}
