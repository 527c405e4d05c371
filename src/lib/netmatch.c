/*
 * netmatch.c - network patterns and address lists; see netmatch.h.
 *
 * inet_pton() does the address syntax; this file adds brackets, the prefix
 * length, the host-bits check and IPv4-mapped matching. The matcher is a
 * plain array scanned in order: lists are short (mynetworks), and cidr
 * tables keep their own array of networks parsed here.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <string.h>

#include "mem.h"
#include "netmatch.h"

#define NETMATCH_TEXT_MAX   64      /* longer than any textual address */
#define NETMATCH_QUOTE_MAX  80      /* pattern bytes quoted in a message */
#define NETMATCH_SEPARATORS ", \t\r\n\f\v"

struct netmatch {
    struct netmatch_net *nets;
    size_t  count;
    size_t  cap;
};

/*
 * Append text in double quotes, with control bytes and quotes escaped and
 * at most NETMATCH_QUOTE_MAX bytes shown, so messages stay one short line.
 */
static void
quote(str_t *out, const char *text, size_t len)
{
    str_putc(out, '"');
    for (size_t i = 0; i < len && i < NETMATCH_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char) text[i];

        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            str_append_printf(out, "\\x%02x", c);
        else
            str_putc(out, c);
    }
    if (len > NETMATCH_QUOTE_MAX)
        str_append_cstr(out, "...");
    str_putc(out, '"');
}

/* Set err to "<what> in \"<text>\"" and return -1. */
static int
parse_error(str_t *err, const char *what, const char *text, size_t len)
{
    str_set_cstr(err, what);
    str_append_cstr(err, " in ");
    quote(err, text, len);
    return -1;
}

static unsigned
family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

/* Clear the bits of addr below the prefix (in place). */
static void
mask_host_bits(unsigned char *addr, unsigned bits, unsigned prefix)
{
    for (unsigned i = 0; i < bits / 8; i++) {
        if (prefix >= (i + 1) * 8)
            continue;
        if (prefix <= i * 8)
            addr[i] = 0;
        else
            addr[i] &= (unsigned char) (0xff << (8 - (prefix - i * 8)));
    }
}

/*
 * Parse the address part (len bytes, no brackets) into net. Returns false
 * when it is not a textual IPv4 or IPv6 address.
 */
static bool
parse_address(const char *text, size_t len, struct netmatch_net *net)
{
    char    buf[NETMATCH_TEXT_MAX];

    if (len == 0 || len >= sizeof(buf) || memchr(text, 0, len) != NULL)
        return false;
    memcpy(buf, text, len);
    buf[len] = 0;
    memset(net, 0, sizeof(*net));
    net->family = memchr(buf, ':', len) ? AF_INET6 : AF_INET;
    if (inet_pton(net->family, buf, net->addr) != 1)
        return false;
    net->prefix = family_bits(net->family);
    return true;
}

int
netmatch_parse_net(const char *text, size_t len, struct netmatch_net *net, str_t *err)
{
    const char *addr = text;
    size_t  alen;
    const char *rest;           /* "/len" or the end */
    const char *end = text + len;

    if (len == 0) {
        str_set_cstr(err, "empty network pattern");
        return -1;
    }
    if (text[0] == '[') {
        const char *close = memchr(text, ']', len);

        if (close == NULL)
            return parse_error(err, "missing \"]\"", text, len);
        addr = text + 1;
        alen = (size_t) (close - addr);
        rest = close + 1;
        if (rest < end && *rest != '/')
            return parse_error(err, "unexpected text after \"]\"", text, len);
    } else {
        const char *slash = memchr(text, '/', len);

        rest = slash ? slash : end;
        alen = (size_t) (rest - addr);
    }
    if (!parse_address(addr, alen, net))
        return parse_error(err, "bad IP address", text, len);
    if (rest < end) {
        const char *digits = rest + 1;
        size_t  ndigits = (size_t) (end - digits);
        unsigned prefix = 0;

        if (ndigits == 0)
            return parse_error(err, "missing prefix length", text, len);
        for (size_t i = 0; i < ndigits; i++) {
            if (!isdigit((unsigned char) digits[i]))
                return parse_error(err, "bad prefix length", text, len);
            if (prefix <= 128)          /* saturate: anything above is out of range */
                prefix = prefix * 10 + (unsigned) (digits[i] - '0');
        }
        if (prefix > family_bits(net->family))
            return parse_error(err, "prefix length out of range", text, len);
        net->prefix = prefix;
    }

    struct netmatch_net masked = *net;

    mask_host_bits(masked.addr, family_bits(net->family), net->prefix);
    if (memcmp(masked.addr, net->addr, sizeof(net->addr)) != 0) {
        parse_error(err, "host bits set", text, len);
        str_append_cstr(err, " (the network is ");
        netmatch_net_format(&masked, err);
        str_putc(err, ')');
        return -1;
    }
    return 0;
}

bool
netmatch_parse_addr(const char *text, struct netmatch_net *addr)
{
    size_t  len = strnlen(text, NETMATCH_TEXT_MAX);

    return len < NETMATCH_TEXT_MAX && parse_address(text, len, addr);
}

bool
netmatch_addr_from_sockaddr(const struct sockaddr *sa, struct netmatch_net *addr)
{
    memset(addr, 0, sizeof(*addr));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;

        memcpy(&sin, sa, sizeof(sin));
        addr->family = AF_INET;
        addr->prefix = 32;
        memcpy(addr->addr, &sin.sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;

        memcpy(&sin6, sa, sizeof(sin6));
        addr->family = AF_INET6;
        addr->prefix = 128;
        memcpy(addr->addr, &sin6.sin6_addr, 16);
        return true;
    }
    return false;
}

/* Do the first "prefix" bits of a and b agree? */
static bool
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
    unsigned full = prefix / 8;
    unsigned partial = prefix % 8;

    if (memcmp(a, b, full) != 0)
        return false;
    if (partial == 0)
        return true;
    unsigned char mask = (unsigned char) (0xff << (8 - partial));

    return (a[full] & mask) == (b[full] & mask);
}

static bool
is_v4_mapped(const unsigned char *a)
{
    static const unsigned char head[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    return memcmp(a, head, sizeof(head)) == 0;
}

bool
netmatch_net_contains(const struct netmatch_net *net, const struct netmatch_net *addr)
{
    if (net->family == AF_INET) {
        if (addr->family == AF_INET)
            return prefix_equal(net->addr, addr->addr, net->prefix);
        if (addr->family == AF_INET6 && is_v4_mapped(addr->addr))
            return prefix_equal(net->addr, addr->addr + 12, net->prefix);
        return false;
    }
    if (net->family == AF_INET6 && addr->family == AF_INET6)
        return prefix_equal(net->addr, addr->addr, net->prefix);
    return false;
}

void
netmatch_net_format(const struct netmatch_net *net, str_t *out)
{
    char    buf[INET6_ADDRSTRLEN];

    if (inet_ntop(net->family, net->addr, buf, sizeof(buf)) == NULL) {
        str_append_cstr(out, "(bad address)");
        return;
    }
    str_append_printf(out, "%s/%u", buf, net->prefix);
}

/* Set err to "<what> \"<text>\" is not supported in address lists yet"; return -1. */
static int
unsupported(str_t *err, const char *what, const char *text, size_t len)
{
    str_set_cstr(err, what);
    str_putc(err, ' ');
    quote(err, text, len);
    str_append_cstr(err, " is not supported in address lists yet");
    return -1;
}

/*
 * Explain a token that is not a network pattern: a table, a file, a
 * negation, or just a bad address. Sets err; returns -1.
 */
static int
token_error(const char *tok, size_t len, str_t *err)
{
    size_t  name = 0;
    bool    non_hex = false;

    if (tok[0] == '!')
        return unsupported(err, "negated pattern", tok, len);
    if (tok[0] == '/')
        return unsupported(err, "file name", tok, len);
    /* "type:name": a word before the colon that cannot be IPv6 hex, or a "/" after it. */
    while (name < len && (isalnum((unsigned char) tok[name]) || tok[name] == '_')) {
        if (!isxdigit((unsigned char) tok[name]))
            non_hex = true;
        name++;
    }
    if (name > 0 && name + 1 < len && tok[name] == ':' && isalpha((unsigned char) tok[0])
        && (non_hex || tok[name + 1] == '/'))
        return unsupported(err, "table lookup", tok, len);
    return netmatch_parse_net(tok, len, &(struct netmatch_net) {0}, err);
}

netmatch_t *
netmatch_parse(const char *list, str_t *err)
{
    netmatch_t *m = mem_zalloc(sizeof(*m));
    const char *p = list;

    for (;;) {
        p += strspn(p, NETMATCH_SEPARATORS);
        if (*p == 0)
            break;
        size_t  len = strcspn(p, NETMATCH_SEPARATORS);
        struct netmatch_net net;

        if (p[0] == '!' || p[0] == '/' || netmatch_parse_net(p, len, &net, err) != 0) {
            token_error(p, len, err);
            netmatch_free(m);
            return NULL;
        }
        m->nets = mem_grow_array(m->nets, &m->cap, m->count + 1, sizeof(*m->nets));
        m->nets[m->count++] = net;
        p += len;
    }
    return m;
}

void
netmatch_free(netmatch_t *m)
{
    if (m == NULL)
        return;
    mem_free(m->nets);
    mem_free(m);
}

size_t
netmatch_count(const netmatch_t *m)
{
    return m->count;
}

static bool
match_addr(const netmatch_t *m, const struct netmatch_net *addr)
{
    for (size_t i = 0; i < m->count; i++)
        if (netmatch_net_contains(&m->nets[i], addr))
            return true;
    return false;
}

bool
netmatch_match(const netmatch_t *m, const struct sockaddr *sa)
{
    struct netmatch_net addr;

    return netmatch_addr_from_sockaddr(sa, &addr) && match_addr(m, &addr);
}

bool
netmatch_match_text(const netmatch_t *m, const char *text)
{
    struct netmatch_net addr;

    return netmatch_parse_addr(text, &addr) && match_addr(m, &addr);
}
