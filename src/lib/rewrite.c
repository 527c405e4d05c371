/*
 * rewrite.c - canonicalizing and resolving addresses (the logic of the
 * trivial-rewrite service; see rewrite.h and docs/addressing.md).
 *
 * Rewriting ("local" and "remote" rules) works on the internal form:
 *   1. the empty address stays empty;
 *   2. a source route "@a,@b:user@c" is dropped;
 *   3. one trailing dot is removed ("user@host." -> "user@host"), but not
 *      from "..", "@." forms, which stay bogus for clearer diagnostics;
 *   4. an address without '@': swap_bangpath turns "a!b!c" into "b!c@a"
 *      (the first '!' splits); else allow_percent_hack turns the rightmost
 *      '%' into '@'; else (local rule) append_at_myorigin appends
 *      "@$myorigin";
 *   5. (local rule) append_dot_mydomain appends ".$mydomain" to a domain
 *      without a dot that is not an address literal.
 *
 * Resolving strips local domains off the right end, looks for routing
 * operators in what is left (user@remote, user%remote, remote!user: the
 * address is then "routed"), classifies the final domain, and picks the
 * transport and next hop of its class; transport_maps may override them.
 *
 * Domain lists (Postfix syntax): names, ".name" for subdomains, "!" before
 * an entry to exclude, "/file" for a file of more entries, "type:table" for
 * a lookup table keyed by domain. relay_domains also matches subdomains of
 * a listed name (Postfix's parent_domain_matches_subdomains default).
 *
 * Ownership: the context owns copies of all configuration values and the
 * open tables. Nothing here reads peer data except the addresses given,
 * which are bounded (ADDR_MAX_LEN) and never trusted to be well-formed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "dict.h"
#include "log.h"
#include "mem.h"
#include "netmatch.h"
#include "rewrite.h"

#define LIST_FILE_MAX       (1024 * 1024)   /* a /file in a domain list */
#define LIST_FILE_DEPTH     4               /* files naming files */
#define RESOLVE_MAX_LOOPS   20              /* local domains stripped per address */
#define ERROR_TRANSPORT     "error"
#define ALIAS_NEXTHOP       "5.1.1 User unknown in virtual alias table"
#define BAD_SYNTAX_NEXTHOP  "5.1.3 Bad recipient address syntax"

struct list_entry {
    char   *pattern;            /* lower case; NULL for a table */
    dict_t *dict;
    bool    negate;
};

struct domain_list {
    const char *param;          /* for messages */
    bool    parent_match;       /* "example.com" also matches "sub.example.com" */
    struct list_entry *e;
    size_t  n, cap;
};

struct rewrite_ctx {
    char   *myorigin, *mydomain, *myhostname;
    char   *relayhost, *empty_recipient, *delimiters;
    char   *local_transport, *virtual_transport, *relay_transport, *default_transport;
    bool    append_at_myorigin, append_dot_mydomain, swap_bangpath, percent_hack;
    bool    resolve_dequoted, resolve_null_domain;
    struct domain_list mydest, relay, valias, vmailbox;
    dict_t **tmaps;             /* transport_maps */
    size_t  ntmaps;
    struct netmatch_net *own;   /* this machine's addresses */
    size_t  nown, own_cap;
};

/*
 * Split a list value into tokens at commas and white space; text inside
 * braces stays in one token ("inline:{ a=b, c=d }").
 */
static const char *
next_token(const char *p, str_t *tok)
{
    int     depth = 0;

    str_reset(tok);
    while (*p && (*p == ',' || isspace((unsigned char) *p)))
        p++;
    while (*p && (depth > 0 || (*p != ',' && !isspace((unsigned char) *p)))) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && depth > 0)
            depth--;
        str_putc(tok, *p++);
    }
    return str_len(tok) ? p : NULL;
}

static bool list_add_text(struct domain_list *dl, const char *text, int depth, str_t *err);

static bool
list_add_token(struct domain_list *dl, const char *tok, int depth, str_t *err)
{
    struct list_entry e = {0};

    if (*tok == '!') {
        e.negate = true;
        tok++;
    }
    if (*tok == 0) {
        str_printf(err, "%s: empty entry after \"!\"", dl->param);
        return false;
    }
    if (*tok == '/') {
        str_t  *text = str_new(0);
        bool    ok;

        if (e.negate) {
            str_printf(err, "%s: \"!\" before a file name is not supported", dl->param);
            str_free(text);
            return false;
        }
        if (depth >= LIST_FILE_DEPTH) {
            str_printf(err, "%s: files nested too deep at %s", dl->param, tok);
            str_free(text);
            return false;
        }
        ok = config_read_text(tok, LIST_FILE_MAX, text, err);
        if (ok) {
            /* Comments in the file: '#' to the end of the line. */
            for (char *p = text->data, *hash; (hash = strchr(p, '#')) != NULL; p = hash) {
                while (*hash && *hash != '\n')
                    *hash++ = ' ';
            }
            ok = list_add_text(dl, str_cstr(text), depth + 1, err);
        } else {
            str_t  *why = str_new(0);

            str_printf(why, "%s: %s", dl->param, str_cstr(err));
            str_set_cstr(err, str_cstr(why));
            str_free(why);
        }
        str_free(text);
        return ok;
    }
    if (strchr(tok, ':') != NULL && tok[0] != '[') {
        e.dict = dict_open(tok, 0, err);
        if (e.dict == NULL) {
            str_t  *why = str_new(0);

            str_printf(why, "%s: %s", dl->param, str_cstr(err));
            str_set_cstr(err, str_cstr(why));
            str_free(why);
            return false;
        }
    } else {
        e.pattern = mem_strdup(tok);
        cstr_lower(e.pattern);
        /* A trailing dot in the list means the same domain. */
        size_t  len = strlen(e.pattern);

        if (len > 1 && e.pattern[len - 1] == '.')
            e.pattern[len - 1] = 0;
    }
    dl->e = mem_grow_array(dl->e, &dl->cap, dl->n + 1, sizeof(*dl->e));
    dl->e[dl->n++] = e;
    return true;
}

static bool
list_add_text(struct domain_list *dl, const char *text, int depth, str_t *err)
{
    str_t  *tok = str_new(64);
    bool    ok = true;

    for (const char *p = text; ok && (p = next_token(p, tok)) != NULL;)
        ok = list_add_token(dl, str_cstr(tok), depth, err);
    str_free(tok);
    return ok;
}

static void
list_free(struct domain_list *dl)
{
    for (size_t i = 0; i < dl->n; i++) {
        mem_free(dl->e[i].pattern);
        dict_close(dl->e[i].dict);
    }
    mem_free(dl->e);
    dl->e = NULL;
    dl->n = dl->cap = 0;
}

/* Does a table list domain (or, for subdomain rules, a parent)? 1, 0, -1 error. */
static int
table_match(struct domain_list *dl, dict_t *d, const char *domain, str_t *value)
{
    str_t  *key;
    int     rc = dict_lookup(d, domain, value);

    if (rc != DICT_NOTFOUND)
        return rc == DICT_FOUND ? 1 : -1;
    key = str_new(64);
    for (const char *p = strchr(domain, '.'); p != NULL && p[1]; p = strchr(p + 1, '.')) {
        if (dl->parent_match && (rc = dict_lookup(d, p + 1, value)) != DICT_NOTFOUND)
            break;
        str_set_cstr(key, p);
        if ((rc = dict_lookup(d, str_cstr(key), value)) != DICT_NOTFOUND)
            break;
    }
    str_free(key);
    return rc == DICT_FOUND ? 1 : rc == DICT_NOTFOUND ? 0 : -1;
}

/* Is domain (lower case, no trailing dot) in the list? 1, 0, or -1 with err. */
static int
list_match(struct domain_list *dl, const char *domain, str_t *err)
{
    size_t  dlen = strlen(domain);
    str_t  *value = str_new(0);
    int     found = 0;

    for (size_t i = 0; i < dl->n && found == 0; i++) {
        struct list_entry *e = &dl->e[i];
        int     hit;

        if (e->dict) {
            hit = table_match(dl, e->dict, domain, value);
            if (hit < 0) {
                str_printf(err, "%s: table %s:%s: %s", dl->param, e->dict->type, e->dict->name,
                           dict_error(e->dict));
                found = -1;
                break;
            }
        } else {
            size_t  plen = strlen(e->pattern);

            if (e->pattern[0] == '.')
                hit = dlen > plen && strcmp(domain + dlen - plen, e->pattern) == 0;
            else
                hit = strcmp(domain, e->pattern) == 0
                    || (dl->parent_match && dlen > plen && domain[dlen - plen - 1] == '.'
                        && strcmp(domain + dlen - plen, e->pattern) == 0);
        }
        if (hit)
            found = e->negate ? 2 : 1;
    }
    str_free(value);
    return found == 2 ? 0 : found;
}

static void
own_add(rewrite_ctx_t *ctx, const struct netmatch_net *n)
{
    ctx->own = mem_grow_array(ctx->own, &ctx->own_cap, ctx->nown + 1, sizeof(*ctx->own));
    ctx->own[ctx->nown++] = *n;
}

static void
own_add_text(rewrite_ctx_t *ctx, const char *text)
{
    struct netmatch_net n;

    if (netmatch_parse_addr(text, &n))
        own_add(ctx, &n);
}

static void
own_add_loopback(rewrite_ctx_t *ctx)
{
    own_add_text(ctx, "127.0.0.1");
    own_add_text(ctx, "::1");
}

/*
 * This machine's addresses: every interface for "all" (getifaddrs, no
 * DNS), loopback for "loopback-only" and "localhost", numeric addresses as
 * given. Host names other than localhost are not looked up (no DNS at
 * start-up); they are logged and skipped.
 */
static void
own_add_list(rewrite_ctx_t *ctx, const char *param, const char *value)
{
    str_t  *tok = str_new(64);

    for (const char *p = value; (p = next_token(p, tok)) != NULL;) {
        char   *t = tok->data;
        size_t  len = str_len(tok);

        if (strcasecmp(t, "all") == 0) {
            struct ifaddrs *ifa, *i;

            if (getifaddrs(&ifa) != 0) {
                log_warn_errno("%s: cannot list the network interfaces", param);
                own_add_loopback(ctx);
                continue;
            }
            for (i = ifa; i; i = i->ifa_next) {
                struct netmatch_net n;

                if (i->ifa_addr && netmatch_addr_from_sockaddr(i->ifa_addr, &n))
                    own_add(ctx, &n);
            }
            freeifaddrs(ifa);
        } else if (strcasecmp(t, "loopback-only") == 0 || strcasecmp(t, "localhost") == 0) {
            own_add_loopback(ctx);
        } else {
            if (len > 2 && t[0] == '[' && t[len - 1] == ']') {
                t[len - 1] = 0;
                t++;
            }
            struct netmatch_net n;

            if (netmatch_parse_addr(t, &n))
                own_add(ctx, &n);
            else
                log_warn("%s: \"%s\" is not a numeric address; not used to recognize "
                         "this machine's address literals", param, str_cstr(tok));
        }
    }
    str_free(tok);
}

/* Is "[1.2.3.4]" / "[IPv6:::1]" one of this machine's addresses? */
static bool
own_literal(rewrite_ctx_t *ctx, const char *domain)
{
    size_t  len = strlen(domain);
    char    buf[64];
    const char *a = buf;
    struct netmatch_net n;

    if (len < 3 || domain[0] != '[' || domain[len - 1] != ']' || len - 2 >= sizeof(buf))
        return false;
    memcpy(buf, domain + 1, len - 2);
    buf[len - 2] = 0;
    if (strncasecmp(buf, "ipv6:", 5) == 0)
        a = buf + 5;
    else if (strchr(buf, ':') != NULL)
        return false;                           /* IPv6 needs its tag */
    if (!netmatch_parse_addr(a, &n))
        return false;
    for (size_t i = 0; i < ctx->nown; i++)
        if (netmatch_net_contains(&ctx->own[i], &n))
            return true;
    return false;
}

static char *
cfg_dup(config_t *cfg, const char *name)
{
    return mem_strdup(config_str(cfg, name));
}

rewrite_ctx_t *
rewrite_ctx_new(config_t *cfg, str_t *err)
{
    rewrite_ctx_t *ctx = mem_zalloc(sizeof(*ctx));
    str_t  *tok = str_new(64);
    bool    ok;

    ctx->myorigin = cfg_dup(cfg, "myorigin");
    ctx->mydomain = cfg_dup(cfg, "mydomain");
    ctx->myhostname = cfg_dup(cfg, "myhostname");
    ctx->relayhost = cfg_dup(cfg, "relayhost");
    ctx->empty_recipient = cfg_dup(cfg, "empty_address_recipient");
    ctx->delimiters = cfg_dup(cfg, "recipient_delimiter");
    ctx->local_transport = cfg_dup(cfg, "local_transport");
    ctx->virtual_transport = cfg_dup(cfg, "virtual_transport");
    ctx->relay_transport = cfg_dup(cfg, "relay_transport");
    ctx->default_transport = cfg_dup(cfg, "default_transport");
    ctx->append_at_myorigin = config_bool(cfg, "append_at_myorigin");
    ctx->append_dot_mydomain = config_bool(cfg, "append_dot_mydomain");
    ctx->swap_bangpath = config_bool(cfg, "swap_bangpath");
    ctx->percent_hack = config_bool(cfg, "allow_percent_hack");
    ctx->resolve_dequoted = config_bool(cfg, "resolve_dequoted_address");
    ctx->resolve_null_domain = config_bool(cfg, "resolve_null_domain");
    ctx->mydest = (struct domain_list) {.param = "mydestination"};
    ctx->relay = (struct domain_list) {.param = "relay_domains", .parent_match = true};
    ctx->valias = (struct domain_list) {.param = "virtual_alias_domains"};
    ctx->vmailbox = (struct domain_list) {.param = "virtual_mailbox_domains"};
    ok = list_add_text(&ctx->mydest, config_str(cfg, "mydestination"), 0, err)
        && list_add_text(&ctx->relay, config_str(cfg, "relay_domains"), 0, err)
        && list_add_text(&ctx->valias, config_str(cfg, "virtual_alias_domains"), 0, err)
        && list_add_text(&ctx->vmailbox, config_str(cfg, "virtual_mailbox_domains"), 0, err);
    for (const char *p = config_str(cfg, "transport_maps"); ok && (p = next_token(p, tok)) != NULL;) {
        dict_t *d = dict_open(str_cstr(tok), 0, err);

        if (d == NULL) {
            str_t  *why = str_new(0);

            str_printf(why, "transport_maps: %s", str_cstr(err));
            str_set_cstr(err, str_cstr(why));
            str_free(why);
            ok = false;
            break;
        }
        ctx->tmaps = mem_realloc(ctx->tmaps, (ctx->ntmaps + 1) * sizeof(*ctx->tmaps));
        ctx->tmaps[ctx->ntmaps++] = d;
    }
    if (ok) {
        own_add_list(ctx, "inet_interfaces", config_str(cfg, "inet_interfaces"));
        own_add_list(ctx, "proxy_interfaces", config_str(cfg, "proxy_interfaces"));
    }
    str_free(tok);
    if (!ok) {
        rewrite_ctx_free(ctx);
        return NULL;
    }
    str_reset(err);
    return ctx;
}

void
rewrite_ctx_free(rewrite_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    mem_free(ctx->myorigin);
    mem_free(ctx->mydomain);
    mem_free(ctx->myhostname);
    mem_free(ctx->relayhost);
    mem_free(ctx->empty_recipient);
    mem_free(ctx->delimiters);
    mem_free(ctx->local_transport);
    mem_free(ctx->virtual_transport);
    mem_free(ctx->relay_transport);
    mem_free(ctx->default_transport);
    list_free(&ctx->mydest);
    list_free(&ctx->relay);
    list_free(&ctx->valias);
    list_free(&ctx->vmailbox);
    for (size_t i = 0; i < ctx->ntmaps; i++)
        dict_close(ctx->tmaps[i]);
    mem_free(ctx->tmaps);
    mem_free(ctx->own);
    mem_free(ctx);
}

/* Remove one trailing dot, but not from "x..", "x@." or ".". */
static void
strip_trailing_dot(str_t *s)
{
    size_t  len = str_len(s);

    if (len >= 2 && s->data[len - 1] == '.' && s->data[len - 2] != '.' && s->data[len - 2] != '@')
        str_truncate(s, len - 1);
}

/* Steps 2-5 of the file comment, in place. local: the local rule. */
static void
canonicalize(rewrite_ctx_t *ctx, str_t *s, bool local)
{
    char   *at, *colon;

    if (str_len(s) == 0)
        return;
    /* Source route. */
    if (s->data[0] == '@' && (colon = strchr(s->data, ':')) != NULL) {
        str_t  *tail = str_new(0);

        str_set_cstr(tail, colon + 1);
        str_set_cstr(s, str_cstr(tail));
        str_free(tail);
    }
    strip_trailing_dot(s);
    if (strchr(s->data, '@') == NULL) {
        char   *bang = ctx->swap_bangpath ? strchr(s->data, '!') : NULL;
        char   *pct = ctx->percent_hack ? strrchr(s->data, '%') : NULL;

        if (bang) {
            str_t  *swapped = str_new(0);

            str_set_cstr(swapped, bang + 1);
            str_putc(swapped, '@');
            str_append(swapped, s->data, (size_t) (bang - s->data));
            str_set_cstr(s, str_cstr(swapped));
            str_free(swapped);
        } else if (pct) {
            *pct = '@';
        } else if (local && ctx->append_at_myorigin && *ctx->myorigin) {
            str_putc(s, '@');
            str_append_cstr(s, ctx->myorigin);
        }
    }
    if (local && ctx->append_dot_mydomain && *ctx->mydomain
        && (at = strrchr(s->data, '@')) != NULL && at[1] != 0 && at[1] != '['
        && strchr(at + 1, '.') == NULL) {
        str_putc(s, '.');
        str_append_cstr(s, ctx->mydomain);
    }
}

int
rewrite_address(rewrite_ctx_t *ctx, const char *rule, const char *addr, str_t *out)
{
    str_set_cstr(out, addr);
    if (strlen(addr) > ADDR_MAX_LEN)
        return RESOLVE_FLAG_ERROR;
    canonicalize(ctx, out, strcmp(rule, "local") == 0);
    if (str_len(out) > ADDR_MAX_LEN) {
        str_set_cstr(out, addr);
        return RESOLVE_FLAG_ERROR;
    }
    return 0;
}

/* Is domain local (mydestination, or an address literal of this machine)? 1, 0, -1. */
static int
domain_is_local(rewrite_ctx_t *ctx, const char *domain, str_t *err)
{
    str_t  *d = str_new(64);
    int     rc;

    str_set_cstr(d, domain);
    str_lower(d);
    rc = list_match(&ctx->mydest, str_cstr(d), err);
    if (rc == 0 && own_literal(ctx, str_cstr(d)))
        rc = 1;
    str_free(d);
    return rc;
}

/* Split "transport:nexthop" into the two parts (nexthop "" when absent). */
static void
split_transport(const char *value, str_t *transport, str_t *nexthop)
{
    const char *colon = strchr(value, ':');

    if (colon) {
        str_set(transport, value, (size_t) (colon - value));
        str_set_cstr(nexthop, colon + 1);
    } else {
        str_set_cstr(transport, value);
        str_reset(nexthop);
    }
    str_trim(transport);
    str_trim(nexthop);
}

/* Look key up in transport_maps: DICT_FOUND, DICT_NOTFOUND or DICT_ERROR (err set). */
static int
tmaps_lookup(rewrite_ctx_t *ctx, const char *key, str_t *value, str_t *err)
{
    for (size_t i = 0; i < ctx->ntmaps; i++) {
        int     rc = dict_lookup(ctx->tmaps[i], key, value);

        if (rc == DICT_FOUND)
            return rc;
        if (rc == DICT_ERROR) {
            str_printf(err, "transport_maps: table %s:%s: %s", ctx->tmaps[i]->type,
                       ctx->tmaps[i]->name, dict_error(ctx->tmaps[i]));
            return rc;
        }
    }
    return DICT_NOTFOUND;
}

/*
 * transport_maps: the full recipient, then without its address extension,
 * then the domain, its parents as ".parent", then "*". The first entry
 * found decides. Returns 1 found (value set), 0 none, -1 table failure.
 */
static int
transport_find(rewrite_ctx_t *ctx, const char *rcpt, const char *domain, str_t *value, str_t *err)
{
    str_t  *key = str_new(64);
    int     rc;
    const char *at = strrchr(rcpt, '@');

    rc = tmaps_lookup(ctx, rcpt, value, err);
    if (rc == DICT_NOTFOUND && *ctx->delimiters && at) {
        size_t  n = strcspn(rcpt, ctx->delimiters);

        if (n > 0 && rcpt + n < at) {
            str_set(key, rcpt, n);
            str_append_cstr(key, at);
            rc = tmaps_lookup(ctx, str_cstr(key), value, err);
        }
    }
    if (rc == DICT_NOTFOUND && *domain)
        rc = tmaps_lookup(ctx, domain, value, err);
    for (const char *p = strchr(domain, '.'); rc == DICT_NOTFOUND && p && p[1]; p = strchr(p + 1, '.')) {
        str_set_cstr(key, p);
        rc = tmaps_lookup(ctx, str_cstr(key), value, err);
    }
    if (rc == DICT_NOTFOUND)
        rc = tmaps_lookup(ctx, "*", value, err);
    str_free(key);
    return rc == DICT_FOUND ? 1 : rc == DICT_NOTFOUND ? 0 : -1;
}

/*
 * Apply a transport_maps result: an empty transport keeps the class's
 * transport and replaces the nexthop only when one is given; a transport
 * replaces both, the nexthop defaulting to the recipient domain (to
 * nothing for the error transport).
 */
static void
transport_apply(const char *value, const char *domain, struct resolve_reply *r)
{
    str_t  *t = str_new(32), *h = str_new(64);

    split_transport(value, t, h);
    if (str_len(t) == 0) {
        if (str_len(h))
            str_set_cstr(r->nexthop, str_cstr(h));
    } else {
        if (str_len(h))
            str_set_cstr(r->nexthop, str_cstr(h));
        else if (strcmp(str_cstr(t), ERROR_TRANSPORT) != 0)
            str_set_cstr(r->nexthop, domain);
        else
            str_reset(r->nexthop);
        str_set_cstr(r->transport, str_cstr(t));
    }
    str_free(t);
    str_free(h);
}

/* Transport of a class: its own nexthop, else fallback (may be NULL: keep empty). */
static void
class_transport(struct resolve_reply *r, const char *transport, const char *fallback)
{
    split_transport(transport, r->transport, r->nexthop);
    if (str_len(r->nexthop) == 0 && fallback)
        str_set_cstr(r->nexthop, fallback);
}

/* Does the local part of len bytes hold a routing operator we may act on? */
static bool
has_routing(rewrite_ctx_t *ctx, const char *local, size_t len)
{
    bool    quoted = false;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) local[i];

        if (!(isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~.", c)))
            quoted = true;
    }
    /* Without resolve_dequoted_address, a local part that needs quotes is opaque. */
    if (quoted && !ctx->resolve_dequoted)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (local[i] == '@' || (local[i] == '!' && ctx->swap_bangpath)
            || (local[i] == '%' && ctx->percent_hack))
            return true;
    }
    return false;
}

int
resolve_address(rewrite_ctx_t *ctx, const char *sender, const char *addr, struct resolve_reply *r)
{
    str_t  *s = str_new(64), *err = str_new(0), *value = str_new(0);
    char   *saved_domain = NULL;
    const char *domain;
    int     flags = 0, rc;
    bool    local = false;

    str_reset(r->transport);
    str_reset(r->nexthop);
    str_reset(r->recipient);
    if (strlen(addr) > ADDR_MAX_LEN) {
        flags = RESOLVE_FLAG_ERROR | RESOLVE_CLASS_DEFAULT;
        str_set_cstr(r->transport, ERROR_TRANSPORT);
        str_set_cstr(r->nexthop, BAD_SYNTAX_NEXTHOP);
        str_set_cstr(r->recipient, addr);
        goto done;
    }
    str_set_cstr(s, *addr ? addr : ctx->empty_recipient);
    for (int loops = 0;; loops++) {
        char   *at;

        if (loops >= RESOLVE_MAX_LOOPS || str_len(s) > ADDR_MAX_LEN) {
            flags |= RESOLVE_FLAG_ERROR;
            break;
        }
        strip_trailing_dot(s);
        at = strrchr(s->data, '@');
        if (at != NULL) {
            if (at[1] == 0 && ctx->resolve_null_domain) {
                str_truncate(s, (size_t) (at - s->data));
                continue;
            }
            if (at[1] == 0) {
                flags |= RESOLVE_FLAG_ERROR;
                break;
            }
            rc = domain_is_local(ctx, at + 1, err);
            if (rc < 0) {
                flags |= RESOLVE_FLAG_FAIL;
                str_set_cstr(r->transport, str_cstr(err));
                goto done;
            }
            if (rc == 0)
                break;                          /* a remote domain */
            mem_free(saved_domain);
            saved_domain = mem_strdup(at + 1);
            str_truncate(s, (size_t) (at - s->data));
        }
        /* Only a local part is left (or there was no domain). */
        if (has_routing(ctx, s->data, str_len(s))) {
            flags |= RESOLVE_FLAG_ROUTED;
            mem_free(saved_domain);
            saved_domain = NULL;
            canonicalize(ctx, s, true);
            continue;
        }
        if (str_len(s) == 0)
            str_set_cstr(s, ctx->empty_recipient);
        local = true;
        break;
    }
    /* The recipient is always user@domain: a local address without one gets $myhostname. */
    if (saved_domain) {
        str_putc(s, '@');
        str_append_cstr(s, saved_domain);
    } else if (local) {
        str_putc(s, '@');
        str_append_cstr(s, ctx->myhostname);
    }
    str_set_cstr(r->recipient, str_cstr(s));
    domain = strrchr(str_cstr(r->recipient), '@');
    domain = domain ? domain + 1 : "";
    if ((flags & RESOLVE_FLAG_ERROR) == 0 && !addr_domain_ok(domain, true))
        flags |= RESOLVE_FLAG_ERROR;

    if (local) {
        flags |= RESOLVE_CLASS_LOCAL;
        class_transport(r, ctx->local_transport, ctx->myhostname);
    } else {
        str_t  *ldom = str_new(64);

        str_set_cstr(ldom, domain);
        str_lower(ldom);
        if ((rc = list_match(&ctx->valias, str_cstr(ldom), err)) > 0) {
            flags |= RESOLVE_CLASS_ALIAS;
            str_set_cstr(r->transport, ERROR_TRANSPORT);
            str_set_cstr(r->nexthop, ALIAS_NEXTHOP);
        } else if (rc == 0 && (rc = list_match(&ctx->vmailbox, str_cstr(ldom), err)) > 0) {
            flags |= RESOLVE_CLASS_VIRTUAL;
            class_transport(r, ctx->virtual_transport, domain);
        } else if (rc == 0 && (rc = list_match(&ctx->relay, str_cstr(ldom), err)) > 0) {
            flags |= RESOLVE_CLASS_RELAY;
            class_transport(r, ctx->relay_transport, *ctx->relayhost ? ctx->relayhost : domain);
        } else if (rc == 0) {
            flags |= RESOLVE_CLASS_DEFAULT;
            class_transport(r, ctx->default_transport, *ctx->relayhost ? ctx->relayhost : domain);
        }
        str_free(ldom);
        if (rc < 0) {
            flags |= RESOLVE_FLAG_FAIL;
            str_set_cstr(r->transport, str_cstr(err));
            str_reset(r->nexthop);
            goto done;
        }
    }
    /* Leftover routing operators in a remote address make it routed too. */
    if (!local) {
        const char *lp = str_cstr(r->recipient), *rat = strrchr(lp, '@');

        if (rat && has_routing(ctx, lp, (size_t) (rat - lp)))
            flags |= RESOLVE_FLAG_ROUTED;
    }
    if (flags & RESOLVE_FLAG_ERROR) {
        str_set_cstr(r->transport, ERROR_TRANSPORT);
        str_set_cstr(r->nexthop, BAD_SYNTAX_NEXTHOP);
    } else if (ctx->ntmaps > 0 && (flags & RESOLVE_CLASS_ALIAS) == 0) {
        str_t  *ldom = str_new(64);

        str_set_cstr(ldom, domain);
        str_lower(ldom);
        rc = transport_find(ctx, str_cstr(r->recipient), str_cstr(ldom), value, err);
        if (rc < 0) {
            flags |= RESOLVE_FLAG_FAIL;
            str_set_cstr(r->transport, str_cstr(err));
            str_reset(r->nexthop);
        } else if (rc > 0) {
            transport_apply(str_cstr(value), domain, r);
        }
        str_free(ldom);
    }

done:
    mem_free(saved_domain);
    str_free(s);
    str_free(err);
    str_free(value);
    r->flags = flags;
    return flags;
}
