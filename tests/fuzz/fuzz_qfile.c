/*
 * fuzz_qfile.c - libFuzzer harness for the queue file reader (qfile.c).
 *
 * Each input is written to a memfd and read three ways: qfile_read() as a
 * queue file, as a maildrop file, and record by record through the
 * reader. Checks:
 *   - every result is DONE, BAD or (never here) IOERR; BAD has a message
 *     that starts with the file name and holds no control characters;
 *   - the reader and qfile_read() agree on the result and the message;
 *   - on DONE: every recipient offset points at an R or D byte of the
 *     input, the counts add up, and qfile_mark_done() on a copy marks
 *     exactly that recipient.
 * Any disagreement aborts. Everything allocated is freed (LeakSanitizer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qfile.h"
#include "str.h"

int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static int
memfd_of(const uint8_t *data, size_t size)
{
    int     fd = memfd_create("fuzz_qfile", MFD_CLOEXEC);

    REQUIRE(fd >= 0);
    REQUIRE(size == 0 || write(fd, data, size) == (ssize_t) size);
    return fd;
}

static void
check_message(int rc, const str_t *err)
{
    REQUIRE(rc == QFILE_DONE || rc == QFILE_BAD);
    if (rc == QFILE_DONE) {
        REQUIRE(str_len(err) == 0);
        return;
    }
    REQUIRE(strncmp(str_cstr(err), "f: offset ", 10) == 0);
    for (size_t i = 0; i < str_len(err); i++)
        REQUIRE((unsigned char) str_cstr(err)[i] >= 0x20 && str_cstr(err)[i] != 0x7f);
}

static void
check_done(int fd, const uint8_t *data, size_t size, struct qfile *qf)
{
    size_t  todo = 0;
    str_t  *err = str_new(0);
    struct qfile again;

    for (size_t i = 0; i < qf->rcpt_count; i++) {
        off_t   o = qf->rcpts[i].offset;

        REQUIRE(o > 0 && (size_t) o < size);
        REQUIRE(data[o] == (qf->rcpts[i].done ? 'D' : 'R'));
        todo += !qf->rcpts[i].done;
    }
    REQUIRE(todo == qf->rcpt_todo);
    REQUIRE(qf->maildrop || (qf->size_offset > 0 && data[qf->size_offset] == 'C'));
    if (qf->rcpt_todo > 0 && !qf->maildrop) {     /* maildrop files hold no D */
        size_t  k = 0;

        while (qf->rcpts[k].done)
            k++;
        REQUIRE(qfile_mark_done(fd, qf->rcpts[k].offset, false) == 0);
        REQUIRE(qfile_read(fd, "f", QFILE_FLAG_ANY, &again, err) == QFILE_DONE);
        REQUIRE(again.rcpt_todo == qf->rcpt_todo - 1 && again.rcpts[k].done);
        qfile_free(&again);
    }
    str_free(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int     fd = memfd_of(data, size);
    str_t  *err = str_new(0);
    struct qfile qf;
    qfile_reader_t *r;
    struct qfile_rec rec;
    int     rc, rc2;

    /* Record by record. */
    r = qfile_reader_new(fd, "f", QFILE_FLAG_ANY);
    while ((rc2 = qfile_reader_next(r, &rec)) == QFILE_RECORD)
        REQUIRE(rec.offset >= 0 && (size_t) rec.offset < size && data[rec.offset] == (uint8_t) rec.type);
    REQUIRE(qfile_reader_next(r, &rec) == rc2);

    rc = qfile_read(fd, "f", QFILE_FLAG_ANY, &qf, err);
    check_message(rc, err);
    REQUIRE(rc == rc2 && strcmp(str_cstr(err), qfile_reader_error(r)) == 0);
    qfile_reader_free(r);
    if (rc == QFILE_DONE)
        check_done(fd, data, size, &qf);
    qfile_free(&qf);

    /* The single-kind flags accept a subset. */
    rc2 = qfile_read(fd, "f", QFILE_FLAG_QUEUE, &qf, err);
    check_message(rc2, err);
    qfile_free(&qf);
    rc2 = qfile_read(fd, "f", QFILE_FLAG_MAILDROP, &qf, err);
    check_message(rc2, err);
    qfile_free(&qf);

    close(fd);
    str_free(err);
    return 0;
}
