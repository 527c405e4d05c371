/*
 * dict.h - lookup tables named "type:name", behind one interface.
 *
 * dict_open("texthash:/etc/postern/access", flags, err) returns a table of
 * that type; dict_lookup() answers DICT_FOUND with the value, DICT_NOTFOUND,
 * or DICT_ERROR (the table could not answer: callers must treat this as a
 * temporary failure, never as "not found").
 *
 * Each type lives in its own file, dict_<type>.c, and is listed in dict.c's
 * registry with its open function. Types today: inline, static, texthash,
 * cidr. The interface already has what lmdb (update, remove, sequence,
 * locking), pcre/regexp (pattern tables that do not fold keys), pgsql/sqlite
 * (may fail transiently) and proxy (a client of proxymap) need.
 *
 * Keys are folded to lower case before lookup unless the table type says it
 * does its own matching (DICT_FLAG_PATTERN) or the caller asks for
 * DICT_FLAG_NO_FOLD. Tables opened once are reused: never re-open a table per
 * message.
 */
#ifndef POSTERN_DICT_H
#define POSTERN_DICT_H

#include <stdbool.h>

#include "str.h"

enum dict_result {
    DICT_FOUND = 0,
    DICT_NOTFOUND = 1,
    DICT_ERROR = -1,
};

#define DICT_FLAG_NO_FOLD   (1 << 0)    /* caller: do not fold the key */
#define DICT_FLAG_PATTERN   (1 << 1)    /* type: keys are matched, not folded (regexp, cidr) */
#define DICT_FLAG_WRITABLE  (1 << 2)    /* caller: open for update (lmdb) */
#define DICT_FLAG_CREATE    (1 << 3)    /* caller: create/truncate (postern map) */

typedef struct dict dict_t;

struct dict {
    const char *type;           /* "texthash" */
    char   *name;               /* "/etc/postern/access" */
    int     flags;
    /* Required. value is reset by the caller; on DICT_ERROR set err. */
    int     (*lookup)(dict_t *d, const char *key, str_t *value, str_t *err);
    /* Optional (NULL when the type is read-only). */
    int     (*update)(dict_t *d, const char *key, const char *value, str_t *err);
    int     (*remove)(dict_t *d, const char *key, str_t *err);
    /* Optional: visit every entry; stop when fn returns non-zero. */
    int     (*sequence)(dict_t *d, int (*fn)(const char *key, const char *value, void *ctx),
                        void *ctx, str_t *err);
    void    (*close)(dict_t *d);  /* frees d and everything it owns */
    str_t   error;              /* last error text, owned */
};

struct dict_type {
    const char *type;
    int     type_flags;         /* DICT_FLAG_PATTERN etc. */
    /* Returns NULL with err set when the table cannot be opened or parsed. */
    dict_t *(*open)(const char *name, int flags, str_t *err);
};

/* Open "type:name". NULL with err set on an unknown type or a bad table. */
dict_t *dict_open(const char *type_and_name, int flags, str_t *err);
/* Look up key; value is reset. On DICT_ERROR, dict_error(d) tells why. */
int     dict_lookup(dict_t *d, const char *key, str_t *value);
const char *dict_error(const dict_t *d);
void    dict_close(dict_t *d);
bool    dict_type_known(const char *type);
/* Helper for table types: allocate the common part of a dict (size >= sizeof(dict_t)). */
dict_t *dict_alloc(size_t size, const char *type, const char *name, int flags);
void    dict_free_common(dict_t *d);    /* frees name and error, then d */

#endif
