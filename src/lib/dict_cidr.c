/*
 * dict_cidr.c - "cidr:/path/file": IP address lookups by network, first
 * match in file order.
 *
 * Each logical line (see dict_reader_next() in dict.h) is
 *
 *     pattern   result
 *
 * where pattern is a network or an address in the syntax of netmatch.h
 * ("10.0.0.0/8", "192.168.1.5", "2001:db8::/32", "[2001:db8::]/32") and the
 * result is the rest of the line, trimmed. A key is a textual IPv4 or IPv6
 * address; anything else is DICT_NOTFOUND. The first line whose network
 * holds the key gives the result. IPv4-mapped IPv6 keys (::ffff:1.2.3.4)
 * match IPv4 lines too (see netmatch.h).
 *
 * The whole file is checked at open: a bad address, a prefix length out of
 * range, host bits set below the prefix ("10.1.1.1/8"), a missing result,
 * or a Postfix feature not supported yet ("!pattern", "if"/"endif") make the
 * open fail with "FILE, line N: reason". The type has DICT_FLAG_PATTERN:
 * keys are not folded (inet_pton ignores case anyway).
 *
 * Entries are kept in an array in file order and scanned linearly, which is
 * what first-match semantics need.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dict.h"
#include "mem.h"
#include "netmatch.h"

struct cidr_entry {
    struct netmatch_net net;
    char   *result;
};

struct dict_cidr {
    dict_t  dict;
    struct cidr_entry *entries;
    size_t  count;
    size_t  cap;
};

static int
cidr_lookup(dict_t *d, const char *key, str_t *value, str_t *err)
{
    struct dict_cidr *dc = (struct dict_cidr *) d;
    struct netmatch_net addr;

    if (!netmatch_parse_addr(key, &addr))
        return DICT_NOTFOUND;
    for (size_t i = 0; i < dc->count; i++) {
        if (netmatch_net_contains(&dc->entries[i].net, &addr)) {
            str_set_cstr(value, dc->entries[i].result);
            return DICT_FOUND;
        }
    }
    return DICT_NOTFOUND;
}

static void
cidr_close(dict_t *d)
{
    struct dict_cidr *dc = (struct dict_cidr *) d;

    for (size_t i = 0; i < dc->count; i++)
        mem_free(dc->entries[i].result);
    mem_free(dc->entries);
    dict_free_common(d);
}

/*
 * Parse one logical line (trimmed, not empty, not starting with white
 * space) and append its entry. Returns 0, or -1 with err set.
 */
static int
cidr_parse_line(struct dict_cidr *dc, const str_t *line, int lineno, str_t *err)
{
    const char *p = str_cstr(line);
    size_t  plen = 0;
    const char *result;
    struct netmatch_net net;
    str_t  *why;

    while (plen < str_len(line) && !isspace((unsigned char) p[plen]))
        plen++;
    result = p + plen;
    while (*result && isspace((unsigned char) *result))
        result++;

    str_printf(err, "%s, line %d: ", dc->dict.name, lineno);
    if (p[0] == '!' || (plen == 2 && strncasecmp(p, "if", 2) == 0)
        || (plen == 5 && strncasecmp(p, "endif", 5) == 0)) {
        str_append_cstr(err, "not supported in cidr tables yet: ");
        dict_quote(err, p, plen);
        return -1;
    }
    why = str_new(0);
    if (netmatch_parse_net(p, plen, &net, why) != 0) {
        str_append_str(err, why);
        str_free(why);
        return -1;
    }
    str_free(why);
    if (*result == 0) {
        str_append_cstr(err, "no result for ");
        dict_quote(err, p, plen);
        return -1;
    }
    dc->entries = mem_grow_array(dc->entries, &dc->cap, dc->count + 1, sizeof(*dc->entries));
    dc->entries[dc->count].net = net;
    dc->entries[dc->count].result = mem_strdup(result);
    dc->count++;
    return 0;
}

/*
 * Open: read and check every line. On failure nothing is kept and err names
 * the file and line.
 */
dict_t *
dict_cidr_open(const char *name, int flags, str_t *err)
{
    struct dict_cidr *dc;
    dict_reader_t *r;
    str_t   line;
    int     lineno = 0;
    int     rc;

    dc = (struct dict_cidr *) dict_alloc(sizeof(*dc), "cidr", name, flags);
    dc->dict.lookup = cidr_lookup;
    dc->dict.close = cidr_close;
    if ((r = dict_reader_open(&dc->dict, name, err)) == NULL) {
        cidr_close(&dc->dict);
        return NULL;
    }
    str_init(&line);
    while ((rc = dict_reader_next(r, &line, &lineno, err)) > 0)
        if ((rc = cidr_parse_line(dc, &line, lineno, err)) < 0)
            break;
    str_release(&line);
    dict_reader_close(r);
    if (rc < 0) {
        cidr_close(&dc->dict);
        return NULL;
    }
    return &dc->dict;
}
