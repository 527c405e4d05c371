/*
 * test_qfile.c - unit tests for qfile.c, on files built with rec_put():
 * a good queue file (every field, recipient offsets, sections), a good
 * maildrop file, qfile_mark_done(), and one case per kind of damage:
 * every truncation, wrong order, bad version, missing E, bytes after E,
 * huge lengths, bad C records, bad values.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"
#include "qfile.h"
#include "rec.h"
#include "str.h"
#include "unit.h"

#define MAX_ENTRIES 64
#define X10  "xxxxxxxxxx"
#define X50  X10 X10 X10 X10 X10
#define LONG_LINE X50 X50 X50 X50     /* 200 bytes: a two-byte length */
#define SIZE_AUTO   NULL        /* C data computed by assemble() */

struct entry {
    int     type;
    const char *data;
    size_t  len;                /* 0: strlen(data) */
};

/* The good queue file, as entries; tests copy and damage it. */
static const struct entry good[] = {
    {'V', "1", 0}, {'C', SIZE_AUTO, 0}, {'T', "1700000000.000042", 0}, {'F', "Joe\tUser", 0},
    {'S', "joe@example.com", 0}, {'A', "rewrite_context=local", 0}, {'A', "helo_name=h.example", 0},
    {'O', "rfc822;Bob@example.com", 0}, {'N', "6", 0}, {'R', "bob@example.com", 0},
    {'D', "done@example.com", 0}, {'R', "carol@example.com", 0},
    {'M', "", 0}, {'N', "Subject: hi", 0}, {'N', "", 0}, {'L', "long ", 0}, {'L', "line", 0},
    {'N', "!", 0}, {'N', "bin\0ary", 7}, {'N', LONG_LINE, 0}, {'X', "", 0},
    {'W', "1700003600", 0}, {'R', "extracted@example.com", 0}, {'E', "", 0},
};
#define NGOOD (sizeof(good) / sizeof(good[0]))
/* Content: "Subject: hi\n" 12 + "\n" 1 + "long line!\n" 11 + "bin\0ary\n" 8 + 201 */
#define GOOD_SIZE 233

static size_t
entry_len(const struct entry *e)
{
    return e->len ? e->len : strlen(e->data);
}

/* Records of entries[0..n) into out; a SIZE_AUTO C record gets the right numbers. */
static void
assemble(str_t *out, const struct entry *e, size_t n)
{
    long long size = 0, offset = 0, rcpts = 0;
    bool    content = false;

    str_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (e[i].type == 'M') {
            content = true;
        } else if (e[i].type == 'X') {
            content = false;
        } else if (content) {
            size += (long long) entry_len(&e[i]) + (e[i].type == 'N');
        } else if (e[i].type == 'R' || e[i].type == 'D') {
            rcpts++;
        }
    }
    /* Content offset: bytes through M. */
    {
        str_t  *tmp = str_new(0);
        long long at = 0;

        for (size_t i = 0; i < n; i++) {
            if (e[i].type == 'C' && e[i].data == SIZE_AUTO)
                rec_putf(tmp, 'C', "%15lld %15lld %15lld", 0LL, 0LL, 0LL);
            else
                rec_put(tmp, e[i].type, e[i].data, entry_len(&e[i]));
            if (e[i].type == 'M') {
                at = (long long) str_len(tmp);
                break;
            }
        }
        offset = at;
        str_free(tmp);
    }
    for (size_t i = 0; i < n; i++) {
        if (e[i].type == 'C' && e[i].data == SIZE_AUTO)
            rec_putf(out, 'C', "%15lld %15lld %15lld", size, offset, rcpts);
        else
            rec_put(out, e[i].type, e[i].data, entry_len(&e[i]));
    }
}

static int
memfd_of(const void *data, size_t len)
{
    int     fd = memfd_create("test_qfile", MFD_CLOEXEC);

    if (fd < 0 || (len && write(fd, data, len) != (ssize_t) len)) {
        perror("memfd");
        exit(2);
    }
    return fd;          /* the reader rewinds it */
}

/* Read bytes with flags; returns the result, err gets the message. */
static int
read_bytes(const void *data, size_t len, int flags, struct qfile *qf, str_t *err)
{
    int     fd = memfd_of(data, len);
    int     rc = qfile_read(fd, "test", flags, qf, err);

    close(fd);
    return rc;
}

/* Expect entries to be rejected with a message containing "want". */
static void
expect_bad_entries(const char *what, const struct entry *e, size_t n, int flags, const char *want)
{
    str_t  *buf = str_new(0), *err = str_new(0);
    struct qfile qf;
    int     rc;

    assemble(buf, e, n);
    rc = read_bytes(str_cstr(buf), str_len(buf), flags, &qf, err);
    if (rc != QFILE_BAD || strstr(str_cstr(err), want) == NULL)
        fprintf(stderr, "  %s: rc %d, error \"%s\", wanted \"%s\"\n", what, rc, str_cstr(err), want);
    CHECK_INTEQ(rc, QFILE_BAD);
    CHECK(strstr(str_cstr(err), want) != NULL);
    CHECK(strncmp(str_cstr(err), "test: offset ", 13) == 0);
    qfile_free(&qf);
    str_free(buf);
    str_free(err);
}

/* The good entries with entry i replaced (type 0: removed). */
static size_t
with(struct entry *out, size_t i, int type, const char *data)
{
    size_t  n = 0;

    for (size_t j = 0; j < NGOOD; j++) {
        if (j == i) {
            if (type == 0)
                continue;
            out[n++] = (struct entry) {type, data, 0};
        } else {
            out[n++] = good[j];
        }
    }
    return n;
}

TEST(good_queue_file)
{
    str_t  *buf = str_new(0), *err = str_new(0);
    struct qfile qf;

    assemble(buf, good, NGOOD);
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_QUEUE, &qf, err), QFILE_DONE);
    CHECK_STREQ(str_cstr(err), "");
    CHECK(!qf.maildrop);
    CHECK_INTEQ(qf.arrival_sec, 1700000000);
    CHECK_INTEQ(qf.arrival_usec, 42);
    CHECK_STREQ(qf.fullname, "Joe\tUser");
    CHECK_STREQ(qf.sender, "joe@example.com");
    CHECK_INTEQ(qf.attr_count, 2);
    CHECK_STREQ(qfile_attr(&qf, "helo_name"), "h.example");
    CHECK(qfile_attr(&qf, "nope") == NULL);
    CHECK_INTEQ(qf.message_size, GOOD_SIZE);
    CHECK_INTEQ(qf.warn_time, 1700003600);
    CHECK_INTEQ(qf.rcpt_count, 4);
    CHECK_INTEQ(qf.rcpt_todo, 3);
    CHECK_STREQ(qf.rcpts[0].address, "bob@example.com");
    CHECK_STREQ(qf.rcpts[0].orcpt, "rfc822;Bob@example.com");
    CHECK_INTEQ(qf.rcpts[0].notify, 6);
    CHECK(!qf.rcpts[0].done);
    CHECK(qf.rcpts[1].done && qf.rcpts[1].orcpt == NULL && qf.rcpts[1].notify == 0);
    CHECK_STREQ(qf.rcpts[3].address, "extracted@example.com");
    for (size_t i = 0; i < qf.rcpt_count; i++) {
        off_t   o = qf.rcpts[i].offset;

        CHECK(o > 0 && (size_t) o < str_len(buf));
        CHECK(str_cstr(buf)[o] == (qf.rcpts[i].done ? 'D' : 'R'));
        CHECK(memcmp(str_cstr(buf) + o + 2, qf.rcpts[i].address, strlen(qf.rcpts[i].address)) == 0);
    }
    CHECK(str_cstr(buf)[qf.content_offset - 2] == 'M');
    CHECK(str_cstr(buf)[qf.size_offset] == 'C');
    qfile_free(&qf);
    /* A queue file is not a maildrop file. */
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_MAILDROP, &qf, err), QFILE_BAD);
    CHECK(strstr(str_cstr(err), "not a maildrop file") != NULL);
    qfile_free(&qf);
    str_free(buf);
    str_free(err);
}

TEST(reader_sections)
{
    str_t  *buf = str_new(0);
    struct qfile_rec rec;
    qfile_reader_t *r;
    int     fd, rc;
    size_t  i = 0;
    static const char sections[] = "EEEEEEEEEEEEECCCCCCCCXXXX";

    assemble(buf, good, NGOOD);
    fd = memfd_of(str_cstr(buf), str_len(buf));
    r = qfile_reader_new(fd, "t", QFILE_FLAG_QUEUE);
    while ((rc = qfile_reader_next(r, &rec)) == QFILE_RECORD) {
        char    s = rec.section == QFILE_SEC_ENVELOPE ? 'E' : rec.section == QFILE_SEC_CONTENT ? 'C' : 'X';

        CHECK(i < NGOOD && rec.type == good[i].type && s == sections[i]);
        if (i < NGOOD && good[i].data != SIZE_AUTO)
            CHECK(rec.len == entry_len(&good[i]) && memcmp(rec.data, good[i].data, rec.len) == 0);
        CHECK(str_cstr(buf)[rec.offset] == rec.type);
        i++;
    }
    CHECK_INTEQ(rc, QFILE_DONE);
    CHECK_INTEQ(i, NGOOD);
    CHECK_INTEQ(qfile_reader_next(r, &rec), QFILE_DONE);
    qfile_reader_free(r);
    close(fd);
    str_free(buf);
}

TEST(good_maildrop_file)
{
    static const struct entry md[] = {
        {'T', "1700000000", 0}, {'S', "", 0}, {'A', "submit_uid=1000", 0}, {'R', "x@y", 0},
        {'M', "", 0}, {'N', "hello", 0}, {'X', "", 0}, {'E', "", 0},
    };
    str_t  *buf = str_new(0), *err = str_new(0);
    struct qfile qf;

    assemble(buf, md, 8);
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_MAILDROP, &qf, err), QFILE_DONE);
    CHECK(qf.maildrop);
    CHECK_STREQ(qf.sender, "");
    CHECK_INTEQ(qf.message_size, 6);
    CHECK_INTEQ(qf.rcpt_todo, 1);
    qfile_free(&qf);
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_ANY, &qf, err), QFILE_DONE);
    qfile_free(&qf);
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_QUEUE, &qf, err), QFILE_BAD);
    CHECK(strstr(str_cstr(err), "not a queue file") != NULL);
    qfile_free(&qf);
    str_free(buf);
    str_free(err);
    /* Maildrop files carry no D, and nothing but E after X. */
    static const struct entry md2[] = {
        {'T', "1700000000", 0}, {'S', "", 0}, {'D', "x@y", 0}, {'M', "", 0}, {'X', "", 0}, {'E', "", 0},
    };
    expect_bad_entries("maildrop D", md2, 6, QFILE_FLAG_MAILDROP, "done recipient record in a maildrop");
    static const struct entry md3[] = {
        {'T', "1700000000", 0}, {'S', "", 0}, {'R', "x@y", 0}, {'M', "", 0}, {'X', "", 0},
        {'R', "z@y", 0}, {'E', "", 0},
    };
    expect_bad_entries("maildrop after X", md3, 7, QFILE_FLAG_MAILDROP, "only the end record");
}

TEST(mark_done)
{
    str_t  *buf = str_new(0), *err = str_new(0);
    struct qfile qf, qf2;
    int     fd;

    assemble(buf, good, NGOOD);
    fd = memfd_of(str_cstr(buf), str_len(buf));
    CHECK_INTEQ(qfile_read(fd, "t", QFILE_FLAG_QUEUE, &qf, err), QFILE_DONE);
    CHECK_INTEQ(qfile_mark_done(fd, qf.rcpts[0].offset, false), 0);
    CHECK_INTEQ(qfile_mark_done(fd, qf.rcpts[3].offset, true), 0);
    CHECK_INTEQ(qfile_mark_done(fd, qf.rcpts[1].offset, false), 0);   /* already D */
    errno = 0;
    CHECK_INTEQ(qfile_mark_done(fd, qf.content_offset, false), -1);    /* an N record */
    CHECK_INTEQ(errno, EINVAL);
    CHECK_INTEQ(qfile_mark_done(fd, (off_t) str_len(buf) + 10, false), -1);
    CHECK_INTEQ(qfile_mark_done(fd, -1, false), -1);
    CHECK_INTEQ(qfile_read(fd, "t", QFILE_FLAG_QUEUE, &qf2, err), QFILE_DONE);
    CHECK_INTEQ(qf2.rcpt_todo, 1);
    CHECK(qf2.rcpts[0].done && qf2.rcpts[3].done && !qf2.rcpts[2].done);
    qfile_free(&qf);
    qfile_free(&qf2);
    close(fd);
    str_free(buf);
    str_free(err);
}

TEST(every_truncation_is_bad)
{
    str_t  *buf = str_new(0), *err = str_new(0);
    struct qfile qf;
    int     bad = 0;

    assemble(buf, good, NGOOD);
    for (size_t cut = 0; cut < str_len(buf); cut++) {
        if (read_bytes(str_cstr(buf), cut, QFILE_FLAG_ANY, &qf, err) != QFILE_BAD || str_len(err) == 0)
            bad++;
        qfile_free(&qf);
    }
    CHECK_INTEQ(bad, 0);
    CHECK_INTEQ(read_bytes(str_cstr(buf), 0, QFILE_FLAG_QUEUE, &qf, err), QFILE_BAD);
    CHECK(strstr(str_cstr(err), "empty file") != NULL);
    qfile_free(&qf);
    str_free(buf);
    str_free(err);
}

TEST(after_end)
{
    str_t  *buf = str_new(0), *err = str_new(0);
    struct qfile qf;

    assemble(buf, good, NGOOD);
    str_putc(buf, 0);
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_QUEUE, &qf, err), QFILE_BAD);
    CHECK(strstr(str_cstr(err), "data after the end record") != NULL);
    qfile_free(&qf);
    assemble(buf, good, NGOOD);
    rec_put(buf, 'E', "", 0);
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_QUEUE, &qf, err), QFILE_BAD);
    qfile_free(&qf);
    str_free(buf);
    str_free(err);
}

TEST(huge_lengths)
{
    str_t  *buf = str_new(0), *err = str_new(0);
    struct qfile qf;
    char   *big = mem_alloc(QFILE_ENV_MAX + 2);
    struct entry e[MAX_ENTRIES];
    size_t  n;

    /* A content record announcing 512 MiB after a valid envelope. */
    assemble(buf, good, 13);
    str_append(buf, "N\x80\x80\x80\x80\x02", 6);
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_QUEUE, &qf, err), QFILE_BAD);
    CHECK(strstr(str_cstr(err), "exceeds the limit") != NULL);
    qfile_free(&qf);
    /* An envelope record over QFILE_ENV_MAX. */
    memset(big, 'a', QFILE_ENV_MAX + 1);
    big[QFILE_ENV_MAX + 1] = 0;
    n = with(e, 4, 'S', big);
    expect_bad_entries("huge sender", e, n, QFILE_FLAG_QUEUE, "envelope record of 65537 bytes");
    mem_free(big);
    str_free(buf);
    str_free(err);
}

TEST(damaged_files)
{
    struct entry e[MAX_ENTRIES];
    size_t  n;
    static const struct {
        const char *what;
        size_t  index;          /* entry of the good file to replace */
        int     type;           /* 0: remove it */
        const char *data;
        const char *want;
    } cases[] = {
        {"bad version", 0, 'V', "2", "unsupported queue file version \"2\""},
        {"no version", 0, 0, NULL, "not a queue file"},
        {"no size", 1, 0, NULL, "size record missing"},
        {"size not fixed width", 1, 'C', "32 30 4", "malformed size record"},
        {"size negative", 1, 'C', "             32             -1               4", "malformed size record"},
        {"size wrong message size", 1, 'C', "            234             225               4",
         "message size 234"},
        {"size wrong rcpt count", 1, 'C', "            233             225               3",
         "3 recipients"},
        {"size wrong offset", 1, 'C', "            233             224               4", "content offset 224"},
        {"bad time", 2, 'T', "17x", "malformed time record"},
        {"time usec too long", 2, 'T', "1700000000.1234567", "malformed time record"},
        {"no time", 2, 0, NULL, "time record missing"},
        {"sender with newline", 4, 'S', "a\nb", "malformed sender record"},
        {"no sender", 4, 0, NULL, "sender record missing"},
        {"attr bad name", 5, 'A', "Bad=x", "malformed attribute record"},
        {"attr no =", 5, 'A', "helo", "malformed attribute record"},
        {"attr empty name", 5, 'A', "=x", "malformed attribute record"},
        {"orcpt no type", 7, 'O', "Bob@example.com", "malformed original recipient"},
        {"notify zero", 8, 'N', "0", "malformed notify"},
        {"notify 16", 8, 'N', "16", "malformed notify"},
        {"notify never+success", 8, 'N', "3", "malformed notify"},
        {"empty recipient", 9, 'R', "", "malformed recipient record"},
        {"orphan orcpt", 9, 'A', "x=y", "between a recipient's records"},
        {"no content start", 12, 0, NULL, "malformed notify record"},
        {"unknown envelope record", 5, 'Q', "x", "unexpected record 'Q' in the envelope"},
        {"binary type", 5, 1, "x", "unexpected record type 0x01"},
        {"bad content record", 13, 'S', "x", "unexpected record 'S' in the content"},
        {"L before X", 19, 'L', "!", "content ends inside a continued line"},
        {"M not empty", 12, 'M', "x", "content start record is not empty"},
        {"E missing", 23, 0, NULL, "incomplete"},
        {"bad warn", 21, 'W', "soon", "malformed warning time"},
        {"content record after X", 22, 'L', "x", "unexpected record 'L' after the content"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = with(e, cases[i].index, cases[i].type, cases[i].data);
        expect_bad_entries(cases[i].what, e, n, QFILE_FLAG_QUEUE, cases[i].want);
    }
    /* Sender before time; two S records. */
    n = with(e, 2, 'S', "x@y");
    expect_bad_entries("S for T", e, n, QFILE_FLAG_QUEUE, "time record missing");
    n = with(e, 5, 'S', "x@y");
    expect_bad_entries("two senders", e, n, QFILE_FLAG_QUEUE, "unexpected record 'S'");
}

TEST(error_escapes_peer_bytes)
{
    struct entry e[MAX_ENTRIES];
    size_t  n = with(e, 0, 'V', "\x1b[31m");
    str_t  *buf = str_new(0), *err = str_new(0);
    struct qfile qf;

    assemble(buf, e, n);
    CHECK_INTEQ(read_bytes(str_cstr(buf), str_len(buf), QFILE_FLAG_QUEUE, &qf, err), QFILE_BAD);
    CHECK(strchr(str_cstr(err), 0x1b) == NULL);
    CHECK(strstr(str_cstr(err), "\\x1b[31m") != NULL);
    qfile_free(&qf);
    str_free(buf);
    str_free(err);
}
