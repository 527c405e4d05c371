/*
 * fuzz_maildrop.c - libFuzzer harness for the checks pickup and postdrop
 * run on user-written submissions (maildrop.c), and for sendmail's message
 * reader (submit.c).
 *
 * The input is decoded as records with rec_decode and fed to the checker,
 * once as postdrop's input and once as a maildrop file; the checker must
 * end in MORE, DONE or BAD and never read out of bounds. The same bytes
 * are then read as a message by submit_input (through a memfd) with a
 * small line limit, and every record it produces must pass the content
 * part of the checker: sendmail never writes what postdrop would refuse.
 * The first byte's low bits choose -i (bit 0) and the SMTP rules of
 * sendmail -bs (bit 1, with a size limit); only a message that the reader
 * ends with SUBMIT_INPUT_OK is checked, as only that one is sent whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "maildrop.h"
#include "rec.h"
#include "str.h"
#include "stream.h"
#include "submit.h"

int     LLVMFuzzerInitialize(int *argc, char ***argv);
int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_stderr(false, false);
    return 0;
}

static void
check_records(enum maildrop_origin origin, const uint8_t *data, size_t size)
{
    struct maildrop_check mc;
    size_t  off = 0, len, used;
    const char *rdata;
    int     type, rc = MAILDROP_MORE;

    maildrop_check_init(&mc, origin, 64, 4096);
    while (rc != MAILDROP_BAD
           && (type = rec_decode(data + off, size - off, maildrop_max_record(64), &rdata, &len,
                                 &used)) >= 0) {
        rc = maildrop_check_record(&mc, type, rdata, len);
        off += used;
    }
    if (rc == MAILDROP_BAD && str_len(&mc.error) == 0)
        abort();                    /* a refusal must say why */
    maildrop_check_free(&mc);
}

static void
check_reader(const uint8_t *data, size_t size, bool ignore_dots, bool smtp)
{
    int     fd = memfd_create("fuzz", 0);
    str_t  *out = str_new(0);
    str_t  *all = str_new(0);
    struct submit_input in;
    struct maildrop_check mc;
    int     rc;

    if (fd < 0)
        return;
    if (size && write(fd, data, size) != (ssize_t) size) {
        close(fd);
        return;
    }
    lseek(fd, 0, SEEK_SET);
    stream_t *st = stream_open(fd);

    submit_input_init(&in, 16, smtp ? 64 : 0, ignore_dots);
    in.smtp = smtp;
    rec_put_str(all, 'T', "1");
    rec_put_str(all, 'S', "a");
    rec_put_str(all, 'R', "b");
    rec_put(all, 'M', "", 0);
    do {
        str_reset(out);
        rc = submit_input_next(&in, st, out);
        str_append_str(all, out);
    } while (rc == SUBMIT_INPUT_MORE);
    submit_input_free(&in);
    stream_close(st);
    if (rc != SUBMIT_INPUT_OK) {
        /* sendmail sends no end record then, and postdrop keeps nothing. */
        str_free(out);
        str_free(all);
        return;
    }
    rec_put(all, 'X', "", 0);
    rec_put(all, 'E', "", 0);

    size_t  off = 0, len, used;
    const char *rdata;
    int     type, crc = MAILDROP_MORE;

    maildrop_check_init(&mc, MAILDROP_FROM_USER, 16, 0);
    while ((type = rec_decode(str_cstr(all) + off, str_len(all) - off, REC_MAX_LEN, &rdata, &len,
                              &used)) >= 0) {
        crc = maildrop_check_record(&mc, type, rdata, len);
        if (crc == MAILDROP_BAD)
            abort();                /* sendmail output that postdrop refuses */
        off += used;
    }
    if (crc != MAILDROP_DONE)
        abort();
    maildrop_check_free(&mc);
    str_free(out);
    str_free(all);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_records(MAILDROP_FROM_USER, data, size);
    check_records(MAILDROP_FROM_FILE, data, size);
    check_reader(data, size, size > 0 && (data[0] & 1), size > 0 && (data[0] & 2));
    return 0;
}
