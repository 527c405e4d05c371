/*
 * dict_texthash.c - "texthash:/path/file": a postmap source file read into
 * memory at open.
 *
 * The file holds one "key<white space>value" entry per logical line (see
 * dict_reader_next() in dict.h for comments, blank lines and continuation
 * lines). The value is the rest of the line, with surrounding white space
 * removed; it may contain white space. Keys are folded to lower case unless
 * DICT_FLAG_NO_FOLD.
 *
 * Not errors, but warnings (kept in d->warnings, logged by dict_open): a key
 * with no value (the value is ""), a key seen again (the first value is
 * kept), a key longer than DICT_KEY_MAX (it can never be looked up).
 * Errors that make the open fail: the file cannot be opened or read, a line
 * is too long or holds a NUL byte. err names the file (and line).
 *
 * The table is an htable of key -> struct texthash_value, owned by the dict.
 * The file is re-read only when the table is opened again.
 */
#include <ctype.h>
#include <string.h>

#include "dict.h"
#include "htable.h"
#include "mem.h"

struct dict_texthash {
    dict_t  dict;
    htable_t *table;            /* key -> struct texthash_value *, owned */
};

struct texthash_value {
    int     line;               /* where the entry was defined */
    char    text[];
};

static int
texthash_lookup(dict_t *d, const char *key, str_t *value, str_t *err)
{
    struct dict_texthash *th = (struct dict_texthash *) d;
    struct texthash_value *v = htable_find(th->table, key);

    if (v == NULL)
        return DICT_NOTFOUND;
    str_set_cstr(value, v->text);
    return DICT_FOUND;
}

static int
texthash_sequence(dict_t *d, int (*fn)(const char *key, const char *value, void *ctx),
                  void *ctx, str_t *err)
{
    struct dict_texthash *th = (struct dict_texthash *) d;
    htable_iter_t it;
    const char *key;
    void   *value;

    htable_iter_init(&it, th->table);
    while (htable_iter_next(&it, &key, &value)) {
        int     rc = fn(key, ((struct texthash_value *) value)->text, ctx);

        if (rc != 0)
            return rc;
    }
    return 0;
}

static void
texthash_close(dict_t *d)
{
    struct dict_texthash *th = (struct dict_texthash *) d;

    htable_free(th->table, mem_free);
    dict_free_common(d);
}

/*
 * Split one logical line (already trimmed at both ends, not empty, not
 * starting with white space) into key and value and add it. The line is
 * modified in place (the key is cut and folded). The common case costs one
 * hash and one allocation; warnings are formatted only when needed.
 */
static void
texthash_add(struct dict_texthash *th, str_t *line, int lineno)
{
    char   *key = line->data;
    size_t  klen = 0;
    const char *value;
    struct texthash_value *v;
    size_t  vlen;

    while (klen < line->len && !isspace((unsigned char) key[klen]))
        klen++;
    value = key + klen;
    while (*value && isspace((unsigned char) *value))
        value++;
    key[klen] = 0;
    if (!(th->dict.flags & DICT_FLAG_NO_FOLD))
        dict_fold(key);
    vlen = strlen(value);
    v = mem_alloc(sizeof(*v) + vlen + 1);
    v->line = lineno;
    memcpy(v->text, value, vlen + 1);

    bool    added = htable_insert(th->table, key, v);

    if (added && vlen > 0 && klen <= DICT_KEY_MAX)
        return;

    str_t  *q = str_new(0);

    dict_quote(q, key, klen);
    if (!added) {
        const struct texthash_value *first = htable_find(th->table, key);

        dict_warn(&th->dict, lineno, "duplicate key %s ignored (first defined on line %d)",
                  str_cstr(q), first->line);
        mem_free(v);
    } else {
        if (vlen == 0)
            dict_warn(&th->dict, lineno, "no value for key %s; using an empty value", str_cstr(q));
        if (klen > DICT_KEY_MAX)
            dict_warn(&th->dict, lineno, "key %s is longer than %d bytes and can never match",
                      str_cstr(q), DICT_KEY_MAX);
    }
    str_free(q);
}

/*
 * Open: read the file line by line into a new table. On failure nothing is
 * kept and err says why, naming the file.
 */
dict_t *
dict_texthash_open(const char *name, int flags, str_t *err)
{
    struct dict_texthash *th;
    dict_reader_t *r;
    str_t   line;
    int     lineno = 0;
    int     rc;

    th = (struct dict_texthash *) dict_alloc(sizeof(*th), "texthash", name, flags);
    th->table = htable_new(0);
    th->dict.lookup = texthash_lookup;
    th->dict.sequence = texthash_sequence;
    th->dict.close = texthash_close;
    if ((r = dict_reader_open(&th->dict, name, err)) == NULL) {
        texthash_close(&th->dict);
        return NULL;
    }
    str_init(&line);
    while ((rc = dict_reader_next(r, &line, &lineno, err)) > 0)
        texthash_add(th, &line, lineno);
    str_release(&line);
    dict_reader_close(r);
    if (rc < 0) {
        texthash_close(&th->dict);
        return NULL;
    }
    return &th->dict;
}
