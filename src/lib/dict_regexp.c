/*
 * dict_regexp.c - "regexp:/path/file": tables of POSIX extended regular
 * expressions (regcomp/regexec), in the syntax of dict_pattern.c.
 *
 * Flags after the closing delimiter toggle a setting:
 *     i   case-insensitive matching (on by default, so "i" turns it off)
 *     x   extended syntax (on by default, so "x" selects basic syntax)
 *     m   newline-sensitive matching: "^"/"$" match at embedded newlines
 *         and "." does not match a newline (off by default)
 * Any other flag makes the line a warning and skips it.
 *
 * Patterns whose compiled form would be huge (stacked or large repetition
 * counts, see regexp_cost) are refused like any other bad pattern.
 *
 * Keys are matched as given (DICT_FLAG_PATTERN: dict.c does not fold them);
 * case-insensitivity is the pattern's business. glibc's regexec has no
 * resource limit; keys are at most DICT_KEY_MAX bytes, which bounds its
 * work on the back-references ERE does not need.
 */
#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dict_pattern.h"
#include "mem.h"

#define REGEXP_ERRBUF   256

struct regexp_handle {
    regex_t re;
};

/*
 * glibc's regcomp copies a sub-expression once per repetition it needs
 * ("a{1,500}", and one copy more for every stacked "+"), so a short pattern
 * such as "a++++++++++++++++++++++++++++++" asks for gigabytes. Estimate the
 * size of the compiled tree from the pattern first: every atom counts 1, a
 * group the sum of its parts, and a repetition multiplies what it repeats
 * (by 2 for "+", "*", "?", by the largest count for "{m,n}"). Patterns over
 * REGEXP_COST_MAX are refused before regcomp sees them, and so are stacked
 * repetition operators ("a++", "a*?": undefined in POSIX EREs, and what
 * makes glibc slow). The estimate is deliberately rough and errs on the
 * large side.
 */
#define REGEXP_COST_MAX     20000.0
#define REGEXP_NEST_MAX     256

static double
regexp_cost(const char *p, bool extended)
{
    double  sum[REGEXP_NEST_MAX + 1];   /* size of each open group so far */
    double  last[REGEXP_NEST_MAX + 1];  /* size of the last atom in it */
    int     depth = 0;
    bool    after_rep = false;

    sum[0] = last[0] = 0;
    while (*p) {
        double  atom = 1;
        double  times = 0;              /* > 0: a repetition of the last atom */
        bool    open = false, close = false;

        if (*p == '\\' && p[1] != 0) {
            char    c = p[1];

            p += 2;
            if (!extended && c == '(')
                open = true;
            else if (!extended && c == ')')
                close = true;
            else if (!extended && (c == '+' || c == '?'))
                times = 2;
            else if (!extended && c == '{') {
                long    n = strtol(p, NULL, 10);

                times = n < 1 ? 2 : (double) n + 1;
                while (*p && !(p[0] == '\\' && p[1] == '}'))
                    p++;
                if (*p)
                    p += 2;
                if (p[-1] != '}')
                    times = 2;
            }
        } else if (*p == '[') {         /* a bracket expression is one atom */
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p && *p != ']') {
                if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
                    char    kind = p[1];

                    p += 2;
                    while (*p && !(p[0] == kind && p[1] == ']'))
                        p++;
                    if (*p)
                        p++;
                }
                if (*p)
                    p++;
            }
            if (*p)
                p++;
        } else if (extended && *p == '(') {
            open = true;
            p++;
        } else if (extended && *p == ')') {
            close = true;
            p++;
        } else if (*p == '*' || (extended && (*p == '+' || *p == '?'))) {
            times = 2;
            p++;
        } else if (extended && *p == '{') {
            char   *end;
            long    n = strtol(p + 1, &end, 10);

            /* Bound the counts first (RE_DUP_MAX is far lower), so n + 1 cannot overflow. */
            if (n < 0 || n > 65536)
                n = 65536;
            if (*end == ',') {
                long    m = strtol(end + 1, &end, 10);

                if (m < 0 || m > 65536)
                    m = 65536;
                if (m > n)
                    n = m;
                else if (m == 0)
                    n += 1;
            }
            times = n < 1 ? 2 : (double) n + 1;
            p = *end == '}' ? end + 1 : p + 1;
        } else {
            p++;
        }
        if (open) {
            if (depth == REGEXP_NEST_MAX)
                return REGEXP_COST_MAX + 1;
            depth++;
            sum[depth] = last[depth] = 0;
        } else if (close && depth > 0) {
            atom = sum[depth--] + 1;
            sum[depth] += atom;
            last[depth] = atom;
        } else if (times > 0) {
            if (after_rep)
                return REGEXP_COST_MAX + 1;     /* "a++", "a*{2}": undefined, and costly in glibc */
            double  grown = last[depth] * times;

            sum[depth] += grown - last[depth];
            last[depth] = grown;
        } else {
            sum[depth] += atom;
            last[depth] = atom;
        }
        after_rep = times > 0;
        if (sum[depth] > REGEXP_COST_MAX)
            return sum[depth];
    }
    while (depth > 0) {                 /* unbalanced: regcomp will say so */
        double  inner = sum[depth--];

        sum[depth] += inner;
    }
    return sum[0];
}

static void *
regexp_compile(const char *pattern, const char *flags, int *ngroups, str_t *err)
{
    int     cflags = REG_EXTENDED | REG_ICASE;
    struct regexp_handle *h;
    int     rc;

    for (const char *f = flags; *f; f++) {
        switch (*f) {
        case 'i':
            cflags ^= REG_ICASE;
            break;
        case 'x':
            cflags ^= REG_EXTENDED;
            break;
        case 'm':
            cflags ^= REG_NEWLINE;
            break;
        default:
            str_printf(err, "unknown flag \"%c\" (regexp tables know i, m and x)", *f);
            return NULL;
        }
    }
    if (regexp_cost(pattern, (cflags & REG_EXTENDED) != 0) > REGEXP_COST_MAX) {
        str_set_cstr(err, "pattern too complex (stacked repetitions such as \"a++\", or repetition counts "
                     "that multiply to a huge expression)");
        return NULL;
    }
    h = mem_zalloc(sizeof(*h));
    if ((rc = regcomp(&h->re, pattern, cflags)) != 0) {
        char    buf[REGEXP_ERRBUF];

        regerror(rc, &h->re, buf, sizeof(buf));
        str_set_cstr(err, buf);
        mem_free(h);
        return NULL;
    }
    *ngroups = (int) h->re.re_nsub;
    return h;
}

static int
regexp_match(void *handle, const char *key, size_t len, struct dict_pattern_span *spans, int nspans,
             str_t *err)
{
    struct regexp_handle *h = handle;
    regmatch_t pm[DICT_PATTERN_GROUPS];
    int     rc;

    if (nspans > DICT_PATTERN_GROUPS)
        nspans = DICT_PATTERN_GROUPS;
    rc = regexec(&h->re, key, (size_t) nspans, pm, 0);
    if (rc == REG_NOMATCH)
        return 0;
    if (rc != 0) {
        char    buf[REGEXP_ERRBUF];

        regerror(rc, &h->re, buf, sizeof(buf));
        str_printf(err, "regexec: %s", buf);
        return -1;
    }
    for (int i = 0; i < nspans; i++) {
        spans[i].start = pm[i].rm_so;
        spans[i].end = pm[i].rm_eo;
        if (spans[i].start < 0 || spans[i].end > (long) len)
            spans[i].start = spans[i].end = -1;
    }
    return 1;
}

static void
regexp_free(void *handle)
{
    struct regexp_handle *h = handle;

    regfree(&h->re);
    mem_free(h);
}

static const struct dict_pattern_engine regexp_engine = {
    .type = "regexp",
    .compile = regexp_compile,
    .match = regexp_match,
    .free = regexp_free,
};

dict_t *
dict_regexp_open(const char *name, int flags, str_t *err)
{
    return dict_pattern_open(&regexp_engine, name, flags, err);
}
