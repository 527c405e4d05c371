/*
 * test_dict.c - unit tests for dict.c and the built-in table types: inline,
 * static, texthash, cidr. Table-driven: each case gives a table and the
 * lookups expected from it, or the error its open must report.
 *
 * Table files are written to a private temporary directory that is removed
 * at the end.
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

/* A lookup and what it should give: value NULL means DICT_NOTFOUND. */
struct probe {
    const char *key;
    const char *value;
};

#define MAX_PROBES 12


/* Write content (len bytes) to a new file in the test directory; returns its path (static). */
static const char *
write_table(const char *content, size_t len)
{
    return unit_write_file(content, len);
}

/* Run the probes against d; report the table name on a mismatch. */
static void
run_probes(dict_t *d, const char *what, const struct probe *probes)
{
    str_t  *value = str_new(0);

    for (int i = 0; i < MAX_PROBES && probes[i].key; i++) {
        int     rc = dict_lookup(d, probes[i].key, value);

        if (probes[i].value == NULL) {
            if (rc != DICT_NOTFOUND || str_len(value) != 0) {
                fprintf(stderr, "  %s: key \"%s\": expected not found, got %d \"%s\"\n",
                        what, probes[i].key, rc, str_cstr(value));
                CHECK(false);
            }
        } else if (rc != DICT_FOUND || strcmp(str_cstr(value), probes[i].value) != 0) {
            fprintf(stderr, "  %s: key \"%s\": expected \"%s\", got %d \"%s\"\n",
                    what, probes[i].key, probes[i].value, rc, str_cstr(value));
            CHECK(false);
        }
        CHECK_STREQ(dict_error(d), "");
    }
    str_free(value);
}

/* Open "prefix<text>" and expect success, the probes, and nwarn warnings. */
static void
expect_table(const char *name, int flags, const struct probe *probes, size_t nwarn)
{
    str_t  *err = str_new(0);
    dict_t *d = dict_open(name, flags, err);

    if (d == NULL) {
        fprintf(stderr, "  open %s: %s\n", name, str_cstr(err));
        CHECK(false);
    } else {
        run_probes(d, name, probes);
        if (d->warnings.count != nwarn) {
            fprintf(stderr, "  %s: %zu warnings, expected %zu\n", name, d->warnings.count, nwarn);
            CHECK(false);
        }
    }
    dict_close(d);
    str_free(err);
}

/* Open name and expect failure with an error containing want. */
static void
expect_open_error(const char *name, int flags, const char *want)
{
    str_t  *err = str_new(0);
    dict_t *d = dict_open(name, flags, err);

    CHECK(d == NULL);
    if (strstr(str_cstr(err), want) == NULL) {
        fprintf(stderr, "  open %.100s: error \"%s\", expected it to contain \"%s\"\n",
                name, str_cstr(err), want);
        CHECK(false);
    }
    dict_close(d);
    str_free(err);
}

/* dict_open and the registry. */

TEST(open_rejects_bad_names_and_unknown_types)
{
    expect_open_error("foo:bar", 0, "unsupported dictionary type: foo");
    expect_open_error("TEXTHASH:/etc/x", 0, "unsupported dictionary type: TEXTHASH");
    expect_open_error("nis:mail.aliases", 0, "unsupported dictionary type: nis");
    expect_open_error("/etc/postern/aliases", 0, "need \"type:name\"");
    expect_open_error("", 0, "need \"type:name\"");
    expect_open_error(":foo", 0, "need \"type:name\"");
    expect_open_error("static:x", DICT_FLAG_WRITABLE, "static tables are read-only");

    /* The unknown type is cut in the message. */
    char    longname[600];

    memset(longname, 'x', 500);
    memcpy(longname + 500, ":y", 3);
    str_t  *err = str_new(0);

    CHECK(dict_open(longname, 0, err) == NULL);
    CHECK(str_len(err) < 200);
    str_free(err);
}

TEST(type_known)
{
    CHECK(dict_type_known("inline"));
    CHECK(dict_type_known("static"));
    CHECK(dict_type_known("texthash"));
    CHECK(dict_type_known("cidr"));
    CHECK(dict_type_known("hash"));
    CHECK(!dict_type_known("nis"));
    CHECK(!dict_type_known(""));
    CHECK(!dict_type_known("cid"));
    CHECK(!dict_type_known("cidrx"));
}

TEST(lookup_limits_key_length_and_nul)
{
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    str_t  *key = str_new(0);
    dict_t *d = dict_open("static:yes", 0, err);

    CHECK(d != NULL);
    if (d == NULL)
        goto out;
    for (int i = 0; i < DICT_KEY_MAX; i++)
        str_putc(key, 'k');
    CHECK_INTEQ(dict_lookup(d, str_cstr(key), value), DICT_FOUND);     /* 4096: fine */
    CHECK_STREQ(str_cstr(value), "yes");
    str_putc(key, 'k');
    CHECK_INTEQ(dict_lookup(d, str_cstr(key), value), DICT_NOTFOUND);  /* 4097: refused */
    CHECK_INTEQ(str_len(value), 0);
    CHECK_INTEQ(dict_lookup_str(d, key, value), DICT_NOTFOUND);
    str_set(key, "a\0b", 3);
    CHECK_INTEQ(dict_lookup_str(d, key, value), DICT_NOTFOUND);        /* NUL: refused */
    str_set_cstr(key, "ab");
    CHECK_INTEQ(dict_lookup_str(d, key, value), DICT_FOUND);
    CHECK_INTEQ(dict_lookup(d, "", value), DICT_FOUND);
out:
    dict_close(d);
    dict_close(NULL);
    str_free(err);
    str_free(value);
    str_free(key);
}

/* A table type that fails, to check how dict_lookup() passes DICT_ERROR on. */
static int
failing_lookup(dict_t *d, const char *key, str_t *value, str_t *err)
{
    str_set_cstr(value, "junk that must not leak out");
    if (strcmp(key, "quiet") == 0)
        return DICT_ERROR;              /* no reason given */
    str_printf(err, "server down while looking up %s", key);
    return DICT_ERROR;
}

static void
failing_close(dict_t *d)
{
    dict_free_common(d);
}

TEST(lookup_error_is_distinct_and_explained)
{
    dict_t *d = dict_alloc(sizeof(dict_t), "fail", "test", 0);
    str_t  *value = str_new(0);

    d->lookup = failing_lookup;
    d->close = failing_close;
    CHECK_INTEQ(dict_lookup(d, "Key", value), DICT_ERROR);
    CHECK_STREQ(dict_error(d), "server down while looking up key");  /* folded */
    CHECK_INTEQ(str_len(value), 0);
    CHECK_INTEQ(dict_lookup(d, "quiet", value), DICT_ERROR);
    CHECK_STREQ(dict_error(d), "fail:test: lookup failed");
    d->flags |= DICT_FLAG_NO_FOLD;
    CHECK_INTEQ(dict_lookup(d, "Key", value), DICT_ERROR);
    CHECK_STREQ(dict_error(d), "server down while looking up Key");
    dict_close(d);
    str_free(value);
}

/* static: */

TEST(static_tables)
{
    static const struct {
        const char *name;
        const char *value;
    } good[] = {
        {"static:OK", "OK"},
        {"static:{ value with spaces }", "value with spaces"},
        {"static:{}", ""},
        {"static:", ""},
        {"static:a b", "a b"},
        {"static:smtp:[relay.example.com]:587", "smtp:[relay.example.com]:587"},
        {"static:{ {nested} }", "{nested}"},
        {"static:x}", "x}"},
    };
    for (size_t i = 0; i < NELEM(good); i++) {
        struct probe probes[] = {
            {"anything", good[i].value}, {"", good[i].value}, {"MiXeD", good[i].value}, {0},
        };

        expect_table(good[i].name, 0, probes, 0);
    }
    expect_open_error("static:{ oops", 0, "missing \"}\"");
    expect_open_error("static:{", 0, "missing \"}\"");
}

/* inline: */

TEST(inline_good_tables)
{
    static const struct {
        const char *name;
        int     flags;
        size_t  warnings;
        struct probe probes[MAX_PROBES];
    } cases[] = {
        {"inline:{}", 0, 0, {{"a", NULL}, {"", NULL}}},
        {"inline:{ }", 0, 0, {{"a", NULL}}},
        {"inline: { a=1 } ", 0, 0, {{"a", "1"}}},
        {"inline:{a=1,b=2}", 0, 0, {{"a", "1"}, {"b", "2"}, {"c", NULL}}},
        {"inline:{ a = 1 , b= 2 ,c =3 }", 0, 0, {{"a", "1"}, {"b", "2"}, {"c", "3"}}},
        {"inline:{a=1 b=2\tc=3\n d=4}", 0, 0, {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}},
        {"inline:{,,a=1,, ,b=2,}", 0, 0, {{"a", "1"}, {"b", "2"}}},
        {"inline:{ { key = value with, commas } }", 0, 0, {{"key", "value with, commas"}}},
        {"inline:{ {k=v} x=y {  spaced key  =  a b  } }", 0, 0,
         {{"k", "v"}, {"x", "y"}, {"spaced key", "a b"}}},
        {"inline:{ { a = {b, c} } }", 0, 0, {{"a", "{b, c}"}}},
        {"inline:{ a=x=y }", 0, 0, {{"a", "x=y"}}},
        {"inline:{ a=, b = }", 0, 0, {{"a", ""}, {"b", ""}}},
        {"inline:{ {a=} }", 0, 0, {{"a", ""}}},
        {"inline:{ User@Example.COM=OK }", 0, 0,
         {{"user@example.com", "OK"}, {"USER@EXAMPLE.COM", "OK"}, {"User@Example.com", "OK"}}},
        /* Folding is ASCII only: Latin-1 / UTF-8 bytes are left alone. */
        {"inline:{ \xc4X=latin1, \xc3\x84Y=utf8 }", 0, 0,
         {{"\xc4x", "latin1"}, {"\xc4X", "latin1"}, {"\xe4x", NULL}, {"\xc3\x84y", "utf8"},
          {"\xc3\xa4y", NULL}}},
        {"inline:{ User=Val }", DICT_FLAG_NO_FOLD, 0,
         {{"User", "Val"}, {"user", NULL}, {"USER", NULL}}},
        {"inline:{ a=1, A=2, a=3 }", 0, 2, {{"a", "1"}}},     /* first wins, warned */
        {"inline:{ a=1, A=2 }", DICT_FLAG_NO_FOLD, 0, {{"a", "1"}, {"A", "2"}}},
    };
    for (size_t i = 0; i < NELEM(cases); i++)
        expect_table(cases[i].name, cases[i].flags, cases[i].probes, cases[i].warnings);
}

TEST(inline_bad_tables)
{
    static const struct {
        const char *name;
        const char *err;
    } cases[] = {
        {"inline:", "need \"{ key = value, ... }\""},
        {"inline:a=b", "need \"{ key = value, ... }\", not \"a=b\""},
        {"inline:{a=b", "need \"{ key = value, ... }\""},
        {"inline:a=b}", "need \"{ key = value, ... }\""},
        {"inline:{", "need \"{ key = value, ... }\""},
        {"inline:{ a }", "entry without \"=\": \"a\""},
        {"inline:{ a=1, b }", "entry without \"=\": \"b\""},
        {"inline:{ a b=1 }", "entry without \"=\": \"a\""},
        {"inline:{ {a} }", "entry without \"=\": \"a\""},
        {"inline:{ =1 }", "empty key in \"=1\""},
        {"inline:{ { = 1 } }", "empty key in \" = 1 \""},
        {"inline:{ {a=1 }", "unbalanced \"{\""},
        {"inline:{ a=1 } }", "unbalanced \"}\""},
        {"inline:{a=b} {c=d}", "unbalanced \"}\""},
        {"inline:{ a={b} }", "brace inside an entry"},
        {"inline:{ a{=b} }", "brace inside an entry"},
        {"inline:{ a=b}c }", "unbalanced \"}\""},
    };
    for (size_t i = 0; i < NELEM(cases); i++)
        expect_open_error(cases[i].name, 0, cases[i].err);
}

TEST(inline_duplicate_warning_text)
{
    str_t  *err = str_new(0);
    dict_t *d = dict_open("inline:{ a=1, A=2 }", 0, err);
    char    buf[256];

    CHECK(d != NULL);
    if (d) {
        CHECK_INTEQ(d->warnings.count, 1);
        diag_format(&d->warnings.items[0], buf, sizeof(buf));
        CHECK_STREQ(buf, "inline table: duplicate key \"a\" ignored");
    }
    dict_close(d);
    str_free(err);
}

static int
count_entries(const char *key, const char *value, void *ctx)
{
    str_t  *seen = ctx;

    str_append_printf(seen, "[%s=%s]", key, value);
    return 0;
}

static int
stop_at_first(const char *key, const char *value, void *ctx)
{
    (*(int *) ctx)++;
    return 7;
}

TEST(inline_and_texthash_sequence)
{
    str_t  *err = str_new(0);
    str_t  *seen = str_new(0);
    const char *path = write_table("k1 v1\nk2 v2\n", 12);
    const char *names[] = {"inline:{ k1=v1, k2=v2 }", NULL};
    char    th[160];
    int     calls = 0;

    snprintf(th, sizeof(th), "texthash:%s", path);
    names[1] = th;
    for (size_t i = 0; i < NELEM(names); i++) {
        dict_t *d = dict_open(names[i], 0, err);

        CHECK(d != NULL && d->sequence != NULL);
        if (d == NULL || d->sequence == NULL)
            continue;
        str_reset(seen);
        CHECK_INTEQ(d->sequence(d, count_entries, seen, err), 0);
        CHECK(strstr(str_cstr(seen), "[k1=v1]") != NULL);
        CHECK(strstr(str_cstr(seen), "[k2=v2]") != NULL);
        CHECK_INTEQ(str_len(seen), 14);
        calls = 0;
        CHECK_INTEQ(d->sequence(d, stop_at_first, &calls, err), 7);
        CHECK_INTEQ(calls, 1);
        dict_close(d);
    }
    str_free(err);
    str_free(seen);
}

/* texthash: */

TEST(texthash_good_tables)
{
    static const struct {
        const char *text;
        int     flags;
        size_t  warnings;
        struct probe probes[MAX_PROBES];
    } cases[] = {
        {"", 0, 0, {{"a", NULL}}},
        {"key value\n", 0, 0, {{"key", "value"}, {"KEY", "value"}, {"value", NULL}}},
        {"key value", 0, 0, {{"key", "value"}}},                    /* no final newline */
        {"key\tvalue with  inner  spaces  \n", 0, 0, {{"key", "value with  inner  spaces"}}},
        {"# comment\n\n   \n  # indented comment\nk v\n#k2 v2\n", 0, 0, {{"k", "v"}, {"#k2", NULL}}},
        {"k v # not a comment\n", 0, 0, {{"k", "v # not a comment"}}},
        {"k first\n  second\n\tthird\nk2 x\n", 0, 0, {{"k", "first second third"}, {"k2", "x"}}},
        {"k first\n# comment between\n  second\n", 0, 0, {{"k", "first second"}}},
        {"k v\r\nk2 v2\r\n", 0, 0, {{"k", "v"}, {"k2", "v2"}}},
        {"User@Example.COM OK\n", 0, 0, {{"user@example.com", "OK"}, {"USER@example.com", "OK"}}},
        {"User@Example.COM OK\n", DICT_FLAG_NO_FOLD, 0,
         {{"User@Example.COM", "OK"}, {"user@example.com", NULL}}},
        {"a 1\nA 2\na 3\n", 0, 2, {{"a", "1"}}},                     /* duplicates */
        {"a 1\nA 2\n", DICT_FLAG_NO_FOLD, 0, {{"a", "1"}, {"A", "2"}}},
        {"lonely\nk v\n", 0, 1, {{"lonely", ""}, {"k", "v"}}},       /* empty value */
        {"lonely   \n", 0, 1, {{"lonely", ""}}},
        {"  orphan continuation\nk v\n", 0, 1, {{"k", "v"}, {"orphan", NULL}}},
        {"k v\n\n\n", 0, 0, {{"k", "v"}}},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        char    name[160];

        snprintf(name, sizeof(name), "texthash:%s", write_table(cases[i].text, strlen(cases[i].text)));
        expect_table(name, cases[i].flags, cases[i].probes, cases[i].warnings);
    }
}

TEST(texthash_warnings_name_file_and_line)
{
    const char *path = write_table("a 1\nb\nA 2\n", 10);
    char    name[160], buf[512];
    str_t  *err = str_new(0);
    dict_t *d;

    snprintf(name, sizeof(name), "texthash:%s", path);
    d = dict_open(name, 0, err);
    CHECK(d != NULL);
    if (d) {
        CHECK_INTEQ(d->warnings.count, 2);
        CHECK_INTEQ(diag_warnings(&d->warnings), 2);
        diag_format(&d->warnings.items[0], buf, sizeof(buf));
        CHECK(strstr(buf, path) != NULL && strstr(buf, "line 2: no value for key \"b\"") != NULL);
        diag_format(&d->warnings.items[1], buf, sizeof(buf));
        CHECK(strstr(buf, "line 3: duplicate key \"a\" ignored (first defined on line 1)") != NULL);
    }
    dict_close(d);
    str_free(err);
}

TEST(texthash_warnings_are_capped)
{
    str_t  *t = str_new(0);
    str_t  *err = str_new(0);
    char    name[160], buf[512];
    dict_t *d;

    for (int i = 0; i < 5000; i++)
        str_append_cstr(t, "same value\n");
    snprintf(name, sizeof(name), "texthash:%s", write_table(str_cstr(t), str_len(t)));
    d = dict_open(name, 0, err);
    CHECK(d != NULL);
    if (d) {
        CHECK_INTEQ(d->warnings.count, DICT_WARN_MAX + 1);
        diag_format(&d->warnings.items[DICT_WARN_MAX], buf, sizeof(buf));
        CHECK(strstr(buf, ": more than 100 warnings; the rest are not shown") != NULL);
        CHECK(strstr(buf, name + 9) == buf);
    }
    dict_close(d);

    str_reset(t);
    str_append_cstr(t, "inline:{");
    for (int i = 0; i < 300; i++)
        str_append_cstr(t, " k=v");
    str_append_cstr(t, " }");
    d = dict_open(str_cstr(t), 0, err);
    CHECK(d != NULL);
    if (d) {
        CHECK_INTEQ(d->warnings.count, DICT_WARN_MAX + 1);
        diag_format(&d->warnings.items[DICT_WARN_MAX], buf, sizeof(buf));
        CHECK_STREQ(buf, "inline table: more than 100 warnings; the rest are not shown");
    }
    dict_close(d);
    str_free(t);
    str_free(err);
}

TEST(texthash_bad_tables)
{
    str_t  *err = str_new(0);
    char    name[200], want[200];

    /* Missing file: the path and the system's reason. */
    snprintf(name, sizeof(name), "texthash:%s/no-such-file", unit_dir[0] ? unit_dir : "/nonexistent");
    CHECK(dict_open(name, 0, err) == NULL);
    snprintf(want, sizeof(want), "open %s: %s", name + 9, strerror(ENOENT));
    CHECK_STREQ(str_cstr(err), want);

    expect_open_error("texthash:", 0, "need a file name");

    /* A directory cannot be read as a table. */
    write_table("", 0);
    snprintf(name, sizeof(name), "texthash:%s", unit_dir);
    expect_open_error(name, 0, strerror(EISDIR));

    /* NUL byte, with the line number. */
    snprintf(name, sizeof(name), "texthash:%s", write_table("a 1\nb \0 2\n", 10));
    expect_open_error(name, 0, ", line 2: NUL byte in line");

    /* A line over 1 MiB; one of exactly 1 MiB is fine. */
    size_t  big = DICT_LINE_MAX + 10;
    char   *text = mem_alloc(big + 16);

    memset(text, 'v', big);
    memcpy(text, "k ", 2);
    memcpy(text + DICT_LINE_MAX, "\n", 1);
    snprintf(name, sizeof(name), "texthash:%s", write_table(text, DICT_LINE_MAX + 1));
    dict_t *d = dict_open(name, 0, err);

    CHECK(d != NULL);
    dict_close(d);
    memcpy(text + DICT_LINE_MAX, "v\n", 2);
    snprintf(name, sizeof(name), "texthash:%s", write_table(text, DICT_LINE_MAX + 2));
    expect_open_error(name, 0, ", line 1: line longer than 1048576 bytes");

    /* A logical line over 1 MiB made of continuation lines. */
    str_t  *t = str_new(0);

    str_append_cstr(t, "k v\n");
    for (int i = 0; i < 1100; i++) {
        str_putc(t, ' ');
        for (int j = 0; j < 1000; j++)
            str_putc(t, 'x');
        str_putc(t, '\n');
    }
    snprintf(name, sizeof(name), "texthash:%s", write_table(str_cstr(t), str_len(t)));
    expect_open_error(name, 0, "logical line longer than 1048576 bytes");
    str_free(t);
    mem_free(text);
    str_free(err);
}

TEST(texthash_many_entries_and_long_keys)
{
    str_t  *t = str_new(0);
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    char    name[160];
    dict_t *d;

    for (int i = 0; i < 20000; i++)
        str_append_printf(t, "user%d@Example.com result-%d\n", i, i);
    /* A key longer than DICT_KEY_MAX is kept but can never match: warned. */
    for (int i = 0; i < DICT_KEY_MAX + 1; i++)
        str_putc(t, 'L');
    str_append_cstr(t, " long\n");
    snprintf(name, sizeof(name), "texthash:%s", write_table(str_cstr(t), str_len(t)));
    d = dict_open(name, 0, err);
    CHECK(d != NULL);
    if (d) {
        int     bad = 0;

        for (int i = 0; i < 20000; i += 7) {
            char    k[64], v[64];

            snprintf(k, sizeof(k), "USER%d@example.COM", i);
            snprintf(v, sizeof(v), "result-%d", i);
            if (dict_lookup(d, k, value) != DICT_FOUND || strcmp(str_cstr(value), v) != 0)
                bad++;
        }
        CHECK_INTEQ(bad, 0);
        CHECK_INTEQ(dict_lookup(d, "user20000@example.com", value), DICT_NOTFOUND);
        CHECK_INTEQ(d->warnings.count, 1);
        str_reset(t);
        for (int i = 0; i < DICT_KEY_MAX + 1; i++)
            str_putc(t, 'l');
        CHECK_INTEQ(dict_lookup(d, str_cstr(t), value), DICT_NOTFOUND);
    }
    dict_close(d);
    str_free(t);
    str_free(err);
    str_free(value);
}

/* cidr: */

TEST(cidr_good_tables)
{
    static const struct {
        const char *text;
        struct probe probes[MAX_PROBES];
    } cases[] = {
        {"", {{"1.2.3.4", NULL}}},
        {"192.168.1.0/24 REJECT local net\n",
         {{"192.168.1.77", "REJECT local net"}, {"192.168.2.1", NULL}, {"192.168.1.0", "REJECT local net"}}},
        /* First match in file order, not longest prefix. */
        {"10.0.0.0/8 first\n10.1.0.0/16 second\n0.0.0.0/0 default\n",
         {{"10.1.2.3", "first"}, {"11.0.0.1", "default"}, {"::1", NULL}}},
        {"10.1.0.0/16 narrow\n10.0.0.0/8 wide\n",
         {{"10.1.2.3", "narrow"}, {"10.2.0.1", "wide"}}},
        /* Bare addresses are exact matches. */
        {"192.0.2.1 one\n192.0.2.2\tTWO\n",
         {{"192.0.2.1", "one"}, {"192.0.2.2", "TWO"}, {"192.0.2.3", NULL}}},
        /* IPv6 with and without brackets; IPv4-mapped keys. */
        {"2001:db8::/32 v6net\n[::1]/128 loopback\n[2001:db8:ffff::]\texact\n10.0.0.0/8 ten\n",
         {{"2001:db8::1", "v6net"}, {"2001:DB8:FFFF::", "v6net"}, {"::1", "loopback"},
          {"::ffff:10.0.0.1", "ten"}, {"::ffff:11.0.0.1", NULL}, {"10.0.0.1", "ten"}}},
        {"::ffff:0:0/96 mapped\n", {{"::ffff:1.2.3.4", "mapped"}, {"1.2.3.4", NULL}}},
        /* Keys that are not addresses are not found, not errors. */
        {"0.0.0.0/0 any\n::/0 any6\n",
         {{"localhost", NULL}, {"", NULL}, {"1.2.3.4/32", NULL}, {"[1.2.3.4]", NULL},
          {"1.2.3.4 ", NULL}, {"fe80::1%eth0", NULL}, {"1.2.3.4", "any"}, {"fe80::1", "any6"}}},
        /* Comments, blank lines, continuation of the result. */
        {"# header\n\n10.0.0.0/8 part one\n  part two\n# trailer\n",
         {{"10.0.0.1", "part one part two"}}},
        /* Results keep their case (keys have none that matters). */
        {"10.0.0.0/8 Relay-OK\n", {{"10.0.0.1", "Relay-OK"}}},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        char    name[160];

        snprintf(name, sizeof(name), "cidr:%s", write_table(cases[i].text, strlen(cases[i].text)));
        expect_table(name, 0, cases[i].probes, 0);
    }

    /* The type says it matches patterns: keys are not folded. */
    char    name[160];
    str_t  *err = str_new(0);
    dict_t *d;

    snprintf(name, sizeof(name), "cidr:%s", write_table("::/0 x\n", 7));
    d = dict_open(name, 0, err);
    CHECK(d != NULL && (d->flags & DICT_FLAG_PATTERN));
    dict_close(d);
    str_free(err);
}

TEST(cidr_bad_tables)
{
    static const struct {
        const char *text;
        const char *err;        /* after "PATH, " */
    } cases[] = {
        {"10.0.0.0/8 ok\n10.1.1.1/8 bad\n",
         "line 2: host bits set in \"10.1.1.1/8\" (the network is 10.0.0.0/8)"},
        {"2001:db8::1/32 x\n", "line 1: host bits set in \"2001:db8::1/32\" (the network is 2001:db8::/32)"},
        {"# c\n\nbanana yellow\n", "line 3: bad IP address in \"banana\""},
        {"1.2.3.0/33 x\n", "line 1: prefix length out of range in \"1.2.3.0/33\""},
        {"::/129 x\n", "line 1: prefix length out of range in \"::/129\""},
        {"1.2.3.0/x y\n", "line 1: bad prefix length in \"1.2.3.0/x\""},
        {"1.2.3.0/24\n", "line 1: no result for \"1.2.3.0/24\""},
        {"1.2.3.0/24    \n", "line 1: no result for \"1.2.3.0/24\""},
        {"[::1 x\n", "line 1: missing \"]\" in \"[::1\""},
        {"!10.0.0.0/8 x\n", "line 1: not supported in cidr tables yet: \"!10.0.0.0/8\""},
        {"if 10.0.0.0/8\n10.1.0.0/16 x\nendif\n", "line 1: not supported in cidr tables yet: \"if\""},
        {"10.0.0.0/8 x\n  continued\nfoo bar\n", "line 3: bad IP address in \"foo\""},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        const char *path = write_table(cases[i].text, strlen(cases[i].text));
        char    name[160], want[400];

        snprintf(name, sizeof(name), "cidr:%s", path);
        snprintf(want, sizeof(want), "%s, %s", path, cases[i].err);
        expect_open_error(name, 0, want);
    }
    expect_open_error("cidr:/nonexistent/cidr-table", 0,
                      "open /nonexistent/cidr-table: No such file or directory");
}

/* Runs last: remove the files written above. */
TEST(zz_cleanup)
{
    for (int i = 0; i < unit_nfiles; i++) {
        char    path[128];

        snprintf(path, sizeof(path), "%s/t%d", unit_dir, i);
        CHECK(unlink(path) == 0);
    }
    if (unit_dir[0])
        CHECK(rmdir(unit_dir) == 0);
}
