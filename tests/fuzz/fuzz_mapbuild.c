/*
 * fuzz_mapbuild.c - libFuzzer harness for the source parsers of "postern
 * map" / newaliases (dict_build in dict_lmdb.c): postmap syntax ("key
 * value", continuation lines, comments) and aliases(5) syntax ("name:
 * value", quoted names), followed by lookups in the built lmdb table.
 *
 * The first input byte chooses the syntax and flags; the rest is written to
 * a source file in a private temporary directory and built there. A build
 * that fails must say why; a built table must open and answer lookups with
 * DICT_FOUND or DICT_NOTFOUND. Files are removed after each input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dict.h"
#include "log.h"
#include "stream.h"

int     LLVMFuzzerInitialize(int *argc, char ***argv);
int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void
remove_dir(void)
{
    (void) rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    log_set_stderr(false, false);       /* build warnings are expected noise */
    snprintf(dir, sizeof(dir), "/tmp/fuzz_mapbuild.XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    atexit(remove_dir);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"", "a", "postmaster", "root", "key", "x@example.com"};
    char    src[128], built[160], name[160];
    str_t  *err = str_new(0), *value = str_new(0);
    int     flags = 0;
    FILE   *fp;

    if (size == 0)
        goto out;
    if (data[0] & 1)
        flags |= DICT_BUILD_ALIASES;
    if (data[0] & 2)
        flags |= DICT_BUILD_NO_FOLD;
    if (data[0] & 4)
        flags |= DICT_BUILD_REPLACE;
    snprintf(src, sizeof(src), "%s/src", dir);
    snprintf(built, sizeof(built), "%s%s", src, DICT_LMDB_SUFFIX);
    snprintf(name, sizeof(name), "hash:%s", src);
    if ((fp = fopen(src, "wb")) == NULL)
        abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, fp) != size - 1)
        abort();
    if (fclose(fp) != 0)
        abort();
    if (dict_build(name, flags, err) != 0) {
        if (str_len(err) == 0)
            abort();
    } else {
        dict_t *d = dict_open(name, (flags & DICT_BUILD_NO_FOLD) ? DICT_FLAG_NO_FOLD : 0, err);

        if (d == NULL)
            abort();                    /* a table that was built must open */
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            int     rc = dict_lookup(d, keys[i], value);

            if (rc != DICT_FOUND && rc != DICT_NOTFOUND)
                abort();
        }
        dict_close(d);
    }
    (void) unlink(built);
    (void) unlink(src);
  out:
    str_free(err);
    str_free(value);
    return 0;
}
