/*
 * mastercf.c - master.cf: the service table; see mastercf.h.
 *
 * Logical lines come from the shared reader in config.c (same continuation
 * and comment rules as main.cf). Each logical line is split into fields at
 * white space; a field that starts with "{" runs to the matching "}" and may
 * hold white space (Postfix 3): "{ text }" becomes "text". Then the eight
 * fields are checked, and "-o name=value" options at the start of the
 * command's arguments (before the first argument that is not an option, as
 * getopt would see them) are moved from argv to opts.
 *
 * Trust: master.cf is checked, not believed. A bad line becomes one
 * diagnostic naming file and line, and no entry; the rest of the file is
 * still read. Sizes are bounded: a file of at most MASTERCF_FILE_MAX bytes,
 * logical lines of at most MASTERCF_LINE_MAX bytes; the number of fields
 * and entries grows dynamically.
 *
 * Ownership: the struct mastercf owns every entry and every string in it;
 * mastercf_free releases them all.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "mastercf.h"
#include "mem.h"
#include "str.h"

#define MASTERCF_FILE_MAX   (16 * 1024 * 1024)
#define MASTERCF_LINE_MAX   (1024 * 1024)
#define MASTERCF_FIELDS     8       /* service type private unpriv chroot wakeup maxproc command */
#define QUOTE_MAX           100     /* longest piece of input quoted in a diagnostic */

static const char *const type_names[] = {
    [MASTERCF_INET] = "inet",
    [MASTERCF_UNIX] = "unix",
    [MASTERCF_UNIX_DGRAM] = "unix-dgram",
    [MASTERCF_FIFO] = "fifo",
    [MASTERCF_PASS] = "pass",
};

const char *
mastercf_type_name(enum mastercf_type type)
{
    if ((size_t) type >= sizeof(type_names) / sizeof(type_names[0]))
        log_panic("mastercf_type_name: bad type %d", (int) type);
    return type_names[type];
}

static bool
is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool
valid_param_name(const char *s)
{
    if (*s == 0)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '_'))
            return false;
    return true;
}

/* The fields of one logical line. */
struct fields {
    char  **v;
    size_t  n;
    size_t  cap;
};

static void
fields_reset(struct fields *f)
{
    for (size_t i = 0; i < f->n; i++)
        mem_free(f->v[i]);
    f->n = 0;
}

static void
fields_push(struct fields *f, const char *p, size_t len)
{
    f->v = mem_grow_array(f->v, &f->cap, f->n + 1, sizeof(*f->v));
    f->v[f->n++] = mem_strndup(p, len);
}

/*
 * Split a logical line into fields. "{ text }" is one field holding "text"
 * (blanks after "{" and before "}" dropped; nested braces allowed). Fails
 * on a missing "}" or text glued to a closing "}".
 */
static bool
split_fields(const char *line, struct fields *f, str_t *why)
{
    const char *p = line;

    for (;;) {
        while (is_blank((unsigned char) *p))
            p++;
        if (*p == 0)
            return true;
        if (*p == '{') {
            const char *start = p + 1, *q = start, *end;
            int     depth = 1;

            for (; *q && depth; q++) {
                if (*q == '{')
                    depth++;
                else if (*q == '}')
                    depth--;
            }
            if (depth) {
                str_printf(why, "missing \"}\" after \"%.*s\"", QUOTE_MAX, p);
                return false;
            }
            if (*q && !is_blank((unsigned char) *q)) {
                str_printf(why, "need white space after \"}\" in \"%.*s\"",
                           (int) ((size_t) (q - p) + 1 > QUOTE_MAX ? QUOTE_MAX : (size_t) (q - p) + 1), p);
                return false;
            }
            end = q - 1;            /* the closing brace */
            while (start < end && is_blank((unsigned char) *start))
                start++;
            while (end > start && is_blank((unsigned char) end[-1]))
                end--;
            fields_push(f, start, (size_t) (end - start));
            p = q;
        } else {
            const char *q = p;

            while (*q && !is_blank((unsigned char) *q))
                q++;
            fields_push(f, p, (size_t) (q - p));
            p = q;
        }
    }
}

static void
entry_free(struct mastercf_entry *e)
{
    mem_free(e->service);
    if (e->argv) {
        for (int i = 0; i < e->argc; i++)
            mem_free(e->argv[i]);
        mem_free(e->argv);
    }
    for (size_t i = 0; i < e->nopts; i++) {
        mem_free(e->opts[i].name);
        mem_free(e->opts[i].value);
    }
    mem_free(e->opts);
    mem_free(e->file);
    memset(e, 0, sizeof(*e));
}

void
mastercf_free(struct mastercf *mc)
{
    for (size_t i = 0; i < mc->count; i++)
        entry_free(&mc->entries[i]);
    mem_free(mc->entries);
    mc->entries = NULL;
    mc->count = 0;
}

static bool
parse_type(const char *s, enum mastercf_type *type)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *type = (enum mastercf_type) i;
            return true;
        }
    }
    return false;
}

/* y, n or - (def). */
static bool
parse_yn(const char *s, const char *field, bool def, bool *out, str_t *why)
{
    if (strcmp(s, "y") == 0)
        *out = true;
    else if (strcmp(s, "n") == 0)
        *out = false;
    else if (strcmp(s, "-") == 0)
        *out = def;
    else {
        str_printf(why, "bad \"%s\" field \"%.*s\": need y, n or -", field, QUOTE_MAX, s);
        return false;
    }
    return true;
}

/* Decimal digits only, at most INT_MAX; the rest of the string must be "tail". */
static bool
parse_count(const char *s, const char *tail, int *out)
{
    long    n = 0;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        n = n * 10 + (*s - '0');
        if (n > INT_MAX)
            return false;
    }
    if (strcmp(s, tail) != 0)
        return false;
    *out = (int) n;
    return true;
}

/* "name=value" or (from braces) "name = value": blanks around both are dropped. */
static bool
parse_option(const char *arg, struct mastercf_entry *e, str_t *why)
{
    const char *eq = strchr(arg, '=');
    const char *ns = arg, *ne, *vs, *ve;

    if (eq == NULL) {
        str_printf(why, "bad -o argument \"%.*s\": need name=value", QUOTE_MAX, arg);
        return false;
    }
    while (ns < eq && is_blank((unsigned char) *ns))
        ns++;
    for (ne = eq; ne > ns && is_blank((unsigned char) ne[-1]); ne--)
        ;
    for (vs = eq + 1; is_blank((unsigned char) *vs); vs++)
        ;
    for (ve = vs + strlen(vs); ve > vs && is_blank((unsigned char) ve[-1]); ve--)
        ;
    char   *name = mem_strndup(ns, (size_t) (ne - ns));

    if (!valid_param_name(name)) {
        str_printf(why, "bad parameter name \"%.*s\" in -o argument: use only letters, digits and \"_\"",
                   QUOTE_MAX, name);
        mem_free(name);
        return false;
    }
    e->opts = mem_realloc(e->opts, (e->nopts + 1) * sizeof(*e->opts));
    e->opts[e->nopts].name = name;
    e->opts[e->nopts].value = mem_strndup(vs, (size_t) (ve - vs));
    e->nopts++;
    return true;
}

/*
 * The command and its arguments: argv gets every field from the eighth on,
 * except "-o" options (and their arguments) among the leading options.
 */
static bool
parse_command(const struct fields *f, struct mastercf_entry *e, str_t *why)
{
    bool    options = true;

    if (*f->v[MASTERCF_FIELDS - 1] == 0) {
        str_printf(why, "empty command name");
        return false;
    }
    e->argv = mem_array(f->n - (MASTERCF_FIELDS - 1) + 1, sizeof(*e->argv));
    e->argv[e->argc++] = mem_strdup(f->v[MASTERCF_FIELDS - 1]);
    for (size_t i = MASTERCF_FIELDS; i < f->n; i++) {
        const char *a = f->v[i];

        if (options && strcmp(a, "-o") == 0) {
            if (i + 1 >= f->n) {
                str_printf(why, "-o without a name=value argument");
                return false;
            }
            if (!parse_option(f->v[++i], e, why))
                return false;
            continue;
        }
        if (a[0] != '-' || a[1] == 0 || strcmp(a, "--") == 0)
            options = false;
        if (e->argc == INT_MAX) {
            str_printf(why, "too many arguments");
            return false;
        }
        e->argv[e->argc++] = mem_strdup(a);
    }
    e->argv[e->argc] = NULL;
    return true;
}

/* Check the fields of one line and fill e (which the caller frees on failure). */
static bool
parse_entry(const struct fields *f, struct mastercf_entry *e, str_t *why)
{
    const char *wakeup, *maxproc;

    if (f->n < MASTERCF_FIELDS) {
        str_printf(why, "wrong number of fields (%zu): need at least %d", f->n, MASTERCF_FIELDS);
        return false;
    }
    wakeup = f->v[5];
    maxproc = f->v[6];
    if (!parse_type(f->v[1], &e->type)) {
        str_printf(why, "unknown service type \"%.*s\": need inet, unix, unix-dgram, fifo or pass",
                   QUOTE_MAX, f->v[1]);
        return false;
    }
    e->service = mem_strdup(f->v[0]);
    if (*e->service == 0) {
        str_printf(why, "empty service name");
        return false;
    }
    if (e->type != MASTERCF_INET && (strchr(e->service, '/') || e->service[0] == '.')) {
        str_printf(why, "bad %s service name \"%.*s\": must not contain \"/\" or start with \".\"",
                   type_names[e->type], QUOTE_MAX, e->service);
        return false;
    }
    /* "-" means "not private" for inet, which cannot be private. */
    if (!parse_yn(f->v[2], "private", e->type != MASTERCF_INET, &e->private_, why)
        || !parse_yn(f->v[3], "unpriv", true, &e->unpriv, why)
        || !parse_yn(f->v[4], "chroot", false, &e->chroot, why))
        return false;
    if (e->type == MASTERCF_INET && e->private_) {
        str_printf(why, "inet service \"%.*s\" cannot be private", QUOTE_MAX, e->service);
        return false;
    }
    if (strcmp(wakeup, "-") == 0)
        e->wakeup = 0;
    else if (parse_count(wakeup, "", &e->wakeup))
        ;
    else if (parse_count(wakeup, "?", &e->wakeup))
        e->wakeup_if_used = e->wakeup > 0;
    else {
        str_printf(why, "bad \"wakeup\" field \"%.*s\": need a number of seconds, N? or -",
                   QUOTE_MAX, wakeup);
        return false;
    }
    if (strcmp(maxproc, "-") == 0)
        e->maxproc = -1;
    else if (!parse_count(maxproc, "", &e->maxproc)) {
        str_printf(why, "bad \"maxproc\" field \"%.*s\": need a number or -", QUOTE_MAX, maxproc);
        return false;
    }
    return parse_command(f, e, why);
}

/* An index of (service, type) pairs already defined, to refuse duplicates. */
struct seen {
    size_t *slots;              /* entry index + 1; 0 = free */
    size_t  nslots;             /* a power of two, or 0 */
    size_t  count;
};

static size_t
seen_hash(const char *service, enum mastercf_type type)
{
    uint64_t h = 14695981039346656037ULL ^ (uint64_t) type;

    for (const unsigned char *p = (const unsigned char *) service; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return (size_t) h;
}

/* The entry with the same service and type, or NULL. */
static const struct mastercf_entry *
seen_find(const struct seen *s, const struct mastercf_entry *entries, const struct mastercf_entry *e)
{
    if (s->nslots == 0)
        return NULL;
    for (size_t i = seen_hash(e->service, e->type) & (s->nslots - 1); s->slots[i];
         i = (i + 1) & (s->nslots - 1)) {
        const struct mastercf_entry *o = &entries[s->slots[i] - 1];

        if (o->type == e->type && strcmp(o->service, e->service) == 0)
            return o;
    }
    return NULL;
}

static void
seen_slot(size_t *slots, size_t nslots, const struct mastercf_entry *entries, size_t idx)
{
    size_t  i = seen_hash(entries[idx].service, entries[idx].type) & (nslots - 1);

    while (slots[i])
        i = (i + 1) & (nslots - 1);
    slots[i] = idx + 1;
}

static void
seen_add(struct seen *s, const struct mastercf_entry *entries, size_t idx)
{
    if ((s->count + 1) * 2 > s->nslots) {
        size_t  n = s->nslots ? s->nslots * 2 : 64;
        size_t *slots = mem_array(n, sizeof(*slots));

        for (size_t i = 0; i < s->nslots; i++)
            if (s->slots[i])
                seen_slot(slots, n, entries, s->slots[i] - 1);
        mem_free(s->slots);
        s->slots = slots;
        s->nslots = n;
    }
    seen_slot(s->slots, s->nslots, entries, idx);
    s->count++;
}

/*
 * Parse master.cf text. mc is initialised here (any previous content is not
 * freed); entries with problems are left out and reported in diags. Always
 * returns 0.
 */
int
mastercf_read_string(const char *file, const char *text, size_t len, struct mastercf *mc,
                     diag_list_t *diags)
{
    struct config_lines lr;
    struct fields f = {0};
    struct seen seen = {0};
    str_t  *line = str_new(0), *why = str_new(0);
    size_t  cap = 0;
    int     rc;

    if (file == NULL)
        file = "master.cf";
    mc->entries = NULL;
    mc->count = 0;
    config_lines_init(&lr, text, len, MASTERCF_LINE_MAX);
    while ((rc = config_lines_next(&lr, line)) != CONFIG_LINES_END) {
        struct mastercf_entry e = {0};
        const struct mastercf_entry *dup;

        if (rc == CONFIG_LINES_BAD) {
            diag_add(diags, DIAG_ERROR, file, lr.first, "%s", str_cstr(line));
            continue;
        }
        fields_reset(&f);
        if (!split_fields(str_cstr(line), &f, why) || !parse_entry(&f, &e, why)) {
            diag_add(diags, DIAG_ERROR, file, lr.first, "%s", str_cstr(why));
            entry_free(&e);
            continue;
        }
        if ((dup = seen_find(&seen, mc->entries, &e)) != NULL) {
            diag_add(diags, DIAG_ERROR, file, lr.first,
                     "duplicate service \"%.*s\" type %s (first defined on line %d)",
                     QUOTE_MAX, e.service, type_names[e.type], dup->line);
            entry_free(&e);
            continue;
        }
        e.file = mem_strdup(file);
        e.line = lr.first;
        mc->entries = mem_grow_array(mc->entries, &cap, mc->count + 1, sizeof(*mc->entries));
        mc->entries[mc->count] = e;
        seen_add(&seen, mc->entries, mc->count);
        mc->count++;
    }
    fields_reset(&f);
    mem_free(f.v);
    mem_free(seen.slots);
    str_free(line);
    str_free(why);
    return 0;
}

int
mastercf_read_file(const char *path, struct mastercf *mc, diag_list_t *diags)
{
    str_t  *text = str_new(0), *err = str_new(0);
    int     rc = 0;

    if (!config_read_text(path, MASTERCF_FILE_MAX, text, err)) {
        mc->entries = NULL;
        mc->count = 0;
        diag_add(diags, DIAG_ERROR, NULL, 0, "%s", str_cstr(err));
        rc = -1;
    } else {
        (void) mastercf_read_string(path, str_cstr(text), str_len(text), mc, diags);
    }
    str_free(text);
    str_free(err);
    return rc;
}
