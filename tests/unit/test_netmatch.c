/*
 * test_netmatch.c - unit tests for netmatch.c: the network pattern parser
 * (shared with cidr tables), address matching with IPv4-mapped IPv6, and
 * mynetworks-style lists.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "netmatch.h"
#include "str.h"
#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

TEST(parse_net_good_patterns)
{
    static const struct {
        const char *in;
        const char *canon;      /* netmatch_net_format() of the result */
    } cases[] = {
        {"127.0.0.0/8", "127.0.0.0/8"},
        {"192.168.1.5", "192.168.1.5/32"},
        {"0.0.0.0/0", "0.0.0.0/0"},
        {"10.0.0.0/08", "10.0.0.0/8"},
        {"255.255.255.255/32", "255.255.255.255/32"},
        {"[192.0.2.1]", "192.0.2.1/32"},
        {"[192.0.2.0]/24", "192.0.2.0/24"},
        {"::1", "::1/128"},
        {"::1/128", "::1/128"},
        {"[::1]/128", "::1/128"},
        {"[::1]", "::1/128"},
        {"::/0", "::/0"},
        {"2001:DB8::/32", "2001:db8::/32"},
        {"[2001:db8:0:0::]/64", "2001:db8::/64"},
        {"fe80::/10", "fe80::/10"},
        {"::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"},
        {"2001:db8::8000/113", "2001:db8::8000/113"},
    };
    str_t  *err = str_new(0);
    str_t  *out = str_new(0);

    for (size_t i = 0; i < NELEM(cases); i++) {
        struct netmatch_net net;
        int     rc = netmatch_parse_net(cases[i].in, strlen(cases[i].in), &net, err);

        CHECK_INTEQ(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "  case %s: %s\n", cases[i].in, str_cstr(err));
            continue;
        }
        str_reset(out);
        netmatch_net_format(&net, out);
        CHECK_STREQ(str_cstr(out), cases[i].canon);
    }
    str_free(err);
    str_free(out);
}

TEST(parse_net_bad_patterns)
{
    static const struct {
        const char *in;
        const char *err;        /* expected message */
    } cases[] = {
        {"", "empty network pattern"},
        {"banana", "bad IP address in \"banana\""},
        {"1.2.3", "bad IP address in \"1.2.3\""},
        {"1.2.3.256", "bad IP address in \"1.2.3.256\""},
        {"01.2.3.4", "bad IP address in \"01.2.3.4\""},
        {"1.2.3.4 ", "bad IP address in \"1.2.3.4 \""},
        {"/8", "bad IP address in \"/8\""},
        {"1.2.3.0/", "missing prefix length in \"1.2.3.0/\""},
        {"1.2.3.0/33", "prefix length out of range in \"1.2.3.0/33\""},
        {"::/129", "prefix length out of range in \"::/129\""},
        {"1.2.3.0/99999999999999999999", "prefix length out of range in \"1.2.3.0/99999999999999999999\""},
        {"1.2.3.0/-1", "bad prefix length in \"1.2.3.0/-1\""},
        {"1.2.3.0/+8", "bad prefix length in \"1.2.3.0/+8\""},
        {"1.2.3.0/2x", "bad prefix length in \"1.2.3.0/2x\""},
        {"1.2.3.0/24/1", "bad prefix length in \"1.2.3.0/24/1\""},
        {"10.1.1.1/8", "host bits set in \"10.1.1.1/8\" (the network is 10.0.0.0/8)"},
        {"192.168.1.1/31", "host bits set in \"192.168.1.1/31\" (the network is 192.168.1.0/31)"},
        {"2001:db8::1/64", "host bits set in \"2001:db8::1/64\" (the network is 2001:db8::/64)"},
        {"[::1", "missing \"]\" in \"[::1\""},
        {"[::1]128", "unexpected text after \"]\" in \"[::1]128\""},
        {"[]", "bad IP address in \"[]\""},
        {"[::1/128]", "bad IP address in \"[::1/128]\""},
        {"fe80::1%eth0", "bad IP address in \"fe80::1%eth0\""},
        {"1.2.3.4\x01", "bad IP address in \"1.2.3.4\\x01\""},
        {"1:2:3:4:5:6:7:8:9", "bad IP address in \"1:2:3:4:5:6:7:8:9\""},
    };
    str_t  *err = str_new(0);

    for (size_t i = 0; i < NELEM(cases); i++) {
        struct netmatch_net net;

        CHECK_INTEQ(netmatch_parse_net(cases[i].in, strlen(cases[i].in), &net, err), -1);
        CHECK_STREQ(str_cstr(err), cases[i].err);
    }

    /* Length-delimited: text after len is not looked at; NUL inside is bad. */
    struct netmatch_net net;

    CHECK_INTEQ(netmatch_parse_net("10.0.0.0/8 junk", 10, &net, err), 0);
    CHECK_INTEQ(netmatch_parse_net("1.2.3.4\0/8", 10, &net, err), -1);

    /* A very long pattern is quoted only in part. */
    char    longpat[300];

    memset(longpat, '1', sizeof(longpat) - 1);
    longpat[sizeof(longpat) - 1] = 0;
    CHECK_INTEQ(netmatch_parse_net(longpat, strlen(longpat), &net, err), -1);
    CHECK(str_len(err) < 120);
    CHECK(strstr(str_cstr(err), "...\"") != NULL);
    str_free(err);
}

TEST(contains_with_mapped_addresses)
{
    static const struct {
        const char *net;
        const char *addr;
        bool    match;
    } cases[] = {
        {"10.0.0.0/8", "10.255.1.2", true},
        {"10.0.0.0/8", "11.0.0.0", false},
        {"10.0.0.0/8", "::ffff:10.1.2.3", true},        /* mapped matches IPv4 */
        {"10.0.0.0/8", "::ffff:11.1.2.3", false},
        {"10.0.0.0/8", "::10.1.2.3", false},            /* compatible, not mapped */
        {"10.0.0.0/8", "::ffff:0:10.1.2.3", false},     /* translated, not mapped */
        {"0.0.0.0/0", "1.2.3.4", true},
        {"0.0.0.0/0", "::ffff:1.2.3.4", true},
        {"0.0.0.0/0", "::1", false},                     /* v4 net never holds plain v6 */
        {"::/0", "1.2.3.4", false},                      /* v6 net never holds v4 */
        {"::/0", "::ffff:1.2.3.4", true},
        {"::ffff:0:0/96", "::ffff:1.2.3.4", true},
        {"::ffff:0:0/96", "1.2.3.4", false},
        {"192.168.1.5", "192.168.1.5", true},
        {"192.168.1.5", "192.168.1.4", false},
        {"192.168.1.0/25", "192.168.1.127", true},
        {"192.168.1.0/25", "192.168.1.128", false},
        {"2001:db8::/32", "2001:DB8:ffff::1", true},
        {"2001:db8::/32", "2001:db9::1", false},
        {"2001:db8::8000/113", "2001:db8::ffff", true},
        {"2001:db8::8000/113", "2001:db8::7fff", false},
        {"::1", "::1", true},
        {"::1", "::2", false},
    };
    str_t  *err = str_new(0);

    for (size_t i = 0; i < NELEM(cases); i++) {
        struct netmatch_net net, addr;

        CHECK_INTEQ(netmatch_parse_net(cases[i].net, strlen(cases[i].net), &net, err), 0);
        CHECK(netmatch_parse_addr(cases[i].addr, &addr));
        if (netmatch_net_contains(&net, &addr) != cases[i].match) {
            fprintf(stderr, "  case %s in %s: expected %d\n", cases[i].addr, cases[i].net,
                    cases[i].match);
            CHECK(false);
        }
    }
    str_free(err);
}

TEST(parse_addr_is_strict)
{
    static const char *bad[] = {
        "", "localhost", "[1.2.3.4]", "1.2.3.4/32", "1.2.3.4 ", " 1.2.3.4", "1.2.3",
        "::1%lo", "0x7f.0.0.1", "12345::1",
    };
    struct netmatch_net addr;

    for (size_t i = 0; i < NELEM(bad); i++)
        CHECK(!netmatch_parse_addr(bad[i], &addr));
    CHECK(netmatch_parse_addr("1.2.3.4", &addr) && addr.family == AF_INET && addr.prefix == 32);
    CHECK(netmatch_parse_addr("::", &addr) && addr.family == AF_INET6 && addr.prefix == 128);

    char    huge[5000];

    memset(huge, '1', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = 0;
    CHECK(!netmatch_parse_addr(huge, &addr));
}

TEST(list_matching_text_and_sockaddr)
{
    str_t  *err = str_new(0);
    netmatch_t *m = netmatch_parse("127.0.0.0/8 [::1]/128 192.168.1.5, 10.0.0.0/8,,\t2001:db8::/32\n", err);

    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "  %s\n", str_cstr(err));
        str_free(err);
        return;
    }
    CHECK_INTEQ(netmatch_count(m), 5);

    static const struct {
        const char *addr;
        bool    match;
    } cases[] = {
        {"127.0.0.1", true}, {"127.255.255.255", true}, {"128.0.0.1", false},
        {"::1", true}, {"::2", false}, {"192.168.1.5", true}, {"192.168.1.6", false},
        {"10.9.8.7", true}, {"::ffff:10.9.8.7", true}, {"::ffff:127.0.0.1", true},
        {"2001:db8:1::1", true}, {"2001:db9::1", false}, {"not-an-ip", false}, {"", false},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        if (netmatch_match_text(m, cases[i].addr) != cases[i].match) {
            fprintf(stderr, "  case %s: expected %d\n", cases[i].addr, cases[i].match);
            CHECK(false);
        }
    }

    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    struct sockaddr sun = {.sa_family = AF_UNIX};

    CHECK(inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr) == 1);
    CHECK(netmatch_match(m, (struct sockaddr *) &sin));
    CHECK(inet_pton(AF_INET, "11.1.2.3", &sin.sin_addr) == 1);
    CHECK(!netmatch_match(m, (struct sockaddr *) &sin));
    CHECK(inet_pton(AF_INET6, "::1", &sin6.sin6_addr) == 1);
    CHECK(netmatch_match(m, (struct sockaddr *) &sin6));
    CHECK(inet_pton(AF_INET6, "::ffff:192.168.1.5", &sin6.sin6_addr) == 1);
    CHECK(netmatch_match(m, (struct sockaddr *) &sin6));
    CHECK(inet_pton(AF_INET6, "::ffff:192.168.1.6", &sin6.sin6_addr) == 1);
    CHECK(!netmatch_match(m, (struct sockaddr *) &sin6));
    CHECK(!netmatch_match(m, &sun));
    CHECK(!netmatch_match(m, NULL));
    netmatch_free(m);
    str_free(err);
}

TEST(empty_list_matches_nothing)
{
    str_t  *err = str_new(0);

    for (int i = 0; i < 3; i++) {
        netmatch_t *m = netmatch_parse(i == 0 ? "" : i == 1 ? "  " : " , ,\n", err);

        CHECK(m != NULL);
        if (m) {
            CHECK_INTEQ(netmatch_count(m), 0);
            CHECK(!netmatch_match_text(m, "127.0.0.1"));
        }
        netmatch_free(m);
    }
    netmatch_free(NULL);
    str_free(err);
}

TEST(list_errors_name_the_bad_token)
{
    static const struct {
        const char *list;
        const char *err;
    } cases[] = {
        {"127.0.0.0/8 banana ::1", "bad IP address in \"banana\""},
        {"127.0.0.0/8, 10.1.1.1/8", "host bits set in \"10.1.1.1/8\" (the network is 10.0.0.0/8)"},
        {"1.2.3.0/33", "prefix length out of range in \"1.2.3.0/33\""},
        {"hash:/etc/postern/network_table",
         "table lookup \"hash:/etc/postern/network_table\" is not supported in address lists yet"},
        {"cidr:/etc/postern/nets",
         "table lookup \"cidr:/etc/postern/nets\" is not supported in address lists yet"},
        {"cdb:/etc/x", "table lookup \"cdb:/etc/x\" is not supported in address lists yet"},
        {"/etc/postern/nets", "file name \"/etc/postern/nets\" is not supported in address lists yet"},
        {"!192.168.0.1 192.168.0.0/16",
         "negated pattern \"!192.168.0.1\" is not supported in address lists yet"},
        {"dead:beef::1/64", "host bits set in \"dead:beef::1/64\" (the network is dead:beef::/64)"},
        {"[::1]/128x", "bad prefix length in \"[::1]/128x\""},
    };
    str_t  *err = str_new(0);

    for (size_t i = 0; i < NELEM(cases); i++) {
        netmatch_t *m = netmatch_parse(cases[i].list, err);

        CHECK(m == NULL);
        netmatch_free(m);
        CHECK_STREQ(str_cstr(err), cases[i].err);
    }
    str_free(err);
}
