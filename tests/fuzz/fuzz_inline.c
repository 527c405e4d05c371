/*
 * fuzz_inline.c - libFuzzer harness for inline: and static: tables.
 *
 * The input, with NUL bytes replaced by spaces, is opened as "inline:" +
 * input (with and without key folding) and as "static:" + input. When an
 * inline table opens, every entry listed by sequence must be found again by
 * lookup with the same value; a static table must answer every key with
 * DICT_FOUND. A failed open must explain itself. Everything is freed: the
 * harness runs under LeakSanitizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "log.h"
#include "mem.h"

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
};

static int
check_entry(const char *key, const char *value, void *ctx)
{
    struct check *c = ctx;
    int     rc = dict_lookup(c->d, key, c->value);

    if (strlen(key) > DICT_KEY_MAX) {
        if (rc != DICT_NOTFOUND)
            abort();
    } else if (rc != DICT_FOUND || strcmp(str_cstr(c->value), value) != 0) {
        abort();
    }
    return 0;
}

static void
fuzz_open(const char *name, int flags, bool is_static)
{
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    dict_t *d = dict_open(name, flags, err);

    if (d == NULL && str_len(err) == 0)
        abort();
    if (d != NULL) {
        if (is_static) {
            if (dict_lookup(d, "anything", value) != DICT_FOUND)
                abort();
        } else {
            struct check c = {.d = d, .value = value};

            if (d->sequence(d, check_entry, &c, err) != 0)
                abort();
            if (dict_lookup(d, "key", value) == DICT_ERROR)
                abort();
        }
    }
    dict_close(d);
    str_free(err);
    str_free(value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char prefix[] = "inline:";
    static const char sprefix[] = "static:";
    char   *name = mem_alloc(sizeof(prefix) + size);

    memcpy(name, prefix, sizeof(prefix) - 1);
    for (size_t i = 0; i < size; i++)
        name[sizeof(prefix) - 1 + i] = data[i] ? (char) data[i] : ' ';
    name[sizeof(prefix) - 1 + size] = 0;
    fuzz_open(name, 0, false);
    fuzz_open(name, DICT_FLAG_NO_FOLD, false);
    memcpy(name, sprefix, sizeof(sprefix) - 1);
    fuzz_open(name, 0, true);
    mem_free(name);
    return 0;
}
