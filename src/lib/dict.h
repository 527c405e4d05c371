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
 * cidr, lmdb (also named hash and btree), regexp, pcre, unix
 * (docs/tables.md describes them for users). The interface already has
 * what lmdb (update, remove, sequence, locking), pcre/regexp (pattern tables
 * that do not fold keys), pgsql/sqlite (may fail transiently) and proxy (a
 * client of proxymap) need.
 *
 * Keys are folded to lower case (ASCII only) before lookup unless the table
 * type says it does its own matching (DICT_FLAG_PATTERN) or the caller asks
 * for DICT_FLAG_NO_FOLD. Tables that hold keys fold them the same way when they
 * are loaded. Tables opened once are reused: never re-open a table per
 * message.
 *
 * Keys are C strings of at most DICT_KEY_MAX bytes. A longer key is answered
 * DICT_NOTFOUND without asking the table, and so is a key given as a str_t
 * (dict_lookup_str) that contains a NUL byte: no table can hold such a key,
 * and truncating it at the NUL could make it match a different entry.
 *
 * Problems found while loading a table that do not stop it (a duplicate key,
 * an empty value) are kept in d->warnings and logged once by dict_open() with
 * log_warn(), as Postfix does; "postern check" can also read them. At most
 * DICT_WARN_MAX are kept per table, then one that says the rest were dropped,
 * so a broken file cannot flood the log.
 *
 * Changes from the first draft of this header: d->flags includes the type's
 * flags; struct dict has a warnings list; DICT_KEY_MAX, DICT_LINE_MAX,
 * DICT_WARN_MAX, dict_lookup_str(), dict_warn(), dict_fold(), dict_quote(),
 * the dict_reader_* helpers for file-based types and the built-in types'
 * open functions were added.
 */
#ifndef POSTERN_DICT_H
#define POSTERN_DICT_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
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

#define DICT_KEY_MAX        4096        /* longest key, in bytes, without the NUL */
#define DICT_LINE_MAX       (1024 * 1024)   /* longest line in a table source file */
#define DICT_WARN_MAX       100         /* warnings kept per table */

typedef struct dict dict_t;

struct dict {
    const char *type;           /* "texthash" (static storage) */
    char   *name;               /* "/etc/postern/access" */
    int     flags;              /* the caller's flags plus the type's */
    /*
     * Required. key is already checked and folded; value is reset by the
     * caller and must be left empty unless DICT_FOUND; on DICT_ERROR set err.
     */
    int     (*lookup)(dict_t *d, const char *key, str_t *value, str_t *err);
    /* Optional (NULL when the type is read-only). */
    int     (*update)(dict_t *d, const char *key, const char *value, str_t *err);
    int     (*remove)(dict_t *d, const char *key, str_t *err);
    /* Optional: visit every entry; stop when fn returns non-zero. */
    int     (*sequence)(dict_t *d, int (*fn)(const char *key, const char *value, void *ctx),
                        void *ctx, str_t *err);
    void    (*close)(dict_t *d);  /* frees d and everything it owns */
    str_t   error;              /* last error text, owned */
    diag_list_t warnings;       /* problems found at open that did not stop it */
};

struct dict_type {
    const char *type;
    int     type_flags;         /* DICT_FLAG_PATTERN etc. */
    /*
     * Returns NULL with err set when the table cannot be opened or parsed.
     * flags already include type_flags.
     */
    dict_t *(*open)(const char *name, int flags, str_t *err);
};

/*
 * Open "type:name" (split at the first ':'). Returns NULL with err set:
 * "unsupported dictionary type: foo" for an unknown type, "need \"type:name\""
 * when there is no type, or the type's own message when the table cannot be
 * loaded. DICT_FLAG_WRITABLE on a read-only type fails too. err must not be
 * NULL; its old content is discarded (it is empty after a success).
 */
dict_t *dict_open(const char *type_and_name, int flags, str_t *err);
/*
 * Look up key (a C string); value is reset and set only on DICT_FOUND. On
 * DICT_ERROR, dict_error(d) tells why. Keys longer than DICT_KEY_MAX are
 * DICT_NOTFOUND.
 */
int     dict_lookup(dict_t *d, const char *key, str_t *value);
/* The same for a key that may come from a peer: one with a NUL byte is DICT_NOTFOUND. */
int     dict_lookup_str(dict_t *d, const str_t *key, str_t *value);
/* Why the last lookup returned DICT_ERROR ("" after any other result). */
const char *dict_error(const dict_t *d);
void    dict_close(dict_t *d);          /* NULL is fine */
bool    dict_type_known(const char *type);

/* Helpers for table types. */

/*
 * Allocate the common part of a dict (size >= sizeof(dict_t), zero-filled):
 * type must be a static string; name is copied. The type fills in lookup,
 * close and the optional functions.
 */
dict_t *dict_alloc(size_t size, const char *type, const char *name, int flags);
void    dict_free_common(dict_t *d);    /* frees name, error and warnings, then d */
/*
 * Record a warning: "NAME, line N: text" when line > 0, else "TYPE table:
 * text". After DICT_WARN_MAX of them, one more says that the rest were
 * dropped, and later ones are not kept.
 */
void    dict_warn(dict_t *d, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Fold a key in place the way dict_lookup() does: ASCII A-Z to a-z, nothing
 * else (whatever the locale). Types that store keys use it at load time.
 */
void    dict_fold(char *key);
/*
 * Append len bytes of text to out for a message: in double quotes, control
 * bytes, quotes and backslashes escaped as \xNN, cut after 80 bytes ("...").
 */
void    dict_quote(str_t *out, const char *text, size_t len);

/*
 * Read a table source file as logical lines, the postmap way:
 *   - blank lines and lines whose first non-blank character is '#' are
 *     skipped ('#' elsewhere is data);
 *   - a line that starts with white space continues the previous logical
 *     line (joined with one space); with no previous line it is skipped
 *     with a warning;
 *   - trailing CR/LF and white space are removed, leading white space of a
 *     continuation too.
 * A physical or logical line longer than DICT_LINE_MAX bytes, a NUL byte or
 * a read error is an error. The file is read line by line, never whole.
 */
typedef struct dict_reader dict_reader_t;

/* Open path for d (warnings go to d). NULL with err "open PATH: reason". */
dict_reader_t *dict_reader_open(dict_t *d, const char *path, str_t *err);
/*
 * The next logical line into line, *lineno its first physical line number.
 * Returns 1, 0 at the end of the file, or -1 with err "PATH, line N: reason"
 * (or "read PATH: reason").
 */
int     dict_reader_next(dict_reader_t *r, str_t *line, int *lineno, str_t *err);
void    dict_reader_close(dict_reader_t *r);    /* NULL is fine */

/*
 * Build an indexed table from its source file, like postmap/postalias:
 * "hash:/etc/aliases" (also "btree:" and "lmdb:", the same type) reads
 * /etc/aliases and writes /etc/aliases.lmdb. The new file is written under
 * a temporary name, synced and renamed over the old one, so a process that
 * has the table open keeps reading the old contents and one that opens it
 * later reads the new ones; nobody ever sees a half-built table.
 *
 * Source syntax: "key<white space>value" per logical line (see
 * dict_reader_next), or with DICT_BUILD_ALIASES the aliases(5) syntax
 * "name: value, value" (the key is the name without the colon; it may be
 * written in double quotes). Keys are folded to lower case unless
 * DICT_BUILD_NO_FOLD. A duplicate key keeps its first value (the last one,
 * without a warning, with DICT_BUILD_REPLACE); duplicates and lines
 * that cannot be used are logged with log_warn as "FILE, line N: ...", and
 * do not stop the build.
 *
 * Returns 0, or -1 with err set (naming the file, and the line when there is
 * one); the old table is then left as it was. Types that are not indexed
 * (texthash, cidr, regexp, pcre, ...) cannot be built: -1 with err saying so.
 */
#define DICT_BUILD_ALIASES  (1 << 0)    /* aliases(5) source syntax */
#define DICT_BUILD_NO_FOLD  (1 << 1)    /* keep the keys' case (postern map -f) */
#define DICT_BUILD_REPLACE  (1 << 2)    /* a duplicate key replaces, silently (map -r) */

#define DICT_LMDB_SUFFIX    ".lmdb"     /* hash:/etc/aliases -> /etc/aliases.lmdb */

int     dict_build(const char *type_and_name, int build_flags, str_t *err);

/* The built-in types, for dict.c's registry. */
dict_t *dict_inline_open(const char *name, int flags, str_t *err);
dict_t *dict_static_open(const char *name, int flags, str_t *err);
dict_t *dict_texthash_open(const char *name, int flags, str_t *err);
dict_t *dict_cidr_open(const char *name, int flags, str_t *err);
dict_t *dict_lmdb_open(const char *name, int flags, str_t *err);
dict_t *dict_hash_open(const char *name, int flags, str_t *err);    /* lmdb, named hash */
dict_t *dict_btree_open(const char *name, int flags, str_t *err);   /* lmdb, named btree */
dict_t *dict_regexp_open(const char *name, int flags, str_t *err);
dict_t *dict_pcre_open(const char *name, int flags, str_t *err);
dict_t *dict_unix_open(const char *name, int flags, str_t *err);

#endif
