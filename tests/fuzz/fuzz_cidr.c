/*
 * fuzz_cidr.c - libFuzzer harness for cidr: tables and the network list
 * parser they share with mynetworks (netmatch.c).
 *
 * The input is written to a memfd and opened as "cidr:/proc/self/fd/N", so
 * the real file reader runs. When the table opens, a few fixed addresses and
 * the input's first word (as a key) are looked up: a cidr table must never
 * answer DICT_ERROR. The input, as a C string with NULs replaced, is also
 * parsed as a mynetworks-style list and matched. Everything is freed: the
 * harness runs under LeakSanitizer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dict.h"
#include "log.h"
#include "mem.h"
#include "netmatch.h"
#include "stream.h"

int     LLVMFuzzerInitialize(int *argc, char ***argv);
int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const probe_keys[] = {
    "10.1.2.3", "192.168.1.1", "0.0.0.0", "255.255.255.255", "::1", "::",
    "2001:db8::1", "::ffff:10.1.2.3", "fe80::1", "not-an-address", "",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_stderr(false, false);       /* table warnings are expected noise */
    return 0;
}

static void
fuzz_table(const uint8_t *data, size_t size)
{
    char    name[64];
    int     fd = memfd_create("fuzz_cidr", MFD_CLOEXEC);
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    dict_t *d;

    if (fd < 0 || (size > 0 && fd_write_all(fd, data, size) != (ssize_t) size))
        abort();
    snprintf(name, sizeof(name), "cidr:/proc/self/fd/%d", fd);
    d = dict_open(name, 0, err);
    if (d == NULL && str_len(err) == 0)
        abort();                        /* a failed open must say why */
    if (d != NULL) {
        for (size_t i = 0; i < sizeof(probe_keys) / sizeof(probe_keys[0]); i++)
            if (dict_lookup(d, probe_keys[i], value) == DICT_ERROR)
                abort();

        /* The first word of the input, up to '/' or white space, as a key. */
        size_t  n = 0;

        while (n < size && n < 64 && data[n] != '/' && data[n] != ' ' && data[n] != '\t'
               && data[n] != '\n' && data[n] != 0)
            n++;
        char   *key = mem_strndup((const char *) data, n);

        if (dict_lookup(d, key, value) == DICT_ERROR)
            abort();
        mem_free(key);
    }
    dict_close(d);
    str_free(err);
    str_free(value);
    if (close(fd) != 0)
        abort();
}

static void
fuzz_list(const uint8_t *data, size_t size)
{
    char   *text = mem_alloc(size + 1);
    str_t  *err = str_new(0);
    netmatch_t *m;

    for (size_t i = 0; i < size; i++)
        text[i] = data[i] ? (char) data[i] : ' ';
    text[size] = 0;
    m = netmatch_parse(text, err);
    if (m == NULL && str_len(err) == 0)
        abort();
    if (m != NULL)
        for (size_t i = 0; i < sizeof(probe_keys) / sizeof(probe_keys[0]); i++)
            (void) netmatch_match_text(m, probe_keys[i]);
    netmatch_free(m);
    str_free(err);
    mem_free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_table(data, size);
    fuzz_list(data, size);
    return 0;
}
