/*
 * dict_pattern.h - the table syntax shared by regexp: and pcre: tables
 * (internal to dict_regexp.c, dict_pcre.c and dict_pattern.c).
 *
 * dict_pattern.c reads the file (rules, if/endif, result templates with $n
 * references) and runs lookups; a small engine supplies the regular
 * expressions: POSIX <regex.h> for regexp:, PCRE2 for pcre:. The syntax is
 * described for users in docs/tables.md.
 */
#ifndef POSTERN_DICT_PATTERN_H
#define POSTERN_DICT_PATTERN_H

#include "dict.h"

#define DICT_PATTERN_GROUPS     100     /* $0..$99 */

/* Where group n matched in the key: [start, end), or start < 0 when it did not take part. */
struct dict_pattern_span {
    long    start;
    long    end;
};

struct dict_pattern_engine {
    const char *type;           /* "regexp", "pcre" (static) */
    /*
     * Compile pattern (a C string) with the flag letters in flags (a C
     * string, possibly empty). Returns an opaque handle and the number of
     * capture groups in *ngroups, or NULL with err set to the reason
     * (without file or line: the caller adds them).
     */
    void   *(*compile)(const char *pattern, const char *flags, int *ngroups, str_t *err);
    /*
     * Match key (len bytes, NUL-terminated). Returns 1 and fills
     * spans[0..nspans-1] on a match, 0 when it does not match, -1 with err
     * set when the engine could not decide (a resource limit).
     */
    int     (*match)(void *handle, const char *key, size_t len,
                     struct dict_pattern_span *spans, int nspans, str_t *err);
    void    (*free)(void *handle);
};

/*
 * Open a pattern table file with the given engine. Lines that cannot be used
 * are warnings (dict_warn, "FILE, line N: ...") and are skipped; only a file
 * that cannot be read fails the open.
 */
dict_t *dict_pattern_open(const struct dict_pattern_engine *eng, const char *name, int flags,
                          str_t *err);

#endif
