/*
 * dict_pattern.c - regexp:/pcre: table files: parsing and lookup, with the
 * regular expressions themselves left to an engine (see dict_pattern.h).
 *
 * Each logical line (dict_reader_next: comments, blank lines and
 * continuation lines as in postmap files) is one of
 *
 *     /pattern/flags   result        the result when the key matches
 *     !/pattern/flags  result        the result when the key does not match
 *     if /pattern/flags              the lines up to the matching endif are
 *     if !/pattern/flags             used only when the key matches (or not)
 *     endif
 *
 * The delimiter is the first character of the pattern, any character that
 * is not a letter, digit, white space or backslash; a backslash in the
 * pattern protects the character after it (both are passed on to the
 * engine). Flag letters follow the closing delimiter; the engine checks
 * them. The result is the rest of the line; "$n", "${n}" and "$(n)" insert
 * what group n matched (empty when it did not take part), "$$" is a "$".
 * A "$" followed by anything else is kept as it is, except "$" before a
 * letter, which is refused so that a Postfix "$name" does not pass
 * silently.
 *
 * Lines are tried in file order and the first match wins. A line that
 * cannot be used (bad pattern, unknown flag, missing result, a $n beyond the
 * pattern's groups or in a negative rule, a stray endif) is a warning naming
 * file and line, and is skipped; the rest of the table still works. An if
 * without endif is closed at the end of the file, with a warning.
 *
 * Expanded results are bounded by DICT_LINE_MAX bytes; a longer one is a
 * lookup error, as is an engine that gives up (a match resource limit):
 * a DICT_ERROR makes the caller defer, which is safer than a guess.
 */
#include <ctype.h>
#include <string.h>

#include "dict_pattern.h"
#include "mem.h"

enum pattern_kind {
    RULE_MATCH,
    RULE_IF,
    RULE_ENDIF,
};

struct pattern_rule {
    enum pattern_kind kind;
    bool    negate;
    int     line;
    int     ngroups;            /* capture groups in the pattern */
    void   *re;                 /* engine handle (MATCH, IF) */
    char   *result;             /* template (MATCH) */
    size_t  skip_to;            /* IF: the rule after its endif */
};

struct dict_pattern {
    dict_t  dict;
    const struct dict_pattern_engine *eng;
    struct pattern_rule *rules;
    size_t  count;
    size_t  cap;
};

/*
 * Parse a "$" reference at p (p[0] == '$'). Returns the number of bytes it
 * takes and sets *group (-1 for "$$" and for a "$" kept as text); returns 0
 * for a malformed reference.
 */
static size_t
pattern_ref(const char *p, int *group)
{
    *group = -1;
    if (p[1] == '$')
        return 2;
    if (isdigit((unsigned char) p[1])) {
        *group = p[1] - '0';
        return 2;
    }
    if (p[1] == '{' || p[1] == '(') {
        char    close = p[1] == '{' ? '}' : ')';
        int     n = 0;
        size_t  i = 2;

        while (isdigit((unsigned char) p[i]) && i < 4)
            n = n * 10 + (p[i++] - '0');
        if (i == 2 || p[i] != close)
            return 0;
        *group = n;
        return i + 1;
    }
    if (isalpha((unsigned char) p[1]) || p[1] == '_')
        return 0;
    return 1;                           /* a lone "$": literal */
}

/*
 * Check a result template against its rule. Returns 0, or -1 with why set.
 */
static int
pattern_check_result(const char *result, int ngroups, bool negate, str_t *why)
{
    for (const char *p = result; *p; p++) {
        int     group;
        size_t  n;

        if (*p != '$')
            continue;
        if ((n = pattern_ref(p, &group)) == 0) {
            str_set_cstr(why, "bad \"$\" reference in result ");
            dict_quote(why, p, strcspn(p, " \t"));
            str_append_cstr(why, " (write \"$$\" for a \"$\")");
            return -1;
        }
        if (group >= 0 && negate) {
            str_printf(why, "$%d in the result of a negative pattern (there is no match to take it from)",
                       group);
            return -1;
        }
        if (group > ngroups) {
            str_printf(why, "$%d in result, but the pattern has %d group%s", group, ngroups,
                       ngroups == 1 ? "" : "s");
            return -1;
        }
        p += n - 1;
    }
    return 0;
}

/*
 * Parse "[!]/pattern/flags" at *pp: pattern and flags into the strings,
 * *pp moved past them and the white space after. Returns 0 or -1 with why.
 */
static int
pattern_parse(const char **pp, bool *negate, str_t *pattern, str_t *flags, str_t *why)
{
    const char *p = *pp;
    const char *start;
    char    delim;

    *negate = false;
    if (*p == '!') {
        *negate = true;
        p++;
        while (isspace((unsigned char) *p))
            p++;
    }
    delim = *p;
    if (delim == 0 || isalnum((unsigned char) delim) || isspace((unsigned char) delim) || delim == '\\') {
        str_set_cstr(why, "need \"/pattern/\" at ");
        dict_quote(why, p, strcspn(p, " \t"));
        return -1;
    }
    start = ++p;
    while (*p && *p != delim) {
        if (*p == '\\' && p[1] != 0)
            p++;
        p++;
    }
    if (*p == 0) {
        str_printf(why, "missing closing \"%c\" after pattern ", delim);
        dict_quote(why, start - 1, strlen(start - 1));
        return -1;
    }
    str_set(pattern, start, (size_t) (p - start));
    p++;
    str_reset(flags);
    while (*p && !isspace((unsigned char) *p))
        str_putc(flags, *p++);
    while (isspace((unsigned char) *p))
        p++;
    *pp = p;
    return 0;
}

static struct pattern_rule *
pattern_add(struct dict_pattern *dp, enum pattern_kind kind, int line)
{
    struct pattern_rule *r;

    dp->rules = mem_grow_array(dp->rules, &dp->cap, dp->count + 1, sizeof(*dp->rules));
    r = &dp->rules[dp->count++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->line = line;
    return r;
}

/* Keyword at p: the word followed by the end or white space. */
static bool
pattern_keyword(const char *p, const char *word)
{
    size_t  n = strlen(word);

    return strncmp(p, word, n) == 0 && (p[n] == 0 || isspace((unsigned char) p[n]));
}

/* The open "if" rules, innermost last. */
struct pattern_stack {
    size_t *items;
    size_t  count;
    size_t  cap;
};

/*
 * Parse one logical line into a rule; problems are warnings and the line
 * is skipped.
 */
static void
pattern_parse_line(struct dict_pattern *dp, const char *line, int lineno, struct pattern_stack *ifs,
                   str_t *pattern, str_t *flags, str_t *why)
{
    const char *p = line;
    bool    negate = false;
    bool    is_if = false;
    int     ngroups = 0;
    void   *re = NULL;

    if (pattern_keyword(p, "endif")) {
        if (ifs->count == 0) {
            dict_warn(&dp->dict, lineno, "endif without a matching if; ignored");
            return;
        }
        if (p[5] != 0)
            dict_warn(&dp->dict, lineno, "text after endif ignored");
        size_t  open = ifs->items[--ifs->count];

        pattern_add(dp, RULE_ENDIF, lineno);
        dp->rules[open].skip_to = dp->count;
        return;
    }
    if (pattern_keyword(p, "if")) {
        is_if = true;
        p += 2;
        while (isspace((unsigned char) *p))
            p++;
    }
    str_reset(why);
    if (pattern_parse(&p, &negate, pattern, flags, why) == 0) {
        if (is_if && *p != 0) {
            str_set_cstr(why, "text after the pattern of an if");
        } else if (!is_if && *p == 0) {
            str_set_cstr(why, "no result after pattern ");
            dict_quote(why, str_cstr(pattern), str_len(pattern));
        } else if ((re = dp->eng->compile(str_cstr(pattern), str_cstr(flags), &ngroups, why)) == NULL) {
            str_t  *reason = str_new(str_len(why));

            str_set(reason, str_cstr(why), str_len(why));
            str_set_cstr(why, "bad pattern ");
            dict_quote(why, str_cstr(pattern), str_len(pattern));
            str_append_printf(why, ": %s", str_cstr(reason));
            str_free(reason);
        } else if (!is_if && pattern_check_result(p, ngroups, negate, why) < 0) {
            dp->eng->free(re);
            re = NULL;
        }
    }
    if (re == NULL && !is_if) {
        dict_warn(&dp->dict, lineno, "%s; line ignored", str_cstr(why));
        return;
    }
    if (re == NULL)
        dict_warn(&dp->dict, lineno, "%s; the lines up to its endif are skipped", str_cstr(why));

    /* A broken if is kept without a pattern: it never applies, so its block is skipped. */
    struct pattern_rule *r = pattern_add(dp, is_if ? RULE_IF : RULE_MATCH, lineno);

    r->negate = negate;
    r->re = re;
    r->ngroups = ngroups;
    if (is_if) {
        ifs->items = mem_grow_array(ifs->items, &ifs->cap, ifs->count + 1, sizeof(*ifs->items));
        ifs->items[ifs->count++] = dp->count - 1;
    } else {
        r->result = mem_strdup(p);
    }
}

/*
 * Expand rule r's result for key into value. Returns DICT_FOUND, or
 * DICT_ERROR with err set when the result would be too long.
 */
static int
pattern_expand(const struct dict_pattern *dp, const struct pattern_rule *r, const char *key,
               const struct dict_pattern_span *spans, str_t *value, str_t *err)
{
    const char *p = r->result;

    while (*p) {
        const char *dollar = strchr(p, '$');
        int     group;
        size_t  n;

        if (dollar == NULL) {
            str_append_cstr(value, p);
            break;
        }
        str_append(value, p, (size_t) (dollar - p));
        n = pattern_ref(dollar, &group);        /* checked at load: n > 0 */
        if (group < 0)
            str_append(value, "$", 1);
        else if (group <= r->ngroups && spans[group].start >= 0 && spans[group].end >= spans[group].start)
            str_append(value, key + spans[group].start, (size_t) (spans[group].end - spans[group].start));
        p = dollar + n;
        if (str_len(value) > DICT_LINE_MAX) {
            str_printf(err, "%s, line %d: result longer than %d bytes", dp->dict.name, r->line,
                       DICT_LINE_MAX);
            return DICT_ERROR;
        }
    }
    if (str_len(value) > DICT_LINE_MAX) {
        str_printf(err, "%s, line %d: result longer than %d bytes", dp->dict.name, r->line, DICT_LINE_MAX);
        return DICT_ERROR;
    }
    return DICT_FOUND;
}

/* Does rule r apply to key? 1 yes, 0 no, -1 error (err set). */
static int
pattern_applies(const struct dict_pattern *dp, const struct pattern_rule *r, const char *key, size_t len,
                struct dict_pattern_span *spans, str_t *err)
{
    int     nspans = r->ngroups + 1 < DICT_PATTERN_GROUPS ? r->ngroups + 1 : DICT_PATTERN_GROUPS;
    int     m;

    if (r->re == NULL)
        return 0;                       /* an if whose pattern did not compile */
    for (int i = 0; i < nspans; i++)
        spans[i].start = spans[i].end = -1;
    m = dp->eng->match(r->re, key, len, spans, nspans, err);
    if (m < 0) {
        if (str_len(err) == 0)
            str_set_cstr(err, "match failed");
        str_t  *why = str_new(str_len(err));

        str_set(why, str_cstr(err), str_len(err));
        str_printf(err, "%s, line %d: %s", dp->dict.name, r->line, str_cstr(why));
        str_free(why);
        return -1;
    }
    return (m > 0) != r->negate;
}

static int
pattern_lookup(dict_t *d, const char *key, str_t *value, str_t *err)
{
    struct dict_pattern *dp = (struct dict_pattern *) d;
    struct dict_pattern_span spans[DICT_PATTERN_GROUPS];
    size_t  len = strlen(key);
    size_t  i = 0;

    while (i < dp->count) {
        const struct pattern_rule *r = &dp->rules[i];
        int     a;

        if (r->kind == RULE_ENDIF) {
            i++;
            continue;
        }
        if ((a = pattern_applies(dp, r, key, len, spans, err)) < 0)
            return DICT_ERROR;
        if (r->kind == RULE_IF) {
            i = a ? i + 1 : r->skip_to;
            continue;
        }
        if (a)
            return pattern_expand(dp, r, key, spans, value, err);
        i++;
    }
    return DICT_NOTFOUND;
}

static void
pattern_close(dict_t *d)
{
    struct dict_pattern *dp = (struct dict_pattern *) d;

    for (size_t i = 0; i < dp->count; i++) {
        if (dp->rules[i].re != NULL)
            dp->eng->free(dp->rules[i].re);
        mem_free(dp->rules[i].result);
    }
    mem_free(dp->rules);
    dict_free_common(d);
}

dict_t *
dict_pattern_open(const struct dict_pattern_engine *eng, const char *name, int flags, str_t *err)
{
    struct dict_pattern *dp;
    struct pattern_stack ifs = {0};
    dict_reader_t *r;
    str_t   line, pattern, fl, why;
    int     lineno = 0;
    int     rc;

    dp = (struct dict_pattern *) dict_alloc(sizeof(*dp), eng->type, name, flags);
    dp->eng = eng;
    dp->dict.lookup = pattern_lookup;
    dp->dict.close = pattern_close;
    if ((r = dict_reader_open(&dp->dict, name, err)) == NULL) {
        pattern_close(&dp->dict);
        return NULL;
    }
    str_init(&line);
    str_init(&pattern);
    str_init(&fl);
    str_init(&why);
    while ((rc = dict_reader_next(r, &line, &lineno, err)) > 0)
        pattern_parse_line(dp, str_cstr(&line), lineno, &ifs, &pattern, &fl, &why);
    dict_reader_close(r);
    while (rc == 0 && ifs.count > 0) {
        size_t  open = ifs.items[--ifs.count];

        dict_warn(&dp->dict, dp->rules[open].line, "if without endif (closed at the end of the file)");
        dp->rules[open].skip_to = dp->count;
    }
    mem_free(ifs.items);
    str_release(&line);
    str_release(&pattern);
    str_release(&fl);
    str_release(&why);
    if (rc < 0) {
        pattern_close(&dp->dict);
        return NULL;
    }
    return &dp->dict;
}
