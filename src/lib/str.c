/*
 * str.c - growable binary-safe strings; see str.h.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mem.h"
#include "str.h"

void
str_init(str_t *s)
{
    s->cap = 16;
    s->data = mem_alloc(s->cap);
    s->data[0] = 0;
    s->len = 0;
}

str_t *
str_new(size_t hint)
{
    str_t  *s = mem_alloc(sizeof(*s));

    s->cap = hint + 1 < 16 ? 16 : hint + 1;
    s->data = mem_alloc(s->cap);
    s->data[0] = 0;
    s->len = 0;
    return s;
}

void
str_release(str_t *s)
{
    mem_free(s->data);
    s->data = NULL;
    s->len = s->cap = 0;
}

void
str_free(str_t *s)
{
    if (s == NULL)
        return;
    mem_free(s->data);
    mem_free(s);
}

char *
str_steal(str_t *s)
{
    char   *p = s->data;

    mem_free(s);
    return p;
}

void
str_reserve(str_t *s, size_t extra)
{
    size_t  need;

    if (extra > SIZE_MAX - s->len - 1)
        log_panic("str_reserve: size overflow");
    need = s->len + extra + 1;
    if (need <= s->cap)
        return;
    size_t  ncap = s->cap ? s->cap : 16;

    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    s->data = mem_realloc(s->data, ncap);
    s->cap = ncap;
}

void
str_reset(str_t *s)
{
    s->len = 0;
    s->data[0] = 0;
}

void
str_truncate(str_t *s, size_t len)
{
    if (len < s->len) {
        s->len = len;
        s->data[len] = 0;
    }
}

void
str_append(str_t *s, const void *data, size_t n)
{
    if (n == 0)
        return;
    str_reserve(s, n);
    memmove(s->data + s->len, data, n);
    s->len += n;
    s->data[s->len] = 0;
}

void
str_append_cstr(str_t *s, const char *cstr)
{
    str_append(s, cstr, strlen(cstr));
}

void
str_append_str(str_t *s, const str_t *other)
{
    str_append(s, other->data, other->len);
}

void
str_putc(str_t *s, int c)
{
    str_reserve(s, 1);
    s->data[s->len++] = (char) c;
    s->data[s->len] = 0;
}

void
str_set(str_t *s, const void *data, size_t n)
{
    s->len = 0;
    str_reserve(s, n);
    if (n)
        memmove(s->data, data, n);
    s->len = n;
    s->data[n] = 0;
}

void
str_set_cstr(str_t *s, const char *cstr)
{
    str_set(s, cstr, strlen(cstr));
}

void
str_append_vprintf(str_t *s, const char *fmt, va_list ap)
{
    va_list ap2;
    int     n;

    va_copy(ap2, ap);
    n = vsnprintf(s->data + s->len, s->cap - s->len, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        log_panic("str_append_vprintf: bad format \"%s\"", fmt);
    if ((size_t) n >= s->cap - s->len) {
        str_reserve(s, (size_t) n);
        n = vsnprintf(s->data + s->len, s->cap - s->len, fmt, ap);
    }
    s->len += (size_t) n;
}

void
str_append_printf(str_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    str_append_vprintf(s, fmt, ap);
    va_end(ap);
}

void
str_printf(str_t *s, const char *fmt, ...)
{
    va_list ap;

    str_reset(s);
    va_start(ap, fmt);
    str_append_vprintf(s, fmt, ap);
    va_end(ap);
}

void
str_chomp(str_t *s)
{
    while (s->len > 0 && (s->data[s->len - 1] == '\n' || s->data[s->len - 1] == '\r'))
        s->data[--s->len] = 0;
}

void
str_trim(str_t *s)
{
    size_t  start = 0;

    while (s->len > 0 && isspace((unsigned char) s->data[s->len - 1]))
        s->data[--s->len] = 0;
    while (start < s->len && isspace((unsigned char) s->data[start]))
        start++;
    if (start) {
        memmove(s->data, s->data + start, s->len - start + 1);
        s->len -= start;
    }
}

void
str_lower(str_t *s)
{
    for (size_t i = 0; i < s->len; i++)
        s->data[i] = (char) tolower((unsigned char) s->data[i]);
}

bool
str_eq_cstr(const str_t *s, const char *cstr)
{
    size_t  n = strlen(cstr);

    return s->len == n && memcmp(s->data, cstr, n) == 0;
}

bool
cstr_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
cstr_case_has_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

char *
cstr_trim(char *s)
{
    char   *end;

    while (isspace((unsigned char) *s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char) end[-1]))
        *--end = 0;
    return s;
}

void
cstr_lower(char *s)
{
    for (; *s; s++)
        *s = (char) tolower((unsigned char) *s);
}

int
cstr_parse_long(const char *s, long *out)
{
    char   *end;
    long    v;

    if (*s == 0 || isspace((unsigned char) *s))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != 0)
        return -1;
    *out = v;
    return 0;
}

bool
cstr_parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"yes", "true", "on", "1", "y"};
    static const char *no[] = {"no", "false", "off", "0", "n"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}
