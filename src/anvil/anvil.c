/*
 * anvil.c - connection and rate counter for smtpd's client limits.
 *
 * Clients (smtpd processes) keep a connection to private/anvil. anvil first
 * sends {protocol=anvil}; then the client sends attribute-list requests
 * (see attr.h):
 *   {request=connect, ident=I}    -> {status=0, count=C, rate=R}
 *   {request=disconnect, ident=I} -> {status=0}
 *   {request=message|recipient|newtls|auth, ident=I} -> {status=0, rate=R}
 *   {request=lookup, ident=I}     -> {status=0, count, rate, message, recipient, newtls, auth}
 * An ident is whatever the client chooses, e.g. "smtp:192.0.2.1". "count" is
 * the number of open connections, "rate" the number of events in the current
 * anvil_rate_time_unit window. anvil remembers which client registered each
 * open connection, so when an smtpd process dies its connections are no
 * longer counted.
 *
 * SECURITY: runs as mail_owner on the event-loop skeleton; one process serves
 * all clients. Requests are decoded with small limits; a malformed request
 * ends that client's connection with a warning. The number of idents is
 * bounded (ANVIL_MAX_IDENTS); beyond it requests get status=-1.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "clock.h"
#include "events.h"
#include "htable.h"
#include "log.h"
#include "mem.h"
#include "server.h"
#include "str.h"

#define ANVIL_MAX_IDENTS   100000
#define ANVIL_MAX_INPUT    8192
#define ANVIL_STAT_OK      0
#define ANVIL_STAT_FAIL    (-1)

enum anvil_kind { K_CONN, K_MSG, K_RCPT, K_TLS, K_AUTH, K_COUNT };

static const char *const kind_names[K_COUNT] = {"rate", "message", "recipient", "newtls", "auth"};

struct anvil_ident {
    char   *name;
    int     count;                  /* open connections */
    int64_t window_start;           /* ms, start of the current rate window */
    int     rate[K_COUNT];
};

struct anvil_client {
    int     fd;
    str_t  *in;
    str_t  *out;
    attr_list_t *req;
    htable_t *conns;                /* ident name -> (intptr_t) connections this client opened */
};

/* The busiest idents seen, for the statistics lines. */
struct anvil_max {
    int     value;
    char   *ident;
    time_t  when;
};

static htable_t *idents;
static int64_t rate_unit_ms;
static struct anvil_max max_count, max_rate[K_COUNT];

static void
note_max(struct anvil_max *m, int value, const char *ident)
{
    if (value <= m->value)
        return;
    m->value = value;
    mem_free(m->ident);
    m->ident = mem_strdup(ident);
    m->when = clock_now();
}

static struct anvil_ident *
ident_get(const char *name, bool create)
{
    struct anvil_ident *id = htable_find(idents, name);

    if (id || !create)
        return id;
    if (htable_count(idents) >= ANVIL_MAX_IDENTS)
        return NULL;
    id = mem_zalloc(sizeof(*id));
    id->name = mem_strdup(name);
    id->window_start = clock_mono_ms();
    htable_insert(idents, name, id);
    return id;
}

/* Start a new rate window when the current one is over. */
static void
ident_roll(struct anvil_ident *id)
{
    int64_t now = clock_mono_ms();

    if (now - id->window_start >= rate_unit_ms) {
        memset(id->rate, 0, sizeof(id->rate));
        id->window_start = now;
    }
}

static void
ident_free(void *p)
{
    struct anvil_ident *id = p;

    mem_free(id->name);
    mem_free(id);
}

/* Forget idents with no open connection whose rate window has expired. */
static void
expire_idents(void *ctx)
{
    htable_iter_t it;
    const char *key;
    void   *val;
    int64_t now = clock_mono_ms();

    htable_iter_init(&it, idents);
    while (htable_iter_next(&it, &key, &val)) {
        struct anvil_ident *id = val;

        if (id->count == 0 && now - id->window_start >= rate_unit_ms) {
            htable_remove(idents, key, NULL);
            ident_free(id);
        }
    }
    event_timer_add(server_loop(), rate_unit_ms, expire_idents, NULL);
}

static void
client_close(struct anvil_client *c)
{
    htable_iter_t it;
    const char *key;
    void   *val;

    /* Connections this client opened and did not close are closed now. */
    htable_iter_init(&it, c->conns);
    while (htable_iter_next(&it, &key, &val)) {
        struct anvil_ident *id = ident_get(key, false);

        if (id)
            id->count -= (int) (intptr_t) val;
    }
    htable_free(c->conns, NULL);
    event_fd_del(server_loop(), c->fd);
    close(c->fd);
    str_free(c->in);
    str_free(c->out);
    attr_list_free(c->req);
    mem_free(c);
    server_client_done();
}

/* Answer one decoded request into c->out. false: protocol error. */
static bool
handle_request(struct anvil_client *c, str_t *err)
{
    const char *req, *name;
    attr_list_t *reply = attr_list_new();
    struct anvil_ident *id;

    if (attr_get_str(c->req, "request", &req) != ATTR_OK
        || attr_get_str(c->req, "ident", &name) != ATTR_OK || *name == 0
        || attr_check_end(c->req, err) != ATTR_OK) {
        if (str_len(err) == 0)
            str_set_cstr(err, "request without valid \"request\" and \"ident\" attributes");
        attr_list_free(reply);
        return false;
    }
    int     kind = -1;                 /* for the rate-only requests */

    for (int k = K_MSG; k < K_COUNT; k++)
        if (strcmp(req, kind_names[k]) == 0)
            kind = k;
    bool    is_connect = strcmp(req, "connect") == 0;
    bool    is_disconnect = strcmp(req, "disconnect") == 0;
    bool    is_lookup = strcmp(req, "lookup") == 0;

    if (!is_connect && !is_disconnect && !is_lookup && kind < 0) {
        str_printf(err, "unknown request \"%s\"", req);
        attr_list_free(reply);
        return false;
    }
    /* disconnect and lookup never create an ident. */
    id = ident_get(name, is_connect || kind >= 0);
    if (id == NULL && (is_connect || kind >= 0)) {
        log_warn("too many clients to track (%d); not counting %s", ANVIL_MAX_IDENTS, name);
        attr_put_int(reply, "status", ANVIL_STAT_FAIL);
    } else if (is_connect) {
        ident_roll(id);
        id->count++;
        id->rate[K_CONN]++;
        note_max(&max_count, id->count, name);
        note_max(&max_rate[K_CONN], id->rate[K_CONN], name);
        intptr_t mine = (intptr_t) htable_find(c->conns, name);

        htable_set(c->conns, name, (void *) (mine + 1), NULL);
        attr_put_int(reply, "status", ANVIL_STAT_OK);
        attr_put_int(reply, "count", id->count);
        attr_put_int(reply, "rate", id->rate[K_CONN]);
    } else if (is_disconnect) {
        intptr_t mine = (intptr_t) htable_find(c->conns, name);

        /* Only connections this client opened can be closed by it. */
        if (id && mine > 0) {
            id->count--;
            if (mine == 1)
                htable_remove(c->conns, name, NULL);
            else
                htable_set(c->conns, name, (void *) (mine - 1), NULL);
        }
        attr_put_int(reply, "status", ANVIL_STAT_OK);
    } else if (is_lookup) {
        if (id)
            ident_roll(id);
        attr_put_int(reply, "status", ANVIL_STAT_OK);
        attr_put_int(reply, "count", id ? id->count : 0);
        for (int k = 0; k < K_COUNT; k++)
            attr_put_int(reply, kind_names[k], id ? id->rate[k] : 0);
    } else {
        ident_roll(id);
        id->rate[kind]++;
        note_max(&max_rate[kind], id->rate[kind], name);
        attr_put_int(reply, "status", ANVIL_STAT_OK);
        attr_put_int(reply, "rate", id->rate[kind]);
    }
    attr_encode(reply, c->out);
    attr_list_free(reply);
    return true;
}

static void client_io(int fd, int events, void *ctx);

static void
client_io(int fd, int events, void *ctx)
{
    struct anvil_client *c = ctx;
    static const struct attr_limits limits = {.max_attrs = 8, .max_value = 1024,
    .max_total = ANVIL_MAX_INPUT};
    char    buf[4096];
    str_t  *err = str_new(0);

    if (events & EVENT_READ) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            client_close(c);
            str_free(err);
            return;
        }
        if (n > 0)
            str_append(c->in, buf, (size_t) n);
        for (;;) {
            size_t  used = 0;
            int     rc = attr_decode(str_cstr(c->in), str_len(c->in), &used, &limits, c->req, err);

            if (rc == ATTR_INCOMPLETE)
                break;
            if (rc != ATTR_OK || !handle_request(c, err)) {
                log_warn("bad request from client: %s", str_cstr(err));
                client_close(c);
                str_free(err);
                return;
            }
            memmove(c->in->data, c->in->data + used, str_len(c->in) - used);
            str_truncate(c->in, str_len(c->in) - used);
        }
    }
    if (!server_client_flush(c->fd, c->out, client_io, c))
        client_close(c);
    str_free(err);
}

static void
anvil_accept(int fd, config_t *cfg)
{
    struct anvil_client *c = mem_zalloc(sizeof(*c));

    c->fd = fd;
    c->in = str_new(256);
    c->out = str_new(256);
    c->req = attr_list_new();
    c->conns = htable_new(0);
    /* Announce the protocol first, so a client that dialled the wrong service knows at once. */
    attr_list_t *hello = attr_list_new();

    attr_put_str(hello, "protocol", "anvil");
    attr_encode(hello, c->out);
    attr_list_free(hello);
    if (!server_client_flush(c->fd, c->out, client_io, c))
        client_close(c);
}

static void
log_statistics(void)
{
    if (max_rate[K_CONN].value > 0)
        log_info("statistics: max connection rate %d/%llds for (%s) at %ld", max_rate[K_CONN].value,
                 (long long) (rate_unit_ms / 1000), max_rate[K_CONN].ident, (long) max_rate[K_CONN].when);
    if (max_count.value > 0)
        log_info("statistics: max connection count %d for (%s) at %ld", max_count.value,
                 max_count.ident, (long) max_count.when);
    for (int k = K_MSG; k < K_COUNT; k++)
        if (max_rate[k].value > 0)
            log_info("statistics: max %s rate %d/%llds for (%s) at %ld", kind_names[k],
                     max_rate[k].value, (long long) (rate_unit_ms / 1000), max_rate[k].ident,
                     (long) max_rate[k].when);
}

static void
anvil_post_init(config_t *cfg)
{
    idents = htable_new(1024);
    rate_unit_ms = config_time(cfg, "anvil_rate_time_unit") * 1000;
    event_timer_add(server_loop(), rate_unit_ms, expire_idents, NULL);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "anvil",
        .post_init = anvil_post_init,
        .accept = anvil_accept,
        .pre_exit = log_statistics,
    };

    event_server_main(argc, argv, &ops);
}
