/*
 * dict_lmdb.c - "lmdb:/path/name" (also "hash:" and "btree:"): an indexed
 * table in the LMDB file /path/name.lmdb, and dict_build(), which makes such
 * a file from a postmap or aliases source file (postern map, newaliases).
 *
 * Keys and values are stored as bytes without a trailing NUL; keys folded
 * to lower case unless the table was built with DICT_BUILD_NO_FOLD (lookups
 * fold too unless opened with DICT_FLAG_NO_FOLD). A key stored with a
 * trailing NUL, as Postfix writes them, is found as well, and a value's
 * trailing NUL is dropped. A value holding any other NUL byte is refused at
 * lookup (DICT_ERROR). LMDB cannot hold keys longer than its maximum key
 * size (511 bytes in the default build) or empty keys: those are never found.
 *
 * Concurrency. A table file is never changed in place by dict_build: it
 * writes a new file next to it ("NAME.lmdb.PID.tmp"), syncs it and renames
 * it over NAME.lmdb, then syncs the directory. A reader keeps the file it
 * opened (its mapping survives the rename), so it sees the whole old table
 * until it opens the table again, and a new reader sees the whole new one.
 * Because every file is written once, by one process, before it has its
 * final name, readers open it with MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK:
 * no lock file is involved. That matters: LMDB's lock file NAME.lmdb-lock
 * stays with the path while the data file is replaced under it, and a reader
 * using it would pick the meta page by the transaction number of another
 * file (the old one) and could see an empty or half-valid table. It also lets
 * unprivileged daemons read a table in a directory they cannot write.
 * One read transaction is opened with the table and kept: the file it reads
 * can no longer change.
 *
 * Tables opened with DICT_FLAG_WRITABLE (caches owned by a daemon, updated in
 * place) are the exception: they use LMDB's lock file and a transaction per
 * operation, and must only be used through writable opens, never rebuilt by
 * dict_build while open. DICT_FLAG_CREATE creates the file or empties it.
 *
 * A missing file fails the open with the path and how to build it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dict.h"
#include "log.h"
#include "mem.h"

#define LMDB_MAP_MIN        (1024 * 1024)       /* initial map for building / writing */
#define LMDB_MAP_MAX        ((size_t) 1 << (sizeof(size_t) > 4 ? 40 : 30))
#define LMDB_FILE_MODE      0644

struct dict_lmdb {
    dict_t  dict;
    char   *path;               /* NAME.lmdb */
    MDB_env *env;
    MDB_txn *rtxn;              /* read-only opens: kept for the table's life */
    MDB_dbi dbi;
    size_t  maxkey;             /* longest key LMDB accepts */
    size_t  mapsize;            /* writable opens */
};

/* "NAME.lmdb" for a table name. */
static char *
lmdb_path(const char *name)
{
    str_t  *p = str_new(strlen(name) + sizeof(DICT_LMDB_SUFFIX));

    str_append_cstr(p, name);
    str_append_cstr(p, DICT_LMDB_SUFFIX);
    return str_steal(p);
}

/* Start a transaction of a writable table, following a map another process grew. */
static int
lmdb_begin(struct dict_lmdb *dl, unsigned flags, MDB_txn **txn)
{
    int     rc = mdb_txn_begin(dl->env, NULL, flags, txn);

    if (rc == MDB_MAP_RESIZED) {
        if ((rc = mdb_env_set_mapsize(dl->env, 0)) == 0)
            rc = mdb_txn_begin(dl->env, NULL, flags, txn);
    }
    return rc;
}

/* Copy an LMDB value into out, without a trailing NUL; -1 if it holds another NUL. */
static int
lmdb_copy(str_t *out, const MDB_val *v)
{
    size_t  len = v->mv_size;

    if (len > 0 && ((const char *) v->mv_data)[len - 1] == 0)
        len--;
    if (memchr(v->mv_data, 0, len) != NULL)
        return -1;
    str_set(out, v->mv_data, len);
    return 0;
}

static int
lmdb_lookup(dict_t *d, const char *key, str_t *value, str_t *err)
{
    struct dict_lmdb *dl = (struct dict_lmdb *) d;
    size_t  len = strlen(key);
    MDB_txn *txn = dl->rtxn;
    MDB_val k, v;
    int     rc;

    if (len == 0 || len > dl->maxkey)
        return DICT_NOTFOUND;
    if (txn == NULL && (rc = lmdb_begin(dl, MDB_RDONLY, &txn)) != 0) {
        str_printf(err, "%s: %s", dl->path, mdb_strerror(rc));
        return DICT_ERROR;
    }
    k.mv_data = (void *) key;
    k.mv_size = len;
    rc = mdb_get(txn, dl->dbi, &k, &v);
    if (rc == MDB_NOTFOUND && len + 1 <= dl->maxkey) {
        k.mv_size = len + 1;            /* the Postfix way: key with its NUL */
        rc = mdb_get(txn, dl->dbi, &k, &v);
    }
    if (rc == 0 && lmdb_copy(value, &v) < 0) {
        str_reset(value);
        str_printf(err, "%s: the value of \"%.100s\" contains a NUL byte", dl->path, key);
        rc = -1;
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        str_printf(err, "%s: lookup: %s", dl->path, mdb_strerror(rc));
    }
    if (txn != dl->rtxn)
        mdb_txn_abort(txn);
    return rc == 0 ? DICT_FOUND : rc == MDB_NOTFOUND ? DICT_NOTFOUND : DICT_ERROR;
}

/*
 * Run one write operation (put when value != NULL, else delete) in its own
 * transaction, growing the map when it is full. Returns 0, 1 (delete: not
 * there), or -1 with err set.
 */
static int
lmdb_write(struct dict_lmdb *dl, const char *key, const char *value, str_t *err)
{
    size_t  len = strlen(key);

    if (len == 0 || len > dl->maxkey) {
        str_printf(err, "%s: key of %zu bytes cannot be stored (1 to %zu)", dl->path, len, dl->maxkey);
        return -1;
    }
    for (;;) {
        MDB_txn *txn;
        MDB_val k = {.mv_size = len, .mv_data = (void *) key};
        MDB_val v;
        int     rc;

        if ((rc = lmdb_begin(dl, 0, &txn)) != 0) {
            str_printf(err, "%s: %s", dl->path, mdb_strerror(rc));
            return -1;
        }
        if (value != NULL) {
            v.mv_size = strlen(value);
            v.mv_data = (void *) value;
            rc = mdb_put(txn, dl->dbi, &k, &v, 0);
        } else {
            rc = mdb_del(txn, dl->dbi, &k, NULL);
        }
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc == 0)
            return 0;
        if (rc == MDB_NOTFOUND && value == NULL)
            return 1;
        if (rc == MDB_MAP_FULL && dl->mapsize < LMDB_MAP_MAX) {
            dl->mapsize *= 2;
            if ((rc = mdb_env_set_mapsize(dl->env, dl->mapsize)) == 0)
                continue;
        }
        str_printf(err, "%s: %s: %s", dl->path, value ? "update" : "delete", mdb_strerror(rc));
        return -1;
    }
}

static int
lmdb_update(dict_t *d, const char *key, const char *value, str_t *err)
{
    return lmdb_write((struct dict_lmdb *) d, key, value, err);
}

static int
lmdb_remove(dict_t *d, const char *key, str_t *err)
{
    return lmdb_write((struct dict_lmdb *) d, key, NULL, err);
}

static int
lmdb_sequence(dict_t *d, int (*fn)(const char *key, const char *value, void *ctx), void *ctx, str_t *err)
{
    struct dict_lmdb *dl = (struct dict_lmdb *) d;
    MDB_txn *txn = dl->rtxn;
    MDB_cursor *cur;
    MDB_val k, v;
    str_t   ks, vs;
    int     rc, ret = 0;

    if (txn == NULL && (rc = lmdb_begin(dl, MDB_RDONLY, &txn)) != 0) {
        str_printf(err, "%s: %s", dl->path, mdb_strerror(rc));
        return -1;
    }
    if ((rc = mdb_cursor_open(txn, dl->dbi, &cur)) != 0) {
        str_printf(err, "%s: %s", dl->path, mdb_strerror(rc));
        if (txn != dl->rtxn)
            mdb_txn_abort(txn);
        return -1;
    }
    str_init(&ks);
    str_init(&vs);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (lmdb_copy(&ks, &k) < 0 || lmdb_copy(&vs, &v) < 0)
            continue;                   /* not text: cannot be handed on as a C string */
        if ((ret = fn(str_cstr(&ks), str_cstr(&vs), ctx)) != 0)
            break;
    }
    if (ret == 0 && rc != MDB_NOTFOUND) {
        str_printf(err, "%s: %s", dl->path, mdb_strerror(rc));
        ret = -1;
    }
    str_release(&ks);
    str_release(&vs);
    mdb_cursor_close(cur);
    if (txn != dl->rtxn)
        mdb_txn_abort(txn);
    return ret;
}

static void
lmdb_close(dict_t *d)
{
    struct dict_lmdb *dl = (struct dict_lmdb *) d;

    if (dl->rtxn != NULL)
        mdb_txn_abort(dl->rtxn);
    if (dl->env != NULL)
        mdb_env_close(dl->env);
    mem_free(dl->path);
    dict_free_common(d);
}

/* Warn when the source file is newer than the table built from it. */
static void
lmdb_check_age(struct dict_lmdb *dl)
{
    struct stat src, db;

    if (stat(dl->dict.name, &src) == 0 && stat(dl->path, &db) == 0 && src.st_mtime > db.st_mtime)
        dict_warn(&dl->dict, 0, "%s is older than its source %s: run \"postern map %s:%s\"", dl->path,
                  dl->dict.name, dl->dict.type, dl->dict.name);
}

/* Open (and with DICT_FLAG_WRITABLE create or update) NAME.lmdb. */
static dict_t *
lmdb_open_as(const char *type, const char *name, int flags, str_t *err)
{
    struct dict_lmdb *dl;
    bool    writable = (flags & DICT_FLAG_WRITABLE) != 0;
    unsigned envflags = MDB_NOSUBDIR | (writable ? 0 : MDB_RDONLY | MDB_NOLOCK);
    struct stat st = {0};
    MDB_txn *txn = NULL;
    int     rc;

    if (*name == 0) {
        str_printf(err, "%s table: need a file name", type);
        return NULL;
    }
    dl = (struct dict_lmdb *) dict_alloc(sizeof(*dl), type, name, flags);
    dl->path = lmdb_path(name);
    dl->dict.lookup = lmdb_lookup;
    dl->dict.sequence = lmdb_sequence;
    dl->dict.close = lmdb_close;
    if (stat(dl->path, &st) != 0 && !(errno == ENOENT && (flags & DICT_FLAG_CREATE))) {
        if (errno == ENOENT)
            str_printf(err, "open %s: %s (build it from %s with \"postern map %s:%s\")", dl->path,
                       strerror(errno), name, type, name);
        else
            str_printf(err, "open %s: %s", dl->path, strerror(errno));
        goto fail;
    }
    if ((rc = mdb_env_create(&dl->env)) != 0) {
        str_printf(err, "open %s: %s", dl->path, mdb_strerror(rc));
        goto fail;
    }
    if (writable) {
        dl->mapsize = LMDB_MAP_MIN;
        while (dl->mapsize < LMDB_MAP_MAX && (off_t) dl->mapsize < st.st_size * 2)
            dl->mapsize *= 2;
        if ((rc = mdb_env_set_mapsize(dl->env, dl->mapsize)) != 0) {
            str_printf(err, "open %s: %s", dl->path, mdb_strerror(rc));
            goto fail;
        }
    }
    rc = mdb_env_open(dl->env, dl->path, envflags | MDB_NORDAHEAD, LMDB_FILE_MODE);
    if (rc != 0) {
        str_printf(err, "open %s: %s", dl->path, mdb_strerror(rc));
        goto fail;
    }
    dl->maxkey = (size_t) mdb_env_get_maxkeysize(dl->env);
    if ((rc = mdb_txn_begin(dl->env, NULL, writable ? 0 : MDB_RDONLY, &txn)) != 0
        || (rc = mdb_dbi_open(txn, NULL, 0, &dl->dbi)) != 0
        || (writable && (flags & DICT_FLAG_CREATE) && (rc = mdb_drop(txn, dl->dbi, 0)) != 0)) {
        if (txn != NULL)
            mdb_txn_abort(txn);
        str_printf(err, "open %s: %s", dl->path, mdb_strerror(rc));
        goto fail;
    }
    if (writable) {
        if ((rc = mdb_txn_commit(txn)) != 0) {
            str_printf(err, "open %s: %s", dl->path, mdb_strerror(rc));
            goto fail;
        }
        dl->dict.update = lmdb_update;
        dl->dict.remove = lmdb_remove;
    } else {
        dl->rtxn = txn;
        lmdb_check_age(dl);
    }
    return &dl->dict;

fail:
    lmdb_close(&dl->dict);
    return NULL;
}

dict_t *
dict_lmdb_open(const char *name, int flags, str_t *err)
{
    return lmdb_open_as("lmdb", name, flags, err);
}

dict_t *
dict_hash_open(const char *name, int flags, str_t *err)
{
    return lmdb_open_as("hash", name, flags, err);
}

dict_t *
dict_btree_open(const char *name, int flags, str_t *err)
{
    return lmdb_open_as("btree", name, flags, err);
}

/* Building: dict_build(). */

struct lmdb_builder {
    dict_t *src;                /* source file as a dict, for the reader's warnings */
    const char *type;
    int     build_flags;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    size_t  maxkey;
    size_t  entries;
};

/*
 * Split an aliases(5) line "name: value" (or "\"quoted name\": value") into
 * key and value, in place. Returns 0, or -1 with why set.
 */
static int
build_split_alias(char *line, char **key, char **value, str_t *why)
{
    char   *p = line;
    char   *end;

    if (*p == '"') {
        char   *out = ++p;

        *key = out;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1] != 0)
                p++;
            *out++ = *p++;
        }
        if (*p != '"') {
            str_set_cstr(why, "missing closing '\"' in the name");
            return -1;
        }
        *out = 0;
        p++;
        while (isspace((unsigned char) *p))
            p++;
        if (*p != ':') {
            str_set_cstr(why, "need \"name: value\" (no ':' after the quoted name)");
            return -1;
        }
        p++;
    } else {
        char   *colon = strchr(p, ':');

        if (colon == NULL) {
            str_set_cstr(why, "need \"name: value\" (no ':')");
            return -1;
        }
        *key = p;
        end = colon;
        while (end > p && isspace((unsigned char) end[-1]))
            end--;
        *end = 0;
        p = colon + 1;
    }
    while (isspace((unsigned char) *p))
        p++;
    *value = p;
    return 0;
}

/* Split "key value" in place. */
static void
build_split_plain(char *line, char **key, char **value)
{
    char   *p = line;

    *key = p;
    while (*p && !isspace((unsigned char) *p))
        p++;
    if (*p) {
        *p++ = 0;
        while (isspace((unsigned char) *p))
            p++;
    }
    *value = p;
}

/*
 * Add one logical line. Returns 0 (added or skipped with a warning), 1 when
 * the map is full (the caller grows it and starts again) or -1 with err.
 */
static int
build_add(struct lmdb_builder *b, str_t *line, int lineno, const char *path, str_t *err)
{
    char   *key, *value;
    str_t  *why = str_new(0);
    MDB_val k, v;
    size_t  klen;
    int     rc;

    if (b->build_flags & DICT_BUILD_ALIASES) {
        if (build_split_alias(line->data, &key, &value, why) < 0) {
            dict_warn(b->src, lineno, "%s; line ignored", str_cstr(why));
            str_free(why);
            return 0;
        }
    } else {
        build_split_plain(line->data, &key, &value);
    }
    klen = strlen(key);
    if (!(b->build_flags & DICT_BUILD_NO_FOLD))
        dict_fold(key);
    str_reset(why);
    dict_quote(why, key, klen);
    if (klen == 0) {
        dict_warn(b->src, lineno, "empty name; line ignored");
    } else if (*value == 0) {
        dict_warn(b->src, lineno, "no value for %s (need \"%s\"); line ignored", str_cstr(why),
                  (b->build_flags & DICT_BUILD_ALIASES) ? "name: value" : "key whitespace value");
    } else if (klen > b->maxkey) {
        dict_warn(b->src, lineno, "key %s is longer than %zu bytes, which %s tables cannot hold; line ignored",
                  str_cstr(why), b->maxkey, b->type);
    } else {
        k.mv_size = klen;
        k.mv_data = key;
        v.mv_size = strlen(value);
        v.mv_data = value;
        rc = mdb_put(b->txn, b->dbi, &k, &v, (b->build_flags & DICT_BUILD_REPLACE) ? 0 : MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            dict_warn(b->src, lineno, "duplicate key %s ignored (the first value is kept)", str_cstr(why));
        } else if (rc == MDB_MAP_FULL) {
            str_free(why);
            return 1;
        } else if (rc != 0) {
            str_printf(err, "%s, line %d: %s", path, lineno, mdb_strerror(rc));
            str_free(why);
            return -1;
        } else {
            b->entries++;
        }
    }
    str_free(why);
    return 0;
}

/*
 * Write every entry of source into the LMDB file tmp (which exists, empty)
 * with the given map size. Returns 0, 1 when the map was too small (tmp is
 * then emptied again), or -1 with err set.
 */
static int
build_fill(struct lmdb_builder *b, const char *source, const char *tmp, size_t mapsize, str_t *err)
{
    dict_reader_t *r = NULL;
    str_t   line;
    int     lineno = 0;
    int     rc, ret = -1;

    b->env = NULL;
    b->txn = NULL;
    b->entries = 0;
    diag_free(&b->src->warnings);
    diag_init(&b->src->warnings);
    str_init(&line);
    if ((rc = mdb_env_create(&b->env)) != 0 || (rc = mdb_env_set_mapsize(b->env, mapsize)) != 0
        || (rc = mdb_env_open(b->env, tmp, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, LMDB_FILE_MODE)) != 0
        || (rc = mdb_txn_begin(b->env, NULL, 0, &b->txn)) != 0
        || (rc = mdb_dbi_open(b->txn, NULL, MDB_CREATE, &b->dbi)) != 0) {
        str_printf(err, "create %s: %s", tmp, mdb_strerror(rc));
        goto out;
    }
    b->maxkey = (size_t) mdb_env_get_maxkeysize(b->env);
    if ((r = dict_reader_open(b->src, source, err)) == NULL)
        goto out;
    while ((rc = dict_reader_next(r, &line, &lineno, err)) > 0)
        if ((rc = build_add(b, &line, lineno, source, err)) != 0)
            break;
    if (rc < 0)
        goto out;
    if (rc == 1) {
        ret = 1;
        goto out;
    }
    rc = mdb_txn_commit(b->txn);
    b->txn = NULL;
    if (rc == MDB_MAP_FULL) {
        ret = 1;
        goto out;
    }
    if (rc != 0 || (rc = mdb_env_sync(b->env, 1)) != 0) {
        str_printf(err, "write %s: %s", tmp, mdb_strerror(rc));
        goto out;
    }
    ret = 0;

out:
    dict_reader_close(r);
    str_release(&line);
    if (b->txn != NULL)
        mdb_txn_abort(b->txn);
    if (b->env != NULL)
        mdb_env_close(b->env);
    b->txn = NULL;
    b->env = NULL;
    if (ret == 1 && truncate(tmp, 0) != 0) {
        str_printf(err, "truncate %s: %s", tmp, strerror(errno));
        ret = -1;
    }
    return ret;
}

/* Sync the directory that holds path, so a rename in it is durable. */
static int
build_sync_dir(const char *path, str_t *err)
{
    const char *slash = strrchr(path, '/');
    char   *dir = slash == NULL ? mem_strdup(".") : slash == path ? mem_strdup("/")
        : mem_strndup(path, (size_t) (slash - path));
    int     fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int     ret = 0;

    if (fd < 0 || fsync(fd) != 0) {
        str_printf(err, "sync directory %s: %s", dir, strerror(errno));
        ret = -1;
    }
    if (fd >= 0 && close(fd) != 0 && ret == 0) {
        str_printf(err, "close directory %s: %s", dir, strerror(errno));
        ret = -1;
    }
    mem_free(dir);
    return ret;
}

/*
 * Create the temporary file next to out with the source's read permissions
 * (and, as root, its owner). Returns 0 or -1 with err.
 */
static int
build_create_tmp(const char *tmp, const struct stat *src, str_t *err)
{
    mode_t  mode = 0600 | (src->st_mode & 0044);
    int     fd;

    for (int tries = 0; tries < 2; tries++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd >= 0 || errno != EEXIST || unlink(tmp) != 0)
            break;                      /* EEXIST: left over by a build of ours that died */
    }
    if (fd < 0) {
        str_printf(err, "create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (fchmod(fd, mode) != 0 || (geteuid() == 0 && fchown(fd, src->st_uid, src->st_gid) != 0)) {
        str_printf(err, "set permissions of %s: %s", tmp, strerror(errno));
        (void) close(fd);               /* failing anyway; the file is removed */
        (void) unlink(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        str_printf(err, "close %s: %s", tmp, strerror(errno));
        return -1;
    }
    return 0;
}

static void
build_close_src(dict_t *d)
{
    dict_free_common(d);
}

int
dict_build(const char *type_and_name, int build_flags, str_t *err)
{
    const char *colon = strchr(type_and_name, ':');
    const char *name;
    struct lmdb_builder b = {0};
    struct stat st;
    char   *out = NULL;
    str_t  *tmp = NULL;
    size_t  mapsize = LMDB_MAP_MIN;
    int     rc = -1;
    size_t  tlen;

    str_reset(err);
    if (colon == NULL || colon == type_and_name) {
        str_printf(err, "bad table name \"%.64s\": need \"type:name\"", type_and_name);
        return -1;
    }
    tlen = (size_t) (colon - type_and_name);
    name = colon + 1;
    if (tlen == 4 && strncmp(type_and_name, "lmdb", 4) == 0)
        b.type = "lmdb";
    else if (tlen == 4 && strncmp(type_and_name, "hash", 4) == 0)
        b.type = "hash";
    else if (tlen == 5 && strncmp(type_and_name, "btree", 5) == 0)
        b.type = "btree";
    if (b.type == NULL) {
        char    type[65];

        snprintf(type, sizeof(type), "%.*s", (int) (tlen > 64 ? 64 : tlen), type_and_name);
        if (dict_type_known(type))
            str_printf(err, "%s tables are not indexed: there is nothing to build "
                       "(they are read from %s itself)", type, *name ? name : "their name");
        else
            str_printf(err, "unsupported dictionary type: %s", type);
        return -1;
    }
    if (*name == 0) {
        str_printf(err, "%s table: need a file name", b.type);
        return -1;
    }
    if (stat(name, &st) != 0) {
        str_printf(err, "open %s: %s", name, strerror(errno));
        return -1;
    }
    out = lmdb_path(name);
    tmp = str_new(0);
    str_printf(tmp, "%s.%ld.tmp", out, (long) getpid());
    b.src = dict_alloc(sizeof(dict_t), b.type, name, 0);
    b.src->close = build_close_src;
    b.build_flags = build_flags;
    if (build_create_tmp(str_cstr(tmp), &st, err) < 0)
        goto out;
    /* A first guess; build_fill says when it was too small, and the map doubles. */
    while (mapsize < LMDB_MAP_MAX && (off_t) mapsize < st.st_size)
        mapsize *= 2;
    while ((rc = build_fill(&b, name, str_cstr(tmp), mapsize, err)) == 1) {
        if (mapsize >= LMDB_MAP_MAX) {
            str_printf(err, "%s: table too large (more than %zu bytes)", name, mapsize);
            rc = -1;
            break;
        }
        mapsize *= 2;
    }
    if (rc == 0 && rename(str_cstr(tmp), out) != 0) {
        str_printf(err, "rename %s to %s: %s", str_cstr(tmp), out, strerror(errno));
        rc = -1;
    }
    if (rc == 0)
        rc = build_sync_dir(out, err);
    else if (unlink(str_cstr(tmp)) != 0 && errno != ENOENT)
        log_warn_errno("remove %s", str_cstr(tmp));
    if (rc == 0)
        diag_log(&b.src->warnings);

out:
    if (rc != 0 && str_len(err) == 0)
        str_printf(err, "%s: build failed", name);
    dict_close(b.src);
    str_free(tmp);
    mem_free(out);
    return rc;
}
