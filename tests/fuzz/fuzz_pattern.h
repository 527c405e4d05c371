/*
 * fuzz_pattern.h - the body of the libFuzzer harnesses for the pattern
 * tables (fuzz_regexp.c, fuzz_pcre.c), which differ only in the table type
 * FUZZ_PATTERN_TYPE they define before including this file.
 *
 * It fuzzes the pattern table parser (dict_pattern.c: rules, if/endif, flags,
 * result templates) with that engine, plus lookups. The input is written to a
 * memfd and opened as "TYPE:/proc/self/fd/N". A failed open must say why.
 * When it opens, a few fixed keys and the first line of the input are looked
 * up: DICT_FOUND and DICT_NOTFOUND are fine, DICT_ERROR must come with a
 * reason (a match limit, a result too long). Everything is freed: the
 * harness runs under LeakSanitizer.
 */
#ifndef FUZZ_PATTERN_TYPE
#error "define FUZZ_PATTERN_TYPE before including fuzz_pattern.h"
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dict.h"
#include "log.h"
#include "stream.h"

int     LLVMFuzzerInitialize(int *argc, char ***argv);
int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_stderr(false, false);       /* table warnings are expected noise */
    return 0;
}

static void
probe(dict_t *d, const char *key, str_t *value)
{
    int     rc = dict_lookup(d, key, value);

    if (rc == DICT_ERROR && dict_error(d)[0] == 0)
        abort();
    if (rc != DICT_FOUND && str_len(value) != 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {
        "", "a", "A", "user@example.com", "spam@EXAMPLE.net", "$1", "aaaaaaaaaaaaaaaaaaaab",
    };
    int     fd = memfd_create("fuzz_" FUZZ_PATTERN_TYPE, MFD_CLOEXEC);
    char    name[64];
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    str_t  *first = str_new(0);
    dict_t *d;

    if (fd < 0 || (size > 0 && fd_write_all(fd, data, size) != (ssize_t) size))
        abort();
    snprintf(name, sizeof(name), FUZZ_PATTERN_TYPE ":/proc/self/fd/%d", fd);
    d = dict_open(name, 0, err);
    if (d == NULL && str_len(err) == 0)
        abort();
    if (d != NULL) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            probe(d, keys[i], value);
        for (size_t i = 0; i < size && data[i] != '\n' && data[i] != 0; i++)
            str_putc(first, data[i]);
        probe(d, str_cstr(first), value);
    }
    dict_close(d);
    str_free(err);
    str_free(value);
    str_free(first);
    if (close(fd) != 0)
        abort();
    return 0;
}
