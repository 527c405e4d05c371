/*
 * fuzz_texthash.c - libFuzzer harness for texthash: tables (and with them
 * the shared logical-line reader and htable).
 *
 * The input is written to a memfd and opened as "texthash:/proc/self/fd/N",
 * once with key folding and once with DICT_FLAG_NO_FOLD. When the table
 * opens, every entry listed by sequence must be found again by lookup with
 * the same value (unless its key is longer than DICT_KEY_MAX), and a few
 * other keys must answer FOUND or NOTFOUND, never DICT_ERROR. Everything is
 * freed: the harness runs under LeakSanitizer.
 */
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

struct check {
    dict_t *d;
    str_t  *value;
    size_t  entries;
};

/* Every listed entry must be found again with the same value. */
static int
check_entry(const char *key, const char *value, void *ctx)
{
    struct check *c = ctx;
    int     rc = dict_lookup(c->d, key, c->value);

    c->entries++;
    if (strlen(key) > DICT_KEY_MAX) {
        if (rc != DICT_NOTFOUND)
            abort();
    } else if (rc != DICT_FOUND || strcmp(str_cstr(c->value), value) != 0) {
        abort();
    }
    return 0;
}

static void
fuzz_open(int fd, int flags)
{
    static const char *const keys[] = {"", "a", "A", "key", "user@example.com", "#", " "};
    char    name[64];
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    dict_t *d;

    snprintf(name, sizeof(name), "texthash:/proc/self/fd/%d", fd);
    d = dict_open(name, flags, err);
    if (d == NULL && str_len(err) == 0)
        abort();                        /* a failed open must say why */
    if (d != NULL) {
        struct check c = {.d = d, .value = value};

        if (d->sequence(d, check_entry, &c, err) != 0)
            abort();
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (dict_lookup(d, keys[i], value) == DICT_ERROR)
                abort();
    }
    dict_close(d);
    str_free(err);
    str_free(value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int     fd = memfd_create("fuzz_texthash", MFD_CLOEXEC);

    if (fd < 0 || (size > 0 && fd_write_all(fd, data, size) != (ssize_t) size))
        abort();
    fuzz_open(fd, 0);
    fuzz_open(fd, DICT_FLAG_NO_FOLD);
    if (close(fd) != 0)
        abort();
    return 0;
}
