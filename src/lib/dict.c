/*
 * dict.c - the table type registry, dict_open() and the lookup front end;
 * see dict.h.
 *
 * dict_lookup() checks and folds the key here, once, so table types see only
 * keys of at most DICT_KEY_MAX bytes, already lower-cased when they should
 * be. This file also holds the helpers that table types share: allocation of
 * the common part, warnings, and the logical-line reader for source files.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "dict.h"
#include "log.h"
#include "mem.h"
#include "stream.h"

#define DICT_TYPE_SHOWN_MAX 64      /* bytes of an unknown type name in a message */
#define DICT_QUOTE_MAX      80      /* bytes of quoted text in a message */

static const struct dict_type dict_types[] = {
    {"inline", 0, dict_inline_open},
    {"static", 0, dict_static_open},
    {"texthash", 0, dict_texthash_open},
    {"cidr", DICT_FLAG_PATTERN, dict_cidr_open},
    {"lmdb", 0, dict_lmdb_open},
    {"hash", 0, dict_hash_open},
    {"btree", 0, dict_btree_open},
    {"regexp", DICT_FLAG_PATTERN, dict_regexp_open},
    {"pcre", DICT_FLAG_PATTERN, dict_pcre_open},
    {"unix", 0, dict_unix_open},
};

#define DICT_NTYPES (sizeof(dict_types) / sizeof(dict_types[0]))

/* The registry entry for the len bytes at type, or NULL. */
static const struct dict_type *
dict_find_type(const char *type, size_t len)
{
    for (size_t i = 0; i < DICT_NTYPES; i++)
        if (strlen(dict_types[i].type) == len && memcmp(dict_types[i].type, type, len) == 0)
            return &dict_types[i];
    return NULL;
}

bool
dict_type_known(const char *type)
{
    return dict_find_type(type, strlen(type)) != NULL;
}

/*
 * Open a table. The type's open function parses the whole table now, so
 * every syntax error is reported here and not at the first lookup. Warnings
 * it recorded are logged once.
 */
dict_t *
dict_open(const char *type_and_name, int flags, str_t *err)
{
    const char *colon = strchr(type_and_name, ':');
    const struct dict_type *type;
    dict_t *d;

    if (colon == NULL || colon == type_and_name) {
        str_printf(err, "bad table name \"%.*s\": need \"type:name\"",
                   DICT_TYPE_SHOWN_MAX, type_and_name);
        return NULL;
    }
    type = dict_find_type(type_and_name, (size_t) (colon - type_and_name));
    if (type == NULL) {
        size_t  len = (size_t) (colon - type_and_name);

        str_printf(err, "unsupported dictionary type: %.*s",
                   (int) (len > DICT_TYPE_SHOWN_MAX ? DICT_TYPE_SHOWN_MAX : len), type_and_name);
        return NULL;
    }
    flags = (flags & ~DICT_FLAG_PATTERN) | type->type_flags;
    str_reset(err);
    d = type->open(colon + 1, flags, err);
    if (d == NULL) {
        if (str_len(err) == 0)
            str_printf(err, "cannot open %s table", type->type);
        return NULL;
    }
    d->flags |= type->type_flags;
    if ((flags & DICT_FLAG_WRITABLE) && d->update == NULL) {
        str_printf(err, "%s tables are read-only", type->type);
        dict_close(d);
        return NULL;
    }
    diag_log(&d->warnings);
    return d;
}

/*
 * Check the key, fold it into a stack buffer when the table wants folded
 * keys, and ask the table. value and the error text are reset first.
 */
int
dict_lookup(dict_t *d, const char *key, str_t *value)
{
    char    folded[DICT_KEY_MAX + 1];
    size_t  len = strnlen(key, DICT_KEY_MAX + 1);
    int     rc;

    str_reset(value);
    str_reset(&d->error);
    if (len > DICT_KEY_MAX)
        return DICT_NOTFOUND;
    if (!(d->flags & (DICT_FLAG_NO_FOLD | DICT_FLAG_PATTERN))) {
        memcpy(folded, key, len + 1);
        dict_fold(folded);
        key = folded;
    }
    rc = d->lookup(d, key, value, &d->error);
    switch (rc) {
    case DICT_FOUND:
        break;
    case DICT_ERROR:
        if (str_len(&d->error) == 0)
            str_printf(&d->error, "%s:%s: lookup failed", d->type, d->name);
        str_reset(value);
        break;
    case DICT_NOTFOUND:
        str_reset(value);
        break;
    default:
        log_panic("dict_lookup: %s:%s returned %d", d->type, d->name, rc);
    }
    return rc;
}

int
dict_lookup_str(dict_t *d, const str_t *key, str_t *value)
{
    if (memchr(str_cstr(key), 0, str_len(key)) != NULL) {
        str_reset(value);
        str_reset(&d->error);
        return DICT_NOTFOUND;
    }
    return dict_lookup(d, str_cstr(key), value);
}

const char *
dict_error(const dict_t *d)
{
    return str_cstr(&d->error);
}

void
dict_close(dict_t *d)
{
    if (d != NULL)
        d->close(d);
}

dict_t *
dict_alloc(size_t size, const char *type, const char *name, int flags)
{
    dict_t *d;

    if (size < sizeof(*d))
        log_panic("dict_alloc: size %zu is smaller than a dict", size);
    d = mem_zalloc(size);
    d->type = type;
    d->name = mem_strdup(name);
    d->flags = flags;
    str_init(&d->error);
    diag_init(&d->warnings);
    return d;
}

void
dict_free_common(dict_t *d)
{
    mem_free(d->name);
    str_release(&d->error);
    diag_free(&d->warnings);
    mem_free(d);
}

void
dict_warn(dict_t *d, int line, const char *fmt, ...)
{
    va_list ap;
    str_t  *text;

    if (d->warnings.count > DICT_WARN_MAX)
        return;
    if (d->warnings.count == DICT_WARN_MAX) {
        const char *file = d->warnings.items[DICT_WARN_MAX - 1].file;

        if (file != NULL)
            diag_add(&d->warnings, DIAG_WARNING, file, 0,
                     "more than %d warnings; the rest are not shown", DICT_WARN_MAX);
        else
            diag_add(&d->warnings, DIAG_WARNING, NULL, 0,
                     "%s table: more than %d warnings; the rest are not shown", d->type, DICT_WARN_MAX);
        return;
    }
    text = str_new(80);
    if (line <= 0)
        str_printf(text, "%s table: ", d->type);
    va_start(ap, fmt);
    str_append_vprintf(text, fmt, ap);
    va_end(ap);
    diag_add(&d->warnings, DIAG_WARNING, line > 0 ? d->name : NULL, line, "%s", str_cstr(text));
    str_free(text);
}

void
dict_fold(char *key)
{
    for (; *key; key++)
        if (*key >= 'A' && *key <= 'Z')
            *key = (char) (*key - 'A' + 'a');
}

void
dict_quote(str_t *out, const char *text, size_t len)
{
    str_putc(out, '"');
    for (size_t i = 0; i < len && i < DICT_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char) text[i];

        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            str_append_printf(out, "\\x%02x", c);
        else
            str_putc(out, c);
    }
    if (len > DICT_QUOTE_MAX)
        str_append_cstr(out, "...");
    str_putc(out, '"');
}

/* Logical-line reader. */

struct dict_reader {
    dict_t *d;
    char   *path;
    stream_t *st;
    int     lineno;             /* physical lines read so far */
    str_t   phys;               /* the current physical line */
    bool    have_phys;          /* phys holds a line not yet used */
};

dict_reader_t *
dict_reader_open(dict_t *d, const char *path, str_t *err)
{
    dict_reader_t *r;
    int     fd;

    if (*path == 0) {
        str_set_cstr(err, "need a file name");
        return NULL;
    }
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        str_printf(err, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    r = mem_zalloc(sizeof(*r));
    r->d = d;
    r->path = mem_strdup(path);
    r->st = stream_open(fd);
    str_init(&r->phys);
    return r;
}

void
dict_reader_close(dict_reader_t *r)
{
    if (r == NULL)
        return;
    /* Read-only descriptor: a failing close(2) loses nothing, so its status is not needed. */
    (void) stream_close(r->st);
    str_release(&r->phys);
    mem_free(r->path);
    mem_free(r);
}

/*
 * Read the next physical line into r->phys, without its line ending.
 * Returns 1, 0 at the end of the file, or -1 with err set.
 */
static int
dict_reader_physical(dict_reader_t *r, str_t *err)
{
    int     rc = stream_read_line(r->st, &r->phys, DICT_LINE_MAX + 2);

    if (rc == STREAM_EOF)
        return 0;
    r->lineno++;
    if (rc == STREAM_TOOLONG) {
        str_printf(err, "%s, line %d: line longer than %d bytes", r->path, r->lineno, DICT_LINE_MAX);
        return -1;
    }
    if (rc != STREAM_OK) {
        str_printf(err, "read %s: %s", r->path,
                   rc == STREAM_ERR ? strerror(stream_errno(r->st)) : stream_strstatus(rc));
        return -1;
    }
    str_chomp(&r->phys);
    if (str_len(&r->phys) > DICT_LINE_MAX) {
        str_printf(err, "%s, line %d: line longer than %d bytes", r->path, r->lineno, DICT_LINE_MAX);
        return -1;
    }
    if (memchr(str_cstr(&r->phys), 0, str_len(&r->phys)) != NULL) {
        str_printf(err, "%s, line %d: NUL byte in line", r->path, r->lineno);
        return -1;
    }
    return 1;
}

int
dict_reader_next(dict_reader_t *r, str_t *line, int *lineno, str_t *err)
{
    bool    started = false;

    str_reset(line);
    for (;;) {
        if (!r->have_phys) {
            int     rc = dict_reader_physical(r, err);

            if (rc < 0)
                return -1;
            if (rc == 0)
                return started ? 1 : 0;
            r->have_phys = true;
        }
        const char *p = str_cstr(&r->phys);
        size_t  len = str_len(&r->phys);
        size_t  lead = 0;

        while (lead < len && isspace((unsigned char) p[lead]))
            lead++;
        if (lead == len || p[lead] == '#') {
            r->have_phys = false;           /* blank or comment */
            continue;
        }
        while (len > lead && isspace((unsigned char) p[len - 1]))
            len--;
        if (lead > 0) {                     /* continuation */
            r->have_phys = false;
            if (!started) {
                dict_warn(r->d, r->lineno, "continuation line with no line before it; ignored");
                continue;
            }
            if (str_len(line) + 1 + (len - lead) > DICT_LINE_MAX) {
                str_printf(err, "%s, line %d: logical line longer than %d bytes",
                           r->path, r->lineno, DICT_LINE_MAX);
                return -1;
            }
            str_putc(line, ' ');
            str_append(line, p + lead, len - lead);
            continue;
        }
        if (started)
            return 1;                       /* keep phys for the next call */
        r->have_phys = false;
        str_set(line, p, len);
        *lineno = r->lineno;
        started = true;
    }
}
