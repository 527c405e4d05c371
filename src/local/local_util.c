/*
 * local_util.c - pure helpers of the local delivery agent: item lists,
 * class lists, address extensions, exit status mapping, macro expansion
 * and output cleaning.
 *
 * Nothing here does I/O or looks at the configuration, so
 * tests/unit/test_local.c exercises it directly. All input may come from
 * peers (addresses) or users (.forward files): every loop is bounded by the
 * input length and the caller's limits.
 */
#include <ctype.h>
#include <string.h>
#include <sysexits.h>

#include "local.h"
#include "mem.h"

#define MACRO_MAX_DEPTH 10
#define MACRO_NAME_MAX  64

/* Hand one raw item (trimmed, unquoted) to fn when non-empty. */
static bool
emit_item(str_t *item, void (*fn)(const char *, void *), void *ctx)
{
    str_trim(item);
    if (str_len(item) >= 2 && item->data[0] == '"' && item->data[str_len(item) - 1] == '"') {
        memmove(item->data, item->data + 1, str_len(item) - 2);
        str_truncate(item, str_len(item) - 2);
        str_trim(item);
    }
    if (str_len(item) == 0)
        return false;
    fn(str_cstr(item), ctx);
    return true;
}

/*
 * Split a list of items. A comma outside double quotes, or a newline,
 * ends an item; a backslash inside quotes keeps the next character. A line
 * whose first non-blank character is '#' is a comment (in .forward files).
 */
size_t
local_split_items(const char *text, size_t max, void (*fn)(const char *item, void *ctx),
                  void *ctx)
{
    str_t  *item = str_new(64);
    size_t  n = 0;
    bool    quoted = false, line_start = true;

    for (const char *p = text; *p && n < max; p++) {
        if (line_start) {
            const char *q = p;

            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '#') {
                while (*q && *q != '\n')
                    q++;
                if (*q == 0)
                    break;
                p = q;                  /* the newline */
                continue;
            }
            line_start = false;
        }
        if (*p == '\n') {
            line_start = true;
            quoted = false;
            n += emit_item(item, fn, ctx);
            str_reset(item);
            continue;
        }
        if (*p == '"') {
            quoted = !quoted;
        } else if (*p == '\\' && quoted && p[1] != 0 && p[1] != '\n') {
            str_putc(item, *p);
            p++;
        } else if (*p == ',' && !quoted) {
            n += emit_item(item, fn, ctx);
            str_reset(item);
            continue;
        }
        str_putc(item, *p);
    }
    if (n < max)
        n += emit_item(item, fn, ctx);
    str_free(item);
    return n;
}

int
local_class_mask(const char *text)
{
    int     mask = 0;
    const char *p = text;

    while (*p) {
        size_t  len;

        p += strspn(p, ", \t\r\n");
        len = strcspn(p, ", \t\r\n");
        if (len == 5 && strncasecmp(p, "alias", 5) == 0)
            mask |= LOCAL_CLASS_ALIAS;
        else if (len == 7 && strncasecmp(p, "forward", 7) == 0)
            mask |= LOCAL_CLASS_FORWARD;
        else if (len == 7 && strncasecmp(p, "include", 7) == 0)
            mask |= LOCAL_CLASS_INCLUDE;
        p += len;
    }
    return mask;
}

void
local_split_ext(const char *local, const char *delim, str_t *user, str_t *ext)
{
    size_t  cut = strlen(local);

    str_reset(user);
    str_reset(ext);
    if (delim && *delim && *local && strchr(delim, *local) == NULL) {
        size_t  pos = strcspn(local, delim);

        if (local[pos] != 0)
            cut = pos;
    }
    str_set(user, local, cut);
    if (local[cut] != 0)
        str_set_cstr(ext, local + cut + 1);
}

static const struct {
    int     code;
    enum local_status status;
    const char *dsn;
    const char *text;
} exit_table[] = {
    {EX_USAGE, LOCAL_BOUNCE, "5.3.0", "command line usage error"},
    {EX_DATAERR, LOCAL_BOUNCE, "5.6.0", "data format error"},
    {EX_NOINPUT, LOCAL_BOUNCE, "5.3.0", "cannot open input"},
    {EX_NOUSER, LOCAL_BOUNCE, "5.1.1", "user unknown"},
    {EX_NOHOST, LOCAL_BOUNCE, "5.1.2", "host name unknown"},
    {EX_UNAVAILABLE, LOCAL_BOUNCE, "5.3.0", "service unavailable"},
    {EX_SOFTWARE, LOCAL_BOUNCE, "5.3.0", "internal software error"},
    {EX_OSERR, LOCAL_DEFER, "4.3.0", "system resource problem"},
    {EX_OSFILE, LOCAL_BOUNCE, "5.3.0", "critical system file missing"},
    {EX_CANTCREAT, LOCAL_BOUNCE, "5.2.0", "cannot create output file"},
    {EX_IOERR, LOCAL_DEFER, "4.3.0", "input/output error"},
    {EX_TEMPFAIL, LOCAL_DEFER, "4.3.0", "temporary failure"},
    {EX_PROTOCOL, LOCAL_BOUNCE, "5.5.0", "remote protocol error"},
    {EX_NOPERM, LOCAL_BOUNCE, "5.7.0", "permission denied"},
    {EX_CONFIG, LOCAL_BOUNCE, "5.3.5", "local configuration error"},
};

enum local_status
local_exit_status(int code, const char **dsn, const char **text)
{
    if (code == 0) {
        *dsn = "2.0.0";
        *text = "success";
        return LOCAL_SENT;
    }
    for (size_t i = 0; i < sizeof(exit_table) / sizeof(exit_table[0]); i++) {
        if (exit_table[i].code == code) {
            *dsn = exit_table[i].dsn;
            *text = exit_table[i].text;
            return exit_table[i].status;
        }
    }
    *dsn = "5.3.0";
    *text = "unknown mail system error";
    return LOCAL_BOUNCE;
}

static bool
is_name_char(int c)
{
    return isalnum(c) || c == '_';
}

/* Find the '}' that closes the brace opened just before p; NULL if none. */
static const char *
closing_brace(const char *p)
{
    int     level = 1;

    for (; *p; p++) {
        if (*p == '{')
            level++;
        else if (*p == '}' && --level == 0)
            return p;
    }
    return NULL;
}

static bool
expand(const char *text, size_t len, const char *(*lookup)(const char *, void *), void *ctx,
       str_t *out, int depth)
{
    const char *p = text, *end = text + len;

    if (depth > MACRO_MAX_DEPTH)
        return false;
    while (p < end) {
        const char *dollar = memchr(p, '$', (size_t) (end - p));
        char    name[MACRO_NAME_MAX + 1];
        size_t  nlen = 0;
        const char *value;

        if (dollar == NULL) {
            str_append(out, p, (size_t) (end - p));
            break;
        }
        str_append(out, p, (size_t) (dollar - p));
        p = dollar + 1;
        if (p < end && *p == '$') {
            str_putc(out, '$');
            p++;
            continue;
        }
        if (p < end && (*p == '{' || *p == '(')) {
            char    close = *p == '{' ? '}' : ')';
            const char *body = p + 1, *stop;

            while (body + nlen < end && is_name_char((unsigned char) body[nlen]))
                nlen++;
            if (nlen == 0 || nlen > MACRO_NAME_MAX)
                return false;
            memcpy(name, body, nlen);
            name[nlen] = 0;
            value = lookup(name, ctx);
            p = body + nlen;
            if (p < end && *p == close) {
                if (value)
                    str_append_cstr(out, value);
                p++;
                continue;
            }
            if (close != '}' || p >= end || (*p != '?' && *p != ':'))
                return false;
            char    op = *p++;
            const char *alt;
            bool    braced = p < end && *p == '{';

            if (braced) {
                /* Postfix 3 form ${name?{text}} or ${name?{a}:{b}}. */
                stop = closing_brace(p + 1);
                if (stop == NULL || stop >= end)
                    return false;
                alt = p + 1;
                const char *after = stop + 1;
                const char *else_text = NULL, *else_end = NULL;

                if (after < end && *after == ':' && after + 1 < end && after[1] == '{') {
                    else_end = closing_brace(after + 2);
                    if (else_end == NULL || else_end >= end)
                        return false;
                    else_text = after + 2;
                    after = else_end + 1;
                }
                if (after >= end || *after != '}')
                    return false;
                bool    set = value && *value;
                bool    take = op == '?' ? set : !set;

                if (take) {
                    if (!expand(alt, (size_t) (stop - alt), lookup, ctx, out, depth + 1))
                        return false;
                } else if (op == '?' && else_text) {
                    if (!expand(else_text, (size_t) (else_end - else_text), lookup, ctx, out,
                                depth + 1))
                        return false;
                } else if (op == ':' && value) {
                    str_append_cstr(out, value);
                }
                p = after + 1;
                continue;
            }
            stop = closing_brace(p);
            if (stop == NULL || stop >= end)
                return false;
            alt = p;
            bool    set = value && *value;

            if (op == '?') {
                if (set && !expand(alt, (size_t) (stop - alt), lookup, ctx, out, depth + 1))
                    return false;
            } else if (!set) {
                if (!expand(alt, (size_t) (stop - alt), lookup, ctx, out, depth + 1))
                    return false;
            } else {
                str_append_cstr(out, value);
            }
            p = stop + 1;
            continue;
        }
        while (p + nlen < end && is_name_char((unsigned char) p[nlen]))
            nlen++;
        if (nlen == 0 || nlen > MACRO_NAME_MAX)
            return false;
        memcpy(name, p, nlen);
        name[nlen] = 0;
        p += nlen;
        if ((value = lookup(name, ctx)) != NULL)
            str_append_cstr(out, value);
    }
    return true;
}

bool
local_expand_macros(const char *text, const char *(*lookup)(const char *name, void *ctx),
                    void *ctx, str_t *out)
{
    str_reset(out);
    return expand(text, strlen(text), lookup, ctx, out, 0);
}

void
local_clean_text(str_t *out, const char *data, size_t len, size_t max)
{
    bool    blank = str_len(out) == 0 || out->data[str_len(out) - 1] == ' ';

    for (size_t i = 0; i < len && str_len(out) < max; i++) {
        unsigned char c = (unsigned char) data[i];

        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (!blank)
                str_putc(out, ' ');
            blank = true;
        } else {
            str_putc(out, (c >= 0x21 && c < 0x7f) ? (char) c : '?');
            blank = false;
        }
    }
    while (str_len(out) > 0 && out->data[str_len(out) - 1] == ' ')
        str_truncate(out, str_len(out) - 1);
}
