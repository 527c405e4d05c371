/*
 * test_rec.c - unit tests for rec.c: record round trips through memory
 * (rec_decode) and streams (rec_get), the varint length at its byte
 * boundaries, overlong and oversized encodings, limits and truncation.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"
#include "rec.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* A stream reading exactly these bytes (from a memfd). */
static stream_t *
stream_of(const void *data, size_t len)
{
    int     fd = memfd_create("test_rec", MFD_CLOEXEC);

    if (fd < 0 || (len && write(fd, data, len) != (ssize_t) len) || lseek(fd, 0, SEEK_SET) != 0) {
        perror("memfd");
        exit(2);
    }
    return stream_open(fd);
}

TEST(round_trip_lengths)
{
    static const size_t lens[] = {0, 1, 127, 128, 129, 16383, 16384, 16385, 2097151, 2097152};
    static const size_t hdr[] = {2, 2, 2, 3, 3, 3, 4, 4, 4, 5};
    str_t  *out = str_new(0), *data = str_new(0), *err = str_new(0);

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char   *payload = mem_alloc(lens[i] + 1);
        const char *d;
        size_t  dlen, used;
        stream_t *st;

        for (size_t j = 0; j < lens[i]; j++)
            payload[j] = (char) (j * 7 + i);
        str_reset(out);
        rec_put(out, 'N', payload, lens[i]);
        CHECK_INTEQ(str_len(out), hdr[i] + lens[i]);
        CHECK_INTEQ(rec_decode(str_cstr(out), str_len(out), lens[i], &d, &dlen, &used), 'N');
        CHECK_INTEQ(dlen, lens[i]);
        CHECK_INTEQ(used, str_len(out));
        CHECK(memcmp(d, payload, lens[i]) == 0);
        /* One byte less than the record is incomplete; a limit one lower refuses it. */
        CHECK_INTEQ(rec_decode(str_cstr(out), str_len(out) - 1, lens[i], &d, &dlen, &used), REC_BAD);
        if (lens[i] > 0)
            CHECK_INTEQ(rec_decode(str_cstr(out), str_len(out), lens[i] - 1, &d, &dlen, &used), REC_BAD);
        st = stream_of(str_cstr(out), str_len(out));
        CHECK_INTEQ(rec_get(st, data, lens[i], err), 'N');
        CHECK_INTEQ(str_len(data), lens[i]);
        CHECK(memcmp(str_cstr(data), payload, lens[i]) == 0);
        CHECK_INTEQ(rec_get(st, data, lens[i], err), REC_EOF);
        (void) stream_close(st);
        mem_free(payload);
    }
    str_free(out);
    str_free(data);
    str_free(err);
}

TEST(helpers_encode)
{
    str_t  *out = str_new(0);
    const char *d;
    size_t  dlen, used, off = 0;

    rec_put_str(out, 'S', "a@b");
    rec_putf(out, 'T', "%d.%06d", 17, 5);
    rec_put_attr(out, "helo_name", "x");
    rec_put_line(out, "abcdefgh", 8, 3);
    static const struct {
        int     type;
        const char *data;
    } want[] = {{'S', "a@b"}, {'T', "17.000005"}, {'A', "helo_name=x"},
                {'L', "abc"}, {'L', "def"}, {'N', "gh"}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK_INTEQ(rec_decode(str_cstr(out) + off, str_len(out) - off, 100, &d, &dlen, &used),
                    want[i].type);
        CHECK(dlen == strlen(want[i].data) && memcmp(d, want[i].data, dlen) == 0);
        off += used;
    }
    CHECK_INTEQ(off, str_len(out));
    CHECK_STREQ(rec_type_name('R'), "recipient");
    CHECK_STREQ(rec_type_name(0), "unknown");
    str_free(out);
}

/* Bytes that must be REC_BAD both in memory and from a stream. */
static void
expect_bad(const char *what, const void *bytes, size_t len, size_t max)
{
    const char *d;
    size_t  dlen, used;
    str_t  *data = str_new(0), *err = str_new(0);
    stream_t *st = stream_of(bytes, len);
    int     a = rec_decode(bytes, len, max, &d, &dlen, &used);
    int     b = rec_get(st, data, max, err);

    if (a != REC_BAD || b != REC_BAD)
        fprintf(stderr, "  %s: decode %d, get %d\n", what, a, b);
    CHECK_INTEQ(a, REC_BAD);
    CHECK_INTEQ(b, REC_BAD);
    CHECK(str_len(err) > 0);
    (void) stream_close(st);
    str_free(data);
    str_free(err);
}

TEST(overlong_and_bad_lengths)
{
    expect_bad("overlong zero", "N\x80\x00", 3, 100);
    expect_bad("overlong one", "N\x81\x00", 3, 100);
    expect_bad("overlong 3 bytes", "N\x85\x80\x00xxxxx", 9, 100);
    expect_bad("six length bytes", "N\x80\x80\x80\x80\x80\x01", 7, 100);
    /* 2^31 in five bytes: above REC_MAX_LEN whatever the limit. */
    expect_bad("over REC_MAX_LEN", "N\x80\x80\x80\x80\x08", 6, (size_t) -1);
    expect_bad("over the caller's limit", "N\x05hello", 7, 4);
    expect_bad("truncated length", "N\x80", 2, 100);
    expect_bad("truncated data", "N\x05hel", 5, 100);
    expect_bad("type only", "N", 1, 100);
}

TEST(eof_and_limit_exact)
{
    str_t  *data = str_new(0), *err = str_new(0);
    stream_t *st = stream_of("", 0);
    const char *d;
    size_t  dlen, used;

    CHECK_INTEQ(rec_get(st, data, 10, err), REC_EOF);
    (void) stream_close(st);
    CHECK_INTEQ(rec_decode("", 0, 10, &d, &dlen, &used), REC_EOF);
    st = stream_of("N\x05helloE\x00", 9);
    CHECK_INTEQ(rec_get(st, data, 5, err), 'N');
    CHECK(str_eq_cstr(data, "hello"));
    CHECK_INTEQ(rec_get(st, data, 5, err), 'E');
    CHECK_INTEQ(str_len(data), 0);
    CHECK_INTEQ(rec_get(st, data, 5, err), REC_EOF);
    (void) stream_close(st);
    str_free(data);
    str_free(err);
}
