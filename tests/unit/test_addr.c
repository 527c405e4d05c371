/*
 * test_addr.c - unit tests for addr.c: SMTP paths, header address lists,
 * quoting, domain checks and xtext. Table-driven, with hostile inputs.
 */
#include "addr.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define F_EMPTY  ADDR_PATH_ALLOW_EMPTY
#define F_STRICT ADDR_PATH_STRICT
#define F_UTF8   ADDR_PATH_UTF8

/* A path and its expected outcome: addr NULL = must fail (err non-empty). */
struct path_case {
    const char *text;
    int     flags;
    const char *addr;
    const char *rest;       /* expected rest, when addr != NULL */
};

static const struct path_case path_cases[] = {
    {"<user@example.com>", F_STRICT, "user@example.com", ""},
    {"  <user@example.com> SIZE=100", F_STRICT, "user@example.com", " SIZE=100"},
    {"<>", F_EMPTY | F_STRICT, "", ""},
    {"<> BODY=8BITMIME", F_EMPTY, "", " BODY=8BITMIME"},
    {"<>", 0, NULL, NULL},
    {"user@example.com", 0, "user@example.com", ""},
    {"user@example.com SIZE=1", 0, "user@example.com", " SIZE=1"},
    {"user@example.com", F_STRICT, NULL, NULL},
    {"<postmaster>", F_STRICT, "postmaster", ""},
    {"<\"John Doe\"@example.com>", 0, "John Doe@example.com", ""},
    {"<\"a\\\"b\\\\c\"@example.com>", 0, "a\"b\\c@example.com", ""},
    {"<\"a@b\"@example.com>", 0, "a@b@example.com", ""},
    {"<\"\"@example.com>", 0, "@example.com", ""},
    {"<first.last@example.com>", 0, "first.last@example.com", ""},
    {"<a..b@example.com>", 0, "a..b@example.com", ""},
    {"<user+tag@example.com>", 0, "user+tag@example.com", ""},
    {"<user@[192.0.2.1]>", 0, "user@[192.0.2.1]", ""},
    {"<user@[IPv6:2001:db8::1]>", 0, "user@[IPv6:2001:db8::1]", ""},
    {"<user@[ipv6:::1]>", 0, "user@[ipv6:::1]", ""},
    {"<user@[300.1.1.1]>", 0, NULL, NULL},
    {"<user@[1.2.3]>", 0, NULL, NULL},
    {"<user@[IPv6:xyz]>", 0, NULL, NULL},
    {"<user@[1.2.3.4>", 0, NULL, NULL},
    {"<user@[tag:content]>", 0, NULL, NULL},
    {"<@relay1.example,@relay2.example:user@example.com>", 0, "user@example.com", ""},
    {"<@relay1.example:user@example.com>", 0, "user@example.com", ""},
    {"<@relay1.example,user@example.com>", 0, NULL, NULL},
    {"<@:user@example.com>", 0, NULL, NULL},
    {"<user@example.com.>", 0, "user@example.com.", ""},
    {"<user@example..com>", 0, NULL, NULL},
    {"<user@.example.com>", 0, NULL, NULL},
    {"<user@-example.com>", 0, NULL, NULL},
    {"<user@example-.com>", 0, NULL, NULL},
    {"<user@exa_mple.com>", 0, "user@exa_mple.com", ""},
    {"<user@>", 0, NULL, NULL},
    {"<@example.com>", 0, NULL, NULL},
    {"<user@example.com", 0, NULL, NULL},
    {"<user@example.com>>", 0, "user@example.com", ">"},
    {"<<user@example.com>>", 0, NULL, NULL},
    {"<", 0, NULL, NULL},
    {"", 0, NULL, NULL},
    {"   ", 0, NULL, NULL},
    {"<user name@example.com>", 0, NULL, NULL},
    {"<user\x01@example.com>", 0, NULL, NULL},
    {"<\"user\x01\"@example.com>", 0, NULL, NULL},
    {"<\"user\x7f\"@example.com>", 0, NULL, NULL},
    {"<user@exa\x7fmple.com>", 0, NULL, NULL},
    {"<user@example.com\r>", 0, NULL, NULL},
    {"<us(er@example.com>", 0, NULL, NULL},
    {"<\"unterminated@example.com>", 0, NULL, NULL},
    {"<\"ends with backslash\\", 0, NULL, NULL},
    {"<j\xc3\xbcrgen@example.com>", 0, NULL, NULL},
    {"<j\xc3\xbcrgen@example.com>", F_UTF8, "j\xc3\xbcrgen@example.com", ""},
    {"<user@b\xc3\xbc" "cher.example>", F_UTF8, "user@b\xc3\xbc" "cher.example", ""},
    {"<user@b\xc3\xbc" "cher.example>", 0, NULL, NULL},
    {"<j\xc3(rgen@example.com>", F_UTF8, NULL, NULL},
    {"<j\xc0\xafrgen@example.com>", F_UTF8, NULL, NULL},         /* overlong */
    {"<j\xed\xa0\x80@example.com>", F_UTF8, NULL, NULL},         /* surrogate */
    {"<\"j\xc3\xbc\"@example.com>", F_UTF8, "j\xc3\xbc@example.com", ""},
    {"<a@b@example.com>", 0, NULL, NULL},
    {"<user@exa mple.com>", 0, NULL, NULL},
    {"<user@example.com >", 0, NULL, NULL},
    {"< user@example.com>", 0, NULL, NULL},
    {"<\"a\"b@example.com>", 0, NULL, NULL},
};

TEST(parse_path_table)
{
    str_t  *addr = str_new(0), *err = str_new(0);

    for (size_t i = 0; i < NELEM(path_cases); i++) {
        const struct path_case *c = &path_cases[i];
        const char *rest = NULL;
        bool    ok = addr_parse_path(c->text, addr, &rest, c->flags, err);

        if (c->addr == NULL) {
            if (ok || str_len(err) == 0 || str_len(addr) != 0) {
                fprintf(stderr, "  case %zu \"%s\": expected failure, got \"%s\"\n",
                        i, c->text, str_cstr(addr));
                CHECK(false);
            }
            continue;
        }
        if (!ok || strcmp(str_cstr(addr), c->addr) != 0 || strcmp(rest, c->rest) != 0) {
            fprintf(stderr, "  case %zu \"%s\": got %d \"%s\" rest \"%s\" (%s), expected \"%s\"\n",
                    i, c->text, ok, str_cstr(addr), ok ? rest : "", str_cstr(err), c->addr);
            CHECK(false);
        }
    }
    str_free(addr);
    str_free(err);
}

TEST(parse_path_length_limits)
{
    str_t  *addr = str_new(0), *err = str_new(0), *in = str_new(0);
    const char *rest;

    /* A label of 64 bytes is too long; 63 is fine. */
    str_set_cstr(in, "<u@");
    for (int i = 0; i < 63; i++)
        str_putc(in, 'a');
    str_append_cstr(in, ".example>");
    CHECK(addr_parse_path(str_cstr(in), addr, &rest, 0, err));
    str_set_cstr(in, "<u@");
    for (int i = 0; i < 64; i++)
        str_putc(in, 'a');
    str_append_cstr(in, ".example>");
    CHECK(!addr_parse_path(str_cstr(in), addr, &rest, 0, err));
    /* A domain longer than 255 bytes. */
    str_set_cstr(in, "<u@");
    for (int i = 0; i < 50; i++)
        str_append_cstr(in, "abcdef.");
    str_append_cstr(in, "com>");
    CHECK(!addr_parse_path(str_cstr(in), addr, &rest, 0, err));
    /* An address longer than ADDR_MAX_LEN. */
    str_set_cstr(in, "<");
    for (int i = 0; i < ADDR_MAX_LEN; i++)
        str_putc(in, 'x');
    str_append_cstr(in, "@example.com>");
    CHECK(!addr_parse_path(str_cstr(in), addr, &rest, 0, err));
    CHECK_STREQ(str_cstr(err), "address too long");
    /* A very long source route is refused, not looped over forever. */
    str_set_cstr(in, "<");
    for (int i = 0; i < 200; i++)
        str_append_cstr(in, "@a.example,");
    str_append_cstr(in, "@b.example:u@example.com>");
    CHECK(!addr_parse_path(str_cstr(in), addr, &rest, 0, err));
    str_free(in);
    str_free(addr);
    str_free(err);
}

/* Header lists: the addresses found, joined with " | ", and the count. */
struct hdr_case {
    const char *value;
    int     count;
    const char *addrs;
};

static const struct hdr_case hdr_cases[] = {
    {"user@example.com", 1, "user@example.com"},
    {"a@example.com, b@example.org", 2, "a@example.com | b@example.org"},
    {"John Doe <john@example.com>", 1, "john@example.com"},
    {"\"Doe, John\" <john@example.com>, jane@example.com", 2, "john@example.com | jane@example.com"},
    {"\"John Doe\"@example.com", 1, "John Doe@example.com"},
    {"john@example.com (John (the \"big\") Doe)", 1, "john@example.com"},
    {"(comment) john(c)@(c)example.com", 1, "john@example.com"},
    {"undisclosed-recipients:;", 0, ""},
    {"friends: a@example.com, B <b@example.com>; c@example.com", 3,
     "a@example.com | b@example.com | c@example.com"},
    {"<@route.example,@other.example:user@example.com>", 1, "user@example.com"},
    {"Name <@route.example:user@example.com>", 1, "user@example.com"},
    {"root", 1, "root"},
    {"john . doe @ example . com", 1, "john.doe@example.com"},
    {"a@example.com,,, b@example.com", 2, "a@example.com | b@example.com"},
    {"user@[192.0.2.1]", 1, "user@[192.0.2.1]"},
    {"user@[ 192.0.2.1 ]", 1, "user@[192.0.2.1]"},
    {"<>", 0, ""},
    {"", 0, ""},
    {"John Doe", 0, ""},
    {"a@example.com,\r\n\tb@example.com", 2, "a@example.com | b@example.com"},
    {"a@example.com, \"unterminated", -1, "a@example.com"},
    {"a@example.com, (unterminated", -1, "a@example.com"},
    {"a@example.com, <b@example.com", -1, "a@example.com"},
    {"a@example.com, <b@<c@example.com>>", -1, "a@example.com"},
    {"a@example.com, b@example.com>", -1, "a@example.com"},
    {"a@example.com)", -1, ""},
    {"a@[1.2.3.4, b@example.com", -1, ""},
    {"a\x01@example.com, b@example.com", 1, "b@example.com"},
    {"a@b@example.com, c@example.com", 1, "c@example.com"},
    {"\"a\\\"q\"@example.com", 1, "a\"q@example.com"},
    {"=?utf-8?q?J=C3=BC?= <j@example.com>", 1, "j@example.com"},
};

static void
collect(const char *addr, void *ctx)
{
    str_t  *s = ctx;

    if (str_len(s))
        str_append_cstr(s, " | ");
    str_append_cstr(s, addr);
}

TEST(parse_header_table)
{
    str_t  *got = str_new(0);

    for (size_t i = 0; i < NELEM(hdr_cases); i++) {
        const struct hdr_case *c = &hdr_cases[i];
        int     n;

        str_reset(got);
        n = addr_parse_header(c->value, strlen(c->value), collect, got);
        if (n != c->count || strcmp(str_cstr(got), c->addrs) != 0) {
            fprintf(stderr, "  case %zu \"%s\": got %d \"%s\", expected %d \"%s\"\n",
                    i, c->value, n, str_cstr(got), c->count, c->addrs);
            CHECK(false);
        }
    }
    str_free(got);
}

TEST(parse_header_hostile)
{
    str_t  *in = str_new(0), *got = str_new(0);

    /* Deeply nested comments: refused, bounded. */
    for (int i = 0; i < 10000; i++)
        str_putc(in, '(');
    CHECK_INTEQ(addr_parse_header(str_cstr(in), str_len(in), collect, got), -1);
    /* Nesting within the limit is fine. */
    str_set_cstr(in, "a@example.com ");
    for (int i = 0; i < 10; i++)
        str_putc(in, '(');
    for (int i = 0; i < 10; i++)
        str_putc(in, ')');
    str_reset(got);
    CHECK_INTEQ(addr_parse_header(str_cstr(in), str_len(in), collect, got), 1);
    /* Too many tokens: refused. */
    str_reset(in);
    for (int i = 0; i < 20000; i++)
        str_append_cstr(in, "a,");
    str_reset(got);
    CHECK_INTEQ(addr_parse_header(str_cstr(in), str_len(in), collect, got), -1);
    /* A NUL byte inside the value (len covers it). */
    str_set(in, "a@example.com, b\0c@example.com", 30);
    str_reset(got);
    CHECK_INTEQ(addr_parse_header(str_cstr(in), str_len(in), collect, got), -1);
    CHECK_STREQ(str_cstr(got), "a@example.com");
    /* Only len bytes are read. */
    str_reset(got);
    CHECK_INTEQ(addr_parse_header("a@example.com, b@example.com", 13, collect, got), 1);
    CHECK_STREQ(str_cstr(got), "a@example.com");
    str_free(in);
    str_free(got);
}

/* Quoting: internal, external. */
static const char *const quote_cases[][2] = {
    {"user@example.com", "user@example.com"},
    {"first.last@example.com", "first.last@example.com"},
    {"John Doe@example.com", "\"John Doe\"@example.com"},
    {"a\"b@example.com", "\"a\\\"b\"@example.com"},
    {"a\\b@example.com", "\"a\\\\b\"@example.com"},
    {"a@b@example.com", "\"a@b\"@example.com"},
    {".a@example.com", "\".a\"@example.com"},
    {"a.@example.com", "\"a.\"@example.com"},
    {"a..b@example.com", "\"a..b\"@example.com"},
    {"@example.com", "\"\"@example.com"},
    {"", ""},
    {"postmaster", "postmaster"},
    {"foo bar", "\"foo bar\""},
    {"j\xc3\xbc@example.com", "j\xc3\xbc@example.com"},
    {"a(b)@example.com", "\"a(b)\"@example.com"},
};

TEST(quoting_table)
{
    str_t  *ext = str_new(0), *in = str_new(0);

    for (size_t i = 0; i < NELEM(quote_cases); i++) {
        addr_externalize(ext, quote_cases[i][0]);
        CHECK_STREQ(str_cstr(ext), quote_cases[i][1]);
        addr_internalize(in, str_cstr(ext));
        CHECK_STREQ(str_cstr(in), quote_cases[i][0]);
    }
    /* Internalize of partly quoted forms. */
    addr_internalize(in, "\"a b\".c@example.com");
    CHECK_STREQ(str_cstr(in), "a b.c@example.com");
    addr_internalize(in, "\"unterminated@example.com");
    CHECK_STREQ(str_cstr(in), "unterminated@example.com");
    addr_internalize(in, "user@\"dom\"");
    CHECK_STREQ(str_cstr(in), "user@\"dom\"");
    str_free(ext);
    str_free(in);
}

TEST(externalized_path_round_trip)
{
    str_t  *ext = str_new(0), *path = str_new(0), *back = str_new(0), *err = str_new(0);

    for (size_t i = 0; i < NELEM(quote_cases); i++) {
        const char *rest;

        if (*quote_cases[i][0] == 0 || strchr(quote_cases[i][0], '@') == NULL)
            continue;
        addr_externalize(ext, quote_cases[i][0]);
        str_printf(path, "<%s>", str_cstr(ext));
        CHECK(addr_parse_path(str_cstr(path), back, &rest, ADDR_PATH_UTF8, err));
        CHECK_STREQ(str_cstr(back), quote_cases[i][0]);
    }
    str_free(ext);
    str_free(path);
    str_free(back);
    str_free(err);
}

TEST(domain_checks)
{
    static const struct {
        const char *domain;
        bool    utf8;
        bool    ok;
    } cases[] = {
        {"example.com", false, true},
        {"localhost", false, true},
        {"a-b.example", false, true},
        {"-a.example", false, false},
        {"a-.example", false, false},
        {"a..b", false, false},
        {".a", false, false},
        {"a.", false, false},
        {"", false, false},
        {"[127.0.0.1]", false, true},
        {"[IPv6:::1]", false, true},
        {"[::1]", false, false},
        {"[127.0.0.1", false, false},
        {"b\xc3\xbc" "cher.example", false, false},
        {"b\xc3\xbc" "cher.example", true, true},
        {"b\xff.example", true, false},
        {"exa mple.com", false, false},
    };

    for (size_t i = 0; i < NELEM(cases); i++) {
        if (addr_domain_ok(cases[i].domain, cases[i].utf8) != cases[i].ok) {
            fprintf(stderr, "  domain \"%s\": expected %d\n", cases[i].domain, cases[i].ok);
            CHECK(false);
        }
    }
    CHECK(!addr_domain_ok(NULL, false));
    CHECK_STREQ(addr_domain("a@b@example.com"), "example.com");
    CHECK(addr_domain("postmaster") == NULL);
    CHECK_STREQ(addr_domain("user@"), "");
}

TEST(xtext)
{
    static const char *const good[][2] = {
        {"abc", "abc"},
        {"a+2Bb", "a+b"},
        {"a+3Db", "a=b"},
        {"+20lead", " lead"},
        {"a+2bb", "a+b"},                       /* lower-case hex tolerated */
        {"", ""},
    };
    static const char *const bad[] = {"a+", "a+2", "a+ZZ", "a b", "a=b", "+00", "a\x01", "\xc3\xbc"};
    str_t  *out = str_new(0);

    for (size_t i = 0; i < NELEM(good); i++) {
        CHECK(addr_xtext_decode(out, good[i][0]));
        CHECK_STREQ(str_cstr(out), good[i][1]);
    }
    for (size_t i = 0; i < NELEM(bad); i++) {
        if (addr_xtext_decode(out, bad[i])) {
            fprintf(stderr, "  xtext \"%s\" decoded\n", bad[i]);
            CHECK(false);
        }
    }
    str_reset(out);
    addr_xtext_encode(out, "a+b=c d\xc3\xbc");
    CHECK_STREQ(str_cstr(out), "a+2Bb+3Dc+20d+C3+BC");
    {
        str_t  *back = str_new(0);

        CHECK(addr_xtext_decode(back, str_cstr(out)));
        CHECK_STREQ(str_cstr(back), "a+b=c d\xc3\xbc");
        str_free(back);
    }
    /* Encode appends. */
    str_set_cstr(out, "x=");
    addr_xtext_encode(out, "y");
    CHECK_STREQ(str_cstr(out), "x=y");
    str_free(out);
}
