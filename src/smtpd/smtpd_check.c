/*
 * smtpd_check.c - the SMTP access restrictions.
 *
 * Five lists, as in Postfix: smtpd_client_restrictions,
 * smtpd_helo_restrictions, smtpd_sender_restrictions,
 * smtpd_relay_restrictions and smtpd_recipient_restrictions. With
 * smtpd_delay_reject = yes (the default) all five are evaluated at RCPT TO,
 * in that order; with "no", the first three are evaluated at MAIL FROM
 * (Postfix evaluates them at CONNECT and HELO; Postern waits until MAIL).
 * In each list the restrictions are tried from left to right: the first one
 * that permits ends that list (the next list still runs), the first one
 * that rejects or defers ends the whole check. After the lists,
 * smtpd_reject_unlisted_sender and smtpd_reject_unlisted_recipient apply.
 *
 * Restrictions understood (see docs/smtpd.md): permit, reject, defer,
 * warn_if_reject, permit_mynetworks, permit_auth_destination,
 * reject_unauth_destination, reject_unlisted_recipient,
 * reject_unlisted_sender, check_client_access, check_helo_access,
 * check_sender_access, check_recipient_access, reject_non_fqdn_recipient,
 * reject_non_fqdn_sender, reject_non_fqdn_helo_hostname,
 * reject_invalid_helo_hostname, reject_unknown_client_hostname. Those that
 * need DNS lookups Postern does not do yet (reject_unknown_sender_domain,
 * ...) are accepted with a warning at start and do nothing. Any other name
 * is a fatal configuration error at process start.
 *
 * Tables are opened once, when the lists are parsed (smtpd post_init), and
 * shared by name. A table that cannot be opened is logged once and then
 * answers every lookup with a temporary failure (451 4.3.0), so a broken
 * table defers mail instead of letting it through or stopping the service.
 *
 * Trust: addresses and names come from the client; they are used only as
 * lookup keys (dict.h bounds them) and in replies and logs.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "dict.h"
#include "log.h"
#include "mem.h"
#include "netmatch.h"
#include "rewrite_clnt.h"
#include "smtpd.h"

#define CHECK_DEPTH_MAX 5           /* restriction names as table results, nested */

enum check_result {
    CHECK_DUNNO = 0,                /* no decision: go on */
    CHECK_OK,                       /* permit: end this list */
    CHECK_REJECT,                   /* reject or defer: reply is set */
};

enum target {
    TARGET_CLIENT,
    TARGET_HELO,
    TARGET_SENDER,
    TARGET_RCPT,
};

enum rtype {
    R_PERMIT, R_REJECT, R_DEFER, R_WARN_IF_REJECT, R_PERMIT_MYNETWORKS,
    R_PERMIT_AUTH_DEST, R_REJECT_UNAUTH_DEST, R_UNLISTED_RCPT, R_UNLISTED_SENDER,
    R_CHECK_CLIENT, R_CHECK_HELO, R_CHECK_SENDER, R_CHECK_RCPT,
    R_NON_FQDN_RCPT, R_NON_FQDN_SENDER, R_NON_FQDN_HELO, R_INVALID_HELO,
    R_UNKNOWN_CLIENT, R_IGNORED,
};

static const struct rdef {
    const char *name;
    enum rtype type;
    bool    table;                  /* takes a type:name argument */
} rdefs[] = {
    {"permit", R_PERMIT, false},
    {"reject", R_REJECT, false},
    {"defer", R_DEFER, false},
    {"warn_if_reject", R_WARN_IF_REJECT, false},
    {"permit_mynetworks", R_PERMIT_MYNETWORKS, false},
    {"permit_auth_destination", R_PERMIT_AUTH_DEST, false},
    {"reject_unauth_destination", R_REJECT_UNAUTH_DEST, false},
    {"reject_unlisted_recipient", R_UNLISTED_RCPT, false},
    {"reject_unknown_recipient", R_UNLISTED_RCPT, false},
    {"reject_unlisted_sender", R_UNLISTED_SENDER, false},
    {"check_client_access", R_CHECK_CLIENT, true},
    {"check_helo_access", R_CHECK_HELO, true},
    {"check_sender_access", R_CHECK_SENDER, true},
    {"check_recipient_access", R_CHECK_RCPT, true},
    {"reject_non_fqdn_recipient", R_NON_FQDN_RCPT, false},
    {"reject_non_fqdn_sender", R_NON_FQDN_SENDER, false},
    {"reject_non_fqdn_helo_hostname", R_NON_FQDN_HELO, false},
    {"reject_non_fqdn_hostname", R_NON_FQDN_HELO, false},
    {"reject_invalid_helo_hostname", R_INVALID_HELO, false},
    {"reject_invalid_hostname", R_INVALID_HELO, false},
    {"reject_unknown_client_hostname", R_UNKNOWN_CLIENT, false},
    {"reject_unknown_client", R_UNKNOWN_CLIENT, false},
    /* Need DNS lookups that Postern does not make yet: warned about, then no-ops. */
    {"reject_unknown_sender_domain", R_IGNORED, false},
    {"reject_unknown_recipient_domain", R_IGNORED, false},
    {"reject_unknown_helo_hostname", R_IGNORED, false},
    {"reject_unknown_hostname", R_IGNORED, false},
    {"reject_unknown_reverse_client_hostname", R_IGNORED, false},
    {NULL, 0, false},
};

/* A table, opened once and shared by every list that names it. */
struct table {
    char   *name;
    dict_t *dict;                   /* NULL when it could not be opened */
};

struct restriction {
    enum rtype type;
    struct table *table;
};

struct rlist {
    const char *param;
    enum target target;             /* whom plain reject/defer are about */
    struct restriction *items;
    size_t  n;
};

enum { L_CLIENT, L_HELO, L_SENDER, L_RELAY, L_RCPT, L_COUNT };

static struct rlist lists[L_COUNT] = {
    {"smtpd_client_restrictions", TARGET_CLIENT, NULL, 0},
    {"smtpd_helo_restrictions", TARGET_HELO, NULL, 0},
    {"smtpd_sender_restrictions", TARGET_SENDER, NULL, 0},
    {"smtpd_relay_restrictions", TARGET_RCPT, NULL, 0},
    {"smtpd_recipient_restrictions", TARGET_RCPT, NULL, 0},
};

static struct table **tables;
static size_t ntables, table_cap;
static netmatch_t *mynetworks;
static config_t *check_cfg;

/* Lists of tables from parameters. */
struct maps {
    struct table **t;
    size_t  n;
};
static struct maps local_maps, vmailbox_maps, valias_maps;

/* The state of one check (one MAIL or RCPT command). */
struct ctx {
    struct smtpd_session *s;
    const char *rcpt;               /* NULL at MAIL FROM */
    str_t  *reply;
    bool    warn_next;              /* warn_if_reject seen */
    bool    rcpt_resolved;
    int     rcpt_flags;
    struct resolve_reply rr;
};

/* Split list text into tokens at commas and white space; braces group. */
static const char *
next_token(const char *p, str_t *tok)
{
    p += strspn(p, ", \t\r\n");
    if (*p == 0)
        return NULL;
    const char *start = p;
    int     depth = 0;

    for (; *p; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && depth > 0)
            depth--;
        else if (depth == 0 && strchr(", \t\r\n", *p))
            break;
    }
    str_set(tok, start, (size_t) (p - start));
    return p;
}

static struct table *
table_get(const char *name)
{
    for (size_t i = 0; i < ntables; i++)
        if (strcmp(tables[i]->name, name) == 0)
            return tables[i];
    struct table *t = mem_zalloc(sizeof(*t));
    str_t  *err = str_new(64);

    t->name = mem_strdup(name);
    t->dict = dict_open(name, 0, err);
    if (t->dict == NULL)
        log_warn("cannot open table %s: %s; its lookups will fail with a temporary error",
                 name, str_cstr(err));
    str_free(err);
    tables = mem_grow_array(tables, &table_cap, ntables + 1, sizeof(*tables));
    tables[ntables++] = t;
    return t;
}

/* DICT_FOUND/NOTFOUND/ERROR, logging errors. */
static int
table_lookup(struct table *t, const char *key, str_t *value)
{
    if (t->dict == NULL) {
        log_warn("%s: table is unavailable", t->name);
        return DICT_ERROR;
    }
    int     rc = dict_lookup(t->dict, key, value);

    if (rc == DICT_ERROR)
        log_warn("%s: lookup error: %s", t->name, dict_error(t->dict));
    return rc;
}

static void
parse_maps(config_t *cfg, const char *param, struct maps *m)
{
    str_t  *tok = str_new(64);
    const char *p = config_str(cfg, param);
    size_t  cap = 0;

    while ((p = next_token(p, tok)) != NULL) {
        m->t = mem_grow_array(m->t, &cap, m->n + 1, sizeof(*m->t));
        m->t[m->n++] = table_get(str_cstr(tok));
    }
    str_free(tok);
}

static const struct rdef *
rdef_find(const char *name)
{
    for (const struct rdef *d = rdefs; d->name; d++)
        if (strcasecmp(d->name, name) == 0)
            return d;
    return NULL;
}

static void
parse_list(config_t *cfg, struct rlist *l)
{
    str_t  *tok = str_new(64);
    const char *p = config_str(cfg, l->param);
    size_t  cap = 0;

    while ((p = next_token(p, tok)) != NULL) {
        const struct rdef *d = rdef_find(str_cstr(tok));
        struct restriction r = {0};

        if (d == NULL)
            log_fatal("%s: unknown restriction \"%s\"", l->param, str_cstr(tok));
        r.type = d->type;
        if (d->type == R_IGNORED)
            log_warn("%s: %s needs DNS lookups that Postern does not do yet; ignored",
                     l->param, d->name);
        if (d->table) {
            if ((p = next_token(p, tok)) == NULL || strchr(str_cstr(tok), ':') == NULL)
                log_fatal("%s: %s needs a type:name table argument", l->param, d->name);
            r.table = table_get(str_cstr(tok));
        }
        l->items = mem_grow_array(l->items, &cap, l->n + 1, sizeof(*l->items));
        l->items[l->n++] = r;
    }
    str_free(tok);
}

/*
 * local_header_rewrite_clients: the clients whose mail cleanup treats as
 * local (missing headers added, local rewriting rule), as in Postfix.
 * Understood: permit_inet_interfaces (the client uses one of this host's
 * own addresses), permit_mynetworks, static:all, check_address_map
 * type:table (the client address found with OK/PERMIT); anything else is a
 * configuration error.
 */
static struct {
    bool    all;
    bool    mynetworks;
    netmatch_t *own_addrs;          /* permit_inet_interfaces, NULL if not listed */
    struct table **maps;
    size_t  nmaps, cap;
} lhr;

/* This host's addresses: loopback plus every configured interface address. */
static netmatch_t *
own_addresses(void)
{
    str_t  *list = str_new(128);
    str_t  *err = str_new(64);
    struct ifaddrs *ifa = NULL;
    netmatch_t *m;

    str_set_cstr(list, "127.0.0.0/8 [::1]/128");
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
            char    buf[INET6_ADDRSTRLEN];

            if (i->ifa_addr == NULL)
                continue;
            if (i->ifa_addr->sa_family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *) i->ifa_addr;

                if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)))
                    str_append_printf(list, " %s", buf);
            } else if (i->ifa_addr->sa_family == AF_INET6) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) i->ifa_addr;

                if (sin6->sin6_scope_id == 0
                    && inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)))
                    str_append_printf(list, " [%s]", buf);
            }
        }
        freeifaddrs(ifa);
    } else {
        log_warn_errno("getifaddrs (permit_inet_interfaces uses loopback only)");
    }
    if ((m = netmatch_parse(str_cstr(list), err)) == NULL)
        log_panic("own addresses \"%s\": %s", str_cstr(list), str_cstr(err));
    str_free(err);
    str_free(list);
    return m;
}

static void
parse_local_header_clients(config_t *cfg)
{
    const char *param = "local_header_rewrite_clients";
    const char *p = config_str(cfg, param);
    str_t  *tok = str_new(64);

    while ((p = next_token(p, tok)) != NULL) {
        const char *t = str_cstr(tok);

        if (strcasecmp(t, "permit_inet_interfaces") == 0) {
            if (lhr.own_addrs == NULL)
                lhr.own_addrs = own_addresses();
        } else if (strcasecmp(t, "permit_mynetworks") == 0) {
            lhr.mynetworks = true;
        } else if (strcasecmp(t, "static:all") == 0) {
            lhr.all = true;
        } else if (strcasecmp(t, "permit_sasl_authenticated") == 0
                   || strcasecmp(t, "permit_tls_clientcerts") == 0
                   || strcasecmp(t, "permit_tls_all_clientcerts") == 0) {
            /* Not available yet: such clients are never local. */
        } else if (strcasecmp(t, "check_address_map") == 0) {
            if ((p = next_token(p, tok)) == NULL || strchr(str_cstr(tok), ':') == NULL)
                log_fatal("%s: check_address_map needs a type:name table argument", param);
            lhr.maps = mem_grow_array(lhr.maps, &lhr.cap, lhr.nmaps + 1, sizeof(*lhr.maps));
            lhr.maps[lhr.nmaps++] = table_get(str_cstr(tok));
        } else {
            log_fatal("%s: unknown element \"%s\"", param, t);
        }
    }
    str_free(tok);
}

bool
smtpd_check_local_header_client(struct smtpd_session *s)
{
    if (lhr.all)
        return true;
    if (lhr.mynetworks && netmatch_match_text(mynetworks, s->addr))
        return true;
    if (lhr.own_addrs && netmatch_match_text(lhr.own_addrs, s->addr))
        return true;
    if (lhr.nmaps > 0) {
        str_t  *value = str_new(32);
        bool    local = false;

        for (size_t i = 0; i < lhr.nmaps && !local; i++)
            if (table_lookup(lhr.maps[i], s->addr, value) == DICT_FOUND)
                local = strcasecmp(str_cstr(value), "OK") == 0
                    || strcasecmp(str_cstr(value), "PERMIT") == 0;
        str_free(value);
        return local;
    }
    return false;
}

void
smtpd_check_init(config_t *cfg)
{
    str_t  *err = str_new(64);

    check_cfg = cfg;
    if ((mynetworks = netmatch_parse(config_str(cfg, "mynetworks"), err)) == NULL)
        log_fatal("mynetworks: %s", str_cstr(err));
    for (int i = 0; i < L_COUNT; i++)
        parse_list(cfg, &lists[i]);
    parse_maps(cfg, "local_recipient_maps", &local_maps);
    parse_maps(cfg, "virtual_mailbox_maps", &vmailbox_maps);
    parse_maps(cfg, "virtual_alias_maps", &valias_maps);
    parse_local_header_clients(cfg);
    str_free(err);
}

/* "<x>: Class rejected" prefix of a reply for a target. */
static void
target_text(struct ctx *c, enum target t, str_t *out, bool with_class)
{
    struct smtpd_session *s = c->s;

    switch (t) {
    case TARGET_CLIENT:
        str_append_printf(out, "<%s[%s]>", s->name, s->addr);
        if (with_class)
            str_append_cstr(out, ": Client host rejected");
        break;
    case TARGET_HELO:
        str_append_printf(out, "<%s>", s->helo ? s->helo : "");
        if (with_class)
            str_append_cstr(out, ": Helo command rejected");
        break;
    case TARGET_SENDER:
        str_append_printf(out, "<%s>", s->sender ? s->sender : "");
        if (with_class)
            str_append_cstr(out, ": Sender address rejected");
        break;
    case TARGET_RCPT:
        str_append_printf(out, "<%s>", c->rcpt ? c->rcpt : "");
        if (with_class)
            str_append_cstr(out, ": Recipient address rejected");
        break;
    }
}

/* Set the reply "CODE DSN <x>: Class rejected: text" and return CHECK_REJECT. */
static int
reject(struct ctx *c, int code, const char *dsn, enum target t, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
reject(struct ctx *c, int code, const char *dsn, enum target t, const char *fmt, ...)
{
    va_list ap;

    str_printf(c->reply, "%d %s ", code, dsn);
    target_text(c, t, c->reply, true);
    str_append_cstr(c->reply, ": ");
    va_start(ap, fmt);
    str_append_vprintf(c->reply, fmt, ap);
    va_end(ap);
    return CHECK_REJECT;
}

static int
temp_failure(struct ctx *c, enum target t)
{
    str_printf(c->reply, "451 4.3.0 ");
    target_text(c, t, c->reply, false);
    str_append_cstr(c->reply, ": Temporary lookup failure");
    return CHECK_REJECT;
}

/* Resolve the recipient once per check. Returns the flags. */
static int
resolve_rcpt(struct ctx *c)
{
    if (!c->rcpt_resolved) {
        resolve_reply_init(&c->rr);
        c->rcpt_flags = resolve_clnt(c->s->sender ? c->s->sender : "", c->rcpt, &c->rr);
        c->rcpt_resolved = true;
    }
    return c->rcpt_flags;
}

static bool
is_auth_destination(int flags)
{
    return (flags & (RESOLVE_CLASS_LOCAL | RESOLVE_CLASS_VIRTUAL | RESOLVE_CLASS_ALIAS
                     | RESOLVE_CLASS_RELAY)) != 0 && (flags & RESOLVE_FLAG_ROUTED) == 0;
}

/* Does an enhanced status code of the right class start text? Returns its length. */
static size_t
text_dsn(const char *text, int code)
{
    const char *p = text;

    if (*p != '0' + code / 100 || p[1] != '.')
        return 0;
    p += 2;
    if (!isdigit((unsigned char) *p))
        return 0;
    while (isdigit((unsigned char) *p))
        p++;
    if (*p++ != '.' || !isdigit((unsigned char) *p))
        return 0;
    while (isdigit((unsigned char) *p))
        p++;
    if (*p != ' ' && *p != 0)
        return 0;
    return (size_t) (p - text);
}

static int eval_one(struct ctx *c, enum rtype type, struct table *table, enum target t, int depth);

/* Interpret an access table's value for target t. */
static int
access_action(struct ctx *c, struct table *table, const char *value, enum target t, int depth)
{
    size_t  wl = strcspn(value, " \t");
    const char *text = value + wl;
    char    word[64];

    text += strspn(text, " \t");
    if (wl == 0 || wl >= sizeof(word))
        goto unknown;
    memcpy(word, value, wl);
    word[wl] = 0;
    if (strcasecmp(word, "OK") == 0 || strspn(value, "0123456789") == strlen(value))
        return CHECK_OK;
    if (strcasecmp(word, "DUNNO") == 0)
        return CHECK_DUNNO;
    if (strcasecmp(word, "REJECT") == 0)
        return reject(c, 554, "5.7.1", t, "%s", *text ? text : "Access denied");
    if (strcasecmp(word, "DEFER") == 0)
        return reject(c, 450, "4.7.1", t, "%s", *text ? text : "Access denied");
    if (strcasecmp(word, "WARN") == 0) {
        log_info("%s: warn: %s from %s[%s]: %s", c->s->queue_id[0] ? c->s->queue_id : "NOQUEUE",
                 c->rcpt ? "RCPT" : "MAIL", c->s->name, c->s->addr, text);
        return CHECK_DUNNO;
    }
    if (wl == 3 && (word[0] == '4' || word[0] == '5') && isdigit((unsigned char) word[1])
        && isdigit((unsigned char) word[2])) {
        int     code = (word[0] - '0') * 100 + (word[1] - '0') * 10 + (word[2] - '0');
        size_t  dl = text_dsn(text, code);

        if (dl) {
            char    dsn[32];

            if (dl >= sizeof(dsn))
                goto unknown;
            memcpy(dsn, text, dl);
            dsn[dl] = 0;
            text += dl;
            text += strspn(text, " ");
            return reject(c, code, dsn, t, "%s", *text ? text : "Access denied");
        }
        return reject(c, code, code >= 500 ? "5.7.1" : "4.7.1", t, "%s",
                      *text ? text : "Access denied");
    }
    /* A restriction name that needs no table, e.g. "permit_mynetworks". */
    const struct rdef *d = rdef_find(word);

    if (d && !d->table && d->type != R_WARN_IF_REJECT && *text == 0 && depth < CHECK_DEPTH_MAX)
        return eval_one(c, d->type, NULL, t, depth + 1);
  unknown:
    log_warn("access table %s: unknown action \"%.80s\"", table->name, value);
    str_printf(c->reply, "451 4.3.5 ");
    target_text(c, t, c->reply, true);
    str_append_cstr(c->reply, ": Server configuration error");
    return CHECK_REJECT;
}

/* Look the keys up in order; the first one found decides. */
static int
access_keys(struct ctx *c, struct table *table, const char *const *keys, size_t nkeys,
            enum target t, int depth)
{
    str_t  *value = str_new(64);
    int     result = CHECK_DUNNO;

    for (size_t i = 0; i < nkeys; i++) {
        int     rc = table_lookup(table, keys[i], value);

        if (rc == DICT_NOTFOUND)
            continue;
        if (rc == DICT_ERROR)
            result = temp_failure(c, t);
        else
            result = access_action(c, table, str_cstr(value), t, depth);
        break;
    }
    str_free(value);
    return result;
}

#define MAX_KEYS 64

/* A growing set of lookup keys, owned. */
struct keys {
    char   *k[MAX_KEYS];
    size_t  n;
};

static void
key_add(struct keys *ks, const char *text, size_t len)
{
    if (ks->n < MAX_KEYS)
        ks->k[ks->n++] = mem_strndup(text, len);
}

static void
keys_free(struct keys *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        mem_free(ks->k[i]);
}

/* A domain and its parent domains ("a.b.c", "b.c", "c"). */
static void
key_add_domains(struct keys *ks, const char *domain)
{
    for (const char *d = domain; d && *d;) {
        key_add(ks, d, strlen(d));
        d = strchr(d, '.');
        if (d)
            d++;
    }
}

/* Remove a recipient_delimiter extension from a local part: user+ext -> user. */
static size_t
local_len_noext(const char *local, size_t len)
{
    const char *delims = config_str(check_cfg, "recipient_delimiter");

    if (*delims == 0)
        return len;
    for (size_t i = 1; i < len; i++)
        if (strchr(delims, local[i]))
            return i;
    return len;
}

/*
 * Keys for an address, Postfix order: the address (and without extension),
 * the domain and its parents, then "localpart@" (and without extension).
 * The null sender is looked up as "<>".
 */
static void
address_keys(struct keys *ks, const char *addr, bool pattern)
{
    if (*addr == 0) {
        key_add(ks, "<>", 2);
        return;
    }
    key_add(ks, addr, strlen(addr));
    if (pattern)
        return;
    const char *at = strrchr(addr, '@');
    size_t  llen = at ? (size_t) (at - addr) : strlen(addr);
    size_t  nlen = local_len_noext(addr, llen);

    if (nlen < llen) {
        str_t  *t = str_new(64);

        str_append(t, addr, nlen);
        if (at)
            str_append_cstr(t, at);
        key_add(ks, t->data, t->len);
        str_free(t);
    }
    if (at)
        key_add_domains(ks, at + 1);
    str_t  *lp = str_new(64);

    str_append(lp, addr, llen);
    str_putc(lp, '@');
    key_add(ks, lp->data, lp->len);
    if (nlen < llen) {
        str_set(lp, addr, nlen);
        str_putc(lp, '@');
        key_add(ks, lp->data, lp->len);
    }
    str_free(lp);
}

/* Client keys: the name and its parents, the address and its network prefixes. */
static void
client_keys(struct keys *ks, struct smtpd_session *s, bool pattern)
{
    if (strcmp(s->name, "unknown") != 0) {
        if (pattern)
            key_add(ks, s->name, strlen(s->name));
        else
            key_add_domains(ks, s->name);
    }
    key_add(ks, s->addr, strlen(s->addr));
    if (pattern)
        return;
    char    sep = strchr(s->addr, ':') ? ':' : '.';

    for (size_t len = strlen(s->addr); len > 0; len--) {
        if (s->addr[len - 1] == sep && len > 1)
            key_add(ks, s->addr, len - 1);
    }
}

static int
check_access(struct ctx *c, struct table *table, enum rtype type, int depth)
{
    struct keys ks = {.n = 0};
    bool    pattern = table->dict && (table->dict->flags & DICT_FLAG_PATTERN);
    enum target t;
    int     result;

    switch (type) {
    case R_CHECK_CLIENT:
        t = TARGET_CLIENT;
        client_keys(&ks, c->s, pattern);
        break;
    case R_CHECK_HELO:
        t = TARGET_HELO;
        if (c->s->helo == NULL)
            return CHECK_DUNNO;
        if (pattern)
            key_add(&ks, c->s->helo, strlen(c->s->helo));
        else
            key_add_domains(&ks, c->s->helo);
        break;
    case R_CHECK_SENDER:
        t = TARGET_SENDER;
        if (c->s->sender == NULL)
            return CHECK_DUNNO;
        address_keys(&ks, c->s->sender, pattern);
        break;
    default:
        t = TARGET_RCPT;
        if (c->rcpt == NULL)
            return CHECK_DUNNO;
        address_keys(&ks, c->rcpt, pattern);
        break;
    }
    result = access_keys(c, table, (const char *const *) ks.k, ks.n, t, depth);
    keys_free(&ks);
    return result;
}

/* Is addr (or its forms without extension / as @domain) in any of the tables? */
static int
maps_find(struct maps *m, const char *addr, bool local_part_keys, bool domain_key)
{
    struct keys ks = {.n = 0};
    const char *at = strrchr(addr, '@');
    size_t  llen = at ? (size_t) (at - addr) : strlen(addr);
    size_t  nlen = local_len_noext(addr, llen);
    str_t  *value = str_new(64), *t = str_new(64);
    int     result = DICT_NOTFOUND;

    key_add(&ks, addr, strlen(addr));
    if (nlen < llen) {
        str_set(t, addr, nlen);
        if (at)
            str_append_cstr(t, at);
        key_add(&ks, t->data, t->len);
    }
    if (local_part_keys) {
        key_add(&ks, addr, llen);
        if (nlen < llen)
            key_add(&ks, addr, nlen);
    }
    if (domain_key && at)
        key_add(&ks, at, strlen(at));
    for (size_t i = 0; i < m->n && result == DICT_NOTFOUND; i++) {
        for (size_t k = 0; k < ks.n; k++) {
            int     rc = table_lookup(m->t[i], ks.k[k], value);

            if (rc != DICT_NOTFOUND) {
                result = rc;
                break;
            }
        }
    }
    keys_free(&ks);
    str_free(value);
    str_free(t);
    return result;
}

/*
 * reject_unlisted_recipient / _sender: the address must be known in the
 * tables of its address class.
 */
static int
check_unlisted(struct ctx *c, bool sender)
{
    struct resolve_reply rr;
    const char *addr = sender ? c->s->sender : c->rcpt;
    enum target t = sender ? TARGET_SENDER : TARGET_RCPT;
    int     flags, result = CHECK_DUNNO;
    const char *who;

    if (addr == NULL || *addr == 0)
        return CHECK_DUNNO;
    if (sender) {
        resolve_reply_init(&rr);
        flags = resolve_clnt("", addr, &rr);
    } else {
        flags = resolve_rcpt(c);
        rr = c->rr;
    }
    const char *canon = str_len(rr.recipient) ? str_cstr(rr.recipient) : addr;

    if (flags & RESOLVE_FLAG_FAIL) {
        result = temp_failure(c, t);
        goto out;
    }
    if (flags & RESOLVE_FLAG_ERROR)
        goto out;
    if (flags & (RESOLVE_CLASS_LOCAL | RESOLVE_CLASS_VIRTUAL | RESOLVE_CLASS_ALIAS)) {
        int     rc = maps_find(&valias_maps, canon, false, true);

        if (rc == DICT_ERROR) {
            result = temp_failure(c, t);
            goto out;
        }
        if (rc == DICT_FOUND)
            goto out;
    }
    struct maps *m;

    if (flags & RESOLVE_CLASS_LOCAL) {
        m = &local_maps;
        who = "local recipient";
    } else if (flags & RESOLVE_CLASS_VIRTUAL) {
        m = &vmailbox_maps;
        who = "virtual mailbox";
    } else if (flags & RESOLVE_CLASS_ALIAS) {
        m = &valias_maps;
        who = "virtual alias";
    } else {
        goto out;
    }
    if (m->n == 0)
        goto out;                   /* an empty map list accepts every user */
    int     rc = (m == &valias_maps) ? DICT_NOTFOUND
        : maps_find(m, canon, m == &local_maps, m == &vmailbox_maps);

    if (rc == DICT_ERROR) {
        result = temp_failure(c, t);
    } else if (rc == DICT_NOTFOUND) {
        int     code = sender ? 550 : (m == &local_maps)
            ? (int) config_int(check_cfg, "unknown_local_recipient_reject_code") : 550;

        result = reject(c, code, sender ? (code < 500 ? "4.1.0" : "5.1.0")
                        : (code < 500 ? "4.1.1" : "5.1.1"), t,
                        "User unknown in %s table", who);
    }
  out:
    if (sender)
        resolve_reply_free(&rr);
    return result;
}

/* Not fully qualified: no domain, or a domain without a dot that is not [literal]. */
static bool
non_fqdn_domain(const char *domain)
{
    return domain == NULL || *domain == 0 || (domain[0] != '[' && strchr(domain, '.') == NULL);
}

static int
eval_one(struct ctx *c, enum rtype type, struct table *table, enum target t, int depth)
{
    struct smtpd_session *s = c->s;

    switch (type) {
    case R_PERMIT:
        return CHECK_OK;
    case R_REJECT:
        return reject(c, 554, "5.7.1", t, "Access denied");
    case R_DEFER:
        return reject(c, 450, "4.7.1", t, "Try again later");
    case R_WARN_IF_REJECT:
        c->warn_next = true;
        return CHECK_DUNNO;
    case R_PERMIT_MYNETWORKS:
        return netmatch_match_text(mynetworks, s->addr) ? CHECK_OK : CHECK_DUNNO;
    case R_PERMIT_AUTH_DEST:
    case R_REJECT_UNAUTH_DEST:{
            if (c->rcpt == NULL)
                return CHECK_DUNNO;
            int     flags = resolve_rcpt(c);

            if (flags & RESOLVE_FLAG_FAIL)
                return temp_failure(c, TARGET_RCPT);
            if (is_auth_destination(flags))
                return type == R_PERMIT_AUTH_DEST ? CHECK_OK : CHECK_DUNNO;
            if (type == R_PERMIT_AUTH_DEST)
                return CHECK_DUNNO;
            str_printf(c->reply, "554 5.7.1 <%s>: Relay access denied", c->rcpt);
            return CHECK_REJECT;
        }
    case R_UNLISTED_RCPT:
        return c->rcpt ? check_unlisted(c, false) : CHECK_DUNNO;
    case R_UNLISTED_SENDER:
        return check_unlisted(c, true);
    case R_CHECK_CLIENT:
    case R_CHECK_HELO:
    case R_CHECK_SENDER:
    case R_CHECK_RCPT:
        return table ? check_access(c, table, type, depth) : CHECK_DUNNO;
    case R_NON_FQDN_RCPT:
        if (c->rcpt && non_fqdn_domain(strrchr(c->rcpt, '@') ? strrchr(c->rcpt, '@') + 1 : NULL))
            return reject(c, 504, "5.5.2", TARGET_RCPT, "need fully-qualified address");
        return CHECK_DUNNO;
    case R_NON_FQDN_SENDER:
        if (s->sender && *s->sender
            && non_fqdn_domain(strrchr(s->sender, '@') ? strrchr(s->sender, '@') + 1 : NULL))
            return reject(c, 504, "5.5.2", TARGET_SENDER, "need fully-qualified address");
        return CHECK_DUNNO;
    case R_NON_FQDN_HELO:
        if (s->helo && non_fqdn_domain(s->helo))
            return reject(c, 504, "5.5.2", TARGET_HELO, "need fully-qualified hostname");
        return CHECK_DUNNO;
    case R_INVALID_HELO:
        if (s->helo && !addr_domain_ok(s->helo, false))
            return reject(c, 501, "5.5.2", TARGET_HELO, "Invalid name");
        return CHECK_DUNNO;
    case R_UNKNOWN_CLIENT:
        if (strcmp(s->name, "unknown") == 0) {
            str_printf(c->reply, "450 4.7.25 Client host rejected: cannot find your hostname, [%s]",
                       s->addr);
            return CHECK_REJECT;
        }
        return CHECK_DUNNO;
    case R_IGNORED:
        return CHECK_DUNNO;
    }
    return CHECK_DUNNO;
}

/* Evaluate one list; warn_if_reject turns the next reject into a log line. */
static int
eval_list(struct ctx *c, const struct rlist *l, const char *what)
{
    for (size_t i = 0; i < l->n; i++) {
        bool    warn = c->warn_next;
        int     r;

        c->warn_next = false;
        r = eval_one(c, l->items[i].type, l->items[i].table, l->target, 0);
        if (warn && r == CHECK_REJECT) {
            smtpd_log_reject(c->s, what, str_cstr(c->reply), c->rcpt, true);
            str_reset(c->reply);
            r = CHECK_DUNNO;
        }
        if (r != CHECK_DUNNO)
            return r;
    }
    c->warn_next = false;
    return CHECK_DUNNO;
}

static int
finish(struct ctx *c, int r, const char *what)
{
    if (c->rcpt_resolved)
        resolve_reply_free(&c->rr);
    if (r == CHECK_REJECT) {
        smtpd_log_reject(c->s, what, str_cstr(c->reply), c->rcpt, false);
        return -1;
    }
    return 0;
}

/* Client, HELO and sender lists, then the implicit sender check. */
static int
check_early(struct ctx *c, const char *what)
{
    for (int i = L_CLIENT; i <= L_SENDER; i++)
        if (eval_list(c, &lists[i], what) == CHECK_REJECT)
            return CHECK_REJECT;
    if (config_bool(check_cfg, "smtpd_reject_unlisted_sender")
        && check_unlisted(c, true) == CHECK_REJECT)
        return CHECK_REJECT;
    return CHECK_DUNNO;
}

int
smtpd_check_mail(struct smtpd_session *s, str_t *reply)
{
    struct ctx c = {.s = s, .reply = reply};

    str_reset(reply);
    return finish(&c, check_early(&c, "MAIL"), "MAIL");
}

int
smtpd_check_rcpt(struct smtpd_session *s, const char *rcpt, str_t *reply)
{
    struct ctx c = {.s = s, .rcpt = rcpt, .reply = reply};
    int     r = CHECK_DUNNO;

    str_reset(reply);
    if (config_bool(check_cfg, "smtpd_delay_reject"))
        r = check_early(&c, "RCPT");
    if (r != CHECK_REJECT && eval_list(&c, &lists[L_RELAY], "RCPT") == CHECK_REJECT)
        r = CHECK_REJECT;
    if (r != CHECK_REJECT && eval_list(&c, &lists[L_RCPT], "RCPT") == CHECK_REJECT)
        r = CHECK_REJECT;
    if (r != CHECK_REJECT && config_bool(check_cfg, "smtpd_reject_unlisted_recipient")
        && check_unlisted(&c, false) == CHECK_REJECT)
        r = CHECK_REJECT;
    return finish(&c, r, "RCPT");
}
