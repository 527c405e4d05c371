/*
 * dict_inline.c - "inline:{ key1=value1, key2=value2 }": a table written in
 * its own name, as in Postfix.
 *
 * Syntax of the name:
 *   - the whole text is enclosed in "{" and "}" (white space around them is
 *     ignored); "{}" is an empty table;
 *   - entries are separated by commas and/or white space;
 *   - an entry is key=value; white space around "=" is ignored; the value
 *     runs to the next comma or white space and may be empty ("a=");
 *   - an entry wrapped in braces, "{ key = value with, commas }", may hold
 *     white space and commas in its value (and balanced braces); the key
 *     and value are trimmed;
 *   - a brace inside an unwrapped entry, an entry without "=", an empty key
 *     or unbalanced braces make the open fail, with a message that quotes
 *     the entry.
 * Keys are folded to lower case at open unless DICT_FLAG_NO_FOLD. A repeated
 * key keeps its first value and records a warning.
 *
 * The entries live in an htable owned by the dict; values are C strings.
 */
#include <ctype.h>
#include <string.h>

#include "dict.h"
#include "htable.h"
#include "mem.h"

struct dict_inline {
    dict_t  dict;
    htable_t *table;            /* key -> char *value, both owned */
};

static bool
is_separator(char c)
{
    return c == ',' || isspace((unsigned char) c);
}

static int
inline_lookup(dict_t *d, const char *key, str_t *value, str_t *err)
{
    struct dict_inline *di = (struct dict_inline *) d;
    const char *v = htable_find(di->table, key);

    if (v == NULL)
        return DICT_NOTFOUND;
    str_set_cstr(value, v);
    return DICT_FOUND;
}

static int
inline_sequence(dict_t *d, int (*fn)(const char *key, const char *value, void *ctx),
                void *ctx, str_t *err)
{
    struct dict_inline *di = (struct dict_inline *) d;
    htable_iter_t it;
    const char *key;
    void   *value;

    htable_iter_init(&it, di->table);
    while (htable_iter_next(&it, &key, &value)) {
        int     rc = fn(key, value, ctx);

        if (rc != 0)
            return rc;
    }
    return 0;
}

static void
inline_close(dict_t *d)
{
    struct dict_inline *di = (struct dict_inline *) d;

    htable_free(di->table, mem_free);
    dict_free_common(d);
}

/* Set err to "inline table: <what> <quoted text>" and return -1. */
static int
inline_error(str_t *err, const char *what, const char *text, size_t len)
{
    str_printf(err, "inline table: %s ", what);
    dict_quote(err, text, len);
    return -1;
}

/* Trim white space from both ends of [*start, *end). */
static void
trim_span(const char **start, const char **end)
{
    while (*start < *end && isspace((unsigned char) **start))
        (*start)++;
    while (*end > *start && isspace((unsigned char) (*end)[-1]))
        (*end)--;
}

/*
 * Add one entry (the key is not empty: callers check). The key is copied,
 * folded unless asked not to; a key that is already present keeps its first
 * value and the new one is dropped with a warning.
 */
static void
inline_add(struct dict_inline *di, const char *key, size_t klen, const char *value, size_t vlen)
{
    char   *k = mem_strndup(key, klen);
    char   *v = mem_strndup(value, vlen);

    if (!(di->dict.flags & DICT_FLAG_NO_FOLD))
        dict_fold(k);
    if (!htable_insert(di->table, k, v)) {
        str_t  *q = str_new(0);

        dict_quote(q, k, klen);
        dict_warn(&di->dict, 0, "duplicate key %s ignored", str_cstr(q));
        str_free(q);
        mem_free(v);
    }
    mem_free(k);
}

/*
 * Parse a braced entry: the text between its braces (p, end) is
 * "key = value", split at the first "=", both sides trimmed.
 */
static int
inline_braced_entry(struct dict_inline *di, const char *p, const char *end, str_t *err)
{
    const char *eq = memchr(p, '=', (size_t) (end - p));
    const char *kstart = p, *kend, *vstart, *vend = end;

    if (eq == NULL)
        return inline_error(err, "entry without \"=\":", p, (size_t) (end - p));
    kend = eq;
    vstart = eq + 1;
    trim_span(&kstart, &kend);
    trim_span(&vstart, &vend);
    if (kstart == kend)
        return inline_error(err, "empty key in", p, (size_t) (end - p));
    inline_add(di, kstart, (size_t) (kend - kstart), vstart, (size_t) (vend - vstart));
    return 0;
}

/*
 * A brace at p inside an unwrapped entry that starts at entry: a "}" closes
 * nothing; a "{" means the entry should have been wrapped.
 */
static int
inline_brace_error(str_t *err, const char *p, const char *entry, const char *end)
{
    if (*p == '}')
        return inline_error(err, "unbalanced \"}\" at", p, (size_t) (end - p));
    return inline_error(err, "brace inside an entry (wrap the whole entry in braces):",
                        entry, (size_t) (end - entry));
}

/*
 * Parse the text between the outer braces, [p, end), entry by entry.
 * Returns 0 or -1 with err set.
 */
static int
inline_parse(struct dict_inline *di, const char *p, const char *end, str_t *err)
{
    for (;;) {
        while (p < end && is_separator(*p))
            p++;
        if (p == end)
            return 0;
        if (*p == '}')
            return inline_error(err, "unbalanced \"}\" at", p, (size_t) (end - p));
        if (*p == '{') {
            const char *q = p + 1;
            int     depth = 1;

            for (; q < end && depth > 0; q++) {
                if (*q == '{')
                    depth++;
                else if (*q == '}')
                    depth--;
            }
            if (depth > 0)
                return inline_error(err, "unbalanced \"{\" at", p, (size_t) (end - p));
            if (inline_braced_entry(di, p + 1, q - 1, err) != 0)
                return -1;
            p = q;
            continue;
        }

        /* key [ws] = [ws] value, ending at a separator */
        const char *entry = p;
        const char *key = p;
        size_t  klen;

        while (p < end && !is_separator(*p) && *p != '=' && *p != '{' && *p != '}')
            p++;
        klen = (size_t) (p - key);
        if (p < end && (*p == '{' || *p == '}'))
            return inline_brace_error(err, p, entry, end);
        while (p < end && isspace((unsigned char) *p))
            p++;
        if (p == end || *p != '=')
            return inline_error(err, "entry without \"=\":", key, klen);
        p++;
        while (p < end && isspace((unsigned char) *p))
            p++;

        const char *value = p;

        while (p < end && !is_separator(*p) && *p != '{' && *p != '}')
            p++;
        if (p < end && (*p == '{' || *p == '}'))
            return inline_brace_error(err, p, entry, end);
        if (klen == 0)
            return inline_error(err, "empty key in", entry, (size_t) (p - entry));
        inline_add(di, key, klen, value, (size_t) (p - value));
    }
}

/*
 * Open: check the outer braces, then parse every entry into a new table.
 * On any error nothing is kept and err says what and where.
 */
dict_t *
dict_inline_open(const char *name, int flags, str_t *err)
{
    const char *start = name, *end = name + strlen(name);
    struct dict_inline *di;

    trim_span(&start, &end);
    if (end - start < 2 || *start != '{' || end[-1] != '}') {
        inline_error(err, "need \"{ key = value, ... }\", not", name, strlen(name));
        return NULL;
    }
    di = (struct dict_inline *) dict_alloc(sizeof(*di), "inline", name, flags);
    di->table = htable_new(0);
    di->dict.lookup = inline_lookup;
    di->dict.sequence = inline_sequence;
    di->dict.close = inline_close;
    if (inline_parse(di, start + 1, end - 1, err) != 0) {
        inline_close(&di->dict);
        return NULL;
    }
    return &di->dict;
}
