/*
 * test_dict_regexp.c - unit tests for regexp: and pcre: tables
 * (dict_pattern.c with the POSIX and PCRE2 engines). One table of cases:
 * each gives a table text, which engines it applies to, the number of
 * warnings its open must record, and lookups with their expected results.
 * Table files go to a private temporary directory, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "dict.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_PROBES 10

#define E_REGEXP    1
#define E_PCRE      2
#define E_BOTH      (E_REGEXP | E_PCRE)

struct probe {
    const char *key;
    const char *value;          /* NULL: not found */
};


static const char *
write_table(const char *content)
{
    return unit_write_file(content, strlen(content));
}

static const struct {
    const char *text;
    int     engines;
    size_t  warnings;
    struct probe probes[MAX_PROBES];
} cases[] = {
    /* Basics: first match wins, default case-insensitive, whole result text. */
    {"/^spam@/ REJECT no spam\n/@example\\.com$/ OK\n/./ DUNNO\n", E_BOTH, 0,
     {{"spam@example.com", "REJECT no spam"}, {"user@EXAMPLE.com", "OK"}, {"x", "DUNNO"}, {"", NULL}}},
    {"", E_BOTH, 0, {{"a", NULL}}},
    {"# comment\n\n/a/ one\n  # not a continuation: a comment\n/b/ two\n", E_BOTH, 0,
     {{"a", "one"}, {"b", "two"}}},
    /* Continuation lines join the result. */
    {"/a/ first\n  second\n", E_BOTH, 0, {{"a", "first second"}}},
    /* Substitution: $n, ${n}, $(n), $$, unset group, literal $. */
    {"/^(.*)@(.*)$/ user=$1 domain=${2} again=$(1) cost=$$5\n", E_BOTH, 0,
     {{"joe@example.com", "user=joe domain=example.com again=joe cost=$5"}}},
    {"/^(a)|(b)$/ [$1][$2]\n", E_BOTH, 0, {{"a", "[a][]"}, {"b", "[][b]"}}},
    {"/x/ a $ b $\n", E_BOTH, 0, {{"x", "a $ b $"}}},
    {"/^(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)$/ $9${10}$1\n", E_BOTH, 0, {{"abcdefghij", "ija"}}},
    /* Flags: i toggles case sensitivity. */
    {"/ABC/i exact\n/abc/ any\n", E_BOTH, 0, {{"ABC", "exact"}, {"abc", "any"}, {"aBc", "any"}}},
    {"/^a.b$/m x\n", E_BOTH, 0, {{"a-b", "x"}}},
    /* Other delimiters; escaped delimiter inside the pattern. */
    {"%^a/b$% slash\n|c\\|d| bar\n", E_BOTH, 0, {{"a/b", "slash"}, {"c|d", "bar"}}},
    {"/a\\/b/ escaped\n", E_BOTH, 0, {{"xa/by", "escaped"}}},
    /* Negative rules. */
    {"!/@example\\.com$/ REJECT outsider\n", E_BOTH, 0,
     {{"a@example.com", NULL}, {"a@example.org", "REJECT outsider"}}},
    {"! /x/ spaced\n", E_BOTH, 0, {{"y", "spaced"}, {"x", NULL}}},
    /* if / endif, nested, negative. */
    {"if /@example\\.com$/\n/^admin@/ ADMIN\nif !/^a/\n/./ NOT-A\nendif\n/./ IN\nendif\n/./ OUT\n", E_BOTH, 0,
     {{"admin@example.com", "ADMIN"}, {"bob@example.com", "NOT-A"}, {"al@example.com", "IN"},
      {"al@example.org", "OUT"}}},
    /* Broken lines are warnings and are skipped; the rest works. */
    {"/(/ bad\n/a/ good\n", E_BOTH, 1, {{"a", "good"}, {"(", NULL}}},
    {"/a/q bad flag\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"/a/\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"/a bad\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"abc def\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"/a/ $1\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"!/(a)/ $1\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"/a/ $name\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"/a/ ${x}\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"endif\n/a/ good\n", E_BOTH, 1, {{"a", "good"}}},
    {"if /a/\n/./ in\n", E_BOTH, 1, {{"a", "in"}, {"b", NULL}}},     /* missing endif */
    {"if /a/ extra\n/./ in\nendif\n", E_BOTH, 1, {{"a", NULL}}},    /* broken if skips its block */
    {"if /(/\n/./ in\nendif\n/./ out\n", E_BOTH, 1, {{"a", "out"}}},
    {"if /a/\nendif trailing\n/./ out\n", E_BOTH, 1, {{"a", "out"}}},
    /* Engine-specific flags. */
    {"/^a b$/x basic\n", E_REGEXP, 0, {{"a b", "basic"}}},          /* x: basic RE syntax */
    {"/a+/x basic\n", E_REGEXP, 0, {{"a+", "basic"}, {"aa", NULL}}},
    {"/^a b$/x spaced\n/ab/ plain\n", E_PCRE, 0, {{"ab", "spaced"}}},  /* x: white space ignored */
    {"/^a.b$/s dotall\n", E_PCRE, 0, {{"a\nb", "dotall"}}},
    {"/b/A anchored\n/./ other\n", E_PCRE, 0, {{"ab", "other"}, {"ba", "anchored"}}},
    {"/^(a+?)/U greedy\n", E_PCRE, 0, {{"aaa", "greedy"}}},
    {"/^(a+)/U $1\n", E_PCRE, 0, {{"aaa", "a"}}},
    {"/^(a+)/ $1\n", E_PCRE, 0, {{"aaa", "aaa"}}},
    {"/a$/E endonly\n/./ other\n", E_PCRE, 0, {{"a", "endonly"}}},
    {"/\\d+/ digits\n", E_PCRE, 0, {{"x12", "digits"}, {"x", NULL}}},
    {"/a/s pcre-only flag\n/a/ good\n", E_REGEXP, 1, {{"a", "good"}}},
    {"/(?<u>x)/ named\n", E_PCRE, 0, {{"x", "named"}}},
    /* Patterns that would make glibc's regcomp explode are refused, quickly. */
    {"/a++++++++++++++++++++++++++++++++++++++++++++++++++/ huge\n/a/ good\n", E_REGEXP, 1, {{"a", "good"}}},
    {"/((a{1,255}){1,255}){1,255}/ huge\n/a/ good\n", E_REGEXP, 1, {{"a", "good"}}},
    {"/\\(a*\\)\\{200\\}\\{200\\}\\{200\\}/x huge\n/a/ good\n", E_REGEXP, 1, {{"a", "good"}}},
    {"/^[a-z+*{}()]+(x{1,3}|y*)?$/ fine\n", E_REGEXP, 0, {{"ab+xx", "fine"}}},
    {"/a*?/ stacked\n/a/ good\n", E_REGEXP, 1, {{"a", "good"}}},
    {"/a*?/ lazy\n", E_PCRE, 0, {{"a", "lazy"}}},
};

static void
run_case(size_t n, int engine)
{
    char    name[200];
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    dict_t *d;

    snprintf(name, sizeof(name), "%s:%s", engine == E_REGEXP ? "regexp" : "pcre", write_table(cases[n].text));
    d = dict_open(name, 0, err);
    if (d == NULL) {
        fprintf(stderr, "  case %zu %s: open failed: %s\n", n, name, str_cstr(err));
        CHECK(false);
        goto out;
    }
    if (d->warnings.count != cases[n].warnings) {
        fprintf(stderr, "  case %zu %s: %zu warnings, expected %zu\n", n, name, d->warnings.count,
                cases[n].warnings);
        for (size_t i = 0; i < d->warnings.count; i++)
            fprintf(stderr, "    %s\n", d->warnings.items[i].text);
        CHECK(false);
    }
    for (int i = 0; i < MAX_PROBES && cases[n].probes[i].key; i++) {
        const struct probe *p = &cases[n].probes[i];
        int     rc = dict_lookup(d, p->key, value);

        if (p->value == NULL ? rc != DICT_NOTFOUND
            : rc != DICT_FOUND || strcmp(str_cstr(value), p->value) != 0) {
            fprintf(stderr, "  case %zu %s: key \"%s\": got %d \"%s\", expected %s\n", n, name, p->key, rc,
                    str_cstr(value), p->value ? p->value : "not found");
            CHECK(false);
        }
    }
out:
    dict_close(d);
    str_free(err);
    str_free(value);
}

TEST(table_of_cases)
{
    for (size_t i = 0; i < NELEM(cases); i++) {
        if (cases[i].engines & E_REGEXP)
            run_case(i, E_REGEXP);
        if (cases[i].engines & E_PCRE)
            run_case(i, E_PCRE);
    }
}

TEST(warnings_name_file_line_and_pattern)
{
    const char *path = write_table("/a/ ok\n/(unclosed/ x\n");
    const char *types[] = {"regexp", "pcre"};

    for (size_t t = 0; t < NELEM(types); t++) {
        char    name[200], buf[512];
        str_t  *err = str_new(0);
        dict_t *d;

        snprintf(name, sizeof(name), "%s:%s", types[t], path);
        d = dict_open(name, 0, err);
        CHECK(d != NULL);
        if (d != NULL && d->warnings.count == 1) {
            diag_format(&d->warnings.items[0], buf, sizeof(buf));
            CHECK(strstr(buf, path) != NULL);
            CHECK(strstr(buf, "line 2") != NULL);
            CHECK(strstr(buf, "\"(unclosed\"") != NULL);
        } else {
            CHECK(false);
        }
        dict_close(d);
        str_free(err);
    }
}

TEST(missing_file_and_bad_lines_are_errors_only_for_io)
{
    str_t  *err = str_new(0);

    CHECK(dict_open("regexp:/nonexistent/table", 0, err) == NULL);
    CHECK(strstr(str_cstr(err), "/nonexistent/table") != NULL);
    CHECK(dict_open("pcre:/nonexistent/table", 0, err) == NULL);
    CHECK(strstr(str_cstr(err), "No such file") != NULL);
    CHECK(dict_open("regexp:", 0, err) == NULL);
    CHECK(dict_open("pcre:x", DICT_FLAG_WRITABLE, err) == NULL);   /* read-only type */
    str_free(err);
}

TEST(keys_are_not_folded_by_the_front_end)
{
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    char    name[200];
    dict_t *d;

    snprintf(name, sizeof(name), "pcre:%s", write_table("/^(.*)$/ <$1>\n"));
    d = dict_open(name, 0, err);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK(d->flags & DICT_FLAG_PATTERN);
        CHECK_INTEQ(dict_lookup(d, "MiXeD", value), DICT_FOUND);
        CHECK_STREQ(str_cstr(value), "<MiXeD>");
    }
    dict_close(d);
    str_free(err);
    str_free(value);
}

TEST(substitution_is_bounded)
{
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    str_t  *text = str_new(0);
    str_t  *key = str_new(0);
    char    name[200];
    dict_t *d;

    /* 400 references to a 4000-byte group: 1.6 MB, more than the limit. */
    str_append_cstr(text, "/^(.*)$/ ");
    for (int i = 0; i < 400; i++)
        str_append_cstr(text, "$1");
    str_append_cstr(text, "\n");
    for (int i = 0; i < 4000; i++)
        str_putc(key, 'k');
    snprintf(name, sizeof(name), "regexp:%s", write_table(str_cstr(text)));
    d = dict_open(name, 0, err);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_INTEQ(dict_lookup(d, str_cstr(key), value), DICT_ERROR);
        CHECK(strstr(dict_error(d), "result longer than") != NULL);
        CHECK_INTEQ(str_len(value), 0);
        CHECK_INTEQ(dict_lookup(d, "short", value), DICT_FOUND);
    }
    dict_close(d);
    str_free(err);
    str_free(value);
    str_free(text);
    str_free(key);
}

TEST(pcre_match_limit_is_an_error_not_a_miss)
{
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    str_t  *key = str_new(0);
    char    name[200];
    dict_t *d;

    /* Catastrophic backtracking: nested quantifiers and a key that almost matches. */
    snprintf(name, sizeof(name), "pcre:%s", write_table("/^(a+)+$/ never\n"));
    for (int i = 0; i < 40; i++)
        str_putc(key, 'a');
    str_putc(key, 'b');
    d = dict_open(name, 0, err);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_INTEQ(dict_lookup(d, str_cstr(key), value), DICT_ERROR);
        CHECK(strstr(dict_error(d), "line 1") != NULL);
    }
    dict_close(d);
    str_free(err);
    str_free(value);
    str_free(key);
}

TEST(zz_cleanup)
{
    char    path[200];

    for (int i = 0; i < unit_nfiles; i++) {
        snprintf(path, sizeof(path), "%s/t%d", unit_dir, i);
        CHECK(unlink(path) == 0 || errno == ENOENT);
    }
    if (unit_dir[0])
        CHECK(rmdir(unit_dir) == 0);
}
