/*
 * rewrite_clnt.c - client of the trivial-rewrite service (see rewrite_clnt.h).
 *
 * One connection per process, opened on first use and kept. A request that
 * fails on an existing connection (the server went idle and closed it, or
 * was restarted) is retried once on a new connection. Replies are cached
 * for REWRITE_CACHE_MS, REWRITE_CACHE_SIZE of each kind (the oldest entry
 * makes room): cleanup rewrites a sender and a recipient per message,
 * qmgr resolves the same few recipients again and again, and a one-entry
 * cache misses whenever two addresses alternate. Failures are never cached.
 *
 * Trust: replies come from a local service but are still checked (known
 * attributes only, bounded sizes, flags in range). Failures are logged
 * with log_warn naming the reason, and answered with RESOLVE_FLAG_FAIL so
 * that callers defer instead of guessing.
 */
#include <string.h>

#include "attr.h"
#include "clock.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "rewrite_clnt.h"

#define REWRITE_CLNT_TIMEOUT    60          /* seconds per request */
#define REWRITE_CACHE_MS        10000       /* how long a cached reply is reused */
#define REWRITE_REPLY_MAX       8192        /* bytes per reply value */

static stream_t *rw_stream;
static char *rw_qdir;
static char *rw_service;

static const struct attr_limits reply_limits = {
    .max_attrs = 8, .max_value = REWRITE_REPLY_MAX, .max_total = 4 * REWRITE_REPLY_MAX,
};

/*
 * The caches. An entry is keyed by two strings (rule and address for a
 * rewrite, sender and address for a resolve) and holds the reply flags and
 * up to three strings (the canonical address; transport, nexthop and
 * recipient).
 */
#define REWRITE_CACHE_SIZE      8

struct cache_entry {
    bool    valid;
    int64_t when;
    char   *key1, *key2;
    str_t  *val[3];
    int     flags;
};

struct cache {
    struct cache_entry e[REWRITE_CACHE_SIZE];
    size_t  next;               /* the entry to replace next: the oldest */
};

static struct cache rw_cache, rs_cache;

/* A fresh entry for (k1, k2), or NULL. */
static const struct cache_entry *
cache_find(const struct cache *c, const char *k1, const char *k2)
{
    int64_t now = clock_mono_ms();

    for (size_t i = 0; i < REWRITE_CACHE_SIZE; i++) {
        const struct cache_entry *e = &c->e[i];

        if (e->valid && now - e->when < REWRITE_CACHE_MS && strcmp(e->key1, k1) == 0
            && strcmp(e->key2, k2) == 0)
            return e;
    }
    return NULL;
}

/* Remember a reply (n values) under (k1, k2), replacing the oldest entry. */
static void
cache_store(struct cache *c, const char *k1, const char *k2, int flags, size_t n,
            str_t *const *vals)
{
    struct cache_entry *e = &c->e[c->next];

    c->next = (c->next + 1) % REWRITE_CACHE_SIZE;
    mem_free(e->key1);
    mem_free(e->key2);
    e->key1 = mem_strdup(k1);
    e->key2 = mem_strdup(k2);
    for (size_t i = 0; i < n; i++) {
        if (e->val[i] == NULL)
            e->val[i] = str_new(64);
        str_set_cstr(e->val[i], str_cstr(vals[i]));
    }
    e->flags = flags;
    e->when = clock_mono_ms();
    e->valid = true;
}

static void
cache_clear(struct cache *c)
{
    for (size_t i = 0; i < REWRITE_CACHE_SIZE; i++)
        c->e[i].valid = false;
}

void
resolve_reply_init(struct resolve_reply *r)
{
    r->flags = 0;
    r->transport = str_new(32);
    r->nexthop = str_new(64);
    r->recipient = str_new(64);
}

void
resolve_reply_free(struct resolve_reply *r)
{
    str_free(r->transport);
    str_free(r->nexthop);
    str_free(r->recipient);
    r->transport = r->nexthop = r->recipient = NULL;
}

void
rewrite_clnt_set_qdir(const char *qdir)
{
    mem_free(rw_qdir);
    rw_qdir = qdir ? mem_strdup(qdir) : NULL;
    rewrite_clnt_disconnect();
}

void
rewrite_clnt_set_service(const char *service)
{
    mem_free(rw_service);
    rw_service = service && *service ? mem_strdup(service) : NULL;
    rewrite_clnt_disconnect();
}

void
rewrite_clnt_disconnect(void)
{
    if (rw_stream) {
        stream_close(rw_stream);
        rw_stream = NULL;
    }
    cache_clear(&rw_cache);
    cache_clear(&rs_cache);
}

/*
 * Send req and read the reply into rep, connecting (or reconnecting once)
 * as needed. Returns true, or false with why set.
 */
static bool
transact(attr_list_t *req, attr_list_t *rep, str_t *why)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool    fresh = rw_stream == NULL;
        int     rc;

        if (fresh) {
            rw_stream = ipc_connect(rw_qdir, "private", rw_service ? rw_service : REWRITE_SERVICE,
                                    REWRITE_PROTOCOL, REWRITE_CLNT_TIMEOUT, why);
            if (rw_stream == NULL)
                return false;
        }
        rc = attr_write(rw_stream, req);
        if (rc == ATTR_OK)
            rc = attr_read(rw_stream, &reply_limits, rep, why);
        if (rc == ATTR_OK)
            return true;
        if (rc == ATTR_EOF)
            str_set_cstr(why, "connection closed by the service");
        else if (rc == ATTR_IOERR)
            str_printf(why, "%s", stream_strstatus(stream_status(rw_stream)));
        stream_close(rw_stream);
        rw_stream = NULL;
        /* A fresh connection that fails is not retried; a kept one may just have gone stale. */
        if (fresh || rc == ATTR_BAD)
            return false;
    }
    return false;
}

int
rewrite_clnt(const char *rule, const char *addr, str_t *result)
{
    attr_list_t *req, *rep;
    str_t  *why;
    const char *value;
    long long flags;
    int     ret;

    const struct cache_entry *hit;

    if ((hit = cache_find(&rw_cache, rule, addr)) != NULL) {
        str_set_cstr(result, str_cstr(hit->val[0]));
        return hit->flags;
    }
    req = attr_list_new();
    rep = attr_list_new();
    why = str_new(0);
    attr_put_str(req, "request", "rewrite");
    attr_put_str(req, "rule", rule);
    attr_put_str(req, "address", addr);
    if (!transact(req, rep, why)) {
        ret = REWRITE_FLAG_FAIL;
    } else if (attr_get_int(rep, "flags", 0, 0xffff, &flags) != ATTR_OK
               || attr_get_str(rep, "address", &value) != ATTR_OK
               || attr_check_end(rep, why) != ATTR_OK) {
        if (str_len(why) == 0)
            str_set_cstr(why, attr_last_error(rep));
        rewrite_clnt_disconnect();
        ret = REWRITE_FLAG_FAIL;
    } else {
        ret = (int) flags;
        str_set_cstr(result, value);
    }
    if (ret & REWRITE_FLAG_FAIL) {
        log_warn("rewrite service %s: cannot rewrite address: %s",
                 rw_service ? rw_service : REWRITE_SERVICE, str_cstr(why));
        str_set_cstr(result, addr);
        ret |= REWRITE_FLAG_FAIL;
    } else {
        cache_store(&rw_cache, rule, addr, ret, 1, &result);
    }
    attr_list_free(req);
    attr_list_free(rep);
    str_free(why);
    return ret;
}

int
resolve_clnt(const char *sender, const char *addr, struct resolve_reply *r)
{
    attr_list_t *req, *rep;
    str_t  *why;
    const char *t, *h, *rcpt;
    long long flags;

    const struct cache_entry *hit;

    if ((hit = cache_find(&rs_cache, sender, addr)) != NULL) {
        str_set_cstr(r->transport, str_cstr(hit->val[0]));
        str_set_cstr(r->nexthop, str_cstr(hit->val[1]));
        str_set_cstr(r->recipient, str_cstr(hit->val[2]));
        return r->flags = hit->flags;
    }
    req = attr_list_new();
    rep = attr_list_new();
    why = str_new(0);
    attr_put_str(req, "request", "resolve");
    attr_put_str(req, "sender", sender);
    attr_put_str(req, "address", addr);
    r->flags = RESOLVE_FLAG_FAIL;
    if (!transact(req, rep, why)) {
        /* why says it */
    } else if (attr_get_int(rep, "flags", 0, 0xffff, &flags) != ATTR_OK
               || attr_get_str(rep, "transport", &t) != ATTR_OK
               || attr_get_str(rep, "nexthop", &h) != ATTR_OK
               || attr_get_str(rep, "recipient", &rcpt) != ATTR_OK
               || attr_check_end(rep, why) != ATTR_OK) {
        if (str_len(why) == 0)
            str_set_cstr(why, attr_last_error(rep));
        rewrite_clnt_disconnect();
    } else {
        r->flags = (int) flags;
        str_set_cstr(r->transport, t);
        str_set_cstr(r->nexthop, h);
        str_set_cstr(r->recipient, rcpt);
        if (r->flags & RESOLVE_FLAG_FAIL)
            str_set_cstr(why, "a table lookup failed in the service (see its log)");
    }
    if (r->flags & RESOLVE_FLAG_FAIL) {
        log_warn("rewrite service %s: cannot resolve address: %s",
                 rw_service ? rw_service : REWRITE_SERVICE, str_cstr(why));
        str_reset(r->transport);
        str_reset(r->nexthop);
        str_set_cstr(r->recipient, addr);
    } else {
        str_t  *vals[3] = {r->transport, r->nexthop, r->recipient};

        cache_store(&rs_cache, sender, addr, r->flags, 3, vals);
    }
    attr_list_free(req);
    attr_list_free(rep);
    str_free(why);
    return r->flags;
}
