/*
 * dict_static.c - "static:value": every key is found, with the same value.
 *
 * The name is the value, used as written. To give a value with leading or
 * trailing white space trimmed, or one that reads better delimited, wrap it
 * in braces: "static:{ value with spaces }" has the value "value with
 * spaces". "static:" (empty) is allowed and answers "" for every key.
 * An opening brace without a closing one at the end is an error. There is
 * no sequence function: the table has no keys to list.
 */
#include <string.h>

#include "dict.h"
#include "mem.h"

struct dict_static {
    dict_t  dict;
    char   *value;
};

static int
static_lookup(dict_t *d, const char *key, str_t *value, str_t *err)
{
    struct dict_static *s = (struct dict_static *) d;

    str_set_cstr(value, s->value);
    return DICT_FOUND;
}

static void
static_close(dict_t *d)
{
    struct dict_static *s = (struct dict_static *) d;

    mem_free(s->value);
    dict_free_common(d);
}

/*
 * Take the value from the name, stripping one pair of outer braces (and the
 * white space inside them). Fails on "{" without a final "}".
 */
dict_t *
dict_static_open(const char *name, int flags, str_t *err)
{
    size_t  len = strlen(name);
    struct dict_static *s;
    str_t  *value = str_new(len);

    if (len > 0 && name[0] == '{') {
        if (name[len - 1] != '}') {
            str_set_cstr(err, "static table: missing \"}\" after \"{\"");
            str_free(value);
            return NULL;
        }
        str_set(value, name + 1, len - 2);
        str_trim(value);
    } else {
        str_set(value, name, len);
    }
    s = (struct dict_static *) dict_alloc(sizeof(*s), "static", name, flags);
    s->value = str_steal(value);
    s->dict.lookup = static_lookup;
    s->dict.close = static_close;
    return &s->dict;
}
