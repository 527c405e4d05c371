/*
 * test_local.c - unit tests for the local delivery agent's pure helpers
 * (src/local/local_util.c): alias/.forward item lists, class lists,
 * address extensions, exit status mapping, forward_path macro expansion
 * and the cleaning of command output. The daemon itself is tested end to
 * end by tests/e2e/test_local.py.
 */
#include "../../src/local/local_util.c"

#include "unit.h"

#define MAX_ITEMS 8

struct items {
    const char *v[MAX_ITEMS];
    char    buf[MAX_ITEMS][128];
    size_t  n;
};

static void
collect(const char *item, void *arg)
{
    struct items *it = arg;

    if (it->n < MAX_ITEMS) {
        snprintf(it->buf[it->n], sizeof(it->buf[0]), "%s", item);
        it->v[it->n] = it->buf[it->n];
        it->n++;
    }
}

static const struct {
    const char *text;
    const char *want[MAX_ITEMS];
} split_cases[] = {
    {"bob", {"bob"}},
    {"bob, joe ,  ann", {"bob", "joe", "ann"}},
    {"\"|/usr/bin/vacation -a bob, x\", bob", {"|/usr/bin/vacation -a bob, x", "bob"}},
    {"|exit 67", {"|exit 67"}},
    {"# a comment\n\\bob\n  # indented comment\n/tmp/file, :include:/etc/list\n",
     {"\\bob", "/tmp/file", ":include:/etc/list"}},
    {" , ,\n\n", {NULL}},
    {"a#b, c", {"a#b", "c"}},
    {"\"unterminated, x", {"\"unterminated, x"}},
    {"\"\"", {NULL}},
    {"x\ny", {"x", "y"}},
};

TEST(split_items)
{
    for (size_t c = 0; c < sizeof(split_cases) / sizeof(split_cases[0]); c++) {
        struct items it = {.n = 0};
        size_t  want = 0, n;

        while (want < MAX_ITEMS && split_cases[c].want[want])
            want++;
        n = local_split_items(split_cases[c].text, 100, collect, &it);
        CHECK_INTEQ(n, want);
        CHECK_INTEQ(it.n, want);
        for (size_t i = 0; i < want && i < it.n; i++)
            CHECK_STREQ(it.v[i], split_cases[c].want[i]);
    }
}

TEST(split_items_limit)
{
    struct items it = {.n = 0};

    CHECK_INTEQ(local_split_items("a, b, c, d", 2, collect, &it), 2);
    CHECK_INTEQ(it.n, 2);
    CHECK_STREQ(it.v[1], "b");
}

TEST(class_mask)
{
    CHECK_INTEQ(local_class_mask("alias, forward"), LOCAL_CLASS_ALIAS | LOCAL_CLASS_FORWARD);
    CHECK_INTEQ(local_class_mask("include"), LOCAL_CLASS_INCLUDE);
    CHECK_INTEQ(local_class_mask(""), 0);
    CHECK_INTEQ(local_class_mask("ALIAS forward,include, bogus"),
                LOCAL_CLASS_ALIAS | LOCAL_CLASS_FORWARD | LOCAL_CLASS_INCLUDE);
    CHECK_INTEQ(local_class_mask("aliases"), 0);
}

TEST(split_ext)
{
    str_t  *u = str_new(0), *e = str_new(0);

    local_split_ext("bob+box", "+", u, e);
    CHECK_STREQ(str_cstr(u), "bob");
    CHECK_STREQ(str_cstr(e), "box");
    local_split_ext("bob+a+b", "+", u, e);
    CHECK_STREQ(str_cstr(u), "bob");
    CHECK_STREQ(str_cstr(e), "a+b");
    local_split_ext("bob-x+y", "+-", u, e);
    CHECK_STREQ(str_cstr(u), "bob");
    CHECK_STREQ(str_cstr(e), "x+y");
    local_split_ext("bob+box", "", u, e);
    CHECK_STREQ(str_cstr(u), "bob+box");
    CHECK_STREQ(str_cstr(e), "");
    local_split_ext("+box", "+", u, e);      /* nothing before the delimiter: no split */
    CHECK_STREQ(str_cstr(u), "+box");
    CHECK_STREQ(str_cstr(e), "");
    local_split_ext("bob+", "+", u, e);
    CHECK_STREQ(str_cstr(u), "bob");
    CHECK_STREQ(str_cstr(e), "");
    str_free(u);
    str_free(e);
}

TEST(exit_status)
{
    const char *dsn, *text;

    CHECK_INTEQ(local_exit_status(0, &dsn, &text), LOCAL_SENT);
    CHECK_STREQ(dsn, "2.0.0");
    CHECK_INTEQ(local_exit_status(75, &dsn, &text), LOCAL_DEFER);
    CHECK(dsn[0] == '4');
    CHECK_INTEQ(local_exit_status(67, &dsn, &text), LOCAL_BOUNCE);
    CHECK_STREQ(dsn, "5.1.1");
    CHECK_INTEQ(local_exit_status(71, &dsn, &text), LOCAL_DEFER);
    CHECK_INTEQ(local_exit_status(77, &dsn, &text), LOCAL_BOUNCE);
    CHECK_STREQ(dsn, "5.7.0");
    CHECK_INTEQ(local_exit_status(1, &dsn, &text), LOCAL_BOUNCE);
    CHECK_STREQ(dsn, "5.3.0");
    CHECK_INTEQ(local_exit_status(255, &dsn, &text), LOCAL_BOUNCE);
}

static const char *
macro_lookup(const char *name, void *ctx)
{
    (void) ctx;
    if (strcmp(name, "home") == 0)
        return "/home/bob";
    if (strcmp(name, "extension") == 0)
        return "box";
    if (strcmp(name, "empty") == 0)
        return "";
    if (strcmp(name, "recipient_delimiter") == 0)
        return "+";
    return NULL;
}

static const struct {
    const char *in;
    const char *out;            /* NULL: expansion fails */
} macro_cases[] = {
    {"$home/.forward", "/home/bob/.forward"},
    {"$home/.forward${recipient_delimiter}${extension}", "/home/bob/.forward+box"},
    {"${home}/x", "/home/bob/x"},
    {"$(home)/x", "/home/bob/x"},
    {"a${extension?+$extension}b", "a+boxb"},
    {"a${empty?+$extension}b", "ab"},
    {"a${empty:none}b", "anoneb"},
    {"a${extension:none}b", "aboxb"},
    {"a${extension?{yes}:{no}}b", "ayesb"},
    {"a${empty?{yes}:{no}}b", "anob"},
    {"a${unknown}b$unknown", "ab"},
    {"$$home", "$home"},
    {"${home", NULL},
    {"${}", NULL},
    {"$", NULL},
    {"${extension?unterminated", NULL},
    {"plain", "plain"},
};

TEST(expand_macros)
{
    str_t  *out = str_new(0);

    for (size_t c = 0; c < sizeof(macro_cases) / sizeof(macro_cases[0]); c++) {
        bool    ok = local_expand_macros(macro_cases[c].in, macro_lookup, NULL, out);

        if (macro_cases[c].out == NULL) {
            if (ok)
                fprintf(stderr, "  case \"%s\": expected failure, got \"%s\"\n",
                        macro_cases[c].in, str_cstr(out));
            CHECK(!ok);
        } else {
            CHECK(ok);
            if (ok)
                CHECK_STREQ(str_cstr(out), macro_cases[c].out);
        }
    }
    str_free(out);
}

TEST(expand_deep_nesting)
{
    str_t  *text = str_new(0), *out = str_new(0);

    for (int i = 0; i < 30; i++)
        str_append_cstr(text, "${extension?");
    str_append_cstr(text, "x");
    for (int i = 0; i < 30; i++)
        str_append_cstr(text, "}");
    CHECK(!local_expand_macros(str_cstr(text), macro_lookup, NULL, out));
    str_free(text);
    str_free(out);
}

TEST(clean_text)
{
    str_t  *out = str_new(0);

    local_clean_text(out, "line one\nline\ttwo\r\n\n", 20, 100);
    CHECK_STREQ(str_cstr(out), "line one line two");
    str_reset(out);
    local_clean_text(out, "a\x01\xffz", 4, 100);
    CHECK_STREQ(str_cstr(out), "a??z");
    str_reset(out);
    local_clean_text(out, "abcdefghij", 10, 4);
    CHECK_STREQ(str_cstr(out), "abcd");
    str_reset(out);
    local_clean_text(out, "   ", 3, 10);
    CHECK_STREQ(str_cstr(out), "");
    str_free(out);
}
