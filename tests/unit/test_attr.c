/*
 * test_attr.c - unit tests for attr.c, the attribute-list codec.
 *
 * Covers: round trips and the exact wire form, every malformed form the
 * decoder must reject (with the reason it gives), ATTR_INCOMPLETE for every
 * proper prefix of valid encodings, the limits at and just past their
 * boundaries, the getters and attr_check_end, replacement by attr_put_*,
 * panics on invalid names (in a child process), and attr_read/attr_write
 * over socketpairs: pipelining, EOF at the start and in the middle of a
 * message, a timeout, a write to a closed peer, and the protocol handshake.
 */
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "stream.h"
#include "str.h"
#include "unit.h"

/* A string literal as (pointer, length), embedded NUL bytes included. */
#define LIT(s) (s), (sizeof(s) - 1)

static bool
contains(const str_t *s, const char *needle)
{
    return strstr(str_cstr(s), needle) != NULL;
}

/* Whether two lists hold the same attributes in the same order. */
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

/* Round trips: build, encode, compare with the expected wire form, decode. */

struct kv {
    const char *name;
    const char *data;
    size_t  len;
};

static const struct kv kv_header_example[] = {
    {"name", LIT("value")}, {"queue", LIT("4XyZabcdef")}, {NULL, NULL, 0},
};
static const struct kv kv_binary[] = {
    {"nul", LIT("a\0b")}, {"high", LIT("\xff\x80\x01\x7f")}, {"allnul", LIT("\0\0\0")},
    {"comma", LIT(",:0:,")}, {NULL, NULL, 0},
};
static const struct kv kv_empty_values[] = {
    {"e", LIT("")}, {"f", LIT("")}, {"z_9", LIT("x")}, {NULL, NULL, 0},
};
static const struct kv kv_long_name[] = {
    {"a234567890123456789012345678901234567890123456789012345678901234", LIT("v")},
    {NULL, NULL, 0},
};
static const struct kv kv_none[] = {{NULL, NULL, 0}};

static const struct {
    const char *label;
    const struct kv *kv;
    const char *wire;
    size_t  wire_len;
} round_trips[] = {
    {"empty list", kv_none, LIT("0:,")},
    {"header example", kv_header_example, LIT("4:name,5:value,5:queue,10:4XyZabcdef,0:,")},
    {"binary values", kv_binary,
     LIT("3:nul,3:a\0b,4:high,4:\xff\x80\x01\x7f,6:allnul,3:\0\0\0,5:comma,5:,:0:,,0:,")},
    {"empty values", kv_empty_values, LIT("1:e,0:,1:f,0:,3:z_9,1:x,0:,")},
    {"64-byte name", kv_long_name,
     LIT("64:a234567890123456789012345678901234567890123456789012345678901234,1:v,0:,")},
};

static attr_list_t *
build(const struct kv *kv)
{
    attr_list_t *al = attr_list_new();

    for (; kv->name; kv++)
        attr_put_data(al, kv->name, kv->data, kv->len);
    return al;
}

/* Every proper prefix of wire[0..len) is ATTR_INCOMPLETE under "lim". */
static bool
all_prefixes_incomplete(const char *wire, size_t len, const struct attr_limits *lim)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);
    bool    ok = true;

    for (size_t k = 0; k < len; k++) {
        size_t  used = 99;
        int     rc = attr_decode(wire, k, &used, lim, al, err);

        if (rc != ATTR_INCOMPLETE || attr_list_count(al) != 0) {
            fprintf(stderr, "  prefix of %zu/%zu bytes: rc %d: %s\n", k, len, rc, str_cstr(err));
            ok = false;
        }
    }
    str_free(err);
    attr_list_free(al);
    return ok;
}

TEST(round_trip_table)
{
    for (size_t i = 0; i < sizeof(round_trips) / sizeof(round_trips[0]); i++) {
        attr_list_t *al = build(round_trips[i].kv);
        attr_list_t *back = attr_list_new();
        str_t  *wire = str_new(0), *err = str_new(0);
        size_t  used = 0;

        attr_encode(al, wire);
        if (str_len(wire) != round_trips[i].wire_len
            || memcmp(str_cstr(wire), round_trips[i].wire, str_len(wire)) != 0) {
            fprintf(stderr, "  %s: wrong encoding\n", round_trips[i].label);
            CHECK(false);
        }
        CHECK_INTEQ(attr_decode(str_cstr(wire), str_len(wire), &used, NULL, back, err), ATTR_OK);
        CHECK_INTEQ(used, str_len(wire));
        CHECK(lists_equal(al, back));
        CHECK(all_prefixes_incomplete(round_trips[i].wire, round_trips[i].wire_len, NULL));
        str_free(wire);
        str_free(err);
        attr_list_free(al);
        attr_list_free(back);
    }
}

TEST(round_trip_many_and_large)
{
    attr_list_t *al = attr_list_new(), *back = attr_list_new();
    str_t  *wire = str_new(0), *err = str_new(0), *big = str_new(0);
    char    name[32], val[32];
    size_t  used;

    for (int i = 0; i < 1024; i++) {
        snprintf(name, sizeof(name), "attr_%d", i);
        snprintf(val, sizeof(val), "value %d", i * 7);
        attr_put_str(al, name, val);
    }
    CHECK_INTEQ(attr_list_count(al), 1024);
    attr_encode(al, wire);
    CHECK_INTEQ(attr_decode(str_cstr(wire), str_len(wire), &used, NULL, back, err), ATTR_OK);
    CHECK(lists_equal(al, back));

    /* Exactly at every limit decodes; one more attribute does not. */
    struct attr_limits lim = {.max_attrs = 1024, .max_value = 16, .max_total = str_len(wire)};

    CHECK_INTEQ(attr_decode(str_cstr(wire), str_len(wire), &used, &lim, back, err), ATTR_OK);
    lim.max_total--;
    CHECK_INTEQ(attr_decode(str_cstr(wire), str_len(wire), &used, &lim, back, err), ATTR_BAD);
    CHECK(contains(err, "message length exceeds limit"));
    lim.max_total++;
    lim.max_attrs = 1023;
    CHECK_INTEQ(attr_decode(str_cstr(wire), str_len(wire), &used, &lim, back, err), ATTR_BAD);
    CHECK(contains(err, "too many attributes (limit 1023)"));
    CHECK_INTEQ(attr_list_count(back), 0);

    /* Every proper prefix of a 40-attribute list at exact limits is incomplete. */
    attr_list_reset(al);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(val, sizeof(val), "%d", i * 1000);
        attr_put_str(al, name, val);
    }
    str_reset(wire);
    attr_encode(al, wire);
    lim = (struct attr_limits) {.max_attrs = 40, .max_value = 5, .max_total = str_len(wire)};
    CHECK_INTEQ(attr_decode(str_cstr(wire), str_len(wire), &used, &lim, back, err), ATTR_OK);
    CHECK(all_prefixes_incomplete(str_cstr(wire), str_len(wire), &lim));

    /* A value at the default limit, with every byte value. */
    attr_list_reset(al);
    for (size_t i = 0; i < attr_default_limits.max_value; i++)
        str_putc(big, (int) (i * 131 % 256));
    attr_put_data(al, "big", str_cstr(big), str_len(big));
    str_reset(wire);
    attr_encode(al, wire);
    CHECK_INTEQ(attr_decode(str_cstr(wire), str_len(wire), &used, NULL, back, err), ATTR_OK);
    CHECK(lists_equal(al, back));
    str_putc(big, 'x');
    attr_put_data(al, "big", str_cstr(big), str_len(big));
    str_reset(wire);
    attr_encode(al, wire);
    CHECK_INTEQ(attr_decode(str_cstr(wire), str_len(wire), &used, NULL, back, err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "attribute \"big\": value length 1048577 exceeds limit 1048576");

    str_free(wire);
    str_free(err);
    str_free(big);
    attr_list_free(al);
    attr_list_free(back);
}

TEST(put_int_and_replace)
{
    attr_list_t *al = attr_list_new();
    str_t  *wire = str_new(0);
    long long v;

    attr_put_int(al, "min", LLONG_MIN);
    attr_put_int(al, "max", LLONG_MAX);
    attr_put_int(al, "zero", 0);
    attr_put_str(al, "s", "first");
    attr_encode(al, wire);
    CHECK_STREQ(str_cstr(wire), "3:min,20:-9223372036854775808,3:max,19:9223372036854775807,"
                "4:zero,1:0,1:s,5:first,0:,");
    CHECK_INTEQ(attr_get_int(al, "min", LLONG_MIN, LLONG_MAX, &v), ATTR_OK);
    CHECK(v == LLONG_MIN);
    CHECK_INTEQ(attr_get_int(al, "max", LLONG_MIN, LLONG_MAX, &v), ATTR_OK);
    CHECK(v == LLONG_MAX);

    /* Replacing keeps the position and makes the attribute unread again. */
    CHECK_INTEQ(attr_get_int(al, "zero", 0, 0, &v), ATTR_OK);
    attr_put_str(al, "zero", "replaced");
    attr_put_int(al, "s", -42);
    CHECK_INTEQ(attr_list_count(al), 4);
    CHECK_STREQ(attr_name_at(al, 2), "zero");
    CHECK_STREQ(attr_value_at(al, 2, NULL), "replaced");
    CHECK_STREQ(attr_value_at(al, 3, NULL), "-42");
    CHECK_INTEQ(attr_check_end(al, NULL), ATTR_BAD);

    /* A value taken from the list itself may be put back. */
    attr_put_str(al, "copy", attr_name_at(al, 0));
    attr_put_str(al, "s", attr_value_at(al, 3, NULL));
    CHECK_STREQ(attr_value_at(al, 4, NULL), "min");
    CHECK_STREQ(attr_value_at(al, 3, NULL), "-42");
    str_free(wire);
    attr_list_free(al);
}

/* Malformed input: status and the reason given. */

static const struct attr_limits small_limits = {.max_attrs = 2, .max_value = 5, .max_total = 20};
static const struct attr_limits huge_limits = {
    .max_attrs = 10, .max_value = SIZE_MAX, .max_total = 1000,
};

static const struct {
    const char *wire;
    size_t  len;
    const struct attr_limits *lim;      /* NULL: defaults */
    const char *reason;                 /* substring of err */
} malformed[] = {
    /* lengths */
    {LIT("x:,"), NULL, "attribute #1: name length: expected a digit, got 'x'"},
    {LIT("-1:a,0:,0:,"), NULL, "name length: expected a digit, got '-'"},
    {LIT("+1:a,0:,0:,"), NULL, "name length: expected a digit, got '+'"},
    {LIT(" 1:a,0:,0:,"), NULL, "name length: expected a digit, got 0x20"},
    {LIT(":a,0:,0:,"), NULL, "name length: expected a digit, got ':'"},
    {LIT("1:a,x:,0:,"), NULL, "attribute \"a\": value length: expected a digit, got 'x'"},
    {LIT("1:a,1x:,0:,"), NULL, "attribute \"a\": value length: expected ':' after the digits, got 'x'"},
    {LIT("1a,0:,0:,"), NULL, "attribute #1: name length: expected ':' after the digits, got 'a'"},
    {LIT("1:a,1\0:x,0:,"), NULL, "value length: expected ':' after the digits, got 0x00"},
    {LIT("01:a,0:,0:,"), NULL, "attribute #1: name length has a leading zero"},
    {LIT("00:,"), NULL, "name length has a leading zero"},
    {LIT("1:a,01:x,0:,"), NULL, "attribute \"a\": value length has a leading zero"},
    {LIT("1:a,00:,0:,"), NULL, "value length has a leading zero"},
    {LIT("1:a,12345678901:"), &huge_limits, "value length has more than 10 digits"},
    {LIT("1:a,99999999999999999999:"), &huge_limits, "value length has more than 10 digits"},
    {LIT("1:a,9999999999:"), &huge_limits, "attribute \"a\": message length exceeds limit 1000"},
    {LIT("1:a,10000000000:"), NULL, "value length has more than 10 digits"},
    {LIT("1:a,9999999999:"), NULL, "value length 9999999999 exceeds limit 1048576"},
    {LIT("8:queue_id,5000000:"), NULL,
     "attribute \"queue_id\": value length 5000000 exceeds limit 1048576"},
    {LIT("65:"), NULL, "attribute #1: name length 65 exceeds limit 64"},
    {LIT("100"), NULL, "name length 100 exceeds limit 64"},
    {LIT("12345678901:"), NULL, "name length has more than 10 digits"},
    /* separators */
    {LIT("1:a1:b,0:,"), NULL, "attribute #1: expected ',' after the name, got '1'"},
    {LIT("1:a,1:bc0:,"), NULL, "attribute \"a\": expected ',' after the value, got 'c'"},
    {LIT("1:a,1:b;0:,"), NULL, "expected ',' after the value, got ';'"},
    {LIT("0:;"), NULL, "end of message: expected ',' after the end marker \"0:\", got ';'"},
    {LIT("0:5:hello,"), NULL, "expected ',' after the end marker \"0:\", got '5'"},
    /* names */
    {LIT("1:A,0:,0:,"), NULL, "attribute #1: invalid character 'A' in name"},
    {LIT("5:queUe,0:,0:,"), NULL, "invalid character 'U' in name"},
    {LIT("6:queue-,0:,0:,"), NULL, "invalid character '-' in name"},
    {LIT("1:a,0:,2:b.,0:,0:,"), NULL, "attribute #2: invalid character '.' in name"},
    {LIT("1:\0,0:,0:,"), NULL, "invalid character 0x00 in name"},
    {LIT("1:\xe9,0:,0:,"), NULL, "invalid character 0xe9 in name"},
    {LIT("1:\n,0:,0:,"), NULL, "invalid character 0x0a in name"},
    /* duplicates and limits */
    {LIT("1:a,1:x,1:b,0:,1:a,1:y,0:,"), NULL, "duplicate attribute \"a\""},
    {LIT("1:a,1:x,1:b,1:y,1:c,1:z,0:,"), &small_limits, "too many attributes (limit 2)"},
    {LIT("1:a,6:abcdef,0:,"), &small_limits, "attribute \"a\": value length 6 exceeds limit 5"},
    {LIT("1:a,5:abcde,1:b,1:x,0:,"), &small_limits, "message length exceeds limit 20"},
    {LIT("1:a,5:abcde,2:bb,0:,0:,"), &small_limits, "message length exceeds limit 20"},
};

TEST(malformed_table)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);

    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        size_t  used = 0;
        int     rc = attr_decode(malformed[i].wire, malformed[i].len, &used, malformed[i].lim,
                                 al, err);

        if (rc != ATTR_BAD || !contains(err, malformed[i].reason)) {
            fprintf(stderr, "  case %zu: rc %d, err \"%s\", expected \"%s\"\n", i, rc,
                    str_cstr(err), malformed[i].reason);
            CHECK(false);
        }
        CHECK_INTEQ(attr_list_count(al), 0);
    }
    str_free(err);
    attr_list_free(al);
}

TEST(limits_at_boundary)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);
    size_t  used;
    /* 22 bytes, 2 attributes, a 5-byte value: exactly at every limit. */
    static const char ok22[] = "1:a,5:abcde,1:b,0:,0:,";

    CHECK_INTEQ(sizeof(ok22) - 1, 22);
    struct attr_limits lim = {.max_attrs = 2, .max_value = 5, .max_total = 22};

    CHECK_INTEQ(attr_decode(LIT(ok22), &used, &lim, al, err), ATTR_OK);
    CHECK_INTEQ(used, 22);
    CHECK(all_prefixes_incomplete(LIT(ok22), &lim));
    lim.max_total = 21;
    CHECK_INTEQ(attr_decode(LIT(ok22), &used, &lim, al, err), ATTR_BAD);
    CHECK(contains(err, "exceeds limit 21"));
    lim = (struct attr_limits) {.max_attrs = 0, .max_value = 0, .max_total = 3};
    CHECK_INTEQ(attr_decode(LIT("0:,"), &used, &lim, al, err), ATTR_OK);
    CHECK_INTEQ(attr_decode(LIT("1:a,0:,0:,"), &used, &lim, al, err), ATTR_BAD);
    CHECK(contains(err, "too many attributes (limit 0)"));
    lim.max_total = 2;
    CHECK_INTEQ(attr_decode(LIT("0:,"), &used, &lim, al, err), ATTR_BAD);
    CHECK(contains(err, "message length exceeds limit 2"));
    str_free(err);
    attr_list_free(al);
}

TEST(empty_name_ends_message)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);
    size_t  used = 0;
    static const char two[] = "0:,1:a,1:b,0:,";

    /* An empty name is the end marker: at the start it is an empty list... */
    CHECK_INTEQ(attr_decode(LIT(two), &used, NULL, al, err), ATTR_OK);
    CHECK_INTEQ(used, 3);
    CHECK_INTEQ(attr_list_count(al), 0);
    /* ...and what follows is the next message. */
    CHECK_INTEQ(attr_decode(two + used, sizeof(two) - 1 - used, &used, NULL, al, err), ATTR_OK);
    CHECK_INTEQ(used, 11);
    CHECK_STREQ(attr_value_at(al, 0, NULL), "b");
    /* Trailing bytes are not part of the message. */
    CHECK_INTEQ(attr_decode(LIT("1:a,1:b,0:,garbage"), &used, NULL, al, err), ATTR_OK);
    CHECK_INTEQ(used, 11);
    str_free(err);
    attr_list_free(al);
}

TEST(bad_prefix_is_bad_not_incomplete)
{
    static const struct {
        const char *wire;
        size_t  len;
    } cases[] = {
        {LIT("A")}, {LIT("0")}, {LIT("00")}, {LIT("4:Na")}, {LIT("5000000")},
        {LIT("1:a,5000000")}, {LIT("1:a,1:b,1:a")}, {LIT("0:x")}, {LIT("1:a,1:bb")},
    };
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int     rc = attr_decode(cases[i].wire, cases[i].len, NULL, NULL, al, err);
        int     want = (i == 1) ? ATTR_INCOMPLETE : ATTR_BAD;   /* "0" may still be "0:," */

        if (rc != want) {
            fprintf(stderr, "  case %zu (%s): rc %d, expected %d\n", i, cases[i].wire, rc, want);
            CHECK(false);
        }
    }
    str_free(err);
    attr_list_free(al);
}

/* Getters and the end check. */

TEST(getters_str_and_data)
{
    attr_list_t *al = attr_list_new();
    const char *s = NULL;
    const void *d = NULL;
    size_t  len = 0;

    attr_put_data(al, "bin", LIT("x\0y"));
    attr_put_str(al, "text", "hello");
    attr_put_str(al, "empty", "");
    CHECK_INTEQ(attr_get_str(al, "absent", &s), ATTR_MISSING);
    CHECK_STREQ(attr_last_error(al), "attribute \"absent\" is missing");
    CHECK_INTEQ(attr_get_str(al, "bin", &s), ATTR_BAD);
    CHECK_STREQ(attr_last_error(al), "attribute \"bin\": value contains a NUL byte");
    CHECK_INTEQ(attr_get_data(al, "bin", &d, &len), ATTR_OK);
    CHECK(len == 3 && memcmp(d, "x\0y", 4) == 0);
    CHECK_INTEQ(attr_get_str(al, "text", &s), ATTR_OK);
    CHECK_STREQ(s, "hello");
    CHECK_INTEQ(attr_get_data(al, "empty", &d, &len), ATTR_OK);
    CHECK(len == 0 && d != NULL && *(const char *) d == 0);
    CHECK_INTEQ(attr_get_data(al, "absent", &d, &len), ATTR_MISSING);
    attr_list_free(al);
}

TEST(getter_int_table)
{
    static const struct {
        const char *val;
        size_t  len;
        long long min, max;
        int     rc;
        long long want;
        const char *why;
    } cases[] = {
        {LIT("0"), 0, 10, ATTR_OK, 0, NULL},
        {LIT("10"), 0, 10, ATTR_OK, 10, NULL},
        {LIT("-5"), -10, 10, ATTR_OK, -5, NULL},
        {LIT("-0"), 0, 0, ATTR_OK, 0, NULL},
        {LIT("007"), 0, 10, ATTR_OK, 7, NULL},
        {LIT("9223372036854775807"), LLONG_MIN, LLONG_MAX, ATTR_OK, LLONG_MAX, NULL},
        {LIT("-9223372036854775808"), LLONG_MIN, LLONG_MAX, ATTR_OK, LLONG_MIN, NULL},
        {LIT("11"), 0, 10, ATTR_BAD, 0, "\"11\" is outside [0, 10]"},
        {LIT("-1"), 0, 10, ATTR_BAD, 0, "is outside [0, 10]"},
        {LIT(""), 0, 10, ATTR_BAD, 0, "\"\" is not a decimal integer"},
        {LIT("-"), 0, 10, ATTR_BAD, 0, "is not a decimal integer"},
        {LIT("+1"), 0, 10, ATTR_BAD, 0, "is not a decimal integer"},
        {LIT(" 1"), 0, 10, ATTR_BAD, 0, "is not a decimal integer"},
        {LIT("1 "), 0, 10, ATTR_BAD, 0, "is not a decimal integer"},
        {LIT("12x"), 0, 100, ATTR_BAD, 0, "is not a decimal integer"},
        {LIT("--1"), -10, 10, ATTR_BAD, 0, "is not a decimal integer"},
        {LIT("1\0"), 0, 10, ATTR_BAD, 0, "\"1\\x00\" is not a decimal integer"},
        {LIT("0x10"), 0, 100, ATTR_BAD, 0, "is not a decimal integer"},
        {LIT("9223372036854775808"), LLONG_MIN, LLONG_MAX, ATTR_BAD, 0, "overflows"},
        {LIT("-9223372036854775809"), LLONG_MIN, LLONG_MAX, ATTR_BAD, 0, "overflows"},
        {LIT("99999999999999999999999"), LLONG_MIN, LLONG_MAX, ATTR_BAD, 0, "overflows"},
    };
    attr_list_t *al = attr_list_new();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long v = 12345;
        int     rc;

        attr_list_reset(al);
        attr_put_data(al, "n", cases[i].val, cases[i].len);
        rc = attr_get_int(al, "n", cases[i].min, cases[i].max, &v);
        if (rc != cases[i].rc || (rc == ATTR_OK && v != cases[i].want)
            || (rc != ATTR_OK && v != 12345)
            || (cases[i].why && !strstr(attr_last_error(al), cases[i].why))) {
            fprintf(stderr, "  case %zu (\"%s\"): rc %d v %lld err \"%s\"\n", i, cases[i].val,
                    rc, v, attr_last_error(al));
            CHECK(false);
        }
        CHECK_INTEQ(attr_check_end(al, NULL), ATTR_OK);     /* marked read even when bad */
    }
    long long v;

    CHECK_INTEQ(attr_get_int(al, "other", 0, 1, &v), ATTR_MISSING);
    attr_list_free(al);
}

TEST(check_end_names_first_unread)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);
    const char *s;
    long long n;

    CHECK_INTEQ(attr_decode(LIT("1:a,1:1,1:b,1:2,1:c,1:3,0:,"), NULL, NULL, al, err), ATTR_OK);
    CHECK_INTEQ(attr_check_end(al, err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "unexpected attribute \"a\"");
    CHECK_INTEQ(attr_get_str(al, "a", &s), ATTR_OK);
    CHECK_INTEQ(attr_get_int(al, "c", 0, 9, &n), ATTR_OK);
    CHECK_INTEQ(attr_check_end(al, err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "unexpected attribute \"b\"");
    CHECK_INTEQ(attr_get_str(al, "b", &s), ATTR_OK);
    CHECK_INTEQ(attr_check_end(al, err), ATTR_OK);
    /* A new decode starts with nothing read. */
    CHECK_INTEQ(attr_decode(LIT("1:a,1:1,0:,"), NULL, NULL, al, err), ATTR_OK);
    CHECK_INTEQ(attr_check_end(al, err), ATTR_BAD);
    attr_list_reset(al);
    CHECK_INTEQ(attr_check_end(al, err), ATTR_OK);
    str_free(err);
    attr_list_free(al);
}

/* Invalid names from our own code abort (log_panic); run each in a child. */

static bool
aborts(void (*fn)(const char *), const char *arg)
{
    pid_t   pid;
    int     status;

    fflush(NULL);
    if ((pid = fork()) < 0)
        return false;
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    if (waitpid(pid, &status, 0) != pid)
        return false;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void
put_name(const char *name)
{
    attr_list_t *al = attr_list_new();

    attr_put_str(al, name, "v");
}

static void
get_name(const char *name)
{
    attr_list_t *al = attr_list_new();
    const char *s;

    attr_get_str(al, name, &s);
}

TEST(invalid_names_panic)
{
    static const char *bad[] = {
        "", "Name", "a-b", "a b", "a.b", "\xe9",
        "a2345678901234567890123456789012345678901234567890123456789012345",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(aborts(put_name, bad[i]));
        CHECK(aborts(get_name, bad[i]));
    }
    CHECK(!aborts(put_name, "a234567890123456789012345678901234567890123456789012345678901234"));
    CHECK(!aborts(put_name, "queue_id_2"));
}

/* Streams. */

struct pair {
    stream_t *r;
    stream_t *w;
};

static struct pair
socket_pair(void)
{
    int     fds[2];
    struct pair p = {NULL, NULL};

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
        perror("socketpair");
        abort();
    }
    p.r = stream_open(fds[0]);
    p.w = stream_open(fds[1]);
    stream_set_timeout(p.r, 5);
    stream_set_timeout(p.w, 5);
    return p;
}

static void
pair_close(struct pair *p)
{
    if (p->r)
        stream_close(p->r);
    if (p->w)
        stream_close(p->w);
    p->r = p->w = NULL;
}

TEST(stream_round_trip_pipelined)
{
    struct pair p = socket_pair();
    attr_list_t *a = build(kv_binary), *b = build(kv_header_example), *got = attr_list_new();
    str_t  *err = str_new(0);

    CHECK_INTEQ(attr_write(p.w, a), ATTR_OK);
    CHECK_INTEQ(attr_write(p.w, b), ATTR_OK);
    CHECK_INTEQ(stream_write(p.w, "0:,", 3), STREAM_OK);
    CHECK_INTEQ(stream_close(p.w), 0);
    p.w = NULL;
    CHECK_INTEQ(attr_read(p.r, NULL, got, err), ATTR_OK);
    CHECK(lists_equal(a, got));
    CHECK_INTEQ(attr_read(p.r, NULL, got, err), ATTR_OK);
    CHECK(lists_equal(b, got));
    CHECK_INTEQ(attr_read(p.r, NULL, got, err), ATTR_OK);
    CHECK_INTEQ(attr_list_count(got), 0);
    CHECK_INTEQ(attr_read(p.r, NULL, got, err), ATTR_EOF);
    pair_close(&p);
    str_free(err);
    attr_list_free(a);
    attr_list_free(b);
    attr_list_free(got);
}

TEST(stream_large_message_from_child)
{
    struct pair p = socket_pair();
    attr_list_t *al = attr_list_new(), *got = attr_list_new();
    str_t  *big = str_new(0), *err = str_new(0);
    pid_t   pid;
    int     status;

    for (size_t i = 0; i < 900000; i++)
        str_putc(big, (int) (i % 251));
    attr_put_data(al, "big", str_cstr(big), str_len(big));
    attr_put_data(al, "big2", str_cstr(big), str_len(big));
    attr_put_int(al, "n", 7);
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        stream_close(p.r);
        _exit(attr_write(p.w, al) == ATTR_OK && stream_close(p.w) == 0 ? 0 : 1);
    }
    stream_close(p.w);
    p.w = NULL;
    CHECK_INTEQ(attr_read(p.r, NULL, got, err), ATTR_OK);
    CHECK(lists_equal(al, got));
    CHECK_INTEQ(attr_read(p.r, NULL, got, err), ATTR_EOF);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pair_close(&p);
    str_free(big);
    str_free(err);
    attr_list_free(al);
    attr_list_free(got);
}

/* Write raw bytes, close the writer, read one message. */
static int
read_raw(const char *data, size_t len, const struct attr_limits *lim, attr_list_t *out,
         str_t *err)
{
    struct pair p = socket_pair();
    int     rc;

    if (stream_write(p.w, data, len) != STREAM_OK || stream_close(p.w) != 0)
        abort();
    p.w = NULL;
    rc = attr_read(p.r, lim, out, err);
    pair_close(&p);
    return rc;
}

TEST(stream_eof_and_truncation)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);
    static const char wire[] = "4:name,5:value,5:queue,10:4XyZabcdef,0:,";

    CHECK_INTEQ(read_raw("", 0, NULL, al, err), ATTR_EOF);
    /* Every proper, non-empty prefix followed by EOF is a truncated message. */
    for (size_t k = 1; k < sizeof(wire) - 1; k++) {
        int     rc = read_raw(wire, k, NULL, al, err);

        if (rc != ATTR_BAD || !contains(err, "truncated message") || attr_list_count(al) != 0) {
            fprintf(stderr, "  prefix %zu: rc %d err \"%s\"\n", k, rc, str_cstr(err));
            CHECK(false);
        }
    }
    CHECK_INTEQ(read_raw(wire, 20, NULL, al, err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "attribute #2: truncated message: connection closed after 20 bytes");
    CHECK_INTEQ(read_raw(wire, 25, NULL, al, err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err),
                "attribute \"queue\": truncated message: connection closed after 25 bytes");
    CHECK_INTEQ(read_raw(LIT(wire), NULL, al, err), ATTR_OK);
    CHECK_INTEQ(attr_list_count(al), 2);
    str_free(err);
    attr_list_free(al);
}

TEST(stream_malformed_matches_decoder)
{
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0), *err2 = str_new(0);

    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        int     rc = read_raw(malformed[i].wire, malformed[i].len, malformed[i].lim, al, err);

        CHECK_INTEQ(attr_decode(malformed[i].wire, malformed[i].len, NULL, malformed[i].lim, al,
                                err2), ATTR_BAD);
        if (rc != ATTR_BAD || strcmp(str_cstr(err), str_cstr(err2)) != 0) {
            fprintf(stderr, "  case %zu: rc %d err \"%s\" vs \"%s\"\n", i, rc, str_cstr(err),
                    str_cstr(err2));
            CHECK(false);
        }
    }
    str_free(err);
    str_free(err2);
    attr_list_free(al);
}

TEST(stream_oversized_fails_without_waiting)
{
    struct pair p = socket_pair();
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);

    /* The writer stays open: the reader must not wait for the announced bytes. */
    stream_set_timeout(p.r, 1);
    CHECK_INTEQ(stream_puts(p.w, "8:queue_id,5000000:"), STREAM_OK);
    CHECK_INTEQ(stream_flush(p.w), STREAM_OK);
    CHECK_INTEQ(attr_read(p.r, NULL, al, err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "attribute \"queue_id\": value length 5000000 exceeds limit 1048576");
    pair_close(&p);
    str_free(err);
    attr_list_free(al);
}

TEST(stream_timeout)
{
    struct pair p = socket_pair();
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);

    stream_set_timeout(p.r, 1);
    CHECK_INTEQ(attr_read(p.r, NULL, al, err), ATTR_IOERR);
    CHECK_STREQ(str_cstr(err), "waiting for a message: read error: timeout");
    pair_close(&p);

    /* A timeout in the middle of a message says where. */
    p = socket_pair();
    stream_set_timeout(p.r, 1);
    CHECK_INTEQ(stream_puts(p.w, "1:a,1:x,4:size,10:12"), STREAM_OK);
    CHECK_INTEQ(stream_flush(p.w), STREAM_OK);
    CHECK_INTEQ(attr_read(p.r, NULL, al, err), ATTR_IOERR);
    CHECK_STREQ(str_cstr(err), "attribute \"size\": read error: timeout");
    CHECK_INTEQ(attr_list_count(al), 0);
    pair_close(&p);
    str_free(err);
    attr_list_free(al);
}

TEST(stream_write_to_closed_peer)
{
    struct pair p = socket_pair();
    attr_list_t *al = attr_list_new();

    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    attr_put_str(al, "x", "y");
    stream_close(p.r);
    p.r = NULL;
    CHECK_INTEQ(attr_write(p.w, al), ATTR_IOERR);
    CHECK_INTEQ(stream_status(p.w), STREAM_ERR);
    int     fd = stream_fd(p.w);

    stream_abandon(p.w);            /* do not flush again on close */
    CHECK(close(fd) == 0);
    attr_list_free(al);
}

/* Handshake. */

TEST(protocol_handshake)
{
    struct pair p = socket_pair();
    str_t  *err = str_new(0);
    attr_list_t *al = attr_list_new();

    CHECK_INTEQ(attr_send_protocol(p.w, "qmgr"), ATTR_OK);
    CHECK_INTEQ(attr_expect_protocol(p.r, "qmgr", err), ATTR_OK);

    CHECK_INTEQ(attr_send_protocol(p.w, "smtpd"), ATTR_OK);
    CHECK_INTEQ(attr_expect_protocol(p.r, "qmgr", err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "protocol mismatch: expected \"qmgr\", got \"smtpd\"");

    CHECK_INTEQ(attr_send_protocol(p.w, "qmgr\n\"x"), ATTR_OK);
    CHECK_INTEQ(attr_expect_protocol(p.r, "qmgr", err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "protocol mismatch: expected \"qmgr\", got \"qmgr\\x0a\\\"x\"");

    attr_put_str(al, "protocol", "qmgr");
    attr_put_str(al, "extra", "1");
    CHECK_INTEQ(attr_write(p.w, al), ATTR_OK);
    CHECK_INTEQ(attr_expect_protocol(p.r, "qmgr", err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "protocol \"qmgr\" handshake: unexpected attribute \"extra\"");

    attr_list_reset(al);
    attr_put_str(al, "service", "qmgr");
    CHECK_INTEQ(attr_write(p.w, al), ATTR_OK);
    CHECK_INTEQ(attr_expect_protocol(p.r, "qmgr", err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "protocol mismatch: expected \"qmgr\", got no protocol attribute");

    /* Not an attribute list at all (e.g. an SMTP greeting). */
    CHECK_INTEQ(stream_puts(p.w, "220 mail.example ESMTP\r\n"), STREAM_OK);
    CHECK_INTEQ(stream_flush(p.w), STREAM_OK);
    CHECK_INTEQ(attr_expect_protocol(p.r, "qmgr", err), ATTR_BAD);
    CHECK_STREQ(str_cstr(err), "protocol \"qmgr\" handshake: attribute #1: "
                "name length 220 exceeds limit 64");
    pair_close(&p);

    p = socket_pair();
    stream_close(p.w);
    p.w = NULL;
    CHECK_INTEQ(attr_expect_protocol(p.r, "qmgr", err), ATTR_EOF);
    CHECK(contains(err, "connection closed"));
    pair_close(&p);
    str_free(err);
    attr_list_free(al);
}
