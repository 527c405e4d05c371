/*
 * netmatch.h - IPv4/IPv6 networks: parse "addr/len", match addresses.
 *
 * Two layers. The first is the one parser of network patterns in Postern,
 * shared by mynetworks-style lists (below) and cidr: tables:
 *
 *     1.2.3.0/24   1.2.3.4   2001:db8::/32   [2001:db8::]/32   [::1]   ::1/128
 *
 * An address without "/len" is an exact match (/32 or /128). IPv6 may be
 * written with or without square brackets, as "[addr]" or "[addr]/len"; an
 * IPv4 address may be bracketed too. The prefix length is decimal, 0-32 or
 * 0-128. Host bits below the prefix must be zero: "10.1.1.1/8" is refused
 * (the message names the network that was probably meant, 10.0.0.0/8).
 *
 * The second layer is a matcher built from a list such as the mynetworks
 * parameter: "127.0.0.0/8 [::1]/128 192.168.1.5, 10.0.0.0/8" (separators
 * are commas and/or white space). Table lookups ("type:name"), file names
 * ("/path") and negation ("!pattern") inside a list are not supported yet
 * and are reported as such.
 *
 * Addresses to match are given as text ("1.2.3.4", "::1") or as a struct
 * sockaddr. An IPv4-mapped IPv6 address (::ffff:1.2.3.4) matches IPv4
 * networks as its IPv4 address, and IPv6 networks as itself. An IPv4 address
 * never matches an IPv6 network. Scoped addresses (fe80::1%eth0) are not
 * addresses here.
 *
 * Nothing here logs or allocates except the matcher; errors are returned as
 * text in a caller's str_t.
 */
#ifndef POSTERN_NETMATCH_H
#define POSTERN_NETMATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "str.h"

/* A network (or, with a full prefix, one address). */
struct netmatch_net {
    int     family;             /* AF_INET or AF_INET6 */
    unsigned prefix;            /* 0-32 for AF_INET, 0-128 for AF_INET6 */
    unsigned char addr[16];     /* network bytes; AF_INET uses the first 4 */
};

/*
 * Parse a network pattern of len bytes at text (see above; no white space
 * allowed). Returns 0, or -1 with err set to a message that quotes the
 * pattern ("bad IP address in \"x\"", "host bits set in ...").
 */
int     netmatch_parse_net(const char *text, size_t len, struct netmatch_net *net, str_t *err);
/*
 * Parse a bare textual address (no brackets, no prefix) into addr with a
 * full prefix. Returns false when text is not an IPv4 or IPv6 address.
 */
bool    netmatch_parse_addr(const char *text, struct netmatch_net *addr);
/* Convert a socket address; false for families other than AF_INET/AF_INET6. */
bool    netmatch_addr_from_sockaddr(const struct sockaddr *sa, struct netmatch_net *addr);
/* Does net contain addr (an address from the two functions above)? */
bool    netmatch_net_contains(const struct netmatch_net *net, const struct netmatch_net *addr);
/* Append "10.0.0.0/8" or "2001:db8::/32" to out. */
void    netmatch_net_format(const struct netmatch_net *net, str_t *out);

typedef struct netmatch netmatch_t;

/*
 * Build a matcher from a list. Returns NULL with err naming the bad token
 * ("bad IP address in \"foo\"", "table lookup \"hash:/x\" is not supported
 * in address lists yet"). An empty list gives a matcher that matches nothing.
 */
netmatch_t *netmatch_parse(const char *list, str_t *err);
void    netmatch_free(netmatch_t *m);       /* NULL is fine */
size_t  netmatch_count(const netmatch_t *m);
/* true when the address is in any network of the list. */
bool    netmatch_match(const netmatch_t *m, const struct sockaddr *sa);
/* The same for a textual address; false if text is not an address. */
bool    netmatch_match_text(const netmatch_t *m, const char *text);

#endif
