/*
 * str.h - binary-safe, length-carrying, growable strings.
 *
 * A str_t owns its buffer. The buffer is always NUL-terminated after "len"
 * bytes so that str_cstr() can be handed to C APIs, but the content may hold
 * NUL bytes: code that handles peer data must use str_data()/str_len().
 * Functions never fail (allocation failure is fatal, see mem.h).
 */
#ifndef POSTERN_STR_H
#define POSTERN_STR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct str {
    char   *data;
    size_t  len;
    size_t  cap;        /* allocated bytes, including room for the NUL */
} str_t;

#define STR_PRINTF(f, a) __attribute__((format(printf, f, a)))

str_t  *str_new(size_t hint);
void    str_free(str_t *s);                     /* NULL is fine */
void    str_init(str_t *s);                     /* for a str_t embedded in a struct */
void    str_release(str_t *s);                  /* frees the buffer of an embedded str_t */
char   *str_steal(str_t *s);                    /* returns the buffer, frees the str_t */

void    str_reset(str_t *s);
void    str_truncate(str_t *s, size_t len);
void    str_reserve(str_t *s, size_t extra);
void    str_append(str_t *s, const void *data, size_t n);
void    str_append_cstr(str_t *s, const char *cstr);
void    str_append_str(str_t *s, const str_t *other);
void    str_putc(str_t *s, int c);
void    str_set(str_t *s, const void *data, size_t n);
void    str_set_cstr(str_t *s, const char *cstr);
void    str_printf(str_t *s, const char *fmt, ...) STR_PRINTF(2, 3);
void    str_append_printf(str_t *s, const char *fmt, ...) STR_PRINTF(2, 3);
void    str_append_vprintf(str_t *s, const char *fmt, va_list ap) STR_PRINTF(2, 0);
void    str_chomp(str_t *s);                    /* strip trailing CR/LF */
void    str_trim(str_t *s);                     /* strip leading and trailing blanks */
void    str_lower(str_t *s);                    /* ASCII lower case in place */
bool    str_eq_cstr(const str_t *s, const char *cstr);

static inline const char *
str_cstr(const str_t *s)
{
    return s->data;
}

static inline size_t
str_len(const str_t *s)
{
    return s->len;
}

/* Small helpers for NUL-terminated C strings. */
bool    cstr_has_prefix(const char *s, const char *prefix);
bool    cstr_case_has_prefix(const char *s, const char *prefix);
char   *cstr_trim(char *s);                     /* in place; returns start */
void    cstr_lower(char *s);
int     cstr_parse_long(const char *s, long *out);  /* 0 ok, -1 not a number / overflow */
bool    cstr_parse_bool(const char *s, bool *out);  /* yes/no/true/false/1/0/on/off */

#endif
