/*
 * test_dict_lmdb.c - unit tests for lmdb:/hash:/btree: tables and
 * dict_build(): building from postmap and aliases sources, lookups, errors
 * that name the file and line, atomic rebuilds while a table is open,
 * writable opens, and files written the Postfix way (keys with a NUL).
 * Everything happens in a private temporary directory, removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dict.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

static char test_dir[64];

static const char *
dir(void)
{
    if (test_dir[0] == 0) {
        snprintf(test_dir, sizeof(test_dir), "/tmp/test_dict_lmdb.XXXXXX");
        if (mkdtemp(test_dir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return test_dir;
}

/* Write content to dir/file (mode 0644); returns the path (static). */
static const char *
write_source(const char *file, const char *content, size_t len)
{
    static char path[160];
    int     fd;

    snprintf(path, sizeof(path), "%s/%s", dir(), file);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, content, len) != (ssize_t) len || close(fd) != 0) {
        perror(path);
        exit(2);
    }
    return path;
}

/* Build type:dir/file from content; returns dict_build's result, err set. */
static int
build(const char *type, const char *file, const char *content, int flags, str_t *err)
{
    char    name[200];

    snprintf(name, sizeof(name), "%s:%s", type, write_source(file, content, strlen(content)));
    return dict_build(name, flags, err);
}

static dict_t *
open_table(const char *type, const char *file, int flags)
{
    char    name[200];
    str_t  *err = str_new(0);
    dict_t *d;

    snprintf(name, sizeof(name), "%s:%s/%s", type, dir(), file);
    d = dict_open(name, flags, err);
    if (d == NULL)
        fprintf(stderr, "  open %s: %s\n", name, str_cstr(err));
    str_free(err);
    return d;
}

/* Expect key -> want (NULL: not found). */
static void
expect(dict_t *d, const char *key, const char *want)
{
    str_t  *value = str_new(0);
    int     rc;

    if (d == NULL) {
        CHECK(false);
        str_free(value);
        return;
    }
    rc = dict_lookup(d, key, value);
    if (want == NULL ? rc != DICT_NOTFOUND : rc != DICT_FOUND || strcmp(str_cstr(value), want) != 0) {
        fprintf(stderr, "  %s:%s key \"%s\": got %d \"%s\" (%s), expected %s\n", d->type, d->name, key, rc,
                str_cstr(value), dict_error(d), want ? want : "not found");
        CHECK(false);
    }
    str_free(value);
}

TEST(build_and_lookup_postmap_syntax)
{
    str_t  *err = str_new(0);
    dict_t *d;

    CHECK_INTEQ(build("hash", "access",
                      "# comment\nUser@Example.COM OK\nspam@example.net  REJECT go  away\n"
                      "long first\n  second\nexample.org OK\nexample.org DUPLICATE\nnovalue\n", 0, err), 0);
    CHECK_STREQ(str_cstr(err), "");
    d = open_table("hash", "access", 0);
    expect(d, "user@example.com", "OK");
    expect(d, "USER@EXAMPLE.COM", "OK");
    expect(d, "spam@example.net", "REJECT go  away");
    expect(d, "long", "first second");
    expect(d, "example.org", "OK");                 /* the first value is kept */
    expect(d, "novalue", NULL);                     /* skipped with a warning */
    expect(d, "nothere", NULL);
    expect(d, "", NULL);
    if (d)
        CHECK_STREQ(d->type, "hash");
    dict_close(d);
    /* The same file under its other names. */
    d = open_table("lmdb", "access", 0);
    expect(d, "user@example.com", "OK");
    dict_close(d);
    d = open_table("btree", "access", 0);
    expect(d, "user@example.com", "OK");
    dict_close(d);
    str_free(err);
}

TEST(build_flags_no_fold_and_replace)
{
    str_t  *err = str_new(0);
    dict_t *d;

    CHECK_INTEQ(build("lmdb", "cased", "Key Upper\nkey lower\n", DICT_BUILD_NO_FOLD, err), 0);
    d = open_table("lmdb", "cased", DICT_FLAG_NO_FOLD);
    expect(d, "Key", "Upper");
    expect(d, "key", "lower");
    expect(d, "KEY", NULL);
    dict_close(d);
    CHECK_INTEQ(build("lmdb", "repl", "a 1\nA 2\n", DICT_BUILD_REPLACE, err), 0);
    d = open_table("lmdb", "repl", 0);
    expect(d, "a", "2");
    dict_close(d);
    str_free(err);
}

TEST(build_aliases_syntax)
{
    str_t  *err = str_new(0);
    dict_t *d;

    CHECK_INTEQ(build("hash", "aliases",
                      "# aliases\nPostmaster: root\nroot:admin, \"|/bin/cat\"\n"
                      "team: a,\n  b,\n\tc\n\"with space\" : x\n\"quote\\\"d\": y\n"
                      "no colon here\n: empty\nnovalue:\n", DICT_BUILD_ALIASES, err), 0);
    CHECK_STREQ(str_cstr(err), "");
    d = open_table("hash", "aliases", 0);
    expect(d, "postmaster", "root");
    expect(d, "root", "admin, \"|/bin/cat\"");
    expect(d, "team", "a, b, c");
    expect(d, "with space", "x");
    expect(d, "quote\"d", "y");
    expect(d, "no colon here", NULL);
    expect(d, "novalue", NULL);
    expect(d, "@", NULL);
    dict_close(d);
    str_free(err);
}

TEST(build_errors)
{
    str_t  *err = str_new(0);
    char    name[200];

    CHECK_INTEQ(dict_build("texthash:/etc/passwd", 0, err), -1);
    CHECK(strstr(str_cstr(err), "texthash tables are not indexed") != NULL);
    CHECK_INTEQ(dict_build("regexp:/x", 0, err), -1);
    CHECK(strstr(str_cstr(err), "not indexed") != NULL);
    CHECK_INTEQ(dict_build("nosuch:/x", 0, err), -1);
    CHECK(strstr(str_cstr(err), "unsupported dictionary type: nosuch") != NULL);
    CHECK_INTEQ(dict_build("/no/type", 0, err), -1);
    CHECK(strstr(str_cstr(err), "need \"type:name\"") != NULL);
    CHECK_INTEQ(dict_build("hash:", 0, err), -1);
    snprintf(name, sizeof(name), "hash:%s/missing-source", dir());
    CHECK_INTEQ(dict_build(name, 0, err), -1);
    CHECK(strstr(str_cstr(err), "missing-source: No such file") != NULL);

    /* A bad source (NUL byte on line 2) fails, names file:line, keeps the old table. */
    CHECK_INTEQ(build("hash", "keep", "a old\n", 0, err), 0);
    write_source("keep", "a new\nb x\0y\n", 12);
    snprintf(name, sizeof(name), "hash:%s/keep", dir());
    CHECK_INTEQ(dict_build(name, 0, err), -1);
    CHECK(strstr(str_cstr(err), "keep, line 2") != NULL);
    dict_t *d = open_table("hash", "keep", 0);

    expect(d, "a", "old");
    dict_close(d);
    str_free(err);
}

TEST(missing_table_says_how_to_build_it)
{
    str_t  *err = str_new(0);
    char    name[200];

    snprintf(name, sizeof(name), "hash:%s/never-built", dir());
    CHECK(dict_open(name, 0, err) == NULL);
    CHECK(strstr(str_cstr(err), "never-built.lmdb") != NULL);
    CHECK(strstr(str_cstr(err), "postern map hash:") != NULL);
    CHECK(dict_open("lmdb:", 0, err) == NULL);
    CHECK(strstr(str_cstr(err), "need a file name") != NULL);
    /* Not an LMDB file. */
    write_source("garbage.lmdb", "this is not an lmdb file, not at all, no.........", 50);
    snprintf(name, sizeof(name), "lmdb:%s/garbage", dir());
    CHECK(dict_open(name, 0, err) == NULL);
    CHECK(strstr(str_cstr(err), "garbage.lmdb") != NULL);
    str_free(err);
}

TEST(rebuild_while_open_keeps_each_reader_consistent)
{
    str_t  *err = str_new(0);
    dict_t *old, *fresh;
    struct dirent *de;
    DIR    *dp;

    CHECK_INTEQ(build("hash", "live", "a 1\nb 1\n", 0, err), 0);
    old = open_table("hash", "live", 0);
    expect(old, "a", "1");
    for (int round = 2; round <= 4; round++) {
        char    text[64];
        char    want[8];

        snprintf(text, sizeof(text), "a %d\nc %d\n", round, round);
        snprintf(want, sizeof(want), "%d", round);
        CHECK_INTEQ(build("hash", "live", text, 0, err), 0);
        /* The old reader still sees the whole old table ... */
        expect(old, "a", "1");
        expect(old, "b", "1");
        expect(old, "c", NULL);
        /* ... and a new one the whole new table. */
        fresh = open_table("hash", "live", 0);
        expect(fresh, "a", want);
        expect(fresh, "b", NULL);
        expect(fresh, "c", want);
        dict_close(fresh);
    }
    dict_close(old);
    /* No temporary or lock files are left next to the table. */
    if ((dp = opendir(dir())) != NULL) {
        while ((de = readdir(dp)) != NULL) {
            if (strstr(de->d_name, "live") == NULL)
                continue;
            if (strcmp(de->d_name, "live") != 0 && strcmp(de->d_name, "live.lmdb") != 0) {
                fprintf(stderr, "  left over: %s\n", de->d_name);
                CHECK(false);
            }
        }
        closedir(dp);
    }
    str_free(err);
}

TEST(table_permissions_follow_the_source)
{
    str_t  *err = str_new(0);
    char    path[200];
    struct stat st;

    write_source("perm", "a b\n", 4);
    snprintf(path, sizeof(path), "%s/perm", dir());
    CHECK(chmod(path, 0640) == 0);
    snprintf(path, sizeof(path), "hash:%s/perm", dir());
    CHECK_INTEQ(dict_build(path, 0, err), 0);
    snprintf(path, sizeof(path), "%s/perm.lmdb", dir());
    CHECK(stat(path, &st) == 0);
    CHECK_INTEQ(st.st_mode & 07777, 0640);
    str_free(err);
}

TEST(large_table_grows_the_map)
{
    str_t  *src = str_new(0);
    str_t  *err = str_new(0);
    char    path[200];
    MDB_env *env;
    MDB_envinfo info = {0};
    dict_t *d;

    /*
     * Short entries take more room in LMDB than in the source, so the first
     * map (the source size rounded up to a power of two, 2 MiB here) is too
     * small and the build must grow it.
     */
    for (int i = 0; i < 200000; i++)
        str_append_printf(src, "%05x v\n", i);
    CHECK_INTEQ(str_len(src), 1600000);
    CHECK_INTEQ(build("hash", "big", str_cstr(src), 0, err), 0);
    CHECK_STREQ(str_cstr(err), "");
    d = open_table("hash", "big", 0);
    expect(d, "00000", "v");
    expect(d, "30d3f", "v");
    expect(d, "30d40", NULL);
    dict_close(d);
    snprintf(path, sizeof(path), "%s/big.lmdb", dir());
    CHECK(mdb_env_create(&env) == 0);
    CHECK(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOLOCK | MDB_RDONLY, 0644) == 0);
    CHECK(mdb_env_info(env, &info) == 0);
    CHECK(info.me_mapsize > 2 * 1024 * 1024);
    mdb_env_close(env);
    str_free(src);
    str_free(err);
}

TEST(long_keys_are_not_found_not_errors)
{
    str_t  *err = str_new(0);
    str_t  *key = str_new(0);
    str_t  *src = str_new(0);
    dict_t *d;

    for (int i = 0; i < 600; i++)
        str_putc(key, 'k');
    str_printf(src, "short v\n%s toolong\n", str_cstr(key));
    CHECK_INTEQ(build("hash", "longkey", str_cstr(src), 0, err), 0);   /* a warning, not an error */
    d = open_table("hash", "longkey", 0);
    expect(d, "short", "v");
    expect(d, str_cstr(key), NULL);
    dict_close(d);
    str_free(err);
    str_free(key);
    str_free(src);
}

static int
collect(const char *key, const char *value, void *ctx)
{
    str_append_printf(ctx, "[%s=%s]", key, value);
    return 0;
}

TEST(writable_open_update_remove_sequence)
{
    str_t  *err = str_new(0);
    str_t  *seen = str_new(0);
    dict_t *d = open_table("lmdb", "cache", DICT_FLAG_WRITABLE | DICT_FLAG_CREATE);

    CHECK(d != NULL);
    if (d == NULL)
        goto out;
    CHECK(d->update != NULL && d->remove != NULL);
    CHECK_INTEQ(d->update(d, "a", "1", err), 0);
    CHECK_INTEQ(d->update(d, "b", "2", err), 0);
    CHECK_INTEQ(d->update(d, "a", "3", err), 0);
    expect(d, "a", "3");
    CHECK_INTEQ(d->remove(d, "b", err), 0);
    CHECK_INTEQ(d->remove(d, "b", err), 1);
    expect(d, "b", NULL);
    CHECK_INTEQ(d->update(d, "", "x", err), -1);
    CHECK_INTEQ(d->sequence(d, collect, seen, err), 0);
    CHECK_STREQ(str_cstr(seen), "[a=3]");
    dict_close(d);
    /* Reopened read-only, the data is there; CREATE empties it. */
    d = open_table("lmdb", "cache", 0);
    expect(d, "a", "3");
    CHECK(d != NULL && d->update == NULL);
    dict_close(d);
    d = open_table("lmdb", "cache", DICT_FLAG_WRITABLE | DICT_FLAG_CREATE);
    expect(d, "a", NULL);
    dict_close(d);
out:
    str_free(err);
    str_free(seen);
}

/* A table written the Postfix way: keys and values with their NUL. */
TEST(postfix_style_nul_terminated_entries)
{
    char    path[200];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k, v;
    dict_t *d;

    snprintf(path, sizeof(path), "%s/pf.lmdb", dir());
    CHECK(mdb_env_create(&env) == 0);
    CHECK(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOLOCK, 0644) == 0);
    CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, NULL, 0, &dbi) == 0);
    k = (MDB_val) {.mv_size = 4, .mv_data = "key"};
    v = (MDB_val) {.mv_size = 6, .mv_data = "value"};
    CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
    k = (MDB_val) {.mv_size = 3, .mv_data = "bad"};
    v = (MDB_val) {.mv_size = 3, .mv_data = "a\0b"};
    CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);

    d = open_table("lmdb", "pf", 0);
    expect(d, "key", "value");
    if (d != NULL) {
        str_t  *value = str_new(0);

        CHECK_INTEQ(dict_lookup(d, "bad", value), DICT_ERROR);
        CHECK(strstr(dict_error(d), "NUL") != NULL);
        str_free(value);
    }
    dict_close(d);
}

TEST(zz_cleanup)
{
    DIR    *dp = opendir(dir());
    struct dirent *de;
    char    path[400];

    CHECK(dp != NULL);
    while (dp != NULL && (de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir(), de->d_name);
        CHECK(unlink(path) == 0);
    }
    if (dp != NULL)
        closedir(dp);
    CHECK(rmdir(dir()) == 0);
}
