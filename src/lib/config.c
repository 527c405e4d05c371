/*
 * config.c - main.cf: reading, expansion, typed access, validation, editing;
 * see config.h.
 *
 * A config holds two lists of explicit settings (main.cf lines in file
 * order, then overrides from config_set) and a hash table with one variable
 * per name that points into them. Values are stored raw and expanded on use.
 * Each variable also memoises its expanded value: that makes config_str()
 * cheap, keeps expansion linear in the size of the configuration even when
 * values refer to each other many times over, and gives config_str() a
 * string that lives until the config changes. Every change (config_set,
 * config_read_*) drops all memoised values.
 *
 * Expansion state (the names being expanded, the nesting depth) lives in the
 * config, so that a def_fn that calls config_expand() (mydomain uses
 * $myhostname) takes part in loop detection. Expansion is bounded: at most
 * CONFIG_NEST_MAX nested names or conditional texts, expanded values of at
 * most CONFIG_VALUE_MAX bytes, memoised values of at most CONFIG_MEMO_MAX
 * bytes in total.
 *
 * Trust: main.cf text and overrides are checked, never believed; every
 * problem becomes a diagnostic or an expansion error. Allocation failure is
 * fatal (mem.h). Programming errors (an unknown name passed to a typed
 * getter) are log_panic.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mem.h"
#include "params.h"
#include "str.h"
#include "stream.h"

#define CONFIG_FILE_MAX     (16 * 1024 * 1024)  /* largest main.cf read */
#define CONFIG_LINE_MAX     (1024 * 1024)       /* longest logical line */
#define CONFIG_VALUE_MAX    (1024 * 1024)       /* longest expanded value */
#define CONFIG_NEST_MAX     100                 /* nested names and conditional texts */
#define CONFIG_MEMO_MAX     (64 * 1024 * 1024)  /* memoised expanded values, in total */
#define CONFIG_HASH_INIT    64
#define NO_INDEX            SIZE_MAX

/* One name: where its explicit values are, and its memoised expansion. */
struct config_var {
    char   *name;
    size_t  name_len;
    size_t  file_idx;           /* in cfg->files, or NO_INDEX */
    size_t  over_idx;           /* in cfg->overs, or NO_INDEX */
    char   *memo;               /* expanded value, NULL when not known */
    size_t  memo_len;
    long    num;                /* the memo as checked by config_int/bool/time */
    bool    num_valid;
    int     num_type;           /* enum param_type of the check that set num */
};

struct entry_list {
    struct config_entry *items; /* name points to the variable's name; value owned */
    size_t  count;
    size_t  cap;
};

struct config {
    struct entry_list files;    /* main.cf settings, in file order */
    struct entry_list overs;    /* config_set() overrides */
    struct config_var **slots;  /* open addressing, linear probing; NULL = free */
    size_t  nslots;             /* a power of two */
    size_t  nvars;
    char  **interned;           /* config_intern() copies, and file names */
    size_t  ninterned;
    size_t  interned_cap;
    size_t  memo_bytes;
    /* Expansion in progress. */
    const char *stack[CONFIG_NEST_MAX + 1];   /* names being expanded */
    int     nstack;
    int     nest;               /* names plus conditional texts */
    unsigned nested_failures;   /* config_expand() failures during an expansion */
    str_t  *nested_err;         /* the last one's explanation */
};

static bool expand_text(config_t *cfg, const char *p, const char *end, char close, bool eval,
                        str_t *out, const char **stop, str_t *err);

/* ---------------------------------------------------------------- names */

static bool
is_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool
is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool
valid_name(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_name_char((unsigned char) p[i]))
            return false;
    return true;
}

/* The table definition for a name that need not be NUL-terminated, or NULL. */
static const struct param_def *
lookup_def(const char *name, size_t len)
{
    char    buf[128];

    if (len >= sizeof(buf))
        return NULL;
    memcpy(buf, name, len);
    buf[len] = 0;
    return param_lookup(buf);
}

/* ---------------------------------------------------------------- variables */

static size_t
hash_name(const char *p, size_t len)
{
    uint64_t h = 14695981039346656037ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char) p[i];
        h *= 1099511628211ULL;
    }
    return (size_t) h;
}

static struct config_var *
var_find(const config_t *cfg, const char *name, size_t len)
{
    size_t  mask = cfg->nslots - 1;
    struct config_var *v;

    for (size_t i = hash_name(name, len) & mask; (v = cfg->slots[i]) != NULL; i = (i + 1) & mask)
        if (v->name_len == len && memcmp(v->name, name, len) == 0)
            return v;
    return NULL;
}

static void
var_insert(struct config_var **slots, size_t nslots, struct config_var *v)
{
    size_t  mask = nslots - 1;
    size_t  i = hash_name(v->name, v->name_len) & mask;

    while (slots[i] != NULL)
        i = (i + 1) & mask;
    slots[i] = v;
}

/* Find or create the variable for a name. The result stays at the same address. */
static struct config_var *
var_get(config_t *cfg, const char *name, size_t len)
{
    struct config_var *v = var_find(cfg, name, len);

    if (v)
        return v;
    if ((cfg->nvars + 1) * 2 > cfg->nslots) {
        size_t  n = cfg->nslots * 2;
        struct config_var **slots = mem_array(n, sizeof(*slots));

        for (size_t i = 0; i < cfg->nslots; i++)
            if (cfg->slots[i])
                var_insert(slots, n, cfg->slots[i]);
        mem_free(cfg->slots);
        cfg->slots = slots;
        cfg->nslots = n;
    }
    v = mem_zalloc(sizeof(*v));
    v->name = mem_strndup(name, len);
    v->name_len = len;
    v->file_idx = v->over_idx = NO_INDEX;
    var_insert(cfg->slots, cfg->nslots, v);
    cfg->nvars++;
    return v;
}

/* The explicit raw value that wins (override, else main.cf), or NULL. */
static const char *
var_raw(const config_t *cfg, const struct config_var *v)
{
    if (v->over_idx != NO_INDEX)
        return cfg->overs.items[v->over_idx].value;
    if (v->file_idx != NO_INDEX)
        return cfg->files.items[v->file_idx].value;
    return NULL;
}

/* Drop every memoised expansion (after any change). */
static void
invalidate(config_t *cfg)
{
    for (size_t i = 0; i < cfg->nslots; i++) {
        struct config_var *v = cfg->slots[i];

        if (v && v->memo) {
            mem_free(v->memo);
            v->memo = NULL;
            v->memo_len = 0;
        }
        if (v)
            v->num_valid = false;
    }
    cfg->memo_bytes = 0;
}

/* Memoise an expanded value; unless forced, only while the total stays bounded. */
static void
memo_store(config_t *cfg, struct config_var *v, const str_t *val, bool force)
{
    if (v->memo)
        return;
    if (!force && str_len(val) > CONFIG_MEMO_MAX - cfg->memo_bytes)
        return;
    v->memo = mem_memdup(str_cstr(val), str_len(val) + 1);
    v->memo_len = str_len(val);
    cfg->memo_bytes += str_len(val);
    if (cfg->memo_bytes > CONFIG_MEMO_MAX)
        cfg->memo_bytes = CONFIG_MEMO_MAX;
}

/* Append an entry; the value is copied. Returns its index. */
static size_t
entry_add(struct entry_list *list, const char *name, const char *value, const char *file, int line)
{
    list->items = mem_grow_array(list->items, &list->cap, list->count + 1, sizeof(*list->items));
    list->items[list->count] = (struct config_entry) {
        .name = name,
        .value = mem_strdup(value),
        .file = file,
        .line = line,
    };
    return list->count++;
}

static void
entry_set_value(struct config_entry *e, const char *value)
{
    mem_free((void *) e->value);
    e->value = mem_strdup(value);
}

/* ---------------------------------------------------------------- life cycle */

config_t *
config_new(void)
{
    config_t *cfg = mem_zalloc(sizeof(*cfg));

    cfg->nslots = CONFIG_HASH_INIT;
    cfg->slots = mem_array(cfg->nslots, sizeof(*cfg->slots));
    cfg->nested_err = str_new(0);
    return cfg;
}

static void
entries_free(struct entry_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        mem_free((void *) list->items[i].value);
    mem_free(list->items);
}

void
config_free(config_t *cfg)
{
    if (cfg == NULL)
        return;
    entries_free(&cfg->files);
    entries_free(&cfg->overs);
    for (size_t i = 0; i < cfg->nslots; i++) {
        struct config_var *v = cfg->slots[i];

        if (v) {
            mem_free(v->name);
            mem_free(v->memo);
            mem_free(v);
        }
    }
    mem_free(cfg->slots);
    for (size_t i = 0; i < cfg->ninterned; i++)
        mem_free(cfg->interned[i]);
    mem_free(cfg->interned);
    str_free(cfg->nested_err);
    mem_free(cfg);
}

const char *
config_intern(config_t *cfg, const char *text)
{
    for (size_t i = 0; i < cfg->ninterned; i++)
        if (strcmp(cfg->interned[i], text) == 0)
            return cfg->interned[i];
    cfg->interned = mem_grow_array(cfg->interned, &cfg->interned_cap, cfg->ninterned + 1,
                                   sizeof(*cfg->interned));
    cfg->interned[cfg->ninterned] = mem_strdup(text);
    return cfg->interned[cfg->ninterned++];
}

/* ---------------------------------------------------------------- explicit values */

void
config_set(config_t *cfg, const char *name, const char *value)
{
    struct config_var *v;

    if (name == NULL)
        log_panic("config_set: NULL name");
    v = var_get(cfg, name, strlen(name));
    if (value == NULL)
        value = "";
    if (v->over_idx != NO_INDEX)
        entry_set_value(&cfg->overs.items[v->over_idx], value);
    else
        v->over_idx = entry_add(&cfg->overs, v->name, value, NULL, 0);
    invalidate(cfg);
}

/* A main.cf setting; a later one for the same name replaces the earlier in place. */
static void
store_file_setting(config_t *cfg, const char *name, size_t len, const char *value,
                   const char *file, int line)
{
    struct config_var *v = var_get(cfg, name, len);

    if (v->file_idx != NO_INDEX) {
        struct config_entry *e = &cfg->files.items[v->file_idx];

        entry_set_value(e, value);
        e->file = file;
        e->line = line;
    } else {
        v->file_idx = entry_add(&cfg->files, v->name, value, file, line);
    }
}

const char *
config_get_raw(const config_t *cfg, const char *name)
{
    const struct config_var *v = var_find(cfg, name, strlen(name));

    return v ? var_raw(cfg, v) : NULL;
}

size_t
config_count(const config_t *cfg)
{
    return cfg->files.count + cfg->overs.count;
}

/* Entry i of config_count(): main.cf settings first, then overrides; NULL when out of range. */
const struct config_entry *
config_entry_at(const config_t *cfg, size_t i)
{
    if (i < cfg->files.count)
        return &cfg->files.items[i];
    i -= cfg->files.count;
    return i < cfg->overs.count ? &cfg->overs.items[i] : NULL;
}

/* ---------------------------------------------------------------- logical lines */

void
config_lines_init(struct config_lines *lr, const char *text, size_t len, size_t max)
{
    *lr = (struct config_lines) {.text = text, .len = len, .max = max};
}

enum line_kind {
    LINE_BLANK,                 /* empty or white space only */
    LINE_COMMENT,               /* '#' in column 1 */
    LINE_INDENTED_COMMENT,      /* '#' after white space */
    LINE_CONTINUATION,          /* white space, then text */
    LINE_START,                 /* text in column 1 */
};

/* The physical line at pos: its end (without '\n') in *le; returns the offset after it. */
static size_t
physical_line(const struct config_lines *lr, size_t pos, size_t *le)
{
    const char *nl = memchr(lr->text + pos, '\n', lr->len - pos);

    *le = nl ? (size_t) (nl - lr->text) : lr->len;
    return nl ? *le + 1 : lr->len;
}

static enum line_kind
classify(const char *text, size_t ls, size_t le)
{
    size_t  i = ls;

    while (i < le && is_blank((unsigned char) text[i]))
        i++;
    if (i == le)
        return LINE_BLANK;
    if (text[i] == '#')
        return i == ls ? LINE_COMMENT : LINE_INDENTED_COMMENT;
    return i == ls ? LINE_START : LINE_CONTINUATION;
}

/* Append one physical line without its surrounding blanks, within lr->max. */
static void
append_part(const struct config_lines *lr, str_t *out, size_t ls, size_t le, bool *nul, bool *too_long)
{
    while (ls < le && is_blank((unsigned char) lr->text[ls]))
        ls++;
    while (le > ls && is_blank((unsigned char) lr->text[le - 1]))
        le--;
    if (memchr(lr->text + ls, 0, le - ls) != NULL)
        *nul = true;
    if (*too_long || *nul)
        return;
    if (lr->max && str_len(out) + 1 + (le - ls) > lr->max) {
        *too_long = true;
        return;
    }
    if (str_len(out))
        str_putc(out, ' ');
    str_append(out, lr->text + ls, le - ls);
}

/*
 * Return the next logical line in out; see config.h. Indented comments
 * inside a logical line are skipped; those after its last continuation line
 * are left for the next call (they are comments of their own, and
 * config_edit_file keeps them when it replaces the setting).
 */
int
config_lines_next(struct config_lines *lr, str_t *out)
{
    str_reset(out);
    while (lr->pos < lr->len) {
        size_t  ls = lr->pos, le, next = physical_line(lr, ls, &le);
        enum line_kind kind = classify(lr->text, ls, le);
        bool    nul = false, too_long = false;

        lr->pos = next;
        lr->lineno++;
        if (kind == LINE_BLANK || kind == LINE_COMMENT || kind == LINE_INDENTED_COMMENT)
            continue;
        lr->first = lr->lineno;
        lr->start = ls;
        lr->end = next;
        if (kind == LINE_CONTINUATION) {
            str_set_cstr(out, "line starts with white space but does not continue a logical line");
            return CONFIG_LINES_BAD;
        }
        append_part(lr, out, ls, le, &nul, &too_long);
        for (size_t p = next, lineno = (size_t) lr->lineno; p < lr->len;) {
            size_t  cle, cnext = physical_line(lr, p, &cle);
            enum line_kind ck = classify(lr->text, p, cle);

            if (ck != LINE_CONTINUATION && ck != LINE_INDENTED_COMMENT)
                break;
            lineno++;
            if (ck == LINE_CONTINUATION) {
                append_part(lr, out, p, cle, &nul, &too_long);
                lr->pos = lr->end = cnext;
                lr->lineno = lineno > INT_MAX ? INT_MAX : (int) lineno;
            }
            p = cnext;
        }
        if (nul) {
            str_set_cstr(out, "line contains a NUL byte");
            return CONFIG_LINES_BAD;
        }
        if (too_long) {
            str_reset(out);
            str_printf(out, "logical line is longer than %zu bytes", lr->max);
            return CONFIG_LINES_BAD;
        }
        return CONFIG_LINES_OK;
    }
    return CONFIG_LINES_END;
}

bool
config_read_text(const char *path, size_t max, str_t *out, str_t *err)
{
    char    buf[16384];
    int     fd;
    ssize_t n;

    str_reset(out);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        str_printf(err, "open %s: %s", path, strerror(errno));
        return false;
    }
    do {
        if ((n = fd_read_full(fd, buf, sizeof(buf))) < 0) {
            str_printf(err, "read %s: %s", path, strerror(errno));
            (void) close(fd);
            return false;
        }
        if (str_len(out) + (size_t) n > max) {
            str_printf(err, "%s: file is larger than %zu bytes", path, max);
            (void) close(fd);
            return false;
        }
        str_append(out, buf, (size_t) n);
    } while ((size_t) n == sizeof(buf));
    if (close(fd) != 0) {
        str_printf(err, "close %s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- main.cf syntax */

/*
 * Split a logical line "name = value". On success returns true with the
 * name in [line, line + *nlen) and *value pointing into line; else returns
 * false with a description of the problem in why.
 */
static bool
parse_setting(const char *line, size_t *nlen, const char **value, str_t *why)
{
    const char *p = line;

    while (*p && !is_blank((unsigned char) *p) && *p != '=')
        p++;
    *nlen = (size_t) (p - line);
    if (*nlen == 0) {
        str_printf(why, "missing parameter name before \"=\"");
        return false;
    }
    if (!valid_name(line, *nlen)) {
        str_printf(why, "bad parameter name \"%.*s\": use only letters, digits and \"_\"",
                   (int) (*nlen > 80 ? 80 : *nlen), line);
        return false;
    }
    while (is_blank((unsigned char) *p))
        p++;
    if (*p != '=') {
        str_printf(why, "missing \"=\" after parameter name \"%.*s\" (need \"name = value\")",
                   (int) (*nlen > 80 ? 80 : *nlen), line);
        return false;
    }
    p++;
    while (is_blank((unsigned char) *p))
        p++;
    *value = p;
    return true;
}

int
config_read_string(config_t *cfg, const char *file, const char *text, size_t len, diag_list_t *diags)
{
    const char *fname = config_intern(cfg, file ? file : "main.cf");
    struct config_lines lr;
    str_t  *line = str_new(0);
    str_t  *why = str_new(0);
    int     rc;

    config_lines_init(&lr, text, len, CONFIG_LINE_MAX);
    while ((rc = config_lines_next(&lr, line)) != CONFIG_LINES_END) {
        size_t  nlen;
        const char *value;

        if (rc == CONFIG_LINES_BAD)
            diag_add(diags, DIAG_ERROR, fname, lr.first, "%s", str_cstr(line));
        else if (!parse_setting(str_cstr(line), &nlen, &value, why))
            diag_add(diags, DIAG_ERROR, fname, lr.first, "%s", str_cstr(why));
        else
            store_file_setting(cfg, str_cstr(line), nlen, value, fname, lr.first);
    }
    str_free(line);
    str_free(why);
    invalidate(cfg);
    return 0;
}

int
config_read_file(config_t *cfg, const char *path, diag_list_t *diags)
{
    str_t  *text = str_new(0);
    str_t  *err = str_new(0);
    int     rc = 0;

    if (!config_read_text(path, CONFIG_FILE_MAX, text, err)) {
        diag_add(diags, DIAG_ERROR, NULL, 0, "%s", str_cstr(err));
        rc = -1;
    } else {
        (void) config_read_string(cfg, path, str_cstr(text), str_len(text), diags);
    }
    str_free(text);
    str_free(err);
    return rc;
}

/* ---------------------------------------------------------------- expansion */

/* Set err to "parameter X: " (X being expanded, if any) and the message; returns false. */
static bool STR_PRINTF(3, 4)
fail(config_t *cfg, str_t *err, const char *fmt, ...)
{
    va_list ap;

    str_reset(err);
    if (cfg->nstack > 0)
        str_printf(err, "parameter %s: ", cfg->stack[cfg->nstack - 1]);
    va_start(ap, fmt);
    str_append_vprintf(err, fmt, ap);
    va_end(ap);
    return false;
}

static bool
check_length(config_t *cfg, const str_t *out, str_t *err)
{
    if (str_len(out) > CONFIG_VALUE_MAX)
        return fail(cfg, err, "expanded value is longer than %d bytes", CONFIG_VALUE_MAX);
    return true;
}

/* Fail when the name is already being expanded; the message shows the cycle. */
static bool
check_loop(config_t *cfg, const char *name, size_t len, str_t *err)
{
    for (int i = 0; i < cfg->nstack; i++) {
        if (strlen(cfg->stack[i]) == len && memcmp(cfg->stack[i], name, len) == 0) {
            str_t  *chain = str_new(0);

            for (int j = i; j < cfg->nstack; j++)
                str_append_printf(chain, "%s -> ", cfg->stack[j]);
            str_append(chain, name, len);
            fail(cfg, err, "recursive expansion via $%.*s (%s)", (int) len, name, str_cstr(chain));
            str_free(chain);
            return false;
        }
    }
    return true;
}

/*
 * Append the expanded value of a parameter to out: its explicit value, else
 * its table default (a def_fn result is used as is), else nothing (an
 * unknown name expands to the empty string). Memoises the result. Fails on
 * loops, too deep nesting, syntax errors and too long values.
 */
static bool
expand_name(config_t *cfg, const char *name, size_t len, str_t *out, str_t *err)
{
    struct config_var *v = var_find(cfg, name, len);
    const struct param_def *def;
    const char *raw = NULL;
    str_t  *val;
    bool    ok;

    if (v && v->memo) {
        str_append(out, v->memo, v->memo_len);
        return check_length(cfg, out, err);
    }
    def = lookup_def(name, len);
    if (v)
        raw = var_raw(cfg, v);
    if (raw == NULL && def == NULL)
        return true;
    if (!check_loop(cfg, name, len, err))
        return false;
    if (cfg->nest >= CONFIG_NEST_MAX)
        return fail(cfg, err, "expansion nested deeper than %d levels", CONFIG_NEST_MAX);
    if (v == NULL)
        v = var_get(cfg, name, len);
    cfg->stack[cfg->nstack++] = v->name;
    cfg->nest++;
    val = str_new(0);
    if (raw == NULL)
        raw = def->def;
    if (raw != NULL) {
        ok = expand_text(cfg, raw, raw + strlen(raw), 0, true, val, NULL, err);
    } else {
        unsigned before = cfg->nested_failures;
        const char *computed = param_default(def, cfg);

        ok = cfg->nested_failures == before;
        if (ok)
            str_set_cstr(val, computed);
        else
            str_set_cstr(err, str_cstr(cfg->nested_err));
    }
    cfg->nest--;
    cfg->nstack--;
    if (ok) {
        str_append_str(out, val);
        memo_store(cfg, v, val, false);
        ok = check_length(cfg, out, err);
    }
    str_free(val);
    return ok;
}

/*
 * The text of a conditional, ${name?text} or ${name:text} (also with
 * "(...)", and the Postfix 3 forms {text} and ?{text1}:{text2}). *pp points
 * after the '?' or ':'; on success it points after the closing delimiter.
 * Only the chosen text is evaluated; the other is checked for syntax.
 */
static bool
expand_conditional(config_t *cfg, const char **pp, const char *end, char close, char op,
                   const char *name, size_t len, bool eval, str_t *out, str_t *err)
{
    const char *p = *pp, *q, *stop;
    bool    nonempty = false, first, ok = true;

    if (eval) {
        str_t  *tmp = str_new(0);

        ok = expand_name(cfg, name, len, tmp, err);
        nonempty = str_len(tmp) > 0;
        str_free(tmp);
        if (!ok)
            return false;
    }
    first = op == '?' ? nonempty : !nonempty;
    if (cfg->nest >= CONFIG_NEST_MAX)
        return fail(cfg, err, "expansion nested deeper than %d levels", CONFIG_NEST_MAX);
    cfg->nest++;
    for (q = p; q < end && is_blank((unsigned char) *q); q++)
        ;
    if (q < end && *q == '{') {
        ok = expand_text(cfg, q + 1, end, '}', eval && first, out, &stop, err);
        p = ok ? stop + 1 : end;
        while (ok && p < end && is_blank((unsigned char) *p))
            p++;
        if (ok && op == '?' && p < end && *p == ':') {
            for (p++; p < end && is_blank((unsigned char) *p); p++)
                ;
            if (p == end || *p != '{')
                ok = fail(cfg, err, "need \"{text}\" after \":\" in \"${%.*s?{...}:\"", (int) len, name);
            else
                ok = expand_text(cfg, p + 1, end, '}', eval && !first, out, &stop, err);
            p = ok ? stop + 1 : end;
            while (ok && p < end && is_blank((unsigned char) *p))
                p++;
        }
        if (ok && (p == end || *p != close))
            ok = fail(cfg, err, "need \"%c\" after \"{...}\" in \"$%c%.*s%c{...}\"",
                      close, close == '}' ? '{' : '(', (int) len, name, op);
        if (ok)
            p++;
    } else {
        ok = expand_text(cfg, p, end, close, eval && first, out, &stop, err);
        p = ok ? stop + 1 : end;
    }
    cfg->nest--;
    *pp = p;
    return ok;
}

/*
 * One reference; *pp points after its '$' and is advanced past it. With
 * eval false only the syntax is checked.
 */
static bool
expand_ref(config_t *cfg, const char **pp, const char *end, bool eval, str_t *out, str_t *err)
{
    const char *p = *pp, *name;
    size_t  len;
    bool    ok = true;

    if (p == end)
        return fail(cfg, err, "\"$\" at the end of the text (write \"$$\" for a literal \"$\")");
    if (*p == '$') {
        if (eval)
            str_putc(out, '$');
        *pp = p + 1;
        return true;
    }
    if (*p == '{' || *p == '(') {
        char    close = *p == '{' ? '}' : ')';
        char    open = *p;

        for (name = ++p; p < end && is_name_char((unsigned char) *p); p++)
            ;
        len = (size_t) (p - name);
        if (len == 0)
            return fail(cfg, err, "missing or bad parameter name after \"$%c\"", open);
        if (p == end)
            return fail(cfg, err, "missing \"%c\" after \"$%c%.*s\"", close, open, (int) len, name);
        if (*p == close) {
            if (eval)
                ok = expand_name(cfg, name, len, out, err);
            *pp = p + 1;
            return ok;
        }
        if (*p == '?' || *p == ':') {
            char    op = *p;

            *pp = p + 1;
            return expand_conditional(cfg, pp, end, close, op, name, len, eval, out, err);
        }
        return fail(cfg, err, "need \"%c\", \"?\" or \":\" after \"$%c%.*s\"", close, open,
                    (int) len, name);
    }
    if (is_name_char((unsigned char) *p)) {
        for (name = p; p < end && is_name_char((unsigned char) *p); p++)
            ;
        *pp = p;
        return eval ? expand_name(cfg, name, (size_t) (p - name), out, err) : true;
    }
    return fail(cfg, err, "\"$\" must be followed by a parameter name, \"{\", \"(\" or \"$\"");
}

/*
 * Expand text in [p, end), appending to out when eval is true. With close
 * set (')' or '}'), stop at the first close character that does not match
 * an earlier open one, and point *stop at it; running out of text is then an
 * error.
 */
static bool
expand_text(config_t *cfg, const char *p, const char *end, char close, bool eval,
            str_t *out, const char **stop, str_t *err)
{
    char    open = close == '}' ? '{' : close == ')' ? '(' : 0;
    int     level = 0;

    while (p < end) {
        const char *q;

        if (*p == '$') {
            p++;
            if (!expand_ref(cfg, &p, end, eval, out, err))
                return false;
            continue;
        }
        if (close && *p == close) {
            if (level == 0) {
                *stop = p;
                return true;
            }
            level--;
        } else if (open && *p == open) {
            level++;
        }
        for (q = p + 1; q < end && *q != '$' && !(close && (*q == close || *q == open)); q++)
            ;
        if (eval) {
            str_append(out, p, (size_t) (q - p));
            if (!check_length(cfg, out, err))
                return false;
        }
        p = q;
    }
    if (close)
        return fail(cfg, err, "missing \"%c\"", close);
    return true;
}

bool
config_expand(config_t *cfg, const char *text, str_t *out, str_t *err)
{
    str_t  *scratch = err ? NULL : str_new(0);
    bool    ok;

    if (err == NULL)
        err = scratch;
    str_reset(out);
    ok = expand_text(cfg, text, text + strlen(text), 0, true, out, NULL, err);
    if (!ok && cfg->nest > 0) {
        /* Called from a def_fn during an expansion: let the caller see it. */
        cfg->nested_failures++;
        str_set_cstr(cfg->nested_err, str_cstr(err));
    }
    str_free(scratch);
    return ok;
}

/* ---------------------------------------------------------------- typed access */

static const struct param_def *
must_lookup(const char *name, const char *caller)
{
    const struct param_def *def = param_lookup(name);

    if (def == NULL)
        log_panic("%s: \"%s\" is not in the parameter table", caller, name);
    return def;
}

const char *
config_str(config_t *cfg, const char *name)
{
    size_t  len = strlen(name);
    struct config_var *v;
    str_t  *val, *err;

    /* Memoised: the name was checked against the table when the memo was made. */
    if ((v = var_find(cfg, name, len)) != NULL && v->memo)
        return v->memo;
    (void) must_lookup(name, "config_str");
    val = str_new(0);
    err = str_new(0);
    if (!expand_name(cfg, name, len, val, err)) {
        str_t  *own = str_new(0);

        /* Say which parameter was asked for when the problem is in another one. */
        str_printf(own, "parameter %s: ", name);
        if (cstr_has_prefix(str_cstr(err), str_cstr(own)))
            log_fatal("%s", str_cstr(err));
        log_fatal("%s (needed for parameter %s)", str_cstr(err), name);
    }
    v = var_get(cfg, name, len);
    memo_store(cfg, v, val, true);
    str_free(val);
    str_free(err);
    return v->memo;
}

/* The value of a typed parameter, checked; log_fatal when it does not parse. */
static long
typed_value(config_t *cfg, const char *name, const char *caller, enum param_type t1, enum param_type t2)
{
    const struct param_def *def;
    const char *value;
    struct config_var *v;
    str_t  *why;
    long    n = 0;

    /*
     * Daemons ask for limits per line and per session: the checked number
     * is memoised too, with the type it was checked as, so that the table
     * is searched only the first time.
     */
    if ((v = var_find(cfg, name, strlen(name))) != NULL && v->memo && v->num_valid
        && ((int) t1 == v->num_type || (int) t2 == v->num_type))
        return v->num;
    def = must_lookup(name, caller);
    if (def->type != t1 && def->type != t2)
        log_panic("%s: parameter %s has another type", caller, name);
    value = config_str(cfg, name);
    why = str_new(0);
    if (!param_check_value(def, value, &n, why))
        log_fatal("%s", str_cstr(why));
    str_free(why);
    if ((v = var_find(cfg, name, strlen(name))) != NULL && v->memo) {
        v->num = n;
        v->num_valid = true;
        v->num_type = (int) def->type;
    }
    return n;
}

long
config_int(config_t *cfg, const char *name)
{
    return typed_value(cfg, name, "config_int", PARAM_INT, PARAM_SIZE);
}

bool
config_bool(config_t *cfg, const char *name)
{
    return typed_value(cfg, name, "config_bool", PARAM_BOOL, PARAM_BOOL) != 0;
}

long
config_time(config_t *cfg, const char *name)
{
    return typed_value(cfg, name, "config_time", PARAM_TIME, PARAM_TIME);
}

/* ---------------------------------------------------------------- validation */

struct name_ref {
    const char *p;
    size_t  len;
};

struct ref_set {
    struct name_ref *items;
    size_t  count;
    size_t  cap;
};

/* Add every $name, ${name and $(name in text to the set ($$ is skipped). */
static void
collect_refs(struct ref_set *set, const char *text)
{
    for (const char *p = text; (p = strchr(p, '$')) != NULL;) {
        const char *name;

        p++;
        if (*p == '$') {
            p++;
            continue;
        }
        if (*p == '{' || *p == '(')
            p++;
        for (name = p; is_name_char((unsigned char) *p); p++)
            ;
        if (p > name) {
            set->items = mem_grow_array(set->items, &set->cap, set->count + 1, sizeof(*set->items));
            set->items[set->count++] = (struct name_ref) {name, (size_t) (p - name)};
        }
    }
}

static int
compare_ref(const void *a, const void *b)
{
    const struct name_ref *x = a, *y = b;
    int     c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);

    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static bool
is_referenced(const struct ref_set *set, const char *name)
{
    struct name_ref key = {name, strlen(name)};

    return set->count && bsearch(&key, set->items, set->count, sizeof(key), compare_ref) != NULL;
}

/* Check one effective explicit setting; returns the number of errors added. */
static size_t
validate_entry(config_t *cfg, const struct config_entry *e, const struct ref_set *refs,
               const char *const *services, diag_list_t *diags, str_t *val, str_t *why)
{
    const struct param_def *def = param_lookup(e->name);
    struct param_def svc_def;

    if (def == NULL && (def = param_lookup_service(e->name, services)) != NULL) {
        svc_def = *def;
        svc_def.name = e->name;     /* explain in terms of the name the user wrote */
        def = &svc_def;
    }
    if (def == NULL && !is_referenced(refs, e->name))
        diag_add(diags, DIAG_WARNING, e->file, e->line, "unknown parameter %s", e->name);
    str_reset(val);
    if (!expand_name(cfg, e->name, strlen(e->name), val, why)) {
        diag_add(diags, DIAG_ERROR, e->file, e->line, "%s", str_cstr(why));
        return 1;
    }
    if (def && !param_check_value(def, str_cstr(val), NULL, why)) {
        diag_add(diags, DIAG_ERROR, e->file, e->line, "%s", str_cstr(why));
        return 1;
    }
    return 0;
}

/*
 * See config.h. main.cf settings shadowed by an override are not checked:
 * they have no effect. When the explicit settings are fine, every table
 * parameter left at its default is expanded and checked too, so that a
 * program that validated its config never meets a fatal error in a getter.
 */
size_t
config_validate(config_t *cfg, const char *const *services, diag_list_t *diags)
{
    struct ref_set refs = {0};
    str_t  *val = str_new(0), *why = str_new(0);
    size_t  errors = 0;

    for (size_t i = 0; i < config_count(cfg); i++)
        collect_refs(&refs, config_entry_at(cfg, i)->value);
    for (size_t i = 0; i < param_table_size; i++)
        if (param_table[i].def)
            collect_refs(&refs, param_table[i].def);
    if (refs.count)
        qsort(refs.items, refs.count, sizeof(*refs.items), compare_ref);

    for (size_t i = 0; i < cfg->files.count; i++) {
        const struct config_entry *e = &cfg->files.items[i];

        if (var_find(cfg, e->name, strlen(e->name))->over_idx == NO_INDEX)
            errors += validate_entry(cfg, e, &refs, services, diags, val, why);
    }
    for (size_t i = 0; i < cfg->overs.count; i++)
        errors += validate_entry(cfg, &cfg->overs.items[i], &refs, services, diags, val, why);

    for (size_t i = 0; errors == 0 && i < param_table_size; i++) {
        const struct param_def *def = &param_table[i];

        if (config_get_raw(cfg, def->name) != NULL)
            continue;
        str_reset(val);
        if (!expand_name(cfg, def->name, strlen(def->name), val, why)
            || !param_check_value(def, str_cstr(val), NULL, why)) {
            diag_add(diags, DIAG_ERROR, NULL, 0, "default value of %s: %s", def->name, str_cstr(why));
            errors++;
        }
    }
    mem_free(refs.items);
    str_free(val);
    str_free(why);
    return errors;
}

/* ---------------------------------------------------------------- editing */

struct edit_item {
    char   *name;
    char   *value;
    bool    done;
};

/* Parse the assignments; a later one for the same name wins. */
static bool
parse_assignments(const char *const *assignments, size_t n, struct edit_item *items, size_t *nitems,
                  str_t *err)
{
    str_t  *text = str_new(0), *why = str_new(0);
    bool    ok = true;

    *nitems = 0;
    for (size_t i = 0; ok && i < n; i++) {
        size_t  nlen, k;
        const char *value;

        if (strpbrk(assignments[i], "\r\n") != NULL) {
            str_printf(err, "bad assignment \"%s\": a value cannot contain a line break", assignments[i]);
            ok = false;
            break;
        }
        str_set_cstr(text, assignments[i]);
        str_trim(text);
        if (!parse_setting(str_cstr(text), &nlen, &value, why)) {
            str_printf(err, "bad assignment \"%s\": %s", assignments[i], str_cstr(why));
            ok = false;
            break;
        }
        for (k = 0; k < *nitems; k++)
            if (strlen(items[k].name) == nlen && memcmp(items[k].name, str_cstr(text), nlen) == 0)
                break;
        if (k == *nitems) {
            items[k].name = mem_strndup(str_cstr(text), nlen);
            items[k].value = NULL;
            items[k].done = false;
            (*nitems)++;
        }
        mem_free(items[k].value);
        items[k].value = mem_strdup(value);
    }
    str_free(text);
    str_free(why);
    return ok;
}

static void
append_setting(str_t *out, const struct edit_item *item)
{
    str_append_cstr(out, item->name);
    str_append_cstr(out, *item->value ? " = " : " =");
    str_append_cstr(out, item->value);
    str_putc(out, '\n');
}

/*
 * The new file text: every logical line that sets one of the items is
 * replaced (the first occurrence by the new setting, later ones removed);
 * all other bytes are copied unchanged; items not found are appended.
 */
static void
edit_text(const str_t *old, struct edit_item *items, size_t nitems, str_t *out)
{
    struct config_lines lr;
    str_t  *line = str_new(0), *why = str_new(0);
    size_t  copied = 0;
    int     rc;

    config_lines_init(&lr, str_cstr(old), str_len(old), 0);
    while ((rc = config_lines_next(&lr, line)) != CONFIG_LINES_END) {
        size_t  nlen, k;
        const char *value;

        if (rc != CONFIG_LINES_OK || !parse_setting(str_cstr(line), &nlen, &value, why))
            continue;
        for (k = 0; k < nitems; k++)
            if (strlen(items[k].name) == nlen && memcmp(items[k].name, str_cstr(line), nlen) == 0)
                break;
        if (k == nitems)
            continue;
        str_append(out, str_cstr(old) + copied, lr.start - copied);
        if (!items[k].done)
            append_setting(out, &items[k]);
        items[k].done = true;
        copied = lr.end;
    }
    str_append(out, str_cstr(old) + copied, str_len(old) - copied);
    for (size_t k = 0; k < nitems; k++) {
        if (items[k].done)
            continue;
        if (str_len(out) && str_cstr(out)[str_len(out) - 1] != '\n')
            str_putc(out, '\n');
        append_setting(out, &items[k]);
    }
    str_free(line);
    str_free(why);
}

/* Make a rename in dir durable. EINVAL (file systems that cannot) is not an error. */
static bool
sync_directory(const char *path, str_t *err)
{
    str_t  *dir = str_new(0);
    const char *slash = strrchr(path, '/');
    int     fd;
    bool    ok = true;

    if (slash == NULL)
        str_set_cstr(dir, ".");
    else if (slash == path)
        str_set_cstr(dir, "/");
    else
        str_set(dir, path, (size_t) (slash - path));
    if ((fd = open(str_cstr(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        str_printf(err, "open %s: %s", str_cstr(dir), strerror(errno));
        ok = false;
    } else {
        if (fsync(fd) != 0 && errno != EINVAL) {
            str_printf(err, "fsync %s: %s", str_cstr(dir), strerror(errno));
            ok = false;
        }
        (void) close(fd);
    }
    str_free(dir);
    return ok;
}

/*
 * Replace path with text atomically: a temporary file in the same
 * directory, with the given mode (and owner, when sb is not NULL and
 * differs from ours), written, fsync'ed, renamed over path.
 */
static bool
replace_file(const char *path, const str_t *text, mode_t mode, const struct stat *sb, str_t *err)
{
    str_t  *tmp = str_new(0);
    int     fd;
    bool    ok = false;

    str_printf(tmp, "%s.tmpXXXXXX", path);
    if ((fd = mkostemp(tmp->data, O_CLOEXEC)) < 0) {
        str_printf(err, "create temporary file %s: %s", str_cstr(tmp), strerror(errno));
        str_free(tmp);
        return false;
    }
    if (fchmod(fd, mode) != 0)
        str_printf(err, "chmod %s: %s", str_cstr(tmp), strerror(errno));
    else if (sb && (sb->st_uid != geteuid() || sb->st_gid != getegid())
             && fchown(fd, sb->st_uid, sb->st_gid) != 0)
        str_printf(err, "chown %s (to keep the owner of %s): %s", str_cstr(tmp), path, strerror(errno));
    else if (fd_write_all(fd, str_cstr(text), str_len(text)) != (ssize_t) str_len(text))
        str_printf(err, "write %s: %s", str_cstr(tmp), strerror(errno));
    else if (fsync(fd) != 0)
        str_printf(err, "fsync %s: %s", str_cstr(tmp), strerror(errno));
    else
        ok = true;
    if (close(fd) != 0 && ok) {
        str_printf(err, "close %s: %s", str_cstr(tmp), strerror(errno));
        ok = false;
    }
    if (ok && rename(str_cstr(tmp), path) != 0) {
        str_printf(err, "rename %s to %s: %s", str_cstr(tmp), path, strerror(errno));
        ok = false;
    }
    if (!ok)
        (void) unlink(str_cstr(tmp));
    else
        ok = sync_directory(path, err);
    str_free(tmp);
    return ok;
}

/*
 * See config.h. A symbolic link is followed: its target is edited. A new
 * file gets mode 0644. Indented comment lines between the first line and
 * the last continuation line of a replaced setting go with it.
 */
bool
config_edit_file(const char *path, const char *const *assignments, size_t n, str_t *err)
{
    struct edit_item *items = mem_array(n + 1, sizeof(*items));
    size_t  nitems = 0;
    str_t  *old = str_new(0), *out = str_new(0), *why = str_new(0);
    char   *target = NULL;
    struct stat sb;
    bool    exists, ok = false;

    if (!parse_assignments(assignments, n, items, &nitems, err))
        goto done;
    if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        char   *real = realpath(path, NULL);

        if (real == NULL) {
            str_printf(err, "%s: cannot resolve symbolic link: %s", path, strerror(errno));
            goto done;
        }
        target = mem_strdup(real);
        free(real);
    } else {
        target = mem_strdup(path);
    }
    if (stat(target, &sb) == 0) {
        exists = true;
        if (!S_ISREG(sb.st_mode)) {
            str_printf(err, "%s: not a regular file", target);
            goto done;
        }
        if (!config_read_text(target, CONFIG_FILE_MAX, old, err))
            goto done;
    } else if (errno == ENOENT) {
        exists = false;
    } else {
        str_printf(err, "stat %s: %s", target, strerror(errno));
        goto done;
    }
    edit_text(old, items, nitems, out);
    ok = replace_file(target, out, exists ? (sb.st_mode & 07777) : 0644, exists ? &sb : NULL, err);
  done:
    for (size_t i = 0; i < nitems; i++) {
        mem_free(items[i].name);
        mem_free(items[i].value);
    }
    mem_free(items);
    mem_free(target);
    str_free(old);
    str_free(out);
    str_free(why);
    return ok;
}
